//! Summary statistics: means with 95% confidence intervals, a seeded percentile bootstrap
//! for continuous values and a Wilson score interval for proportions.
//!
//! The rule, used by `summary.csv`, the CLI table and the recovery plot alike:
//!
//! - fewer than 2 values: the mean only, no interval (`lo` and `hi` are NaN, written as empty
//!   CSV fields, and no error bar is drawn);
//! - a proportion (the recovery rate, successes out of `n`): the Wilson score interval, which
//!   stays wide when every episode failed or every one recovered (0/3 gives about
//!   `[0, 0.56]`, not `[0, 0]`);
//! - other values: the 2.5th and 97.5th percentiles of [`BOOTSTRAP_RESAMPLES`] bootstrap
//!   means (zero width when every value is the same: the spread of such a metric is unknown,
//!   not zero, so read a zero-width interval with its `n`).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::runner::fnv1a;

/// Bootstrap resamples used for every bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// The standard normal quantile for a two-sided 95% interval (`Phi^-1(0.975)`).
const Z95: f64 = 1.959_963_984_540_054;

/// A mean and its 95% confidence interval.
///
/// `lo` and `hi` are NaN when there is no interval (fewer than 2 values); use
/// [`MeanCi::interval`] to read them. Because of that NaN, two `MeanCi` of a single value
/// never compare equal with `==`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// Number of values.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Lower bound of the 95% interval (bootstrap: 2.5th percentile of the resampled means;
    /// proportion: Wilson score bound); NaN when `n < 2`.
    pub lo: f64,
    /// Upper bound (97.5th percentile, or Wilson score bound); NaN when `n < 2`.
    pub hi: f64,
}

impl MeanCi {
    /// The interval `(lo, hi)`, or `None` when there is none (fewer than 2 values).
    pub fn interval(&self) -> Option<(f64, f64)> {
        (self.lo.is_finite() && self.hi.is_finite()).then_some((self.lo, self.hi))
    }

    fn point(n: usize, mean: f64) -> MeanCi {
        MeanCi {
            n,
            mean,
            lo: f64::NAN,
            hi: f64::NAN,
        }
    }
}

/// Mean and 95% percentile-bootstrap interval of `values`, with [`BOOTSTRAP_RESAMPLES`]
/// resamples drawn from a ChaCha8 stream seeded by `label` (a stable hash), so the same values
/// and label give the same interval on every machine. Non-finite values are dropped first.
/// `None` for no values; for one value, the mean without an interval (NaN bounds: one value
/// says nothing about the spread).
///
/// ```
/// let a = sweep::bootstrap_mean_ci(&[1.0, 2.0, 3.0, 4.0], "x").unwrap();
/// assert_eq!(a.mean, 2.5);
/// assert!(a.lo <= a.mean && a.mean <= a.hi);
/// assert_eq!(Some(a), sweep::bootstrap_mean_ci(&[1.0, 2.0, 3.0, 4.0], "x"));
/// let one = sweep::bootstrap_mean_ci(&[7.0], "x").unwrap();
/// assert_eq!((one.mean, one.interval()), (7.0, None));
/// ```
pub fn bootstrap_mean_ci(values: &[f64], label: &str) -> Option<MeanCi> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some(MeanCi::point(n, mean));
    }
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

/// A proportion `successes / n` and its 95% Wilson score interval (no resampling, so no
/// label). Unlike a bootstrap it does not collapse when every trial failed or every one
/// succeeded. `None` for `n == 0`; for `n == 1`, the proportion without an interval (NaN
/// bounds), as for [`bootstrap_mean_ci`]. `successes` above `n` count as `n`.
///
/// ```
/// let c = sweep::wilson_ci(0, 3).unwrap();
/// assert_eq!((c.mean, c.lo), (0.0, 0.0));
/// assert!(c.hi > 0.5 && c.hi < 0.6);
/// assert_eq!(sweep::wilson_ci(1, 1).unwrap().interval(), None);
/// ```
pub fn wilson_ci(successes: usize, n: usize) -> Option<MeanCi> {
    if n == 0 {
        return None;
    }
    let k = successes.min(n);
    let nf = n as f64;
    let p = k as f64 / nf;
    if n < 2 {
        return Some(MeanCi::point(n, p));
    }
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    // At p = 0 (p = 1) the bound is 0 (1) exactly; rounding must not move it.
    let lo = if k == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some(MeanCi { n, mean: p, lo, hi })
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
        assert!(wilson_ci(0, 0).is_none());
    }

    #[test]
    fn one_value_has_no_interval() {
        let c = bootstrap_mean_ci(&[3.5, f64::NAN], "one").unwrap();
        assert_eq!((c.n, c.mean, c.interval()), (1, 3.5, None));
        assert!(c.lo.is_nan() && c.hi.is_nan());
        let w = wilson_ci(1, 1).unwrap();
        assert_eq!((w.n, w.mean, w.interval()), (1, 1.0, None));
    }

    #[test]
    fn wilson_interval_of_all_or_nothing_is_not_degenerate() {
        let none = wilson_ci(0, 3).unwrap();
        let (lo, hi) = none.interval().unwrap();
        assert_eq!((none.mean, lo), (0.0, 0.0));
        assert!((hi - 0.561_497).abs() < 1e-5, "{hi}");
        let all = wilson_ci(3, 3).unwrap();
        let (lo, hi) = all.interval().unwrap();
        assert_eq!((all.mean, hi), (1.0, 1.0));
        assert!((lo - 0.438_503).abs() < 1e-5, "{lo}");
    }

    #[test]
    fn wilson_matches_the_closed_form_and_narrows_with_n() {
        // 7 of 10: Wilson 95% interval [0.396778, 0.892209] (e.g. R's prop.test without
        // continuity correction, or statsmodels' proportion_confint(method="wilson")).
        let c = wilson_ci(7, 10).unwrap();
        assert!(
            (c.lo - 0.396_778).abs() < 1e-6 && (c.hi - 0.892_209).abs() < 1e-6,
            "{c:?}"
        );
        let big = wilson_ci(700, 1000).unwrap();
        assert!(big.hi - big.lo < c.hi - c.lo);
        assert!(big.lo < 0.7 && 0.7 < big.hi);
        for n in 2..40 {
            for k in 0..=n {
                let c = wilson_ci(k, n).unwrap();
                assert!(0.0 <= c.lo && c.lo <= c.mean && c.mean <= c.hi && c.hi <= 1.0);
                assert!(c.hi > c.lo, "{k}/{n}");
            }
        }
    }
}
