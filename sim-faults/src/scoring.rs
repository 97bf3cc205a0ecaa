//! Scores: localization (RCAEval's AC@k and Avg@k, MRR, fault-type accuracy) and the
//! remediation verdict (MicroRemed's execution-based check, made robust).

use crate::episode::Episode;
use crate::labels::GroundTruth;
use serde::{Deserialize, Serialize};
use sim_core::telemetry::Scrape;
use std::collections::BTreeMap;

/// Whether an episode recovered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The SLOs held for W consecutive windows with at least the required share of the healthy
    /// run's served throughput.
    pub recovered: bool,
    /// Start of the first qualifying run of windows (ns).
    pub recovered_at: Option<u64>,
    /// `recovered_at - since` (ns).
    pub time_to_recover: Option<u64>,
    /// Why (which check failed last, or how it recovered).
    pub reason: String,
}

fn served(s: &Scrape, service: &str) -> f64 {
    s.services
        .iter()
        .find(|m| m.name == service)
        .map(|m| m.rps * (1.0 - m.error_rate))
        .unwrap_or(0.0)
}

/// Judges remediation of `ep` from `since_ns` against `healthy` (its counterfactual, run at
/// least as far).
///
/// Recovered iff, in W consecutive scrape windows after `since_ns` (W and the ratio from the
/// scenario's [`crate::RemediationSpec`]), every SLO of the scenario holds in every window (for
/// an entry service, on the worse of the server-side and the client-side metrics:
/// [`crate::effective_service_metrics`]), and
/// over those W windows every service that served at least 1 request/s in the healthy run
/// served at least `throughput_ratio` of the healthy run's successful requests. Served means
/// answered without error, so deleting a deployment, scaling to zero or throttling ingress never
/// counts (the throughput check fails), and pods merely Running do not either (the SLOs and
/// throughput are measured on requests).
pub fn remediation_verdict(ep: &Episode, healthy: &Episode, since_ns: u64) -> Verdict {
    let sc = ep.scenario();
    let w = sc.remediation.windows.max(1) as usize;
    let ratio = sc.remediation.throughput_ratio;
    let interval = sc.base.scrape_interval.0;
    let hmap: BTreeMap<u64, &Scrape> = healthy
        .sim()
        .telemetry()
        .scrapes
        .iter()
        .map(|s| (s.time, s))
        .collect();
    let pairs: Vec<(&Scrape, &Scrape)> = ep
        .sim()
        .telemetry()
        .scrapes
        .iter()
        .filter(|s| s.time > since_ns)
        .filter_map(|s| hmap.get(&s.time).map(|h| (s, *h)))
        .collect();
    if pairs.len() < w {
        return Verdict {
            recovered: false,
            recovered_at: None,
            time_to_recover: None,
            reason: format!(
                "only {} scrape windows after {} s to judge (need {w})",
                pairs.len(),
                since_ns as f64 / 1e9
            ),
        };
    }
    let slo_ok = |s: &Scrape| -> Result<(), String> {
        for slo in &sc.base.slos {
            let Some(m) = s.services.iter().find(|m| m.name == slo.service) else {
                continue;
            };
            // entry services: the worse of the server-side and the client-side view
            let m = &crate::labels::effective_service_metrics(s, m);
            if let Some(l) = slo.latency_p99
                && m.p99_ms > l.0 as f64 / 1e6
            {
                return Err(format!(
                    "{} p99 {:.1} ms > {:.1} ms",
                    slo.service,
                    m.p99_ms,
                    l.0 as f64 / 1e6
                ));
            }
            if let Some(e) = slo.error_rate
                && m.error_rate > e
            {
                return Err(format!(
                    "{} error rate {:.3} > {e}",
                    slo.service, m.error_rate
                ));
            }
        }
        Ok(())
    };
    let services: Vec<String> = sc.base.services.iter().map(|s| s.name.clone()).collect();
    let mut last_reason = String::from("no window qualified");
    let mut run_start = 0usize;
    let mut run_len = 0usize;
    for (k, (s, _)) in pairs.iter().enumerate() {
        match slo_ok(s) {
            Ok(()) => {
                if run_len == 0 {
                    run_start = k;
                }
                run_len += 1;
            }
            Err(r) => {
                last_reason = format!("SLO violated at {} s: {r}", s.time as f64 / 1e9);
                run_len = 0;
                continue;
            }
        }
        if run_len >= w {
            // throughput over the last w windows of the run
            let block = &pairs[k + 1 - w..=k];
            let mut ok = true;
            for name in &services {
                let hs: f64 = block.iter().map(|(_, h)| served(h, name)).sum();
                if hs < w as f64 {
                    continue;
                }
                let es: f64 = block.iter().map(|(e, _)| served(e, name)).sum();
                if es < ratio * hs {
                    last_reason = format!(
                        "{name} served {:.1} req/s vs {:.1} healthy (< {:.0}%) in the windows ending {} s",
                        es / w as f64,
                        hs / w as f64,
                        ratio * 100.0,
                        s.time as f64 / 1e9
                    );
                    ok = false;
                    break;
                }
            }
            if ok {
                let first = block[0].0.time.saturating_sub(interval).max(since_ns);
                let _ = run_start;
                return Verdict {
                    recovered: true,
                    recovered_at: Some(first),
                    time_to_recover: Some(first.saturating_sub(since_ns)),
                    reason: format!(
                        "SLOs held and throughput >= {:.0}% of healthy for {w} windows from {} s",
                        ratio * 100.0,
                        first as f64 / 1e9
                    ),
                };
            }
        }
    }
    Verdict {
        recovered: false,
        recovered_at: None,
        time_to_recover: None,
        reason: last_reason,
    }
}

/// Localization scores over one or more cases (a single case has `cases == 1`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalizationScores {
    /// Number of cases.
    pub cases: u32,
    /// AC@k for k = 1..=5 (index k-1): RCAEval's definition, the share of the true root causes
    /// found in the top k, `|truth ∩ top_k| / min(k, |truth|)`, averaged over cases.
    pub ac_at: Vec<f64>,
    /// Avg@5 = mean of AC@1..AC@5 (RCAEval).
    pub avg_at_5: f64,
    /// Mean reciprocal rank of the first true root cause (0 when none is ranked).
    pub mrr: f64,
}

/// Scores one case: a ranked candidate list (best first) against the true root causes.
///
/// ```
/// use sim_faults::localization_scores;
/// let s = localization_scores(&["b".into(), "a".into()], &["a".into()]);
/// assert_eq!(s.ac_at[0], 0.0);
/// assert_eq!(s.ac_at[1], 1.0);
/// assert_eq!(s.mrr, 0.5);
/// ```
pub fn localization_scores(ranked: &[String], truth: &[String]) -> LocalizationScores {
    let mut ac = vec![0.0; 5];
    if !truth.is_empty() {
        for (k, a) in ac.iter_mut().enumerate() {
            let top = &ranked[..ranked.len().min(k + 1)];
            let hits = truth.iter().filter(|t| top.contains(t)).count();
            *a = hits as f64 / (k + 1).min(truth.len()) as f64;
        }
    }
    let mrr = ranked
        .iter()
        .position(|r| truth.contains(r))
        .map(|p| 1.0 / (p + 1) as f64)
        .unwrap_or(0.0);
    LocalizationScores {
        cases: 1,
        avg_at_5: ac.iter().sum::<f64>() / 5.0,
        ac_at: ac,
        mrr,
    }
}

impl LocalizationScores {
    /// The mean over cases (weighted by their case counts).
    pub fn mean(all: &[LocalizationScores]) -> LocalizationScores {
        let n: u32 = all.iter().map(|s| s.cases).sum();
        if n == 0 {
            return LocalizationScores {
                cases: 0,
                ac_at: vec![0.0; 5],
                avg_at_5: 0.0,
                mrr: 0.0,
            };
        }
        let wsum = |f: &dyn Fn(&LocalizationScores) -> f64| {
            all.iter().map(|s| f(s) * s.cases as f64).sum::<f64>() / n as f64
        };
        let ac_at = (0..5)
            .map(|k| wsum(&|s| s.ac_at.get(k).copied().unwrap_or(0.0)))
            .collect();
        LocalizationScores {
            cases: n,
            ac_at,
            avg_at_5: wsum(&|s| s.avg_at_5),
            mrr: wsum(&|s| s.mrr),
        }
    }
}

/// Share of cases whose predicted fault type equals the true one (first true type).
pub fn fault_type_accuracy(pairs: &[(String, String)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.iter().filter(|(p, t)| p == t).count() as f64 / pairs.len() as f64
}

/// Localization of one episode at service and pod level, and whether the fault type was right.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalizationReport {
    /// Service level.
    pub service: LocalizationScores,
    /// Pod level.
    pub pod: LocalizationScores,
    /// The predicted fault type is one of the true ones (None when no type was predicted).
    pub fault_type_correct: Option<bool>,
}

/// Scores ranked services and pods and a predicted fault type against an episode's ground truth.
pub fn score_localization(
    gt: &GroundTruth,
    ranked_services: &[String],
    ranked_pods: &[String],
    fault_type: Option<&str>,
) -> LocalizationReport {
    LocalizationReport {
        service: localization_scores(ranked_services, &gt.root_cause_services),
        pod: localization_scores(ranked_pods, &gt.root_cause_pods),
        fault_type_correct: fault_type.map(|t| gt.fault_types.iter().any(|x| x == t)),
    }
}
