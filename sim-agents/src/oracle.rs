//! The triage oracle: the DIME model card's 10-rule decision tree, generalised to any
//! topology and without DIME's oracle bugs.
//!
//! Rules, checked in this fixed order; the first that fires decides:
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
//! ```
//! use sim_agents::{oracle, observation::Observation, action::Action};
//! let obs = Observation::empty();
//! assert_eq!(oracle::triage(&obs).1, Action::NoOp);
//! ```

use crate::action::{Action, Replicas};
use crate::observation::Observation;
use sim_core::scenario::ServiceKind;
use sim_core::telemetry::Phase;

/// The rule that decided (1-10) and the action.
pub fn triage(obs: &Observation) -> (u8, Action) {
    if let Some(a) = rule_oom(obs) {
        return (1, a);
    }
    if let Some(a) = rule_recovery(obs) {
        return (2, a);
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
    let entry_base = obs
        .service(&obs.entry_service)
        .map(|s| s.baseline_rps)
        .unwrap_or(0.0);
    let surge = entry_base > 1.0 && obs.request_rate > 1.5 * entry_base;
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
        let entry_base = obs
            .service(&obs.entry_service)
            .map(|s| s.baseline_rps)
            .unwrap_or(0.0);
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
    let entry_base = obs
        .service(&obs.entry_service)
        .map(|s| s.baseline_rps)
        .unwrap_or(0.0);
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
