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
