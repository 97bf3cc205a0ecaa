//! Pod lifecycle against calls under way: a pod's slot taken by its replacement, a restart
//! of a pod whose node is down.

use sim_core::prelude::*;

/// api (1 pod) -> db through a pool of one connection; a query takes 10 s, so the pool is
/// always busy and calls queue for it; they give up after 60 s in the queue, while the one
/// holding the connection is always answered in time (the db runs one query at a time).
const POOLED: &str = r#"
name = "pooled"
duration = "80s"
scrape_interval = "1s"
[[nodes]]
name = "n0"
cpu = "16"
memory = "16Gi"
[[nodes]]
name = "n1"
cpu = "16"
memory = "16Gi"
[[services]]
name = "api"
replicas = 1
workers = 256
boot_time = "1s"
[[services.operations]]
name = "get"
cpu = { kind = "constant", value = "1ms" }
[[services.operations.stages]]
calls = [{ service = "db" }]
[[services]]
name = "db"
kind = "database"
replicas = 1
workers = 64
[[services.operations]]
name = "q"
cpu = { kind = "constant", value = "10s" }
[[edges]]
from = "api"
to = "db"
timeout = "60s"
pool_size = 1
[[workload]]
entry = "api"
arrivals = { kind = "open", rate = { kind = "constant", rps = 1.0 } }
client = { timeout = "120s" }
"#;

/// A deleted pod's replacement takes its slot (the same pod id). The old pod's call still
/// holding the pool's one connection must not release a connection of the new pod's pool
/// when it ends: it once did, and the pool then let two queries run at once for good.
#[test]
fn a_replacement_pod_does_not_inherit_its_predecessors_calls() {
    let sc = Scenario::from_toml_str(POOLED).unwrap();
    let mut sim = Simulation::new(&sc, 1).unwrap();
    let api = sim.service_id("api").unwrap();
    let db = sim.service_id("db").unwrap();
    sim.run_until(25 * SECONDS);
    let old = sim.pods_of(api)[0].id;
    sim.kill_pod(old).unwrap();
    let new = sim.pods_of(api)[0].id;
    assert_eq!(
        new, old,
        "the replacement reuses the slot (what this test is about)"
    );
    // the old pod's query runs out by 35 s; from then on one query at a time
    let mut seen = vec![];
    for t in 26..80 {
        sim.run_until(t * SECONDS);
        let s = sim.last_scrape().unwrap();
        let in_db: u32 = s
            .pods
            .iter()
            .filter(|p| p.service == db)
            .map(|p| p.in_flight)
            .sum();
        seen.push(in_db);
        if t >= 36 {
            assert_eq!(in_db, 1, "{t} s: {seen:?}");
        }
        let api_pool = s.pods.iter().find(|p| p.pod == new).map(|p| p.pool_in_use);
        assert!(api_pool.unwrap_or(0) <= 1, "{t} s: pool {api_pool:?}");
    }
    assert!(
        seen.contains(&2),
        "the old pod's query overlapped the new pod's: {seen:?}"
    );
}

/// Restarting a pod whose node is down is refused (its kubelet is unreachable), and the pod
/// is still evicted and replaced on another node. A restart there once cancelled the
/// eviction for good: the service stayed down.
#[test]
fn a_pod_lost_with_its_node_is_still_evicted_after_a_restart_attempt() {
    let sc = Scenario::from_toml_str(POOLED).unwrap();
    let mut sim = Simulation::new(&sc, 1).unwrap();
    let api = sim.service_id("api").unwrap();
    sim.run_until(5 * SECONDS);
    let pod = sim.pods_of(api)[0].clone();
    let node = pod.node.unwrap();
    sim.kill_node(node).unwrap();
    assert_eq!(sim.pods_of(api)[0].phase, Phase::NodeLost);
    let e = sim.restart_pod(pod.id).unwrap_err();
    assert!(e.to_string().contains("node that is down"), "{e}");
    sim.run_until(59 * SECONDS);
    let now = sim.pods_of(api);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].phase, Phase::Running, "{now:?}");
    assert_ne!(now[0].node, Some(node));
}

/// Scaling down removes the pods ready for the shortest time (a ReplicaSet's rule), whatever
/// slots they sit in: a replacement that took the slot of a deleted pod is the newest, and
/// goes first. The highest slot id once stood for "newest".
#[test]
fn scale_down_removes_the_most_recently_ready_pod() {
    let text = POOLED.replacen("replicas = 1", "replicas = 3", 1);
    let sc = Scenario::from_toml_str(&text).unwrap();
    let mut sim = Simulation::new(&sc, 1).unwrap();
    let api = sim.service_id("api").unwrap();
    sim.run_until(2 * SECONDS);
    let first = sim.pods_of(api)[0].clone();
    sim.kill_pod(first.id).unwrap();
    sim.run_until(10 * SECONDS);
    let pods = sim.pods_of(api);
    let newest = pods.iter().find(|p| p.id == first.id).expect("slot reused");
    assert_ne!(newest.name, first.name);
    assert!(pods.iter().all(|p| p.ready), "{pods:?}");
    sim.scale(api, 2).unwrap();
    let left: Vec<String> = sim.pods_of(api).into_iter().map(|p| p.name).collect();
    assert_eq!(left.len(), 2);
    assert!(
        !left.contains(&newest.name),
        "{left:?} still has {}",
        newest.name
    );
}
