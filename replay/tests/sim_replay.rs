//! Replay into the simulator: inference, driving, export, on the real samples.

mod common;

use replay::model::{CallGraph, SpanKind, Status};
use replay::sim::{
    InferOptions, ReplayOptions, UnknownPolicy, infer_scenario, infer_scenario_with_report,
    replay_into, replay_scenario, replay_store_into, sim_spans_to_traceset,
};
use replay::store::{StoreReader, store_to_bytes};
use replay::{Format, ReadOptions, TraceSet, read_bytes};
use sim_core::Simulation;
use sim_core::scenario::Scenario;
use std::path::Path;

const CASPER_2022: &str = "alibaba/casper_2022_shuffled_sample_traces_small.csv";
const NAIVE: &str = "alibaba/v2022_CallGraph0_casper_naive_accurate_sample.csv";

fn is_unknown(n: &str) -> bool {
    matches!(n, "UNKNOWN" | "USER" | "")
}

/// Per graph: sorted (caller, callee, interface) of the spans that can be replayed
/// (callee known, all ancestors known); the caller is the parent span's callee.
fn signatures(set: &TraceSet, drop_unknown: bool) -> Vec<Vec<(String, String, String)>> {
    let mut out: Vec<Vec<(String, String, String)>> = set
        .graphs
        .iter()
        .filter_map(|g| graph_signature(set, g, drop_unknown))
        .collect();
    out.sort();
    out
}

fn graph_signature(
    set: &TraceSet,
    g: &CallGraph,
    drop_unknown: bool,
) -> Option<Vec<(String, String, String)>> {
    let n = g.spans.len();
    let mut keep = vec![false; n];
    let name = |i: usize| {
        let d = set.name(g.spans[i].dm);
        if is_unknown(d) {
            "unknown".to_string()
        } else {
            d.to_string()
        }
    };
    let mut sig = Vec::new();
    for (i, s) in g.spans.iter().enumerate() {
        let known = !(drop_unknown && is_unknown(set.name(s.dm)));
        keep[i] = known && s.parent.is_none_or(|p| keep[p as usize]);
        if keep[i] {
            let caller = s.parent.map_or("CLIENT".to_string(), |p| name(p as usize));
            sig.push((caller, name(i), set.name(s.interface).to_string()));
        }
    }
    if !keep.first().copied().unwrap_or(false) {
        return None;
    }
    sig.sort();
    Some(sig)
}

struct Run {
    scenario: Scenario,
    stats: replay::ReplayStats,
    exported: TraceSet,
    csv: Vec<u8>,
    otlp: Vec<u8>,
    /// The source trace ids the simulation kept for its sampled replayed requests.
    sources: Vec<String>,
}

fn run(set: &TraceSet, speedup: f64, unknown: UnknownPolicy, seed: u64) -> Run {
    let iopts = InferOptions {
        speedup,
        unknown,
        ..InferOptions::default()
    };
    let scenario = infer_scenario(set, &iopts).expect("infer");
    let mut sim = Simulation::new(&replay_scenario(&scenario), seed).expect("sim");
    let ropts = ReplayOptions {
        speedup,
        unknown,
        ..ReplayOptions::default()
    };
    let stats = replay_into(&mut sim, set, &ropts).expect("replay");
    let exported = sim_spans_to_traceset(&sim);
    let sources = sim
        .telemetry()
        .trace_sources
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    let mut csv = Vec::new();
    replay::export::write_alibaba_v2022(&mut csv, &exported).unwrap();
    let mut otlp = Vec::new();
    replay::export::write_otlp_json(&mut otlp, &exported).unwrap();
    Run {
        scenario,
        stats,
        exported,
        csv,
        otlp,
        sources,
    }
}

type NormSpan = (
    (u64, String, Option<u32>),
    (String, String, String, String),
    (String, String, SpanKind, u64, u64, Status),
);

/// A symbol-table independent rendering of a set (for CSV: no span ids, status unset,
/// start in whole ms, as the format keeps them).
fn normalise(set: &TraceSet, csv: bool) -> Vec<(String, String, Vec<NormSpan>)> {
    set.graphs
        .iter()
        .map(|g| {
            let spans = g
                .spans
                .iter()
                .map(|s| {
                    (
                        (
                            if csv { 0 } else { s.span_id },
                            s.rpc_id.to_string(),
                            s.parent,
                        ),
                        (
                            set.name(s.um).to_string(),
                            set.name(s.um_instance).to_string(),
                            set.name(s.dm).to_string(),
                            set.name(s.dm_instance).to_string(),
                        ),
                        (
                            s.call_type.as_str().to_string(),
                            set.name(s.interface).to_string(),
                            s.kind,
                            if csv {
                                s.start_ns / 1_000_000 * 1_000_000
                            } else {
                                s.start_ns
                            },
                            s.duration_ns,
                            if csv { Status::Unset } else { s.status },
                        ),
                    )
                })
                .collect();
            (g.trace_id.clone(), set.name(g.service).to_string(), spans)
        })
        .collect()
}

fn check_sample(rel: &str, speedup: f64) {
    let (set, _) = common::read(rel, Format::AlibabaV2022);
    assert!(!set.graphs.is_empty());
    let r = run(&set, speedup, UnknownPolicy::Drop, 7);

    // the scenario validates, also after a TOML round trip
    r.scenario.validate().unwrap();
    let again = Scenario::from_toml_str(&r.scenario.to_toml_string()).unwrap();
    assert_eq!(again, r.scenario);

    // every graph with a known root callee is replayed, one request each
    let expected = signatures(&set, true);
    let st = &r.stats;
    assert_eq!(st.graphs_read, set.graphs.len() as u64);
    assert_eq!(st.graphs_replayed, expected.len() as u64, "{st:?}");
    assert_eq!(st.graphs_replayed + st.graphs_skipped, st.graphs_read);
    assert_eq!(
        st.spans_replayed,
        expected.iter().map(|g| g.len() as u64).sum::<u64>()
    );
    assert_eq!(
        st.spans_replayed + st.spans_dropped_unknown + st.spans_unmapped,
        st.spans_read
    );
    assert_eq!(st.spans_unmapped, 0);
    assert_eq!(st.ops_defaulted, 0);
    assert_eq!(st.calls_without_edge, 0);
    assert_eq!(st.in_flight_at_end, 0);

    // every replayed request kept the id of the trace it replays
    assert_eq!(r.sources.len() as u64, st.graphs_replayed);
    let input: std::collections::BTreeSet<&str> =
        set.graphs.iter().map(|g| g.trace_id.as_str()).collect();
    assert!(r.sources.iter().all(|s| input.contains(s.as_str())));

    // exported: one graph per request, one span per replayed span, all succeeded
    assert_eq!(r.exported.graphs.len() as u64, st.graphs_replayed);
    assert_eq!(
        r.exported.num_spans() as u64,
        st.spans_replayed - st.calls_without_edge
    );
    let failed = r
        .exported
        .graphs
        .iter()
        .flat_map(|g| &g.spans)
        .filter(|s| s.status != Status::Ok)
        .count();
    assert_eq!(failed, 0);

    // structure: the same (caller, callee, interface) multiset per graph
    assert_eq!(signatures(&r.exported, false), expected);

    // the written files read back to the same graphs
    let (csv_back, _) = read_bytes(
        "sim.csv",
        &r.csv,
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(normalise(&csv_back, true), normalise(&r.exported, true));
    let (otlp_back, _) =
        read_bytes("sim.json", &r.otlp, Format::Otlp, ReadOptions::default()).unwrap();
    assert_eq!(normalise(&otlp_back, false), normalise(&r.exported, false));

    // determinism: same seed, same bytes; another seed, same structure
    let r2 = run(&set, speedup, UnknownPolicy::Drop, 7);
    assert_eq!(r2.csv, r.csv);
    assert_eq!(r2.otlp, r.otlp);
    let r3 = run(&set, speedup, UnknownPolicy::Drop, 8);
    assert_eq!(signatures(&r3.exported, false), expected);
}

#[test]
fn casper_2022_sample_replays() {
    // the sample spans ~7.5 h: replay it 100x faster
    check_sample(CASPER_2022, 100.0);
}

#[test]
fn naive_accurate_sample_replays() {
    check_sample(NAIVE, 1.0);
}

#[test]
fn placeholder_keeps_unknown_callees() {
    let (set, _) = common::read(CASPER_2022, Format::AlibabaV2022);
    let r = run(&set, 100.0, UnknownPolicy::Placeholder, 1);
    assert!(r.scenario.service_index("unknown").is_some());
    assert_eq!(r.stats.spans_dropped_unknown, 0);
    assert_eq!(r.stats.spans_replayed, set.num_spans() as u64);
    assert_eq!(r.exported.num_spans(), set.num_spans());
    assert_eq!(signatures(&r.exported, false), signatures(&set, false));
}

#[test]
fn inferred_scenario_runs_open_loop_healthily() {
    let (set, _) = common::read(NAIVE, Format::AlibabaV2022);
    let (sc, rep) = infer_scenario_with_report(&set, &InferOptions::default()).unwrap();
    assert_eq!(rep.graphs_used, rep.graphs - rep.graphs_dropped_root);
    assert_eq!(rep.services, sc.services.len());
    assert!(!sc.workload.is_empty());
    let mut sim = Simulation::new(&sc, 3).unwrap();
    sim.record_requests(true);
    sim.run_to_end();
    let reqs = &sim.telemetry().requests;
    // about the observed number of roots arrive (Poisson at the observed rate)
    let n = reqs.len() as f64;
    let roots = rep.graphs_used as f64;
    assert!(
        n > roots * 0.8 && n < roots * 1.2,
        "{n} requests vs {roots} roots"
    );
    let errors = reqs.iter().filter(|r| !r.status.is_ok()).count() as f64;
    assert!(errors / n < 0.01, "error rate {}", errors / n);
}

#[test]
fn streaming_from_a_store_matches_in_memory() {
    let (mut set, _) = common::read(NAIVE, Format::AlibabaV2022);
    // a store sorted by start: streaming injects in the same order as replay_into
    set.graphs.sort_by_key(|g| g.spans[0].start_ns);
    let bytes = store_to_bytes(&set).unwrap();
    let sc = replay_scenario(&infer_scenario(&set, &InferOptions::default()).unwrap());
    let mut a = Simulation::new(&sc, 5).unwrap();
    let sa = replay_into(&mut a, &set, &ReplayOptions::default()).unwrap();
    let mut b = Simulation::new(&sc, 5).unwrap();
    let mut reader = StoreReader::new(bytes.as_slice(), Path::new("<mem>")).unwrap();
    let sb = replay_store_into(&mut b, &mut reader, &ReplayOptions::default()).unwrap();
    assert_eq!(sa.spans_replayed, sb.spans_replayed);
    assert_eq!(sa.graphs_replayed, sb.graphs_replayed);
    assert_eq!(sb.late_arrivals, 0);
    assert_eq!(
        common::csv(&sim_spans_to_traceset(&a)),
        common::csv(&sim_spans_to_traceset(&b))
    );
}

#[test]
fn speedup_compresses_arrivals() {
    let (set, _) = common::read(NAIVE, Format::AlibabaV2022);
    let sc = replay_scenario(&infer_scenario(&set, &InferOptions::default()).unwrap());
    let span = |speedup: f64| {
        let mut sim = Simulation::new(&sc, 1).unwrap();
        let o = ReplayOptions {
            speedup,
            run_to_end: false,
            ..ReplayOptions::default()
        };
        let st = replay_into(&mut sim, &set, &o).unwrap();
        st.last_arrival_ns - st.first_arrival_ns
    };
    let (s1, s10) = (span(1.0), span(10.0));
    assert!(s1 > 100 * 1_000_000_000, "{s1}");
    assert!(s10.abs_diff(s1 / 10) <= 1, "{s1} {s10}");
    let bad = ReplayOptions {
        speedup: 0.0,
        ..ReplayOptions::default()
    };
    let mut sim = Simulation::new(&sc, 1).unwrap();
    assert!(replay_into(&mut sim, &set, &bad).is_err());
}

#[test]
fn unknown_only_input_is_an_error() {
    let csv = "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n\
               0,T_1,S_1,0,http,USER,USER,i,UNKNOWN,UNKNOWN,5.0\n";
    let (set, _) = read_bytes(
        "u.csv",
        csv.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap();
    assert!(infer_scenario(&set, &InferOptions::default()).is_err());
}

#[test]
fn outlier_timestamps_are_refused_not_simulated_forever() {
    let (mut set, _) = common::read(NAIVE, Format::AlibabaV2022);
    let sc = replay_scenario(&infer_scenario(&set, &InferOptions::default()).unwrap());
    // one graph at a Unix-epoch time among traces starting near 0
    let mut g = set.graphs[0].clone();
    for s in &mut g.spans {
        s.start_ns += 1_700_000_000_000_000_000;
    }
    set.graphs.push(g);
    assert!(infer_scenario(&set, &InferOptions::default()).is_err());
    let mut sim = Simulation::new(&sc, 1).unwrap();
    let err = replay_into(&mut sim, &set, &ReplayOptions::default()).unwrap_err();
    assert!(err.to_string().contains("speed-up"), "{err}");
}

#[cfg(feature = "faults")]
#[test]
fn fault_overlay_on_replayed_traffic_is_labelled() {
    use replay::sim::faults::replay_with_faults;
    let (set, _) = common::read(NAIVE, Format::AlibabaV2022);
    let sc = infer_scenario(&set, &InferOptions::default()).unwrap();
    // the entry service with the most roots
    let entry = sc
        .workload
        .iter()
        .max_by(|a, b| {
            let w =
                |x: &sim_core::scenario::WorkloadSpec| x.mix.iter().map(|m| m.weight).sum::<f64>();
            w(a).total_cmp(&w(b)).then(b.entry.cmp(&a.entry))
        })
        .unwrap()
        .entry
        .clone();
    let fault: sim_faults::FaultSpec = toml::from_str(&format!(
        r#"
        id = "hog"
        start = "30s"
        duration = "120s"
        selector = {{ service = "{entry}" }}
        chaos = {{ kind = "StressChaos", stressors = {{ cpu = {{ workers = 20, load = 100 }} }} }}
        "#
    ))
    .unwrap();
    let r = replay_with_faults(&set, &sc, vec![fault], &ReplayOptions::default(), 9).unwrap();
    assert!(r.stats.graphs_replayed > 0);
    assert_eq!(
        r.stats.graphs_replayed,
        r.counterfactual_stats.graphs_replayed
    );
    assert_eq!(r.labels.root_cause_services, vec![entry.clone()]);
    assert_eq!(r.labels.fault_types, vec!["cpu-stress".to_string()]);
    // the stressed service is slower than in the counterfactual
    let mean = |ep: &sim_faults::Episode| {
        let id = ep.sim().service_id(&entry).unwrap();
        let d: Vec<u64> = ep
            .sim()
            .telemetry()
            .spans
            .iter()
            .filter(|s| s.service == id)
            .map(|s| s.duration)
            .collect();
        d.iter().sum::<u64>() as f64 / d.len().max(1) as f64
    };
    assert!(
        mean(&r.episode) > mean(&r.counterfactual),
        "{} vs {}",
        mean(&r.episode),
        mean(&r.counterfactual)
    );
}

mod arbitrary_graphs {
    use super::*;
    use proptest::prelude::*;
    use replay::model::{CallType, RpcId, Span};

    const NAMES: [&str; 6] = ["UNKNOWN", "USER", "a", "b", "c", "d"];

    /// Graphs with arbitrary (also malformed) parents, names, types and times.
    fn graphs() -> impl Strategy<Value = TraceSet> {
        let span = (
            0u32..8,
            0usize..6,
            0usize..3,
            0usize..8,
            0u64..5_000_000_000,
            0u64..2_000_000_000,
        );
        prop::collection::vec(prop::collection::vec(span, 0..7), 1..12).prop_map(|gs| {
            let mut set = TraceSet::new();
            let syms: Vec<_> = NAMES.iter().map(|n| set.symbols.intern(n)).collect();
            let ops: Vec<_> = ["x", "y", "UNKNOWN"]
                .iter()
                .map(|n| set.symbols.intern(n))
                .collect();
            for (k, spans) in gs.into_iter().enumerate() {
                let spans = spans
                    .into_iter()
                    .enumerate()
                    .map(|(i, (p, dm, op, ct, start, dur))| {
                        let mut s = Span::new(RpcId(vec![0, i as u32]));
                        s.parent = (i > 0).then_some(p);
                        s.dm = syms[dm];
                        s.interface = ops[op];
                        s.call_type = CallType::ALL[ct];
                        s.start_ns = start;
                        s.duration_ns = dur;
                        s
                    })
                    .collect();
                set.graphs.push(CallGraph {
                    trace_id: format!("t{k}"),
                    service: syms[2],
                    spans,
                });
            }
            set
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn infer_replay_export_never_panic(set in graphs(), placeholder in any::<bool>(), speedup in 1.0f64..50.0) {
            let unknown = if placeholder { UnknownPolicy::Placeholder } else { UnknownPolicy::Drop };
            let io = InferOptions { speedup, unknown, ..InferOptions::default() };
            let Ok(sc) = infer_scenario(&set, &io) else { return Ok(()) };
            prop_assert!(sc.validate().is_ok());
            let mut sim = Simulation::new(&replay_scenario(&sc), 1).unwrap();
            let ro = ReplayOptions { speedup, unknown, ..ReplayOptions::default() };
            let st = replay_into(&mut sim, &set, &ro).unwrap();
            prop_assert_eq!(st.graphs_replayed + st.graphs_skipped, set.graphs.len() as u64);
            prop_assert_eq!(st.calls_without_edge, 0);
            prop_assert_eq!(st.in_flight_at_end, 0);
            let out = sim_spans_to_traceset(&sim);
            prop_assert_eq!(out.graphs.len() as u64, st.graphs_replayed);
            prop_assert_eq!(out.num_spans() as u64, st.spans_replayed);
        }
    }
}
