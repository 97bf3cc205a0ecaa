//! The remediation verdict judges the state at the verification time: the W windows just
//! before it, counted from `from` on; the time to recover runs from the fault's start to the
//! start of the final healthy run.

use sim_core::time::SECONDS;
use sim_faults::{Episode, FaultScenario, VerdictSpan, remediation_verdict};

/// api -> db, 90 s; the db's CPU is hogged from 20 s to 30 s and again from 70 s to the end.
fn scenario() -> FaultScenario {
    FaultScenario::from_toml_str(
        r#"
name = "two-hogs"
[base]
name = "two-tier"
duration = "90s"
slos = [{ service = "api", latency_p99 = "150ms" }]
[[base.nodes]]
name = "n0"
cpu = "8"
memory = "16Gi"
[[base.services]]
name = "api"
replicas = 2
[[base.services.operations]]
name = "get"
cpu = { kind = "exponential", mean = "1ms" }
[[base.services.operations.stages]]
calls = [{ service = "db" }]
[[base.services]]
name = "db"
[[base.services.operations]]
name = "query"
cpu = { kind = "exponential", mean = "3ms" }
[[base.workload]]
entry = "api"
arrivals = { kind = "open", rate = { kind = "constant", rps = 150.0 } }

[[faults]]
id = "hog-1"
start = "20s"
duration = "10s"
selector = { service = "db" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }

[[faults]]
id = "hog-2"
start = "70s"
selector = { service = "db" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }
"#,
    )
    .unwrap()
}

fn run() -> (Episode, Episode) {
    let sc = scenario();
    let mut ep = Episode::new(&sc, 7).unwrap();
    let mut healthy = Episode::without_faults(&sc, 7).unwrap();
    ep.run_to_end();
    healthy.run_to_end();
    (ep, healthy)
}

#[test]
fn a_healthy_stretch_that_ended_before_verification_does_not_count() {
    let (ep, healthy) = run();
    // the SLOs broke in the first hog, held between the hogs, and break again in the second
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(20 * SECONDS, 90 * SECONDS));
    assert!(!v.recovered, "{v:?}");
    assert!(v.reason.contains("SLO violated at"), "{}", v.reason);
    assert_eq!((v.recovered_at, v.time_to_recover), (None, None));
    // verified at 65 s (between the hogs): recovered, measured from the fault's start to the
    // start of the final healthy run, after the first hog's violations
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(20 * SECONDS, 65 * SECONDS));
    assert!(v.recovered, "{v:?}");
    let at = v.recovered_at.unwrap();
    assert!(at > 20 * SECONDS && at <= 45 * SECONDS, "{v:?}");
    assert_eq!(v.time_to_recover, Some(at - 20 * SECONDS));
    assert!(v.reason.contains("10 windows before 65 s"), "{}", v.reason);
}

#[test]
fn windows_before_from_do_not_count() {
    let (ep, healthy) = run();
    // healthy since ~30 s, but only the 5 windows after 60 s count
    let span = VerdictSpan::new(20 * SECONDS, 65 * SECONDS).with_from(60 * SECONDS);
    let v = remediation_verdict(&ep, &healthy, span);
    assert!(!v.recovered, "{v:?}");
    assert!(v.reason.contains("only 5 scrape windows"), "{}", v.reason);
    // with 10 of them the run is traced back past `from`: the SLOs already held before it
    let span = VerdictSpan::new(20 * SECONDS, 70 * SECONDS).with_from(60 * SECONDS);
    let v = remediation_verdict(&ep, &healthy, span);
    assert!(v.recovered, "{v:?}");
    assert!(v.recovered_at.unwrap() < 60 * SECONDS, "{v:?}");
}

#[test]
fn slos_that_never_broke_recover_at_the_fault_start() {
    let (ep, healthy) = run();
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(45 * SECONDS, 65 * SECONDS));
    assert!(v.recovered, "{v:?}");
    assert_eq!(
        (v.recovered_at, v.time_to_recover),
        (Some(45 * SECONDS), Some(0))
    );
    assert!(v.reason.contains("throughout"), "{}", v.reason);
}

#[test]
fn a_verification_time_past_the_observed_run_is_not_judged() {
    let (ep, healthy) = run();
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(20 * SECONDS, 65 * SECONDS));
    assert!(v.recovered);
    // the same windows, but verified at 200 s: nothing was observed just before that
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(20 * SECONDS, 200 * SECONDS));
    assert!(!v.recovered, "{v:?}");
    assert!(v.reason.contains("within one interval"), "{}", v.reason);
    // a healthy run observed only to 50 s cannot vouch for 65 s either
    let sc = scenario();
    let mut short = Episode::without_faults(&sc, 7).unwrap();
    short.run_until(50 * SECONDS);
    let v = remediation_verdict(&ep, &short, VerdictSpan::new(20 * SECONDS, 65 * SECONDS));
    assert!(!v.recovered, "{v:?}");
}
