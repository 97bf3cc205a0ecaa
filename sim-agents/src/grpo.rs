//! GRPO groups: from one state, fork G copies, apply G candidate actions (or G text
//! completions), roll each forward H steps, and return the rewards, the group-normalised
//! advantages and whether the group has zero reward variance (DIME's `frac_reward_zero_std`).
//!
//! Identical candidates get identical rewards: every copy starts from the same forked state
//! and the simulation is deterministic (DIME rebuilds an unseeded env per completion, so 12%
//! of its prompts give identical completions different rewards). Copies run in parallel.

use crate::action::Action;
use crate::env::Env;
use crate::grammar;
use crate::oracle;
use crate::policy::Policy;
use crate::rewards::{TextRewards, format_reward, triage_reward, validity_reward};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The outcome of one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    /// Per candidate: the environment return over the horizon (plus the text rewards for text groups).
    pub rewards: Vec<f64>,
    /// Per candidate: `(r - mean) / (std + 1e-4)` with the sample (unbiased) std, or all zero
    /// when the group has zero variance or one member ([`advantages`]).
    pub advantages: Vec<f64>,
    /// The rewards are all equal (within 1e-9).
    pub zero_std: bool,
    /// Per candidate: the environment part of the reward.
    pub env_returns: Vec<f64>,
    /// Per candidate, for text groups: format, validity and triage rewards.
    pub text: Vec<Option<TextRewards>>,
}

/// Group-normalised advantages and the zero-variance flag, as TRL's `GRPOTrainer` (which DIME
/// trained with) computes them: `(r - mean) / (std + 1e-4)` where `std` is the **sample**
/// standard deviation (`torch.std`'s default, Bessel-corrected: divided by `n - 1`). A group
/// of fewer than two rewards (where `torch.std` gives NaN) or with a std below 1e-9 has all
/// advantages 0 and the flag set.
///
/// ```
/// use sim_agents::grpo::advantages;
/// let (a, zero) = advantages(&[1.0, 2.0, 3.0]); // mean 2, sample std 1
/// assert!(!zero);
/// assert!((a[2] - 1.0 / (1.0 + 1e-4)).abs() < 1e-12);
/// assert_eq!(advantages(&[5.0]), (vec![0.0], true));
/// ```
pub fn advantages(rewards: &[f64]) -> (Vec<f64>, bool) {
    if rewards.len() < 2 {
        return (vec![0.0; rewards.len()], true);
    }
    let n = rewards.len() as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let var = rewards.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1.0);
    let std = var.sqrt();
    if std < 1e-9 {
        return (vec![0.0; rewards.len()], true);
    }
    (
        rewards.iter().map(|r| (r - mean) / (std + 1e-4)).collect(),
        false,
    )
}

/// Share of groups with zero reward variance.
pub fn frac_reward_zero_std(groups: &[GroupResult]) -> f64 {
    if groups.is_empty() {
        return 0.0;
    }
    groups.iter().filter(|g| g.zero_std).count() as f64 / groups.len() as f64
}

/// The return of `first` then `horizon - 1` no-op steps from a fork of `env`.
fn rollout(env: &Env, first: Action, horizon: u32) -> f64 {
    let mut e = env.fork();
    let mut ret = 0.0;
    let mut a = first;
    for _ in 0..horizon.max(1) {
        let st = e.step(std::mem::replace(&mut a, Action::NoOp));
        ret += st.reward.total;
        if st.terminated || st.truncated {
            break;
        }
    }
    ret
}

/// Forks `env` once per candidate, applies it, rolls forward `horizon` steps (the candidate,
/// then no-ops), and normalises the returns. Equal candidates are simulated once.
pub fn group_rollout(env: &Env, candidates: &[Action], horizon: u32) -> GroupResult {
    // dedupe identical candidates (by canonical command): identical rewards by construction
    let mut uniq: Vec<Action> = Vec::new();
    let idx: Vec<usize> = candidates
        .iter()
        .map(|c| match uniq.iter().position(|u| u == c) {
            Some(i) => i,
            None => {
                uniq.push(c.clone());
                uniq.len() - 1
            }
        })
        .collect();
    let rets: Vec<f64> = uniq
        .par_iter()
        .map(|a| rollout(env, a.clone(), horizon))
        .collect();
    let env_returns: Vec<f64> = idx.iter().map(|&i| rets[i]).collect();
    let (adv, zero) = advantages(&env_returns);
    GroupResult {
        rewards: env_returns.clone(),
        advantages: adv,
        zero_std: zero,
        env_returns,
        text: vec![None; candidates.len()],
    }
}

/// A text group: each completion is parsed, scored for format, validity and triage alignment
/// (against the oracle on the current observation), and rolled out; the reward is
/// `format + validity + env + triage` as in DIME's GRPO trainer.
pub fn group_rollout_text(env: &Env, completions: &[String], horizon: u32) -> GroupResult {
    let obs = env.observation();
    let oracle_action = oracle::triage(&obs).1;
    let parsed: Vec<_> = completions
        .iter()
        .map(|c| grammar::parse_command(c))
        .collect();
    let actions: Vec<Action> = parsed
        .iter()
        .zip(completions)
        .map(|(p, c)| match p {
            Ok(a) => a.clone(),
            Err(e) => Action::Invalid {
                raw: c.chars().take(200).collect(),
                reason: e.to_string(),
            },
        })
        .collect();
    let g = group_rollout(env, &actions, horizon);
    let text: Vec<TextRewards> = parsed
        .iter()
        .zip(completions)
        .zip(&actions)
        .map(|((p, c), a)| TextRewards {
            format: format_reward(c),
            validity: validity_reward(p, env.targets_exist(a)),
            triage: triage_reward(p.as_ref().ok(), &oracle_action),
        })
        .collect();
    let rewards: Vec<f64> = g
        .env_returns
        .iter()
        .zip(&text)
        .map(|(e, t)| e + t.format + t.validity + t.triage)
        .collect();
    let (adv, zero) = advantages(&rewards);
    GroupResult {
        rewards,
        advantages: adv,
        zero_std: zero,
        env_returns: g.env_returns,
        text: text.into_iter().map(Some).collect(),
    }
}

/// Six distinct candidate actions for a state (for reward-variance checks): no-op, the
/// oracle's action, a throttle to 0.5, a restart of the busiest pod, a scale-up of the entry,
/// and a query. Duplicates of the oracle's action are replaced by other throttles.
pub fn six_candidates(env: &Env) -> Vec<Action> {
    let obs = env.observation();
    let mut out = vec![Action::NoOp, oracle::triage(&obs).1];
    let busiest = obs
        .pods
        .iter()
        .filter(|p| p.ready)
        .max_by(|a, b| a.cpu.total_cmp(&b.cpu))
        .map(|p| p.name.clone());
    let mut extra = vec![Action::Throttle { rate: 0.5 }];
    if let Some(p) = busiest {
        extra.push(Action::RestartPod { target: p });
    }
    extra.push(Action::Scale {
        target: Some(obs.entry_service.clone()),
        replicas: crate::action::Replicas::Up(1),
    });
    extra.push(Action::Throttle { rate: 0.2 });
    extra.push(Action::Throttle { rate: 0.8 });
    extra.push(Action::Query {
        kind: crate::action::QueryKind::Logs,
        target: obs.entry_service.clone(),
    });
    for a in extra {
        if out.len() >= 6 {
            break;
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Runs `policy` in a fork of `env` for up to `steps` steps, collecting a fork of the
/// environment at each step (states sampled along an episode).
pub fn sample_states(env: &Env, policy: &mut dyn Policy, steps: u32) -> Vec<Env> {
    let mut e = env.fork();
    let mut obs = e.observation();
    let mut out = Vec::new();
    for _ in 0..steps {
        out.push(e.fork());
        let a = policy
            .act(std::slice::from_ref(&obs))
            .pop()
            .unwrap_or(Action::NoOp);
        let st = e.step(a);
        obs = st.observation;
        if st.terminated || st.truncated {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::advantages;

    #[test]
    fn advantages_use_the_unbiased_std_like_trl() {
        // mean 2.5, sample std sqrt(5/3) = 1.2910 (the population std, 1.1180, gave 1.3415
        // for the last one)
        let (a, zero) = advantages(&[1.0, 2.0, 3.0, 4.0]);
        assert!(!zero);
        let std = (5.0f64 / 3.0).sqrt();
        for (x, r) in a.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((x - (r - 2.5) / (std + 1e-4)).abs() < 1e-12, "{a:?}");
        }
        // two members: std = |a - b| / sqrt(2)
        let (a, _) = advantages(&[0.0, 1.0]);
        let s = 1.0 / 2f64.sqrt();
        assert!((a[1] - 0.5 / (s + 1e-4)).abs() < 1e-12, "{a:?}");
    }

    #[test]
    fn degenerate_groups_have_zero_advantages() {
        assert_eq!(advantages(&[]), (vec![], true));
        assert_eq!(advantages(&[3.0]), (vec![0.0], true));
        assert_eq!(advantages(&[2.0, 2.0, 2.0]), (vec![0.0; 3], true));
    }
}
