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
    /// The W scrape windows just before the verification time ([`VerdictSpan::at`]), all
    /// starting at or after [`VerdictSpan::from`], met every SLO, and over them every service
    /// served at least the required share of the healthy run's successful requests; and, where
    /// the scenario requires it ([`crate::RemediationSpec::require_fault_cleared`]), every
    /// injected fault was over before those windows.
    pub recovered: bool,
    /// When recovered: the start (ns) of the final healthy run, the longest run of consecutive
    /// SLO-meeting windows that lasts until the verification time, among the windows that start
    /// at or after [`VerdictSpan::fault_start`] (no later than `fault_start`'s own). It can be
    /// earlier than [`VerdictSpan::from`] when the SLOs already held before it, and is
    /// `fault_start` when they held throughout. Where the faults must be over, the end of the
    /// last one if that is later.
    pub recovered_at: Option<u64>,
    /// When recovered: `recovered_at - fault_start` (ns).
    pub time_to_recover: Option<u64>,
    /// Why (the check that failed, or how it recovered).
    pub reason: String,
}

/// The times (ns of simulated time) a remediation verdict reads.
///
/// A scrape window is the interval `(t - scrape_interval, t]` of the scrape at `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictSpan {
    /// Start of the fault: the time to recover is measured from here, and the final healthy
    /// run is not traced back past it.
    pub fault_start: u64,
    /// Windows that start before this time do not count toward recovery: the time of the first
    /// command an agent executed (`fault_start` where no agent acts, e.g. a fault that ends on
    /// its own).
    pub from: u64,
    /// Verification time: the W windows that end at or before it, the last of them ending
    /// within one scrape interval of it, are the ones judged.
    pub at: u64,
}

impl VerdictSpan {
    /// A span whose windows count from the fault's start (`from = fault_start`), verified at `at`.
    pub fn new(fault_start: u64, at: u64) -> VerdictSpan {
        VerdictSpan {
            fault_start,
            from: fault_start,
            at,
        }
    }

    /// The same span with windows counting only from `from` on (e.g. the first command).
    pub fn with_from(self, from: u64) -> VerdictSpan {
        VerdictSpan { from, ..self }
    }
}

fn served(s: &Scrape, service: &str) -> f64 {
    s.services
        .iter()
        .find(|m| m.name == service)
        .map(|m| m.rps * (1.0 - m.error_rate))
        .unwrap_or(0.0)
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Whether a service served enough: `served` and `healthy` are sums of per-window rates
/// (req/s) over windows of `window_s` seconds, so `rate sum * window_s` is a request count.
/// Enough is `ratio` of the healthy run's count less two Poisson standard deviations of it:
/// 14 requests against 15 at 1.5 req/s are noise, not a throughput loss.
fn served_enough(served: f64, healthy: f64, ratio: f64, window_s: f64) -> bool {
    let noise = 2.0 * (healthy * window_s).sqrt() / window_s;
    served >= ratio * healthy - noise
}

/// Judges remediation of `ep` against `healthy` (its counterfactual, run at least to
/// `span.at`) at the verification time `span.at`.
///
/// Recovered iff the W scrape windows just before `span.at` (W and the ratio from the
/// scenario's [`crate::RemediationSpec`]; the last W windows that end at or before `span.at`,
/// the last one ending within one scrape interval of it) all start at or after `span.from`,
/// every SLO of the scenario holds in each of them (for an entry service, on the worse of the
/// server-side and the client-side metrics: [`crate::effective_service_metrics`]), and over
/// those W windows every service that served at least 1 request/s in the healthy run served at
/// least `throughput_ratio` of the healthy run's successful requests, less two Poisson standard
/// deviations of that count (`2 sqrt(n)` requests: at 1.5 req/s, 14 requests against the
/// healthy run's 15 are noise, not a loss; at 100 req/s the bar is 88.7%). A healthy stretch that
/// ended before `span.at`, or that lies before `span.from`, does not count. Served means
/// answered without error, so deleting a deployment, scaling to zero or throttling ingress never
/// counts (the throughput check fails), and pods merely Running do not either (the SLOs and
/// throughput are measured on requests).
///
/// With [`crate::RemediationSpec::require_fault_cleared`] (the MicroRemed scenarios), every
/// fault injected by `span.at` must also be over ([`crate::InjectedFault::end`]) no later than
/// the start of those W windows: a fault that no longer breaks an SLO because it was worked
/// around (traffic moved off a stressed pod, retries hiding a leaking one) still counts as
/// not remediated.
///
/// When recovered, the time to recover is measured from `span.fault_start` to the start of the
/// final healthy run: the consecutive windows meeting every SLO that end with the verification
/// windows, traced back to the fault's start at most (see [`Verdict::recovered_at`]); with
/// `require_fault_cleared`, to the end of the last fault if that is later.
pub fn remediation_verdict(ep: &Episode, healthy: &Episode, span: VerdictSpan) -> Verdict {
    let sc = ep.scenario();
    let w = sc.remediation.windows.max(1) as usize;
    let ratio = sc.remediation.throughput_ratio;
    let interval = sc.base.scrape_interval.0.max(1);
    let not_recovered = |reason: String| Verdict {
        recovered: false,
        recovered_at: None,
        time_to_recover: None,
        reason,
    };
    let hmap: BTreeMap<u64, &Scrape> = healthy
        .sim()
        .telemetry()
        .scrapes
        .iter()
        .map(|s| (s.time, s))
        .collect();
    // the windows after the fault's start and up to the verification time, with the healthy
    // run's window of the same time
    let pairs: Vec<(&Scrape, &Scrape)> = ep
        .sim()
        .telemetry()
        .scrapes
        .iter()
        .filter(|s| s.time.saturating_sub(interval) >= span.fault_start && s.time <= span.at)
        .filter_map(|s| hmap.get(&s.time).map(|h| (s, *h)))
        .collect();
    let Some(last) = pairs.last().map(|(s, _)| s.time) else {
        return not_recovered(format!(
            "no scrape window between {} s and {} s to judge (need {w})",
            secs(span.fault_start.max(span.from)),
            secs(span.at)
        ));
    };
    if last + interval <= span.at {
        return not_recovered(format!(
            "no scrape window ends within one interval before the verification time {} s (the last judged ends at {} s)",
            secs(span.at),
            secs(last)
        ));
    }
    let counted = pairs
        .iter()
        .filter(|(s, _)| s.time.saturating_sub(interval) >= span.from)
        .count();
    if counted < w {
        return not_recovered(format!(
            "only {counted} scrape windows between {} s and {} s to judge (need {w})",
            secs(span.from.max(span.fault_start)),
            secs(span.at)
        ));
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
    // the final healthy run: consecutive SLO-meeting windows ending with the last one
    let mut run_start = pairs.len();
    let mut violation = None;
    for (k, (s, _)) in pairs.iter().enumerate().rev() {
        match slo_ok(s) {
            Ok(()) => run_start = k,
            Err(r) => {
                violation = Some(format!("SLO violated at {} s: {r}", secs(s.time)));
                break;
            }
        }
    }
    let block = &pairs[pairs.len() - w..];
    if pairs.len() - run_start < w {
        return not_recovered(format!(
            "{} (in the {w} windows before the verification time {} s)",
            violation.unwrap_or_default(),
            secs(span.at)
        ));
    }
    for name in sc.base.services.iter().map(|s| s.name.as_str()) {
        let hs: f64 = block.iter().map(|(_, h)| served(h, name)).sum();
        if hs < w as f64 {
            continue;
        }
        let es: f64 = block.iter().map(|(e, _)| served(e, name)).sum();
        if !served_enough(es, hs, ratio, secs(interval)) {
            return not_recovered(format!(
                "{name} served {:.1} req/s vs {:.1} healthy (< {:.0}%) in the {w} windows before the verification time {} s",
                es / w as f64,
                hs / w as f64,
                ratio * 100.0,
                secs(span.at)
            ));
        }
    }
    let first = pairs[run_start]
        .0
        .time
        .saturating_sub(interval)
        .max(span.fault_start);
    let since = if first == span.fault_start {
        format!("throughout since the fault's start at {} s", secs(first))
    } else {
        format!("since {} s", secs(first))
    };
    let mut reason = format!(
        "SLOs held and throughput >= {:.0}% of healthy in the {w} windows before {} s; SLOs held {since}",
        ratio * 100.0,
        secs(span.at),
    );
    let mut recovered_at = first;
    if sc.remediation.require_fault_cleared {
        // every fault injected by the verification time is over before the judged windows
        let judged_from = block[0].0.time.saturating_sub(interval);
        let mut last_end = None;
        for f in ep.injected().iter().filter(|f| f.start <= span.at) {
            match f.end {
                Some(e) if e <= judged_from => last_end = last_end.max(Some(e)),
                _ => {
                    let on = if !f.pods.is_empty() {
                        f.pods.join(", ")
                    } else if !f.nodes.is_empty() {
                        f.nodes.join(", ")
                    } else {
                        f.zone
                            .clone()
                            .or_else(|| f.service.clone())
                            .unwrap_or_else(|| "its targets".into())
                    };
                    return not_recovered(format!(
                        "fault {} ({}) still acts on {on} at {} s (the scenario requires its faults to be over: ended, rolled back, or their target pods replaced)",
                        f.id,
                        f.fault_type,
                        secs(judged_from)
                    ));
                }
            }
        }
        if let Some(e) = last_end {
            if e > recovered_at {
                recovered_at = e;
                reason.push_str(&format!("; the faults were over at {} s", secs(e)));
            } else {
                reason.push_str(&format!("; the faults were over by {} s", secs(e)));
            }
        }
    }
    Verdict {
        recovered: true,
        recovered_at: Some(recovered_at),
        time_to_recover: Some(recovered_at - span.fault_start),
        reason,
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

#[cfg(test)]
mod tests {
    use super::served_enough;

    #[test]
    fn throughput_noise_of_small_counts_is_not_a_loss() {
        // 10 windows of 1 s at 1.5 req/s: 14 requests against 15 (93%) is noise
        assert!(served_enough(14.0, 15.0, 0.95, 1.0));
        // ... but none at all is a loss
        assert!(!served_enough(5.0, 15.0, 0.95, 1.0));
        // at 100 req/s (1,000 requests) the bar is 950 - 63 = 887
        assert!(served_enough(890.0, 1000.0, 0.95, 1.0));
        assert!(!served_enough(880.0, 1000.0, 0.95, 1.0));
        // a throttle to 0.8 never passes at DIME's rates (200 req/s)
        assert!(!served_enough(1600.0, 2000.0, 0.95, 1.0));
        // 10 s windows: the rate sums are 10x smaller than the counts
        assert!(served_enough(89.0, 100.0, 0.95, 10.0));
        assert!(!served_enough(88.0, 100.0, 0.95, 10.0));
    }
}
