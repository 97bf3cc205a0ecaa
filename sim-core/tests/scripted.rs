//! Scripted requests (trace replay): the source they name is kept for their sampled trace,
//! bounded like the spans, and found again by trace id.

use sim_core::time::SECONDS;
use sim_core::{ScriptNode, ScriptedRequest, Simulation};

fn sim(retain_spans: u32) -> Simulation {
    let mut sc = sim_core::topologies::load("simple-micro").unwrap();
    sc.telemetry.trace_sample_rate = 1.0;
    sc.telemetry.retain_spans = retain_spans;
    sc.workload.truncate(1);
    Simulation::new(&sc, 5).unwrap()
}

fn request(sim: &Simulation, source: Option<&str>) -> ScriptedRequest {
    let topo = sim.topology();
    let entry = topo.edges[0].to; // workload 0's edge
    let op = topo
        .op_id(entry, &topo.service(entry).operations[0].name)
        .unwrap();
    ScriptedRequest {
        workload: 0,
        nodes: vec![ScriptNode {
            op,
            cpu_ns: 1_000_000,
            sync: true,
            stages: vec![],
        }],
        source_trace: source.map(str::to_string),
    }
}

#[test]
fn sources_of_replayed_requests_are_kept_per_trace() {
    let mut s = sim(0);
    let start = s.now();
    for (k, src) in [Some("abc"), None, Some("def")].into_iter().enumerate() {
        let r = request(&s, src);
        s.inject_request(start + (k as u64 + 1) * SECONDS / 10, r)
            .unwrap();
    }
    s.run_for(2 * SECONDS);
    let t = s.telemetry();
    let sources: Vec<&str> = t.trace_sources.iter().map(|(_, x)| x.as_str()).collect();
    assert_eq!(sources, ["abc", "def"]);
    // every span of a tagged trace finds its source by trace id; the untagged one has none
    let mut seen = std::collections::BTreeMap::new();
    for sp in &t.spans {
        if let Some(src) = t.trace_source(sp.trace_id) {
            seen.insert(src.to_string(), sp.trace_id);
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    let untagged = t
        .spans
        .iter()
        .filter(|sp| t.trace_source(sp.trace_id).is_none())
        .count();
    assert!(untagged >= 1);
    // snapshots keep them
    let back = Simulation::restore(&s.snapshot()).unwrap();
    assert_eq!(back.telemetry().trace_sources, t.trace_sources);
}

#[test]
fn sources_are_bounded_like_spans() {
    let mut s = sim(2);
    let start = s.now();
    for k in 0..5u64 {
        let r = request(&s, Some(&format!("src{k}")));
        s.inject_request(start + (k + 1) * SECONDS / 10, r).unwrap();
    }
    s.run_for(2 * SECONDS);
    let sources: Vec<&str> = s
        .telemetry()
        .trace_sources
        .iter()
        .map(|(_, x)| x.as_str())
        .collect();
    assert_eq!(sources, ["src3", "src4"]);
}
