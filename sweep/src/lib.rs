//! Seed sweeps for blastradius: grids of episodes (scenarios x policies x seeds x parameter
//! overrides) run in parallel, resumable after a crash, sharded over the tasks of a Slurm job
//! array or a Kubernetes Indexed Job, and merged back; results as JSON lines, Parquet and a
//! summary CSV with bootstrap confidence intervals; pictures of episodes and sweeps.
//!
//! The engine is generic over an [`EpisodeRunner`], so it can be driven by the real
//! simulator or by the deterministic [`FakeRunner`]:
//!
//! ```
//! use sweep::{FakeRunner, ProgressMode, SeedRange, SweepOptions, SweepSpec, run_sweep};
//!
//! let spec = SweepSpec::new(
//!     vec!["retry-storm".into()],
//!     vec!["noop".into(), "oracle".into()],
//!     SeedRange::parse("0..8")?,
//!     vec![],
//! )?;
//! let dir = std::env::temp_dir().join(format!("sweep-doc-{}", std::process::id()));
//! let _ = std::fs::remove_dir_all(&dir);
//! let opts = SweepOptions { threads: 2, progress: ProgressMode::Off, ..Default::default() };
//! let out = run_sweep(&spec, &dir, &opts, &FakeRunner::default())?;
//! assert_eq!(out.total, 16);
//! assert!(dir.join("episodes.jsonl").exists() && dir.join("summary.csv").exists());
//!
//! // Sharded over 2 tasks, then merged: the same output (but for the wall_s column).
//! let sharded = dir.join("sharded");
//! for i in 0..2 {
//!     let o = SweepOptions { shard: Some(sweep::Shard::new(i, 2)?), ..opts.clone() };
//!     run_sweep(&spec, &sharded, &o, &FakeRunner::default())?;
//! }
//! sweep::merge(&[sharded.clone()], &sharded)?;
//! assert_eq!(sweep::compare_dirs(&dir, &sharded)?, 16);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Output folder layout: `sweep.json` (the spec and shard), `journal.jsonl` (finished
//! episodes, appended and fsynced one line at a time: what `--resume` reads), and, once every
//! episode has finished, `episodes.jsonl`, `episodes.parquet` and `summary.csv`, each written
//! to a temp file and renamed into place. A sharded run writes into `OUT/shard-IIII-of-NNNN/`.

#![warn(missing_docs)]

mod engine;
mod error;
mod grid;
pub mod journal;
pub mod output;
pub mod plot;
mod progress;
mod row;
mod runner;
mod shard;
mod sim;
mod stats;

pub use engine::{
    JOURNAL, MANIFEST, MAX_THREADS, Manifest, MergeOutcome, SweepOptions, SweepOutcome,
    compare_dirs, merge, output_dir, run_sweep,
};
pub use error::{Result, SweepError};
pub use grid::{EpisodeJob, EpisodeKey, MAX_EPISODES, ParamAxis, SeedRange, SweepSpec};
pub use output::{SummaryRow, summarize};
pub use progress::ProgressMode;
pub use row::EpisodeRow;
pub use runner::{EpisodeRunner, FakeRunner};
pub use shard::{Shard, ShardSource};
pub use sim::{MAX_PARAM_SECONDS, SIM_PARAMS, SimRunner, apply_overrides};
pub use stats::{BOOTSTRAP_RESAMPLES, MeanCi, bootstrap_mean_ci, wilson_ci};
