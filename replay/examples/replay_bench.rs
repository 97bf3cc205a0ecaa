//! Replay speed: spans replayed into the simulator per second (wall and per CPU-second).
//!
//! Builds a big set by repeating the real samples in `replay/tests/data/alibaba` (the
//! CASPER v2022 sample and the naive-accurate v2022 sample) with fresh trace ids: each
//! sample's root start times are first rescaled onto the naive-accurate sample's window
//! (~180 s; the CASPER sample is a shuffled sample spread over 7.5 h), offsets inside a
//! graph are kept, and copy `k` is shifted by `k` windows. Infers a scenario sized for the
//! speed-up, replays the set with arrivals `speedup` times faster, and prints the numbers.
//!
//! ```text
//! cargo run --release -p replay --example replay_bench -- [--spans 1000000] [--speedup 1000]
//!     [--sample-rate 0.01] [--seed 1] [--inject-only]
//! ```

use std::time::Instant;

use replay::sim::{
    InferOptions, ReplayOptions, infer_scenario_with_report, replay_into, replay_scenario,
};
use replay::{Format, ReadOptions, TraceSet};
use sim_core::Simulation;

/// CPU time of this thread (ns): `/proc/thread-self/schedstat`, else `/proc/self/stat`
/// utime + stime (clock ticks of 10 ms).
fn cpu_ns() -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(v) = s.split_whitespace().next().and_then(|x| x.parse().ok())
    {
        return Some(v);
    }
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let target: usize = arg(&args, "--spans", 1_000_000);
    let speedup: f64 = arg(&args, "--speedup", 1000.0);
    let rate: f64 = arg(&args, "--sample-rate", 0.01);
    let seed: u64 = arg(&args, "--seed", 1);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/alibaba");
    let files = [
        "v2022_CallGraph0_casper_naive_accurate_sample.csv",
        "casper_2022_shuffled_sample_traces_small.csv",
    ];
    let mut samples = Vec::new();
    for f in files {
        let (s, _) =
            replay::read_files(&[dir.join(f)], Format::AlibabaV2022, ReadOptions::default())?;
        samples.push(s);
    }
    let window = |s: &TraceSet| {
        let st = s.graphs.iter().map(|g| g.spans[0].start_ns);
        let (lo, hi) = (st.clone().min().unwrap_or(0), st.max().unwrap_or(0));
        (lo, (hi - lo).max(1))
    };
    let (_, w0) = window(&samples[0]);
    let mut big = TraceSet::new();
    let per_copy: usize = samples.iter().map(|s| s.num_spans()).sum();
    let copies = target.div_ceil(per_copy.max(1));
    let t_build = Instant::now();
    for k in 0..copies as u64 {
        for (si, s) in samples.iter().enumerate() {
            let (lo, w) = window(s);
            for g in &s.graphs {
                let mut g2 = g.clone();
                let root = g.spans[0].start_ns;
                let new_root = k * w0 + ((root - lo) as f64 * w0 as f64 / w as f64) as u64;
                for sp in &mut g2.spans {
                    sp.start_ns = new_root + sp.start_ns.saturating_sub(root);
                }
                g2.trace_id = format!("{}#{si}.{k}", g.trace_id);
                big.push_from(&s.symbols, &g2);
            }
        }
    }
    println!(
        "set: {} graphs, {} spans ({copies} copies of {} samples), built in {:.2} s",
        big.graphs.len(),
        big.num_spans(),
        samples.len(),
        t_build.elapsed().as_secs_f64()
    );

    let t_inf = Instant::now();
    let iopts = InferOptions {
        speedup,
        trace_sample_rate: rate,
        ..InferOptions::default()
    };
    let (sc, rep) = infer_scenario_with_report(&big, &iopts)?;
    println!(
        "inferred: {} services, {} operations, {} edges, {} workloads, {} nodes, {} pods, window {:.1} s (sim), in {:.2} s",
        rep.services,
        rep.operations,
        rep.edges,
        sc.workload.len(),
        sc.nodes.len(),
        sc.services.iter().map(|s| s.replicas).sum::<u32>(),
        rep.window_ns as f64 / 1e9,
        t_inf.elapsed().as_secs_f64()
    );
    let mut sim = Simulation::new(&replay_scenario(&sc), seed)?;
    // --inject-only: measure the driver alone (graphs are injected, nothing is simulated)
    let inject_only = args.iter().any(|a| a == "--inject-only");
    let ropts = ReplayOptions {
        speedup,
        run_to_end: !inject_only,
        reorder_window_ns: if inject_only {
            u64::MAX
        } else {
            10_000_000_000
        },
        ..ReplayOptions::default()
    };
    let c0 = cpu_ns();
    let t0 = Instant::now();
    let st = replay_into(&mut sim, &big, &ropts)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => f64::NAN,
    };
    let completed = sim.counters().visits;
    println!(
        "replayed: {} graphs, {} spans ({} dropped unknown), {} engine events, {} visits, sim time {:.1} s, {} spans recorded",
        st.graphs_replayed,
        st.spans_replayed,
        st.spans_dropped_unknown,
        st.events,
        completed,
        st.sim_end_ns as f64 / 1e9,
        sim.telemetry().spans.len()
    );
    println!(
        "wall {wall:.3} s, CPU {cpu:.3} s: {:.0} spans/s (wall), {:.0} spans per CPU-second, {:.0} events per CPU-second",
        st.spans_replayed as f64 / wall,
        st.spans_replayed as f64 / cpu,
        st.events as f64 / cpu
    );
    if let Some(s) = sim.last_scrape() {
        let errs: f64 = s.services.iter().map(|m| m.errors_per_s).sum();
        println!("last scrape: {errs:.1} errors/s over all services");
    }
    Ok(())
}
