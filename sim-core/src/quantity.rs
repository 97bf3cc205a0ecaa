//! Kubernetes-style resource quantities: CPU in millicores (`"500m"`, `"2"`), memory in bytes
//! (`"256Mi"`, `"1Gi"`, `"100M"`, `"1048576"`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// CPU in millicores. `"500m"` is half a core, `"2"` or `"2.0"` two cores.
///
/// ```
/// use sim_core::quantity::Cpu;
/// assert_eq!("250m".parse::<Cpu>().unwrap().millis(), 250);
/// assert_eq!("1.5".parse::<Cpu>().unwrap().millis(), 1500);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpu(pub u32);

impl Cpu {
    /// Millicores.
    pub fn millis(self) -> u32 {
        self.0
    }
    /// Cores as a float (reporting and rate arithmetic).
    pub fn cores(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// Memory in bytes. Accepts the suffixes Ki, Mi, Gi, Ti (powers of 1024) and k, M, G, T (powers of 1000).
///
/// ```
/// use sim_core::quantity::Memory;
/// assert_eq!("256Mi".parse::<Memory>().unwrap().bytes(), 256 << 20);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Memory(pub u64);

impl Memory {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
    /// Mebibytes as a float (reporting).
    pub fn mib(self) -> f64 {
        self.0 as f64 / (1u64 << 20) as f64
    }
}

/// A quantity string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} quantity {input:?}: {reason}")]
pub struct QuantityParseError {
    /// "cpu" or "memory".
    pub what: &'static str,
    /// The text given.
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn parse_scaled(
    s: &str,
    what: &'static str,
    suffixes: &[(&str, f64)],
) -> Result<f64, QuantityParseError> {
    let err = |reason| QuantityParseError {
        what,
        input: s.to_string(),
        reason,
    };
    let t = s.trim();
    let (num, mult) = suffixes
        .iter()
        .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((t, 1.0));
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(err("expected a non-negative number with an optional unit"));
    }
    let v: f64 = num.parse().map_err(|_| err("not a number"))?;
    let r = v * mult;
    if !r.is_finite() || r > 1e18 {
        return Err(err("out of range"));
    }
    Ok(r)
}

impl std::str::FromStr for Cpu {
    type Err = QuantityParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let m = parse_scaled(s, "cpu", &[("m", 1.0)]).map(|v| {
            if s.trim().ends_with('m') {
                v
            } else {
                v * 1000.0
            }
        })?;
        if m > u32::MAX as f64 {
            return Err(QuantityParseError {
                what: "cpu",
                input: s.into(),
                reason: "out of range",
            });
        }
        Ok(Cpu(m.round() as u32))
    }
}

impl std::str::FromStr for Memory {
    type Err = QuantityParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const K: f64 = 1024.0;
        parse_scaled(
            s,
            "memory",
            &[
                ("Ki", K),
                ("Mi", K * K),
                ("Gi", K * K * K),
                ("Ti", K * K * K * K),
                ("k", 1e3),
                ("M", 1e6),
                ("G", 1e9),
                ("T", 1e12),
            ],
        )
        .map(|v| Memory(v.round() as u64))
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (suf, sh) in [("Gi", 30), ("Mi", 20), ("Ki", 10)] {
            if b != 0 && b.is_multiple_of(1u64 << sh) {
                return write!(f, "{}{}", b >> sh, suf);
            }
        }
        write!(f, "{b}")
    }
}

macro_rules! serde_via_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_u64(self.0 as u64)
                }
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    #[derive(Deserialize)]
                    #[serde(untagged)]
                    enum Either {
                        S(String),
                        N(f64),
                    }
                    match Either::deserialize(d)? {
                        Either::S(s) => s.parse().map_err(serde::de::Error::custom),
                        Either::N(n) => n.to_string().parse().map_err(serde::de::Error::custom),
                    }
                } else {
                    u64::deserialize(d).map(|v| Self(v as _))
                }
            }
        }
    };
}
serde_via_string!(Cpu);
serde_via_string!(Memory);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn quantities() {
        assert_eq!("2".parse::<Cpu>().unwrap(), Cpu(2000));
        assert_eq!("1m".parse::<Cpu>().unwrap(), Cpu(1));
        assert!("-1".parse::<Cpu>().is_err());
        assert!("abc".parse::<Cpu>().is_err());
        assert_eq!("100Mi".parse::<Memory>().unwrap(), Memory(100 << 20));
        assert_eq!("1G".parse::<Memory>().unwrap(), Memory(1_000_000_000));
        assert_eq!("1.5Ki".parse::<Memory>().unwrap(), Memory(1536));
        assert!("1.2.3Mi".parse::<Memory>().is_err());
        assert_eq!(Memory(200 << 20).to_string(), "200Mi");
        assert_eq!(Cpu(1500).to_string(), "1500m");
    }
}
