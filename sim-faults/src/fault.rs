//! The fault catalogue: typed, serde, validated, mirroring Chaos Mesh's kinds and parameters.
//!
//! A fault in a scenario file is a `[[faults]]` table with the common fields (`id`, `start`,
//! `duration`, `mode`, `value`, `selector`) and a `chaos` table tagged by `kind`, whose fields
//! carry Chaos Mesh's names:
//!
//! ```toml
//! [[faults]]
//! id = "cpu-hog"
//! start = "60s"
//! duration = "120s"
//! mode = "one"                          # one | all | fixed | fixed-percent | random-max-percent
//! selector = { service = "cartservice" }
//! chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }
//! ```
//!
//! Every kind acts only through `sim-core`'s control and fault surfaces; how each parameter
//! maps onto them (and what is approximated) is documented on the kind. MicroRemed's
//! parameter values are the defaults: CPU 10 workers at 100% load; memory 1 worker x 1280 MiB;
//! IO latency 5 s on 50% of operations; network delay 1000 ms; loss 50%; pod failure 1200 s;
//! config error: requests cpu 1m / memory 100Mi, limits cpu 2m / memory 200Mi.

use crate::error::FaultError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sim_core::quantity::{Cpu, Memory};
use sim_core::scenario::{Resources, Scenario};
use sim_core::time::SimDuration;
use std::fmt;

/// One fault of a scenario: what, where, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Unique id within the scenario (default `f<index>`).
    #[serde(default)]
    pub id: String,
    /// When the fault starts, from the start of the episode.
    #[serde(default)]
    pub start: SimDuration,
    /// How long it lasts (None: to the end of the episode, or until an agent repairs it).
    #[serde(default)]
    pub duration: Option<SimDuration>,
    /// How many of the selected pods are hit (Chaos Mesh's `mode`). Default `one`.
    #[serde(default)]
    pub mode: Mode,
    /// The number or percentage for `fixed`, `fixed-percent` and `random-max-percent` (Chaos Mesh's `value`).
    #[serde(default)]
    pub value: Option<String>,
    /// Which service, pods, node or zone.
    #[serde(default)]
    pub selector: Selector,
    /// The kind and its parameters.
    pub chaos: FaultKind,
}

/// Chaos Mesh's pod selection modes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One pod drawn at random.
    #[default]
    One,
    /// Every pod of the selection.
    All,
    /// `value` pods drawn at random.
    Fixed,
    /// `value` percent of the pods (rounded down, at least one when the percentage is positive).
    FixedPercent,
    /// A random percentage in `[0, value]` of the pods (rounded down, at least one).
    RandomMaxPercent,
}

/// Where a fault lands. Services are resolved when the episode is built (drawn from the seed
/// when several are possible); pods and nodes when the fault starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Selector {
    /// The target service.
    pub service: Option<String>,
    /// Candidate services: one is drawn from the seed (when `service` is not set). Empty with
    /// no `service`: drawn among the services where the fault is meaningful (services that
    /// receive traffic; for IO faults, those with a volume and disk operations).
    pub services: Vec<String>,
    /// Explicit pod names (override `mode`); pods that do not exist when the fault starts are skipped.
    pub pods: Vec<String>,
    /// A node by name (node faults; for pod faults: only pods on this node).
    pub node: Option<String>,
    /// A zone (zone failures).
    pub zone: Option<String>,
}

/// The fault kinds. The tag is `kind`; the names are Chaos Mesh's CRD kinds where one exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum FaultKind {
    /// Chaos Mesh StressChaos: stress-ng workers inside the pod's cgroup.
    ///
    /// CPU: `workers x load%` becomes `workers * load * 10` millicores of extra demand inside the
    /// pod ([`sim_core::Simulation::set_pod_cpu_stress`]); it competes with the pod's workers for
    /// its CPU limit and for the node. Memory: `workers x size` extra resident bytes
    /// ([`sim_core::Simulation::set_pod_memory_pressure`]); above the limit the pod is OOM-killed,
    /// and since the stressor restarts with the container it crash-loops until the fault ends.
    StressChaos {
        /// The stressors.
        stressors: Stressors,
    },
    /// Chaos Mesh IOChaos on the pod's volume ([`sim_core::Simulation::set_pod_io_fault`]). Only
    /// operations that do disk IO are affected.
    #[serde(rename = "IOChaos")]
    IoChaos {
        /// `latency` or `fault`.
        action: IoAction,
        /// Added latency per affected operation (action `latency`). Default 5 s (MicroRemed).
        #[serde(default)]
        delay: Option<SimDuration>,
        /// Error number returned (action `fault`). Default 5 (EIO). Recorded in labels.
        #[serde(default)]
        errno: Option<u32>,
        /// Percentage of operations affected. Default 50 (MicroRemed).
        #[serde(default)]
        percent: Option<f64>,
        /// Volume path (recorded only: a pod has one volume in the model).
        #[serde(default)]
        volume_path: Option<String>,
    },
    /// Chaos Mesh NetworkChaos.
    ///
    /// Without `target`, the effect is put on the selected pods ([`sim_core::Simulation::set_pod_network`]),
    /// which affects calls they make and calls they receive (`direction` cannot be told apart
    /// there and is recorded only). With a `target` service, it is put on the call edges between
    /// the two services ([`sim_core::Simulation::set_edge_network`]): `to` = calls from the
    /// selected service to the target, `from` = calls from the target to the selected service,
    /// `both` = both; an edge effect hits all pods of the caller service.
    /// `correlation` is kept in the labels but the engine's loss and jitter are i.i.d. per
    /// message. `bandwidth` is approximated as a per-message transmission delay
    /// `message_bytes / rate` (no link queueing).
    NetworkChaos {
        /// `delay`, `loss`, `partition` or `bandwidth`.
        action: NetAction,
        /// Delay parameters (action `delay`). Default latency 1000 ms (MicroRemed).
        #[serde(default)]
        delay: Option<NetDelay>,
        /// Loss parameters (action `loss`). Default 50% (MicroRemed).
        #[serde(default)]
        loss: Option<NetLoss>,
        /// Bandwidth parameters (action `bandwidth`).
        #[serde(default)]
        bandwidth: Option<Bandwidth>,
        /// `to`, `from` or `both`. Default `to`.
        #[serde(default)]
        direction: Direction,
        /// The peer set (a service selector). None: every peer.
        #[serde(default)]
        target: Option<Selector>,
    },
    /// Chaos Mesh PodChaos.
    ///
    /// `pod-kill` deletes the pods (the deployment replaces them); `container-kill` restarts their
    /// container. `pod-failure` (Chaos Mesh swaps the image for a pause container) makes the pods
    /// unresponsive for the fault's duration (default 1200 s): calls to them are black-holed
    /// (a partition of the pods, callers time out) until the readiness probe notices after
    /// `detection` (default 10 s), then they are taken out of the endpoints (weight 0) and the
    /// other replicas serve; a service with a single replica stays failed.
    PodChaos {
        /// `pod-failure`, `pod-kill` or `container-kill`.
        action: PodAction,
        /// Time until the readiness probe takes a failed pod out of the endpoints. Default 10 s.
        #[serde(default)]
        detection: Option<SimDuration>,
    },
    /// A bad configuration version rolled out to the deployment (added to the service's
    /// `config_versions` when the episode is built, rolled out at `start`). A rollback fixes it.
    /// With a `duration`, the injector itself rolls back at the end (if the version is still live).
    ConfigError {
        /// `bad-resources`, `wrong-address` or `crash-loop`.
        action: ConfigAction,
        /// Resources of the bad version (action `bad-resources`). Default MicroRemed's:
        /// requests cpu 1m / memory 100Mi, limits cpu 2m / memory 200Mi.
        #[serde(default)]
        resources: Option<Resources>,
        /// The downstream service whose address is wrong (action `wrong-address`). Default: the
        /// service's first downstream dependency.
        #[serde(default)]
        dependency: Option<String>,
    },
    /// A node fails ([`sim_core::Simulation::kill_node`]): its pods are lost and rescheduled after
    /// the eviction timeout; it comes back at the end. Node: `selector.node`, else the node of a
    /// pod of the selected service.
    NodeFailure {},
    /// Every node of a zone fails at once. Zone: `selector.zone`, else the zone of the node of a
    /// pod of the selected service.
    ZoneFailure {},
    /// A zombie node: it stays Ready and its pods stay in the endpoints, but nothing it sends or
    /// receives gets through (a partition of the pods on it, clients included). Callers time
    /// out. Restarting the node ([`sim_core::Simulation::restart_node`]) ends it, as in DIME;
    /// restarting its pods does not.
    ZombieNode {},
    /// A memory leak in the selected pods ([`sim_core::Simulation::set_pod_memory_leak`]):
    /// memory grows by `rate` per second until the OOM kill, and starts over after each restart.
    MemoryLeak {
        /// Bytes per second (e.g. `"2Mi"`).
        rate: Memory,
    },
    /// The caller's connection pool towards `to` is shrunk to `size` (a config change):
    /// calls queue for a connection ([`sim_core::Simulation::set_pool_size`]).
    ConnectionPool {
        /// The downstream service.
        to: String,
        /// Connections per caller pod.
        size: u32,
    },
    /// Load skew (a hot shard): the selected pods get `weight` times the normal load-balancing
    /// weight ([`sim_core::Simulation::set_pod_weight`]).
    LoadSkew {
        /// Weight multiplier (2..=100).
        weight: u32,
    },
    /// A traffic surge: every open workload's rate is multiplied by `multiplier` during the
    /// fault (ramping up and down over `ramp`). Applied to the arrival process when the episode
    /// is built; the counterfactual run has the normal traffic.
    TrafficSurge {
        /// Rate multiplier (> 0).
        multiplier: f64,
        /// Ramp time at both ends. Default 0 (a step).
        #[serde(default)]
        ramp: SimDuration,
    },
}

/// StressChaos stressors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stressors {
    /// CPU stressor.
    #[serde(default)]
    pub cpu: Option<CpuStressor>,
    /// Memory stressor.
    #[serde(default)]
    pub memory: Option<MemoryStressor>,
}

/// CPU stressor: `workers` threads each loading a core to `load` percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuStressor {
    /// Worker threads. Default 10.
    #[serde(default = "ten")]
    pub workers: u32,
    /// Load per worker in percent (0..=100). Default 100.
    #[serde(default = "hundred")]
    pub load: u32,
}

/// Memory stressor: `workers` threads each holding `size`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryStressor {
    /// Worker threads. Default 1.
    #[serde(default = "one")]
    pub workers: u32,
    /// Size per worker: bytes (`"1280MiB"`, `"256MB"`: stress-ng units, powers of 1024) or a
    /// percentage of the pod's memory limit (`"50%"`). Default 1280 MiB.
    #[serde(default = "default_mem_size")]
    pub size: MemSize,
}

fn ten() -> u32 {
    10
}
fn hundred() -> u32 {
    100
}
fn one() -> u32 {
    1
}
fn default_mem_size() -> MemSize {
    MemSize::Bytes(1280 << 20)
}

impl Default for CpuStressor {
    fn default() -> Self {
        CpuStressor {
            workers: 10,
            load: 100,
        }
    }
}

impl Default for MemoryStressor {
    fn default() -> Self {
        MemoryStressor {
            workers: 1,
            size: default_mem_size(),
        }
    }
}

/// A memory size: absolute bytes or a percentage of the pod's memory limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MemSize {
    /// Bytes.
    Bytes(u64),
    /// Percent of the memory limit.
    Percent(f64),
}

impl MemSize {
    /// Bytes for a pod with the given memory limit.
    pub fn bytes(self, limit: u64) -> u64 {
        match self {
            MemSize::Bytes(b) => b,
            MemSize::Percent(p) => (limit as f64 * p / 100.0) as u64,
        }
    }
}

impl std::str::FromStr for MemSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("invalid percentage {s:?}"))?;
            if !(v.is_finite() && v > 0.0 && v <= 1000.0) {
                return Err(format!("percentage {s:?} must be in (0, 1000]"));
            }
            return Ok(MemSize::Percent(v));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num.parse().map_err(|_| {
            format!("invalid memory size {s:?} (e.g. \"256MB\", \"1280MiB\", \"50%\")")
        })?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" | "ki" | "kib" => 1024.0,
            "m" | "mb" | "mi" | "mib" => 1024.0 * 1024.0,
            "g" | "gb" | "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => {
                return Err(format!(
                    "unknown unit in memory size {s:?} (use B, KB, MB, GB, KiB, MiB, GiB or %)"
                ));
            }
        };
        let b = v * mult;
        if !(b.is_finite() && (0.0..=1e15).contains(&b)) {
            return Err(format!("memory size {s:?} out of range"));
        }
        Ok(MemSize::Bytes(b as u64))
    }
}

impl fmt::Display for MemSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemSize::Bytes(b) => write!(f, "{b}B"),
            MemSize::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for MemSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// IOChaos actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoAction {
    /// Added latency.
    Latency,
    /// Failed operations.
    Fault,
}

/// NetworkChaos actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetAction {
    /// Added latency.
    Delay,
    /// Lost packets (messages).
    Loss,
    /// No traffic between the pods and the peer set.
    Partition,
    /// Limited bandwidth.
    Bandwidth,
}

/// NetworkChaos `delay` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetDelay {
    /// Added one-way latency. Default 1000 ms.
    #[serde(default = "default_latency")]
    pub latency: SimDuration,
    /// Jitter (uniform on top). Default 0.
    #[serde(default)]
    pub jitter: SimDuration,
    /// Correlation with the previous packet's delay, percent (recorded; approximated as 0).
    #[serde(default)]
    pub correlation: f64,
}

fn default_latency() -> SimDuration {
    SimDuration::from_millis(1000)
}

impl Default for NetDelay {
    fn default() -> Self {
        NetDelay {
            latency: default_latency(),
            jitter: SimDuration::ZERO,
            correlation: 0.0,
        }
    }
}

/// NetworkChaos `loss` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetLoss {
    /// Loss percentage. Default 50.
    #[serde(default = "fifty")]
    pub loss: f64,
    /// Correlation percent (recorded; approximated as 0: i.i.d. loss).
    #[serde(default)]
    pub correlation: f64,
}

fn fifty() -> f64 {
    50.0
}

impl Default for NetLoss {
    fn default() -> Self {
        NetLoss {
            loss: 50.0,
            correlation: 0.0,
        }
    }
}

/// NetworkChaos `bandwidth` parameters (tc tbf's names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    /// Rate, tc units: `bps`, `kbps`, `mbps`, `gbps` (bytes per second) or `bit`, `kbit`, `mbit`, `gbit`.
    pub rate: String,
    /// Queue limit in bytes (recorded only).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Bucket size in bytes (recorded only).
    #[serde(default)]
    pub buffer: Option<u64>,
    /// Assumed size of one message for the delay approximation. Default 16384 bytes.
    #[serde(default)]
    pub message_bytes: Option<u64>,
}

impl Bandwidth {
    /// The rate in bytes per second.
    pub fn bytes_per_s(&self) -> Result<f64, String> {
        let t = self.rate.trim().to_ascii_lowercase();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num
            .parse()
            .map_err(|_| format!("invalid rate {:?} (e.g. \"1mbps\")", self.rate))?;
        let m = match unit {
            "bps" => 1.0,
            "kbps" => 1e3,
            "mbps" => 1e6,
            "gbps" => 1e9,
            "bit" => 1.0 / 8.0,
            "kbit" => 1e3 / 8.0,
            "mbit" => 1e6 / 8.0,
            "gbit" => 1e9 / 8.0,
            _ => {
                return Err(format!(
                    "unknown unit in rate {:?} (bps, kbps, mbps, gbps, bit, kbit, mbit, gbit)",
                    self.rate
                ));
            }
        };
        let r = v * m;
        if !(r.is_finite() && r > 0.0 && r < 1e13) {
            return Err(format!("rate {:?} must be positive", self.rate));
        }
        Ok(r)
    }

    /// The per-message delay (ns) this bandwidth adds.
    pub fn message_delay(&self) -> Result<u64, String> {
        let r = self.bytes_per_s()?;
        Ok((self.message_bytes.unwrap_or(16384) as f64 / r * 1e9).min(3.6e12) as u64)
    }
}

/// NetworkChaos `direction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From the selected pods to the target.
    #[default]
    To,
    /// From the target to the selected pods.
    From,
    /// Both ways.
    Both,
}

/// PodChaos actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodAction {
    /// The pod stops responding for the duration.
    PodFailure,
    /// The pod is deleted (and replaced by its deployment).
    PodKill,
    /// The container is restarted.
    ContainerKill,
}

/// Kinds of bad configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigAction {
    /// Tiny CPU/memory requests and limits (MicroRemed's resource misconfiguration): pods are
    /// throttled to a crawl and OOM-killed.
    BadResources,
    /// A wrong downstream address: calls to the dependency are refused.
    WrongAddress,
    /// A bad setting that makes the process exit at start: the pods crash-loop.
    CrashLoop,
}

/// MicroRemed's resource misconfiguration.
pub fn microremed_bad_resources() -> Resources {
    Resources {
        cpu_request: Cpu(1),
        cpu_limit: Cpu(2),
        memory_request: Memory(100 << 20),
        memory_limit: Memory(200 << 20),
    }
}

impl FaultKind {
    /// The fault type label (MicroRemed's names where they exist): `cpu-stress`, `memory-stress`,
    /// `disk-io`, `network-delay`, `network-loss`, `network-partition`, `network-bandwidth`,
    /// `pod-fail`, `pod-kill`, `container-kill`, `pod-config-error`, `node-failure`,
    /// `zone-failure`, `zombie-node`, `memory-leak`, `connection-pool`, `load-skew`, `traffic-surge`.
    pub fn fault_type(&self) -> &'static str {
        match self {
            FaultKind::StressChaos { stressors } => {
                if stressors.cpu.is_some() {
                    "cpu-stress"
                } else {
                    "memory-stress"
                }
            }
            FaultKind::IoChaos { .. } => "disk-io",
            FaultKind::NetworkChaos { action, .. } => match action {
                NetAction::Delay => "network-delay",
                NetAction::Loss => "network-loss",
                NetAction::Partition => "network-partition",
                NetAction::Bandwidth => "network-bandwidth",
            },
            FaultKind::PodChaos { action, .. } => match action {
                PodAction::PodFailure => "pod-fail",
                PodAction::PodKill => "pod-kill",
                PodAction::ContainerKill => "container-kill",
            },
            FaultKind::ConfigError { .. } => "pod-config-error",
            FaultKind::NodeFailure {} => "node-failure",
            FaultKind::ZoneFailure {} => "zone-failure",
            FaultKind::ZombieNode {} => "zombie-node",
            FaultKind::MemoryLeak { .. } => "memory-leak",
            FaultKind::ConnectionPool { .. } => "connection-pool",
            FaultKind::LoadSkew { .. } => "load-skew",
            FaultKind::TrafficSurge { .. } => "traffic-surge",
        }
    }

    /// The kind name as written in files (`StressChaos`, `IOChaos`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            FaultKind::StressChaos { .. } => "StressChaos",
            FaultKind::IoChaos { .. } => "IOChaos",
            FaultKind::NetworkChaos { .. } => "NetworkChaos",
            FaultKind::PodChaos { .. } => "PodChaos",
            FaultKind::ConfigError { .. } => "ConfigError",
            FaultKind::NodeFailure {} => "NodeFailure",
            FaultKind::ZoneFailure {} => "ZoneFailure",
            FaultKind::ZombieNode {} => "ZombieNode",
            FaultKind::MemoryLeak { .. } => "MemoryLeak",
            FaultKind::ConnectionPool { .. } => "ConnectionPool",
            FaultKind::LoadSkew { .. } => "LoadSkew",
            FaultKind::TrafficSurge { .. } => "TrafficSurge",
        }
    }

    /// Whether the fault needs a target service.
    pub fn needs_service(&self) -> bool {
        !matches!(self, FaultKind::TrafficSurge { .. })
    }

    /// A fault built from a MicroRemed fault type name with MicroRemed's parameters, or None.
    pub fn microremed(fault_type: &str) -> Option<FaultKind> {
        Some(match fault_type {
            "cpu-stress" => FaultKind::StressChaos {
                stressors: Stressors {
                    cpu: Some(CpuStressor::default()),
                    memory: None,
                },
            },
            "memory-stress" => FaultKind::StressChaos {
                stressors: Stressors {
                    cpu: None,
                    memory: Some(MemoryStressor::default()),
                },
            },
            "disk-io" => FaultKind::IoChaos {
                action: IoAction::Latency,
                delay: Some(SimDuration::from_secs(5)),
                errno: None,
                percent: Some(50.0),
                volume_path: None,
            },
            "network-delay" => FaultKind::NetworkChaos {
                action: NetAction::Delay,
                delay: Some(NetDelay::default()),
                loss: None,
                bandwidth: None,
                direction: Direction::To,
                target: None,
            },
            "network-loss" => FaultKind::NetworkChaos {
                action: NetAction::Loss,
                delay: None,
                loss: Some(NetLoss::default()),
                bandwidth: None,
                direction: Direction::To,
                target: None,
            },
            "pod-fail" => FaultKind::PodChaos {
                action: PodAction::PodFailure,
                detection: None,
            },
            "pod-config-error" => FaultKind::ConfigError {
                action: ConfigAction::BadResources,
                resources: None,
                dependency: None,
            },
            _ => return None,
        })
    }
}

/// MicroRemed's seven fault types.
pub const MICROREMED_FAULTS: [&str; 7] = [
    "cpu-stress",
    "memory-stress",
    "disk-io",
    "network-delay",
    "network-loss",
    "pod-fail",
    "pod-config-error",
];

impl FaultSpec {
    /// A fault with MicroRemed's parameters for `fault_type`, on one pod of `service` (None: drawn
    /// from the seed), from `start` for `duration` (pod-fail: 1200 s when None).
    pub fn microremed(
        fault_type: &str,
        service: Option<&str>,
        start: SimDuration,
        duration: Option<SimDuration>,
    ) -> Option<FaultSpec> {
        let chaos = FaultKind::microremed(fault_type)?;
        let duration = match (&chaos, duration) {
            (FaultKind::PodChaos { .. }, None) => Some(SimDuration::from_secs(1200)),
            (_, d) => d,
        };
        Some(FaultSpec {
            id: fault_type.to_string(),
            start,
            duration,
            mode: Mode::One,
            value: None,
            selector: Selector {
                service: service.map(|s| s.to_string()),
                ..Selector::default()
            },
            chaos,
        })
    }

    /// Checks the fault against the base scenario. `field` is the path of this fault in the file.
    pub fn validate(&self, base: &Scenario, origin: &str, field: &str) -> Result<(), FaultError> {
        let bad = |f: &str, r: String| Err(FaultError::invalid(origin, format!("{field}.{f}"), r));
        if let Some(d) = self.duration
            && d.0 == 0
        {
            return bad("duration", "must be positive".into());
        }
        if self.start.0 > 365 * 24 * 3600 * 1_000_000_000 {
            return bad("start", "more than a year".into());
        }
        match self.mode {
            Mode::One | Mode::All => {}
            Mode::Fixed => match self.value.as_deref().map(|v| v.trim().parse::<u32>()) {
                Some(Ok(n)) if n > 0 && n <= 10_000 => {}
                _ => {
                    return bad(
                        "value",
                        "mode `fixed` needs a pod count in 1..=10000".into(),
                    );
                }
            },
            Mode::FixedPercent | Mode::RandomMaxPercent => {
                match self
                    .value
                    .as_deref()
                    .map(|v| v.trim().trim_end_matches('%').parse::<f64>())
                {
                    Some(Ok(p)) if p > 0.0 && p <= 100.0 => {}
                    _ => return bad("value", "percentage modes need a value in (0, 100]".into()),
                }
            }
        }
        let svc_known = |s: &str| base.services.iter().any(|x| x.name == s);
        if let Some(s) = &self.selector.service
            && !svc_known(s)
        {
            return bad("selector.service", format!("unknown service {s:?}"));
        }
        for (i, s) in self.selector.services.iter().enumerate() {
            if !svc_known(s) {
                return bad(
                    &format!("selector.services[{i}]"),
                    format!("unknown service {s:?}"),
                );
            }
        }
        if let Some(n) = &self.selector.node
            && !base.nodes.iter().any(|x| &x.name == n)
        {
            return bad("selector.node", format!("unknown node {n:?}"));
        }
        if let Some(z) = &self.selector.zone
            && !base.nodes.iter().any(|x| &x.zone == z)
        {
            return bad("selector.zone", format!("no node in zone {z:?}"));
        }
        let pct = |f: &str, v: f64| {
            if v.is_finite() && (0.0..=100.0).contains(&v) {
                Ok(())
            } else {
                Err(FaultError::invalid(
                    origin,
                    format!("{field}.chaos.{f}"),
                    format!("{v} is not a percentage in [0, 100]"),
                ))
            }
        };
        match &self.chaos {
            FaultKind::StressChaos { stressors } => {
                if stressors.cpu.is_none() && stressors.memory.is_none() {
                    return bad(
                        "chaos.stressors",
                        "needs a `cpu` or `memory` stressor".into(),
                    );
                }
                if let Some(c) = &stressors.cpu
                    && (c.workers == 0 || c.workers > 1024 || c.load > 100)
                {
                    return bad(
                        "chaos.stressors.cpu",
                        "workers must be in 1..=1024 and load in 0..=100".into(),
                    );
                }
                if let Some(m) = &stressors.memory
                    && (m.workers == 0 || m.workers > 1024)
                {
                    return bad(
                        "chaos.stressors.memory.workers",
                        "must be in 1..=1024".into(),
                    );
                }
            }
            FaultKind::IoChaos { percent, delay, .. } => {
                pct("percent", percent.unwrap_or(50.0))?;
                if let Some(d) = delay
                    && d.0 > 3600 * 1_000_000_000
                {
                    return bad("chaos.delay", "at most 1h".into());
                }
            }
            FaultKind::NetworkChaos {
                action,
                delay,
                loss,
                bandwidth,
                target,
                ..
            } => {
                if let Some(l) = loss {
                    pct("loss.loss", l.loss)?;
                    pct("loss.correlation", l.correlation)?;
                }
                if let Some(d) = delay {
                    pct("delay.correlation", d.correlation)?;
                    if d.latency.0 > 3600 * 1_000_000_000 || d.jitter.0 > 3600 * 1_000_000_000 {
                        return bad("chaos.delay", "latency and jitter at most 1h".into());
                    }
                }
                if *action == NetAction::Bandwidth {
                    match bandwidth {
                        None => {
                            return bad(
                                "chaos.bandwidth",
                                "action `bandwidth` needs a `bandwidth` table".into(),
                            );
                        }
                        Some(b) => {
                            if let Err(e) = b.message_delay() {
                                return bad("chaos.bandwidth.rate", e);
                            }
                        }
                    }
                }
                if let Some(t) = target {
                    if let Some(s) = &t.service
                        && !svc_known(s)
                    {
                        return bad("chaos.target.service", format!("unknown service {s:?}"));
                    }
                    for s in &t.services {
                        if !svc_known(s) {
                            return bad("chaos.target.services", format!("unknown service {s:?}"));
                        }
                    }
                }
            }
            FaultKind::PodChaos { detection, .. } => {
                if detection.is_some_and(|d| d.0 > sim_core::MAX_CONTROL_DURATION) {
                    return bad("chaos.detection", "more than a day".into());
                }
            }
            FaultKind::ConfigError {
                action, dependency, ..
            } => {
                if let Some(d) = dependency
                    && !svc_known(d)
                {
                    return bad("chaos.dependency", format!("unknown service {d:?}"));
                }
                if *action == ConfigAction::WrongAddress
                    && dependency.is_none()
                    && self.selector.service.is_some()
                {
                    let s = self.selector.service.as_deref().unwrap_or_default();
                    if crate::scenario::downstream_of(base, s).is_empty() {
                        return bad(
                            "chaos.dependency",
                            format!("service {s:?} calls no other service"),
                        );
                    }
                }
            }
            FaultKind::NodeFailure {} | FaultKind::ZombieNode {} => {}
            FaultKind::ZoneFailure {} => {}
            FaultKind::MemoryLeak { rate } => {
                if rate.0 == 0 || rate.0 > 1 << 40 {
                    return bad(
                        "chaos.rate",
                        "must be positive and at most 1Ti per second".into(),
                    );
                }
            }
            FaultKind::ConnectionPool { to, size } => {
                if !svc_known(to) {
                    return bad("chaos.to", format!("unknown service {to:?}"));
                }
                if *size == 0 || *size > 100_000 {
                    return bad("chaos.size", "must be in 1..=100000".into());
                }
            }
            FaultKind::LoadSkew { weight } => {
                if !(2..=100).contains(weight) {
                    return bad("chaos.weight", "must be in 2..=100".into());
                }
            }
            FaultKind::TrafficSurge {
                multiplier, ramp, ..
            } => {
                if !(multiplier.is_finite() && *multiplier > 0.0 && *multiplier <= 1000.0) {
                    return bad("chaos.multiplier", "must be in (0, 1000]".into());
                }
                if ramp.0 > sim_core::MAX_CONTROL_DURATION {
                    return bad("chaos.ramp", "more than a day".into());
                }
            }
        }
        Ok(())
    }
}
