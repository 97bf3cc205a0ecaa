//! Tokenizer wrapper and the text-level `Llm` API: a tiny hand-written tokenizer (always), and
//! Qwen3's real tokenizer when `BLASTRADIUS_QWEN3_TOKENIZER` points to its tokenizer.json
//! (fetch it with `gpu-kernels/scripts/fetch_tokenizer.sh`).

mod common;

use common::{model_dir, tiny};
use gpu_kernels::weights::Dtype;
use gpu_kernels::{Arch, Backend, CpuBackend, GenerateConfig, Llm, Sampling, Tokenizer};

/// A WordLevel tokenizer over `<|im_end|>`, `[UNK]` and `w0 .. w94` (97 ids, the tiny vocab).
fn tiny_tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<|im_end|>".into(), 0.into());
    vocab.insert("[UNK]".into(), 1.into());
    for i in 0..95 {
        vocab.insert(format!("w{i}"), (i + 2).into());
    }
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{"id": 0, "content": "<|im_end|>", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    })
    .to_string()
}

#[test]
fn tiny_tokenizer_roundtrip() {
    let t = Tokenizer::from_bytes(tiny_tokenizer_json().as_bytes()).unwrap();
    assert_eq!(t.vocab_size(), 97);
    let ids = t.encode("w0 w5 nope w94").unwrap();
    assert_eq!(ids, vec![2, 7, 1, 96]);
    assert_eq!(t.decode(&[2, 7, 0], true).unwrap(), "w0 w5");
    assert_eq!(t.token_id("<|im_end|>"), Some(0));
    assert!(Tokenizer::from_bytes(b"{\"model\": 3}").is_err());
    assert!(Tokenizer::from_file("/nonexistent/tokenizer.json".as_ref()).is_err());
}

#[test]
fn llm_generate_text_is_deterministic_and_matches_token_api() {
    let d = model_dir(&tiny(Arch::Qwen3), Dtype::BF16, 1, 8);
    std::fs::write(d.path().join("tokenizer.json"), tiny_tokenizer_json()).unwrap();
    let mut llm = Llm::load(d.path(), &gpu_kernels::BackendKind::Cpu).unwrap();
    assert_eq!(llm.stop_tokens(), vec![0]);
    let cfg = GenerateConfig {
        max_new_tokens: 5,
        sampling: Sampling::TopP {
            temperature: 1.0,
            top_p: 0.95,
        },
        seed: 3,
        stop_tokens: llm.stop_tokens(),
        ..GenerateConfig::default()
    };
    let prompts = vec![
        "w1 w2".to_string(),
        "w3".to_string(),
        "w9 w9 w9".to_string(),
    ];
    let a = llm.generate_text("w10 w11 w12", &prompts, &cfg).unwrap();
    assert_eq!(a, llm.generate_text("w10 w11 w12", &prompts, &cfg).unwrap());
    // The same through the token API.
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    let tok = llm.tokenizer();
    let p = tok.encode("w10 w11 w12").unwrap();
    let s: Vec<Vec<u32>> = prompts.iter().map(|x| tok.encode(x).unwrap()).collect();
    let ids = cpu.generate_batch(&p, &s, &cfg).unwrap();
    for (i, o) in ids.iter().enumerate() {
        assert_eq!(tok.decode(o, true).unwrap(), a[i]);
    }
}

#[test]
fn qwen3_tokenizer_if_available() {
    let Ok(path) = std::env::var("BLASTRADIUS_QWEN3_TOKENIZER") else {
        println!("skipped: BLASTRADIUS_QWEN3_TOKENIZER not set (see scripts/fetch_tokenizer.sh)");
        return;
    };
    let t = Tokenizer::from_file(path.as_ref()).unwrap();
    assert_eq!(t.token_id("<|endoftext|>"), Some(151_643));
    assert_eq!(t.token_id("<|im_start|>"), Some(151_644));
    assert_eq!(t.token_id("<|im_end|>"), Some(151_645));
    assert_eq!(t.encode("Hello world").unwrap(), vec![9707, 1879]);
    let text = "Pod checkout-7f9c is OOMKilled; p99 latency 2300 ms. 重启?";
    let ids = t.encode(text).unwrap();
    assert_eq!(t.decode(&ids, false).unwrap(), text);
    // The ChatML split: prefix + suffix tokenised apart equal the whole prompt tokenised at once.
    let (pre, suf) = gpu_kernels::tokenizer::chatml("You are an SRE agent.", "latency is high");
    let mut joined = t.encode(&pre).unwrap();
    joined.extend(t.encode(&suf).unwrap());
    assert_eq!(joined, t.encode(&format!("{pre}{suf}")).unwrap());
    assert_eq!(joined[0], 151_644);
}
