//! Distributions of durations (CPU demand, network latency, think time).
//!
//! A [`DurationDist`] is written in scenario files as a tagged table, e.g.
//! `{ kind = "exponential", mean = "2ms" }` or `{ kind = "lognormal", median = "5ms", sigma = 0.6 }`,
//! and sampled to integer nanoseconds from a caller-supplied stream.

use crate::rng::{exponential, standard_normal, unit};
use crate::time::{MAX_PARSED_NANOS, SimDuration};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A distribution over non-negative durations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DurationDist {
    /// Always the same value.
    Constant {
        /// The value.
        value: SimDuration,
    },
    /// Exponential with the given mean (memoryless service, as in M/M/c).
    Exponential {
        /// The mean.
        mean: SimDuration,
    },
    /// Log-normal: `median * exp(sigma * Z)`. Real service times are close to this (heavy right tail).
    Lognormal {
        /// The median (the geometric mean).
        median: SimDuration,
        /// Standard deviation of the underlying normal; 0.3-1.0 is typical of RPC latencies.
        sigma: f64,
    },
    /// Uniform on `[low, high]`.
    Uniform {
        /// Lower bound.
        low: SimDuration,
        /// Upper bound (inclusive).
        high: SimDuration,
    },
    /// Draws uniformly one of the listed values (an empirical distribution, e.g. from a trace).
    Empirical {
        /// The observed values; must not be empty.
        values: Vec<SimDuration>,
    },
}

impl Default for DurationDist {
    fn default() -> Self {
        DurationDist::Constant {
            value: SimDuration::ZERO,
        }
    }
}

impl DurationDist {
    /// A constant distribution.
    pub fn constant(d: SimDuration) -> Self {
        DurationDist::Constant { value: d }
    }
    /// An exponential distribution with mean `d`.
    pub fn exponential(d: SimDuration) -> Self {
        DurationDist::Exponential { mean: d }
    }

    /// The mean of the distribution in nanoseconds.
    pub fn mean_ns(&self) -> f64 {
        match self {
            DurationDist::Constant { value } => value.0 as f64,
            DurationDist::Exponential { mean } => mean.0 as f64,
            DurationDist::Lognormal { median, sigma } => {
                median.0 as f64 * (sigma * sigma / 2.0).exp()
            }
            DurationDist::Uniform { low, high } => (low.0 as f64 + high.0 as f64) / 2.0,
            DurationDist::Empirical { values } => {
                values.iter().map(|v| v.0 as f64).sum::<f64>() / values.len().max(1) as f64
            }
        }
    }

    /// Checks the parameters; the error says which one is wrong. Every duration parameter must
    /// be at most [`MAX_PARSED_NANOS`] (what a duration string can give; a value built in code
    /// could be larger).
    pub fn validate(&self) -> Result<(), String> {
        let too_long = |what: &str, d: &SimDuration| {
            (d.0 > MAX_PARSED_NANOS)
                .then(|| format!("{what} {d} is above the longest duration ({MAX_PARSED_NANOS}ns)"))
        };
        // the duration caps first, then the other parameters
        let wrong = match self {
            DurationDist::Constant { value } => too_long("value", value),
            DurationDist::Exponential { mean } => too_long("mean", mean),
            DurationDist::Lognormal { median, sigma } => too_long("median", median).or_else(|| {
                (!(sigma.is_finite() && *sigma >= 0.0 && *sigma <= 10.0))
                    .then(|| format!("sigma must be in [0, 10], got {sigma}"))
            }),
            DurationDist::Uniform { low, high } => too_long("low", low)
                .or_else(|| too_long("high", high))
                .or_else(|| (low > high).then(|| format!("low {low} is above high {high}"))),
            DurationDist::Empirical { values } => values
                .iter()
                .find_map(|v| too_long("a value", v))
                .or_else(|| values.is_empty().then(|| "values must not be empty".into())),
        };
        wrong.map_or(Ok(()), Err)
    }

    /// Draws one value in nanoseconds. Consumes no randomness for a constant.
    ///
    /// A draw of a valid distribution ([`DurationDist::validate`]) is at most
    /// [`MAX_PARSED_NANOS`] (exponential draws are capped there, log-normal ones at 1e15 ns),
    /// so adding it to a time on the clock cannot overflow.
    #[inline(always)]
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        // the two kinds on every hot path inline at the call site; the rest stay out of line
        match self {
            DurationDist::Constant { value } => value.0,
            DurationDist::Exponential { mean } => sample_exponential(rng, mean.0),
            _ => self.sample_other(rng),
        }
    }

    #[inline(never)]
    fn sample_other(&self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            DurationDist::Constant { value } => value.0,
            DurationDist::Exponential { mean } => sample_exponential(rng, mean.0),
            DurationDist::Lognormal { median, sigma } => {
                let v = median.0 as f64 * (sigma * standard_normal(rng)).exp();
                (v.min(1e15) + 0.5) as u64
            }
            DurationDist::Uniform { low, high } => {
                // `high - low` rounds up as a float above 2^53: keep the draw inside the range
                let x = (unit(rng) * high.0.saturating_sub(low.0) as f64).round() as u64;
                low.0.saturating_add(x).min(high.0.max(low.0))
            }
            DurationDist::Empirical { values } => {
                values[crate::rng::below(rng, values.len() as u32) as usize].0
            }
        }
    }

    /// True when sampling never consumes randomness.
    pub fn is_constant(&self) -> bool {
        matches!(self, DurationDist::Constant { .. })
    }
}

/// An exponential draw of mean `mean` ns, rounded, at most [`MAX_PARSED_NANOS`] (a draw of a
/// mean near the cap could otherwise reach `u64::MAX`).
#[inline(always)]
fn sample_exponential(rng: &mut ChaCha8Rng, mean: u64) -> u64 {
    ((exponential(rng, mean as f64) + 0.5) as u64).min(MAX_PARSED_NANOS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{StreamKind, stream};

    #[test]
    fn sample_means() {
        let mut r = stream(1, StreamKind::Service, 0);
        let d = DurationDist::Lognormal {
            median: SimDuration(1_000_000),
            sigma: 0.5,
        };
        let n = 100_000;
        let m = (0..n).map(|_| d.sample(&mut r) as f64).sum::<f64>() / n as f64;
        assert!(
            (m / d.mean_ns() - 1.0).abs() < 0.02,
            "{m} vs {}",
            d.mean_ns()
        );
        let u = DurationDist::Uniform {
            low: SimDuration(10),
            high: SimDuration(20),
        };
        for _ in 0..1000 {
            let x = u.sample(&mut r);
            assert!((10..=20).contains(&x));
        }
    }

    /// No draw of a valid distribution exceeds the longest duration (a sum of a time on the
    /// clock and a draw cannot overflow); parameters above it are errors.
    #[test]
    fn draws_stay_below_the_duration_cap() {
        let mut r = stream(2, StreamKind::Service, 0);
        let max = SimDuration(MAX_PARSED_NANOS);
        for d in [
            DurationDist::exponential(max),
            DurationDist::Lognormal {
                median: max,
                sigma: 10.0,
            },
            DurationDist::Uniform {
                low: SimDuration::ZERO,
                high: max,
            },
            DurationDist::Uniform {
                low: SimDuration(MAX_PARSED_NANOS - 3),
                high: max,
            },
            DurationDist::Empirical { values: vec![max] },
        ] {
            d.validate().unwrap();
            for _ in 0..10_000 {
                assert!(d.sample(&mut r) <= MAX_PARSED_NANOS, "{d:?}");
            }
        }
        let over = SimDuration(MAX_PARSED_NANOS + 1);
        for d in [
            DurationDist::constant(over),
            DurationDist::exponential(over),
            DurationDist::Lognormal {
                median: over,
                sigma: 0.5,
            },
            DurationDist::Uniform {
                low: SimDuration::ZERO,
                high: SimDuration(u64::MAX),
            },
            DurationDist::Empirical {
                values: vec![SimDuration(1), over],
            },
        ] {
            assert!(d.validate().is_err(), "{d:?}");
        }
    }

    #[test]
    fn parses_from_toml() {
        #[derive(Deserialize)]
        struct W {
            d: DurationDist,
        }
        let w: W = toml::from_str(r#"d = { kind = "exponential", mean = "4ms" }"#).unwrap();
        assert_eq!(
            w.d,
            DurationDist::Exponential {
                mean: SimDuration(4_000_000)
            }
        );
        assert!(toml::from_str::<W>(r#"d = { kind = "gamma", mean = "4ms" }"#).is_err());
    }
}
