//! Parse throughput of Alibaba v2022 `CallGraph` CSV.
//!
//! Builds a large file under /tmp by repeating the real v2022 samples with fresh trace
//! ids (default 256 MiB; first argument = size in MiB), then measures, single-threaded:
//! 1. parse: reading, splitting, number parsing, interning and grouping rows by trace;
//! 2. parse + rebuild: the above plus call-graph reconstruction (`finish`).
//!
//! `cargo run --release -p replay --example parse_bench -- 256`

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use replay::ReadOptions;
use replay::alibaba::CallGraphReader;

const SAMPLES: [&str; 2] = [
    include_str!("../tests/data/alibaba/casper_2022_shuffled_sample_traces_small.csv"),
    include_str!("../tests/data/alibaba/v2022_CallGraph0_casper_naive_accurate_sample.csv"),
];

fn make_file(path: &PathBuf, mib: usize) -> std::io::Result<u64> {
    let target = (mib as u64) << 20;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let header =
        "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n";
    w.write_all(header.as_bytes())?;
    let mut written = header.len() as u64;
    // normalise both samples to the v2022 column order (the second has an index column)
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (k, s) in SAMPLES.iter().enumerate() {
        for line in s.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let f = if k == 1 { &f[1..] } else { &f[..] };
            rows.push(f.iter().map(|x| x.to_string()).collect());
        }
    }
    let mut copy = 0u64;
    let mut line = String::with_capacity(256);
    while written < target {
        for r in &rows {
            line.clear();
            for (i, f) in r.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                if i == 1 {
                    // fresh trace id per copy
                    line.push_str(&format!("T_{copy}_{}", &f[2..]));
                } else {
                    line.push_str(f);
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        copy += 1;
    }
    w.flush()?;
    Ok(written)
}

/// CPU time of this thread in seconds (Linux `/proc/thread-self/schedstat`; falls back
/// to wall-clock time elsewhere).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map(|ns| ns / 1e9)
        .unwrap_or_else(|| START.with(|s| s.elapsed().as_secs_f64()))
}

thread_local! {
    static START: Instant = Instant::now();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(256);
    let path = std::env::temp_dir().join(format!("replay_parse_bench_{mib}MiB.csv"));
    let size = match std::fs::metadata(&path) {
        Ok(m) if m.len() >= (mib as u64) << 20 => m.len(),
        _ => make_file(&path, mib)?,
    };
    println!("file: {} ({:.1} MB)", path.display(), size as f64 / 1e6);
    // warm the page cache
    let _ = std::fs::read(&path)?;
    println!(
        "MB/s per CPU-second of this thread (wall-clock MB/s in brackets; the machine may be shared)"
    );
    for run in 0..3 {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let mut r = CallGraphReader::new(ReadOptions::default());
        r.add_file(&path)?;
        let (t1, c1) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        let (set, reps) = r.finish()?;
        let (t2, c2) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        let mb = size as f64 / 1e6;
        println!(
            "run {run}: parse {:.0} MB/s [{:.0}], parse+rebuild {:.0} MB/s [{:.0}]; rows {}, graphs {}, spans {}",
            mb / c1,
            mb / t1,
            mb / c2,
            mb / t2,
            reps[0].rows,
            set.graphs.len(),
            set.num_spans()
        );
    }
    Ok(())
}
