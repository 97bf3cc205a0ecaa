//! The tandem benchmark of `shared/bench/README.md`: K stations in a chain, Poisson arrivals
//! at rate λ into station 0, exponential CPU demand of rate μ, C workers per station, an
//! unbounded FIFO queue, and an asynchronous (fire-and-forget) call to the next station.
//! It is a Jackson network of K M/M/C stations, so its mean latency is known exactly.
//!
//! The model is built through the public scenario API and run by the general engine (the
//! same code path as every other scenario).
//!
//! ```text
//! cargo run --release --example tandem -- --stations 10 --servers 4 --lambda 800 --mu 250 --horizon 200 --seed 1
//! ```
//! The last line is one JSON object: visits, completed, wall_s, visits_per_s, mean_latency_s.

use sim_core::prelude::*;
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name).map(|i| args.get(i + 1)) {
        None => default,
        Some(Some(v)) => v.parse().unwrap_or_else(|_| {
            eprintln!("error: bad value for {name}: {v:?}");
            std::process::exit(2)
        }),
        Some(None) => {
            eprintln!("error: {name} needs a value");
            std::process::exit(2)
        }
    }
}

/// Builds the tandem scenario.
fn tandem(k: usize, c: u32, lambda: f64, mu: f64, horizon_s: f64) -> Scenario {
    let mean = SimDuration::from_nanos((1e9 / mu).round() as u64);
    let services: Vec<ServiceSpec> = (0..k)
        .map(|i| {
            let mut s =
                ServiceSpec::simple(&format!("station-{i}"), DurationDist::exponential(mean));
            s.workers = c;
            s.queue_capacity = u32::MAX;
            s.resources.cpu_request = Cpu(c * 1000);
            s.resources.cpu_limit = Cpu(c * 1000);
            s.resources.memory_limit = Memory(u64::MAX / 4);
            s.memory_per_request = Memory(0);
            s.warmup_factor = 1.0;
            s.node_selector = vec![format!("node-{i}")];
            if i + 1 < k {
                s.operations[0].stages.push(StageSpec {
                    calls: vec![CallSpec {
                        service: format!("station-{}", i + 1),
                        operation: None,
                        probability: 1.0,
                        mode: CallMode::Async,
                        optional: false,
                    }],
                });
            }
            s
        })
        .collect();
    let nodes = (0..k)
        .map(|i| NodeSpec {
            name: format!("node-{i}"),
            cpu: Cpu(c * 1000),
            memory: Memory(1 << 40),
            zone: "a".into(),
            io_bandwidth: Memory(1 << 30),
        })
        .collect();
    let edges = (0..k.saturating_sub(1))
        .map(|i| {
            let mut e = EdgeSpec::default_for(
                &format!("station-{i}"),
                &format!("station-{}", i + 1),
                ServiceKind::Stateless,
            );
            e.latency = DurationDist::constant(SimDuration::ZERO);
            e
        })
        .collect();
    let horizon = SimDuration::from_nanos((horizon_s * 1e9) as u64);
    Scenario {
        name: "tandem".into(),
        description: "Jackson tandem of M/M/C stations (shared/bench/README.md)".into(),
        duration: horizon,
        scrape_interval: SimDuration::from_secs(1),
        telemetry: TelemetrySpec {
            trace_sample_rate: 0.0,
            retain_scrapes: 1,
            ..TelemetrySpec::default()
        },
        cluster: ClusterSpec::default(),
        nodes,
        services,
        edges,
        workload: vec![WorkloadSpec {
            entry: "station-0".into(),
            arrivals: ArrivalSpec::Open {
                rate: RateSpec::Constant { rps: lambda },
            },
            mix: vec![],
            client: ClientSpec {
                timeout: SimDuration::from_secs(1_000_000),
                ..ClientSpec::default()
            },
        }],
        slos: vec![],
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let k: usize = arg(&args, "--stations", 10);
    let c: u32 = arg(&args, "--servers", 4);
    let lambda: f64 = arg(&args, "--lambda", 800.0);
    let mu: f64 = arg(&args, "--mu", 250.0);
    let horizon: f64 = arg(&args, "--horizon", 200.0);
    let seed: u64 = arg(&args, "--seed", 1);

    let t0 = Instant::now();
    let scenario = tandem(k, c, lambda, mu, horizon);
    let mut sim = match Simulation::new(&scenario, seed) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    };
    sim.record_requests(true);
    sim.run_to_end();
    let wall = t0.elapsed().as_secs_f64();

    let warmup = (horizon * 0.1 * 1e9) as u64;
    let recs: Vec<_> = sim
        .telemetry()
        .requests
        .iter()
        .filter(|r| r.arrival >= warmup && r.status.is_ok())
        .collect();
    let mean = recs
        .iter()
        .map(|r| (r.end - r.arrival) as f64 / 1e9)
        .sum::<f64>()
        / recs.len().max(1) as f64;
    let visits = sim.counters().visits;
    println!(
        "{{\"stations\":{k},\"servers\":{c},\"lambda\":{lambda},\"mu\":{mu},\"horizon_s\":{horizon},\"seed\":{seed},\"visits\":{visits},\"completed\":{},\"events\":{},\"wall_s\":{wall:.4},\"visits_per_s\":{:.0},\"mean_latency_s\":{mean:.6}}}",
        recs.len(),
        sim.counters().events,
        visits as f64 / wall
    );
}
