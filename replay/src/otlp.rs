//! OpenTelemetry OTLP JSON reader (`ExportTraceServiceRequest` JSON encoding).
//!
//! Accepted shapes: `{"resourceSpans": [...]}`, the api_v3 wrapper
//! `{"result": {"resourceSpans": [...]}}`, an array of either, and JSON lines (one
//! document per line, as the collector's file exporter writes). `scopeSpans` and the
//! legacy `instrumentationLibrarySpans` are both read.
//!
//! Field handling (documented choices):
//! - ids: hex of either case or base64 (the protobuf-JSON mapping); a string of hex
//!   digits only is always hex (leading zeros may be stripped). Trace ids are stored as
//!   32 lower-case hex digits, a 64-bit id as a 128-bit one with a zero high half (so
//!   `2be38093ead7a083` and `00000000000000002be38093ead7a083` are one trace; see
//!   `parse_trace_id`); span ids are 64-bit (up to 16 hex digits, or base64 of 8
//!   bytes). An all-zero or unreadable id drops the span ([`DropReason::BadTraceId`] /
//!   [`DropReason::BadSpanId`]);
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
//! [`crate::rebuild::build_from_parents`]; a span whose id was already seen in its trace
//! is dropped as it is read ([`DropReason::DuplicateSpanId`]). In strict mode the first
//! dropped span is an [`Error::Row`] naming the line on which the span's JSON object
//! starts (the line of its document for JSON lines) and the field at fault.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
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

/// One JSON document of a file, with its text and the line it starts on (so span-level
/// errors can name their line).
pub(crate) struct Doc<'t> {
    /// The parsed document.
    pub(crate) value: Value,
    /// Its text.
    pub(crate) text: &'t str,
    /// The 1-based line of the file on which `text` starts.
    pub(crate) first_line: u64,
}

/// Parses a JSON text: one document, or JSON lines. Errors name the line and column.
pub(crate) fn parse_documents<'t>(name: &str, text: &'t str) -> Result<Vec<Doc<'t>>> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(vec![Doc {
            value: v,
            text,
            first_line: 1,
        }]),
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
                    Ok(v) => docs.push(Doc {
                        value: v,
                        text: l,
                        first_line: i as u64 + 1,
                    }),
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
        b.start_document(d);
        found |= b.document(&d.value)?;
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
///
/// Span-level errors (strict mode) name the line where the span's JSON object starts:
/// the readers keep the JSON path of the span being read in [`Builder::path`], and the
/// line is found from it in the document's text only when an error is raised.
pub(crate) struct Builder<'t> {
    pub(crate) name: String,
    pub(crate) opts: ReadOptions,
    pub(crate) symbols: SymbolTable,
    pub(crate) report: QualityReport,
    order: Vec<String>,
    traces: HashMap<String, TraceAcc>,
    /// The document being read: its text and first line.
    doc: (&'t str, u64),
    /// The JSON path, in the current document, of the value being read.
    pub(crate) path: Vec<Seg>,
}

#[derive(Default)]
struct TraceAcc {
    spans: Vec<ProtoSpan>,
    /// Span ids seen (a later span with the same id is dropped when read).
    ids: HashSet<u64>,
    repairs: Vec<RepairKind>,
    service: Option<Sym>,
    original_id: Option<String>,
}

impl<'t> Builder<'t> {
    pub(crate) fn new(name: &str, opts: ReadOptions) -> Self {
        Builder {
            name: name.to_owned(),
            opts,
            symbols: SymbolTable::new(),
            report: QualityReport::new(name),
            order: Vec::new(),
            traces: HashMap::new(),
            doc: ("", 1),
            path: Vec::new(),
        }
    }

    /// Starts reading a document (spans are then located in its text).
    pub(crate) fn start_document(&mut self, d: &Doc<'t>) {
        self.doc = (d.text, d.first_line);
        self.path.clear();
    }

    /// The line where the value at [`Builder::path`] starts (0 when not found).
    fn current_line(&self) -> u64 {
        json_line_of(self.doc.0, &self.path).map_or(0, |l| l + self.doc.1 - 1)
    }

    /// Counts a dropped span, or fails in strict mode (naming the span's line).
    pub(crate) fn drop_span(&mut self, reason: DropReason, field: &str) -> Result<()> {
        if self.opts.strict {
            return Err(Error::Row {
                file: self.name.clone().into(),
                line: self.current_line(),
                column: field.to_owned(),
                reason,
            });
        }
        self.report.drop_row(reason);
        Ok(())
    }

    /// Adds one span to its trace. A span whose id was already seen in the trace is
    /// dropped ([`DropReason::DuplicateSpanId`]; strict: an error naming its line).
    pub(crate) fn push(
        &mut self,
        trace_id: String,
        span: ProtoSpan,
        extra_repair: Option<RepairKind>,
        service: Option<Sym>,
        original_id: Option<String>,
    ) -> Result<()> {
        let key = match &original_id {
            Some(o) => o.clone(),
            None => trace_id,
        };
        let acc = match self.traces.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.order.push(e.key().clone());
                e.insert(TraceAcc::default())
            }
        };
        if !acc.ids.insert(span.span_id) {
            return self.drop_span(DropReason::DuplicateSpanId, "spanId");
        }
        acc.spans.push(span);
        acc.repairs.extend(extra_repair);
        if acc.service.is_none() {
            acc.service = service;
        }
        if acc.original_id.is_none() {
            acc.original_id = original_id;
        }
        Ok(())
    }

    fn document(&mut self, d: &Value) -> Result<bool> {
        if let Some(a) = d.as_array() {
            let mut f = false;
            for (i, x) in a.iter().enumerate() {
                self.path.push(Seg::Index(i));
                f |= self.document(x)?;
                self.path.pop();
            }
            return Ok(f);
        }
        let (rs, rs_path): (Option<&Value>, &[Seg]) = match d.get("resourceSpans") {
            Some(v) => (Some(v), &[Seg::Key("resourceSpans")]),
            None => (
                d.get("result").and_then(|r| r.get("resourceSpans")),
                &[Seg::Key("result"), Seg::Key("resourceSpans")],
            ),
        };
        let Some(rs) = rs.and_then(Value::as_array) else {
            return Ok(false);
        };
        let depth = self.path.len();
        self.path.extend_from_slice(rs_path);
        let at_rs = self.path.len();
        for (ri, r) in rs.iter().enumerate() {
            let attrs = r
                .get("resource")
                .and_then(|x| x.get("attributes"))
                .unwrap_or(&Value::Null);
            let service = attr_str(attrs, "service.name");
            let instance =
                attr_str(attrs, "service.instance.id").or_else(|| attr_str(attrs, "host.name"));
            let service = self.sym_opt(service.as_deref());
            let instance = self.sym_opt(instance.as_deref());
            let (scopes, scopes_key) = match r.get("scopeSpans") {
                Some(v) => (Some(v), "scopeSpans"),
                None => (
                    r.get("instrumentationLibrarySpans"),
                    "instrumentationLibrarySpans",
                ),
            };
            let scopes = scopes.and_then(Value::as_array);
            self.path.truncate(at_rs);
            self.path.extend([Seg::Index(ri), Seg::Key(scopes_key)]);
            let at_scopes = self.path.len();
            for (si, sc) in scopes.into_iter().flatten().enumerate() {
                self.path.truncate(at_scopes);
                self.path.extend([Seg::Index(si), Seg::Key("spans")]);
                for (k, sp) in sc
                    .get("spans")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    self.path.push(Seg::Index(k));
                    self.report.rows += 1;
                    self.span(sp, service, instance)?;
                    self.path.pop();
                }
            }
        }
        self.path.truncate(depth);
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
        let attrs = sp.get("attributes").unwrap_or(&Value::Null);
        let get = |k: &str| attr_str(attrs, k);
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
        self.push(trace_id, p, extra, svc, original)
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
            // duplicate span ids, the only spans it drops, were dropped by `push`
            debug_assert!(dropped.is_empty(), "{dropped:?}");
            repairs.extend(acc.repairs);
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

/// Parses a trace id into its key: 32 lower-case hex digits.
///
/// - A string of hex digits only (either case, any length) is **always** read as hex,
///   never as base64: exporters that print the id as a number strip its leading zeros
///   (`1234567890abcdef012345` is `00000000001234567890abcdef012345`, not the base64 of
///   some other 16 bytes). It is left-padded with zeros to 32 digits; more than 32
///   significant digits is unreadable.
/// - A 64-bit id is the low half of a 128-bit id whose high half is zero (as in Jaeger
///   and the OpenTelemetry Jaeger/Zipkin translators), so `2be38093ead7a083` and
///   `00000000000000002be38093ead7a083` are the same trace: both give
///   `00000000000000002be38093ead7a083`.
/// - Anything else is base64 (standard or URL-safe, padding optional) of 16 bytes, or of
///   8 bytes (a 64-bit id, padded as above).
///
/// With `lenient`, any other non-empty string is kept verbatim (Jaeger UI test traces).
/// All-zero ids are rejected.
pub(crate) fn parse_trace_id(s: &str, lenient: bool) -> Option<String> {
    let s = s.trim();
    let value: Option<u128> = if !s.is_empty() && s.bytes().all(|c| hex_val(c).is_some()) {
        // hex first (`from_str_radix` accepts a sign, excluded by the check above)
        u128::from_str_radix(s, 16).ok()
    } else {
        base64_decode(s).and_then(|b| match b.len() {
            16 | 8 => Some(b.iter().fold(0u128, |v, &x| (v << 8) | u128::from(x))),
            _ => None,
        })
    };
    match value {
        Some(0) => None,
        Some(v) => Some(format!("{v:032x}")),
        None if lenient && !s.is_empty() => Some(s.to_owned()),
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

/// One step of a JSON path: an object key or an array index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// The value of this key (of the last occurrence, as `serde_json` keeps it).
    Key(&'static str),
    /// The element at this index.
    Index(usize),
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `b[i]` is `"`: the index just past the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match *b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The index just past the JSON value starting at `b[i]` (structure only, no checks).
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match *b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The 1-based line of `text` on which the value at `path` starts, or `None` when the
/// path is not in the text. `text` is assumed to be valid JSON (it was parsed already);
/// keys are compared as written (the readers' keys need no escapes).
pub(crate) fn json_line_of(text: &str, path: &[Seg]) -> Option<u64> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    for seg in path {
        match *seg {
            Seg::Key(k) => {
                if b.get(i) != Some(&b'{') {
                    return None;
                }
                i += 1;
                let mut found = None;
                loop {
                    i = skip_ws(b, i);
                    match *b.get(i)? {
                        b'}' => break,
                        b',' => {
                            i += 1;
                            continue;
                        }
                        b'"' => {}
                        _ => return None,
                    }
                    let end = skip_string(b, i)?;
                    let key = &b[i + 1..end - 1];
                    i = skip_ws(b, end);
                    if b.get(i) != Some(&b':') {
                        return None;
                    }
                    i = skip_ws(b, i + 1);
                    if key == k.as_bytes() {
                        found = Some(i);
                    }
                    i = skip_value(b, i)?;
                }
                i = found?;
            }
            Seg::Index(n) => {
                if b.get(i) != Some(&b'[') {
                    return None;
                }
                i += 1;
                let mut at = 0usize;
                loop {
                    i = skip_ws(b, i);
                    match *b.get(i)? {
                        b']' => return None,
                        b',' => {
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    if at == n {
                        break;
                    }
                    i = skip_value(b, i)?;
                    at += 1;
                }
            }
        }
    }
    Some(1 + memchr::memchr_iter(b'\n', &b[..i]).count() as u64)
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

    #[test]
    fn hex_ids_with_stripped_leading_zeros_are_hex_not_base64() {
        // 22 and 11 hex digits are also valid base64 of 16 and 8 bytes: hex wins
        let full = "00000000001234567890abcdef012345";
        assert_eq!(
            parse_trace_id("1234567890abcdef012345", false).unwrap(),
            full
        );
        assert_eq!(
            parse_trace_id("1234567890ABCDEF012345", true).unwrap(),
            full
        );
        assert_eq!(
            parse_trace_id("123456789ab", false).unwrap(),
            "000000000000000000000123456789ab"
        );
        // 31 digits (one leading zero stripped)
        assert_eq!(
            parse_trace_id("df84e36b9e2ee3815d07f0867a5be1f", true).unwrap(),
            "0df84e36b9e2ee3815d07f0867a5be1f"
        );
        // more than 32 significant digits is not a 128-bit id
        assert_eq!(parse_trace_id(&format!("1{full}"), false), None);
        assert_eq!(parse_trace_id(&format!("00{full}"), false).unwrap(), full);
        assert_eq!(parse_trace_id("0000", false), None);
    }

    #[test]
    fn a_64_bit_trace_id_and_its_padded_128_bit_form_are_one_key() {
        let want = "00000000000000002be38093ead7a083";
        for s in [
            "2be38093ead7a083",
            "2BE38093EAD7A083",
            "00000000000000002be38093ead7a083",
            "2be38093ead7a083".trim_start_matches('0'),
            "K+OAk+rXoIM=",             // base64 of the 8 bytes
            "AAAAAAAAAAAr44CT6teggw",   // base64 of the 16 bytes, unpadded
            "AAAAAAAAAAAr44CT6teggw==", // and padded
        ] {
            assert_eq!(parse_trace_id(s, false).as_deref(), Some(want), "{s}");
        }
    }

    #[test]
    fn json_line_of_finds_values() {
        let t = "{\"a\": 1,\n \"s\": \"x]}\\\"{\",\n \"b\": [\n  {\"c\": 2},\n  [3, {}],\n  {\"c\": 4}],\n \"b\": [5,\n 6]}";
        use Seg::*;
        assert_eq!(json_line_of(t, &[]), Some(1));
        assert_eq!(json_line_of(t, &[Key("a")]), Some(1));
        // a duplicate key: the last one, as serde_json keeps it
        assert_eq!(json_line_of(t, &[Key("b"), Index(0)]), Some(7));
        assert_eq!(json_line_of(t, &[Key("b"), Index(1)]), Some(8));
        assert_eq!(json_line_of(t, &[Key("b"), Index(2)]), None);
        assert_eq!(json_line_of(t, &[Key("nope")]), None);
        assert_eq!(json_line_of(t, &[Key("a"), Index(0)]), None);
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["b"][1], 6);
        assert_eq!(v["s"], "x]}\"{");
    }
}
