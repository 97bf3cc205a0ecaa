//! Memory stays bounded over long horizons: request state in flight is recycled (arena
//! slots, pod slots), telemetry obeys its retention settings, and nothing is left behind
//! once the work drains, even after faults that abandon work (timeouts, lost messages,
//! killed pods, crashes, partitions).

use sim_core::prelude::*;

/// A three-tier service at light steady load (40 rps), with retries, an async call, a pool
/// and bounded telemetry.
const STEADY: &str = r#"
name = "steady"
duration = "1h"
scrape_interval = "5s"
[telemetry]
trace_sample_rate = 0.05
retain_scrapes = 24
retain_spans = 500
retain_logs = 200
[cluster]
schedule_delay = "1s"
initial_backoff = "1s"
max_backoff = "4s"
pod_eviction_timeout = "5s"
[[nodes]]
name = "n0"
cpu = "8"
memory = "16Gi"
[[nodes]]
name = "n1"
cpu = "8"
memory = "16Gi"
[[services]]
name = "web"
replicas = 2
workers = 8
boot_time = "1s"
config_versions = [{ label = "crashy", crash_on_start = true }]
[[services.operations]]
name = "page"
cpu = { kind = "exponential", mean = "2ms" }
[[services.operations.stages]]
calls = [{ service = "app" }, { service = "mq", mode = "async" }]
[[services]]
name = "app"
replicas = 2
workers = 4
boot_time = "1s"
[[services.operations]]
name = "logic"
cpu = { kind = "lognormal", median = "3ms", sigma = 0.5 }
[[services.operations.stages]]
calls = [{ service = "db", probability = 0.8 }]
[[services]]
name = "db"
kind = "database"
workers = 4
boot_time = "1s"
[[services.operations]]
name = "q"
cpu = { kind = "exponential", mean = "1ms" }
io = "4Ki"
[[services]]
name = "mq"
kind = "queue"
boot_time = "1s"
[[services.operations]]
name = "pub"
cpu = { kind = "constant", value = "300us" }
[[edges]]
from = "web"
to = "app"
timeout = "100ms"
retry = { attempts = 3, backoff = "5ms" }
pool_size = 4
[[edges]]
from = "app"
to = "db"
timeout = "50ms"
retry = { attempts = 2, backoff = "5ms" }
[[workload]]
entry = "web"
arrivals = { kind = "open", rate = { kind = "constant", rps = 40.0 } }
client = { timeout = "1s", retry = { attempts = 2 } }
"#;

fn steady() -> Scenario {
    Scenario::from_toml_str(STEADY).unwrap()
}

fn capacities(sim: &Simulation) -> [usize; 3] {
    sim.arena_usage().map(|(_, cap)| cap)
}

/// A 1-hour run at steady load: the arenas' capacity (their high-water mark) after 60 minutes
/// equals the one after 10 minutes up to the slow growth of the maximum of a stationary
/// process; the snapshot (all state) does not grow; telemetry obeys retention.
///
/// Bound: a leak of one slot per 1,000 requests would add 72 slots over the 50 minutes
/// (72,000 requests at 40 rps); the maximum of a stationary in-flight count (mean ~0.3 here)
/// grows by a slot or two when the observation window grows sixfold. So: capacity after 60
/// min <= capacity after 10 min + 8, and in use at the end <= 64.
#[test]
fn a_one_hour_run_at_steady_load_does_not_grow() {
    let mut sim = Simulation::new(&steady(), 1).unwrap();
    sim.run_until(600 * SECONDS);
    let cap10 = capacities(&sim);
    let snap10 = sim.snapshot().len();
    let events10 = sim.pending_events();
    let t = sim.telemetry();
    assert_eq!(t.scrapes.len(), 24, "retain_scrapes");
    assert_eq!(
        t.spans.len(),
        500,
        "retain_spans (600 s * 40 rps * 5% = 1,200 traces were sampled)"
    );
    assert!(t.logs.len() <= 200, "retain_logs");
    assert_eq!(
        t.scrapes.back().unwrap().time,
        600 * SECONDS,
        "the newest scrapes are kept"
    );
    // a steady state indeed: every request answered
    let c = sim.counters();
    assert!(c.arrivals > 23_000, "{c:?}");

    sim.run_until(3600 * SECONDS);
    let cap60 = capacities(&sim);
    let snap60 = sim.snapshot().len();
    eprintln!(
        "arena capacities 10 min {cap10:?}, 60 min {cap60:?}; snapshot {snap10} -> {snap60} bytes; events {events10} -> {}",
        sim.pending_events()
    );
    for k in 0..3 {
        assert!(
            cap60[k] <= cap10[k] + 8,
            "arena {k} grew: {cap10:?} -> {cap60:?}"
        );
    }
    assert!(
        sim.arena_usage().iter().all(|(in_use, _)| *in_use <= 64),
        "{:?}",
        sim.arena_usage()
    );
    // every request answered, none outstanding beyond the few in flight
    let c = sim.counters();
    assert!(
        c.arrivals > 140_000 && c.arrivals - c.responses < 64,
        "{c:?}"
    );
    // all state, serialised: the telemetry is bounded by retention and the rest by the arenas
    assert!(
        snap60 <= snap10 + snap10 / 4,
        "snapshot grew from {snap10} to {snap60} bytes"
    );
    assert!(
        sim.pending_events() <= events10 + 64,
        "event queue grew: {events10} -> {}",
        sim.pending_events()
    );
    assert_eq!(sim.telemetry().scrapes.len(), 24);
    assert_eq!(sim.telemetry().spans.len(), 500);
}

/// `take_telemetry` hands over what was gathered and leaves empty buffers; with unbounded
/// retention and periodic takes, memory stays bounded too and nothing is lost or duplicated.
#[test]
fn take_telemetry_empties_the_buffers() {
    let mut sc = steady();
    sc.duration = SimDuration::from_secs(600);
    sc.telemetry.retain_scrapes = 0;
    sc.telemetry.retain_spans = 0;
    sc.telemetry.retain_logs = 0;
    let mut sim = Simulation::new(&sc, 2).unwrap();
    sim.record_requests(true);
    let mut scrapes = 0;
    let mut requests = 0;
    let mut last_time = 0;
    for k in 1..=10 {
        sim.run_until(k * 60 * SECONDS);
        let t = sim.take_telemetry();
        assert_eq!(t.scrapes.len(), 12, "a minute of 5 s scrapes");
        assert!(
            t.scrapes.front().unwrap().time > last_time,
            "no scrape handed over twice"
        );
        last_time = t.scrapes.back().unwrap().time;
        scrapes += t.scrapes.len();
        requests += t.requests.len();
        let left = sim.telemetry();
        assert!(
            left.scrapes.is_empty()
                && left.spans.is_empty()
                && left.logs.is_empty()
                && left.requests.is_empty()
        );
    }
    assert_eq!(scrapes, 120);
    // request records are handed over once each: all answered requests but the last few in flight
    let c = sim.counters();
    assert!(
        requests as u64 <= c.arrivals && requests as u64 + 64 >= c.arrivals,
        "{requests} records, {c:?}"
    );
}

/// After faults that abandon work — timeouts, lost messages, partitions, killed and
/// crash-looping pods, OOM kills, node loss, pool waits — and a drain with no new arrivals,
/// every request slot is free again, and pod slots are reused rather than appended.
#[test]
fn in_flight_state_is_recycled_after_faults() {
    let mut sc = steady();
    sc.duration = SimDuration::from_secs(300);
    let mut sim = Simulation::new(&sc, 3).unwrap();
    let web = sim.service_id("web").unwrap();
    let app = sim.service_id("app").unwrap();
    let db = sim.service_id("db").unwrap();
    let wa = sim.topology().edge_id(web, app).unwrap();
    let ad = sim.topology().edge_id(app, db).unwrap();
    let n1 = sim.node_id("n1").unwrap();
    let mut max_pod_id = 0;
    for round in 0..10u64 {
        let t0 = round * 30 * SECONDS;
        sim.run_until(t0 + 2 * SECONDS);
        let apps = sim.pods_of(app);
        sim.set_edge_network(
            wa,
            NetFault {
                delay: 30 * MILLIS,
                jitter: 60 * MILLIS,
                loss: 0.2,
            },
        )
        .unwrap();
        sim.set_pod_cpu_stress(apps[0].id, 6000).unwrap();
        sim.set_pool_size(wa, Some(1)).unwrap();
        let dbp = sim.pods_of(db)[0].id;
        sim.set_pod_io_fault(
            dbp,
            IoFault {
                delay: 80 * MILLIS,
                delay_fraction: 0.5,
                error_fraction: 0.2,
            },
        )
        .unwrap();
        let part = sim
            .add_partition(Partition {
                members: vec![dbp],
                peers: None,
            })
            .unwrap();
        sim.run_until(t0 + 6 * SECONDS);
        sim.remove_partition(part);
        sim.set_pod_memory_leak(sim.pods_of(app)[1].id, 200e6)
            .unwrap();
        sim.kill_pod(sim.pods_of(web)[0].id).unwrap();
        sim.restart_pod(sim.pods_of(app)[0].id).unwrap();
        sim.run_until(t0 + 10 * SECONDS);
        match round % 3 {
            0 => sim.kill_node(n1).unwrap(),
            1 => sim.rollout(web, 1).unwrap(),
            _ => sim.scale(app, 4).unwrap(),
        }
        sim.run_until(t0 + 20 * SECONDS);
        match round % 3 {
            0 => sim.restore_node(n1).unwrap(),
            1 => {
                sim.rollback(web).unwrap();
            }
            _ => sim.scale(app, 2).unwrap(),
        }
        sim.set_edge_network(wa, NetFault::default()).unwrap();
        sim.set_edge_network(ad, NetFault::default()).unwrap();
        sim.set_pool_size(wa, None).unwrap();
        for p in sim.pods() {
            let _ = sim.set_pod_cpu_stress(p.id, 0);
            let _ = sim.set_pod_io_fault(p.id, IoFault::default());
            let _ = sim.set_pod_memory_leak(p.id, 0.0);
            max_pod_id = max_pod_id.max(p.id);
        }
    }
    let c = sim.counters();
    assert!(
        c.timeouts > 100 && c.retries > 100 && c.oom_kills > 0,
        "the faults bit: {c:?}"
    );
    // drain: no arrivals after the end; the longest chain of timeouts and back-offs is a few s
    sim.run_until(sim.end() + 60 * SECONDS);
    let usage = sim.arena_usage();
    assert_eq!(
        usage.map(|(in_use, _)| in_use),
        [0, 0, 0],
        "request state left behind: {usage:?}"
    );
    let c = sim.counters();
    assert_eq!(c.arrivals, c.responses, "every request was answered: {c:?}");
    // at most 4 + 2 + 1 + 1 = 8 pods at once, plus a few replacements booting: pod slots are reused
    assert!(max_pod_id < 24, "pod slots grow: max id {max_pod_id}");
}
