//! The environment's behaviour on a small scenario: determinism, fork and snapshot, action
//! effects and costs, errors as observations, batched environments, GRPO groups.

mod common;

use sim_agents::action::{Action, QueryKind, Replicas};
use sim_agents::grpo::{group_rollout, group_rollout_text};
use sim_agents::policy::{OraclePolicy, Policy, RandomPolicy, TextPolicy, policy_by_name};
use sim_agents::render::PromptFormat;
use sim_agents::{Env, EnvOptions, Step, VecEnv, run_episode};

fn json(s: &Step) -> String {
    serde_json::to_string(s).unwrap()
}

fn script() -> Vec<Action> {
    vec![
        Action::NoOp,
        Action::Throttle { rate: 0.6 },
        Action::Query {
            kind: QueryKind::Logs,
            target: "db".into(),
        },
        Action::RestartPod {
            target: "api-0".into(),
        },
        Action::Scale {
            target: Some("api".into()),
            replicas: Replicas::Up(1),
        },
        Action::Throttle { rate: 1.0 },
        Action::NoOp,
    ]
}

#[test]
fn same_seed_same_bytes_and_seeds_differ() {
    let sc = common::small();
    let run = |seed| {
        let mut e = Env::new(sc.clone());
        let mut out = vec![serde_json::to_string(&e.reset(seed)).unwrap()];
        for a in script() {
            out.push(json(&e.step(a)));
        }
        out
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn two_envs_in_one_process_share_nothing() {
    let sc = common::small();
    let alone = |seed| {
        let mut e = Env::new(sc.clone());
        e.reset(seed);
        script()
            .into_iter()
            .map(|a| e.step(a).reward.total)
            .collect::<Vec<_>>()
    };
    let (ra, rb) = (alone(1), alone(2));
    let mut a = Env::new(sc.clone());
    let mut b = Env::new(sc.clone());
    a.reset(1);
    b.reset(2);
    let mut ia = vec![];
    let mut ib = vec![];
    for act in script() {
        ia.push(a.step(act.clone()).reward.total);
        ib.push(b.step(act).reward.total);
    }
    assert_eq!(ia, ra);
    assert_eq!(ib, rb);
}

#[test]
fn fork_and_snapshot_continue_identically() {
    let mut e = Env::new(common::small());
    e.reset(9);
    e.step(Action::Throttle { rate: 0.5 });
    e.step(Action::NoOp);
    let mut f = e.fork();
    let bytes = e.snapshot();
    let mut r = Env::restore(&bytes).unwrap();
    for a in script() {
        let x = json(&e.step(a.clone()));
        assert_eq!(x, json(&f.step(a.clone())));
        assert_eq!(x, json(&r.step(a)));
    }
    assert!(Env::restore(&bytes[..bytes.len() / 2]).is_err());
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n / 3] ^= 0x5a;
    let _ = Env::restore(&bad); // an error or a valid env, never a panic
}

/// `observation()` rebuilds the latest observation (reset's, then each step's, restored
/// copies included) without its query answers and action errors. It once observed an empty
/// window (every rate and latency zero), and GRPO's triage oracle read that.
#[test]
fn observation_rebuilds_the_latest_one() {
    let strip = |mut o: sim_agents::Observation| {
        o.query_results.clear();
        o.action_errors.clear();
        o
    };
    let mut e = Env::new(common::small());
    let first = e.reset(4);
    assert_eq!(e.observation(), strip(first));
    for a in script() {
        let s = e.step(a);
        let o = e.observation();
        assert_eq!(o, strip(s.observation.clone()));
        assert!(o.services.iter().any(|s| s.rps > 0.0), "{o:?}");
        let r = Env::restore(&e.snapshot()).unwrap();
        assert_eq!(r.observation(), o);
    }
}

#[test]
fn errors_are_observations() {
    let mut e = Env::new(common::small());
    e.reset(1);
    let t0 = e.episode().now();
    let s = e.step_text("kubectl throttle ingress --rate=1.2.3");
    assert!(
        s.observation.action_errors[0].starts_with("ParseError"),
        "{:?}",
        s.observation.action_errors
    );
    assert!(!s.info.applied);
    assert!(e.episode().now() > t0, "the step still advances time");
    let s = e.step(Action::RestartPod {
        target: "no-such-pod".into(),
    });
    assert!(s.observation.action_errors[0].starts_with("UnknownTarget"));
    let s = e.step(Action::Scale {
        target: Some("api".into()),
        replicas: Replicas::To(50),
    });
    assert!(s.observation.action_errors[0].starts_with("InsufficientFunds"));
}

#[test]
fn actions_take_effect_with_delays_and_costs() {
    let mut e = Env::new(common::small());
    let o = e.reset(2);
    assert_eq!(o.cloud_budget, 8);
    // scale: budget spent, new pod not ready at once
    let s = e.step(Action::Scale {
        target: Some("api".into()),
        replicas: Replicas::Up(1),
    });
    assert!(s.info.applied);
    assert_eq!(s.observation.cloud_budget, 7);
    assert_eq!(s.observation.service("api").unwrap().desired_replicas, 3);
    // restart: cooldown on a repeat
    let pod = s
        .observation
        .pods
        .iter()
        .find(|p| p.name.starts_with("db"))
        .unwrap()
        .name
        .clone();
    let s = e.step(Action::RestartPod {
        target: pod.clone(),
    });
    assert!(s.info.applied, "{:?}", s.observation.action_errors);
    let pods_db: Vec<_> = s
        .observation
        .pods
        .iter()
        .filter(|p| p.service == 1)
        .collect();
    assert!(
        pods_db.iter().all(|p| p.name != pod || !p.ready)
            || pods_db.iter().any(|p| p.restarts > 0 || p.name != pod)
    );
    assert!(s.observation.cooldowns.contains_key(&format!("pod:{pod}")));
    // throttle: shed load, error budget burnt
    let eb = s.observation.error_budget;
    let s = e.step(Action::Throttle { rate: 0.0 });
    assert!(
        s.observation.availability < 0.2,
        "{}",
        s.observation.availability
    );
    assert!(s.observation.error_budget < eb);
    assert!(s.reward.components["shedding"] < -0.7);
    // query: the answer is in the next observation
    let s = e.step(Action::Query {
        kind: QueryKind::Metrics,
        target: "api".into(),
    });
    assert_eq!(s.observation.query_results.len(), 1);
    assert!(s.observation.query_results[0].lines[0].starts_with("service api"));
}

#[test]
fn partial_observability_drops_and_queries_restore() {
    let opts = EnvOptions {
        dropout: 0.6,
        ..Default::default()
    };
    let mut e = Env::try_new(common::small(), opts).unwrap();
    e.reset(4);
    let mut dropped = None;
    for _ in 0..5 {
        let s = e.step(Action::NoOp);
        if let Some(i) = s.observation.cpu_loads.iter().position(|&c| c == -1.0) {
            dropped = Some(s.observation.nodes[i].name.clone());
            assert_eq!(s.observation.telemetry_status[&(i as u32)], "timeout");
            break;
        }
    }
    let n = dropped.expect("with dropout 0.6 a node drops within 5 steps");
    let s = e.step(Action::Query {
        kind: QueryKind::Logs,
        target: n.clone(),
    });
    let i = s
        .observation
        .nodes
        .iter()
        .position(|x| x.name == n)
        .unwrap();
    assert!(s.observation.nodes[i].visible);
}

#[test]
fn vec_env_is_thread_count_invariant_and_auto_resets() {
    let sc = common::small();
    let run = |threads| {
        let mut v = VecEnv::new(std::slice::from_ref(&sc), 3, 11, threads).unwrap();
        let mut obs = v.reset();
        let mut pol = RandomPolicy::new(3);
        let mut out = vec![];
        let mut finals = 0;
        for _ in 0..15 {
            let steps = v.step(pol.act(&obs));
            finals += steps
                .iter()
                .filter(|s| s.info.final_observation.is_some())
                .count();
            out.extend(steps.iter().cloned());
            obs = steps.into_iter().map(|s| s.observation).collect();
        }
        (out, finals, v.episodes_done)
    };
    let a = run(1);
    // whole steps (observations, rewards, infos), whatever the thread count: 2 and 3
    // threads split the 3 environments differently, 0 takes every core
    for threads in [2, 3, 0] {
        assert!(a == run(threads), "{threads} threads differ from 1");
    }
    assert!(
        a.1 >= 3,
        "each env ended an episode (12 steps) and auto-reset"
    );
}

/// `reset` starts episode 0 of every environment, a second `reset` episode 1 (it once
/// replayed the running episode's seed), and auto-resets go on from there.
#[test]
fn vec_env_reset_starts_the_next_episode() {
    let sc = common::small();
    let mut v = VecEnv::new(std::slice::from_ref(&sc), 2, 11, 1).unwrap();
    v.reset();
    let first: Vec<u64> = v.envs().iter().map(|e| e.seed()).collect();
    assert_eq!(first, [v.episode_seed(0, 0), v.episode_seed(1, 0)]);
    v.step(vec![Action::NoOp; 2]);
    v.reset();
    let second: Vec<u64> = v.envs().iter().map(|e| e.seed()).collect();
    assert_eq!(second, [v.episode_seed(0, 1), v.episode_seed(1, 1)]);
    let mut seen = vec![first[0], second[0]];
    for _ in 0..40 {
        v.step(vec![Action::NoOp; 2]);
        if v.envs()[0].seed() != *seen.last().unwrap() {
            seen.push(v.envs()[0].seed());
        }
    }
    assert_eq!(
        seen[2],
        v.episode_seed(0, 2),
        "auto-reset continues the count"
    );
    let mut uniq = seen.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), seen.len(), "no seed replayed: {seen:?}");
}

/// Every spelling of a node's name reaches that node (`node1`, `node_1`, `NODE-1`,
/// `frontend-node-1` all mean the node named `node-1`, index 0 here); a bare number is an
/// index, as in DIME's prompts. `node1` once meant index 1, another node than `node-1`.
#[test]
fn node_spellings_agree_with_names() {
    let mut base = Env::new(common::small_named_nodes());
    base.reset(3);
    let restarted = |target: &str| {
        let mut e = base.fork();
        let s = e.step(Action::RestartNode {
            target: target.into(),
        });
        assert!(
            s.info.applied,
            "{target}: {:?}",
            s.observation.action_errors
        );
        (0..2)
            .map(|n| e.sim().node_restarts(n).unwrap())
            .collect::<Vec<_>>()
    };
    for t in [
        "node-1",
        "node1",
        "node_1",
        "NODE-1",
        "frontend-node-1",
        "0",
    ] {
        assert_eq!(restarted(t), [1, 0], "{t}");
    }
    for t in ["node-2", "node2", "1"] {
        assert_eq!(restarted(t), [0, 1], "{t}");
    }
    assert!(base.targets_exist(&Action::RestartNode {
        target: "node_2".into()
    }));
    assert!(!base.targets_exist(&Action::RestartNode {
        target: "node-3".into()
    }));
}

/// The validity reward's target check agrees with what stepping does: an action whose
/// targets "exist" is never refused for an unknown or mismatched target (a rollback of a
/// node, or a reroute from a node to a pod, once scored as valid and then failed).
#[test]
fn targets_exist_agrees_with_apply() {
    let mut base = Env::new(common::small_named_nodes());
    base.reset(3);
    let reroute = |from: &str, to: &str| Action::Reroute {
        from: from.into(),
        to: to.into(),
        fraction: 0.5,
    };
    let rollback = |t: &str| Action::Rollback { target: t.into() };
    let api = base.sim().service_id("api").unwrap();
    let pods: Vec<String> = base
        .sim()
        .pods_of(api)
        .into_iter()
        .map(|p| p.name)
        .collect();
    let (p0, p1) = (pods[0].as_str(), pods[1].as_str());
    for (a, exists) in [
        (rollback("node-1"), false),
        (rollback("api"), true),
        (reroute("node-1", p0), false),
        (reroute(p0, "node-2"), false),
        (reroute("node-1", "node-2"), true),
        (reroute(p0, p1), true),
    ] {
        assert_eq!(base.targets_exist(&a), exists, "{a:?}");
        let s = base.fork().step(a.clone());
        let unknown = s
            .observation
            .action_errors
            .iter()
            .any(|e| e.starts_with("UnknownTarget"));
        assert_eq!(unknown, !exists, "{a:?}: {:?}", s.observation.action_errors);
    }
}

/// The error budget a step reports has paid for that step's own errors: budget after =
/// budget before + 2 (regeneration) - 10 x the interval's unavailability, in the step's
/// observation and reward state alike. It once charged the previous interval's errors.
#[test]
fn the_error_budget_pays_for_the_interval_just_run() {
    let mut e = Env::new(common::small());
    e.reset(2);
    let mut charged = false;
    for _ in 0..10 {
        let before = e.error_budget();
        let s = e.step(Action::NoOp);
        let rs = e.reward_state();
        let want = ((before + 2.0).min(100.0) - 10.0 * (1.0 - rs.availability)).clamp(0.0, 100.0);
        assert!(
            (e.error_budget() - want).abs() < 1e-9,
            "{} vs {want}",
            e.error_budget()
        );
        assert!((rs.error_budget - want).abs() < 1e-9);
        assert!((s.observation.error_budget - want).abs() <= 0.005 + 1e-9);
        charged |= rs.availability < 1.0;
        if s.terminated || s.truncated {
            break;
        }
    }
    assert!(charged, "the CPU hog makes some interval lose requests");
}

#[test]
fn grpo_identical_candidates_identical_rewards() {
    let mut e = Env::new(common::small());
    e.reset(3);
    for _ in 0..3 {
        e.step(Action::NoOp);
    }
    let c = vec![
        Action::NoOp,
        Action::Throttle { rate: 0.3 },
        Action::NoOp,
        Action::Throttle { rate: 0.3 },
    ];
    let g = group_rollout(&e, &c, 2);
    assert_eq!(g.rewards[0], g.rewards[2]);
    assert_eq!(g.rewards[1], g.rewards[3]);
    assert!(!g.zero_std);
    let texts = vec![
        "<reasoning>a</reasoning><action>{\"command\": \"kubectl throttle ingress --rate=0.5\"}</action>".to_string(),
        "<reasoning>a</reasoning><action>{\"command\": \"kubectl throttle ingress --rate=0.5\"}</action>".to_string(),
        "kubectl throttle ingress --rate=1.2.3".to_string(),
        "<reasoning>a</reasoning><action>{\"command\": \"no_op\"}</action>".to_string(),
    ];
    let g = group_rollout_text(&e, &texts, 1);
    assert_eq!(g.rewards[0], g.rewards[1]);
    assert!(
        g.rewards[2] < g.rewards[3],
        "an invalid command scores below a valid no-op"
    );
    // the group did not move the environment
    assert_eq!(e.steps(), 3);
}

#[test]
fn run_episode_and_policies() {
    let sc = common::small();
    for name in ["noop", "random", "oracle"] {
        let mut p = policy_by_name(name, 1).unwrap();
        let r = run_episode(&sc, p.as_mut(), 1);
        assert_eq!(r.policy, name);
        assert!(r.steps > 0 && r.events > 0 && r.return_.is_finite());
        assert_eq!(r.reward_components.len(), 7);
        // the RobustScorer baseline on the episode's telemetry ranks the CPU-hogged db first
        let loc = r.localization.as_ref().expect("a fault was injected");
        assert_eq!((loc.ac_at[0], loc.mrr), (1.0, 1.0), "{name}: {loc:?}");
        let back: sim_agents::EpisodeReport =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
    assert!(policy_by_name("nope", 0).is_err());
    // the oracle acting through text (prompt -> text -> parse) acts like the oracle
    let mut text = TextPolicy::oracle_text(PromptFormat::Dime);
    let a = run_episode(&sc, &mut text, 2);
    let b = run_episode(&sc, &mut OraclePolicy, 2);
    assert_eq!(a.return_, b.return_);
    assert_eq!(a.actions, b.actions);
}

#[test]
fn remediation_loop_reports() {
    let sc = common::small();
    let mut g = sim_agents::policy::OracleTextGenerator::default();
    let cfg = sim_agents::remediation::RemediationConfig {
        t_max: 2,
        ..Default::default()
    };
    // a generator that always asks for logs first, then the oracle's action is not knowable
    // from text; the scripted oracle generator is fed no observations, so it answers no_op
    let r = sim_agents::remediation::remediate(&sc, 1, &mut g, &cfg).unwrap();
    assert!(r.trials >= 1 && r.prompts >= 1 && r.prompt_chars > 0 && r.completion_chars > 0);
}

#[test]
fn rendering_is_deterministic_and_dime_shaped() {
    let mut e = Env::new(common::small());
    let o = e.reset(1);
    let a = sim_agents::render::dime_prompt(&o);
    let b = sim_agents::render::dime_prompt(&o);
    assert_eq!(a, b);
    assert!(a.user.contains("\"cpu_loads\""));
    let v = sim_agents::render::dime_observation_json(&o);
    for k in [
        "cpu_loads",
        "mem_utilizations",
        "queue_lengths",
        "failed_nodes",
        "latency_ms",
        "request_rate",
        "io_wait",
        "p99_latency",
        "error_budget",
        "request_rate_norm",
        "p99_latency_norm",
        "step",
        "task_hint",
        "task_score",
        "telemetry_status",
        "action_errors",
        "cloud_budget",
        "prometheus_metrics",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert_eq!(v.as_object().unwrap().len(), 18);
}

#[test]
fn a_throttle_on_a_closed_workload_sheds_part_of_the_load_not_all() {
    // closed users have no nominal rate: the limit follows the offered rate of the last
    // interval (it read an empty interval and admitted nothing)
    let mut e = Env::new(common::small_closed());
    e.reset(3);
    e.step(Action::NoOp);
    e.step(Action::Throttle { rate: 0.5 });
    let s = e.step(Action::NoOp);
    let api = s.observation.service("api").unwrap();
    assert!(
        s.observation.request_rate > 10.0,
        "{}",
        s.observation.request_rate
    );
    assert!(api.rps > 10.0, "api served {} req/s", api.rps);
    assert!(api.error_rate < 0.9, "api error rate {}", api.error_rate);
}
