//! The append-only journal of finished episodes (`DIR/journal.jsonl`): what makes a sweep
//! resumable and safe against `kill -9`.
//!
//! Each finished episode is appended as one complete JSON line with a single `write` and then
//! `fdatasync`ed, so after a crash the file holds whole lines followed by at most one torn
//! line without its newline. [`load`] keeps the whole lines and reports where the valid part
//! ends; [`Journal::open`] cuts the torn tail off before appending. A torn row therefore counts
//! as not finished, and its episode runs again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Result, SweepError};
use crate::grid::EpisodeKey;
use crate::row::EpisodeRow;

/// The rows found in a journal and the byte length of its valid prefix.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Finished rows by episode key (the first row wins if a key appears twice).
    pub rows: BTreeMap<EpisodeKey, EpisodeRow>,
    /// Bytes of whole, parseable lines; anything after is a torn tail.
    pub valid_len: u64,
    /// True when a torn tail was found.
    pub torn: bool,
}

/// Reads a journal. A missing file is an empty journal. A last line without newline (or that
/// does not parse) is a torn write and is ignored; a bad line in the middle is an error.
pub fn load(path: &Path) -> Result<Loaded> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)
                .map_err(|e| SweepError::io(path, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(SweepError::io(path, e)),
    }
    parse(path, &bytes)
}

/// Parses journal bytes (see [`load`]); `path` is only used in messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut pos = 0usize;
    let mut line_no = 0usize;
    while pos < bytes.len() {
        line_no += 1;
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            out.torn = true;
            break;
        };
        let line = &bytes[pos..pos + nl];
        let next = pos + nl + 1;
        match serde_json::from_slice::<EpisodeRow>(line) {
            Ok(row) => {
                out.rows.entry(row.key()).or_insert(row);
            }
            Err(e) => {
                if next >= bytes.len() {
                    // A torn last line that happens to end in a newline byte: not finished.
                    out.torn = true;
                    break;
                }
                return Err(SweepError::BadLine {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason: e.to_string(),
                });
            }
        }
        pos = next;
        out.valid_len = pos as u64;
    }
    Ok(out)
}

/// An open journal that finished rows are appended to, from many threads.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    durable: bool,
}

impl Journal {
    /// Opens (creating if needed) the journal for appending, first truncating it to
    /// `valid_len` (from [`load`]) to drop a torn tail. With `durable`, every append is
    /// followed by `fdatasync`.
    pub fn open(path: &Path, valid_len: u64, durable: bool) -> Result<Journal> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| SweepError::io(path, e))?;
        let len = file.metadata().map_err(|e| SweepError::io(path, e))?.len();
        if len != valid_len {
            file.set_len(valid_len)
                .map_err(|e| SweepError::io(path, e))?;
            file.sync_all().map_err(|e| SweepError::io(path, e))?;
        }
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| SweepError::io(path, e))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            durable,
        })
    }

    /// Appends one row as a whole line (one `write` call) and syncs it if durable.
    pub fn append(&self, row: &EpisodeRow) -> Result<()> {
        let mut line = row.to_json_line().into_bytes();
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line)
            .map_err(|e| SweepError::io(&self.path, e))?;
        if self.durable {
            f.sync_data().map_err(|e| SweepError::io(&self.path, e))?;
        }
        Ok(())
    }
}
