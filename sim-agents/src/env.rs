//! The environment: one fault scenario, stepped by an agent, in Gymnasium's conventions.
//!
//! - [`Env::reset`] starts an episode for a seed and returns the first observation (after one
//!   decision interval of warm-up, so that it has metrics).
//! - [`Env::step`] applies an action at the current time, advances simulated time by the
//!   scenario's decision interval, and returns a [`Step`]: the next observation, the reward
//!   with its components, `terminated` (the scenario's end was reached), `truncated` (the step
//!   limit was reached first) and [`StepInfo`].
//! - Actions act through `sim-core`'s control surface and take effect with its delays: a
//!   deleted pod's replacement is scheduled (2 s), boots (its `boot_time`) and warms up
//!   (CPU demand up to `warmup_factor` x for `warmup`); a scaled deployment's new pods do the
//!   same; a rebooted node's pods boot again.
//! - Costs, as DIME defines them where they make sense: a restart puts its target on a
//!   cooldown (5 steps); a throttle burns error budget when issued (10 x the share shed) and
//!   on every step it is held (2 x the share shed, which DIME does not charge); errors users
//!   see burn it too (10 x the unavailable share per step); it regenerates 2 per step. Extra
//!   replicas cost cloud budget (one unit per replica added; DIME: one per scale-up).
//!
//! An environment's behaviour depends only on (scenario, seed, actions).
//!
//! ```no_run
//! use sim_agents::{Env, action::Action};
//! use sim_faults::FaultScenario;
//! let mut env = Env::new(FaultScenario::builtin("retry-storm").unwrap());
//! let obs = env.reset(1);
//! let step = env.step(Action::Throttle { rate: 0.5 });
//! println!("{} {:?}", step.reward.total, step.observation.alerts);
//! ```

use crate::action::{Action, ActionKind, QueryKind, Replicas};
use crate::error::{ActionError, AgentError};
use crate::grammar;
use crate::observation::Observation;
use crate::observe::{AgentView, Statics, Target, answer, observe};
use crate::rewards::{ActionCost, Reward, RewardState, env_reward};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim_core::Simulation;
use sim_core::rng::{StreamKind, stream};
use sim_faults::{Episode, FaultScenario, GroundTruth};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Options of an environment beyond its scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvOptions {
    /// Probability that a visible node's telemetry drops out at each observation (partial
    /// observability; DIME uses 0.05). A dropped node stays dropped until a query targets it.
    /// Default 0 (full observability).
    pub dropout: f64,
    /// Cloud budget in replica-units (DIME's trace tasks: 8). Default 8.
    pub cloud_budget: i64,
    /// Steps a restarted target must wait before it can be restarted again. Default 5.
    pub restart_cooldown: u32,
    /// Overrides the scenario's `agent.max_steps`.
    pub max_steps: Option<u32>,
    /// Put the scenario's description, which names the root cause (e.g. "node-3 fails at
    /// 50 s"), in the observations' `task_hint`. Default false: a vague hint naming no node,
    /// pod or service ([`task_hint`]).
    #[serde(default)]
    pub reveal_root_cause: bool,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            dropout: 0.0,
            cloud_budget: 8,
            restart_cooldown: 5,
            max_steps: None,
            reveal_root_cause: false,
        }
    }
}

/// The `task_hint` of an environment's observations for `scenario`.
///
/// With `reveal_root_cause`, the scenario's description, which names the faulty components.
/// Otherwise a short, vague hint in the style of DIME's ("System is under heavy traffic
/// load.") that names no node, pod or service and no fault type: one sentence per class of
/// symptoms the scenario's faults produce, in this order:
///
/// - a traffic surge: "System is under heavy traffic load.";
/// - lost capacity (a node or zone failure, killed or failed pods): "Part of the cluster may
///   fail.";
/// - anything else (resource stress, leaks, disk or network faults, zombie nodes, connection
///   pools, load skew, bad configuration): "A component may degrade.";
///
/// and "Keep the system healthy." for a scenario without faults.
///
/// ```
/// use sim_agents::env::task_hint;
/// use sim_faults::FaultScenario;
/// let sc = FaultScenario::builtin("dime-node-failure").unwrap();
/// assert_eq!(task_hint(&sc, false), "Part of the cluster may fail.");
/// assert_eq!(task_hint(&sc, true), sc.description);
/// ```
pub fn task_hint(scenario: &FaultScenario, reveal_root_cause: bool) -> String {
    use sim_faults::FaultKind;
    if reveal_root_cause {
        return scenario.description.clone();
    }
    const CLASSES: [&str; 3] = [
        "System is under heavy traffic load.",
        "Part of the cluster may fail.",
        "A component may degrade.",
    ];
    let mut seen = [false; 3];
    for f in &scenario.faults {
        let class = match f.chaos {
            FaultKind::TrafficSurge { .. } => 0,
            FaultKind::NodeFailure {} | FaultKind::ZoneFailure {} | FaultKind::PodChaos { .. } => 1,
            _ => 2,
        };
        seen[class] = true;
    }
    let hint: Vec<&str> = CLASSES
        .iter()
        .zip(seen)
        .filter(|(_, s)| *s)
        .map(|(c, _)| *c)
        .collect();
    if hint.is_empty() {
        "Keep the system healthy.".into()
    } else {
        hint.join(" ")
    }
}

/// What happened in a step besides the observation and the reward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Simulated time at the end of the step, ns.
    pub time_ns: u64,
    /// The action, as a canonical command.
    pub action: String,
    /// Its kind.
    pub kind: ActionKind,
    /// Whether it was applied (false: an error is in `observation.action_errors`).
    pub applied: bool,
    /// Engine events processed so far in the episode.
    pub events: u64,
    /// With [`crate::VecEnv`]'s auto-reset: the observation that ended the episode (the
    /// step's `observation` is then the next episode's first).
    pub final_observation: Option<Box<Observation>>,
}

/// The result of [`Env::step`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The observation after the step.
    pub observation: Observation,
    /// The environment reward and its components.
    pub reward: Reward,
    /// The episode reached its natural end (the scenario's duration).
    pub terminated: bool,
    /// The step limit was reached before the natural end.
    pub truncated: bool,
    /// Extra information.
    pub info: StepInfo,
}

/// Agent-side state of an episode (serialised in snapshots).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AgentState {
    seed: u64,
    step: u32,
    error_budget: f64,
    cloud_budget: i64,
    cloud_initial: i64,
    throttle: f64,
    cooldowns: BTreeMap<String, u32>,
    node_weights: Vec<u32>,
    pod_weights: BTreeMap<u32, u32>,
    dropped: Vec<bool>,
    pending: Vec<(QueryKind, Target)>,
    /// 1 for each of the last `RESTART_WINDOW` steps that restarted something, else 0.
    restarts: VecDeque<u32>,
    rng: ChaCha8Rng,
    t_last: u64,
    arrivals_last: u64,
    steps_ok: u32,
    /// The window of the latest observation: its start (`t_last`, `arrivals_last` and
    /// `steps_ok` as they were before that step), so that `Env::observation` rebuilds it.
    obs_from: WindowStart,
    prev: RewardState,
    baseline_rps: Vec<f64>,
}

/// The start of an observation window (see `AgentState::obs_from`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct WindowStart {
    time: u64,
    arrivals: u64,
    steps_ok: u32,
}

impl AgentState {
    fn new(seed: u64, nodes: usize, opts: &EnvOptions) -> AgentState {
        AgentState {
            seed,
            step: 0,
            error_budget: 100.0,
            cloud_budget: opts.cloud_budget,
            cloud_initial: opts.cloud_budget,
            throttle: 1.0,
            cooldowns: BTreeMap::new(),
            node_weights: vec![100; nodes],
            pod_weights: BTreeMap::new(),
            dropped: vec![false; nodes],
            pending: vec![],
            restarts: VecDeque::new(),
            rng: stream(seed, StreamKind::External, 0xA6E7_0001),
            t_last: 0,
            arrivals_last: 0,
            steps_ok: 0,
            obs_from: WindowStart::default(),
            prev: RewardState::healthy(),
            baseline_rps: vec![],
        }
    }
}

/// One environment. See the [module docs](self).
pub struct Env {
    scenario: Arc<FaultScenario>,
    options: EnvOptions,
    statics: Arc<Statics>,
    ep: Episode,
    st: AgentState,
}

impl Clone for Env {
    fn clone(&self) -> Self {
        self.fork()
    }
}

impl Env {
    /// An environment for a scenario (reset with seed 0). Panics only if the scenario does not
    /// build, which a scenario loaded through `FaultScenario`'s constructors always does; use
    /// [`Env::try_new`] for a `Result`.
    pub fn new(scenario: FaultScenario) -> Env {
        match Env::try_new(scenario, EnvOptions::default()) {
            Ok(e) => e,
            Err(e) => panic!("scenario does not build: {e}"),
        }
    }

    /// An environment with options; errors if the scenario does not build.
    pub fn try_new(scenario: FaultScenario, options: EnvOptions) -> Result<Env, AgentError> {
        let ep = Episode::new(&scenario, 0)?;
        let hint = task_hint(&scenario, options.reveal_root_cause);
        let statics = Arc::new(Statics::new(ep.sim(), &hint));
        let n = statics.node_names.len();
        let mut env = Env {
            scenario: Arc::new(scenario),
            st: AgentState::new(0, n, &options),
            options,
            statics,
            ep,
        };
        env.warm_up();
        Ok(env)
    }

    /// An environment from a built-in scenario name or a scenario file path.
    pub fn from_name(name_or_path: &str) -> Result<Env, AgentError> {
        Env::try_new(FaultScenario::load(name_or_path)?, EnvOptions::default())
    }

    /// The scenario.
    pub fn scenario(&self) -> &FaultScenario {
        &self.scenario
    }

    /// The options.
    pub fn options(&self) -> &EnvOptions {
        &self.options
    }

    /// The running episode (the simulation and its faults).
    pub fn episode(&self) -> &Episode {
        &self.ep
    }

    /// The simulation.
    pub fn sim(&self) -> &Simulation {
        self.ep.sim()
    }

    /// Steps taken in this episode.
    pub fn steps(&self) -> u32 {
        self.st.step
    }

    /// The episode's seed.
    pub fn seed(&self) -> u64 {
        self.st.seed
    }

    /// The step limit.
    pub fn max_steps(&self) -> u32 {
        self.options
            .max_steps
            .unwrap_or(self.scenario.agent.max_steps)
            .max(1)
    }

    /// The decision interval, ns.
    pub fn decision_interval(&self) -> u64 {
        self.scenario.agent.decision_interval.0.max(1_000_000)
    }

    /// True once the episode has terminated or been truncated.
    pub fn is_over(&self) -> bool {
        self.ep.is_done() || self.st.step >= self.max_steps()
    }

    /// Starts an episode for `seed`.
    pub fn reset(&mut self, seed: u64) -> Observation {
        // the scenario built once in try_new, so it builds again
        self.ep = match Episode::new(&self.scenario, seed) {
            Ok(ep) => ep,
            Err(e) => panic!("scenario stopped building: {e}"),
        };
        self.st = AgentState::new(seed, self.statics.node_names.len(), &self.options);
        self.warm_up()
    }

    fn warm_up(&mut self) -> Observation {
        let t = self.decision_interval().min(self.ep.sim().end());
        self.ep.run_until(t);
        self.roll_dropout(&[]);
        let from = self.window_start();
        self.st.obs_from = from;
        let (obs, rs) = self.observe(vec![], from);
        self.st.baseline_rps = obs.services.iter().map(|s| s.rps).collect();
        self.st.prev = rs;
        self.st.t_last = self.ep.now();
        self.st.arrivals_last = self.ep.sim().counters().arrivals;
        obs
    }

    /// Where an observation made now would start its window: the end of the last one.
    fn window_start(&self) -> WindowStart {
        WindowStart {
            time: self.st.t_last,
            arrivals: self.st.arrivals_last,
            steps_ok: self.st.steps_ok,
        }
    }

    /// The observation of the window from `from` to now.
    fn observe(&self, action_errors: Vec<String>, from: WindowStart) -> (Observation, RewardState) {
        observe(
            self.ep.sim(),
            &self.statics,
            AgentView {
                step: self.st.step,
                error_budget: self.st.error_budget,
                cloud_budget: self.st.cloud_budget,
                cloud_initial: self.st.cloud_initial,
                throttle: self.st.throttle,
                dropped: &self.st.dropped,
                action_errors,
                cooldowns: self.st.cooldowns.clone(),
                steps_ok: from.steps_ok,
                arrivals: from.arrivals,
                t0: from.time,
                baseline_rps: &self.st.baseline_rps,
            },
        )
    }

    fn roll_dropout(&mut self, queried: &[u32]) {
        let p = self.options.dropout;
        if p <= 0.0 {
            return;
        }
        for (i, d) in self.st.dropped.iter_mut().enumerate() {
            if *d {
                if queried.contains(&(i as u32)) {
                    *d = false;
                }
            } else if sim_core::rng::unit(&mut self.st.rng) < p {
                *d = true;
            }
        }
    }

    /// The latest observation (of `reset` or `step`), rebuilt: the same window and values,
    /// without its query answers and action errors; no time passes.
    pub fn observation(&self) -> Observation {
        let mut o = self.observe(vec![], self.st.obs_from).0;
        o.step = self.st.step;
        o
    }

    /// Parses a text with the [command grammar](crate::grammar) and steps with it; a parse
    /// error is reported in the observation's `action_errors` and the step still happens.
    pub fn step_text(&mut self, text: &str) -> Step {
        let action = match grammar::parse_command(text) {
            Ok(a) => a,
            Err(e) => Action::Invalid {
                raw: text.chars().take(200).collect(),
                reason: e.to_string(),
            },
        };
        self.step(action)
    }

    /// Applies an action, advances one decision interval, observes and rewards.
    pub fn step(&mut self, action: Action) -> Step {
        let interval = self.decision_interval();
        if self.is_over() {
            let (mut obs, _) =
                self.observe(vec!["EpisodeOver: call reset".into()], self.st.obs_from);
            obs.step = self.st.step;
            let terminated = self.ep.is_done();
            return Step {
                observation: obs,
                reward: Reward {
                    total: 0.0,
                    components: crate::rewards::COMPONENTS
                        .iter()
                        .map(|k| (k.to_string(), 0.0))
                        .collect(),
                },
                terminated,
                truncated: !terminated,
                info: StepInfo {
                    time_ns: self.ep.now(),
                    action: action.to_command(),
                    kind: action.kind(),
                    applied: false,
                    events: self.ep.sim().counters().events,
                    final_observation: None,
                },
            };
        }
        let kind = action.kind();
        let mut errors = Vec::new();
        let mut queried_nodes = Vec::new();
        let applied = match self.apply(&action, &mut queried_nodes) {
            Ok(()) => true,
            Err(e) => {
                errors.push(e.to_string());
                false
            }
        };
        let restarted = u32::from(applied && kind.is_restart());
        self.st.restarts.push_back(restarted);
        while self.st.restarts.len() > RESTART_WINDOW {
            self.st.restarts.pop_front();
        }
        let recent_restarts: u32 = self.st.restarts.iter().sum();
        // error budget: regeneration and the throttle held over the interval (the errors
        // users see in it are charged once it has run)
        let shed = 1.0 - self.st.throttle;
        self.st.error_budget = (self.st.error_budget + 2.0 - 2.0 * shed).clamp(0.0, 100.0);
        // keep the ingress limit in line with the nominal rate
        self.apply_throttle_limit();
        let end = self.ep.sim().end();
        let t = self.ep.now().saturating_add(interval).min(end);
        self.ep.run_until(t);
        self.st.step += 1;
        // cooldowns tick
        self.st.cooldowns.retain(|_, v| {
            *v = v.saturating_sub(1);
            *v > 0
        });
        self.roll_dropout(&queried_nodes);
        let from = self.window_start();
        self.st.obs_from = from;
        let (mut obs, mut rs) = self.observe(errors, from);
        // the errors users saw in this interval, in this step's observation and reward
        self.st.error_budget =
            (self.st.error_budget - 10.0 * (1.0 - rs.availability)).clamp(0.0, 100.0);
        obs.error_budget = crate::observe::round2(self.st.error_budget);
        rs.error_budget = self.st.error_budget;
        if obs.alerts.is_empty() {
            // saturating: a restored snapshot may carry any count
            self.st.steps_ok = self.st.steps_ok.saturating_add(1);
        }
        // answer the queries issued this step
        let pending = std::mem::take(&mut self.st.pending);
        for (k, tgt) in &pending {
            let r = answer(self.ep.sim(), &self.statics, *k, tgt, self.st.t_last, &obs);
            obs.query_results.push(r);
        }
        let cost = ActionCost {
            kind,
            applied,
            recent_restarts,
        };
        let reward = env_reward(&self.st.prev, &cost, &rs);
        self.st.prev = rs;
        self.st.t_last = self.ep.now();
        self.st.arrivals_last = self.ep.sim().counters().arrivals;
        let terminated = self.ep.is_done();
        let truncated = !terminated && self.st.step >= self.max_steps();
        Step {
            observation: obs,
            reward,
            terminated,
            truncated,
            info: StepInfo {
                time_ns: self.ep.now(),
                action: action.to_command(),
                kind,
                applied,
                events: self.ep.sim().counters().events,
                final_observation: None,
            },
        }
    }

    fn apply_throttle_limit(&mut self) {
        let entry = self.statics.entry;
        let now = self.ep.now();
        let limit = if self.st.throttle >= 1.0 {
            None
        } else {
            let mut nominal = self.statics.nominal_rate(self.ep.sim(), now);
            if nominal <= 0.0 {
                // closed workloads: the offered rate of the last interval, the window of the
                // latest observation (`t_last` is already now here)
                let from = self.st.obs_from;
                let secs = (now.saturating_sub(from.time)).max(1) as f64 / 1e9;
                nominal = self
                    .ep
                    .sim()
                    .counters()
                    .arrivals
                    .saturating_sub(from.arrivals) as f64
                    / secs;
            }
            Some((self.st.throttle * nominal).max(0.0))
        };
        let _ = self.ep.sim_mut().set_ingress_rate_limit(entry, limit);
    }

    // ------------------------------------------------------------------ targets

    /// A node named `name` (case-insensitive); else, for a bare number, the node at that
    /// index (0-based, as in DIME's prompts); else, for a token ending in a node number
    /// (`node1`, `node_1`, `frontend-node-1`: DIME's P3 rule), the node named `node-<N>`
    /// (or `node_<N>`, `node<N>`) when there is one, so every spelling of a name agrees with
    /// the name, and the node at index N otherwise.
    fn node_ref(&self, name: &str) -> Option<u32> {
        let names = &self.statics.node_names;
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            return Some(i as u32);
        }
        let index = |i: u32| Some(i).filter(|&i| (i as usize) < names.len());
        if !name.is_empty() && name.len() < 7 && name.bytes().all(|b| b.is_ascii_digit()) {
            return name.parse().ok().and_then(index);
        }
        let n = grammar::last_node_index(&name.to_ascii_lowercase())?;
        match names
            .iter()
            .position(|nm| grammar::node_number(&nm.to_ascii_lowercase()) == Some(n))
        {
            Some(i) => Some(i as u32),
            None => index(n),
        }
    }

    fn pod_ref(&self, name: &str) -> Option<(u32, String)> {
        self.ep.sim().pod_by_name(name).map(|p| (p.id, p.name))
    }

    fn service_ref(&self, name: &str) -> Option<u32> {
        self.statics
            .service_names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| i as u32)
    }

    fn any_ref(&self, name: &str) -> Option<Target> {
        if let Some(s) = self.service_ref(name) {
            return Some(Target::Service(s));
        }
        if let Some((p, n)) = self.pod_ref(name) {
            return Some(Target::Pod(p, n));
        }
        self.node_ref(name).map(Target::Node)
    }

    /// Whether every target an action names exists now (for the validity reward): stepping
    /// the action resolves its targets first, and this is whether that succeeds.
    pub fn targets_exist(&self, action: &Action) -> bool {
        self.resolve(action).is_ok()
    }

    /// Resolves an action's target names against the running topology; an unknown name (or
    /// names that do not go together, as a reroute from a node to a pod) is an
    /// `UnknownTarget` error. Nothing is changed.
    fn resolve<'a>(&self, action: &'a Action) -> Result<Resolved<'a>, ActionError> {
        let unknown = |kind: &'static str, name: &str| ActionError::UnknownTarget {
            kind,
            name: name.to_string(),
        };
        let deployment = |t: &str| self.service_ref(t).ok_or_else(|| unknown("deployment", t));
        Ok(match action {
            Action::NoOp => Resolved::NoOp,
            Action::Invalid { reason, .. } => Resolved::Invalid(reason),
            Action::RestartPod { target } => match self.pod_ref(target) {
                Some((p, name)) => Resolved::KillPod(p, name),
                None => Resolved::RestartNode(
                    self.node_ref(target)
                        .ok_or_else(|| unknown("pod", target))?,
                ),
            },
            Action::RestartNode { target } => Resolved::RestartNode(
                self.node_ref(target)
                    .ok_or_else(|| unknown("node", target))?,
            ),
            Action::RestartDeployment { target } => match self.service_ref(target) {
                Some(s) => Resolved::RestartService(s),
                None => Resolved::RestartNode(
                    self.node_ref(target)
                        .ok_or_else(|| unknown("deployment", target))?,
                ),
            },
            Action::Scale { target, replicas } => {
                Resolved::Scale(target.as_deref().map(deployment).transpose()?, *replicas)
            }
            // traffic moves between two nodes, else between two pods
            Action::Reroute { from, to, fraction } => {
                let f = if fraction.is_finite() {
                    fraction.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                if let (Some(a), Some(b)) = (self.node_ref(from), self.node_ref(to)) {
                    return Ok(Resolved::RerouteNodes(a, b, f));
                }
                match (self.pod_ref(from), self.pod_ref(to)) {
                    (Some((a, _)), Some((b, _))) => Resolved::ReroutePods(a, b, f),
                    (None, _) if self.node_ref(from).is_none() => {
                        return Err(unknown("pod or node", from));
                    }
                    _ => return Err(unknown("pod or node", to)),
                }
            }
            Action::Throttle { rate } => Resolved::Throttle(*rate),
            // a rollback applies to a deployment only
            Action::Rollback { target } => Resolved::Rollback(deployment(target)?),
            Action::Query { kind, target } => Resolved::Query(
                *kind,
                self.any_ref(target)
                    .ok_or_else(|| unknown("pod, node or service", target))?,
            ),
        })
    }

    fn cooldown_check(&self, key: &str) -> Result<(), ActionError> {
        match self.st.cooldowns.get(key) {
            Some(&steps) if steps > 0 => Err(ActionError::Cooldown {
                target: key.to_string(),
                steps,
            }),
            _ => Ok(()),
        }
    }

    fn restart_node(&mut self, n: u32) -> Result<(), ActionError> {
        let key = format!("node:{}", self.statics.node_names[n as usize]);
        self.cooldown_check(&key)?;
        self.ep
            .sim_mut()
            .restart_node(n)
            .map_err(|e| ActionError::Rejected(e.to_string()))?;
        self.st.cooldowns.insert(key, self.options.restart_cooldown);
        Ok(())
    }

    fn restart_service(&mut self, s: u32) -> Result<(), ActionError> {
        let key = format!("svc:{}", self.statics.service_names[s as usize]);
        self.cooldown_check(&key)?;
        let pods = self.ep.sim().pods_of(s);
        for p in pods {
            self.ep
                .sim_mut()
                .restart_pod(p.id)
                .map_err(|e| ActionError::Rejected(e.to_string()))?;
        }
        self.st.cooldowns.insert(key, self.options.restart_cooldown);
        Ok(())
    }

    /// The deployment DIME's target-less `scale_up` grows: the busiest stateless one.
    fn default_deployment(&self) -> u32 {
        let sim = self.ep.sim();
        let kinds = &self.statics.service_kinds;
        let mut best = (self.statics.entry, -1.0);
        if let Some(s) = sim.last_scrape() {
            for m in &s.services {
                let k = kinds[m.service as usize];
                let ok = matches!(
                    k,
                    sim_core::scenario::ServiceKind::Stateless
                        | sim_core::scenario::ServiceKind::Gateway
                );
                if ok && m.desired_replicas > 0 && m.cpu_utilization > best.1 {
                    best = (m.service, m.cpu_utilization);
                }
            }
        }
        best.0
    }

    fn apply(&mut self, action: &Action, queried_nodes: &mut Vec<u32>) -> Result<(), ActionError> {
        match self.resolve(action)? {
            Resolved::NoOp => Ok(()),
            Resolved::Invalid(reason) => Err(ActionError::Invalid(reason.to_string())),
            Resolved::KillPod(p, name) => {
                let key = format!("pod:{name}");
                self.cooldown_check(&key)?;
                self.ep
                    .sim_mut()
                    .kill_pod(p)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                self.st.cooldowns.insert(key, self.options.restart_cooldown);
                Ok(())
            }
            Resolved::RestartNode(n) => self.restart_node(n),
            Resolved::RestartService(s) => self.restart_service(s),
            Resolved::Scale(s, replicas) => {
                let s = s.unwrap_or_else(|| self.default_deployment());
                let (cur, _) = self
                    .ep
                    .sim()
                    .deployment(s)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                let new = match replicas {
                    Replicas::To(n) => n,
                    Replicas::Up(k) => cur.saturating_add(k),
                };
                let need = new as i64 - cur as i64;
                if need > self.st.cloud_budget {
                    return Err(ActionError::InsufficientFunds {
                        need,
                        have: self.st.cloud_budget,
                    });
                }
                self.ep
                    .sim_mut()
                    .scale(s, new)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                self.st.cloud_budget -= need.max(0);
                Ok(())
            }
            Resolved::RerouteNodes(a, b, f) => {
                if a == b {
                    return Err(ActionError::Rejected(
                        "reroute from a node to itself".into(),
                    ));
                }
                let wa = self.st.node_weights[a as usize];
                let keep = ((wa as f64) * (1.0 - f)).round() as u32;
                let moved = wa - keep.min(wa);
                let wb = self.st.node_weights[b as usize]
                    .saturating_add(moved)
                    .min(10_000);
                let sim = self.ep.sim_mut();
                sim.set_node_weight(a, keep)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                sim.set_node_weight(b, wb)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                self.st.node_weights[a as usize] = keep;
                self.st.node_weights[b as usize] = wb;
                Ok(())
            }
            Resolved::ReroutePods(a, b, f) => {
                if a == b {
                    return Err(ActionError::Rejected("reroute from a pod to itself".into()));
                }
                let wa = *self.st.pod_weights.get(&a).unwrap_or(&100);
                let keep = ((wa as f64) * (1.0 - f)).round() as u32;
                let moved = wa - keep.min(wa);
                let wb = self
                    .st
                    .pod_weights
                    .get(&b)
                    .unwrap_or(&100)
                    .saturating_add(moved)
                    .min(10_000);
                let sim = self.ep.sim_mut();
                sim.set_pod_weight(a, keep)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                sim.set_pod_weight(b, wb)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                self.st.pod_weights.insert(a, keep);
                self.st.pod_weights.insert(b, wb);
                Ok(())
            }
            Resolved::Throttle(rate) => {
                let r = if rate.is_finite() {
                    rate.clamp(0.0, 1.0)
                } else {
                    1.0
                };
                self.st.error_budget = (self.st.error_budget - 10.0 * (1.0 - r)).max(0.0);
                self.st.throttle = r;
                Ok(())
            }
            Resolved::Rollback(s) => {
                self.ep
                    .sim_mut()
                    .rollback(s)
                    .map_err(|e| ActionError::Rejected(e.to_string()))?;
                Ok(())
            }
            Resolved::Query(kind, t) => {
                match &t {
                    Target::Node(n) => queried_nodes.push(*n),
                    Target::Pod(p, _) => {
                        if let Some(n) = self
                            .ep
                            .sim()
                            .pods()
                            .iter()
                            .find(|x| x.id == *p)
                            .and_then(|x| x.node)
                        {
                            queried_nodes.push(n);
                        }
                    }
                    Target::Service(_) => {}
                }
                self.st.pending.push((kind, t));
                Ok(())
            }
        }
    }

    // ------------------------------------------------------------------ labels, fork, snapshot

    /// The episode's ground truth, against the counterfactual (the same seed without faults,
    /// run to the same time). Costs one extra simulation of the elapsed time.
    pub fn ground_truth(&self) -> GroundTruth {
        let cf = self.counterfactual();
        self.ep.ground_truth(&cf)
    }

    /// The counterfactual episode (no faults, same seed) run to the current time.
    pub fn counterfactual(&self) -> Episode {
        let mut cf = match Episode::without_faults(&self.scenario, self.st.seed) {
            Ok(c) => c,
            Err(e) => panic!("scenario stopped building: {e}"),
        };
        cf.run_until(self.ep.now());
        cf
    }

    /// An independent copy (simulation, faults, agent state, RNG). Stepping both with the same
    /// actions gives identical results.
    pub fn fork(&self) -> Env {
        Env {
            scenario: self.scenario.clone(),
            options: self.options.clone(),
            statics: self.statics.clone(),
            ep: self.ep.fork(),
            st: self.st.clone(),
        }
    }

    /// Serialises the whole environment (episode snapshot + agent state + options).
    pub fn snapshot(&self) -> Vec<u8> {
        let snap = Snap {
            version: SNAPSHOT_VERSION,
            episode: self.ep.snapshot(),
            state: self.st.clone(),
            options: self.options.clone(),
        };
        postcard::to_allocvec(&snap).unwrap_or_default()
    }

    /// Rebuilds an environment from [`Env::snapshot`] bytes; corrupt bytes are an error.
    pub fn restore(bytes: &[u8]) -> Result<Env, AgentError> {
        let snap: Snap =
            postcard::from_bytes(bytes).map_err(|e| AgentError::Snapshot(e.to_string()))?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(AgentError::Snapshot(format!(
                "snapshot format version {} (this build reads version {SNAPSHOT_VERSION})",
                snap.version
            )));
        }
        let ep = Episode::restore(&snap.episode)?;
        let scenario = Arc::new(ep.scenario().clone());
        let hint = task_hint(&scenario, snap.options.reveal_root_cause);
        let statics = Arc::new(Statics::new(ep.sim(), &hint));
        // what stepping indexes or sums must be in range: the bytes may come from anywhere
        let st = &snap.state;
        let nodes = statics.node_names.len();
        let in_topology = |t: &Target| match t {
            Target::Node(n) => (*n as usize) < nodes,
            Target::Service(s) => (*s as usize) < statics.service_names.len(),
            Target::Pod(..) => true,
        };
        if st.node_weights.len() != nodes
            || st.dropped.len() != nodes
            || !st.pending.iter().all(|(_, t)| in_topology(t))
        {
            return Err(AgentError::Snapshot(
                "agent state does not match the topology".into(),
            ));
        }
        if st.restarts.len() > RESTART_WINDOW || st.restarts.iter().any(|&r| r > 1) {
            return Err(AgentError::Snapshot(
                "agent state has an impossible restart history".into(),
            ));
        }
        Ok(Env {
            scenario,
            options: snap.options,
            statics,
            ep,
            st: snap.state,
        })
    }

    /// Return-relevant summary of the last interval (what the reward read).
    pub fn reward_state(&self) -> RewardState {
        self.st.prev
    }

    /// Error budget left.
    pub fn error_budget(&self) -> f64 {
        self.st.error_budget
    }
}

/// Steps over which restarts are counted for the restart cost.
const RESTART_WINDOW: usize = 5;

/// Format version of [`Env::snapshot`] bytes (2: the agent state records where the latest
/// observation's window began, and no longer the previous interval's availability; 3: the
/// options carry `reveal_root_cause`).
const SNAPSHOT_VERSION: u32 = 3;

#[derive(Serialize, Deserialize)]
struct Snap {
    version: u32,
    episode: Vec<u8>,
    state: AgentState,
    options: EnvOptions,
}

/// An action with its target names resolved (`Env::resolve`): what `Env::apply` does.
enum Resolved<'a> {
    NoOp,
    Invalid(&'a str),
    /// A pod (id, name) to delete.
    KillPod(u32, String),
    RestartNode(u32),
    RestartService(u32),
    /// A deployment (`None`: the default one, `Env::default_deployment`) to scale.
    Scale(Option<u32>, Replicas),
    /// A share (in [0, 1]) of the traffic moved from node to node.
    RerouteNodes(u32, u32, f64),
    /// A share (in [0, 1]) of the traffic moved from pod to pod.
    ReroutePods(u32, u32, f64),
    Throttle(f64),
    Rollback(u32),
    Query(QueryKind, Target),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot whose agent state has been tampered with by `edit`, restored.
    fn restore_edited(edit: impl FnOnce(&mut AgentState)) -> Result<Env, AgentError> {
        let mut e = Env::new(FaultScenario::builtin("dime-node-failure").unwrap());
        edit(&mut e.st);
        Env::restore(&e.snapshot())
    }

    /// Restored bytes are outside input: pending queries naming a node or service that the
    /// topology lacks (stepping indexed by them) and restart counts that overflow their sum
    /// are typed errors, not panics on the next step.
    #[test]
    fn restore_refuses_out_of_range_agent_state() {
        let query = |t: Target| move |st: &mut AgentState| st.pending.push((QueryKind::Metrics, t));
        for r in [
            restore_edited(query(Target::Service(u32::MAX))),
            restore_edited(query(Target::Node(1000))),
            restore_edited(|st| st.restarts = VecDeque::from([u32::MAX, 1])),
            restore_edited(|st| st.restarts = VecDeque::from([0; 6])),
        ] {
            assert!(matches!(r, Err(AgentError::Snapshot(_))), "{:?}", r.err());
        }
        // in range, it restores and steps
        let mut e = restore_edited(|st| {
            st.pending.push((QueryKind::Metrics, Target::Service(0)));
            st.restarts = VecDeque::from([1, 0, 1]);
        })
        .unwrap();
        let s = e.step(Action::NoOp);
        assert_eq!(s.observation.query_results.len(), 1);
    }
}
