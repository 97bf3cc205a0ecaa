//! Fault signatures in telemetry, labels, blast radius, determinism and parsing.

use proptest::prelude::*;
use sim_core::telemetry::Phase;
use sim_core::time::SECONDS;
use sim_faults::{
    Episode, FaultScenario, VerdictSpan, builtin_names, localization_scores, remediation_verdict,
};

const BASE: &str = r#"
name = "t"
duration = "40s"
[base]
name = "three"
duration = "40s"
slos = [{ service = "api", latency_p99 = "200ms" }]
[[base.nodes]]
name = "n0"
cpu = "16"
memory = "32Gi"
[[base.nodes]]
name = "n1"
cpu = "16"
memory = "32Gi"
[[base.services]]
name = "api"
replicas = 2
warmup_factor = 1.0
[[base.services.operations]]
name = "get"
cpu = { kind = "exponential", mean = "1ms" }
[[base.services.operations.stages]]
calls = [{ service = "db" }]
[[base.services]]
name = "db"
kind = "database"
replicas = 2
warmup_factor = 1.0
[[base.services.operations]]
name = "query"
cpu = { kind = "exponential", mean = "2ms" }
io = "4Ki"
[[base.services]]
name = "batch"
warmup_factor = 1.0
[[base.services.operations]]
name = "run"
cpu = { kind = "constant", value = "1ms" }
[[base.edges]]
from = "api"
to = "db"
timeout = "500ms"
retry = { attempts = 2, backoff = "10ms" }
[[base.workload]]
entry = "api"
arrivals = { kind = "open", rate = { kind = "constant", rps = 100.0 } }
"#;

fn scenario(faults: &str) -> FaultScenario {
    FaultScenario::from_toml_str(&format!("{BASE}\n{faults}")).unwrap()
}

fn run(sc: &FaultScenario, seed: u64) -> (Episode, Episode) {
    let mut ep = Episode::new(sc, seed).unwrap();
    let mut cf = Episode::without_faults(sc, seed).unwrap();
    ep.run_to_end();
    cf.run_to_end();
    (ep, cf)
}

/// Mean of a service metric over the scrapes in [from, to) seconds.
fn svc_mean(
    ep: &Episode,
    svc: &str,
    from: u64,
    to: u64,
    f: impl Fn(&sim_core::telemetry::ServiceMetrics) -> f64,
) -> f64 {
    let v: Vec<f64> = ep
        .sim()
        .telemetry()
        .scrapes
        .iter()
        .filter(|s| s.time > from * SECONDS && s.time <= to * SECONDS)
        .filter_map(|s| s.services.iter().find(|m| m.name == svc).map(&f))
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[test]
fn cpu_stress_raises_target_cpu_and_caller_latency() {
    let sc = scenario(
        r#"[[faults]]
id = "cpu"
start = "10s"
duration = "20s"
mode = "all"
selector = { service = "db" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }"#,
    );
    let (ep, cf) = run(&sc, 3);
    let cpu_f = svc_mean(&ep, "db", 12, 30, |m| m.cpu_utilization);
    let cpu_c = svc_mean(&cf, "db", 12, 30, |m| m.cpu_utilization);
    assert!(
        cpu_f > 0.9 && cpu_f > 2.0 * cpu_c,
        "db cpu {cpu_f} vs {cpu_c}"
    );
    let lat_f = svc_mean(&ep, "api", 12, 30, |m| m.p50_ms);
    let lat_c = svc_mean(&cf, "api", 12, 30, |m| m.p50_ms);
    assert!(lat_f > 2.0 * lat_c, "api p50 {lat_f} vs {lat_c}");
    let gt = ep.ground_truth(&cf);
    assert_eq!(gt.root_cause_services, vec!["db"]);
    assert_eq!(gt.root_cause_pods.len(), 2);
    assert_eq!(gt.faults[0].start, 10 * SECONDS);
    assert_eq!(gt.faults[0].end, Some(30 * SECONDS));
    assert!(
        gt.blast_radius.contains(&"api".to_string()),
        "{:?}",
        gt.blast_radius
    );
    assert!(!gt.blast_radius.contains(&"batch".to_string()));
    assert!(gt.first_symptom.is_none_or(|t| t > 10 * SECONDS));
    // the stress is gone after the end: recovered
    let v = remediation_verdict(&ep, &cf, VerdictSpan::new(30 * SECONDS, ep.now()));
    assert!(v.recovered, "{}", v.reason);
}

#[test]
fn memory_stress_oom_kills_and_restarts() {
    let sc = scenario(
        r#"[[faults]]
start = "5s"
duration = "30s"
selector = { service = "db" }
chaos = { kind = "StressChaos", stressors = { memory = { workers = 1, size = "1280MiB" } } }"#,
    );
    let (ep, cf) = run(&sc, 4);
    assert!(ep.sim().counters().oom_kills >= 1);
    assert_eq!(cf.sim().counters().oom_kills, 0);
    let pod = &ep.injected()[0].pods[0];
    let restarts = ep.sim().pod_by_name(pod).unwrap().restarts;
    assert!(restarts >= 1);
    let oom_seen = ep.sim().telemetry().scrapes.iter().any(|s| {
        s.pods.iter().any(|p| {
            &p.name == pod
                && matches!(
                    p.phase,
                    Phase::OomKilled | Phase::CrashLoopBackOff | Phase::Starting
                )
        })
    });
    assert!(oom_seen);
    assert_eq!(ep.ground_truth(&cf).fault_types, vec!["memory-stress"]);
}

#[test]
fn io_latency_slows_io_operations() {
    let sc = scenario(
        r#"[[faults]]
start = "10s"
duration = "20s"
mode = "all"
selector = { service = "db" }
chaos = { kind = "IOChaos", action = "latency", delay = "100ms", percent = 50 }"#,
    );
    let (ep, cf) = run(&sc, 5);
    let f = svc_mean(&ep, "db", 12, 30, |m| m.p90_ms);
    let c = svc_mean(&cf, "db", 12, 30, |m| m.p90_ms);
    assert!(f > 80.0 && c < 40.0, "db p90 {f} vs {c}");
}

#[test]
fn loss_causes_retries_and_timeouts_at_callers() {
    let sc = scenario(
        r#"[[faults]]
start = "10s"
duration = "20s"
mode = "all"
selector = { service = "db" }
chaos = { kind = "NetworkChaos", action = "loss", loss = { loss = 50 } }"#,
    );
    let (ep, cf) = run(&sc, 6);
    let retries = |e: &Episode| e.sim().counters().retries;
    let timeouts = |e: &Episode| e.sim().counters().timeouts;
    assert!(
        retries(&ep) > retries(&cf) + 200,
        "{} vs {}",
        retries(&ep),
        retries(&cf)
    );
    assert!(timeouts(&ep) > timeouts(&cf) + 200);
    let ef = svc_mean(&ep, "api", 12, 30, |m| m.error_rate);
    let ec = svc_mean(&cf, "api", 12, 30, |m| m.error_rate);
    assert!(ef > ec + 0.05, "{ef} vs {ec}");
}

#[test]
fn delay_raises_caller_latency() {
    let sc = scenario(
        r#"[[faults]]
start = "10s"
duration = "20s"
mode = "all"
selector = { service = "db" }
chaos = { kind = "NetworkChaos", action = "delay", delay = { latency = "100ms" } }"#,
    );
    let (ep, cf) = run(&sc, 7);
    let f = svc_mean(&ep, "api", 12, 30, |m| m.p50_ms);
    let c = svc_mean(&cf, "api", 12, 30, |m| m.p50_ms);
    assert!(f > 100.0 && c < 50.0, "api p50 {f} vs {c}");
}

#[test]
fn pod_failure_errors_then_other_replicas_serve() {
    let sc = scenario(
        r#"[[faults]]
start = "10s"
duration = "25s"
selector = { service = "db" }
chaos = { kind = "PodChaos", action = "pod-failure", detection = "5s" }"#,
    );
    let (ep, cf) = run(&sc, 8);
    let to = |e: &Episode, a: u64, b: u64| {
        e.sim()
            .telemetry()
            .scrapes
            .iter()
            .filter(|s| s.time > a * SECONDS && s.time <= b * SECONDS)
            .flat_map(|s| s.pods.iter())
            .filter(|p| p.name.starts_with("api-"))
            .map(|p| p.timeouts as u64)
            .sum::<u64>()
    };
    // before detection: timeouts at the callers; after: the other replica serves
    assert!(
        to(&ep, 10, 15) > to(&cf, 10, 15) + 20,
        "{} vs {}",
        to(&ep, 10, 15),
        to(&cf, 10, 15)
    );
    let after = to(&ep, 18, 34);
    let after_cf = to(&cf, 18, 34);
    assert!(after <= after_cf + 10, "{after} vs {after_cf}");
    let db_rps = svc_mean(&ep, "db", 18, 34, |m| m.rps);
    assert!(db_rps > 80.0, "{db_rps}");
}

#[test]
fn config_error_crash_loops_until_rollback() {
    let sc = scenario(
        r#"[[faults]]
start = "5s"
selector = { service = "db" }
chaos = { kind = "ConfigError", action = "crash-loop" }"#,
    );
    let mut ep = Episode::new(&sc, 9).unwrap();
    ep.run_until(20 * SECONDS);
    let db = ep.sim().service_id("db").unwrap();
    assert!(ep.sim().pods_of(db).iter().all(|p| !p.ready));
    assert!(ep.sim().last_scrape().unwrap().services[0].error_rate > 0.5);
    assert_eq!(ep.injected()[0].end, None);
    ep.sim_mut().rollback(db).unwrap();
    ep.run_until(30 * SECONDS);
    assert!(ep.sim().pods_of(db).iter().all(|p| p.ready));
    // the fault ends at the rollback, not at the end of the run that follows it
    assert_eq!(ep.injected()[0].end, Some(20 * SECONDS));
    // bad resources: throttled
    let sc2 = scenario(
        r#"[[faults]]
start = "5s"
selector = { service = "db" }
chaos = { kind = "ConfigError", action = "bad-resources" }"#,
    );
    let (ep2, cf2) = run(&sc2, 9);
    let f = svc_mean(&ep2, "api", 10, 40, |m| m.error_rate + m.p50_ms / 1000.0);
    let c = svc_mean(&cf2, "api", 10, 40, |m| m.error_rate + m.p50_ms / 1000.0);
    assert!(f > c + 0.1, "{f} vs {c}");
}

#[test]
fn blast_radius_empty_for_idle_service_and_has_callers_for_hot_one() {
    let idle = scenario(
        r#"[[faults]]
start = "10s"
selector = { service = "batch" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 2, load = 100 } } }"#,
    );
    let (ep, cf) = run(&idle, 11);
    let gt = ep.ground_truth(&cf);
    assert_eq!(gt.root_cause_services, vec!["batch"]);
    assert!(gt.blast_radius.is_empty(), "{:?}", gt.blast_radius);
    let hot = scenario(
        r#"[[faults]]
start = "10s"
mode = "all"
selector = { service = "db" }
chaos = { kind = "NetworkChaos", action = "delay", delay = { latency = "200ms" } }"#,
    );
    let (ep, cf) = run(&hot, 11);
    let gt = ep.ground_truth(&cf);
    assert!(
        gt.blast_radius.contains(&"api".to_string()),
        "{:?}",
        gt.blast_radius
    );
    assert!(
        gt.propagation
            .iter()
            .any(|e| e.from == "db" && e.to == "api"),
        "{:?}",
        gt.propagation
    );
}

#[test]
fn fork_snapshot_and_restore_are_deterministic() {
    let sc = scenario(
        r#"[[faults]]
start = "10s"
duration = "10s"
selector = { service = "db" }
chaos = { kind = "NetworkChaos", action = "delay", delay = { latency = "50ms" } }"#,
    );
    let mut a = Episode::new(&sc, 12).unwrap();
    a.run_until(12 * SECONDS);
    let bytes = a.snapshot();
    let mut b = a.fork();
    let mut c = Episode::restore(&bytes).unwrap();
    for e in [&mut a, &mut b, &mut c] {
        e.run_to_end();
    }
    let csv = |e: &Episode| e.sim().telemetry().service_metrics_csv();
    assert_eq!(csv(&a), csv(&b));
    assert_eq!(csv(&a), csv(&c));
    assert_eq!(a.injected(), c.injected());
    let mut bad = bytes.clone();
    let k = bad.len() / 2;
    bad[k] ^= 0x40;
    assert!(Episode::restore(&bad).is_err());
    assert!(Episode::restore(&bytes[..bytes.len() - 3]).is_err());
    // same seed, same target choice
    let free = scenario(
        r#"[[faults]]
start = "1s"
chaos = { kind = "StressChaos", stressors = { cpu = {} } }"#,
    );
    let x = Episode::new(&free, 5).unwrap().planned_services();
    assert_eq!(x, Episode::new(&free, 5).unwrap().planned_services());
    assert!(x[0].as_deref().is_some_and(|s| s == "api" || s == "db"));
}

#[test]
fn bad_scenarios_are_errors_naming_the_field() {
    let e = FaultScenario::from_toml_str(&format!(
        "{BASE}\n[[faults]]\nchaos = {{ kind = \"NoSuchChaos\" }}"
    ))
    .unwrap_err();
    assert!(
        e.to_string().contains("NoSuchChaos") || e.to_string().contains("unknown variant"),
        "{e}"
    );
    let e = FaultScenario::from_toml_str(&format!(
        "{BASE}\n[[faults]]\nselector = {{ service = \"nope\" }}\nchaos = {{ kind = \"PodChaos\", action = \"pod-kill\" }}"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("faults[0].selector.service"), "{e}");
    let e = FaultScenario::from_toml_str(&format!(
        "{BASE}\n[[faults]]\nchaos = {{ kind = \"NetworkChaos\", action = \"loss\", loss = {{ loss = 150 }} }}"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("loss"), "{e}");
    // an agent that decides more often than metrics are scraped would observe empty windows
    let e =
        FaultScenario::from_toml_str(&format!("{BASE}\n[agent]\ndecision_interval = \"500ms\""))
            .unwrap_err();
    assert!(e.to_string().contains("agent.decision_interval"), "{e}");
    assert!(e.to_string().contains("scrape interval"), "{e}");
    assert!(FaultScenario::load("definitely-not-a-scenario").is_err());
    assert!(FaultScenario::from_toml_str("base = 3").is_err());
}

#[test]
fn builtin_scenarios_load() {
    let names = builtin_names();
    assert!(names.contains(&"retry-storm"));
    assert!(names.contains(&"microremed-online-boutique-cpu-stress"));
    assert_eq!(names.iter().filter(|n| n.starts_with("dime-")).count(), 15);
    for n in names {
        let sc = FaultScenario::builtin(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(sc.name, n);
        // round trip through the file format
        let back = FaultScenario::from_toml_str(&sc.to_toml_string())
            .unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(back.faults, sc.faults, "{n}");
    }
    let easy = sim_faults::suite("microremed-easy", "online-boutique", 1).unwrap();
    assert_eq!(easy.len(), 23);
    assert_eq!(
        sim_faults::suite("microremed-medium", "online-boutique", 1)
            .unwrap()
            .len(),
        49
    );
    assert_eq!(
        sim_faults::suite("microremed-hard", "train-ticket", 1)
            .unwrap()
            .len(),
        80
    );
}

#[test]
fn localization_metrics() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let a = localization_scores(&s(&["a", "b", "c"]), &s(&["a"]));
    assert_eq!(a.ac_at, vec![1.0; 5]);
    assert_eq!(a.mrr, 1.0);
    let b = localization_scores(&s(&["x", "y", "a"]), &s(&["a"]));
    assert_eq!(b.ac_at, vec![0.0, 0.0, 1.0, 1.0, 1.0]);
    assert!((b.avg_at_5 - 0.6).abs() < 1e-12);
    let m = sim_faults::LocalizationScores::mean(&[a, b]);
    assert_eq!(m.cases, 2);
    assert!((m.ac_at[0] - 0.5).abs() < 1e-12);
    let two = localization_scores(&s(&["a", "x", "b"]), &s(&["a", "b"]));
    assert_eq!(two.ac_at[1], 0.5);
    assert_eq!(two.ac_at[2], 1.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn parser_never_panics(s in ".{0,200}") {
        let _ = FaultScenario::from_toml_str(&s);
        let _ = Episode::restore(s.as_bytes());
    }

    #[test]
    fn fault_table_fuzz_never_panics(kind in "[A-Za-z]{0,12}", action in "[a-z-]{0,14}", n in 0u32..300, start in "[0-9]{0,4}(ms|s|x)?") {
        let t = format!("{BASE}\n[[faults]]\nstart = \"{start}\"\nmode = \"fixed\"\nvalue = \"{n}\"\nchaos = {{ kind = \"{kind}\", action = \"{action}\" }}");
        let _ = FaultScenario::from_toml_str(&t);
    }
}

/// Every built-in scenario listed by name builds an episode (a listed scenario that cannot run
/// would be a broken promise of `blastradius scenarios`).
#[test]
fn every_listed_builtin_builds_an_episode() {
    for name in sim_faults::builtin_names() {
        let sc = sim_faults::FaultScenario::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        sim_faults::Episode::new(&sc, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn otlp_spans_of_replayed_requests_name_their_source_trace() {
    use sim_core::{ScriptNode, ScriptedRequest, Simulation};
    let mut sc = sim_core::topologies::load("simple-micro").unwrap();
    sc.telemetry.trace_sample_rate = 1.0;
    let mut sim = Simulation::new(&sc, 2).unwrap();
    let topo = sim.topology();
    let entry = topo.edges[0].to; // workload 0's edge
    let op = topo
        .op_id(entry, &topo.service(entry).operations[0].name)
        .unwrap();
    let req = ScriptedRequest {
        workload: 0,
        nodes: vec![ScriptNode {
            op,
            cpu_ns: 2_000_000,
            sync: true,
            stages: vec![],
        }],
        source_trace: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
    };
    sim.inject_request(sim.now() + 100_000_000, req).unwrap();
    sim.run_for(2_000_000_000);
    let doc = sim_faults::otlp::spans_to_otlp(&sim).to_string();
    assert_eq!(
        doc.matches("\"blastradius.source_trace_id\"").count(),
        1,
        "one replayed span, one attribute"
    );
    assert!(doc.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
}

/// MicroRemed's disk-io fault reaches the data stores of Online Boutique (redis-cart) and
/// Train-Ticket (a MongoDB): their operations touch disk, so 5 s of latency on half of them
/// breaks the entry's SLO, which the counterfactual meets.
#[test]
fn disk_io_on_microremed_systems_breaks_the_entry_slo() {
    for (system, entry, store) in [
        ("online-boutique", "frontend", "redis-cart"),
        ("train-ticket", "ts-ui-dashboard", "-mongo"),
    ] {
        let sc = FaultScenario::builtin(&format!("microremed-{system}-disk-io")).unwrap();
        let mut ep = Episode::new(&sc, 1).unwrap();
        let mut cf = Episode::without_faults(&sc, 1).unwrap();
        ep.run_until(120 * SECONDS);
        cf.run_until(120 * SECONDS);
        let target = ep.injected()[0].service.clone().unwrap();
        assert!(target.contains(store), "{system}: {target}");
        let p99 = |e: &Episode| svc_mean(e, entry, 80, 120, |m| m.p99_ms);
        let err = |e: &Episode| svc_mean(e, entry, 80, 120, |m| m.error_rate);
        let slo = sc.base.slos.iter().find(|s| s.service == entry).unwrap();
        let limit_ms = slo.latency_p99.unwrap().0 as f64 / 1e6;
        let broken = |e: &Episode| p99(e) > limit_ms || err(e) > slo.error_rate.unwrap_or(1.0);
        assert!(
            broken(&ep),
            "{system}: p99 {} ms, errors {}",
            p99(&ep),
            err(&ep)
        );
        assert!(
            !broken(&cf),
            "{system}: p99 {} ms, errors {}",
            p99(&cf),
            err(&cf)
        );
    }
}
