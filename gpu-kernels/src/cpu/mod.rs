//! The f32 CPU reference backend: prefill and decode with a KV cache, prefix-shared ragged batches.
//!
//! It is the oracle for the other backends. Matmuls are parallel over weight-row blocks (rayon);
//! everything else is plain loops. Each output element is computed the same way whatever the batch
//! is, so a prefix-shared batch gives bit-identical results to running sequences one by one.

pub mod ops;

use std::path::Path;

use rayon::prelude::*;

use crate::backend::{Backend, GenerateConfig, check_batch};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::model::{ModelWeights, TensorKind};
use crate::sampling::sample;
use crate::weights::TensorStore;
use ops::{dot, inv_freq, matmul, rmsnorm_rows, rope_head, silu};

/// The KV cache of one sequence: per layer, keys and values `[len, kv_dim]`.
///
/// Make one with [`KvCache::new`] (or [`CpuBackend::new_cache`]) for the model it will be used
/// with. [`KvCache::default`] has zero layers: [`CpuBackend::forward`] rejects it (with
/// [`Error::Input`]) for any model, as it rejects a cache filled by a model of another shape.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for a model of `layers` decoder layers (`ModelConfig::num_layers`).
    pub fn new(layers: usize) -> Self {
        KvCache {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            len: 0,
        }
    }
    /// Number of decoder layers the cache holds (0 for [`KvCache::default`]).
    pub fn num_layers(&self) -> usize {
        self.k.len()
    }
    /// Checks that the cache fits a model of `layers` layers and `kv_dim` key/value width.
    fn check(&self, layers: usize, kv_dim: usize, what: &dyn std::fmt::Display) -> Result<()> {
        if self.k.len() != layers || self.v.len() != layers {
            return Err(Error::input(format!(
                "{what} has {} layers, the model has {layers} (make it with KvCache::new or \
                 CpuBackend::new_cache)",
                self.k.len()
            )));
        }
        let want = self.len * kv_dim;
        for (l, (k, v)) in self.k.iter().zip(&self.v).enumerate() {
            if k.len() != want || v.len() != want {
                return Err(Error::input(format!(
                    "{what}: layer {l} holds {} keys and {} values, expected {want} \
                     ({} positions of kv_dim {kv_dim}): made for another model",
                    k.len(),
                    v.len(),
                    self.len
                )));
            }
        }
        Ok(())
    }
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The CPU backend: f32 weights in memory.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    cfg: ModelConfig,
    w: ModelWeights<Vec<f32>>,
    inv_freq: Vec<f32>,
}

impl CpuBackend {
    /// Loads the weights of a model directory (converted to f32).
    pub fn load(dir: &Path) -> Result<Self> {
        let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
        let store = TensorStore::open_dir(dir)?;
        Self::from_store(cfg, &store)
    }

    /// Builds the backend from a config and opened tensors.
    pub fn from_store(cfg: ModelConfig, store: &TensorStore) -> Result<Self> {
        let w = ModelWeights::load(&cfg, store, |_, _: TensorKind, raw| Ok(raw.to_f32()))?;
        let inv_freq = inv_freq(cfg.rope_theta, cfg.head_dim);
        Ok(CpuBackend { cfg, w, inv_freq })
    }

    /// An empty KV cache for this model (`KvCache::new(config.num_layers)`).
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.cfg.num_layers)
    }

    /// Runs new tokens for several sequences at once (a ragged batch) and returns the logits of the
    /// last new token of each entry.
    ///
    /// `batch[b] = (c, tokens)` appends `tokens` to `caches[c]` (each `c` at most once). Every
    /// sequence attends to the shared `prefix` cache first (positions `0..prefix.len`), then to its
    /// own cache.
    ///
    /// Returns [`Error::Input`] (and changes no cache) when an entry is out of range, empty or
    /// repeated, a token is outside the vocabulary, or the prefix cache or a batch entry's cache
    /// does not fit the model (wrong number of layers, as [`KvCache::default`] has, or keys and
    /// values of another width).
    pub fn forward(
        &self,
        prefix: Option<&KvCache>,
        caches: &mut [KvCache],
        batch: &[(usize, &[u32])],
    ) -> Result<Vec<Vec<f32>>> {
        let cfg = &self.cfg;
        let (h, qd, kvd, hd) = (cfg.hidden_size, cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
        let plen = prefix.map_or(0, |p| p.len);
        if let Some(p) = prefix {
            p.check(cfg.num_layers, kvd, &"prefix cache")?;
        }
        // Pack the tokens: (cache index, position in own cache).
        let mut toks: Vec<(usize, usize)> = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut last: Vec<usize> = Vec::with_capacity(batch.len());
        let mut seen = vec![false; caches.len()];
        for &(c, t) in batch {
            if c >= caches.len() || t.is_empty() || seen[c] {
                return Err(Error::input(format!(
                    "bad batch entry for cache {c}: out of range, empty or repeated"
                )));
            }
            seen[c] = true;
            caches[c].check(cfg.num_layers, kvd, &format_args!("cache {c}"))?;
            for (j, &id) in t.iter().enumerate() {
                if id as usize >= cfg.vocab_size {
                    return Err(Error::input(format!(
                        "token {id} outside the vocabulary of {}",
                        cfg.vocab_size
                    )));
                }
                toks.push((c, caches[c].len + j));
                ids.push(id);
            }
            last.push(toks.len() - 1);
        }
        let n = toks.len();
        let mut x = vec![0.0f32; n * h];
        for (t, &id) in ids.iter().enumerate() {
            let id = id as usize;
            x[t * h..(t + 1) * h].copy_from_slice(&self.w.embed[id * h..(id + 1) * h]);
        }
        let scale = 1.0 / (hd as f32).sqrt();
        let group = cfg.num_heads / cfg.num_kv_heads;
        for (l, lw) in self.w.layers.iter().enumerate() {
            let mut hbuf = x.clone();
            rmsnorm_rows(&mut hbuf, h, &lw.input_norm, cfg.rms_norm_eps);
            let b = lw.qkv_bias.as_ref();
            let mut q = matmul(&hbuf, n, h, &lw.q_proj, qd, b.map(|b| &b[0][..]));
            let mut k = matmul(&hbuf, n, h, &lw.k_proj, kvd, b.map(|b| &b[1][..]));
            let v = matmul(&hbuf, n, h, &lw.v_proj, kvd, b.map(|b| &b[2][..]));
            if let Some([qn, kn]) = &lw.qk_norm {
                rmsnorm_rows(&mut q, hd, qn, cfg.rms_norm_eps);
                rmsnorm_rows(&mut k, hd, kn, cfg.rms_norm_eps);
            }
            for (t, &(_, pos)) in toks.iter().enumerate() {
                let p = plen + pos;
                for hq in q[t * qd..(t + 1) * qd].chunks_exact_mut(hd) {
                    rope_head(hq, p, &self.inv_freq, cfg.rope_style);
                }
                for hk in k[t * kvd..(t + 1) * kvd].chunks_exact_mut(hd) {
                    rope_head(hk, p, &self.inv_freq, cfg.rope_style);
                }
            }
            for (t, &(c, _)) in toks.iter().enumerate() {
                caches[c].k[l].extend_from_slice(&k[t * kvd..(t + 1) * kvd]);
                caches[c].v[l].extend_from_slice(&v[t * kvd..(t + 1) * kvd]);
            }
            // Attention: each token over prefix keys then its own keys up to its position.
            let caches_ro: &[KvCache] = caches;
            let attn: Vec<f32> = toks
                .par_iter()
                .enumerate()
                .flat_map_iter(|(t, &(c, pos))| {
                    let own = &caches_ro[c];
                    let mut out = vec![0.0f32; qd];
                    let nk = plen + pos + 1;
                    let mut scores = vec![0.0f32; nk];
                    for head in 0..cfg.num_heads {
                        let kvh = head / group;
                        let qv = &q[t * qd + head * hd..t * qd + (head + 1) * hd];
                        let key = |j: usize| -> (&[f32], &[f32]) {
                            let (kk, vv, jj) = if j < plen {
                                let p = prefix.expect("prefix");
                                (&p.k[l], &p.v[l], j)
                            } else {
                                (&own.k[l], &own.v[l], j - plen)
                            };
                            let o = jj * kvd + kvh * hd;
                            (&kk[o..o + hd], &vv[o..o + hd])
                        };
                        let mut m = f32::NEG_INFINITY;
                        for (j, s) in scores.iter_mut().enumerate() {
                            *s = dot(qv, key(j).0) * scale;
                            m = m.max(*s);
                        }
                        let mut z = 0.0f32;
                        for s in scores.iter_mut() {
                            *s = (*s - m).exp();
                            z += *s;
                        }
                        let o = &mut out[head * hd..(head + 1) * hd];
                        for (j, &s) in scores.iter().enumerate() {
                            let p = s / z;
                            for (a, &vv) in o.iter_mut().zip(key(j).1) {
                                *a += p * vv;
                            }
                        }
                    }
                    out
                })
                .collect();
            let o = matmul(&attn, n, qd, &lw.o_proj, h, None);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            let mut hbuf = x.clone();
            rmsnorm_rows(&mut hbuf, h, &lw.post_norm, cfg.rms_norm_eps);
            let i = cfg.intermediate_size;
            let g = matmul(&hbuf, n, h, &lw.gate_proj, i, None);
            let u = matmul(&hbuf, n, h, &lw.up_proj, i, None);
            let a: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| silu(g) * u).collect();
            let d = matmul(&a, n, i, &lw.down_proj, h, None);
            for (a, b) in x.iter_mut().zip(&d) {
                *a += b;
            }
        }
        for &(c, t) in batch {
            caches[c].len += t.len();
        }
        let mut hl: Vec<f32> = Vec::with_capacity(last.len() * h);
        for &t in &last {
            hl.extend_from_slice(&x[t * h..(t + 1) * h]);
        }
        rmsnorm_rows(&mut hl, h, &self.w.final_norm, cfg.rms_norm_eps);
        let logits = matmul(&hl, last.len(), h, self.w.output(), cfg.vocab_size, None);
        Ok(logits
            .chunks_exact(cfg.vocab_size)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Prefills `ids` into a fresh cache (used for a shared prefix).
    pub fn prefill(&self, ids: &[u32]) -> Result<(KvCache, Vec<f32>)> {
        let mut caches = vec![self.new_cache()];
        let mut l = self.forward(None, &mut caches, &[(0, ids)])?;
        Ok((caches.pop().expect("one"), l.pop().expect("one")))
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Err(Error::input("no token ids"));
        }
        Ok(self.prefill(ids)?.1)
    }

    fn batch_logits(&mut self, prefix: &[u32], suffixes: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        check_batch(&self.cfg, prefix, suffixes)?;
        let pc = if prefix.is_empty() {
            None
        } else {
            Some(self.prefill(prefix)?.0)
        };
        let mut caches = vec![self.new_cache(); suffixes.len()];
        let batch: Vec<(usize, &[u32])> = suffixes
            .iter()
            .enumerate()
            .map(|(i, s)| (i, &s[..]))
            .collect();
        self.forward(pc.as_ref(), &mut caches, &batch)
    }

    fn generate_batch(
        &mut self,
        prefix: &[u32],
        suffixes: &[Vec<u32>],
        cfg: &GenerateConfig,
    ) -> Result<Vec<Vec<u32>>> {
        check_batch(&self.cfg, prefix, suffixes)?;
        cfg.sampling.validate()?;
        let n = suffixes.len();
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
        if n == 0 || cfg.max_new_tokens == 0 {
            return Ok(out);
        }
        let pc = if prefix.is_empty() {
            None
        } else {
            Some(self.prefill(prefix)?.0)
        };
        let mut caches = vec![self.new_cache(); n];
        let batch: Vec<(usize, &[u32])> = suffixes
            .iter()
            .enumerate()
            .map(|(i, s)| (i, &s[..]))
            .collect();
        let mut logits = self.forward(pc.as_ref(), &mut caches, &batch)?;
        let mut active: Vec<usize> = (0..n).collect();
        for step in 0..cfg.max_new_tokens {
            let mut next: Vec<(usize, [u32; 1])> = Vec::new();
            for (row, &i) in active.iter().enumerate() {
                let stream = cfg.stream_offset.wrapping_add(i as u64);
                let tok = sample(&logits[row], cfg.sampling, cfg.seed, stream, step as u64);
                if cfg.stop_tokens.contains(&tok) {
                    continue;
                }
                out[i].push(tok);
                if out[i].len() < cfg.max_new_tokens {
                    next.push((i, [tok]));
                }
            }
            if next.is_empty() {
                break;
            }
            active = next.iter().map(|e| e.0).collect();
            let batch: Vec<(usize, &[u32])> = next.iter().map(|(i, t)| (*i, &t[..])).collect();
            logits = self.forward(pc.as_ref(), &mut caches, &batch)?;
        }
        Ok(out)
    }
}
