//! The episode runner abstraction: the sweep engine calls it once per grid point.

use std::collections::BTreeMap;

use crate::grid::{EpisodeJob, ParamAxis};
use crate::row::EpisodeRow;

/// Runs one episode. Implementations must be deterministic: the row (all but `wall_s`, which
/// the engine fills in) must depend only on the job, never on the thread or on other episodes.
pub trait EpisodeRunner: Sync {
    /// Checks that a (scenario, policy) pair can run, before any episode starts (an unknown
    /// scenario name fails fast instead of once per seed). The default accepts everything.
    fn check(&self, scenario: &str, policy: &str) -> Result<(), String> {
        let _ = (scenario, policy);
        Ok(())
    }

    /// Checks one parameter axis of the sweep for `scenario`, before anything is written or
    /// run: an unknown key or a value the runner would refuse (or that would make the scenario
    /// invalid) fails here once, naming the value, instead of failing every episode. Use the
    /// same rules as [`EpisodeRunner::run`] applies. The default accepts everything.
    fn check_param(&self, scenario: &str, axis: &ParamAxis) -> Result<(), String> {
        let _ = (scenario, axis);
        Ok(())
    }

    /// Runs the episode. An `Err` marks the episode failed; the sweep goes on with the others
    /// and reports the failures at the end (a later `--resume` retries them).
    fn run(&self, job: &EpisodeJob) -> Result<EpisodeRow, String>;
}

/// A deterministic stand-in runner for tests, demos and measuring the engine's own overhead:
/// every value is a hash of the job, and `work` busy iterations make each episode cost time.
///
/// ```
/// use sweep::{EpisodeRunner, FakeRunner, SeedRange, SweepSpec};
/// let spec = SweepSpec::new(vec!["a".into()], vec!["p".into()], SeedRange::parse("0..2").unwrap(), vec![]).unwrap();
/// let jobs = spec.jobs();
/// let r = FakeRunner::default();
/// assert_eq!(r.run(&jobs[0]).unwrap(), r.run(&jobs[0]).unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeRunner {
    /// Busy-loop iterations per episode (0: instant).
    pub work: u64,
    /// Scenario names whose episodes fail (to test failure handling).
    pub fail_scenarios: Vec<String>,
}

/// SplitMix64 step: a small, well-mixed, portable hash.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over bytes: a stable string hash (std's hasher is not guaranteed stable).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl EpisodeRunner for FakeRunner {
    fn check(&self, scenario: &str, _policy: &str) -> Result<(), String> {
        if scenario.starts_with("unknown") {
            return Err(format!("unknown scenario {scenario:?}"));
        }
        Ok(())
    }

    fn run(&self, job: &EpisodeJob) -> Result<EpisodeRow, String> {
        let k = &job.key;
        if self.fail_scenarios.contains(&k.scenario) {
            return Err(format!("scenario {} fails on purpose", k.scenario));
        }
        let mut h = fnv1a(format!("{}\0{}\0{:?}", k.scenario, k.policy, job.params).as_bytes());
        h = splitmix(h ^ k.seed);
        let mut acc = h;
        for i in 0..self.work {
            acc = splitmix(acc ^ i);
        }
        std::hint::black_box(acc);
        let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
        let r1 = splitmix(h);
        let r2 = splitmix(r1);
        let r3 = splitmix(r2);
        let policy_bonus = if k.policy.contains("oracle") {
            0.4
        } else {
            0.0
        };
        let recovered = unit(r1) < 0.3 + policy_bonus;
        let mut components = BTreeMap::new();
        components.insert("slo".to_string(), -10.0 * unit(r2));
        components.insert("action_cost".to_string(), -unit(r3));
        let ret = components.values().sum::<f64>() + if recovered { 5.0 } else { 0.0 };
        let localization = k.policy.contains("oracle").then(|| {
            let mut m = BTreeMap::new();
            m.insert(
                "ac@1".to_string(),
                if r3.is_multiple_of(4) { 0.0 } else { 1.0 },
            );
            m.insert("ac@3".to_string(), 1.0);
            m
        });
        Ok(EpisodeRow {
            scenario: k.scenario.clone(),
            policy: k.policy.clone(),
            seed: k.seed,
            override_index: k.override_index,
            params: job.params.clone(),
            steps: (r2 % 30) as u32,
            return_: ret,
            reward_components: components,
            recovered,
            time_to_recover_s: recovered.then(|| 10.0 + 100.0 * unit(r3)),
            verdict_reason: if recovered {
                "recovered"
            } else {
                "not recovered"
            }
            .into(),
            localization,
            latency_p50_ms: 5.0 + 10.0 * unit(r1 ^ r3),
            latency_p99_ms: 50.0 + 500.0 * unit(r2 ^ r3),
            events: 10_000 + r1 % 10_000,
            wall_s: 0.0,
        })
    }
}
