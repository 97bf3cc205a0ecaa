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

/// An exponential draw with the given mean.
#[inline]
pub fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -unit_open(rng).ln() * mean
}

/// A standard normal draw (Box-Muller, one of the pair; deterministic per call).
#[inline]
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = unit_open(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
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
