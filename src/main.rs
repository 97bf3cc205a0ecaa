//! The `blastradius` command line.
//!
//! ```text
//! blastradius scenarios                          built-in fault scenarios
//! blastradius run SCENARIO --seed S --out DIR    one episode, no agent: labels, metrics, logs, spans
//! blastradius export rcaeval ...                 a dataset in RCAEval's layout
//! blastradius traces convert|stats|generate|compare|replay ...
//! blastradius sweep ... | sweep merge ...        seed sweeps (parallel, resumable, sharded)
//! blastradius plot timeline|summary ...          pictures (SVG, PNG)
//! blastradius llm logits|generate ...            inspect an LLM policy model
//! ```

use clap::{Parser, Subcommand};

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "blastradius",
    version,
    about = "Deterministic microservice failure simulator for research on SRE agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the built-in scenarios.
    Scenarios(cli::faults::ScenariosArgs),
    /// Run one episode with no agent and write its ground truth and telemetry.
    Run(cli::faults::RunArgs),
    /// Export datasets for root-cause analysis methods.
    Export(cli::faults::ExportArgs),
    /// Convert, inspect, generate, compare and replay call-graph traces.
    Traces {
        #[command(subcommand)]
        cmd: cli::traces::TracesCmd,
    },
    /// Seed sweeps: scenarios x policies x seeds.
    Sweep(cli::sweep::SweepArgs),
    /// Pictures of episodes and sweeps.
    Plot {
        #[command(subcommand)]
        cmd: cli::plot::PlotCmd,
    },
    /// Inspect an LLM policy model (logits, generation).
    Llm {
        #[command(subcommand)]
        cmd: cli::llm::LlmCmd,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenarios(args) => cli::faults::run_scenarios(&args),
        Command::Run(args) => cli::faults::run_run(&args),
        Command::Export(args) => cli::faults::run_export(&args),
        Command::Traces { cmd } => cli::traces::run(cmd),
        Command::Sweep(args) => cli::sweep::run(args),
        Command::Plot { cmd } => cli::plot::run(cmd),
        Command::Llm { cmd } => cli::llm::run(cmd),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
