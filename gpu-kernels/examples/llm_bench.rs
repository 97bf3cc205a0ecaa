//! Prefill / decode throughput of the simulator's workload: `B` prompts sharing a `P`-token system
//! prefix, each with its own `S`-token observation, generating `N` tokens; with and without prefix
//! sharing. Random weights of a chosen shape (nothing is downloaded). One JSON object per line.
//!
//! ```text
//! # CPU, tiny model (runs anywhere):
//! cargo run --release -p gpu-kernels --example llm_bench -- --backend cpu --size tiny --batches 1,8
//! # GPU, Qwen3-0.6B shape, bf16 (compare with scripts/bench_transformers.py in the same session):
//! cargo run --release -p gpu-kernels --features cuda --example llm_bench -- \
//!     --backend cuda --size qwen3-0.6b --batches 1,64,1024 --prefix-len 512 --suffix-len 64 \
//!     --new-tokens 32 --bandwidth-gbs 3350 [--cascade]
//! ```
//!
//! Fields: `prefill_s` is the time of a run with one new token (prefix + suffix prefill and one
//! sampling step), `total_s` of the run with `N` new tokens; `prefill_tok_s = B * (P + S) /
//! prefill_s` (prompt tokens per second, as if each prompt were processed in full);
//! `decode_tok_s = B * (N - 1) / (total_s - prefill_s)`; `e2e_new_tok_s = B * N / total_s`;
//! `roofline_frac`: the memory-bandwidth bound of one decode step (all weight matrices once, the
//! prefix KV once and each sequence's own KV) divided by the measured decode step time.

use std::time::Instant;

use clap::Parser;
use gpu_kernels::model::{SplitMix64, random_tensors};
use gpu_kernels::weights::{Dtype, TensorStore, write_safetensors};
use gpu_kernels::{Arch, Backend, CpuBackend, GenerateConfig, ModelConfig, Sampling};

/// Arguments.
#[derive(Debug, Parser)]
struct Args {
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// `tiny`, `small` (a 4-layer 512-wide Qwen3) or `qwen3-0.6b`.
    #[arg(long, default_value = "tiny")]
    size: String,
    /// GPU storage type: `bf16` or `f32`.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    batches: Vec<usize>,
    /// Shared prefix length (tokens).
    #[arg(long, default_value_t = 64)]
    prefix_len: usize,
    /// Per-prompt suffix length (tokens).
    #[arg(long, default_value_t = 16)]
    suffix_len: usize,
    /// New tokens per prompt.
    #[arg(long, default_value_t = 8)]
    new_tokens: usize,
    /// Memory bandwidth for the roofline, GB/s (H100 SXM: 3350; H200: 4800).
    #[arg(long, default_value_t = 3350.0)]
    bandwidth_gbs: f64,
    /// Skip the runs without prefix sharing.
    #[arg(long)]
    shared_only: bool,
    /// CUDA: cascade attention for the shared prefix (`CudaOptions::cascade_prefix`).
    #[arg(long)]
    cascade: bool,
}

fn config(size: &str) -> anyhow::Result<ModelConfig> {
    Ok(match size {
        "tiny" => ModelConfig::tiny(Arch::Qwen3),
        "small" => {
            let mut c = ModelConfig::qwen3_0_6b();
            c.num_layers = 4;
            c.hidden_size = 512;
            c.intermediate_size = 1536;
            c.num_heads = 8;
            c.num_kv_heads = 4;
            c.head_dim = 64;
            c.vocab_size = 32_000;
            c
        }
        "qwen3-0.6b" => ModelConfig::qwen3_0_6b(),
        o => anyhow::bail!("unknown size {o}"),
    })
}

fn make_backend(args: &Args, cfg: &ModelConfig) -> anyhow::Result<Box<dyn Backend>> {
    let tensors = random_tensors(cfg, false, 1234);
    let mut store = TensorStore::default();
    store.add_file("random".into(), write_safetensors(&tensors, Dtype::BF16))?;
    drop(tensors);
    match args.backend.as_str() {
        "cpu" => Ok(Box::new(CpuBackend::from_store(cfg.clone(), &store)?)),
        #[cfg(feature = "cuda")]
        "cuda" => {
            let opts = gpu_kernels::CudaOptions {
                dtype: if args.dtype == "f32" {
                    gpu_kernels::GpuDtype::F32
                } else {
                    gpu_kernels::GpuDtype::Bf16
                },
                cascade_prefix: args.cascade,
                ..Default::default()
            };
            Ok(Box::new(gpu_kernels::cuda::CudaBackend::from_store(
                cfg.clone(),
                &store,
                opts,
            )?))
        }
        o => {
            anyhow::bail!("backend {o} is not available in this build (cuda needs --features cuda)")
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = config(&args.size)?;
    let t0 = Instant::now();
    let mut backend = make_backend(&args, &cfg)?;
    eprintln!(
        "loaded {} model in {:.1}s",
        args.size,
        t0.elapsed().as_secs_f64()
    );
    let mut rng = SplitMix64(99);
    let mut ids = |n: usize| -> Vec<u32> {
        (0..n)
            .map(|_| (rng.next_u64() % cfg.vocab_size as u64) as u32)
            .collect()
    };
    let prefix = ids(args.prefix_len);
    let esize = if args.backend == "cuda" && args.dtype != "f32" {
        2
    } else {
        4
    };
    let weight_bytes = {
        let (h, i, q, kv, v) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.q_dim(),
            cfg.kv_dim(),
            cfg.vocab_size,
        );
        let per_layer = h * (q + 2 * kv) + q * h + 3 * h * i;
        (cfg.num_layers * per_layer + v * h) * esize
    };
    let kv_tok = cfg.kv_bytes_per_token(esize);
    // Warm-up (kernel compilation, cuBLAS heuristics).
    backend.generate_batch(
        &prefix,
        &[ids(args.suffix_len.max(1))],
        &GenerateConfig {
            max_new_tokens: 2,
            ..Default::default()
        },
    )?;
    for &b in &args.batches {
        let sufs: Vec<Vec<u32>> = (0..b).map(|_| ids(args.suffix_len.max(1))).collect();
        for shared in [true, false] {
            if !shared && args.shared_only {
                continue;
            }
            let (p, s): (Vec<u32>, Vec<Vec<u32>>) = if shared {
                (prefix.clone(), sufs.clone())
            } else {
                (
                    Vec::new(),
                    sufs.iter()
                        .map(|x| prefix.iter().chain(x).copied().collect())
                        .collect(),
                )
            };
            let g = |n| GenerateConfig {
                max_new_tokens: n,
                sampling: Sampling::TopP {
                    temperature: 0.8,
                    top_p: 0.95,
                },
                seed: 7,
                ..Default::default()
            };
            let t = Instant::now();
            backend.generate_batch(&p, &s, &g(1))?;
            let prefill_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = backend.generate_batch(&p, &s, &g(args.new_tokens))?;
            let total_s = t.elapsed().as_secs_f64();
            let new: usize = out.iter().map(Vec::len).sum();
            let n = args.new_tokens;
            let decode_s = (total_s - prefill_s).max(1e-9);
            let steps = n.saturating_sub(1).max(1) as f64;
            let own_avg = args.suffix_len + n / 2;
            let kv_bytes = if shared {
                (args.prefix_len + b * own_avg) * kv_tok
            } else {
                b * (args.prefix_len + own_avg) * kv_tok
            };
            let roof_step = (weight_bytes + kv_bytes) as f64 / (args.bandwidth_gbs * 1e9);
            let line = serde_json::json!({
                "backend": backend.name(),
                "size": args.size,
                "dtype": if args.backend == "cuda" { args.dtype.as_str() } else { "f32" },
                "batch": b,
                "prefix_len": args.prefix_len,
                "suffix_len": args.suffix_len,
                "new_tokens": n,
                "prefix_shared": shared,
                "cascade": args.cascade,
                "prefill_s": prefill_s,
                "total_s": total_s,
                "generated_tokens": new,
                "prefill_tok_s": (b * (args.prefix_len + args.suffix_len)) as f64 / prefill_s,
                "decode_tok_s": (b * n.saturating_sub(1)) as f64 / decode_s,
                "e2e_new_tok_s": (b * n) as f64 / total_s,
                "roofline_frac": roof_step / (decode_s / steps),
            });
            println!("{line}");
        }
    }
    Ok(())
}
