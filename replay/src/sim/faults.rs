//! Fault overlays on replayed traffic: labelled datasets from real traces.
//!
//! [`replay_with_faults`] wraps a scenario (typically inferred from the traces) and a
//! list of faults in a [`FaultScenario`], replays the traces into both the faulty
//! [`Episode`] and its counterfactual (same seed, no faults), runs both to the end and
//! labels the faulty run with [`Episode::ground_truth`]. The episode's own workloads are
//! switched off ([`replay_scenario`]): the traffic is the traces'.

use sim_core::Simulation;
use sim_core::scenario::Scenario;
use sim_faults::{AgentSettings, Episode, FaultScenario, FaultSpec, GroundTruth, RemediationSpec};

use super::ReplayError;
use super::drive::{ReplayOptions, ReplayStats, ReplayTarget, replay_into};
use super::infer::replay_scenario;
use crate::model::TraceSet;

impl ReplayTarget for Episode {
    fn sim(&self) -> &Simulation {
        Episode::sim(self)
    }
    fn sim_mut(&mut self) -> &mut Simulation {
        Episode::sim_mut(self)
    }
    fn advance_to(&mut self, t: u64) {
        self.run_until(t);
    }
}

/// The result of [`replay_with_faults`].
pub struct FaultReplay {
    /// The faulty episode, run to its end.
    pub episode: Episode,
    /// The counterfactual episode (no faults, same seed), run to its end.
    pub counterfactual: Episode,
    /// What the replay into the faulty episode did.
    pub stats: ReplayStats,
    /// What the replay into the counterfactual did.
    pub counterfactual_stats: ReplayStats,
    /// Labels of the faulty episode (root causes, fault types, blast radius, ...).
    pub labels: GroundTruth,
}

/// The fault scenario of a replay: `base` with its workloads switched off, plus `faults`.
pub fn fault_scenario(name: &str, base: &Scenario, faults: Vec<FaultSpec>) -> FaultScenario {
    FaultScenario {
        name: name.to_owned(),
        description: format!(
            "replayed traces on {} with {} faults",
            base.name,
            faults.len()
        ),
        base: replay_scenario(base),
        faults,
        agent: AgentSettings::default(),
        remediation: RemediationSpec::default(),
        dime_task: None,
    }
}

/// Replays `set` into `base` (e.g. from [`crate::sim::infer_scenario`]) with `faults`
/// overlaid, and into the counterfactual, for `seed`; returns both episodes and labels.
/// Episodes stop at the scenario's end: graphs arriving after it are not simulated.
pub fn replay_with_faults(
    set: &TraceSet,
    base: &Scenario,
    faults: Vec<FaultSpec>,
    opts: &ReplayOptions,
    seed: u64,
) -> Result<FaultReplay, ReplayError> {
    let sc = fault_scenario(&format!("{}-faults", base.name), base, faults);
    let mut episode = Episode::new(&sc, seed)?;
    let mut counterfactual = Episode::without_faults(&sc, seed)?;
    let stats = replay_into(&mut episode, set, opts)?;
    let counterfactual_stats = replay_into(&mut counterfactual, set, opts)?;
    episode.run_to_end();
    counterfactual.run_to_end();
    let labels = episode.ground_truth(&counterfactual);
    Ok(FaultReplay {
        episode,
        counterfactual,
        stats,
        counterfactual_stats,
        labels,
    })
}
