//! Transformer forward pass for LLM policies: an f32 CPU reference and a CUDA backend.
//!
//! Decoder-only models of the Qwen3 family (and Qwen2 / Llama variants) are loaded from a Hugging
//! Face model directory (`config.json`, `model.safetensors` or a sharded index, `tokenizer.json`).
//! The workload it is built for: thousands of prompts that share one system prompt and differ in a
//! short observation, each generating a few tokens. The shared prefix is prefilled once and its KV
//! cache reused by the whole batch; the suffixes are packed as a ragged batch.
//!
//! The crate knows nothing of simulation.
//!
//! # Example
//!
//! ```
//! use gpu_kernels::{Arch, Backend, BackendKind, GenerateConfig, ModelConfig, Sampling};
//! use gpu_kernels::weights::Dtype;
//!
//! # fn main() -> Result<(), gpu_kernels::Error> {
//! // A tiny random model written to a temporary directory (tests do the same).
//! let dir = std::env::temp_dir().join(format!("gpu-kernels-doc-{}", std::process::id()));
//! gpu_kernels::model::write_random_model(&dir, &ModelConfig::tiny(Arch::Qwen3), Dtype::BF16, 1, 7)?;
//!
//! let mut backend = gpu_kernels::load_backend(&dir, &BackendKind::Cpu)?;
//! let logits = backend.logits(&[1, 2, 3])?;
//! assert_eq!(logits.len(), 97);
//!
//! // Three prompts sharing the prefix [5, 6, 7], seeded top-p sampling.
//! let cfg = GenerateConfig {
//!     max_new_tokens: 4,
//!     sampling: Sampling::TopP { temperature: 0.8, top_p: 0.95 },
//!     seed: 42,
//!     ..GenerateConfig::default()
//! };
//! let out = backend.generate_batch(&[5, 6, 7], &[vec![1], vec![2, 3], vec![4]], &cfg)?;
//! assert_eq!(out.len(), 3);
//! assert!(out.iter().all(|o| o.len() == 4));
//! // Same seed, same tokens.
//! assert_eq!(out, backend.generate_batch(&[5, 6, 7], &[vec![1], vec![2, 3], vec![4]], &cfg)?);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! With a real model directory and its `tokenizer.json`, [`Llm`] does the whole round trip:
//! text prompts sharing a prefix in, completions out (see [`Llm::generate_text`]).

#![warn(missing_docs)]

pub mod backend;
pub mod config;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod error;
pub mod kernels;
pub mod model;
pub mod sampling;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

pub use backend::{Backend, GenerateConfig};
pub use config::{Arch, ModelConfig, RopeStyle};
pub use cpu::CpuBackend;
pub use error::{Error, Result};
pub use sampling::Sampling;
pub use tokenizer::Tokenizer;

/// Storage type of weights, KV cache and GEMM inputs on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GpuDtype {
    /// bfloat16 storage, f32 accumulation (the fast path).
    Bf16,
    /// f32 everywhere (for checking against the CPU reference).
    F32,
}

/// Options of the CUDA backend. They exist whether or not the `cuda` feature is compiled in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CudaOptions {
    /// CUDA device ordinal.
    pub device: usize,
    /// Weight / KV storage type.
    pub dtype: GpuDtype,
    /// Most tokens in one forward pass (packed prefill is cut into pieces of this size).
    pub max_batch_tokens: usize,
    /// Most sequences whose logits one forward pass produces (`rows * vocab * 4` bytes of logits).
    pub max_logit_rows: usize,
    /// KV cache budget of one chunk of sequences, in bytes; `None`: half the free memory after
    /// loading the weights.
    pub kv_budget_bytes: Option<usize>,
    /// Cascade attention for the shared prefix: the prefix part of attention runs as batched
    /// cuBLAS GEMMs over all packed tokens (reading the prefix KV once per pass instead of once per
    /// token), merged with the own part by log-sum-exp. Needs `heads * max_batch_tokens * prefix`
    /// f32 scores of scratch. Off by default until verified on a GPU (see the crate README).
    pub cascade_prefix: bool,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            device: 0,
            dtype: GpuDtype::Bf16,
            max_batch_tokens: 8192,
            max_logit_rows: 1024,
            kv_budget_bytes: None,
            cascade_prefix: false,
        }
    }
}

/// Which backend to run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum BackendKind {
    /// The f32 CPU reference.
    Cpu,
    /// The CUDA backend (requires the `cuda` feature, a driver, NVRTC and cuBLAS at run time).
    Cuda(CudaOptions),
}

/// Loads a model directory into the chosen backend.
///
/// Without the `cuda` feature, [`BackendKind::Cuda`] is an [`Error::CudaUnavailable`].
pub fn load_backend(dir: &Path, kind: &BackendKind) -> Result<Box<dyn Backend + Send>> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::load(dir)?)),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda(opts) => Ok(Box::new(cuda::CudaBackend::load(dir, opts.clone())?)),
        #[cfg(not(feature = "cuda"))]
        BackendKind::Cuda(_) => Err(Error::CudaUnavailable(
            "this build has no CUDA backend (enable the `cuda` feature)".into(),
        )),
    }
}

/// A loaded model with its tokenizer: the simple API for LLM policies.
///
/// ```no_run
/// use gpu_kernels::{BackendKind, GenerateConfig, Llm, Sampling};
/// # fn main() -> Result<(), gpu_kernels::Error> {
/// let mut llm = Llm::load("models/Qwen3-0.6B".as_ref(), &BackendKind::Cpu)?;
/// let (system, _) = gpu_kernels::tokenizer::chatml("You are an SRE agent.", "");
/// let users: Vec<String> = ["obs 1", "obs 2"]
///     .iter()
///     .map(|o| gpu_kernels::tokenizer::chatml("", o).1)
///     .collect();
/// let cfg = GenerateConfig {
///     max_new_tokens: 32,
///     sampling: Sampling::TopP { temperature: 0.7, top_p: 0.9 },
///     seed: 1,
///     stop_tokens: llm.stop_tokens(),
///     ..GenerateConfig::default()
/// };
/// let completions: Vec<String> = llm.generate_text(&system, &users, &cfg)?;
/// # Ok(())
/// # }
/// ```
pub struct Llm {
    backend: Box<dyn Backend + Send>,
    tokenizer: Tokenizer,
    dir: PathBuf,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("dir", &self.dir)
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Llm {
    /// Loads `dir/config.json`, the weights and `dir/tokenizer.json`.
    pub fn load(dir: &Path, kind: &BackendKind) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
        let backend = load_backend(dir, kind)?;
        Ok(Llm {
            backend,
            tokenizer,
            dir: dir.to_path_buf(),
        })
    }

    /// Builds from a loaded backend and tokenizer.
    pub fn from_parts(backend: Box<dyn Backend + Send>, tokenizer: Tokenizer) -> Self {
        Llm {
            backend,
            tokenizer,
            dir: PathBuf::new(),
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The backend, for token-level calls.
    pub fn backend(&mut self) -> &mut (dyn Backend + Send) {
        self.backend.as_mut()
    }

    /// The stop tokens: the config's `eos_token_id`s plus `<|im_end|>` and `<|endoftext|>` when
    /// the tokenizer has them; sorted, deduplicated.
    pub fn stop_tokens(&self) -> Vec<u32> {
        let mut s = self.backend.config().eos_token_ids.clone();
        for t in ["<|im_end|>", "<|endoftext|>"] {
            if let Some(id) = self.tokenizer.token_id(t) {
                s.push(id);
            }
        }
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Generates a completion for each `prefix + suffixes[i]`.
    ///
    /// The prefix and each suffix are tokenised separately (split them on a token boundary, such
    /// as a newline or a special token: see [`tokenizer::chatml`]); the prefix is prefilled once.
    /// The completions are decoded with special tokens skipped.
    pub fn generate_text(
        &mut self,
        prefix: &str,
        suffixes: &[String],
        cfg: &GenerateConfig,
    ) -> Result<Vec<String>> {
        let p = self.tokenizer.encode(prefix)?;
        let s: Vec<Vec<u32>> = suffixes
            .iter()
            .map(|x| self.tokenizer.encode(x))
            .collect::<Result<_>>()?;
        let out = self.backend.generate_batch(&p, &s, cfg)?;
        out.iter()
            .map(|ids| self.tokenizer.decode(ids, true))
            .collect()
    }
}
