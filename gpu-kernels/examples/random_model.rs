//! Writes a seeded random model directory (config.json + safetensors), for smoke tests, the
//! numpy cross-check and benchmarks:
//!
//! ```text
//! cargo run -p gpu-kernels --example random_model -- DIR [--arch qwen3|qwen2|llama] [--size tiny|qwen3-0.6b]
//!     [--dtype f32|bf16|f16] [--shards N] [--seed S] [--untied]
//! ```

use clap::Parser;
use gpu_kernels::weights::Dtype;
use gpu_kernels::{Arch, ModelConfig};

/// Arguments.
#[derive(Debug, Parser)]
struct Args {
    /// Output directory.
    dir: std::path::PathBuf,
    /// Model family (tiny size only).
    #[arg(long, default_value = "qwen3")]
    arch: String,
    /// `tiny` or `qwen3-0.6b`.
    #[arg(long, default_value = "tiny")]
    size: String,
    /// File dtype: f32, bf16, f16.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Number of shards (> 1 writes an index).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Seed of the weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write a separate lm_head.weight.
    #[arg(long)]
    untied: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let arch = match a.arch.as_str() {
        "qwen3" => Arch::Qwen3,
        "qwen2" => Arch::Qwen2,
        "llama" => Arch::Llama,
        o => anyhow::bail!("unknown arch {o}"),
    };
    let mut cfg = match a.size.as_str() {
        "tiny" => ModelConfig::tiny(arch),
        "qwen3-0.6b" => ModelConfig::qwen3_0_6b(),
        o => anyhow::bail!("unknown size {o}"),
    };
    if a.untied {
        cfg.tie_word_embeddings = Some(false);
    }
    let dtype = match a.dtype.as_str() {
        "f32" => Dtype::F32,
        "bf16" => Dtype::BF16,
        "f16" => Dtype::F16,
        o => anyhow::bail!("unknown dtype {o}"),
    };
    gpu_kernels::model::write_random_model(&a.dir, &cfg, dtype, a.shards, a.seed)?;
    println!("{}", a.dir.display());
    Ok(())
}
