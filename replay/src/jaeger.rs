//! Jaeger JSON reader: the query API shape `{"data": [trace, ...]}`, the UI's wrapped
//! trace `{"data": trace, "id", "state"}`, a bare trace object
//! `{"traceID", "spans", "processes"}`, an array of traces, an array of spans (each with
//! an embedded `process`), and the proto-JSON domain model `{"spans": [...]}` (base64 ids,
//! RFC 3339 `startTime`, `"22938000ns"` durations, `vStr`/`vInt64` tags).
//!
//! Documented handling of the jaeger-ui trace-contract edge cases (all via
//! [`crate::rebuild::build_from_parents`]):
//! - **parent cycle**: broken at the span with the smallest (start, span id), which is
//!   then attached under the main root (repairs `CycleBroken` + `OrphanAttached`);
//!   a trace whose only spans form a cycle gets that span as its root;
//! - **several roots**: the earliest becomes the root, the others are attached under it
//!   (`ExtraRootAttached`);
//! - **orphans** (parent not in the trace, `CHILD_OF` or `FOLLOWS_FROM`): attached under
//!   the main root (`OrphanAttached`);
//! - **zero start times**: `0` is a valid time and kept; a missing `startTime` takes the
//!   parent's start (`MissingStartFilled`).
//!
//! The parent is the first `CHILD_OF` reference, else the first `FOLLOWS_FROM` (whose
//! span gets call type `mq` unless tags say otherwise), else `parentSpanID`. Times are
//! microseconds (numbers) and are stored as nanoseconds. Trace ids are normalised as in
//! [`crate::otlp`] (32 lower-case hex digits; hex digits only are always hex; a 64-bit id
//! is the 128-bit id with a zero high half). Ids that are neither hex nor base64 (e.g.
//! `span-1`) are accepted: trace ids verbatim, span ids hashed. Strict-mode errors name
//! the line where the offending span's object starts.

use std::path::Path;

use serde_json::Value;

use crate::error::{DropReason, Error, QualityReport, ReadOptions, Result};
use crate::model::{CallType, SpanKind, Status, Sym, TraceSet};
use crate::otlp::{
    Builder, Seg, infer_call_type, parse_documents, parse_span_id, parse_trace_id, read_text,
};
use crate::rebuild::ProtoSpan;

/// Reads a Jaeger JSON file.
pub fn read_jaeger_file(path: &Path, opts: ReadOptions) -> Result<(TraceSet, QualityReport)> {
    let text = read_text(path)?;
    read_jaeger_str(&path.display().to_string(), &text, opts)
}

/// Reads Jaeger JSON from a string (`name` is used in errors and the report).
pub fn read_jaeger_str(
    name: &str,
    text: &str,
    opts: ReadOptions,
) -> Result<(TraceSet, QualityReport)> {
    let docs = parse_documents(name, text)?;
    let mut b = Builder::new(name, opts);
    let mut found = false;
    for d in &docs {
        b.start_document(d);
        found |= document(&mut b, &d.value, None)?;
    }
    if !found {
        return Err(Error::Json {
            file: name.into(),
            line: 0,
            column: 0,
            message: "no Jaeger `spans` found".into(),
        });
    }
    b.finish()
}

fn document(b: &mut Builder, d: &Value, processes: Option<&Value>) -> Result<bool> {
    match d {
        Value::Array(a) => {
            let mut f = false;
            for (i, x) in a.iter().enumerate() {
                b.path.push(Seg::Index(i));
                if x.get("spans").is_some() || x.get("data").is_some() {
                    f |= document(b, x, None)?;
                } else {
                    b.report.rows += 1;
                    span(b, x, processes)?;
                    f = true;
                }
                b.path.pop();
            }
            Ok(f)
        }
        Value::Object(o) => {
            if let Some(data) = o.get("data") {
                b.path.push(Seg::Key("data"));
                let f = document(b, data, None)?;
                b.path.pop();
                return Ok(f);
            }
            if let Some(spans) = o.get("spans").and_then(Value::as_array) {
                let procs = o.get("processes");
                b.path.push(Seg::Key("spans"));
                for (i, s) in spans.iter().enumerate() {
                    b.path.push(Seg::Index(i));
                    b.report.rows += 1;
                    span(b, s, procs)?;
                    b.path.pop();
                }
                b.path.pop();
                return Ok(true);
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

fn str_of<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str))
}

/// Value of a Jaeger tag (`value`, or `vStr`/`vInt64`/`vBool`/`vFloat64`) as a string.
fn tag(tags: Option<&Value>, key: &str) -> Option<String> {
    let t = tags?
        .as_array()?
        .iter()
        .find(|t| t.get("key").and_then(Value::as_str) == Some(key))?;
    for k in ["value", "vStr", "vInt64", "vBool", "vFloat64"] {
        if let Some(v) = t.get(k) {
            return Some(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    None
}

fn span(b: &mut Builder, s: &Value, processes: Option<&Value>) -> Result<()> {
    if !s.is_object() {
        return b.drop_span(DropReason::NotAnObject, "-");
    }
    let Some(trace_id) = str_of(s, &["traceID", "traceId"]).and_then(|t| parse_trace_id(t, true))
    else {
        return b.drop_span(DropReason::BadTraceId, "traceID");
    };
    let Some(span_id) = str_of(s, &["spanID", "spanId"]).and_then(|t| parse_span_id(t, true))
    else {
        return b.drop_span(DropReason::BadSpanId, "spanID");
    };
    let refs = s.get("references").and_then(Value::as_array);
    let pick = |ty: &str| {
        refs.into_iter().flatten().find(|r| {
            r.get("refType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(ty))
        })
    };
    let mut follows = false;
    let parent_ref = match pick("CHILD_OF") {
        Some(r) => Some(r),
        None => {
            let f = pick("FOLLOWS_FROM");
            follows = f.is_some();
            f
        }
    };
    let parent_id = match parent_ref {
        Some(r) => str_of(r, &["spanID", "spanId"]).and_then(|p| parse_span_id(p, true)),
        None => str_of(s, &["parentSpanID", "parentSpanId"]).and_then(|p| parse_span_id(p, true)),
    };
    let start_ns = match s.get("startTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => match parse_rfc3339(t)
            .or_else(|| crate::util::parse_u64(t.as_bytes()).map(|us| us.saturating_mul(1000)))
        {
            Some(v) => Some(v),
            None => return b.drop_span(DropReason::BadTime, "startTime"),
        },
        Some(v) => match crate::otlp::json_u64(v) {
            Some(us) => Some(us.saturating_mul(1000)),
            None => return b.drop_span(DropReason::BadTime, "startTime"),
        },
    };
    let duration_ns = match s.get("duration") {
        None | Some(Value::Null) => 0,
        Some(Value::String(t)) => match parse_duration(t) {
            Some(v) => v,
            None => return b.drop_span(DropReason::BadTime, "duration"),
        },
        Some(v) => match crate::otlp::json_u64(v) {
            Some(us) => us.saturating_mul(1000),
            None => return b.drop_span(DropReason::BadTime, "duration"),
        },
    };
    let process = s.get("process").or_else(|| {
        let pid = s.get("processID").and_then(Value::as_str)?;
        processes?.get(pid)
    });
    let service = process
        .and_then(|p| p.get("serviceName"))
        .and_then(Value::as_str);
    let service = b.sym_opt(service);
    let ptags = process.and_then(|p| p.get("tags"));
    let host = tag(ptags, "hostname")
        .or_else(|| tag(ptags, "host.name"))
        .or_else(|| tag(ptags, "ip"));
    let instance = b.sym_opt(host.as_deref());
    let tags = s.get("tags");
    let kind = tag(tags, "span.kind")
        .map(|k| SpanKind::from_name(&k))
        .unwrap_or_default();
    let get = |k: &str| tag(tags, k);
    let mut call_type = infer_call_type(kind, &get);
    if follows && call_type == CallType::Unknown {
        call_type = CallType::Mq;
    }
    let status = if tag(tags, "error").is_some_and(|e| e == "true")
        || tag(tags, "otel.status_code").is_some_and(|c| c.eq_ignore_ascii_case("error"))
    {
        Status::Error
    } else if tag(tags, "otel.status_code").is_some_and(|c| c.eq_ignore_ascii_case("ok")) {
        Status::Ok
    } else {
        Status::Unset
    };
    let name = str_of(s, &["operationName"]);
    let name = b.sym_opt(name);
    let p = ProtoSpan {
        span_id,
        parent_id,
        service,
        instance,
        name,
        kind,
        call_type,
        start_ns,
        duration_ns,
        status,
        um: None,
        um_instance: None,
        rpc_id: None,
    };
    b.push(trace_id, p, None, None::<Sym>, None)
}

/// Parses `"22938000ns"`, `"1.5s"`, `"300ms"`, `"10us"`/`"10µs"` into nanoseconds.
pub(crate) fn parse_duration(t: &str) -> Option<u64> {
    let t = t.trim();
    let (num, mul) = if let Some(x) = t.strip_suffix("ns") {
        (x, 1.0)
    } else if let Some(x) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (x, 1e3)
    } else if let Some(x) = t.strip_suffix("ms") {
        (x, 1e6)
    } else if let Some(x) = t.strip_suffix('s') {
        (x, 1e9)
    } else {
        (t, 1e3)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * mul < 1.8e19).then(|| (v * mul).round() as u64)
}

/// Parses an RFC 3339 timestamp (`2017-01-26T16:46:31.639875-05:00`, `...Z`) into
/// nanoseconds since the Unix epoch. Times before 1970 are rejected.
pub(crate) fn parse_rfc3339(t: &str) -> Option<u64> {
    let b = t.trim().as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(&b[r]).ok()?.parse::<i64>().ok()
    };
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let mut scale = 100_000_000i64;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            frac_ns += i64::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == st {
            return None;
        }
    }
    let offset_s: i64 = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    if secs < 0 {
        return None;
    }
    (secs as u64)
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(
            parse_rfc3339("2017-01-26T16:46:31.639875-05:00"),
            Some(1_485_467_191_639_875_000)
        );
        assert_eq!(parse_duration("22938000ns"), Some(22_938_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
