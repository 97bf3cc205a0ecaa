//! The `traces` command line of the blastradius binary, runnable on its own:
//! `cargo run --release -p replay --example traces_cli -- stats tests/data/alibaba/casper_2022_shuffled_sample_traces_small.csv`.
//! It compiles the very module the facade uses (`src/cli/traces.rs`).

#[path = "../../src/cli/traces.rs"]
mod traces;

use clap::Parser;

/// Trace tools of blastradius.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: traces::TracesCmd,
}

fn main() -> anyhow::Result<()> {
    traces::run(Cli::parse().cmd)
}
