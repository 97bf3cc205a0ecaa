//! The triage oracle's rules on hand-made observations: priorities and DIME's bugs fixed.

use sim_agents::action::{Action, Replicas};
use sim_agents::observation::{NodeObs, Observation, PodObs, ServiceObs};
use sim_agents::oracle::triage;
use sim_core::scenario::ServiceKind;
use sim_core::telemetry::Phase;

fn node(name: &str, up: bool, cpu: f64) -> NodeObs {
    NodeObs {
        name: name.into(),
        up,
        cpu,
        memory: 0.2,
        io: 0.0,
        queue: 0,
        visible: true,
    }
}

fn svc(name: &str, kind: ServiceKind, ready: u32, desired: u32, cpu: f64) -> ServiceObs {
    ServiceObs {
        name: name.into(),
        kind,
        ready_pods: ready,
        desired_replicas: desired,
        config_version: 0,
        rps: 100.0,
        error_rate: 0.0,
        p50_ms: 10.0,
        p99_ms: 50.0,
        cpu,
        memory: 0.3,
        queue: 0,
        restarts: 0,
        baseline_rps: 100.0,
    }
}

fn pod(name: &str, service: u32, node: u32, phase: Phase, ready: bool) -> PodObs {
    PodObs {
        name: name.into(),
        service,
        node: Some(node),
        phase,
        ready,
        cpu: 0.3,
        memory: 0.3,
        queue: 0,
        restarts: 0,
    }
}

/// db on node-0, app on node-1..3.
fn cluster() -> Observation {
    let mut o = Observation::empty();
    o.entry_service = "app".into();
    o.p99_objective_ms = 300.0;
    o.p99_latency = 50.0;
    o.request_rate = 100.0;
    o.error_budget = 100.0;
    o.cloud_budget = 8;
    o.nodes = (0..4)
        .map(|i| node(&format!("node-{i}"), true, 0.3))
        .collect();
    o.services = vec![
        svc("app", ServiceKind::Stateless, 3, 3, 0.3),
        svc("db", ServiceKind::Database, 1, 1, 0.3),
    ];
    o.pods = vec![
        pod("db-0", 1, 0, Phase::Running, true),
        pod("app-1", 0, 1, Phase::Running, true),
        pod("app-2", 0, 2, Phase::Running, true),
        pod("app-3", 0, 3, Phase::Running, true),
    ];
    o
}

#[test]
fn healthy_is_noop() {
    assert_eq!(triage(&cluster()), (10, Action::NoOp));
}

#[test]
fn database_recovery_comes_before_the_black_swan_rule() {
    let mut o = cluster();
    // node-0 (the db) and node-1 are down: two failed nodes, the db among them
    o.nodes[0].up = false;
    o.nodes[1].up = false;
    o.failed_nodes = vec![0, 1];
    o.services[1].ready_pods = 0;
    o.pods[0].phase = Phase::NodeLost;
    o.pods[0].ready = false;
    o.pods[1].phase = Phase::NodeLost;
    o.pods[1].ready = false;
    let (rule, a) = triage(&o);
    assert_eq!(rule, 2);
    assert_eq!(
        a,
        Action::RestartNode {
            target: "node-0".into()
        }
    );
}

#[test]
fn failed_workers_are_restarted() {
    let mut o = cluster();
    o.nodes[2].up = false;
    o.failed_nodes = vec![2];
    o.pods[2].phase = Phase::NodeLost;
    o.pods[2].ready = false;
    assert_eq!(
        triage(&o),
        (
            2,
            Action::RestartNode {
                target: "node-2".into()
            }
        )
    );
    // on cooldown it is not restarted again
    o.cooldowns.insert("node:node-2".into(), 3);
    assert_ne!(
        triage(&o).1,
        Action::RestartNode {
            target: "node-2".into()
        }
    );
}

#[test]
fn a_booting_database_is_not_restarted_again() {
    let mut o = cluster();
    o.services[1].ready_pods = 0;
    o.pods[0].phase = Phase::Starting;
    o.pods[0].ready = false;
    assert!(!matches!(
        triage(&o).1,
        Action::RestartPod { .. } | Action::RestartNode { .. }
    ));
}

#[test]
fn a_crash_looping_new_version_is_rolled_back() {
    let mut o = cluster();
    o.services[0].config_version = 1;
    o.pods[1].phase = Phase::CrashLoopBackOff;
    o.pods[1].ready = false;
    assert_eq!(
        triage(&o),
        (
            2,
            Action::Rollback {
                target: "app".into()
            }
        )
    );
}

#[test]
fn oom_comes_first() {
    let mut o = cluster();
    o.pods[3].memory = 0.95;
    o.nodes[1].up = false;
    o.failed_nodes = vec![1];
    assert_eq!(
        triage(&o),
        (
            1,
            Action::RestartPod {
                target: "app-3".into()
            }
        )
    );
}

#[test]
fn a_zero_error_budget_reads_as_zero() {
    let mut o = cluster();
    o.services[0].cpu = 0.9;
    assert_eq!(
        triage(&o),
        (
            9,
            Action::Scale {
                target: Some("app".into()),
                replicas: Replicas::Up(1)
            }
        )
    );
    o.error_budget = 0.0;
    assert_eq!(triage(&o), (10, Action::NoOp));
}

#[test]
fn retry_storm_throttles_and_a_throttle_is_lifted_when_healthy() {
    let mut o = cluster();
    o.p99_latency = 900.0;
    o.services[0].rps = 300.0;
    o.request_rate = 300.0;
    let (rule, a) = triage(&o);
    assert_eq!(rule, 5);
    assert!(matches!(a, Action::Throttle { rate } if rate <= 0.4));
    let mut h = cluster();
    h.throttle = 0.4;
    assert_eq!(triage(&h), (10, Action::Throttle { rate: 0.8 }));
    h.throttle = 0.8;
    assert_eq!(triage(&h), (10, Action::Throttle { rate: 1.0 }));
}

#[test]
fn hot_shard_reroutes_to_the_coolest_worker() {
    let mut o = cluster();
    o.nodes[1].cpu = 0.95;
    o.nodes[2].cpu = 0.2;
    o.nodes[3].cpu = 0.1;
    let (rule, a) = triage(&o);
    assert_eq!(rule, 4);
    assert_eq!(
        a,
        Action::Reroute {
            from: "node-1".into(),
            to: "node-3".into(),
            fraction: 0.3
        }
    );
}
