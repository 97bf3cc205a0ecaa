//! Fault scenarios: a base scenario (a built-in topology or an inline one), overrides, a fault
//! schedule, agent and remediation settings. Files are TOML that users copy and edit; the
//! built-in ones are embedded and listed by [`builtin_names`].
//!
//! ```toml
//! name = "cpu-hog"
//! base = "online-boutique"        # a sim_core built-in topology, or a [base] table (a full scenario)
//! duration = "300s"               # overrides of the base (all optional)
//! rate_multiplier = 1.5
//! [[edges]]                       # edge overrides (created from the defaults if the base has none)
//! from = "frontend"
//! to = "cartservice"
//! timeout = "500ms"
//! retry = { attempts = 3, backoff = "10ms" }
//! [[faults]]
//! start = "60s"
//! selector = { service = "cartservice" }
//! chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }
//! [agent]
//! decision_interval = "10s"
//! [remediation]
//! windows = 10
//! require_fault_cleared = false   # true: the faults must also be over (MicroRemed's verdict)
//! ```

use crate::error::FaultError;
use crate::fault::{FaultKind, FaultSpec, MICROREMED_FAULTS};
use serde::{Deserialize, Serialize};
use sim_core::dist::DurationDist;
use sim_core::scenario::{
    ArrivalSpec, AutoscalerSpec, EdgeSpec, LoadBalancing, RateSpec, Resources, RetrySpec, Scenario,
    SloSpec, WorkloadSpec,
};
use sim_core::time::SimDuration;
use std::path::Path;

/// A fault scenario: the base scenario with its overrides applied, and the faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultScenario {
    /// Name (the built-in name, or the file's `name`, or its file stem).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Topology, workload, SLOs and duration (overrides applied).
    pub base: Scenario,
    /// The fault schedule (ids unique).
    pub faults: Vec<FaultSpec>,
    /// Settings for agents acting in the episode.
    pub agent: AgentSettings,
    /// How remediation is judged.
    pub remediation: RemediationSpec,
    /// The DIME task this scenario covers, if any (e.g. `"retry_storm"`).
    pub dime_task: Option<String>,
}

/// Settings for agents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Simulated time between two agent decisions. Default 10 s.
    pub decision_interval: SimDuration,
    /// Most agent steps per episode. Default 30.
    pub max_steps: u32,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            decision_interval: SimDuration::from_secs(10),
            max_steps: 30,
        }
    }
}

/// How remediation is judged ([`crate::remediation_verdict`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationSpec {
    /// W: consecutive scrape windows in which the SLOs must hold. Default 10.
    pub windows: u32,
    /// Served throughput must be at least this share of the healthy run's (less two Poisson
    /// standard deviations of the healthy count: see [`crate::remediation_verdict`]). Default
    /// 0.95.
    pub throughput_ratio: f64,
    /// Also require every injected fault to be over before the judged windows begin: ended on
    /// schedule, rolled back, or its target pods replaced (see
    /// [`crate::InjectedFault::end`]). MicroRemed judges a remediation by whether the system is
    /// back to its normal operational state, so a CPU-stressed pod that no longer breaks an SLO
    /// because traffic was moved off it, or a leaking pod whose requests are retried elsewhere,
    /// is not remediated. Default false (SLOs and throughput only: a retry storm is over when
    /// the storm is, whatever triggered it); true in the MicroRemed scenarios.
    pub require_fault_cleared: bool,
}

impl Default for RemediationSpec {
    fn default() -> Self {
        RemediationSpec {
            windows: 10,
            throughput_ratio: 0.95,
            require_fault_cleared: false,
        }
    }
}

/// Overrides of one service of the base.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOverride {
    /// The service.
    pub name: String,
    /// Replicas.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Workers per pod.
    #[serde(default)]
    pub workers: Option<u32>,
    /// Queue capacity per pod.
    #[serde(default)]
    pub queue_capacity: Option<u32>,
    /// Whether pods have a volume.
    #[serde(default)]
    pub volume: Option<bool>,
    /// Requests and limits.
    #[serde(default)]
    pub resources: Option<Resources>,
    /// An autoscaler.
    #[serde(default)]
    pub autoscaler: Option<AutoscalerSpec>,
    /// Warm-up CPU factor after start.
    #[serde(default)]
    pub warmup_factor: Option<f64>,
    /// Warm-up length.
    #[serde(default)]
    pub warmup: Option<SimDuration>,
    /// Multiplies the CPU demand of every operation of the service.
    #[serde(default)]
    pub cpu_scale: Option<f64>,
}

/// Overrides of a caller -> callee edge (created from the defaults if the base lists none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeOverride {
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// Per-attempt timeout.
    #[serde(default)]
    pub timeout: Option<SimDuration>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Connection pool size per caller pod.
    #[serde(default)]
    pub pool_size: Option<u32>,
    /// Load balancing.
    #[serde(default)]
    pub load_balancing: Option<LoadBalancing>,
    /// Network latency.
    #[serde(default)]
    pub latency: Option<DurationDist>,
}

/// Overrides of every workload's client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientOverride {
    /// Per-attempt timeout.
    #[serde(default)]
    pub timeout: Option<SimDuration>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

/// The file format (see the module docs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    base: toml::Value,
    #[serde(default)]
    duration: Option<SimDuration>,
    #[serde(default)]
    scrape_interval: Option<SimDuration>,
    #[serde(default)]
    trace_sample_rate: Option<f64>,
    #[serde(default)]
    rate_multiplier: Option<f64>,
    #[serde(default)]
    workload: Option<Vec<WorkloadSpec>>,
    #[serde(default)]
    client: Option<ClientOverride>,
    #[serde(default)]
    services: Vec<ServiceOverride>,
    #[serde(default)]
    edges: Vec<EdgeOverride>,
    #[serde(default)]
    slos: Option<Vec<SloSpec>>,
    #[serde(default)]
    faults: Vec<FaultSpec>,
    #[serde(default)]
    agent: AgentSettings,
    #[serde(default)]
    remediation: RemediationSpec,
    #[serde(default)]
    dime_task: Option<String>,
}

/// (name, TOML text) of the built-in scenarios shipped as files in `sim-faults/scenarios/`.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("retry-storm", include_str!("../scenarios/retry-storm.toml")),
    (
        "dime-read-logs",
        include_str!("../scenarios/dime-read-logs.toml"),
    ),
    (
        "dime-node-failure",
        include_str!("../scenarios/dime-node-failure.toml"),
    ),
    (
        "dime-traffic-spike",
        include_str!("../scenarios/dime-traffic-spike.toml"),
    ),
    (
        "dime-cascading-failure",
        include_str!("../scenarios/dime-cascading-failure.toml"),
    ),
    (
        "dime-stochastic-load",
        include_str!("../scenarios/dime-stochastic-load.toml"),
    ),
    (
        "dime-flash-crowd",
        include_str!("../scenarios/dime-flash-crowd.toml"),
    ),
    (
        "dime-thundering-herd",
        include_str!("../scenarios/dime-thundering-herd.toml"),
    ),
    (
        "dime-retry-storm",
        include_str!("../scenarios/dime-retry-storm.toml"),
    ),
    (
        "dime-memory-leak",
        include_str!("../scenarios/dime-memory-leak.toml"),
    ),
    (
        "dime-split-brain-io",
        include_str!("../scenarios/dime-split-brain-io.toml"),
    ),
    (
        "dime-black-swan-zone",
        include_str!("../scenarios/dime-black-swan-zone.toml"),
    ),
    (
        "dime-hot-shard",
        include_str!("../scenarios/dime-hot-shard.toml"),
    ),
    (
        "dime-zombie-node",
        include_str!("../scenarios/dime-zombie-node.toml"),
    ),
    (
        "dime-connection-pool-deadlock",
        include_str!("../scenarios/dime-connection-pool-deadlock.toml"),
    ),
    (
        "dime-autoscaler-flapping",
        include_str!("../scenarios/dime-autoscaler-flapping.toml"),
    ),
];

/// The systems MicroRemed runs on.
pub const MICROREMED_SYSTEMS: [&str; 3] = ["online-boutique", "train-ticket", "simple-micro"];

/// MicroRemed's case suites: (name, case list, one fault type per line).
pub const MICROREMED_SUITES: &[(&str, &str)] = &[
    (
        "microremed-easy",
        include_str!("../scenarios/microremed/easy.txt"),
    ),
    (
        "microremed-medium",
        include_str!("../scenarios/microremed/medium.txt"),
    ),
    (
        "microremed-hard",
        include_str!("../scenarios/microremed/hard.txt"),
    ),
];

/// Names of every built-in scenario: `retry-storm`, the DIME tasks (`dime-*`) and the MicroRemed
/// scenarios `microremed-<system>-<fault>`. Each loads with [`FaultScenario::builtin`].
pub fn builtin_names() -> Vec<&'static str> {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            let mut v: Vec<&'static str> = BUILTIN_FILES.iter().map(|(n, _)| *n).collect();
            for sys in MICROREMED_SYSTEMS {
                for f in MICROREMED_FAULTS {
                    // simple-micro has no disk volume (MicroRemed's disk-io targets a MySQL data
                    // directory, which simple-micro does not have): that case is not meaningful.
                    if sys == "simple-micro" && f == "disk-io" {
                        continue;
                    }
                    v.push(Box::leak(format!("microremed-{sys}-{f}").into_boxed_str()));
                }
            }
            v
        })
        .clone()
}

/// Names of MicroRemed's case suites (`microremed-easy`, `-medium`, `-hard`); see [`suite`].
pub fn suite_names() -> Vec<&'static str> {
    MICROREMED_SUITES.iter().map(|(n, _)| *n).collect()
}

/// The cases of a MicroRemed suite on one system: one scenario per line of the case list, named
/// `<suite>-<system>-<case index>`. Each case's target service is drawn from `seed` and the case
/// index, among the services where its fault is meaningful.
pub fn suite(name: &str, system: &str, seed: u64) -> Result<Vec<FaultScenario>, FaultError> {
    let (_, list) = MICROREMED_SUITES
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| FaultError::UnknownScenario {
            name: name.to_string(),
            known: suite_names().join(", "),
        })?;
    let mut out = Vec::new();
    for (i, line) in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let mut sc = FaultScenario::microremed(system, line)?;
        sc.name = format!("{name}-{system}-{i}");
        let cands = crate::episode::meaningful_services(&sc.base, &sc.faults[0].chaos);
        if cands.is_empty() {
            return Err(FaultError::invalid(
                &sc.name,
                "faults[0].selector",
                "no service where this fault is meaningful",
            ));
        }
        let mut rng = sim_core::rng::stream(
            seed,
            sim_core::rng::StreamKind::External,
            0x5017_0000 + i as u64,
        );
        let k = sim_core::rng::below(&mut rng, cands.len() as u32) as usize;
        sc.faults[0].selector.service = Some(cands[k].clone());
        out.push(sc);
    }
    Ok(out)
}

/// Services called by the operations of `service`, in first-call order.
pub fn downstream_of(base: &Scenario, service: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(s) = base.services.iter().find(|s| s.name == service) {
        for o in &s.operations {
            for st in &o.stages {
                for c in &st.calls {
                    if !out.contains(&c.service) {
                        out.push(c.service.clone());
                    }
                }
            }
        }
    }
    out
}

fn scale_rate(r: &mut RateSpec, m: f64) {
    match r {
        RateSpec::Constant { rps } => *rps *= m,
        RateSpec::Step { before, after, .. } => {
            *before *= m;
            *after *= m
        }
        RateSpec::Ramp { from, to, .. } => {
            *from *= m;
            *to *= m
        }
        RateSpec::Spike { base, peak, .. } => {
            *base *= m;
            *peak *= m
        }
        RateSpec::Diurnal { mean, .. } => *mean *= m,
        RateSpec::Piecewise { points } => points.iter_mut().for_each(|p| p.1 *= m),
    }
}

impl FaultScenario {
    /// Parses and validates TOML text (the origin in errors is `<string>`).
    pub fn from_toml_str(text: &str) -> Result<FaultScenario, FaultError> {
        Self::parse(text, "<string>", None)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<FaultScenario, FaultError> {
        let text = std::fs::read_to_string(path).map_err(|source| FaultError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string());
        Self::parse(&text, &path.display().to_string(), stem)
    }

    /// A built-in scenario by name (see [`builtin_names`]).
    pub fn builtin(name: &str) -> Result<FaultScenario, FaultError> {
        if let Some((n, text)) = BUILTIN_FILES.iter().find(|(n, _)| *n == name) {
            return Self::parse(text, &format!("builtin:{n}"), Some(n.to_string()));
        }
        if let Some(rest) = name.strip_prefix("microremed-") {
            for sys in MICROREMED_SYSTEMS {
                if let Some(f) = rest.strip_prefix(sys).and_then(|r| r.strip_prefix('-'))
                    && MICROREMED_FAULTS.contains(&f)
                {
                    return Self::microremed(sys, f);
                }
            }
        }
        let mut known: Vec<&str> = builtin_names().into_iter().take(4).collect();
        known.push("... (see builtin_names())");
        Err(FaultError::UnknownScenario {
            name: name.to_string(),
            known: known.join(", "),
        })
    }

    /// A built-in name, else a file path.
    pub fn load(name_or_path: &str) -> Result<FaultScenario, FaultError> {
        if builtin_names().contains(&name_or_path) {
            return Self::builtin(name_or_path);
        }
        let p = Path::new(name_or_path);
        if p.is_file() {
            return Self::from_file(p);
        }
        Err(FaultError::UnknownScenario {
            name: name_or_path.to_string(),
            known: builtin_names()
                .into_iter()
                .take(6)
                .collect::<Vec<_>>()
                .join(", ")
                + ", ...",
        })
    }

    /// The MicroRemed scenario for one system and fault type: MicroRemed's parameters, mode
    /// `one`, the target service drawn from the episode seed, the fault injected at 60 s and left
    /// in place (pod-fail: 1200 s) for the agent to remediate; a 600 s episode.
    pub fn microremed(system: &str, fault_type: &str) -> Result<FaultScenario, FaultError> {
        let origin = format!("builtin:microremed-{system}-{fault_type}");
        let base = sim_core::topologies::load(system).map_err(|source| FaultError::Scenario {
            origin: origin.clone(),
            source,
        })?;
        let spec = FaultSpec::microremed(fault_type, None, SimDuration::from_secs(60), None)
            .ok_or_else(|| {
                FaultError::invalid(
                    &origin,
                    "fault",
                    format!("unknown MicroRemed fault type {fault_type:?}"),
                )
            })?;
        let mut base = base;
        base.duration = SimDuration::from_secs(600);
        let mut sc = FaultScenario {
            name: format!("microremed-{system}-{fault_type}"),
            description: format!(
                "MicroRemed {fault_type} on {system} with MicroRemed's chaos parameters; target drawn from the seed"
            ),
            base,
            faults: vec![spec],
            agent: AgentSettings::default(),
            // MicroRemed's verdict: the system back to its normal operational state
            remediation: RemediationSpec {
                require_fault_cleared: true,
                ..RemediationSpec::default()
            },
            dime_task: None,
        };
        ensure_slos(&mut sc.base);
        sc.validate(&origin)?;
        Ok(sc)
    }

    fn parse(text: &str, origin: &str, stem: Option<String>) -> Result<FaultScenario, FaultError> {
        let f: FileFormat = toml::from_str(text).map_err(|e| FaultError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut base: Scenario = match &f.base {
            toml::Value::String(name) => {
                sim_core::topologies::load(name).map_err(|source| FaultError::Scenario {
                    origin: origin.to_string(),
                    source,
                })?
            }
            v @ toml::Value::Table(_) => {
                v.clone()
                    .try_into::<Scenario>()
                    .map_err(|e| FaultError::Parse {
                        origin: origin.to_string(),
                        message: format!("in [base]: {e}"),
                    })?
            }
            _ => {
                return Err(FaultError::invalid(
                    origin,
                    "base",
                    "must be a built-in topology name or a [base] table (a sim-core scenario)",
                ));
            }
        };
        let inv = |field: String, reason: String| FaultError::invalid(origin, field, reason);
        if let Some(d) = f.duration {
            base.duration = d;
        }
        if let Some(s) = f.scrape_interval {
            base.scrape_interval = s;
        }
        if let Some(r) = f.trace_sample_rate {
            base.telemetry.trace_sample_rate = r;
        }
        if let Some(w) = f.workload {
            base.workload = w;
        }
        if let Some(m) = f.rate_multiplier {
            if !(m.is_finite() && m > 0.0 && m <= 1000.0) {
                return Err(inv("rate_multiplier".into(), "must be in (0, 1000]".into()));
            }
            for w in &mut base.workload {
                match &mut w.arrivals {
                    ArrivalSpec::Open { rate } => scale_rate(rate, m),
                    ArrivalSpec::Closed { users, .. } => {
                        *users = ((*users as f64) * m).round() as u32
                    }
                }
            }
        }
        if let Some(c) = &f.client {
            for w in &mut base.workload {
                if let Some(t) = c.timeout {
                    w.client.timeout = t;
                }
                if let Some(r) = &c.retry {
                    w.client.retry = r.clone();
                }
            }
        }
        for (i, o) in f.services.iter().enumerate() {
            let Some(s) = base.services.iter_mut().find(|s| s.name == o.name) else {
                return Err(inv(
                    format!("services[{i}].name"),
                    format!("unknown service {:?}", o.name),
                ));
            };
            if let Some(x) = o.replicas {
                s.replicas = x;
            }
            if let Some(x) = o.workers {
                s.workers = x;
            }
            if let Some(x) = o.queue_capacity {
                s.queue_capacity = x;
            }
            if let Some(x) = o.volume {
                s.volume = Some(x);
            }
            if let Some(x) = o.resources {
                s.resources = x;
            }
            if let Some(x) = &o.autoscaler {
                s.autoscaler = Some(x.clone());
            }
            if let Some(x) = o.warmup_factor {
                s.warmup_factor = x;
            }
            if let Some(x) = o.warmup {
                s.warmup = x;
            }
            if let Some(k) = o.cpu_scale {
                if !(k.is_finite() && k > 0.0 && k <= 1000.0) {
                    return Err(inv(
                        format!("services[{i}].cpu_scale"),
                        "must be in (0, 1000]".into(),
                    ));
                }
                for op in &mut s.operations {
                    op.cpu = scale_dist(&op.cpu, k);
                }
            }
        }
        for (i, e) in f.edges.iter().enumerate() {
            let Some(callee) = base
                .services
                .iter()
                .find(|s| s.name == e.to)
                .map(|s| s.kind)
            else {
                return Err(inv(
                    format!("edges[{i}].to"),
                    format!("unknown service {:?}", e.to),
                ));
            };
            if !base.services.iter().any(|s| s.name == e.from) {
                return Err(inv(
                    format!("edges[{i}].from"),
                    format!("unknown service {:?}", e.from),
                ));
            }
            let idx = match base
                .edges
                .iter()
                .position(|x| x.from == e.from && x.to == e.to)
            {
                Some(k) => k,
                None => {
                    base.edges
                        .push(EdgeSpec::default_for(&e.from, &e.to, callee));
                    base.edges.len() - 1
                }
            };
            let x = &mut base.edges[idx];
            if let Some(t) = e.timeout {
                x.timeout = t;
            }
            if let Some(r) = &e.retry {
                x.retry = r.clone();
            }
            if let Some(p) = e.pool_size {
                x.pool_size = Some(p);
            }
            if let Some(l) = e.load_balancing {
                x.load_balancing = l;
            }
            if let Some(l) = &e.latency {
                x.latency = l.clone();
            }
        }
        if let Some(s) = f.slos {
            base.slos = s;
        }
        ensure_slos(&mut base);
        let name = f.name.or(stem).unwrap_or_else(|| base.name.clone());
        let mut sc = FaultScenario {
            name,
            description: f.description,
            base,
            faults: f.faults,
            agent: f.agent,
            remediation: f.remediation,
            dime_task: f.dime_task,
        };
        for (i, fl) in sc.faults.iter_mut().enumerate() {
            if fl.id.is_empty() {
                fl.id = format!("f{i}");
            }
        }
        sc.validate(origin)?;
        Ok(sc)
    }

    /// Checks the base, the faults and the settings. `origin` names the file in errors.
    pub fn validate(&self, origin: &str) -> Result<(), FaultError> {
        self.base
            .validate()
            .map_err(|source| FaultError::Scenario {
                origin: origin.to_string(),
                source,
            })?;
        for (i, f) in self.faults.iter().enumerate() {
            if f.id.is_empty() {
                return Err(FaultError::invalid(
                    origin,
                    format!("faults[{i}].id"),
                    "must not be empty",
                ));
            }
            if self.faults[..i].iter().any(|g| g.id == f.id) {
                return Err(FaultError::invalid(
                    origin,
                    format!("faults[{i}].id"),
                    format!("duplicate id {:?}", f.id),
                ));
            }
            f.validate(&self.base, origin, &format!("faults[{i}]"))?;
            if matches!(f.chaos, FaultKind::TrafficSurge { .. })
                && self
                    .base
                    .workload
                    .iter()
                    .all(|w| !matches!(w.arrivals, ArrivalSpec::Open { .. }))
            {
                return Err(FaultError::invalid(
                    origin,
                    format!("faults[{i}].chaos"),
                    "TrafficSurge needs an open-loop workload",
                ));
            }
        }
        if self.agent.decision_interval.0 == 0 {
            return Err(FaultError::invalid(
                origin,
                "agent.decision_interval",
                "must be positive",
            ));
        }
        // an agent observes the scrapes of its interval: a shorter interval would see none
        if self.agent.decision_interval < self.base.scrape_interval {
            return Err(FaultError::invalid(
                origin,
                "agent.decision_interval",
                format!(
                    "{} is shorter than the scrape interval ({}): some steps would observe no scrape",
                    self.agent.decision_interval, self.base.scrape_interval
                ),
            ));
        }
        if self.remediation.windows == 0 || self.remediation.windows > 100_000 {
            return Err(FaultError::invalid(
                origin,
                "remediation.windows",
                "must be in 1..=100000",
            ));
        }
        let r = self.remediation.throughput_ratio;
        if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
            return Err(FaultError::invalid(
                origin,
                "remediation.throughput_ratio",
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }

    /// Serialises to TOML in the file format (the base inline), so that
    /// [`FaultScenario::from_toml_str`] reads it back.
    pub fn to_toml_string(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            name: &'a str,
            description: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            dime_task: &'a Option<String>,
            agent: &'a AgentSettings,
            remediation: &'a RemediationSpec,
            faults: &'a [FaultSpec],
            base: &'a Scenario,
        }
        toml::to_string_pretty(&Out {
            name: &self.name,
            description: &self.description,
            dime_task: &self.dime_task,
            agent: &self.agent,
            remediation: &self.remediation,
            faults: &self.faults,
            base: &self.base,
        })
        .unwrap_or_default()
    }
}

fn scale_dist(d: &DurationDist, k: f64) -> DurationDist {
    let s = |x: SimDuration| SimDuration((x.0 as f64 * k).round() as u64);
    match d {
        DurationDist::Constant { value } => DurationDist::Constant { value: s(*value) },
        DurationDist::Exponential { mean } => DurationDist::Exponential { mean: s(*mean) },
        DurationDist::Lognormal { median, sigma } => DurationDist::Lognormal {
            median: s(*median),
            sigma: *sigma,
        },
        DurationDist::Uniform { low, high } => DurationDist::Uniform {
            low: s(*low),
            high: s(*high),
        },
        DurationDist::Empirical { values } => DurationDist::Empirical {
            values: values.iter().map(|v| s(*v)).collect(),
        },
    }
}

/// Gives every entry service an SLO when the scenario declares none: p99 under 1 s and errors
/// under 1% per scrape window (a typical web SLO), so that first-symptom times and remediation
/// verdicts are always defined.
fn ensure_slos(base: &mut Scenario) {
    if !base.slos.is_empty() {
        return;
    }
    let mut entries: Vec<String> = Vec::new();
    for w in &base.workload {
        if !entries.contains(&w.entry) {
            entries.push(w.entry.clone());
        }
    }
    for e in entries {
        base.slos.push(SloSpec {
            service: e,
            latency_p99: Some(SimDuration::from_secs(1)),
            error_rate: Some(0.01),
        });
    }
}
