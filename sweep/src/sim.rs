//! The real episode runner on top of `sim_agents::run_episode`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sim_core::time::SimDuration;
use sim_faults::FaultScenario;

use crate::grid::EpisodeJob;
use crate::row::EpisodeRow;
use crate::runner::EpisodeRunner;

/// Runs episodes with the simulator: loads the scenario (built-in name or TOML path) once,
/// applies the job's parameter overrides, builds the policy with the episode seed, and calls
/// `sim_agents::run_episode`. Overrides understood: `max_steps`, `decision_interval_s`,
/// `duration_s`, `remediation_windows`, `throughput_ratio`.
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

/// Applies parameter overrides to a scenario.
pub fn apply_overrides(
    sc: &mut FaultScenario,
    params: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in params {
        let f = || v.parse::<f64>().map_err(|e| format!("param {k}={v}: {e}"));
        let secs = |x: f64| {
            if x.is_finite() && x > 0.0 {
                Ok(SimDuration((x * 1e9).round() as u64))
            } else {
                Err(format!("param {k}={v}: need a positive number of seconds"))
            }
        };
        match k.as_str() {
            "max_steps" => {
                sc.agent.max_steps = v.parse().map_err(|e| format!("param {k}={v}: {e}"))?
            }
            "decision_interval_s" => sc.agent.decision_interval = secs(f()?)?,
            "duration_s" => sc.base.duration = secs(f()?)?,
            "remediation_windows" => {
                sc.remediation.windows = v.parse().map_err(|e| format!("param {k}={v}: {e}"))?
            }
            "throughput_ratio" => sc.remediation.throughput_ratio = f()?,
            _ => return Err(format!("unknown parameter {k:?}")),
        }
    }
    Ok(())
}

impl EpisodeRunner for SimRunner {
    fn check(&self, scenario: &str, policy: &str) -> Result<(), String> {
        self.scenario(scenario)?;
        sim_agents::policy_by_name(policy, 0).map_err(|e| e.to_string())?;
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
            localization,
            latency_p50_ms: rep.latency_p50_ms,
            latency_p99_ms: rep.latency_p99_ms,
            events: rep.events,
            wall_s: 0.0,
        })
    }
}
