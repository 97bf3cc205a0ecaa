//! Sharding a sweep over the tasks of a job array (Slurm, Kubernetes Indexed Jobs, by hand).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SweepError};
use crate::grid::EpisodeJob;

/// Shard `index` of `count` (0-based). Episode `i` of the canonical grid order belongs to shard
/// `i % count`: round robin, so shards get equal numbers of episodes (within one) and a mix of
/// scenarios and policies, and the assignment depends on nothing but the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0 <= index < count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// Where a shard assignment came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSource {
    /// `--shard I/N`.
    Flag,
    /// `SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT` (and `SLURM_ARRAY_TASK_MIN`).
    Slurm,
    /// Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` with the count from `--shard-count` or
    /// `BLASTRADIUS_SHARD_COUNT`.
    Kubernetes,
}

impl Shard {
    /// Parses `I/N`.
    ///
    /// ```
    /// let s = sweep::Shard::parse("1/4").unwrap();
    /// assert_eq!((s.index, s.count), (1, 4));
    /// assert!(sweep::Shard::parse("4/4").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |reason: String| SweepError::InvalidArg {
            field: "--shard",
            value: text.to_string(),
            reason,
        };
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| bad("expected I/N, e.g. 0/4".into()))?;
        let i: u32 = i.trim().parse().map_err(|e| bad(format!("index: {e}")))?;
        let n: u32 = n.trim().parse().map_err(|e| bad(format!("count: {e}")))?;
        Shard::new(i, n).map_err(|_| bad(format!("need 0 <= I < N, got {i}/{n}")))
    }

    /// Checks `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(SweepError::InvalidArg {
                field: "--shard",
                value: format!("{index}/{count}"),
                reason: "need 0 <= I < N".into(),
            });
        }
        Ok(Shard { index, count })
    }

    /// True when episode `job` belongs to this shard.
    pub fn owns(&self, job: &EpisodeJob) -> bool {
        job.index % self.count as u64 == self.index as u64
    }

    /// Detects the shard from a job scheduler's environment, read through `get` (pass
    /// `|k| std::env::var(k).ok()`). `count_hint` is the shard count for Kubernetes, whose
    /// Indexed Jobs do not export it (`--shard-count`, else `BLASTRADIUS_SHARD_COUNT`).
    ///
    /// Slurm: `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`; the index is taken relative to
    /// `SLURM_ARRAY_TASK_MIN` so that `--array=1-4` works as well as `--array=0-3` (arrays with
    /// a step or holes are rejected: their ids are not 0..N).
    ///
    /// ```
    /// let env = |k: &str| match k {
    ///     "SLURM_ARRAY_TASK_ID" => Some("2".to_string()),
    ///     "SLURM_ARRAY_TASK_COUNT" => Some("4".to_string()),
    ///     _ => None,
    /// };
    /// let (s, _) = sweep::Shard::from_env(env, None).unwrap().unwrap();
    /// assert_eq!((s.index, s.count), (2, 4));
    /// ```
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        count_hint: Option<u32>,
    ) -> Result<Option<(Shard, ShardSource)>> {
        let num = |name: &'static str, v: String| {
            v.trim().parse::<u32>().map_err(|e| SweepError::InvalidArg {
                field: name,
                value: v.clone(),
                reason: e.to_string(),
            })
        };
        if let Some(id) = get("SLURM_ARRAY_TASK_ID") {
            let id = num("SLURM_ARRAY_TASK_ID", id)?;
            let count = match get("SLURM_ARRAY_TASK_COUNT") {
                Some(c) => num("SLURM_ARRAY_TASK_COUNT", c)?,
                None => {
                    return Err(SweepError::InvalidArg {
                        field: "SLURM_ARRAY_TASK_COUNT",
                        value: String::new(),
                        reason: "SLURM_ARRAY_TASK_ID is set but the count is not".into(),
                    });
                }
            };
            let min = match get("SLURM_ARRAY_TASK_MIN") {
                Some(m) => num("SLURM_ARRAY_TASK_MIN", m)?,
                None => 0,
            };
            if let Some(max) = get("SLURM_ARRAY_TASK_MAX") {
                let max = num("SLURM_ARRAY_TASK_MAX", max)?;
                if max.checked_sub(min).and_then(|d| d.checked_add(1)) != Some(count) {
                    return Err(SweepError::InvalidArg {
                        field: "SLURM_ARRAY_TASK_MAX",
                        value: max.to_string(),
                        reason: format!(
                            "array ids must be contiguous (min {min}, count {count}); use --array=0-{}",
                            count.saturating_sub(1)
                        ),
                    });
                }
            }
            let index = id.checked_sub(min).ok_or_else(|| SweepError::InvalidArg {
                field: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                reason: format!("below SLURM_ARRAY_TASK_MIN {min}"),
            })?;
            return Ok(Some((Shard::new(index, count)?, ShardSource::Slurm)));
        }
        if let Some(idx) = get("JOB_COMPLETION_INDEX") {
            let index = num("JOB_COMPLETION_INDEX", idx)?;
            let count = match count_hint {
                Some(c) => c,
                None => match get("BLASTRADIUS_SHARD_COUNT") {
                    Some(c) => num("BLASTRADIUS_SHARD_COUNT", c)?,
                    None => {
                        return Err(SweepError::InvalidArg {
                            field: "JOB_COMPLETION_INDEX",
                            value: index.to_string(),
                            reason: "a Kubernetes Indexed Job needs the shard count: \
                                     --shard-count N or BLASTRADIUS_SHARD_COUNT (= spec.completions)"
                                .into(),
                        });
                    }
                },
            };
            return Ok(Some((Shard::new(index, count)?, ShardSource::Kubernetes)));
        }
        Ok(None)
    }

    /// The conventional sub-folder for this shard's output: `shard-IIII-of-NNNN`.
    pub fn dir_name(&self) -> String {
        format!("shard-{:04}-of-{:04}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1` overflowing `u32` is an error naming
    /// the variable, not an overflow panic.
    #[test]
    fn slurm_array_span_overflow_is_an_error() {
        let env = |k: &str| {
            match k {
                "SLURM_ARRAY_TASK_ID" => Some("0"),
                "SLURM_ARRAY_TASK_COUNT" => Some("4"),
                "SLURM_ARRAY_TASK_MIN" => Some("0"),
                "SLURM_ARRAY_TASK_MAX" => Some("4294967295"),
                _ => None,
            }
            .map(str::to_string)
        };
        let err = Shard::from_env(env, None).unwrap_err();
        assert!(
            matches!(
                err,
                SweepError::InvalidArg {
                    field: "SLURM_ARRAY_TASK_MAX",
                    ..
                }
            ),
            "{err}"
        );
    }
}
