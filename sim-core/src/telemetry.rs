//! Telemetry an SRE (and an agent) can see: scraped metrics, sampled spans, log events.
//!
//! Everything here is produced by the engine from what happened in the simulation; nothing
//! is scripted. Exporters write CSV (metrics), JSON lines (logs) and OTLP JSON (spans, which
//! Jaeger can load).

use crate::model::{NodeId, OpId, PodId, ServiceId};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt::Write as _;

/// How a request (or a span) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Success.
    Ok,
    /// A downstream call failed and the failure propagated, or the operation failed.
    Error,
    /// The caller gave up waiting.
    Timeout,
    /// The callee's queue was full.
    Rejected,
    /// No ready pod, a wrong address, or a network partition refused the connection.
    Refused,
    /// The ingress rate limit dropped the request.
    RateLimited,
    /// The pod serving the request died (killed, OOM, node lost).
    Reset,
    /// A disk operation failed.
    IoError,
}

impl Status {
    /// True for [`Status::Ok`].
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
    /// HTTP-like status code, for spans and logs.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Error => 500,
            Status::Timeout => 504,
            Status::Rejected => 503,
            Status::Refused => 502,
            Status::RateLimited => 429,
            Status::Reset => 502,
            Status::IoError => 500,
        }
    }
}

/// Pod lifecycle phase (Kubernetes' pod phases and container states, flattened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not scheduled yet (no node fits) or waiting for the image.
    Pending,
    /// Container started, not ready yet.
    Starting,
    /// Ready and serving.
    Running,
    /// The container exited with an error (bad config, crash).
    Failed,
    /// Killed for exceeding its memory limit.
    OomKilled,
    /// Waiting out the restart back-off after crashes.
    CrashLoopBackOff,
    /// Its node is down; it will be evicted and replaced after the eviction timeout.
    NodeLost,
    /// Gone; the slot is free.
    Terminated,
}

/// Metrics of one pod over one scrape window.
///
/// Latency quantiles (`p50_ms`, `p90_ms`, `p99_ms`) cover the requests the pod served in the
/// window (answered, or failed after they were admitted; a request rejected at a full queue
/// counts in `rps` and `error_rate` but has no latency). In a window with no such request they
/// read 0.0, not "no data": check the request count (`rps` times the window, less `rejected`)
/// before reading them. CPU utilisation is approximate in two ways, see
/// [`PodMetrics::cpu_utilization`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodMetrics {
    /// Pod slot.
    pub pod: PodId,
    /// Pod name (`<service>-<n>`).
    pub name: String,
    /// Service.
    pub service: ServiceId,
    /// Node (u32::MAX when unscheduled).
    pub node: NodeId,
    /// Phase at the scrape.
    pub phase: Phase,
    /// Ready at the scrape.
    pub ready: bool,
    /// CPU used / CPU limit over the window (includes injected stress, as far as the limit
    /// lets it through), at most 1.0; 0 unless the pod is Running at the scrape.
    ///
    /// Two approximations of the engine's accounting:
    /// - a job's whole CPU time is charged to the window in which its CPU phase starts, so a
    ///   job longer than the window reads as one busy window and then idle ones (one 4 s job
    ///   on a 1-core limit, 1 s windows: 1.0, then 0, 0, 0); the average over several windows
    ///   is right, single windows of long jobs are not;
    /// - the CPU used in the window is divided by the pod's limit at the scrape: when a rollout
    ///   changes the limit mid-window, the CPU used under the old limit is divided by the new
    ///   one.
    pub cpu_utilization: f64,
    /// Resident memory in bytes at the scrape.
    pub memory_bytes: u64,
    /// Memory / memory limit.
    pub memory_utilization: f64,
    /// Requests completed per second.
    pub rps: f64,
    /// Share of completed requests that failed.
    pub error_rate: f64,
    /// Median latency of the requests served in the window, ms (0.0 when none was: check the
    /// request count first).
    pub p50_ms: f64,
    /// 90th percentile, ms (0.0 when no request was served).
    pub p90_ms: f64,
    /// 99th percentile, ms (0.0 when no request was served).
    pub p99_ms: f64,
    /// Requests waiting for a worker.
    pub queue_depth: u32,
    /// Requests admitted and not finished.
    pub in_flight: u32,
    /// Container restarts so far.
    pub restarts: u32,
    /// Connections in use in this pod's outgoing pools.
    pub pool_in_use: u32,
    /// Calls of this pod waiting for a pooled connection.
    pub pool_waiting: u32,
    /// Requests rejected (full queue) in the window.
    pub rejected: u32,
    /// Outgoing call attempts that timed out in the window.
    pub timeouts: u32,
    /// Outgoing retries in the window.
    pub retries: u32,
}

/// Metrics of one service (all its pods) over one scrape window.
///
/// Latency quantiles cover the requests its pods served in the window (as for
/// [`PodMetrics`]: not those rejected at a full queue). In a window with no such request they
/// read 0.0, not "no data": a service with no ready pod, or one rejecting everything, looks
/// fast; check `rps` (which counts rejections too) and the pods' `rejected` before reading
/// them. CPU utilisation is the mean of its pods' and shares their approximations
/// ([`PodMetrics::cpu_utilization`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceMetrics {
    /// Service.
    pub service: ServiceId,
    /// Name.
    pub name: String,
    /// Ready pods.
    pub ready_pods: u32,
    /// Desired replicas.
    pub desired_replicas: u32,
    /// Config version running.
    pub config_version: u32,
    /// Requests completed per second.
    pub rps: f64,
    /// Failed requests per second.
    pub errors_per_s: f64,
    /// Share of completed requests that failed.
    pub error_rate: f64,
    /// Median latency of the requests its pods served in the window, ms (0.0 when none was:
    /// check the request count first).
    pub p50_ms: f64,
    /// 90th percentile, ms (0.0 when no request was served).
    pub p90_ms: f64,
    /// 99th percentile, ms (0.0 when no request was served).
    pub p99_ms: f64,
    /// Mean CPU utilisation of its Running pods (see [`PodMetrics::cpu_utilization`] for how
    /// it is approximated).
    pub cpu_utilization: f64,
    /// Mean memory utilisation of its live pods.
    pub memory_utilization: f64,
    /// Sum of queue depths.
    pub queue_depth: u32,
    /// Sum of in-flight requests.
    pub in_flight: u32,
    /// Restarts of its pods in the window.
    pub restarts: u32,
}

/// Metrics of one node over one scrape window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// Node.
    pub node: NodeId,
    /// Name.
    pub name: String,
    /// Up (Ready).
    pub up: bool,
    /// CPU used / capacity (includes stress), at most 1.0. A job's whole CPU time is charged
    /// to the window in which its CPU phase starts, as for pods
    /// ([`PodMetrics::cpu_utilization`]).
    pub cpu_utilization: f64,
    /// Memory of its pods / capacity.
    pub memory_utilization: f64,
    /// Disk busy share.
    pub io_utilization: f64,
    /// Live pods on it.
    pub pods: u32,
}

/// Client-side metrics of one workload (one entry point) over one scrape window: the
/// requests as the external clients saw them, answered or failed, including those that never
/// reached a server (refused for lack of a ready pod, dropped by a partition and timed out at
/// the client, rate limited at ingress).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientMetrics {
    /// Workload index (in the scenario's `workload` list).
    pub workload: u32,
    /// Entry service of the workload.
    pub service: ServiceId,
    /// Entry service name.
    pub service_name: String,
    /// Root requests completed at the client in the window (answered or failed).
    pub completed: u32,
    /// Completed requests per second.
    pub rps: f64,
    /// Completed requests whose final status was not Ok (timeouts, refusals, 429s, errors).
    pub errors: u32,
    /// Of the errors, those that timed out at the client.
    pub timeouts: u32,
    /// Of the errors, those refused by the ingress rate limit (429).
    pub rate_limited: u32,
    /// `errors / completed` (0 when nothing completed).
    pub error_rate: f64,
    /// Median client-seen latency (arrival to answer), ms (0.0 when nothing completed: check
    /// `completed`).
    pub p50_ms: f64,
    /// 90th percentile, ms (0.0 when nothing completed).
    pub p90_ms: f64,
    /// 99th percentile, ms (0.0 when nothing completed).
    pub p99_ms: f64,
}

/// The client-side view of one entry service in one window: all workloads entering there,
/// merged (see [`Scrape::client_view`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientView {
    /// Requests completed at the client.
    pub completed: u32,
    /// Completed requests per second.
    pub rps: f64,
    /// Failed requests (any non-Ok final status).
    pub errors: u32,
    /// `errors / completed` (0 when nothing completed).
    pub error_rate: f64,
    /// The largest p99 (ms) of the workloads entering there (a conservative merge).
    pub p99_ms: f64,
}

/// One scrape: all metrics at one time, over the window that ends then.
///
/// Window metrics are approximate where noted: CPU time is charged to the window in which a
/// job's CPU phase starts and divided by the limit at the scrape
/// ([`PodMetrics::cpu_utilization`]); latency quantiles of a window with no served or
/// completed request read 0.0 (check the request rate or count first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scrape {
    /// End of the window (ns).
    pub time: u64,
    /// Per pod (live pods only).
    pub pods: Vec<PodMetrics>,
    /// Per service.
    pub services: Vec<ServiceMetrics>,
    /// Per node.
    pub nodes: Vec<NodeMetrics>,
    /// Per workload, as the clients saw it (empty in scrapes written before it existed).
    #[serde(default)]
    pub clients: Vec<ClientMetrics>,
}

impl Scrape {
    /// The client-side view of entry service `service`: the workloads entering there merged
    /// (counts summed, p99 the largest of theirs); `None` when no workload enters there or none
    /// of them completed a request in the window.
    pub fn client_view(&self, service: ServiceId) -> Option<ClientView> {
        let mut v = ClientView {
            completed: 0,
            rps: 0.0,
            errors: 0,
            error_rate: 0.0,
            p99_ms: 0.0,
        };
        for c in self.clients.iter().filter(|c| c.service == service) {
            v.completed = v.completed.saturating_add(c.completed);
            v.errors = v.errors.saturating_add(c.errors);
            v.rps += c.rps;
            if c.completed > 0 {
                v.p99_ms = v.p99_ms.max(c.p99_ms);
            }
        }
        if v.completed == 0 {
            return None;
        }
        v.error_rate = v.errors as f64 / v.completed as f64;
        Some(v)
    }
}

/// A server-side span: one execution of an operation on a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Trace id (the root request).
    pub trace_id: u64,
    /// Span id (unique in the episode, never 0).
    pub span_id: u64,
    /// Parent span id (0 for the entry span).
    pub parent_span_id: u64,
    /// Service.
    pub service: ServiceId,
    /// Operation.
    pub operation: OpId,
    /// Pod.
    pub pod: PodId,
    /// Calling service (None for the entry span).
    pub caller: Option<ServiceId>,
    /// Arrival at the pod (ns).
    pub start: u64,
    /// Time from arrival to response (ns).
    pub duration: u64,
    /// Outcome.
    pub status: Status,
    /// Which attempt of the caller this was (1 = first).
    pub attempt: u32,
    /// Sync or async call.
    pub sync: bool,
}

/// Log severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Informational.
    Info,
    /// Something is off.
    Warn,
    /// A request or component failed.
    Error,
}

/// The kinds of log line real services and Kubernetes emit (the template id is stable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum LogTemplate {
    /// A call timed out.
    Timeout = 0,
    /// A connection was refused.
    ConnectionRefused = 1,
    /// A request was rejected because the queue was full.
    QueueFull = 2,
    /// The pod was OOM-killed.
    OomKilled = 3,
    /// A container (re)started.
    Started = 4,
    /// Back-off restarting a failed container.
    BackOff = 5,
    /// The configuration is invalid / the process exited at start.
    ConfigError = 6,
    /// A call was refused by the ingress rate limit.
    RateLimited = 7,
    /// Waiting for a pooled connection.
    PoolExhausted = 8,
    /// A disk operation failed.
    IoError = 9,
    /// A node stopped responding.
    NodeNotReady = 10,
    /// A pod was evicted or deleted.
    Killed = 11,
    /// A call is being retried.
    Retry = 12,
    /// The pod became ready.
    Ready = 13,
    /// A deployment was scaled or rolled out.
    Deployment = 14,
}

/// Number of log templates.
pub const LOG_TEMPLATES: usize = 15;

/// One log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Time (ns).
    pub time: u64,
    /// Emitting pod (u32::MAX for cluster-level events).
    pub pod: PodId,
    /// Emitting service (u32::MAX for node events).
    pub service: ServiceId,
    /// Severity.
    pub severity: Severity,
    /// Template.
    pub template: LogTemplate,
    /// The rendered line.
    pub message: String,
}

/// One external request, end to end (recorded when [`crate::Simulation::record_requests`] is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Workload index.
    pub workload: u32,
    /// Entry operation.
    pub operation: OpId,
    /// Arrival (ns).
    pub arrival: u64,
    /// When the client got its answer (ns).
    pub response: u64,
    /// When the last span of the trace (async ones included) ended (ns).
    pub end: u64,
    /// Outcome seen by the client.
    pub status: Status,
    /// Client attempts.
    pub attempts: u32,
}

/// Telemetry buffers, bounded by the scenario's retention settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Scrapes, oldest first.
    pub scrapes: VecDeque<Scrape>,
    /// Sampled spans, in completion order.
    pub spans: VecDeque<SpanRecord>,
    /// Log events, in time order.
    pub logs: VecDeque<LogEvent>,
    /// Log events dropped by the per-window burst limit.
    pub logs_suppressed: u64,
    /// End-to-end request records (opt-in).
    pub requests: Vec<RequestRecord>,
    /// Sampled traces of scripted requests that named a source (`ScriptedRequest::source_trace`):
    /// (trace id, source), in trace id order, bounded like the spans.
    #[serde(default)]
    pub trace_sources: VecDeque<(u64, String)>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, x: T, cap: u32) {
    if cap > 0 && q.len() >= cap as usize {
        q.pop_front();
    }
    q.push_back(x);
}

impl Telemetry {
    pub(crate) fn push_scrape(&mut self, s: Scrape, cap: u32) {
        push_bounded(&mut self.scrapes, s, cap)
    }
    pub(crate) fn push_span(&mut self, s: SpanRecord, cap: u32) {
        push_bounded(&mut self.spans, s, cap)
    }
    pub(crate) fn push_log(&mut self, l: LogEvent, cap: u32) {
        push_bounded(&mut self.logs, l, cap)
    }

    pub(crate) fn push_trace_source(&mut self, trace: u64, source: String, cap: u32) {
        push_bounded(&mut self.trace_sources, (trace, source), cap)
    }

    /// The source a scripted request named for trace `trace` (replayed traces: the original
    /// trace id), if it did and is still retained.
    pub fn trace_source(&self, trace: u64) -> Option<&str> {
        self.trace_sources
            .binary_search_by_key(&trace, |(t, _)| *t)
            .ok()
            .map(|i| self.trace_sources[i].1.as_str())
    }

    /// The latest scrape, if any.
    pub fn last_scrape(&self) -> Option<&Scrape> {
        self.scrapes.back()
    }

    /// Service metrics as CSV: `time_s,service,ready_pods,desired_replicas,rps,error_rate,p50_ms,p90_ms,p99_ms,cpu,memory,queue,in_flight,restarts`.
    pub fn service_metrics_csv(&self) -> String {
        let mut out = String::from(
            "time_s,service,ready_pods,desired_replicas,config_version,rps,errors_per_s,error_rate,p50_ms,p90_ms,p99_ms,cpu_utilization,memory_utilization,queue_depth,in_flight,restarts\n",
        );
        for s in &self.scrapes {
            for m in &s.services {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{:.3},{:.3},{:.5},{:.3},{:.3},{:.3},{:.4},{:.4},{},{},{}",
                    s.time as f64 / 1e9,
                    m.name,
                    m.ready_pods,
                    m.desired_replicas,
                    m.config_version,
                    m.rps,
                    m.errors_per_s,
                    m.error_rate,
                    m.p50_ms,
                    m.p90_ms,
                    m.p99_ms,
                    m.cpu_utilization,
                    m.memory_utilization,
                    m.queue_depth,
                    m.in_flight,
                    m.restarts
                );
            }
        }
        out
    }

    /// Client metrics as CSV (one row per workload per scrape):
    /// `time_s,workload,service,completed,rps,errors,timeouts,rate_limited,error_rate,p50_ms,p90_ms,p99_ms`.
    pub fn client_metrics_csv(&self) -> String {
        let mut out = String::from(
            "time_s,workload,service,completed,rps,errors,timeouts,rate_limited,error_rate,p50_ms,p90_ms,p99_ms\n",
        );
        for s in &self.scrapes {
            for m in &s.clients {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{:.3},{},{},{},{:.5},{:.3},{:.3},{:.3}",
                    s.time as f64 / 1e9,
                    m.workload,
                    m.service_name,
                    m.completed,
                    m.rps,
                    m.errors,
                    m.timeouts,
                    m.rate_limited,
                    m.error_rate,
                    m.p50_ms,
                    m.p90_ms,
                    m.p99_ms
                );
            }
        }
        out
    }

    /// Pod metrics as CSV (one row per pod per scrape).
    pub fn pod_metrics_csv(&self) -> String {
        let mut out = String::from(
            "time_s,pod,service,node,phase,ready,cpu_utilization,memory_bytes,memory_utilization,rps,error_rate,p50_ms,p90_ms,p99_ms,queue_depth,in_flight,restarts,pool_in_use,pool_waiting,rejected,timeouts,retries\n",
        );
        for s in &self.scrapes {
            for m in &s.pods {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{:?},{},{:.4},{},{:.4},{:.3},{:.5},{:.3},{:.3},{:.3},{},{},{},{},{},{},{},{}",
                    s.time as f64 / 1e9,
                    m.name,
                    m.service,
                    m.node,
                    m.phase,
                    m.ready,
                    m.cpu_utilization,
                    m.memory_bytes,
                    m.memory_utilization,
                    m.rps,
                    m.error_rate,
                    m.p50_ms,
                    m.p90_ms,
                    m.p99_ms,
                    m.queue_depth,
                    m.in_flight,
                    m.restarts,
                    m.pool_in_use,
                    m.pool_waiting,
                    m.rejected,
                    m.timeouts,
                    m.retries
                );
            }
        }
        out
    }

    /// Log events as JSON lines.
    pub fn logs_jsonl(&self) -> String {
        let mut out = String::new();
        for l in &self.logs {
            out.push_str(&serde_json::to_string(l).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}
