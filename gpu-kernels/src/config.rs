//! The model configuration, read from a Hugging Face `config.json`.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// The model family. It decides which optional tensors exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    /// Qwen3: per-head RMSNorm of q and k before RoPE, no q/k/v bias.
    Qwen3,
    /// Qwen2 / Qwen2.5: q/k/v bias, no q/k norm.
    Qwen2,
    /// Llama (and Mistral-style) models: optional q/k/v bias (`attention_bias`), no q/k norm.
    Llama,
}

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RopeStyle {
    /// Hugging Face `rotate_half`: dimension `i` pairs with `i + head_dim/2` (Llama, Qwen in HF format).
    HalfSplit,
    /// GPT-J / original Meta style: dimension `2i` pairs with `2i + 1`.
    Interleaved,
}

/// Everything the forward pass needs to know about a model's shapes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// The model family.
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (grouped-query attention).
    pub num_kv_heads: usize,
    /// Dimension of one head.
    pub head_dim: usize,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RoPE dimension pairing.
    pub rope_style: RopeStyle,
    /// Whether q/k/v projections have a bias.
    pub qkv_bias: bool,
    /// Whether q and k get a per-head RMSNorm before RoPE (Qwen3).
    pub qk_norm: bool,
    /// Whether the output projection is the embedding matrix. `None`: use `lm_head.weight` when the
    /// file has it, the embedding otherwise.
    pub tie_word_embeddings: Option<bool>,
    /// Maximum sequence length the model was trained for (informational; not enforced).
    pub max_position_embeddings: usize,
    /// Beginning-of-sequence token, if any.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence tokens (generation stops on any of them).
    pub eos_token_ids: Vec<u32>,
}

/// Sanity bound on every dimension, so that hostile configs cannot request absurd allocations.
const MAX_DIM: u64 = 1 << 24;

fn get_usize(v: &Value, field: &str) -> Result<Option<usize>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_u64() {
            Some(n) if n > 0 && n <= MAX_DIM => Ok(Some(n as usize)),
            _ => Err(Error::field(
                field,
                format!("expected a positive integer <= {MAX_DIM}, got {x}"),
            )),
        },
    }
}

fn req_usize(v: &Value, field: &str) -> Result<usize> {
    get_usize(v, field)?.ok_or_else(|| Error::field(field, "missing"))
}

fn get_f64(v: &Value, field: &str) -> Result<Option<f64>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(f) if f.is_finite() => Ok(Some(f)),
            _ => Err(Error::field(field, format!("expected a number, got {x}"))),
        },
    }
}

fn get_bool(v: &Value, field: &str) -> Result<Option<bool>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(x) => Err(Error::field(field, format!("expected a boolean, got {x}"))),
    }
}

fn token_ids(v: &Value, field: &str) -> Result<Vec<u32>> {
    let as_id = |x: &Value| -> Result<u32> {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::field(field, format!("expected a token id, got {x}")))
    };
    match v.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(as_id).collect(),
        Some(x) => Ok(vec![as_id(x)?]),
    }
}

impl ModelConfig {
    /// Reads `config.json` from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_bytes(&bytes).map_err(|e| match e {
            Error::Config { msg, .. } => Error::Config {
                path: path.to_path_buf(),
                msg,
            },
            Error::ConfigField { field, msg } => Error::Config {
                path: path.to_path_buf(),
                msg: format!("field `{field}`: {msg}"),
            },
            e => e,
        })
    }

    /// Parses the bytes of a Hugging Face `config.json`.
    ///
    /// Accepts `model_type` `qwen3`, `qwen2` and `llama`/`mistral`; `rope_theta` at the top level or
    /// in transformers 5's `rope_parameters`. The non-standard boolean `rope_interleaved` selects
    /// [`RopeStyle::Interleaved`].
    ///
    /// Features the forward pass does not implement are rejected with [`Error::ConfigField`] naming
    /// the field, never silently ignored: a RoPE scaling other than `default` in `rope_parameters`
    /// or `rope_scaling` (YaRN, linear, dynamic, llama3, ...), `use_sliding_window: true`, a Mistral
    /// `sliding_window` shorter than `max_position_embeddings`, `mlp_bias: true`, and an activation
    /// other than SiLU.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::Config {
            path: "<memory>".into(),
            msg: format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        })?;
        if !v.is_object() {
            return Err(Error::Config {
                path: "<memory>".into(),
                msg: "top level is not a JSON object".into(),
            });
        }
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::field("model_type", "missing or not a string"))?;
        let arch = match model_type {
            "qwen3" => Arch::Qwen3,
            "qwen2" => Arch::Qwen2,
            "llama" | "mistral" => Arch::Llama,
            other => {
                return Err(Error::field(
                    "model_type",
                    format!("unsupported `{other}` (supported: qwen3, qwen2, llama, mistral)"),
                ));
            }
        };
        if let Some(act) = v.get("hidden_act").or_else(|| v.get("hidden_activation"))
            && act.as_str() != Some("silu")
        {
            return Err(Error::field(
                "hidden_act",
                format!("only silu is supported, got {act}"),
            ));
        }
        if get_bool(&v, "use_sliding_window")? == Some(true) {
            return Err(Error::field(
                "use_sliding_window",
                "sliding-window attention is not supported",
            ));
        }
        if get_bool(&v, "mlp_bias")? == Some(true) {
            return Err(Error::field(
                "mlp_bias",
                "biases on the MLP projections are not supported",
            ));
        }
        // Both spellings are checked, each on its own: a null `rope_parameters` must not hide a
        // `rope_scaling` (YaRN, linear, llama3, ...) that this crate does not implement.
        let mut rope_theta = get_f64(&v, "rope_theta")?;
        for key in ["rope_parameters", "rope_scaling"] {
            let Some(rp) = v.get(key).filter(|x| !x.is_null()) else {
                continue;
            };
            if !rp.is_object() {
                return Err(Error::field(key, "expected an object"));
            }
            let (kind_key, kind) = match rp.get("rope_type") {
                Some(k) => ("rope_type", Some(k)),
                None => ("type", rp.get("type")),
            };
            let kind = match kind {
                None | Some(Value::Null) => "default",
                Some(k) => k.as_str().ok_or_else(|| {
                    Error::field(
                        format!("{key}.{kind_key}"),
                        format!("expected a string, got {k}"),
                    )
                })?,
            };
            if kind != "default" {
                return Err(Error::field(
                    format!("{key}.{kind_key}"),
                    format!("unsupported RoPE scaling `{kind}` (only `default` is implemented)"),
                ));
            }
            if rope_theta.is_none() {
                rope_theta = get_f64(rp, "rope_theta")
                    .map_err(|_| Error::field(format!("{key}.rope_theta"), "expected a number"))?;
            }
        }
        let rope_theta = rope_theta.unwrap_or(10_000.0);
        if rope_theta <= 0.0 {
            return Err(Error::field("rope_theta", "must be positive"));
        }
        let hidden_size = req_usize(&v, "hidden_size")?;
        let num_heads = req_usize(&v, "num_attention_heads")?;
        let num_kv_heads = get_usize(&v, "num_key_value_heads")?.unwrap_or(num_heads);
        if num_heads % num_kv_heads != 0 {
            return Err(Error::field(
                "num_key_value_heads",
                format!("{num_kv_heads} does not divide num_attention_heads {num_heads}"),
            ));
        }
        let head_dim = match get_usize(&v, "head_dim")? {
            Some(d) => d,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(Error::field(
                        "head_dim",
                        "missing and hidden_size is not a multiple of num_attention_heads",
                    ));
                }
                hidden_size / num_heads
            }
        };
        if head_dim % 2 != 0 || head_dim > 1024 {
            return Err(Error::field(
                "head_dim",
                format!("must be even and <= 1024, got {head_dim}"),
            ));
        }
        let eps = get_f64(&v, "rms_norm_eps")?.unwrap_or(1e-6);
        if !(eps > 0.0 && eps < 1.0) {
            return Err(Error::field("rms_norm_eps", "must be in (0, 1)"));
        }
        let qkv_bias = match arch {
            Arch::Qwen2 => true,
            Arch::Qwen3 | Arch::Llama => get_bool(&v, "attention_bias")?.unwrap_or(false),
        };
        let max_position_embeddings = get_usize(&v, "max_position_embeddings")?.unwrap_or(32_768);
        // Mistral's `sliding_window` is used by its attention whatever `use_sliding_window` says
        // (Qwen2/Qwen3 configs carry one that only `use_sliding_window: true` enables, rejected
        // above). This crate attends to the whole context, so a window shorter than the context
        // the model declares would silently change its outputs.
        if model_type == "mistral"
            && let Some(w) = v.get("sliding_window").filter(|x| !x.is_null())
        {
            match w.as_u64() {
                Some(w) if w >= max_position_embeddings as u64 => {}
                Some(w) => {
                    return Err(Error::field(
                        "sliding_window",
                        format!(
                            "sliding-window attention is not supported (window {w} < \
                             max_position_embeddings {max_position_embeddings})"
                        ),
                    ));
                }
                None => {
                    return Err(Error::field(
                        "sliding_window",
                        format!("expected a positive integer or null, got {w}"),
                    ));
                }
            }
        }
        let rope_style = if get_bool(&v, "rope_interleaved")?.unwrap_or(false) {
            RopeStyle::Interleaved
        } else {
            RopeStyle::HalfSplit
        };
        Ok(ModelConfig {
            arch,
            vocab_size: req_usize(&v, "vocab_size")?,
            hidden_size,
            intermediate_size: req_usize(&v, "intermediate_size")?,
            num_layers: req_usize(&v, "num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: eps as f32,
            rope_theta: rope_theta as f32,
            rope_style,
            qkv_bias,
            qk_norm: arch == Arch::Qwen3,
            tie_word_embeddings: get_bool(&v, "tie_word_embeddings")?,
            max_position_embeddings,
            bos_token_id: token_ids(&v, "bos_token_id")?.first().copied(),
            eos_token_ids: token_ids(&v, "eos_token_id")?,
        })
    }

    /// Serialises to a Hugging Face style `config.json` (the fields [`Self::from_json_bytes`] reads).
    pub fn to_hf_json(&self) -> Value {
        let model_type = match self.arch {
            Arch::Qwen3 => "qwen3",
            Arch::Qwen2 => "qwen2",
            Arch::Llama => "llama",
        };
        let mut v = serde_json::json!({
            "model_type": model_type,
            "hidden_act": "silu",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "attention_bias": self.qkv_bias,
            "max_position_embeddings": self.max_position_embeddings,
            "eos_token_id": self.eos_token_ids,
        });
        if let Some(t) = self.tie_word_embeddings {
            v["tie_word_embeddings"] = Value::Bool(t);
        }
        if let Some(b) = self.bos_token_id {
            v["bos_token_id"] = b.into();
        }
        if self.rope_style == RopeStyle::Interleaved {
            v["rope_interleaved"] = Value::Bool(true);
        }
        v
    }

    /// Query projection width (`num_heads * head_dim`).
    pub fn q_dim(&self) -> usize {
        self.num_heads * self.head_dim
    }

    /// Key/value projection width (`num_kv_heads * head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }

    /// Bytes of KV cache per token for an element size (2 for bf16, 4 for f32).
    pub fn kv_bytes_per_token(&self, elem_bytes: usize) -> usize {
        2 * self.num_layers * self.kv_dim() * elem_bytes
    }

    /// A Qwen3-0.6B-shaped config (for benchmarks with random weights).
    pub fn qwen3_0_6b() -> Self {
        ModelConfig {
            arch: Arch::Qwen3,
            vocab_size: 151_936,
            hidden_size: 1024,
            intermediate_size: 3072,
            num_layers: 28,
            num_heads: 16,
            num_kv_heads: 8,
            head_dim: 128,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            rope_style: RopeStyle::HalfSplit,
            qkv_bias: false,
            qk_norm: true,
            tie_word_embeddings: Some(true),
            max_position_embeddings: 40_960,
            bos_token_id: None,
            eos_token_ids: vec![151_645],
        }
    }

    /// A tiny config of the given family, for tests and smoke runs.
    pub fn tiny(arch: Arch) -> Self {
        ModelConfig {
            arch,
            vocab_size: 97,
            hidden_size: 32,
            intermediate_size: 48,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_style: RopeStyle::HalfSplit,
            qkv_bias: arch == Arch::Qwen2,
            qk_norm: arch == Arch::Qwen3,
            tie_word_embeddings: Some(true),
            max_position_embeddings: 512,
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }
}
