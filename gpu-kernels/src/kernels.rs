//! The CUDA kernel sources and their NVRTC compilation.
//!
//! This module is compiled without the `cuda` feature: NVRTC needs no GPU, so CI can check that
//! every kernel compiles wherever `libnvrtc` can be loaded (for example from the PyPI wheel
//! `nvidia-cuda-nvrtc-cu12`, with its `lib` directory on `LD_LIBRARY_PATH`).

use crate::error::{Error, Result};

/// The source of every kernel (one translation unit).
pub const KERNELS_CU: &str = include_str!("cuda/kernels.cu");

/// The `extern "C"` kernel entry points in [`KERNELS_CU`].
pub const KERNEL_NAMES: &[&str] = &[
    "embed_f32",
    "embed_bf16",
    "rmsnorm_f32",
    "rmsnorm_bf16",
    "qkv_post_f32",
    "qkv_post_bf16",
    "attention_f32",
    "attention_bf16",
    "prefix_softmax_f32",
    "prefix_softmax_bf16",
    "swiglu_f32",
    "swiglu_bf16",
    "residual_add",
    "sample_rows",
];

/// Whether `libnvrtc` can be loaded (checked without panicking).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library by its candidate names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles [`KERNELS_CU`] to PTX for a virtual architecture such as `"compute_80"`.
///
/// Precise math (no fast-math flags), so the f32 path can be compared with the CPU reference.
pub fn compile_kernels(arch: &'static str) -> Result<cudarc::nvrtc::Ptx> {
    if !nvrtc_available() {
        return Err(Error::CudaUnavailable(
            "libnvrtc not found (put its directory on LD_LIBRARY_PATH)".into(),
        ));
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        name: Some("kernels.cu".into()),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(KERNELS_CU, opts).map_err(|e| {
        let detail = match &e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                log.to_string_lossy().into_owned()
            }
            other => format!("{other:?}"),
        };
        Error::Cuda(format!("NVRTC compilation of kernels.cu failed: {detail}"))
    })
}
