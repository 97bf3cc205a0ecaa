fn main() {
use sim_faults::{Episode, FaultScenario, remediation_verdict};
use sim_core::time::SECONDS;

let sc = FaultScenario::from_toml_str(r#"
    name = "db-cpu-hog"
    [base]
    name = "two-tier"
    duration = "60s"
    slos = [{ service = "api", latency_p99 = "100ms", error_rate = 0.01 }]
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
    id = "hog"
    start = "20s"
    duration = "20s"
    selector = { service = "db" }
    chaos = { kind = "StressChaos", stressors = { cpu = { workers = 10, load = 100 } } }
"#).unwrap();
let mut ep = Episode::new(&sc, 7).unwrap();
let mut healthy = Episode::without_faults(&sc, 7).unwrap();
ep.run_to_end();
healthy.run_to_end();
let gt = ep.ground_truth(&healthy);
assert_eq!(gt.root_cause_services, vec!["db".to_string()]);
assert_eq!(gt.fault_types, vec!["cpu-stress".to_string()]);
assert!(gt.blast_radius.contains(&"api".to_string()));
assert!(gt.first_symptom.unwrap() >= 20 * SECONDS);
// The stress ended at 40 s, so the system recovered afterwards.
let v = remediation_verdict(&ep, &healthy, 40 * SECONDS);
println!("{:?}", v);
let mut h: std::collections::BTreeMap<String,u32>=Default::default(); for l in healthy.sim().telemetry().logs.iter() { *h.entry(format!("{:?} {}", l.template, l.message.chars().take(60).collect::<String>())).or_default()+=1; } for (k,v) in h.iter().take(20) { println!("{v} {k}"); }
for s in healthy.sim().telemetry().scrapes.iter() { let a=&s.services[0]; let d=&s.services[1]; println!("{} api rps {:.0} err {:.3} p99 {:.1} | db rps {:.0} err {:.3} p99 {:.1} q {}", s.time/1_000_000_000, a.rps,a.error_rate,a.p99_ms,d.rps,d.error_rate,d.p99_ms,d.queue_depth); }
}
