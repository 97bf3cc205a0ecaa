//! `blastradius scenarios`, `blastradius run` and `blastradius export rcaeval` (owned by sim-faults).
//!
//! The lead wires these into `src/main.rs`: `Scenarios(ScenariosArgs)`, `Run(RunArgs)` and
//! `Export(ExportArgs)` subcommands, each with a `run_*` function returning `anyhow::Result<()>`.
//! Bad arguments or scenario files give a message and an error (a non-zero exit), never a panic.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use sim_faults::export::{RcaEvalOptions, export_rcaeval, write_episode};
use sim_faults::{Episode, FaultScenario, builtin_names, suite_names};
use std::path::PathBuf;

/// `blastradius scenarios`: list the built-in fault scenarios.
#[derive(Args, Debug, Clone)]
pub struct ScenariosArgs {
    /// Print the description of each scenario too.
    #[arg(long)]
    pub long: bool,
}

/// `blastradius run SCENARIO --seed S --out DIR`: run one episode with no agent.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// A built-in scenario name (see `blastradius scenarios`) or a scenario TOML file.
    pub scenario: String,
    /// Episode seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (labels.json, metrics.csv, pod_metrics.csv, logs.jsonl, spans.otlp.json).
    #[arg(long)]
    pub out: PathBuf,
}

/// `blastradius export ...`: datasets for other tools.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// What to export.
    #[command(subcommand)]
    pub what: ExportKind,
}

/// Export formats.
#[derive(Subcommand, Debug, Clone)]
pub enum ExportKind {
    /// A suite of cases in RCAEval's layout (`<service>_<fault>/<run>/`).
    Rcaeval(RcaEvalArgs),
}

/// `blastradius export rcaeval --system online-boutique --faults cpu,mem,disk,delay,loss --runs N --seed S --out DIR`.
#[derive(Args, Debug, Clone)]
pub struct RcaEvalArgs {
    /// A built-in topology.
    #[arg(long, default_value = "online-boutique")]
    pub system: String,
    /// RCAEval fault names, comma-separated: cpu, mem, disk, delay, loss.
    #[arg(long, value_delimiter = ',', default_value = "cpu,mem,disk,delay,loss")]
    pub faults: Vec<String>,
    /// Runs per fault.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Seconds of data before the injection (RCAEval: 720).
    #[arg(long, default_value_t = 720)]
    pub pre: u64,
    /// Seconds of data after the injection (RCAEval: 720).
    #[arg(long, default_value_t = 720)]
    pub post: u64,
}

/// Lists the built-in scenarios and suites.
pub fn run_scenarios(args: &ScenariosArgs) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut lines = Vec::new();
    for name in builtin_names() {
        if args.long {
            match FaultScenario::builtin(name) {
                Ok(sc) => lines.push(format!("{name}\t{}", sc.description)),
                Err(e) => lines.push(format!("{name}\t(unavailable: {e})")),
            }
        } else {
            lines.push(name.to_string());
        }
    }
    for s in suite_names() {
        lines.push(format!(
            "{s}\t(suite: sim_faults::suite(\"{s}\", system, seed))"
        ));
    }
    for l in lines {
        if writeln!(out, "{l}").is_err() {
            break; // the reader went away (e.g. `| head`): not an error
        }
    }
    Ok(())
}

/// Runs one episode and its counterfactual, and writes the outputs.
pub fn run_run(args: &RunArgs) -> Result<()> {
    let sc = FaultScenario::load(&args.scenario)
        .with_context(|| format!("cannot load scenario {:?}", args.scenario))?;
    let mut ep = Episode::new(&sc, args.seed).context("cannot build the episode")?;
    let mut cf = Episode::without_faults(&sc, args.seed)
        .context("cannot build the counterfactual episode")?;
    ep.run_to_end();
    cf.run_to_end();
    write_episode(&ep, &cf, &args.out)
        .with_context(|| format!("cannot write to {}", args.out.display()))?;
    let gt = ep.ground_truth(&cf);
    println!(
        "{}: seed {}, {} fault(s), root causes {:?}, blast radius {:?}; wrote {}",
        sc.name,
        args.seed,
        gt.faults.len(),
        gt.root_cause_services,
        gt.blast_radius,
        args.out.display()
    );
    Ok(())
}

/// Runs an export.
pub fn run_export(args: &ExportArgs) -> Result<()> {
    match &args.what {
        ExportKind::Rcaeval(a) => {
            if a.runs == 0 {
                bail!("--runs must be at least 1");
            }
            let mut o = RcaEvalOptions::new(&a.system, &[], a.runs, a.seed, &a.out);
            o.faults = a
                .faults
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            o.pre_s = a.pre;
            o.post_s = a.post;
            let cases = export_rcaeval(&o).context("RCAEval export failed")?;
            for c in &cases {
                println!("{}", c.dir.display());
            }
            println!("{} case(s) written to {}", cases.len(), a.out.display());
            Ok(())
        }
    }
}
