//! A small OTLP JSON exporter for `sim-core`'s sampled spans (the OTLP/HTTP JSON encoding of
//! `ExportTraceServiceRequest`), loadable by Jaeger and the OpenTelemetry collector.
//!
//! One `resourceSpans` entry per service (resource attribute `service.name`), one scope
//! `blastradius`, spans with hex `traceId` (32 digits) / `spanId` (16 digits), `parentSpanId`
//! (absent on entry spans), `kind` SERVER, `startTimeUnixNano` / `endTimeUnixNano` as decimal
//! strings (simulated time + [`EPOCH_UNIX_S`]), status code OK (1) or ERROR (2) and attributes
//! `k8s.pod.name`, `blastradius.attempt`, `http.response.status_code`, `blastradius.caller`,
//! and `blastradius.source_trace_id` on spans of a replayed (scripted) request that named its
//! source trace.

use serde_json::{Value, json};
use sim_core::Simulation;
use sim_core::telemetry::SpanRecord;

/// Simulated time 0 maps to this Unix time (2024-01-01T00:00:00Z) in every export.
pub const EPOCH_UNIX_S: u64 = 1_704_067_200;

/// The trace id as 32 hex digits (the episode seed in the high half, so traces of different
/// episodes do not collide).
pub fn trace_id_hex(seed: u64, trace: u64) -> String {
    format!("{:016x}{:016x}", sim_core::rng::mix64(seed) | 1, trace)
}

/// Spans of a simulation as an OTLP JSON document.
pub fn spans_to_otlp(sim: &Simulation) -> Value {
    spans_to_otlp_from(sim, sim.telemetry().spans.iter())
}

/// Given spans (e.g. a filtered subset) of a simulation as an OTLP JSON document.
pub fn spans_to_otlp_from<'a>(
    sim: &Simulation,
    spans: impl Iterator<Item = &'a SpanRecord>,
) -> Value {
    let topo = sim.topology();
    let seed = sim.seed();
    let pods = sim.pods();
    let n = topo.num_services();
    let mut per_service: Vec<Vec<Value>> = vec![Vec::new(); n];
    for s in spans {
        let svc = s.service as usize;
        if svc >= n {
            continue;
        }
        let op_name = topo
            .ops
            .get(s.operation as usize)
            .map(|o| o.name.as_str())
            .unwrap_or("unknown");
        let start = EPOCH_UNIX_S as u128 * 1_000_000_000 + s.start as u128;
        let end = start + s.duration as u128;
        let pod_name = pods
            .iter()
            .find(|p| p.id == s.pod && p.service == s.service)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("{}-pod{}", topo.service(s.service).name, s.pod));
        let mut attrs = vec![
            json!({"key": "k8s.pod.name", "value": {"stringValue": pod_name}}),
            json!({"key": "blastradius.attempt", "value": {"intValue": s.attempt.to_string()}}),
            json!({"key": "http.response.status_code", "value": {"intValue": s.status.code().to_string()}}),
            json!({"key": "blastradius.status", "value": {"stringValue": format!("{:?}", s.status).to_lowercase()}}),
        ];
        if let Some(source) = sim.telemetry().trace_source(s.trace_id) {
            attrs.push(
                json!({"key": "blastradius.source_trace_id", "value": {"stringValue": source}}),
            );
        }
        if let Some(c) = s.caller
            && (c as usize) < n
        {
            attrs.push(json!({"key": "blastradius.caller", "value": {"stringValue": topo.service(c).name}}));
        }
        let mut span = json!({
            "traceId": trace_id_hex(seed, s.trace_id),
            "spanId": format!("{:016x}", s.span_id),
            "name": op_name,
            "kind": 2,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": attrs,
            "status": if s.status.is_ok() { json!({"code": 1}) } else { json!({"code": 2, "message": format!("{:?}", s.status)}) },
        });
        if s.parent_span_id != 0 {
            span["parentSpanId"] = json!(format!("{:016x}", s.parent_span_id));
        }
        per_service[svc].push(span);
    }
    let resource_spans: Vec<Value> = per_service
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, spans)| {
            json!({
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": topo.service(i as u32).name}},
                ]},
                "scopeSpans": [{"scope": {"name": "blastradius", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}
