//! The retry storm: a 10 s latency blip on the app -> db calls of DIME's 8-node cluster sets
//! off ingress and client retries that keep the app tier overloaded after the blip is gone
//! (a metastable failure). An agent has to shed load to end it.
//!
//! ```text
//! cargo run --release --example retry_storm
//! ```
//! Prints (1) a timeline of the offered request rate, the error rate and the p99 latency at
//! the entry, with the fault window and the oracle agent's actions marked, and (2) a table
//! comparing the no-op, random and oracle policies over 32 seeds: mean return, recovery rate
//! (sim-faults' remediation verdict) and time to recover. Options: `--scenario NAME|PATH`
//! (default `retry-storm`), `--seeds N` (default 32), `--seed K` (the timeline's, default 1).

use sim_agents::policy::{OraclePolicy, Policy, policy_by_name};
use sim_agents::{Action, ActionKind, Env, EnvOptions, EpisodeReport, run_episode_against};
use sim_faults::{Episode, FaultScenario};
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

fn bar(x: f64, max: f64, width: usize) -> String {
    let n = if max > 0.0 {
        ((x / max).clamp(0.0, 1.0) * width as f64).round() as usize
    } else {
        0
    };
    format!("{}{}", "#".repeat(n), " ".repeat(width - n))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name: String = arg(&args, "--scenario", "retry-storm".to_string());
    let n_seeds: u64 = arg(&args, "--seeds", 32);
    let tl_seed: u64 = arg(&args, "--seed", 1);
    let started = Instant::now();
    let sc = match FaultScenario::load(&name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    println!("{}: {}\n", sc.name, sc.description);

    // (1) the timeline of one episode with the oracle
    let mut env = Env::new(sc.clone());
    let mut obs = env.reset(tl_seed);
    let mut rows = vec![(
        obs.time_ns,
        obs.request_rate,
        obs.error_rate,
        obs.p99_latency,
        String::new(),
    )];
    let mut pol = OraclePolicy;
    loop {
        let a = pol
            .act(std::slice::from_ref(&obs))
            .pop()
            .unwrap_or(Action::NoOp);
        let label = if a.kind() == ActionKind::NoOp {
            String::new()
        } else {
            a.to_command()
        };
        // the action is taken at the start of the step: mark it on the row it acts from
        if let Some(last) = rows.last_mut() {
            last.4 = label;
        }
        let st = env.step(a);
        obs = st.observation;
        rows.push((
            obs.time_ns,
            obs.request_rate,
            obs.error_rate,
            obs.p99_latency,
            String::new(),
        ));
        if st.terminated || st.truncated {
            break;
        }
    }
    let faults: Vec<(u64, u64, String)> = env
        .episode()
        .injected()
        .iter()
        .map(|f| {
            (
                f.start,
                f.end.unwrap_or(u64::MAX),
                format!("{} {}", f.id, f.fault_type),
            )
        })
        .collect();
    let interval = env.decision_interval();
    let max_rps = rows.iter().map(|r| r.1).fold(1.0, f64::max);
    let max_p99 = rows.iter().map(|r| r.3).fold(1.0, f64::max);
    println!(
        "Timeline (oracle, seed {tl_seed}); each row is the {} s interval ending at t:",
        interval / 1_000_000_000
    );
    for (s, e, l) in &faults {
        println!(
            "  fault {l}: {:.0} s .. {:.0} s",
            *s as f64 / 1e9,
            (*e).min(env.sim().end()) as f64 / 1e9
        );
    }
    println!(
        "  {:>5}  {:>8} {:<20} {:>6}  {:>8} {:<20}  fault  action taken",
        "t (s)", "rps", "", "err %", "p99 ms", ""
    );
    for (t, rps, err, p99, act) in &rows {
        let from = t.saturating_sub(interval);
        let in_fault = faults.iter().any(|(s, e, _)| from < *e && *t > *s);
        println!(
            "  {:>5.0}  {:>8.1} {} {:>6.1}  {:>8.1} {}  {}  {}",
            *t as f64 / 1e9,
            rps,
            bar(*rps, max_rps, 20),
            err * 100.0,
            p99,
            bar(*p99, max_p99, 20),
            if in_fault { "FAULT" } else { "     " },
            if act.is_empty() {
                String::new()
            } else {
                format!("<- {act}")
            }
        );
    }

    // (2) the policies over many seeds, on all cores
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("\nPolicies over {n_seeds} seeds ({threads} threads):");
    println!(
        "  {:<8} {:>14} {:>10} {:>22} {:>12}",
        "policy", "mean return", "recovered", "time to recover (s)", "p99 (ms)"
    );
    const POLICIES: [&str; 3] = ["noop", "random", "oracle"];
    let seeds: Vec<u64> = (0..n_seeds).collect();
    let chunks: Vec<Vec<u64>> = seeds
        .chunks(seeds.len().div_ceil(threads).max(1))
        .map(|c| c.to_vec())
        .collect();
    // per seed: one counterfactual run shared by the three policies
    let all: Vec<[EpisodeReport; 3]> = std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let sc = &sc;
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|seed| {
                            let mut healthy = match Episode::without_faults(sc, seed) {
                                Ok(h) => h,
                                Err(e) => panic!("{e}"),
                            };
                            // as far as an episode goes: warm-up + max_steps decision intervals
                            let horizon = sc
                                .agent
                                .decision_interval
                                .0
                                .saturating_mul(sc.agent.max_steps as u64 + 1);
                            healthy.run_until(horizon.min(healthy.sim().end()));
                            POLICIES.map(|pname| match policy_by_name(pname, seed) {
                                Ok(mut p) => run_episode_against(
                                    sc,
                                    p.as_mut(),
                                    seed,
                                    EnvOptions::default(),
                                    Some(&healthy),
                                ),
                                Err(e) => panic!("{e}"),
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (k, pname) in POLICIES.iter().enumerate() {
        let reports: Vec<&EpisodeReport> = all.iter().map(|r| &r[k]).collect();
        let n = reports.len().max(1) as f64;
        let mean = reports.iter().map(|r| r.return_).sum::<f64>() / n;
        let sd = (reports
            .iter()
            .map(|r| (r.return_ - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let rec: Vec<f64> = reports.iter().filter_map(|r| r.time_to_recover_s).collect();
        let rate = reports.iter().filter(|r| r.recovered).count() as f64 / n;
        let ttr = if rec.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", rec.iter().sum::<f64>() / rec.len() as f64)
        };
        let p99 = reports.iter().map(|r| r.latency_p99_ms).sum::<f64>() / n;
        println!(
            "  {:<8} {:>8.2} ± {:<5.2} {:>9.0}% {:>22} {:>12.1}",
            pname,
            mean,
            sd,
            rate * 100.0,
            ttr,
            p99
        );
    }
    println!("\n({:.1} s)", started.elapsed().as_secs_f64());
}
