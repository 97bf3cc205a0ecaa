//! The RobustScorer localization baseline on built-in scenarios: it finds what a metric-based
//! method can find (a CPU-stressed or misconfigured service), its ranking is deterministic,
//! and an episode without faults has no ranking.

use sim_faults::{Episode, FaultScenario, baseline, localization_scores, root_causes};

fn ranked(name: &str, seed: u64) -> (Vec<String>, Vec<String>) {
    let sc = FaultScenario::builtin(name).unwrap();
    let mut ep = Episode::new(&sc, seed).unwrap();
    ep.run_to_end();
    let (truth, _, _) = root_causes(&ep);
    (baseline::rank_services(&ep), truth)
}

#[test]
fn cpu_stress_and_config_errors_are_ranked_first() {
    for name in [
        "microremed-online-boutique-cpu-stress",
        "microremed-online-boutique-pod-config-error",
        "microremed-train-ticket-cpu-stress",
    ] {
        for seed in 1..=2 {
            let (ranked, truth) = ranked(name, seed);
            assert_eq!(truth.len(), 1, "{name} seed {seed}: one target");
            let n = FaultScenario::builtin(name).unwrap().base.services.len();
            assert_eq!(ranked.len(), n, "{name}: every service is ranked");
            let s = localization_scores(&ranked, &truth);
            assert_eq!(
                s.ac_at[0], 1.0,
                "{name} seed {seed}: {truth:?} not first in {ranked:?}"
            );
            assert_eq!(s.mrr, 1.0);
        }
    }
}

#[test]
fn ranking_is_deterministic_and_needs_a_fault() {
    let a = ranked("retry-storm", 4);
    let b = ranked("retry-storm", 4);
    assert_eq!(a, b);
    assert!(!a.0.is_empty());
    // the counterfactual run (no faults) has nothing to rank against
    let sc = FaultScenario::builtin("retry-storm").unwrap();
    let mut healthy = Episode::without_faults(&sc, 4).unwrap();
    healthy.run_to_end();
    assert!(baseline::rank_services(&healthy).is_empty());
    assert!(root_causes(&healthy).0.is_empty());
}

#[test]
fn windows_outside_the_periods_are_ignored() {
    // a scrape stream whose only anomaly lies after the anomalous period scores 0
    let sc = FaultScenario::builtin("retry-storm").unwrap();
    let mut ep = Episode::without_faults(&sc, 1).unwrap();
    ep.run_to_end();
    let scrapes: Vec<_> = ep.sim().telemetry().scrapes.iter().cloned().collect();
    let mut late = scrapes.clone();
    let last = late.len() - 1;
    for m in &mut late[last].services {
        m.p99_ms *= 100.0;
        m.cpu_utilization = 1.0;
    }
    let w = baseline::BaselineWindow {
        inject_ns: scrapes[scrapes.len() / 2].time,
        before_ns: u64::MAX,
        after_ns: scrapes[scrapes.len() - 2].time - scrapes[scrapes.len() / 2].time,
    };
    assert_eq!(
        baseline::robust_scores(&scrapes, &w),
        baseline::robust_scores(&late, &w)
    );
    // and one inside it is found
    let w_all = baseline::BaselineWindow {
        after_ns: u64::MAX,
        ..w
    };
    let top = &baseline::robust_scores(&late, &w_all)[0];
    assert!(top.score > 10.0, "{top:?}");
}
