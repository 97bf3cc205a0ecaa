//! Trace formats, a compact trace store, synthetic call-graph generators and fidelity
//! metrics for blastradius, and replay of traces into the `sim-core` simulator ([`sim`]).
//!
//! ```
//! use replay::{Format, ReadOptions, read_bytes};
//! use replay::generate::recursive::{RecursiveGenerator, RecursiveModel};
//! use replay::fidelity::{compare, FidelityOptions};
//!
//! // Two Alibaba v2022 rows of one trace, the entry call logged twice (caller + callee).
//! let csv = "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n\
//!            10,T_1,S_1,0,http,USER,USER,i1,MS_1,MS_1_POD_0,5.0\n\
//!            10,T_1,S_1,0,http,USER,USER,i1,MS_1,MS_1_POD_0,4.0\n\
//!            11,T_1,S_1,0.1,rpc,MS_1,MS_1_POD_0,i2,MS_2,MS_2_POD_3,2.0\n";
//! let (real, report) = read_bytes("sample.csv", csv.as_bytes(), Format::AlibabaV2022, ReadOptions::default())?;
//! assert_eq!(report.rows, 3);
//! assert_eq!(report.rows_merged, 1);
//! assert_eq!(real.graphs.len(), 1);
//! assert_eq!(real.graphs[0].spans.len(), 2);
//!
//! // Fit the recursive generator and compare what it makes with the real sample.
//! let model = RecursiveModel::fit(&real)?;
//! let synth = RecursiveGenerator::new(&model, 42).generate(100);
//! let fid = compare(&real, &synth, &real, &FidelityOptions::default());
//! assert_eq!(fid.validity_rate, 1.0);
//!
//! // Store and read back.
//! let bytes = replay::store::store_to_bytes(&synth)?;
//! assert_eq!(replay::store::store_from_bytes(&bytes)?, synth);
//! # Ok::<(), replay::Error>(())
//! ```
//!
//! Modules: [`model`] (the [`CallGraph`] types), [`alibaba`] (v2021/v2022 call graphs
//! and metric tables), [`otlp`], [`jaeger`], [`rebuild`] (graph reconstruction rules),
//! [`store`], [`export`] (Alibaba v2022 CSV, OTLP JSON), [`generate`] (Luo, recursive,
//! text), [`fidelity`] (the seed paper's §5.2 metrics), [`sim`] (scenario inference,
//! replay into the `sim-core` simulator, simulated spans as call graphs), [`error`].

#![warn(missing_docs)]

pub mod alibaba;
pub mod error;
pub mod export;
pub mod fidelity;
pub mod generate;
pub mod jaeger;
pub mod model;
pub mod otlp;
pub mod rebuild;
pub mod sim;
pub mod store;
mod util;

use std::path::Path;

pub use error::{DropReason, Error, QualityReport, ReadOptions, Result};
pub use model::{CallGraph, CallType, RpcId, Span, SpanKind, Status, Sym, SymbolTable, TraceSet};
pub use sim::{
    InferOptions, ReplayError, ReplayOptions, ReplayStats, infer_scenario, replay_into,
    replay_scenario, sim_spans_to_traceset,
};
pub use util::open_maybe_gz;

/// An input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Alibaba v2021 `MSCallGraph` CSV (same reader as v2022; columns by header).
    AlibabaV2021,
    /// Alibaba v2022 `CallGraph` CSV.
    AlibabaV2022,
    /// OTLP JSON.
    Otlp,
    /// Jaeger JSON.
    Jaeger,
    /// This crate's binary store.
    Store,
}

impl Format {
    /// Parses `alibaba-v2021`, `alibaba-v2022`, `otlp`, `jaeger`, `store`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "alibaba-v2021" | "v2021" => Some(Format::AlibabaV2021),
            "alibaba-v2022" | "v2022" | "alibaba" => Some(Format::AlibabaV2022),
            "otlp" => Some(Format::Otlp),
            "jaeger" => Some(Format::Jaeger),
            "store" => Some(Format::Store),
            _ => None,
        }
    }

    /// Guesses from the file: the store magic, JSON with `resourceSpans` (OTLP) or
    /// other JSON (Jaeger), else Alibaba CSV.
    pub fn detect(path: &Path) -> Result<Format> {
        let mut r = open_maybe_gz(path)?;
        let mut head = vec![0u8; 4096];
        let mut n = 0;
        while n < head.len() {
            match std::io::Read::read(&mut r, &mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let h = &head[..n];
        if h.starts_with(b"BRTRACE") {
            return Ok(Format::Store);
        }
        let t = String::from_utf8_lossy(h);
        let t = t.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if t.contains("resourceSpans") {
                return Ok(Format::Otlp);
            }
            return Ok(Format::Jaeger);
        }
        Ok(Format::AlibabaV2022)
    }
}

/// Reads call graphs from files of one format (Alibaba: traces split across the files
/// are joined; other formats: read one by one and concatenated). Returns one quality
/// report per file (the store has no report: an empty one).
pub fn read_files<P: AsRef<Path>>(
    paths: &[P],
    format: Format,
    opts: ReadOptions,
) -> Result<(TraceSet, Vec<QualityReport>)> {
    match format {
        Format::AlibabaV2021 | Format::AlibabaV2022 => alibaba::read_callgraph_files(paths, opts),
        _ => {
            let mut set = TraceSet::new();
            let mut reps = Vec::new();
            for p in paths {
                let p = p.as_ref();
                let (s, r) = match format {
                    Format::Otlp => otlp::read_otlp_file(p, opts)?,
                    Format::Jaeger => jaeger::read_jaeger_file(p, opts)?,
                    _ => {
                        let s = store::read_store(p)?;
                        let mut r = QualityReport::new(p.display().to_string());
                        r.traces = s.graphs.len() as u64;
                        r.traces_exact = r.traces;
                        (s, r)
                    }
                };
                if paths.len() == 1 {
                    set = s;
                } else {
                    for g in &s.graphs {
                        set.push_from(&s.symbols, g);
                    }
                }
                reps.push(r);
            }
            Ok((set, reps))
        }
    }
}

/// Reads call graphs from bytes in memory (`name` is used in errors and the report).
pub fn read_bytes(
    name: &str,
    bytes: &[u8],
    format: Format,
    opts: ReadOptions,
) -> Result<(TraceSet, QualityReport)> {
    match format {
        Format::AlibabaV2021 | Format::AlibabaV2022 => {
            alibaba::read_callgraph_bytes(name, bytes, opts)
        }
        Format::Otlp => otlp::read_otlp_str(name, &String::from_utf8_lossy(bytes), opts),
        Format::Jaeger => jaeger::read_jaeger_str(name, &String::from_utf8_lossy(bytes), opts),
        Format::Store => {
            let s = store::store_from_bytes(bytes)?;
            let mut r = QualityReport::new(name);
            r.traces = s.graphs.len() as u64;
            r.traces_exact = r.traces;
            Ok((s, r))
        }
    }
}
