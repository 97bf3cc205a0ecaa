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

/// How to pick the next token from logits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Sampling {
    /// Argmax (deterministic, no randomness).
    Greedy,
    /// Temperature then nucleus (top-p) sampling, seeded.
    TopP {
        /// Softmax temperature (> 0).
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

/// Picks one token from a row of logits. See the module docs for the exact algorithm.
pub fn sample(logits: &[f32], sampling: Sampling, seed: u64, stream: u64, step: u64) -> u32 {
    match sampling {
        Sampling::Greedy => argmax(logits),
        Sampling::TopP { temperature, top_p } => {
            let m = logits[argmax(logits) as usize];
            if !m.is_finite() {
                return argmax(logits);
            }
            let inv_t = 1.0 / temperature;
            let w: Vec<f32> = logits
                .iter()
                .map(|&l| {
                    if l.is_nan() {
                        0.0
                    } else {
                        ((l - m) * inv_t).exp()
                    }
                })
                .collect();
            let z: f32 = w.iter().sum();
            let target = top_p * z;
            let mut sorted = w.clone();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            let mut acc = 0.0f32;
            let mut t = sorted[0];
            for &x in &sorted {
                acc += x;
                t = x;
                if acc >= target {
                    break;
                }
            }
            let s: f32 = w.iter().filter(|&&x| x >= t).sum();
            let r = uniform(seed, stream, step) * s;
            let mut acc = 0.0f32;
            let mut last = 0usize;
            for (i, &x) in w.iter().enumerate() {
                if x >= t {
                    acc += x;
                    last = i;
                    if acc > r {
                        return i as u32;
                    }
                }
            }
            last as u32
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
    fn uniform_in_range() {
        for k in 0..1000 {
            let u = uniform(k, k * 3, k * 7);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
