//! Simulated time: integer nanoseconds, never floats, never the wall clock.
//!
//! [`SimTime`] is a point on the simulated clock and [`SimDuration`] a span of it; both are
//! plain `u64` nanoseconds. Scenario files write durations as strings with a unit
//! (`"250ms"`, `"1.5s"`, `"2m"`), parsed by [`parse_duration`] into exact nanoseconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in simulated time, in nanoseconds since the start of the episode.
pub type SimTime = u64;

/// One microsecond in nanoseconds.
pub const MICROS: u64 = 1_000;
/// One millisecond in nanoseconds.
pub const MILLIS: u64 = 1_000_000;
/// One second in nanoseconds.
pub const SECONDS: u64 = 1_000_000_000;

/// The longest duration [`parse_duration`] accepts: `u64::MAX / 2` ns (about 292 years), so
/// that any two parsed durations add up without overflow.
pub const MAX_PARSED_NANOS: u64 = u64::MAX / 2;

/// A span of simulated time in nanoseconds, serialised as a human string such as `"250ms"`.
///
/// ```
/// use sim_core::time::SimDuration;
/// let d: SimDuration = "1.5s".parse().unwrap();
/// assert_eq!(d.as_nanos(), 1_500_000_000);
/// assert_eq!(d.to_string(), "1500ms");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimDuration {
    /// Zero length.
    pub const ZERO: SimDuration = SimDuration(0);
    /// A duration of `ns` nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * MILLIS)
    }
    /// A duration of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * SECONDS)
    }
    /// Nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Seconds as a float (for reporting only, never for simulation logic).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / SECONDS as f64
    }
}

/// Why a duration string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason} (expected a number with a unit: ns, us, ms, s, m, h, e.g. \"250ms\")"
)]
pub struct DurationParseError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `"250ms"`, `"1.5s"`, `"2m"`, `"100us"`, `"10ns"`, `"1h"` into nanoseconds.
///
/// Fractions are rounded to the nearest nanosecond; negative or non-finite values, and values
/// above [`MAX_PARSED_NANOS`] (written as integers or with a fraction alike), are errors.
pub fn parse_duration(s: &str) -> Result<u64, DurationParseError> {
    let err = |reason| DurationParseError {
        input: s.to_string(),
        reason,
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| err("missing unit"))?;
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(err("missing number"));
    }
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => MICROS as f64,
        "ms" => MILLIS as f64,
        "s" => SECONDS as f64,
        "m" | "min" => 60.0 * SECONDS as f64,
        "h" => 3600.0 * SECONDS as f64,
        _ => return Err(err("unknown unit")),
    };
    if let Ok(int) = num.parse::<u64>() {
        // exact for integers; the same cap as for fractions
        return int
            .checked_mul(scale as u64)
            .filter(|&ns| ns <= MAX_PARSED_NANOS)
            .ok_or_else(|| err("out of range"));
    }
    let v: f64 = num.parse().map_err(|_| err("not a number"))?;
    let ns = v * scale;
    // NaN and negatives here; the cast saturates (infinity reads u64::MAX), so one exact
    // test of the rounded value catches everything too large
    if ns.is_nan() || ns < 0.0 {
        return Err(err("out of range"));
    }
    let ns = ns.round() as u64;
    if ns > MAX_PARSED_NANOS {
        return Err(err("out of range"));
    }
    Ok(ns)
}

impl std::str::FromStr for SimDuration {
    type Err = DurationParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(SimDuration)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            write!(f, "0s")
        } else if ns.is_multiple_of(SECONDS) {
            write!(f, "{}s", ns / SECONDS)
        } else if ns.is_multiple_of(MILLIS) {
            write!(f, "{}ms", ns / MILLIS)
        } else if ns.is_multiple_of(MICROS) {
            write!(f, "{}us", ns / MICROS)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(SimDuration)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms").unwrap(), 250 * MILLIS);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500 * MILLIS);
        assert_eq!(parse_duration("2m").unwrap(), 120 * SECONDS);
        assert_eq!(parse_duration("7us").unwrap(), 7_000);
        assert_eq!(parse_duration(" 3ns ").unwrap(), 3);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    /// Integers get the range cap fractions get (they went up to u64::MAX: "5000000h" was
    /// 1.8e19 ns while "5000000.0h" was an error); the cap is the same for both spellings.
    #[test]
    fn integers_and_fractions_share_the_range_cap() {
        for s in [
            "5000000h",
            "5000000.0h",
            "18446744073709551615ns",
            "10000000000000000000ns",
            "9223372036854775808ns",
            "9223372036854775808.0ns",
            "9223372036854776s",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert_eq!(e.reason, "out of range", "{s}");
        }
        assert_eq!(
            parse_duration("9223372036854775807ns").unwrap(),
            MAX_PARSED_NANOS
        );
        assert_eq!(
            parse_duration("2562047h").unwrap(),
            2_562_047 * 3600 * SECONDS
        );
        assert_eq!(
            parse_duration("2562047.0h").unwrap(),
            parse_duration("2562047h").unwrap()
        );
        assert!(parse_duration("2562048h").is_err());
        assert!(parse_duration("2562048.0h").is_err());
    }

    #[test]
    fn display_round_trips() {
        for ns in [0, 1, 1_000, 1_500_000, 2 * SECONDS, 1_234_567_891] {
            let d = SimDuration(ns);
            assert_eq!(d.to_string().parse::<SimDuration>().unwrap(), d);
        }
    }
}
