//! The triage oracle's MicroRemed rules (11-15): each remediates a MicroRemed scenario from
//! observations alone (the fault ends), and each stays out of what DIME's rules own.
//!
//! Episode tests run simple-micro (the cheapest system) only until the fault has ended;
//! hand-made observations pin the branches episodes do not reach.

use sim_agents::action::{Action, QueryKind, Replicas};
use sim_agents::observation::{Alert, NodeObs, Observation, PodObs, QueryResult, ServiceObs};
use sim_agents::oracle::triage;
use sim_agents::{Env, EnvOptions};
use sim_core::scenario::ServiceKind;
use sim_core::telemetry::Phase;
use sim_faults::FaultScenario;

/// Steps the oracle on `scenario` from `seed` until the injected fault has ended (or the
/// episode is over) and returns the oracle's (time s, rule, action) for every action that is
/// not a no-op, the fault's target pods and whether it ended.
fn run_until_fault_ends(scenario: &str, seed: u64) -> (Vec<(u64, u8, Action)>, Vec<String>, bool) {
    let sc = FaultScenario::builtin(scenario).unwrap();
    let mut env = Env::try_new(sc, EnvOptions::default()).unwrap();
    let mut obs = env.reset(seed);
    let mut acts = Vec::new();
    loop {
        let (rule, a) = triage(&obs);
        if a != Action::NoOp {
            acts.push((obs.time_ns / 1_000_000_000, rule, a.clone()));
        }
        let st = env.step(a);
        obs = st.observation;
        let faults = env.episode().injected();
        if faults.first().is_some_and(|f| f.end.is_some()) || st.terminated || st.truncated {
            break;
        }
    }
    let f = &env.episode().injected()[0];
    (acts, f.pods.clone(), f.end.is_some())
}

fn delete(pod: &str) -> Action {
    Action::RestartPod { target: pod.into() }
}

#[test]
fn rule_11_rolls_back_a_bad_config_version() {
    // time-service runs a config version whose tiny CPU limit makes it crawl (no crash loop:
    // rule 2's rollback does not apply)
    let (acts, pods, ended) = run_until_fault_ends("microremed-simple-micro-pod-config-error", 1);
    assert_eq!(pods, ["time-service-9m7xj"]);
    assert_eq!(
        acts,
        [(
            70,
            11,
            Action::Rollback {
                target: "time-service".into()
            }
        )]
    );
    assert!(ended, "the rollback ends the config fault");
}

#[test]
fn rule_12_deletes_a_black_holed_entry_pod() {
    // seed 3 draws the entry, hello-service: users still send, it answers nothing
    let (acts, pods, ended) = run_until_fault_ends("microremed-simple-micro-pod-fail", 3);
    assert_eq!(pods, ["hello-service-6vltg"]);
    assert_eq!(acts, [(70, 12, delete("hello-service-6vltg"))]);
    assert!(ended, "deleting the pod ends the pod failure");
}

#[test]
fn rule_13_surges_then_deletes_a_cpu_stressed_pod() {
    // time-service's only pod is pegged by a stressor at its usual load: a replica is added
    // first, and the stressed pod is deleted once that one serves
    let (acts, pods, ended) = run_until_fault_ends("microremed-simple-micro-cpu-stress", 1);
    assert_eq!(pods, ["time-service-9m7xj"]);
    assert_eq!(
        acts,
        [
            (
                70,
                13,
                Action::Scale {
                    target: Some("time-service".into()),
                    replicas: Replicas::Up(1)
                }
            ),
            (80, 13, delete("time-service-9m7xj")),
        ]
    );
    assert!(ended, "deleting the stressed pod ends the stress");
}

#[test]
fn rules_15_and_14_find_a_black_holed_callee_in_its_callers_logs() {
    // time-service's pod is black-holed; hello-service fails: its logs name time-service,
    // which looks healthy by its own metrics (it answers nothing, so nothing slowly)
    let (acts, pods, ended) = run_until_fault_ends("microremed-simple-micro-pod-fail", 1);
    assert_eq!(pods, ["time-service-9m7xj"]);
    assert_eq!(
        acts,
        [
            (
                70,
                15,
                Action::Query {
                    kind: QueryKind::Logs,
                    target: "hello-service".into()
                }
            ),
            (80, 14, delete("time-service-9m7xj")),
        ]
    );
    assert!(ended, "deleting the pod ends the pod failure");
}

// ---------------------------------------------------------------- hand-made observations

fn svc(name: &str, kind: ServiceKind, replicas: u32) -> ServiceObs {
    ServiceObs {
        name: name.into(),
        kind,
        ready_pods: replicas,
        desired_replicas: replicas,
        config_version: 0,
        rps: 50.0,
        error_rate: 0.0,
        p50_ms: 5.0,
        p99_ms: 20.0,
        cpu: 0.3,
        memory: 0.1,
        queue: 0,
        restarts: 0,
        baseline_rps: 50.0,
    }
}

fn pod(name: &str, service: u32) -> PodObs {
    PodObs {
        name: name.into(),
        service,
        node: Some(0),
        phase: Phase::Running,
        ready: true,
        cpu: 0.3,
        memory: 0.1,
        queue: 0,
        restarts: 0,
    }
}

/// gateway -> api -> {store, cache}, one pod each, at 60 s (step 5 of 10 s steps); a
/// replicated `web` deployment and a database `db` that the MicroRemed rules leave alone.
fn system() -> Observation {
    let mut o = Observation::empty();
    o.entry_service = "gateway".into();
    o.time_ns = 60_000_000_000;
    o.step = 5;
    o.request_rate = 50.0;
    o.cloud_budget = 8;
    o.nodes = vec![NodeObs {
        name: "node-0".into(),
        up: true,
        cpu: 0.3,
        memory: 0.2,
        io: 0.0,
        queue: 0,
        visible: true,
    }];
    o.services = vec![
        svc("gateway", ServiceKind::Gateway, 1),
        svc("api", ServiceKind::Stateless, 1),
        svc("store", ServiceKind::Stateless, 1),
        svc("cache", ServiceKind::Stateless, 1),
        svc("web", ServiceKind::Stateless, 3),
        svc("db", ServiceKind::Database, 1),
    ];
    o.pods = vec![
        pod("gateway-aaaaa", 0),
        pod("api-bbbbb", 1),
        pod("store-ccccc", 2),
        pod("cache-ddddd", 3),
        pod("web-eeeee", 4),
        pod("web-fffff", 4),
        pod("web-ggggg", 4),
        pod("db-hhhhh", 5),
    ];
    o
}

fn alert(o: &mut Observation, service: &str) {
    o.alerts.push(Alert {
        service: service.into(),
        metric: "error_rate".into(),
        value: 0.5,
        threshold: 0.01,
    });
}

fn timeouts(caller: &str, callee: &str, at_s: &[f64]) -> Vec<String> {
    at_s.iter()
        .map(|t| {
            format!("[{t:.1}s] Error {caller}-xxxxx: upstream request timeout: call to {callee} after 2s")
        })
        .collect()
}

fn logs(target: &str, lines: Vec<String>) -> QueryResult {
    QueryResult {
        kind: QueryKind::Logs,
        target: target.into(),
        lines,
    }
}

#[test]
fn healthy_system_is_left_alone() {
    assert_eq!(triage(&system()), (10, Action::NoOp));
}

#[test]
fn rule_13_memory_hog_surges_and_skips_replicated_tiers_and_the_database() {
    let mut o = system();
    o.pods[2].memory = 0.66;
    assert_eq!(
        triage(&o),
        (
            13,
            Action::Scale {
                target: Some("store".into()),
                replicas: Replicas::Up(1)
            }
        )
    );
    // the surge pod is booting: nothing is repeated
    o.services[2].desired_replicas = 2;
    let mut surge = pod("store-zzzzz", 2);
    surge.phase = Phase::Starting;
    surge.ready = false;
    o.pods.push(surge);
    assert_eq!(triage(&o), (10, Action::NoOp));
    // it serves: the hog goes
    let n = o.pods.len() - 1;
    o.pods[n].phase = Phase::Running;
    o.pods[n].ready = true;
    o.services[2].ready_pods = 2;
    assert_eq!(triage(&o), (13, delete("store-ccccc")));
    // and is not deleted twice while on cooldown
    o.cooldowns.insert("pod:store-ccccc".into(), 4);
    assert_eq!(triage(&o), (10, Action::NoOp));
    // without cloud budget the only pod is deleted at once
    let mut o = system();
    o.pods[2].memory = 0.66;
    o.cloud_budget = 0;
    assert_eq!(triage(&o), (13, delete("store-ccccc")));
    // a hog in a replicated tier or in the database is DIME's business (rule 1 at 92%)
    let mut o = system();
    o.pods[4].memory = 0.66;
    o.pods[7].memory = 0.66;
    assert_eq!(triage(&o), (10, Action::NoOp));
    // CPU saturated by load (3x the warm-up rate) is not a stressor
    let mut o = system();
    o.pods[2].cpu = 1.0;
    o.services[2].rps = 150.0;
    assert_ne!(triage(&o).0, 13);
    // nor are two replicas both saturated at the usual rate (a surge pod warming up next to
    // a stressed one: wait)
    let mut o = system();
    o.services[2].desired_replicas = 2;
    o.services[2].ready_pods = 2;
    o.pods[2].cpu = 1.0;
    let mut warm = pod("store-zzzzz", 2);
    warm.cpu = 0.97;
    o.pods.push(warm);
    assert_ne!(triage(&o).0, 13);
}

#[test]
fn rule_14_follows_a_failing_callee_and_deletes_the_healthy_one_its_callers_time_out_on() {
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[1].error_rate = 1.0;
    o.services[1].p99_ms = 2000.0;
    // gateway's logs name api, which fails itself: follow it
    o.query_results = vec![logs("gateway", timeouts("gateway", "api", &[55.0, 58.0]))];
    assert_eq!(
        triage(&o),
        (
            14,
            Action::Query {
                kind: QueryKind::Logs,
                target: "api".into()
            }
        )
    );
    // api's logs name store, which answers what reaches it, fast: store's pod is cut off
    o.query_results = vec![logs("api", timeouts("api", "store", &[55.0, 58.0, 59.0]))];
    assert_eq!(triage(&o), (14, delete("store-ccccc")));
    // lines older than the latest interval do not count: nothing to act on, so the logs of
    // the next failing deployment are asked for
    o.query_results = vec![logs("api", timeouts("api", "store", &[41.0, 48.0]))];
    assert_eq!(
        triage(&o),
        (
            15,
            Action::Query {
                kind: QueryKind::Logs,
                target: "gateway".into()
            }
        )
    );
}

#[test]
fn rule_14_blames_the_callers_own_network() {
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[1].error_rate = 1.0;
    // two healthy callees time out: the common factor is api
    let mut lines = timeouts("api", "store", &[55.0, 57.0]);
    lines.extend(timeouts("api", "cache", &[56.0, 58.0]));
    o.query_results = vec![logs("api", lines)];
    assert_eq!(triage(&o), (14, delete("api-bbbbb")));
    // store was replaced already and still times out: api again
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[1].error_rate = 1.0;
    o.pods[2].name = "store-yyyyy".into();
    o.cooldowns.insert("pod:store-ccccc".into(), 2);
    o.query_results = vec![logs("api", timeouts("api", "store", &[55.0, 58.0]))];
    assert_eq!(triage(&o), (14, delete("api-bbbbb")));
    // api's own requests get lost on the way in (it completes 40% of its warm-up rate)
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[1].error_rate = 1.0;
    o.services[1].rps = 20.0;
    o.query_results = vec![logs("api", timeouts("api", "store", &[55.0, 58.0]))];
    assert_eq!(triage(&o), (14, delete("api-bbbbb")));
}

#[test]
fn rule_14_leaves_booting_and_replicated_callees_alone() {
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[0].error_rate = 0.5;
    // refused by web: three replicas, the logs do not say which pod
    let refused: Vec<String> = [55.0, 57.0]
        .iter()
        .map(|t| {
            format!("[{t:.1}s] Error gateway-xxxxx: dial tcp web: connect: connection refused (no ready endpoints)")
        })
        .collect();
    o.query_results = vec![logs("gateway", refused)];
    assert_ne!(triage(&o).0, 14);
    // store is booting after a delete: nothing is repeated on it
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[1].error_rate = 1.0;
    o.pods[2].phase = Phase::Starting;
    o.pods[2].ready = false;
    o.services[2].ready_pods = 0;
    o.query_results = vec![logs("api", timeouts("api", "store", &[55.0, 58.0]))];
    assert!(!matches!(triage(&o).1, Action::RestartPod { .. }));
}

#[test]
fn rule_11_rolls_back_only_a_degraded_new_version_while_slos_break() {
    let mut o = system();
    o.services[2].config_version = 1;
    // a new version in a healthy system stays
    assert_eq!(triage(&o), (10, Action::NoOp));
    // SLOs break elsewhere, store on its new version is fine: it stays too
    alert(&mut o, "gateway");
    assert_ne!(triage(&o).0, 11);
    // store is slow on it: rolled back, before the OOM rule restarts its pod
    o.services[2].p99_ms = 3000.0;
    o.pods[2].memory = 0.95;
    assert_eq!(
        triage(&o),
        (
            11,
            Action::Rollback {
                target: "store".into()
            }
        )
    );
    // not again right after a rollback that had nothing to roll back to
    o.action_errors =
        vec!["Rejected: service store has no earlier config version to roll back to".into()];
    assert_ne!(triage(&o).0, 11);
}

#[test]
fn rule_14_replaces_a_data_store_that_fails_by_itself() {
    // redis-cart's disk stalls (IO latency on 50% of its writes): cartservice's logs name it,
    // its own logs name nobody, so its pod is the one to replace
    let (acts, pods, ended) = run_until_fault_ends("microremed-online-boutique-disk-io", 4);
    assert_eq!(pods, ["redis-cart-fkzmr"]);
    let logs_of = |t: &str| Action::Query {
        kind: QueryKind::Logs,
        target: t.into(),
    };
    assert_eq!(
        acts,
        [
            (70, 15, logs_of("cartservice")),
            (80, 14, logs_of("redis-cart")),
            (90, 14, delete("redis-cart-fkzmr")),
        ]
    );
    assert!(ended, "the replacement pod is not under the IO fault");
}

#[test]
fn rule_14_blames_quiet_logs_only_on_a_data_store() {
    let mut o = system();
    alert(&mut o, "gateway");
    // a cache (by kind) with a stalled disk: slow, and its logs name no callee
    o.services[3].kind = ServiceKind::Cache;
    o.services[3].p99_ms = 5000.0;
    o.query_results = vec![logs("cache", vec![])];
    assert_eq!(triage(&o), (14, delete("cache-ddddd")));
    // the database too (DIME's rules own it, but they never ask for logs)
    o.services[5].p99_ms = 5000.0;
    o.query_results = vec![logs("db", vec![])];
    assert_eq!(triage(&o), (14, delete("db-hhhhh")));
    // a data store that is not failing is left alone
    o.services[5].p99_ms = 20.0;
    assert_ne!(triage(&o).1, delete("db-hhhhh"));
    // a stateless service whose logs are quiet is only slow on its calls: not blamed
    o.services[1].p99_ms = 5000.0;
    o.services[1].error_rate = 0.5;
    o.query_results = vec![logs("api", vec![])];
    assert_ne!(triage(&o).1, delete("api-bbbbb"));
    // nor a data store with several replicas (the logs do not say which pod)
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[5].p99_ms = 5000.0;
    o.services[5].desired_replicas = 3;
    o.services[5].ready_pods = 3;
    o.pods.push(pod("db-iiiii", 5));
    o.pods.push(pod("db-jjjjj", 5));
    o.query_results = vec![logs("db", vec![])];
    assert!(!matches!(triage(&o).1, Action::RestartPod { .. }));
}

#[test]
fn rules_12_14_15_leave_an_overload_to_dimes_rules() {
    let mut o = system();
    alert(&mut o, "gateway");
    o.services[1].error_rate = 0.5;
    // without a surge, rule 15 asks for the failing deployment's logs
    assert_eq!(triage(&o).0, 15);
    // users send 3x the warm-up rate: the pods fail because of the load, not a fault
    o.request_rate = 3.0 * o.services[0].baseline_rps;
    assert!(!matches!(triage(&o).0, 12 | 14 | 15), "{:?}", triage(&o));
    o.query_results = vec![logs("api", timeouts("api", "store", &[55.0, 58.0, 59.0]))];
    assert!(!matches!(triage(&o).0, 12 | 14 | 15), "{:?}", triage(&o));
    // the entry serving nothing under a surge is not a black-holed pod either
    o.query_results.clear();
    o.services[0].rps = 0.0;
    assert!(!matches!(triage(&o).0, 12 | 14 | 15), "{:?}", triage(&o));
}
