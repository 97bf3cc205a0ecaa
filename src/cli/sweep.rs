//! `blastradius sweep ...`: run a seed sweep (parallel, resumable, sharded over a Slurm job
//! array or a Kubernetes Indexed Job), merge shard outputs, compare two outputs.
//!
//! ```text
//! blastradius sweep --scenario retry-storm --policy noop oracle --seeds 0..100 --out runs/a
//! blastradius sweep ... --out runs/a --shard 2/8          # or from SLURM_ARRAY_TASK_ID/COUNT
//! blastradius sweep merge runs/a --out runs/a             # runs/a/shard-*/ -> runs/a/
//! blastradius sweep compare runs/a runs/b                 # equal but for wall_s?
//! ```

use std::path::PathBuf;

use ::sweep::{
    EpisodeRunner, FakeRunner, ParamAxis, ProgressMode, SeedRange, Shard, ShardSource,
    SweepOptions, SweepSpec,
};
use anyhow::{Context, bail};

/// `blastradius sweep`: runs a sweep, or `merge` / `compare` outputs.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    /// `merge` or `compare`; without one, run a sweep.
    #[command(subcommand)]
    pub command: Option<SweepCmd>,
    /// The sweep to run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Sub-commands of `blastradius sweep`.
#[derive(Debug, clap::Subcommand)]
pub enum SweepCmd {
    /// Merge shard outputs (folders, or parents of `shard-*` folders) into one output.
    Merge {
        /// Shard output folders, or folders holding `shard-*` folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged `episodes.jsonl`, `episodes.parquet`, `summary.csv`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare two sweep outputs: episodes.jsonl ignoring `wall_s`, summary.csv byte for byte.
    /// Exits non-zero when they differ.
    Compare {
        /// First output folder.
        a: PathBuf,
        /// Second output folder.
        b: PathBuf,
    },
}

/// Progress display choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// Always the bar.
    Bar,
    /// Plain lines every 10 s.
    Plain,
    /// Nothing.
    Off,
}

/// Arguments of a sweep run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Fault scenarios (built-in names or TOML paths); several after one flag or repeated.
    #[arg(long = "scenario", num_args = 1.., required = true)]
    pub scenarios: Vec<String>,
    /// Policies (e.g. noop random oracle).
    #[arg(long = "policy", num_args = 1.., required = true)]
    pub policies: Vec<String>,
    /// Seeds: `A..B` (B excluded), `A..=B`, or one seed.
    #[arg(long, required = true)]
    pub seeds: Option<String>,
    /// Output folder (a sharded run writes into `OUT/shard-IIII-of-NNNN/`).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// Worker threads (0: one per core; at most 4096).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Run only shard I of N (`I/N`, 0-based). Without it, SLURM_ARRAY_TASK_ID/COUNT or a
    /// Kubernetes JOB_COMPLETION_INDEX (with --shard-count) are used when set.
    #[arg(long)]
    pub shard: Option<String>,
    /// Shard count for Kubernetes Indexed Jobs (= spec.completions); also
    /// BLASTRADIUS_SHARD_COUNT.
    #[arg(long)]
    pub shard_count: Option<u32>,
    /// Ignore scheduler environment variables (run the whole grid even inside a job array).
    #[arg(long)]
    pub no_auto_shard: bool,
    /// Continue the sweep in --out, skipping finished episodes.
    #[arg(long)]
    pub resume: bool,
    /// Parameter axis `key=v1,v2` (repeatable; the grid takes the cross product). Keys:
    /// max_steps, decision_interval_s, duration_s, remediation_windows, throughput_ratio.
    /// Every value is checked before anything runs; a value given twice is an error.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Do not fsync the journal after each episode (faster for tiny episodes; a crash may
    /// then lose finished episodes, which a resume reruns).
    #[arg(long)]
    pub no_fsync: bool,
    /// Use the deterministic fake runner with this much busy work per episode instead of the
    /// simulator (tests of the sweep machinery).
    #[arg(long, hide = true)]
    pub fake_work: Option<u64>,
}

/// Runs `blastradius sweep ...`.
pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        Some(SweepCmd::Merge { dirs, out }) => {
            let t = std::time::Instant::now();
            let m = ::sweep::merge(&dirs, &out)?;
            println!(
                "merged {} folders, {} episodes into {} in {:.3} s",
                m.inputs.len(),
                m.episodes,
                out.display(),
                t.elapsed().as_secs_f64()
            );
            print_summary(&m.summary);
            Ok(())
        }
        Some(SweepCmd::Compare { a, b }) => {
            let n = ::sweep::compare_dirs(&a, &b)?;
            println!(
                "same: {} episodes; episodes.jsonl equal but for wall_s, summary.csv identical",
                n
            );
            Ok(())
        }
        None => run_sweep(args.run),
    }
}

fn run_sweep(a: RunArgs) -> anyhow::Result<()> {
    let (Some(seeds), Some(out)) = (a.seeds.as_deref(), a.out.as_ref()) else {
        bail!("--seeds and --out are required");
    };
    let params = a
        .params
        .iter()
        .map(|p| ParamAxis::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = SweepSpec::new(
        a.scenarios.clone(),
        a.policies.clone(),
        SeedRange::parse(seeds)?,
        params,
    )?;
    let shard = match &a.shard {
        Some(s) => Some((Shard::parse(s)?, ShardSource::Flag)),
        None if a.no_auto_shard => None,
        None => Shard::from_env(|k| std::env::var(k).ok(), a.shard_count)
            .context("detecting the shard from the job scheduler's environment")?,
    };
    if let Some((s, src)) = shard {
        eprintln!("sweep: shard {s} (from {src:?})");
    }
    let opts = SweepOptions {
        threads: a.threads,
        shard: shard.map(|s| s.0),
        resume: a.resume,
        progress: match a.progress {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Bar => ProgressMode::Bar,
            ProgressArg::Plain => ProgressMode::Plain,
            ProgressArg::Off => ProgressMode::Off,
        },
        durable: !a.no_fsync,
    };
    let runner: Box<dyn EpisodeRunner> = match a.fake_work {
        Some(work) => Box::new(FakeRunner {
            work,
            ..Default::default()
        }),
        None => Box::new(::sweep::SimRunner::new()),
    };
    let o = ::sweep::run_sweep(&spec, out, &opts, runner.as_ref())?;
    let eps = if o.run_wall_s > 0.0 {
        o.ran as f64 / o.run_wall_s
    } else {
        0.0
    };
    println!(
        "sweep: {} episodes ({} run, {} resumed) on {} threads in {:.3} s: {:.2} episodes/s; wrote {}/{{episodes.jsonl,episodes.parquet,summary.csv}} (total {:.3} s)",
        o.total,
        o.ran,
        o.skipped,
        o.threads,
        o.run_wall_s,
        eps,
        o.dir.display(),
        o.total_wall_s
    );
    print_summary(&o.summary);
    Ok(())
}

/// A mean and its interval for the summary table: `mean [lo, hi]`, the mean alone where there
/// is no interval (fewer than 2 values), `-` where there is no value.
fn fmt_ci(c: &Option<::sweep::MeanCi>) -> String {
    match c {
        Some(c) => match c.interval() {
            Some((lo, hi)) => format!("{:>9.3} [{lo:.3}, {hi:.3}]", c.mean),
            None => format!("{:>9.3} [no CI, n={}]", c.mean, c.n),
        },
        None => format!("{:>9}", "-"),
    }
}

fn print_summary(summary: &[::sweep::SummaryRow]) {
    println!(
        "{:<32} {:<10} {:>3} {:>5}  {:<32} {:<28}",
        "scenario", "policy", "ovr", "n", "return [95% CI]", "recovered [95% CI]"
    );
    for s in summary {
        println!(
            "{:<32} {:<10} {:>3} {:>5}  {:<32} {:<28}",
            s.scenario,
            s.policy,
            s.override_index,
            s.episodes,
            fmt_ci(&s.ret),
            fmt_ci(&s.recovery)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    enum Top {
        Sweep(SweepArgs),
    }

    /// Runs `blastradius sweep ARGS...`; the error as main.rs prints it (`{:#}`).
    fn sweep_cli(args: &[&str]) -> Result<(), String> {
        let Top::Sweep(a) = Top::try_parse_from(
            ["blastradius", "sweep", "--progress", "off", "--no-fsync"]
                .iter()
                .chain(args),
        )
        .map_err(|e| e.to_string())?;
        run(a).map_err(|e| format!("{e:#}"))
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("br-sweep-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn huge_grid_is_refused_and_writes_nothing() {
        let out = tmp("huge");
        let o = out.to_str().unwrap();
        let e = sweep_cli(&[
            "--scenario",
            "a",
            "--policy",
            "p",
            "--seeds",
            "0..18446744073709551615",
            "--out",
            o,
            "--fake-work",
            "0",
        ])
        .unwrap_err();
        assert!(e.contains("--seeds") && e.contains("100000000"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn bad_params_and_threads_are_refused_before_writing() {
        let out = tmp("param");
        let o = out.to_str().unwrap();
        for extra in [
            ["--param", "throughput_ratio=nan"],
            ["--param", "foo=1"],
            ["--param", "max_steps=5,5"],
            ["--threads", "5000"],
        ] {
            let mut args = vec![
                "--scenario",
                "retry-storm",
                "--policy",
                "noop",
                "--seeds",
                "0..2",
                "--out",
                o,
            ];
            args.extend(extra);
            let e = sweep_cli(&args).unwrap_err();
            let flag = extra[0];
            assert!(e.contains(flag), "{extra:?}: {e}");
            assert!(!out.exists(), "{extra:?}: nothing may be written");
        }
    }

    #[test]
    fn io_error_cause_is_printed_once() {
        let dir = tmp("io");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("afile");
        std::fs::write(&file, "").unwrap();
        let out = file.join("x");
        let e = sweep_cli(&[
            "--scenario",
            "a",
            "--policy",
            "p",
            "--seeds",
            "0..2",
            "--out",
            out.to_str().unwrap(),
            "--fake-work",
            "0",
        ])
        .unwrap_err();
        // The OS's message, e.g. "Not a directory (os error 20)": once, not twice.
        let os = std::fs::create_dir_all(&out).unwrap_err().to_string();
        assert_eq!(e.matches(&os).count(), 1, "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn summary_table_shows_no_interval_for_one_value() {
        let one = ::sweep::bootstrap_mean_ci(&[2.0], "x");
        let s = fmt_ci(&one);
        assert!(s.contains("2.000") && s.contains("no CI, n=1"), "{s}");
        assert!(!s.contains("NaN"));
        let two = fmt_ci(&::sweep::wilson_ci(0, 3));
        assert!(two.contains("[0.000, 0.561]"), "{two}");
        assert_eq!(fmt_ci(&None).trim(), "-");
    }
}
