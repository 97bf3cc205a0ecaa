//! The event loop and the request flow (the hot path). Plain data, dense arrays, no ECS here:
//! an event handler touches a few array slots and schedules one or two events.
//!
//! # The request model
//!
//! An *invocation* is the caller's side of a call (client or pod -> service): it picks a
//! callee pod, holds a pooled connection, waits with a per-attempt timeout and retries
//! with back-off. A *job* is the callee's side: the execution of an operation on a pod:
//! queue for a worker, CPU, disk IO, then the call stages. A timed-out attempt is abandoned
//! by the caller but the callee still executes it (wasted work): with retries, this is what
//! turns a short latency blip into a self-sustaining retry storm (a metastable failure).
//!
//! # CPU contention (a documented approximation of processor sharing)
//!
//! A job's CPU phase runs at a rate fixed when it starts: `min(1, node_share, pod_share)`,
//! where `node_share = cores / (threads on CPU on the node + stress)` and
//! `pod_share = cpu_limit / (threads on CPU in the pod + stress in the pod)`. Exact when
//! nothing is contended (each worker has a core), and exact on average for processor sharing
//! under steady load; it does not re-time running jobs when contention changes, which keeps
//! every CPU phase to one event. Disk IO works the same way with the node's bandwidth.

use crate::hist::LatencyHist;
use crate::model::*;
use crate::rng::{StreamKind, below, bernoulli, mix64, stream, unit};
use crate::scenario::{ArrivalSpec, AutoscalerSpec, LoadBalancing, MAX_REPLICAS};
use crate::telemetry::*;
use crate::time::SECONDS;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// One call of a scripted request (a replayed trace): which service serves it, with which
/// operation, how much CPU it takes, and the calls it makes, in stages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptNode {
    /// Operation (its service serves the call; its plan is ignored).
    pub op: OpId,
    /// CPU demand on one core (ns), e.g. the span's self time.
    pub cpu_ns: u64,
    /// Whether the caller waits for this call (ignored for the root).
    pub sync: bool,
    /// Calls made after the CPU phase: stages in order, calls of a stage in parallel; each an index
    /// into the same script (children must have larger indices than their parent).
    pub stages: Vec<Vec<u32>>,
}

/// A request whose call tree is given instead of drawn from the operations' plans.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptedRequest {
    /// Workload whose client settings (timeout, retries) apply.
    pub workload: u32,
    /// The call tree; node 0 is the entry call.
    pub nodes: Vec<ScriptNode>,
    /// Where the request comes from (e.g. the trace id of a replayed trace): kept for its
    /// sampled trace in [`crate::telemetry::Telemetry::trace_sources`], so exported spans can
    /// name their source.
    #[serde(default)]
    pub source_trace: Option<String>,
}

/// Running this long without a crash resets the CrashLoopBackOff delay (Kubernetes: 10 min).
const BACKOFF_RESET_NS: u64 = 600 * SECONDS;

/// Shortest think time of a closed-loop user (ns).
const MIN_THINK_NS: u64 = 1_000_000;

/// The latency quantiles every scrape reports (p50, p90, p99).
const SCRAPE_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// `part / whole` as a share in [0, 1] (0 for an empty window).
#[inline]
fn share(part: u32, whole: u32) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

/// "None" marker for u32 ids.
pub const NONE: u32 = u32::MAX;

/// A pending event. 12 bytes; the time lives in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Ev {
    /// Next open-loop arrival of a workload.
    Arrival(u32),
    /// A closed-loop user wakes up and sends a request.
    UserWake(u32),
    /// Start the next attempt of an invocation (after back-off).
    Send(u32, u32),
    /// An attempt's request reaches the callee pod (inv, attempt, pod).
    Deliver(u32, u32, u32),
    /// A job's CPU phase ends.
    CpuDone(u32, u32),
    /// A job's disk phase ends.
    IoDone(u32, u32),
    /// A response reaches the caller.
    Response(u32, u32, Status),
    /// An attempt's timeout fires (inv, attempt, inv slot generation).
    Timeout(u32, u32, u32),
    /// The earliest deadline in an edge's timeout FIFO is due (edge).
    EdgeTimeouts(u32),
    /// A pod's lifecycle timer (boot done, back-off over, eviction).
    PodTimer(u32, u32),
    /// A scripted (replayed) request arrives (index into `injections`).
    Inject(u32),
}

/// Who waits for an invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Caller {
    /// An external client, for this root request.
    Client,
    /// A job (id, generation) waiting in a stage.
    Job(u32, u32),
    /// Nobody (async call).
    Detached,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum InvState {
    Backoff,
    WaitConn,
    InFlight,
    Done,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Inv {
    pub caller: Caller,
    pub root: u32,
    pub edge: u32,
    pub op: u32,
    pub caller_pod: u32,
    pub caller_service: u32,
    pub parent_span: u64,
    pub attempts: u32,
    pub generation: u32,
    pub state: InvState,
    pub refs: u32,
    pub target: u32,
    pub conn_held: bool,
    pub sync: bool,
    pub optional: bool,
    pub script: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JobPhase {
    Queued,
    Cpu,
    Io,
    Calls,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub pod: u32,
    pub pod_gen: u32,
    pub op: u32,
    pub inv: u32,
    pub attempt: u32,
    pub root: u32,
    pub span: u64,
    pub arrived: u64,
    pub stage: u32,
    pub pending: u32,
    pub failed: Option<Status>,
    pub phase: JobPhase,
    pub mem: u64,
    pub script: u32,
}

/// What a job does after issuing a stage's calls.
enum StageEnd {
    /// Wait for sync calls still in flight.
    Wait,
    /// A required call failed: stop and answer with an error.
    Failed,
    /// Go on to the next stage.
    Next,
}

/// The fields of a finished job that outlive its slot.
struct JobDone {
    pod: u32,
    op: u32,
    inv: u32,
    attempt: u32,
    root: u32,
    span: u64,
    arrived: u64,
    mem: u64,
    failed: Option<Status>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Root {
    pub workload: u32,
    pub op: u32,
    pub user: u32,
    pub arrival: u64,
    pub trace: u64,
    pub live: u32,
    pub responded: bool,
    pub status: Status,
    pub response: u64,
    pub last_end: u64,
    pub attempts: u32,
    pub sampled: bool,
    pub script: Vec<ScriptNode>,
}

/// A slab with generations: ids are reused, stale references are detected by generation.
/// A slot's generation is odd while it holds a live item and even while it is free, so
/// checking a reference is one comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Slab<T> {
    pub items: Vec<T>,
    pub gens: Vec<u32>,
    pub free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: vec![],
            gens: vec![],
            free: vec![],
        }
    }
}

impl<T> Slab<T> {
    #[inline(always)]
    pub fn alloc(&mut self, x: T) -> u32 {
        if let Some(i) = self.free.pop() {
            self.items[i as usize] = x;
            let g = &mut self.gens[i as usize];
            *g = g.wrapping_add(1) | 1;
            i
        } else {
            self.grow(x)
        }
    }
    #[cold]
    #[inline(never)]
    fn grow(&mut self, x: T) -> u32 {
        self.items.push(x);
        self.gens.push(1);
        (self.items.len() - 1) as u32
    }
    #[inline]
    pub fn release(&mut self, i: u32) {
        let g = &mut self.gens[i as usize];
        *g = (*g | 1).wrapping_add(1);
        self.free.push(i);
    }
    #[inline]
    pub fn generation(&self, i: u32) -> u32 {
        self.gens[i as usize]
    }
    /// Whether slot `i` holds a live item.
    #[inline]
    pub fn is_live(&self, i: u32) -> bool {
        self.gens.get(i as usize).is_some_and(|g| g & 1 == 1)
    }
    /// Whether `(i, g)` still names the live item it was taken from (`g` read while live).
    #[inline]
    pub fn valid(&self, i: u32, g: u32) -> bool {
        g & 1 == 1 && self.gens.get(i as usize) == Some(&g)
    }
    pub fn capacity(&self) -> usize {
        self.items.len()
    }
    pub fn in_use(&self) -> usize {
        self.items.len() - self.free.len()
    }
}

/// Network modifiers (delay, jitter, loss) on a pod's traffic or on an edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetFault {
    /// Added one-way delay (ns).
    pub delay: u64,
    /// Uniform jitter added on top, in [0, jitter] (ns).
    pub jitter: u64,
    /// Probability a message is lost.
    pub loss: f64,
}

impl NetFault {
    fn is_none(&self) -> bool {
        self.delay == 0 && self.jitter == 0 && self.loss <= 0.0
    }
}

/// Disk modifiers of a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IoFault {
    /// Added latency of an affected disk operation (ns).
    pub delay: u64,
    /// Share of operations delayed.
    pub delay_fraction: f64,
    /// Share of operations that fail.
    pub error_fraction: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PodWindow {
    pub requests: u32,
    pub errors: u32,
    pub rejected: u32,
    pub timeouts: u32,
    pub retries: u32,
    pub cpu_ns: u64,
    pub hist: LatencyHist,
    pub logs: [u16; LOG_TEMPLATES],
}

/// Client-side counters of one workload over one scrape window (what the clients saw).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ClientWindow {
    /// Root requests answered or failed at the client.
    pub completed: u32,
    /// Of those, not Ok (timeouts, refusals, 429s included).
    pub errors: u32,
    /// Of the errors, timeouts.
    pub timeouts: u32,
    /// Of the errors, rate limited (429).
    pub rate_limited: u32,
    /// Client-seen latency (arrival to answer).
    pub hist: LatencyHist,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PodRt {
    pub service: u32,
    pub node: u32,
    pub generation: u32,
    pub name: String,
    pub phase: Phase,
    pub ready: bool,
    pub terminating: bool,
    pub version: u32,
    pub cpu_limit: u32,
    pub cpu_request: u32,
    pub mem_limit: u64,
    pub mem_request: u64,
    pub crash_on_start: bool,
    pub broken: Vec<u32>,
    pub cpu_factor: f64,
    pub workers: u32,
    pub busy: u32,
    pub on_cpu: u32,
    pub queue: VecDeque<u32>,
    pub in_flight: u32,
    pub outstanding: u32,
    pub mem_requests: u64,
    pub mem_baseline: u64,
    pub ready_at: u64,
    /// Cold-start penalty applies until this time.
    pub warm_until: u64,
    pub started_at: u64,
    pub restarts: u32,
    pub restarts_window: u32,
    pub crashes_in_row: u32,
    pub last_crash: u64,
    pub stress_cpu: u32,
    pub mem_pressure: u64,
    pub leak_per_s: f64,
    pub leak_since: u64,
    pub io: IoFault,
    pub net: NetFault,
    pub weight: u32,
    pub wrr: i64,
    pub win: PodWindow,
    /// CPU charged since the later of the last autoscaler evaluation of the pod's service and
    /// the time the pod last became ready (`ready_at`): the span the autoscaler divides it by.
    pub hpa_cpu_ns: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NodeRt {
    pub up: bool,
    pub cpu: u32,
    pub stress_cpu: u32,
    pub on_cpu: u32,
    pub io_active: u32,
    pub io_bw: u64,
    pub win_cpu_ns: u64,
    pub win_io_ns: u64,
    pub weight: u32,
    /// Stress inside the node's pods, as their limits let it through (derived, see `refresh_pod_stress`).
    pub pod_stress: u32,
    /// Operator restarts of the node (`Simulation::restart_node`): lets fault injectors see
    /// that a node was rebooted (a zombie node is cured by one).
    pub restarts: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SvcRt {
    pub desired: u32,
    pub version: u32,
    pub history: Vec<u32>,
    pub pods: Vec<u32>,
    pub ready: Vec<u32>,
    pub next_name: u32,
    pub ingress_limit: Option<f64>,
    pub tokens: f64,
    pub tokens_at: u64,
    pub win: LatencyHist,
    pub win_requests: u32,
    pub win_errors: u32,
    pub hpa_next: u64,
    /// The autoscaler's recommendations (time, replicas) of its scale-down stabilisation
    /// window that can still be the window's highest: oldest first, times non-decreasing (the
    /// initial record of the current count shares its time with the first recommendation),
    /// replicas strictly decreasing (a recommendation is dropped once a later one is at least
    /// as high, since it leaves the window first). Empty until the first evaluation with
    /// metrics, and again once the autoscaler is deleted.
    pub hpa_recs: VecDeque<(u64, u32)>,
    /// Time of the last autoscaler evaluation (the start of its CPU averaging window).
    pub hpa_last: u64,
    /// The autoscaler in force: the scenario's at first, replaced by
    /// `Simulation::set_autoscaler` (a runtime `kubectl apply` of the HPA; None = no HPA).
    /// Held here rather than as an override of the scenario's so that "removed" and "never
    /// changed" need no third state.
    pub hpa: Option<AutoscalerSpec>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EdgeRt {
    pub rr: u32,
    pub net: NetFault,
    pub pool_override: Option<u32>,
    /// Per-attempt timeout in ns replacing the scenario's (a runtime config change).
    pub timeout_override: Option<u64>,
    /// Retry policy replacing the scenario's.
    pub retry_override: Option<crate::scenario::RetrySpec>,
    /// Pending attempt deadlines (deadline, inv, attempt, generation), in deadline order.
    pub timeouts: VecDeque<(u64, u32, u32, u32)>,
    /// True while an `Ev::EdgeTimeouts` event for this edge is queued.
    pub timeouts_armed: bool,
}

impl EdgeRt {
    /// The per-attempt timeout (ns) in force: the override, else the scenario's `spec`.
    #[inline]
    pub fn timeout(&self, spec: &crate::scenario::EdgeSpec) -> u64 {
        self.timeout_override.unwrap_or(spec.timeout.0)
    }

    /// The retry policy in force: the override, else the scenario's `spec`.
    #[inline]
    pub fn retry<'a>(
        &'a self,
        spec: &'a crate::scenario::EdgeSpec,
    ) -> &'a crate::scenario::RetrySpec {
        self.retry_override.as_ref().unwrap_or(&spec.retry)
    }

    /// The connection pool size in force (None: unbounded): the override, else the scenario's.
    #[inline]
    pub fn pool_size(&self, spec: &crate::scenario::EdgeSpec) -> Option<u32> {
        self.pool_override.or(spec.pool_size)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Pool {
    pub in_use: u32,
    /// (invocation, attempt, slot generation), oldest first.
    pub waiters: VecDeque<(u32, u32, u32)>,
}

/// A network partition: members cannot reach peers (or anyone outside, if no peers).
///
/// External clients count as outside every pod set: with `peers: None` the members receive
/// no client requests either (they time out at the client); with explicit peers clients still
/// get through. A partition acts on new sends; calls already delivered finish normally.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Pods on one side.
    pub members: Vec<PodId>,
    /// Pods on the other side; `None` = every pod not in `members`.
    pub peers: Option<Vec<PodId>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UserRt {
    pub workload: u32,
}

/// Engine counters, for benchmarks and sanity checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Events processed.
    pub events: u64,
    /// Jobs that finished on a pod (service completions).
    pub visits: u64,
    /// External requests that arrived.
    pub arrivals: u64,
    /// External requests answered.
    pub responses: u64,
    /// Of those, answered with an error of any kind (timeouts at the client, refusals and
    /// rate limiting included): `responses - failed_responses` is the goodput.
    #[serde(default)]
    pub failed_responses: u64,
    /// Call attempts that timed out.
    pub timeouts: u64,
    /// Retries sent.
    pub retries: u64,
    /// Pods killed by their memory limit.
    pub oom_kills: u64,
}

/// All mutable simulation state except the ECS mirror: cloned by `fork`, serialised by `snapshot`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Runtime {
    pub seed: u64,
    pub now: u64,
    pub end: u64,
    pub queue: crate::queue::EventQueue<Ev>,
    pub next_tick: u64,
    pub tick_index: u64,
    pub rng_arrivals: Vec<ChaCha8Rng>,
    pub rng_service: Vec<ChaCha8Rng>,
    pub rng_branch: Vec<ChaCha8Rng>,
    pub rng_net: Vec<ChaCha8Rng>,
    pub rng_retry: Vec<ChaCha8Rng>,
    pub rng_lb: Vec<ChaCha8Rng>,
    pub rng_faults: Vec<ChaCha8Rng>,
    pub nodes: Vec<NodeRt>,
    pub svcs: Vec<SvcRt>,
    pub pods: Vec<PodRt>,
    pub pod_free: Vec<u32>,
    pub edges: Vec<EdgeRt>,
    pub pools: BTreeMap<(u32, u32), Pool>,
    pub partitions: BTreeMap<u32, Partition>,
    pub next_partition: u32,
    pub users: Vec<UserRt>,
    pub jobs: Slab<Job>,
    pub invs: Slab<Inv>,
    pub roots: Slab<Root>,
    pub next_trace: u64,
    pub next_span: u64,
    pub record_requests: bool,
    pub telemetry: Telemetry,
    pub counters: Counters,
    pub node_lost_at: Vec<u64>,
    /// Pods and edges with a network fault set (0: the fast path skips the checks).
    pub net_faults: u32,
    /// Some pod or node has a non-default load-balancing weight.
    pub custom_weights: bool,
    /// Scripted requests waiting for their arrival time.
    pub injections: Slab<ScriptedRequest>,
    /// Scripted calls skipped because the topology has no edge between the two services.
    pub script_calls_without_edge: u64,
    /// Client-side window counters, one per workload.
    pub clients: Vec<ClientWindow>,
}

#[inline]
fn span_sampled(seed: u64, trace: u64, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    ((mix64(seed ^ mix64(trace)) >> 11) as f64 / (1u64 << 53) as f64) < rate
}

impl Runtime {
    pub(crate) fn new(topo: &Arc<Topology>, seed: u64) -> Runtime {
        let sc = &topo.scenario;
        let nsvc = sc.services.len();
        let nedge = topo.edges.len();
        let nw = sc.workload.len();
        let mk = |k: StreamKind, n: usize| {
            (0..n)
                .map(|i| stream(seed, k, i as u64))
                .collect::<Vec<_>>()
        };
        let mut users = Vec::new();
        let mut rt = Runtime {
            seed,
            now: 0,
            end: sc.duration.0,
            queue: crate::queue::EventQueue::new(),
            next_tick: sc.scrape_interval.0,
            tick_index: 0,
            rng_arrivals: mk(StreamKind::Arrivals, nw),
            rng_service: mk(StreamKind::Service, nsvc),
            rng_branch: mk(StreamKind::Branch, nsvc),
            rng_net: mk(StreamKind::Network, nedge),
            rng_retry: mk(StreamKind::Retry, nedge),
            rng_lb: mk(StreamKind::Balance, nedge),
            rng_faults: mk(StreamKind::Faults, nsvc),
            nodes: sc
                .nodes
                .iter()
                .map(|n| NodeRt {
                    up: true,
                    cpu: n.cpu.0,
                    stress_cpu: 0,
                    on_cpu: 0,
                    io_active: 0,
                    io_bw: n.io_bandwidth.0,
                    win_cpu_ns: 0,
                    win_io_ns: 0,
                    weight: 100,
                    pod_stress: 0,
                    restarts: 0,
                })
                .collect(),
            svcs: sc
                .services
                .iter()
                .map(|s| SvcRt {
                    desired: s.replicas,
                    version: 0,
                    history: vec![],
                    pods: vec![],
                    ready: vec![],
                    next_name: 0,
                    ingress_limit: None,
                    tokens: 0.0,
                    tokens_at: 0,
                    win: LatencyHist::default(),
                    win_requests: 0,
                    win_errors: 0,
                    hpa_next: s
                        .autoscaler
                        .as_ref()
                        .map(|a| a.period.0)
                        .unwrap_or(u64::MAX),
                    hpa_recs: VecDeque::new(),
                    hpa_last: 0,
                    hpa: s.autoscaler.clone(),
                })
                .collect(),
            pods: vec![],
            pod_free: vec![],
            edges: vec![EdgeRt::default(); nedge],
            pools: BTreeMap::new(),
            partitions: BTreeMap::new(),
            next_partition: 0,
            users: vec![],
            jobs: Slab::default(),
            invs: Slab::default(),
            roots: Slab::default(),
            next_trace: 1,
            next_span: 1,
            record_requests: false,
            telemetry: Telemetry::default(),
            counters: Counters::default(),
            node_lost_at: vec![u64::MAX; sc.nodes.len()],
            net_faults: 0,
            custom_weights: false,
            injections: Slab::default(),
            script_calls_without_edge: 0,
            clients: vec![ClientWindow::default(); nw],
        };
        // initial pods: scheduled and ready at time 0 (a warm cluster)
        for s in 0..nsvc as u32 {
            for _ in 0..sc.services[s as usize].replicas {
                rt.create_pod(topo, s, true);
            }
        }
        for (w, spec) in sc.workload.iter().enumerate() {
            match &spec.arrivals {
                ArrivalSpec::Open { .. } => rt.schedule_next_arrival(topo, w as u32),
                ArrivalSpec::Closed {
                    users: n,
                    think_time,
                } => {
                    for _ in 0..*n {
                        let u = users.len() as u32;
                        users.push(UserRt { workload: w as u32 });
                        let t = think_time.sample(&mut rt.rng_arrivals[w]);
                        rt.queue.push(t, Ev::UserWake(u));
                    }
                }
            }
        }
        rt.users = users;
        rt
    }

    // ------------------------------------------------------------------ main loop

    /// Processes every event with time < `until` (events at `until` are left for later).
    pub(crate) fn run_events_before(&mut self, topo: &Topology, until: u64) {
        while let Some((t, ev)) = self.queue.pop_before(until) {
            self.now = t;
            self.counters.events += 1;
            self.handle(topo, ev);
        }
        if self.now < until && until != u64::MAX {
            self.now = until;
        }
    }

    #[inline]
    fn handle(&mut self, topo: &Topology, ev: Ev) {
        match ev {
            Ev::Arrival(w) => self.on_arrival(topo, w),
            Ev::UserWake(u) => {
                let w = self.users[u as usize].workload;
                self.start_root(topo, w, u);
            }
            Ev::Send(i, g) => {
                if self.invs.valid(i, g) && self.invs.items[i as usize].state == InvState::Backoff {
                    match self.invs.items[i as usize].caller {
                        Caller::Job(j, jg) if !self.jobs.valid(j, jg) => {
                            self.complete_inv(topo, i, Status::Reset)
                        }
                        _ => self.start_attempt(topo, i),
                    }
                }
            }
            Ev::Deliver(i, attempt, pod) => self.on_deliver(topo, i, attempt, pod),
            Ev::CpuDone(j, g) => {
                if self.jobs.valid(j, g) {
                    self.on_cpu_done(topo, j)
                }
            }
            Ev::IoDone(j, g) => {
                if self.jobs.valid(j, g) {
                    let node = self.pods[self.jobs.items[j as usize].pod as usize].node as usize;
                    self.nodes[node].io_active = self.nodes[node].io_active.saturating_sub(1);
                    self.run_stages(topo, j, 0);
                }
            }
            Ev::Response(i, attempt, st) => self.on_response(topo, i, attempt, st),
            Ev::Timeout(i, attempt, g) => self.fire_timeout(topo, i, attempt, g),
            Ev::EdgeTimeouts(e) => self.on_edge_timeouts(topo, e),
            Ev::PodTimer(p, g) => self.on_pod_timer(topo, p, g),
            Ev::Inject(k) => {
                if self.injections.is_live(k) {
                    let inj = std::mem::take(&mut self.injections.items[k as usize]);
                    self.injections.release(k);
                    self.start_scripted_root(topo, inj);
                }
            }
        }
    }

    // ------------------------------------------------------------------ arrivals

    /// An attempt's timeout: ends the attempt if it is still the live one and unanswered.
    fn fire_timeout(&mut self, topo: &Topology, i: u32, attempt: u32, g: u32) {
        if !self.attempt_pending(i, attempt, g) {
            return;
        }
        let inv = &self.invs.items[i as usize];
        self.counters.timeouts += 1;
        if inv.caller_pod != NONE {
            let cp = inv.caller_pod;
            self.pods[cp as usize].win.timeouts += 1;
            let es = &topo.edges[inv.edge as usize];
            let timeout = self.edges[inv.edge as usize].timeout(&es.spec);
            self.log(topo, cp, Severity::Error, LogTemplate::Timeout, || {
                format!(
                    "upstream request timeout: call to {} after {}",
                    topo.service(es.to).name,
                    crate::time::SimDuration(timeout)
                )
            });
        }
        self.end_attempt(topo, i, Status::Timeout);
    }

    /// True while attempt `attempt` of invocation `i` (slot generation `g`) waits for its answer.
    #[inline]
    fn attempt_pending(&self, i: u32, attempt: u32, g: u32) -> bool {
        self.invs.valid(i, g) && {
            let inv = &self.invs.items[i as usize];
            inv.attempts == attempt && matches!(inv.state, InvState::InFlight | InvState::WaitConn)
        }
    }

    /// Arms the timeout of an attempt. Deadlines on one edge are almost always issued in
    /// increasing order (now + the edge's timeout), so they wait in the edge's FIFO with one
    /// queue event for its head, instead of one event each travelling down the radix heap;
    /// most calls are answered long before, and their entries are dropped when the head
    /// passes. A deadline earlier than the FIFO's last (the timeout was just shortened) gets
    /// its own event.
    #[inline]
    fn arm_timeout(&mut self, edge: usize, deadline: u64, i: u32, attempt: u32, g: u32) {
        let e = &mut self.edges[edge];
        if e.timeouts.back().is_some_and(|b| b.0 > deadline) {
            self.queue.push(deadline, Ev::Timeout(i, attempt, g));
            return;
        }
        e.timeouts.push_back((deadline, i, attempt, g));
        if !e.timeouts_armed {
            e.timeouts_armed = true;
            self.queue.push(deadline, Ev::EdgeTimeouts(edge as u32));
        }
    }

    /// The head of an edge's timeout FIFO is due: fires every due deadline whose attempt still
    /// waits, drops the entries of answered attempts, and re-arms at the next pending one.
    fn on_edge_timeouts(&mut self, topo: &Topology, e: u32) {
        let e = e as usize;
        self.edges[e].timeouts_armed = false;
        while let Some(&(deadline, i, attempt, g)) = self.edges[e].timeouts.front() {
            if deadline <= self.now {
                self.edges[e].timeouts.pop_front();
                self.fire_timeout(topo, i, attempt, g);
            } else if !self.attempt_pending(i, attempt, g) {
                self.edges[e].timeouts.pop_front();
            } else {
                self.edges[e].timeouts_armed = true;
                self.queue.push(deadline, Ev::EdgeTimeouts(e as u32));
                return;
            }
        }
    }

    fn schedule_next_arrival(&mut self, topo: &Topology, w: u32) {
        let ArrivalSpec::Open { rate } = &topo.scenario.workload[w as usize].arrivals else {
            return;
        };
        let rng = &mut self.rng_arrivals[w as usize];
        // thinning (Lewis-Shedler) on the workload's own stream, under a piecewise envelope
        // of the rate: a candidate that crosses the end of its piece is dropped and drawing
        // restarts at the piece's end (exact, the exponential being memoryless)
        let mut t = self.now as f64;
        let end = self.end as f64;
        while t < end {
            let (max, until) = rate.envelope(t as u64);
            if max <= 0.0 {
                t = until as f64;
                continue;
            }
            let next = t + crate::rng::exponential(rng, SECONDS as f64 / max);
            if next >= until as f64 {
                t = until as f64;
                continue;
            }
            t = next;
            if t >= end {
                return;
            }
            let ti = t as u64;
            let r = rate.rate_at(ti);
            if r >= max || unit(rng) * max < r {
                self.queue.push(ti, Ev::Arrival(w));
                return;
            }
        }
    }

    fn on_arrival(&mut self, topo: &Topology, w: u32) {
        self.start_root(topo, w, NONE);
        self.schedule_next_arrival(topo, w);
    }

    fn start_root(&mut self, topo: &Topology, w: u32, user: u32) {
        self.counters.arrivals += 1;
        let mix = &topo.mixes[w as usize];
        let op = if mix.len() == 1 {
            mix[0].0
        } else {
            let u = unit(&mut self.rng_arrivals[w as usize]);
            mix.iter()
                .find(|m| u < m.1)
                .unwrap_or(&mix[mix.len() - 1])
                .0
        };
        let trace = self.next_trace;
        self.next_trace += 1;
        let sampled = span_sampled(self.seed, trace, topo.scenario.telemetry.trace_sample_rate);
        let root = self.roots.alloc(Root {
            workload: w,
            op,
            user,
            arrival: self.now,
            trace,
            live: 0,
            responded: false,
            status: Status::Ok,
            response: 0,
            last_end: self.now,
            attempts: 0,
            sampled,
            script: Vec::new(),
        });
        let edge = w; // client edges come first
        let entry = topo.edges[edge as usize].to as usize;
        // ingress rate limit (throttle): a token bucket at the entry service
        if let Some(limit) = self.svcs[entry].ingress_limit {
            let s = &mut self.svcs[entry];
            let dt = (self.now - s.tokens_at) as f64 / SECONDS as f64;
            s.tokens = (s.tokens + dt * limit).min(limit.max(1.0));
            s.tokens_at = self.now;
            if s.tokens < 1.0 {
                // answered 429 at once, through the normal client completion (counts the
                // response, brings closed-loop users back)
                let inv = self.new_inv(Caller::Client, root, edge, op, NONE, NONE, 0, true, false);
                self.roots.items[root as usize].attempts = 1;
                self.complete_inv(topo, inv, Status::RateLimited);
                return;
            }
            s.tokens -= 1.0;
        }
        let inv = self.new_inv(Caller::Client, root, edge, op, NONE, NONE, 0, true, false);
        self.start_attempt(topo, inv);
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn new_inv(
        &mut self,
        caller: Caller,
        root: u32,
        edge: u32,
        op: u32,
        caller_pod: u32,
        caller_service: u32,
        parent_span: u64,
        sync: bool,
        optional: bool,
    ) -> u32 {
        self.roots.items[root as usize].live += 1;
        self.invs.alloc(Inv {
            caller,
            root,
            edge,
            op,
            caller_pod,
            caller_service,
            parent_span,
            attempts: 0,
            generation: 0,
            state: InvState::Backoff,
            refs: 0,
            target: NONE,
            conn_held: false,
            sync,
            optional,
            script: NONE,
        })
    }

    // ------------------------------------------------------------------ caller side

    #[inline]
    fn start_attempt(&mut self, topo: &Topology, i: u32) {
        let now = self.now;
        let edge = self.invs.items[i as usize].edge as usize;
        let es = &topo.edges[edge].spec;
        let inv = &mut self.invs.items[i as usize];
        inv.attempts += 1;
        let attempt = inv.attempts;
        if inv.caller == Caller::Client {
            self.roots.items[inv.root as usize].attempts = attempt;
        }
        if !inv.sync {
            self.send_detached(topo, i);
            return;
        }
        let g = self.invs.generation(i);
        let timeout = self.edges[edge].timeout(es);
        self.arm_timeout(edge, now.saturating_add(timeout), i, attempt, g);
        let inv = &mut self.invs.items[i as usize];
        let pool_size = self.edges[edge].pool_size(es);
        if let (Some(size), true) = (pool_size, inv.caller_pod != NONE) {
            let key = (edge as u32, inv.caller_pod);
            let pool = self.pools.entry(key).or_default();
            if pool.in_use >= size {
                pool.waiters.push_back((i, attempt, g));
                inv.state = InvState::WaitConn;
                let cp = inv.caller_pod;
                self.log(topo, cp, Severity::Warn, LogTemplate::PoolExhausted, || {
                    format!(
                        "connection pool exhausted ({size} in use), waiting for a connection to {}",
                        topo.service(topo.edges[edge].to).name
                    )
                });
                return;
            }
            pool.in_use += 1;
            inv.conn_held = true;
        }
        inv.state = InvState::InFlight;
        self.transmit(topo, i);
    }

    /// Sends a fire-and-forget call's one attempt: no timeout, no pool, no retry; the call is
    /// done as soon as it is sent (freed here if it was lost on the way).
    #[inline(always)]
    fn send_detached(&mut self, topo: &Topology, i: u32) {
        self.invs.items[i as usize].state = InvState::Done;
        self.transmit(topo, i);
        self.maybe_free_inv(topo, i);
    }

    /// Picks a callee pod and sends the attempt over the network.
    fn transmit(&mut self, topo: &Topology, i: u32) {
        let inv = &self.invs.items[i as usize];
        let edge = inv.edge as usize;
        let es = &topo.edges[edge];
        let callee = es.to as usize;
        let attempt = inv.attempts;
        let caller_pod = inv.caller_pod;
        // a wrong downstream address in the caller's config: refused at once
        if caller_pod != NONE && self.pods[caller_pod as usize].broken.contains(&es.to) {
            self.refuse(topo, i, "no such host");
            return;
        }
        let Some(target) = self.pick_pod(topo, edge, callee) else {
            self.refuse(topo, i, "no ready endpoints");
            return;
        };
        // an external client (caller NONE) is outside every member set: a partition without
        // peers cuts its members off from clients too (a zombie node's ingress pod looks alive
        // but answers nothing), one with explicit peers does not
        if !self.partitions.is_empty() && self.partitioned(caller_pod, target) {
            // packets dropped: the caller only learns through its timeout
            self.invs.items[i as usize].target = target;
            self.pods[target as usize].outstanding += 1;
            return;
        }
        let mut lat = es.spec.latency.sample(&mut self.rng_net[edge]);
        self.invs.items[i as usize].target = target;
        self.pods[target as usize].outstanding += 1;
        if self.net_faults > 0 {
            let (extra, lost) = self.net_faults_on(edge, caller_pod, target);
            if lost {
                return; // lost: the timeout will fire
            }
            lat = lat.saturating_add(extra);
        }
        self.invs.items[i as usize].refs += 1;
        self.schedule_in(lat, Ev::Deliver(i, attempt, target));
    }

    /// Schedules `ev` `delay` ns from now; a time past the end of the clock saturates (huge
    /// but valid demands on tiny CPU shares, delays of network and disk faults).
    #[inline(always)]
    fn schedule_in(&mut self, delay: u64, ev: Ev) {
        self.queue.push(self.now.saturating_add(delay), ev);
    }

    /// Recounts the pods and edges with a network fault (the hot path skips fault lookups
    /// while there are none, so a cleared fault stops costing).
    pub(crate) fn count_net_faults(&mut self) {
        let pods = self.pods.iter().filter(|p| !p.net.is_none()).count();
        let edges = self.edges.iter().filter(|e| !e.net.is_none()).count();
        self.net_faults = (pods + edges) as u32;
    }

    /// Network faults on a message over `edge` from pod `from` to pod `to` (either may be
    /// NONE, an external client): the added delay (delays plus jitter of the edge's and both
    /// pods' faults, in that order, on the edge's network stream) and whether it is lost.
    #[cold]
    #[inline(never)]
    fn net_faults_on(&mut self, edge: usize, from: u32, to: u32) -> (u64, bool) {
        let pod_net = |p: u32| {
            if p != NONE {
                self.pods[p as usize].net
            } else {
                NetFault::default()
            }
        };
        let faults = [self.edges[edge].net, pod_net(from), pod_net(to)];
        let rng = &mut self.rng_net[edge];
        let (mut lat, mut loss) = (0u64, 0.0);
        // saturating: a snapshot's faults may each be up to 2^62 ns, six of them overflow
        for nf in faults {
            if !nf.is_none() {
                lat = lat.saturating_add(nf.delay);
                if nf.jitter > 0 {
                    lat = lat.saturating_add((unit(rng) * nf.jitter as f64) as u64);
                }
                loss = 1.0 - (1.0 - loss) * (1.0 - nf.loss);
            }
        }
        (lat, loss > 0.0 && bernoulli(rng, loss))
    }

    fn refuse(&mut self, topo: &Topology, i: u32, why: &str) {
        let inv = &self.invs.items[i as usize];
        let attempt = inv.attempts;
        if inv.caller_pod != NONE {
            let (cp, to) = (inv.caller_pod, topo.edges[inv.edge as usize].to);
            self.log(
                topo,
                cp,
                Severity::Error,
                LogTemplate::ConnectionRefused,
                || {
                    format!(
                        "dial tcp {}: connect: connection refused ({why})",
                        topo.service(to).name
                    )
                },
            );
        }
        if self.invs.items[i as usize].sync {
            self.invs.items[i as usize].refs += 1;
            self.queue
                .push(self.now, Ev::Response(i, attempt, Status::Refused));
        }
    }

    fn partitioned(&self, a: u32, b: u32) -> bool {
        self.partitions.values().any(|p| {
            let ia = p.members.contains(&a);
            let ib = p.members.contains(&b);
            match &p.peers {
                None => ia != ib,
                Some(peers) => (ia && peers.contains(&b)) || (ib && peers.contains(&a)),
            }
        })
    }

    fn pick_pod(&mut self, topo: &Topology, edge: usize, svc: usize) -> Option<u32> {
        let ready = &self.svcs[svc].ready;
        let n = ready.len();
        if n == 0 {
            return None;
        }
        if n == 1 && !self.custom_weights {
            return Some(ready[0]);
        }
        // weighted (reroute) mode when any weight differs from the default
        if self.custom_weights
            && ready.iter().any(|&p| {
                self.pods[p as usize].weight != 100
                    || self.nodes[self.pods[p as usize].node as usize].weight != 100
            })
        {
            // smooth weighted round robin (nginx), deterministic: every pod's current weight
            // grows by its effective weight, the largest is picked and pays the total (one
            // pass; weights are never negative, so when all are zero nothing changes)
            let (pods, nodes) = (&mut self.pods, &self.nodes);
            let mut total: i64 = 0;
            let mut best = NONE;
            let mut best_w = i64::MIN;
            for &p in ready {
                let pod = &mut pods[p as usize];
                let w = (pod.weight as i64) * (nodes[pod.node as usize].weight as i64) / 100;
                total += w;
                pod.wrr += w;
                if w > 0 && pod.wrr > best_w {
                    best_w = pod.wrr;
                    best = p;
                }
            }
            if best == NONE {
                return None; // everything weighted to zero: traffic is dropped at the balancer
            }
            pods[best as usize].wrr -= total;
            return Some(best);
        }
        match topo.edges[edge].spec.load_balancing {
            LoadBalancing::RoundRobin => {
                let e = &mut self.edges[edge];
                e.rr = e.rr.wrapping_add(1);
                Some(ready[e.rr as usize % n])
            }
            LoadBalancing::Random => Some(ready[below(&mut self.rng_lb[edge], n as u32) as usize]),
            LoadBalancing::LeastOutstanding => {
                let e = &mut self.edges[edge];
                e.rr = e.rr.wrapping_add(1);
                // scan from a rotating start (ties go to the first in rotation order)
                let start = e.rr as usize % n;
                let mut best = ready[start];
                let mut best_out = self.pods[best as usize].outstanding;
                for &p in ready[start + 1..].iter().chain(&ready[..start]) {
                    let out = self.pods[p as usize].outstanding;
                    if out < best_out {
                        best = p;
                        best_out = out;
                    }
                }
                Some(best)
            }
        }
    }

    fn on_response(&mut self, topo: &Topology, i: u32, attempt: u32, st: Status) {
        let inv = &mut self.invs.items[i as usize];
        inv.refs = inv.refs.saturating_sub(1);
        if inv.attempts == attempt && matches!(inv.state, InvState::InFlight) {
            self.end_attempt(topo, i, st);
        } else {
            self.maybe_free_inv(topo, i);
        }
    }

    /// The current attempt ended (response or timeout): release resources, retry or complete.
    fn end_attempt(&mut self, topo: &Topology, i: u32, st: Status) {
        let edge = self.invs.items[i as usize].edge as usize;
        let inv = &mut self.invs.items[i as usize];
        if inv.target != NONE {
            let t = inv.target as usize;
            inv.target = NONE;
            self.pods[t].outstanding = self.pods[t].outstanding.saturating_sub(1);
        }
        let held = std::mem::replace(&mut inv.conn_held, false);
        let caller_pod = inv.caller_pod;
        let attempts = inv.attempts;
        // invalidate this attempt (late responses are ignored)
        inv.state = InvState::Backoff;
        if held {
            self.release_conn(topo, edge as u32, caller_pod);
        }
        let r = self.edges[edge].retry(&topo.edges[edge].spec);
        if st != Status::Ok && attempts < r.attempts && st != Status::RateLimited {
            let base = r.backoff.0 as f64 * r.multiplier.powi(attempts as i32 - 1);
            let base = base.min(r.max_backoff.0 as f64);
            let jit = if r.jitter > 0.0 {
                unit(&mut self.rng_retry[edge]) * r.jitter * base
            } else {
                0.0
            };
            let delay = (base * (1.0 - r.jitter) + jit).max(0.0) as u64;
            self.counters.retries += 1;
            if caller_pod != NONE {
                self.pods[caller_pod as usize].win.retries += 1;
            }
            let g = self.invs.generation(i);
            self.schedule_in(delay, Ev::Send(i, g));
            // bump the attempt so a late response of the old one is recognised as stale
            return;
        }
        self.complete_inv(topo, i, st);
    }

    fn release_conn(&mut self, topo: &Topology, edge: u32, caller_pod: u32) {
        let Some(pool) = self.pools.get_mut(&(edge, caller_pod)) else {
            return;
        };
        pool.in_use = pool.in_use.saturating_sub(1);
        self.grant_conns(topo, edge, caller_pod);
    }

    /// Hands free connections of a pool (its size as configured now: a shrunk pool first
    /// drains below its new size) to its oldest live waiters.
    fn grant_conns(&mut self, topo: &Topology, edge: u32, caller_pod: u32) {
        let size = self.edges[edge as usize]
            .pool_size(&topo.edges[edge as usize].spec)
            .unwrap_or(u32::MAX);
        loop {
            let Some(pool) = self.pools.get_mut(&(edge, caller_pod)) else {
                return;
            };
            if pool.in_use >= size {
                return;
            }
            let Some(w) =
                std::iter::from_fn(|| pool.waiters.pop_front()).find_map(|(w, att, g)| {
                    let live = self.invs.valid(w, g) && {
                        let inv = &self.invs.items[w as usize];
                        inv.attempts == att && inv.state == InvState::WaitConn
                    };
                    live.then_some(w)
                })
            else {
                return;
            };
            pool.in_use += 1;
            let inv = &mut self.invs.items[w as usize];
            inv.conn_held = true;
            inv.state = InvState::InFlight;
            self.transmit(topo, w);
        }
    }

    /// A pool size changed: a grown pool serves its waiters at once.
    pub(crate) fn pool_resized(&mut self, topo: &Topology, edge: u32) {
        let keys: Vec<(u32, u32)> = self
            .pools
            .range((edge, 0)..=(edge, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for (e, pod) in keys {
            self.grant_conns(topo, e, pod);
        }
    }

    fn complete_inv(&mut self, topo: &Topology, i: u32, st: Status) {
        let inv = &mut self.invs.items[i as usize];
        inv.state = InvState::Done;
        let caller = inv.caller;
        let optional = inv.optional;
        let root = inv.root;
        match caller {
            Caller::Client => {
                let r = &mut self.roots.items[root as usize];
                r.responded = true;
                r.status = st;
                r.response = self.now;
                self.counters.responses += 1;
                if st != Status::Ok {
                    self.counters.failed_responses += 1;
                }
                if let Some(c) = self.clients.get_mut(r.workload as usize) {
                    c.completed += 1;
                    c.hist.record_ns(self.now.saturating_sub(r.arrival));
                    if st != Status::Ok {
                        c.errors += 1;
                        match st {
                            Status::Timeout => c.timeouts += 1,
                            Status::RateLimited => c.rate_limited += 1,
                            _ => {}
                        }
                    }
                }
                if r.user != NONE {
                    let u = r.user;
                    let w = self.users[u as usize].workload as usize;
                    if let ArrivalSpec::Closed { think_time, .. } =
                        &topo.scenario.workload[w].arrivals
                    {
                        // a user needs at least 1 ms to send the next request (keeps the clock
                        // moving when every request fails at once)
                        let t = think_time
                            .sample(&mut self.rng_arrivals[w])
                            .max(MIN_THINK_NS);
                        let at = self.now.saturating_add(t);
                        if at < self.end {
                            self.queue.push(at, Ev::UserWake(u));
                        }
                    }
                }
            }
            Caller::Job(j, g) => {
                if self.jobs.valid(j, g) {
                    let job = &mut self.jobs.items[j as usize];
                    job.pending = job.pending.saturating_sub(1);
                    if st != Status::Ok && !optional && job.failed.is_none() {
                        job.failed = Some(Status::Error);
                    }
                    if job.pending == 0 {
                        if job.failed.is_some() {
                            self.finish_job(topo, j);
                        } else {
                            let next = job.stage + 1;
                            self.run_stages(topo, j, next);
                        }
                    }
                }
            }
            Caller::Detached => {}
        }
        self.maybe_free_inv(topo, i);
    }

    /// Frees a finished invocation nothing refers to any more. A fire-and-forget call keeps
    /// counting against its callee pod's outstanding calls (least-outstanding balancing) until
    /// then: until the callee is done with it, or at once when it was lost on the way (a
    /// synchronous attempt stops counting when it ends, in `end_attempt`).
    #[inline(always)]
    fn maybe_free_inv(&mut self, topo: &Topology, i: u32) {
        let inv = &self.invs.items[i as usize];
        if inv.state == InvState::Done && inv.refs == 0 && self.invs.is_live(i) {
            let (root, target) = (inv.root, inv.target);
            if target != NONE {
                let pod = &mut self.pods[target as usize];
                pod.outstanding = pod.outstanding.saturating_sub(1);
            }
            self.invs.release(i);
            self.root_unref(topo, root);
        }
    }

    #[inline(always)]
    fn root_unref(&mut self, topo: &Topology, root: u32) {
        let r = &mut self.roots.items[root as usize];
        r.live = r.live.saturating_sub(1);
        if r.live == 0 && r.responded {
            self.finish_root(topo, root);
        }
    }

    #[inline(never)]
    fn finish_root(&mut self, _topo: &Topology, root: u32) {
        let r = &self.roots.items[root as usize];
        if self.record_requests {
            self.telemetry.requests.push(RequestRecord {
                workload: r.workload,
                operation: r.op,
                arrival: r.arrival,
                response: r.response,
                end: r.last_end.max(r.response),
                status: r.status,
                attempts: r.attempts,
            });
        }
        self.roots.items[root as usize].script = Vec::new();
        self.roots.release(root);
    }

    // ------------------------------------------------------------------ callee side

    fn on_deliver(&mut self, topo: &Topology, i: u32, attempt: u32, target: u32) {
        let inv = &self.invs.items[i as usize];
        let (op, root, script) = (inv.op, inv.root, inv.script);
        let p = target as usize;
        let pod_ok = self.pods[p].phase == Phase::Running
            && !self.pods[p].terminating
            && self.pods[p].service == topo.ops[op as usize].service;
        if !pod_ok {
            self.respond_or_drop(topo, i, attempt, Status::Reset, NONE);
            return;
        }
        let pod = &mut self.pods[p];
        if pod.queue.len() as u32 >= topo.scenario.services[pod.service as usize].queue_capacity
            && pod.busy >= pod.workers
        {
            pod.win.rejected += 1;
            pod.win.requests += 1;
            pod.win.errors += 1;
            let svc = pod.service as usize;
            self.svcs[svc].win_requests += 1;
            self.svcs[svc].win_errors += 1;
            self.log(topo, target, Severity::Warn, LogTemplate::QueueFull, || {
                "request rejected: server queue full (503)".into()
            });
            self.respond_or_drop(topo, i, attempt, Status::Rejected, target);
            return;
        }
        let mem = topo.ops[op as usize].memory_per_request;
        pod.in_flight += 1;
        pod.mem_requests += mem;
        let span = self.next_span;
        self.next_span += 1;
        let j = self.jobs.alloc(Job {
            pod: target,
            pod_gen: pod.generation,
            op,
            inv: i,
            attempt,
            root,
            span,
            arrived: self.now,
            stage: 0,
            pending: 0,
            failed: None,
            phase: JobPhase::Queued,
            mem,
            script,
        });
        self.roots.items[root as usize].live += 1;
        // the delivery's reference on the invocation passes to the job
        if self.pods[p].busy < self.pods[p].workers {
            self.start_job(topo, j);
        } else {
            self.pods[p].queue.push_back(j);
        }
        // memory check: admitting this request may push the pod over its limit
        if self.pod_memory(p) > self.pods[p].mem_limit {
            self.oom_kill(topo, target);
        }
    }

    /// Sends the answer of an attempt back over the network (sync calls), applying the same
    /// edge and pod network faults as the request path; a lost answer (or an async call's end)
    /// just drops the reference.
    fn respond_or_drop(
        &mut self,
        topo: &Topology,
        i: u32,
        attempt: u32,
        st: Status,
        from_pod: u32,
    ) {
        // the reference taken by Deliver becomes the Response's
        let inv = &self.invs.items[i as usize];
        if inv.sync {
            let edge = inv.edge as usize;
            let caller_pod = inv.caller_pod;
            let mut lat = topo.edges[edge]
                .spec
                .latency
                .sample(&mut self.rng_net[edge]);
            if self.net_faults > 0 {
                let (extra, lost) = self.net_faults_on(edge, from_pod, caller_pod);
                if lost {
                    let inv = &mut self.invs.items[i as usize];
                    inv.refs = inv.refs.saturating_sub(1);
                    self.maybe_free_inv(topo, i);
                    return;
                }
                lat = lat.saturating_add(extra);
            }
            self.schedule_in(lat, Ev::Response(i, attempt, st));
        } else {
            let inv = &mut self.invs.items[i as usize];
            inv.refs = inv.refs.saturating_sub(1);
            self.maybe_free_inv(topo, i);
        }
    }

    /// Resident memory of a pod.
    pub(crate) fn pod_memory(&self, p: usize) -> u64 {
        let pod = &self.pods[p];
        let base = pod.mem_baseline;
        let leak = if pod.leak_per_s > 0.0 && self.now > pod.leak_since {
            (pod.leak_per_s * (self.now - pod.leak_since) as f64 / SECONDS as f64) as u64
        } else {
            0
        };
        base.saturating_add(pod.mem_requests)
            .saturating_add(pod.mem_pressure)
            .saturating_add(leak)
    }

    fn start_job(&mut self, topo: &Topology, j: u32) {
        let g = self.jobs.generation(j);
        let job = &mut self.jobs.items[j as usize];
        job.phase = JobPhase::Cpu;
        let p = job.pod as usize;
        let opi = job.op as usize;
        let (script, root) = (job.script, job.root);
        let op = &topo.ops[opi];
        let pod = &mut self.pods[p];
        pod.busy += 1;
        let svc = pod.service as usize;
        let sampled = if script == NONE {
            op.cpu.sample(&mut self.rng_service[svc])
        } else {
            self.roots.items[root as usize].script[script as usize].cpu_ns
        };
        // scaled only under a CPU factor or while warming up (integer in the common case)
        let scaled = if pod.cpu_factor != 1.0 || self.now < pod.warm_until {
            let mut d = sampled as f64 * pod.cpu_factor;
            let spec = &topo.scenario.services[svc];
            if self.now < pod.warm_until && spec.warmup_factor > 1.0 {
                let left = (pod.warm_until - self.now) as f64 / spec.warmup.0.max(1) as f64;
                d *= 1.0 + (spec.warmup_factor - 1.0) * left;
            }
            Some(d)
        } else {
            None
        };
        let demand = scaled.map_or(sampled, |d| d as u64);
        pod.on_cpu += 1;
        let node = &mut self.nodes[pod.node as usize];
        node.on_cpu += 1;
        // uncontended (the common case): integer check, no division
        let node_load = node.on_cpu as u64 * 1000 + node.stress_cpu as u64 + node.pod_stress as u64;
        let pod_load = pod.on_cpu as u64 * 1000 + pod.stress_cpu as u64;
        let dur = if node_load <= node.cpu as u64 && pod_load <= pod.cpu_limit as u64 {
            demand
        } else {
            let node_share = node.cpu as f64 / node_load as f64;
            let pod_share = pod.cpu_limit as f64 / pod_load as f64;
            let demand_f = scaled.unwrap_or(sampled as f64);
            (demand_f / node_share.min(pod_share).min(1.0)) as u64
        };
        // saturating: a huge demand on a tiny share (a 1m limit) must not overflow the clock
        pod.win.cpu_ns = pod.win.cpu_ns.saturating_add(demand);
        pod.hpa_cpu_ns = pod.hpa_cpu_ns.saturating_add(demand);
        node.win_cpu_ns = node.win_cpu_ns.saturating_add(demand);
        self.schedule_in(dur, Ev::CpuDone(j, g));
    }

    fn on_cpu_done(&mut self, topo: &Topology, j: u32) {
        let job = &mut self.jobs.items[j as usize];
        let p = job.pod as usize;
        let op = &topo.ops[job.op as usize];
        let pod = &mut self.pods[p];
        pod.on_cpu = pod.on_cpu.saturating_sub(1);
        let node = &mut self.nodes[pod.node as usize];
        node.on_cpu = node.on_cpu.saturating_sub(1);
        if op.io_bytes == 0 && pod.io.delay_fraction <= 0.0 && pod.io.error_fraction <= 0.0 {
            self.run_stages(topo, j, 0);
            return;
        }
        if op.io_bytes == 0 {
            self.run_stages(topo, j, 0);
            return;
        }
        job.phase = JobPhase::Io;
        node.io_active += 1;
        let bw = node.io_bw as f64 / node.io_active as f64;
        let mut dur = (op.io_bytes as f64 / bw * SECONDS as f64) as u64;
        node.win_io_ns = node.win_io_ns.saturating_add(dur);
        let svc = pod.service as usize;
        let rng = &mut self.rng_faults[svc];
        if bernoulli(rng, pod.io.delay_fraction) {
            dur = dur.saturating_add(pod.io.delay);
        }
        if bernoulli(rng, pod.io.error_fraction) {
            job.failed = Some(Status::IoError);
            let pid = job.pod;
            self.log(topo, pid, Severity::Error, LogTemplate::IoError, || {
                "I/O error: input/output error (EIO) on volume".into()
            });
        }
        let g = self.jobs.generation(j);
        self.schedule_in(dur, Ev::IoDone(j, g));
    }

    /// Runs call stages from `from`; finishes the job when none is left or one fails.
    fn run_stages(&mut self, topo: &Topology, j: u32, from: u32) {
        let g = self.jobs.generation(j);
        let job = &self.jobs.items[j as usize];
        if job.failed.is_some() {
            self.finish_job(topo, j);
            return;
        }
        if job.script != NONE {
            self.run_script_stages(topo, j, from);
            return;
        }
        let op = &topo.ops[job.op as usize];
        let svc = self.pods[job.pod as usize].service;
        let mut k = from as usize;
        while k < op.stages.len() {
            let mut pending = 0;
            for c in &op.stages[k] {
                if c.probability < 1.0
                    && !bernoulli(&mut self.rng_branch[svc as usize], c.probability)
                {
                    continue;
                }
                pending += c.sync as u32;
                if !self.issue_call(topo, j, g, k, c.edge, c.op, c.sync, c.optional, NONE) {
                    return;
                }
            }
            match self.after_stage(j, pending) {
                StageEnd::Wait => return,
                StageEnd::Failed => break,
                StageEnd::Next => k += 1,
            }
        }
        self.finish_job(topo, j);
    }

    /// Call stages of a scripted job: the children listed in its script node.
    fn run_script_stages(&mut self, topo: &Topology, j: u32, from: u32) {
        let g = self.jobs.generation(j);
        let job = &self.jobs.items[j as usize];
        let (pod, root, node) = (job.pod, job.root, job.script);
        let svc = self.pods[pod as usize].service;
        let mut k = from as usize;
        loop {
            let r = &self.roots.items[root as usize];
            let Some(stage) = r.script.get(node as usize).and_then(|n| n.stages.get(k)) else {
                break;
            };
            let calls: Vec<(u32, OpId, bool)> = stage
                .iter()
                .filter_map(|&c| {
                    r.script
                        .get(c as usize)
                        .filter(|_| c > node)
                        .map(|n| (c, n.op, n.sync))
                })
                .collect();
            let mut pending = 0;
            for (child, op, sync) in calls {
                let Some(edge) = topo.edge_id(svc, topo.ops[op as usize].service) else {
                    self.script_calls_without_edge += 1;
                    continue;
                };
                pending += sync as u32;
                if !self.issue_call(topo, j, g, k, edge, op, sync, false, child) {
                    return;
                }
            }
            match self.after_stage(j, pending) {
                StageEnd::Wait => return,
                StageEnd::Failed => break,
                StageEnd::Next => k += 1,
            }
        }
        self.finish_job(topo, j);
    }

    /// Issues one downstream call of job `j` (generation `g`) in stage `k`. Returns false when
    /// the job is gone afterwards (a call can complete at once, e.g. refused).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn issue_call(
        &mut self,
        topo: &Topology,
        j: u32,
        g: u32,
        k: usize,
        edge: EdgeId,
        op: OpId,
        sync: bool,
        optional: bool,
        script: u32,
    ) -> bool {
        let job = &self.jobs.items[j as usize];
        let (pod, root, span) = (job.pod, job.root, job.span);
        let svc = self.pods[pod as usize].service;
        let caller = if sync {
            Caller::Job(j, g)
        } else {
            Caller::Detached
        };
        let i = self.new_inv(caller, root, edge, op, pod, svc, span, sync, optional);
        self.invs.items[i as usize].script = script;
        if sync {
            let job = &mut self.jobs.items[j as usize];
            job.pending += 1;
            job.stage = k as u32;
            job.phase = JobPhase::Calls;
            self.start_attempt(topo, i);
        } else {
            // what `start_attempt` does for a fire-and-forget call, minus its client
            // bookkeeping (a job is never a client) and its call: every hop of an async chain
            // comes through here (2.4% of the tandem's instructions; inlining `start_attempt`
            // instead was 3% slower)
            self.invs.items[i as usize].attempts = 1;
            self.send_detached(topo, i);
        }
        self.jobs.valid(j, g)
    }

    /// What a job does once a stage's calls are issued (`pending` = sync calls issued).
    #[inline]
    fn after_stage(&self, j: u32, pending: u32) -> StageEnd {
        if pending == 0 {
            return StageEnd::Next;
        }
        // the stage's calls may have completed synchronously already
        let job = &self.jobs.items[j as usize];
        if job.pending > 0 {
            StageEnd::Wait
        } else if job.failed.is_some() {
            StageEnd::Failed
        } else {
            StageEnd::Next
        }
    }

    /// Queues a scripted request to arrive at `at` (ns).
    pub(crate) fn inject(&mut self, at: u64, req: ScriptedRequest) {
        let k = self.injections.alloc(req);
        self.queue.push(at.max(self.now), Ev::Inject(k));
    }

    fn start_scripted_root(&mut self, topo: &Topology, req: ScriptedRequest) {
        let Some(first) = req.nodes.first() else {
            return;
        };
        let op = first.op;
        let w = req.workload;
        self.counters.arrivals += 1;
        let trace = self.next_trace;
        self.next_trace += 1;
        let sampled = span_sampled(self.seed, trace, topo.scenario.telemetry.trace_sample_rate);
        if sampled && let Some(source) = req.source_trace {
            self.telemetry
                .push_trace_source(trace, source, topo.scenario.telemetry.retain_spans);
        }
        let root = self.roots.alloc(Root {
            workload: w,
            op,
            user: NONE,
            arrival: self.now,
            trace,
            live: 0,
            responded: false,
            status: Status::Ok,
            response: 0,
            last_end: self.now,
            attempts: 0,
            sampled,
            script: req.nodes,
        });
        let inv = self.new_inv(Caller::Client, root, w, op, NONE, NONE, 0, true, false);
        self.invs.items[inv as usize].script = 0;
        self.start_attempt(topo, inv);
    }

    fn finish_job(&mut self, topo: &Topology, j: u32) {
        let job = &self.jobs.items[j as usize];
        let job = JobDone {
            pod: job.pod,
            op: job.op,
            inv: job.inv,
            attempt: job.attempt,
            root: job.root,
            span: job.span,
            arrived: job.arrived,
            mem: job.mem,
            failed: job.failed,
        };
        let p = job.pod as usize;
        let st = job.failed.unwrap_or(Status::Ok);
        self.counters.visits += 1;
        let lat = self.now.saturating_sub(job.arrived);
        {
            let pod = &mut self.pods[p];
            pod.busy = pod.busy.saturating_sub(1);
            pod.in_flight = pod.in_flight.saturating_sub(1);
            pod.mem_requests = pod.mem_requests.saturating_sub(job.mem);
            pod.win.requests += 1;
            pod.win.hist.record_ns(lat);
            let svc = &mut self.svcs[pod.service as usize];
            svc.win_requests += 1;
            if st != Status::Ok {
                pod.win.errors += 1;
                svc.win_errors += 1;
            }
        }
        let r = &mut self.roots.items[job.root as usize];
        r.last_end = r.last_end.max(self.now);
        if r.sampled {
            let inv = &self.invs.items[job.inv as usize];
            let rec = SpanRecord {
                trace_id: r.trace,
                span_id: job.span,
                parent_span_id: inv.parent_span,
                service: self.pods[p].service,
                operation: job.op,
                pod: job.pod,
                caller: if inv.caller_service == NONE {
                    None
                } else {
                    Some(inv.caller_service)
                },
                start: job.arrived,
                duration: lat,
                status: st,
                attempt: job.attempt,
                sync: inv.sync,
            };
            self.telemetry
                .push_span(rec, topo.scenario.telemetry.retain_spans);
        }
        let i = job.inv;
        self.jobs.release(j);
        self.respond_or_drop(topo, i, job.attempt, st, job.pod);
        self.root_unref(topo, job.root);
        // next queued request takes the worker
        self.dispatch_queue(topo, p);
    }

    fn dispatch_queue(&mut self, topo: &Topology, p: usize) {
        while self.pods[p].busy < self.pods[p].workers {
            let Some(next) = self.pods[p].queue.pop_front() else {
                break;
            };
            self.start_job(topo, next);
        }
    }

    // ------------------------------------------------------------------ pods

    /// Emits a log line, subject to the per-pod, per-template burst limit of the window.
    pub(crate) fn log(
        &mut self,
        topo: &Topology,
        pod: u32,
        sev: Severity,
        t: LogTemplate,
        message: impl FnOnce() -> String,
    ) {
        let (service, ok) = if pod != NONE && (pod as usize) < self.pods.len() {
            let pd = &mut self.pods[pod as usize];
            let c = &mut pd.win.logs[t as usize];
            let ok = (*c as u32) < topo.scenario.telemetry.log_burst;
            *c = c.saturating_add(1);
            (pd.service, ok)
        } else {
            (NONE, true)
        };
        if !ok {
            self.telemetry.logs_suppressed += 1;
            return;
        }
        let ev = LogEvent {
            time: self.now,
            pod,
            service,
            severity: sev,
            template: t,
            message: message(),
        };
        self.telemetry
            .push_log(ev, topo.scenario.telemetry.retain_logs);
    }

    /// Places a pod of service `s` on the best node and boots it (or makes it ready at once for
    /// the initial, warm cluster).
    pub(crate) fn create_pod(&mut self, topo: &Topology, s: u32, warm: bool) -> u32 {
        let spec = topo.service(s);
        let version = self.svcs[s as usize].version;
        let tpl = topo.template(s, version);
        let n = self.svcs[s as usize].next_name;
        self.svcs[s as usize].next_name += 1;
        let name = format!("{}-{}", spec.name, pod_suffix(self.seed, s, n));
        let pod = PodRt {
            service: s,
            node: NONE,
            generation: 0,
            name,
            phase: Phase::Pending,
            ready: false,
            terminating: false,
            version,
            cpu_limit: tpl.resources.cpu_limit.0,
            cpu_request: tpl.resources.cpu_request.0,
            mem_limit: tpl.resources.memory_limit.0,
            mem_request: tpl.resources.memory_request.0,
            crash_on_start: tpl.crash_on_start,
            broken: tpl.broken,
            cpu_factor: tpl.cpu_factor,
            workers: spec.workers,
            busy: 0,
            on_cpu: 0,
            queue: VecDeque::new(),
            in_flight: 0,
            outstanding: 0,
            mem_requests: 0,
            mem_baseline: spec.baseline_memory.0,
            ready_at: 0,
            warm_until: 0,
            started_at: self.now,
            restarts: 0,
            restarts_window: 0,
            crashes_in_row: 0,
            last_crash: 0,
            stress_cpu: 0,
            mem_pressure: 0,
            leak_per_s: 0.0,
            leak_since: 0,
            io: IoFault::default(),
            net: NetFault::default(),
            weight: 100,
            wrr: 0,
            win: PodWindow::default(),
            hpa_cpu_ns: 0,
        };
        let id = if let Some(id) = self.pod_free.pop() {
            let g = self.pods[id as usize].generation.wrapping_add(1);
            self.pods[id as usize] = pod;
            self.pods[id as usize].generation = g;
            id
        } else {
            self.pods.push(pod);
            (self.pods.len() - 1) as u32
        };
        self.svcs[s as usize].pods.push(id);
        self.try_schedule(topo, id, warm);
        id
    }

    /// Picks a node for a pending pod: the up node (allowed by the selector) with the most
    /// unreserved CPU that fits the request; ties go to the lowest index.
    pub(crate) fn try_schedule(&mut self, topo: &Topology, p: u32, warm: bool) {
        let pod = &self.pods[p as usize];
        if pod.phase != Phase::Pending || pod.node != NONE {
            return;
        }
        let spec = topo.service(pod.service);
        let mut reserved_cpu = vec![0u64; self.nodes.len()];
        let mut reserved_mem = vec![0u64; self.nodes.len()];
        for q in &self.pods {
            if q.node != NONE && q.phase != Phase::Terminated {
                reserved_cpu[q.node as usize] += q.cpu_request as u64;
                reserved_mem[q.node as usize] += q.mem_request;
            }
        }
        let mut best: Option<(i64, usize)> = None;
        for (ni, n) in topo.scenario.nodes.iter().enumerate() {
            if !self.nodes[ni].up {
                continue;
            }
            if !spec.node_selector.is_empty() && !spec.node_selector.contains(&n.name) {
                continue;
            }
            let free_cpu = n.cpu.0 as i64 - reserved_cpu[ni] as i64;
            let free_mem = n.memory.0 as i64 - reserved_mem[ni] as i64;
            if free_cpu < pod.cpu_request as i64 || free_mem < pod.mem_request as i64 {
                continue;
            }
            if best.is_none_or(|(b, _)| free_cpu > b) {
                best = Some((free_cpu, ni));
            }
        }
        let Some((_, ni)) = best else { return };
        let pod = &mut self.pods[p as usize];
        pod.node = ni as u32;
        if warm {
            pod.phase = Phase::Running;
            pod.ready = true;
            // the initial cluster is warm: no cold-start penalty
            pod.ready_at = self.now;
            pod.hpa_cpu_ns = 0;
            pod.started_at = self.now;
            pod.warm_until = 0;
            let s = pod.service as usize;
            insert_sorted(&mut self.svcs[s].ready, p);
        } else {
            let delay = topo.scenario.cluster.schedule_delay.0;
            self.boot(topo, p, delay);
        }
    }

    /// Starts the container after `delay`: Starting, then ready after the boot time.
    fn boot(&mut self, topo: &Topology, p: u32, delay: u64) {
        let spec = topo.service(self.pods[p as usize].service);
        let pod = &mut self.pods[p as usize];
        pod.phase = Phase::Starting;
        let start = self.now.saturating_add(delay);
        pod.started_at = start;
        let g = pod.generation;
        // the timer first fires when the container starts, then when it is ready
        self.queue
            .push(start.saturating_add(spec.boot_time.0), Ev::PodTimer(p, g));
    }

    fn on_pod_timer(&mut self, topo: &Topology, p: u32, g: u32) {
        let pod = &self.pods[p as usize];
        if pod.generation != g || pod.terminating {
            return;
        }
        match pod.phase {
            Phase::Starting
            | Phase::CrashLoopBackOff
            | Phase::Pending
            | Phase::OomKilled
            | Phase::Failed
                if pod.node != NONE =>
            {
                if pod.crash_on_start {
                    self.crash(
                        topo,
                        p,
                        Phase::Failed,
                        "container exited with code 1: invalid configuration",
                    );
                    return;
                }
                let pod = &mut self.pods[p as usize];
                pod.phase = Phase::Running;
                pod.ready = true;
                pod.ready_at = self.now;
                // the autoscaler averages a pod's CPU from when it became ready: what it used
                // before a restart is not divided by the time since
                pod.hpa_cpu_ns = 0;
                pod.warm_until = self.now.saturating_add(topo.service(pod.service).warmup.0);
                pod.leak_since = self.now;
                let s = pod.service as usize;
                let stressed = pod.stress_cpu > 0;
                insert_sorted(&mut self.svcs[s].ready, p);
                let name = self.pods[p as usize].name.clone();
                self.log(topo, p, Severity::Info, LogTemplate::Ready, || {
                    format!("pod {name} is ready")
                });
                // a stressed container that came back loads its node again now
                if stressed {
                    self.refresh_pod_stress();
                }
            }
            Phase::NodeLost => {
                // eviction timeout passed: the pod is deleted and the deployment replaces it
                self.terminate_pod(topo, p, "evicted: node not ready");
                self.reconcile(topo, self.pods[p as usize].service);
            }
            _ => {}
        }
    }

    fn unready(&mut self, p: u32) {
        let pod = &mut self.pods[p as usize];
        pod.ready = false;
        let s = pod.service as usize;
        if let Ok(k) = self.svcs[s].ready.binary_search(&p) {
            self.svcs[s].ready.remove(k);
        }
    }

    /// Fails every request on a pod (its process died) and resets its counters.
    fn drop_work(&mut self, topo: &Topology, p: u32) {
        let pod = &mut self.pods[p as usize];
        pod.queue.clear();
        pod.generation = pod.generation.wrapping_add(1);
        let node = pod.node;
        let (on_cpu, _) = (pod.on_cpu, 0);
        pod.on_cpu = 0;
        pod.busy = 0;
        pod.in_flight = 0;
        pod.mem_requests = 0;
        // the process is gone: leaked memory is freed, a leak starts over from here
        pod.leak_since = self.now;
        if node != NONE {
            let n = &mut self.nodes[node as usize];
            n.on_cpu = n.on_cpu.saturating_sub(on_cpu);
        }
        // every job of the pod fails with a reset; in slot order (deterministic)
        let victims: Vec<u32> = (0..self.jobs.items.len() as u32)
            .filter(|&j| self.jobs.is_live(j) && self.jobs.items[j as usize].pod == p)
            .collect();
        for j in victims {
            let job = self.jobs.items[j as usize].clone();
            if job.phase == JobPhase::Io && node != NONE {
                let n = &mut self.nodes[node as usize];
                n.io_active = n.io_active.saturating_sub(1);
            }
            self.jobs.release(j);
            self.respond_or_drop(topo, job.inv, job.attempt, Status::Reset, p);
            self.root_unref(topo, job.root);
        }
    }

    /// The container died: drop its work and restart it after the back-off.
    pub(crate) fn crash(&mut self, topo: &Topology, p: u32, phase: Phase, why: &str) {
        self.unready(p);
        self.drop_work(topo, p);
        let c = &topo.scenario.cluster;
        let pod = &mut self.pods[p as usize];
        pod.phase = phase;
        pod.restarts += 1;
        pod.restarts_window += 1;
        // Kubernetes resets the back-off after 10 minutes of running without a crash
        if self.now.saturating_sub(pod.last_crash) > BACKOFF_RESET_NS {
            pod.crashes_in_row = 0;
        }
        pod.last_crash = self.now;
        pod.crashes_in_row += 1;
        let k = pod.crashes_in_row.saturating_sub(2).min(20);
        let backoff = if pod.crashes_in_row <= 1 {
            0
        } else {
            (c.initial_backoff.0.saturating_mul(1 << k)).min(c.max_backoff.0)
        };
        let name = pod.name.clone();
        let t = if phase == Phase::OomKilled {
            LogTemplate::OomKilled
        } else {
            LogTemplate::ConfigError
        };
        self.log(topo, p, Severity::Error, t, || format!("{name}: {why}"));
        if backoff > 0 {
            self.log(topo, p, Severity::Warn, LogTemplate::BackOff, || {
                format!(
                    "Back-off {}s restarting failed container of {name}",
                    backoff / SECONDS
                )
            });
        }
        let spec = topo.service(self.pods[p as usize].service);
        let pod = &mut self.pods[p as usize];
        // the termination reason stays visible while the container restarts
        pod.phase = if backoff > 0 {
            Phase::CrashLoopBackOff
        } else {
            phase
        };
        let start = self.now.saturating_add(backoff);
        pod.started_at = start;
        let g = pod.generation;
        let stressed = pod.stress_cpu > 0;
        self.queue
            .push(start.saturating_add(spec.boot_time.0), Ev::PodTimer(p, g));
        // a stressed container that died stops loading its node now, not at the next window
        if stressed {
            self.refresh_pod_stress();
        }
    }

    /// Kills a pod for exceeding its memory limit.
    pub(crate) fn oom_kill(&mut self, topo: &Topology, p: u32) {
        self.counters.oom_kills += 1;
        let lim = self.pods[p as usize].mem_limit;
        self.crash(
            topo,
            p,
            Phase::OomKilled,
            &format!(
                "OOMKilled: memory limit {} exceeded",
                crate::quantity::Memory(lim)
            ),
        );
    }

    /// Removes a pod for good (its slot is freed).
    pub(crate) fn terminate_pod(&mut self, topo: &Topology, p: u32, why: &str) {
        if self.pods[p as usize].phase == Phase::Terminated {
            return;
        }
        self.unready(p);
        self.drop_work(topo, p);
        let name = self.pods[p as usize].name.clone();
        self.log(topo, p, Severity::Warn, LogTemplate::Killed, || {
            format!("pod {name} terminated: {why}")
        });
        let pod = &mut self.pods[p as usize];
        pod.phase = Phase::Terminated;
        pod.terminating = true;
        let s = pod.service as usize;
        self.svcs[s].pods.retain(|&x| x != p);
        // calls still under way from or to this pod must not touch the pod that takes its
        // slot next: their caller pod (and its pools, below) is gone, so they release no
        // connection and log nowhere; their callee no longer counts them as outstanding
        for i in 0..self.invs.items.len() as u32 {
            if !self.invs.is_live(i) {
                continue;
            }
            let inv = &mut self.invs.items[i as usize];
            if inv.caller_pod == p {
                inv.caller_pod = NONE;
                inv.conn_held = false;
            }
            if inv.target == p {
                inv.target = NONE;
            }
        }
        // pools of this caller pod are gone
        let keys: Vec<(u32, u32)> = self.pools.keys().filter(|k| k.1 == p).copied().collect();
        for k in keys {
            self.pools.remove(&k);
        }
        for part in self.partitions.values_mut() {
            part.members.retain(|&x| x != p);
            if let Some(peers) = &mut part.peers {
                peers.retain(|&x| x != p);
            }
        }
        self.pod_free.push(p);
        self.refresh_pod_stress();
    }

    /// Makes the number of live pods of a service match its desired replicas.
    pub(crate) fn reconcile(&mut self, topo: &Topology, s: u32) {
        // pods on a lost node still count until they are evicted (as in Kubernetes)
        let mut counted: Vec<u32> = self.svcs[s as usize].pods.clone();
        let (live, desired) = (counted.len(), self.svcs[s as usize].desired as usize);
        if live < desired {
            for _ in live..desired {
                self.create_pod(topo, s, false);
            }
        } else if live > desired {
            // remove not-ready pods first, then those ready for the shortest time (as a
            // ReplicaSet does; slot ids say nothing about age once slots are reused)
            counted.sort_by_key(|&p| {
                let pod = &self.pods[p as usize];
                (
                    pod.ready,
                    std::cmp::Reverse(pod.ready_at),
                    std::cmp::Reverse(p),
                )
            });
            for &p in counted.iter().take(live - desired) {
                self.terminate_pod(topo, p, "scaled down");
            }
        }
        // pending pods may fit now
        for p in self.svcs[s as usize].pods.clone() {
            if self.pods[p as usize].phase == Phase::Pending && self.pods[p as usize].node == NONE {
                self.try_schedule(topo, p, false);
            }
        }
    }

    /// Restarts a pod's container (an operator action, not a crash: no back-off). A pod that
    /// is gone, or lost with its node (its kubelet is unreachable; it waits for eviction),
    /// is left as it is.
    pub(crate) fn restart_container(&mut self, topo: &Topology, p: u32) {
        if matches!(
            self.pods[p as usize].phase,
            Phase::Terminated | Phase::NodeLost
        ) {
            return;
        }
        self.unready(p);
        self.drop_work(topo, p);
        let name = self.pods[p as usize].name.clone();
        self.log(topo, p, Severity::Info, LogTemplate::Started, || {
            format!("container of {name} restarted")
        });
        let pod = &mut self.pods[p as usize];
        pod.restarts += 1;
        pod.restarts_window += 1;
        if pod.node == NONE || !self.nodes[pod.node as usize].up {
            return;
        }
        self.boot(topo, p, 0);
    }

    /// A node goes down: its pods are lost; they are evicted after the eviction timeout.
    pub(crate) fn node_down(&mut self, topo: &Topology, n: u32) {
        if !self.nodes[n as usize].up {
            return;
        }
        self.nodes[n as usize].up = false;
        self.node_lost_at[n as usize] = self.now;
        let name = topo.scenario.nodes[n as usize].name.clone();
        self.log(
            topo,
            NONE,
            Severity::Error,
            LogTemplate::NodeNotReady,
            || format!("node {name} status is now: NodeNotReady"),
        );
        let evict = topo.scenario.cluster.pod_eviction_timeout.0;
        for p in 0..self.pods.len() as u32 {
            let pod = &self.pods[p as usize];
            if pod.node != n || pod.phase == Phase::Terminated {
                continue;
            }
            self.unready(p);
            self.drop_work(topo, p);
            let pod = &mut self.pods[p as usize];
            pod.phase = Phase::NodeLost;
            let g = pod.generation;
            self.schedule_in(evict, Ev::PodTimer(p, g));
        }
        // capacity elsewhere may be needed at once for pods that are pending
        for s in 0..self.svcs.len() as u32 {
            self.reconcile(topo, s);
        }
    }

    /// A node comes back: pods still bound to it boot again, pending pods may schedule.
    pub(crate) fn node_up(&mut self, topo: &Topology, n: u32) {
        if self.nodes[n as usize].up {
            return;
        }
        self.nodes[n as usize].up = true;
        self.node_lost_at[n as usize] = u64::MAX;
        for p in 0..self.pods.len() as u32 {
            let pod = &mut self.pods[p as usize];
            if pod.node == n && pod.phase == Phase::NodeLost {
                pod.generation = pod.generation.wrapping_add(1);
                self.boot(topo, p, 0);
            }
        }
        for s in 0..self.svcs.len() as u32 {
            self.reconcile(topo, s);
        }
    }

    /// Rolls a config version out: every pod of the service restarts with the new template.
    pub(crate) fn rollout(&mut self, topo: &Topology, s: u32, version: u32, record: bool) {
        let old = self.svcs[s as usize].version;
        if record {
            self.svcs[s as usize].history.push(old);
        }
        self.svcs[s as usize].version = version;
        let tpl = topo.template(s, version);
        let name = topo.service(s).name.clone();
        let label = if version == 0 {
            "base".to_string()
        } else {
            topo.service(s).config_versions[version as usize - 1]
                .label
                .clone()
        };
        self.log(topo, NONE, Severity::Info, LogTemplate::Deployment, || {
            format!("deployment {name} rolled out config version {version} ({label}), was {old}")
        });
        for p in self.svcs[s as usize].pods.clone() {
            let pod = &mut self.pods[p as usize];
            pod.version = version;
            pod.cpu_limit = tpl.resources.cpu_limit.0;
            pod.cpu_request = tpl.resources.cpu_request.0;
            pod.mem_limit = tpl.resources.memory_limit.0;
            pod.mem_request = tpl.resources.memory_request.0;
            pod.crash_on_start = tpl.crash_on_start;
            pod.broken = tpl.broken.clone();
            pod.cpu_factor = tpl.cpu_factor;
            pod.crashes_in_row = 0;
            // a pod lost with its node is left to its eviction by restart_container itself
            if pod.phase != Phase::Pending {
                self.restart_container(topo, p);
            }
        }
        self.refresh_pod_stress();
    }

    // ------------------------------------------------------------------ per-window work

    /// Recomputes each node's share of in-pod CPU stress from its live, scheduled pods.
    pub(crate) fn refresh_pod_stress(&mut self) {
        for n in &mut self.nodes {
            n.pod_stress = 0;
        }
        for p in &self.pods {
            if p.node != NONE
                && p.stress_cpu > 0
                && matches!(p.phase, Phase::Running | Phase::Starting)
            {
                let n = &mut self.nodes[p.node as usize];
                n.pod_stress = n.pod_stress.saturating_add(p.stress_cpu.min(p.cpu_limit));
            }
        }
    }

    /// Retries scheduling of pods that found no node.
    pub(crate) fn schedule_pending(&mut self, topo: &Topology) {
        for p in 0..self.pods.len() as u32 {
            let pod = &self.pods[p as usize];
            if pod.phase == Phase::Pending && pod.node == NONE {
                self.try_schedule(topo, p, false);
            }
        }
    }

    /// Memory accounting: OOM-kills pods over their limit (leaks grow between requests).
    pub(crate) fn check_memory(&mut self, topo: &Topology) {
        for p in 0..self.pods.len() {
            let pod = &self.pods[p];
            if pod.phase == Phase::Running && self.pod_memory(p) > pod.mem_limit {
                self.oom_kill(topo, p as u32);
            }
        }
    }

    /// The horizontal pod autoscalers (Kubernetes' algorithm: desired = ceil(current * util /
    /// target), 10% tolerance, scale-down stabilisation). Utilisation is averaged over the time
    /// since the previous evaluation (metrics-server's averaging), not over the last scrape; a
    /// pod that became ready since is averaged over the time since it did, with the CPU it used
    /// since. Stress inside a pod counts as far as its CPU limit lets it through (as in the
    /// scrape).
    ///
    /// Scale-down stabilisation is Kubernetes': every evaluation records its recommendation
    /// (before the min/max bounds); a recommendation below the current count scales down only
    /// to the highest recommendation of the last `scale_down_stabilization` (this one
    /// included), never up; a higher one scales up at once. The first evaluation of an
    /// autoscaler records the current count too (Kubernetes' initial recommendation), so a
    /// new autoscaler does not scale down before a window has passed. The min/max bounds apply
    /// last.
    pub(crate) fn autoscale(&mut self, topo: &Topology) {
        for s in 0..self.svcs.len() {
            let Some(a) = &self.svcs[s].hpa else {
                continue;
            };
            if self.now < self.svcs[s].hpa_next {
                continue;
            }
            let a = a.clone();
            self.svcs[s].hpa_next = self.now.saturating_add(a.period.0);
            let since = std::mem::replace(&mut self.svcs[s].hpa_last, self.now);
            let (mut sum, mut n) = (0.0, 0u32);
            for &p in &self.svcs[s].ready {
                let pod = &self.pods[p as usize];
                // the pod's counter was cleared at the later of `since` and `ready_at`
                let elapsed = self.now - since.max(pod.ready_at).min(self.now);
                if elapsed == 0 {
                    continue;
                }
                let stress = pod.stress_cpu.min(pod.cpu_limit);
                sum += (pod.hpa_cpu_ns as f64 + stress as f64 / 1000.0 * elapsed as f64)
                    / (elapsed as f64 * pod.cpu_request.max(1) as f64 / 1000.0);
                n += 1;
            }
            for pod in self.pods.iter_mut().filter(|p| p.service == s as u32) {
                pod.hpa_cpu_ns = 0;
            }
            if n == 0 {
                continue;
            }
            let util = sum / n as f64;
            let cur = self.svcs[s].desired;
            let ratio = util / a.target_cpu;
            // Kubernetes' 10% tolerance keeps the current count, but the min/max bounds still
            // apply (a raised min_replicas scales up at the next evaluation)
            let tolerated = (ratio - 1.0).abs() <= 0.1;
            // capped at the most replicas a deployment can have: changes no outcome (the
            // current count and max_replicas are at most that) and bounds the window's list
            let rec = if tolerated {
                cur
            } else {
                ((cur as f64 * ratio).ceil() as u32).min(MAX_REPLICAS)
            };
            let stabilized = self.stabilize(s, a.scale_down_stabilization.0, cur, rec);
            // the bounds apply last: a lowered max_replicas is not delayed by the window
            let want = stabilized.clamp(a.min_replicas, a.max_replicas);
            if want != cur {
                self.svcs[s].desired = want;
                let name = topo.scenario.services[s].name.clone();
                self.log(topo, NONE, Severity::Info, LogTemplate::Deployment, || {
                    format!("horizontal-pod-autoscaler: scaled {name} from {cur} to {want} replicas (cpu {:.0}%)", util * 100.0)
                });
                self.reconcile(topo, s as u32);
            }
        }
    }

    /// Kubernetes' scale-down stabilisation of service `s`'s recommendation `rec` (current
    /// count `cur`, window `window` ns): `rec` when it is above `cur`, else the highest
    /// recommendation of the window (`rec` included) but at most `cur`. Records `rec`.
    fn stabilize(&mut self, s: usize, window: u64, cur: u32, rec: u32) -> u32 {
        let now = self.now;
        let recs = &mut self.svcs[s].hpa_recs;
        if recs.is_empty() {
            // Kubernetes records the current count when it first sees an autoscaler
            recs.push_back((now, cur));
        }
        // a recommendation stays in the window while it is later than now - window
        while recs
            .front()
            .is_some_and(|&(t, _)| t.saturating_add(window) <= now)
        {
            recs.pop_front();
        }
        let highest = recs.front().map_or(rec, |&(_, r)| r.max(rec));
        while recs.back().is_some_and(|&(_, r)| r <= rec) {
            recs.pop_back();
        }
        recs.push_back((now, rec));
        if rec > cur { rec } else { highest.min(cur) }
    }

    /// Builds the scrape of the window that ends now and resets the window counters.
    pub(crate) fn scrape(&mut self, topo: &Topology, window_ns: u64) -> Scrape {
        let secs = window_ns as f64 / SECONDS as f64;
        let mut pods = Vec::new();
        let nsvc = self.svcs.len();
        let mut svc_cpu = vec![(0.0f64, 0u32); nsvc];
        let mut svc_mem = vec![0.0f64; nsvc];
        let mut svc_q = vec![(0u32, 0u32, 0u32); nsvc];
        let mut node_mem = vec![0u64; self.nodes.len()];
        let mut node_pods = vec![0u32; self.nodes.len()];
        let mut pool_use: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        for (&(_, cp), pool) in &self.pools {
            let e = pool_use.entry(cp).or_default();
            e.0 += pool.in_use;
            e.1 += pool.waiters.len() as u32;
        }
        for p in 0..self.pods.len() {
            if self.pods[p].phase == Phase::Terminated {
                continue;
            }
            let mem = if matches!(self.pods[p].phase, Phase::Running | Phase::Starting) {
                self.pod_memory(p)
            } else {
                0
            };
            let pod = &self.pods[p];
            let stress_ns = pod.stress_cpu.min(pod.cpu_limit) as f64 / 1000.0 * window_ns as f64;
            let cpu = if pod.phase == Phase::Running {
                ((pod.win.cpu_ns as f64 + stress_ns)
                    / (window_ns as f64 * pod.cpu_limit as f64 / 1000.0))
                    .min(1.0)
            } else {
                0.0
            };
            let s = pod.service as usize;
            if pod.phase == Phase::Running {
                svc_cpu[s].0 += cpu;
                svc_cpu[s].1 += 1;
                svc_mem[s] += mem as f64 / pod.mem_limit.max(1) as f64;
            }
            svc_q[s].0 += pod.queue.len() as u32;
            svc_q[s].1 += pod.in_flight;
            svc_q[s].2 += pod.restarts_window;
            if pod.node != NONE {
                node_mem[pod.node as usize] += mem;
                node_pods[pod.node as usize] += 1;
            }
            let (pin, pwait) = pool_use.get(&(p as u32)).copied().unwrap_or((0, 0));
            let pq = pod.win.hist.quantiles_ms(SCRAPE_QUANTILES);
            let w = &pod.win;
            pods.push(PodMetrics {
                pod: p as u32,
                name: pod.name.clone(),
                service: pod.service,
                node: pod.node,
                phase: pod.phase,
                ready: pod.ready,
                cpu_utilization: cpu,
                memory_bytes: mem,
                memory_utilization: mem as f64 / pod.mem_limit.max(1) as f64,
                rps: w.requests as f64 / secs,
                error_rate: share(w.errors, w.requests),
                p50_ms: pq[0],
                p90_ms: pq[1],
                p99_ms: pq[2],
                queue_depth: pod.queue.len() as u32,
                in_flight: pod.in_flight,
                restarts: pod.restarts,
                pool_in_use: pin,
                pool_waiting: pwait,
                rejected: w.rejected,
                timeouts: w.timeouts,
                retries: w.retries,
            });
        }
        // service latency = the union of its pods' windows (merged here, not recorded twice per request)
        for sv in &mut self.svcs {
            sv.win.reset();
        }
        for pod in &self.pods {
            if !pod.win.hist.is_empty() {
                self.svcs[pod.service as usize].win.add(&pod.win.hist);
            }
        }
        let services = (0..nsvc)
            .map(|s| {
                let sv = &self.svcs[s];
                let sq = sv.win.quantiles_ms(SCRAPE_QUANTILES);
                ServiceMetrics {
                    service: s as u32,
                    name: topo.scenario.services[s].name.clone(),
                    ready_pods: sv.ready.len() as u32,
                    desired_replicas: sv.desired,
                    config_version: sv.version,
                    rps: sv.win_requests as f64 / secs,
                    errors_per_s: sv.win_errors as f64 / secs,
                    error_rate: share(sv.win_errors, sv.win_requests),
                    p50_ms: sq[0],
                    p90_ms: sq[1],
                    p99_ms: sq[2],
                    cpu_utilization: if svc_cpu[s].1 > 0 {
                        svc_cpu[s].0 / svc_cpu[s].1 as f64
                    } else {
                        0.0
                    },
                    memory_utilization: if svc_cpu[s].1 > 0 {
                        svc_mem[s] / svc_cpu[s].1 as f64
                    } else {
                        0.0
                    },
                    queue_depth: svc_q[s].0,
                    in_flight: svc_q[s].1,
                    restarts: svc_q[s].2,
                }
            })
            .collect();
        let nodes = (0..self.nodes.len())
            .map(|n| {
                let nd = &self.nodes[n];
                let spec = &topo.scenario.nodes[n];
                let cap = window_ns as f64 * nd.cpu as f64 / 1000.0;
                // node stress includes the stress inside its pods (as the pods' limits let it through)
                let stress =
                    (nd.stress_cpu as f64 + nd.pod_stress as f64) / 1000.0 * window_ns as f64;
                NodeMetrics {
                    node: n as u32,
                    name: spec.name.clone(),
                    up: nd.up,
                    cpu_utilization: if nd.up {
                        ((nd.win_cpu_ns as f64 + stress) / cap).min(1.0)
                    } else {
                        0.0
                    },
                    memory_utilization: node_mem[n] as f64 / spec.memory.0.max(1) as f64,
                    io_utilization: (nd.win_io_ns as f64 / window_ns as f64).min(1.0),
                    pods: node_pods[n],
                }
            })
            .collect();
        let clients = self
            .clients
            .iter()
            .enumerate()
            .map(|(w, c)| {
                let entry = topo.edges.get(w).map(|e| e.to).unwrap_or(NONE);
                let q = c.hist.quantiles_ms(SCRAPE_QUANTILES);
                ClientMetrics {
                    workload: w as u32,
                    service: entry,
                    service_name: topo
                        .scenario
                        .services
                        .get(entry as usize)
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    completed: c.completed,
                    rps: c.completed as f64 / secs,
                    errors: c.errors,
                    timeouts: c.timeouts,
                    rate_limited: c.rate_limited,
                    error_rate: share(c.errors, c.completed),
                    p50_ms: q[0],
                    p90_ms: q[1],
                    p99_ms: q[2],
                }
            })
            .collect();
        // reset windows
        for c in &mut self.clients {
            c.completed = 0;
            c.errors = 0;
            c.timeouts = 0;
            c.rate_limited = 0;
            c.hist.reset();
        }
        for pod in &mut self.pods {
            pod.win.requests = 0;
            pod.win.errors = 0;
            pod.win.rejected = 0;
            pod.win.timeouts = 0;
            pod.win.retries = 0;
            pod.win.cpu_ns = 0;
            pod.win.hist.reset();
            pod.win.logs = [0; LOG_TEMPLATES];
            pod.restarts_window = 0;
        }
        for sv in &mut self.svcs {
            sv.win.reset();
            sv.win_requests = 0;
            sv.win_errors = 0;
        }
        for nd in &mut self.nodes {
            nd.win_cpu_ns = 0;
            nd.win_io_ns = 0;
        }
        Scrape {
            time: self.now,
            pods,
            services,
            nodes,
            clients,
        }
    }
}

fn insert_sorted(v: &mut Vec<u32>, x: u32) {
    if let Err(k) = v.binary_search(&x) {
        v.insert(k, x);
    }
}

/// Deterministic Kubernetes-looking pod name suffix (`7d9f8c-x2k4q` style, from the seed).
fn pod_suffix(seed: u64, s: u32, n: u32) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = mix64(seed ^ mix64(((s as u64) << 32) | n as u64));
    let mut out = String::with_capacity(5);
    for _ in 0..5 {
        out.push(ALPHA[(h % ALPHA.len() as u64) as usize] as char);
        h /= ALPHA.len() as u64;
    }
    out
}
