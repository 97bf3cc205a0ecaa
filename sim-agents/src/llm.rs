//! The LLM policy (feature `llm`): a [`TextGenerator`] over a [`gpu_kernels::Llm`].
//!
//! [`LlmPolicy`] renders the prompts of a batch of observations, runs **one** batched
//! generation (the system prompt is the shared prefix, prefilled once; each observation is a
//! suffix) and parses the completions with the [command grammar](crate::grammar). A completion
//! that does not parse becomes [`Action::Invalid`](crate::Action::Invalid), which the
//! environment reports in the next observation's `action_errors`.
//!
//! Determinism: sequence `i` of a call draws from the random stream `(seed_k, i)` where
//! `seed_k` is derived from [`LlmConfig::seed`] and the call counter `k`, so a fresh policy with
//! the same seed produces the same completions, and a sequence's completion does not depend on
//! how many other sequences share its batch.
//!
//! ```no_run
//! use sim_agents::llm::{LlmConfig, LlmPolicy};
//! use sim_agents::{Policy, observation::Observation};
//! # fn main() -> Result<(), gpu_kernels::Error> {
//! let mut p = LlmPolicy::load("models/Qwen3-0.6B".as_ref(), &gpu_kernels::BackendKind::Cpu,
//!                             LlmConfig::default())?;
//! let actions = p.act(&[Observation::empty(), Observation::empty()]);
//! assert_eq!(actions.len(), 2);
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::time::Instant;

use gpu_kernels::sampling::mix64;
pub use gpu_kernels::{BackendKind, CudaOptions, GenerateConfig, Llm, Sampling};

use crate::observation::Observation;
use crate::policy::{TextGenerator, TextPolicy};
use crate::render::{ChatPrompt, PromptFormat, prompt};

/// Settings of the LLM policy.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlmConfig {
    /// Most new tokens per completion (default 32).
    pub max_new_tokens: usize,
    /// Greedy (default) or seeded top-p sampling.
    pub sampling: Sampling,
    /// The seed of the sampler.
    pub seed: u64,
    /// The prompt format (default DIME's).
    pub format: PromptFormat,
    /// Wrap prompts in the ChatML template (Qwen); `false`: plain `system\n\nuser` text.
    pub chatml: bool,
    /// Extra stop tokens (the model's EOS, `<|im_end|>` and `<|endoftext|>` are always added).
    pub stop_tokens: Vec<u32>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            max_new_tokens: 32,
            sampling: Sampling::Greedy,
            seed: 0,
            format: PromptFormat::Dime,
            chatml: true,
            stop_tokens: vec![],
        }
    }
}

/// Counters of the generator (summed over all calls).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlmStats {
    /// `generate` calls.
    pub calls: u64,
    /// Completions produced.
    pub completions: u64,
    /// Prompt tokens (shared prefix counted once per backend call, plus every suffix).
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub generated_tokens: u64,
    /// Wall-clock seconds spent generating (for reports only; never feeds back into behaviour).
    pub seconds: f64,
    /// Backend or tokenizer errors (each turned the affected completions into error texts).
    pub errors: u64,
}

impl LlmStats {
    /// Generated tokens per wall-clock second.
    pub fn tokens_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.generated_tokens as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A [`TextGenerator`] over a loaded model: one batched generation per `generate` call (one per
/// run of consecutive prompts sharing a system prompt, which is one call in practice).
pub struct LlmGenerator {
    llm: Llm,
    cfg: LlmConfig,
    stop_tokens: Vec<u32>,
    name: String,
    calls: u64,
    /// Counters.
    pub stats: LlmStats,
    /// The token counts of the last batch's completions.
    pub last_generated_tokens: Vec<usize>,
    /// The last backend or tokenizer error, if any.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for LlmGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmGenerator")
            .field("llm", &self.llm)
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish()
    }
}

impl LlmGenerator {
    /// Wraps a loaded model. Fails on invalid sampling parameters.
    pub fn new(llm: Llm, cfg: LlmConfig) -> gpu_kernels::Result<LlmGenerator> {
        cfg.sampling.validate()?;
        let mut stop_tokens = llm.stop_tokens();
        stop_tokens.extend(&cfg.stop_tokens);
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        Ok(LlmGenerator {
            llm,
            cfg,
            stop_tokens,
            name: "llm".into(),
            calls: 0,
            stats: LlmStats::default(),
            last_generated_tokens: vec![],
            last_error: None,
        })
    }

    /// Loads a model directory (`config.json`, weights, `tokenizer.json`) into a backend.
    pub fn load(dir: &Path, backend: &BackendKind, cfg: LlmConfig) -> gpu_kernels::Result<Self> {
        let llm = Llm::load(dir, backend)?;
        let mut g = Self::new(llm, cfg)?;
        g.name = format!(
            "llm:{}",
            dir.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        Ok(g)
    }

    /// The settings.
    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// The model.
    pub fn llm(&mut self) -> &mut Llm {
        &mut self.llm
    }

    /// Restarts the seed sequence: the next call behaves as the first call of a fresh generator
    /// with this seed.
    pub fn reseed(&mut self, seed: u64) {
        self.cfg.seed = seed;
        self.calls = 0;
    }

    /// The (prefix, suffix) text of a prompt.
    fn split(&self, p: &ChatPrompt) -> (String, String) {
        if self.cfg.chatml {
            let (prefix, _) = gpu_kernels::tokenizer::chatml(&p.system, "");
            let (_, suffix) = gpu_kernels::tokenizer::chatml("", &p.user);
            (prefix, suffix)
        } else {
            (format!("{}\n\n", p.system), p.user.clone())
        }
    }

    /// One backend call: token ids of the completions.
    fn run(
        &mut self,
        prefix: &str,
        suffixes: &[String],
        cfg: &GenerateConfig,
    ) -> gpu_kernels::Result<Vec<String>> {
        let tok = self.llm.tokenizer();
        let p = tok.encode(prefix)?;
        let s: Vec<Vec<u32>> = suffixes
            .iter()
            .map(|x| tok.encode(x))
            .collect::<gpu_kernels::Result<_>>()?;
        self.stats.prompt_tokens += p.len() as u64 + s.iter().map(|x| x.len() as u64).sum::<u64>();
        let out = self.llm.backend().generate_batch(&p, &s, cfg)?;
        let tok = self.llm.tokenizer();
        let mut texts = Vec::with_capacity(out.len());
        for ids in &out {
            self.stats.generated_tokens += ids.len() as u64;
            self.last_generated_tokens.push(ids.len());
            texts.push(tok.decode(ids, true)?);
        }
        Ok(texts)
    }
}

impl TextGenerator for LlmGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&mut self, prompts: &[ChatPrompt]) -> Vec<String> {
        let start = Instant::now();
        let seed = mix64(self.cfg.seed ^ mix64(self.calls.wrapping_add(0x11E0)));
        self.calls += 1;
        self.stats.calls += 1;
        self.last_generated_tokens.clear();
        self.last_error = None;
        let split: Vec<(String, String)> = prompts.iter().map(|p| self.split(p)).collect();
        let mut out = Vec::with_capacity(prompts.len());
        let mut i = 0;
        while i < split.len() {
            // a run of prompts sharing the system prompt: one batched call
            let mut j = i + 1;
            while j < split.len() && split[j].0 == split[i].0 {
                j += 1;
            }
            let suffixes: Vec<String> = split[i..j].iter().map(|x| x.1.clone()).collect();
            let cfg = GenerateConfig {
                max_new_tokens: self.cfg.max_new_tokens,
                sampling: self.cfg.sampling,
                seed,
                stream_offset: i as u64,
                stop_tokens: self.stop_tokens.clone(),
            };
            match self.run(&split[i].0, &suffixes, &cfg) {
                Ok(t) if t.len() == j - i => out.extend(t),
                Ok(t) => {
                    let e = format!("backend returned {} completions for {}", t.len(), j - i);
                    self.fail(&mut out, j - i, e);
                }
                Err(e) => self.fail(&mut out, j - i, e.to_string()),
            }
            i = j;
        }
        self.stats.completions += out.len() as u64;
        self.stats.seconds += start.elapsed().as_secs_f64();
        out
    }
}

impl LlmGenerator {
    fn fail(&mut self, out: &mut Vec<String>, n: usize, e: String) {
        self.stats.errors += 1;
        self.last_generated_tokens.resize(out.len() + n, 0);
        out.extend((0..n).map(|_| format!("llm error: {e}")));
        self.last_error = Some(e);
    }
}

/// The LLM policy: prompt rendering, one batched generation, the command grammar.
pub type LlmPolicy = TextPolicy<LlmGenerator>;

impl TextPolicy<LlmGenerator> {
    /// Loads a model directory into a backend ([`BackendKind::Cpu`] when there is no GPU).
    pub fn load(dir: &Path, backend: &BackendKind, cfg: LlmConfig) -> gpu_kernels::Result<Self> {
        let format = cfg.format;
        Ok(TextPolicy::new(
            LlmGenerator::load(dir, backend, cfg)?,
            format,
        ))
    }

    /// Wraps an already loaded model.
    pub fn from_llm(llm: Llm, cfg: LlmConfig) -> gpu_kernels::Result<Self> {
        let format = cfg.format;
        Ok(TextPolicy::new(LlmGenerator::new(llm, cfg)?, format))
    }

    /// `g` completions for one observation in one batched call (a GRPO group: feed them to
    /// [`group_rollout_text`](crate::grpo::group_rollout_text)). Completion `i` uses stream `i`;
    /// with greedy sampling all `g` are equal.
    pub fn group_completions(&mut self, obs: &Observation, g: usize) -> Vec<String> {
        let p = prompt(obs, self.format);
        let prompts = vec![p; g];
        self.last_prompt_chars = prompts.iter().map(ChatPrompt::char_count).collect();
        let out = self.generator.generate(&prompts);
        self.last_completions = out.clone();
        out
    }

    /// The generator's counters.
    pub fn stats(&self) -> LlmStats {
        self.generator.stats
    }
}
