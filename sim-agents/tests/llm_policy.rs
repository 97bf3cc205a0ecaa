//! The LLM policy on the CPU backend with a tiny random Qwen3 model and a word-level tokenizer.
#![cfg(feature = "llm")]

mod common;

use std::path::{Path, PathBuf};

use gpu_kernels::weights::Dtype;
use gpu_kernels::{Arch, BackendKind, ModelConfig, Sampling};
use sim_agents::llm::{LlmConfig, LlmPolicy};
use sim_agents::render::PromptFormat;
use sim_agents::{Action, Env, Policy, VecEnv, grpo, run_episode};

const VOCAB: usize = 300;

/// A tiny random model and a WordLevel tokenizer over `<|im_end|>`, `[UNK]`, a few command
/// words and `w<i>` fillers, in a fresh temp dir.
fn tiny_model(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-agents-llm-{tag}-{}", std::process::id()));
    let mut cfg = ModelConfig::tiny(Arch::Qwen3);
    cfg.vocab_size = VOCAB;
    cfg.max_position_embeddings = 8192;
    gpu_kernels::model::write_random_model(&dir, &cfg, Dtype::BF16, 1, 11).unwrap();
    let mut vocab = serde_json::Map::new();
    vocab.insert("<|im_end|>".into(), 0.into());
    vocab.insert("[UNK]".into(), 1.into());
    let words = [
        "no_op",
        "kubectl",
        "<action>",
        "</action>",
        "delete",
        "pod",
        "node-0",
    ];
    for (k, w) in words.iter().enumerate() {
        vocab.insert((*w).into(), (k + 2).into());
    }
    for i in (2 + words.len())..VOCAB {
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
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    dir
}

fn top_p(seed: u64) -> LlmConfig {
    LlmConfig {
        max_new_tokens: 8,
        sampling: Sampling::TopP {
            temperature: 1.5,
            top_p: 1.0,
        },
        seed,
        ..LlmConfig::default()
    }
}

fn load(dir: &Path, cfg: LlmConfig) -> LlmPolicy {
    LlmPolicy::load(dir, &BackendKind::Cpu, cfg).unwrap()
}

#[test]
fn one_action_per_observation_deterministic_per_seed_invalid_reported() {
    let dir = tiny_model("batch");
    let sc = common::dime_like();
    let mut venv = VecEnv::new(std::slice::from_ref(&sc), 3, 5, 1).unwrap();
    let obs = venv.reset();

    let mut p = load(&dir, top_p(1));
    let a1 = p.act(&obs);
    assert_eq!(a1.len(), 3);
    assert_eq!(p.last_completions.len(), 3);
    assert_eq!(p.generator.stats.calls, 1);
    assert!(
        p.generator.last_error.is_none(),
        "{:?}",
        p.generator.last_error
    );
    assert!(p.stats().generated_tokens > 0);
    let c1 = p.last_completions.clone();

    // same seed, fresh policy: same completions and actions
    let mut q = load(&dir, top_p(1));
    assert_eq!(q.act(&obs), a1);
    assert_eq!(q.last_completions, c1);
    // a sequence's completion does not depend on the rest of the batch
    let mut r = load(&dir, top_p(1));
    r.act(&obs[..1]);
    assert_eq!(r.last_completions[0], c1[0]);
    // other seeds: the completions differ for some seed
    let differs = (2..6).any(|s| {
        let mut o = load(&dir, top_p(s));
        o.act(&obs);
        o.last_completions != c1
    });
    assert!(differs, "top-p completions never changed with the seed");

    // garbage completions are invalid actions, reported in the next observation
    let invalid = a1
        .iter()
        .position(|a| matches!(a, Action::Invalid { .. }))
        .expect("a random model writes at least one unparsable completion");
    let steps = venv.step(a1.clone());
    assert_eq!(steps.len(), 3);
    assert!(
        !steps[invalid].observation.action_errors.is_empty(),
        "invalid action not reported"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn grpo_group_and_episode_run_with_the_llm_policy() {
    let dir = tiny_model("grpo");
    let sc = common::small();
    let mut env = Env::new(sc.clone());
    env.reset(3);
    let mut p = load(
        &dir,
        LlmConfig {
            format: PromptFormat::Generic,
            ..top_p(7)
        },
    );
    let obs = env.observation();
    let g = p.group_completions(&obs, 4);
    assert_eq!(g.len(), 4);
    let res = grpo::group_rollout_text(&env, &g, 2);
    assert_eq!(res.rewards.len(), 4);
    assert_eq!(res.advantages.len(), 4);
    assert!(res.rewards.iter().all(|r| r.is_finite()));
    // greedy: all members equal
    let mut gp = load(
        &dir,
        LlmConfig {
            max_new_tokens: 4,
            ..LlmConfig::default()
        },
    );
    let g2 = gp.group_completions(&obs, 3);
    assert!(g2.iter().all(|c| c == &g2[0]));

    // a whole (short) episode through run_episode
    let rep = run_episode(&sc, &mut p, 1);
    assert!(rep.steps > 0);
    assert!(rep.actions.len() as u32 <= rep.steps);
    assert!(rep.policy.starts_with("text:llm"));
    assert!(p.stats().calls >= rep.steps as u64);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_model_dir_and_sampling_are_errors() {
    assert!(
        LlmPolicy::load(
            "/nonexistent/model".as_ref(),
            &BackendKind::Cpu,
            LlmConfig::default()
        )
        .is_err()
    );
    let dir = tiny_model("bad");
    let bad = LlmConfig {
        sampling: Sampling::TopP {
            temperature: 0.0,
            top_p: 0.5,
        },
        ..LlmConfig::default()
    };
    assert!(LlmPolicy::load(&dir, &BackendKind::Cpu, bad).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
