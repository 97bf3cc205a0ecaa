//! Observations: what an agent sees after each step.
//!
//! One [`Observation`] type serves every topology. It carries
//!
//! - DIME's fields (spec §2) with DIME's names and meanings, filled from the simulated
//!   cluster's nodes: `cpu_loads`, `mem_utilizations`, `queue_lengths`, `failed_nodes`,
//!   `latency_ms`, `request_rate`, `io_wait`, `p99_latency`, `error_budget`,
//!   `request_rate_norm`, `p99_latency_norm`, `step`, `task_hint`, `task_score`,
//!   `telemetry_status`, `action_errors`, `cloud_budget` (and `prometheus_metrics`, rendered on
//!   demand by [`crate::render::dime_observation_json`]), so DIME-format prompts and policies
//!   work unchanged;
//! - for every topology, per-service, per-node and per-pod metrics aggregated over the last
//!   decision interval, alerts (SLO violations and unavailable deployments), and the answers
//!   to the queries issued in the previous step (log lines, metric summaries, trace summaries).
//!
//! Metrics are aggregated over the scrapes of the last decision interval: rates and CPU are
//! window means, latency quantiles are request-weighted means of the per-scrape quantiles,
//! and states (ready pods, memory, queues, phases) are the last scrape's. With partial
//! observability on, a dropped node reads `-1` in the DIME fields (DIME's convention) and its
//! pods' metrics are hidden, until a query targets it.

use serde::{Deserialize, Serialize};
use sim_core::scenario::ServiceKind;
use sim_core::telemetry::Phase;
use std::collections::BTreeMap;

use crate::action::QueryKind;

/// One service (deployment), aggregated over the decision interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceObs {
    /// Name.
    pub name: String,
    /// Component kind.
    pub kind: ServiceKind,
    /// Ready pods at the end of the interval.
    pub ready_pods: u32,
    /// Desired replicas.
    pub desired_replicas: u32,
    /// Config version running.
    pub config_version: u32,
    /// Requests completed per second (mean).
    pub rps: f64,
    /// Share of completed requests that failed.
    pub error_rate: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Mean CPU utilisation of its pods (of their limits).
    pub cpu: f64,
    /// Mean memory utilisation of its pods (of their limits), last scrape.
    pub memory: f64,
    /// Requests queued in its pods, last scrape.
    pub queue: u32,
    /// Restarts in the interval.
    pub restarts: u32,
    /// Requests per second in the episode's first (warm-up) interval: the reference the
    /// oracle compares load amplification (retry storms) against.
    pub baseline_rps: f64,
}

/// One node, aggregated over the decision interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeObs {
    /// Name.
    pub name: String,
    /// Up at the end of the interval.
    pub up: bool,
    /// Mean CPU utilisation (of capacity).
    pub cpu: f64,
    /// Memory utilisation (of capacity), last scrape.
    pub memory: f64,
    /// Mean disk busy share.
    pub io: f64,
    /// Requests queued in its pods, last scrape.
    pub queue: u32,
    /// False while telemetry from this node is dropped (partial observability).
    pub visible: bool,
}

/// One pod at the end of the interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodObs {
    /// Name.
    pub name: String,
    /// Service index.
    pub service: u32,
    /// Node index (None: unscheduled).
    pub node: Option<u32>,
    /// Phase.
    pub phase: Phase,
    /// Ready.
    pub ready: bool,
    /// CPU utilisation of its limit (mean over the interval).
    pub cpu: f64,
    /// Memory utilisation of its limit.
    pub memory: f64,
    /// Queue depth.
    pub queue: u32,
    /// Restarts so far.
    pub restarts: u32,
}

/// An alert: an SLO violation or an unavailable deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Service.
    pub service: String,
    /// `latency_p99`, `error_rate` or `unavailable`.
    pub metric: String,
    /// Observed value (ms, ratio, or ready pods).
    pub value: f64,
    /// The objective (ms, ratio, or desired pods).
    pub threshold: f64,
}

/// The answer to a query issued in the previous step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// What was asked.
    pub kind: QueryKind,
    /// The target as resolved (pod, node or service name).
    pub target: String,
    /// The answer, one line per item.
    pub lines: Vec<String>,
}

/// What the agent sees after a reset or a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    // ---- DIME fields (spec §2), one entry per node
    /// Per-node CPU utilisation in [0, 1]; -1 means telemetry dropout.
    pub cpu_loads: Vec<f64>,
    /// Per-node memory utilisation in [0, 1]; -1 means telemetry dropout.
    pub mem_utilizations: Vec<f64>,
    /// Per-node queued requests; -1 means telemetry dropout.
    pub queue_lengths: Vec<i64>,
    /// Nodes that are down or whose pods are all unavailable (never subject to dropout).
    pub failed_nodes: Vec<u32>,
    /// Median end-to-end latency at the entry service, ms.
    pub latency_ms: f64,
    /// Requests per second offered at the entry (admitted or not).
    pub request_rate: f64,
    /// Disk busy share of the database's node (0 without a database).
    pub io_wait: f64,
    /// 99th percentile end-to-end latency at the entry service, ms.
    pub p99_latency: f64,
    /// Error budget left, in [0, 100].
    pub error_budget: f64,
    /// `clip(request_rate / 5000, 0, 1)`.
    pub request_rate_norm: f64,
    /// `clip(p99_latency / 1000, 0, 1)`.
    pub p99_latency_norm: f64,
    /// Steps taken (0 at reset).
    pub step: u32,
    /// DIME's task hint: a short, vague hint that names no node, pod or service (the class of
    /// symptoms to expect: [`crate::env::task_hint`]); the scenario's description, which names
    /// the root cause, only with [`crate::EnvOptions::reveal_root_cause`].
    pub task_hint: String,
    /// Running remediation score in [0.01, 0.99] (share of steps so far without SLO alerts).
    pub task_score: f64,
    /// Per node: `ok` or `timeout` (dropped telemetry).
    pub telemetry_status: BTreeMap<u32, String>,
    /// Errors of the last action (parse errors, cooldowns, unknown targets, funds ...).
    pub action_errors: Vec<String>,
    /// Cloud budget left (replica-units a scale-up may spend).
    pub cloud_budget: i64,
    // ---- every topology
    /// Simulated time, ns.
    pub time_ns: u64,
    /// The entry service (where users' requests arrive).
    pub entry_service: String,
    /// Error share of requests answered at the entry in the interval.
    pub error_rate: f64,
    /// Share of offered requests answered successfully in the interval.
    pub availability: f64,
    /// The ingress throttle in force (1 = none).
    pub throttle: f64,
    /// The nominal offered rate of the workload (requests/s) at this time.
    pub nominal_rate: f64,
    /// The p99 objective at the entry, ms (its SLO, else 500 ms).
    pub p99_objective_ms: f64,
    /// Per service.
    pub services: Vec<ServiceObs>,
    /// Per node.
    pub nodes: Vec<NodeObs>,
    /// Per live pod.
    pub pods: Vec<PodObs>,
    /// Alerts firing.
    pub alerts: Vec<Alert>,
    /// Answers to last step's queries.
    pub query_results: Vec<QueryResult>,
    /// Restart cooldowns in force: target -> steps left.
    pub cooldowns: BTreeMap<String, u32>,
}

impl Observation {
    /// Index of the database service, if the topology has one.
    pub fn database(&self) -> Option<usize> {
        self.services
            .iter()
            .position(|s| s.kind == ServiceKind::Database)
    }

    /// Nodes that host a pod of the database service.
    pub fn database_nodes(&self) -> Vec<u32> {
        let Some(db) = self.database() else {
            return vec![];
        };
        let mut v: Vec<u32> = self
            .pods
            .iter()
            .filter(|p| p.service == db as u32)
            .filter_map(|p| p.node)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Service by name.
    pub fn service(&self, name: &str) -> Option<&ServiceObs> {
        self.services.iter().find(|s| s.name == name)
    }

    /// An empty observation (no nodes, no services) — a placeholder for tests and padding.
    pub fn empty() -> Observation {
        Observation {
            cpu_loads: vec![],
            mem_utilizations: vec![],
            queue_lengths: vec![],
            failed_nodes: vec![],
            latency_ms: 0.0,
            request_rate: 0.0,
            io_wait: 0.0,
            p99_latency: 0.0,
            error_budget: 100.0,
            request_rate_norm: 0.0,
            p99_latency_norm: 0.0,
            step: 0,
            task_hint: String::new(),
            task_score: 0.01,
            telemetry_status: BTreeMap::new(),
            action_errors: vec![],
            cloud_budget: 0,
            time_ns: 0,
            entry_service: String::new(),
            error_rate: 0.0,
            availability: 1.0,
            throttle: 1.0,
            nominal_rate: 0.0,
            p99_objective_ms: 500.0,
            services: vec![],
            nodes: vec![],
            pods: vec![],
            alerts: vec![],
            query_results: vec![],
            cooldowns: BTreeMap::new(),
        }
    }
}
