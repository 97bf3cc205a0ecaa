//! Alibaba cluster-trace-microservices readers: call-graph tables (v2021 `MSCallGraph`,
//! v2022 `CallGraph`) and metric tables (see [`metrics`]).
//!
//! Columns are found by header name (case-insensitive; `rpcid` and `rpc_id` are the same
//! column; an unnamed leading index column is ignored), so the README/file order
//! mismatch does not matter. Reading is streaming (1 MiB chunks, gzip detected by magic
//! bytes) with a hand-written comma splitter; names are interned into `u32` ids.
//!
//! Required columns: `traceid`, `timestamp`, `rpcid`, `um`, `rpctype`, `dm`, `rt`.
//! Optional: `interface`, `service` (v2022), `uminstanceid`, `dminstanceid` (v2022).
//! A missing required column is [`Error::MissingColumn`]. Row-level problems
//! ([`DropReason`]) are counted and the row skipped (strict: the first is an error).
//! Every row keeps its line number ([`RawRow::line`]), so problems found only when a
//! trace is rebuilt (exact duplicates, an rpc id that cannot be renumbered) name the
//! file, line and column in strict mode too. (Strict mode reports the first problem
//! *found*: rows are checked while reading, rebuild problems after every file is read.)
//!
//! Names `""`, `NaN`, `nan`, `(?)`, `UNKNOWN`, `UNAVAILABLE` and `NULL` become
//! [`Sym::UNKNOWN`]; `USER` stays `USER`. Traces may span several files: rows are
//! grouped by trace id over every file given to one [`CallGraphReader`], and a trace is
//! counted in the report of the file holding its first row. Rebuild rules: [`crate::rebuild`].

pub mod metrics;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DropReason, Error, QualityReport, ReadOptions, Result};
use crate::model::{CallType, Sym, SymbolTable, TraceSet};
use crate::rebuild::{RawRow, rebuild_alibaba};
use crate::util::{
    ByteTable, for_each_line, open_maybe_gz, parse_f64, parse_u64, split_fields, trim,
};

/// Which columns of a call-graph table are where.
#[derive(Clone, Debug, Default)]
struct Cols {
    n: usize,
    trace: usize,
    ts: usize,
    rpc: usize,
    um: usize,
    dm: usize,
    ty: usize,
    rt: usize,
    iface: Option<usize>,
    service: Option<usize>,
    um_inst: Option<usize>,
    dm_inst: Option<usize>,
}

/// Interns byte strings with a fast byte-keyed table in front of the [`SymbolTable`].
pub(crate) struct ByteInterner {
    table: ByteTable,
}

/// A one-entry cache per column: consecutive rows often repeat a name (the rows of one
/// trace share the service; a caller makes several calls).
#[derive(Default)]
struct LastCache {
    bytes: Vec<u8>,
    sym: Option<Sym>,
}

impl LastCache {
    #[inline]
    fn intern(&mut self, nm: &mut ByteInterner, sy: &mut SymbolTable, b: &[u8]) -> Sym {
        if let Some(s) = self.sym
            && self.bytes.as_slice() == b
        {
            return s;
        }
        let s = nm.intern(sy, b);
        self.bytes.clear();
        self.bytes.extend_from_slice(b);
        self.sym = Some(s);
        s
    }
}

impl ByteInterner {
    pub(crate) fn new() -> Self {
        ByteInterner {
            table: ByteTable::new(),
        }
    }

    /// Interns `b` (normalising the unknown spellings).
    #[inline]
    pub(crate) fn intern(&mut self, symbols: &mut SymbolTable, b: &[u8]) -> Sym {
        if is_unknown_name(b) {
            return Sym::UNKNOWN;
        }
        let (v, _) = self
            .table
            .get_or_insert_with(b, || symbols.intern(&String::from_utf8_lossy(b)).0);
        Sym(v)
    }
}

/// True for the spellings of a missing name.
#[inline]
pub fn is_unknown_name(b: &[u8]) -> bool {
    match b.len() {
        0 => true,
        3 => b == b"NaN" || b == b"nan" || b == b"(?)" || b == b"NAN",
        4 => b == b"NULL" || b == b"null",
        7 => b == b"UNKNOWN",
        11 => b == b"UNAVAILABLE",
        _ => false,
    }
}

struct Accum {
    file: u32,
    rows: u32,
}

/// Streaming reader of Alibaba call-graph CSV files; feed it one or more files (a
/// trace may be split across files), then [`CallGraphReader::finish`].
pub struct CallGraphReader {
    opts: ReadOptions,
    symbols: SymbolTable,
    names: ByteInterner,
    trace_index: ByteTable,
    traces: Vec<Accum>,
    rows: Vec<RawRow>,
    arena: Vec<u32>,
    reports: Vec<QualityReport>,
}

impl CallGraphReader {
    /// A reader with the given options.
    pub fn new(opts: ReadOptions) -> Self {
        CallGraphReader {
            opts,
            symbols: SymbolTable::new(),
            names: ByteInterner::new(),
            trace_index: ByteTable::new(),
            traces: Vec::new(),
            rows: Vec::new(),
            arena: Vec::new(),
            reports: Vec::new(),
        }
    }

    /// Reads a file (plain or gzip).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let r = open_maybe_gz(path)?;
        self.add_reader(path, r)
    }

    /// Reads CSV from any reader; `name` is used in errors and the report.
    pub fn add_reader<R: Read>(&mut self, name: &Path, r: R) -> Result<()> {
        let file_idx = self.reports.len() as u32;
        let mut report = QualityReport::new(name.display().to_string());
        let mut cols: Option<Cols> = None;
        let mut fields: Vec<(u32, u32)> = Vec::with_capacity(16);
        let mut caches: [LastCache; 6] = Default::default();
        let mut last_trace: (Vec<u8>, u32) = (Vec::new(), u32::MAX);
        let strict = self.opts.strict;
        let name_buf: PathBuf = name.to_path_buf();
        let res = for_each_line(r, name, |line_no, line| {
            let Some(c) = cols.as_ref() else {
                let header = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
                cols = Some(parse_header(header, &name_buf, line_no)?);
                return Ok(());
            };
            if line.is_empty() {
                return Ok(());
            }
            report.rows += 1;
            let fail = |report: &mut QualityReport, reason: DropReason, col: &str| {
                if strict {
                    Err(Error::Row {
                        file: name_buf.clone(),
                        line: line_no,
                        column: col.to_owned(),
                        reason,
                    })
                } else {
                    report.drop_row(reason);
                    Ok(())
                }
            };
            if !split_fields(line, &mut fields, c.n) || fields.len() != c.n {
                return fail(&mut report, DropReason::FieldCount, "-");
            }
            let f = |i: usize| {
                let (s, e) = fields[i];
                trim(&line[s as usize..e as usize])
            };
            let tid = f(c.trace);
            if tid.is_empty() || is_unknown_name(tid) {
                return fail(&mut report, DropReason::EmptyTraceId, "traceid");
            }
            let Some(ts) = parse_u64(f(c.ts)) else {
                return fail(&mut report, DropReason::BadTimestamp, "timestamp");
            };
            let Some(rt) = parse_f64(f(c.rt)) else {
                return fail(&mut report, DropReason::BadResponseTime, "rt");
            };
            let rpc_start = self.arena.len();
            if !crate::model::parse_rpc_components(f(c.rpc), &mut self.arena) {
                self.arena.truncate(rpc_start);
                return fail(&mut report, DropReason::BadRpcId, "rpcid");
            }
            let rpc_len = (self.arena.len() - rpc_start) as u32;
            if self.arena[rpc_start..].iter().skip(1).any(|&x| x == 0) {
                report.rpc_ids_with_zero_component += 1;
            }
            let sy = &mut self.symbols;
            let nm = &mut self.names;
            let [c0, c1, c2, c3, c4, c5] = &mut caches;
            let um = c0.intern(nm, sy, f(c.um));
            let dm = c1.intern(nm, sy, f(c.dm));
            let mut opt = |cache: &mut LastCache, i: Option<usize>| match i {
                Some(i) => cache.intern(nm, sy, f(i)),
                None => Sym::UNKNOWN,
            };
            let interface = opt(c2, c.iface);
            let service = opt(c3, c.service);
            let um_instance = opt(c4, c.um_inst);
            let dm_instance = opt(c5, c.dm_inst);
            let mut row = RawRow {
                start_ns: ts.saturating_mul(1_000_000),
                rt_ns: (rt * 1e6).round().clamp(-9.2e18, 9.2e18) as i64,
                rpc_start,
                rpc_len,
                trace: 0,
                um,
                um_instance,
                dm,
                dm_instance,
                interface,
                service,
                call_type: CallType::parse(f(c.ty)),
                file: file_idx,
                line: line_no,
            };
            let next = self.traces.len() as u32;
            let (t, new) = if last_trace.1 != u32::MAX && last_trace.0.as_slice() == tid {
                (last_trace.1, false)
            } else {
                let r = self.trace_index.get_or_insert_with(tid, || next);
                last_trace.0.clear();
                last_trace.0.extend_from_slice(tid);
                last_trace.1 = r.0;
                r
            };
            if new {
                self.traces.push(Accum {
                    file: file_idx,
                    rows: 0,
                });
            }
            row.trace = t;
            self.traces[t as usize].rows += 1;
            self.rows.push(row);
            Ok(())
        });
        res?;
        if cols.is_none() {
            return Err(Error::Empty {
                file: name.to_path_buf(),
            });
        }
        self.reports.push(report);
        Ok(())
    }

    /// Rebuilds every trace and returns the graphs (in first-seen trace order) and one
    /// report per file (in the order the files were added).
    pub fn finish(mut self) -> Result<(TraceSet, Vec<QualityReport>)> {
        let mut set = TraceSet {
            symbols: std::mem::take(&mut self.symbols),
            graphs: Vec::with_capacity(self.traces.len()),
        };
        // group rows by trace, keeping file order within a trace (a counting sort of
        // row indices; rows are copied per trace into a small scratch buffer)
        let mut start = Vec::with_capacity(self.traces.len() + 1);
        let mut acc = 0usize;
        for t in &self.traces {
            start.push(acc);
            acc += t.rows as usize;
        }
        start.push(acc);
        let mut fill = start.clone();
        let mut perm: Vec<u32> = vec![0; acc];
        for (i, r) in self.rows.iter().enumerate() {
            let t = r.trace as usize;
            perm[fill[t]] = i as u32;
            fill[t] += 1;
        }
        let mut scratch: Vec<RawRow> = Vec::new();
        for (ti, t) in self.traces.iter().enumerate() {
            let id = String::from_utf8_lossy(self.trace_index.key_of_entry(ti));
            scratch.clear();
            scratch.extend(
                perm[start[ti]..start[ti + 1]]
                    .iter()
                    .map(|&i| self.rows[i as usize]),
            );
            let o = rebuild_alibaba(&id, &scratch, &self.arena);
            for d in &o.dropped {
                if self.opts.strict {
                    return Err(Error::Row {
                        file: PathBuf::from(&self.reports[d.file as usize].file),
                        line: d.line,
                        column: d.column.into(),
                        reason: d.reason,
                    });
                }
                self.reports[d.file as usize].drop_row(d.reason);
            }
            for &f in &o.merged {
                self.reports[f as usize].rows_merged += 1;
            }
            let rep = &mut self.reports[t.file as usize];
            rep.traces += 1;
            for r in &o.repairs {
                *rep.repairs.entry(*r).or_insert(0) += 1;
            }
            match (o.graph, o.discarded) {
                (Some(g), _) => {
                    if o.repairs.is_empty() {
                        rep.traces_exact += 1;
                    } else {
                        rep.traces_repaired += 1;
                    }
                    set.graphs.push(g);
                }
                (None, d) => {
                    rep.traces_discarded += 1;
                    if let Some(d) = d {
                        *rep.discards.entry(d).or_insert(0) += 1;
                    }
                }
            }
        }
        Ok((set, self.reports))
    }
}

fn parse_header(h: &[u8], file: &Path, line: u64) -> Result<Cols> {
    let names: Vec<String> = h
        .split(|&b| b == b',')
        .map(|s| {
            String::from_utf8_lossy(trim(s))
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .collect();
    let find = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
    let need = |alts: &[&str]| {
        find(alts).ok_or_else(|| Error::MissingColumn {
            file: file.to_path_buf(),
            line,
            column: alts[0].to_owned(),
            header: String::from_utf8_lossy(h).into_owned(),
        })
    };
    Ok(Cols {
        n: names.len(),
        trace: need(&["traceid", "trace_id"])?,
        ts: need(&["timestamp"])?,
        rpc: need(&["rpcid", "rpc_id"])?,
        um: need(&["um"])?,
        dm: need(&["dm"])?,
        ty: need(&["rpctype", "rpc_type"])?,
        rt: need(&["rt"])?,
        iface: find(&["interface"]),
        service: find(&["service"]),
        um_inst: find(&["uminstanceid"]),
        dm_inst: find(&["dminstanceid"]),
    })
}

/// Reads and rebuilds Alibaba call-graph files (v2021 or v2022, plain or gzip); traces
/// split across the files are joined.
pub fn read_callgraph_files<P: AsRef<Path>>(
    paths: &[P],
    opts: ReadOptions,
) -> Result<(TraceSet, Vec<QualityReport>)> {
    let mut r = CallGraphReader::new(opts);
    for p in paths {
        r.add_file(p.as_ref())?;
    }
    r.finish()
}

/// Reads and rebuilds Alibaba call-graph CSV held in memory.
pub fn read_callgraph_bytes(
    name: &str,
    bytes: &[u8],
    opts: ReadOptions,
) -> Result<(TraceSet, QualityReport)> {
    let mut r = CallGraphReader::new(opts);
    r.add_reader(Path::new(name), bytes)?;
    let (set, mut reps) = r.finish()?;
    Ok((set, reps.pop().unwrap_or_default()))
}
