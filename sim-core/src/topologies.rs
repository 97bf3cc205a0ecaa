//! Built-in topologies (scenario files shipped with the crate).
//!
//! Each is a TOML scenario embedded at compile time; [`list`] names them and [`load`] parses
//! one. Users copy the files from `sim-core/src/topologies/` and edit them. Every file's
//! `description` and comments say what its numbers rest on; per-operation CPU costs, cache miss
//! rates, timeouts and request rates are documented assumptions, chosen so that the healthy
//! bottleneck runs at roughly 40-55% of its CPU limit (faults then show).
//!
//! | name | services | edges | rps | source of the graph and deployment |
//! |---|---:|---:|---:|---|
//! | `online-boutique` | 11 | 15 | 100 | `online_boutique.json` (12 services, 16 edges: `loadgenerator` is the workload) + MicroRemed's `online-boutique-config.yaml` (replicas, requests/limits); Locust task mix |
//! | `train-ticket` | 64 | 154 | 85 | `train_ticket.json` (all of it) + MicroRemed's `train-ticket-config.yaml` |
//! | `sock-shop` | 14 | 15 | 120 + 12 | `sock_shop.json` (all of it); queue-master consumes as a second workload |
//! | `dsb-social-network` | 25 | 33 | 200 + 10 | `deathstarbench_social_network.json` (all of it) + Erms' real span trees for the stage order; wrk2 mixed workload; media-frontend is a second entry |
//! | `dsb-hotel-reservation` | 22 | 21 | 250 | `deathstarbench_hotel_reservation.json` (all of it) + Erms' real span trees; wrk2 mixed workload |
//! | `simple-micro` | 2 | 1 | 60 | MicroRemed's `simple-micro-config.yaml` (hello-service -> time-service) |
//! | `dime-8node` | 3 | 2 | 100 | DIME's 8-node cluster (`dime-simulator-spec.md` §1, §5): `db` on node-0, `app` and `ingress` one pod per node-1..7 |
//!
//! Services and edges count the scenario's `services` and `edges` (every call plan uses exactly
//! the declared edges); the client edge of each workload comes on top. The source files are in
//! `shared/data/callgraphs/`, `shared/data/microremed/` and `shared/data/deathstarbench/`
//! (see `shared/data/PROVENANCE.txt`).
//!
//! ```
//! use sim_core::prelude::*;
//! let sc = sim_core::topologies::load("simple-micro").unwrap();
//! let mut sim = Simulation::new(&sc, 1).unwrap();
//! sim.run_until(3 * SECONDS);
//! assert!(sim.last_scrape().unwrap().services[0].rps > 0.0);
//! assert!(sim_core::topologies::list().contains(&"online-boutique"));
//! ```

use crate::scenario::{Scenario, ScenarioError};

/// (name, TOML text) of every built-in topology.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "online-boutique",
        include_str!("topologies/online-boutique.toml"),
    ),
    ("train-ticket", include_str!("topologies/train-ticket.toml")),
    ("sock-shop", include_str!("topologies/sock-shop.toml")),
    (
        "dsb-social-network",
        include_str!("topologies/dsb-social-network.toml"),
    ),
    (
        "dsb-hotel-reservation",
        include_str!("topologies/dsb-hotel-reservation.toml"),
    ),
    ("simple-micro", include_str!("topologies/simple-micro.toml")),
    ("dime-8node", include_str!("topologies/dime-8node.toml")),
];

/// Names of the built-in topologies.
pub fn list() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Parses a built-in topology by name.
pub fn load(name: &str) -> Result<Scenario, ScenarioError> {
    let (_, text) =
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ScenarioError::Invalid {
                field: "name".into(),
                reason: format!(
                    "no built-in topology {name:?}; known: {}",
                    list().join(", ")
                ),
            })?;
    Scenario::from_toml_str(text)
}
