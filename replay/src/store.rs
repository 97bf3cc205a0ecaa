//! A compact binary trace store with fast sequential reads.
//!
//! Layout: the 8-byte magic `BRTRACE1`, then records `[tag: u8][len: u32 LE][payload]`:
//! - tag `1`: new symbols, postcard `Vec<String>` appended to the table (names are
//!   written once, just before the first graph that uses them, so a writer can stream);
//! - tag `2`: one graph, postcard [`CallGraph`] (integers are varints, so a span costs
//!   about 20-30 bytes);
//! - tag `0xFF`: end, payload = postcard `u64` graph count (detects truncation).
//!
//! Reading a store back gives exactly the graphs and symbol table that were written.
//! Corruption (bad magic, truncated record, undecodable payload, missing end record,
//! count mismatch, a symbol id out of range) is an [`Error::Store`] naming the byte
//! offset, never a panic.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::{CallGraph, Sym, SymbolTable, TraceSet};

const MAGIC: &[u8; 8] = b"BRTRACE1";
const TAG_SYMBOLS: u8 = 1;
const TAG_GRAPH: u8 = 2;
const TAG_END: u8 = 0xFF;
/// Largest accepted record payload (256 MiB).
const MAX_RECORD: u32 = 256 << 20;

/// Streaming writer of a trace store.
pub struct StoreWriter<W: Write> {
    out: W,
    file: PathBuf,
    symbols_written: usize,
    graphs: u64,
    buf: Vec<u8>,
}

impl StoreWriter<BufWriter<File>> {
    /// Creates (truncates) a store file.
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        StoreWriter::new(BufWriter::with_capacity(1 << 20, f), path)
    }
}

impl<W: Write> StoreWriter<W> {
    /// A writer over any sink (`name` is used in errors).
    pub fn new(mut out: W, name: &Path) -> Result<Self> {
        out.write_all(MAGIC).map_err(|e| Error::io(name, e))?;
        Ok(StoreWriter {
            out,
            file: name.to_path_buf(),
            symbols_written: 0,
            graphs: 0,
            buf: Vec::new(),
        })
    }

    fn record(&mut self, tag: u8) -> Result<()> {
        let len = u32::try_from(self.buf.len())
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| Error::Invalid(format!("{}: record too large", self.file.display())))?;
        let io = |e| Error::io(&self.file, e);
        self.out.write_all(&[tag]).map_err(io)?;
        self.out.write_all(&len.to_le_bytes()).map_err(io)?;
        self.out.write_all(&self.buf).map_err(io)?;
        Ok(())
    }

    /// Writes one graph whose names are in `symbols` (the same, growing table must be
    /// passed on every call: new names are written incrementally).
    pub fn write_graph(&mut self, g: &CallGraph, symbols: &SymbolTable) -> Result<()> {
        if symbols.len() > self.symbols_written {
            let new: Vec<String> = symbols.names()[self.symbols_written..].to_vec();
            self.buf = postcard::to_stdvec(&new).map_err(|e| Error::Invalid(e.to_string()))?;
            self.record(TAG_SYMBOLS)?;
            self.symbols_written = symbols.len();
        }
        self.buf = postcard::to_stdvec(g).map_err(|e| Error::Invalid(e.to_string()))?;
        self.record(TAG_GRAPH)?;
        self.graphs += 1;
        Ok(())
    }

    /// Writes the end record and flushes; returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.buf = postcard::to_stdvec(&self.graphs).map_err(|e| Error::Invalid(e.to_string()))?;
        self.record(TAG_END)?;
        self.out.flush().map_err(|e| Error::io(&self.file, e))?;
        Ok(self.out)
    }
}

/// Sequential reader of a trace store: iterate graphs with [`StoreReader::next_graph`];
/// [`StoreReader::symbols`] holds every name needed by the graphs returned so far.
pub struct StoreReader<R: Read> {
    inp: R,
    file: PathBuf,
    offset: u64,
    symbols: SymbolTable,
    graphs: u64,
    done: bool,
    buf: Vec<u8>,
}

impl StoreReader<BufReader<File>> {
    /// Opens a store file.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        StoreReader::new(BufReader::with_capacity(1 << 20, f), path)
    }
}

impl<R: Read> StoreReader<R> {
    /// A reader over any source (`name` is used in errors).
    pub fn new(mut inp: R, name: &Path) -> Result<Self> {
        let mut m = [0u8; 8];
        let bad = |msg: &str| Error::Store {
            file: name.to_path_buf(),
            offset: 0,
            message: msg.into(),
        };
        read_full(&mut inp, &mut m).map_err(|_| bad("too short for the magic"))?;
        if &m != MAGIC {
            return Err(bad(
                "bad magic (not a blastradius trace store, or another version)",
            ));
        }
        Ok(StoreReader {
            inp,
            file: name.to_path_buf(),
            offset: 8,
            symbols: SymbolTable::from_names(Vec::new()),
            graphs: 0,
            done: false,
            buf: Vec::new(),
        })
    }

    /// The names read so far.
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// Takes the symbol table (call after the last graph).
    pub fn into_symbols(self) -> SymbolTable {
        self.symbols
    }

    fn err(&self, at: u64, message: impl Into<String>) -> Error {
        Error::Store {
            file: self.file.clone(),
            offset: at,
            message: message.into(),
        }
    }

    /// The next graph, `Ok(None)` after the end record.
    pub fn next_graph(&mut self) -> Result<Option<CallGraph>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let at = self.offset;
            let mut head = [0u8; 5];
            read_full(&mut self.inp, &mut head)
                .map_err(|_| self.err(at, "truncated: missing end record"))?;
            let tag = head[0];
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
            if len > MAX_RECORD {
                return Err(self.err(at, format!("record length {len} too large")));
            }
            self.buf.resize(len as usize, 0);
            read_full(&mut self.inp, &mut self.buf)
                .map_err(|_| self.err(at, "truncated record"))?;
            self.offset += 5 + u64::from(len);
            match tag {
                TAG_SYMBOLS => {
                    let names: Vec<String> = postcard::from_bytes(&self.buf)
                        .map_err(|e| self.err(at, format!("bad symbol record: {e}")))?;
                    let mut all = self.symbols.names().to_vec();
                    all.extend(names);
                    self.symbols = SymbolTable::from_names(all);
                }
                TAG_GRAPH => {
                    let g: CallGraph = postcard::from_bytes(&self.buf)
                        .map_err(|e| self.err(at, format!("bad graph record: {e}")))?;
                    let n = self.symbols.len() as u32;
                    let ok = |s: Sym| s.0 < n;
                    let nspans = g.spans.len() as u32;
                    let valid = ok(g.service)
                        && g.spans.iter().enumerate().all(|(i, s)| {
                            ok(s.um)
                                && ok(s.dm)
                                && ok(s.um_instance)
                                && ok(s.dm_instance)
                                && ok(s.interface)
                                && s.parent.is_none_or(|p| p < nspans && (p as usize) < i)
                        });
                    if !valid {
                        return Err(
                            self.err(at, "graph refers to an unknown symbol or a bad parent")
                        );
                    }
                    self.graphs += 1;
                    return Ok(Some(g));
                }
                TAG_END => {
                    let n: u64 = postcard::from_bytes(&self.buf)
                        .map_err(|e| self.err(at, format!("bad end record: {e}")))?;
                    if n != self.graphs {
                        return Err(self.err(
                            at,
                            format!("end record says {n} graphs, read {}", self.graphs),
                        ));
                    }
                    self.done = true;
                    return Ok(None);
                }
                t => return Err(self.err(at, format!("unknown record tag {t}"))),
            }
        }
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<()> {
    r.read_exact(buf)
}

/// Writes a whole set to a store file.
pub fn write_store(path: &Path, set: &TraceSet) -> Result<()> {
    let mut w = StoreWriter::create(path)?;
    for g in &set.graphs {
        w.write_graph(g, &set.symbols)?;
    }
    w.finish()?;
    Ok(())
}

/// Writes a whole set into bytes.
pub fn store_to_bytes(set: &TraceSet) -> Result<Vec<u8>> {
    let mut w = StoreWriter::new(Vec::new(), Path::new("<memory>"))?;
    for g in &set.graphs {
        w.write_graph(g, &set.symbols)?;
    }
    w.finish()
}

/// Reads a whole store file.
pub fn read_store(path: &Path) -> Result<TraceSet> {
    let r = StoreReader::open(path)?;
    read_all(r)
}

/// Reads a whole store from bytes.
pub fn store_from_bytes(bytes: &[u8]) -> Result<TraceSet> {
    read_all(StoreReader::new(bytes, Path::new("<memory>"))?)
}

fn read_all<R: Read>(mut r: StoreReader<R>) -> Result<TraceSet> {
    let mut graphs = Vec::new();
    while let Some(g) = r.next_graph()? {
        graphs.push(g);
    }
    let mut symbols = r.into_symbols();
    if symbols.is_empty() {
        symbols = SymbolTable::new();
    }
    Ok(TraceSet { symbols, graphs })
}
