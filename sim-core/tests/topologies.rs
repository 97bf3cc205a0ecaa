//! The built-in topologies: each parses, validates and runs healthy; traffic reaches every
//! service; the service and edge counts match the source call graphs; malformed copies give
//! errors that name the field.

use sim_core::prelude::*;
use sim_core::topologies;
use std::collections::BTreeSet;

/// What 30 simulated seconds of a built-in topology looked like.
struct Run {
    /// Service names, in scenario order.
    names: Vec<String>,
    /// Requests completed per service over the run.
    requests: Vec<f64>,
    /// Errors per service over the run.
    errors: Vec<f64>,
    /// Mean CPU utilisation (of the limit) per service over the run.
    cpu: Vec<f64>,
    /// Mean p99 (ms) per service over the windows with traffic.
    p99: Vec<f64>,
    /// External requests answered, and how many of them failed.
    client_total: usize,
    client_failed: usize,
}

fn run_30s(name: &str) -> Run {
    let sc = topologies::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut sim = Simulation::new(&sc, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
    sim.record_requests(true);
    sim.run_until(30 * SECONDS);
    let t = sim.telemetry();
    let n = sc.services.len();
    let mut r = Run {
        names: sc.services.iter().map(|s| s.name.clone()).collect(),
        requests: vec![0.0; n],
        errors: vec![0.0; n],
        cpu: vec![0.0; n],
        p99: vec![0.0; n],
        client_total: 0,
        client_failed: 0,
    };
    let mut p99_windows = vec![0usize; n];
    let secs = sc.scrape_interval.0 as f64 / SECONDS as f64;
    for s in &t.scrapes {
        for m in &s.services {
            let i = m.service as usize;
            r.requests[i] += m.rps * secs;
            r.errors[i] += m.errors_per_s * secs;
            r.cpu[i] += m.cpu_utilization / t.scrapes.len() as f64;
            if m.rps > 0.0 {
                r.p99[i] += m.p99_ms;
                p99_windows[i] += 1;
            }
        }
    }
    for (p, w) in r.p99.iter_mut().zip(&p99_windows) {
        *p /= (*w).max(1) as f64;
    }
    r.client_total = t.requests.len();
    r.client_failed = t.requests.iter().filter(|q| !q.status.is_ok()).count();
    // a table for `cargo test -- --nocapture`
    println!(
        "{name}: {} external requests, {} failed",
        r.client_total, r.client_failed
    );
    for i in 0..n {
        println!(
            "  {:32} {:8.1} rps  err {:6.3}%  cpu {:5.1}%  p99 {:7.2} ms",
            r.names[i],
            r.requests[i] / 30.0,
            100.0 * r.errors[i] / r.requests[i].max(1.0),
            100.0 * r.cpu[i],
            r.p99[i]
        );
    }
    r
}

/// Every service of a built-in topology is reached by its workload (all built-ins are
/// designed so; see each file's comments).
fn check_healthy(name: &str) {
    let r = run_30s(name);
    assert!(
        r.client_total > 100,
        "{name}: only {} external requests in 30 s",
        r.client_total
    );
    let err = r.client_failed as f64 / r.client_total as f64;
    assert!(err < 0.01, "{name}: client error rate {err}");
    let sc = topologies::load(name).unwrap();
    for w in &sc.workload {
        let i = sc.service_index(&w.entry).unwrap();
        let e = r.errors[i] / r.requests[i].max(1.0);
        assert!(e < 0.01, "{name}: entry {} error rate {e}", w.entry);
    }
    for (i, s) in r.names.iter().enumerate() {
        assert!(
            r.requests[i] > 0.0,
            "{name}: service {s} received no traffic in 30 s"
        );
        assert!(
            r.cpu[i] < 0.9,
            "{name}: service {s} runs at {:.0}% CPU when healthy",
            100.0 * r.cpu[i]
        );
    }
}

/// (service, callee) pairs that some call plan uses.
fn called_edges(sc: &Scenario) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for s in &sc.services {
        for o in &s.operations {
            for st in &o.stages {
                for c in &st.calls {
                    out.insert((s.name.clone(), c.service.clone()));
                }
            }
        }
    }
    out
}

/// Service count, declared edges == called edges, and the declared edge count.
fn check_counts(name: &str, services: usize, edges: usize) {
    let sc = topologies::load(name).unwrap();
    assert_eq!(sc.services.len(), services, "{name}: service count");
    assert_eq!(sc.edges.len(), edges, "{name}: edge count");
    let declared: BTreeSet<(String, String)> = sc
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    assert_eq!(declared.len(), edges, "{name}: duplicate edges");
    assert_eq!(
        declared,
        called_edges(&sc),
        "{name}: declared edges differ from the edges call plans use"
    );
    assert!(!sc.slos.is_empty(), "{name}: no SLOs");
    for w in &sc.workload {
        assert!(
            sc.slos.iter().any(|s| s.service == w.entry),
            "{name}: no SLO for entry {}",
            w.entry
        );
    }
    assert!(!sc.description.is_empty(), "{name}: no description");
}

#[test]
fn all_builtins_are_listed_and_load() {
    let names = topologies::list();
    for n in [
        "online-boutique",
        "train-ticket",
        "sock-shop",
        "dsb-social-network",
        "dsb-hotel-reservation",
        "simple-micro",
        "dime-8node",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for n in names {
        let sc = topologies::load(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(sc.name, n);
        Topology::compile(&sc).unwrap();
    }
    assert!(topologies::load("no-such-topology").is_err());
}

// Online Boutique: online_boutique.json has 12 services and 16 edges; `loadgenerator` is the
// workload (its edge loadgenerator -> frontend is the client edge), leaving 11 services, 15 edges.
#[test]
fn online_boutique_counts() {
    check_counts("online-boutique", 11, 15);
}
#[test]
fn online_boutique_runs_healthy() {
    check_healthy("online-boutique");
}

// Train-Ticket: train_ticket.json has 64 services (41 ts-*-service, ts-ui-dashboard, 22 datastores) and
// 154 edges; all are modelled.
#[test]
fn train_ticket_counts() {
    check_counts("train-ticket", 64, 154);
}
#[test]
fn train_ticket_runs_healthy() {
    check_healthy("train-ticket");
}

// Sock Shop: sock_shop.json has 14 services and 15 edges; all are modelled.
#[test]
fn sock_shop_counts() {
    check_counts("sock-shop", 14, 15);
}
#[test]
fn sock_shop_runs_healthy() {
    check_healthy("sock-shop");
}

// DeathStarBench social network: 25 services, 33 edges; all are modelled.
#[test]
fn dsb_social_network_counts() {
    check_counts("dsb-social-network", 25, 33);
}
#[test]
fn dsb_social_network_runs_healthy() {
    check_healthy("dsb-social-network");
}

// DeathStarBench hotel reservation: 22 services, 21 edges; all are modelled.
#[test]
fn dsb_hotel_reservation_counts() {
    check_counts("dsb-hotel-reservation", 22, 21);
}
#[test]
fn dsb_hotel_reservation_runs_healthy() {
    check_healthy("dsb-hotel-reservation");
}

// simple-micro: hello-service -> time-service (simple-micro-config.yaml).
#[test]
fn simple_micro_counts() {
    check_counts("simple-micro", 2, 1);
}
#[test]
fn simple_micro_runs_healthy() {
    check_healthy("simple-micro");
}

// dime-8node: ingress -> app -> db on 8 nodes (no source call graph; see the file).
#[test]
fn dime_8node_counts() {
    check_counts("dime-8node", 3, 2);
    let sc = topologies::load("dime-8node").unwrap();
    assert_eq!(sc.nodes.len(), 8);
    assert_eq!(sc.nodes[0].name, "node-0");
    let db = &sc.services[sc.service_index("db").unwrap()];
    assert_eq!(db.node_selector, vec!["node-0".to_string()]);
    let app = &sc.services[sc.service_index("app").unwrap()];
    assert_eq!(app.replicas, 7);
    assert!(!app.node_selector.contains(&"node-0".to_string()));
}
#[test]
fn dime_8node_runs_healthy() {
    check_healthy("dime-8node");
}

/// The app pods land one per worker node and the database on node-0.
#[test]
fn dime_8node_places_one_app_pod_per_worker_node() {
    let sc = topologies::load("dime-8node").unwrap();
    let sim = Simulation::new(&sc, 3).unwrap();
    let app = sim.service_id("app").unwrap();
    let mut nodes: Vec<u32> = sim.pods_of(app).iter().map(|p| p.node.unwrap()).collect();
    nodes.sort();
    assert_eq!(nodes, (1..8).collect::<Vec<u32>>());
    let db = sim.service_id("db").unwrap();
    assert_eq!(sim.pods_of(db)[0].node, Some(0));
}

/// A malformed copy of a built-in gives a ScenarioError that names the field.
#[test]
fn malformed_builtins_name_the_field() {
    let text = topologies::BUILTIN
        .iter()
        .find(|(n, _)| *n == "online-boutique")
        .unwrap()
        .1;
    // a value of the wrong type
    let bad = text.replacen("replicas = 1", "replicas = \"one\"", 1);
    let e = Scenario::from_toml_str(&bad).unwrap_err();
    assert!(matches!(e, ScenarioError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("replicas"), "{e}");
    // an unknown service in a call plan
    let bad = text.replacen(
        "service = \"redis-cart\", operation = \"HGET\"",
        "service = \"redis-kart\", operation = \"HGET\"",
        1,
    );
    assert_ne!(bad, text);
    let e = Scenario::from_toml_str(&bad).unwrap_err();
    match &e {
        ScenarioError::Invalid { field, reason } => {
            assert!(field.ends_with(".calls[0].service"), "{field}");
            assert!(field.starts_with("services[3].operations[0]"), "{field}");
            assert!(reason.contains("unknown service"), "{reason}");
        }
        other => panic!("expected Invalid, got {other}"),
    }
    // an unknown field
    let bad = text.replacen("workers = 256", "workers = 256\nworker_threads = 8", 1);
    let e = Scenario::from_toml_str(&bad).unwrap_err();
    assert!(matches!(e, ScenarioError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("worker_threads"), "{e}");
    // an unknown operation of a known service
    let bad = text.replacen(
        "operation = \"GetSupportedCurrencies\" }",
        "operation = \"GetCurrencies\" }",
        1,
    );
    let e = Scenario::from_toml_str(&bad).unwrap_err();
    assert!(e.to_string().contains(".operation"), "{e}");
    // a bad duration
    let bad = text.replacen("timeout = \"3s\"", "timeout = \"3 parsecs\"", 1);
    let e = Scenario::from_toml_str(&bad).unwrap_err();
    assert!(e.to_string().contains("timeout"), "{e}");
}

/// Every built-in is deterministic: same seed, same counters after 5 s.
#[test]
fn builtins_are_deterministic() {
    for name in topologies::list() {
        let sc = topologies::load(name).unwrap();
        let run = |seed| {
            let mut s = Simulation::new(&sc, seed).unwrap();
            s.run_until(5 * SECONDS);
            s.counters()
        };
        assert_eq!(run(9), run(9), "{name}");
    }
}
