//! `blastradius llm ...`: inspect a transformer model with the `gpu-kernels` backends.
//!
//! - `blastradius llm logits MODEL_DIR --ids 1,2,3 [--backend cpu|cuda] [--dtype bf16|f32]` prints,
//!   as its last line, one JSON object `{"backend", "n_ids", "argmax", "logits"}` (the last
//!   position's logits, f32).
//! - `blastradius llm generate MODEL_DIR --prompt TEXT --max-new-tokens N --seed S` prints the
//!   completion (`--temperature 0` is greedy; `--chat` wraps the prompt in the ChatML template).

use std::path::PathBuf;

use anyhow::Context;
use gpu_kernels::{BackendKind, CudaOptions, GenerateConfig, GpuDtype, Llm, Sampling};

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The f32 CPU reference.
    Cpu,
    /// The CUDA backend (needs a build with the `cuda` feature and a GPU).
    Cuda,
}

/// Storage type of the CUDA backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeArg {
    /// bfloat16 weights and KV cache, f32 accumulation.
    Bf16,
    /// f32 everywhere.
    F32,
}

/// The `llm` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LlmCmd {
    /// Print the last position's logits of a token sequence as JSON (last line of the output).
    Logits {
        /// Hugging Face model directory (config.json, model.safetensors or an index).
        model_dir: PathBuf,
        /// Comma-separated token ids, e.g. `1,2,3`.
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
        /// Backend.
        #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
        backend: BackendArg,
        /// Storage type of the CUDA backend.
        #[arg(long, value_enum, default_value_t = DtypeArg::Bf16)]
        dtype: DtypeArg,
    },
    /// Generate a completion of a text prompt (needs tokenizer.json in the model directory).
    Generate {
        /// Hugging Face model directory (with tokenizer.json).
        model_dir: PathBuf,
        /// The prompt text.
        #[arg(long)]
        prompt: String,
        /// Maximum number of new tokens.
        #[arg(long, default_value_t = 32)]
        max_new_tokens: usize,
        /// Sampling seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Softmax temperature; 0 means greedy.
        #[arg(long, default_value_t = 0.7)]
        temperature: f32,
        /// Nucleus mass.
        #[arg(long, default_value_t = 0.9)]
        top_p: f32,
        /// Wrap the prompt in the ChatML template (Qwen), with `--system` as the system message.
        #[arg(long)]
        chat: bool,
        /// System message for `--chat`.
        #[arg(long, default_value = "You are a helpful assistant.")]
        system: String,
        /// Backend.
        #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
        backend: BackendArg,
        /// Storage type of the CUDA backend.
        #[arg(long, value_enum, default_value_t = DtypeArg::Bf16)]
        dtype: DtypeArg,
    },
}

fn backend_kind(backend: BackendArg, dtype: DtypeArg) -> BackendKind {
    match backend {
        BackendArg::Cpu => BackendKind::Cpu,
        BackendArg::Cuda => BackendKind::Cuda(CudaOptions {
            dtype: match dtype {
                DtypeArg::Bf16 => GpuDtype::Bf16,
                DtypeArg::F32 => GpuDtype::F32,
            },
            ..CudaOptions::default()
        }),
    }
}

/// Runs an `llm` subcommand.
pub fn run(cmd: LlmCmd) -> anyhow::Result<()> {
    match cmd {
        LlmCmd::Logits {
            model_dir,
            ids,
            backend,
            dtype,
        } => {
            let kind = backend_kind(backend, dtype);
            let mut b = gpu_kernels::load_backend(&model_dir, &kind)
                .with_context(|| format!("loading {}", model_dir.display()))?;
            let logits = b.logits(&ids)?;
            let argmax = gpu_kernels::sampling::argmax(&logits);
            let out = serde_json::json!({
                "backend": b.name(),
                "n_ids": ids.len(),
                "argmax": argmax,
                "logits": logits,
            });
            println!("{}", serde_json::to_string(&out)?);
        }
        LlmCmd::Generate {
            model_dir,
            prompt,
            max_new_tokens,
            seed,
            temperature,
            top_p,
            chat,
            system,
            backend,
            dtype,
        } => {
            let kind = backend_kind(backend, dtype);
            let mut llm = Llm::load(&model_dir, &kind)
                .with_context(|| format!("loading {}", model_dir.display()))?;
            let (prefix, suffix) = if chat {
                gpu_kernels::tokenizer::chatml(&system, &prompt)
            } else {
                (String::new(), prompt)
            };
            let sampling = if temperature == 0.0 {
                Sampling::Greedy
            } else {
                Sampling::TopP { temperature, top_p }
            };
            let cfg = GenerateConfig {
                max_new_tokens,
                sampling,
                seed,
                stream_offset: 0,
                stop_tokens: llm.stop_tokens(),
            };
            let out = llm.generate_text(&prefix, &[suffix], &cfg)?;
            println!("{}", out.first().map(String::as_str).unwrap_or(""));
        }
    }
    Ok(())
}
