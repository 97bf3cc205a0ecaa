//! A few steps of a DIME-like scenario with an LLM policy.
//!
//! ```text
//! cargo run -p sim-agents --features llm --example llm_policy -- [MODEL_DIR] [STEPS] [ENVS]
//! ```
//!
//! Without a model directory, a tiny random Qwen3 model with a word-level tokenizer is written
//! to a temporary directory (its completions are garbage: they become invalid actions).

use std::path::PathBuf;

use gpu_kernels::weights::Dtype;
use gpu_kernels::{Arch, BackendKind, ModelConfig};
use sim_agents::llm::{LlmConfig, LlmPolicy};
use sim_agents::{Policy, VecEnv};
use sim_faults::FaultScenario;

fn tiny_model(dir: &std::path::Path) {
    let mut cfg = ModelConfig::tiny(Arch::Qwen3);
    cfg.vocab_size = 256;
    cfg.max_position_embeddings = 8192;
    gpu_kernels::model::write_random_model(dir, &cfg, Dtype::BF16, 1, 7).expect("write model");
    let mut vocab = serde_json::Map::new();
    vocab.insert("<|im_end|>".into(), 0.into());
    vocab.insert("[UNK]".into(), 1.into());
    for i in 2..256 {
        vocab.insert(format!("w{i}"), i.into());
    }
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 0, "content": "<|im_end|>", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).expect("write tokenizer");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, tmp) = match args.get(1).filter(|a| *a != "-") {
        Some(d) => (PathBuf::from(d), false),
        None => {
            let d = std::env::temp_dir().join(format!("llm-policy-example-{}", std::process::id()));
            tiny_model(&d);
            (d, true)
        }
    };
    let steps: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let backend = if cfg!(feature = "cuda") && std::env::var_os("LLM_CPU").is_none() {
        BackendKind::Cuda(Default::default())
    } else {
        BackendKind::Cpu
    };
    let cfg = LlmConfig {
        sampling: gpu_kernels::Sampling::TopP {
            temperature: 0.7,
            top_p: 0.9,
        },
        seed: 1,
        ..LlmConfig::default()
    };
    let mut policy = LlmPolicy::load(&dir, &backend, cfg).expect("load model");
    let sc = FaultScenario::load("dime-retry-storm").expect("scenario");
    let mut venv = VecEnv::new(&[sc], n, 1, 0).expect("envs");
    let mut obs = venv.reset();
    println!(
        "model {} ({backend:?}), {n} envs, {steps} steps",
        dir.display()
    );
    for step in 0..steps {
        let acts = policy.act(&obs);
        let chars: usize = policy.last_prompt_chars.iter().sum();
        let comp: usize = policy.last_completions.iter().map(|c| c.len()).sum();
        let toks: usize = policy.generator.last_generated_tokens.iter().sum();
        println!(
            "step {step}: prompts {chars} chars, completions {comp} chars / {toks} tokens; first: {:?} -> {}",
            policy
                .last_completions
                .first()
                .map(|c| c.chars().take(80).collect::<String>()),
            acts[0].to_command()
        );
        obs = venv.step(acts).into_iter().map(|s| s.observation).collect();
    }
    let st = policy.stats();
    println!(
        "prompt tokens {}, generated tokens {}, {:.2} s, {:.1} tokens/s",
        st.prompt_tokens,
        st.generated_tokens,
        st.seconds,
        st.tokens_per_s()
    );
    if tmp {
        std::fs::remove_dir_all(&dir).ok();
    }
}
