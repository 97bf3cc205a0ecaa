//! `blastradius scenarios`, `blastradius run` and `blastradius export rcaeval`: the command-line
//! face of `sim-faults`.

use anyhow::{Context, bail};
use sim_faults::export::{RcaEvalOptions, export_rcaeval, write_episode};
use sim_faults::{Episode, FaultScenario, builtin_names};
use std::path::PathBuf;

/// `blastradius run SCENARIO --seed S --out DIR`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A built-in scenario name (see `blastradius scenarios`) or a scenario TOML file.
    pub scenario: String,
    /// Episode seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory: labels.json, metrics.csv, pod_metrics.csv, logs.jsonl, spans.otlp.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// `blastradius export ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ExportCmd {
    /// A suite of cases in RCAEval's layout (`<service>_<fault>/<run>/`, RE1 data.csv, RE2 files).
    Rcaeval {
        /// A built-in topology: online-boutique, train-ticket, sock-shop, simple-micro, ...
        #[arg(long)]
        system: String,
        /// RCAEval fault names, comma separated: cpu, mem, disk, delay, loss.
        #[arg(long, value_delimiter = ',', default_value = "cpu,mem,disk,delay,loss")]
        faults: Vec<String>,
        /// Runs per fault.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Seed; each case derives its own.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds kept before and after the injection (RCAEval uses 720).
        #[arg(long, default_value_t = 720)]
        window: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Lists the built-in scenarios with their descriptions.
pub fn scenarios() -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for name in builtin_names() {
        let sc = FaultScenario::builtin(name).with_context(|| format!("built-in scenario {name}"))?;
        let first = sc.description.lines().next().unwrap_or("");
        if writeln!(out, "{name:44} {first}").is_err() {
            break; // the reader went away (e.g. `| head`): not an error
        }
    }
    Ok(())
}

/// Runs one episode with no agent and writes its outputs.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let sc = FaultScenario::load(&args.scenario).with_context(|| format!("loading scenario {}", args.scenario))?;
    let mut ep = Episode::new(&sc, args.seed)?;
    let mut healthy = Episode::without_faults(&sc, args.seed)?;
    ep.run_to_end();
    healthy.run_to_end();
    write_episode(&ep, &healthy, &args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Runs an export subcommand.
pub fn export(cmd: ExportCmd) -> anyhow::Result<()> {
    match cmd {
        ExportCmd::Rcaeval { system, faults, runs, seed, window, out } => {
            if faults.is_empty() {
                bail!("--faults needs at least one of cpu, mem, disk, delay, loss");
            }
            let names: Vec<&str> = faults.iter().map(|s| s.as_str()).collect();
            let mut opts = RcaEvalOptions::new(&system, &names, runs, seed, &out);
            opts.pre_s = window;
            opts.post_s = window;
            let cases = export_rcaeval(&opts)?;
            for c in &cases {
                println!("{}", c.dir.display());
            }
            println!("{} cases in {}", cases.len(), out.display());
            Ok(())
        }
    }
}
