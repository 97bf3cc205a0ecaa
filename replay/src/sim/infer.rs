//! Inferring a `sim-core` [`Scenario`] from call graphs.
//!
//! # Rules
//!
//! - **Services**: one per distinct callee (`dm`) name, in order of first appearance.
//!   Callees named `UNKNOWN` (Alibaba's `UNKNOWN`, `UNAVAILABLE`, `NaN`, `(?)`, empty) or
//!   `USER` cannot be simulated: with [`UnknownPolicy::Drop`] (the default) such a span
//!   and its whole subtree are dropped and counted ([`InferReport::spans_dropped_unknown`];
//!   a graph whose root is unknown is dropped whole); with [`UnknownPolicy::Placeholder`]
//!   they are served by one service named `unknown`. `USER` as a caller is the external
//!   client: the root span of every graph is the client's call into its entry service,
//!   whatever its `um`.
//! - **Caller of a call**: the service of the parent span (not the span's own `um`,
//!   which disagrees with the parent's `dm` in some Alibaba rows; such rows are counted
//!   in [`InferReport::caller_mismatches`]). The replay follows the same rule, so every
//!   replayed call has an edge.
//! - **Operations**: one per (service, interface), named after the interface. Its CPU
//!   demand is the distribution of the observed **self times** (response time minus the
//!   time covered by the span's synchronous children, clipped to the span and clamped at
//!   0): [`CpuModel::Empirical`] (default; at most `max_values` quantiles) or a
//!   [`CpuModel::Lognormal`] fit (median = geometric mean, sigma = standard deviation of
//!   the logs, values floored at 1 µs).
//! - **Call plans**: from the observed children of the operation's spans. A call to
//!   (callee, operation, mode) made `k` times by one span gives `k` plan entries; entry
//!   `j` has probability (spans with at least `j` such calls) / (spans of the operation).
//!   Mode: `mq` calls are asynchronous, every other type synchronous. Stages: in a span,
//!   children overlapping in time share a stage, a child starting after the stage's
//!   synchronous calls ended opens the next one; a plan entry's stage is the rounded mean
//!   of its observed stages. Calls closing a cycle in the (service, operation) call graph
//!   are removed from the plans (depth-first from the operations in order; counted in
//!   [`InferReport::back_edges_removed`]) so open-loop requests terminate; scripted replays
//!   do not use the plans.
//! - **Edges**: one per observed (caller, callee); protocol from the most frequent call
//!   type (`http` -> http, `rpc` -> grpc, `db` -> db, `mc` -> cache, `mq` -> mq, others ->
//!   grpc), listed most used first; latency [`InferOptions::edge_latency`] (default 0: Alibaba merges the caller's
//!   and callee's rows of a call keeping the larger response time, and that response time
//!   already includes the network, so the network share cannot be separated from the
//!   data); timeout max([`InferOptions::min_timeout`], 4 x the largest observed response
//!   time on the edge); no retries; unbounded pools.
//! - **Sizing** (on the time axis of a replay with speed-up `s`, where the graphs' start
//!   times are divided by `s` and their durations kept; the window `W` is the span of root
//!   start times divided by `s`, at least 1 s):
//!   replicas = clamp(ceil(total self time / W / (pod CPU limit x target utilisation)),
//!   1, `max_replicas`); workers per pod = clamp(ceil(peak concurrency x headroom /
//!   replicas), `min_workers`, 100000), where peak concurrency is the largest number of
//!   the service's spans in progress at once on that time axis (a worker is held for the
//!   whole span, as in thread-per-request servers). Warm-up is off (a replay starts from a
//!   warm system).
//! - **Nodes**: identical nodes of [`InferOptions::node_cpu`] and
//!   [`InferOptions::node_memory`], as many as needed to hold every pod's CPU and memory
//!   *limits* (requests are half the CPU limit), so that nodes are never contended.
//! - **Workloads**: one per entry service (the callee of graph roots) with an open-loop
//!   rate from the root start times (count / `W`, or a piecewise rate over
//!   [`InferOptions::rate_bins`] bins) and an operation mix from the roots' interfaces;
//!   client timeout as for edges. **SLOs** per entry service: p99 latency objective twice
//!   the observed p99 root response time (at least 1 ms), error rate 1%.
//! - **Duration**: `W` plus a drain time of max(5 s, 2 x the longest root response time +
//!   1 s), in whole seconds. Spans are all sampled by default
//!   ([`InferOptions::trace_sample_rate`]); scrapes are retained up to
//!   [`InferOptions::retain_scrapes`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sim_core::dist::DurationDist;
use sim_core::quantity::{Cpu, Memory};
use sim_core::scenario::*;
use sim_core::time::{MILLIS, SECONDS, SimDuration};

use super::ReplayError;
use super::analysis::{Analysis, is_async};
use crate::model::{CallType, Sym, SymbolTable, TraceSet};

/// How operation CPU demand is modelled from the observed self times.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CpuModel {
    /// The observed values (at most `max_values` evenly spaced quantiles of them).
    Empirical {
        /// Largest number of values kept per operation (at least 1).
        max_values: usize,
    },
    /// A log-normal fit.
    Lognormal,
}

/// What to do with calls whose callee is unknown (`UNKNOWN`, `USER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnknownPolicy {
    /// Drop the call and its subtree (counted).
    #[default]
    Drop,
    /// Serve such calls by one service named `unknown`.
    Placeholder,
}

/// Longest replay (simulated time between the first and the last arrival): 31 days.
/// Longer spans are refused by [`infer_scenario`] and the replay functions (they are
/// almost always an outlier timestamp, and would simulate for a very long time).
pub const MAX_REPLAY_SPAN_NS: u64 = 31 * 24 * 3600 * SECONDS;

/// Most bins of the piecewise arrival rate ([`InferOptions::rate_bins`]): e.g. 12 h in
/// 5 s bins. Every entry service gets one rate point per bin, so the limit bounds the
/// scenario's size (more is refused by [`infer_scenario`] instead of allocating).
pub const MAX_RATE_BINS: u32 = 10_000;

/// Name of the placeholder service of [`UnknownPolicy::Placeholder`].
pub const PLACEHOLDER_SERVICE: &str = "unknown";

/// Options of [`infer_scenario`]. See the module docs for how each is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferOptions {
    /// Scenario name. Default `"replay"`.
    pub name: String,
    /// Speed-up of the replay the scenario is sized for (start times are divided by it).
    /// Default 1.
    pub speedup: f64,
    /// CPU demand model. Default empirical with 256 values.
    pub cpu_model: CpuModel,
    /// Unknown callees. Default [`UnknownPolicy::Drop`].
    pub unknown: UnknownPolicy,
    /// Target mean CPU utilisation of a pod. Default 0.5.
    pub target_utilization: f64,
    /// CPU limit of every pod. Default 1 core.
    pub pod_cpu: Cpu,
    /// Fewest workers per pod. Default 16.
    pub min_workers: u32,
    /// Workers per pod are the peak concurrency times this, over the replicas. Default 2.
    pub concurrency_headroom: f64,
    /// Most replicas per service. Default 1000.
    pub max_replicas: u32,
    /// CPU of each node. Default 64 cores.
    pub node_cpu: Cpu,
    /// Memory of each node. Default 256 GiB.
    pub node_memory: Memory,
    /// One-way network latency of every edge. Default constant 0.
    pub edge_latency: DurationDist,
    /// Smallest per-attempt timeout of edges and clients. Default 30 s.
    pub min_timeout: SimDuration,
    /// Share of traces whose spans are kept. Default 1.
    pub trace_sample_rate: f64,
    /// Scrapes kept in memory (0 = all). Default 600.
    pub retain_scrapes: u32,
    /// Bins of the piecewise arrival rate (0 or 1 = a constant rate), at most
    /// [`MAX_RATE_BINS`]. Default 1.
    pub rate_bins: u32,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            name: "replay".into(),
            speedup: 1.0,
            cpu_model: CpuModel::Empirical { max_values: 256 },
            unknown: UnknownPolicy::Drop,
            target_utilization: 0.5,
            pod_cpu: Cpu(1000),
            min_workers: 16,
            concurrency_headroom: 2.0,
            max_replicas: 1000,
            node_cpu: Cpu(64_000),
            node_memory: Memory(256 << 30),
            edge_latency: DurationDist::constant(SimDuration::ZERO),
            min_timeout: SimDuration::from_secs(30),
            trace_sample_rate: 1.0,
            retain_scrapes: 600,
            rate_bins: 1,
        }
    }
}

impl InferOptions {
    fn check(&self) -> Result<(), ReplayError> {
        let bad = |m: &str| Err(ReplayError::Invalid(format!("InferOptions.{m}")));
        if !(self.speedup.is_finite() && self.speedup > 0.0) {
            return bad("speedup must be finite and positive");
        }
        if !(self.target_utilization.is_finite() && self.target_utilization > 0.0) {
            return bad("target_utilization must be positive");
        }
        if !(self.concurrency_headroom.is_finite() && self.concurrency_headroom > 0.0) {
            return bad("concurrency_headroom must be positive");
        }
        if self.pod_cpu.0 == 0 || self.node_cpu.0 < self.pod_cpu.0 {
            return bad("pod_cpu must be positive and at most node_cpu");
        }
        if self.max_replicas == 0 || self.max_replicas > 10_000 {
            return bad("max_replicas must be in 1..=10000");
        }
        if let CpuModel::Empirical { max_values: 0 } = self.cpu_model {
            return bad("cpu_model.max_values must be at least 1");
        }
        if self.rate_bins > MAX_RATE_BINS {
            return bad(&format!(
                "rate_bins must be at most {MAX_RATE_BINS} (got {})",
                self.rate_bins
            ));
        }
        Ok(())
    }
}

/// What inference saw and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferReport {
    /// Graphs in the input.
    pub graphs: u64,
    /// Graphs used (their root callee is known).
    pub graphs_used: u64,
    /// Graphs dropped because the root's callee is unknown.
    pub graphs_dropped_root: u64,
    /// Spans in the input.
    pub spans: u64,
    /// Spans used.
    pub spans_used: u64,
    /// Spans dropped (an unknown callee, or under one; dropped roots included).
    pub spans_dropped_unknown: u64,
    /// Spans whose `um` is known and differs from the parent span's `dm`.
    pub caller_mismatches: u64,
    /// Plan entries removed to break call cycles.
    pub back_edges_removed: u64,
    /// Services inferred.
    pub services: usize,
    /// Operations inferred.
    pub operations: usize,
    /// Edges inferred.
    pub edges: usize,
    /// The replay window `W` (ns).
    pub window_ns: u64,
}

/// True for names that cannot be a simulated callee.
pub(crate) fn is_unknown_name(n: &str) -> bool {
    matches!(n, "UNKNOWN" | "USER" | "" | "UNAVAILABLE" | "NaN" | "(?)")
}

/// The scenario service name of a callee name, if it can be simulated.
pub(crate) fn service_name(n: &str, policy: UnknownPolicy) -> Option<&str> {
    if is_unknown_name(n) {
        (policy == UnknownPolicy::Placeholder).then_some(PLACEHOLDER_SERVICE)
    } else {
        Some(n)
    }
}

/// A plan entry: (callee service, callee op, async, k-th call of that kind).
type SlotKey = (u32, u32, bool, u32);

struct OpAcc {
    name: String,
    self_ns: Vec<u64>,
    instances: u64,
    /// (callee service, callee op, async, k) -> (count, sum of stages)
    slots: BTreeMap<SlotKey, (u64, u64)>,
}

struct SvcAcc {
    name: String,
    ops: Vec<OpAcc>,
    op_index: HashMap<Sym, u32>,
    types_in: [u64; 8],
    self_total: u128,
    /// (compressed start, end) of every span served
    intervals: Vec<(u64, u64)>,
}

#[derive(Default)]
struct EdgeAcc {
    types: [u64; 8],
    max_rt: u64,
}

#[derive(Default)]
struct EntryAcc {
    ops: BTreeMap<u32, u64>,
    root_rts: Vec<u64>,
    starts: Vec<u64>,
}

fn type_index(ct: CallType) -> usize {
    CallType::ALL.iter().position(|&c| c == ct).unwrap_or(7)
}

fn majority(types: &[u64; 8]) -> CallType {
    let mut best = 7;
    for i in 0..8 {
        if types[i] > types[best] {
            best = i;
        }
    }
    CallType::ALL[best]
}

fn protocol_of(ct: CallType) -> Protocol {
    match ct {
        CallType::Http => Protocol::Http,
        CallType::Db => Protocol::Db,
        CallType::Mc => Protocol::Cache,
        CallType::Mq => Protocol::Mq,
        _ => Protocol::Grpc,
    }
}

/// Resolves callee names of one symbol table to service indices, creating services.
struct Names<'a> {
    symbols: &'a SymbolTable,
    policy: UnknownPolicy,
    /// per Sym: service index, u32::MAX = unknown (dropped), unset = not resolved yet
    cache: HashMap<Sym, u32>,
    by_name: HashMap<String, u32>,
}

impl Names<'_> {
    fn resolve(&mut self, s: Sym, svcs: &mut Vec<SvcAcc>) -> Option<u32> {
        if let Some(&v) = self.cache.get(&s) {
            return (v != u32::MAX).then_some(v);
        }
        let v = match service_name(self.symbols.resolve(s), self.policy) {
            None => u32::MAX,
            Some(n) => *self.by_name.entry(n.to_owned()).or_insert_with(|| {
                svcs.push(SvcAcc {
                    name: n.to_owned(),
                    ops: Vec::new(),
                    op_index: HashMap::new(),
                    types_in: [0; 8],
                    self_total: 0,
                    intervals: Vec::new(),
                });
                (svcs.len() - 1) as u32
            }),
        };
        self.cache.insert(s, v);
        (v != u32::MAX).then_some(v)
    }

    /// Whether the callee can be simulated, without creating a service.
    fn known(&self, s: Sym) -> bool {
        service_name(self.symbols.resolve(s), self.policy).is_some()
    }
}

fn op_of(svc: &mut SvcAcc, iface: Sym, symbols: &SymbolTable) -> u32 {
    if let Some(&o) = svc.op_index.get(&iface) {
        return o;
    }
    let mut name = symbols.resolve(iface).to_owned();
    // two interface symbols never share a name in one table, but keep names unique anyway
    while svc.ops.iter().any(|o| o.name == name) {
        name.push('_');
    }
    svc.ops.push(OpAcc {
        name,
        self_ns: Vec::new(),
        instances: 0,
        slots: BTreeMap::new(),
    });
    let o = (svc.ops.len() - 1) as u32;
    svc.op_index.insert(iface, o);
    o
}

fn cpu_dist(values: &[u64], model: CpuModel) -> DurationDist {
    if values.is_empty() {
        return DurationDist::constant(SimDuration::ZERO);
    }
    match model {
        CpuModel::Empirical { max_values } => {
            let mut v = values.to_vec();
            v.sort_unstable();
            let m = max_values.max(1);
            let picked: Vec<SimDuration> = if v.len() <= m {
                v.into_iter().map(SimDuration).collect()
            } else if m == 1 {
                vec![SimDuration(v[v.len() / 2])]
            } else {
                (0..m)
                    .map(|k| SimDuration(v[k * (v.len() - 1) / (m - 1)]))
                    .collect()
            };
            if picked.windows(2).all(|w| w[0] == w[1]) {
                DurationDist::constant(picked[0])
            } else {
                DurationDist::Empirical { values: picked }
            }
        }
        CpuModel::Lognormal => {
            let logs: Vec<f64> = values.iter().map(|&x| (x.max(1_000) as f64).ln()).collect();
            let n = logs.len() as f64;
            let mean = logs.iter().sum::<f64>() / n;
            let var = logs.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / n;
            let sigma = var.sqrt();
            let sigma = if sigma.is_finite() {
                sigma.clamp(0.0, 10.0)
            } else {
                0.0
            };
            DurationDist::Lognormal {
                median: SimDuration(mean.exp().min(1e15) as u64),
                sigma,
            }
        }
    }
}

fn peak_concurrency(intervals: &mut [(u64, u64)]) -> u64 {
    let mut ev: Vec<(u64, i8)> = Vec::with_capacity(intervals.len() * 2);
    for &(s, e) in intervals.iter() {
        ev.push((s, 1));
        ev.push((e.max(s.saturating_add(1)), -1));
    }
    ev.sort_unstable();
    let (mut cur, mut best) = (0i64, 0i64);
    for (_, d) in ev {
        cur += i64::from(d);
        best = best.max(cur);
    }
    best as u64
}

fn quantile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Infers a scenario from call graphs (see the module docs for the rules). The result
/// validates; its workloads generate open-loop traffic at the observed rates (use
/// [`replay_scenario`] to switch them off for a replay).
pub fn infer_scenario(set: &TraceSet, opts: &InferOptions) -> Result<Scenario, ReplayError> {
    infer_scenario_with_report(set, opts).map(|(s, _)| s)
}

/// [`infer_scenario`], also returning what it saw and did.
pub fn infer_scenario_with_report(
    set: &TraceSet,
    opts: &InferOptions,
) -> Result<(Scenario, InferReport), ReplayError> {
    opts.check()?;
    let mut rep = InferReport {
        graphs: set.graphs.len() as u64,
        spans: set.num_spans() as u64,
        ..InferReport::default()
    };
    let mut svcs: Vec<SvcAcc> = Vec::new();
    let mut names = Names {
        symbols: &set.symbols,
        policy: opts.unknown,
        cache: HashMap::new(),
        by_name: HashMap::new(),
    };
    // pass 1: the time origin and window (roots with a known callee)
    let mut t_min = u64::MAX;
    let mut t_max = 0u64;
    for g in &set.graphs {
        if let Some(r) = g.spans.first()
            && names.known(r.dm)
        {
            t_min = t_min.min(r.start_ns);
            t_max = t_max.max(r.start_ns);
        }
    }
    if t_min == u64::MAX {
        return Err(ReplayError::Invalid(
            "no graph has a root with a known callee: nothing to infer".into(),
        ));
    }
    let compress = |t: u64| ((t - t_min) as f64 / opts.speedup) as u64;
    let window_ns = compress(t_max).max(SECONDS);
    if window_ns > MAX_REPLAY_SPAN_NS {
        return Err(ReplayError::Invalid(format!(
            "root start times span {:.0} s after the speed-up (at most {} s): raise the \
             speed-up, or drop outliers (e.g. a trace at time 0 among Unix-time traces)",
            window_ns as f64 / 1e9,
            MAX_REPLAY_SPAN_NS / SECONDS
        )));
    }
    rep.window_ns = window_ns;

    let mut edges: BTreeMap<(u32, u32), EdgeAcc> = BTreeMap::new();
    let mut entries: BTreeMap<u32, EntryAcc> = BTreeMap::new();
    let mut an = Analysis::default();
    let mut svc_of: Vec<u32> = Vec::new();
    let mut op_idx: Vec<u32> = Vec::new();
    let mut mult: Vec<((u32, u32, bool), u32)> = Vec::new();
    const CLIENT: u32 = u32::MAX;
    for g in &set.graphs {
        let Some(root) = g.spans.first() else {
            continue;
        };
        an.run(g, |i| names.known(g.spans[i].dm));
        if !an.keep[0] {
            rep.graphs_dropped_root += 1;
            rep.spans_dropped_unknown += g.spans.len() as u64;
            continue;
        }
        rep.graphs_used += 1;
        let shift = compress(root.start_ns);
        let n = g.spans.len();
        svc_of.clear();
        svc_of.resize(n, u32::MAX);
        op_idx.clear();
        op_idx.resize(n, u32::MAX);
        for (i, s) in g.spans.iter().enumerate() {
            if !an.keep[i] {
                rep.spans_dropped_unknown += 1;
                continue;
            }
            rep.spans_used += 1;
            let sv = names.resolve(s.dm, &mut svcs).unwrap_or(0);
            svc_of[i] = sv;
            let acc = &mut svcs[sv as usize];
            let o = op_of(acc, s.interface, &set.symbols);
            op_idx[i] = o;
            acc.types_in[type_index(s.call_type)] += 1;
            acc.self_total += u128::from(an.self_ns[i]);
            let st = shift.saturating_add(s.start_ns.saturating_sub(root.start_ns));
            acc.intervals.push((st, st.saturating_add(s.duration_ns)));
            let op = &mut acc.ops[o as usize];
            op.self_ns.push(an.self_ns[i]);
            op.instances += 1;
            let caller = match s.parent {
                Some(p) => {
                    let pd = g.spans[p as usize].dm;
                    if s.um != pd && names.known(s.um) && s.um != Sym::UNKNOWN {
                        rep.caller_mismatches += 1;
                    }
                    svc_of[p as usize]
                }
                None => CLIENT,
            };
            let e = edges.entry((caller, sv)).or_default();
            e.types[type_index(s.call_type)] += 1;
            e.max_rt = e.max_rt.max(s.duration_ns);
            if caller == CLIENT {
                let en = entries.entry(sv).or_default();
                *en.ops.entry(o).or_insert(0) += 1;
                en.root_rts.push(s.duration_ns);
                en.starts.push(shift);
            }
        }
        // call plans: children of every kept span (children come after parents, so
        // their service and op are known by now)
        for i in 0..n {
            if !an.keep[i] {
                continue;
            }
            mult.clear();
            let (si, oi) = (svc_of[i], op_idx[i]);
            for c in an.kept_children(i) {
                let c = c as usize;
                let key = (svc_of[c], op_idx[c], is_async(g.spans[c].call_type));
                let k = match mult.iter_mut().find(|(x, _)| *x == key) {
                    Some((_, k)) => {
                        *k += 1;
                        *k
                    }
                    None => {
                        mult.push((key, 1));
                        1
                    }
                };
                let slot = svcs[si as usize].ops[oi as usize]
                    .slots
                    .entry((key.0, key.1, key.2, k))
                    .or_insert((0, 0));
                slot.0 += 1;
                slot.1 += u64::from(an.stage[c]);
            }
        }
    }

    // global op ids for cycle breaking
    let mut first_op = Vec::with_capacity(svcs.len());
    let mut total_ops = 0usize;
    for s in &svcs {
        first_op.push(total_ops);
        total_ops += s.ops.len();
    }
    let gid = |s: u32, o: u32| first_op[s as usize] + o as usize;
    let mut removed: std::collections::BTreeSet<(usize, SlotKey)> =
        std::collections::BTreeSet::new();
    {
        // iterative DFS; back edges (to an op on the stack) are removed
        let mut adj: Vec<Vec<(SlotKey, usize)>> = vec![Vec::new(); total_ops];
        for (si, s) in svcs.iter().enumerate() {
            for (oi, o) in s.ops.iter().enumerate() {
                for key in o.slots.keys() {
                    adj[gid(si as u32, oi as u32)].push((*key, gid(key.0, key.1)));
                }
            }
        }
        let mut state = vec![0u8; total_ops];
        for start in 0..total_ops {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if *next < adj[v].len() {
                    let (key, w) = adj[v][*next];
                    *next += 1;
                    match state[w] {
                        0 => {
                            state[w] = 1;
                            stack.push((w, 0));
                        }
                        1 => {
                            removed.insert((v, key));
                        }
                        _ => {}
                    }
                } else {
                    state[v] = 2;
                    stack.pop();
                }
            }
        }
    }
    rep.back_edges_removed = removed.len() as u64;

    // services
    let svc_names: Vec<String> = svcs.iter().map(|s| s.name.clone()).collect();
    let op_names: Vec<Vec<String>> = svcs
        .iter()
        .map(|s| s.ops.iter().map(|o| o.name.clone()).collect())
        .collect();
    let mut services = Vec::with_capacity(svcs.len());
    let mut total_cpu_limit: u64 = 0;
    let mut total_mem_limit: u64 = 0;
    let pod_cores = f64::from(opts.pod_cpu.0) / 1000.0;
    for (si, s) in svcs.iter_mut().enumerate() {
        let demand_cores = s.self_total as f64 / window_ns as f64;
        let replicas = (demand_cores / (pod_cores * opts.target_utilization))
            .ceil()
            .clamp(1.0, f64::from(opts.max_replicas)) as u32;
        let peak = peak_concurrency(&mut s.intervals) as f64;
        let workers = (peak * opts.concurrency_headroom / f64::from(replicas))
            .ceil()
            .clamp(f64::from(opts.min_workers.max(1)), 100_000.0) as u32;
        let kind = match majority(&s.types_in) {
            CallType::Db => ServiceKind::Database,
            CallType::Mc => ServiceKind::Cache,
            _ => ServiceKind::Stateless,
        };
        let mut spec = ServiceSpec::simple(&s.name, DurationDist::constant(SimDuration::ZERO));
        spec.kind = kind;
        spec.volume = Some(false);
        spec.replicas = replicas;
        spec.workers = workers;
        spec.warmup = SimDuration::ZERO;
        spec.warmup_factor = 1.0;
        spec.resources = Resources {
            cpu_request: Cpu(opts.pod_cpu.0.div_ceil(2)),
            cpu_limit: opts.pod_cpu,
            ..Resources::default()
        };
        total_cpu_limit += u64::from(replicas) * u64::from(opts.pod_cpu.0);
        total_mem_limit += u64::from(replicas) * spec.resources.memory_limit.0;
        spec.operations = Vec::with_capacity(s.ops.len());
        for (oi, o) in s.ops.iter().enumerate() {
            let mut op = OperationSpec::new(&o.name, cpu_dist(&o.self_ns, opts.cpu_model));
            // plan entries grouped by their rounded mean stage
            let mut by_stage: BTreeMap<u64, Vec<CallSpec>> = BTreeMap::new();
            for (key, &(count, stage_sum)) in &o.slots {
                if removed.contains(&(gid(si as u32, oi as u32), *key)) {
                    continue;
                }
                let stage = (stage_sum as f64 / count as f64).round() as u64;
                by_stage.entry(stage).or_default().push(CallSpec {
                    service: svc_names[key.0 as usize].clone(),
                    operation: Some(op_names[key.0 as usize][key.1 as usize].clone()),
                    probability: (count as f64 / o.instances.max(1) as f64).min(1.0),
                    mode: if key.2 {
                        CallMode::Async
                    } else {
                        CallMode::Sync
                    },
                    optional: false,
                });
            }
            op.stages = by_stage
                .into_values()
                .map(|calls| StageSpec { calls })
                .collect();
            spec.operations.push(op);
        }
        services.push(spec);
    }
    rep.services = services.len();
    rep.operations = total_ops;

    // edges
    let timeout = |max_rt: u64| SimDuration(opts.min_timeout.0.max(max_rt.saturating_mul(4)));
    let mut edge_specs = Vec::new();
    // most used first (the engine finds an edge by a scan from the front)
    let mut edge_order: Vec<(&(u32, u32), &EdgeAcc)> =
        edges.iter().filter(|(k, _)| k.0 != CLIENT).collect();
    edge_order.sort_by_key(|(k, e)| (std::cmp::Reverse(e.types.iter().sum::<u64>()), **k));
    for (&(from, to), e) in edge_order {
        edge_specs.push(EdgeSpec {
            from: svc_names[from as usize].clone(),
            to: svc_names[to as usize].clone(),
            protocol: protocol_of(majority(&e.types)),
            timeout: timeout(e.max_rt),
            retry: RetrySpec::default(),
            pool_size: None,
            load_balancing: LoadBalancing::RoundRobin,
            latency: opts.edge_latency.clone(),
        });
    }
    rep.edges = edge_specs.len();

    // workloads and SLOs
    let mut workload = Vec::new();
    let mut slos = Vec::new();
    let mut max_root_rt = 0u64;
    for (&sv, en) in entries.iter_mut() {
        let name = svc_names[sv as usize].clone();
        let count = en.root_rts.len() as f64;
        let rate = if opts.rate_bins <= 1 {
            RateSpec::Constant {
                rps: count / (window_ns as f64 / 1e9),
            }
        } else {
            let bins = u64::from(opts.rate_bins);
            let width = window_ns.div_ceil(bins).max(1);
            let mut counts = vec![0u64; bins as usize];
            for &t in &en.starts {
                counts[((t / width) as usize).min(bins as usize - 1)] += 1;
            }
            RateSpec::Piecewise {
                points: counts
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| {
                        (
                            SimDuration(k as u64 * width + width / 2),
                            c as f64 / (width as f64 / 1e9),
                        )
                    })
                    .collect(),
            }
        };
        let max_rt = en.root_rts.iter().copied().max().unwrap_or(0);
        max_root_rt = max_root_rt.max(max_rt);
        let p99 = quantile(&mut en.root_rts, 0.99);
        let mix = en
            .ops
            .iter()
            .map(|(&o, &c)| MixEntry {
                operation: op_names[sv as usize][o as usize].clone(),
                weight: c as f64,
            })
            .collect();
        workload.push(WorkloadSpec {
            entry: name.clone(),
            arrivals: ArrivalSpec::Open { rate },
            mix,
            client: ClientSpec {
                timeout: timeout(max_rt),
                retry: RetrySpec::default(),
                latency: DurationDist::constant(SimDuration::ZERO),
            },
        });
        slos.push(SloSpec {
            service: name,
            latency_p99: Some(SimDuration(p99.saturating_mul(2).max(MILLIS))),
            error_rate: Some(0.01),
        });
    }

    // nodes
    let n_cpu = total_cpu_limit.div_ceil(u64::from(opts.node_cpu.0));
    let n_mem = total_mem_limit.div_ceil(opts.node_memory.0.max(1));
    let n_nodes = n_cpu.max(n_mem).max(1);
    let nodes = (0..n_nodes)
        .map(|k| NodeSpec {
            name: format!("node-{k}"),
            cpu: opts.node_cpu,
            memory: opts.node_memory,
            zone: "zone-a".into(),
            io_bandwidth: Memory(200_000_000),
        })
        .collect();

    let drain = max_root_rt
        .saturating_mul(2)
        .saturating_add(SECONDS)
        .clamp(5 * SECONDS, MAX_REPLAY_SPAN_NS);
    let duration = (window_ns + drain).div_ceil(SECONDS) * SECONDS;
    let scenario = Scenario {
        name: opts.name.clone(),
        description: format!(
            "Inferred from {} call graphs ({} spans) by replay::sim::infer_scenario, speed-up {}",
            rep.graphs_used, rep.spans_used, opts.speedup
        ),
        duration: SimDuration(duration),
        scrape_interval: SimDuration::from_secs(1),
        telemetry: TelemetrySpec {
            trace_sample_rate: opts.trace_sample_rate.clamp(0.0, 1.0),
            retain_scrapes: opts.retain_scrapes,
            ..TelemetrySpec::default()
        },
        cluster: ClusterSpec::default(),
        nodes,
        services,
        edges: edge_specs,
        workload,
        slos,
    };
    scenario.validate()?;
    Ok((scenario, rep))
}

/// The scenario with every workload's arrivals switched off (open-loop rates 0, closed
/// loops with no users), for a replay that brings its own requests.
pub fn replay_scenario(scenario: &Scenario) -> Scenario {
    let mut s = scenario.clone();
    for w in &mut s.workload {
        w.arrivals = match &w.arrivals {
            ArrivalSpec::Open { .. } => ArrivalSpec::Open {
                rate: RateSpec::Constant { rps: 0.0 },
            },
            ArrivalSpec::Closed { think_time, .. } => ArrivalSpec::Closed {
                users: 0,
                think_time: think_time.clone(),
            },
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empirical_quantiles() {
        let v: Vec<u64> = (0..1000).collect();
        let d = cpu_dist(&v, CpuModel::Empirical { max_values: 5 });
        let DurationDist::Empirical { values } = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            values.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![0, 249, 499, 749, 999]
        );
        assert_eq!(
            cpu_dist(&[7, 7, 7], CpuModel::Empirical { max_values: 5 }),
            DurationDist::constant(SimDuration(7))
        );
        let DurationDist::Lognormal { median, sigma } =
            cpu_dist(&[1_000_000, 1_000_000], CpuModel::Lognormal)
        else {
            panic!()
        };
        assert!(median.0.abs_diff(1_000_000) <= 1, "{median:?}");
        assert_eq!(sigma, 0.0);
    }

    #[test]
    fn rate_bins_are_limited() {
        let csv = "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n\
                   0,T_1,S_1,0,http,USER,USER,home,front,front_0,5.0\n\
                   900,T_2,S_1,0,http,USER,USER,home,front,front_0,4.0\n";
        let (set, _) = crate::read_bytes(
            "t.csv",
            csv.as_bytes(),
            crate::Format::AlibabaV2022,
            Default::default(),
        )
        .unwrap();
        for bins in [MAX_RATE_BINS + 1, u32::MAX] {
            let o = InferOptions {
                rate_bins: bins,
                ..InferOptions::default()
            };
            match infer_scenario(&set, &o) {
                Err(ReplayError::Invalid(m)) => assert!(m.contains("rate_bins"), "{m}"),
                other => panic!("{bins}: {other:?}"),
            }
        }
        let o = InferOptions {
            rate_bins: MAX_RATE_BINS,
            ..InferOptions::default()
        };
        let sc = infer_scenario(&set, &o).unwrap();
        let ArrivalSpec::Open {
            rate: RateSpec::Piecewise { points },
        } = &sc.workload[0].arrivals
        else {
            panic!("{:?}", sc.workload[0].arrivals)
        };
        assert_eq!(points.len(), MAX_RATE_BINS as usize);
    }

    #[test]
    fn peak() {
        let mut v = vec![(0, 10), (5, 15), (10, 20), (30, 31)];
        assert_eq!(peak_concurrency(&mut v), 2);
    }
}
