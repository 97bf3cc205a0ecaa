//! Faults that overlap in time on the same surfaces, fault windows that do not depend on how
//! an episode is stepped, and what a selector picks.

use sim_core::telemetry::Phase;
use sim_core::time::SECONDS;
use sim_faults::{Episode, FaultScenario};

const BASE: &str = r#"
name = "t"
duration = "80s"
[base]
name = "overlap"
duration = "80s"
[[base.nodes]]
name = "n0"
cpu = "16"
memory = "32Gi"
zone = "za"
[[base.nodes]]
name = "n1"
cpu = "16"
memory = "32Gi"
zone = "za"
[[base.nodes]]
name = "n2"
cpu = "16"
memory = "32Gi"
zone = "zb"
[[base.services]]
name = "api"
replicas = 3
[[base.services.operations]]
name = "get"
cpu = { kind = "exponential", mean = "1ms" }
[[base.services.operations.stages]]
calls = [{ service = "db" }]
[[base.services]]
name = "db"
kind = "database"
replicas = 2
[[base.services.operations]]
name = "query"
cpu = { kind = "exponential", mean = "2ms" }
[[base.edges]]
from = "api"
to = "db"
timeout = "500ms"
[[base.workload]]
entry = "api"
arrivals = { kind = "open", rate = { kind = "constant", rps = 50.0 } }
"#;

fn scenario(base: &str, faults: &str) -> FaultScenario {
    FaultScenario::from_toml_str(&format!("{base}\n{faults}")).unwrap()
}

fn weight(ep: &Episode, pod: &str) -> u32 {
    let p = ep.sim().pod_by_name(pod).unwrap();
    ep.sim().pod_weight(p.id).unwrap()
}

/// A load skew that ends while a pod failure is still on does not put the failed pod back
/// into rotation (it once reset the weight to 100).
#[test]
fn an_ending_fault_keeps_an_overlapping_ones_effect() {
    let sc = scenario(
        BASE,
        r#"[[faults]]
id = "fail"
start = "10s"
duration = "60s"
mode = "one"
selector = { service = "db" }
chaos = { kind = "PodChaos", action = "pod-failure", detection = "5s" }
[[faults]]
id = "skew"
start = "20s"
duration = "10s"
mode = "all"
selector = { service = "db" }
chaos = { kind = "LoadSkew", weight = 3 }"#,
    );
    let mut ep = Episode::new(&sc, 1).unwrap();
    ep.run_until(17 * SECONDS);
    let failed = ep.injected()[0].pods[0].clone();
    let other = ep
        .sim()
        .pods_of(ep.sim().service_id("db").unwrap())
        .into_iter()
        .find(|p| p.name != failed)
        .unwrap()
        .name;
    assert_eq!(weight(&ep, &failed), 0);
    ep.run_until(25 * SECONDS);
    assert_eq!(
        weight(&ep, &failed),
        0,
        "a skewed black-holed pod stays out"
    );
    assert_eq!(weight(&ep, &other), 300);
    ep.run_until(35 * SECONDS);
    assert_eq!(
        weight(&ep, &failed),
        0,
        "the skew ended, the failure did not"
    );
    assert_eq!(weight(&ep, &other), 100);
    ep.run_until(75 * SECONDS);
    assert_eq!(weight(&ep, &failed), 100);
}

/// A node failure that ends inside a zone failure of its zone leaves the node down.
#[test]
fn a_node_stays_down_while_any_fault_holds_it() {
    let sc = scenario(
        BASE,
        r#"[[faults]]
start = "10s"
duration = "10s"
selector = { node = "n0" }
chaos = { kind = "NodeFailure" }
[[faults]]
start = "15s"
duration = "60s"
selector = { zone = "za" }
chaos = { kind = "ZoneFailure" }"#,
    );
    let mut ep = Episode::new(&sc, 1).unwrap();
    ep.run_until(25 * SECONDS);
    let up = |ep: &Episode, n: &str| ep.sim().node_up(ep.sim().node_id(n).unwrap()).unwrap();
    assert!(!up(&ep, "n0"), "n0 is in the failed zone");
    assert!(!up(&ep, "n1"));
    assert!(up(&ep, "n2"));
    ep.run_until(76 * SECONDS);
    assert!(up(&ep, "n0") && up(&ep, "n1"));
}

/// Fault windows and everything the simulation does are the same whether an episode runs in
/// one call or in steps of any size (a fault whose pods the simulation evicted once ended at
/// the caller's next step boundary).
#[test]
fn fault_windows_do_not_depend_on_the_step_size() {
    let pinned = BASE.replacen(
        "name = \"db\"\nkind = \"database\"\nreplicas = 2",
        "name = \"db\"\nkind = \"database\"\nreplicas = 1\nnode_selector = [\"n0\"]",
        1,
    );
    let runs = |sc: &FaultScenario| {
        let mut out = vec![];
        for step in [0u64, 10, 7, 3] {
            let mut ep = Episode::new(sc, 2).unwrap();
            if step == 0 {
                ep.run_to_end();
            } else {
                let mut t = 0;
                while !ep.is_done() {
                    t += step * SECONDS;
                    ep.run_until(t);
                }
            }
            out.push((
                serde_json::to_string(ep.injected()).unwrap(),
                serde_json::to_string(ep.sim().telemetry()).unwrap(),
            ));
        }
        out
    };
    // a leak whose pod is evicted from a failed node
    let leak = scenario(
        &pinned,
        r#"[[faults]]
start = "5s"
selector = { service = "db" }
chaos = { kind = "MemoryLeak", rate = "1Mi" }
[[faults]]
start = "10s"
duration = "60s"
selector = { node = "n0" }
chaos = { kind = "NodeFailure" }"#,
    );
    let out = runs(&leak);
    assert!(out[0].0.contains("ended early"), "{}", out[0].0);
    for o in &out[1..] {
        assert!(o == &out[0], "{}\nvs\n{}", o.0, out[0].0);
    }
    // two config faults stacked on one deployment: the later one's end brings back the
    // earlier one's version, which stays live (and its fault active)
    let stacked = scenario(
        BASE,
        r#"[[faults]]
start = "10s"
selector = { service = "db" }
chaos = { kind = "ConfigError", action = "crash-loop" }
[[faults]]
start = "20s"
duration = "10s"
selector = { service = "db" }
chaos = { kind = "ConfigError", action = "bad-resources" }"#,
    );
    let out = runs(&stacked);
    for o in &out[1..] {
        assert!(o == &out[0], "{}\nvs\n{}", o.0, out[0].0);
    }
    let mut ep = Episode::new(&stacked, 2).unwrap();
    ep.run_to_end();
    assert_eq!(ep.injected()[0].end, None, "{:?}", ep.injected()[0]);
    assert_eq!(ep.injected()[1].end, Some(30 * SECONDS));
    let db = ep.sim().service_id("db").unwrap();
    assert_ne!(
        ep.sim().deployment(db).unwrap().1,
        0,
        "the crash-loop version is live"
    );
}

/// A pod fault whose selector names only a node acts on the pods of every service there;
/// pods lost with a failed node are not picked; a network fault on the edge to a service
/// names every pod whose calls it slows.
#[test]
fn selectors_pick_what_the_fault_reaches() {
    let sc = scenario(
        BASE,
        r#"[[faults]]
start = "5s"
duration = "10s"
selector = { node = "n0" }
mode = "all"
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 1, load = 50 } } }"#,
    );
    let mut ep = Episode::new(&sc, 1).unwrap();
    ep.run_until(6 * SECONDS);
    let n0 = ep.sim().node_id("n0").unwrap();
    let mut on_n0: Vec<String> = ep
        .sim()
        .pods()
        .into_iter()
        .filter(|p| p.node == Some(n0))
        .map(|p| p.name)
        .collect();
    on_n0.sort();
    let mut picked = ep.injected()[0].pods.clone();
    picked.sort();
    assert!(!picked.is_empty());
    assert_eq!(picked, on_n0);

    for seed in 0..6 {
        let sc = scenario(
            BASE,
            r#"[[faults]]
start = "10s"
duration = "60s"
selector = { node = "n0" }
chaos = { kind = "NodeFailure" }
[[faults]]
start = "15s"
duration = "10s"
mode = "one"
selector = { service = "api" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 1, load = 50 } } }"#,
        );
        let mut ep = Episode::new(&sc, seed).unwrap();
        ep.run_until(16 * SECONDS);
        let pod = ep.sim().pod_by_name(&ep.injected()[1].pods[0]).unwrap();
        assert_ne!(pod.phase, Phase::NodeLost, "seed {seed}: {pod:?}");
    }

    let sc = scenario(
        BASE,
        r#"[[faults]]
start = "5s"
duration = "10s"
mode = "one"
selector = { service = "api" }
chaos = { kind = "NetworkChaos", action = "delay", delay = { latency = "50ms" }, target = { service = "db" } }"#,
    );
    let mut ep = Episode::new(&sc, 1).unwrap();
    ep.run_until(6 * SECONDS);
    assert_eq!(ep.injected()[0].pods.len(), 3, "{:?}", ep.injected()[0]);
}

/// Durations that would overflow the clock are errors naming the field.
#[test]
fn huge_detection_and_ramp_are_errors() {
    for (faults, field) in [
        (
            r#"[[faults]]
selector = { service = "db" }
chaos = { kind = "PodChaos", action = "pod-failure", detection = "2562047h" }"#,
            "chaos.detection",
        ),
        (
            r#"[[faults]]
chaos = { kind = "TrafficSurge", multiplier = 2.0, ramp = "2562047h" }"#,
            "chaos.ramp",
        ),
    ] {
        let e = FaultScenario::from_toml_str(&format!("{BASE}\n{faults}")).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
}

/// A node failure's root-cause services are the services it took pods from, however the node
/// was chosen: through a service's pod it once named that service alone.
#[test]
fn node_faults_blame_every_service_on_the_node() {
    let sc = scenario(
        BASE,
        r#"[[faults]]
start = "10s"
duration = "20s"
selector = { service = "api" }
chaos = { kind = "NodeFailure" }"#,
    );
    let mut ep = Episode::new(&sc, 1).unwrap();
    ep.run_until(12 * SECONDS);
    let lost: Vec<String> = ep.injected()[0].pods.clone();
    let (services, pods, nodes) = sim_faults::labels::root_causes(&ep);
    assert_eq!(nodes.len(), 1);
    assert_eq!(pods, lost);
    let mut want: Vec<String> = lost
        .iter()
        .map(|p| p.rsplit_once('-').unwrap().0.to_string())
        .collect();
    want.dedup();
    let mut got = services.clone();
    got.sort();
    want.sort();
    want.dedup();
    assert_eq!(got, want);
    assert!(want.len() >= 2, "api and db share the node here: {lost:?}");
}
