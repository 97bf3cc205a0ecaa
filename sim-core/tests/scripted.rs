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

/// Running the clock to a time between events holds back nothing scheduled afterwards: a
/// request injected 1 ms after `run_until(t)` arrives 1 ms after `t`, although the next
/// pending event is seconds later (the event queue used to move its floor to that event
/// while answering "nothing before t", and clamped the injected request to it).
#[test]
fn a_request_injected_between_pending_events_arrives_on_time() {
    use sim_core::scenario::{ArrivalSpec, RateSpec};
    use sim_core::time::MILLIS;
    let mut sc = sim_core::topologies::load("simple-micro").unwrap();
    sc.workload.truncate(1);
    // one open arrival every ~3 hours: the injected requests are all the traffic
    sc.workload[0].arrivals = ArrivalSpec::Open {
        rate: RateSpec::Constant { rps: 1e-4 },
    };
    let mut s = Simulation::new(&sc, 5).unwrap();
    s.record_requests(true);
    let r = request(&s, None);
    s.inject_request(5 * SECONDS, r.clone()).unwrap();
    let t = 1_500 * MILLIS; // between scrapes, seconds before the pending request
    s.run_until(t);
    s.inject_request(t + MILLIS, r).unwrap();
    s.run_until(10 * SECONDS);
    let mut arrivals: Vec<u64> = s.telemetry().requests.iter().map(|q| q.arrival).collect();
    arrivals.sort_unstable();
    assert_eq!(arrivals, [t + MILLIS, 5 * SECONDS]);
}
