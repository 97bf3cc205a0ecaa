//! One result row per episode.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::grid::EpisodeKey;

/// The result of one episode: one line of `episodes.jsonl`, one row of `episodes.parquet`.
///
/// Every field but [`EpisodeRow::wall_s`] is a pure function of (scenario, policy, seed,
/// parameters): it is the same whatever the thread count, order of completion or sharding.
/// `wall_s` is the measured wall-clock time of the episode and is the last field of each JSON
/// line; [`crate::compare_dirs`] ignores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRow {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Episode seed.
    pub seed: u64,
    /// Index of the parameter override in the sweep's grid.
    pub override_index: u32,
    /// The parameter overrides applied (empty when none).
    pub params: BTreeMap<String, String>,
    /// Agent decision steps taken.
    pub steps: u32,
    /// The episode return (sum of rewards).
    #[serde(rename = "return", deserialize_with = "f64_or_nan")]
    pub return_: f64,
    /// The return split by reward component (summed over the episode).
    pub reward_components: BTreeMap<String, f64>,
    /// Whether the system recovered (remediation verdict).
    pub recovered: bool,
    /// Time from the fault to recovery, seconds; `None` when not recovered.
    pub time_to_recover_s: Option<f64>,
    /// Why the verdict said what it did: the check that failed (an SLO, throughput, a fault
    /// still acting) or how the system recovered. Empty in rows written before it existed.
    #[serde(default)]
    pub verdict_reason: String,
    /// Localization scores (`ac@1`..`ac@5`, `avg@5`, `mrr`) of the RobustScorer baseline on
    /// the episode's telemetry (`sim_faults::baseline`); `None` without an injected fault.
    pub localization: Option<BTreeMap<String, f64>>,
    /// Median end-to-end latency over the episode, milliseconds.
    #[serde(deserialize_with = "f64_or_nan")]
    pub latency_p50_ms: f64,
    /// 99th percentile end-to-end latency over the episode, milliseconds.
    #[serde(deserialize_with = "f64_or_nan")]
    pub latency_p99_ms: f64,
    /// Simulated events processed.
    pub events: u64,
    /// Wall-clock seconds the episode took (the one non-deterministic column).
    #[serde(deserialize_with = "f64_or_nan")]
    pub wall_s: f64,
}

impl EpisodeRow {
    /// The row's episode identity.
    pub fn key(&self) -> EpisodeKey {
        EpisodeKey {
            scenario: self.scenario.clone(),
            policy: self.policy.clone(),
            seed: self.seed,
            override_index: self.override_index,
        }
    }

    /// The row as one JSON line (no trailing newline). Field order is fixed by the struct and
    /// maps are sorted, so equal rows give equal bytes.
    pub fn to_json_line(&self) -> String {
        // Serializing a struct of plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The JSON line without `wall_s`, for comparing outputs byte for byte.
    pub fn deterministic_json(&self) -> String {
        let mut r = self.clone();
        r.wall_s = 0.0;
        r.to_json_line()
    }
}

/// serde_json writes non-finite floats as `null`; read them back as NaN instead of failing.
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
