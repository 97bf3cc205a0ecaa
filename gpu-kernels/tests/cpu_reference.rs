//! The CPU reference: loading (dtypes, shards, tied/untied, families), forward pass against a
//! naive recompute-everything implementation, prefix-shared batches against one-by-one runs,
//! KV-cache decode against full recompute, sampling determinism, errors.

mod common;

use common::{TempDir, model_dir, rel_err, tiny};
use gpu_kernels::cpu::KvCache;
use gpu_kernels::model::{random_tensors, write_model_dir};
use gpu_kernels::weights::{Dtype, TensorStore};
use gpu_kernels::{
    Arch, Backend, CpuBackend, Error, GenerateConfig, ModelConfig, RopeStyle, Sampling,
};

/// A naive forward pass written independently of `CpuBackend`: whole sequence, no cache, f64
/// accumulation. Returns the last position's logits.
fn naive_logits(cfg: &ModelConfig, store: &TensorStore, ids: &[u32]) -> Vec<f32> {
    let get = |n: &str, s: &[usize]| -> Vec<f64> {
        store
            .get(n, s)
            .unwrap()
            .to_f32()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let (h, hd, nh, nkv) = (
        cfg.hidden_size,
        cfg.head_dim,
        cfg.num_heads,
        cfg.num_kv_heads,
    );
    let (qd, kvd, im, v) = (nh * hd, nkv * hd, cfg.intermediate_size, cfg.vocab_size);
    let eps = cfg.rms_norm_eps as f64;
    let norm = |x: &[f64], w: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|a| a * a).sum::<f64>() / x.len() as f64;
        x.iter()
            .zip(w)
            .map(|(a, g)| a / (ms + eps).sqrt() * g)
            .collect()
    };
    let mv = |w: &[f64], x: &[f64], out: usize| -> Vec<f64> {
        (0..out)
            .map(|o| (0..x.len()).map(|i| w[o * x.len() + i] * x[i]).sum())
            .collect()
    };
    let rope = |x: &mut [f64], pos: usize| {
        let half = hd / 2;
        for i in 0..half {
            let f = 1.0 / (cfg.rope_theta as f64).powf(2.0 * i as f64 / hd as f64);
            let a = (pos as f32 * f as f32) as f64;
            let (i0, i1) = match cfg.rope_style {
                RopeStyle::HalfSplit => (i, i + half),
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (x[i0], x[i1]);
            x[i0] = x0 * a.cos() - x1 * a.sin();
            x[i1] = x1 * a.cos() + x0 * a.sin();
        }
    };
    let embed = get("model.embed_tokens.weight", &[v, h]);
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .map(|&t| embed[t as usize * h..(t as usize + 1) * h].to_vec())
        .collect();
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}.");
        let g = |n: &str, s: &[usize]| get(&format!("{p}{n}"), s);
        let (wq, wk, wv) = (
            g("self_attn.q_proj.weight", &[qd, h]),
            g("self_attn.k_proj.weight", &[kvd, h]),
            g("self_attn.v_proj.weight", &[kvd, h]),
        );
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let hn = norm(x, &g("input_layernorm.weight", &[h]));
            let (mut q, mut k, mut vv) = (mv(&wq, &hn, qd), mv(&wk, &hn, kvd), mv(&wv, &hn, kvd));
            if cfg.qkv_bias {
                for (a, b) in q.iter_mut().zip(g("self_attn.q_proj.bias", &[qd])) {
                    *a += b;
                }
                for (a, b) in k.iter_mut().zip(g("self_attn.k_proj.bias", &[kvd])) {
                    *a += b;
                }
                for (a, b) in vv.iter_mut().zip(g("self_attn.v_proj.bias", &[kvd])) {
                    *a += b;
                }
            }
            for head in q.chunks_mut(hd) {
                if cfg.qk_norm {
                    let n = norm(head, &g("self_attn.q_norm.weight", &[hd]));
                    head.copy_from_slice(&n);
                }
                rope(head, pos);
            }
            for head in k.chunks_mut(hd) {
                if cfg.qk_norm {
                    let n = norm(head, &g("self_attn.k_norm.weight", &[hd]));
                    head.copy_from_slice(&n);
                }
                rope(head, pos);
            }
            qs.push(q);
            ks.push(k);
            vs.push(vv);
        }
        let wo = g("self_attn.o_proj.weight", &[h, qd]);
        let (wg, wu, wd) = (
            g("mlp.gate_proj.weight", &[im, h]),
            g("mlp.up_proj.weight", &[im, h]),
            g("mlp.down_proj.weight", &[h, im]),
        );
        for (t, x) in xs.iter_mut().enumerate() {
            let mut att = vec![0.0f64; qd];
            for head in 0..nh {
                let kh = head / (nh / nkv);
                let q = &qs[t][head * hd..(head + 1) * hd];
                let sc: Vec<f64> = (0..=t)
                    .map(|j| {
                        let k = &ks[j][kh * hd..(kh + 1) * hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = sc.iter().map(|s| (s - m).exp()).sum();
                for (j, s) in sc.iter().enumerate() {
                    for d in 0..hd {
                        att[head * hd + d] += (s - m).exp() / z * vs[j][kh * hd + d];
                    }
                }
            }
            for (a, b) in x.iter_mut().zip(mv(&wo, &att, h)) {
                *a += b;
            }
            let hn = norm(x, &g("post_attention_layernorm.weight", &[h]));
            let gg = mv(&wg, &hn, im);
            let uu = mv(&wu, &hn, im);
            let act: Vec<f64> = gg
                .iter()
                .zip(&uu)
                .map(|(a, b)| a / (1.0 + (-a).exp()) * b)
                .collect();
            for (a, b) in x.iter_mut().zip(mv(&wd, &act, h)) {
                *a += b;
            }
        }
    }
    let last = norm(xs.last().unwrap(), &get("model.norm.weight", &[h]));
    let out = if store.contains("lm_head.weight") && cfg.tie_word_embeddings != Some(true) {
        get("lm_head.weight", &[v, h])
    } else {
        embed
    };
    mv(&out, &last, v).into_iter().map(|x| x as f32).collect()
}

fn families() -> Vec<ModelConfig> {
    let mut llama_inter = tiny(Arch::Llama);
    llama_inter.rope_style = RopeStyle::Interleaved;
    llama_inter.qkv_bias = true;
    let mut mha = tiny(Arch::Qwen3);
    mha.num_kv_heads = mha.num_heads;
    vec![
        tiny(Arch::Qwen3),
        tiny(Arch::Qwen2),
        tiny(Arch::Llama),
        llama_inter,
        mha,
    ]
}

#[test]
fn forward_matches_naive_reference_for_every_family() {
    let ids = [3u32, 14, 15, 92, 65, 35, 8, 9, 79];
    for (k, cfg) in families().iter().enumerate() {
        let d = model_dir(cfg, Dtype::F32, 1, 100 + k as u64);
        let store = TensorStore::open_dir(d.path()).unwrap();
        let mut cpu = CpuBackend::load(d.path()).unwrap();
        assert_eq!(cpu.config(), cfg);
        for len in [1, 2, ids.len()] {
            let got = cpu.logits(&ids[..len]).unwrap();
            let want = naive_logits(cfg, &store, &ids[..len]);
            let e = rel_err(&got, &want);
            assert!(e < 1e-4, "{:?} len {len}: rel err {e}", cfg.arch);
        }
    }
}

#[test]
fn family_features_change_the_output() {
    let ids = [1u32, 2, 3, 4];
    let base = tiny(Arch::Llama);
    let d = model_dir(&base, Dtype::F32, 1, 5);
    let l0 = CpuBackend::load(d.path()).unwrap().logits(&ids).unwrap();
    let mut inter = base.clone();
    inter.rope_style = RopeStyle::Interleaved;
    let d2 = model_dir(&inter, Dtype::F32, 1, 5);
    let l1 = CpuBackend::load(d2.path()).unwrap().logits(&ids).unwrap();
    assert!(rel_err(&l0, &l1) > 1e-3, "RoPE style has no effect");
    // Qwen3's q/k norm: scaling q_norm changes the logits.
    let cfg = tiny(Arch::Qwen3);
    let mut t = random_tensors(&cfg, false, 9);
    let d3 = TempDir::new("qn");
    write_model_dir(d3.path(), &cfg, &t, Dtype::F32, 1).unwrap();
    let a = CpuBackend::load(d3.path()).unwrap().logits(&ids).unwrap();
    for (n, _, v) in t.iter_mut() {
        if n.ends_with("q_norm.weight") {
            v.iter_mut().for_each(|x| *x *= 3.0);
        }
    }
    write_model_dir(d3.path(), &cfg, &t, Dtype::F32, 1).unwrap();
    let b = CpuBackend::load(d3.path()).unwrap().logits(&ids).unwrap();
    assert!(rel_err(&a, &b) > 1e-3, "q_norm has no effect");
}

fn round_tensors(
    t: &[(String, Vec<usize>, Vec<f32>)],
    f: fn(f32) -> f32,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    t.iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().map(|&x| f(x)).collect()))
        .collect()
}

#[test]
fn bf16_f16_files_equal_pre_rounded_f32_files() {
    let cfg = tiny(Arch::Qwen3);
    let t = random_tensors(&cfg, false, 77);
    let ids = [5u32, 6, 7, 8, 9];
    let run = |tensors: &[(String, Vec<usize>, Vec<f32>)], dt: Dtype| {
        let d = TempDir::new("dt");
        write_model_dir(d.path(), &cfg, tensors, dt, 1).unwrap();
        CpuBackend::load(d.path()).unwrap().logits(&ids).unwrap()
    };
    let bf = run(&t, Dtype::BF16);
    let bf_ref = run(
        &round_tensors(&t, |x| half::bf16::from_f32(x).to_f32()),
        Dtype::F32,
    );
    assert_eq!(bf, bf_ref);
    let hf = run(&t, Dtype::F16);
    let hf_ref = run(
        &round_tensors(&t, |x| half::f16::from_f32(x).to_f32()),
        Dtype::F32,
    );
    assert_eq!(hf, hf_ref);
    let full = run(&t, Dtype::F32);
    assert_ne!(full, bf);
    assert!(rel_err(&bf, &full) < 0.1);
}

#[test]
fn sharded_index_equals_single_file() {
    let cfg = tiny(Arch::Qwen2);
    let ids = [1u32, 50, 96];
    let one = model_dir(&cfg, Dtype::BF16, 1, 3);
    let three = model_dir(&cfg, Dtype::BF16, 3, 3);
    assert!(three.path().join("model.safetensors.index.json").exists());
    assert!(!three.path().join("model.safetensors").exists());
    let a = CpuBackend::load(one.path()).unwrap().logits(&ids).unwrap();
    let b = CpuBackend::load(three.path())
        .unwrap()
        .logits(&ids)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn tied_and_untied_embeddings() {
    let ids = [10u32, 20, 30];
    let mut cfg = tiny(Arch::Qwen3);
    cfg.tie_word_embeddings = None;
    let t = random_tensors(&cfg, false, 11);
    let d = TempDir::new("tied");
    write_model_dir(d.path(), &cfg, &t, Dtype::F32, 1).unwrap();
    let tied = CpuBackend::load(d.path()).unwrap().logits(&ids).unwrap();
    // Untied with lm_head == embed: same logits.
    let mut u = t.clone();
    let e = t
        .iter()
        .find(|x| x.0 == "model.embed_tokens.weight")
        .unwrap()
        .clone();
    u.push(("lm_head.weight".into(), e.1.clone(), e.2.clone()));
    let mut ucfg = cfg.clone();
    ucfg.tie_word_embeddings = Some(false);
    write_model_dir(d.path(), &ucfg, &u, Dtype::F32, 1).unwrap();
    assert_eq!(
        CpuBackend::load(d.path()).unwrap().logits(&ids).unwrap(),
        tied
    );
    // A different lm_head: different logits, equal to the naive reference.
    let last = u.len() - 1;
    u[last].2.iter_mut().for_each(|x| *x = -*x * 0.5);
    write_model_dir(d.path(), &ucfg, &u, Dtype::F32, 1).unwrap();
    let untied = CpuBackend::load(d.path()).unwrap().logits(&ids).unwrap();
    assert!(rel_err(&untied, &tied) > 0.1);
    let store = TensorStore::open_dir(d.path()).unwrap();
    assert!(rel_err(&untied, &naive_logits(&ucfg, &store, &ids)) < 1e-4);
    // tie_word_embeddings: false without lm_head.weight is an error naming it.
    write_model_dir(d.path(), &ucfg, &t, Dtype::F32, 1).unwrap();
    let err = CpuBackend::load(d.path()).unwrap_err();
    assert!(err.to_string().contains("lm_head.weight"), "{err}");
}

fn suffixes() -> (Vec<u32>, Vec<Vec<u32>>) {
    let prefix = vec![11u32, 22, 33, 44, 55, 66, 7];
    let s = vec![
        vec![1u32],
        vec![2, 3, 4],
        vec![90, 80, 70, 60, 50],
        vec![5, 5],
        vec![96],
    ];
    (prefix, s)
}

#[test]
fn prefix_shared_batch_logits_equal_one_by_one() {
    for cfg in families() {
        let d = model_dir(&cfg, Dtype::BF16, 1, 21);
        let mut cpu = CpuBackend::load(d.path()).unwrap();
        let (prefix, sufs) = suffixes();
        let batch = cpu.batch_logits(&prefix, &sufs).unwrap();
        for (i, s) in sufs.iter().enumerate() {
            let full: Vec<u32> = prefix.iter().chain(s).copied().collect();
            let one = cpu.logits(&full).unwrap();
            assert!(rel_err(&batch[i], &one) < 1e-5, "{:?} seq {i}", cfg.arch);
        }
        // An empty prefix works too.
        let b2 = cpu.batch_logits(&[], &sufs).unwrap();
        assert!(rel_err(&b2[1], &cpu.logits(&sufs[1]).unwrap()) < 1e-6);
    }
}

#[test]
fn generate_batch_equals_one_by_one_and_full_recompute() {
    let cfg = tiny(Arch::Qwen3);
    let d = model_dir(&cfg, Dtype::F32, 1, 31);
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    let (prefix, sufs) = suffixes();
    for sampling in [
        Sampling::Greedy,
        Sampling::TopP {
            temperature: 1.5,
            top_p: 0.9,
        },
    ] {
        let g = GenerateConfig {
            max_new_tokens: 6,
            sampling,
            seed: 5,
            ..GenerateConfig::default()
        };
        let batch = cpu.generate_batch(&prefix, &sufs, &g).unwrap();
        for (i, s) in sufs.iter().enumerate() {
            assert_eq!(batch[i].len(), 6);
            let one = cpu
                .generate_batch(
                    &prefix,
                    std::slice::from_ref(s),
                    &GenerateConfig {
                        stream_offset: i as u64,
                        ..g.clone()
                    },
                )
                .unwrap();
            assert_eq!(one[0], batch[i], "seq {i} {sampling:?}");
            if sampling == Sampling::Greedy {
                // Decoding with the KV cache gives the argmax of a full recompute at every step.
                let mut full: Vec<u32> = prefix.iter().chain(s).copied().collect();
                for &t in &batch[i] {
                    let l = cpu.logits(&full).unwrap();
                    assert_eq!(gpu_kernels::sampling::argmax(&l), t);
                    full.push(t);
                }
            }
        }
    }
}

#[test]
fn sampling_is_deterministic_per_seed_and_stops_on_stop_tokens() {
    let cfg = tiny(Arch::Llama);
    let d = model_dir(&cfg, Dtype::F32, 1, 41);
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    let (prefix, sufs) = suffixes();
    let g = |seed| GenerateConfig {
        max_new_tokens: 8,
        sampling: Sampling::TopP {
            temperature: 2.0,
            top_p: 1.0,
        },
        seed,
        ..GenerateConfig::default()
    };
    let a = cpu.generate_batch(&prefix, &sufs, &g(1)).unwrap();
    assert_eq!(a, cpu.generate_batch(&prefix, &sufs, &g(1)).unwrap());
    assert_ne!(a, cpu.generate_batch(&prefix, &sufs, &g(2)).unwrap());
    // Stop on the greedy first token: empty outputs.
    let greedy = cpu
        .generate_batch(
            &prefix,
            &sufs[..1],
            &GenerateConfig {
                max_new_tokens: 3,
                ..GenerateConfig::default()
            },
        )
        .unwrap();
    let stop = GenerateConfig {
        max_new_tokens: 3,
        stop_tokens: vec![greedy[0][0]],
        ..GenerateConfig::default()
    };
    assert!(cpu.generate_batch(&prefix, &sufs[..1], &stop).unwrap()[0].is_empty());
    // Stop on the second token: one token out.
    let stop2 = GenerateConfig {
        stop_tokens: vec![greedy[0][1]],
        ..stop
    };
    if greedy[0][1] != greedy[0][0] {
        assert_eq!(
            cpu.generate_batch(&prefix, &sufs[..1], &stop2).unwrap()[0],
            vec![greedy[0][0]]
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    let cfg = tiny(Arch::Qwen3);
    let d = model_dir(&cfg, Dtype::F32, 1, 1);
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    assert!(matches!(cpu.logits(&[]), Err(Error::Input(_))));
    assert!(matches!(cpu.logits(&[97]), Err(Error::Input(_))));
    assert!(matches!(
        cpu.batch_logits(&[1], &[vec![]]),
        Err(Error::Input(_))
    ));
    let bad = GenerateConfig {
        sampling: Sampling::TopP {
            temperature: 0.0,
            top_p: 0.5,
        },
        ..GenerateConfig::default()
    };
    assert!(cpu.generate_batch(&[1], &[vec![2]], &bad).is_err());
    assert_eq!(
        cpu.generate_batch(&[1], &[], &GenerateConfig::default())
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn missing_and_misshapen_tensors_are_named() {
    let cfg = tiny(Arch::Qwen3);
    let t = random_tensors(&cfg, false, 2);
    let d = TempDir::new("err");
    let missing: Vec<_> = t
        .iter()
        .filter(|x| x.0 != "model.layers.1.self_attn.k_norm.weight")
        .cloned()
        .collect();
    write_model_dir(d.path(), &cfg, &missing, Dtype::F32, 1).unwrap();
    let e = CpuBackend::load(d.path()).unwrap_err();
    assert!(
        matches!(&e, Error::MissingTensor { name } if name == "model.layers.1.self_attn.k_norm.weight"),
        "{e}"
    );
    let mut wrong = t.clone();
    let j = wrong
        .iter()
        .position(|x| x.0 == "model.layers.0.mlp.up_proj.weight")
        .unwrap();
    wrong[j].1 = vec![cfg.hidden_size, cfg.intermediate_size];
    write_model_dir(d.path(), &cfg, &wrong, Dtype::F32, 1).unwrap();
    let e = CpuBackend::load(d.path()).unwrap_err();
    assert!(
        e.to_string().contains("model.layers.0.mlp.up_proj.weight"),
        "{e}"
    );
    assert!(matches!(e, Error::TensorShape { .. }));
    // No weights at all.
    let empty = TempDir::new("empty");
    std::fs::write(
        empty.path().join("config.json"),
        serde_json::to_vec(&cfg.to_hf_json()).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        CpuBackend::load(empty.path()),
        Err(Error::Io { .. })
    ));
}

#[test]
fn bad_configs_name_the_field() {
    let good = tiny(Arch::Qwen3).to_hf_json();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("hidden_size", serde_json::Value::Null, "hidden_size"),
        ("num_key_value_heads", 3.into(), "num_key_value_heads"),
        ("model_type", "gpt2".into(), "model_type"),
        ("vocab_size", (-4).into(), "vocab_size"),
        ("rope_theta", "big".into(), "rope_theta"),
        ("hidden_act", "gelu".into(), "hidden_act"),
        ("head_dim", 7.into(), "head_dim"),
    ];
    for (field, val, name) in cases {
        let mut v = good.clone();
        if val.is_null() {
            v.as_object_mut().unwrap().remove(field);
        } else {
            v[field] = val;
        }
        let e = ModelConfig::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains(name), "{field}: {e}");
    }
    assert!(ModelConfig::from_json_bytes(b"{not json").is_err());
    // File errors carry the path.
    let d = TempDir::new("cfg");
    let p = d.path().join("config.json");
    std::fs::write(&p, b"[1, 2]").unwrap();
    let e = ModelConfig::from_file(&p).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
}

#[test]
fn rope_theta_from_rope_parameters_and_defaults() {
    let mut v = tiny(Arch::Qwen3).to_hf_json();
    v.as_object_mut().unwrap().remove("rope_theta");
    v["rope_parameters"] = serde_json::json!({"rope_type": "default", "rope_theta": 1000000.0});
    let c = ModelConfig::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(c.rope_theta, 1_000_000.0);
    v["rope_parameters"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
    let e = ModelConfig::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(e.to_string().contains("rope_type"), "{e}");
    let mut v = tiny(Arch::Qwen2).to_hf_json();
    v.as_object_mut().unwrap().remove("head_dim");
    v["eos_token_id"] = 5.into();
    let c = ModelConfig::from_json_bytes(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(c.head_dim, c.hidden_size / c.num_heads);
    assert!(c.qkv_bias);
    assert_eq!(c.eos_token_ids, vec![5]);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_backend_without_the_feature_is_a_clean_error() {
    let d = model_dir(&tiny(Arch::Qwen3), Dtype::BF16, 1, 3);
    let e = gpu_kernels::load_backend(
        d.path(),
        &gpu_kernels::BackendKind::Cuda(Default::default()),
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::CudaUnavailable(_)), "{e}");
}

#[test]
fn parses_the_real_qwen3_0_6b_config() {
    let json = br#"{"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
      "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
      "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
      "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
      "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
      "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
      "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}"#;
    let c = ModelConfig::from_json_bytes(json).unwrap();
    let want = ModelConfig {
        bos_token_id: Some(151_643),
        ..ModelConfig::qwen3_0_6b()
    };
    assert_eq!(c, want);
    assert_eq!(c.kv_bytes_per_token(2), 112 * 1024);
}

#[test]
fn kv_caches_made_outside_the_crate() {
    let cfg = tiny(Arch::Qwen3);
    let d = model_dir(&cfg, Dtype::F32, 1, 13);
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    let ids = [3u32, 1, 4, 1, 5];
    let want = cpu.logits(&ids).unwrap();
    // The public constructor: prefill, then decode one token, as the Backend methods do.
    let mut caches = vec![KvCache::new(cfg.num_layers), cpu.new_cache()];
    assert_eq!(caches[0].num_layers(), cfg.num_layers);
    let got = cpu
        .forward(None, &mut caches, &[(0, &ids[..4]), (1, &ids[..2])])
        .unwrap();
    assert!(rel_err(&got[0], &cpu.logits(&ids[..4]).unwrap()) < 1e-6);
    let got = cpu.forward(None, &mut caches, &[(0, &ids[4..])]).unwrap();
    assert!(rel_err(&got[0], &want) < 1e-5);
    assert_eq!((caches[0].len(), caches[1].len()), (5, 2));
    // A default cache has no layers: an input error, not a panic, and no cache is touched.
    let mut bad = vec![cpu.new_cache(), KvCache::default()];
    assert_eq!(bad[1].num_layers(), 0);
    let e = cpu
        .forward(None, &mut bad, &[(0, &ids[..]), (1, &ids[..])])
        .unwrap_err();
    assert!(
        matches!(&e, Error::Input(m) if m.contains("cache 1") && m.contains("layers")),
        "{e}"
    );
    assert!(bad[0].is_empty());
    let e = cpu
        .forward(
            Some(&KvCache::default()),
            &mut caches[1..],
            &[(0, &ids[..1])],
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::Input(m) if m.contains("prefix cache")),
        "{e}"
    );
    assert_eq!(caches[1].len(), 2);
    // A filled cache of a model with another kv width (or layer count) is rejected too.
    let other_cfg = ModelConfig {
        num_kv_heads: 4,
        ..cfg.clone()
    };
    let od = model_dir(&other_cfg, Dtype::F32, 1, 14);
    let other = CpuBackend::load(od.path()).unwrap();
    let (foreign, _) = other.prefill(&ids[..3]).unwrap();
    let mut v = vec![foreign.clone()];
    let e = cpu.forward(None, &mut v, &[(0, &ids[..1])]).unwrap_err();
    assert!(matches!(&e, Error::Input(m) if m.contains("kv_dim")), "{e}");
    assert_eq!(v[0].len(), 3);
    let e = cpu
        .forward(Some(&foreign), &mut caches[..1], &[(0, &ids[..1])])
        .unwrap_err();
    assert!(matches!(e, Error::Input(_)), "{e}");
    let mut three = vec![KvCache::new(cfg.num_layers + 1)];
    assert!(matches!(
        cpu.forward(None, &mut three, &[(0, &ids[..1])]),
        Err(Error::Input(_))
    ));
    // An empty cache made for the same layer count works with any width.
    let mut fresh = vec![other.new_cache()];
    assert!(cpu.forward(None, &mut fresh, &[(0, &ids[..])]).is_ok());
}

#[test]
fn subnormal_temperature_generates_like_greedy() {
    // 1 / 1e-40 is inf in f32: with weights computed as exp((l - max) * (1 / t)) the top weight
    // was NaN and the sampler picked a low-probability token. It now behaves as greedy decoding
    // (random models have no exactly tied logits).
    let cfg = tiny(Arch::Llama);
    let d = model_dir(&cfg, Dtype::F32, 1, 17);
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    let (prefix, sufs) = suffixes();
    let greedy = GenerateConfig {
        max_new_tokens: 5,
        ..GenerateConfig::default()
    };
    let tiny_t = GenerateConfig {
        sampling: Sampling::TopP {
            temperature: 1e-40,
            top_p: 0.9,
        },
        seed: 3,
        ..greedy.clone()
    };
    assert_eq!(
        cpu.generate_batch(&prefix, &sufs, &tiny_t).unwrap(),
        cpu.generate_batch(&prefix, &sufs, &greedy).unwrap()
    );
}

fn parse(v: &serde_json::Value) -> gpu_kernels::Result<ModelConfig> {
    ModelConfig::from_json_bytes(&serde_json::to_vec(v).unwrap())
}

#[test]
fn unimplemented_features_are_rejected_naming_the_field() {
    let base = tiny(Arch::Llama).to_hf_json();
    let with = |pairs: &[(&str, serde_json::Value)]| {
        let mut v = base.clone();
        for (k, x) in pairs {
            v[*k] = x.clone();
        }
        v
    };
    let rejects = |v: serde_json::Value, field: &str| {
        let e = parse(&v).unwrap_err();
        assert!(
            matches!(&e, Error::ConfigField { field: f, .. } if f == field),
            "want `{field}`: {e}"
        );
    };
    let yarn = serde_json::json!({"type": "yarn", "factor": 4.0,
        "original_max_position_embeddings": 32768});
    // A null `rope_parameters` no longer hides `rope_scaling`.
    rejects(
        with(&[
            ("rope_parameters", serde_json::Value::Null),
            ("rope_scaling", yarn.clone()),
        ]),
        "rope_scaling.type",
    );
    rejects(
        with(&[
            (
                "rope_parameters",
                serde_json::json!({"rope_type": "default", "rope_theta": 1e6}),
            ),
            (
                "rope_scaling",
                serde_json::json!({"rope_type": "linear", "factor": 2.0}),
            ),
        ]),
        "rope_scaling.rope_type",
    );
    rejects(with(&[("rope_scaling", yarn)]), "rope_scaling.type");
    rejects(with(&[("rope_scaling", 3.into())]), "rope_scaling");
    rejects(
        with(&[("rope_scaling", serde_json::json!({"rope_type": 1}))]),
        "rope_scaling.rope_type",
    );
    rejects(with(&[("mlp_bias", true.into())]), "mlp_bias");
    // Mistral's sliding window, when shorter than the declared context.
    let mistral = |w: serde_json::Value| {
        with(&[
            ("model_type", "mistral".into()),
            ("max_position_embeddings", 32768.into()),
            ("sliding_window", w),
        ])
    };
    rejects(mistral(4096.into()), "sliding_window");
    rejects(mistral("big".into()), "sliding_window");
    // Accepted: what the crate implements or what is a no-op.
    for ok in [
        mistral(serde_json::Value::Null),
        mistral(32768.into()),
        mistral(131072.into()),
        with(&[("mlp_bias", false.into())]),
        with(&[("rope_scaling", serde_json::json!({"rope_type": "default"}))]),
        with(&[
            ("rope_parameters", serde_json::Value::Null),
            ("rope_scaling", serde_json::Value::Null),
        ]),
        // Qwen2's window is only used with use_sliding_window: true.
        with(&[
            ("model_type", "qwen2".into()),
            ("sliding_window", 4096.into()),
        ]),
    ] {
        parse(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn real_configs_load_or_are_rejected_for_what_they_need() {
    // Qwen2.5-0.5B-Instruct: a sliding_window that use_sliding_window: false turns off.
    let qwen25 = br#"{"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
      "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896,
      "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 32768,
      "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 14,
      "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
      "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
      "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
      "use_sliding_window": false, "vocab_size": 151936}"#;
    let c = ModelConfig::from_json_bytes(qwen25).unwrap();
    assert_eq!((c.arch, c.head_dim, c.num_kv_heads), (Arch::Qwen2, 64, 2));
    // Mistral-7B-Instruct-v0.2: no window.
    let mistral_v02 = br#"{"architectures": ["MistralForCausalLM"], "attention_dropout": 0.0,
      "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096,
      "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
      "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32,
      "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
      "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
      "transformers_version": "4.36.0", "use_cache": true, "vocab_size": 32000}"#;
    let c = ModelConfig::from_json_bytes(mistral_v02).unwrap();
    assert_eq!((c.arch, c.rope_theta), (Arch::Llama, 1e6));
    // Mistral-7B-v0.1: a 4096-token window in a 32768-token context.
    let mistral_v01 = String::from_utf8_lossy(mistral_v02)
        .replace("\"sliding_window\": null", "\"sliding_window\": 4096")
        .replace("1000000.0", "10000.0");
    let e = ModelConfig::from_json_bytes(mistral_v01.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("sliding_window"), "{e}");
    // Llama-3.2-1B: llama3 RoPE scaling (and mlp_bias: false, which is fine).
    let llama32 = br#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false,
      "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64,
      "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
      "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false,
      "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
      "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
      "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256}"#;
    let e = ModelConfig::from_json_bytes(llama32).unwrap_err();
    assert!(
        matches!(&e, Error::ConfigField { field, msg } if field == "rope_scaling.rope_type" && msg.contains("llama3")),
        "{e}"
    );
    let unscaled = String::from_utf8_lossy(llama32)
        .replace("\"rope_type\": \"llama3\"", "\"rope_type\": \"default\"");
    let c = ModelConfig::from_json_bytes(unscaled.as_bytes()).unwrap();
    assert_eq!((c.head_dim, c.tie_word_embeddings), (64, Some(true)));
}
