//! Compiles every kernel with NVRTC where libnvrtc can be loaded (no GPU needed); skips otherwise.

use gpu_kernels::kernels::{KERNEL_NAMES, compile_kernels, nvrtc_available};

#[test]
fn kernels_compile_with_nvrtc() {
    if !nvrtc_available() {
        println!("skipped: libnvrtc not found (LD_LIBRARY_PATH)");
        return;
    }
    for arch in ["compute_80", "compute_90"] {
        let ptx = compile_kernels(arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        let src = ptx.to_src();
        for name in KERNEL_NAMES {
            assert!(
                src.contains(&format!(".entry {name}(")),
                "{arch}: kernel {name} missing from the PTX"
            );
        }
    }
}

#[test]
fn kernel_names_are_extern_c_in_source() {
    for name in KERNEL_NAMES {
        let src = gpu_kernels::kernels::KERNELS_CU;
        assert!(
            src.contains(&format!("__global__ void {name}("))
                || src.contains(&format!(") {name}(")),
            "{name} not declared"
        );
    }
}
