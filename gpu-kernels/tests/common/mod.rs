//! Shared helpers of the integration tests: temporary model directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gpu_kernels::weights::Dtype;
use gpu_kernels::{Arch, ModelConfig};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "gpu-kernels-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Writes a random model of `cfg` and returns its directory.
pub fn model_dir(cfg: &ModelConfig, dtype: Dtype, shards: usize, seed: u64) -> TempDir {
    let d = TempDir::new("model");
    gpu_kernels::model::write_random_model(d.path(), cfg, dtype, shards, seed).unwrap();
    d
}

pub fn tiny(arch: Arch) -> ModelConfig {
    ModelConfig::tiny(arch)
}

/// max |a - b| / max |b|.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let den = b.iter().map(|y| y.abs()).fold(0.0f32, f32::max).max(1e-12);
    num / den
}
