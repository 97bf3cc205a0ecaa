//! The output files of a sweep: `episodes.jsonl`, `episodes.parquet`, `summary.csv`, written
//! atomically (temp file in the same folder, fsync, rename).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::error::{Result, SweepError};
use crate::row::EpisodeRow;
use crate::stats::{MeanCi, bootstrap_mean_ci, wilson_ci};

/// File name of the episode rows as JSON lines.
pub const EPISODES_JSONL: &str = "episodes.jsonl";
/// File name of the episode rows as Parquet.
pub const EPISODES_PARQUET: &str = "episodes.parquet";
/// File name of the per-(scenario, policy, override) summary.
pub const SUMMARY_CSV: &str = "summary.csv";

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsynced, then renamed
/// over `path` (and the folder fsynced). Readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = match dir {
        Some(d) => d.join(format!(".{name}.tmp")),
        None => Path::new(&format!(".{name}.tmp")).to_path_buf(),
    };
    {
        let mut f = File::create(&tmp).map_err(|e| SweepError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| SweepError::io(&tmp, e))?;
        f.sync_all().map_err(|e| SweepError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| SweepError::io(path, e))?;
    if let Some(d) = dir
        && let Ok(df) = File::open(d)
    {
        let _ = df.sync_all();
    }
    Ok(())
}

/// The rows as JSON lines, in the given order.
pub fn episodes_jsonl(rows: &[EpisodeRow]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&r.to_json_line());
        s.push('\n');
    }
    s
}

/// Reads an `episodes.jsonl` file.
pub fn read_episodes_jsonl(path: &Path) -> Result<Vec<EpisodeRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(line).map_err(|e| SweepError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// One line of `summary.csv`: the statistics of one (scenario, policy, override) group.
///
/// Each statistic is a mean with a 95% interval (see [`MeanCi`]): a Wilson score interval for
/// the recovery rate, a seeded percentile bootstrap for the others, and no interval (NaN
/// bounds, empty CSV fields) where fewer than 2 episodes give a value.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Scenario.
    pub scenario: String,
    /// Policy.
    pub policy: String,
    /// Override index.
    pub override_index: u32,
    /// The overrides, `k=v;k=v`.
    pub params: String,
    /// Episodes in the group.
    pub episodes: usize,
    /// Return.
    pub ret: Option<MeanCi>,
    /// Recovery rate (share of the episodes that recovered) with its Wilson score interval.
    pub recovery: Option<MeanCi>,
    /// Time to recover over the recovered episodes, seconds.
    pub ttr_s: Option<MeanCi>,
    /// p99 latency, ms.
    pub p99_ms: Option<MeanCi>,
    /// Mean steps.
    pub steps_mean: f64,
    /// Mean simulated events.
    pub events_mean: f64,
    /// Localization scores by name.
    pub localization: BTreeMap<String, Option<MeanCi>>,
}

/// Groups rows by (scenario, policy, override) and computes means with 95% intervals: a
/// Wilson score interval for the recovery rate ([`wilson_ci`]), a seeded percentile bootstrap
/// for return, time to recover, p99 latency and localization scores ([`bootstrap_mean_ci`]);
/// no interval (NaN bounds) for a statistic with fewer than 2 values. Rows need not be sorted;
/// groups come out in key order.
pub fn summarize(rows: &[EpisodeRow]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String, u32), Vec<&EpisodeRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.scenario.clone(), r.policy.clone(), r.override_index))
            .or_default()
            .push(r);
    }
    let loc_keys: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r.localization.as_ref())
        .flat_map(|m| m.keys().cloned())
        .collect();
    let mut out = Vec::new();
    for ((scenario, policy, oi), mut g) in groups {
        g.sort_by_key(|r| r.seed);
        let label = |metric: &str| format!("{scenario}\0{policy}\0{oi}\0{metric}");
        let col = |f: &dyn Fn(&EpisodeRow) -> Option<f64>| -> Vec<f64> {
            g.iter().filter_map(|r| f(r)).collect()
        };
        let n = g.len() as f64;
        let params = g[0]
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let mut localization = BTreeMap::new();
        for k in &loc_keys {
            let vals = col(&|r| r.localization.as_ref().and_then(|m| m.get(k).copied()));
            localization.insert(k.clone(), bootstrap_mean_ci(&vals, &label(k)));
        }
        out.push(SummaryRow {
            params,
            episodes: g.len(),
            ret: bootstrap_mean_ci(&col(&|r| Some(r.return_)), &label("return")),
            recovery: wilson_ci(g.iter().filter(|r| r.recovered).count(), g.len()),
            ttr_s: bootstrap_mean_ci(&col(&|r| r.time_to_recover_s), &label("ttr")),
            p99_ms: bootstrap_mean_ci(&col(&|r| Some(r.latency_p99_ms)), &label("p99")),
            steps_mean: g.iter().map(|r| r.steps as f64).sum::<f64>() / n,
            events_mean: g.iter().map(|r| r.events as f64).sum::<f64>() / n,
            localization,
            scenario,
            policy,
            override_index: oi,
        });
    }
    out
}

fn fmt_f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        String::new()
    }
}

/// `summary.csv` text: one line per group, each statistic as `<m>_mean, <m>_ci_lo,
/// <m>_ci_hi`; all three cells empty where a statistic has no values (e.g. time to recover when
/// nothing recovered), the two `ci` cells empty where it has no interval (fewer than 2 values).
pub fn summary_csv(summary: &[SummaryRow]) -> String {
    let loc_keys: BTreeSet<&String> = summary.iter().flat_map(|s| s.localization.keys()).collect();
    let mut header: Vec<String> = ["scenario", "policy", "override_index", "params", "episodes"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let metrics = ["return", "recovery_rate", "ttr_s", "p99_ms"];
    for m in metrics {
        for suffix in ["mean", "ci_lo", "ci_hi"] {
            header.push(format!("{m}_{suffix}"));
        }
    }
    header.push("steps_mean".into());
    header.push("events_mean".into());
    for k in &loc_keys {
        for suffix in ["mean", "ci_lo", "ci_hi"] {
            header.push(format!("loc_{k}_{suffix}"));
        }
    }
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(&header);
    let ci = |c: &Option<MeanCi>| match c {
        Some(c) => [fmt_f(c.mean), fmt_f(c.lo), fmt_f(c.hi)],
        None => [String::new(), String::new(), String::new()],
    };
    for s in summary {
        let mut rec = vec![
            s.scenario.clone(),
            s.policy.clone(),
            s.override_index.to_string(),
            s.params.clone(),
            s.episodes.to_string(),
        ];
        for c in [&s.ret, &s.recovery, &s.ttr_s, &s.p99_ms] {
            rec.extend(ci(c));
        }
        rec.push(fmt_f(s.steps_mean));
        rec.push(fmt_f(s.events_mean));
        for k in &loc_keys {
            rec.extend(ci(s.localization.get(*k).unwrap_or(&None)));
        }
        let _ = w.write_record(&rec);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// One Parquet column: its name, whether every row has a value, and the values.
enum Col {
    Str(String, Vec<Option<String>>),
    F64(String, Vec<Option<f64>>),
    I64(String, Vec<Option<i64>>, bool),
    I32(String, Vec<Option<i32>>, bool),
    Bool(String, Vec<Option<bool>>),
}

fn split<T: Clone>(v: &[Option<T>]) -> (Vec<T>, Vec<i16>, bool) {
    let required = v.iter().all(Option::is_some);
    let vals = v.iter().flatten().cloned().collect();
    let defs = v.iter().map(|x| i16::from(x.is_some())).collect();
    (vals, defs, required)
}

/// Encodes the rows as a Parquet file (one row group, Snappy pages) with the low-level column
/// writer. Columns: `scenario, policy, seed (uint64), override_index (uint32)`, one
/// `param_<key>` string column per overridden parameter, `steps, return`, one
/// `reward_<component>` column per reward component, `recovered, time_to_recover_s,
/// verdict_reason`, one
/// `loc_<score>` column per localization score, `latency_p50_ms, latency_p99_ms, events
/// (uint64), wall_s`. Columns that some rows lack are OPTIONAL (null there).
pub fn parquet_bytes(rows: &[EpisodeRow], path_for_errors: &Path) -> Result<Vec<u8>> {
    let perr = |e: parquet::errors::ParquetError| SweepError::Parquet {
        path: path_for_errors.to_path_buf(),
        reason: e.to_string(),
    };
    let keys = |f: &dyn Fn(&EpisodeRow) -> Vec<String>| -> BTreeSet<String> {
        rows.iter().flat_map(f).collect()
    };
    let param_keys = keys(&|r| r.params.keys().cloned().collect());
    let reward_keys = keys(&|r| r.reward_components.keys().cloned().collect());
    let loc_keys = keys(&|r| {
        r.localization
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    });
    let mut cols = vec![
        Col::Str(
            "scenario".into(),
            rows.iter().map(|r| Some(r.scenario.clone())).collect(),
        ),
        Col::Str(
            "policy".into(),
            rows.iter().map(|r| Some(r.policy.clone())).collect(),
        ),
        Col::I64(
            "seed".into(),
            rows.iter().map(|r| Some(r.seed as i64)).collect(),
            true,
        ),
        Col::I32(
            "override_index".into(),
            rows.iter().map(|r| Some(r.override_index as i32)).collect(),
            true,
        ),
    ];
    for k in &param_keys {
        cols.push(Col::Str(
            format!("param_{k}"),
            rows.iter().map(|r| r.params.get(k).cloned()).collect(),
        ));
    }
    cols.push(Col::I32(
        "steps".into(),
        rows.iter().map(|r| Some(r.steps as i32)).collect(),
        true,
    ));
    cols.push(Col::F64(
        "return".into(),
        rows.iter().map(|r| Some(r.return_)).collect(),
    ));
    for k in &reward_keys {
        cols.push(Col::F64(
            format!("reward_{k}"),
            rows.iter()
                .map(|r| r.reward_components.get(k).copied())
                .collect(),
        ));
    }
    cols.push(Col::Bool(
        "recovered".into(),
        rows.iter().map(|r| Some(r.recovered)).collect(),
    ));
    cols.push(Col::F64(
        "time_to_recover_s".into(),
        rows.iter().map(|r| r.time_to_recover_s).collect(),
    ));
    cols.push(Col::Str(
        "verdict_reason".into(),
        rows.iter()
            .map(|r| Some(r.verdict_reason.clone()))
            .collect(),
    ));
    for k in &loc_keys {
        cols.push(Col::F64(
            format!("loc_{k}"),
            rows.iter()
                .map(|r| r.localization.as_ref().and_then(|m| m.get(k).copied()))
                .collect(),
        ));
    }
    cols.push(Col::F64(
        "latency_p50_ms".into(),
        rows.iter().map(|r| Some(r.latency_p50_ms)).collect(),
    ));
    cols.push(Col::F64(
        "latency_p99_ms".into(),
        rows.iter().map(|r| Some(r.latency_p99_ms)).collect(),
    ));
    cols.push(Col::I64(
        "events".into(),
        rows.iter().map(|r| Some(r.events as i64)).collect(),
        true,
    ));
    cols.push(Col::F64(
        "wall_s".into(),
        rows.iter().map(|r| Some(r.wall_s)).collect(),
    ));

    // Schema.
    let mut fields = Vec::new();
    for c in &cols {
        let (name, phys, required, logical) = match c {
            Col::Str(n, v) => (
                n,
                PhysicalType::BYTE_ARRAY,
                split(v).2,
                Some(LogicalType::String),
            ),
            Col::F64(n, v) => (n, PhysicalType::DOUBLE, split(v).2, None),
            Col::I64(n, v, unsigned) => (
                n,
                PhysicalType::INT64,
                split(v).2,
                unsigned.then(|| LogicalType::integer(64, false)),
            ),
            Col::I32(n, v, unsigned) => (
                n,
                PhysicalType::INT32,
                split(v).2,
                unsigned.then(|| LogicalType::integer(32, false)),
            ),
            Col::Bool(n, v) => (n, PhysicalType::BOOLEAN, split(v).2, None),
        };
        let t = Type::primitive_type_builder(name, phys)
            .with_repetition(if required {
                Repetition::REQUIRED
            } else {
                Repetition::OPTIONAL
            })
            .with_logical_type(logical)
            .build()
            .map_err(perr)?;
        fields.push(Arc::new(t));
    }
    let schema = Arc::new(
        Type::group_type_builder("episode")
            .with_fields(fields)
            .build()
            .map_err(perr)?,
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by("blastradius sweep".to_string())
            .build(),
    );
    let mut buf = Vec::new();
    {
        let mut writer = SerializedFileWriter::new(&mut buf, schema, props).map_err(perr)?;
        let mut rg = writer.next_row_group().map_err(perr)?;
        let mut it = cols.iter();
        while let Some(mut cw) = rg.next_column().map_err(perr)? {
            let Some(c) = it.next() else { break };
            macro_rules! put {
                ($ty:ty, $v:expr, $map:expr) => {{
                    let (vals, defs, required) = split($v);
                    let vals: Vec<_> = vals.into_iter().map($map).collect();
                    let defs = (!required).then_some(defs);
                    cw.typed::<$ty>()
                        .write_batch(&vals, defs.as_deref(), None)
                        .map_err(perr)?;
                }};
            }
            match c {
                Col::Str(_, v) => put!(ByteArrayType, v, |s: String| ByteArray::from(
                    s.into_bytes()
                )),
                Col::F64(_, v) => put!(DoubleType, v, |x: f64| x),
                Col::I64(_, v, _) => put!(Int64Type, v, |x: i64| x),
                Col::I32(_, v, _) => put!(Int32Type, v, |x: i32| x),
                Col::Bool(_, v) => put!(BoolType, v, |x: bool| x),
            }
            cw.close().map_err(perr)?;
        }
        rg.close().map_err(perr)?;
        writer.close().map_err(perr)?;
    }
    Ok(buf)
}

/// Writes the three output files for `rows` (sorted by key here) into `dir`, atomically each.
pub fn write_outputs(dir: &Path, rows: &mut [EpisodeRow]) -> Result<Vec<SummaryRow>> {
    rows.sort_by(|a, b| {
        (&a.scenario, &a.policy, a.seed, a.override_index).cmp(&(
            &b.scenario,
            &b.policy,
            b.seed,
            b.override_index,
        ))
    });
    write_atomic(&dir.join(EPISODES_JSONL), episodes_jsonl(rows).as_bytes())?;
    let pq = dir.join(EPISODES_PARQUET);
    write_atomic(&pq, &parquet_bytes(rows, &pq)?)?;
    let summary = summarize(rows);
    write_atomic(&dir.join(SUMMARY_CSV), summary_csv(&summary).as_bytes())?;
    Ok(summary)
}
