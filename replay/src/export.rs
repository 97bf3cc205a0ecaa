//! Writers: Alibaba v2022 `CallGraph` CSV and OTLP JSON.
//!
//! Both are exact with respect to this crate's readers: reading what they write gives
//! the same graphs (see the round-trip tests).
//!
//! - **Alibaba v2022 CSV**: header
//!   `timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt`,
//!   one row per span (caller/callee pairs are not duplicated), timestamp in integer ms
//!   (`start_ns / 1e6`, truncated), rt in ms as the shortest float text. Sub-millisecond
//!   start times are therefore lost; durations are kept to the nanosecond.
//! - **OTLP JSON**: one `{"resourceSpans": [...]}` document; per graph, one resource per
//!   (callee service, callee instance), spans carrying `alibaba.*` attributes
//!   (`alibaba.um`, `alibaba.um_instance`, `alibaba.rpc_id`, `alibaba.rpctype`,
//!   `alibaba.service`, and `alibaba.trace_id` when the trace id is not hex). Trace ids
//!   that are not 32 hex digits are hashed to 32 hex digits; span ids are kept when every
//!   span of the graph has a distinct non-zero id, else they are `index + 1`. Times are
//!   decimal strings (ns); kind and status code are numbers.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::{CallGraph, Status, Sym, TraceSet};
use crate::util::{fmt_ms, hex128_of};

/// The v2022 `CallGraph` header written by [`write_alibaba_v2022`].
pub const ALIBABA_V2022_HEADER: &str =
    "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt";

/// Writes the graphs as Alibaba v2022 `CallGraph` CSV.
pub fn write_alibaba_v2022<W: Write>(mut w: W, set: &TraceSet) -> Result<()> {
    let io = |e| Error::io("<alibaba csv output>", e);
    writeln!(w, "{ALIBABA_V2022_HEADER}").map_err(io)?;
    let name = |s: Sym| csv_field(set.name(s));
    for g in &set.graphs {
        let tid = csv_field(&g.trace_id);
        let svc = name(g.service);
        for s in &g.spans {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{}",
                s.start_ns / 1_000_000,
                tid,
                svc,
                s.rpc_id,
                s.call_type.as_str(),
                name(s.um),
                name(s.um_instance),
                name(s.interface),
                name(s.dm),
                name(s.dm_instance),
                fmt_ms(s.duration_ns as f64 / 1e6)
            )
            .map_err(io)?;
        }
    }
    w.flush().map_err(io)
}

/// Quotes a CSV field if it holds a comma, quote or newline (commas cannot be read
/// back by Alibaba's own tools; our reader accepts quoted fields).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace(['"', '\n', '\r'], "_"))
    } else {
        s.to_owned()
    }
}

fn kv(k: &str, v: &str) -> Value {
    json!({"key": k, "value": {"stringValue": v}})
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The OTLP JSON value (`{"resourceSpans": [...]}`) for the graphs.
pub fn to_otlp_value(set: &TraceSet) -> Value {
    let mut resource_spans = Vec::new();
    for g in &set.graphs {
        resource_spans.extend(graph_resources(set, g));
    }
    json!({ "resourceSpans": resource_spans })
}

fn graph_resources(set: &TraceSet, g: &CallGraph) -> Vec<Value> {
    let hex = is_hex32(&g.trace_id);
    let trace_id = if hex {
        g.trace_id.clone()
    } else {
        hex128_of(&g.trace_id)
    };
    let mut ids_ok = g.spans.iter().all(|s| s.span_id != 0);
    if ids_ok {
        let mut v: Vec<u64> = g.spans.iter().map(|s| s.span_id).collect();
        v.sort_unstable();
        v.dedup();
        ids_ok = v.len() == g.spans.len();
    }
    let sid = |i: usize| {
        if ids_ok {
            g.spans[i].span_id
        } else {
            i as u64 + 1
        }
    };
    // resources in order of first appearance (independent of symbol ids)
    let mut slot: BTreeMap<(Sym, Sym), usize> = BTreeMap::new();
    let mut groups: Vec<((Sym, Sym), Vec<Value>)> = Vec::new();
    for (i, s) in g.spans.iter().enumerate() {
        let mut attrs = vec![
            kv("alibaba.um", set.name(s.um)),
            kv("alibaba.um_instance", set.name(s.um_instance)),
            kv("alibaba.rpc_id", &s.rpc_id.to_string()),
            kv("alibaba.rpctype", s.call_type.as_str()),
            kv("alibaba.service", set.name(g.service)),
        ];
        if !hex {
            attrs.push(kv("alibaba.trace_id", &g.trace_id));
        }
        let mut span = json!({
            "traceId": trace_id,
            "spanId": format!("{:016x}", sid(i)),
            "name": set.name(s.interface),
            "kind": s.kind.as_number(),
            "startTimeUnixNano": s.start_ns.to_string(),
            "endTimeUnixNano": s.end_ns().to_string(),
            "attributes": attrs,
            "status": {"code": match s.status { Status::Unset => 0, Status::Ok => 1, Status::Error => 2 }},
        });
        if let Some(p) = s.parent {
            span["parentSpanId"] = Value::String(format!("{:016x}", sid(p as usize)));
        }
        let key = (s.dm, s.dm_instance);
        let k = *slot.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[k].1.push(span);
    }
    groups
        .into_iter()
        .map(|((dm, inst), spans)| {
            let mut attrs = vec![kv("service.name", set.name(dm))];
            if inst != Sym::UNKNOWN {
                attrs.push(kv("service.instance.id", set.name(inst)));
            }
            json!({
                "resource": {"attributes": attrs},
                "scopeSpans": [{"scope": {"name": "blastradius-replay"}, "spans": spans}],
            })
        })
        .collect()
}

/// Writes the graphs as one OTLP JSON document.
pub fn write_otlp_json<W: Write>(mut w: W, set: &TraceSet) -> Result<()> {
    let v = to_otlp_value(set);
    serde_json::to_writer(&mut w, &v)
        .map_err(|e| Error::io("<otlp output>", std::io::Error::other(e)))?;
    w.write_all(b"\n")
        .map_err(|e| Error::io("<otlp output>", e))
}
