//! Five simulated minutes of Online Boutique traffic (the built-in `online-boutique` topology:
//! MicroRemed's deployment of Google's microservices-demo, Locust's operation mix at 100 rps).
//!
//! Prints one row per service, averaged over the run (requests per second, the mean over the
//! scrape windows of the window p50 and p99, errors, CPU utilisation of the pods' limits and
//! cores used), the end-to-end latency the clients saw, the wall time and the simulated events
//! per second.
//!
//! ```text
//! cargo run --release --example online_boutique
//! cargo run --release --example online_boutique -- --seed 7
//! ```

use sim_core::prelude::*;
use sim_core::topologies;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("error: --seed takes an integer, got {v:?}");
                std::process::exit(2)
            })
        })
        .unwrap_or(1);

    let scenario = topologies::load("online-boutique").expect("the built-in topology parses");
    let mut sim = Simulation::new(&scenario, seed).expect("the built-in topology is valid");
    sim.record_requests(true);

    let wall = Instant::now();
    sim.run_to_end();
    let wall_s = wall.elapsed().as_secs_f64();

    let t = sim.telemetry();
    let n = scenario.services.len();
    let windows = t.scrapes.len().max(1) as f64;
    let secs = scenario.scrape_interval.0 as f64 / SECONDS as f64;
    // per service: requests, errors, sum of p50, sum of p99, windows with traffic, cpu utilisation sum
    let mut acc = vec![(0.0f64, 0.0f64, 0.0f64, 0.0f64, 0u32, 0.0f64); n];
    for s in &t.scrapes {
        for m in &s.services {
            let a = &mut acc[m.service as usize];
            a.0 += m.rps * secs;
            a.1 += m.errors_per_s * secs;
            if m.rps > 0.0 {
                a.2 += m.p50_ms;
                a.3 += m.p99_ms;
                a.4 += 1;
            }
            a.5 += m.cpu_utilization;
        }
    }
    let duration_s = sim.now() as f64 / SECONDS as f64;
    println!("online-boutique, seed {seed}: {duration_s:.0} simulated seconds");
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}",
        "service", "rps", "p50 ms", "p99 ms", "errors", "err %", "cpu %", "cores"
    );
    for (i, s) in scenario.services.iter().enumerate() {
        let (req, err, p50, p99, w, cpu) = acc[i];
        let w = w.max(1) as f64;
        let util = cpu / windows;
        let cores = util * s.resources.cpu_limit.0 as f64 / 1000.0 * s.replicas as f64;
        println!(
            "{:<24} {:>9.1} {:>9.2} {:>9.2} {:>9.0} {:>8.3} {:>7.1} {:>7.3}",
            s.name,
            req / duration_s,
            p50 / w,
            p99 / w,
            err,
            100.0 * err / req.max(1.0),
            100.0 * util,
            cores
        );
    }

    let mut lat: Vec<u64> = t
        .requests
        .iter()
        .filter(|r| r.status.is_ok())
        .map(|r| r.response - r.arrival)
        .collect();
    lat.sort_unstable();
    let q = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1e6
        }
    };
    let failed = t.requests.iter().filter(|r| !r.status.is_ok()).count();
    println!(
        "clients: {} requests, {} failed ({:.2}%), end-to-end p50 {:.2} ms, p99 {:.2} ms (successful requests)",
        t.requests.len(),
        failed,
        100.0 * failed as f64 / t.requests.len().max(1) as f64,
        q(0.5),
        q(0.99)
    );
    let c = sim.counters();
    println!(
        "wall {:.3} s, {} events ({:.2} M simulated events/s), {} service visits, {:.0}x real time",
        wall_s,
        c.events,
        c.events as f64 / wall_s / 1e6,
        c.visits,
        duration_s / wall_s
    );
}
