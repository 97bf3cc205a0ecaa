//! Ground truth of an episode: the injected faults, root causes at service, pod and node level,
//! the fault types, the first-symptom time, the blast radius and the propagation edges.
//!
//! The blast radius is measured against a counterfactual run of the same scenario and seed
//! without the faults ([`crate::Episode::without_faults`]). Both runs draw arrivals and service
//! demands from the same random streams (common random numbers), so a service the fault does
//! not reach behaves the same in both, and a deviation is the fault's doing. A service is in
//! the blast radius when, in at least `max(2, 5%)` of the scrape windows after the first
//! injection, its p99 latency exceeds 1.5x the counterfactual's plus 5 ms, or its error rate
//! exceeds the counterfactual's by 5 points, or its throughput falls below 80% of the
//! counterfactual's (when that is at least 1 request/s).
//!
//! For an entry service (one a workload enters at) the SLIs are the worse of the server-side
//! service metrics and the client-side metrics of the workloads entering there
//! ([`sim_core::telemetry::Scrape::client_view`]): the error rate and p99 latency count as the
//! clients saw them too, so requests that never reached a server (refused for lack of a ready
//! pod, dropped by a partition and timed out at the client) still violate the SLOs. This holds
//! for the first symptom, the deviations (blast radius) and the remediation verdict.

use crate::episode::{Episode, InjectedFault};
use crate::fault::FaultKind;
use serde::{Deserialize, Serialize};
use sim_core::telemetry::{Scrape, ServiceMetrics};
use std::collections::BTreeMap;

/// How one service's SLIs deviated from the counterfactual.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDeviation {
    /// The service.
    pub service: String,
    /// Windows (after the first injection) compared.
    pub windows: u32,
    /// Windows in which an SLI deviated beyond the threshold.
    pub deviating_windows: u32,
    /// Largest p99 ratio faulty / counterfactual.
    pub max_p99_ratio: f64,
    /// Largest error-rate increase (absolute).
    pub max_error_increase: f64,
    /// Smallest throughput ratio faulty / counterfactual (windows with counterfactual rps >= 1).
    pub min_throughput_ratio: f64,
    /// First deviating window end (ns).
    pub first_deviation: Option<u64>,
}

/// A propagation edge: trouble went from `from` (the callee) to `to` (its caller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropagationEdge {
    /// Callee (cause side).
    pub from: String,
    /// Caller (effect side).
    pub to: String,
    /// Sampled failed spans of `from` called by `to` after the first injection.
    pub error_spans: u64,
    /// Evidence: `spans` (failed or slowed spans seen on the edge) or `topology` (both ends
    /// deviated and the edge is in the call graph, but no sampled span showed it).
    pub evidence: String,
}

/// Ground truth of one episode (serialised as `labels.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// DIME task, if any.
    pub dime_task: Option<String>,
    /// Each injected fault: id, kind, parameters, targets, start, end.
    pub faults: Vec<InjectedFault>,
    /// Root-cause services.
    pub root_cause_services: Vec<String>,
    /// Root-cause pods.
    pub root_cause_pods: Vec<String>,
    /// Root-cause nodes.
    pub root_cause_nodes: Vec<String>,
    /// Fault types (`cpu-stress`, ...), one per fault.
    pub fault_types: Vec<String>,
    /// First scrape window end (ns) at or after the first injection in which an SLO of the
    /// scenario was violated (and not in the counterfactual).
    pub first_symptom: Option<u64>,
    /// Which objective: `<service> latency_p99` or `<service> error_rate`.
    pub first_symptom_slo: Option<String>,
    /// Services whose SLIs deviated beyond the threshold (see the module docs).
    pub blast_radius: Vec<String>,
    /// Per-service deviation measures (every service).
    pub deviations: Vec<ServiceDeviation>,
    /// Propagation edges among the root causes and the blast radius.
    pub propagation: Vec<PropagationEdge>,
    /// Time both runs had reached (ns).
    pub observed_until: u64,
}

/// The SLIs of service metrics `m` in scrape `s`, worsened by the client-side view when `m`
/// is an entry service: `error_rate` and `p99_ms` become the larger of the server's and the
/// clients', and `rps` (and `errors_per_s`) the clients' when the server completed nothing, so
/// an entry service with no ready pods still counts as having traffic. Other fields are the
/// server's.
///
/// ```
/// use sim_core::telemetry::Scrape;
/// let s = Scrape { time: 0, pods: vec![], services: vec![], nodes: vec![], clients: vec![] };
/// assert!(s.client_view(0).is_none());
/// ```
pub fn effective_service_metrics(s: &Scrape, m: &ServiceMetrics) -> ServiceMetrics {
    let mut out = m.clone();
    if let Some(c) = s.client_view(m.service) {
        out.error_rate = out.error_rate.max(c.error_rate);
        out.p99_ms = out.p99_ms.max(c.p99_ms);
        if out.rps <= 0.0 {
            out.rps = c.rps;
            out.errors_per_s = c.errors as f64 * c.rps / c.completed.max(1) as f64;
        }
    }
    out
}

fn deviates(f: &ServiceMetrics, c: &ServiceMetrics) -> (bool, f64, f64, Option<f64>) {
    let ratio = if c.p99_ms > 0.0 {
        f.p99_ms / c.p99_ms
    } else if f.p99_ms > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let lat = f.p99_ms > 1.5 * c.p99_ms + 5.0;
    let err_inc = f.error_rate - c.error_rate;
    let err = err_inc > 0.05;
    let thr = if c.rps >= 1.0 {
        Some(f.rps / c.rps)
    } else {
        None
    };
    let drop = thr.is_some_and(|r| r < 0.8);
    (lat || err || drop, ratio, err_inc, thr)
}

fn slo_violation(sc: &crate::FaultScenario, s: &Scrape) -> Option<String> {
    for slo in &sc.base.slos {
        let Some(m) = s.services.iter().find(|m| m.name == slo.service) else {
            continue;
        };
        let m = &effective_service_metrics(s, m);
        if let Some(l) = slo.latency_p99
            && m.p99_ms > l.0 as f64 / 1e6
        {
            return Some(format!("{} latency_p99", slo.service));
        }
        if let Some(e) = slo.error_rate
            && m.rps > 0.0
            && m.error_rate > e
        {
            return Some(format!("{} error_rate", slo.service));
        }
    }
    None
}

/// The root causes of an episode's injected faults at service, pod and node level, in
/// injection order without repeats: a fault's target service; for node, zone and zombie-node
/// faults the services of the pods it took down, however the node was selected (by name, by
/// zone, or through a service's pod: the other services on that node are hit alike).
pub fn root_causes(ep: &Episode) -> (Vec<String>, Vec<String>, Vec<String>) {
    let sc = ep.scenario();
    let mut rc_s: Vec<String> = Vec::new();
    let mut rc_p: Vec<String> = Vec::new();
    let mut rc_n: Vec<String> = Vec::new();
    let push = |v: &mut Vec<String>, x: &str| {
        if !v.iter().any(|y| y == x) {
            v.push(x.to_string())
        }
    };
    for f in ep.injected() {
        let node_level = matches!(
            f.spec.chaos,
            FaultKind::NodeFailure {} | FaultKind::ZoneFailure {} | FaultKind::ZombieNode {}
        );
        if let (Some(s), false) = (&f.service, node_level) {
            push(&mut rc_s, s);
        } else {
            // node / zone faults: the services of the pods lost
            for p in &f.pods {
                let names = sc.base.services.iter().map(|s| s.name.as_str());
                if let Some(svc) = service_of_pod(names, p) {
                    push(&mut rc_s, svc);
                }
            }
        }
        for p in &f.pods {
            push(&mut rc_p, p);
        }
        for n in &f.nodes {
            push(&mut rc_n, n);
        }
    }
    (rc_s, rc_p, rc_n)
}

/// The service a pod name belongs to: pods are named `<service>-<suffix>` with no dash in the
/// suffix, so `cart-db-x7k2p` is `cart-db`'s even when a service `cart` exists.
fn service_of_pod<'a>(services: impl Iterator<Item = &'a str>, pod: &str) -> Option<&'a str> {
    services
        .filter(|s| {
            pod.strip_prefix(s)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| !n.is_empty() && !n.contains('-'))
        })
        .max_by_key(|s| s.len())
}

pub(crate) fn ground_truth(ep: &Episode, cf: &Episode) -> GroundTruth {
    let sc = ep.scenario();
    let faults: Vec<InjectedFault> = ep.injected().to_vec();
    let (rc_s, rc_p, rc_n) = root_causes(ep);
    let fault_types = faults.iter().map(|f| f.fault_type.clone()).collect();
    let t0 = faults.iter().map(|f| f.start).min();
    let observed_until = ep.now().min(cf.now());
    // pair scrapes by time
    let cf_by_time: BTreeMap<u64, &Scrape> = cf
        .sim()
        .telemetry()
        .scrapes
        .iter()
        .map(|s| (s.time, s))
        .collect();
    let mut first_symptom = None;
    let mut first_symptom_slo = None;
    let mut dev: BTreeMap<String, ServiceDeviation> = BTreeMap::new();
    for s in &sc.base.services {
        dev.insert(
            s.name.clone(),
            ServiceDeviation {
                service: s.name.clone(),
                windows: 0,
                deviating_windows: 0,
                max_p99_ratio: 1.0,
                max_error_increase: 0.0,
                min_throughput_ratio: 1.0,
                first_deviation: None,
            },
        );
    }
    if let Some(t0) = t0 {
        for s in ep
            .sim()
            .telemetry()
            .scrapes
            .iter()
            .filter(|s| s.time > t0 && s.time <= observed_until)
        {
            let Some(c) = cf_by_time.get(&s.time) else {
                continue;
            };
            if first_symptom.is_none()
                && let Some(v) = slo_violation(sc, s)
                && slo_violation(sc, c).as_deref() != Some(v.as_str())
            {
                first_symptom = Some(s.time);
                first_symptom_slo = Some(v);
            }
            for m in &s.services {
                let Some(cm) = c.services.iter().find(|x| x.service == m.service) else {
                    continue;
                };
                let Some(d) = dev.get_mut(&m.name) else {
                    continue;
                };
                let (bad, ratio, err_inc, thr) = deviates(
                    &effective_service_metrics(s, m),
                    &effective_service_metrics(c, cm),
                );
                d.windows += 1;
                if ratio.is_finite() {
                    d.max_p99_ratio = d.max_p99_ratio.max(ratio);
                }
                d.max_error_increase = d.max_error_increase.max(err_inc);
                if let Some(r) = thr {
                    d.min_throughput_ratio = d.min_throughput_ratio.min(r);
                }
                if bad {
                    d.deviating_windows += 1;
                    if d.first_deviation.is_none() {
                        d.first_deviation = Some(s.time);
                    }
                }
            }
        }
    }
    let deviations: Vec<ServiceDeviation> = sc
        .base
        .services
        .iter()
        .filter_map(|s| dev.get(&s.name).cloned())
        .collect();
    let blast_radius: Vec<String> = deviations
        .iter()
        .filter(|d| {
            d.windows > 0 && d.deviating_windows >= 2.max((d.windows as f64 * 0.05).ceil() as u32)
        })
        .map(|d| d.service.clone())
        .collect();
    let propagation = propagation(ep, t0, &rc_s, &blast_radius);
    GroundTruth {
        scenario: sc.name.clone(),
        seed: ep.seed(),
        dime_task: sc.dime_task.clone(),
        faults,
        root_cause_services: rc_s,
        root_cause_pods: rc_p,
        root_cause_nodes: rc_n,
        fault_types,
        first_symptom,
        first_symptom_slo,
        blast_radius,
        deviations,
        propagation,
        observed_until,
    }
}

fn propagation(
    ep: &Episode,
    t0: Option<u64>,
    rc: &[String],
    blast: &[String],
) -> Vec<PropagationEdge> {
    let Some(t0) = t0 else { return vec![] };
    let topo = ep.sim().topology();
    let name = |s: u32| topo.service(s).name.clone();
    let affected = |n: &str| rc.iter().any(|x| x == n) || blast.iter().any(|x| x == n);
    let mut counts: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for sp in ep.sim().telemetry().spans.iter().filter(|s| s.start >= t0) {
        if let Some(c) = sp.caller
            && !sp.status.is_ok()
        {
            *counts.entry((sp.service, c)).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for e in &topo.edges {
        let Some(from_caller) = e.from else { continue };
        let (callee, caller) = (e.to, from_caller);
        let (a, b) = (name(callee), name(caller));
        if a == b || !affected(&a) || !blast.contains(&b) {
            continue;
        }
        let n = counts.get(&(callee, caller)).copied().unwrap_or(0);
        out.push(PropagationEdge {
            from: a,
            to: b,
            error_spans: n,
            evidence: if n > 0 {
                "spans".into()
            } else {
                "topology".into()
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::telemetry::ClientMetrics;

    #[test]
    fn pods_belong_to_the_longest_matching_service() {
        let names = ["cart", "cart-db", "db"];
        let of = |p: &str| service_of_pod(names.iter().copied(), p);
        assert_eq!(of("cart-db-x7k2p"), Some("cart-db"));
        assert_eq!(of("cart-x7k2p"), Some("cart"));
        assert_eq!(of("db-2bc4d"), Some("db"));
        assert_eq!(of("cartdb-x7k2p"), None);
        assert_eq!(of("cart-"), None);
        assert_eq!(of("other-x7k2p"), None);
    }

    fn svc(name: &str, id: u32, rps: f64, error_rate: f64, p99_ms: f64) -> ServiceMetrics {
        ServiceMetrics {
            service: id,
            name: name.into(),
            ready_pods: 0,
            desired_replicas: 1,
            config_version: 0,
            rps,
            errors_per_s: rps * error_rate,
            error_rate,
            p50_ms: p99_ms,
            p90_ms: p99_ms,
            p99_ms,
            cpu_utilization: 0.0,
            memory_utilization: 0.0,
            queue_depth: 0,
            in_flight: 0,
            restarts: 0,
        }
    }

    fn client(service: u32, name: &str, completed: u32, errors: u32, p99_ms: f64) -> ClientMetrics {
        ClientMetrics {
            workload: 0,
            service,
            service_name: name.into(),
            completed,
            rps: completed as f64,
            errors,
            timeouts: 0,
            rate_limited: 0,
            error_rate: errors as f64 / completed.max(1) as f64,
            p50_ms: p99_ms,
            p90_ms: p99_ms,
            p99_ms,
        }
    }

    /// An entry service with no ready pods shows nothing server-side: only the client-side
    /// metrics make its SLOs fail.
    #[test]
    fn client_metrics_of_an_entry_service_count_for_its_slos() {
        let sc = crate::FaultScenario::builtin("dime-zombie-node").unwrap();
        let entry = sc.base.slos[0].service.clone();
        let id = sc
            .base
            .services
            .iter()
            .position(|s| s.name == entry)
            .unwrap() as u32;
        let mut s = Scrape {
            time: 1,
            pods: vec![],
            services: vec![svc(&entry, id, 0.0, 0.0, 0.0)],
            nodes: vec![],
            clients: vec![],
        };
        assert_eq!(slo_violation(&sc, &s), None);
        s.clients = vec![client(id, &entry, 100, 100, 1.0)];
        assert_eq!(slo_violation(&sc, &s), Some(format!("{entry} error_rate")));
        let e = effective_service_metrics(&s, &s.services[0]);
        assert_eq!((e.error_rate, e.rps), (1.0, 100.0));
        // a client-side p99 above the objective counts too
        s.clients = vec![client(id, &entry, 100, 0, 60_000.0)];
        assert_eq!(slo_violation(&sc, &s), Some(format!("{entry} latency_p99")));
        // clients of another entry service do not
        s.clients = vec![client(id + 1, "other", 100, 100, 60_000.0)];
        assert_eq!(slo_violation(&sc, &s), None);
        // server-side metrics worse than the clients' stay
        s.services[0] = svc(&entry, id, 10.0, 0.5, 1.0);
        s.clients = vec![client(id, &entry, 100, 0, 1.0)];
        let e = effective_service_metrics(&s, &s.services[0]);
        assert_eq!((e.error_rate, e.rps), (0.5, 10.0));
    }
}
