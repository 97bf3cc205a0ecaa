//! The `blastradius` fault subcommands, standalone (the facade binary wires the same module):
//! `cargo run -p sim-faults --example faults_cli -- scenarios`,
//! `... -- run retry-storm --seed 1 --out /tmp/rs`,
//! `... -- export rcaeval --system online-boutique --faults cpu,delay --runs 1 --seed 1 --out /tmp/re --pre 60 --post 60`.

#[path = "../../src/cli/faults.rs"]
mod faults;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "blastradius-faults")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the built-in scenarios.
    Scenarios(faults::ScenariosArgs),
    /// Run one episode with no agent.
    Run(faults::RunArgs),
    /// Export datasets.
    Export(faults::ExportArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Scenarios(a) => faults::run_scenarios(&a),
        Cmd::Run(a) => faults::run_run(&a),
        Cmd::Export(a) => faults::run_export(&a),
    }
}
