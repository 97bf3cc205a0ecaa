//! Seeded random streams and the samplers built on them.
//!
//! Every source of randomness is its own ChaCha8 stream, derived from
//! (episode seed, [`StreamKind`], entity index). Arrivals, service times, network,
//! retries, load balancing and faults never share a stream, so two runs that differ
//! only by a fault or an agent action see exactly the same arrivals (common random
//! numbers). That makes counterfactual labels and fair action comparisons possible.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The purpose of a random stream. Part of the stream's derivation key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum StreamKind {
    /// Open-loop arrival times and operation mix, one stream per workload.
    Arrivals = 1,
    /// CPU and IO demands, one stream per service.
    Service = 2,
    /// Network latency and loss, one stream per edge.
    Network = 3,
    /// Retry back-off jitter, one stream per edge.
    Retry = 4,
    /// Load-balancer choices, one stream per edge.
    Balance = 5,
    /// Call-plan branch probabilities, one stream per service.
    Branch = 6,
    /// Closed-loop think times, one stream per workload.
    Users = 7,
    /// Fault effects written through the fault surfaces (IO errors, pod-level loss), one stream per pod.
    Faults = 8,
    /// Anything owned by crates above `sim-core` (agents, fault schedules); entity chosen by the caller.
    External = 9,
}

/// SplitMix64 finaliser: a bijective 64-bit mix used for key derivation and hashing.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives the ChaCha8 stream for (seed, kind, entity). Stable across versions of this crate.
///
/// ```
/// use sim_core::rng::{stream, StreamKind};
/// use rand::Rng;
/// let mut a = stream(7, StreamKind::Arrivals, 0);
/// let mut b = stream(7, StreamKind::Arrivals, 0);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
pub fn stream(seed: u64, kind: StreamKind, entity: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let a = mix64(seed ^ mix64(kind as u64));
    let b = mix64(a ^ mix64(entity.wrapping_add(0x5851_F42D_4C95_7F2D)));
    let c = mix64(b ^ 0xD6E8_FEB8_6659_FD93);
    let d = mix64(c ^ seed);
    key[..8].copy_from_slice(&a.to_le_bytes());
    key[8..16].copy_from_slice(&b.to_le_bytes());
    key[16..24].copy_from_slice(&c.to_le_bytes());
    key[24..].copy_from_slice(&d.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A uniform draw in the open interval (0, 1], from 53 random bits.
#[inline]
pub fn unit_open(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform draw in [0, 1).
#[inline]
pub fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `true` with probability `p` (p <= 0 never, p >= 1 always; no draw is consumed then).
#[inline]
pub fn bernoulli(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        unit(rng) < p
    }
}

/// An exponential draw with the given mean (ziggurat: one 64-bit draw and a multiply in
/// ~99% of calls, no logarithm).
#[inline]
pub fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let z = &ziggurat::TABLES.exp;
    loop {
        let bits = rng.next_u64();
        let i = (bits & 0xff) as usize;
        let x = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * z.x[i];
        if x < z.x[i + 1] {
            return x * mean;
        }
        if let Some(x) = ziggurat::exp_slow(rng, z, i, x) {
            return x * mean;
        }
    }
}

/// A standard normal draw (ziggurat: one 64-bit draw and a multiply in ~99% of calls).
#[inline]
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let z = &ziggurat::TABLES.normal;
    loop {
        let bits = rng.next_u64();
        let i = (bits & 0xff) as usize;
        let sign = if bits & 0x100 == 0 { 1.0 } else { -1.0 };
        let x = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * z.x[i];
        if x < z.x[i + 1] {
            return sign * x;
        }
        if let Some(x) = ziggurat::normal_slow(rng, z, i, x) {
            return sign * x;
        }
    }
}

/// Marsaglia and Tsang's ziggurat (2000) with 256 layers, for the exponential and the
/// half-normal density. Layer `i >= 1` is the box `[0, x[i]] x [f(x[i]), f(x[i+1])]`; layer 0
/// is the base box `[0, r] x [0, f(r)]` plus the tail beyond `r`, drawn as a box of the same
/// area `v` and width `x[0] = v / f(r)`.
mod ziggurat {
    use super::{ChaCha8Rng, unit, unit_open};
    use std::sync::LazyLock;

    pub(super) struct Table {
        pub x: [f64; 257],
        pub f: [f64; 257],
    }

    pub(super) struct Tables {
        pub exp: Table,
        pub normal: Table,
    }

    pub(super) static TABLES: LazyLock<Tables> = LazyLock::new(|| Tables {
        exp: build(EXP_R, EXP_V, |x| (-x).exp(), |y| -y.ln()),
        normal: build(
            NORMAL_R,
            NORMAL_V,
            |x| (-0.5 * x * x).exp(),
            |y| (-2.0 * y.ln()).sqrt(),
        ),
    });

    const EXP_R: f64 = 7.697_117_470_131_05;
    const EXP_V: f64 = 3.949_659_822_581_557e-3;
    const NORMAL_R: f64 = 3.654_152_885_361_009;
    const NORMAL_V: f64 = 4.928_673_233_99e-3;

    fn build(r: f64, v: f64, f: fn(f64) -> f64, f_inv: fn(f64) -> f64) -> Table {
        let mut x = [0.0; 257];
        x[0] = v / f(r);
        x[1] = r;
        for i in 1..255 {
            let y = f(x[i]) + v / x[i];
            x[i + 1] = if y >= 1.0 { 0.0 } else { f_inv(y) };
        }
        x[256] = 0.0;
        let mut fx = [0.0; 257];
        for i in 0..257 {
            fx[i] = f(x[i]);
        }
        Table { x, f: fx }
    }

    /// Layer `i`'s draw `x` fell outside the inner box: the tail (layer 0) or the wedge test.
    #[cold]
    pub(super) fn exp_slow(rng: &mut ChaCha8Rng, z: &Table, i: usize, x: f64) -> Option<f64> {
        if i == 0 {
            // memoryless tail
            return Some(EXP_R - unit_open(rng).ln());
        }
        let y = z.f[i] + unit(rng) * (z.f[i + 1] - z.f[i]);
        (y < (-x).exp()).then_some(x)
    }

    /// As [`exp_slow`], for the half-normal (Marsaglia's tail method beyond `r`).
    #[cold]
    pub(super) fn normal_slow(rng: &mut ChaCha8Rng, z: &Table, i: usize, x: f64) -> Option<f64> {
        if i == 0 {
            loop {
                let a = -unit_open(rng).ln() / NORMAL_R;
                let b = -unit_open(rng).ln();
                if 2.0 * b > a * a {
                    return Some(NORMAL_R + a);
                }
            }
        }
        let y = z.f[i] + unit(rng) * (z.f[i + 1] - z.f[i]);
        (y < (-0.5 * x * x).exp()).then_some(x)
    }
}

/// A uniform integer in `0..n` (n > 0), by Lemire's multiply-shift (bias < 2^-32 for small n).
#[inline]
pub fn below(rng: &mut ChaCha8Rng, n: u32) -> u32 {
    ((rng.next_u32() as u64 * n as u64) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_kind_and_entity() {
        let x = stream(1, StreamKind::Arrivals, 0).next_u64();
        assert_ne!(x, stream(1, StreamKind::Service, 0).next_u64());
        assert_ne!(x, stream(1, StreamKind::Arrivals, 1).next_u64());
        assert_ne!(x, stream(2, StreamKind::Arrivals, 0).next_u64());
        assert_eq!(x, stream(1, StreamKind::Arrivals, 0).next_u64());
    }

    #[test]
    fn exponential_mean_is_right() {
        let mut r = stream(3, StreamKind::Service, 0);
        let n = 200_000;
        let m: f64 = (0..n).map(|_| exponential(&mut r, 2.0)).sum::<f64>() / n as f64;
        // standard error 2/sqrt(n) = 0.0045; 5 sigma
        assert!((m - 2.0).abs() < 0.023, "mean {m}");
    }

    /// Kolmogorov-Smirnov distance to the exact CDF, 200k draws: the 0.1% critical value is
    /// 1.95 / sqrt(n) = 0.0044. A wrong ziggurat table (a layer too wide or too narrow) shows
    /// up as a step of about 1/256 = 0.004 or more.
    fn ks(mut xs: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
        xs.sort_by(f64::total_cmp);
        let n = xs.len() as f64;
        xs.iter()
            .enumerate()
            .map(|(k, &x)| {
                let c = cdf(x);
                (c - k as f64 / n).abs().max((c - (k + 1) as f64 / n).abs())
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn exponential_and_normal_match_their_cdfs() {
        let mut r = stream(5, StreamKind::Service, 0);
        let e: Vec<f64> = (0..200_000).map(|_| exponential(&mut r, 1.0)).collect();
        let d = ks(e.clone(), |x| 1.0 - (-x).exp());
        assert!(d < 0.0044, "exponential KS {d}");
        // the tail beyond r = 7.7 is reached (P = 4.5e-4, ~90 draws)
        let tail = e.iter().filter(|&&x| x > 7.7).count();
        assert!((40..160).contains(&tail), "tail draws {tail}");
        let nrm: Vec<f64> = (0..200_000).map(|_| standard_normal(&mut r)).collect();
        // standard normal CDF via erf (Abramowitz-Stegun 7.1.26 is too coarse; use a series)
        let d = ks(nrm.clone(), |x| {
            0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
        });
        assert!(d < 0.0044, "normal KS {d}");
        let beyond = nrm.iter().filter(|x| x.abs() > 3.6541).count();
        assert!((20..110).contains(&beyond), "normal tail draws {beyond}");
    }

    #[test]
    fn ziggurat_layers_have_equal_areas() {
        for (name, z, v) in [
            ("exp", &ziggurat::TABLES.exp, 3.949_659_822_581_557e-3),
            ("normal", &ziggurat::TABLES.normal, 4.928_673_233_99e-3),
        ] {
            assert!(z.x[255] > 0.0 && z.x[256] == 0.0, "{name}");
            for i in 1..256 {
                let area = z.x[i] * (z.f[i + 1] - z.f[i]);
                assert!((area - v).abs() < 1e-3 * v, "{name} layer {i}: {area}");
            }
        }
    }

    /// erf by its Taylor series (|x| < 3) or the continued fraction of erfc beyond.
    fn erf(x: f64) -> f64 {
        let a = x.abs();
        let v = if a < 3.0 {
            let mut term = a;
            let mut sum = a;
            for n in 1..200 {
                term *= -a * a / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) ~ exp(-a^2) / (a sqrt(pi)) * (1 - 1/(2a^2) + 3/(4a^4))
            1.0 - (-a * a).exp() / (a * std::f64::consts::PI.sqrt())
                * (1.0 - 1.0 / (2.0 * a * a) + 3.0 / (4.0 * a.powi(4)))
        };
        v.copysign(x)
    }

    #[test]
    fn normal_moments() {
        let mut r = stream(4, StreamKind::Service, 0);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut r)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.012 && (v - 1.0).abs() < 0.02, "{m} {v}");
    }
}
