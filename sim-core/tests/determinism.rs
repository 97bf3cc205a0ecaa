//! Determinism: the same scenario and seed give byte-identical telemetry and state; other
//! seeds give other results; faults and actions do not change the arrivals (common random
//! numbers); `fork()` gives an independent simulation whose future is identical to the
//! original's, even with faults, restarts, retries and timeouts in flight at the fork point.

use sim_core::prelude::*;
use sim_core::telemetry::RequestRecord;

/// A small shop with everything that consumes randomness or creates in-flight state: two
/// workloads (open, diurnal, with a mix; closed loop), lognormal / uniform / empirical /
/// exponential demands, parallel stages, probabilistic and optional calls, async calls,
/// disk IO, a connection pool, client and edge retries with jitter, tight timeouts, random and
/// least-outstanding balancing, two nodes.
const SHOP: &str = r#"
name = "det-shop"
duration = "30s"
scrape_interval = "500ms"
[telemetry]
trace_sample_rate = 0.2
log_burst = 3
[cluster]
schedule_delay = "1s"
initial_backoff = "2s"
pod_eviction_timeout = "5s"
[[nodes]]
name = "n0"
cpu = "4"
memory = "8Gi"
[[nodes]]
name = "n1"
cpu = "4"
memory = "8Gi"
zone = "b"

[[services]]
name = "front"
kind = "gateway"
replicas = 2
workers = 8
boot_time = "1s"
[[services.operations]]
name = "home"
cpu = { kind = "lognormal", median = "1ms", sigma = 0.5 }
[[services.operations.stages]]
calls = [{ service = "cart" }, { service = "reco", probability = 0.5, optional = true }]
[[services.operations.stages]]
calls = [{ service = "events", mode = "async" }]
[[services.operations]]
name = "checkout"
cpu = { kind = "exponential", mean = "2ms" }
[[services.operations.stages]]
calls = [{ service = "cart", operation = "write" }]

[[services]]
name = "cart"
replicas = 2
workers = 4
boot_time = "1s"
[[services.operations]]
name = "read"
cpu = { kind = "exponential", mean = "3ms" }
[[services.operations.stages]]
calls = [{ service = "db" }]
[[services.operations]]
name = "write"
cpu = { kind = "uniform", low = "1ms", high = "4ms" }
[[services.operations.stages]]
calls = [{ service = "db", operation = "put" }]

[[services]]
name = "reco"
workers = 2
boot_time = "1s"
[[services.operations]]
name = "get"
cpu = { kind = "empirical", values = ["1ms", "2ms", "8ms"] }

[[services]]
name = "events"
kind = "queue"
boot_time = "1s"
[[services.operations]]
name = "publish"
cpu = { kind = "constant", value = "500us" }
io = "4Ki"

[[services]]
name = "db"
kind = "database"
replicas = 2
boot_time = "1s"
[[services.operations]]
name = "get"
cpu = { kind = "exponential", mean = "1ms" }
io = "16Ki"
[[services.operations]]
name = "put"
cpu = { kind = "exponential", mean = "2ms" }
io = "64Ki"

[[edges]]
from = "front"
to = "cart"
timeout = "60ms"
retry = { attempts = 3, backoff = "5ms", jitter = 0.5 }
pool_size = 6
load_balancing = "least_outstanding"
latency = { kind = "lognormal", median = "300us", sigma = 0.3 }
[[edges]]
from = "cart"
to = "db"
timeout = "40ms"
retry = { attempts = 2, backoff = "2ms" }
load_balancing = "random"

[[workload]]
entry = "front"
arrivals = { kind = "open", rate = { kind = "diurnal", mean = 300.0, amplitude = 0.3, period = "20s" } }
mix = [{ operation = "home", weight = 3.0 }, { operation = "checkout", weight = 1.0 }]
client = { timeout = "500ms", retry = { attempts = 2, backoff = "50ms" } }
[[workload]]
entry = "front"
arrivals = { kind = "closed", users = 20, think_time = { kind = "exponential", mean = "200ms" } }
"#;

fn shop() -> Scenario {
    Scenario::from_toml_str(SHOP).unwrap()
}

/// Everything observable, as bytes: telemetry as JSON, the CSV and JSON-lines exporters,
/// counters, pods, and the full snapshot (model state, queue, RNG states).
fn fingerprint(sim: &Simulation) -> Vec<u8> {
    let mut out = serde_json::to_vec(sim.telemetry()).unwrap();
    out.extend_from_slice(sim.telemetry().service_metrics_csv().as_bytes());
    out.extend_from_slice(sim.telemetry().pod_metrics_csv().as_bytes());
    out.extend_from_slice(sim.telemetry().logs_jsonl().as_bytes());
    out.extend_from_slice(serde_json::to_string(&sim.counters()).unwrap().as_bytes());
    out.extend_from_slice(serde_json::to_string(&sim.pods()).unwrap().as_bytes());
    out.extend_from_slice(&sim.now().to_le_bytes());
    out.extend_from_slice(&sim.snapshot());
    out
}

/// Runs the shop with a fixed script of faults and actions.
fn scripted_run(seed: u64) -> Simulation {
    let mut sim = Simulation::new(&shop(), seed).unwrap();
    sim.record_requests(true);
    script(&mut sim, 0);
    sim
}

/// One step of a script: at this time, do this.
type Step<'a> = (u64, &'a dyn Fn(&mut Simulation));

/// The script of faults and actions, from step `from` on (steps happen at fixed times).
fn script(sim: &mut Simulation, from: usize) {
    let cart = sim.service_id("cart").unwrap();
    let db = sim.service_id("db").unwrap();
    let front = sim.service_id("front").unwrap();
    let fc = sim.topology().edge_id(front, cart).unwrap();
    let steps: [Step; 6] = [
        (8 * SECONDS, &|s| {
            let cp = s.pods_of(cart)[0].id;
            s.set_pod_cpu_stress(cp, 3000).unwrap();
            s.set_edge_network(
                fc,
                NetFault {
                    delay: 2 * MILLIS,
                    jitter: 3 * MILLIS,
                    loss: 0.1,
                },
            )
            .unwrap();
            let dbp = s.pods_of(db);
            s.set_pod_memory_leak(dbp[0].id, 60e6).unwrap();
            s.set_pod_io_fault(
                dbp[1].id,
                IoFault {
                    delay: 20 * MILLIS,
                    delay_fraction: 0.3,
                    error_fraction: 0.05,
                },
            )
            .unwrap();
            let fp = s.pods_of(front)[1].id;
            s.kill_pod(fp).unwrap();
        }),
        (11_500 * MILLIS, &|s| {
            let rp = s.pods_of(s.service_id("reco").unwrap())[0].id;
            s.restart_pod(rp).unwrap();
        }),
        (15 * SECONDS, &|s| {
            let cp = s.pods_of(cart)[0].id;
            s.set_pod_cpu_stress(cp, 0).unwrap();
            s.scale(cart, 3).unwrap();
        }),
        (20 * SECONDS, &|s| {
            let n1 = s.node_id("n1").unwrap();
            s.kill_node(n1).unwrap();
        }),
        (28 * SECONDS, &|s| {
            let n1 = s.node_id("n1").unwrap();
            s.restore_node(n1).unwrap();
            s.set_edge_network(fc, NetFault::default()).unwrap();
        }),
        (30 * SECONDS, &|_| {}),
    ];
    for (t, act) in steps.iter().skip(from) {
        sim.run_until(*t);
        act(sim);
    }
    sim.run_for(3 * SECONDS); // drain past the end
}

#[test]
fn same_scenario_and_seed_give_byte_identical_telemetry() {
    let a = scripted_run(42);
    let b = scripted_run(42);
    assert!(
        a.counters().retries > 0 && a.counters().timeouts > 0,
        "the script exercises retries: {:?}",
        a.counters()
    );
    assert!(!a.telemetry().spans.is_empty() && !a.telemetry().logs.is_empty());
    assert_eq!(
        a.telemetry().service_metrics_csv(),
        b.telemetry().service_metrics_csv()
    );
    assert_eq!(a.telemetry().logs_jsonl(), b.telemetry().logs_jsonl());
    assert!(
        fingerprint(&a) == fingerprint(&b),
        "same seed, different bytes"
    );
    // parsing the scenario again from its own TOML gives the same run
    let again = Scenario::from_toml_str(&shop().to_toml_string()).unwrap();
    assert_eq!(again, shop());
}

#[test]
fn results_do_not_depend_on_how_the_run_is_chunked() {
    let sc = shop();
    let mut one = Simulation::new(&sc, 9).unwrap();
    one.record_requests(true);
    one.run_to_end();
    let mut many = Simulation::new(&sc, 9).unwrap();
    many.record_requests(true);
    // odd step sizes that fall between scrape ticks and events
    let mut t = 0;
    while t < sc.duration.0 {
        t = (t + 123_456_789).min(sc.duration.0);
        many.run_until(t);
    }
    assert_eq!(one.now(), many.now());
    assert!(fingerprint(&one) == fingerprint(&many));
}

#[test]
fn different_seeds_give_different_results() {
    let a = scripted_run(1);
    let b = scripted_run(2);
    assert_ne!(
        a.telemetry().service_metrics_csv(),
        b.telemetry().service_metrics_csv()
    );
    let arr = |s: &Simulation| {
        let mut v: Vec<u64> = s.telemetry().requests.iter().map(|r| r.arrival).collect();
        v.sort();
        v
    };
    assert_ne!(arr(&a), arr(&b));
    // pod names derive from the seed too
    assert_ne!(a.pods()[0].name, b.pods()[0].name);
}

fn arrivals(recs: &[RequestRecord]) -> Vec<(u32, u32, u64)> {
    let mut v: Vec<(u32, u32, u64)> = recs
        .iter()
        .map(|r| (r.workload, r.operation, r.arrival))
        .collect();
    v.sort();
    v
}

/// Common random numbers: a fault on a downstream pod, a network fault on an edge or a
/// killed pod change what happens to requests but not when (open-loop) requests arrive nor
/// which operation they ask for.
#[test]
fn faults_do_not_change_open_loop_arrivals() {
    let mut sc = shop();
    sc.workload.truncate(1); // closed-loop arrivals depend on responses by definition
    let run = |fault: &dyn Fn(&mut Simulation)| {
        let mut sim = Simulation::new(&sc, 77).unwrap();
        sim.record_requests(true);
        sim.run_until(5 * SECONDS);
        fault(&mut sim);
        sim.run_to_end();
        // drain: every request has answered and its last span ended (the lossy run tips the cart
        // service into a retry storm whose backlog takes several seconds to clear)
        sim.run_for(30 * SECONDS);
        sim
    };
    let base = run(&|_| {});
    let db = base.service_id("db").unwrap();
    let cart = base.service_id("cart").unwrap();
    let front = base.service_id("front").unwrap();
    let stressed = run(&|s| {
        let p = s.pods_of(db)[0].id;
        s.set_pod_cpu_stress(p, 4000).unwrap();
    });
    let lossy = run(&|s| {
        let e = s.topology().edge_id(front, cart).unwrap();
        s.set_edge_network(
            e,
            NetFault {
                delay: 30 * MILLIS,
                jitter: 0,
                loss: 0.3,
            },
        )
        .unwrap();
    });
    let killed = run(&|s| {
        let p = s.pods_of(cart)[0].id;
        s.kill_pod(p).unwrap();
        s.scale(db, 1).unwrap();
    });
    let a0 = arrivals(&base.telemetry().requests);
    assert_eq!(
        a0.len() as u64,
        base.counters().arrivals,
        "every request answered after the drain"
    );
    for (name, other) in [
        ("cpu stress", &stressed),
        ("network", &lossy),
        ("kill/scale", &killed),
    ] {
        assert_eq!(
            other.counters().arrivals,
            base.counters().arrivals,
            "{name}"
        );
        let a1 = arrivals(&other.telemetry().requests);
        if a1 != a0 {
            let missing: Vec<_> = a0
                .iter()
                .filter(|x| a1.binary_search(x).is_err())
                .take(5)
                .collect();
            let extra: Vec<_> = a1
                .iter()
                .filter(|x| a0.binary_search(x).is_err())
                .take(5)
                .collect();
            panic!(
                "{name}: arrivals changed: {} vs {} records ({} arrivals), missing {missing:?}, extra {extra:?}, arenas {:?}",
                a1.len(),
                a0.len(),
                other.counters().arrivals,
                other.arena_usage()
            );
        }
        // ... while the outcome did change
        assert_ne!(
            other.telemetry().service_metrics_csv(),
            base.telemetry().service_metrics_csv(),
            "{name}: the fault had no effect"
        );
    }
}

/// fork() at a point with faults active, a pod booting, retries and timeouts in flight:
/// the fork and the original, driven by the same script, end byte-identical — and identical
/// to a run that was never forked.
#[test]
fn fork_runs_forward_identically_with_faults_restarts_and_retries_in_flight() {
    let mut sim = Simulation::new(&shop(), 5).unwrap();
    sim.record_requests(true);
    let front = sim.service_id("front").unwrap();
    // steps 0 and 1 of the script (faults at 8 s, a restart at 11.5 s), then stop at 11.6 s
    {
        let cart = sim.service_id("cart").unwrap();
        let db = sim.service_id("db").unwrap();
        let fc = sim.topology().edge_id(front, cart).unwrap();
        sim.run_until(8 * SECONDS);
        let cp = sim.pods_of(cart)[0].id;
        sim.set_pod_cpu_stress(cp, 3000).unwrap();
        sim.set_edge_network(
            fc,
            NetFault {
                delay: 2 * MILLIS,
                jitter: 3 * MILLIS,
                loss: 0.1,
            },
        )
        .unwrap();
        let dbp = sim.pods_of(db);
        sim.set_pod_memory_leak(dbp[0].id, 60e6).unwrap();
        sim.set_pod_io_fault(
            dbp[1].id,
            IoFault {
                delay: 20 * MILLIS,
                delay_fraction: 0.3,
                error_fraction: 0.05,
            },
        )
        .unwrap();
        let fp = sim.pods_of(front)[1].id;
        sim.kill_pod(fp).unwrap();
        sim.run_until(11_500 * MILLIS);
        let rp = sim.pods_of(sim.service_id("reco").unwrap())[0].id;
        sim.restart_pod(rp).unwrap();
        sim.run_until(11_600 * MILLIS);
    }
    // what is in flight at the fork point
    let c = sim.counters();
    assert!(c.retries > 0 && c.timeouts > 0, "{c:?}");
    let [jobs, invs, roots] = sim.arena_usage();
    assert!(
        jobs.0 > 0 && invs.0 > 0 && roots.0 > 0,
        "requests in flight: {:?}",
        sim.arena_usage()
    );
    assert!(
        sim.pods().iter().any(|p| p.phase == Phase::Starting),
        "a pod is booting: {:?}",
        sim.pods()
    );

    let mut fork = sim.fork();
    assert!(fingerprint(&fork) == fingerprint(&sim));
    script(&mut sim, 2);
    script(&mut fork, 2);
    assert!(sim.counters().retries > c.retries);
    assert!(
        fingerprint(&fork) == fingerprint(&sim),
        "fork and original diverged"
    );
    // a run that was never forked agrees too
    let plain = scripted_run(5);
    assert!(
        fingerprint(&plain) == fingerprint(&sim),
        "forking changed the run"
    );
}

/// Acting on a fork leaves the original untouched, at once and in its future.
#[test]
fn acting_on_a_fork_does_not_change_the_original() {
    let mut sim = Simulation::new(&shop(), 6).unwrap();
    sim.record_requests(true);
    sim.run_until(10 * SECONDS);
    let before = fingerprint(&sim);
    let control = sim.fork();

    let mut f = sim.fork();
    let cart = f.service_id("cart").unwrap();
    let db = f.service_id("db").unwrap();
    let p = f.pods_of(cart)[0].id;
    f.kill_pod(p).unwrap();
    f.scale(db, 4).unwrap();
    f.set_pod_cpu_stress(f.pods_of(db)[0].id, 8000).unwrap();
    f.set_ingress_rate_limit(f.service_id("front").unwrap(), Some(10.0))
        .unwrap();
    f.run_for(5 * SECONDS);
    assert!(
        fingerprint(&sim) == before,
        "the original changed when its fork ran"
    );

    let mut control = control;
    sim.run_for(5 * SECONDS);
    control.run_for(5 * SECONDS);
    assert!(fingerprint(&sim) == fingerprint(&control));
    assert!(fingerprint(&sim) != fingerprint(&f));
    assert_eq!(sim.pods_of(db).len(), 2);
    assert_eq!(f.pods_of(db).len(), 4);
    // forks of forks stay independent as well
    let mut g = f.fork();
    g.scale(db, 1).unwrap();
    g.run_for(SECONDS);
    assert_eq!(f.pods_of(db).len(), 4);
    // the clone impl is a fork
    let h = sim.clone();
    assert!(fingerprint(&h) == fingerprint(&sim));
}

/// Results never depend on threads: episodes run concurrently on several threads give the
/// same bytes as one run alone (no global state, no thread-local RNG, no wall clock).
#[test]
fn concurrent_runs_on_threads_give_the_same_bytes() {
    let alone = fingerprint(&scripted_run(42));
    let handles: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(|| fingerprint(&scripted_run(42))))
        .collect();
    for h in handles {
        assert!(h.join().unwrap() == alone);
    }
    // a simulation can move to another thread mid-run and carry on
    let mut sim = Simulation::new(&shop(), 42).unwrap();
    sim.record_requests(true);
    sim.run_until(5 * SECONDS);
    let sim = std::thread::spawn(move || {
        let mut sim = sim;
        script(&mut sim, 0);
        sim
    })
    .join()
    .unwrap();
    assert!(fingerprint(&sim) == alone);
}
