//! # sim-faults: faults, fault scenarios, ground truth and scores for blastradius
//!
//! A [`FaultScenario`] is a base scenario (a `sim-core` topology with its workload and SLOs)
//! plus a schedule of faults from a catalogue that mirrors Chaos Mesh ([`fault::FaultKind`]:
//! StressChaos, IOChaos, NetworkChaos, PodChaos, config errors, node and zone failures, ...).
//! An [`Episode`] runs it for a seed, switching faults on and off through `sim-core`'s control
//! and fault surfaces only; agents act on [`Episode::sim_mut`]. [`Episode::ground_truth`]
//! labels the episode (root causes, fault types, first symptom, blast radius measured against
//! the counterfactual run of the same seed, propagation), [`remediation_verdict`] judges
//! recovery and [`localization_scores`] scores root-cause rankings; [`baseline`] ranks root
//! causes with BARO's RobustScorer, a reference point for such rankings. [`export`] writes
//! episodes and RCAEval datasets.
//!
//! ```
//! use sim_faults::{Episode, FaultScenario, VerdictSpan, remediation_verdict};
//! use sim_core::time::SECONDS;
//!
//! let sc = FaultScenario::from_toml_str(r#"
//!     name = "db-cpu-hog"
//!     [base]
//!     name = "two-tier"
//!     duration = "60s"
//!     slos = [{ service = "api", latency_p99 = "150ms" }]
//!     [[base.nodes]]
//!     name = "n0"
//!     cpu = "8"
//!     memory = "16Gi"
//!     [[base.services]]
//!     name = "api"
//!     replicas = 2
//!     [[base.services.operations]]
//!     name = "get"
//!     cpu = { kind = "exponential", mean = "1ms" }
//!     [[base.services.operations.stages]]
//!     calls = [{ service = "db" }]
//!     [[base.services]]
//!     name = "db"
//!     [[base.services.operations]]
//!     name = "query"
//!     cpu = { kind = "exponential", mean = "3ms" }
//!     [[base.workload]]
//!     entry = "api"
//!     arrivals = { kind = "open", rate = { kind = "constant", rps = 150.0 } }
//!
//!     [[faults]]
//!     id = "hog"
//!     start = "20s"
//!     duration = "20s"
//!     selector = { service = "db" }
//!     chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }
//! "#).unwrap();
//! let mut ep = Episode::new(&sc, 7).unwrap();
//! let mut healthy = Episode::without_faults(&sc, 7).unwrap();
//! ep.run_to_end();
//! healthy.run_to_end();
//! let gt = ep.ground_truth(&healthy);
//! assert_eq!(gt.root_cause_services, vec!["db".to_string()]);
//! assert_eq!(gt.fault_types, vec!["cpu-stress".to_string()]);
//! assert!(gt.blast_radius.contains(&"api".to_string()));
//! assert!(gt.first_symptom.unwrap() >= 20 * SECONDS);
//! // The stress (from 20 s) ended at 40 s, so the system recovered afterwards: judged at the
//! // end (60 s) on windows from 40 s on, with the time to recover measured from 20 s.
//! let span = VerdictSpan::new(20 * SECONDS, ep.now()).with_from(40 * SECONDS);
//! let v = remediation_verdict(&ep, &healthy, span);
//! assert!(v.recovered, "{}", v.reason);
//! assert!(v.recovered_at.unwrap() >= 20 * SECONDS);
//! ```

#![warn(missing_docs)]

pub mod baseline;
pub mod episode;
pub mod error;
pub mod export;
pub mod fault;
pub mod labels;
pub mod otlp;
pub mod scenario;
pub mod scoring;

pub use episode::{Episode, InjectedFault};
pub use error::FaultError;
pub use fault::{FaultKind, FaultSpec, Mode, Selector};
pub use labels::{GroundTruth, effective_service_metrics, root_causes};
pub use scenario::{
    AgentSettings, FaultScenario, RemediationSpec, builtin_names, suite, suite_names,
};
pub use scoring::{
    LocalizationReport, LocalizationScores, Verdict, VerdictSpan, fault_type_accuracy,
    localization_scores, remediation_verdict, score_localization,
};
