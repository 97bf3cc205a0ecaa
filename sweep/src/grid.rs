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
        let values: Vec<String> = vals.split(',').map(|v| v.trim().to_string()).collect();
        let axis = ParamAxis {
            key: key.to_string(),
            values,
        };
        axis.check().map_err(|reason| bad(&reason))?;
        Ok(axis)
    }

    /// Checks the axis: a non-empty key and at least one value, no empty value, and no value
    /// given twice (`max_steps=5,5` would run the same episodes twice: it is refused, not
    /// deduplicated). Values are compared as written; a runner that reads `5` and `05` as the
    /// same setting refuses those in [`crate::EpisodeRunner::check_param`].
    pub fn check(&self) -> Result<(), String> {
        if self.key.trim().is_empty() {
            return Err("empty key".into());
        }
        if self.values.is_empty() {
            return Err("no value".into());
        }
        if self.values.iter().any(|v| v.trim().is_empty()) {
            return Err("empty value".into());
        }
        for (i, v) in self.values.iter().enumerate() {
            if self.values[..i].contains(v) {
                return Err(format!(
                    "value {v:?} given twice (it would run the same episodes twice)"
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for ParamAxis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.values.join(","))
    }
}

/// The most episodes one sweep may have: [`SweepSpec::new`] refuses bigger grids (split them
/// into several sweeps, e.g. by seed range). A sweep keeps its grid, its rows and its summary
/// in memory (about a kilobyte per episode), so even this many needs a large machine;
/// sharding divides that by the shard count.
pub const MAX_EPISODES: u64 = 100_000_000;

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
    /// Builds a canonical spec. Fails ([`SweepError::InvalidArg`], naming the argument) on an
    /// empty list or seed range, a parameter key given twice, a parameter axis that fails
    /// [`ParamAxis::check`] (e.g. a value given twice), or a grid of more than
    /// [`MAX_EPISODES`] episodes; see [`SweepSpec::validate`].
    pub fn new(
        scenarios: Vec<String>,
        policies: Vec<String>,
        seeds: SeedRange,
        params: Vec<ParamAxis>,
    ) -> Result<SweepSpec> {
        let canon = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let mut params = params;
        params.sort_by(|a, b| a.key.cmp(&b.key));
        let spec = SweepSpec {
            scenarios: canon(scenarios),
            policies: canon(policies),
            seeds,
            params,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks a spec (one built field by field, or read from a file): at least one non-empty
    /// scenario and policy name, a non-empty seed range, unique parameter keys, each
    /// axis valid ([`ParamAxis::check`]), and at most [`MAX_EPISODES`] episodes in the grid
    /// (sizes computed with overflow checks). It does not check that the lists are sorted
    /// (the canonical form [`SweepSpec::new`] gives).
    pub fn validate(&self) -> Result<()> {
        for (v, field) in [
            (&self.scenarios, "--scenario"),
            (&self.policies, "--policy"),
        ] {
            if v.is_empty() || v.iter().any(|s| s.is_empty()) {
                return Err(SweepError::InvalidArg {
                    field,
                    value: String::new(),
                    reason: "at least one non-empty name is needed".into(),
                });
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for a in &self.params {
            if !keys.insert(a.key.as_str()) {
                return Err(SweepError::InvalidArg {
                    field: "--param",
                    value: a.key.clone(),
                    reason: "parameter given twice".into(),
                });
            }
        }
        for a in &self.params {
            a.check().map_err(|reason| SweepError::InvalidArg {
                field: "--param",
                value: a.to_string(),
                reason,
            })?;
        }
        if self.seeds.is_empty() {
            return Err(SweepError::InvalidArg {
                field: "--seeds",
                value: self.seeds.to_string(),
                reason: "empty range".into(),
            });
        }
        self.check_size()
    }

    /// Refuses grids of more than [`MAX_EPISODES`] episodes, naming the biggest factor.
    pub(crate) fn check_size(&self) -> Result<()> {
        if self.checked_len().is_some_and(|n| n <= MAX_EPISODES) {
            return Ok(());
        }
        let s = self.scenarios.len() as u128;
        let p = self.policies.len() as u128;
        let n = self.seeds.len() as u128;
        let o = self
            .params
            .iter()
            .try_fold(1u128, |acc, a| acc.checked_mul(a.values.len() as u128));
        let total = o
            .and_then(|o| o.checked_mul(s))
            .and_then(|x| x.checked_mul(p))
            .and_then(|x| x.checked_mul(n));
        let total = match total {
            Some(t) => t.to_string(),
            None => "more than 2^128".to_string(),
        };
        let combos = match o {
            Some(o) => o.to_string(),
            None => "more than 2^128".to_string(),
        };
        let (field, value) = if o.is_none_or(|o| o > n && o > s && o > p) {
            let params: Vec<String> = self.params.iter().map(|a| a.to_string()).collect();
            ("--param", params.join(" "))
        } else if n >= s && n >= p {
            ("--seeds", self.seeds.to_string())
        } else if s >= p {
            ("--scenario", format!("{s} scenarios"))
        } else {
            ("--policy", format!("{p} policies"))
        };
        Err(SweepError::InvalidArg {
            field,
            value,
            reason: format!(
                "the grid has {s} scenarios x {p} policies x {n} seeds x {combos} parameter \
                 combinations = {total} episodes, more than the limit of {MAX_EPISODES} \
                 (sweep::MAX_EPISODES); split it into several sweeps, e.g. by seed range"
            ),
        })
    }

    /// The parameter overrides: the cross product of the axes (last key fastest); one empty
    /// override when no axis is given.
    pub fn overrides(&self) -> Vec<BTreeMap<String, String>> {
        let mut out = vec![BTreeMap::new()];
        for axis in &self.params {
            let mut next = Vec::with_capacity(out.len().saturating_mul(axis.values.len()));
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

    /// Number of parameter overrides (the product of the axis lengths); `None` on overflow.
    fn checked_overrides(&self) -> Option<u64> {
        self.params
            .iter()
            .try_fold(1u64, |acc, a| acc.checked_mul(a.values.len() as u64))
    }

    /// Number of episodes in the grid, or `None` when it does not fit in a `u64` (only
    /// possible for a spec not built with [`SweepSpec::new`], which refuses more than
    /// [`MAX_EPISODES`]).
    pub fn checked_len(&self) -> Option<u64> {
        (self.scenarios.len() as u64)
            .checked_mul(self.policies.len() as u64)?
            .checked_mul(self.seeds.len())?
            .checked_mul(self.checked_overrides()?)
    }

    /// Number of episodes in the grid; `u64::MAX` when that overflows (see
    /// [`SweepSpec::checked_len`]), so that a non-empty grid is never reported empty.
    pub fn len(&self) -> u64 {
        self.checked_len().unwrap_or_else(|| {
            let empty = self.scenarios.is_empty()
                || self.policies.is_empty()
                || self.seeds.is_empty()
                || self.params.iter().any(|a| a.values.is_empty());
            if empty { 0 } else { u64::MAX }
        })
    }

    /// True when the grid is empty (never for a spec built with [`SweepSpec::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The episode at position `index` of the canonical order (see [`SweepSpec::jobs`]),
    /// computed without building the grid; `None` past the end.
    pub fn job_at(&self, index: u64) -> Option<EpisodeJob> {
        if index >= self.checked_len()? {
            return None;
        }
        let o = self.checked_overrides()?;
        let mut rest = index;
        let mut override_index = rest % o;
        rest /= o;
        let seed = self.seeds.start + rest % self.seeds.len();
        rest /= self.seeds.len();
        let np = self.policies.len() as u64;
        let policy = &self.policies[(rest % np) as usize];
        let scenario = &self.scenarios[(rest / np) as usize];
        let oi = u32::try_from(override_index).ok()?;
        let mut params = BTreeMap::new();
        // Last axis fastest. Walking the axes backwards, the first value inserted for a key
        // wins, so a key given twice (only in a spec that fails `validate`) takes the later
        // axis's value, as in [`SweepSpec::overrides`].
        for axis in self.params.iter().rev() {
            let len = axis.values.len() as u64;
            params
                .entry(axis.key.clone())
                .or_insert_with(|| axis.values[(override_index % len) as usize].clone());
            override_index /= len;
        }
        Some(EpisodeJob {
            index,
            key: EpisodeKey {
                scenario: scenario.clone(),
                policy: policy.clone(),
                seed,
                override_index: oi,
            },
            params,
        })
    }

    /// The episodes of every `step`-th position from `first` (`first`, `first + step`, ...) in
    /// canonical order, built one by one: a shard's share of the grid without the whole grid
    /// in memory. `step` 0 counts as 1. Meant for specs that passed [`SweepSpec::validate`].
    pub fn jobs_strided(&self, first: u64, step: u64) -> Vec<EpisodeJob> {
        let count = self.len().saturating_sub(first).div_ceil(step.max(1));
        let mut out = Vec::with_capacity(count.min(MAX_EPISODES) as usize);
        out.extend(self.iter_strided(first, step));
        out
    }

    /// The jobs of [`SweepSpec::jobs_strided`], lazily (nothing is built ahead).
    pub(crate) fn iter_strided(
        &self,
        first: u64,
        step: u64,
    ) -> impl Iterator<Item = EpisodeJob> + '_ {
        let step = usize::try_from(step.max(1)).unwrap_or(usize::MAX);
        (first..self.len())
            .step_by(step)
            .map_while(|i| self.job_at(i))
    }

    /// All episodes in canonical order: scenario, then policy, then seed, then override.
    /// `EpisodeJob::index` is the position in this order. The whole grid is built in memory:
    /// call it on specs that passed [`SweepSpec::validate`] (at most [`MAX_EPISODES`]).
    pub fn jobs(&self) -> Vec<EpisodeJob> {
        self.jobs_strided(0, 1)
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
