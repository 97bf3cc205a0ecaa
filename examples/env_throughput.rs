//! Environment steps per second, whole loop (reset + oracle policy + step), over the
//! DIME-like scenarios (the built-in `dime-*` fault scenarios on the `dime-8node` topology),
//! at request-level fidelity, in a `VecEnv` on N threads.
//!
//! ```text
//! cargo run --release --example env_throughput -- --threads 2 --seconds 10
//! ```
//! Options: `--threads N` (default 1), `--seconds S` (default 10), `--envs E` (default: one
//! per scenario per thread, so every thread count runs the same mix of the 15 scenarios;
//! environment i runs scenario i mod 15; pass it to compare thread counts on the very same
//! environments, e.g. `--envs 30 --threads 1` against `--envs 30 --threads 2`), `--seed K`,
//! `--decision-interval SECS` (default: each scenario's own, 10 s; at least the scrape interval,
//! 1 s; a shorter interval scales
//! `max_steps` up so episodes cover the same simulated time: with `--decision-interval 1` a
//! step carries ~100-300 requests, DIME's request volume per step).
//! The last line is one JSON object with `steps`, `episodes`, `wall_s`,
//! `steps_per_s`, `threads`, `envs`, `scenarios`, `decision_interval_s`,
//! `events_in_live_episodes` (engine events of the episodes running at the end) and
//! `dime_ratio` (steps/s over DIME's ~3,400 whole-loop steps/s on one core of this machine
//! class, shared/bench/README.md).
//!
//! The binary allocates through mimalloc (`blastradius::fast_allocator!`, feature `mimalloc`,
//! on by default), as a training loop embedding the library should; build with
//! `--no-default-features` to measure with the system allocator.

use sim_agents::VecEnv;
use sim_agents::policy::{OraclePolicy, Policy};
use sim_faults::FaultScenario;
use std::time::Instant;

blastradius::fast_allocator!();

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
    {
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("bad value for {name}: {v}");
            std::process::exit(2)
        }),
        None => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads", 1);
    let seconds: f64 = arg(&args, "--seconds", 10.0);
    let seed: u64 = arg(&args, "--seed", 1);
    let interval: f64 = arg(&args, "--decision-interval", 0.0);
    if !(interval == 0.0 || (0.001..=3600.0).contains(&interval)) {
        eprintln!("--decision-interval must be in [0.001, 3600] seconds");
        std::process::exit(2);
    }
    let scenarios: Vec<FaultScenario> = sim_faults::builtin_names()
        .into_iter()
        .filter(|n| n.starts_with("dime-"))
        .filter_map(|n| FaultScenario::builtin(n).ok())
        .map(|mut s| {
            if interval > 0.0 {
                let new = (interval * 1e9) as u64;
                let old = s.agent.decision_interval.0;
                let steps = s.agent.max_steps as u128 * old as u128 / new as u128;
                s.agent.max_steps = steps.clamp(1, u32::MAX as u128) as u32;
                s.agent.decision_interval = sim_core::time::SimDuration(new);
            }
            s
        })
        .filter(|s| match sim_faults::Episode::new(s, 0) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("skipping {}: {e}", s.name);
                false
            }
        })
        .collect();
    if scenarios.is_empty() {
        eprintln!("no DIME-like scenario builds");
        std::process::exit(1);
    }
    let envs: usize = arg(&args, "--envs", scenarios.len() * threads.max(1));
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    eprintln!("{} DIME-like scenarios: {}", names.len(), names.join(", "));
    let start = Instant::now();
    let mut venv = match VecEnv::new(&scenarios, envs, seed, threads) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let mut pol = OraclePolicy;
    let mut obs = venv.reset();
    let mut episodes = envs as u64; // resets count as episode starts
    let mut events = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let steps = venv.step(pol.act(&obs));
        for s in &steps {
            if s.info.final_observation.is_some() {
                episodes += 1;
            }
        }
        obs = steps.into_iter().map(|s| s.observation).collect();
    }
    for e in venv.envs() {
        events += e.sim().counters().events;
    }
    let wall = start.elapsed().as_secs_f64();
    let steps = venv.steps_done;
    let sps = steps as f64 / wall;
    println!(
        "{{\"steps\": {steps}, \"episodes\": {episodes}, \"wall_s\": {wall:.3}, \"steps_per_s\": {sps:.1}, \"threads\": {threads}, \"envs\": {envs}, \"scenarios\": {}, \"decision_interval_s\": {}, \"events_in_live_episodes\": {events}, \"dime_ratio\": {:.3}}}",
        names.len(),
        scenarios[0].agent.decision_interval.0 as f64 / 1e9,
        sps / 3400.0
    );
}
