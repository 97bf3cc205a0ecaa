//! The real episode runner on top of `sim_agents::run_episode`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sim_core::time::SimDuration;
use sim_faults::FaultScenario;

use crate::grid::{EpisodeJob, ParamAxis};
use crate::row::EpisodeRow;
use crate::runner::EpisodeRunner;

/// Runs episodes with the simulator: loads the scenario (built-in name or TOML path) once,
/// applies the job's parameter overrides ([`apply_overrides`]), builds the policy with the
/// episode seed, and calls `sim_agents::run_episode`. Overrides understood: see [`SIM_PARAMS`].
///
/// Every parameter value of a sweep is checked before any episode runs
/// ([`EpisodeRunner::check_param`], with the same rules as [`apply_overrides`]), so a bad value
/// is one error naming it instead of one failed episode per grid point.
#[derive(Debug, Default)]
pub struct SimRunner {
    cache: Mutex<BTreeMap<String, FaultScenario>>,
}

impl SimRunner {
    /// A runner over the built-in scenarios and policies.
    pub fn new() -> SimRunner {
        SimRunner::default()
    }

    fn scenario(&self, name: &str) -> Result<FaultScenario, String> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = c.get(name) {
            return Ok(s.clone());
        }
        let s = FaultScenario::load(name).map_err(|e| e.to_string())?;
        c.insert(name.to_string(), s.clone());
        Ok(s)
    }
}

/// The parameter overrides [`SimRunner`] and [`apply_overrides`] understand, and their values:
///
/// - `max_steps`: agent decision steps, an integer in `1..=4294967295` (0 is refused: the
///   environment would still take one step);
/// - `decision_interval_s`: seconds between agent decisions, at least the scenario's scrape
///   interval;
/// - `duration_s`: simulated length of the episode in seconds;
/// - `remediation_windows`: consecutive healthy scrape windows needed for recovery, `1..=100000`;
/// - `throughput_ratio`: share of the healthy throughput recovery needs, in `[0, 1]`.
///
/// Seconds are finite numbers of at most [`MAX_PARAM_SECONDS`] (100 years) that are at least
/// 1 ns once rounded to whole nanoseconds; a value is never clamped or rounded to 0.
pub const SIM_PARAMS: [&str; 5] = [
    "decision_interval_s",
    "duration_s",
    "max_steps",
    "remediation_windows",
    "throughput_ratio",
];

/// The most seconds a seconds parameter (`duration_s`, `decision_interval_s`) may give: 100
/// years of 365 days. Larger values are refused (as nanoseconds they would overflow or
/// saturate `u64` near 584 years).
pub const MAX_PARAM_SECONDS: f64 = 100.0 * 365.0 * 86_400.0;

/// One parsed parameter override.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Setting {
    MaxSteps(u32),
    DecisionInterval(SimDuration),
    Duration(SimDuration),
    Windows(u32),
    ThroughputRatio(f64),
}

/// Parses `key=value` into a setting; the error says why (without the `key=value` prefix).
fn parse_setting(key: &str, value: &str) -> Result<Setting, String> {
    let int = || {
        value
            .parse::<u32>()
            .map_err(|e| format!("not an integer in 0..=4294967295: {e}"))
    };
    let float = || {
        value
            .parse::<f64>()
            .map_err(|e| format!("not a number: {e}"))
    };
    let secs = || -> Result<SimDuration, String> {
        let x = float()?;
        if !(x.is_finite() && x > 0.0) {
            return Err("need a positive, finite number of seconds".into());
        }
        if x > MAX_PARAM_SECONDS {
            return Err(format!(
                "more than {MAX_PARAM_SECONDS} s (100 years), the most a duration may be"
            ));
        }
        let ns = (x * 1e9).round();
        if ns < 1.0 {
            return Err("rounds to 0 ns (durations are whole nanoseconds: at least 1e-9 s)".into());
        }
        // ns <= 3.2e18 < u64::MAX: the cast is exact up to f64 precision, never saturates.
        Ok(SimDuration(ns as u64))
    };
    Ok(match key {
        "max_steps" => match int()? {
            0 => return Err("must be at least 1 (0 would still run one step)".into()),
            n => Setting::MaxSteps(n),
        },
        "decision_interval_s" => Setting::DecisionInterval(secs()?),
        "duration_s" => Setting::Duration(secs()?),
        "remediation_windows" => Setting::Windows(int()?),
        "throughput_ratio" => Setting::ThroughputRatio(float()?),
        _ => return Err(unknown_param(key)),
    })
}

/// The error for a key not in [`SIM_PARAMS`].
fn unknown_param(key: &str) -> String {
    format!(
        "unknown parameter {key:?} (known: {})",
        SIM_PARAMS.join(", ")
    )
}

/// Applies one setting and checks the scenario with it (`FaultScenario::validate`: e.g.
/// `remediation.windows` in `1..=100000`, a finite `throughput_ratio` in `[0, 1]`, a decision
/// interval no shorter than the scrape interval).
fn apply_setting(sc: &mut FaultScenario, setting: Setting) -> Result<(), String> {
    match setting {
        Setting::MaxSteps(n) => sc.agent.max_steps = n,
        Setting::DecisionInterval(d) => sc.agent.decision_interval = d,
        Setting::Duration(d) => sc.base.duration = d,
        Setting::Windows(n) => sc.remediation.windows = n,
        Setting::ThroughputRatio(r) => sc.remediation.throughput_ratio = r,
    }
    let origin = sc.name.clone();
    sc.validate(&origin).map_err(|e| e.to_string())
}

/// Applies parameter overrides (keys and values: see [`SIM_PARAMS`]) to a scenario, checking
/// the scenario after each one. Fails, naming the `key=value` at fault, on an unknown key, a
/// value that does not parse or does not fit (seconds beyond 100 years or below 1 ns), or a
/// value that makes the scenario invalid; the scenario may then be partly changed.
pub fn apply_overrides(
    sc: &mut FaultScenario,
    params: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in params {
        parse_setting(k, v)
            .and_then(|s| apply_setting(sc, s))
            .map_err(|e| format!("param {k}={v}: {e}"))?;
    }
    Ok(())
}

impl EpisodeRunner for SimRunner {
    fn check(&self, scenario: &str, policy: &str) -> Result<(), String> {
        self.scenario(scenario)?;
        sim_agents::policy_by_name(policy, 0).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Applies each value of the axis alone to the scenario with the rules of
    /// [`apply_overrides`]; also refuses two values that give the same setting (`5` and `05`).
    /// The parameters act on separate fields that the scenario checks independently, so
    /// values valid one by one are valid in any combination.
    fn check_param(&self, scenario: &str, axis: &ParamAxis) -> Result<(), String> {
        if !SIM_PARAMS.contains(&axis.key.as_str()) {
            // The same message as applying it would give, without a value to blame.
            return Err(unknown_param(&axis.key));
        }
        let base = self.scenario(scenario)?;
        let mut seen: Vec<(Setting, &str)> = Vec::new();
        for v in &axis.values {
            let s = parse_setting(&axis.key, v).map_err(|e| format!("value {v:?}: {e}"))?;
            apply_setting(&mut base.clone(), s).map_err(|e| format!("value {v:?}: {e}"))?;
            if let Some((_, w)) = seen.iter().find(|(t, _)| *t == s) {
                return Err(format!(
                    "values {w:?} and {v:?} are the same setting (the same episodes twice)"
                ));
            }
            seen.push((s, v));
        }
        Ok(())
    }

    fn run(&self, job: &EpisodeJob) -> Result<EpisodeRow, String> {
        let k = &job.key;
        let mut sc = self.scenario(&k.scenario)?;
        apply_overrides(&mut sc, &job.params)?;
        let mut policy =
            sim_agents::policy_by_name(&k.policy, k.seed).map_err(|e| e.to_string())?;
        let rep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sim_agents::run_episode(&sc, policy.as_mut(), k.seed)
        }))
        .map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("episode panicked: {msg}")
        })?;
        let localization = rep.localization.map(|l| {
            let mut m = BTreeMap::new();
            for (i, a) in l.ac_at.iter().enumerate() {
                m.insert(format!("ac@{}", i + 1), *a);
            }
            m.insert("avg@5".into(), l.avg_at_5);
            m.insert("mrr".into(), l.mrr);
            m
        });
        Ok(EpisodeRow {
            scenario: k.scenario.clone(),
            policy: k.policy.clone(),
            seed: k.seed,
            override_index: k.override_index,
            params: job.params.clone(),
            steps: rep.steps,
            return_: rep.return_,
            reward_components: rep.reward_components,
            recovered: rep.recovered,
            time_to_recover_s: rep.time_to_recover_s,
            verdict_reason: rep.verdict_reason,
            localization,
            latency_p50_ms: rep.latency_p50_ms,
            latency_p99_ms: rep.latency_p99_ms,
            events: rep.events,
            wall_s: 0.0,
        })
    }
}
