//! The typed errors of the sweep crate.

use std::path::PathBuf;

/// Everything that can go wrong while planning, running, merging or plotting a sweep.
///
/// Each variant names the file, line or field at fault so that a user can fix the input.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// An I/O error on a named file or folder.
    ///
    /// The message is `PATH: CAUSE`. The cause is part of the message only: it is not also
    /// returned by [`std::error::Error::source`], so that printing the error chain (anyhow's
    /// `{:#}`) shows it once.
    #[error("{path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error (in the message, not the error chain).
        cause: std::io::Error,
    },
    /// A malformed command-line or specification value (`--seeds`, `--shard`, `--param` ...).
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidArg {
        /// Which argument or field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A line of a JSONL file (journal or `episodes.jsonl`) that does not parse.
    #[error("{path}:{line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// Why it does not parse.
        reason: String,
    },
    /// A malformed JSON document (e.g. `sweep.json`, `labels.json`).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output folder already holds a sweep and `--resume` was not given.
    #[error(
        "{0} already holds a sweep (sweep.json); pass --resume to continue it or choose another --out"
    )]
    AlreadyExists(PathBuf),
    /// `--resume` on a folder whose recorded sweep differs from the one requested.
    #[error("{path}: recorded sweep differs from the requested one ({reason}); use another --out")]
    SpecMismatch {
        /// The `sweep.json` file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The runner refused a (scenario, policy) pair before the sweep started.
    #[error("scenario {scenario:?} with policy {policy:?}: {reason}")]
    Invalid {
        /// The scenario.
        scenario: String,
        /// The policy.
        policy: String,
        /// Why.
        reason: String,
    },
    /// Some episodes failed; the finished ones are in the journal and `--resume` retries the rest.
    #[error("{failed} of {total} episodes failed; first: {first}")]
    EpisodesFailed {
        /// How many failed.
        failed: usize,
        /// How many were run.
        total: usize,
        /// The first failure (episode key and message).
        first: String,
    },
    /// Shard outputs that cannot be merged (different sweeps, missing or duplicate episodes).
    #[error("merge: {0}")]
    Merge(String),
    /// Two sweep outputs differ (see [`crate::compare_dirs`]).
    #[error("outputs differ: {0}")]
    Differ(String),
    /// Writing the Parquet file failed.
    #[error("{path}: parquet: {reason}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The writer's message.
        reason: String,
    },
    /// Drawing a picture failed.
    #[error("{path}: plot: {reason}")]
    Plot {
        /// The picture file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl SweepError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SweepError {
        SweepError::Io {
            path: path.into(),
            cause: source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = SweepError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The cause of an I/O error appears once when the chain is printed, as main.rs does
    /// (`{:#}` of an anyhow error).
    #[test]
    fn io_cause_is_printed_once() {
        let e = SweepError::io(
            "afile/x",
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "Not a directory"),
        );
        assert!(std::error::Error::source(&e).is_none());
        let shown = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(shown, "afile/x: Not a directory");
    }
}
