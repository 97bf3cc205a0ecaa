//! A root-cause localization baseline: BARO's RobustScorer, the ranking step of BARO (Pham,
//! Ha and Zhang, FSE 2024) as RCAEval runs it.
//!
//! Every service metric is scaled against its own values before the injection,
//! `(x - median) / IQR` (scikit-learn's `RobustScaler`: an IQR of 0 scales by 1), and a
//! service scores the largest absolute scaled value of any of its metrics after the
//! injection. Services are ranked by that score, highest first (ties by name), so a ranking
//! can be scored with [`crate::localization_scores`] against the episode's root causes.
//!
//! The metrics are the ones [`crate::export`] writes for RCAEval: CPU and memory utilisation,
//! p50 and p99 latency and error rate of each service, as its clients saw them where it is an
//! entry point ([`crate::effective_service_metrics`]). Windows with no completed request have
//! no latency and are skipped for the latency metrics.
//!
//! ```
//! use sim_faults::baseline::{robust_scores, BaselineWindow};
//! use sim_core::telemetry::{Scrape, ServiceMetrics};
//! let m = |name: &str, id: u32, p99: f64| ServiceMetrics {
//!     service: id, name: name.into(), ready_pods: 1, desired_replicas: 1, config_version: 0,
//!     rps: 100.0, errors_per_s: 0.0, error_rate: 0.0, p50_ms: p99 / 2.0, p90_ms: p99,
//!     p99_ms: p99, cpu_utilization: 0.3, memory_utilization: 0.4, queue_depth: 0,
//!     in_flight: 0, restarts: 0,
//! };
//! let scrape = |t: u64, slow: f64| Scrape {
//!     time: t * 1_000_000_000,
//!     pods: vec![],
//!     services: vec![m("front", 0, 20.0 + (t % 3) as f64), m("db", 1, 5.0 + (t % 2) as f64 * slow)],
//!     nodes: vec![],
//!     clients: vec![],
//! };
//! // db's latency jumps after the injection at t = 10 s
//! let scrapes: Vec<Scrape> = (1..=20).map(|t| scrape(t, if t > 10 { 40.0 } else { 1.0 })).collect();
//! let w = BaselineWindow { inject_ns: 10_000_000_000, before_ns: 60_000_000_000, after_ns: 60_000_000_000 };
//! let ranked = robust_scores(&scrapes, &w);
//! assert_eq!(ranked[0].service, "db");
//! ```

use crate::episode::Episode;
use crate::labels::effective_service_metrics;
use serde::{Deserialize, Serialize};
use sim_core::telemetry::Scrape;
use std::collections::BTreeMap;

/// The metrics scored, as named in [`ServiceScore::metric`].
pub const BASELINE_METRICS: [&str; 5] = ["cpu", "mem", "latency_p50", "latency_p99", "error_rate"];

/// The time windows of the baseline: normal = scrape windows ending in
/// `(inject_ns - before_ns, inject_ns]`, anomalous = ending in `(inject_ns, inject_ns + after_ns]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineWindow {
    /// Injection time, ns.
    pub inject_ns: u64,
    /// Length of the normal period before it, ns.
    pub before_ns: u64,
    /// Length of the anomalous period after it, ns.
    pub after_ns: u64,
}

/// One service's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceScore {
    /// Service name.
    pub service: String,
    /// Largest absolute robust-scaled value of its metrics after the injection (0 when a
    /// period has no window).
    pub score: f64,
    /// The metric that gave it (one of [`BASELINE_METRICS`]; empty when the score is 0).
    pub metric: String,
}

/// Scores every service seen in `scrapes` and ranks them, highest first (ties by name).
pub fn robust_scores<'a>(
    scrapes: impl IntoIterator<Item = &'a Scrape>,
    w: &BaselineWindow,
) -> Vec<ServiceScore> {
    let lo = w.inject_ns.saturating_sub(w.before_ns);
    let hi = w.inject_ns.saturating_add(w.after_ns);
    // service -> metric -> (normal values, anomalous values)
    type Series = [(Vec<f64>, Vec<f64>); BASELINE_METRICS.len()];
    let mut by_service: BTreeMap<String, Series> = BTreeMap::new();
    for s in scrapes {
        let normal = s.time > lo && s.time <= w.inject_ns;
        let anomalous = s.time > w.inject_ns && s.time <= hi;
        if !normal && !anomalous {
            continue;
        }
        for m in &s.services {
            let e = effective_service_metrics(s, m);
            let served = e.rps > 0.0;
            let values = [
                Some(e.cpu_utilization),
                Some(e.memory_utilization),
                served.then_some(e.p50_ms),
                served.then_some(e.p99_ms),
                Some(e.error_rate),
            ];
            let series = by_service.entry(m.name.clone()).or_default();
            for (k, v) in values.into_iter().enumerate() {
                let Some(v) = v.filter(|v| v.is_finite()) else {
                    continue;
                };
                if normal {
                    series[k].0.push(v);
                } else {
                    series[k].1.push(v);
                }
            }
        }
    }
    let mut out: Vec<ServiceScore> = by_service
        .into_iter()
        .map(|(service, series)| {
            let mut best = ServiceScore {
                service,
                score: 0.0,
                metric: String::new(),
            };
            for (k, (normal, anomalous)) in series.iter().enumerate() {
                if normal.is_empty() {
                    continue;
                }
                let (median, iqr) = median_iqr(normal);
                let scale = if iqr > 0.0 { iqr } else { 1.0 };
                for &x in anomalous {
                    let z = ((x - median) / scale).abs();
                    if z > best.score {
                        best.score = z;
                        best.metric = BASELINE_METRICS[k].to_string();
                    }
                }
            }
            best
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.service.cmp(&b.service))
    });
    out
}

/// The baseline ranking of an episode's services: windows of 5 minutes before the first
/// injected fault (or all there is) and from it to the episode's current time. Empty when no
/// fault was injected.
pub fn rank_services(ep: &Episode) -> Vec<String> {
    let Some(inject_ns) = ep.injected().iter().map(|f| f.start).min() else {
        return vec![];
    };
    let w = BaselineWindow {
        inject_ns,
        before_ns: 300_000_000_000,
        after_ns: ep.now().saturating_sub(inject_ns),
    };
    robust_scores(&ep.sim().telemetry().scrapes, &w)
        .into_iter()
        .map(|s| s.service)
        .collect()
}

/// Median and interquartile range with linear interpolation between order statistics
/// (numpy's default, which scikit-learn's `RobustScaler` uses). `values` must not be empty.
fn median_iqr(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let i = pos.floor() as usize;
        let j = (i + 1).min(v.len() - 1);
        v[i] + (v[j] - v[i]) * (pos - i as f64)
    };
    (q(0.5), q(0.75) - q(0.25))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_and_iqr_match_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [25, 50, 75]) = [2, 3, 4]
        assert_eq!(median_iqr(&[10.0, 1.0, 3.0, 2.0, 4.0]), (3.0, 2.0));
        // [1, 2, 3, 4] -> [1.75, 2.5, 3.25]
        assert_eq!(median_iqr(&[4.0, 3.0, 2.0, 1.0]), (2.5, 1.5));
        assert_eq!(median_iqr(&[7.0]), (7.0, 0.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Median within [min, max], IQR >= 0, for any finite values.
        #[test]
        fn median_iqr_bounds(v in proptest::collection::vec(-1e12f64..1e12, 1..50)) {
            let (m, iqr) = median_iqr(&v);
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(m >= lo && m <= hi);
            prop_assert!(iqr >= 0.0);
        }
    }
}
