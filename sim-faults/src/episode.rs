//! [`Episode`]: one seeded run of a [`FaultScenario`], switching its faults on and off at their
//! times through `sim-core`'s control and fault surfaces, and recording what was injected where.
//!
//! Target services are resolved when the episode is built (drawn from the seed when the
//! scenario leaves a choice); pods, nodes and zones when each fault starts. All draws come
//! from `sim_core::rng::stream(seed, StreamKind::External, ..)` streams of their own, never from
//! the engine's, so an episode and its counterfactual ([`Episode::without_faults`]) see the same
//! arrivals and service times (common random numbers).

use crate::error::FaultError;
use crate::fault::{
    ConfigAction, Direction, FaultKind, FaultSpec, IoAction, Mode, NetAction, PodAction,
};
use crate::scenario::{FaultScenario, downstream_of};
use serde::{Deserialize, Serialize};
use sim_core::rng::{StreamKind, below, mix64, stream, unit};
use sim_core::scenario::{ArrivalSpec, ConfigVersion, RateSpec, Scenario};
use sim_core::telemetry::Phase;
use sim_core::time::SimDuration;
use sim_core::{IoFault, NetFault, Partition, Simulation};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A realised fault: what was injected, where and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InjectedFault {
    /// The fault's id in the scenario.
    pub id: String,
    /// Kind (`StressChaos`, `NetworkChaos`, ...).
    pub kind: String,
    /// Fault type label (`cpu-stress`, `network-delay`, ...).
    pub fault_type: String,
    /// The full specification (parameters).
    pub spec: FaultSpec,
    /// Target service, if any.
    pub service: Option<String>,
    /// Target pods (names) at injection.
    pub pods: Vec<String>,
    /// Target nodes (names): the nodes of the pods, or the failed nodes.
    pub nodes: Vec<String>,
    /// Target zone, for zone failures.
    pub zone: Option<String>,
    /// Injection time (ns).
    pub start: u64,
    /// When the fault ended (ns): its scheduled end, a rollback, or the loss of all its target
    /// pods. None while it is active.
    pub end: Option<u64>,
    /// How the fault was applied (the surfaces used), and approximations made.
    pub note: String,
}

/// One effect of a fault: the surface it set (a pod by id and name, an edge, a node, a
/// partition, a config version) and the value it brought. Faults that overlap on a surface
/// combine: CPU stress, memory pressure and leak rates add up, network faults add their delays
/// and jitters and compound their losses, load-balancing weights multiply (a black-holed pod
/// stays out), the tightest pool wins, a node stays down while any fault holds it, and the
/// latest disk fault wins. Undoing one fault sets each of its surfaces back to what the faults
/// still active there add up to (the default when none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Undo {
    PodCpu(u32, String, u32),
    PodMem(u32, String, u64),
    PodLeak(u32, String, f64),
    PodIo(u32, String, IoFault),
    PodNet(u32, String, NetFault),
    PodWeight(u32, String, u32),
    EdgeNet(u32, NetFault),
    EdgePool(u32, u32),
    Partition(u32),
    Node(u32),
    Rollback(u32, u32),
}

impl Undo {
    /// The pod (id and name) a pod effect acts on; None for edge, node, partition and config
    /// effects.
    fn pod(&self) -> Option<(u32, &str)> {
        match self {
            Undo::PodCpu(p, n, _)
            | Undo::PodMem(p, n, _)
            | Undo::PodLeak(p, n, _)
            | Undo::PodIo(p, n, _)
            | Undo::PodNet(p, n, _)
            | Undo::PodWeight(p, n, _) => Some((*p, n.as_str())),
            _ => None,
        }
    }

    /// The surface an effect sets, as its kind and its pod (id and name), edge or node:
    /// effects on the same surface combine. None for partitions and config rollouts, which
    /// are undone one by one.
    fn surface(&self) -> Option<(std::mem::Discriminant<Undo>, u32, &str)> {
        let kind = std::mem::discriminant(self);
        match self {
            Undo::EdgeNet(e, _) | Undo::EdgePool(e, _) | Undo::Node(e) => Some((kind, *e, "")),
            Undo::Partition(_) | Undo::Rollback(..) => None,
            _ => self.pod().map(|(p, n)| (kind, p, n)),
        }
    }
}

/// Network faults on one message path combined: delays and jitters add, losses compound.
fn combine_net(a: NetFault, b: NetFault) -> NetFault {
    NetFault {
        delay: a.delay.saturating_add(b.delay),
        jitter: a.jitter.saturating_add(b.jitter),
        loss: 1.0 - (1.0 - a.loss) * (1.0 - b.loss),
    }
}

/// The effects of the active faults, oldest injection first.
fn active_effects(rt: &[FaultRt]) -> Vec<&Undo> {
    let mut active: Vec<(usize, &FaultRt)> = rt
        .iter()
        .filter(|r| r.state == State::Active)
        .map(|r| (r.injected.unwrap_or(usize::MAX), r))
        .collect();
    active.sort_by_key(|x| x.0);
    active
        .into_iter()
        .flat_map(|(_, r)| r.undo.iter())
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    Pending,
    Active,
    Done,
}

/// Per-fault runtime state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FaultRt {
    service: Option<String>,
    config_version: u32,
    state: State,
    undo: Vec<Undo>,
    detect_at: Option<u64>,
    injected: Option<usize>,
    /// For a zombie node: (node, its restart count when the fault began). A restart since then
    /// ends the fault.
    #[serde(default)]
    node_restarts: Option<(u32, u32)>,
}

/// One seeded run of a fault scenario.
pub struct Episode {
    scenario: Arc<FaultScenario>,
    seed: u64,
    with_faults: bool,
    sim: Simulation,
    rt: Vec<FaultRt>,
    injected: Vec<InjectedFault>,
    /// `sim_mut` was called since the last `run_until`: an agent may have repaired a fault's
    /// target, so the next `run_until` checks for ended faults before the clock moves.
    touched: bool,
}

const ENTITY_BASE: u64 = 0x5F17_0000_0000;

fn fault_stream(seed: u64, fault: usize, purpose: u64) -> rand_chacha::ChaCha8Rng {
    stream(
        seed,
        StreamKind::External,
        ENTITY_BASE ^ mix64(((fault as u64) << 8) | purpose),
    )
}

/// Services that receive traffic: reachable from the workload entries through the call plans,
/// in scenario order.
pub fn reachable_services(base: &Scenario) -> Vec<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = base.workload.iter().map(|w| w.entry.clone()).collect();
    while let Some(s) = stack.pop() {
        if seen.insert(s.clone()) {
            stack.extend(downstream_of(base, &s));
        }
    }
    base.services
        .iter()
        .filter(|s| seen.contains(&s.name))
        .map(|s| s.name.clone())
        .collect()
}

/// The services where a fault of this kind is meaningful (the candidates a target is drawn
/// from when the scenario names none): services that receive traffic; for IO faults, those of
/// them with a volume (preferring ones with disk operations; with no volume anywhere, services
/// with disk operations, else databases and caches); for a wrong-address config error,
/// those that call another service; for a connection-pool fault, the callers of its `to`.
pub fn meaningful_services(base: &Scenario, kind: &FaultKind) -> Vec<String> {
    let reach = reachable_services(base);
    let spec = |n: &str| base.services.iter().find(|s| s.name == n);
    match kind {
        FaultKind::IoChaos { .. } => {
            let vol: Vec<String> = reach
                .iter()
                .filter(|n| spec(n).is_some_and(|s| s.has_volume()))
                .cloned()
                .collect();
            let with_io: Vec<String> = vol
                .iter()
                .filter(|n| spec(n).is_some_and(|s| s.operations.iter().any(|o| o.io.0 > 0)))
                .cloned()
                .collect();
            if !with_io.is_empty() {
                return with_io;
            }
            if !vol.is_empty() {
                return vol;
            }
            // no volume in the topology: services with disk operations, else the data stores
            let io_ops: Vec<String> = reach
                .iter()
                .filter(|n| spec(n).is_some_and(|s| s.operations.iter().any(|o| o.io.0 > 0)))
                .cloned()
                .collect();
            if !io_ops.is_empty() {
                return io_ops;
            }
            reach
                .iter()
                .filter(|n| {
                    spec(n).is_some_and(|s| {
                        matches!(
                            s.kind,
                            sim_core::scenario::ServiceKind::Database
                                | sim_core::scenario::ServiceKind::Cache
                        )
                    })
                })
                .cloned()
                .collect()
        }
        FaultKind::ConfigError {
            action: ConfigAction::WrongAddress,
            dependency,
            ..
        } => reach
            .iter()
            .filter(|n| {
                let d = downstream_of(base, n);
                match dependency {
                    Some(x) => d.contains(x),
                    None => !d.is_empty(),
                }
            })
            .cloned()
            .collect(),
        FaultKind::ConnectionPool { to, .. } => reach
            .iter()
            .filter(|n| downstream_of(base, n).contains(to))
            .cloned()
            .collect(),
        _ => reach,
    }
}

/// Multiplies an open workload's rate by `m` on `[start, end)`, ramping over `ramp` at both ends.
fn surge_rate(rate: &RateSpec, duration: u64, start: u64, end: u64, ramp: u64, m: f64) -> RateSpec {
    let factor = |t: u64| -> f64 {
        if t < start || t >= end.saturating_add(ramp) {
            1.0
        } else if ramp > 0 && t < start.saturating_add(ramp) {
            1.0 + (m - 1.0) * (t - start) as f64 / ramp as f64
        } else if t < end {
            m
        } else if ramp > 0 {
            m + (1.0 - m) * (t - end) as f64 / ramp as f64
        } else {
            1.0
        }
    };
    let mut times: BTreeSet<u64> = BTreeSet::new();
    let step = 1_000_000_000u64;
    let mut t = 0;
    while t <= duration {
        times.insert(t);
        t += step;
    }
    for x in [
        start,
        start.saturating_add(ramp),
        end,
        end.saturating_add(ramp),
    ] {
        if x <= duration {
            times.insert(x);
        }
    }
    let mut points: Vec<(SimDuration, f64)> = Vec::new();
    for &t in &times {
        if ramp == 0 && (t == start || t == end) {
            // a step: the value just before, then the value at t
            let before = t.saturating_sub(1);
            points.push((SimDuration(t), rate.rate_at(before) * factor(before)));
        }
        points.push((SimDuration(t), rate.rate_at(t) * factor(t)));
    }
    RateSpec::Piecewise { points }
}

impl Episode {
    /// Builds the episode (the simulation and the resolved fault plan) for a seed. Faults that
    /// start at 0 are already on.
    pub fn new(sc: &FaultScenario, seed: u64) -> Result<Episode, FaultError> {
        Self::build(sc, seed, true)
    }

    /// The counterfactual episode: the same scenario and seed with no fault injected (the same
    /// pod template versions exist, so the model and random streams are identical).
    pub fn without_faults(sc: &FaultScenario, seed: u64) -> Result<Episode, FaultError> {
        Self::build(sc, seed, false)
    }

    fn build(sc: &FaultScenario, seed: u64, with_faults: bool) -> Result<Episode, FaultError> {
        let origin = format!("scenario {}", sc.name);
        sc.validate(&origin)?;
        let mut base = sc.base.clone();
        let mut rt = Vec::new();
        for (i, f) in sc.faults.iter().enumerate() {
            let service = if !f.chaos.needs_service() {
                None
            } else if let Some(s) = &f.selector.service {
                Some(s.clone())
            } else if f.selector.node.is_some() || f.selector.zone.is_some() {
                None
            } else {
                let cands = if f.selector.services.is_empty() {
                    meaningful_services(&base, &f.chaos)
                } else {
                    f.selector.services.clone()
                };
                if cands.is_empty() {
                    return Err(FaultError::invalid(
                        &origin,
                        format!("faults[{i}].selector"),
                        format!(
                            "no service where a {} fault is meaningful",
                            f.chaos.fault_type()
                        ),
                    ));
                }
                let mut r = fault_stream(seed, i, 1);
                Some(cands[below(&mut r, cands.len() as u32) as usize].clone())
            };
            let mut config_version = 0;
            if let (
                FaultKind::ConfigError {
                    action,
                    resources,
                    dependency,
                },
                Some(s),
            ) = (&f.chaos, &service)
            {
                let dep = match (action, dependency) {
                    (ConfigAction::WrongAddress, Some(d)) => vec![d.clone()],
                    (ConfigAction::WrongAddress, None) => {
                        let d = downstream_of(&base, s);
                        if d.is_empty() {
                            return Err(FaultError::invalid(
                                &origin,
                                format!("faults[{i}].chaos.dependency"),
                                format!("service {s:?} calls no other service"),
                            ));
                        }
                        vec![d[0].clone()]
                    }
                    _ => vec![],
                };
                let v = ConfigVersion {
                    label: format!("{}-{}", f.id, format!("{action:?}").to_lowercase()),
                    resources: match action {
                        ConfigAction::BadResources => {
                            Some(resources.unwrap_or_else(crate::fault::microremed_bad_resources))
                        }
                        _ => None,
                    },
                    crash_on_start: *action == ConfigAction::CrashLoop,
                    broken_dependencies: dep,
                    cpu_factor: None,
                };
                let spec = base
                    .services
                    .iter_mut()
                    .find(|x| &x.name == s)
                    .ok_or_else(|| {
                        FaultError::invalid(
                            &origin,
                            format!("faults[{i}].selector.service"),
                            format!("unknown service {s:?}"),
                        )
                    })?;
                spec.config_versions.push(v);
                config_version = spec.config_versions.len() as u32;
            }
            if with_faults && let FaultKind::TrafficSurge { multiplier, ramp } = &f.chaos {
                let dur = base.duration.0;
                let start = f.start.0;
                let end = f
                    .duration
                    .map(|d| start.saturating_add(d.0))
                    .unwrap_or(u64::MAX / 4);
                for w in &mut base.workload {
                    if let ArrivalSpec::Open { rate } = &mut w.arrivals {
                        *rate = surge_rate(rate, dur, start, end.min(dur + 1), ramp.0, *multiplier);
                    }
                }
            }
            rt.push(FaultRt {
                service,
                config_version,
                state: State::Pending,
                undo: vec![],
                detect_at: None,
                injected: None,
                node_restarts: None,
            });
        }
        let sim = Simulation::new(&base, seed)
            .map_err(|source| FaultError::Scenario { origin, source })?;
        let mut ep = Episode {
            scenario: Arc::new(sc.clone()),
            seed,
            with_faults,
            sim,
            rt,
            injected: vec![],
            touched: false,
        };
        if !with_faults {
            for r in &mut ep.rt {
                r.state = State::Done;
            }
        }
        ep.process_due();
        Ok(ep)
    }

    /// The simulation.
    pub fn sim(&self) -> &Simulation {
        &self.sim
    }

    /// The simulation, for agents to act on. A repair made through it (a rollback, deleted
    /// target pods, a restarted node) ends the faults it fixes at the next `run_until`, at the
    /// time of the call.
    pub fn sim_mut(&mut self) -> &mut Simulation {
        self.touched = true;
        &mut self.sim
    }

    /// The episode seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether this episode injects faults (false for the counterfactual).
    pub fn with_faults(&self) -> bool {
        self.with_faults
    }

    /// Current simulated time (ns).
    pub fn now(&self) -> u64 {
        self.sim.now()
    }

    /// True once the clock has reached the end of the episode.
    pub fn is_done(&self) -> bool {
        self.sim.is_done()
    }

    /// The scenario.
    pub fn scenario(&self) -> &FaultScenario {
        &self.scenario
    }

    /// The faults injected so far, in injection order.
    pub fn injected(&self) -> &[InjectedFault] {
        &self.injected
    }

    /// The target service each fault of the scenario resolved to (None for faults without one),
    /// in scenario order. Known from the start, before the faults are injected.
    pub fn planned_services(&self) -> Vec<Option<String>> {
        self.rt.iter().map(|r| r.service.clone()).collect()
    }

    /// Advances the simulation to `t` (ns), switching faults on and off at their times.
    ///
    /// A fault whose target was repaired by an agent (through [`Episode::sim_mut`]: a
    /// rolled-back config, deleted target pods, a restarted zombie node) ends first, at the
    /// time of the call: the action takes effect before the clock moves on. A fault whose
    /// target the simulation itself removed (pods evicted from a failed node, scaled away) is
    /// found at the next scrape tick. Either way the result does not depend on how a run is
    /// split into `run_until` calls.
    pub fn run_until(&mut self, t: u64) {
        if std::mem::take(&mut self.touched) {
            self.check_ended();
        }
        let t = t.min(self.sim.end().max(self.sim.now()));
        loop {
            let now = self.sim.now();
            // (always after now; `max` keeps the loop moving whatever a snapshot held)
            let tick = self.sim.next_scrape_at().max(now.saturating_add(1));
            let next = self.next_event().map_or(tick, |te| te.min(tick));
            let at_tick = next == tick;
            if next > t {
                break;
            }
            if next > now {
                self.sim.run_until(next);
            }
            self.process_due();
            if at_tick {
                self.check_ended();
            }
        }
        self.sim.run_until(t);
    }

    /// Advances by `dt` ns.
    pub fn run_for(&mut self, dt: u64) {
        let t = self.now().saturating_add(dt);
        self.run_until(t);
    }

    /// Runs to the end of the episode.
    pub fn run_to_end(&mut self) {
        let e = self.sim.end();
        self.run_until(e);
    }

    /// An independent copy; running both forward gives identical results.
    pub fn fork(&self) -> Episode {
        Episode {
            scenario: self.scenario.clone(),
            seed: self.seed,
            with_faults: self.with_faults,
            sim: self.sim.fork(),
            rt: self.rt.clone(),
            injected: self.injected.clone(),
            touched: self.touched,
        }
    }

    /// Serialises the episode: the scenario, the fault state and the simulation snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        let meta = Meta {
            scenario: (*self.scenario).clone(),
            seed: self.seed,
            with_faults: self.with_faults,
            rt: self.rt.clone(),
            injected: self.injected.clone(),
            touched: self.touched,
        };
        let meta = serde_json::to_vec(&meta).unwrap_or_default();
        let sim = self.sim.snapshot();
        let mut out = Vec::with_capacity(meta.len() + sim.len() + 32);
        out.extend_from_slice(SNAP_MAGIC);
        out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&sim);
        let sum = checksum(&out[8..]);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Rebuilds an episode from [`Episode::snapshot`] bytes; bad bytes are an error, never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Episode, FaultError> {
        let e = |m: &str| FaultError::Snapshot(m.to_string());
        if bytes.len() >= 8 && bytes[..7] == SNAP_MAGIC[..7] && bytes[7] != SNAP_MAGIC[7] {
            return Err(FaultError::Snapshot(format!(
                "episode snapshot format version {} (this build reads version {})",
                bytes[7], SNAP_MAGIC[7]
            )));
        }
        if bytes.len() < 24 || &bytes[..8] != SNAP_MAGIC {
            return Err(e("not a blastradius episode snapshot (bad magic)"));
        }
        let body = &bytes[8..bytes.len() - 8];
        let sum = u64::from_le_bytes(
            bytes[bytes.len() - 8..]
                .try_into()
                .map_err(|_| e("truncated"))?,
        );
        if sum != checksum(body) {
            return Err(e("checksum mismatch (truncated or altered)"));
        }
        let len = u64::from_le_bytes(body[..8].try_into().map_err(|_| e("truncated"))?) as usize;
        if len > body.len() - 8 {
            return Err(e("bad length"));
        }
        let meta: Meta = serde_json::from_slice(&body[8..8 + len])
            .map_err(|x| FaultError::Snapshot(x.to_string()))?;
        let sim = Simulation::restore(&body[8 + len..])
            .map_err(|x| FaultError::Snapshot(x.to_string()))?;
        meta.scenario.validate("snapshot")?;
        if meta.rt.len() != meta.scenario.faults.len()
            || meta
                .rt
                .iter()
                .any(|r| r.injected.is_some_and(|k| k >= meta.injected.len()))
        {
            return Err(e("fault state does not match the scenario"));
        }
        Ok(Episode {
            scenario: Arc::new(meta.scenario),
            seed: meta.seed,
            with_faults: meta.with_faults,
            sim,
            rt: meta.rt,
            injected: meta.injected,
            touched: meta.touched,
        })
    }

    /// The ground truth of this episode, measured against a counterfactual run of the same
    /// scenario and seed without faults ([`Episode::without_faults`]) run to the same time.
    pub fn ground_truth(&self, counterfactual: &Episode) -> crate::labels::GroundTruth {
        crate::labels::ground_truth(self, counterfactual)
    }

    // ------------------------------------------------------------------ fault switching

    fn fault_end(&self, i: usize) -> Option<u64> {
        let f = &self.scenario.faults[i];
        f.duration.map(|d| f.start.0.saturating_add(d.0))
    }

    fn next_event(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        let mut consider = |t: u64| best = Some(best.map_or(t, |b: u64| b.min(t)));
        for (i, r) in self.rt.iter().enumerate() {
            match r.state {
                State::Pending => consider(self.scenario.faults[i].start.0),
                State::Active => {
                    if let Some(e) = self.fault_end(i) {
                        consider(e);
                    }
                    if let Some(d) = r.detect_at {
                        consider(d);
                    }
                }
                State::Done => {}
            }
        }
        best
    }

    fn process_due(&mut self) {
        let now = self.sim.now();
        for i in 0..self.rt.len() {
            if self.rt[i].state == State::Pending && self.scenario.faults[i].start.0 <= now {
                self.start_fault(i);
            }
            if self.rt[i].state == State::Active
                && let Some(d) = self.rt[i].detect_at
                && d <= now
            {
                self.rt[i].detect_at = None;
                self.detect(i);
            }
            if self.rt[i].state == State::Active && self.fault_end(i).is_some_and(|e| e <= now) {
                self.stop_fault(i);
            }
        }
    }

    /// Marks faults whose effect is gone (a rolled-back config, all target pods deleted, a
    /// zombie node restarted) as ended, and undoes what is left of them.
    fn check_ended(&mut self) {
        let now = self.sim.now();
        for i in 0..self.rt.len() {
            if self.rt[i].state != State::Active {
                continue;
            }
            let Some(k) = self.rt[i].injected else {
                continue;
            };
            let gone = match &self.scenario.faults[i].chaos {
                FaultKind::ConfigError { .. } => {
                    let s = self.rt[i]
                        .service
                        .as_deref()
                        .and_then(|s| self.sim.service_id(s).ok());
                    // repaired: its version is no longer live, and what is live is not a
                    // later config fault's version stacked on top of it
                    s.and_then(|s| self.sim.deployment(s).ok())
                        .is_some_and(|(_, cur)| {
                            cur != self.rt[i].config_version && !self.stacked_above(i, cur)
                        })
                }
                FaultKind::StressChaos { .. }
                | FaultKind::IoChaos { .. }
                | FaultKind::MemoryLeak { .. }
                | FaultKind::LoadSkew { .. }
                | FaultKind::NetworkChaos { target: None, .. }
                | FaultKind::PodChaos {
                    action: PodAction::PodFailure,
                    ..
                } => {
                    let pods = &self.injected[k].pods;
                    !pods.is_empty() && pods.iter().all(|p| !self.sim.has_live_pod(p))
                }
                // DIME's fix: rebooting the zombie node clears whatever wedged it
                FaultKind::ZombieNode {} => self.rt[i]
                    .node_restarts
                    .is_some_and(|(n, at)| self.sim.node_restarts(n).is_ok_and(|r| r > at)),
                _ => false,
            };
            if gone {
                self.injected[k].end = Some(now);
                self.injected[k].note.push_str(
                    if matches!(self.scenario.faults[i].chaos, FaultKind::ZombieNode {}) {
                        "; ended early: its node was restarted"
                    } else {
                        "; ended early: its target was repaired or replaced"
                    },
                );
                self.rt[i].state = State::Done;
                self.rt[i].detect_at = None;
                // undo what is left (e.g. edge effects); pod effects are gone with the pods
                self.undo_all(i);
            }
        }
    }

    /// True when config version `v` is the rollout of an active config fault injected after
    /// fault `i` on the same service (a stack of bad versions: `i` is not repaired yet).
    fn stacked_above(&self, i: usize, v: u32) -> bool {
        let Some(ki) = self.rt[i].injected else {
            return false;
        };
        self.rt.iter().enumerate().any(|(j, r)| {
            j != i
                && r.state == State::Active
                && r.injected.is_some_and(|kj| kj > ki)
                && r.config_version == v
                && r.service == self.rt[i].service
                && matches!(self.scenario.faults[j].chaos, FaultKind::ConfigError { .. })
        })
    }

    /// The pods fault `i` acts on: those of `service` (of every service when None), on the
    /// selector's node or zone if it names one, that a chaos daemon could reach (scheduled on
    /// a node that is up: not pending, not lost with their node), then picked by the mode.
    fn select_pods(&mut self, i: usize, service: Option<&str>) -> Vec<(u32, String)> {
        let f = self.scenario.faults[i].clone();
        let sid = match service {
            Some(s) => match self.sim.service_id(s) {
                Ok(sid) => Some(sid),
                Err(_) => return vec![],
            },
            None => None,
        };
        let node_filter = f
            .selector
            .node
            .as_deref()
            .and_then(|n| self.sim.node_id(n).ok());
        let nodes = &self.sim.scenario().nodes;
        let in_zone = |n: Option<u32>| match (&f.selector.zone, n) {
            (None, _) => true,
            (Some(z), Some(n)) => nodes.get(n as usize).is_some_and(|x| &x.zone == z),
            (Some(_), None) => false,
        };
        let mut pods: Vec<(u32, String)> = self
            .sim
            .pods()
            .into_iter()
            .filter(|p| sid.is_none_or(|s| p.service == s))
            .filter(|p| node_filter.is_none() || p.node == node_filter)
            .filter(|p| in_zone(p.node))
            .filter(|p| {
                p.node.is_some_and(|n| self.sim.node_up(n).unwrap_or(false))
                    && !matches!(p.phase, Phase::Pending | Phase::NodeLost)
            })
            .map(|p| (p.id, p.name))
            .collect();
        if !f.selector.pods.is_empty() {
            pods.retain(|(_, n)| f.selector.pods.contains(n));
            return pods;
        }
        let n = pods.len();
        if n == 0 {
            return pods;
        }
        let mut r = fault_stream(self.seed, i, 2);
        let pct = |v: &Option<String>| {
            v.as_deref()
                .and_then(|x| x.trim().trim_end_matches('%').parse::<f64>().ok())
                .unwrap_or(100.0)
        };
        let k = match f.mode {
            Mode::One => 1,
            Mode::All => n,
            Mode::Fixed => f
                .value
                .as_deref()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(1)
                .min(n),
            Mode::FixedPercent => ((n as f64 * pct(&f.value) / 100.0).floor() as usize).clamp(1, n),
            Mode::RandomMaxPercent => {
                let p = unit(&mut r) * pct(&f.value);
                ((n as f64 * p / 100.0).floor() as usize).clamp(1, n)
            }
        };
        // partial Fisher-Yates, then back to slot order
        for j in 0..k {
            let pick = j + below(&mut r, (n - j) as u32) as usize;
            pods.swap(j, pick);
        }
        pods.truncate(k);
        pods.sort();
        pods
    }

    fn node_names(&self, pods: &[(u32, String)]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self.sim.pods();
        for (id, _) in pods {
            if let Some(p) = all.iter().find(|p| p.id == *id)
                && let Some(n) = p.node
            {
                let name = self.sim.scenario().nodes[n as usize].name.clone();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    fn target_node(&mut self, i: usize) -> Option<u32> {
        let f = &self.scenario.faults[i];
        if let Some(n) = &f.selector.node {
            return self.sim.node_id(n).ok();
        }
        let svc = self.rt[i].service.clone()?;
        let pods = self.select_pods(i, Some(&svc));
        let all = self.sim.pods();
        pods.iter()
            .find_map(|(id, _)| all.iter().find(|p| p.id == *id).and_then(|p| p.node))
    }

    fn start_fault(&mut self, i: usize) {
        self.rt[i].state = State::Active;
        let f = self.scenario.faults[i].clone();
        let now = self.sim.now();
        let service = self.rt[i].service.clone();
        let mut inj = InjectedFault {
            id: f.id.clone(),
            kind: f.chaos.kind_name().to_string(),
            fault_type: f.chaos.fault_type().to_string(),
            spec: f.clone(),
            service: service.clone(),
            pods: vec![],
            nodes: vec![],
            zone: None,
            start: now,
            end: None,
            note: String::new(),
        };
        let mut undo: Vec<Undo> = Vec::new();
        let mut note: Vec<String> = Vec::new();
        let pod_targets = |ep: &mut Episode| -> Vec<(u32, String)> {
            match &service {
                Some(s) => ep.select_pods(i, Some(s)),
                // a selector naming only a node or a zone: the pods of every service there
                None if f.selector.node.is_some() || f.selector.zone.is_some() => {
                    ep.select_pods(i, None)
                }
                None => vec![],
            }
        };
        match &f.chaos {
            FaultKind::StressChaos { stressors } => {
                let pods = pod_targets(self);
                let cpu = stressors
                    .cpu
                    .as_ref()
                    .map(|c| c.workers.saturating_mul(c.load).saturating_mul(10));
                for (p, name) in &pods {
                    if let Some(m) = cpu
                        && self.sim.set_pod_cpu_stress(*p, m).is_ok()
                    {
                        undo.push(Undo::PodCpu(*p, name.clone(), m));
                    }
                    if let Some(m) = &stressors.memory {
                        let limit = self.pod_memory_limit(*p);
                        let bytes = m.size.bytes(limit).saturating_mul(m.workers as u64);
                        if self.sim.set_pod_memory_pressure(*p, bytes).is_ok() {
                            undo.push(Undo::PodMem(*p, name.clone(), bytes));
                        }
                    }
                }
                if let Some(m) = cpu {
                    note.push(format!("set_pod_cpu_stress {m} millicores"));
                }
                if stressors.memory.is_some() {
                    note.push("set_pod_memory_pressure workers x size".into());
                }
                inj.nodes = self.node_names(&pods);
                inj.pods = pods.into_iter().map(|x| x.1).collect();
            }
            FaultKind::IoChaos {
                action,
                delay,
                percent,
                ..
            } => {
                let frac = percent.unwrap_or(50.0) / 100.0;
                let fault = match action {
                    IoAction::Latency => IoFault {
                        delay: delay.unwrap_or(SimDuration::from_secs(5)).0,
                        delay_fraction: frac,
                        error_fraction: 0.0,
                    },
                    IoAction::Fault => IoFault {
                        delay: 0,
                        delay_fraction: 0.0,
                        error_fraction: frac,
                    },
                };
                let pods = pod_targets(self);
                for (p, name) in &pods {
                    if self.sim.set_pod_io_fault(*p, fault).is_ok() {
                        undo.push(Undo::PodIo(*p, name.clone(), fault));
                    }
                }
                note.push(
                    "set_pod_io_fault on the pod's volume (operations with disk IO only)".into(),
                );
                inj.nodes = self.node_names(&pods);
                inj.pods = pods.into_iter().map(|x| x.1).collect();
            }
            FaultKind::NetworkChaos {
                action,
                delay,
                loss,
                bandwidth,
                direction,
                target,
            } => {
                let nf = match action {
                    NetAction::Delay => {
                        let d = delay.clone().unwrap_or_default();
                        NetFault {
                            delay: d.latency.0,
                            jitter: d.jitter.0,
                            loss: 0.0,
                        }
                    }
                    NetAction::Loss => NetFault {
                        delay: 0,
                        jitter: 0,
                        loss: loss.clone().unwrap_or_default().loss / 100.0,
                    },
                    NetAction::Bandwidth => NetFault {
                        delay: bandwidth
                            .as_ref()
                            .and_then(|b| b.message_delay().ok())
                            .unwrap_or(0),
                        jitter: 0,
                        loss: 0.0,
                    },
                    NetAction::Partition => NetFault::default(),
                };
                let mut pods = pod_targets(self);
                let peer_service = target.as_ref().and_then(|t| {
                    t.service.clone().or_else(|| {
                        if t.services.is_empty() {
                            None
                        } else {
                            let mut r = fault_stream(self.seed, i, 3);
                            Some(
                                t.services[below(&mut r, t.services.len() as u32) as usize].clone(),
                            )
                        }
                    })
                });
                match (action, &peer_service) {
                    (NetAction::Partition, peer) => {
                        let peers = peer.as_ref().map(|ps| {
                            self.sim
                                .service_id(ps)
                                .map(|sid| {
                                    self.sim.pods_of(sid).into_iter().map(|p| p.id).collect()
                                })
                                .unwrap_or_default()
                        });
                        let members: Vec<u32> = pods.iter().map(|x| x.0).collect();
                        if !members.is_empty()
                            && let Ok(id) = self.sim.add_partition(Partition { members, peers })
                        {
                            undo.push(Undo::Partition(id));
                        }
                        note.push(format!(
                            "add_partition between the pods and {}",
                            peer.clone().unwrap_or_else(|| "every other pod".into())
                        ));
                    }
                    (_, None) => {
                        for (p, name) in &pods {
                            if self.sim.set_pod_network(*p, nf).is_ok() {
                                undo.push(Undo::PodNet(*p, name.clone(), nf));
                            }
                        }
                        note.push(
                            "set_pod_network: affects calls the pods make and receive (direction recorded only); correlation approximated as 0 (i.i.d.)"
                                .into(),
                        );
                    }
                    (_, Some(peer)) => {
                        let (Some(me), Ok(other)) = (
                            service.as_deref().and_then(|s| self.sim.service_id(s).ok()),
                            self.sim.service_id(peer),
                        ) else {
                            return;
                        };
                        let topo = self.sim.topology().clone();
                        let mut edges = Vec::new();
                        if matches!(direction, Direction::To | Direction::Both)
                            && let Some(e) = topo.edge_id(me, other)
                        {
                            edges.push(e);
                        }
                        if matches!(direction, Direction::From | Direction::Both)
                            && let Some(e) = topo.edge_id(other, me)
                        {
                            edges.push(e);
                        }
                        for e in &edges {
                            if self.sim.set_edge_network(*e, nf).is_ok() {
                                undo.push(Undo::EdgeNet(*e, nf));
                            }
                        }
                        if edges.is_empty() {
                            note.push(format!("no call edge between the service and {peer} in that direction: no effect"));
                            pods.clear();
                        } else {
                            note.push(format!(
                                "set_edge_network on {} edge(s) with {peer}: the edge carries every pod's calls, so all pods of the service are affected (the mode does not narrow it)",
                                edges.len()
                            ));
                            // the ground truth names what is affected: every pod of the service
                            pods = self.pods_of(me);
                        }
                    }
                }
                if matches!(action, NetAction::Bandwidth) {
                    note.push(
                        "bandwidth approximated as a per-message delay message_bytes / rate".into(),
                    );
                }
                inj.nodes = self.node_names(&pods);
                inj.pods = pods.into_iter().map(|x| x.1).collect();
            }
            FaultKind::PodChaos { action, detection } => {
                let pods = pod_targets(self);
                inj.nodes = self.node_names(&pods);
                match action {
                    PodAction::PodKill => {
                        for (p, _) in &pods {
                            let _ = self.sim.kill_pod(*p);
                        }
                        inj.end = Some(now);
                        note.push("kill_pod (the deployment replaces the pods)".into());
                    }
                    PodAction::ContainerKill => {
                        for (p, _) in &pods {
                            let _ = self.sim.restart_pod(*p);
                        }
                        inj.end = Some(now);
                        note.push("restart_pod".into());
                    }
                    PodAction::PodFailure => {
                        let members: Vec<u32> = pods.iter().map(|x| x.0).collect();
                        if !members.is_empty()
                            && let Ok(id) = self.sim.add_partition(Partition {
                                members,
                                peers: None,
                            })
                        {
                            undo.push(Undo::Partition(id));
                        }
                        self.rt[i].detect_at = Some(
                            now.saturating_add(detection.unwrap_or(SimDuration::from_secs(10)).0),
                        );
                        note.push("pods black-holed (add_partition) until the readiness probe takes them out of the endpoints (set_pod_weight 0)".into());
                    }
                }
                inj.pods = pods.into_iter().map(|x| x.1).collect();
            }
            FaultKind::ConfigError { .. } => {
                if let Some(sid) = service.as_deref().and_then(|s| self.sim.service_id(s).ok()) {
                    let v = self.rt[i].config_version;
                    let ids = self.pods_of(sid);
                    inj.nodes = self.node_names(&ids);
                    inj.pods = ids.into_iter().map(|x| x.1).collect();
                    if self.sim.rollout(sid, v).is_ok() {
                        undo.push(Undo::Rollback(sid, v));
                    }
                    note.push(format!(
                        "rollout of config version {v}; a rollback fixes it"
                    ));
                }
            }
            FaultKind::NodeFailure {} => {
                if let Some(n) = self.target_node(i) {
                    inj.nodes = vec![self.sim.scenario().nodes[n as usize].name.clone()];
                    inj.pods = self.pods_on_nodes(&[n]);
                    if self.sim.kill_node(n).is_ok() {
                        undo.push(Undo::Node(n));
                    }
                    note.push("kill_node; restore_node at the end".into());
                }
            }
            FaultKind::ZoneFailure {} => {
                let zone = match &f.selector.zone {
                    Some(z) => Some(z.clone()),
                    None => self
                        .target_node(i)
                        .map(|n| self.sim.scenario().nodes[n as usize].zone.clone()),
                };
                if let Some(z) = zone {
                    let nodes: Vec<u32> = self
                        .sim
                        .scenario()
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| n.zone == z)
                        .map(|(k, _)| k as u32)
                        .collect();
                    inj.pods = self.pods_on_nodes(&nodes);
                    for &n in &nodes {
                        inj.nodes
                            .push(self.sim.scenario().nodes[n as usize].name.clone());
                        if self.sim.kill_node(n).is_ok() {
                            undo.push(Undo::Node(n));
                        }
                    }
                    note.push(format!(
                        "kill_node on the {} node(s) of zone {z}",
                        nodes.len()
                    ));
                    inj.zone = Some(z);
                }
            }
            FaultKind::ZombieNode {} => {
                if let Some(n) = self.target_node(i) {
                    self.rt[i].node_restarts = self.sim.node_restarts(n).ok().map(|r| (n, r));
                    inj.nodes = vec![self.sim.scenario().nodes[n as usize].name.clone()];
                    let members: Vec<u32> = self
                        .sim
                        .pods()
                        .into_iter()
                        .filter(|p| p.node == Some(n))
                        .map(|p| p.id)
                        .collect();
                    inj.pods = self.pods_on_nodes(&[n]);
                    if !members.is_empty()
                        && let Ok(id) = self.sim.add_partition(Partition {
                            members,
                            peers: None,
                        })
                    {
                        undo.push(Undo::Partition(id));
                    }
                    note.push(
                        "the node stays Ready; its pods are cut off from pods and clients \
                         (add_partition) until the node is restarted (restart_node)"
                            .into(),
                    );
                }
            }
            FaultKind::MemoryLeak { rate } => {
                let pods = pod_targets(self);
                for (p, name) in &pods {
                    if self.sim.set_pod_memory_leak(*p, rate.0 as f64).is_ok() {
                        undo.push(Undo::PodLeak(*p, name.clone(), rate.0 as f64));
                    }
                }
                note.push("set_pod_memory_leak".into());
                inj.nodes = self.node_names(&pods);
                inj.pods = pods.into_iter().map(|x| x.1).collect();
            }
            FaultKind::ConnectionPool { to, size } => {
                if let (Some(me), Ok(other)) = (
                    service.as_deref().and_then(|s| self.sim.service_id(s).ok()),
                    self.sim.service_id(to),
                ) {
                    let topo = self.sim.topology().clone();
                    if let Some(e) = topo.edge_id(me, other)
                        && self.sim.set_pool_size(e, Some(*size)).is_ok()
                    {
                        undo.push(Undo::EdgePool(e, *size));
                    }
                    let ids = self.pods_of(me);
                    inj.nodes = self.node_names(&ids);
                    inj.pods = ids.into_iter().map(|x| x.1).collect();
                    note.push(format!("set_pool_size {size} on the edge to {to}"));
                }
            }
            FaultKind::LoadSkew { weight } => {
                let pods = pod_targets(self);
                for (p, name) in &pods {
                    if self.sim.set_pod_weight(*p, 100 * weight).is_ok() {
                        undo.push(Undo::PodWeight(*p, name.clone(), 100 * weight));
                    }
                }
                note.push(format!("set_pod_weight {}", 100 * weight));
                inj.nodes = self.node_names(&pods);
                inj.pods = pods.into_iter().map(|x| x.1).collect();
            }
            FaultKind::TrafficSurge { multiplier, .. } => {
                let mut entries: Vec<String> = Vec::new();
                for w in &self.scenario.base.workload {
                    if !entries.contains(&w.entry) {
                        entries.push(w.entry.clone());
                    }
                }
                inj.service = entries.first().cloned();
                note.push(format!("open workload rates x{multiplier} (applied to the arrival process at build time)"));
            }
        }
        inj.note = note.join("; ");
        let done = inj.end.is_some();
        self.rt[i].undo = undo.clone();
        // where other active faults act on the same surfaces, the effects combine
        for u in &undo {
            self.settle(u);
        }
        self.rt[i].injected = Some(self.injected.len());
        self.injected.push(inj);
        if done {
            self.rt[i].state = State::Done;
        }
    }

    /// The live pods of a service (id and name).
    fn pods_of(&self, service: u32) -> Vec<(u32, String)> {
        self.sim
            .pods_of(service)
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect()
    }

    fn pods_on_nodes(&self, nodes: &[u32]) -> Vec<String> {
        self.sim
            .pods()
            .into_iter()
            .filter(|p| p.node.is_some_and(|n| nodes.contains(&n)))
            .map(|p| p.name)
            .collect()
    }

    fn pod_memory_limit(&self, p: u32) -> u64 {
        let pods = self.sim.pods();
        match pods.iter().find(|x| x.id == p) {
            Some(info) => {
                self.sim
                    .topology()
                    .template(info.service, info.config_version)
                    .resources
                    .memory_limit
                    .0
            }
            None => 0,
        }
    }

    /// Pod failure: the readiness probe has noticed; take the pods out of the endpoints.
    fn detect(&mut self, i: usize) {
        let Some(k) = self.rt[i].injected else { return };
        let names = self.injected[k].pods.clone();
        for name in names {
            if let Some(p) = self.sim.pod_by_name(&name)
                && self.sim.set_pod_weight(p.id, 0).is_ok()
            {
                let u = Undo::PodWeight(p.id, name.clone(), 0);
                self.rt[i].undo.push(u.clone());
                self.settle(&u);
            }
        }
    }

    fn stop_fault(&mut self, i: usize) {
        self.undo_all(i);
        self.rt[i].state = State::Done;
        self.rt[i].detect_at = None;
        if let Some(k) = self.rt[i].injected
            && self.injected[k].end.is_none()
        {
            self.injected[k].end = Some(self.sim.now());
        }
    }

    /// Undoes fault `i`: each surface it acted on goes back to what the faults still active
    /// there add up to (see [`Undo`]).
    fn undo_all(&mut self, i: usize) {
        let undo = std::mem::take(&mut self.rt[i].undo);
        for u in undo.iter().rev() {
            match u {
                Undo::Partition(id) => self.sim.remove_partition(*id),
                Undo::Rollback(s, v) => self.undo_rollout(*s, *v),
                _ => self.settle(u),
            }
        }
    }

    /// Sets the surface `key` acts on to the combination of the active faults' effects on it
    /// (the default when none is left). A pod surface whose pod is gone (its name no longer
    /// names that id) is left alone.
    fn settle(&mut self, key: &Undo) {
        let Some(surface) = key.surface() else {
            return; // partitions and rollouts do not combine
        };
        if let Some((p, n)) = key.pod()
            && self.sim.pod_by_name(n).is_none_or(|x| x.id != p)
        {
            return;
        }
        // the values of the active effects on the key's surface, oldest injection first
        let on: Vec<&Undo> = active_effects(&self.rt)
            .into_iter()
            .filter(|e| e.surface() == Some(surface))
            .collect();
        macro_rules! values {
            ($pat:pat => $v:expr) => {
                on.iter().filter_map(|e| match e {
                    $pat => Some($v),
                    _ => None,
                })
            };
        }
        let _ = match *key {
            Undo::PodCpu(p, ..) => {
                let m = values!(Undo::PodCpu(.., m) => *m).fold(0u32, u32::saturating_add);
                self.sim
                    .set_pod_cpu_stress(p, m.min(sim_core::MAX_STRESS_MILLICORES))
            }
            Undo::PodMem(p, ..) => {
                let b = values!(Undo::PodMem(.., b) => *b).fold(0u64, u64::saturating_add);
                self.sim.set_pod_memory_pressure(p, b.min(1 << 50))
            }
            Undo::PodLeak(p, ..) => {
                let r: f64 = values!(Undo::PodLeak(.., r) => *r).sum();
                // an unchanged rate keeps what has leaked (setting it restarts the count)
                if self.sim.pod_leak_rate(p).is_ok_and(|cur| cur == r) {
                    Ok(())
                } else {
                    self.sim.set_pod_memory_leak(p, r.min(1e15 - 1.0))
                }
            }
            Undo::PodIo(p, ..) => {
                // the latest disk fault wins
                let f = values!(Undo::PodIo(.., f) => *f).last().unwrap_or_default();
                self.sim.set_pod_io_fault(p, f)
            }
            Undo::PodNet(p, ..) => {
                let f = values!(Undo::PodNet(.., f) => *f).fold(NetFault::default(), combine_net);
                self.sim.set_pod_network(p, clamp_net(f))
            }
            Undo::PodWeight(p, ..) => {
                let w = values!(Undo::PodWeight(.., w) => *w as f64 / 100.0).product::<f64>();
                self.sim
                    .set_pod_weight(p, (100.0 * w).round().min(1e9) as u32)
            }
            Undo::EdgeNet(e, _) => {
                let f = values!(Undo::EdgeNet(_, f) => *f).fold(NetFault::default(), combine_net);
                self.sim.set_edge_network(e, clamp_net(f))
            }
            Undo::EdgePool(e, _) => {
                let size = values!(Undo::EdgePool(_, s) => *s).min();
                self.sim.set_pool_size(e, size)
            }
            // a node stays down while any fault holds it
            Undo::Node(n) if on.is_empty() => self.sim.restore_node(n),
            Undo::Node(n) => self.sim.kill_node(n),
            Undo::Partition(_) | Undo::Rollback(..) => Ok(()),
        };
    }

    /// Undoes a config rollout of version `v` on service `s`: rolled back if it is still the
    /// live version, then further back past versions of faults that have ended meanwhile (a
    /// later fault's rollout stacked on an earlier one's: the earlier fault's version must
    /// not come back once it is over).
    fn undo_rollout(&mut self, s: u32, v: u32) {
        if !self.sim.deployment(s).is_ok_and(|(_, cur)| cur == v) {
            return;
        }
        let _ = self.sim.rollback(s);
        loop {
            let Ok((_, cur)) = self.sim.deployment(s) else {
                return;
            };
            let ended_fault_version = (0..self.rt.len()).any(|j| {
                self.rt[j].state != State::Active
                    && self.rt[j].config_version == cur
                    && cur != 0
                    && matches!(self.scenario.faults[j].chaos, FaultKind::ConfigError { .. })
                    && self.rt[j]
                        .service
                        .as_deref()
                        .and_then(|x| self.sim.service_id(x).ok())
                        == Some(s)
            });
            if !ended_fault_version || self.sim.rollback(s).is_err() {
                return;
            }
        }
    }
}

/// A combined network fault within what the simulator accepts.
fn clamp_net(f: NetFault) -> NetFault {
    NetFault {
        delay: f.delay.min(sim_core::MAX_CONTROL_DURATION),
        jitter: f.jitter.min(sim_core::MAX_CONTROL_DURATION),
        loss: f.loss.clamp(0.0, 1.0),
    }
}

impl Clone for Episode {
    fn clone(&self) -> Self {
        self.fork()
    }
}

/// Episode snapshot magic; the last byte is the format version (2: fault effects carry
/// their values, and whether an agent acted since the last run).
const SNAP_MAGIC: &[u8; 8] = b"BRFEP\x00\x00\x02";

#[derive(Serialize, Deserialize)]
struct Meta {
    scenario: FaultScenario,
    seed: u64,
    with_faults: bool,
    rt: Vec<FaultRt>,
    injected: Vec<InjectedFault>,
    touched: bool,
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(w)).wrapping_add(chunk.len() as u64);
    }
    h
}
