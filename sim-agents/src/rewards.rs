//! Rewards, as pure functions of (previous state summary, action, next state summary).
//!
//! The environment reward follows the seven components of the DIME model card (topology,
//! load shedding, memory, cold-start friction, latency, uptime, efficiency), each bounded,
//! summed and clipped to [-5, 5]. It differs from DIME where DIME is broken (spec §6, §11):
//!
//! - **Positive rewards are reachable.** A healthy, unthrottled system at low latency earns
//!   about +2.5 per step; DIME's supremum is -0.66.
//! - **Latency counts** (the p99 at the entry, relative to its objective).
//! - **No cliffs.** Every component is a continuous function of what it measures; there is
//!   no branch that pins the reward at one value when the database is down (DIME returns
//!   exactly -5), so the actions taken in a bad state still get different rewards and GRPO
//!   advantages do not vanish.
//! - **No exploits.** Load shed by the throttle is charged on every step it is held (DIME
//!   charges only the step it is issued), and unanswered requests count against uptime, so
//!   throttling to zero or scaling to zero never pays; restarts within a short window are
//!   taxed (restart spam) and disruptive actions on a healthy system are taxed.
//! - **No shared state.** The reward is a pure function; two environments never share it
//!   (DIME keeps a module-global accumulator keyed by episode id).
//!
//! The text-policy rewards (format [-3, 3], validity [-2, 2], triage alignment [-0.5, 1])
//! follow DIME's training script, with its parser bugs removed (the `<action>` format is
//! accepted, a malformed number is an invalid command and not a crash, and triage compares
//! parsed actions, not strings).
//!
//! ```
//! use sim_agents::rewards::{env_reward, ActionCost, RewardState};
//! let healthy = RewardState::healthy();
//! let r = env_reward(&healthy, &ActionCost::noop(), &healthy);
//! assert!(r.total > 0.0 && r.total <= 5.0);
//! ```

use crate::action::{Action, ActionKind};
use crate::grammar::{self, ParseError, TagCounts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the environment reward reads of a state: a summary over one decision interval.
/// All fields are clamped to their documented ranges by [`RewardState::clamped`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardState {
    /// Share of offered requests answered successfully, [0, 1] (throttled ones count as not answered).
    pub availability: f64,
    /// Entry p99 latency divided by its objective, >= 0.
    pub p99_ratio: f64,
    /// CPU utilisation of the most loaded critical component (the database's pods, else the
    /// hottest pod or node; 1 when a deployment has no ready pod), [0, 1].
    pub hot_cpu: f64,
    /// Mean node CPU utilisation, [0, 1].
    pub mean_cpu: f64,
    /// Highest pod memory utilisation (of its limit), [0, 1].
    pub max_mem: f64,
    /// Mean pod memory utilisation, [0, 1].
    pub mean_mem: f64,
    /// Share of nodes up and deployments with a ready pod, [0, 1].
    pub up_fraction: f64,
    /// Share of desired pods not ready or still warming up (cold starts), [0, 1].
    pub warming_fraction: f64,
    /// Share of the nominal offered load the throttle admits, [0, 1].
    pub admitted: f64,
    /// Error budget left, [0, 100].
    pub error_budget: f64,
    /// Replicas above the initial ones, as a share of the cloud budget, [0, 1].
    pub cloud_spend: f64,
}

impl RewardState {
    /// A healthy, idle-ish system.
    pub fn healthy() -> RewardState {
        RewardState {
            availability: 1.0,
            p99_ratio: 0.2,
            hot_cpu: 0.3,
            mean_cpu: 0.25,
            max_mem: 0.3,
            mean_mem: 0.25,
            up_fraction: 1.0,
            warming_fraction: 0.0,
            admitted: 1.0,
            error_budget: 100.0,
            cloud_spend: 0.0,
        }
    }

    /// The state with every field clamped to its range (NaN reads as the worst value).
    pub fn clamped(&self) -> RewardState {
        let u = |x: f64, bad: f64| if x.is_nan() { bad } else { x.clamp(0.0, 1.0) };
        RewardState {
            availability: u(self.availability, 0.0),
            p99_ratio: if self.p99_ratio.is_nan() {
                1e6
            } else {
                self.p99_ratio.clamp(0.0, 1e6)
            },
            hot_cpu: u(self.hot_cpu, 1.0),
            mean_cpu: u(self.mean_cpu, 1.0),
            max_mem: u(self.max_mem, 1.0),
            mean_mem: u(self.mean_mem, 1.0),
            up_fraction: u(self.up_fraction, 0.0),
            warming_fraction: u(self.warming_fraction, 1.0),
            admitted: u(self.admitted, 0.0),
            error_budget: if self.error_budget.is_nan() {
                0.0
            } else {
                self.error_budget.clamp(0.0, 100.0)
            },
            cloud_spend: u(self.cloud_spend, 1.0),
        }
    }

    /// True when the state meets its objectives (used to tax disruptive actions on a healthy system).
    pub fn is_healthy(&self) -> bool {
        self.availability >= 0.99 && self.p99_ratio < 1.0 && self.up_fraction >= 0.999
    }
}

/// What the reward reads of an action.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionCost {
    /// The action's kind.
    pub kind: ActionKind,
    /// The action was applied (no parse error, no unknown target, no cooldown, funds were there).
    pub applied: bool,
    /// Restarts issued in the last 5 steps, this one included.
    pub recent_restarts: u32,
}

impl ActionCost {
    /// A no-op.
    pub fn noop() -> ActionCost {
        ActionCost {
            kind: ActionKind::NoOp,
            applied: true,
            recent_restarts: 0,
        }
    }
}

/// The environment reward and its components.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    /// Sum of the components, clipped to [-5, 5].
    pub total: f64,
    /// Per component (`topology`, `shedding`, `memory`, `friction`, `latency`, `uptime`,
    /// `efficiency`), unclipped.
    pub components: BTreeMap<String, f64>,
}

/// Names of the seven environment reward components, in DIME's order.
pub const COMPONENTS: [&str; 7] = [
    "topology",
    "shedding",
    "memory",
    "friction",
    "latency",
    "uptime",
    "efficiency",
];

/// Bounds of each component (same order as [`COMPONENTS`]).
pub const BOUNDS: [(f64, f64); 7] = [
    (-1.0, 0.5),
    (-1.5, 0.0),
    (-1.0, 0.0),
    (-0.5, 0.0),
    (-1.5, 0.5),
    (-1.0, 1.0),
    (-1.8, 0.1),
];

/// Topology / critical-path load, in [-1, 0.5]: decreasing in the critical component's CPU
/// and the mean CPU, increasing in the share of nodes and deployments up. The bonus for
/// components up is scaled by the share of load admitted: a cool, healthy cluster that serves
/// nobody (everything throttled) earns nothing for it.
pub fn r_topology(s: &RewardState) -> f64 {
    0.5 * s.up_fraction * s.admitted - (0.7 * s.hot_cpu * s.hot_cpu + 0.3 * s.mean_cpu * s.mean_cpu)
}

/// Load shedding, in [-1.5, 0]: the share of load the throttle sheds, on every step it is
/// held, weighted up as the error budget runs out.
pub fn r_shedding(s: &RewardState) -> f64 {
    -(1.0 - s.admitted) * (0.75 + 0.75 * (1.0 - s.error_budget / 100.0))
}

fn mem_excess(m: f64) -> f64 {
    let x = ((m - 0.6) / 0.35).clamp(0.0, 1.0);
    x * x
}

/// Memory pressure, in [-1, 0]: zero below 60% of the limit, then smoothly down to -1 at 95%.
pub fn r_memory(s: &RewardState) -> f64 {
    -(0.6 * mem_excess(s.max_mem) + 0.4 * mem_excess(s.mean_mem))
}

/// Cold-start friction, in [-0.5, 0]: the share of desired pods still booting or warming up.
pub fn r_friction(s: &RewardState) -> f64 {
    -0.5 * s.warming_fraction
}

/// Tail latency, in [-1.5, 0.5]: +0.5 at or below half the objective, about -0.4 at the
/// objective, smoothly down to -1.5. Requests that were not answered count too, so a system
/// that answers nobody is not "fast": an admitted request that failed counts as answered at 4x
/// the objective (a timeout), a request the throttle shed at 2x (a fast 429 is better than a
/// timeout, but not an answer). The ratio used is
/// `availability * p99_ratio + 4 * (admitted - availability) + 2 * (1 - admitted)`, floored at 0.
pub fn r_latency(s: &RewardState) -> f64 {
    let ratio = (s.availability * s.p99_ratio
        + 4.0 * (s.admitted - s.availability)
        + 2.0 * (1.0 - s.admitted))
        .max(0.0);
    (0.5 - 2.0 * (ratio - 0.5).max(0.0).tanh()).max(-1.5)
}

/// Uptime as users see it, in [-1, 1]: `2 * availability - 1`.
pub fn r_uptime(s: &RewardState) -> f64 {
    2.0 * s.availability - 1.0
}

/// Efficiency, in [-1.8, 0.1]: +0.1 for not touching the system, -0.05 for a change; -0.5 per
/// restart beyond one in the last 5 steps (up to 3: restart spam must never pay); -0.1 for a disruptive change to a system
/// that was healthy; -0.15 x the cloud spend.
pub fn r_efficiency(prev: &RewardState, a: &ActionCost, next: &RewardState) -> f64 {
    let mut r = if a.kind.is_mutating() && a.applied {
        -0.05
    } else {
        0.1
    };
    if a.kind == ActionKind::Invalid {
        r = 0.0;
    }
    r -= 0.5 * a.recent_restarts.saturating_sub(1).min(3) as f64;
    if a.kind.is_mutating() && a.applied && prev.is_healthy() && a.kind != ActionKind::Throttle {
        r -= 0.1;
    }
    r - 0.15 * next.cloud_spend
}

/// The per-step environment reward: seven bounded components, summed, clipped to [-5, 5].
pub fn env_reward(prev: &RewardState, action: &ActionCost, next: &RewardState) -> Reward {
    let p = prev.clamped();
    let s = next.clamped();
    let vals = [
        r_topology(&s),
        r_shedding(&s),
        r_memory(&s),
        r_friction(&s),
        r_latency(&s),
        r_uptime(&s),
        r_efficiency(&p, action, &s),
    ];
    let total = vals.iter().sum::<f64>().clamp(-5.0, 5.0);
    let components = COMPONENTS
        .iter()
        .zip(vals)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Reward { total, components }
}

/// Format reward for a text completion, in [-3, 3]: +3 for exactly one each of `<reasoning>`,
/// `</reasoning>`, `<action>`, `</action>`, in that order, with balanced think tags;
/// otherwise +0.75 per tag that occurs exactly once and -0.75 per tag that does not
/// (the opening `<reasoning>` counts too, unlike DIME).
pub fn format_reward(text: &str) -> f64 {
    let t: TagCounts = grammar::tag_counts(text);
    let counts = [
        t.reasoning_open,
        t.reasoning_close,
        t.action_open,
        t.action_close,
    ];
    let lower = text.to_ascii_lowercase();
    let ordered = match (lower.find("</reasoning>"), lower.find("<action>")) {
        (Some(a), Some(b)) => a < b && lower.find("<reasoning>").is_some_and(|r| r < a),
        _ => false,
    };
    let think_ok = t.think_open <= t.think_close && t.think_close <= 1;
    if counts.iter().all(|&c| c == 1) && ordered && think_ok {
        return 3.0;
    }
    let s: f64 = counts
        .iter()
        .map(|&c| if c == 1 { 0.75 } else { -0.75 })
        .sum();
    // a scaffold with the right counts but in the wrong order, or a broken think block
    if s >= 3.0 { 1.5 } else { s }
}

/// Validity reward, in [-2, 2]: -2 when no command can be found (empty text, malformed
/// scaffold, bad JSON), -1 for a command that does not parse, +1 for a no-op, 0 for a command
/// whose target does not exist, +2 for a valid command.
pub fn validity_reward(parsed: &Result<Action, ParseError>, target_exists: bool) -> f64 {
    match parsed {
        Err(ParseError::Empty | ParseError::MalformedTags { .. } | ParseError::BadJson(_)) => -2.0,
        Err(_) => -1.0,
        Ok(Action::NoOp) => 1.0,
        Ok(Action::Invalid { .. }) => -1.0,
        Ok(_) if !target_exists => 0.0,
        Ok(_) => 2.0,
    }
}

/// Triage alignment, in [-0.5, 1]: +1 for the oracle's action (compared as parsed actions, so
/// `noop` and `no_op` agree), +0.5 for the same kind of action with other arguments, 0 for a
/// no-op when the oracle acts, -0.5 for acting when the oracle says no-op, for another action,
/// or for no command.
pub fn triage_reward(parsed: Option<&Action>, oracle: &Action) -> f64 {
    let Some(a) = parsed else { return -0.5 };
    if same_action(a, oracle) {
        return 1.0;
    }
    match (a.kind(), oracle.kind()) {
        (_, ActionKind::NoOp) => -0.5,
        (ActionKind::NoOp, _) => 0.0,
        (x, y) if x == y => 0.5,
        _ => -0.5,
    }
}

/// Equality of actions with a tolerance on rates (0.01), case-insensitive targets.
pub fn same_action(a: &Action, b: &Action) -> bool {
    let eq = |x: &str, y: &str| x.eq_ignore_ascii_case(y);
    match (a, b) {
        (Action::Throttle { rate: x }, Action::Throttle { rate: y }) => (x - y).abs() < 0.01,
        (
            Action::Reroute {
                from: f1,
                to: t1,
                fraction: x,
            },
            Action::Reroute {
                from: f2,
                to: t2,
                fraction: y,
            },
        ) => eq(f1, f2) && eq(t1, t2) && (x - y).abs() < 0.01,
        (Action::RestartPod { target: x }, Action::RestartPod { target: y })
        | (Action::RestartNode { target: x }, Action::RestartNode { target: y })
        | (Action::RestartDeployment { target: x }, Action::RestartDeployment { target: y })
        | (Action::Rollback { target: x }, Action::Rollback { target: y }) => eq(x, y),
        (
            Action::Query {
                kind: k1,
                target: x,
            },
            Action::Query {
                kind: k2,
                target: y,
            },
        ) => k1 == k2 && eq(x, y),
        _ => a == b,
    }
}

/// The three text rewards of one completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextRewards {
    /// [`format_reward`].
    pub format: f64,
    /// [`validity_reward`].
    pub validity: f64,
    /// [`triage_reward`].
    pub triage: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_is_positive_and_bounded() {
        let h = RewardState::healthy();
        let r = env_reward(&h, &ActionCost::noop(), &h);
        assert!(r.total > 1.5, "{r:?}");
        for (i, k) in COMPONENTS.iter().enumerate() {
            let v = r.components[*k];
            assert!(v >= BOUNDS[i].0 && v <= BOUNDS[i].1, "{k} {v}");
        }
    }

    #[test]
    fn format_values() {
        assert_eq!(
            format_reward("<reasoning>a</reasoning><action>{}</action>"),
            3.0
        );
        assert_eq!(format_reward("no tags"), -3.0);
        assert_eq!(
            format_reward("<action>x</action><reasoning>a</reasoning>"),
            1.5
        );
        assert_eq!(format_reward("<reasoning>a</reasoning>"), 0.0);
    }

    #[test]
    fn triage_values() {
        let t = Action::Throttle { rate: 0.4 };
        assert_eq!(
            triage_reward(Some(&Action::Throttle { rate: 0.4 }), &t),
            1.0
        );
        assert_eq!(
            triage_reward(Some(&Action::Throttle { rate: 0.7 }), &t),
            0.5
        );
        assert_eq!(triage_reward(Some(&Action::NoOp), &t), 0.0);
        assert_eq!(triage_reward(Some(&t), &Action::NoOp), -0.5);
        assert_eq!(triage_reward(None, &t), -0.5);
        assert_eq!(triage_reward(Some(&Action::NoOp), &Action::NoOp), 1.0);
    }
}
