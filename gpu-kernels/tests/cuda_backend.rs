//! GPU vs CPU (feature `cuda`). Every test prints "skipped: no CUDA driver" and returns where the
//! driver, NVRTC, cuBLAS or a device is missing.
#![cfg(feature = "cuda")]

mod common;

use common::{model_dir, rel_err, tiny};
use gpu_kernels::cuda::{CudaBackend, cuda_available};
use gpu_kernels::weights::Dtype;
use gpu_kernels::{
    Arch, Backend, CpuBackend, CudaOptions, GenerateConfig, GpuDtype, ModelConfig, RopeStyle,
    Sampling,
};

fn gpu_ok() -> bool {
    match cuda_available() {
        Ok(()) => true,
        Err(e) => {
            println!("skipped: no CUDA driver ({e})");
            false
        }
    }
}

fn opts(dtype: GpuDtype) -> CudaOptions {
    CudaOptions {
        dtype,
        ..CudaOptions::default()
    }
}

fn configs() -> Vec<ModelConfig> {
    let mut inter = tiny(Arch::Llama);
    inter.rope_style = RopeStyle::Interleaved;
    let mut wide = tiny(Arch::Qwen3);
    wide.head_dim = 128;
    wide.hidden_size = 256;
    wide.num_heads = 4;
    wide.num_kv_heads = 1;
    wide.intermediate_size = 512;
    wide.vocab_size = 3000;
    vec![
        tiny(Arch::Qwen3),
        tiny(Arch::Qwen2),
        tiny(Arch::Llama),
        inter,
        wide,
    ]
}

/// Random token ids from a seed.
fn ids(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut r = gpu_kernels::model::SplitMix64(seed);
    (0..n)
        .map(|_| (r.next_u64() % vocab as u64) as u32)
        .collect()
}

#[test]
fn gpu_logits_match_cpu_f32_and_bf16() {
    if !gpu_ok() {
        return;
    }
    for (k, cfg) in configs().iter().enumerate() {
        for dt in [Dtype::F32, Dtype::BF16] {
            let d = model_dir(cfg, dt, 1, 1000 + k as u64);
            let mut cpu = CpuBackend::load(d.path()).unwrap();
            for (gdt, tol) in [(GpuDtype::F32, 1e-4f32), (GpuDtype::Bf16, 1e-2)] {
                let mut gpu = CudaBackend::load(d.path(), opts(gdt)).unwrap();
                for (s, n) in [(1u64, 1usize), (2, 7), (3, 200)] {
                    let x = ids(s, n, cfg.vocab_size);
                    let a = gpu.logits(&x).unwrap();
                    let b = cpu.logits(&x).unwrap();
                    let e = rel_err(&a, &b);
                    assert!(
                        e <= tol,
                        "{:?} file {dt:?} gpu {gdt:?} len {n}: rel err {e}",
                        cfg.arch
                    );
                }
            }
        }
    }
}

#[test]
fn gpu_prefix_shared_batch_matches_one_by_one_and_cpu() {
    if !gpu_ok() {
        return;
    }
    for cfg in [tiny(Arch::Qwen3), configs().pop().unwrap()] {
        let d = model_dir(&cfg, Dtype::F32, 1, 7);
        let mut cpu = CpuBackend::load(d.path()).unwrap();
        let prefix = ids(1, 37, cfg.vocab_size);
        let sufs: Vec<Vec<u32>> = (0..11)
            .map(|i| ids(10 + i, 1 + (i as usize * 3) % 9, cfg.vocab_size))
            .collect();
        let cpu_batch = cpu.batch_logits(&prefix, &sufs).unwrap();
        let g = GenerateConfig {
            max_new_tokens: 6,
            sampling: Sampling::Greedy,
            ..GenerateConfig::default()
        };
        let cpu_gen = cpu.generate_batch(&prefix, &sufs, &g).unwrap();
        for cascade in [false, true] {
            for (gdt, tol) in [(GpuDtype::F32, 1e-4f32), (GpuDtype::Bf16, 1e-2)] {
                let what = format!("{:?} cascade={cascade} {gdt:?}", cfg.arch);
                // Small limits force several forward pieces and KV chunks.
                let mut o = opts(gdt);
                o.max_batch_tokens = 16;
                o.max_logit_rows = 3;
                o.kv_budget_bytes = Some(cfg.kv_bytes_per_token(4) * 40);
                o.cascade_prefix = cascade;
                let mut gpu = CudaBackend::load(d.path(), o).unwrap();
                let batch = gpu.batch_logits(&prefix, &sufs).unwrap();
                for (i, s) in sufs.iter().enumerate() {
                    let full: Vec<u32> = prefix.iter().chain(s).copied().collect();
                    let one = gpu.logits(&full).unwrap();
                    assert!(
                        rel_err(&batch[i], &one) <= tol,
                        "{what} seq {i} vs one-by-one"
                    );
                    assert!(
                        rel_err(&batch[i], &cpu_batch[i]) <= tol,
                        "{what} seq {i} vs cpu"
                    );
                }
                let a = gpu.generate_batch(&prefix, &sufs, &g).unwrap();
                if gdt == GpuDtype::F32 {
                    assert_eq!(a, cpu_gen, "{what}: greedy generation differs from the CPU");
                }
                for (i, s) in sufs.iter().enumerate() {
                    let one = gpu
                        .generate_batch(
                            &prefix,
                            std::slice::from_ref(s),
                            &GenerateConfig {
                                stream_offset: i as u64,
                                ..g.clone()
                            },
                        )
                        .unwrap();
                    if gdt == GpuDtype::F32 {
                        assert_eq!(one[0], a[i], "{what} seq {i}");
                    }
                }
            }
        }
    }
}

#[test]
fn gpu_sampling_is_deterministic_per_seed_and_matches_cpu_f32() {
    if !gpu_ok() {
        return;
    }
    let cfg = tiny(Arch::Llama);
    let d = model_dir(&cfg, Dtype::F32, 1, 9);
    let mut cpu = CpuBackend::load(d.path()).unwrap();
    let mut gpu = CudaBackend::load(d.path(), opts(GpuDtype::F32)).unwrap();
    let prefix = ids(2, 20, cfg.vocab_size);
    let sufs: Vec<Vec<u32>> = (0..16).map(|i| ids(50 + i, 4, cfg.vocab_size)).collect();
    let g = |seed| GenerateConfig {
        max_new_tokens: 8,
        sampling: Sampling::TopP {
            temperature: 1.3,
            top_p: 0.9,
        },
        seed,
        ..GenerateConfig::default()
    };
    let a = gpu.generate_batch(&prefix, &sufs, &g(4)).unwrap();
    assert_eq!(a, gpu.generate_batch(&prefix, &sufs, &g(4)).unwrap());
    assert_ne!(a, gpu.generate_batch(&prefix, &sufs, &g(5)).unwrap());
    // Same algorithm on both backends: with f32 logits agreeing to ~1e-6, tokens agree except at
    // near-ties of the cumulative sums; require 90% agreement of the sequences.
    let c = cpu.generate_batch(&prefix, &sufs, &g(4)).unwrap();
    let same = a.iter().zip(&c).filter(|(x, y)| x == y).count();
    assert!(
        same * 10 >= sufs.len() * 9,
        "only {same}/{} sequences agree with the CPU",
        sufs.len()
    );
    // bf16 runs are deterministic too.
    let mut gb = CudaBackend::load(d.path(), opts(GpuDtype::Bf16)).unwrap();
    let x = gb.generate_batch(&prefix, &sufs, &g(4)).unwrap();
    assert_eq!(x, gb.generate_batch(&prefix, &sufs, &g(4)).unwrap());
}

#[test]
fn gpu_errors_are_clean() {
    if !gpu_ok() {
        return;
    }
    let cfg = tiny(Arch::Qwen3);
    let d = model_dir(&cfg, Dtype::BF16, 1, 3);
    let mut gpu = CudaBackend::load(d.path(), opts(GpuDtype::Bf16)).unwrap();
    assert!(gpu.logits(&[]).is_err());
    assert!(gpu.logits(&[cfg.vocab_size as u32]).is_err());
    assert!(gpu.batch_logits(&[1], &[vec![]]).is_err());
}

#[test]
fn no_driver_is_a_clean_error_not_a_panic() {
    if cuda_available().is_ok() {
        println!("skipped: a CUDA driver is present");
        return;
    }
    let d = model_dir(&tiny(Arch::Qwen3), Dtype::BF16, 1, 3);
    let e = CudaBackend::load(d.path(), CudaOptions::default()).unwrap_err();
    assert!(matches!(e, gpu_kernels::Error::CudaUnavailable(_)), "{e}");
    let e = gpu_kernels::load_backend(
        d.path(),
        &gpu_kernels::BackendKind::Cuda(CudaOptions::default()),
    )
    .err()
    .unwrap();
    assert!(matches!(e, gpu_kernels::Error::CudaUnavailable(_)), "{e}");
}
