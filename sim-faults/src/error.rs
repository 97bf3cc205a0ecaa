//! Errors of the fault crate. Each names the file, field or scenario it is about.

use sim_core::ControlError;
use sim_core::scenario::ScenarioError;

/// Everything that can go wrong loading fault scenarios, running episodes or exporting data.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or a field has the wrong type (the message has the line and column).
    #[error("{origin}: {message}")]
    Parse {
        /// File path or `<string>` / `builtin:<name>`.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("{origin}: invalid {field}: {reason}")]
    Invalid {
        /// File path or `<string>` / `builtin:<name>`.
        origin: String,
        /// Path of the field, e.g. `faults[1].selector.service`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The base scenario (topology) does not validate.
    #[error("{origin}: base scenario: {source}")]
    Scenario {
        /// File path or `<string>`.
        origin: String,
        /// The cause.
        #[source]
        source: ScenarioError,
    },
    /// No built-in scenario has this name and no file has this path.
    #[error("unknown scenario {name:?}: not a built-in name ({known}) and not a readable file")]
    UnknownScenario {
        /// What was asked for.
        name: String,
        /// A short list of the known names.
        known: String,
    },
    /// A fault could not be applied to the running simulation.
    #[error("fault {fault}: {source}")]
    Control {
        /// The fault id.
        fault: String,
        /// The cause.
        #[source]
        source: ControlError,
    },
    /// Episode snapshot bytes are not valid.
    #[error("episode snapshot: {0}")]
    Snapshot(String),
    /// A request that the arguments make impossible (e.g. an export with no cases).
    #[error("{0}")]
    Usage(String),
}

impl FaultError {
    pub(crate) fn invalid(
        origin: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> FaultError {
        FaultError::Invalid {
            origin: origin.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}
