//! Scenarios built in code for the tests (small and fast).
#![allow(dead_code)]

use sim_faults::FaultScenario;

/// api (2 replicas) -> db on two nodes, 80 rps, 60 s, 5 s decisions; the db's CPU is hogged
/// from 15 s to 35 s.
pub fn small() -> FaultScenario {
    FaultScenario::from_toml_str(SMALL).expect("test scenario parses")
}

/// `small` with a closed workload instead of the open one: 20 users, 200 ms mean think time.
pub fn small_closed() -> FaultScenario {
    let text = SMALL.replace(
        r#"arrivals = { kind = "open", rate = { kind = "constant", rps = 80.0 } }"#,
        r#"arrivals = { kind = "closed", users = 20, think_time = { kind = "exponential", mean = "200ms" } }"#,
    );
    assert_ne!(text, SMALL);
    FaultScenario::from_toml_str(&text).expect("test scenario parses")
}

/// `small` with its nodes named `node-1` (index 0, the db's) and `node-2` (index 1, the
/// api's), as most built-in topologies name theirs: 1-based names, 0-based indices.
pub fn small_named_nodes() -> FaultScenario {
    let text = SMALL
        .replace("\"n0\"", "\"node-1\"")
        .replace("\"n1\"", "\"node-2\"");
    FaultScenario::from_toml_str(&text).expect("test scenario parses")
}

const SMALL: &str = r#"
name = "small-db-hog"
description = "api -> db, db CPU hog"
[agent]
decision_interval = "5s"
max_steps = 12
[base]
name = "two-tier"
duration = "60s"
slos = [{ service = "api", latency_p99 = "100ms", error_rate = 0.01 }]
[[base.nodes]]
name = "n0"
cpu = "4"
memory = "8Gi"
[[base.nodes]]
name = "n1"
cpu = "4"
memory = "8Gi"
[[base.services]]
name = "api"
replicas = 2
node_selector = ["n1"]
[[base.services.operations]]
name = "get"
cpu = { kind = "exponential", mean = "2ms" }
[[base.services.operations.stages]]
calls = [{ service = "db" }]
[[base.services]]
name = "db"
kind = "database"
node_selector = ["n0"]
[[base.services.operations]]
name = "query"
cpu = { kind = "exponential", mean = "4ms" }
[[base.workload]]
entry = "api"
arrivals = { kind = "open", rate = { kind = "constant", rps = 80.0 } }

[[faults]]
id = "hog"
start = "15s"
duration = "20s"
selector = { service = "db" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 4, load = 100 } } }
"#;

/// The DIME 8-node topology, 120 s, 10 s decisions, with a fault on the database from 30 s
/// to 90 s (a CPU hog), which DIME's retry storm and DB-stress rules react to.
pub fn dime_like() -> FaultScenario {
    FaultScenario::from_toml_str(
        r#"
name = "dime-like-db-hog"
description = "DIME 8-node cluster, database CPU hog"
base = "dime-8node"
duration = "120s"
[agent]
decision_interval = "10s"
max_steps = 12

[[faults]]
id = "hog"
start = "30s"
duration = "60s"
selector = { service = "db" }
chaos = { kind = "StressChaos", stressors = { cpu = { workers = 4, load = 100 } } }
"#,
    )
    .expect("dime-like scenario parses")
}
