//! Property tests: config, safetensors and index parsing never panic on arbitrary bytes; the
//! sampler always returns a valid index.

use gpu_kernels::model::random_tensors;
use gpu_kernels::sampling::{Sampling, sample};
use gpu_kernels::weights::{Dtype, TensorStore, write_safetensors};
use gpu_kernels::{Arch, ModelConfig};
use proptest::prelude::*;

fn valid_file() -> Vec<u8> {
    let mut cfg = ModelConfig::tiny(Arch::Qwen2);
    cfg.num_layers = 1;
    cfg.vocab_size = 8;
    write_safetensors(&random_tensors(&cfg, false, 1), Dtype::BF16)
}

const FIELDS: &[&str] = &[
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "rms_norm_eps",
    "rope_theta",
    "rope_parameters",
    "rope_scaling",
    "sliding_window",
    "mlp_bias",
    "tie_word_embeddings",
    "eos_token_id",
    "attention_bias",
    "hidden_act",
];

fn json_kind() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        Just(serde_json::Value::from(3)),
        prop::sample::select(vec!["default", "linear", "yarn"]).prop_map(serde_json::Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (0u64..5000).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        prop::sample::select(vec![
            "qwen3", "qwen2", "llama", "mistral", "silu", "x", "default", "yarn"
        ])
        .prop_map(serde_json::Value::from),
        prop::collection::vec(0u64..200_000, 0..3).prop_map(serde_json::Value::from),
        (0u64..5000).prop_map(|t| serde_json::json!({"rope_type": "default", "rope_theta": t})),
        json_kind().prop_map(|k| serde_json::json!({"type": k, "factor": 2.0})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ModelConfig::from_json_bytes(&bytes);
    }

    #[test]
    fn config_objects_never_panic(
        fields in prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..16)
    ) {
        let mut v = ModelConfig::tiny(Arch::Qwen3).to_hf_json();
        for (f, val) in fields {
            v[f] = val;
        }
        if let Ok(c) = ModelConfig::from_json_bytes(&serde_json::to_vec(&v).unwrap()) {
            prop_assert!(c.num_heads % c.num_kv_heads == 0);
            prop_assert!(c.head_dim % 2 == 0);
            prop_assert!(c.rope_theta > 0.0);
        }
    }

    #[test]
    fn safetensors_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut s = TensorStore::default();
        let _ = s.add_file("fuzz".into(), bytes.clone());
        let _ = TensorStore::parse_index("fuzz".as_ref(), &bytes);
    }

    #[test]
    fn mutated_safetensors_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut b = valid_file();
        for (i, x) in edits {
            let i = i.index(b.len());
            b[i] = x;
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        let mut s = TensorStore::default();
        if s.add_file("fuzz".into(), b).is_ok() {
            let names: Vec<String> = s.names().map(str::to_string).collect();
            for n in names {
                if let Ok(t) = s.get(&n, &[8, 32]) {
                    prop_assert_eq!(t.to_f32().len(), 8 * 32);
                }
            }
        }
    }

    #[test]
    fn sampler_returns_a_valid_index(
        logits in prop::collection::vec(prop_oneof![any::<f32>(), -50.0f32..50.0], 1..64),
        temperature in 0.01f32..5.0,
        top_p in 0.001f32..=1.0,
        seed in any::<u64>(),
        step in 0u64..100,
    ) {
        let s = Sampling::TopP { temperature, top_p };
        let t = sample(&logits, s, seed, 3, step) as usize;
        prop_assert!(t < logits.len());
        prop_assert_eq!(t, sample(&logits, s, seed, 3, step) as usize);
        let g = sample(&logits, Sampling::Greedy, seed, 0, 0) as usize;
        prop_assert!(g < logits.len());
    }
}

#[test]
fn valid_file_roundtrips() {
    let mut s = TensorStore::default();
    s.add_file("ok".into(), valid_file()).unwrap();
    let t = s.get("model.embed_tokens.weight", &[8, 32]).unwrap();
    assert_eq!(t.dtype, Dtype::BF16);
    let e = s.get("model.embed_tokens.weight", &[8, 31]).unwrap_err();
    assert!(e.to_string().contains("model.embed_tokens.weight"));
}
