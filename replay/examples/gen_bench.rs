//! Generation throughput (single thread): Luo (structure only, and with names and
//! latencies from the v2022 sample) and the recursive generator fitted to the sample.
//!
//! `cargo run --release -p replay --example gen_bench -- 1000000`

use std::time::Instant;

use replay::generate::ServiceMarginals;
use replay::generate::luo::{LuoGenerator, LuoTables};
use replay::generate::recursive::{RecursiveGenerator, RecursiveModel};
use replay::{Format, ReadOptions, read_bytes};

const SAMPLE: &str =
    include_str!("../tests/data/alibaba/casper_2022_shuffled_sample_traces_small.csv");

/// CPU time of this thread in seconds (Linux `/proc/thread-self/schedstat`), `None`
/// elsewhere.
fn cpu_seconds() -> Option<f64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map(|ns| ns / 1e9)
}

/// Runs `f` `n` times and prints graphs/s per CPU-second (and wall-clock).
fn measure(name: &str, n: usize, mut f: impl FnMut() -> usize) {
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut spans = 0;
    for _ in 0..n {
        spans += f();
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = c.and_then(|c| cpu_seconds().map(|d| d - c)).unwrap_or(wall);
    println!(
        "{name:<26} {n} graphs: {:>9.0} graphs/s per CPU-second [{:.0} wall], {:>10.0} spans/s (mean {:.1} spans/graph)",
        n as f64 / cpu,
        n as f64 / wall,
        spans as f64 / cpu,
        spans as f64 / n as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let (sample, _) = read_bytes(
        "sample.csv",
        SAMPLE.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions::default(),
    )?;

    let mut g = LuoGenerator::new(LuoTables::embedded(), 1);
    measure("luo (structure)", n, || {
        std::hint::black_box(g.generate_one()).spans.len()
    });
    let mut g =
        LuoGenerator::new(LuoTables::embedded(), 1).with_marginals(ServiceMarginals::fit(&sample));
    measure("luo (+ names, latencies)", n, || {
        std::hint::black_box(g.generate_one()).spans.len()
    });
    let model = RecursiveModel::fit(&sample)?;
    let mut g = RecursiveGenerator::new(&model, 1);
    measure("recursive (fitted)", n, || {
        std::hint::black_box(g.generate_one()).spans.len()
    });
    Ok(())
}
