//! Summary statistics: means with seeded percentile-bootstrap 95% confidence intervals.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::runner::fnv1a;

/// Bootstrap resamples used for every interval.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// A mean and its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// Number of values.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Lower bound of the 95% interval (2.5th percentile of the bootstrap means).
    pub lo: f64,
    /// Upper bound (97.5th percentile).
    pub hi: f64,
}

/// Mean and 95% percentile-bootstrap interval of `values`, with [`BOOTSTRAP_RESAMPLES`]
/// resamples drawn from a ChaCha8 stream seeded by `label` (a stable hash), so the same values
/// and label give the same interval on every machine. `None` for no values. Non-finite values
/// are dropped first.
///
/// ```
/// let a = sweep::bootstrap_mean_ci(&[1.0, 2.0, 3.0, 4.0], "x").unwrap();
/// assert_eq!(a.mean, 2.5);
/// assert!(a.lo <= a.mean && a.mean <= a.hi);
/// assert_eq!(Some(a), sweep::bootstrap_mean_ci(&[1.0, 2.0, 3.0, 4.0], "x"));
/// ```
pub fn bootstrap_mean_ci(values: &[f64], label: &str) -> Option<MeanCi> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(fnv1a(label.as_bytes()));
    let mut means = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let mut s = 0.0;
        for _ in 0..n {
            s += v[rng.random_range(0..n)];
        }
        means.push(s / n as f64);
    }
    means.sort_by(f64::total_cmp);
    Some(MeanCi {
        n,
        mean,
        lo: quantile(&means, 0.025),
        hi: quantile(&means, 0.975),
    })
}

/// Linear-interpolation quantile of sorted values (type 7, as numpy's default).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_values_have_a_zero_width_interval() {
        let c = bootstrap_mean_ci(&[2.0; 10], "c").unwrap();
        assert_eq!((c.mean, c.lo, c.hi), (2.0, 2.0, 2.0));
    }

    #[test]
    fn interval_contains_mean_and_narrows_with_n() {
        let small: Vec<f64> = (0..10).map(|i| (i % 2) as f64).collect();
        let large: Vec<f64> = (0..1000).map(|i| (i % 2) as f64).collect();
        let s = bootstrap_mean_ci(&small, "a").unwrap();
        let l = bootstrap_mean_ci(&large, "a").unwrap();
        assert!(s.lo < 0.5 && 0.5 < s.hi);
        assert!(l.hi - l.lo < s.hi - s.lo);
    }

    #[test]
    fn empty_and_nan_only_give_none() {
        assert!(bootstrap_mean_ci(&[], "e").is_none());
        assert!(bootstrap_mean_ci(&[f64::NAN], "e").is_none());
    }
}
