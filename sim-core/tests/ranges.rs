//! Out-of-range inputs are errors naming the field, and extreme inputs that are valid run
//! without an overflow panic (a debug build checks every addition).

use sim_core::MAX_STRESS_MILLICORES;
use sim_core::prelude::*;
use sim_core::scenario::{MAX_SCENARIO_DURATION, MAX_SCRAPE_INTERVAL};

/// One service `api` on one node, 1 rps, in TOML; `extra` goes into the service's table.
fn toml_scenario(top: &str, extra: &str) -> String {
    format!(
        r#"
name = "ranges"
duration = "60s"
{top}

[[nodes]]
name = "n0"
cpu = "8"
memory = "16Gi"

[[services]]
name = "api"
operations = [{{ name = "get", cpu = {{ kind = "constant", value = "1ms" }} }}]
{extra}

[[workload]]
entry = "api"
arrivals = {{ kind = "open", rate = {{ kind = "constant", rps = 1.0 }} }}
"#
    )
}

fn invalid_field(r: Result<Scenario, ScenarioError>) -> String {
    match r {
        Err(ScenarioError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

/// A config version's resources are checked like the service's own (a zero CPU limit was
/// accepted, and rolling it out divided by a zero share and overflowed the clock).
#[test]
fn config_version_resources_are_validated_like_the_services() {
    let res = |cpu_req: &str, cpu_lim: &str, mem_req: &str, mem_lim: &str| {
        format!(
            r#"{{ cpu_request = "{cpu_req}", cpu_limit = "{cpu_lim}", memory_request = "{mem_req}", memory_limit = "{mem_lim}" }}"#
        )
    };
    let cases = [
        (res("0", "0", "1Mi", "1Gi"), "cpu_limit"),
        (res("100m", "200m", "0", "0"), "memory_limit"),
        (res("300m", "200m", "1Mi", "1Gi"), "cpu_request"),
        (res("100m", "200m", "2Gi", "1Gi"), "memory_request"),
    ];
    for (r, field) in &cases {
        let version = format!(
            r#"config_versions = [{{ label = "ok" }}, {{ label = "bad", resources = {r} }}]"#
        );
        assert_eq!(
            invalid_field(Scenario::from_toml_str(&toml_scenario("", &version))),
            format!("services[0].config_versions[1].resources.{field}"),
        );
        let base = format!("resources = {r}");
        assert_eq!(
            invalid_field(Scenario::from_toml_str(&toml_scenario("", &base))),
            format!("services[0].resources.{field}"),
        );
    }
    // requests equal to their limits, and zero requests, are fine
    for r in [res("200m", "200m", "1Gi", "1Gi"), res("0", "1m", "0", "1")] {
        let version = format!(r#"config_versions = [{{ resources = {r} }}]"#);
        Scenario::from_toml_str(&toml_scenario("", &version)).unwrap();
        Scenario::from_toml_str(&toml_scenario("", &format!("resources = {r}"))).unwrap();
    }
}

/// The smallest valid CPU share with the largest valid demand: a 1m limit (rolled out, and
/// under the most stress a pod takes) and a CPU demand of a million hours. A job's CPU phase
/// then ends "never" (it ran into `now + u64::MAX`, an overflow panic); the run goes on.
#[test]
fn a_tiny_cpu_share_with_a_huge_demand_does_not_overflow_the_clock() {
    let version = r#"config_versions = [{ label = "tiny", resources = { cpu_request = "1m", cpu_limit = "1m", memory_request = "1Mi", memory_limit = "1Gi" } }]"#;
    let mut sc = Scenario::from_toml_str(&toml_scenario("", version)).unwrap();
    sc.services[0].operations[0].cpu = DurationDist::constant("1000000h".parse().unwrap());
    for stress in [false, true] {
        let mut sim = Simulation::new(&sc, 1).unwrap();
        let api = sim.service_id("api").unwrap();
        sim.rollout(api, 1).unwrap();
        sim.run_until(10 * SECONDS);
        if stress {
            let pod = sim.pods_of(api)[0].id;
            sim.set_pod_cpu_stress(pod, MAX_STRESS_MILLICORES).unwrap();
        }
        sim.run_until(60 * SECONDS);
        assert!(sim.counters().arrivals > 30);
        assert_eq!(sim.now(), 60 * SECONDS);
    }
}

/// Durations written as integers get the range cap of fractions: a scrape interval or a
/// duration near `u64::MAX` ns is a parse error, not a value that overflows the clock.
#[test]
fn huge_integer_durations_are_parse_errors() {
    for top in [
        r#"scrape_interval = "10000000000000000000ns""#,
        r#"scrape_interval = "5000000h""#,
    ] {
        let text = toml_scenario(top, "").replace(r#"duration = "60s""#, "");
        let text = format!("duration = \"18446744073709551615ns\"\n{text}");
        match Scenario::from_toml_str(&text) {
            Err(ScenarioError::Parse { message, .. }) => {
                assert!(message.contains("out of range"), "{message}")
            }
            other => panic!("{top}: {other:?}"),
        }
    }
}

/// `duration` and `scrape_interval` are at most 100 and 10 years (a value built in code could
/// be anything); the error names the field.
#[test]
fn duration_and_scrape_interval_ranges_are_validated() {
    let sc = Scenario::from_toml_str(&toml_scenario("", "")).unwrap();
    let over = SimDuration(MAX_SCENARIO_DURATION.0 + 1);
    let over_i = SimDuration(MAX_SCRAPE_INTERVAL.0 + 1);
    for (d, i, field) in [
        (SimDuration(u64::MAX), SimDuration::from_secs(1), "duration"),
        (over, SimDuration::from_secs(1), "duration"),
        (
            SimDuration::from_secs(60),
            SimDuration(10_000_000_000_000_000_000),
            "scrape_interval",
        ),
        (SimDuration::from_secs(60), over_i, "scrape_interval"),
    ] {
        let mut bad = sc.clone();
        bad.duration = d;
        bad.scrape_interval = i;
        assert_eq!(invalid_field(bad.validate().map(|_| bad.clone())), field);
        assert!(Simulation::new(&bad, 1).is_err());
    }
    let mut ok = sc.clone();
    ok.duration = MAX_SCENARIO_DURATION;
    ok.scrape_interval = MAX_SCRAPE_INTERVAL;
    ok.validate().unwrap();
    // 100 years, as the sweep's `duration_s` allows
    assert_eq!(MAX_SCENARIO_DURATION.0, 3_153_600_000 * SECONDS);
}

/// The scrape tick saturates: running a valid scenario to the end of the clock (the longest
/// scrape interval, no traffic) stops after the last tick before `u64::MAX` instead of
/// overflowing `next_tick`.
#[test]
fn running_to_the_end_of_the_clock_does_not_overflow_the_scrape_tick() {
    let mut sc = Scenario::from_toml_str(&toml_scenario("", "")).unwrap();
    sc.duration = MAX_SCENARIO_DURATION;
    sc.scrape_interval = MAX_SCRAPE_INTERVAL;
    sc.workload[0].arrivals = ArrivalSpec::Open {
        rate: RateSpec::Constant { rps: 0.0 },
    };
    let mut sim = Simulation::new(&sc, 1).unwrap();
    sim.run_until(u64::MAX);
    assert_eq!(sim.now(), u64::MAX);
    let ticks = u64::MAX / MAX_SCRAPE_INTERVAL.0;
    assert_eq!(sim.telemetry().scrapes.len() as u64, ticks);
    // and again: nothing left to do
    sim.run_for(u64::MAX);
    assert_eq!(sim.telemetry().scrapes.len() as u64, ticks);
}
