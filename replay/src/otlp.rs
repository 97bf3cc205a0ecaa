//! OpenTelemetry OTLP JSON reader (`ExportTraceServiceRequest` JSON encoding).
//!
//! Accepted shapes: `{"resourceSpans": [...]}`, the api_v3 wrapper
//! `{"result": {"resourceSpans": [...]}}`, an array of either, and JSON lines (one
//! document per line, as the collector's file exporter writes). `scopeSpans` and the
//! legacy `instrumentationLibrarySpans` are both read.
//!
//! Field handling (documented choices):
//! - ids: hex of either case (trace 32 or 16 digits, span 16 digits) or base64 (the
//!   protobuf-JSON mapping). Trace ids are stored as lower-case hex; an all-zero or
//!   unreadable id drops the span ([`DropReason::BadTraceId`] / [`DropReason::BadSpanId`]);
//! - times: `startTimeUnixNano` / `endTimeUnixNano` as numbers or decimal strings;
//!   unreadable: [`DropReason::BadTime`]; missing start: filled from the parent
//!   ([`crate::error::RepairKind::MissingStartFilled`]); end before start: duration 0
//!   ([`crate::error::RepairKind::NegativeDurationClamped`]); missing end: duration 0;
//! - kind: number (0-5) or name (`SPAN_KIND_SERVER`, `SERVER`);
//! - status: `status.code` as number or name (`STATUS_CODE_ERROR`, `ERROR`);
//! - service = resource attribute `service.name` (else `UNKNOWN`), instance =
//!   `service.instance.id` (else `host.name`);
//! - call type: attribute `alibaba.rpctype`, else `db.system` (`memcached`/`redis`: mc),
//!   `messaging.system` or producer/consumer kind (mq), `http.*`/`url.*` (http),
//!   `rpc.system` (rpc), internal kind (internal), else unknown;
//! - the attributes written by [`crate::export::write_otlp_json`] (`alibaba.um`,
//!   `alibaba.um_instance`, `alibaba.rpc_id`, `alibaba.trace_id`, `alibaba.service`)
//!   are honoured, so export followed by import gives the same graphs.
//!
//! Spans are grouped by trace id (first-seen order) and built into graphs by
//! [`crate::rebuild::build_from_parents`].

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{DropReason, Error, QualityReport, ReadOptions, RepairKind, Result};
use crate::model::{CallType, RpcId, SpanKind, Status, Sym, SymbolTable, TraceSet};
use crate::rebuild::{ProtoSpan, build_from_parents};

/// Reads an OTLP JSON file.
pub fn read_otlp_file(path: &Path, opts: ReadOptions) -> Result<(TraceSet, QualityReport)> {
    let text = read_text(path)?;
    read_otlp_str(&path.display().to_string(), &text, opts)
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    let mut r = crate::util::open_maybe_gz(path)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses a JSON text: one document, or JSON lines. Errors name the line and column.
pub(crate) fn parse_documents(name: &str, text: &str) -> Result<Vec<Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(vec![v]),
        Err(first) => {
            let mut docs = Vec::new();
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.len() <= 1 {
                return Err(Error::Json {
                    file: name.into(),
                    line: first.line() as u64,
                    column: first.column() as u64,
                    message: first.to_string(),
                });
            }
            for (i, l) in text.lines().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(l) {
                    Ok(v) => docs.push(v),
                    Err(e) => {
                        return Err(Error::Json {
                            file: name.into(),
                            line: if docs.is_empty() {
                                first.line() as u64
                            } else {
                                i as u64 + 1
                            },
                            column: if docs.is_empty() {
                                first.column() as u64
                            } else {
                                e.column() as u64
                            },
                            message: if docs.is_empty() {
                                first.to_string()
                            } else {
                                e.to_string()
                            },
                        });
                    }
                }
            }
            Ok(docs)
        }
    }
}

/// Reads OTLP JSON from a string (`name` is used in errors and the report).
pub fn read_otlp_str(
    name: &str,
    text: &str,
    opts: ReadOptions,
) -> Result<(TraceSet, QualityReport)> {
    let docs = parse_documents(name, text)?;
    let mut b = Builder::new(name, opts);
    let mut found = false;
    for d in &docs {
        found |= b.document(d)?;
    }
    if !found {
        return Err(Error::Json {
            file: name.into(),
            line: 0,
            column: 0,
            message: "no `resourceSpans` array found".into(),
        });
    }
    b.finish()
}

/// Accumulates spans per trace; shared with the Jaeger reader.
pub(crate) struct Builder {
    pub(crate) name: String,
    pub(crate) opts: ReadOptions,
    pub(crate) symbols: SymbolTable,
    pub(crate) report: QualityReport,
    order: Vec<String>,
    traces: HashMap<String, TraceAcc>,
}

#[derive(Default)]
struct TraceAcc {
    spans: Vec<ProtoSpan>,
    repairs: Vec<RepairKind>,
    service: Option<Sym>,
    original_id: Option<String>,
}

impl Builder {
    pub(crate) fn new(name: &str, opts: ReadOptions) -> Self {
        Builder {
            name: name.to_owned(),
            opts,
            symbols: SymbolTable::new(),
            report: QualityReport::new(name),
            order: Vec::new(),
            traces: HashMap::new(),
        }
    }

    /// Counts a dropped span, or fails in strict mode.
    pub(crate) fn drop_span(&mut self, reason: DropReason, field: &str) -> Result<()> {
        if self.opts.strict {
            return Err(Error::Row {
                file: self.name.clone().into(),
                line: 0,
                column: field.to_owned(),
                reason,
            });
        }
        self.report.drop_row(reason);
        Ok(())
    }

    /// Adds one span to its trace.
    pub(crate) fn push(
        &mut self,
        trace_id: String,
        span: ProtoSpan,
        extra_repair: Option<RepairKind>,
        service: Option<Sym>,
        original_id: Option<String>,
    ) {
        let key = original_id.clone().unwrap_or_else(|| trace_id.clone());
        if !self.traces.contains_key(&key) {
            self.order.push(key.clone());
        }
        let acc = self.traces.entry(key).or_default();
        acc.spans.push(span);
        acc.repairs.extend(extra_repair);
        if acc.service.is_none() {
            acc.service = service;
        }
        if acc.original_id.is_none() {
            acc.original_id = original_id;
        }
    }

    fn document(&mut self, d: &Value) -> Result<bool> {
        if let Some(a) = d.as_array() {
            let mut f = false;
            for x in a {
                f |= self.document(x)?;
            }
            return Ok(f);
        }
        let rs = d
            .get("resourceSpans")
            .or_else(|| d.get("result").and_then(|r| r.get("resourceSpans")));
        let Some(rs) = rs.and_then(Value::as_array) else {
            return Ok(false);
        };
        for r in rs {
            let attrs = r
                .get("resource")
                .and_then(|x| x.get("attributes"))
                .cloned()
                .unwrap_or(Value::Null);
            let service = attr_str(&attrs, "service.name");
            let instance =
                attr_str(&attrs, "service.instance.id").or_else(|| attr_str(&attrs, "host.name"));
            let service = self.sym_opt(service.as_deref());
            let instance = self.sym_opt(instance.as_deref());
            let scopes = r
                .get("scopeSpans")
                .or_else(|| r.get("instrumentationLibrarySpans"))
                .and_then(Value::as_array);
            for sc in scopes.into_iter().flatten() {
                for sp in sc
                    .get("spans")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.report.rows += 1;
                    self.span(sp, service, instance)?;
                }
            }
        }
        Ok(true)
    }

    pub(crate) fn sym_opt(&mut self, s: Option<&str>) -> Sym {
        match s {
            Some(s) if !crate::alibaba::is_unknown_name(s.as_bytes()) => {
                if s == "USER" {
                    Sym::USER
                } else {
                    self.symbols.intern(s)
                }
            }
            _ => Sym::UNKNOWN,
        }
    }

    fn span(&mut self, sp: &Value, service: Sym, instance: Sym) -> Result<()> {
        if !sp.is_object() {
            return self.drop_span(DropReason::NotAnObject, "-");
        }
        let Some(trace_id) = sp
            .get("traceId")
            .and_then(Value::as_str)
            .and_then(|s| parse_trace_id(s, false))
        else {
            return self.drop_span(DropReason::BadTraceId, "traceId");
        };
        let Some(span_id) = sp
            .get("spanId")
            .and_then(Value::as_str)
            .and_then(|s| parse_span_id(s, false))
        else {
            return self.drop_span(DropReason::BadSpanId, "spanId");
        };
        let parent_id = match sp.get("parentSpanId").and_then(Value::as_str) {
            None | Some("") => None,
            Some(p) => parse_span_id(p, false),
        };
        let start = match sp.get("startTimeUnixNano") {
            None | Some(Value::Null) => None,
            Some(v) => match json_u64(v) {
                Some(t) => Some(t),
                None => return self.drop_span(DropReason::BadTime, "startTimeUnixNano"),
            },
        };
        let end = match sp.get("endTimeUnixNano") {
            None | Some(Value::Null) => None,
            Some(v) => match json_u64(v) {
                Some(t) => Some(t),
                None => return self.drop_span(DropReason::BadTime, "endTimeUnixNano"),
            },
        };
        let mut extra = None;
        let duration_ns = match (start, end) {
            (Some(s), Some(e)) if e >= s => e - s,
            (Some(_), Some(_)) => {
                extra = Some(RepairKind::NegativeDurationClamped);
                0
            }
            _ => 0,
        };
        let kind = match sp.get("kind") {
            Some(Value::String(s)) => SpanKind::from_name(s),
            Some(v) => SpanKind::from_number(json_u64(v).unwrap_or(0)),
            None => SpanKind::Unspecified,
        };
        let status = match sp.get("status").and_then(|s| s.get("code")) {
            Some(Value::String(s)) => status_from_name(s),
            Some(v) => match json_u64(v) {
                Some(1) => Status::Ok,
                Some(2) => Status::Error,
                _ => Status::Unset,
            },
            None => Status::Unset,
        };
        let attrs = sp.get("attributes").cloned().unwrap_or(Value::Null);
        let get = |k: &str| attr_str(&attrs, k);
        let call_type = infer_call_type(kind, &get);
        let name = sp.get("name").and_then(Value::as_str);
        let name = self.sym_opt(name);
        let um = get("alibaba.um").map(|s| self.sym_opt(Some(&s)));
        let um_instance = get("alibaba.um_instance").map(|s| self.sym_opt(Some(&s)));
        let rpc_id = get("alibaba.rpc_id").and_then(|s| RpcId::parse(s.as_bytes()));
        let svc = get("alibaba.service").map(|s| self.sym_opt(Some(&s)));
        let original = get("alibaba.trace_id");
        let p = ProtoSpan {
            span_id,
            parent_id,
            service,
            instance,
            name,
            kind,
            call_type,
            start_ns: start,
            duration_ns,
            status,
            um,
            um_instance,
            rpc_id,
        };
        self.push(trace_id, p, extra, svc, original);
        Ok(())
    }

    /// Builds every trace.
    pub(crate) fn finish(mut self) -> Result<(TraceSet, QualityReport)> {
        let mut set = TraceSet {
            symbols: std::mem::take(&mut self.symbols),
            graphs: Vec::new(),
        };
        for key in &self.order {
            let Some(acc) = self.traces.remove(key) else {
                continue;
            };
            let (g, mut repairs, dropped) = build_from_parents(key, acc.service, acc.spans);
            repairs.extend(acc.repairs);
            for d in dropped {
                if self.opts.strict {
                    return Err(Error::Row {
                        file: self.name.clone().into(),
                        line: 0,
                        column: "spanId".into(),
                        reason: d,
                    });
                }
                self.report.drop_row(d);
            }
            self.report.traces += 1;
            for r in &repairs {
                *self.report.repairs.entry(*r).or_insert(0) += 1;
            }
            if let Some(g) = g {
                if repairs.is_empty() {
                    self.report.traces_exact += 1;
                } else {
                    self.report.traces_repaired += 1;
                }
                set.graphs.push(g);
            } else {
                self.report.traces_discarded += 1;
            }
        }
        Ok((set, self.report))
    }
}

/// Status from a name such as `STATUS_CODE_ERROR`, `ERROR`, `Ok`.
pub(crate) fn status_from_name(s: &str) -> Status {
    let u = s.to_ascii_uppercase();
    match u.strip_prefix("STATUS_CODE_").unwrap_or(&u) {
        "OK" => Status::Ok,
        "ERROR" => Status::Error,
        _ => Status::Unset,
    }
}

/// Infers the call type from a span kind and an attribute lookup.
pub(crate) fn infer_call_type(kind: SpanKind, get: &dyn Fn(&str) -> Option<String>) -> CallType {
    if let Some(t) = get("alibaba.rpctype") {
        return CallType::parse(t.as_bytes());
    }
    if let Some(db) = get("db.system").or_else(|| get("db.type")) {
        let d = db.to_ascii_lowercase();
        return if d.contains("memcache") || d.contains("redis") {
            CallType::Mc
        } else {
            CallType::Db
        };
    }
    if get("messaging.system").is_some() || matches!(kind, SpanKind::Producer | SpanKind::Consumer)
    {
        return CallType::Mq;
    }
    if [
        "http.method",
        "http.request.method",
        "http.url",
        "url.full",
        "http.route",
        "http.status_code",
    ]
    .iter()
    .any(|k| get(k).is_some())
    {
        return CallType::Http;
    }
    if get("rpc.system").is_some() {
        return CallType::Rpc;
    }
    if kind == SpanKind::Internal {
        return CallType::Internal;
    }
    CallType::Unknown
}

/// A number or decimal string as u64 (floats are rounded; negatives rejected).
pub(crate) fn json_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && *f < 1.8e19)
                .map(|f| f.round() as u64)
        }),
        Value::String(s) => crate::util::parse_u64(s.trim().as_bytes()),
        _ => None,
    }
}

/// Looks up a key in an OTLP attribute list and renders its value as a string.
pub(crate) fn attr_str(attrs: &Value, key: &str) -> Option<String> {
    let a = attrs.as_array()?;
    let kv = a
        .iter()
        .find(|kv| kv.get("key").and_then(Value::as_str) == Some(key))?;
    let v = kv.get("value")?;
    any_value_str(v)
}

fn any_value_str(v: &Value) -> Option<String> {
    if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
        return Some(s.to_owned());
    }
    for k in ["intValue", "doubleValue", "boolValue"] {
        if let Some(x) = v.get(k) {
            return Some(match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    None
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes standard or URL-safe base64 (padding optional). `None` on bad input.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Parses a trace id: hex (16 or 32 digits, either case) or base64 of 8 or 16 bytes.
/// With `lenient`, any other non-empty string is kept verbatim (Jaeger UI test traces).
/// All-zero ids are rejected.
pub(crate) fn parse_trace_id(s: &str, lenient: bool) -> Option<String> {
    let s = s.trim();
    let bytes = if (s.len() == 32 || s.len() == 16) && s.bytes().all(|c| hex_val(c).is_some()) {
        hex_bytes(s)
    } else {
        base64_decode(s).filter(|b| b.len() == 16 || b.len() == 8)
    };
    match bytes {
        Some(b) if b.iter().any(|&x| x != 0) => Some(to_hex(&b)),
        Some(_) => None,
        None if lenient && !s.is_empty() => Some(s.to_owned()),
        None if !s.is_empty() && s.len() <= 32 && s.bytes().all(|c| hex_val(c).is_some()) => {
            // short hex (leading zeros stripped by some exporters)
            let v = u128::from_str_radix(s, 16).ok()?;
            (v != 0).then(|| format!("{v:032x}"))
        }
        None => None,
    }
}

/// Parses a span id: hex (up to 16 digits) or base64 of 8 bytes. With `lenient`, other
/// strings are hashed (FNV-1a 64). Zero is rejected.
pub(crate) fn parse_span_id(s: &str, lenient: bool) -> Option<u64> {
    let s = s.trim();
    if !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| hex_val(c).is_some()) {
        return u64::from_str_radix(s, 16).ok().filter(|&v| v != 0);
    }
    if let Some(b) = base64_decode(s).filter(|b| b.len() == 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        return Some(u64::from_be_bytes(a)).filter(|&v| v != 0);
    }
    (lenient && !s.is_empty()).then(|| crate::util::hash64(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(
            parse_trace_id("5B8EFFF798038103D269B633813FC60C", false).unwrap(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(
            parse_trace_id("AAAAAAAAAABSlpqJVVcaPw==", false).unwrap(),
            "000000000000000052969a8955571a3f"
        );
        assert_eq!(parse_span_id("AAAAAABkfZg=", false), Some(0x647d98));
        assert_eq!(
            parse_span_id("EEE19B7EC3C1B174", false),
            Some(0xeee19b7ec3c1b174)
        );
        assert_eq!(parse_span_id("0000000000000000", false), None);
        assert_eq!(
            parse_trace_id("00000000000000000000000000000000", false),
            None
        );
        assert_eq!(parse_trace_id("trace-123", false), None);
        assert_eq!(parse_trace_id("trace-123", true).unwrap(), "trace-123");
    }
}
