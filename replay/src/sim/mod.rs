//! Replay into the simulator: infer a `sim-core` scenario from call graphs, drive real
//! traces through it as scripted requests, and export the simulated spans back into this
//! crate's [`TraceSet`](crate::TraceSet) (and so into Alibaba v2022 CSV and OTLP JSON).
//!
//! ```
//! use replay::{Format, ReadOptions, read_bytes};
//! use replay::sim::{InferOptions, ReplayOptions, infer_scenario, replay_scenario, replay_into,
//!                   sim_spans_to_traceset};
//! use sim_core::Simulation;
//!
//! let csv = "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n\
//!            0,T_1,S_1,0,http,USER,USER,home,front,front_0,5.0\n\
//!            1,T_1,S_1,0.1,rpc,front,front_0,get,cart,cart_0,2.0\n\
//!            1,T_1,S_1,0.2,db,front,front_0,q,db,db_0,1.0\n\
//!            900,T_2,S_1,0,http,USER,USER,home,front,front_0,4.0\n\
//!            901,T_2,S_1,0.1,rpc,front,front_0,get,cart,cart_0,2.0\n";
//! let (set, _) = read_bytes("t.csv", csv.as_bytes(), Format::AlibabaV2022, ReadOptions::default())?;
//!
//! // Infer a scenario (services, operations, call plans, edges, sizing, workloads).
//! let scenario = infer_scenario(&set, &InferOptions::default())?;
//! assert_eq!(scenario.services.len(), 3);
//!
//! // Replay the two traces through it (open-loop arrivals switched off).
//! let mut sim = Simulation::new(&replay_scenario(&scenario), 1)?;
//! let stats = replay_into(&mut sim, &set, &ReplayOptions::default())?;
//! assert_eq!(stats.graphs_replayed, 2);
//! assert_eq!(stats.spans_replayed, 5);
//!
//! // The simulated spans, as call graphs (all sampled: the inferred rate is 1).
//! let simulated = sim_spans_to_traceset(&sim);
//! assert_eq!(simulated.graphs.len(), 2);
//! assert_eq!(simulated.num_spans(), 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules: [`infer`] ([`infer_scenario`]), [`drive`] ([`replay_into`],
//! [`replay_store_into`]), [`simexport`] ([`sim_spans_to_traceset`]), and with the
//! `faults` feature `faults` (`replay_with_faults`: a fault overlay on replayed traffic,
//! labelled with `sim-faults` ground truth).

mod analysis;
pub mod drive;
#[cfg(feature = "faults")]
pub mod faults;
pub mod infer;
pub mod simexport;

pub use drive::{ReplayOptions, ReplayStats, ReplayTarget, replay_into, replay_store_into};
pub use infer::{
    CpuModel, InferOptions, InferReport, MAX_RATE_BINS, MAX_REPLAY_SPAN_NS, UnknownPolicy,
    infer_scenario, infer_scenario_with_report, replay_scenario,
};
pub use simexport::{call_type_of, sim_spans_to_traceset, spans_to_traceset};

/// Errors of inference and replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The inferred (or given) scenario does not validate.
    #[error("scenario: {0}")]
    Scenario(#[from] sim_core::scenario::ScenarioError),
    /// The simulator refused a scripted request.
    #[error("graph {trace_id}: the simulator refused the scripted request: {source}")]
    Inject {
        /// Trace id of the graph.
        trace_id: String,
        /// The cause.
        #[source]
        source: sim_core::ControlError,
    },
    /// Reading traces failed.
    #[error(transparent)]
    Trace(#[from] crate::Error),
    /// An invalid option or input (e.g. a non-positive speed-up, no replayable graph).
    #[error("{0}")]
    Invalid(String),
    /// The fault overlay could not be built (feature `faults`).
    #[cfg(feature = "faults")]
    #[error("faults: {0}")]
    Faults(#[from] sim_faults::FaultError),
}
