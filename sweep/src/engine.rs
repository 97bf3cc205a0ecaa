//! Running, resuming, merging and comparing sweeps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SweepError};
use crate::grid::{EpisodeKey, SweepSpec};
use crate::journal::{self, Journal};
use crate::output::{self, EPISODES_JSONL, SUMMARY_CSV, SummaryRow};
use crate::progress::{Progress, ProgressMode};
use crate::row::EpisodeRow;
use crate::runner::EpisodeRunner;
use crate::shard::Shard;

/// File name of a sweep folder's manifest (the spec and the shard).
pub const MANIFEST: &str = "sweep.json";
/// File name of the journal of finished episodes.
pub const JOURNAL: &str = "journal.jsonl";

/// The most worker threads a sweep may ask for ([`SweepOptions::threads`]); more is refused
/// with [`SweepError::InvalidArg`] rather than silently capped.
pub const MAX_THREADS: usize = 4096;

/// The contents of `sweep.json`: which sweep (and which shard of it) a folder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub format: u32,
    /// The grid.
    pub spec: SweepSpec,
    /// The shard, or `None` for a whole sweep (or a merge of shards).
    pub shard: Option<Shard>,
}

impl Manifest {
    /// Reads `DIR/sweep.json`; `Ok(None)` when absent. A recorded grid of more than
    /// [`crate::MAX_EPISODES`] episodes is refused ([`SweepError::BadFile`]).
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(b) => {
                let m: Manifest = serde_json::from_slice(&b).map_err(|e| SweepError::BadFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                m.spec.check_size().map_err(|e| SweepError::BadFile {
                    path,
                    reason: e.to_string(),
                })?;
                Ok(Some(m))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SweepError::io(path, e)),
        }
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        output::write_atomic(&dir.join(MANIFEST), text.as_bytes())
    }
}

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Worker threads; 0 means one per available core (at most [`MAX_THREADS`]). More than
    /// [`MAX_THREADS`] is an error.
    pub threads: usize,
    /// Run only this shard (its output goes to `OUT/shard-IIII-of-NNNN/`); a 1-shard split
    /// is the same as none.
    pub shard: Option<Shard>,
    /// Continue a sweep already in the folder, skipping finished episodes.
    pub resume: bool,
    /// Progress reporting.
    pub progress: ProgressMode,
    /// `fdatasync` the journal after every episode (on by default; off only for tests and
    /// benchmarks of tiny episodes).
    pub durable: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            threads: 0,
            shard: None,
            resume: false,
            progress: ProgressMode::Auto,
            durable: true,
        }
    }
}

/// What a finished sweep did.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// The folder the outputs are in (`OUT`, or `OUT/shard-IIII-of-NNNN`).
    pub dir: PathBuf,
    /// Episodes of this (shard of the) sweep.
    pub total: usize,
    /// Episodes found finished in the journal and skipped.
    pub skipped: usize,
    /// Episodes run now.
    pub ran: usize,
    /// Threads used.
    pub threads: usize,
    /// Wall-clock seconds spent running episodes (excluding writing the outputs).
    pub run_wall_s: f64,
    /// Wall-clock seconds in all.
    pub total_wall_s: f64,
    /// The summary table written to `summary.csv`.
    pub summary: Vec<SummaryRow>,
}

/// The folder a sweep (or one shard of it) writes to.
pub fn output_dir(out: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) if s.count > 1 => out.join(s.dir_name()),
        _ => out.to_path_buf(),
    }
}

/// Runs the sweep `spec` (or one shard of it) with `runner`, writing into `out`
/// (see [`output_dir`]): `sweep.json`, `journal.jsonl` (one line per finished episode, fsynced),
/// and at the end `episodes.jsonl`, `episodes.parquet`, `summary.csv`.
///
/// Episodes run in parallel on `opts.threads` threads; rows are sorted by
/// (scenario, policy, seed, override index), so the outputs do not depend on the thread count
/// or the order of completion (only the `wall_s` column does). If some episodes fail, the
/// others are kept in the journal, no final file is written, and
/// [`SweepError::EpisodesFailed`] is returned; `resume` then runs only what is missing.
///
/// Before anything is written (so a refused sweep leaves no `sweep.json` behind to block a
/// corrected run), the spec is checked ([`SweepSpec::validate`], e.g. at most
/// [`crate::MAX_EPISODES`] episodes), the thread count (at most [`MAX_THREADS`]), every
/// (scenario, policy) pair ([`EpisodeRunner::check`]) and every parameter axis for every
/// scenario ([`EpisodeRunner::check_param`]).
pub fn run_sweep(
    spec: &SweepSpec,
    out: &Path,
    opts: &SweepOptions,
    runner: &dyn EpisodeRunner,
) -> Result<SweepOutcome> {
    let t0 = Instant::now();
    let shard = opts.shard.filter(|s| s.count > 1);
    let dir = output_dir(out, shard);
    spec.validate()?;
    if opts.threads > MAX_THREADS {
        return Err(SweepError::InvalidArg {
            field: "--threads",
            value: opts.threads.to_string(),
            reason: format!("at most {MAX_THREADS} (0: one per core)"),
        });
    }
    for s in &spec.scenarios {
        for p in &spec.policies {
            runner.check(s, p).map_err(|reason| SweepError::Invalid {
                scenario: s.clone(),
                policy: p.clone(),
                reason,
            })?;
        }
        for axis in &spec.params {
            runner
                .check_param(s, axis)
                .map_err(|reason| SweepError::InvalidArg {
                    field: "--param",
                    value: axis.to_string(),
                    reason,
                })?;
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| SweepError::io(&dir, e))?;
    let manifest = Manifest {
        format: 1,
        spec: spec.clone(),
        shard,
    };
    match Manifest::read(&dir)? {
        Some(m) if !opts.resume => {
            let _ = m;
            return Err(SweepError::AlreadyExists(dir));
        }
        Some(m) if m != manifest => {
            let reason = if m.spec != manifest.spec {
                "scenarios, policies, seeds or parameters differ".to_string()
            } else {
                format!("shard {:?} vs {:?}", m.shard, manifest.shard)
            };
            return Err(SweepError::SpecMismatch {
                path: dir.join(MANIFEST),
                reason,
            });
        }
        Some(_) => {}
        None => manifest.write(&dir)?,
    }
    let jpath = dir.join(JOURNAL);
    let loaded = if opts.resume {
        journal::load(&jpath)?
    } else {
        journal::Loaded::default()
    };
    // A shard builds only its own share of the grid.
    let jobs = match shard {
        Some(s) => spec.jobs_strided(u64::from(s.index), u64::from(s.count)),
        None => spec.jobs(),
    };
    debug_assert!(jobs.iter().all(|j| shard.is_none_or(|s| s.owns(j))));
    let total = jobs.len();
    let mut done: BTreeMap<EpisodeKey, EpisodeRow> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut loaded_rows = loaded.rows;
    for j in jobs {
        match loaded_rows.remove(&j.key) {
            Some(r) => {
                done.insert(j.key, r);
            }
            None => pending.push(j),
        }
    }
    if let Some((k, _)) = loaded_rows.into_iter().next() {
        return Err(SweepError::BadFile {
            path: jpath,
            reason: format!("episode {k} is not part of this sweep"),
        });
    }
    let skipped = done.len();
    let journal = Journal::open(&jpath, loaded.valid_len, opts.durable)?;
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_THREADS)
    } else {
        opts.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sweep-{i}"))
        .build()
        .map_err(|e| SweepError::InvalidArg {
            field: "--threads",
            value: threads.to_string(),
            reason: e.to_string(),
        })?;
    let label = match shard {
        Some(s) => format!("sweep shard {s}"),
        None => "sweep".to_string(),
    };
    let progress = Progress::new(opts.progress, total as u64, skipped as u64, label);
    let finished = Mutex::new(Vec::with_capacity(pending.len()));
    let failures: Mutex<Vec<(EpisodeKey, String)>> = Mutex::new(Vec::new());
    let t_run = Instant::now();
    let ran = pending.len();
    pool.install(|| {
        pending.par_iter().with_max_len(1).for_each(|job| {
            let t = Instant::now();
            let res = runner.run(job);
            let wall = t.elapsed().as_secs_f64();
            match res {
                Ok(mut row) => {
                    row.wall_s = wall;
                    if row.key() != job.key || row.params != job.params {
                        let msg = format!("runner returned row for {} instead", row.key());
                        lock(&failures).push((job.key.clone(), msg));
                    } else if let Err(e) = journal.append(&row) {
                        lock(&failures).push((job.key.clone(), e.to_string()));
                    } else {
                        lock(&finished).push(row);
                    }
                }
                Err(e) => lock(&failures).push((job.key.clone(), e)),
            }
            progress.inc();
        })
    });
    progress.finish();
    let run_wall_s = t_run.elapsed().as_secs_f64();
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    if !failures.is_empty() {
        failures.sort();
        let (k, m) = &failures[0];
        return Err(SweepError::EpisodesFailed {
            failed: failures.len(),
            total: ran,
            first: format!("{k}: {m}"),
        });
    }
    for r in finished.into_inner().unwrap_or_else(|e| e.into_inner()) {
        done.insert(r.key(), r);
    }
    let mut rows: Vec<EpisodeRow> = done.into_values().collect();
    let summary = output::write_outputs(&dir, &mut rows)?;
    Ok(SweepOutcome {
        dir,
        total,
        skipped,
        ran,
        threads,
        run_wall_s,
        total_wall_s: t0.elapsed().as_secs_f64(),
        summary,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// The shard folders read, in order.
    pub inputs: Vec<PathBuf>,
    /// Episodes written.
    pub episodes: usize,
    /// The summary written to `summary.csv`.
    pub summary: Vec<SummaryRow>,
}

/// Expands merge inputs: a folder with `sweep.json` is itself; a folder without one stands for
/// its `shard-*` sub-folders (sorted).
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in inputs {
        if d.join(MANIFEST).exists() {
            out.push(d.clone());
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| SweepError::io(d, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("shard-"))
                    && p.join(MANIFEST).exists()
            })
            .collect();
        if subs.is_empty() {
            return Err(SweepError::Merge(format!(
                "{}: neither a sweep folder (no {MANIFEST}) nor a parent of shard-* folders",
                d.display()
            )));
        }
        subs.sort();
        out.extend(subs);
    }
    Ok(out)
}

/// Merges the outputs of the shards of one sweep into `out` (`episodes.jsonl`,
/// `episodes.parquet`, `summary.csv`, `sweep.json`). Each input is a finished shard folder, or
/// a folder holding `shard-*` folders. The shards must come from the same spec, cover every
/// shard index exactly once and together hold every episode of the grid exactly once. The
/// result equals the output of the same sweep run on one machine (but for `wall_s`).
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<MergeOutcome> {
    let dirs = expand_inputs(inputs)?;
    if dirs.is_empty() {
        return Err(SweepError::Merge("no input folders".into()));
    }
    let mut spec: Option<SweepSpec> = None;
    let mut shard_seen: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut count: Option<u32> = None;
    let mut rows: BTreeMap<EpisodeKey, EpisodeRow> = BTreeMap::new();
    for d in &dirs {
        let m = Manifest::read(d)?
            .ok_or_else(|| SweepError::Merge(format!("{}: no {MANIFEST}", d.display())))?;
        match &spec {
            None => spec = Some(m.spec.clone()),
            Some(s) if *s != m.spec => {
                return Err(SweepError::Merge(format!(
                    "{} holds a different sweep than {}",
                    d.display(),
                    dirs[0].display()
                )));
            }
            Some(_) => {}
        }
        if let Some(sh) = m.shard {
            if *count.get_or_insert(sh.count) != sh.count {
                return Err(SweepError::Merge(format!(
                    "{}: shard count {} differs from {}",
                    d.display(),
                    sh.count,
                    count.unwrap_or(0)
                )));
            }
            if let Some(prev) = shard_seen.insert(sh.index, d.clone()) {
                return Err(SweepError::Merge(format!(
                    "shard {sh} given twice: {} and {}",
                    prev.display(),
                    d.display()
                )));
            }
        }
        let p = d.join(EPISODES_JSONL);
        if !p.exists() {
            return Err(SweepError::Merge(format!(
                "{}: no {EPISODES_JSONL} (shard not finished? run it again with --resume)",
                d.display()
            )));
        }
        for r in output::read_episodes_jsonl(&p)? {
            let k = r.key();
            if rows.insert(k.clone(), r).is_some() {
                return Err(SweepError::Merge(format!(
                    "episode {k} appears twice (again in {})",
                    d.display()
                )));
            }
        }
    }
    let spec = spec.unwrap_or_else(|| unreachable!("dirs is not empty"));
    if let Some(n) = count {
        let missing: Vec<String> = (0..n)
            .filter(|i| !shard_seen.contains_key(i))
            .map(|i| format!("{i}/{n}"))
            .collect();
        if !missing.is_empty() {
            return Err(SweepError::Merge(format!(
                "missing shards: {}",
                missing.join(", ")
            )));
        }
    }
    // Walk the grid one episode at a time instead of building it.
    let grid = spec.len();
    {
        let mut missing = spec
            .iter_strided(0, 1)
            .map(|j| j.key)
            .filter(|k| !rows.contains_key(k));
        if let Some(first) = missing.next() {
            let missing = 1 + missing.count();
            return Err(SweepError::Merge(format!(
                "{missing} of {grid} episodes missing, first {first}"
            )));
        }
    }
    if rows.len() as u64 != grid {
        return Err(SweepError::Merge(format!(
            "{} rows for a grid of {grid} episodes (rows from another sweep?)",
            rows.len(),
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| SweepError::io(out, e))?;
    let mut rows: Vec<EpisodeRow> = rows.into_values().collect();
    let summary = output::write_outputs(out, &mut rows)?;
    Manifest {
        format: 1,
        spec,
        shard: None,
    }
    .write(out)?;
    Ok(MergeOutcome {
        inputs: dirs,
        episodes: rows.len(),
        summary,
    })
}

/// Compares two sweep output folders: `episodes.jsonl` line by line with `wall_s` ignored
/// (everything else byte for byte) and `summary.csv` byte for byte. Returns the number of
/// episodes, or [`SweepError::Differ`] naming the first difference.
pub fn compare_dirs(a: &Path, b: &Path) -> Result<usize> {
    let ra = output::read_episodes_jsonl(&a.join(EPISODES_JSONL))?;
    let rb = output::read_episodes_jsonl(&b.join(EPISODES_JSONL))?;
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        let (jx, jy) = (x.deterministic_json(), y.deterministic_json());
        if jx != jy {
            return Err(SweepError::Differ(format!(
                "{EPISODES_JSONL} line {}:\n  {}: {jx}\n  {}: {jy}",
                i + 1,
                a.display(),
                b.display()
            )));
        }
    }
    if ra.len() != rb.len() {
        return Err(SweepError::Differ(format!(
            "{EPISODES_JSONL}: {} has {} rows, {} has {}",
            a.display(),
            ra.len(),
            b.display(),
            rb.len()
        )));
    }
    let sa =
        std::fs::read(a.join(SUMMARY_CSV)).map_err(|e| SweepError::io(a.join(SUMMARY_CSV), e))?;
    let sb =
        std::fs::read(b.join(SUMMARY_CSV)).map_err(|e| SweepError::io(b.join(SUMMARY_CSV), e))?;
    if sa != sb {
        return Err(SweepError::Differ(format!("{SUMMARY_CSV} differs")));
    }
    Ok(ra.len())
}
