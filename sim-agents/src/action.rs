//! Typed agent actions.
//!
//! An [`Action`] names its targets by the names an SRE would type (`checkout-1`, `node-3`,
//! `frontend`); the environment resolves them against the running topology when it applies
//! the action, and an unknown target is reported in the next observation's `action_errors`
//! (it is not a program error). [`Action::to_command`] writes the canonical `kubectl`-style
//! command that the [grammar](crate::grammar) parses back into the same action.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a query asks for; the answer arrives in the next observation's `query_results`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// Recent log lines of the target (`kubectl logs`).
    Logs,
    /// Current metrics of the target (`kubectl top`).
    Metrics,
    /// A summary of recent sampled traces through the target.
    Traces,
}

impl QueryKind {
    /// Lower-case name (`logs`, `metrics`, `traces`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Logs => "logs",
            QueryKind::Metrics => "metrics",
            QueryKind::Traces => "traces",
        }
    }
}

/// How many replicas a scale action asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "n")]
pub enum Replicas {
    /// An absolute replica count (`kubectl scale --replicas=N`).
    To(u32),
    /// Add this many replicas to the current count (DIME's `scale_up` adds one).
    Up(u32),
}

/// One agent action. Targets are names resolved by the environment.
///
/// ```
/// use sim_agents::action::Action;
/// let a = Action::Throttle { rate: 0.4 };
/// assert_eq!(a.to_command(), "kubectl throttle ingress --rate=0.4");
/// assert_eq!(sim_agents::grammar::parse_command(&a.to_command()).unwrap(), a);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action_type")]
pub enum Action {
    /// Do nothing this step.
    NoOp,
    /// Delete a pod; its deployment replaces it (the new pod schedules and boots).
    /// DIME's `kubectl delete pod node-3` names a node: the environment then restarts the node.
    RestartPod {
        /// Pod name (or a DIME node reference such as `node-3`).
        target: String,
    },
    /// Reboot a node: every pod on it restarts; a down node comes back.
    RestartNode {
        /// Node name, or a DIME node index such as `3` / `node-3`.
        target: String,
    },
    /// Restart every pod of a deployment (`kubectl rollout restart deployment/X`).
    RestartDeployment {
        /// Deployment (service) name.
        target: String,
    },
    /// Change a deployment's replica count. `target: None` picks the default deployment
    /// (the busiest stateless one), as DIME's `scale_up` does.
    Scale {
        /// Deployment (service) name, or `None` for the default one.
        target: Option<String>,
        /// The replica request.
        replicas: Replicas,
    },
    /// Move load-balancing weight from one pod or node to another.
    Reroute {
        /// Pod or node losing weight.
        from: String,
        /// Pod or node gaining it.
        to: String,
        /// Share of `from`'s weight moved, in [0, 1] (DIME moves 0.3).
        fraction: f64,
    },
    /// Admit only this fraction of the nominal ingress rate (1 lifts the limit). Persists.
    Throttle {
        /// Fraction in [0, 1].
        rate: f64,
    },
    /// Roll a deployment back to its previous config version (`kubectl rollout undo`).
    Rollback {
        /// Deployment (service) name.
        target: String,
    },
    /// Ask for logs, metrics or traces of a pod, node or service.
    Query {
        /// What is asked for.
        kind: QueryKind,
        /// Pod, node or service name.
        target: String,
    },
    /// A text command that could not be parsed; applying it does nothing and reports the
    /// reason in the next observation's `action_errors`.
    Invalid {
        /// The text the policy produced (truncated to 200 characters).
        raw: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// The kind of an action, without its arguments (for statistics and triage alignment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// [`Action::NoOp`].
    NoOp,
    /// [`Action::RestartPod`].
    RestartPod,
    /// [`Action::RestartNode`].
    RestartNode,
    /// [`Action::RestartDeployment`].
    RestartDeployment,
    /// [`Action::Scale`].
    Scale,
    /// [`Action::Reroute`].
    Reroute,
    /// [`Action::Throttle`].
    Throttle,
    /// [`Action::Rollback`].
    Rollback,
    /// [`Action::Query`].
    Query,
    /// [`Action::Invalid`].
    Invalid,
}

impl ActionKind {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::NoOp => "no_op",
            ActionKind::RestartPod => "restart_pod",
            ActionKind::RestartNode => "restart_node",
            ActionKind::RestartDeployment => "restart_deployment",
            ActionKind::Scale => "scale",
            ActionKind::Reroute => "reroute",
            ActionKind::Throttle => "throttle",
            ActionKind::Rollback => "rollback",
            ActionKind::Query => "query",
            ActionKind::Invalid => "invalid",
        }
    }

    /// True for the kinds that restart something (the ones restart spam is made of).
    pub fn is_restart(self) -> bool {
        matches!(
            self,
            ActionKind::RestartPod | ActionKind::RestartNode | ActionKind::RestartDeployment
        )
    }

    /// True for actions that change the system (not no-op, query or invalid).
    pub fn is_mutating(self) -> bool {
        !matches!(
            self,
            ActionKind::NoOp | ActionKind::Query | ActionKind::Invalid
        )
    }
}

impl Action {
    /// The action's kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::NoOp => ActionKind::NoOp,
            Action::RestartPod { .. } => ActionKind::RestartPod,
            Action::RestartNode { .. } => ActionKind::RestartNode,
            Action::RestartDeployment { .. } => ActionKind::RestartDeployment,
            Action::Scale { .. } => ActionKind::Scale,
            Action::Reroute { .. } => ActionKind::Reroute,
            Action::Throttle { .. } => ActionKind::Throttle,
            Action::Rollback { .. } => ActionKind::Rollback,
            Action::Query { .. } => ActionKind::Query,
            Action::Invalid { .. } => ActionKind::Invalid,
        }
    }

    /// The canonical command for this action; [`crate::grammar::parse_command`] maps it back
    /// to an equal action (numbers are written with Rust's shortest round-trip formatting).
    pub fn to_command(&self) -> String {
        match self {
            Action::NoOp => "no_op".into(),
            Action::RestartPod { target } => format!("kubectl delete pod {target}"),
            Action::RestartNode { target } => format!("kubectl restart node {target}"),
            Action::RestartDeployment { target } => {
                format!("kubectl rollout restart deployment/{target}")
            }
            Action::Scale {
                target: Some(t),
                replicas: Replicas::To(n),
            } => {
                format!("kubectl scale deployment/{t} --replicas={n}")
            }
            Action::Scale {
                target: Some(t),
                replicas: Replicas::Up(n),
            } => {
                format!("kubectl scale deployment/{t} --replicas=+{n}")
            }
            Action::Scale {
                target: None,
                replicas: Replicas::To(n),
            } => format!("kubectl scale --replicas={n}"),
            Action::Scale {
                target: None,
                replicas: Replicas::Up(n),
            } => format!("kubectl scale --replicas=+{n}"),
            Action::Reroute { from, to, fraction } => {
                format!(
                    "kubectl exec -it istio-proxy -- traffic shift --from={from} --to={to} --fraction={fraction}"
                )
            }
            Action::Throttle { rate } => format!("kubectl throttle ingress --rate={rate}"),
            Action::Rollback { target } => format!("kubectl rollout undo deployment/{target}"),
            Action::Query {
                kind: QueryKind::Logs,
                target,
            } => format!("kubectl logs {target}"),
            Action::Query {
                kind: QueryKind::Metrics,
                target,
            } => format!("kubectl top {target}"),
            Action::Query {
                kind: QueryKind::Traces,
                target,
            } => format!("query traces {target}"),
            Action::Invalid { raw, .. } => raw.clone(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_command())
    }
}
