//! A stand-alone build of the `blastradius sweep` and `blastradius plot` sub-commands (the
//! same source files as the facade's CLI), to check that they compile and to run them before
//! the facade binary is wired: `cargo run -p sweep --example cli -- sweep --help`.

#[path = "../../src/cli/plot.rs"]
mod plot_cli;
#[path = "../../src/cli/sweep.rs"]
mod sweep_cli;

use clap::Parser;

/// The sweep and plot sub-commands of blastradius.
#[derive(Debug, Parser)]
#[command(name = "blastradius")]
enum Cli {
    /// Seed sweeps.
    Sweep(sweep_cli::SweepArgs),
    /// Pictures of episodes and sweeps.
    #[command(subcommand)]
    Plot(plot_cli::PlotCmd),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Sweep(a) => sweep_cli::run(a),
        Cli::Plot(c) => plot_cli::run(c),
    }
}
