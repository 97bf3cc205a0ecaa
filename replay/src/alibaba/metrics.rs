//! Alibaba metric tables, read into one long format ([`MetricSample`]).
//!
//! Supported by header (column order does not matter, an unnamed index column is ignored):
//! - v2021 `MSResource` and v2022 `MSMetrics`:
//!   `timestamp,msname,msinstanceid,nodeid,cpu_utilization,memory_utilization` ([`MetricTable::MsResource`]);
//! - v2021 `MSRTQps` (long): `timestamp,msname,msinstanceid,metric,value` ([`MetricTable::MsRtQps`]);
//! - v2022 `MSRTMCR` (wide): `timestamp,msname,msinstanceid,nodeid,providerrpc_rt,...` ([`MetricTable::MsRtMcr`]);
//! - v2021 `Node` and v2022 `NodeMetrics`: `timestamp,nodeid,cpu_utilization,memory_utilization` ([`MetricTable::Node`]).
//!
//! In wide tables every column that is not an id column is a metric: one sample per
//! (row, metric column). An empty or `NaN` value is skipped and counted
//! ([`DropReason::BadValue`]); a row with a bad timestamp or field count is dropped.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ByteInterner;
use crate::error::{DropReason, Error, QualityReport, ReadOptions, Result};
use crate::model::{Sym, SymbolTable};
use crate::util::{for_each_line, open_maybe_gz, parse_f64, parse_u64, split_fields, trim};

/// Which metric table a header describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricTable {
    /// v2021 MSResource / v2022 MSMetrics (cpu and memory utilisation per instance).
    MsResource,
    /// v2021 MSRTQps (long format: metric name and value columns).
    MsRtQps,
    /// v2022 MSRTMCR (wide: rt and mcr per call kind).
    MsRtMcr,
    /// v2021 Node / v2022 NodeMetrics.
    Node,
    /// Another table with a `timestamp` column: every non-id column is a metric.
    Other,
}

/// One metric value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// Timestamp, ms.
    pub timestamp_ms: u64,
    /// Microservice (`msname`), UNKNOWN for node tables.
    pub service: Sym,
    /// Instance (`msinstanceid`), UNKNOWN if absent.
    pub instance: Sym,
    /// Node (`nodeid`), UNKNOWN if absent.
    pub node: Sym,
    /// Metric name (column name, or the `metric` column in long tables).
    pub metric: Sym,
    /// Value.
    pub value: f64,
}

/// Samples read from one metric file.
#[derive(Clone, Debug, Default)]
pub struct MetricsSet {
    /// Names.
    pub symbols: SymbolTable,
    /// The detected table, if any file was read.
    pub table: Option<MetricTable>,
    /// The samples, in file order.
    pub samples: Vec<MetricSample>,
}

/// Reads a metric table file (plain or gzip).
pub fn read_metrics_file(path: &Path, opts: ReadOptions) -> Result<(MetricsSet, QualityReport)> {
    let r = open_maybe_gz(path)?;
    read_metrics(path, r, opts)
}

/// Reads a metric table from any reader (`name` is used in errors).
pub fn read_metrics<R: Read>(
    name: &Path,
    r: R,
    opts: ReadOptions,
) -> Result<(MetricsSet, QualityReport)> {
    let mut set = MetricsSet {
        symbols: SymbolTable::new(),
        ..Default::default()
    };
    let mut report = QualityReport::new(name.display().to_string());
    let mut names = ByteInterner::new();
    let mut header: Option<Header> = None;
    let mut fields = Vec::with_capacity(32);
    for_each_line(r, name, |line_no, line| {
        let Some(h) = header.as_ref() else {
            let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            let h = Header::parse(line, name, &mut set.symbols)?;
            set.table = Some(h.table);
            header = Some(h);
            return Ok(());
        };
        if line.is_empty() {
            return Ok(());
        }
        report.rows += 1;
        let fail = |report: &mut QualityReport, reason: DropReason, col: &str| {
            if opts.strict {
                Err(Error::Row {
                    file: name.to_path_buf(),
                    line: line_no,
                    column: col.to_owned(),
                    reason,
                })
            } else {
                report.drop_row(reason);
                Ok(())
            }
        };
        if !split_fields(line, &mut fields, h.n) || fields.len() != h.n {
            return fail(&mut report, DropReason::FieldCount, "-");
        }
        let f = |i: usize| {
            let (s, e) = fields[i];
            trim(&line[s as usize..e as usize])
        };
        let Some(ts) = parse_u64(f(h.ts)) else {
            return fail(&mut report, DropReason::BadTimestamp, "timestamp");
        };
        let mut id = |i: Option<usize>| match i {
            Some(i) => names.intern(&mut set.symbols, f(i)),
            None => Sym::UNKNOWN,
        };
        let service = id(h.ms);
        let instance = id(h.inst);
        let node = id(h.node);
        let mut push =
            |metric: Sym, raw: &[u8], col: &str, report: &mut QualityReport| match parse_f64(raw) {
                Some(value) => {
                    set.samples.push(MetricSample {
                        timestamp_ms: ts,
                        service,
                        instance,
                        node,
                        metric,
                        value,
                    });
                    Ok(())
                }
                None => fail(report, DropReason::BadValue, col),
            };
        if let (Some(m), Some(v)) = (h.metric, h.value) {
            let metric = names.intern(&mut set.symbols, f(m));
            push(metric, f(v), "value", &mut report)?;
        } else {
            for &(col, sym) in &h.values {
                push(sym, f(col), set_name(&h.names, col), &mut report)?;
            }
        }
        Ok(())
    })?;
    if header.is_none() {
        return Err(Error::Empty {
            file: name.to_path_buf(),
        });
    }
    Ok((set, report))
}

fn set_name(names: &[String], i: usize) -> &str {
    names.get(i).map(String::as_str).unwrap_or("-")
}

struct Header {
    n: usize,
    names: Vec<String>,
    table: MetricTable,
    ts: usize,
    ms: Option<usize>,
    inst: Option<usize>,
    node: Option<usize>,
    metric: Option<usize>,
    value: Option<usize>,
    values: Vec<(usize, Sym)>,
}

impl Header {
    fn parse(line: &[u8], file: &Path, symbols: &mut SymbolTable) -> Result<Header> {
        let names: Vec<String> = line
            .split(|&b| b == b',')
            .map(|s| {
                String::from_utf8_lossy(trim(s))
                    .trim_matches('"')
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |n: &str| names.iter().position(|x| x == n);
        let ts = find("timestamp").ok_or_else(|| Error::MissingColumn {
            file: file.to_path_buf(),
            line: 1,
            column: "timestamp".into(),
            header: String::from_utf8_lossy(line).into_owned(),
        })?;
        let ms = find("msname");
        let inst = find("msinstanceid");
        let node = find("nodeid");
        let metric = find("metric");
        let value = find("value");
        let table = if metric.is_some() && value.is_some() {
            MetricTable::MsRtQps
        } else if find("providerrpc_rt").is_some() {
            MetricTable::MsRtMcr
        } else if ms.is_some() && find("cpu_utilization").is_some() {
            MetricTable::MsResource
        } else if ms.is_none() && node.is_some() && find("cpu_utilization").is_some() {
            MetricTable::Node
        } else {
            MetricTable::Other
        };
        if table == MetricTable::MsRtQps && ms.is_none() {
            return Err(Error::MissingColumn {
                file: file.to_path_buf(),
                line: 1,
                column: "msname".into(),
                header: String::from_utf8_lossy(line).into_owned(),
            });
        }
        let ids = [Some(ts), ms, inst, node, metric, value];
        let values = names
            .iter()
            .enumerate()
            .filter(|(i, n)| !n.is_empty() && !ids.contains(&Some(*i)))
            .map(|(i, n)| (i, symbols.intern(n)))
            .collect();
        Ok(Header {
            n: names.len(),
            names,
            table,
            ts,
            ms,
            inst,
            node,
            metric,
            value,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_and_long() {
        let csv = b",timestamp,msname,msinstanceid,nodeid,cpu_utilization,memory_utilization\n0,60000,MS_1,MS_1_POD_1,NODE_3,0.5,0.25\n1,120000,MS_1,MS_1_POD_1,NODE_3,,0.3\n";
        let (s, r) = read_metrics(Path::new("m.csv"), &csv[..], ReadOptions::default()).unwrap();
        assert_eq!(s.table, Some(MetricTable::MsResource));
        assert_eq!(s.samples.len(), 3);
        assert_eq!(r.rows_dropped.get(&DropReason::BadValue), Some(&1));
        assert_eq!(s.symbols.resolve(s.samples[1].metric), "memory_utilization");
        let long = b"timestamp,msname,msinstanceid,metric,value\n0,a,a1,providerRPC_RT,3.5\n";
        let (s, _) = read_metrics(Path::new("q.csv"), &long[..], ReadOptions::default()).unwrap();
        assert_eq!(s.table, Some(MetricTable::MsRtQps));
        assert_eq!(s.symbols.resolve(s.samples[0].metric), "providerRPC_RT");
        assert_eq!(s.samples[0].value, 3.5);
        let bad = b"msname,value\n";
        assert!(matches!(
            read_metrics(Path::new("b.csv"), &bad[..], ReadOptions::default()),
            Err(Error::MissingColumn { .. })
        ));
        let strict = ReadOptions { strict: true };
        let e = read_metrics(Path::new("m.csv"), &csv[..], strict).unwrap_err();
        assert!(e.to_string().contains("m.csv:3"), "{e}");
    }
}
