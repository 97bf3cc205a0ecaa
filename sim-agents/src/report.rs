//! Running whole episodes: [`run_episode`] and its [`EpisodeReport`].

use crate::action::ActionKind;
use crate::env::{Env, EnvOptions};
use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use sim_faults::{Episode, FaultScenario, LocalizationScores, VerdictSpan, remediation_verdict};
use std::collections::BTreeMap;

/// What one episode of one policy did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeReport {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Seed.
    pub seed: u64,
    /// Steps taken.
    pub steps: u32,
    /// Sum of the per-step environment rewards.
    pub return_: f64,
    /// Sum of each reward component over the episode.
    pub reward_components: BTreeMap<String, f64>,
    /// The sim-faults remediation verdict at the episode's end
    /// ([`sim_faults::remediation_verdict`] with windows counted from the first fault's start
    /// and verified at the last step): the W scrape windows before the end met the SLOs and
    /// the throughput requirement (and, where the scenario requires it, the faults were over).
    pub recovered: bool,
    /// When recovered: time from the first fault's start to the start of the final healthy run
    /// (the SLO-meeting windows that last until the end; where the faults must be over, no
    /// earlier than the end of the last one), s.
    pub time_to_recover_s: Option<f64>,
    /// The verdict's reason: which check failed (an SLO, throughput, a fault still acting), or
    /// how it recovered.
    pub verdict_reason: String,
    /// Service-level localization scores of the RobustScorer baseline
    /// ([`sim_faults::baseline::rank_services`]) on this episode's telemetry against its root
    /// causes: how well a standard metric-based method localizes what this policy's episode
    /// shows. `None` when no fault was injected.
    pub localization: Option<LocalizationScores>,
    /// Request-weighted mean of the entry service's per-scrape median latency, ms.
    pub latency_p50_ms: f64,
    /// Request-weighted mean of the entry service's per-scrape p99 latency, ms.
    pub latency_p99_ms: f64,
    /// Engine events processed.
    pub events: u64,
    /// The actions other than no-op: (time ns, canonical command).
    pub actions: Vec<(u64, String)>,
}

/// Runs one episode of `scenario` with `policy` from `seed` to its end (or step limit) and
/// judges it. Costs one extra run of the counterfactual (no faults) for the verdict.
///
/// Panics only if the scenario does not build (see [`Env::new`]).
pub fn run_episode(scenario: &FaultScenario, policy: &mut dyn Policy, seed: u64) -> EpisodeReport {
    run_episode_with(scenario, policy, seed, EnvOptions::default())
}

/// [`run_episode`] with environment options.
pub fn run_episode_with(
    scenario: &FaultScenario,
    policy: &mut dyn Policy,
    seed: u64,
    options: EnvOptions,
) -> EpisodeReport {
    run_episode_against(scenario, policy, seed, options, None)
}

/// [`run_episode_with`], judged against a counterfactual the caller already ran (the same
/// scenario and seed without faults, run at least as far as the episode; e.g. to its end with
/// `Episode::without_faults(scenario, seed)` and `run_to_end`), so that several policies on one
/// seed share one counterfactual run. `None` runs it.
pub fn run_episode_against(
    scenario: &FaultScenario,
    policy: &mut dyn Policy,
    seed: u64,
    options: EnvOptions,
    healthy: Option<&Episode>,
) -> EpisodeReport {
    let mut env = match Env::try_new(scenario.clone(), options) {
        Ok(e) => e,
        Err(e) => panic!("scenario does not build: {e}"),
    };
    let mut obs = env.reset(seed);
    let mut ret = 0.0;
    let mut comps: BTreeMap<String, f64> = BTreeMap::new();
    let mut actions = Vec::new();
    loop {
        let a = policy
            .act(std::slice::from_ref(&obs))
            .pop()
            .unwrap_or(crate::action::Action::NoOp);
        let t = env.episode().now();
        if a.kind() != ActionKind::NoOp {
            actions.push((t, a.to_command()));
        }
        let st = env.step(a);
        ret += st.reward.total;
        for (k, v) in &st.reward.components {
            *comps.entry(k.clone()).or_default() += v;
        }
        obs = st.observation;
        if st.terminated || st.truncated {
            break;
        }
    }
    // judged at the episode's end, on the windows from the first fault's start on
    let span = VerdictSpan::new(first_fault_start(env.episode()), env.episode().now());
    let v = match healthy {
        Some(h) => remediation_verdict(env.episode(), h, span),
        None => remediation_verdict(env.episode(), &env.counterfactual(), span),
    };
    let (p50, p99) = entry_latency(env.episode());
    let (truth, _, _) = sim_faults::root_causes(env.episode());
    let localization = (!truth.is_empty()).then(|| {
        sim_faults::localization_scores(&sim_faults::baseline::rank_services(env.episode()), &truth)
    });
    EpisodeReport {
        scenario: scenario.name.clone(),
        policy: policy.name().to_string(),
        seed,
        steps: env.steps(),
        return_: ret,
        reward_components: comps,
        recovered: v.recovered,
        time_to_recover_s: v.time_to_recover.map(|t| t as f64 / 1e9),
        verdict_reason: v.reason,
        localization,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        events: env.sim().counters().events,
        actions,
    }
}

/// Start of the first fault of an episode (its scheduled start if none was realised yet), ns.
pub fn first_fault_start(ep: &Episode) -> u64 {
    ep.injected()
        .iter()
        .map(|f| f.start)
        .min()
        .or_else(|| ep.scenario().faults.iter().map(|f| f.start.0).min())
        .unwrap_or(0)
}

/// Request-weighted means of the entry service's per-scrape p50 and p99, ms.
pub fn entry_latency(ep: &Episode) -> (f64, f64) {
    let sim = ep.sim();
    let sc = sim.scenario();
    let entry = sc
        .workload
        .first()
        .and_then(|w| sc.service_index(&w.entry))
        .unwrap_or(0);
    let (mut w, mut a, mut b) = (0.0, 0.0, 0.0);
    for s in &sim.telemetry().scrapes {
        if let Some(m) = s.services.get(entry) {
            w += m.rps;
            a += m.rps * m.p50_ms;
            b += m.rps * m.p99_ms;
        }
    }
    if w > 0.0 { (a / w, b / w) } else { (0.0, 0.0) }
}
