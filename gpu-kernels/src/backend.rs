//! The backend trait shared by the CPU reference and the CUDA backend.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::sampling::Sampling;

/// Settings of one batched generation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerateConfig {
    /// Maximum number of new tokens per sequence.
    pub max_new_tokens: usize,
    /// Greedy or seeded top-p sampling.
    pub sampling: Sampling,
    /// The seed. Sequence `i` of a batch draws from the stream `(seed, stream_offset + i)`, so the
    /// result of a sequence does not depend on how the batch is chunked or which other sequences
    /// are in it.
    pub seed: u64,
    /// Added to the index of each sequence to name its random stream (see [`Self::seed`]).
    pub stream_offset: u64,
    /// Generation of a sequence stops after it produces one of these; the stop token is not
    /// included in the output.
    pub stop_tokens: Vec<u32>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            max_new_tokens: 32,
            sampling: Sampling::Greedy,
            seed: 0,
            stream_offset: 0,
            stop_tokens: Vec::new(),
        }
    }
}

/// A transformer forward-pass backend.
///
/// Every method takes token ids; positions start at 0 at the first token of the prefix.
pub trait Backend {
    /// A short name (`"cpu"`, `"cuda"`).
    fn name(&self) -> &'static str;

    /// The model's configuration.
    fn config(&self) -> &ModelConfig;

    /// The logits (length `vocab_size`) of the last position after running `ids` from an empty
    /// cache.
    fn logits(&mut self, ids: &[u32]) -> Result<Vec<f32>>;

    /// The last-position logits of each `prefix ++ suffixes[i]`, running the shared prefix once.
    fn batch_logits(&mut self, prefix: &[u32], suffixes: &[Vec<u32>]) -> Result<Vec<Vec<f32>>>;

    /// Generates up to `cfg.max_new_tokens` tokens after each `prefix ++ suffixes[i]`.
    ///
    /// The prefix is prefilled once and its KV cache shared by the whole batch; the suffixes are
    /// packed as a ragged batch. Returns the new tokens of each sequence (stop token excluded).
    fn generate_batch(
        &mut self,
        prefix: &[u32],
        suffixes: &[Vec<u32>],
        cfg: &GenerateConfig,
    ) -> Result<Vec<Vec<u32>>>;
}

/// Checks token ids against the vocabulary and that each sequence is non-empty.
pub(crate) fn check_batch(cfg: &ModelConfig, prefix: &[u32], suffixes: &[Vec<u32>]) -> Result<()> {
    let v = cfg.vocab_size;
    let check = |ids: &[u32], what: &str| -> Result<()> {
        if let Some((j, &t)) = ids.iter().enumerate().find(|&(_, &t)| t as usize >= v) {
            return Err(Error::input(format!(
                "{what}: token {j} is {t}, outside the vocabulary of {v}"
            )));
        }
        Ok(())
    };
    check(prefix, "prefix")?;
    for (i, s) in suffixes.iter().enumerate() {
        if s.is_empty() {
            return Err(Error::input(format!("suffix {i} is empty")));
        }
        check(s, &format!("suffix {i}"))?;
    }
    Ok(())
}
