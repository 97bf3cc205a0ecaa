//! Building observations and reward summaries from a running simulation (internal).
//!
//! Everything here reads the scrapes of the last decision interval once ([`Window`]) and
//! derives both the agent's [`Observation`] and the reward's [`RewardState`] from it, so a
//! step costs one pass over a handful of scrapes.

use crate::action::QueryKind;
use crate::observation::{Alert, NodeObs, Observation, PodObs, QueryResult, ServiceObs};
use crate::rewards::RewardState;
use serde::{Deserialize, Serialize};
use sim_core::Simulation;
use sim_core::model::{NodeId, PodId, ServiceId};
use sim_core::scenario::{ArrivalSpec, ServiceKind};
use sim_core::telemetry::Phase;
use sim_core::time::SECONDS;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Facts about a scenario that never change during an episode, computed once per [`crate::Env`].
#[derive(Clone, Debug)]
pub(crate) struct Statics {
    pub service_names: Vec<String>,
    pub service_kinds: Vec<ServiceKind>,
    pub node_names: Vec<String>,
    pub entry: ServiceId,
    pub database: Option<ServiceId>,
    /// Per service: (p99 objective ms, error-rate objective).
    pub slos: Vec<(Option<f64>, Option<f64>)>,
    pub initial_replicas: Vec<u32>,
    pub p99_objective_ms: f64,
    pub task_hint: String,
}

impl Statics {
    pub fn new(sim: &Simulation, hint: &str) -> Statics {
        let sc = sim.scenario();
        let service_names: Vec<String> = sc.services.iter().map(|s| s.name.clone()).collect();
        let entry = sc
            .workload
            .first()
            .and_then(|w| sc.service_index(&w.entry))
            .unwrap_or(0) as ServiceId;
        let mut slos = vec![(None, None); sc.services.len()];
        for s in &sc.slos {
            if let Some(i) = sc.service_index(&s.service) {
                slos[i] = (s.latency_p99.map(|d| d.0 as f64 / 1e6), s.error_rate);
            }
        }
        let p99_objective_ms = slos[entry as usize].0.unwrap_or(500.0).max(1.0);
        Statics {
            service_names,
            service_kinds: sc.services.iter().map(|s| s.kind).collect(),
            node_names: sc.nodes.iter().map(|n| n.name.clone()).collect(),
            entry,
            database: sc
                .services
                .iter()
                .position(|s| s.kind == ServiceKind::Database)
                .map(|i| i as ServiceId),
            slos,
            initial_replicas: sc.services.iter().map(|s| s.replicas).collect(),
            p99_objective_ms,
            task_hint: hint.to_string(),
        }
    }

    /// The nominal offered rate (requests/s) of the open workloads at time `t`; closed
    /// workloads count their users per second of think time is unknown, so they add nothing.
    pub fn nominal_rate(&self, sim: &Simulation, t: u64) -> f64 {
        sim.scenario()
            .workload
            .iter()
            .map(|w| match &w.arrivals {
                ArrivalSpec::Open { rate } => rate.rate_at(t),
                ArrivalSpec::Closed { .. } => 0.0,
            })
            .sum()
    }
}

#[derive(Clone, Debug, Default)]
struct SvcAgg {
    rps: f64,
    err: f64,
    p50w: f64,
    p99w: f64,
    w: f64,
    cpu: f64,
    restarts: u32,
}

#[derive(Clone, Debug, Default)]
struct NodeAgg {
    cpu: f64,
    io: f64,
}

/// Aggregates of the scrapes in `(t0, now]`.
pub(crate) struct Window {
    svc: Vec<SvcAgg>,
    node: Vec<NodeAgg>,
    n: u32,
    secs: f64,
}

impl Window {
    pub fn collect(sim: &Simulation, t0: u64) -> Window {
        let ns = sim.topology().num_services();
        let nn = sim.topology().num_nodes();
        let mut svc = vec![SvcAgg::default(); ns];
        let mut node = vec![NodeAgg::default(); nn];
        let mut n = 0u32;
        let mut secs = 0.0;
        let interval = sim.scenario().scrape_interval.0 as f64 / SECONDS as f64;
        for s in sim.telemetry().scrapes.iter().rev() {
            if s.time <= t0 {
                break;
            }
            n += 1;
            secs += interval;
            for m in &s.services {
                let a = &mut svc[m.service as usize];
                a.rps += m.rps;
                a.err += m.errors_per_s;
                let w = m.rps.max(1e-9);
                a.p50w += m.p50_ms * w;
                a.p99w += m.p99_ms * w;
                a.w += w;
                a.cpu += m.cpu_utilization;
                a.restarts += m.restarts;
            }
            for m in &s.nodes {
                let a = &mut node[m.node as usize];
                a.cpu += m.cpu_utilization;
                a.io += m.io_utilization;
            }
        }
        Window { svc, node, n, secs }
    }
}

/// Per-step agent bookkeeping the observation shows.
pub(crate) struct AgentView<'a> {
    pub step: u32,
    pub error_budget: f64,
    pub cloud_budget: i64,
    pub cloud_initial: i64,
    pub throttle: f64,
    pub dropped: &'a [bool],
    pub action_errors: Vec<String>,
    pub cooldowns: BTreeMap<String, u32>,
    pub steps_ok: u32,
    pub arrivals: u64,
    pub t0: u64,
    pub baseline_rps: &'a [f64],
}

/// Builds the observation and the reward summary of the interval `(view.t0, now]`.
pub(crate) fn observe(
    sim: &Simulation,
    st: &Statics,
    view: AgentView<'_>,
) -> (Observation, RewardState) {
    let win = Window::collect(sim, view.t0);
    let now = sim.now();
    let k = win.n.max(1) as f64;
    let last = sim.last_scrape();
    let nn = st.node_names.len();
    // pods (last scrape)
    let mut pods = Vec::new();
    let mut node_queue = vec![0u32; nn];
    let mut node_has_pods = vec![false; nn];
    let mut node_has_ready = vec![false; nn];
    let mut max_mem: f64 = 0.0;
    let mut sum_mem = 0.0;
    let mut n_mem = 0u32;
    let mut hot_pod_cpu: f64 = 0.0;
    let mut db_pod_cpu: f64 = -1.0;
    if let Some(s) = last {
        pods.reserve(s.pods.len());
        for p in &s.pods {
            let node = if (p.node as usize) < nn {
                Some(p.node)
            } else {
                None
            };
            let hidden =
                node.is_some_and(|n| view.dropped.get(n as usize).copied().unwrap_or(false));
            if let Some(n) = node {
                node_queue[n as usize] += p.queue_depth;
                node_has_pods[n as usize] = true;
                node_has_ready[n as usize] |= p.ready;
            }
            if p.phase == Phase::Running {
                max_mem = max_mem.max(p.memory_utilization);
                sum_mem += p.memory_utilization;
                n_mem += 1;
                hot_pod_cpu = hot_pod_cpu.max(p.cpu_utilization);
                if Some(p.service) == st.database {
                    db_pod_cpu = db_pod_cpu.max(p.cpu_utilization);
                }
            }
            pods.push(PodObs {
                name: p.name.clone(),
                service: p.service,
                node,
                phase: p.phase,
                ready: p.ready,
                cpu: if hidden { -1.0 } else { p.cpu_utilization },
                memory: if hidden { -1.0 } else { p.memory_utilization },
                queue: if hidden { 0 } else { p.queue_depth },
                restarts: p.restarts,
            });
        }
    }
    // nodes
    let mut nodes = Vec::with_capacity(nn);
    let mut cpu_loads = Vec::with_capacity(nn);
    let mut mem_utilizations = Vec::with_capacity(nn);
    let mut queue_lengths = Vec::with_capacity(nn);
    let mut failed_nodes = Vec::new();
    let mut telemetry_status = BTreeMap::new();
    let mut nodes_up = 0u32;
    let mut sum_node_cpu = 0.0;
    let mut max_node_cpu: f64 = 0.0;
    for i in 0..nn {
        let up = last
            .and_then(|s| s.nodes.get(i))
            .map(|m| m.up)
            .unwrap_or(true);
        let mem = last
            .and_then(|s| s.nodes.get(i))
            .map(|m| m.memory_utilization)
            .unwrap_or(0.0);
        let cpu = win.node[i].cpu / k;
        let io = win.node[i].io / k;
        let hidden = view.dropped.get(i).copied().unwrap_or(false);
        let failed = !up || (node_has_pods[i] && !node_has_ready[i]);
        if failed {
            failed_nodes.push(i as u32);
        }
        if up {
            nodes_up += 1;
        }
        sum_node_cpu += cpu;
        max_node_cpu = max_node_cpu.max(cpu);
        telemetry_status.insert(
            i as u32,
            if hidden {
                "timeout".to_string()
            } else {
                "ok".to_string()
            },
        );
        cpu_loads.push(if hidden { -1.0 } else { round3(cpu) });
        mem_utilizations.push(if hidden { -1.0 } else { round3(mem) });
        queue_lengths.push(if hidden { -1 } else { node_queue[i] as i64 });
        nodes.push(NodeObs {
            name: st.node_names[i].clone(),
            up,
            cpu: if hidden { -1.0 } else { cpu },
            memory: if hidden { -1.0 } else { mem },
            io: if hidden { -1.0 } else { io },
            queue: if hidden { 0 } else { node_queue[i] },
            visible: !hidden,
        });
    }
    // services
    let mut services = Vec::with_capacity(st.service_names.len());
    let mut alerts = Vec::new();
    let mut desired_total = 0u32;
    let mut missing_total = 0u32;
    let mut deployments = 0u32;
    let mut deployments_up = 0u32;
    let mut extra_replicas = 0i64;
    for (i, name) in st.service_names.iter().enumerate() {
        let m = last.and_then(|s| s.services.get(i));
        let a = &win.svc[i];
        let (ready, desired, version, memory, queue) = m
            .map(|m| {
                (
                    m.ready_pods,
                    m.desired_replicas,
                    m.config_version,
                    m.memory_utilization,
                    m.queue_depth,
                )
            })
            .unwrap_or((0, 0, 0, 0.0, 0));
        let rps = a.rps / k;
        let error_rate = if a.rps > 0.0 {
            (a.err / a.rps).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let p50 = if a.w > 0.0 { a.p50w / a.w } else { 0.0 };
        let p99 = if a.w > 0.0 { a.p99w / a.w } else { 0.0 };
        desired_total += desired;
        missing_total += desired.saturating_sub(ready);
        let initial = st.initial_replicas[i];
        extra_replicas += desired as i64 - initial as i64;
        if initial > 0 {
            deployments += 1;
            if ready > 0 {
                deployments_up += 1;
            }
        }
        let (slo_p99, slo_err) = st.slos[i];
        if let Some(obj) = slo_p99
            && p99 > obj
        {
            alerts.push(Alert {
                service: name.clone(),
                metric: "latency_p99".into(),
                value: p99,
                threshold: obj,
            });
        }
        if let Some(obj) = slo_err
            && error_rate > obj
        {
            alerts.push(Alert {
                service: name.clone(),
                metric: "error_rate".into(),
                value: error_rate,
                threshold: obj,
            });
        }
        if desired > 0 && ready == 0 {
            alerts.push(Alert {
                service: name.clone(),
                metric: "unavailable".into(),
                value: 0.0,
                threshold: desired as f64,
            });
        }
        services.push(ServiceObs {
            name: name.clone(),
            kind: st.service_kinds[i],
            ready_pods: ready,
            desired_replicas: desired,
            config_version: version,
            rps,
            error_rate,
            p50_ms: p50,
            p99_ms: p99,
            cpu: a.cpu / k,
            memory,
            queue,
            restarts: a.restarts,
            baseline_rps: view.baseline_rps.get(i).copied().unwrap_or(rps),
        });
    }
    // entry: offered, answered, availability
    let e = st.entry as usize;
    let offered = sim.counters().arrivals.saturating_sub(view.arrivals) as f64;
    let secs = if win.secs > 0.0 { win.secs } else { 1.0 };
    let entry_ok = (win.svc[e].rps - win.svc[e].err).max(0.0) * (secs / k.max(1.0));
    let availability = if offered > 0.0 {
        (entry_ok / offered).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let request_rate = offered / secs;
    let entry = &services[e];
    let io_wait = st
        .database
        .and_then(|db| pods.iter().find(|p| p.service == db).and_then(|p| p.node))
        .map(|n| win.node[n as usize].io / k)
        .unwrap_or(0.0);
    let nominal = st.nominal_rate(sim, now);
    // a tier with no ready pod serves nothing: it is the hottest spot there is
    let tier_down = deployments_up < deployments;
    let hot_cpu = if tier_down {
        1.0
    } else if db_pod_cpu >= 0.0 {
        db_pod_cpu
    } else {
        hot_pod_cpu.max(max_node_cpu)
    };
    let has_alert = !alerts.is_empty();
    let steps_ok = view
        .steps_ok
        .saturating_add(u32::from(!has_alert && view.step > 0));
    let task_score = if view.step == 0 {
        0.01
    } else {
        (steps_ok as f64 / view.step as f64).clamp(0.01, 0.99)
    };
    let rs = RewardState {
        availability,
        p99_ratio: entry.p99_ms / st.p99_objective_ms,
        hot_cpu: hot_cpu.clamp(0.0, 1.0),
        mean_cpu: if nn > 0 {
            sum_node_cpu / nn as f64
        } else {
            0.0
        },
        max_mem,
        mean_mem: if n_mem > 0 {
            sum_mem / n_mem as f64
        } else {
            0.0
        },
        up_fraction: (nodes_up + deployments_up) as f64 / (nn as u32 + deployments).max(1) as f64,
        warming_fraction: if desired_total > 0 {
            missing_total as f64 / desired_total as f64
        } else {
            0.0
        },
        admitted: view.throttle.clamp(0.0, 1.0),
        error_budget: view.error_budget,
        cloud_spend: if view.cloud_initial > 0 {
            (extra_replicas.max(0) as f64 / view.cloud_initial as f64).clamp(0.0, 1.0)
        } else {
            0.0
        },
    };
    let obs = Observation {
        cpu_loads,
        mem_utilizations,
        queue_lengths,
        failed_nodes,
        latency_ms: round2(entry.p50_ms),
        request_rate: round2(request_rate),
        io_wait: (io_wait * 1e4).round() / 1e4,
        p99_latency: round2(entry.p99_ms),
        error_budget: round2(view.error_budget),
        request_rate_norm: (request_rate / 5000.0).clamp(0.0, 1.0),
        p99_latency_norm: (entry.p99_ms / 1000.0).clamp(0.0, 1.0),
        step: view.step,
        task_hint: st.task_hint.clone(),
        task_score,
        telemetry_status,
        action_errors: view.action_errors,
        cloud_budget: view.cloud_budget,
        time_ns: now,
        entry_service: st.service_names[e].clone(),
        error_rate: entry.error_rate,
        availability,
        throttle: view.throttle,
        nominal_rate: nominal,
        p99_objective_ms: st.p99_objective_ms,
        services,
        nodes,
        pods,
        alerts,
        query_results: vec![],
        cooldowns: view.cooldowns,
    };
    (obs, rs)
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A resolved query target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Target {
    Pod(PodId, String),
    Node(NodeId),
    Service(ServiceId),
}

impl Target {
    pub fn label(&self, st: &Statics) -> String {
        match self {
            Target::Pod(_, n) => n.clone(),
            Target::Node(n) => st.node_names[*n as usize].clone(),
            Target::Service(s) => st.service_names[*s as usize].clone(),
        }
    }
}

/// Answers a query from the telemetry of `(t0, now]` (logs: the last 10 matching lines of the
/// last two intervals).
pub(crate) fn answer(
    sim: &Simulation,
    st: &Statics,
    kind: QueryKind,
    target: &Target,
    t0: u64,
    obs: &Observation,
) -> QueryResult {
    let mut lines = Vec::new();
    let pod_ids: Vec<PodId> = match target {
        Target::Pod(p, _) => vec![*p],
        Target::Node(n) => sim
            .pods()
            .into_iter()
            .filter(|p| p.node == Some(*n))
            .map(|p| p.id)
            .collect(),
        Target::Service(s) => sim.pods_of(*s).into_iter().map(|p| p.id).collect(),
    };
    let svc = match target {
        Target::Service(s) => Some(*s),
        _ => None,
    };
    let matches = |pod: PodId, service: ServiceId| pod_ids.contains(&pod) || svc == Some(service);
    match kind {
        QueryKind::Logs => {
            let horizon = t0.saturating_sub(sim.now().saturating_sub(t0));
            let names: BTreeMap<PodId, String> = sim
                .last_scrape()
                .map(|s| s.pods.iter().map(|p| (p.pod, p.name.clone())).collect())
                .unwrap_or_default();
            for l in sim.telemetry().logs.iter().rev() {
                if l.time <= horizon || lines.len() >= 10 {
                    break;
                }
                let node_event = matches!(target, Target::Node(_)) && l.service == u32::MAX;
                if matches(l.pod, l.service) || node_event {
                    let who = names
                        .get(&l.pod)
                        .cloned()
                        .unwrap_or_else(|| "cluster".into());
                    lines.push(format!(
                        "[{:.1}s] {:?} {}: {}",
                        l.time as f64 / 1e9,
                        l.severity,
                        who,
                        l.message
                    ));
                }
            }
            lines.reverse();
            if lines.is_empty() {
                lines.push("no log lines in the last two intervals".into());
            }
        }
        QueryKind::Metrics => match target {
            Target::Service(s) => {
                let m = &obs.services[*s as usize];
                lines.push(format!(
                    "service {}: ready {}/{} version {} rps {:.1} error_rate {:.4} p50 {:.1}ms p99 {:.1}ms cpu {:.3} mem {:.3} queue {} restarts {}",
                    m.name, m.ready_pods, m.desired_replicas, m.config_version, m.rps, m.error_rate, m.p50_ms, m.p99_ms, m.cpu, m.memory, m.queue, m.restarts
                ));
            }
            _ => {
                if let Target::Node(n) = target {
                    let sm = sim.last_scrape().and_then(|s| s.nodes.get(*n as usize));
                    if let Some(m) = sm {
                        lines.push(format!(
                            "node {}: up {} cpu {:.3} mem {:.3} io {:.3} pods {}",
                            m.name,
                            m.up,
                            m.cpu_utilization,
                            m.memory_utilization,
                            m.io_utilization,
                            m.pods
                        ));
                    }
                }
                if let Some(s) = sim.last_scrape() {
                    for m in s.pods.iter().filter(|p| pod_ids.contains(&p.pod)) {
                        lines.push(format!(
                            "pod {}: {:?} ready {} cpu {:.3} mem {:.3} rps {:.1} error_rate {:.4} p99 {:.1}ms queue {} restarts {} timeouts {} retries {}",
                            m.name, m.phase, m.ready, m.cpu_utilization, m.memory_utilization, m.rps, m.error_rate, m.p99_ms, m.queue_depth, m.restarts, m.timeouts, m.retries
                        ));
                    }
                }
            }
        },
        QueryKind::Traces => {
            // spans in the interval through the target, and their downstream calls
            let spans = &sim.telemetry().spans;
            let mut ids = Vec::new();
            let (mut n, mut errs, mut total) = (0u64, 0u64, 0u64);
            let mut max_d = 0u64;
            for s in spans.iter().rev() {
                if s.start <= t0 {
                    break;
                }
                if matches(s.pod, s.service) {
                    n += 1;
                    total += s.duration;
                    max_d = max_d.max(s.duration);
                    if !s.status.is_ok() {
                        errs += 1;
                    }
                    ids.push(s.span_id);
                }
            }
            ids.sort_unstable();
            let mut down: BTreeMap<ServiceId, (u64, u64, u64)> = BTreeMap::new();
            for s in spans.iter().rev() {
                if s.start <= t0 {
                    break;
                }
                if ids.binary_search(&s.parent_span_id).is_ok() {
                    let e = down.entry(s.service).or_default();
                    e.0 += 1;
                    e.1 += s.duration;
                    e.2 += u64::from(!s.status.is_ok());
                }
            }
            let mut head = String::new();
            let _ = write!(
                head,
                "sampled spans {n}, errors {errs}, mean {:.1}ms, max {:.1}ms",
                if n > 0 {
                    total as f64 / n as f64 / 1e6
                } else {
                    0.0
                },
                max_d as f64 / 1e6
            );
            lines.push(head);
            for (s, (c, d, e)) in down {
                lines.push(format!(
                    "-> {}: {} calls, mean {:.1}ms, {} errors",
                    st.service_names[s as usize],
                    c,
                    d as f64 / c.max(1) as f64 / 1e6,
                    e
                ));
            }
        }
    }
    QueryResult {
        kind,
        target: target.label(st),
        lines,
    }
}
