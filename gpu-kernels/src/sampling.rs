//! The shared seeded sampler. The CUDA kernel `sample_rows` implements the same algorithm, so that
//! the same seed gives the same token on both backends (given the same logits up to rounding
//! away from near-ties).
//!
//! Algorithm, for one row of logits `l` (sequence `stream`, generated-token index `step`):
//! - [`Sampling::Greedy`]: the index of the largest logit, lowest index on ties (NaN counts as -inf).
//! - [`Sampling::TopP`]: `w_i = exp((l_i - max l) / temperature)`, `Z = sum w`. The threshold `t` is
//!   the largest weight such that the weights `>= t` sum to at least `top_p * Z`; the nucleus is every
//!   `i` with `w_i >= t` (ties included). With `u = uniform(seed, stream, step)` and `S` the nucleus
//!   mass, the token is the first nucleus index (ascending) whose running sum exceeds `u * S`.
//!
//! Both backends compute each weight with the same operations in the same order: `l_i - max l`,
//! then a true division by `temperature` (not a multiplication by `1 / temperature`), then `exp`.
//! The argument is always in `[-inf, 0]`, so every weight is in `[0, 1]` and never NaN, whatever the
//! temperature: in particular a temperature so small that `1 / temperature` overflows (a subnormal
//! such as `1e-40`) is accepted, and only logits within about `100 * temperature` of the maximum
//! keep a nonzero weight. In practice that is greedy decoding (the argmax, as [`Sampling::Greedy`]
//! picks it), except that exactly tied maxima are drawn among at random instead of the lowest. The
//! uniform draw `u` is bit-identical on both backends, and the CPU accumulates every sum (`Z`, the
//! masses of the threshold search, the nucleus mass `S`, the running sums of the draw) in the order
//! the kernel does (see [`SAMPLE_THREADS`] and [`sample`]), so the same weights give the same token
//! bit for bit. The weights themselves can differ in their last bits (the logits come from
//! different matmuls, and `exp` is not correctly rounded on either side), so the backends agree on
//! the token except at near-ties; no systematic difference of summation order remains (a plain
//! sequential f32 sum over a 150k-token vocabulary drifts by whole tokens from the kernel's).

/// How to pick the next token from logits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Sampling {
    /// Argmax (deterministic, no randomness).
    Greedy,
    /// Temperature then nucleus (top-p) sampling, seeded.
    TopP {
        /// Softmax temperature: positive and finite. Arbitrarily small values (down to subnormals)
        /// are valid and tend to greedy decoding (see the module docs).
        temperature: f32,
        /// Nucleus mass in `(0, 1]`.
        top_p: f32,
    },
}

impl Sampling {
    /// Validates the parameters.
    pub fn validate(&self) -> crate::Result<()> {
        if let Sampling::TopP { temperature, top_p } = *self {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(crate::Error::input(format!(
                    "temperature must be positive and finite, got {temperature}"
                )));
            }
            if !(top_p > 0.0 && top_p <= 1.0) {
                return Err(crate::Error::input(format!(
                    "top_p must be in (0, 1], got {top_p}"
                )));
            }
        }
        Ok(())
    }
}

/// The SplitMix64 finaliser (a bijective 64-bit mixer).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The uniform draw in `[0, 1)` for (seed, stream, step): a counter-based generator, so any backend
/// can compute it for any sequence and step without carrying state. 24 bits of resolution.
pub fn uniform(seed: u64, stream: u64, step: u64) -> f32 {
    let h = mix64(mix64(mix64(seed) ^ stream) ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Argmax with the lowest index on ties; NaN is never chosen unless all are NaN (then 0).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut bv = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &x) in logits.iter().enumerate() {
        if !x.is_nan() && (!found || x > bv) {
            best = i;
            bv = x;
            found = true;
        }
    }
    best as u32
}

/// Threads of the CUDA kernel `sample_rows` (one block of this many threads per row). The CPU
/// sampler reproduces the kernel's summation order for this block size.
pub const SAMPLE_THREADS: usize = 1024;

/// The kernel's `block_sum` of the weights that `keep` accepts: thread `j` adds, in index order
/// from 0, the kept `w[i]` with `i % SAMPLE_THREADS == j`; each warp of 32 threads reduces with a
/// shuffle-xor tree (offsets 16, 8, 4, 2, 1), then the first warp reduces the 32 warp sums the same
/// way.
fn block_sum(w: &[f32], keep: impl Fn(f32) -> bool) -> f32 {
    // Thread `j` is lane `j % 32` of warp `j / 32`.
    let mut lanes = [[0.0f32; 32]; SAMPLE_THREADS / 32];
    for row in w.chunks(SAMPLE_THREADS) {
        for (acc, &x) in lanes.as_flattened_mut().iter_mut().zip(row) {
            if keep(x) {
                *acc += x;
            }
        }
    }
    fn xor_tree(mut v: [f32; 32]) -> f32 {
        for o in [16, 8, 4, 2, 1] {
            let b = v;
            for (l, x) in v.iter_mut().enumerate() {
                *x = b[l] + b[l ^ o];
            }
        }
        v[0]
    }
    // 1024 threads make 32 warps, whose sums fill the first warp exactly. Only compiles for
    // SAMPLE_THREADS == 1024, which kernels.cu also hardcodes (`__launch_bounds__`, `scan[1024]`).
    xor_tree(lanes.map(xor_tree))
}

/// The nucleus threshold: the largest `t` (searched over the bit patterns of `[0, 1]`, as the
/// kernel does) whose kept mass `block_sum(w >= t)` is at least `target`.
fn threshold(w: &[f32], target: f32) -> f32 {
    let (mut lo, mut hi) = (0u32, 1.0f32.to_bits() + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let t = f32::from_bits(mid);
        if block_sum(w, |x| x >= t) >= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    f32::from_bits(lo)
}

/// The kernel's draw among the nucleus `w >= t` for the uniform `u`: thread `k` owns the contiguous
/// bucket `[k * chunk, (k + 1) * chunk)` (`chunk = ceil(V / SAMPLE_THREADS)`) and its nucleus mass
/// `local_k` (summed from 0 in index order); `scan_k` is the sequential exclusive prefix sum of the
/// `local`s and `S` their total. With `r = u * S`, the bucket with `scan_k <= r < scan_k + local_k`
/// restarts a running sum `run` from 0 in the same order and returns its first nucleus index with
/// `scan_k + run > r`. At the bucket's last nucleus index `run == local_k` bit for bit, so a token
/// of that bucket is always found: the bucket test and the search use the same float sums. The
/// fallback (no bucket, which only non-finite sums could cause) is the last nucleus index, or
/// `argmax` when the nucleus is empty.
fn pick(w: &[f32], t: f32, u: f32, argmax: usize) -> usize {
    let chunk = w.len().div_ceil(SAMPLE_THREADS).max(1);
    let mut locals = [0.0f32; SAMPLE_THREADS];
    for (m, b) in locals.iter_mut().zip(w.chunks(chunk)) {
        *m = b.iter().filter(|&&x| x >= t).fold(0.0f32, |a, &x| a + x);
    }
    // The kernel's sequential scan: `acc` below is `scan_k`, the same float sums in the same order
    // (the buckets past the end of `w` hold 0, as the kernel's idle threads do).
    let total = locals.iter().fold(0.0f32, |a, &x| a + x);
    let r = u * total;
    let mut acc = 0.0f32;
    for ((k, b), &local) in w.chunks(chunk).enumerate().zip(&locals) {
        if acc <= r && r < acc + local {
            let mut run = 0.0f32;
            for (i, &x) in b.iter().enumerate() {
                if x >= t {
                    run += x;
                    if acc + run > r {
                        return k * chunk + i;
                    }
                }
            }
        }
        acc += local;
    }
    w.iter().rposition(|&x| x >= t).unwrap_or(argmax)
}

/// Picks one token from a row of logits. See the module docs for the exact algorithm.
///
/// The sums are computed in the order of the CUDA kernel `sample_rows` (see [`SAMPLE_THREADS`]):
/// the weight total `Z` with the kernel's block reduction, the threshold by the kernel's binary
/// search over float bit patterns, the nucleus mass and the draw through its per-thread buckets.
/// Given bit-identical weights, both backends return the same token.
pub fn sample(logits: &[f32], sampling: Sampling, seed: u64, stream: u64, step: u64) -> u32 {
    match sampling {
        Sampling::Greedy => argmax(logits),
        Sampling::TopP { temperature, top_p } => {
            let best = argmax(logits) as usize;
            let m = logits[best];
            if !m.is_finite() {
                return best as u32;
            }
            // A division, not `* (1 / temperature)`: the reciprocal of a tiny temperature is
            // infinite and `0 * inf` would make the top weight NaN. The CUDA kernel does the same.
            let w: Vec<f32> = logits
                .iter()
                .map(|&l| {
                    if l.is_nan() {
                        0.0
                    } else {
                        ((l - m) / temperature).exp()
                    }
                })
                .collect();
            let z = block_sum(&w, |_| true);
            let t = threshold(&w, top_p * z);
            pick(&w, t, uniform(seed, stream, step), best) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_ties_lowest_index() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0]), 1);
    }

    #[test]
    fn top_p_tiny_is_greedy() {
        let l = [0.1, 2.0, 1.9, -3.0];
        for step in 0..50 {
            let s = Sampling::TopP {
                temperature: 1.0,
                top_p: 1e-6,
            };
            assert_eq!(sample(&l, s, 7, 3, step), 1);
        }
    }

    #[test]
    fn top_p_respects_nucleus_and_seed() {
        let l = [5.0, 4.9, -20.0, -20.0, -20.0];
        let s = Sampling::TopP {
            temperature: 1.0,
            top_p: 0.9,
        };
        let mut seen = [0usize; 5];
        for step in 0..400 {
            seen[sample(&l, s, 1, 0, step) as usize] += 1;
        }
        assert!(seen[0] > 100 && seen[1] > 100, "{seen:?}");
        assert_eq!(seen[2] + seen[3] + seen[4], 0);
        let a: Vec<u32> = (0..64).map(|k| sample(&l, s, 9, 2, k)).collect();
        let b: Vec<u32> = (0..64).map(|k| sample(&l, s, 9, 2, k)).collect();
        let c: Vec<u32> = (0..64).map(|k| sample(&l, s, 10, 2, k)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn subnormal_temperature_is_valid_and_greedy() {
        // 1 / 1e-40 overflows to inf: the weights must still be finite (the top one exactly 1), so
        // the draw is the argmax, never the least likely token (as it was with `* (1 / t)`).
        let s = Sampling::TopP {
            temperature: 1e-40,
            top_p: 0.9,
        };
        assert!(s.validate().is_ok());
        for l in [[1.0f32, 2.0, 3.0], [3.0, 2.0, 1.0], [-5.0, 7.5, 7.4999]] {
            for step in 0..64 {
                assert_eq!(sample(&l, s, 11, 0, step), argmax(&l), "{l:?} step {step}");
            }
        }
        // Tied maxima are drawn between; nothing else is ever drawn.
        let l = [3.0f32, 1.0, 3.0, f32::NEG_INFINITY, f32::NAN];
        let mut seen = [0usize; 5];
        for step in 0..200 {
            seen[sample(&l, s, 3, 1, step) as usize] += 1;
        }
        assert!(seen[0] > 0 && seen[2] > 0, "{seen:?}");
        assert_eq!(seen[1] + seen[3] + seen[4], 0, "{seen:?}");
        // Largest finite and smallest positive temperatures on a wide range of logits.
        for temperature in [f32::MIN_POSITIVE / 4.0, 1e-30, f32::MAX] {
            let s = Sampling::TopP {
                temperature,
                top_p: 0.5,
            };
            assert!(s.validate().is_ok());
            let l = [-3e38f32, 0.0, 3e38, 1.0];
            let t = sample(&l, s, 1, 2, 3);
            assert!(t < 4);
            if temperature < 1.0 {
                assert_eq!(t, 2);
            }
        }
    }

    #[test]
    fn invalid_temperatures_name_the_field() {
        for temperature in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY] {
            let e = Sampling::TopP {
                temperature,
                top_p: 0.9,
            }
            .validate()
            .unwrap_err();
            assert!(matches!(e, crate::Error::Input(_)), "{e}");
            assert!(e.to_string().contains("temperature"), "{e}");
        }
    }

    #[test]
    fn tail_of_a_large_flat_vocabulary_is_drawn() {
        // 100k tokens of weight 1, then a tail of 51936 tokens of weight ~0.003 (0.16% of the
        // mass), as in a V = 151936 vocabulary. A plain sequential f32 sum stalls at 100000 (each
        // 0.003 is under half an ulp there), so the tail was never drawn; the kernel's bucketed
        // sums keep it. Inside a tail bucket, adding the weights one by one onto the bucket's
        // offset stalls the same way, never passes r and (in the old kernel) fell back to the
        // last token: the draw must be the exact token, never that fallback.
        let (head, v) = (100_000usize, 151_936usize);
        let tail_logit = 0.003f32.ln();
        let logits: Vec<f32> = (0..v)
            .map(|i| if i < head { 0.0 } else { tail_logit })
            .collect();
        let w: Vec<f64> = logits.iter().map(|&l| f64::from(l.exp())).collect();
        let z: f64 = w.iter().sum();
        let s = Sampling::TopP {
            temperature: 1.0,
            top_p: 1.0,
        };
        // Steps whose uniform draw lands in the tail, away from its ends (about 1 in 700).
        let steps: Vec<u64> = (0..20_000u64)
            .filter(|&k| {
                let r = f64::from(uniform(5, 0, k)) * z;
                r > head as f64 + 2.0 && r < z - 2.0
            })
            .take(4)
            .collect();
        assert_eq!(steps.len(), 4);
        for k in steps {
            let r = f64::from(uniform(5, 0, k)) * z;
            let mut acc = 0.0f64;
            let exact = w.iter().position(|&x| {
                acc += x;
                acc > r
            });
            let exact = exact.unwrap();
            let got = sample(&logits, s, 5, 0, k) as usize;
            assert!(got >= head && got != v - 1, "step {k}: token {got}");
            // f32 sums near 1e5 have an ulp of 2^-7 (2.6 tail weights): the scan over the 348
            // tail buckets may drift by up to half an ulp each, about 450 tail tokens at worst.
            assert!(
                got.abs_diff(exact) <= 450,
                "step {k}: {got} vs exact {exact}"
            );
        }
    }

    #[test]
    fn block_sum_is_the_kernels_reduction_order() {
        let big = 16_777_216.0f32; // 2^24: adding 1 rounds back to it, adding 2 is exact
        let sum_with = |ones: &[usize]| {
            let mut w = vec![0.0f32; 2 * SAMPLE_THREADS];
            w[0] = big;
            for &i in ones {
                w[i] = 1.0;
            }
            block_sum(&w, |_| true)
        };
        // Thread j sums w[j], w[j + 1024], ... in order: the ones behind 2^24 in thread 0 vanish.
        assert_eq!(sum_with(&[SAMPLE_THREADS]), big);
        // Shuffle-xor tree (offsets 16, 8, 4, 2, 1): lanes 1 and 3 meet before lane 0 (offset 2,
        // then 1), lanes 1 and 2 do not (each is added to 2^24 on its own).
        assert_eq!(sum_with(&[1, 3]), big + 2.0);
        assert_eq!(sum_with(&[1, 2]), big);
        assert_eq!(sum_with(&[8, 24]), big + 2.0); // 24 meets 8 at offset 16, 8 meets 0 at 8
        assert_eq!(sum_with(&[16, 24]), big); // 16 meets 0 at offset 16
        // The same tree over the 32 warp sums.
        assert_eq!(sum_with(&[32, 96]), big + 2.0);
        assert_eq!(sum_with(&[32, 64]), big);
        assert_eq!(sum_with(&[1, 3, 32, 96]), big + 4.0);
        // A sequential sum would give 2^24 in all these cases.
        assert_eq!([big, 1.0, 0.0, 1.0].iter().sum::<f32>(), big);
        assert_eq!(block_sum(&[0.5, 0.25], |_| true), 0.75);
        assert_eq!(block_sum(&[0.5, 0.25, 2.0], |x| x < 1.0), 0.75);
        // The threshold is a weight: the largest one whose kept mass reaches the target.
        let w = [0.5f32, 1.0, 0.25, 0.5];
        assert_eq!(threshold(&w, 1.0), 1.0);
        assert_eq!(threshold(&w, 1.5), 0.5);
        assert_eq!(threshold(&w, 2.1), 0.25);
        // Draws by buckets (here one token per bucket): first index whose running sum exceeds u*S.
        assert_eq!(pick(&w, 0.5, 0.0, 1), 0);
        assert_eq!(pick(&w, 0.5, 0.24, 1), 0);
        assert_eq!(pick(&w, 0.5, 0.26, 1), 1);
        assert_eq!(pick(&w, 0.5, 0.76, 1), 3);
        assert_eq!(pick(&w, 0.5, 0.999, 1), 3);
    }

    #[test]
    fn uniform_in_range() {
        for k in 0..1000 {
            let u = uniform(k, k * 3, k * 7);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
