//! The documented rebuild rules on hand-made traces.

use replay::error::{DiscardReason, DropReason, RepairKind};
use replay::{Format, ReadOptions, read_bytes};

const H21: &str = "traceid,timestamp,rpcid,um,rpctype,dm,interface,rt\n";

#[test]
fn v2021_pairs_duplicates_orphans_and_discards() {
    let csv = format!(
        "{H21}\
         t1,100,0,,http,A,i0,20\n\
         t1,101,0.1,A,rpc,(?),i1,12\n\
         t1,101,0.1,A,rpc,B,i1,-11\n\
         t1,101,0.1,A,rpc,C,i9,-4\n\
         t1,102,0.1.1,B,mc,M,,0\n\
         t1,102,0.1.1,B,mc,M,,0\n\
         t1,103,0.1.2.5,B,db,D,,1\n\
         t2,5,0.1,X,rpc,Y,j,3\n\
         t2,5,0.2,X,rpc,Z,j,3\n"
    );
    let (set, r) = read_bytes(
        "h.csv",
        csv.as_bytes(),
        Format::AlibabaV2021,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(r.rows, 9);
    assert_eq!(r.rows_dropped.get(&DropReason::ExactDuplicate), Some(&1));
    assert_eq!(
        r.rows_merged, 1,
        "caller row (dm unknown) + callee row (negative rt) merged"
    );
    assert_eq!(
        r.repairs.get(&RepairKind::DuplicateRpcIdRenumbered),
        Some(&1)
    );
    assert_eq!(r.repairs.get(&RepairKind::OrphanAttached), Some(&1));
    assert_eq!(
        (
            r.traces,
            r.traces_exact,
            r.traces_repaired,
            r.traces_discarded
        ),
        (2, 0, 1, 1)
    );
    assert_eq!(r.discards.get(&DiscardReason::Disconnected), Some(&1));
    let g = &set.graphs[0];
    let ids: Vec<String> = g.spans.iter().map(|s| s.rpc_id.to_string()).collect();
    assert_eq!(ids, ["0", "0.1", "0.1.1", "0.1.2.5", "0.2"]);
    let s01 = &g.spans[1];
    assert_eq!(
        set.name(s01.dm),
        "B",
        "unknown callee filled from the partner row"
    );
    assert_eq!(
        s01.duration_ns, 12_000_000,
        "the larger |rt| (caller side) wins"
    );
    assert_eq!(
        g.spans[3].parent,
        Some(1),
        "0.1.2.5 attached to its nearest ancestor 0.1"
    );
    assert_eq!(
        set.name(g.spans[4].dm),
        "C",
        "the conflicting call becomes sibling 0.2"
    );
    assert_eq!(g.spans[4].parent, Some(0));
    assert_eq!(g.spans[0].um, replay::Sym::UNKNOWN);
    // strict mode: the exact duplicate becomes an error naming the file
    let e = read_bytes(
        "h.csv",
        csv.as_bytes(),
        Format::AlibabaV2021,
        ReadOptions { strict: true },
    )
    .unwrap_err();
    assert!(e.to_string().contains("exact duplicate"), "{e}");
}

#[test]
fn header_by_name_with_index_column_and_quotes() {
    let csv = ",rt,dm,um,rpctype,rpcid,timestamp,traceid,interface\n0,1.5,\"B,x\",A,rpc,0,7,t,i\n";
    let (set, r) = read_bytes(
        "q.csv",
        csv.as_bytes(),
        Format::AlibabaV2022,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(r.dropped(), 0);
    let s = &set.graphs[0].spans[0];
    assert_eq!(set.name(s.dm), "B,x");
    assert_eq!(s.start_ns, 7_000_000);
    assert_eq!(s.duration_ns, 1_500_000);
}

#[test]
fn renumbered_duplicate_does_not_adopt_an_orphan_subtree() {
    // `0.2` is missing but `0.2.1` is present: the duplicate `0.1` must not become `0.2`
    // (it would adopt D); it takes `0.3`, and `0.2.1` is an orphan attached to `0`.
    let csv = format!(
        "{H21}\
         t,100,0,,http,A,i0,20\n\
         t,101,0.1,A,mc,M1,,1\n\
         t,102,0.1,A,mc,M2,,1\n\
         t,103,0.2.1,B,db,D,,1\n"
    );
    let (set, r) = read_bytes(
        "o.csv",
        csv.as_bytes(),
        Format::AlibabaV2021,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        r.repairs.get(&RepairKind::DuplicateRpcIdRenumbered),
        Some(&1)
    );
    assert_eq!(r.repairs.get(&RepairKind::OrphanAttached), Some(&1));
    let g = &set.graphs[0];
    let ids: Vec<String> = g.spans.iter().map(|s| s.rpc_id.to_string()).collect();
    assert_eq!(ids, ["0", "0.1", "0.2.1", "0.3"]);
    assert_eq!(set.name(g.spans[2].dm), "D");
    assert_eq!(
        g.spans[2].parent,
        Some(0),
        "the orphan hangs under the root"
    );
    assert_eq!(set.name(g.spans[3].dm), "M2");
    assert_eq!(g.spans[3].parent, Some(0));
    // deeper: the used prefix is two levels below the sibling level
    let csv = format!(
        "{H21}\
         t,100,0,,http,A,i0,20\n\
         t,101,0.1,A,mc,M1,,1\n\
         t,102,0.1,A,mc,M2,,1\n\
         t,102,0.1,A,mc,M3,,1\n\
         t,103,0.2.1.1,B,db,D,,1\n\
         t,103,0.7.4,B,db,E,,1\n"
    );
    let (set, _) = read_bytes(
        "o.csv",
        csv.as_bytes(),
        Format::AlibabaV2021,
        ReadOptions::default(),
    )
    .unwrap();
    let ids: Vec<String> = set.graphs[0]
        .spans
        .iter()
        .map(|s| s.rpc_id.to_string())
        .collect();
    assert_eq!(ids, ["0", "0.1", "0.2.1.1", "0.7.4", "0.8", "0.9"]);
}

#[test]
fn renumbering_past_u32_max_drops_the_row() {
    let csv = format!(
        "{H21}\
         t,100,0,,http,A,i0,20\n\
         t,101,0.4294967295,A,mc,M1,,1\n\
         t,102,0.4294967295,A,mc,M2,,1\n"
    );
    let (set, r) = read_bytes(
        "m.csv",
        csv.as_bytes(),
        Format::AlibabaV2021,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(r.rows_dropped.get(&DropReason::BadRpcId), Some(&1));
    assert_eq!(r.repairs.get(&RepairKind::DuplicateRpcIdRenumbered), None);
    let g = &set.graphs[0];
    let ids: Vec<String> = g.spans.iter().map(|s| s.rpc_id.to_string()).collect();
    assert_eq!(ids, ["0", "0.4294967295"], "no duplicate rpc id");
    assert_eq!(set.name(g.spans[1].dm), "M1", "the first call keeps the id");
    // strict: an error naming the dropped row's line and the rpc id column
    let e = read_bytes(
        "m.csv",
        csv.as_bytes(),
        Format::AlibabaV2021,
        ReadOptions { strict: true },
    )
    .unwrap_err();
    match &e {
        replay::Error::Row {
            line,
            column,
            reason,
            ..
        } => {
            assert_eq!(
                (*line, column.as_str(), *reason),
                (4, "rpcid", DropReason::BadRpcId)
            );
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().starts_with("m.csv:4: column `rpcid`"), "{e}");
}

#[test]
fn strict_rebuild_errors_name_the_line() {
    // the exact duplicate is on line 5 of the second file
    let a = format!("{H21}t,100,0,,http,A,i0,20\n");
    let b = format!(
        "{H21}\
         u,1,0,,http,A,i0,20\n\
         t,101,0.1,A,mc,M,,1\n\
         u,2,0.1,A,mc,M,,1\n\
         t,101,0.1,A,mc,M,,1\n"
    );
    let mut r = replay::alibaba::CallGraphReader::new(ReadOptions { strict: true });
    r.add_reader(std::path::Path::new("a.csv"), a.as_bytes())
        .unwrap();
    r.add_reader(std::path::Path::new("b.csv"), b.as_bytes())
        .unwrap();
    let e = r.finish().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("b.csv:5: column `-`: exact duplicate row"),
        "{e}"
    );
    // the same rows, not strict: counted in the file holding the duplicate
    let mut r = replay::alibaba::CallGraphReader::new(ReadOptions::default());
    r.add_reader(std::path::Path::new("a.csv"), a.as_bytes())
        .unwrap();
    r.add_reader(std::path::Path::new("b.csv"), b.as_bytes())
        .unwrap();
    let (set, reps) = r.finish().unwrap();
    assert_eq!(set.graphs.len(), 2);
    assert_eq!(
        reps[1].rows_dropped.get(&DropReason::ExactDuplicate),
        Some(&1)
    );
}

// ---- OTLP / Jaeger: trace id keys and the lines named by strict errors ----

const OTLP_DUP: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"front"}}]},
  "scopeSpans":[{"spans":[
    {"traceId":"00000000001234567890abcdef012345","spanId":"01","name":"a",
     "startTimeUnixNano":"1","endTimeUnixNano":"5"},
    {"traceId":"1234567890ABCDEF012345","spanId":"02","parentSpanId":"01","name":"b","startTimeUnixNano":"2","endTimeUnixNano":"3"},
    {"traceId":"1234567890abcdef012345","spanId":"02","parentSpanId":"01","name":"c","startTimeUnixNano":"2","endTimeUnixNano":"4"}
  ]}]}]}"#;

#[test]
fn otlp_hex_trace_ids_with_stripped_zeros_join_their_trace() {
    let (set, r) = read_bytes(
        "d.json",
        OTLP_DUP.as_bytes(),
        Format::Otlp,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        set.graphs.len(),
        1,
        "one trace, not split by a base64 misread"
    );
    let g = &set.graphs[0];
    assert_eq!(g.trace_id, "00000000001234567890abcdef012345");
    assert_eq!(g.spans.len(), 2);
    assert_eq!(r.rows_dropped.get(&DropReason::DuplicateSpanId), Some(&1));
    assert_eq!(
        set.name(g.spans[1].interface),
        "b",
        "the first span with id 02 is kept"
    );
}

#[test]
fn jaeger_64_bit_trace_id_and_its_padded_form_are_one_trace() {
    let doc = r#"{"data":[{"traceID":"2be38093ead7a083","spans":[
        {"traceID":"2be38093ead7a083","spanID":"0000000000000001","operationName":"a","startTime":1,"duration":5,"processID":"p1"},
        {"traceID":"00000000000000002BE38093EAD7A083","spanID":"0000000000000002","operationName":"b",
         "references":[{"refType":"CHILD_OF","traceID":"2be38093ead7a083","spanID":"0000000000000001"}],
         "startTime":2,"duration":1,"processID":"p1"}],
      "processes":{"p1":{"serviceName":"front"}}}]}"#;
    let (set, r) = read_bytes(
        "j.json",
        doc.as_bytes(),
        Format::Jaeger,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(set.graphs.len(), 1);
    assert_eq!(set.graphs[0].trace_id, "00000000000000002be38093ead7a083");
    assert_eq!(set.graphs[0].spans.len(), 2);
    assert_eq!(r.traces_exact, 1);
}

#[test]
fn strict_json_errors_name_the_span_line() {
    // a duplicate span id: line 6 (where the second span 02 starts)
    let e = read_bytes(
        "d.json",
        OTLP_DUP.as_bytes(),
        Format::Otlp,
        ReadOptions { strict: true },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("d.json:6: column `spanId`: duplicate span id"),
        "{e}"
    );
    // JSON lines: the bad span is in the document on line 3
    let lines = concat!(
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","spanId":"01","startTimeUnixNano":"1"}]}]}]}"#,
        "\n\n",
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","spanId":"02","startTimeUnixNano":"x"}]}]}]}"#,
        "\n"
    );
    let e = read_bytes(
        "l.json",
        lines.as_bytes(),
        Format::Otlp,
        ReadOptions { strict: true },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("l.json:3: column `startTimeUnixNano`: invalid time"),
        "{e}"
    );
    // Jaeger: a span of the second trace, on line 4
    let doc = "{\"data\": [\n {\"traceID\": \"a1\", \"spans\": [{\"traceID\": \"a1\", \"spanID\": \"01\"}]},\n \
               {\"traceID\": \"a2\", \"spans\": [{\"traceID\": \"a2\", \"spanID\": \"01\"},\n   \
               {\"traceID\": \"a2\", \"spanID\": \"01\", \"note\": \"[{\\\"}\"}]}\n]}";
    let e = read_bytes(
        "j.json",
        doc.as_bytes(),
        Format::Jaeger,
        ReadOptions { strict: true },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("j.json:4: column `spanId`: duplicate span id"),
        "{e}"
    );
}

#[test]
fn duplicate_empty_rpc_ids_are_dropped_not_a_panic() {
    // rows built by hand (the readers drop empty rpc ids): the second row with the
    // empty id has no sibling number to take
    use replay::rebuild::{RawRow, rebuild_alibaba};
    use replay::{CallType, Sym};
    let row = |line, dm| RawRow {
        start_ns: 0,
        rt_ns: 1,
        rpc_start: 0,
        rpc_len: 0,
        trace: 0,
        um: Sym::USER,
        um_instance: Sym::USER,
        dm,
        dm_instance: Sym::UNKNOWN,
        interface: Sym::UNKNOWN,
        service: Sym::UNKNOWN,
        call_type: CallType::Mc,
        file: 0,
        line,
    };
    let o = rebuild_alibaba("t", &[row(2, Sym(2)), row(3, Sym(3))], &[]);
    assert_eq!(o.dropped.len(), 1);
    assert_eq!(
        (o.dropped[0].reason, o.dropped[0].line, o.dropped[0].column),
        (DropReason::BadRpcId, 3, "rpcid")
    );
    assert!(o.repairs.is_empty());
    assert_eq!(o.graph.map(|g| g.spans.len()), Some(1));
}
