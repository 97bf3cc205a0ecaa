//! Round trips: CSV -> store -> CSV, OTLP -> store -> OTLP, export -> import.

mod common;

use common::{csv, otlp, read};
use replay::store::{StoreReader, store_from_bytes, store_to_bytes};
use replay::{Format, ReadOptions, read_bytes};

const ALIBABA: [&str; 3] = [
    "alibaba/casper_2022_shuffled_sample_traces_small.csv",
    "alibaba/casper_2021_shuffled_sample_traces_small.csv",
    "alibaba/v2022_CallGraph0_casper_naive_accurate_sample.csv",
];

#[test]
fn alibaba_csv_store_csv() {
    for f in ALIBABA {
        let (set, _) = read(f, Format::AlibabaV2022);
        let bytes = store_to_bytes(&set).unwrap();
        let back = store_from_bytes(&bytes).unwrap();
        assert_eq!(back, set, "{f}: store gives the same graphs and symbols");
        let text = csv(&set);
        assert_eq!(csv(&back), text);
        // the exported CSV reads back to the same graphs (exact: one row per span)
        let (again, rep) = read_bytes(
            "again.csv",
            text.as_bytes(),
            Format::AlibabaV2022,
            ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(rep.rows as usize, set.num_spans());
        assert_eq!(rep.rows_merged + rep.dropped(), 0, "{f}");
        assert_eq!(rep.traces_discarded, 0);
        assert_eq!(csv(&again), text, "{f}: CSV -> graphs -> CSV is stable");
    }
}

#[test]
fn otlp_store_otlp() {
    for f in [
        "otlp/opentelemetry-proto_trace.json",
        "jaeger/internal_storage_integration_fixtures_traces_example_trace.json",
        "jaeger/utils_fixtures_otlp2jaeger-multi-in-combined.json",
        "jaeger/internal_storage_v2_cassandra_tracestore_fixtures_otel_traces_01.json",
    ] {
        let (set, _) = read(f, Format::Otlp);
        let back = store_from_bytes(&store_to_bytes(&set).unwrap()).unwrap();
        assert_eq!(back, set);
        let v = otlp(&back);
        let text = serde_json::to_string(&v).unwrap();
        let (again, rep) = read_bytes(
            "again.json",
            text.as_bytes(),
            Format::Otlp,
            ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(otlp(&again), v, "{f}: OTLP -> graphs -> OTLP is stable");
        assert_eq!(csv(&again), csv(&set));
        assert_eq!(rep.traces_exact, set.graphs.len() as u64);
        // span ids, kinds and times survive
        for (a, b) in set.graphs.iter().zip(&again.graphs) {
            assert_eq!(a.trace_id, b.trace_id);
            for (x, y) in a.spans.iter().zip(&b.spans) {
                assert_eq!(
                    (x.span_id, x.kind, x.start_ns, x.duration_ns, x.status),
                    (y.span_id, y.kind, y.start_ns, y.duration_ns, y.status)
                );
            }
        }
    }
}

#[test]
fn alibaba_to_otlp_and_back() {
    let (set, _) = read(ALIBABA[0], Format::AlibabaV2022);
    let text = serde_json::to_string(&otlp(&set)).unwrap();
    let (again, rep) = read_bytes(
        "a.json",
        text.as_bytes(),
        Format::Otlp,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.traces, set.graphs.len() as u64);
    assert_eq!(
        csv(&again),
        csv(&set),
        "non-hex trace ids, rpc ids and callers survive OTLP"
    );
}

#[test]
fn jaeger_to_store_to_csv() {
    let (set, _) = read(
        "jaeger/TracePage_TraceStatistics_tableValuesTestTrace_spansAmongEachOtherGrouped.json",
        Format::Jaeger,
    );
    let back = store_from_bytes(&store_to_bytes(&set).unwrap()).unwrap();
    assert_eq!(back, set);
    let text = csv(&set);
    let (again, _) = read_bytes(
        "j.csv",
        text.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(again.graphs[0].spans.len(), 15);
}

#[test]
fn store_streaming_and_corruption() {
    let (set, _) = read(ALIBABA[0], Format::AlibabaV2022);
    let bytes = store_to_bytes(&set).unwrap();
    let mut r = StoreReader::new(&bytes[..], std::path::Path::new("s")).unwrap();
    let mut n = 0;
    while let Some(g) = r.next_graph().unwrap() {
        assert_eq!(g, set.graphs[n]);
        n += 1;
    }
    assert_eq!(n, set.graphs.len());
    // truncation, a flipped byte and bad magic are errors, not panics
    assert!(store_from_bytes(&bytes[..bytes.len() - 3]).is_err());
    assert!(store_from_bytes(&bytes[..4]).is_err());
    let mut bad = bytes.clone();
    bad[0] = b'X';
    let e = store_from_bytes(&bad).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
    for i in (8..bytes.len()).step_by(97) {
        let mut b = bytes.clone();
        b[i] ^= 0xA5;
        let _ = store_from_bytes(&b);
    }
    // the file API
    let p = std::env::temp_dir().join(format!("replay-store-{}.brt", std::process::id()));
    replay::store::write_store(&p, &set).unwrap();
    assert_eq!(replay::store::read_store(&p).unwrap(), set);
    assert_eq!(Format::detect(&p).unwrap(), Format::Store);
    std::fs::remove_file(&p).ok();
}

#[test]
fn structural_errors_name_file_line_column() {
    let no_rt = "timestamp,traceid,rpc_id,rpctype,um,dm\n1,T_1,0,http,USER,MS_1\n";
    let e = read_bytes(
        "bad.csv",
        no_rt.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("bad.csv:1") && msg.contains("`rt`"), "{msg}");
    let rows = "timestamp,traceid,rpc_id,rpctype,um,dm,rt\n1,T_1,0,http,USER,MS_1,1\n2,T_1,0.x,rpc,MS_1,MS_2,1\n3,T_1,0.1\n";
    let (_, rep) = read_bytes(
        "r.csv",
        rows.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.rows, 3);
    assert_eq!(
        rep.rows_dropped.get(&replay::DropReason::BadRpcId),
        Some(&1)
    );
    assert_eq!(
        rep.rows_dropped.get(&replay::DropReason::FieldCount),
        Some(&1)
    );
    let e = read_bytes(
        "r.csv",
        rows.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions { strict: true },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "r.csv:3: column `rpcid`: invalid rpc id");
    let e = read_bytes(
        "j.json",
        b"{\"resourceSpans\": [",
        Format::Otlp,
        ReadOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("j.json: line 1, column"), "{e}");
    let e = replay::read_files(
        &["/nonexistent/x.csv"],
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.csv"));
}
