//! Built-in topologies (scenario files shipped with the crate).
//!
//! Each is a TOML scenario embedded at compile time; [`list`] names them and [`load`] parses
//! one. Users copy the files from `sim-core/src/topologies/` and edit them.

use crate::scenario::{Scenario, ScenarioError};

/// (name, TOML text) of every built-in topology.
pub const BUILTIN: &[(&str, &str)] = &[
    ("online-boutique", include_str!("topologies/online-boutique.toml")),
    ("train-ticket", include_str!("topologies/train-ticket.toml")),
    ("sock-shop", include_str!("topologies/sock-shop.toml")),
    ("dsb-social-network", include_str!("topologies/dsb-social-network.toml")),
    ("dsb-hotel-reservation", include_str!("topologies/dsb-hotel-reservation.toml")),
    ("simple-micro", include_str!("topologies/simple-micro.toml")),
    ("dime-8node", include_str!("topologies/dime-8node.toml")),
];

/// Names of the built-in topologies.
pub fn list() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Parses a built-in topology by name.
pub fn load(name: &str) -> Result<Scenario, ScenarioError> {
    let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| ScenarioError::Invalid {
        field: "name".into(),
        reason: format!("no built-in topology {name:?}; known: {}", list().join(", ")),
    })?;
    Scenario::from_toml_str(text)
}
