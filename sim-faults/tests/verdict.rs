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

/// The two-tier system with a mild CPU hog on one of the two api pods from 20 s on (or for
/// `duration`), too mild to break the SLO, judged with `require_fault_cleared`.
fn mild(require_fault_cleared: bool, duration: Option<&str>) -> FaultScenario {
    let hogs = scenario().to_toml_string();
    let base = &hogs[hogs.find("[base]").unwrap()..];
    let extra = duration.map_or(String::new(), |d| format!("duration = \"{d}\"\n"));
    FaultScenario::from_toml_str(&format!(
        r#"
name = "mild"
[remediation]
require_fault_cleared = {require_fault_cleared}
[[faults]]
id = "mild-hog"
start = "20s"
mode = "one"
{extra}selector = {{ service = "api" }}
chaos = {{ kind = "StressChaos", stressors = {{ cpu = {{ workers = 1, load = 20 }} }} }}
{base}"#
    ))
    .unwrap()
}

fn judge(sc: &FaultScenario, repair_at: Option<u64>) -> (Episode, sim_faults::Verdict) {
    let mut ep = Episode::new(sc, 7).unwrap();
    let mut healthy = Episode::without_faults(sc, 7).unwrap();
    if let Some(t) = repair_at {
        ep.run_until(t);
        // what an agent's `kubectl delete pod` does: the deployment replaces the pod
        let name = ep.injected()[0].pods[0].clone();
        let pod = ep.sim().pod_by_name(&name).unwrap().id;
        ep.sim_mut().kill_pod(pod).unwrap();
    }
    ep.run_to_end();
    healthy.run_to_end();
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(20 * SECONDS, 90 * SECONDS));
    (ep, v)
}

#[test]
fn a_fault_that_breaks_no_slo_counts_as_remediated_only_when_faults_may_linger() {
    // SLOs only (the default): the mild hog never breaks one, so doing nothing "recovers"
    let (ep, v) = judge(&mild(false, None), None);
    assert!(ep.injected()[0].end.is_none());
    assert!(v.recovered, "{v:?}");
    // MicroRemed's verdict: the stressed pod is not back to normal
    let (_, v) = judge(&mild(true, None), None);
    assert!(!v.recovered, "{v:?}");
    assert!(
        v.reason
            .contains("fault mild-hog (cpu-stress) still acts on api-"),
        "{}",
        v.reason
    );
    assert_eq!((v.recovered_at, v.time_to_recover), (None, None));
}

#[test]
fn replacing_the_target_pod_clears_the_fault_and_recovery_dates_from_then() {
    let (ep, v) = judge(&mild(true, None), Some(50 * SECONDS));
    let end = ep.injected()[0]
        .end
        .expect("the fault ends with its target pod");
    assert!((50 * SECONDS..=51 * SECONDS).contains(&end), "{end}");
    assert!(v.recovered, "{v:?}");
    // the SLOs held throughout, but the system was back to normal only once the fault ended
    assert_eq!(v.recovered_at, Some(end), "{v:?}");
    assert_eq!(v.time_to_recover, Some(end - 20 * SECONDS));
    assert!(v.reason.contains("the faults were over at"), "{}", v.reason);
    // a repair inside the judged windows (80-90 s) is too late for them
    let (_, v) = judge(&mild(true, None), Some(85 * SECONDS));
    assert!(!v.recovered, "{v:?}");
    assert!(v.reason.contains("still acts"), "{}", v.reason);
}

#[test]
fn a_fault_that_ended_on_schedule_is_over() {
    let (ep, v) = judge(&mild(true, Some("30s")), None);
    assert_eq!(ep.injected()[0].end, Some(50 * SECONDS));
    assert!(v.recovered, "{v:?}");
    assert_eq!(v.recovered_at, Some(50 * SECONDS), "{v:?}");
}

#[test]
fn microremed_scenarios_require_the_fault_to_be_over() {
    // memory stress on Online Boutique breaks no SLO: before this rule a no-op "remediated" it
    let sc = FaultScenario::builtin("microremed-online-boutique-memory-stress").unwrap();
    assert!(sc.remediation.require_fault_cleared);
    let mut ep = Episode::new(&sc, 1).unwrap();
    let mut healthy = Episode::without_faults(&sc, 1).unwrap();
    ep.run_until(130 * SECONDS);
    healthy.run_until(130 * SECONDS);
    let v = remediation_verdict(&ep, &healthy, VerdictSpan::new(60 * SECONDS, 130 * SECONDS));
    assert!(!v.recovered, "{v:?}");
    assert!(v.reason.contains("still acts"), "{}", v.reason);
    // the DIME-like scenarios keep the SLO-based verdict
    assert!(
        !FaultScenario::builtin("dime-retry-storm")
            .unwrap()
            .remediation
            .require_fault_cleared
    );
}

#[test]
fn require_fault_cleared_reads_from_toml_and_round_trips() {
    let text = r#"
name = "x"
base = "simple-micro"
[remediation]
windows = 5
require_fault_cleared = true
"#;
    let sc = FaultScenario::from_toml_str(text).unwrap();
    assert!(sc.remediation.require_fault_cleared);
    let back = FaultScenario::from_toml_str(&sc.to_toml_string()).unwrap();
    assert_eq!(back.remediation, sc.remediation);
    // a misspelt key is an error naming it, not a silently lenient verdict
    let err =
        FaultScenario::from_toml_str(&text.replace("require_fault_cleared", "require_cleared"))
            .unwrap_err()
            .to_string();
    assert!(err.contains("require_cleared"), "{err}");
}
