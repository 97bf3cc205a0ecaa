//! f32 kernels of the CPU reference: matmul, RMSNorm, RoPE, SiLU.

use rayon::prelude::*;

use crate::config::RopeStyle;

/// Dot product with 8 independent accumulators (vectorises well).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y[t, o] = sum_i x[t, i] * w[o, i] (+ bias[o])` for `x: [n, k]`, `w: [m, k]`; returns `[n, m]`.
///
/// Parallel over blocks of weight rows; each block stays in cache while all tokens pass over it.
/// Every output element is one [`dot`], so a row's result does not depend on the other rows.
pub fn matmul(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    const MB: usize = 32;
    let blocks: Vec<Vec<f32>> = (0..m.div_ceil(MB))
        .into_par_iter()
        .map(|b| {
            let o0 = b * MB;
            let o1 = (o0 + MB).min(m);
            let mut out = vec![0.0f32; n * (o1 - o0)];
            for t in 0..n {
                let xr = &x[t * k..(t + 1) * k];
                for o in o0..o1 {
                    let mut v = dot(xr, &w[o * k..(o + 1) * k]);
                    if let Some(bias) = bias {
                        v += bias[o];
                    }
                    out[t * (o1 - o0) + (o - o0)] = v;
                }
            }
            out
        })
        .collect();
    let mut y = vec![0.0f32; n * m];
    for (b, blk) in blocks.iter().enumerate() {
        let o0 = b * MB;
        let w = (o0 + MB).min(m) - o0;
        for t in 0..n {
            y[t * m + o0..t * m + o0 + w].copy_from_slice(&blk[t * w..(t + 1) * w]);
        }
    }
    y
}

/// RMSNorm of each `dim`-sized row of `x`, in place: `x / sqrt(mean(x^2) + eps) * w`.
pub fn rmsnorm_rows(x: &mut [f32], dim: usize, w: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / dim as f32;
        let r = 1.0 / (ms + eps).sqrt();
        for (v, g) in row.iter_mut().zip(w) {
            *v = *v * r * g;
        }
    }
}

/// RoPE inverse frequencies `theta^(-2i/d)` for `i < d/2`.
pub fn inv_freq(theta: f32, head_dim: usize) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| (1.0 / (theta as f64).powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect()
}

/// Applies RoPE at position `pos` to one head vector in place.
pub fn rope_head(x: &mut [f32], pos: usize, inv_freq: &[f32], style: RopeStyle) {
    let half = inv_freq.len();
    for (i, &f) in inv_freq.iter().enumerate() {
        let a = pos as f32 * f;
        let (s, c) = a.sin_cos();
        let (i0, i1) = match style {
            RopeStyle::HalfSplit => (i, i + half),
            RopeStyle::Interleaved => (2 * i, 2 * i + 1),
        };
        let (x0, x1) = (x[i0], x[i1]);
        x[i0] = x0 * c - x1 * s;
        x[i1] = x1 * c + x0 * s;
    }
}

/// SiLU.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}
