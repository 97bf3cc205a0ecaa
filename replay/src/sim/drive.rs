//! Driving call graphs through a simulation as scripted requests.
//!
//! # Rules
//!
//! - **Arrival**: a graph arrives at `now0 + (root start - origin) / speedup`, where
//!   `now0` is the simulation's time when the replay starts and `origin` is
//!   [`ReplayOptions::origin_ns`], else the earliest root start of the replayable graphs
//!   (in memory) or the first graph's root start (streaming from a store). In memory the
//!   graphs are injected in (root start, input order) order, the simulation following
//!   1 ms behind the arrivals. Streaming, the simulation is
//!   advanced to [`ReplayOptions::reorder_window_ns`] before each arrival, so graphs up to
//!   that much out of order still arrive at their exact time; later ones (and graphs before
//!   the origin) arrive "now" and are counted in [`ReplayStats::late_arrivals`]. A graph
//!   arriving more than [`crate::sim::infer::MAX_REPLAY_SPAN_NS`] after the origin is an
//!   error.
//! - **Call tree**: span `i` becomes one script node (the root is node 0, the entry call
//!   of the workload whose entry is the root's service; a graph whose entry service has no
//!   workload is skipped). Its operation is (service = callee `dm`, operation = interface)
//!   in the simulation's topology, else the service's first operation
//!   ([`ReplayStats::ops_defaulted`]); a callee that is unknown (`UNKNOWN`, `USER`; see
//!   [`crate::sim::UnknownPolicy`]) or not a service of the topology is dropped with its
//!   subtree ([`ReplayStats::spans_dropped_unknown`], [`ReplayStats::spans_unmapped`]).
//!   The caller of a call is the parent span's service.
//! - **Demand**: `cpu_ns` is the span's self time: its response time minus the time
//!   covered by its synchronous children (clipped to the span), clamped at 0. Negative
//!   response times (Alibaba v2021 callee rows) were already made absolute by the reader;
//!   children that were never logged cannot be replayed, their time stays in the parent's
//!   self time; children of dropped callees are not simulated but their time is still
//!   subtracted (the demand stays the parent's own work).
//! - **Sync / async**: `mq` calls are asynchronous, all other call types synchronous.
//! - **Stages**: children overlapping in time run in parallel in one stage; a child
//!   starting after the stage's synchronous calls ended opens the next stage.
//! - **End**: with [`ReplayOptions::run_to_end`], the simulation then runs to the later of
//!   its end and the last arrival, and on (1 s at a time, at most
//!   [`ReplayOptions::max_drain_ns`], and only as far as the target advances: a fault
//!   episode stops at its end) until every request in flight has finished.

use std::io::Read;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sim_core::time::SECONDS;
use sim_core::{ScriptNode, ScriptedRequest, Simulation};

use super::ReplayError;
use super::analysis::{Analysis, is_async};
use super::infer::{MAX_REPLAY_SPAN_NS, UnknownPolicy, is_unknown_name, service_name};
use crate::model::{CallGraph, Sym, SymbolTable, TraceSet};
use crate::store::StoreReader;

/// What a replay drives: a [`Simulation`], or anything that owns one and must advance
/// it its own way (a fault episode switching faults on and off as time passes).
pub trait ReplayTarget {
    /// The simulation.
    fn sim(&self) -> &Simulation;
    /// The simulation, mutably (requests are injected through it).
    fn sim_mut(&mut self) -> &mut Simulation;
    /// Advances the clock to `t` (ns).
    fn advance_to(&mut self, t: u64);
}

impl ReplayTarget for Simulation {
    fn sim(&self) -> &Simulation {
        self
    }
    fn sim_mut(&mut self) -> &mut Simulation {
        self
    }
    fn advance_to(&mut self, t: u64) {
        self.run_until(t);
    }
}

/// Options of a replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayOptions {
    /// Start times are divided by this (2 = twice as fast). Default 1.
    pub speedup: f64,
    /// Trace time (ns) mapped to the simulation's time at the start of the replay.
    /// Default: the earliest root start (in memory) or the first graph's (streaming).
    pub origin_ns: Option<u64>,
    /// Streaming: how far (simulated ns) the simulation lags behind the latest arrival,
    /// so that graphs out of order by up to this much still arrive on time (in memory, the
    /// graphs are sorted and the lag is at most 1 ms). `u64::MAX`: the simulation is not
    /// advanced while injecting. Default 10 s.
    pub reorder_window_ns: u64,
    /// Run to the end and drain the requests in flight. Default true.
    pub run_to_end: bool,
    /// Longest drain after the end. Default 1 h.
    pub max_drain_ns: u64,
    /// Unknown callees (must match the policy the scenario was inferred with). Default
    /// [`UnknownPolicy::Drop`].
    pub unknown: UnknownPolicy,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speedup: 1.0,
            origin_ns: None,
            reorder_window_ns: 10 * SECONDS,
            run_to_end: true,
            max_drain_ns: 3600 * SECONDS,
            unknown: UnknownPolicy::Drop,
        }
    }
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayStats {
    /// Graphs read.
    pub graphs_read: u64,
    /// Graphs injected as scripted requests.
    pub graphs_replayed: u64,
    /// Graphs skipped: empty, root callee unknown or unmapped, or no workload for the entry.
    pub graphs_skipped: u64,
    /// Spans read.
    pub spans_read: u64,
    /// Spans injected (script nodes).
    pub spans_replayed: u64,
    /// Spans dropped because their callee (or an ancestor's) is unknown.
    pub spans_dropped_unknown: u64,
    /// Spans dropped because their callee (or an ancestor's) is not in the topology.
    pub spans_unmapped: u64,
    /// Spans whose interface is not an operation of their service (its first one was used).
    pub ops_defaulted: u64,
    /// Scripted calls the engine skipped for want of an edge (during this replay).
    pub calls_without_edge: u64,
    /// Graphs that arrived later than their time (out of order beyond the window, or
    /// before the origin).
    pub late_arrivals: u64,
    /// First arrival (simulated ns).
    pub first_arrival_ns: u64,
    /// Last arrival (simulated ns).
    pub last_arrival_ns: u64,
    /// Simulated time when the replay returned (ns).
    pub sim_end_ns: u64,
    /// Engine events processed during the replay.
    pub events: u64,
    /// Requests still in flight when the replay returned (0 after a full drain).
    pub in_flight_at_end: u64,
    /// Wall-clock seconds of the replay (injection and simulation).
    pub wall_s: f64,
    /// `spans_replayed / wall_s`.
    pub spans_per_s: f64,
}

/// In memory the graphs are injected in time order, so the simulation lags the latest
/// arrival by at most this (1 ms of simulated time).
const IN_MEMORY_LAG_NS: u64 = 1_000_000;

const UNSET: u32 = u32::MAX;
const DROP_UNKNOWN: u32 = u32::MAX - 1;
const DROP_UNMAPPED: u32 = u32::MAX - 2;

struct Driver {
    opts: ReplayOptions,
    svc: Vec<u32>,
    /// per interface symbol: (service, op, defaulted) seen with it (usually one or two)
    ops: Vec<Vec<(u32, u32, bool)>>,
    workload_of: Vec<u32>,
    an: Analysis,
    span_svc: Vec<u32>,
    node_of: Vec<u32>,
    stats: ReplayStats,
    origin: Option<u64>,
    base: u64,
    no_edge0: u64,
    events0: u64,
    started: Instant,
    any: bool,
    /// how far the simulation may lag behind the latest arrival
    lag: u64,
}

impl Driver {
    fn new(sim: &Simulation, opts: &ReplayOptions) -> Result<Driver, ReplayError> {
        if !(opts.speedup.is_finite() && opts.speedup > 0.0) {
            return Err(ReplayError::Invalid(format!(
                "ReplayOptions.speedup must be finite and positive, got {}",
                opts.speedup
            )));
        }
        let topo = sim.topology();
        let mut workload_of = vec![UNSET; topo.num_services()];
        for (w, spec) in topo.scenario.workload.iter().enumerate() {
            if let Some(s) = topo.service_id(&spec.entry)
                && workload_of[s as usize] == UNSET
            {
                workload_of[s as usize] = w as u32;
            }
        }
        Ok(Driver {
            opts: opts.clone(),
            svc: Vec::new(),
            ops: Vec::new(),
            workload_of,
            an: Analysis::default(),
            span_svc: Vec::new(),
            node_of: Vec::new(),
            stats: ReplayStats::default(),
            origin: opts.origin_ns,
            base: sim.now(),
            no_edge0: sim.script_calls_without_edge(),
            events0: sim.counters().events,
            started: Instant::now(),
            any: false,
            lag: opts.reorder_window_ns,
        })
    }

    /// Service id of a callee symbol, or a DROP_* code.
    fn service(&mut self, sim: &Simulation, symbols: &SymbolTable, s: Sym) -> u32 {
        let i = s.0 as usize;
        if i >= self.svc.len() {
            self.svc.resize(i + 1, UNSET);
        }
        if self.svc[i] == UNSET {
            let name = symbols.resolve(s);
            self.svc[i] = match service_name(name, self.opts.unknown) {
                None => DROP_UNKNOWN,
                Some(n) => match sim.topology().service_id(n) {
                    Some(id) => id,
                    None if is_unknown_name(name) => DROP_UNKNOWN,
                    None => DROP_UNMAPPED,
                },
            };
        }
        self.svc[i]
    }

    fn op(&mut self, sim: &Simulation, symbols: &SymbolTable, svc: u32, iface: Sym) -> u32 {
        let k = iface.0 as usize;
        if k >= self.ops.len() {
            self.ops.resize_with(k + 1, Vec::new);
        }
        let (op, defaulted) = match self.ops[k].iter().find(|e| e.0 == svc) {
            Some(&(_, op, d)) => (op, d),
            None => {
                let topo = sim.topology();
                let (op, d) = match topo.op_id(svc, symbols.resolve(iface)) {
                    Some(o) => (o, false),
                    None => (topo.service_first_op[svc as usize], true),
                };
                self.ops[k].push((svc, op, d));
                (op, d)
            }
        };
        if defaulted {
            self.stats.ops_defaulted += 1;
        }
        op
    }

    fn root_service<T: ReplayTarget + ?Sized>(
        &mut self,
        target: &T,
        symbols: &SymbolTable,
        g: &CallGraph,
    ) -> Option<u32> {
        let r = g.spans.first()?;
        let s = self.service(target.sim(), symbols, r.dm);
        (s < DROP_UNMAPPED && self.workload_of[s as usize] != UNSET).then_some(s)
    }

    fn push<T: ReplayTarget + ?Sized>(
        &mut self,
        target: &mut T,
        g: &CallGraph,
        symbols: &SymbolTable,
    ) -> Result<(), ReplayError> {
        let n = g.spans.len();
        self.stats.graphs_read += 1;
        self.stats.spans_read += n as u64;
        if n == 0 {
            self.stats.graphs_skipped += 1;
            return Ok(());
        }
        if n == 1 {
            return self.push_single(target, g, symbols);
        }
        self.span_svc.clear();
        for i in 0..n {
            let s = self.service(target.sim(), symbols, g.spans[i].dm);
            self.span_svc.push(s);
        }
        let span_svc = &self.span_svc;
        self.an.run(g, |i| span_svc[i] < DROP_UNMAPPED);
        // count drops by the reason of the topmost dropped ancestor-or-self (the span
        // whose own callee made the subtree go)
        let mut kept = 0usize;
        for i in 0..n {
            if self.an.keep[i] {
                kept += 1;
                continue;
            }
            let mut k = i;
            while let Some(p) = g.spans[k].parent {
                let p = p as usize;
                if p >= k || self.an.keep[p] {
                    break;
                }
                k = p;
            }
            if self.span_svc[k] == DROP_UNKNOWN {
                self.stats.spans_dropped_unknown += 1;
            } else {
                self.stats.spans_unmapped += 1;
            }
        }
        let root_svc = self.span_svc[0];
        if !self.an.keep[0] || self.workload_of[root_svc as usize] == UNSET {
            self.stats.graphs_skipped += 1;
            return Ok(());
        }
        let workload = self.workload_of[root_svc as usize];
        self.node_of.clear();
        self.node_of.resize(n, UNSET);
        let mut nodes: Vec<ScriptNode> = Vec::with_capacity(kept);
        for i in 0..n {
            if !self.an.keep[i] {
                continue;
            }
            self.node_of[i] = nodes.len() as u32;
            let s = &g.spans[i];
            let op = self.op(target.sim(), symbols, self.span_svc[i], s.interface);
            nodes.push(ScriptNode {
                op,
                cpu_ns: self.an.self_ns[i],
                sync: !is_async(s.call_type),
                stages: Vec::new(),
            });
        }
        for i in 0..n {
            if !self.an.keep[i] || self.an.num_stages[i] == 0 {
                continue;
            }
            let mut stages = vec![Vec::new(); self.an.num_stages[i] as usize];
            for c in self.an.kept_children(i) {
                stages[self.an.stage[c as usize] as usize].push(self.node_of[c as usize]);
            }
            nodes[self.node_of[i] as usize].stages = stages;
        }
        self.inject(target, g, workload, nodes)
    }

    /// The fast path of a single-span graph (no analysis needed).
    fn push_single<T: ReplayTarget + ?Sized>(
        &mut self,
        target: &mut T,
        g: &CallGraph,
        symbols: &SymbolTable,
    ) -> Result<(), ReplayError> {
        let s = &g.spans[0];
        let svc = self.service(target.sim(), symbols, s.dm);
        if svc >= DROP_UNMAPPED || self.workload_of[svc as usize] == UNSET {
            if svc == DROP_UNKNOWN {
                self.stats.spans_dropped_unknown += 1;
            } else if svc == DROP_UNMAPPED {
                self.stats.spans_unmapped += 1;
            }
            self.stats.graphs_skipped += 1;
            return Ok(());
        }
        let op = self.op(target.sim(), symbols, svc, s.interface);
        let nodes = vec![ScriptNode {
            op,
            cpu_ns: s.duration_ns,
            sync: !is_async(s.call_type),
            stages: Vec::new(),
        }];
        self.inject(target, g, self.workload_of[svc as usize], nodes)
    }

    fn inject<T: ReplayTarget + ?Sized>(
        &mut self,
        target: &mut T,
        g: &CallGraph,
        workload: u32,
        nodes: Vec<ScriptNode>,
    ) -> Result<(), ReplayError> {
        let start = g.spans[0].start_ns;
        let origin = *self.origin.get_or_insert(start);
        let rel = if start < origin {
            0
        } else {
            ((start - origin) as f64 / self.opts.speedup) as u64
        };
        if rel > MAX_REPLAY_SPAN_NS {
            return Err(ReplayError::Invalid(format!(
                "graph {}: arrives {:.0} s after the origin (at most {} s): raise the \
                 speed-up, or drop outliers",
                g.trace_id,
                rel as f64 / 1e9,
                MAX_REPLAY_SPAN_NS / SECONDS
            )));
        }
        let at = self.base.saturating_add(rel);
        let now = target.sim().now();
        if start < origin || at < now {
            self.stats.late_arrivals += 1;
        }
        let at = at.max(now);
        let kept = nodes.len() as u64;
        target
            .sim_mut()
            .inject_request(
                at,
                ScriptedRequest {
                    workload,
                    nodes,
                    source_trace: Some(g.trace_id.clone()),
                },
            )
            .map_err(|source| ReplayError::Inject {
                trace_id: g.trace_id.clone(),
                source,
            })?;
        if !self.any {
            self.stats.first_arrival_ns = at;
            self.any = true;
        }
        self.stats.last_arrival_ns = self.stats.last_arrival_ns.max(at);
        self.stats.graphs_replayed += 1;
        self.stats.spans_replayed += kept;
        if at > now.saturating_add(self.lag) {
            target.advance_to(at - self.lag);
        }
        Ok(())
    }

    fn finish<T: ReplayTarget + ?Sized>(mut self, target: &mut T) -> ReplayStats {
        if self.opts.run_to_end {
            let t = target
                .sim()
                .end()
                .max(self.stats.last_arrival_ns.saturating_add(1));
            target.advance_to(t);
            let deadline = t.saturating_add(self.opts.max_drain_ns);
            while target.sim().arena_usage()[2].0 > 0 && target.sim().now() < deadline {
                let before = target.sim().now();
                let next = before.saturating_add(SECONDS).min(deadline);
                target.advance_to(next);
                if target.sim().now() <= before {
                    // the target does not run past its end (a fault episode)
                    break;
                }
            }
        }
        let sim = target.sim();
        self.stats.sim_end_ns = sim.now();
        self.stats.in_flight_at_end = sim.arena_usage()[2].0 as u64;
        self.stats.calls_without_edge = sim.script_calls_without_edge() - self.no_edge0;
        self.stats.events = sim.counters().events - self.events0;
        self.stats.wall_s = self.started.elapsed().as_secs_f64();
        self.stats.spans_per_s = if self.stats.wall_s > 0.0 {
            self.stats.spans_replayed as f64 / self.stats.wall_s
        } else {
            0.0
        };
        self.stats
    }
}

/// A hint that `p` will be read soon (no effect on other architectures).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, even on an invalid address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Replays every graph of `set` into `target` (see the module docs for the rules) and,
/// with [`ReplayOptions::run_to_end`], runs it to the end.
pub fn replay_into<T: ReplayTarget + ?Sized>(
    target: &mut T,
    set: &TraceSet,
    opts: &ReplayOptions,
) -> Result<ReplayStats, ReplayError> {
    let mut d = Driver::new(target.sim(), opts)?;
    // order by (root start, input order); the origin is the earliest replayable root
    let mut order: Vec<(u64, usize)> = Vec::with_capacity(set.graphs.len());
    let mut origin = u64::MAX;
    for (k, g) in set.graphs.iter().enumerate() {
        let start = g.spans.first().map_or(0, |s| s.start_ns);
        if d.root_service(target, &set.symbols, g).is_some() {
            origin = origin.min(start);
        }
        order.push((start, k));
    }
    order.sort_unstable();
    // sorted: the simulation can follow the arrivals closely (fewer pending injections);
    // a window of u64::MAX still means "never advance while injecting"
    if d.lag != u64::MAX {
        d.lag = d.lag.min(IN_MEMORY_LAG_NS);
    }
    if d.origin.is_none() && origin != u64::MAX {
        d.origin = Some(origin);
    }
    for (i, &(_, k)) in order.iter().enumerate() {
        // the graphs are visited in time order, not memory order: fetch ahead
        if let Some(&(_, ahead)) = order.get(i + 8) {
            prefetch(set.graphs[ahead].spans.as_ptr());
        }
        if let Some(&(_, ahead)) = order.get(i + 16) {
            prefetch(&set.graphs[ahead]);
        }
        d.push(target, &set.graphs[k], &set.symbols)?;
    }
    Ok(d.finish(target))
}

/// Replays the graphs of a store as they are read (memory stays bounded by the
/// simulation's requests in flight), then runs to the end as [`replay_into`] does.
pub fn replay_store_into<T: ReplayTarget + ?Sized, R: Read>(
    target: &mut T,
    reader: &mut StoreReader<R>,
    opts: &ReplayOptions,
) -> Result<ReplayStats, ReplayError> {
    let mut d = Driver::new(target.sim(), opts)?;
    while let Some(g) = reader.next_graph()? {
        d.push(target, &g, reader.symbols())?;
    }
    Ok(d.finish(target))
}
