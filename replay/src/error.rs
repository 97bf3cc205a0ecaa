//! Typed errors and the per-file quality report.
//!
//! Structural problems (a file that cannot be read, a missing required column, a corrupt
//! store) are [`Error`]s naming the file, line and column. Row-level problems are counted
//! per [`DropReason`] in a [`QualityReport`] and the row is skipped; in strict mode
//! ([`ReadOptions::strict`]) the first one becomes [`Error::Row`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error while reading or writing `file`.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A required column is missing from the header (line 1).
    #[error("{file}:{line}: missing required column `{column}` (header: {header})")]
    MissingColumn {
        /// The file.
        file: PathBuf,
        /// The header line number (1-based).
        line: u64,
        /// The missing column name.
        column: String,
        /// The header as read.
        header: String,
    },
    /// The file is empty or has no header line.
    #[error("{file}: empty file (no header line)")]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// A row-level problem in strict mode.
    #[error("{file}:{line}: column `{column}`: {reason}")]
    Row {
        /// The file.
        file: PathBuf,
        /// Line number (1-based).
        line: u64,
        /// Column name (or `-` for whole-row problems).
        column: String,
        /// What is wrong.
        reason: DropReason,
    },
    /// A JSON document could not be parsed or has an unexpected shape.
    #[error("{file}: line {line}, column {column}: {message}")]
    Json {
        /// The file.
        file: PathBuf,
        /// Line (1-based; 0 if unknown).
        line: u64,
        /// Column (1-based; 0 if unknown).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A trace store is corrupt or of another version.
    #[error("{file}: corrupt trace store at byte {offset}: {message}")]
    Store {
        /// The file.
        file: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// A distribution table (generator input) is invalid.
    #[error("{file}:{line}: {message}")]
    Table {
        /// The file (or embedded table name).
        file: PathBuf,
        /// Line number (1-based).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An invalid argument (e.g. fitting a generator on an empty sample).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the file name.
    pub fn io(file: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            file: file.into(),
            source,
        }
    }
}

/// Why a row (CSV line, JSON span) was dropped.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The row has another number of fields than the header.
    #[error("wrong number of fields")]
    FieldCount,
    /// The trace id is empty.
    #[error("empty trace id")]
    EmptyTraceId,
    /// The rpc id is empty, not dot-decimal, or a component overflows u32; or the row is
    /// a further call with an already-used id that cannot be renumbered because the
    /// sibling numbers under its parent reach `u32::MAX` (see [`crate::rebuild`]).
    #[error("invalid rpc id")]
    BadRpcId,
    /// The timestamp is not a number (or negative).
    #[error("invalid timestamp")]
    BadTimestamp,
    /// The response time is not a finite number.
    #[error("invalid response time")]
    BadResponseTime,
    /// A byte-for-byte duplicate of an earlier row of the same trace.
    #[error("exact duplicate row")]
    ExactDuplicate,
    /// A JSON span without a usable span id.
    #[error("invalid span id")]
    BadSpanId,
    /// A JSON span whose span id was already seen in the same trace.
    #[error("duplicate span id")]
    DuplicateSpanId,
    /// A JSON span without a trace id.
    #[error("invalid trace id")]
    BadTraceId,
    /// A JSON span with an unreadable time field.
    #[error("invalid time")]
    BadTime,
    /// A JSON span that is not an object.
    #[error("span is not an object")]
    NotAnObject,
    /// A metrics row with an unparsable value.
    #[error("invalid metric value")]
    BadValue,
}

/// What was repaired in a trace that could not be rebuilt exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairKind {
    /// A span whose parent id is absent was attached to its nearest present ancestor.
    OrphanAttached,
    /// A second, different call with an already-used rpc id got a fresh sibling id.
    DuplicateRpcIdRenumbered,
    /// A parent-reference cycle (OTLP/Jaeger) was broken at its earliest span.
    CycleBroken,
    /// An extra root (OTLP/Jaeger) was attached under the main root.
    ExtraRootAttached,
    /// The root is a span whose parent (OTLP/Jaeger) is not in the trace (a partial trace).
    OrphanPromotedToRoot,
    /// A span without a start time got its parent's start time.
    MissingStartFilled,
    /// A span ending before it starts got a zero duration.
    NegativeDurationClamped,
}

/// Why a trace was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscardReason {
    /// After attaching orphans there is more than one root (no common ancestor present).
    Disconnected,
}

/// Per-file quality report of a reader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The file.
    pub file: String,
    /// Data rows (CSV lines after the header, or JSON spans) read.
    pub rows: u64,
    /// Rows dropped, by reason.
    pub rows_dropped: BTreeMap<DropReason, u64>,
    /// Callee-side rows merged into their caller-side row (rpc/http logged twice).
    pub rows_merged: u64,
    /// Traces whose first row is in this file.
    pub traces: u64,
    /// Traces rebuilt without any repair.
    pub traces_exact: u64,
    /// Traces rebuilt with at least one repair.
    pub traces_repaired: u64,
    /// Traces discarded.
    pub traces_discarded: u64,
    /// Repairs applied, by kind (a trace may have several).
    pub repairs: BTreeMap<RepairKind, u64>,
    /// Discarded traces, by reason.
    pub discards: BTreeMap<DiscardReason, u64>,
    /// Rows whose rpc id has a zero component after the first (e.g. `0.1.0`); kept as is.
    pub rpc_ids_with_zero_component: u64,
}

impl QualityReport {
    /// An empty report for `file`.
    pub fn new(file: impl Into<String>) -> Self {
        QualityReport {
            file: file.into(),
            ..Default::default()
        }
    }

    /// Total dropped rows.
    pub fn dropped(&self) -> u64 {
        self.rows_dropped.values().sum()
    }

    /// Counts one dropped row.
    pub fn drop_row(&mut self, r: DropReason) {
        *self.rows_dropped.entry(r).or_insert(0) += 1;
    }

    /// Adds another report's counts into this one (the file name is kept).
    pub fn merge(&mut self, o: &QualityReport) {
        self.rows += o.rows;
        for (k, v) in &o.rows_dropped {
            *self.rows_dropped.entry(*k).or_insert(0) += v;
        }
        self.rows_merged += o.rows_merged;
        self.traces += o.traces;
        self.traces_exact += o.traces_exact;
        self.traces_repaired += o.traces_repaired;
        self.traces_discarded += o.traces_discarded;
        for (k, v) in &o.repairs {
            *self.repairs.entry(*k).or_insert(0) += v;
        }
        for (k, v) in &o.discards {
            *self.discards.entry(*k).or_insert(0) += v;
        }
        self.rpc_ids_with_zero_component += o.rpc_ids_with_zero_component;
    }

    /// A human-readable multi-line summary.
    pub fn to_text(&self) -> String {
        let mut s = format!("file: {}\n", self.file);
        s += &format!("rows: {}\n", self.rows);
        s += &format!("rows dropped: {}\n", self.dropped());
        for (k, v) in &self.rows_dropped {
            s += &format!("  {k}: {v}\n");
        }
        s += &format!("rows merged (caller/callee pairs): {}\n", self.rows_merged);
        s += &format!(
            "rpc ids with a zero component: {}\n",
            self.rpc_ids_with_zero_component
        );
        s += &format!(
            "traces: {} (exact {}, repaired {}, discarded {})\n",
            self.traces, self.traces_exact, self.traces_repaired, self.traces_discarded
        );
        for (k, v) in &self.repairs {
            s += &format!("  repair {k:?}: {v}\n");
        }
        for (k, v) in &self.discards {
            s += &format!("  discard {k:?}: {v}\n");
        }
        s
    }
}

/// Options shared by every reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Make the first row-level problem an error instead of counting it.
    pub strict: bool,
}
