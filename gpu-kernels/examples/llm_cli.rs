//! The `blastradius llm` subcommands as a standalone example (the same source file as the CLI):
//!
//! ```text
//! cargo run -p gpu-kernels --example llm_cli -- logits MODEL_DIR --ids 1,2,3 [--backend cpu|cuda]
//! cargo run -p gpu-kernels --example llm_cli -- generate MODEL_DIR --prompt "Hi" --max-new-tokens 8 --seed 1
//! ```

#[path = "../../src/cli/llm.rs"]
mod llm;

use clap::Parser;

/// `llm` subcommands.
#[derive(Debug, Parser)]
#[command(name = "llm_cli")]
struct Cli {
    #[command(subcommand)]
    cmd: llm::LlmCmd,
}

fn main() -> anyhow::Result<()> {
    llm::run(Cli::parse().cmd)
}
