//! Shared model structure: tensor names, shapes and a loader generic over the storage type, plus
//! seeded random models for tests and benchmarks.

use std::path::Path;

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::weights::{Dtype, RawTensor, TensorStore, write_safetensors};

/// Whether a tensor is a matrix (GEMM operand, embedding) or a vector (norm weight, bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// A 2-D weight matrix.
    Matrix,
    /// A 1-D vector (norm weight or bias).
    Vector,
}

/// The weights of one decoder layer. Matrices are `[out, in]`, row-major (as in the files).
#[derive(Debug, Clone)]
pub struct LayerWeights<T> {
    /// `input_layernorm.weight` `[hidden]`.
    pub input_norm: T,
    /// `self_attn.q_proj.weight` `[q_dim, hidden]`.
    pub q_proj: T,
    /// `self_attn.k_proj.weight` `[kv_dim, hidden]`.
    pub k_proj: T,
    /// `self_attn.v_proj.weight` `[kv_dim, hidden]`.
    pub v_proj: T,
    /// q/k/v biases, when the config has them.
    pub qkv_bias: Option<[T; 3]>,
    /// `self_attn.o_proj.weight` `[hidden, q_dim]`.
    pub o_proj: T,
    /// `self_attn.q_norm.weight` and `k_norm.weight` `[head_dim]` (Qwen3).
    pub qk_norm: Option<[T; 2]>,
    /// `post_attention_layernorm.weight` `[hidden]`.
    pub post_norm: T,
    /// `mlp.gate_proj.weight` `[intermediate, hidden]`.
    pub gate_proj: T,
    /// `mlp.up_proj.weight` `[intermediate, hidden]`.
    pub up_proj: T,
    /// `mlp.down_proj.weight` `[hidden, intermediate]`.
    pub down_proj: T,
}

/// All weights of a model.
#[derive(Debug, Clone)]
pub struct ModelWeights<T> {
    /// `model.embed_tokens.weight` `[vocab, hidden]`.
    pub embed: T,
    /// The decoder layers.
    pub layers: Vec<LayerWeights<T>>,
    /// `model.norm.weight` `[hidden]`.
    pub final_norm: T,
    /// `lm_head.weight` `[vocab, hidden]`; `None` when tied to the embedding.
    pub lm_head: Option<T>,
}

/// Every tensor the config implies, as `(name, shape, kind)`, in a fixed order.
/// `lm_head.weight` is listed only when `with_lm_head`.
pub fn tensor_specs(
    cfg: &ModelConfig,
    with_lm_head: bool,
) -> Vec<(String, Vec<usize>, TensorKind)> {
    use TensorKind::*;
    let (h, i, q, kv, d, v) = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.q_dim(),
        cfg.kv_dim(),
        cfg.head_dim,
        cfg.vocab_size,
    );
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h], Matrix)];
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}.");
        let mut push = |n: &str, s: Vec<usize>, k| out.push((format!("{p}{n}"), s, k));
        push("input_layernorm.weight", vec![h], Vector);
        push("self_attn.q_proj.weight", vec![q, h], Matrix);
        push("self_attn.k_proj.weight", vec![kv, h], Matrix);
        push("self_attn.v_proj.weight", vec![kv, h], Matrix);
        if cfg.qkv_bias {
            push("self_attn.q_proj.bias", vec![q], Vector);
            push("self_attn.k_proj.bias", vec![kv], Vector);
            push("self_attn.v_proj.bias", vec![kv], Vector);
        }
        push("self_attn.o_proj.weight", vec![h, q], Matrix);
        if cfg.qk_norm {
            push("self_attn.q_norm.weight", vec![d], Vector);
            push("self_attn.k_norm.weight", vec![d], Vector);
        }
        push("post_attention_layernorm.weight", vec![h], Vector);
        push("mlp.gate_proj.weight", vec![i, h], Matrix);
        push("mlp.up_proj.weight", vec![i, h], Matrix);
        push("mlp.down_proj.weight", vec![h, i], Matrix);
    }
    out.push(("model.norm.weight".into(), vec![h], Vector));
    if with_lm_head {
        out.push(("lm_head.weight".into(), vec![v, h], Matrix));
    }
    out
}

/// Whether the model uses a separate `lm_head.weight`, from the config and the file contents.
///
/// `tie_word_embeddings: true` ties; `false` requires `lm_head.weight`; absent: untied exactly
/// when the file has `lm_head.weight`.
pub fn uses_lm_head(cfg: &ModelConfig, store: &TensorStore) -> Result<bool> {
    match cfg.tie_word_embeddings {
        Some(true) => Ok(false),
        Some(false) => {
            if store.contains("lm_head.weight") {
                Ok(true)
            } else {
                Err(Error::MissingTensor {
                    name: "lm_head.weight".into(),
                })
            }
        }
        None => Ok(store.contains("lm_head.weight")),
    }
}

impl<T> ModelWeights<T> {
    /// Loads every tensor from `store`, checking shapes, converting each with `conv`.
    pub fn load(
        cfg: &ModelConfig,
        store: &TensorStore,
        mut conv: impl FnMut(&str, TensorKind, RawTensor<'_>) -> Result<T>,
    ) -> Result<Self> {
        let with_lm_head = uses_lm_head(cfg, store)?;
        let specs = tensor_specs(cfg, with_lm_head);
        let mut vals: Vec<Option<T>> = Vec::with_capacity(specs.len());
        for (name, shape, kind) in &specs {
            let raw = store.get(name, shape)?;
            vals.push(Some(conv(name, *kind, raw)?));
        }
        let mut it = vals.into_iter().map(|x| x.expect("filled"));
        let mut next = || it.next().expect("spec count");
        let embed = next();
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for _ in 0..cfg.num_layers {
            let input_norm = next();
            let q_proj = next();
            let k_proj = next();
            let v_proj = next();
            let qkv_bias = cfg.qkv_bias.then(|| [next(), next(), next()]);
            let o_proj = next();
            let qk_norm = cfg.qk_norm.then(|| [next(), next()]);
            layers.push(LayerWeights {
                input_norm,
                q_proj,
                k_proj,
                v_proj,
                qkv_bias,
                o_proj,
                qk_norm,
                post_norm: next(),
                gate_proj: next(),
                up_proj: next(),
                down_proj: next(),
            });
        }
        let final_norm = next();
        let lm_head = with_lm_head.then(&mut next);
        Ok(ModelWeights {
            embed,
            layers,
            final_norm,
            lm_head,
        })
    }

    /// The output projection: `lm_head` or the (tied) embedding.
    pub fn output(&self) -> &T {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }
}

/// A small deterministic generator (SplitMix64) for random weights; no dependency on `rand`.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        crate::sampling::mix64(self.0)
    }
    /// Uniform in `[-1, 1)`.
    pub fn next_sym(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Seeded random tensors for `cfg`: matrices uniform in `±scale/sqrt(fan_in)`-ish ranges, norm
/// weights in `[0.5, 1.5]`, biases in `±0.1`. Same seed, same tensors.
pub fn random_tensors(
    cfg: &ModelConfig,
    with_lm_head: bool,
    seed: u64,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = SplitMix64(seed);
    tensor_specs(cfg, with_lm_head)
        .into_iter()
        .map(|(name, shape, kind)| {
            let n: usize = shape.iter().product();
            let vals: Vec<f32> = match kind {
                TensorKind::Matrix => {
                    let a = if name.contains("embed") || name.contains("lm_head") {
                        1.0
                    } else {
                        1.5 / (shape[1] as f32).sqrt()
                    };
                    (0..n).map(|_| a * rng.next_sym()).collect()
                }
                TensorKind::Vector if name.ends_with(".bias") => {
                    (0..n).map(|_| 0.1 * rng.next_sym()).collect()
                }
                TensorKind::Vector => (0..n).map(|_| 1.0 + 0.5 * rng.next_sym()).collect(),
            };
            (name, shape, vals)
        })
        .collect()
}

/// Writes a random model directory (`config.json` + safetensors) for tests and benchmarks.
///
/// `shards > 1` writes `model-0000i-of-0000n.safetensors` files and an index. The tensors are
/// rounded to `dtype` in the file. Untied (`lm_head.weight` written) exactly when
/// `cfg.tie_word_embeddings == Some(false)`.
pub fn write_random_model(
    dir: &Path,
    cfg: &ModelConfig,
    dtype: Dtype,
    shards: usize,
    seed: u64,
) -> Result<()> {
    let with_lm_head = cfg.tie_word_embeddings == Some(false);
    let tensors = random_tensors(cfg, with_lm_head, seed);
    write_model_dir(dir, cfg, &tensors, dtype, shards)
}

/// Writes `config.json` and the given tensors into `dir` (created if needed).
pub fn write_model_dir(
    dir: &Path,
    cfg: &ModelConfig,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: Dtype,
    shards: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cfg_path = dir.join("config.json");
    let json = serde_json::to_vec_pretty(&cfg.to_hf_json()).expect("json");
    std::fs::write(&cfg_path, json).map_err(|e| Error::io(&cfg_path, e))?;
    let shards = shards.max(1);
    if shards == 1 {
        let p = dir.join("model.safetensors");
        std::fs::write(&p, write_safetensors(tensors, dtype)).map_err(|e| Error::io(&p, e))?;
        return Ok(());
    }
    let per = tensors.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in tensors.chunks(per.max(1)).enumerate() {
        let fname = format!("model-{:05}-of-{:05}.safetensors", i + 1, shards);
        for (n, _, _) in chunk {
            weight_map.insert(n.clone(), fname.clone().into());
        }
        let p = dir.join(&fname);
        std::fs::write(&p, write_safetensors(chunk, dtype)).map_err(|e| Error::io(&p, e))?;
    }
    let idx = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    let p = dir.join("model.safetensors.index.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&idx).expect("json"))
        .map_err(|e| Error::io(&p, e))?;
    Ok(())
}
