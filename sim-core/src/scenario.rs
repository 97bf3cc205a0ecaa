//! The scenario: a serde description of a topology, its workload and the episode settings.
//!
//! Scenarios are TOML files users copy and edit, or values built in code. [`Scenario::from_toml_str`]
//! parses and validates; every validation error names the field (`services[2].operations[0].cpu`)
//! and the reason. Defaults are documented on each field and chosen to match a typical
//! Kubernetes deployment of an RPC service.

use crate::dist::DurationDist;
use crate::quantity::{Cpu, Memory};
use crate::time::SimDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The longest `duration` a scenario may have: 36,500 days (100 years) of simulated time.
/// With [`MAX_SCRAPE_INTERVAL`], keeps every clock value the engine derives from them (the
/// end, the next scrape tick: at most 110 years) far from `u64` overflow and within what a
/// snapshot holds (2^62 ns, 146 years).
pub const MAX_SCENARIO_DURATION: SimDuration = SimDuration(36_500 * 86_400 * crate::time::SECONDS);

/// The longest `scrape_interval` a scenario may have: 3,650 days (10 years).
pub const MAX_SCRAPE_INTERVAL: SimDuration = SimDuration(3_650 * 86_400 * crate::time::SECONDS);

/// The most replicas a deployment can have: the bound on a service's `replicas`, an
/// autoscaler's `max_replicas`, `Simulation::scale` and a snapshot's desired counts.
pub(crate) const MAX_REPLICAS: u32 = 10_000;

/// A complete episode description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, e.g. `"online-boutique"`.
    pub name: String,
    /// What the scenario shows and what its numbers rest on.
    #[serde(default)]
    pub description: String,
    /// Simulated length of one episode (at most [`MAX_SCENARIO_DURATION`]).
    pub duration: SimDuration,
    /// Metric scrape interval (default 1 s; at least 1 ms, at most [`MAX_SCRAPE_INTERVAL`]).
    #[serde(default = "default_scrape")]
    pub scrape_interval: SimDuration,
    /// Span sampling and log settings.
    #[serde(default)]
    pub telemetry: TelemetrySpec,
    /// Cluster-wide settings (pod eviction, scheduling, back-off).
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// The machines.
    pub nodes: Vec<NodeSpec>,
    /// The services, each run as one deployment.
    pub services: Vec<ServiceSpec>,
    /// Connection properties of caller -> callee pairs. A call in an operation's plan with no
    /// matching edge uses [`EdgeSpec::default_for`].
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
    /// Where traffic comes from.
    pub workload: Vec<WorkloadSpec>,
    /// Service level objectives, per service (used by fault labels, alerts and rewards).
    #[serde(default)]
    pub slos: Vec<SloSpec>,
}

fn default_scrape() -> SimDuration {
    SimDuration::from_secs(1)
}

/// Telemetry settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySpec {
    /// Share of traces (root requests) whose spans are kept, decided at the root (head sampling). Default 0.01.
    pub trace_sample_rate: f64,
    /// Most log events kept per pod, template and scrape interval; the rest are counted as suppressed. Default 5.
    pub log_burst: u32,
    /// Keep at most this many scrapes in memory (0 = all). Default 0.
    pub retain_scrapes: u32,
    /// Keep at most this many spans in memory (0 = all). Default 0.
    pub retain_spans: u32,
    /// Keep at most this many log events in memory (0 = all). Default 0.
    pub retain_logs: u32,
}

impl Default for TelemetrySpec {
    fn default() -> Self {
        TelemetrySpec {
            trace_sample_rate: 0.01,
            log_burst: 5,
            retain_scrapes: 0,
            retain_spans: 0,
            retain_logs: 0,
        }
    }
}

/// Cluster-wide behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// How long pods of a failed node wait before they are rescheduled elsewhere (Kubernetes'
    /// default is 5 min; 40 s keeps episodes short). Default 40 s.
    pub pod_eviction_timeout: SimDuration,
    /// First CrashLoopBackOff delay; doubles per crash up to `max_backoff` (Kubernetes: 10 s, 5 min).
    pub initial_backoff: SimDuration,
    /// Cap of the CrashLoopBackOff delay.
    pub max_backoff: SimDuration,
    /// Time a pending pod needs to be scheduled and its image pulled before it boots. Default 2 s.
    pub schedule_delay: SimDuration,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            pod_eviction_timeout: SimDuration::from_secs(40),
            initial_backoff: SimDuration::from_secs(10),
            max_backoff: SimDuration::from_secs(300),
            schedule_delay: SimDuration::from_secs(2),
        }
    }
}

/// A machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique name.
    pub name: String,
    /// CPU capacity (`"8"` = 8 cores).
    pub cpu: Cpu,
    /// Memory capacity.
    pub memory: Memory,
    /// Availability zone (for zone failures). Default `"zone-a"`.
    #[serde(default = "default_zone")]
    pub zone: String,
    /// Disk bandwidth in bytes per second shared by the node's pods. Default 200 MB/s.
    #[serde(default = "default_io_bw")]
    pub io_bandwidth: Memory,
}

fn default_zone() -> String {
    "zone-a".into()
}
fn default_io_bw() -> Memory {
    Memory(200_000_000)
}

/// What kind of component a service is. It sets defaults (databases have a volume) and is
/// reported to agents; the physics is the same for all.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// A stateless RPC/HTTP service.
    #[default]
    Stateless,
    /// A database (has a volume).
    Database,
    /// A cache (redis, memcached).
    Cache,
    /// A message queue broker.
    Queue,
    /// An ingress gateway / front end.
    Gateway,
}

/// CPU and memory requests and limits of a pod. Validation asks for positive limits and
/// requests no larger than their limits (as Kubernetes does), for a service's own resources
/// and a config version's alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU the scheduler reserves.
    pub cpu_request: Cpu,
    /// CPU above which the pod is throttled (CFS quota).
    pub cpu_limit: Cpu,
    /// Memory the scheduler reserves.
    pub memory_request: Memory,
    /// Memory above which the pod is OOM-killed.
    pub memory_limit: Memory,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu_request: Cpu(500),
            cpu_limit: Cpu(1000),
            memory_request: Memory(256 << 20),
            memory_limit: Memory(512 << 20),
        }
    }
}

/// A horizontal pod autoscaler on CPU utilisation (Kubernetes' HPA algorithm).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerSpec {
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Target mean CPU utilisation of the pods, relative to their request (0.5 = 50%).
    pub target_cpu: f64,
    /// How often the autoscaler evaluates (default 15 s, Kubernetes' sync period).
    #[serde(default = "default_hpa_period")]
    pub period: SimDuration,
    /// Scale-down stabilisation window (default 0 s; Kubernetes uses 300 s). Short windows flap.
    /// As in Kubernetes, a scale-down goes only as far as the highest recommendation the
    /// autoscaler made within this window (the current one included).
    #[serde(default)]
    pub scale_down_stabilization: SimDuration,
}

fn default_hpa_period() -> SimDuration {
    SimDuration::from_secs(15)
}

/// A pod template version of a deployment. Rolling out a version restarts every pod with it;
/// rolling back returns to the previous one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigVersion {
    /// A label, e.g. `"v2-bad-resources"`.
    pub label: String,
    /// Resources that replace the service's own (checked like them).
    pub resources: Option<Resources>,
    /// The process exits right after start (a bad flag or a missing secret): the pod crash-loops.
    pub crash_on_start: bool,
    /// Downstream services whose address is wrong in this version: calls to them are refused.
    pub broken_dependencies: Vec<String>,
    /// Multiplies every operation's CPU demand (a debug flag left on, a slow code path).
    pub cpu_factor: Option<f64>,
}

/// A service and its deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name.
    pub name: String,
    /// Component kind.
    #[serde(default)]
    pub kind: ServiceKind,
    /// Initial replica count.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Worker threads per pod: requests served at once. Default 16.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Queue capacity per pod; a request arriving at a full queue is rejected. Default 512.
    #[serde(default = "default_queue")]
    pub queue_capacity: u32,
    /// Requests and limits.
    #[serde(default)]
    pub resources: Resources,
    /// Resident memory of an idle pod. Default 64 MiB.
    #[serde(default = "default_baseline")]
    pub baseline_memory: Memory,
    /// Memory held per request admitted to the pod (queued, running or waiting on calls). Default 256 KiB.
    #[serde(default = "default_per_req")]
    pub memory_per_request: Memory,
    /// Time from container start to ready. Default 3 s.
    #[serde(default = "default_boot")]
    pub boot_time: SimDuration,
    /// Cold start: during this time after ready, CPU demand is multiplied by up to `warmup_factor`
    /// (linearly decaying to 1). Default 10 s.
    #[serde(default = "default_warmup")]
    pub warmup: SimDuration,
    /// Peak CPU multiplier right after start (JIT, empty caches). Default 2.0.
    #[serde(default = "default_warmup_factor")]
    pub warmup_factor: f64,
    /// The pods have a persistent volume (IO faults apply). Default: true for databases and queues.
    #[serde(default)]
    pub volume: Option<bool>,
    /// Nodes the pods may run on (by name); empty = any node.
    #[serde(default)]
    pub node_selector: Vec<String>,
    /// An autoscaler, if any.
    #[serde(default)]
    pub autoscaler: Option<AutoscalerSpec>,
    /// Extra pod template versions; version 0 is the service's own settings. Faults and agents
    /// roll versions out and back by index.
    #[serde(default)]
    pub config_versions: Vec<ConfigVersion>,
    /// The operations (endpoints) the service serves.
    pub operations: Vec<OperationSpec>,
}

fn one() -> u32 {
    1
}
fn default_workers() -> u32 {
    16
}
fn default_queue() -> u32 {
    512
}
fn default_baseline() -> Memory {
    Memory(64 << 20)
}
fn default_per_req() -> Memory {
    Memory(256 << 10)
}
fn default_boot() -> SimDuration {
    SimDuration::from_secs(3)
}
fn default_warmup() -> SimDuration {
    SimDuration::from_secs(10)
}
fn default_warmup_factor() -> f64 {
    2.0
}

impl ServiceSpec {
    /// Whether the pods have a volume (explicit setting, else databases and queues do).
    pub fn has_volume(&self) -> bool {
        self.volume.unwrap_or(matches!(
            self.kind,
            ServiceKind::Database | ServiceKind::Queue
        ))
    }

    /// A service with one operation of the given CPU demand and default settings; handy in code.
    ///
    /// ```
    /// use sim_core::scenario::ServiceSpec;
    /// use sim_core::dist::DurationDist;
    /// use sim_core::time::SimDuration;
    /// let s = ServiceSpec::simple("api", DurationDist::exponential(SimDuration::from_millis(2)));
    /// assert_eq!(s.operations[0].name, "default");
    /// ```
    pub fn simple(name: &str, cpu: DurationDist) -> Self {
        ServiceSpec {
            name: name.into(),
            kind: ServiceKind::Stateless,
            replicas: 1,
            workers: default_workers(),
            queue_capacity: default_queue(),
            resources: Resources::default(),
            baseline_memory: default_baseline(),
            memory_per_request: default_per_req(),
            boot_time: default_boot(),
            warmup: default_warmup(),
            warmup_factor: default_warmup_factor(),
            volume: None,
            node_selector: vec![],
            autoscaler: None,
            config_versions: vec![],
            operations: vec![OperationSpec::new("default", cpu)],
        }
    }
}

/// An operation (endpoint) of a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// Name, unique within the service.
    pub name: String,
    /// CPU time on one unthrottled core.
    pub cpu: DurationDist,
    /// Bytes read or written on the node's disk per request (0 = none).
    #[serde(default)]
    pub io: Memory,
    /// Overrides the service's `memory_per_request`.
    #[serde(default)]
    pub memory_per_request: Option<Memory>,
    /// Downstream calls, in stages: stages run one after another, the calls of a stage in parallel.
    #[serde(default)]
    pub stages: Vec<StageSpec>,
}

impl OperationSpec {
    /// An operation with no IO and no calls.
    pub fn new(name: &str, cpu: DurationDist) -> Self {
        OperationSpec {
            name: name.into(),
            cpu,
            io: Memory(0),
            memory_per_request: None,
            stages: vec![],
        }
    }
}

/// One stage of a call plan: calls issued in parallel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// The calls.
    pub calls: Vec<CallSpec>,
}

/// Whether the worker waits for a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallMode {
    /// The worker waits for the response; errors and timeouts propagate.
    #[default]
    Sync,
    /// Fire and forget (message queues, async notifications): the worker does not wait.
    Async,
}

/// A downstream call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// Callee service.
    pub service: String,
    /// Callee operation (default: the callee's first operation).
    #[serde(default)]
    pub operation: Option<String>,
    /// Probability that the call is made. Default 1.
    #[serde(default = "one_f")]
    pub probability: f64,
    /// Sync or async.
    #[serde(default)]
    pub mode: CallMode,
    /// A failure of this call is tolerated (a degraded answer) instead of failing the request.
    #[serde(default)]
    pub optional: bool,
}

fn one_f() -> f64 {
    1.0
}

/// Wire protocol of an edge (reported in spans; sets default timeouts).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1 or HTTP/2 REST.
    #[default]
    Http,
    /// gRPC.
    Grpc,
    /// Thrift RPC.
    Thrift,
    /// A database protocol.
    Db,
    /// A cache protocol.
    Cache,
    /// A message-queue protocol.
    Mq,
}

/// How a caller picks a callee pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancing {
    /// Rotate over ready pods.
    #[default]
    RoundRobin,
    /// The ready pod with the fewest outstanding calls from anyone.
    LeastOutstanding,
    /// Uniformly random ready pod.
    Random,
}

/// Client retry policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySpec {
    /// Total attempts including the first (1 = no retry).
    pub attempts: u32,
    /// Back-off before the first retry.
    pub backoff: SimDuration,
    /// Back-off growth per retry.
    pub multiplier: f64,
    /// Cap of the back-off.
    pub max_backoff: SimDuration,
    /// Share of the back-off that is randomised (0 = none, 1 = full jitter).
    pub jitter: f64,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            attempts: 1,
            backoff: SimDuration::from_millis(25),
            multiplier: 2.0,
            max_backoff: SimDuration::from_secs(1),
            jitter: 0.2,
        }
    }
}

/// Connection properties of calls from one service to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// Caller service.
    pub from: String,
    /// Callee service.
    pub to: String,
    /// Protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// Per-attempt timeout (includes waiting for a pooled connection). Default 1 s.
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Retry policy. Default: no retry.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Connections per caller pod; a call waits for a free one. Default: unbounded.
    #[serde(default)]
    pub pool_size: Option<u32>,
    /// Load balancing over the callee's ready pods.
    #[serde(default)]
    pub load_balancing: LoadBalancing,
    /// One-way network latency. Default constant 200 us (same-zone RPC hop).
    #[serde(default = "default_latency")]
    pub latency: DurationDist,
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}
fn default_latency() -> DurationDist {
    DurationDist::constant(SimDuration::from_micros_const(200))
}

impl SimDuration {
    /// A duration of `us` microseconds (const helper).
    pub const fn from_micros_const(us: u64) -> Self {
        SimDuration(us * 1_000)
    }
}

impl EdgeSpec {
    /// The edge used for a call that the scenario lists no edge for: protocol from the callee's
    /// kind, 1 s timeout, no retry, unbounded pool, round robin, 200 us latency.
    pub fn default_for(from: &str, to: &str, callee: ServiceKind) -> Self {
        EdgeSpec {
            from: from.into(),
            to: to.into(),
            protocol: match callee {
                ServiceKind::Database => Protocol::Db,
                ServiceKind::Cache => Protocol::Cache,
                ServiceKind::Queue => Protocol::Mq,
                _ => Protocol::Grpc,
            },
            timeout: default_timeout(),
            retry: RetrySpec::default(),
            pool_size: None,
            load_balancing: LoadBalancing::RoundRobin,
            latency: default_latency(),
        }
    }
}

/// A time-varying arrival rate in requests per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateSpec {
    /// A constant rate.
    Constant {
        /// Requests per second.
        rps: f64,
    },
    /// `before` until `at`, then `after`.
    Step {
        /// Rate before the step.
        before: f64,
        /// Rate after the step.
        after: f64,
        /// When the step happens.
        at: SimDuration,
    },
    /// Linear from `from` at `start` to `to` at `end`, constant outside.
    Ramp {
        /// Rate up to `start`.
        from: f64,
        /// Rate from `end`.
        to: f64,
        /// Start of the ramp.
        start: SimDuration,
        /// End of the ramp.
        end: SimDuration,
    },
    /// `base`, with `peak` during `[start, start + length)`.
    Spike {
        /// Normal rate.
        base: f64,
        /// Rate during the spike.
        peak: f64,
        /// Start of the spike.
        start: SimDuration,
        /// Length of the spike.
        length: SimDuration,
    },
    /// `mean * (1 + amplitude * sin(2 pi t / period))`.
    Diurnal {
        /// Mean rate.
        mean: f64,
        /// Relative amplitude in [0, 1].
        amplitude: f64,
        /// Period (a day is `"24h"`; compress it for short episodes).
        period: SimDuration,
    },
    /// Piecewise linear through `(time, rps)` points (constant before the first and after the last).
    Piecewise {
        /// The points, in increasing time. Load them from a CSV file with [`RateSpec::piecewise_from_csv`].
        points: Vec<(SimDuration, f64)>,
    },
}

impl RateSpec {
    /// The rate at time `t` (ns).
    pub fn rate_at(&self, t: u64) -> f64 {
        match self {
            RateSpec::Constant { rps } => *rps,
            RateSpec::Step { before, after, at } => {
                if t < at.0 {
                    *before
                } else {
                    *after
                }
            }
            RateSpec::Ramp {
                from,
                to,
                start,
                end,
            } => {
                if t <= start.0 {
                    *from
                } else if t >= end.0 {
                    *to
                } else {
                    from + (to - from) * (t - start.0) as f64 / (end.0 - start.0) as f64
                }
            }
            RateSpec::Spike {
                base,
                peak,
                start,
                length,
            } => {
                if t >= start.0 && t < start.0.saturating_add(length.0) {
                    *peak
                } else {
                    *base
                }
            }
            RateSpec::Diurnal {
                mean,
                amplitude,
                period,
            } => {
                let ph = (t % period.0.max(1)) as f64 / period.0.max(1) as f64;
                mean * (1.0 + amplitude * (std::f64::consts::TAU * ph).sin())
            }
            RateSpec::Piecewise { points } => {
                let Some(first) = points.first() else {
                    return 0.0;
                };
                if t <= first.0.0 {
                    return first.1;
                }
                // the first point at or after t (binary search: CSV rates can be long)
                let k = points.partition_point(|p| p.0.0 < t);
                let Some(&(bt, bv)) = points.get(k) else {
                    return points[points.len() - 1].1;
                };
                let (at, av) = points[k - 1];
                let span = (bt.0 - at.0).max(1) as f64;
                av + (bv - av) * (t - at.0) as f64 / span
            }
        }
        .max(0.0)
    }

    /// A piece of an upper envelope of the rate, for thinning: `(bound, until)` with
    /// `rate_at(x) <= bound` for every `x` in `[t, until)`, `until > t` (`u64::MAX`: for ever).
    /// Bounds are local (a spike's peak bounds only the spike), so thinning wastes few draws,
    /// and two rates that agree up to a time draw the same arrivals up to it.
    ///
    /// ```
    /// use sim_core::scenario::RateSpec;
    /// use sim_core::time::SimDuration;
    /// let r = RateSpec::Spike { base: 100.0, peak: 500.0, start: SimDuration::from_secs(30), length: SimDuration::from_secs(10) };
    /// assert_eq!(r.envelope(0), (100.0, 30_000_000_000));
    /// assert_eq!(r.envelope(35_000_000_000), (500.0, 40_000_000_000));
    /// assert_eq!(r.envelope(40_000_000_000), (100.0, u64::MAX));
    /// ```
    pub fn envelope(&self, t: u64) -> (f64, u64) {
        let (bound, until) = match self {
            RateSpec::Constant { rps } => (*rps, u64::MAX),
            RateSpec::Step { before, after, at } => {
                if t < at.0 {
                    (*before, at.0)
                } else {
                    (*after, u64::MAX)
                }
            }
            RateSpec::Ramp {
                from,
                to,
                start,
                end,
            } => {
                if t < start.0 {
                    (*from, start.0)
                } else if t < end.0 {
                    (from.max(*to), end.0)
                } else {
                    (*to, u64::MAX)
                }
            }
            RateSpec::Spike {
                base,
                peak,
                start,
                length,
            } => {
                let stop = start.0.saturating_add(length.0);
                if t < start.0 {
                    (*base, start.0)
                } else if t < stop {
                    (*peak, stop)
                } else {
                    (*base, u64::MAX)
                }
            }
            RateSpec::Diurnal { .. } => (self.max_rate(), u64::MAX),
            RateSpec::Piecewise { points } => match points.first() {
                None => (0.0, u64::MAX),
                Some(&(p0, v0)) if t < p0.0 => (v0, p0.0),
                Some(_) => {
                    let k = points.partition_point(|p| p.0.0 <= t);
                    match points.get(k) {
                        None => (points[points.len() - 1].1, u64::MAX),
                        Some(&(bt, bv)) => (points[k - 1].1.max(bv), bt.0),
                    }
                }
            },
        };
        (bound.max(0.0), until)
    }

    /// An upper bound of the rate over all time (for thinning).
    pub fn max_rate(&self) -> f64 {
        match self {
            RateSpec::Constant { rps } => *rps,
            RateSpec::Step { before, after, .. } => before.max(*after),
            RateSpec::Ramp { from, to, .. } => from.max(*to),
            RateSpec::Spike { base, peak, .. } => base.max(*peak),
            RateSpec::Diurnal {
                mean, amplitude, ..
            } => mean * (1.0 + amplitude.abs()),
            RateSpec::Piecewise { points } => points.iter().map(|p| p.1).fold(0.0, f64::max),
        }
        .max(0.0)
    }

    fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && (0.0..=1e9).contains(&v);
        let bad = match self {
            RateSpec::Constant { rps } => !ok(*rps),
            RateSpec::Step { before, after, .. } => !ok(*before) || !ok(*after),
            RateSpec::Ramp {
                from,
                to,
                start,
                end,
            } => !ok(*from) || !ok(*to) || start > end,
            RateSpec::Spike { base, peak, .. } => !ok(*base) || !ok(*peak),
            RateSpec::Diurnal {
                mean,
                amplitude,
                period,
            } => !ok(*mean) || !(0.0..=1.0).contains(amplitude) || period.0 == 0,
            RateSpec::Piecewise { points } => {
                points.is_empty()
                    || points.iter().any(|p| !ok(p.1))
                    || points.windows(2).any(|w| w[0].0 > w[1].0)
            }
        };
        if bad {
            Err("rates must be finite and in [0, 1e9], times increasing, amplitude in [0, 1], period > 0".into())
        } else {
            Ok(())
        }
    }

    /// Reads a piecewise rate from CSV text with lines `seconds,rps` (a header line is allowed).
    /// Errors name the line.
    pub fn piecewise_from_csv(text: &str) -> Result<RateSpec, ScenarioError> {
        let mut points = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split(',');
            let (a, b) = (
                it.next().unwrap_or("").trim(),
                it.next().unwrap_or("").trim(),
            );
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(t), Ok(r))
                    if t.is_finite() && (0.0..1e9).contains(&t) && r.is_finite() && r >= 0.0 =>
                {
                    points.push((SimDuration((t * 1e9).round() as u64), r))
                }
                _ if i == 0 => continue,
                _ => {
                    return Err(ScenarioError::Invalid {
                        field: format!("rate file line {}", i + 1),
                        reason: format!("expected `seconds,rps`, got {line:?}"),
                    });
                }
            }
        }
        let spec = RateSpec::Piecewise { points };
        spec.validate().map_err(|reason| ScenarioError::Invalid {
            field: "rate file".into(),
            reason,
        })?;
        Ok(spec)
    }
}

/// One operation of an entry service and its share of the entry's traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// Operation name.
    pub operation: String,
    /// Relative weight.
    pub weight: f64,
}

/// How external clients behave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpec {
    /// Per-attempt timeout of the client. Default 10 s.
    pub timeout: SimDuration,
    /// Client retries (browsers, mobile apps and SDKs retry). Default: none.
    pub retry: RetrySpec,
    /// One-way latency from the client to the entry service. Default 0.
    pub latency: DurationDist,
}

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            timeout: SimDuration::from_secs(10),
            retry: RetrySpec::default(),
            latency: DurationDist::default(),
        }
    }
}

/// Open-loop (Poisson) or closed-loop (users with think time) traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalSpec {
    /// Poisson arrivals at a time-varying rate.
    Open {
        /// The rate.
        rate: RateSpec,
    },
    /// A fixed population of users, each sending a request, waiting for its answer, then thinking.
    Closed {
        /// Number of users.
        users: u32,
        /// Think time between a response and the next request.
        think_time: DurationDist,
    },
}

/// Traffic into one entry service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The entry service.
    pub entry: String,
    /// Arrival process.
    pub arrivals: ArrivalSpec,
    /// Operation mix (default: the entry's first operation only).
    #[serde(default)]
    pub mix: Vec<MixEntry>,
    /// Client behaviour.
    #[serde(default)]
    pub client: ClientSpec,
}

/// Service level objectives of a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// The service.
    pub service: String,
    /// p99 latency objective per scrape window.
    #[serde(default)]
    pub latency_p99: Option<SimDuration>,
    /// Error-rate objective per scrape window (0.01 = 1%).
    #[serde(default)]
    pub error_rate: Option<f64>,
}

/// Scenario loading and validation errors. Each names the file or field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has a field of the wrong type (the message has line and column).
    #[error("{origin}: {message}")]
    Parse {
        /// File path or `<string>`.
        origin: String,
        /// The parser's message, with the line, column and field.
        message: String,
    },
    /// A field has a value the simulator cannot accept.
    #[error("invalid scenario: {field}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `services[1].operations[0].stages[0].calls[2].service`.
        field: String,
        /// Why.
        reason: String,
    },
}

impl Scenario {
    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ScenarioError> {
        Self::from_toml_named(text, "<string>")
    }

    fn from_toml_named(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|source| ScenarioError::Io {
            path: p.display().to_string(),
            source,
        })?;
        Self::from_toml_named(&text, &p.display().to_string())
    }

    /// Serialises to TOML.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Index of a service by name.
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Checks every cross-reference and range. Called by the parsers; call it yourself on a
    /// scenario built in code (the simulator does).
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let inv = |field: String, reason: &str| {
            Err(ScenarioError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        if self.duration.0 == 0 {
            return inv("duration".into(), "must be positive");
        }
        if self.duration > MAX_SCENARIO_DURATION {
            return inv("duration".into(), "must be at most 36500 days (100 years)");
        }
        if self.scrape_interval.0 < 1_000_000 {
            return inv("scrape_interval".into(), "must be at least 1ms");
        }
        if self.scrape_interval > MAX_SCRAPE_INTERVAL {
            return inv(
                "scrape_interval".into(),
                "must be at most 3650 days (10 years)",
            );
        }
        let t = &self.telemetry;
        if !(0.0..=1.0).contains(&t.trace_sample_rate) {
            return inv("telemetry.trace_sample_rate".into(), "must be in [0, 1]");
        }
        if self.nodes.is_empty() {
            return inv("nodes".into(), "at least one node is needed");
        }
        if self.nodes.len() > 65_535 || self.services.len() > 65_535 {
            return inv("nodes".into(), "at most 65535 nodes and services");
        }
        let mut names = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !names.insert(n.name.as_str()) {
                return inv(format!("nodes[{i}].name"), "duplicate node name");
            }
            if n.cpu.0 == 0 {
                return inv(format!("nodes[{i}].cpu"), "must be positive");
            }
            if n.io_bandwidth.0 == 0 {
                return inv(format!("nodes[{i}].io_bandwidth"), "must be positive");
            }
        }
        if self.services.is_empty() {
            return inv("services".into(), "at least one service is needed");
        }
        let mut snames = BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let f = |x: &str| format!("services[{i}].{x}");
            if s.name.is_empty() || !snames.insert(s.name.as_str()) {
                return inv(f("name"), "empty or duplicate service name");
            }
            if s.workers == 0 || s.workers > 100_000 {
                return inv(f("workers"), "must be in 1..=100000");
            }
            if s.replicas > MAX_REPLICAS {
                return inv(f("replicas"), "at most 10000");
            }
            if let Err((field, why)) = validate_resources(&s.resources) {
                return inv(f(&format!("resources.{field}")), why);
            }
            if !(s.warmup_factor.is_finite() && (1.0..=100.0).contains(&s.warmup_factor)) {
                return inv(f("warmup_factor"), "must be in [1, 100]");
            }
            for (j, n) in s.node_selector.iter().enumerate() {
                if !names.contains(n.as_str()) {
                    return inv(f(&format!("node_selector[{j}]")), "unknown node");
                }
            }
            if let Some(a) = &s.autoscaler
                && let Err((field, why)) = validate_autoscaler(a)
            {
                return inv(f(field), &why);
            }
            for (k, c) in s.config_versions.iter().enumerate() {
                // a version's resources replace the service's: checked the same way
                if let Some(r) = &c.resources
                    && let Err((field, why)) = validate_resources(r)
                {
                    return inv(f(&format!("config_versions[{k}].resources.{field}")), why);
                }
                if let Some(cf) = c.cpu_factor
                    && !(cf.is_finite() && cf > 0.0 && cf <= 1000.0)
                {
                    return inv(
                        f(&format!("config_versions[{k}].cpu_factor")),
                        "must be in (0, 1000]",
                    );
                }
            }
            if s.operations.is_empty() {
                return inv(f("operations"), "at least one operation is needed");
            }
            if s.operations.len() > 65_535 {
                return inv(f("operations"), "at most 65535 operations");
            }
            let mut onames = BTreeSet::new();
            for (j, o) in s.operations.iter().enumerate() {
                let g = |x: &str| format!("services[{i}].operations[{j}].{x}");
                if !onames.insert(o.name.as_str()) {
                    return inv(g("name"), "duplicate operation name");
                }
                if let Err(e) = o.cpu.validate() {
                    return inv(g("cpu"), &e);
                }
                if o.stages.len() > 1000 {
                    return inv(g("stages"), "at most 1000 stages");
                }
                for (k, st) in o.stages.iter().enumerate() {
                    for (c, call) in st.calls.iter().enumerate() {
                        let h = |x: &str| {
                            format!("services[{i}].operations[{j}].stages[{k}].calls[{c}].{x}")
                        };
                        let Some(callee) = self.services.iter().find(|x| x.name == call.service)
                        else {
                            return inv(h("service"), "unknown service");
                        };
                        if let Some(op) = &call.operation
                            && !callee.operations.iter().any(|x| &x.name == op)
                        {
                            return inv(h("operation"), "unknown operation of that service");
                        }
                        if !(0.0..=1.0).contains(&call.probability) {
                            return inv(h("probability"), "must be in [0, 1]");
                        }
                    }
                }
            }
        }
        for (i, e) in self.edges.iter().enumerate() {
            let f = |x: &str| format!("edges[{i}].{x}");
            if !snames.contains(e.from.as_str()) {
                return inv(f("from"), "unknown service");
            }
            if !snames.contains(e.to.as_str()) {
                return inv(f("to"), "unknown service");
            }
            if e.timeout.0 == 0 {
                return inv(f("timeout"), "must be positive");
            }
            validate_retry(&e.retry).or_else(|r| inv(f("retry"), &r))?;
            if e.pool_size == Some(0) {
                return inv(f("pool_size"), "must be positive (omit it for unbounded)");
            }
            if let Err(r) = e.latency.validate() {
                return inv(f("latency"), &r);
            }
            if self.edges[..i]
                .iter()
                .any(|x| x.from == e.from && x.to == e.to)
            {
                return inv(f("to"), "duplicate edge");
            }
        }
        if self.workload.is_empty() {
            return inv("workload".into(), "at least one workload is needed");
        }
        for (i, w) in self.workload.iter().enumerate() {
            let f = |x: &str| format!("workload[{i}].{x}");
            let Some(entry) = self.services.iter().find(|s| s.name == w.entry) else {
                return inv(f("entry"), "unknown service");
            };
            match &w.arrivals {
                ArrivalSpec::Open { rate } => {
                    if let Err(r) = rate.validate() {
                        return inv(f("arrivals.rate"), &r);
                    }
                }
                ArrivalSpec::Closed { users, think_time } => {
                    if *users > 1_000_000 {
                        return inv(f("arrivals.users"), "at most 1000000");
                    }
                    if let Err(r) = think_time.validate() {
                        return inv(f("arrivals.think_time"), &r);
                    }
                }
            }
            for (j, m) in w.mix.iter().enumerate() {
                if !entry.operations.iter().any(|o| o.name == m.operation) {
                    return inv(
                        f(&format!("mix[{j}].operation")),
                        "unknown operation of the entry service",
                    );
                }
                if !(m.weight.is_finite() && m.weight >= 0.0) {
                    return inv(f(&format!("mix[{j}].weight")), "must be finite and >= 0");
                }
            }
            if !w.mix.is_empty() && w.mix.iter().map(|m| m.weight).sum::<f64>() <= 0.0 {
                return inv(f("mix"), "weights sum to zero");
            }
            if w.client.timeout.0 == 0 {
                return inv(f("client.timeout"), "must be positive");
            }
            validate_retry(&w.client.retry).or_else(|r| inv(f("client.retry"), &r))?;
        }
        for (i, s) in self.slos.iter().enumerate() {
            if !snames.contains(s.service.as_str()) {
                return inv(format!("slos[{i}].service"), "unknown service");
            }
            if let Some(e) = s.error_rate
                && !(0.0..=1.0).contains(&e)
            {
                return inv(format!("slos[{i}].error_rate"), "must be in [0, 1]");
            }
        }
        Ok(())
    }
}

/// Checks a pod's resources (the service's own, or a config version's): positive CPU and
/// memory limits, requests no larger than their limits. The error names the field
/// (`cpu_limit`, ...) and says why.
pub(crate) fn validate_resources(r: &Resources) -> Result<(), (&'static str, &'static str)> {
    if r.cpu_limit.0 == 0 {
        return Err(("cpu_limit", "must be positive"));
    }
    if r.memory_limit.0 == 0 {
        return Err(("memory_limit", "must be positive"));
    }
    if r.cpu_request > r.cpu_limit {
        return Err(("cpu_request", "must not be more than cpu_limit"));
    }
    if r.memory_request > r.memory_limit {
        return Err(("memory_request", "must not be more than memory_limit"));
    }
    Ok(())
}

/// Checks an autoscaler: `min_replicas <= max_replicas <= 10000`, `0 < target_cpu <= 10`,
/// `0 < period <= 1 day`, a stabilisation window of at most 1 day. The error names the field
/// (`autoscaler.min_replicas`, ...) and says why.
pub(crate) fn validate_autoscaler(a: &AutoscalerSpec) -> Result<(), (&'static str, String)> {
    const DAY: u64 = 86_400 * crate::time::SECONDS;
    if a.max_replicas > MAX_REPLICAS {
        return Err(("autoscaler.max_replicas", "at most 10000".into()));
    }
    if a.min_replicas > a.max_replicas {
        return Err((
            "autoscaler.min_replicas",
            format!(
                "{} is more than max_replicas {}",
                a.min_replicas, a.max_replicas
            ),
        ));
    }
    if !(a.target_cpu.is_finite() && a.target_cpu > 0.0 && a.target_cpu <= 10.0) {
        return Err((
            "autoscaler.target_cpu",
            format!("{} not in (0, 10]", a.target_cpu),
        ));
    }
    if a.period.0 == 0 || a.period.0 > DAY {
        return Err(("autoscaler.period", "must be in (0, 1 day]".into()));
    }
    if a.scale_down_stabilization.0 > DAY {
        return Err((
            "autoscaler.scale_down_stabilization",
            "at most 1 day".into(),
        ));
    }
    Ok(())
}

/// Checks a retry policy: 1..=100 attempts, multiplier in [1, 100], jitter in [0, 1],
/// back-offs of at most a day.
pub(crate) fn validate_retry(r: &RetrySpec) -> Result<(), String> {
    const DAY: u64 = 86_400 * crate::time::SECONDS;
    if r.backoff.0 > DAY || r.max_backoff.0 > DAY {
        return Err("back-offs must be at most 1 day".into());
    }
    if r.attempts == 0 || r.attempts > 100 {
        return Err("attempts must be in 1..=100".into());
    }
    if !(r.multiplier.is_finite() && r.multiplier >= 1.0 && r.multiplier <= 100.0) {
        return Err("multiplier must be in [1, 100]".into());
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        return Err("jitter must be in [0, 1]".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> SimDuration {
        SimDuration::from_secs(s)
    }

    fn rates() -> impl Strategy<Value = RateSpec> {
        let r = 0.0f64..1000.0;
        let t = 0u64..200;
        prop_oneof![
            r.clone().prop_map(|rps| RateSpec::Constant { rps }),
            (r.clone(), r.clone(), t.clone()).prop_map(|(before, after, at)| RateSpec::Step {
                before,
                after,
                at: secs(at)
            }),
            (r.clone(), r.clone(), t.clone(), 0u64..100).prop_map(|(from, to, a, d)| {
                RateSpec::Ramp {
                    from,
                    to,
                    start: secs(a),
                    end: secs(a + d),
                }
            }),
            (r.clone(), r.clone(), t.clone(), 0u64..100).prop_map(|(base, peak, a, d)| {
                RateSpec::Spike {
                    base,
                    peak,
                    start: secs(a),
                    length: secs(d),
                }
            }),
            (r.clone(), 0.0f64..1.0, 1u64..100).prop_map(|(mean, amplitude, p)| {
                RateSpec::Diurnal {
                    mean,
                    amplitude,
                    period: secs(p),
                }
            }),
            proptest::collection::vec((0u64..50, r), 1..12).prop_map(|v| {
                let mut acc = 0;
                RateSpec::Piecewise {
                    points: v
                        .into_iter()
                        .map(|(dt, x)| {
                            acc += dt;
                            (secs(acc), x)
                        })
                        .collect(),
                }
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The envelope bounds the rate on its whole piece, and pieces advance.
        #[test]
        fn envelope_bounds_the_rate(r in rates(), t in 0u64..400_000_000_000) {
            let (bound, until) = r.envelope(t);
            prop_assert!(until > t);
            prop_assert!(bound <= r.max_rate() + 1e-9);
            let end = until.min(t + 400_000_000_000);
            for k in 0..=64u64 {
                let x = t + (end - 1 - t) / 64 * k;
                prop_assert!(r.rate_at(x) <= bound + 1e-9, "{r:?} at {x}: {} > {bound}", r.rate_at(x));
            }
            prop_assert!(r.rate_at(end - 1) <= bound + 1e-9);
        }

        /// The binary search of piecewise rates agrees with a linear scan.
        #[test]
        fn piecewise_rate_matches_a_linear_scan(r in rates(), t in 0u64..700_000_000_000) {
            if let RateSpec::Piecewise { points } = &r {
                let want = if t <= points[0].0.0 {
                    points[0].1
                } else {
                    points
                        .windows(2)
                        .find(|w| t <= w[1].0.0)
                        .map(|w| {
                            let span = (w[1].0.0 - w[0].0.0).max(1) as f64;
                            w[0].1 + (w[1].1 - w[0].1) * (t - w[0].0.0) as f64 / span
                        })
                        .unwrap_or(points[points.len() - 1].1)
                };
                prop_assert!((r.rate_at(t) - want).abs() < 1e-9);
            }
        }
    }
}
