//! The sweep grid: scenarios x policies x seeds x parameter overrides, in one canonical order.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SweepError};

/// A half-open range of seeds `start..end` (`A..B` on the command line; `A..=B` and a single `A`
/// are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// Parses `A..B` (B exclusive), `A..=B` (B inclusive) or `A` (one seed).
    ///
    /// ```
    /// let r = sweep::SeedRange::parse("0..4").unwrap();
    /// assert_eq!((r.start, r.end), (0, 4));
    /// assert_eq!(sweep::SeedRange::parse("3..=5").unwrap().len(), 3);
    /// assert!(sweep::SeedRange::parse("5..2").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<SeedRange> {
        let bad = |reason: &str| SweepError::InvalidArg {
            field: "--seeds",
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let num = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|e| bad(&format!("{s:?} is not a seed: {e}")))
        };
        let (start, end) = if let Some((a, b)) = text.split_once("..=") {
            let b = num(b)?;
            (
                num(a)?,
                b.checked_add(1).ok_or_else(|| bad("end overflows u64"))?,
            )
        } else if let Some((a, b)) = text.split_once("..") {
            (num(a)?, num(b)?)
        } else {
            let a = num(text)?;
            (
                a,
                a.checked_add(1).ok_or_else(|| bad("seed overflows u64"))?,
            )
        };
        if end <= start {
            return Err(bad("empty range (expected A..B with A < B)"));
        }
        Ok(SeedRange { start, end })
    }

    /// Number of seeds.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no seed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// One swept parameter: a key and the values it takes (`--param key=v1,v2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamAxis {
    /// The parameter name, as the runner understands it.
    pub key: String,
    /// Its values, in the order given.
    pub values: Vec<String>,
}

impl ParamAxis {
    /// Parses `key=v1,v2,...`.
    ///
    /// ```
    /// let p = sweep::ParamAxis::parse("max_steps=5,10").unwrap();
    /// assert_eq!(p.key, "max_steps");
    /// assert_eq!(p.values, vec!["5", "10"]);
    /// ```
    pub fn parse(text: &str) -> Result<ParamAxis> {
        let bad = |reason: &str| SweepError::InvalidArg {
            field: "--param",
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let (key, vals) = text
            .split_once('=')
            .ok_or_else(|| bad("expected key=v1,v2,..."))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        let values: Vec<String> = vals.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(|v| v.is_empty()) {
            return Err(bad("empty value"));
        }
        Ok(ParamAxis {
            key: key.to_string(),
            values,
        })
    }
}

/// What to sweep. Build it with [`SweepSpec::new`], which puts it in canonical form (scenarios
/// and policies sorted and deduplicated, parameter axes sorted by key), so that the same grid
/// written in another order is the same sweep with the same output bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// Scenario names (or paths), sorted.
    pub scenarios: Vec<String>,
    /// Policy names, sorted.
    pub policies: Vec<String>,
    /// Seeds.
    pub seeds: SeedRange,
    /// Parameter axes, sorted by key; their cross product gives the overrides.
    pub params: Vec<ParamAxis>,
}

impl SweepSpec {
    /// Builds a canonical spec; fails on an empty list or a parameter key given twice.
    pub fn new(
        scenarios: Vec<String>,
        policies: Vec<String>,
        seeds: SeedRange,
        params: Vec<ParamAxis>,
    ) -> Result<SweepSpec> {
        let canon = |mut v: Vec<String>, field: &'static str| {
            v.sort();
            v.dedup();
            if v.is_empty() || v.iter().any(|s| s.is_empty()) {
                return Err(SweepError::InvalidArg {
                    field,
                    value: String::new(),
                    reason: "at least one non-empty name is needed".into(),
                });
            }
            Ok(v)
        };
        let mut params = params;
        params.sort_by(|a, b| a.key.cmp(&b.key));
        for w in params.windows(2) {
            if w[0].key == w[1].key {
                return Err(SweepError::InvalidArg {
                    field: "--param",
                    value: w[0].key.clone(),
                    reason: "parameter given twice".into(),
                });
            }
        }
        if seeds.is_empty() {
            return Err(SweepError::InvalidArg {
                field: "--seeds",
                value: seeds.to_string(),
                reason: "empty range".into(),
            });
        }
        Ok(SweepSpec {
            scenarios: canon(scenarios, "--scenario")?,
            policies: canon(policies, "--policy")?,
            seeds,
            params,
        })
    }

    /// The parameter overrides: the cross product of the axes (last key fastest); one empty
    /// override when no axis is given.
    pub fn overrides(&self) -> Vec<BTreeMap<String, String>> {
        let mut out = vec![BTreeMap::new()];
        for axis in &self.params {
            let mut next = Vec::with_capacity(out.len() * axis.values.len());
            for base in &out {
                for v in &axis.values {
                    let mut m = base.clone();
                    m.insert(axis.key.clone(), v.clone());
                    next.push(m);
                }
            }
            out = next;
        }
        out
    }

    /// Number of episodes in the grid.
    pub fn len(&self) -> u64 {
        let o: u64 = self.params.iter().map(|a| a.values.len() as u64).product();
        self.scenarios.len() as u64 * self.policies.len() as u64 * self.seeds.len() * o
    }

    /// True when the grid is empty (never for a spec built with [`SweepSpec::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All episodes in canonical order: scenario, then policy, then seed, then override.
    /// `EpisodeJob::index` is the position in this order.
    pub fn jobs(&self) -> Vec<EpisodeJob> {
        let overrides = self.overrides();
        let mut jobs = Vec::with_capacity(self.len() as usize);
        for s in &self.scenarios {
            for p in &self.policies {
                for seed in self.seeds.start..self.seeds.end {
                    for (oi, o) in overrides.iter().enumerate() {
                        jobs.push(EpisodeJob {
                            index: jobs.len() as u64,
                            key: EpisodeKey {
                                scenario: s.clone(),
                                policy: p.clone(),
                                seed,
                                override_index: oi as u32,
                            },
                            params: o.clone(),
                        });
                    }
                }
            }
        }
        jobs
    }
}

/// The identity of one episode; rows are sorted by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EpisodeKey {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Episode seed.
    pub seed: u64,
    /// Index into [`SweepSpec::overrides`].
    pub override_index: u32,
}

impl fmt::Display for EpisodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/seed={}/override={}",
            self.scenario, self.policy, self.seed, self.override_index
        )
    }
}

/// One episode to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeJob {
    /// Position in the canonical order of the whole (unsharded) grid.
    pub index: u64,
    /// Which episode.
    pub key: EpisodeKey,
    /// The parameter overrides for this episode (empty for none).
    pub params: BTreeMap<String, String>,
}
