//! The triage oracle: the DIME model card's 10-rule decision tree, generalised to any
//! topology and without DIME's oracle bugs, plus five rules (11-15) that localise and
//! remediate a fault on one pod of an unreplicated deployment, as in MicroRemed's systems.
//!
//! Rules are checked in this fixed order: 11, 1, 2, 12, 13, 14, 15, 3, 4, 5, 6, 7, 8, 9, 10;
//! the first that fires decides, and its number is what [`triage`] returns.
//!
//! 1. **OOM**: a running pod above 92% of its memory limit is restarted.
//! 2. **Recovery, database first**: a database with no ready pod is recovered before
//!    anything else (rollback if its pods crash-loop on a new config version, node restart if
//!    its node is down, pod restart otherwise); then failed workers are recovered the same way.
//!    DIME's oracle never restarts a failed worker (spec §8) and keeps re-restarting a database
//!    that is already booting; this one skips targets that are booting or on cooldown.
//! 3. **Split brain / IO**: database disk busy above 80% -> throttle 0.5.
//! 4. **Hot shard**: one pod above 90% CPU while the other replicas of its deployment average
//!    below 60% (a skewed load balancer), or one worker node above 90% while the workers
//!    average below 60% -> move 30% of its traffic to the coolest healthy replica / worker.
//! 5. **Retry storm**: entry p99 above its objective while users send more than 1.5x the
//!    warm-up rate (DIME's `rr > 150`), or retries make some service see more than 1.5x as
//!    many calls per user request as at warm-up
//!    -> throttle to what the system served at warm-up (at most 0.4, DIME's rate); while
//!    most admitted requests still fail under a throttle, halve it (down to 0.1).
//! 6. **Zombie**: a worker node hosting pods below 10% CPU while p99 is above its objective ->
//!    move its traffic to a worker above 20% CPU.
//! 7. **Black swan**: two or more failed nodes (database alive) -> throttle 0.3.
//! 8. **Database stress**: database pods above 80% CPU -> throttle 0.7.
//! 9. **Safe scale**: the busiest stateless deployment above 75% CPU, error budget above 20
//!    and cloud budget left -> one more replica.
//! 10. **Healthy**: lift a throttle (doubling it, by at least 0.2) once p99 is within 80% of its objective, the database is
//!     below 70% CPU, nothing is down and the offered load is back within 1.2x its warm-up
//!     rate; else no-op.
//!
//! The database-recovery rule comes before the black-swan rule (the model card's priority fix).
//! A zero error budget reads as zero (DIME's oracle reads a falsy 0 as 100). A throttle rule
//! that would not lower the current throttle falls through to the next rule.
//!
//! Rule 11 comes first: a restart would come back on the same bad config. Rules 12-15 act
//! only on *unreplicated* deployments: at most two desired replicas (one, plus the surge
//! replica rule 13 adds) and not the database, which DIME's rules own. There a fault on one
//! pod is a fault of the service, and localising the service localises the pod; replicated
//! tiers stay with DIME's shard- and node-level rules (4, 6, 7). No DIME-like scenario has a
//! changed config version or an unreplicated deployment other than its database, so rules
//! 11-15 never fire there. Rules 12-14 never delete a pod on cooldown nor act on a deployment
//! one of whose pods was deleted within the restart cooldown (a `pod:` cooldown naming it);
//! rules 12 and 14 also wait while one of its pods boots, and rule 13 adds a replica only
//! while none does.
//!
//! 11. **Config rollback**: a deployment running a changed config version (`config_version >
//!     0`) while an alert fires anywhere, and that is itself degraded (an alert on it, an
//!     error rate of 5% or more, a p99 above the entry's objective, restarts, a pod at 95% CPU
//!     or 90% memory, or less than half its warm-up throughput), is rolled back (not again
//!     right after a rollback that found nothing to roll back to).
//! 12. **Entry stopped serving**: the entry deployment has a ready pod but completes less than
//!     5% of its warm-up throughput (at least 1 request/s then) while users still send at
//!     least half of it: its pod is black-holed or cut off (pod failure, heavy network loss or
//!     delay), so it is deleted (Kubernetes replaces it; a pod that serves nothing loses
//!     nothing). Nothing upstream of the entry can starve it; a deployment further down that
//!     stops serving may just be starved by a failing caller, so rule 14 decides there.
//! 13. **Saturated pod**: a running pod at 95% or more of its CPU limit while its deployment
//!     receives at most 1.5x its warm-up rate (a stressor, not load), or at 50% or more of its
//!     memory limit (healthy pods of the built-in systems stay below 20%): deleted once another
//!     ready, unsaturated pod of the deployment serves; else, when it is the only one, with
//!     one desired replica and cloud budget left, a surge replica is added first (`scale +1`,
//!     then the delete once it is ready), so that the last ready pod of a service is never
//!     deleted while it still serves; without budget it is deleted at once. Several saturated
//!     pods are a load, not a pod fault: left to the other rules.
//! 14. **Follow the logs**: reads the answer to a `kubectl logs <service>` the oracle asked
//!     for (rule 15), counting, in the latest decision interval, the callees its timeouts
//!     (`call to Y after T`) and refused connections (`dial tcp Y`) name. A callee that looks
//!     healthy by its own metrics (error rate below 5% and p99 below half the timeout) while
//!     its caller times out on it or is refused is cut off, so its pod is deleted; a callee
//!     that is itself failing is followed (its logs are asked for next). Two or more healthy
//!     callees timing out, a healthy callee that was already replaced and still times out, or
//!     a caller that itself completes less than 70% of its warm-up throughput (its own
//!     requests are lost on the way in) point at the caller's own network instead: the
//!     caller's pod is deleted. A data store (database or cache) that fails by itself (an
//!     alert on it, an error rate of 10% or more, or a p99 above the entry's objective) and
//!     whose logs name no callee is the end of the chain (a stalled disk): its own pod is
//!     deleted (the database included: only rule 15 asks for logs, and it never fires on a
//!     DIME-like system); a service whose logs are quiet is only waiting on slow calls and is
//!     not blamed. A pod is deleted only if its deployment has a single pod (with several
//!     replicas the logs do not say which one is cut off).
//! 15. **Ask for logs**: while a latency or error alert fires, asks for the logs of a failing
//!     unreplicated deployment (an alert on it or an error rate of 10% or more): the one with
//!     the highest error rate, then the lowest p99, first (errors thin out and latency adds up
//!     along a chain of failing calls, so it is the closest to the fault), or the next one
//!     after the deployment whose logs named nothing.
//!
//! Rules 12, 14 and 15 stay out of an overload (users sending more than 1.5x the entry's
//! warm-up rate), which rules 5 and 9 own: there pods fail without being at fault.
//!
//! What the observation cannot show, no rule can remediate: a fault without symptoms (disk
//! latency on a pod whose operations touch no disk), or a network fault on one of several
//! replicas (no per-pod latency or caller-side metric says which one). With a single callee
//! named, a delayed callee and a delayed caller look alike (equal timeouts chain up): rule 14
//! replaces the callee first and the caller next.
//!
//! ```
//! use sim_agents::{oracle, observation::Observation, action::Action};
//! let obs = Observation::empty();
//! assert_eq!(oracle::triage(&obs).1, Action::NoOp);
//! ```

use crate::action::{Action, QueryKind, Replicas};
use crate::observation::Observation;
use sim_core::scenario::ServiceKind;
use sim_core::telemetry::Phase;

/// The rule that decided (1-15, see the [module docs](self) for the order) and the action.
pub fn triage(obs: &Observation) -> (u8, Action) {
    if let Some(a) = rule_config_rollback(obs) {
        return (11, a);
    }
    if let Some(a) = rule_oom(obs) {
        return (1, a);
    }
    if let Some(a) = rule_recovery(obs) {
        return (2, a);
    }
    if let Some(a) = rule_stopped_serving(obs) {
        return (12, a);
    }
    if let Some(a) = rule_saturated_pod(obs) {
        return (13, a);
    }
    if let Some(a) = rule_follow_logs(obs) {
        return (14, a);
    }
    if let Some(a) = rule_ask_logs(obs) {
        return (15, a);
    }
    let throttle = |rate: f64| -> Option<Action> {
        (obs.throttle > rate + 1e-9).then_some(Action::Throttle { rate })
    };
    let db_nodes = obs.database_nodes();
    let workers: Vec<usize> = (0..obs.nodes.len())
        .filter(|i| !db_nodes.contains(&(*i as u32)) && obs.nodes[*i].up)
        .collect();
    if obs.io_wait > 0.80
        && let Some(a) = throttle(0.5)
    {
        return (3, a);
    }
    let visible: Vec<usize> = workers
        .iter()
        .copied()
        .filter(|&i| obs.nodes[i].visible && obs.nodes[i].cpu >= 0.0)
        .collect();
    let hosts_pods = |i: usize| obs.pods.iter().any(|p| p.node == Some(i as u32) && p.ready);
    // a hot pod among cool replicas (a skewed load balancer): move traffic to the coolest one
    for (si, _) in obs.services.iter().enumerate() {
        let pods: Vec<_> = obs
            .pods
            .iter()
            .filter(|p| {
                p.service == si as u32 && p.ready && p.phase == Phase::Running && p.cpu >= 0.0
            })
            .collect();
        if pods.len() < 2 {
            continue;
        }
        if let Some(h) = pods.iter().find(|p| p.cpu > 0.90) {
            let others: Vec<_> = pods.iter().filter(|p| p.name != h.name).collect();
            let avg = others.iter().map(|p| p.cpu).sum::<f64>() / others.len() as f64;
            if avg < 0.60
                && let Some(c) = others.iter().min_by(|a, b| a.cpu.total_cmp(&b.cpu))
            {
                return (
                    4,
                    Action::Reroute {
                        from: h.name.clone(),
                        to: c.name.clone(),
                        fraction: 0.3,
                    },
                );
            }
        }
    }
    if !visible.is_empty() {
        let avg = visible.iter().map(|&i| obs.nodes[i].cpu).sum::<f64>() / visible.len() as f64;
        if avg < 0.60
            && let Some(&h) = visible.iter().find(|&&i| obs.nodes[i].cpu > 0.90)
            && let Some(&c) = visible
                .iter()
                .filter(|&&i| i != h && !obs.failed_nodes.contains(&(i as u32)) && hosts_pods(i))
                .min_by(|&&a, &&b| obs.nodes[a].cpu.total_cmp(&obs.nodes[b].cpu))
        {
            return (
                4,
                Action::Reroute {
                    from: obs.nodes[h].name.clone(),
                    to: obs.nodes[c].name.clone(),
                    fraction: 0.3,
                },
            );
        }
    }
    let p99_high = obs.p99_latency > obs.p99_objective_ms;
    // load amplification: users send 1.5x the warm-up rate (DIME's `rr > 150` at base 100), or
    // retries make some service see 1.5x as many calls per user request as at warm-up
    let entry_base = entry_baseline(obs);
    let surge = load_surge(obs);
    let retry_amp = entry_base > 1.0
        && obs.request_rate > 1.0
        && obs.services.iter().any(|s| {
            s.baseline_rps > 1.0 && s.rps / obs.request_rate > 1.5 * s.baseline_rps / entry_base
        });
    let amplified = surge || retry_amp;
    if p99_high && amplified {
        // shed down to what the system served at warm-up (at most 0.4, DIME's rate); if a
        // throttle in force has not stopped the storm (most admitted requests still fail),
        // halve it
        let fit = if obs.request_rate > 0.0 && entry_base > 0.0 {
            0.9 * entry_base / obs.request_rate
        } else {
            0.4
        };
        let target = (fit.min(0.4) * 20.0).floor().max(2.0) / 20.0;
        if let Some(a) = throttle(target) {
            return (5, a);
        }
        if obs.throttle < 1.0 && obs.availability < 0.5 * obs.throttle && obs.throttle > 0.1 + 1e-9
        {
            let r = ((obs.throttle * 0.5 * 20.0).floor() / 20.0).max(0.1);
            return (5, Action::Throttle { rate: r });
        }
    }
    if p99_high
        && let Some(&z) = visible
            .iter()
            .find(|&&i| obs.nodes[i].cpu < 0.10 && hosts_pods(i))
        && let Some(&to) = visible.iter().find(|&&i| i != z && obs.nodes[i].cpu > 0.20)
    {
        return (
            6,
            Action::Reroute {
                from: obs.nodes[z].name.clone(),
                to: obs.nodes[to].name.clone(),
                fraction: 0.3,
            },
        );
    }
    let db_alive = obs
        .database()
        .is_none_or(|d| obs.services[d].ready_pods > 0);
    if obs.failed_nodes.len() >= 2
        && db_alive
        && let Some(a) = throttle(0.3)
    {
        return (7, a);
    }
    if let Some(d) = obs.database() {
        let db_cpu = obs
            .pods
            .iter()
            .filter(|p| p.service == d as u32 && p.phase == Phase::Running)
            .map(|p| p.cpu)
            .fold(0.0f64, f64::max);
        if db_cpu > 0.80
            && let Some(a) = throttle(0.7)
        {
            return (8, a);
        }
    }
    if obs.error_budget > 20.0 && obs.cloud_budget > 0 {
        let busiest = obs
            .services
            .iter()
            .filter(|s| {
                matches!(s.kind, ServiceKind::Stateless | ServiceKind::Gateway)
                    && s.desired_replicas > 0
            })
            .max_by(|a, b| a.cpu.total_cmp(&b.cpu));
        if let Some(s) = busiest
            && s.cpu > 0.75
            && s.ready_pods >= s.desired_replicas
        {
            return (
                9,
                Action::Scale {
                    target: Some(s.name.clone()),
                    replicas: Replicas::Up(1),
                },
            );
        }
    }
    // lift a throttle once latency is well within its objective, nothing is down and the
    // offered load is back to normal
    let db_hot = obs.database().is_some_and(|d| obs.services[d].cpu > 0.7);
    let unavailable = obs.alerts.iter().any(|a| a.metric == "unavailable");
    let load_normal = entry_base <= 0.0 || obs.request_rate <= 1.2 * entry_base;
    if obs.throttle < 1.0
        && obs.p99_latency <= 0.8 * obs.p99_objective_ms
        && !db_hot
        && !unavailable
        && load_normal
    {
        // gradually: a metastable system can fall back into the storm at full load
        let r = (obs.throttle * 2.0).max(obs.throttle + 0.2).min(1.0);
        return (
            10,
            Action::Throttle {
                rate: (r * 100.0).round() / 100.0,
            },
        );
    }
    (10, Action::NoOp)
}

fn on_cooldown(obs: &Observation, key: &str) -> bool {
    obs.cooldowns.contains_key(key)
}

fn rule_oom(obs: &Observation) -> Option<Action> {
    obs.pods
        .iter()
        .find(|p| {
            p.phase == Phase::Running
                && p.memory > 0.92
                && !on_cooldown(obs, &format!("pod:{}", p.name))
        })
        .map(|p| Action::RestartPod {
            target: p.name.clone(),
        })
}

/// Recovery of one deployment with no ready pod, or `None` if it is already booting.
fn recover_service(obs: &Observation, s: usize) -> Option<Action> {
    let svc = &obs.services[s];
    let pods: Vec<_> = obs.pods.iter().filter(|p| p.service == s as u32).collect();
    let booting = pods
        .iter()
        .any(|p| matches!(p.phase, Phase::Starting | Phase::Pending) && !p.ready);
    let crashing = pods
        .iter()
        .any(|p| matches!(p.phase, Phase::Failed | Phase::CrashLoopBackOff));
    if crashing && svc.config_version > 0 && !on_cooldown(obs, &format!("svc:{}", svc.name)) {
        return Some(Action::Rollback {
            target: svc.name.clone(),
        });
    }
    // a pod on a down node: reboot the node
    for p in &pods {
        if let Some(n) = p.node
            && !obs.nodes[n as usize].up
            && !on_cooldown(obs, &format!("node:{}", obs.nodes[n as usize].name))
        {
            return Some(Action::RestartNode {
                target: obs.nodes[n as usize].name.clone(),
            });
        }
    }
    if booting {
        return None;
    }
    if let Some(p) = pods.iter().find(|p| {
        matches!(
            p.phase,
            Phase::Failed | Phase::CrashLoopBackOff | Phase::OomKilled
        ) && !on_cooldown(obs, &format!("pod:{}", p.name))
    }) {
        return Some(Action::RestartPod {
            target: p.name.clone(),
        });
    }
    if !pods.is_empty() && !on_cooldown(obs, &format!("svc:{}", svc.name)) {
        return Some(Action::RestartDeployment {
            target: svc.name.clone(),
        });
    }
    None
}

fn rule_recovery(obs: &Observation) -> Option<Action> {
    let down = |s: usize| obs.services[s].desired_replicas > 0 && obs.services[s].ready_pods == 0;
    if let Some(d) = obs.database()
        && down(d)
        && let Some(a) = recover_service(obs, d)
    {
        return Some(a);
    }
    for s in 0..obs.services.len() {
        if Some(s) != obs.database()
            && down(s)
            && let Some(a) = recover_service(obs, s)
        {
            return Some(a);
        }
    }
    // a deployment crash-looping on a new config version while others still serve
    for (s, svc) in obs.services.iter().enumerate() {
        let crashing = obs.pods.iter().any(|p| {
            p.service == s as u32 && matches!(p.phase, Phase::Failed | Phase::CrashLoopBackOff)
        });
        if crashing && svc.config_version > 0 && !on_cooldown(obs, &format!("svc:{}", svc.name)) {
            return Some(Action::Rollback {
                target: svc.name.clone(),
            });
        }
    }
    // a node that is down
    for (i, n) in obs.nodes.iter().enumerate() {
        if !n.up
            && obs.failed_nodes.contains(&(i as u32))
            && !on_cooldown(obs, &format!("node:{}", n.name))
        {
            return Some(Action::RestartNode {
                target: n.name.clone(),
            });
        }
    }
    None
}

// ---------------------------------------------------------------- rules 11-15

/// CPU share of its limit at which a pod counts as saturated (healthy pods of the built-in
/// systems peak near 65%).
const SATURATED_CPU: f64 = 0.95;
/// Memory share of its limit at which a pod counts as hogging memory (healthy pods of the
/// built-in systems stay below 20%).
const HOG_MEMORY: f64 = 0.50;

/// The deployment a pod name belongs to (`<deployment>-<suffix>`), for pods that may be gone.
fn pod_deployment(pod: &str) -> &str {
    pod.rsplit_once('-').map_or(pod, |(d, _)| d)
}

/// Rules 12-15 act on deployments of at most two desired replicas (one, plus a surge replica)
/// other than the database, which DIME's rules own.
fn unreplicated(obs: &Observation, s: usize) -> bool {
    let d = obs.services[s].desired_replicas;
    (1..=2).contains(&d) && obs.database() != Some(s)
}

/// A pod of deployment `s` is booting (scheduled or starting, not ready yet).
fn booting(obs: &Observation, s: usize) -> bool {
    obs.pods.iter().any(|p| {
        p.service == s as u32 && !p.ready && matches!(p.phase, Phase::Pending | Phase::Starting)
    })
}

/// A pod of deployment `s` was deleted (or restarted) within the restart cooldown.
fn recently_replaced(obs: &Observation, s: usize) -> bool {
    let name = &obs.services[s].name;
    obs.cooldowns.keys().any(|k| {
        k.strip_prefix("pod:").is_some_and(|pod| {
            obs.pods
                .iter()
                .find(|p| p.name == pod)
                .map_or(pod_deployment(pod) == name, |p| p.service == s as u32)
        })
    })
}

/// Users send more than 1.5x the entry's warm-up rate (DIME's `rr > 150`): an overload, which
/// DIME's rules (throttle, scale) own; rules 12, 14 and 15 stay out of it (a pod of an
/// overloaded system fails without being at fault).
fn load_surge(obs: &Observation) -> bool {
    let base = entry_baseline(obs);
    base > 1.0 && obs.request_rate > 1.5 * base
}

/// The entry service's warm-up rate (0 when the observation has no entry service).
fn entry_baseline(obs: &Observation) -> f64 {
    obs.service(&obs.entry_service)
        .map_or(0.0, |s| s.baseline_rps)
}

/// Neither booting nor recently replaced: a deployment rules 12-14 may act on.
fn settled(obs: &Observation, s: usize) -> bool {
    !booting(obs, s) && !recently_replaced(obs, s)
}

/// A latency or error-rate SLO alert fires (users are affected).
fn slo_alert(obs: &Observation) -> bool {
    obs.alerts
        .iter()
        .any(|a| a.metric == "latency_p99" || a.metric == "error_rate")
}

/// Deletes the only ready running pod of deployment `s`, unless it is on cooldown.
fn delete_sole_pod(obs: &Observation, s: usize) -> Option<Action> {
    let mut live = obs
        .pods
        .iter()
        .filter(|p| p.service == s as u32 && p.phase != Phase::Terminated);
    match (live.next(), live.next()) {
        (Some(p), None)
            if p.ready
                && p.phase == Phase::Running
                && !on_cooldown(obs, &format!("pod:{}", p.name)) =>
        {
            Some(Action::RestartPod {
                target: p.name.clone(),
            })
        }
        _ => None,
    }
}

/// Rule 11: roll back a changed config version of a degraded deployment.
fn rule_config_rollback(obs: &Observation) -> Option<Action> {
    if obs.alerts.is_empty() {
        return None;
    }
    obs.services.iter().enumerate().find_map(|(s, svc)| {
        if svc.config_version == 0 {
            return None;
        }
        // the last action tried to roll it back and there was nothing to roll back to
        let refused = format!("service {} has no earlier config version", svc.name);
        if on_cooldown(obs, &format!("svc:{}", svc.name))
            || obs.action_errors.iter().any(|e| e.contains(&refused))
        {
            return None;
        }
        let pod_trouble = obs.pods.iter().filter(|p| p.service == s as u32).any(|p| {
            p.restarts > 0
                || p.cpu >= SATURATED_CPU
                || p.memory >= 0.90
                || matches!(
                    p.phase,
                    Phase::Failed | Phase::OomKilled | Phase::CrashLoopBackOff
                )
        });
        let degraded = obs.alerts.iter().any(|a| a.service == svc.name)
            || svc.error_rate >= 0.05
            || svc.p99_ms > obs.p99_objective_ms
            || svc.restarts > 0
            || (svc.baseline_rps >= 1.0 && svc.rps < 0.5 * svc.baseline_rps)
            || pod_trouble;
        degraded.then(|| Action::Rollback {
            target: svc.name.clone(),
        })
    })
}

/// Rule 12: delete the pod of an unreplicated entry deployment that stopped serving.
fn rule_stopped_serving(obs: &Observation) -> Option<Action> {
    if load_surge(obs) {
        return None;
    }
    let entry = obs
        .services
        .iter()
        .position(|s| s.name == obs.entry_service)?;
    let svc = &obs.services[entry];
    let stopped = unreplicated(obs, entry)
        && svc.ready_pods >= 1
        && svc.baseline_rps >= 1.0
        && obs.request_rate >= 0.5 * svc.baseline_rps
        && svc.rps < 0.05 * svc.baseline_rps;
    if !stopped || !settled(obs, entry) {
        return None;
    }
    obs.pods
        .iter()
        .find(|p| {
            p.service == entry as u32
                && p.ready
                && p.phase == Phase::Running
                && !on_cooldown(obs, &format!("pod:{}", p.name))
        })
        .map(|p| Action::RestartPod {
            target: p.name.clone(),
        })
}

/// Rule 13: replace a pod saturated by something other than its load (surge first when it is
/// the deployment's only replica).
fn rule_saturated_pod(obs: &Observation) -> Option<Action> {
    for (s, svc) in obs.services.iter().enumerate() {
        if !unreplicated(obs, s) || recently_replaced(obs, s) {
            continue;
        }
        let load_normal = svc.rps <= 1.5 * svc.baseline_rps;
        let saturated = |p: &crate::observation::PodObs| {
            (p.cpu >= SATURATED_CPU && load_normal) || p.memory >= HOG_MEMORY
        };
        let running: Vec<_> = obs
            .pods
            .iter()
            .filter(|p| p.service == s as u32 && p.ready && p.phase == Phase::Running)
            .collect();
        let Some(bad) = running
            .iter()
            .find(|p| saturated(p) && !on_cooldown(obs, &format!("pod:{}", p.name)))
        else {
            continue;
        };
        let delete = Action::RestartPod {
            target: bad.name.clone(),
        };
        if running.iter().any(|p| p.name != bad.name && !saturated(p)) {
            return Some(delete);
        }
        // every serving pod saturated: a surge replica still booting, or (several of them) a
        // load the deployment cannot carry, which is not a pod fault
        if booting(obs, s) || running.len() > 1 {
            continue;
        }
        if svc.desired_replicas == 1 && obs.cloud_budget > 0 {
            return Some(Action::Scale {
                target: Some(svc.name.clone()),
                replicas: Replicas::Up(1),
            });
        }
        return Some(delete);
    }
    None
}

/// A duration as `SimDuration` prints it (`2s`, `500ms`, `750us`, `10ns`), in ms.
fn parse_duration_ms(t: &str) -> Option<f64> {
    let (num, scale) = if let Some(v) = t.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = t.strip_suffix("ns") {
        (v, 1e-6)
    } else {
        (t.strip_suffix('s')?, 1e3)
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// What a log line says about a callee: `(callee, timeout in ms)` for a timeout, `(callee,
/// None)` for a refused connection; with the line's time in seconds.
fn callee_of(line: &str) -> Option<(f64, &str, Option<f64>)> {
    let time: f64 = line.strip_prefix('[')?.split_once("s]")?.0.parse().ok()?;
    if let Some((_, rest)) = line.split_once("upstream request timeout: call to ") {
        let (callee, t) = rest.split_once(" after ")?;
        return Some((time, callee, parse_duration_ms(t.trim())));
    }
    if let Some((_, rest)) = line.split_once("dial tcp ") {
        let (callee, why) = rest.split_once(": connect: connection refused")?;
        if why.contains("no such host") {
            return None;
        }
        return Some((time, callee, None));
    }
    None
}

/// Rule 14: act on the logs of a deployment rule 15 asked for.
fn rule_follow_logs(obs: &Observation) -> Option<Action> {
    if load_surge(obs) {
        return None;
    }
    // the decision interval: the first observation comes after one interval of warm-up
    let interval = obs.time_ns / (obs.step as u64 + 1);
    let fresh_after = obs.time_ns.saturating_sub(interval) as f64 / 1e9;
    for q in &obs.query_results {
        if q.kind != QueryKind::Logs {
            continue;
        }
        let Some(caller) = obs.services.iter().position(|s| s.name == q.target) else {
            continue;
        };
        // callee -> (lines, shortest timeout named, refused)
        let mut named: Vec<(usize, u32, Option<f64>, bool)> = Vec::new();
        for line in &q.lines {
            let Some((time, callee, timeout)) = callee_of(line) else {
                continue;
            };
            let Some(y) = obs.services.iter().position(|s| s.name == callee) else {
                continue;
            };
            if time <= fresh_after || y == caller {
                continue;
            }
            match named.iter_mut().find(|n| n.0 == y) {
                Some(n) => {
                    n.1 += 1;
                    n.2 = match (n.2, timeout) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    n.3 |= timeout.is_none();
                }
                None => named.push((y, 1, timeout, timeout.is_none())),
            }
        }
        if named.is_empty() {
            // the end of the chain: a data store that fails by itself and blames no callee
            // (its disk stalls), so its own pod goes; a service's quiet logs only mean its
            // calls are slow, not timed out yet, so it is not blamed
            let c = &obs.services[caller];
            let data_store = matches!(c.kind, ServiceKind::Database | ServiceKind::Cache);
            let failing_itself = c.error_rate >= 0.10
                || c.p99_ms > obs.p99_objective_ms
                || obs
                    .alerts
                    .iter()
                    .any(|a| a.service == c.name && a.metric != "unavailable");
            // the database too: the logs that led here were asked for by rule 15, which never
            // fires on a DIME-like system
            if data_store
                && failing_itself
                && (1..=2).contains(&c.desired_replicas)
                && settled(obs, caller)
                && let Some(a) = delete_sole_pod(obs, caller)
            {
                return Some(a);
            }
            continue;
        }
        // healthy by its own metrics: it answers what reaches it, in time
        let healthy = |&(y, _, timeout, _): &(usize, u32, Option<f64>, bool)| {
            let svc = &obs.services[y];
            svc.error_rate < 0.05 && svc.p99_ms < 0.5 * timeout.unwrap_or(1000.0)
        };
        named.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let caller_cut_off = named.len() >= 2 && named.iter().all(healthy);
        let (y, _, _, refused) = named[0];
        let suspect = if caller_cut_off {
            caller
        } else if refused || healthy(&named[0]) {
            let c = &obs.services[caller];
            let caller_starved = c.baseline_rps >= 1.0 && c.rps < 0.7 * c.baseline_rps;
            if refused && recently_replaced(obs, y) {
                // no endpoint yet: its replacement may still be settling
                continue;
            }
            if recently_replaced(obs, y) || (!refused && caller_starved) {
                // replacing the callee did not help, or the caller's own requests are lost on
                // their way in: the caller's side of the call is cut off
                caller
            } else {
                y
            }
        } else {
            // the callee fails itself: follow it
            if booting(obs, y) || obs.services[y].ready_pods == 0 {
                continue;
            }
            return Some(Action::Query {
                kind: QueryKind::Logs,
                target: obs.services[y].name.clone(),
            });
        };
        if settled(obs, suspect)
            && let Some(a) = delete_sole_pod(obs, suspect)
        {
            return Some(a);
        }
    }
    None
}

/// Rule 15: ask for the logs of the unreplicated deployment that fails most.
fn rule_ask_logs(obs: &Observation) -> Option<Action> {
    if !slo_alert(obs) || load_surge(obs) {
        return None;
    }
    let mut failing: Vec<usize> = (0..obs.services.len())
        .filter(|&s| {
            let svc = &obs.services[s];
            unreplicated(obs, s)
                && svc.ready_pods >= 1
                && !booting(obs, s)
                && (obs
                    .alerts
                    .iter()
                    .any(|a| a.service == svc.name && a.metric != "unavailable")
                    || (svc.error_rate >= 0.10 && svc.rps > 0.0))
        })
        .collect();
    if failing.is_empty() {
        return None;
    }
    // errors thin out up a chain of failing calls (callers mix in calls that succeed) and
    // latency adds up along it: the deployment that fails most, and among those the fastest,
    // is the closest to the fault
    failing.sort_by(|&a, &b| {
        let (x, y) = (&obs.services[a], &obs.services[b]);
        y.error_rate
            .total_cmp(&x.error_rate)
            .then(x.p99_ms.total_cmp(&y.p99_ms))
            .then(a.cmp(&b))
    });
    // the next one after a deployment whose logs were just read
    let asked = obs.query_results.iter().find_map(|q| {
        (q.kind == QueryKind::Logs)
            .then(|| {
                failing
                    .iter()
                    .position(|&s| obs.services[s].name == q.target)
            })
            .flatten()
    });
    let pick = asked.map_or(0, |i| (i + 1) % failing.len());
    Some(Action::Query {
        kind: QueryKind::Logs,
        target: obs.services[failing[pick]].name.clone(),
    })
}
