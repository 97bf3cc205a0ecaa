//! # sim-core: the blastradius engine
//!
//! A deterministic, forkable, request-level simulator of microservice systems. It models
//! nodes, services, deployments and pods (in a `bevy_ecs` world), requests flowing through
//! call graphs with queues, worker pools, CPU contention, memory, disk IO, network latency
//! and loss, timeouts, retries and connection pools, and the telemetry an SRE would see.
//!
//! It knows nothing of faults or agents: it exposes a control and fault surface
//! ([`Simulation::kill_pod`], [`Simulation::scale`], [`Simulation::set_pod_cpu_stress`],
//! [`Simulation::set_edge_network`], ...) that other crates write to.
//!
//! ## Embedding it
//!
//! ```
//! use sim_core::prelude::*;
//!
//! // A front end calling a database, built in code.
//! let mut api = ServiceSpec::simple("api", DurationDist::exponential(SimDuration::from_millis(2)));
//! api.replicas = 2;
//! api.operations[0].stages.push(StageSpec {
//!     calls: vec![CallSpec { service: "db".into(), operation: None, probability: 1.0,
//!                            mode: CallMode::Sync, optional: false }],
//! });
//! let db = ServiceSpec::simple("db", DurationDist::constant(SimDuration::from_millis(1)));
//! let scenario = Scenario {
//!     name: "demo".into(),
//!     description: String::new(),
//!     duration: SimDuration::from_secs(20),
//!     scrape_interval: SimDuration::from_secs(1),
//!     telemetry: TelemetrySpec::default(),
//!     cluster: ClusterSpec::default(),
//!     nodes: vec![NodeSpec { name: "n0".into(), cpu: "8".parse().unwrap(),
//!                            memory: "16Gi".parse().unwrap(), zone: "a".into(),
//!                            io_bandwidth: "200M".parse().unwrap() }],
//!     services: vec![api, db],
//!     edges: vec![],
//!     workload: vec![WorkloadSpec {
//!         entry: "api".into(),
//!         arrivals: ArrivalSpec::Open { rate: RateSpec::Constant { rps: 300.0 } },
//!         mix: vec![],
//!         client: ClientSpec::default(),
//!     }],
//!     slos: vec![],
//! };
//! let mut sim = Simulation::new(&scenario, 7).unwrap();
//! sim.run_until(10 * SECONDS);
//! // Kill the database for a while and watch errors appear at the front end.
//! let db_id = sim.service_id("db").unwrap();
//! sim.scale(db_id, 0).unwrap();
//! sim.run_until(12 * SECONDS);
//! let api_metrics = &sim.last_scrape().unwrap().services[0];
//! assert!(api_metrics.error_rate > 0.9);
//! ```
//!
//! ## Engine rules
//!
//! - Time is `u64` nanoseconds ([`time`]). Events are ordered by (time, insertion order)
//!   ([`queue`]).
//! - Randomness comes from ChaCha8 streams per (seed, purpose, entity) ([`rng`]): arrivals,
//!   service times, network, retries and faults never share a stream (common random numbers).
//! - No hash-order iteration reaches an output. Same scenario + seed = same bytes.
//! - [`Simulation::fork`] and [`Simulation::snapshot`] / [`Simulation::restore`] copy everything.

#![warn(missing_docs)]

pub mod dist;
pub mod ecs;
mod engine;
pub mod hist;
pub mod model;
pub mod quantity;
pub mod queue;
pub mod rng;
pub mod scenario;
mod sim;
mod snapshot;
pub mod telemetry;
pub mod time;
pub mod topologies;

pub use engine::{Counters, IoFault, NetFault, Partition, ScriptNode, ScriptedRequest};
pub use sim::{
    ControlError, MAX_CONTROL_DURATION, MAX_STRESS_MILLICORES, PodInfo, Simulation, SnapshotError,
};

/// The items most users need.
pub mod prelude {
    pub use crate::dist::DurationDist;
    pub use crate::engine::{Counters, IoFault, NetFault, Partition, ScriptNode, ScriptedRequest};
    pub use crate::model::{EdgeId, NodeId, OpId, PodId, ServiceId, Topology};
    pub use crate::quantity::{Cpu, Memory};
    pub use crate::scenario::*;
    pub use crate::sim::{ControlError, PodInfo, Simulation, SnapshotError};
    pub use crate::telemetry::{Phase, Scrape, Status, Telemetry};
    pub use crate::time::{MILLIS, SECONDS, SimDuration, SimTime};
}
