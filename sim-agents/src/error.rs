//! Errors of this crate.
//!
//! Two kinds: [`AgentError`] is a program error (an unknown policy name, an invalid scenario,
//! a corrupt snapshot) returned as `Err`; [`ActionError`] is an agent's mistake (a parse error,
//! an unknown target, a cooldown, missing funds), which is not an error of the program: it is
//! reported in the next observation's `action_errors` and costs reward.

use crate::grammar::ParseError;

/// A program error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No policy with this name.
    #[error("unknown policy {name:?}; known: {known}")]
    UnknownPolicy {
        /// What was asked for.
        name: String,
        /// The known names.
        known: String,
    },
    /// The fault scenario could not be loaded or built.
    #[error(transparent)]
    Fault(#[from] sim_faults::FaultError),
    /// A snapshot could not be decoded.
    #[error("corrupt environment snapshot: {0}")]
    Snapshot(String),
    /// A bad argument (empty group, zero environments ...).
    #[error("invalid argument {what}: {why}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why.
        why: String,
    },
}

/// An agent's action that could not be applied. Its `Display` starts with DIME's error names
/// (`ParseError`, `CooldownActive`, `InsufficientFunds`) where DIME has one.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// The text did not parse.
    #[error("ParseError: {0}")]
    Parse(#[from] ParseError),
    /// The text parsed, but the policy reported it invalid.
    #[error("ParseError: {0}")]
    Invalid(String),
    /// No pod, node or deployment by that name.
    #[error("UnknownTarget: no {kind} named {name:?}")]
    UnknownTarget {
        /// What was looked for (`pod`, `node`, `deployment`, `pod or node`).
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// The target was restarted too recently.
    #[error("CooldownActive: {target} can be restarted again in {steps} steps")]
    Cooldown {
        /// The target.
        target: String,
        /// Steps left.
        steps: u32,
    },
    /// Not enough cloud budget for the replicas asked.
    #[error("InsufficientFunds: need {need} replica-units, have {have}")]
    InsufficientFunds {
        /// Units the action needs.
        need: i64,
        /// Units left.
        have: i64,
    },
    /// The control surface refused (nothing to roll back, a bad value ...).
    #[error("Rejected: {0}")]
    Rejected(String),
}
