//! Simulated spans ([`sim_core::telemetry::SpanRecord`]) as call graphs, so that
//! [`crate::export::write_alibaba_v2022`] and [`crate::export::write_otlp_json`] write
//! them and every real-trace tool of this crate reads them.
//!
//! Mapping: one graph per simulated trace (trace id = the simulation's trace number as
//! 32 hex digits), in trace-number order; one span per server-side span record
//! (retried attempts are separate spans). `dm` = the span's service, `dm_instance` = its
//! pod, `interface` = its operation, `um` / `um_instance` = the parent span's service and
//! pod (`USER` for the entry span), start and duration as simulated, status `Ok` or
//! `Error` (every non-ok simulator status), kind server. Call type from the edge used:
//! asynchronous calls are `mq`; otherwise http -> `http`, grpc / thrift -> `rpc`, db ->
//! `db`, cache -> `mc`, mq -> `mq`; the client's call into the entry is `http`. Graphs are
//! built with [`crate::rebuild::build_from_parents`], so rpc ids are `0`, `0.1`, `0.2`,
//! ... in start-time order, and spans whose parent was not kept (evicted by
//! `retain_spans`) are attached under the root as that function documents.

use std::collections::BTreeMap;

use sim_core::Simulation;
use sim_core::model::Topology;
use sim_core::scenario::Protocol;
use sim_core::telemetry::{SpanRecord, Status as SimStatus};

use crate::model::{CallType, SpanKind, Status, Sym, TraceSet};
use crate::rebuild::{ProtoSpan, build_from_parents};

/// The call type of a simulated span from `caller` to `callee` (see the module docs).
pub fn call_type_of(topo: &Topology, caller: Option<u32>, callee: u32, sync: bool) -> CallType {
    if !sync {
        return CallType::Mq;
    }
    let Some(from) = caller else {
        return CallType::Http;
    };
    match topo.edge_id(from, callee) {
        Some(e) => match topo.edges[e as usize].spec.protocol {
            Protocol::Http => CallType::Http,
            Protocol::Grpc | Protocol::Thrift => CallType::Rpc,
            Protocol::Db => CallType::Db,
            Protocol::Cache => CallType::Mc,
            Protocol::Mq => CallType::Mq,
        },
        None => CallType::Rpc,
    }
}

/// The spans recorded by `sim` so far, as call graphs.
pub fn sim_spans_to_traceset(sim: &Simulation) -> TraceSet {
    spans_to_traceset(sim.topology(), sim.telemetry().spans.iter(), |p| {
        sim.pods().into_iter().find(|x| x.id == p).map(|x| x.name)
    })
}

/// Span records of a simulation of `topo` as call graphs. `pod_name` names a pod slot
/// (`None`: the pod is gone; it is then named `<service>-pod<slot>`).
pub fn spans_to_traceset<'a>(
    topo: &Topology,
    spans: impl IntoIterator<Item = &'a SpanRecord>,
    pod_name: impl Fn(u32) -> Option<String>,
) -> TraceSet {
    let mut set = TraceSet::new();
    let svc_sym: Vec<Sym> = topo
        .scenario
        .services
        .iter()
        .map(|s| set.symbols.intern(&s.name))
        .collect();
    let op_sym: Vec<Sym> = topo
        .ops
        .iter()
        .map(|o| set.symbols.intern(&o.name))
        .collect();
    let mut pod_sym: BTreeMap<(u32, u32), Sym> = BTreeMap::new();
    let mut by_trace: BTreeMap<u64, Vec<&SpanRecord>> = BTreeMap::new();
    for s in spans {
        by_trace.entry(s.trace_id).or_default().push(s);
    }
    for (trace, recs) in by_trace {
        let mut proto = Vec::with_capacity(recs.len());
        for r in recs {
            let svc = svc_sym
                .get(r.service as usize)
                .copied()
                .unwrap_or(Sym::UNKNOWN);
            let inst = *pod_sym.entry((r.service, r.pod)).or_insert_with(|| {
                let name = pod_name(r.pod)
                    .filter(|n| {
                        topo.scenario
                            .services
                            .get(r.service as usize)
                            .is_some_and(|s| n.starts_with(&s.name))
                    })
                    .unwrap_or_else(|| format!("{}-pod{}", set.symbols.resolve(svc), r.pod));
                set.symbols.intern(&name)
            });
            proto.push(ProtoSpan {
                span_id: r.span_id,
                parent_id: (r.parent_span_id != 0).then_some(r.parent_span_id),
                service: svc,
                instance: inst,
                name: op_sym
                    .get(r.operation as usize)
                    .copied()
                    .unwrap_or(Sym::UNKNOWN),
                kind: SpanKind::Server,
                call_type: call_type_of(topo, r.caller, r.service, r.sync),
                start_ns: Some(r.start),
                duration_ns: r.duration,
                status: if r.status == SimStatus::Ok {
                    Status::Ok
                } else {
                    Status::Error
                },
                um: None,
                um_instance: None,
                rpc_id: None,
            });
        }
        let (g, _, _) = build_from_parents(&format!("{trace:032x}"), None, proto);
        if let Some(g) = g {
            set.graphs.push(g);
        }
    }
    set
}
