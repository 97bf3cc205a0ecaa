//! Byte-level helpers for the fast CSV readers: file opening with gzip detection, a
//! chunked line reader, a comma splitter and number parsers that work on bytes.

use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// A small, fast, non-cryptographic hasher (the "Fx" hash of rustc). Used only for
/// lookup tables whose iteration order never reaches an output.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        let r = chunks.remainder();
        if !r.is_empty() {
            let mut a = [0u8; 8];
            a[..r.len()].copy_from_slice(r);
            self.add(u64::from_le_bytes(a) ^ ((r.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Opens a file for reading, transparently decompressing gzip (detected by its magic
/// bytes `1f 8b`, not by the file name).
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read + Send>> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let chained = head.chain(f);
    if got == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
            chained,
        ))))
    } else {
        Ok(Box::new(chained))
    }
}

/// Longest accepted line (bytes); a longer line is a structural error.
pub(crate) const MAX_LINE: usize = 64 << 20;

/// Calls `f(line_number, line)` for every line of `r` (1-based numbers, `\n` or `\r\n`
/// terminated, the last line may lack a terminator). Reads in 1 MiB chunks and hands out
/// slices of the chunk buffer, so no per-line allocation happens.
pub(crate) fn for_each_line<R: Read, F>(mut r: R, file: &Path, mut f: F) -> Result<()>
where
    F: FnMut(u64, &[u8]) -> Result<()>,
{
    let mut buf = vec![0u8; 1 << 20];
    let mut start = 0usize;
    let mut end = 0usize;
    let mut line_no = 0u64;
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else {
                if buf.len() >= MAX_LINE {
                    return Err(Error::Invalid(format!(
                        "{}:{}: line longer than {} bytes",
                        file.display(),
                        line_no + 1,
                        MAX_LINE
                    )));
                }
                let n = buf.len() * 2;
                buf.resize(n, 0);
            }
        }
        let n = match r.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(file, e)),
        };
        if n == 0 {
            if start < end {
                line_no += 1;
                f(line_no, trim_cr(&buf[start..end]))?;
            }
            return Ok(());
        }
        end += n;
        let mut pos = start;
        while let Some(i) = memchr::memchr(b'\n', &buf[pos..end]) {
            line_no += 1;
            f(line_no, trim_cr(&buf[pos..pos + i]))?;
            pos += i + 1;
        }
        start = pos;
    }
}

#[inline]
fn trim_cr(l: &[u8]) -> &[u8] {
    match l.last() {
        Some(b'\r') => &l[..l.len() - 1],
        _ => l,
    }
}

/// Splits a CSV line into field ranges (start, end) in `out`. Quoted fields
/// (`"a,b"`) are supported without unescaping (`""` stays as is); the range excludes the
/// quotes. Returns false when there are more than `max` fields.
#[inline]
pub(crate) fn split_fields(line: &[u8], out: &mut Vec<(u32, u32)>, max: usize) -> bool {
    out.clear();
    if memchr::memchr(b'"', line).is_none() {
        // fast path: one SIMD scan for commas
        let mut start = 0usize;
        for i in memchr::memchr_iter(b',', line) {
            if out.len() + 1 >= max {
                return false;
            }
            out.push((start as u32, i as u32));
            start = i + 1;
        }
        out.push((start as u32, line.len() as u32));
        return true;
    }
    let mut pos = 0usize;
    let n = line.len();
    loop {
        if out.len() >= max {
            return false;
        }
        if pos < n && line[pos] == b'"' {
            // quoted field
            let mut q = pos + 1;
            loop {
                match memchr::memchr(b'"', &line[q..]) {
                    Some(i) => {
                        let at = q + i;
                        if at + 1 < n && line[at + 1] == b'"' {
                            q = at + 2;
                            continue;
                        }
                        out.push(((pos + 1) as u32, at as u32));
                        pos = at + 1;
                        break;
                    }
                    None => {
                        out.push(((pos + 1) as u32, n as u32));
                        pos = n;
                        break;
                    }
                }
            }
            match memchr::memchr(b',', &line[pos.min(n)..]) {
                Some(i) => pos += i + 1,
                None => return true,
            }
            continue;
        }
        match memchr::memchr(b',', &line[pos..]) {
            Some(i) => {
                out.push((pos as u32, (pos + i) as u32));
                pos += i + 1;
            }
            None => {
                out.push((pos as u32, n as u32));
                return true;
            }
        }
    }
}

/// Trims ASCII spaces and tabs.
#[inline]
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let mut s = 0;
    let mut e = b.len();
    while s < e && (b[s] == b' ' || b[s] == b'\t') {
        s += 1;
    }
    while e > s && (b[e - 1] == b' ' || b[e - 1] == b'\t') {
        e -= 1;
    }
    &b[s..e]
}

/// Parses a non-negative integer; falls back to a float parse (`1.0`, `1e3`) rounded.
#[inline]
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return parse_f64(b)
            .filter(|v| *v >= 0.0 && *v < 1.8e19)
            .map(|v| v.round() as u64);
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return parse_f64(b)
                .filter(|v| *v >= 0.0 && *v < 1.8e19)
                .map(|v| v.round() as u64);
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

/// Parses a finite float. Fast path for `[-]digits[.digits]` with at most 15 significant
/// digits (exact, same result as `str::parse`), general path otherwise.
#[inline]
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if !digits.is_empty() && digits.len() <= 16 {
        let mut mant: u64 = 0;
        let mut frac_digits = 0usize;
        let mut seen_dot = false;
        let mut ok = true;
        let mut nd = 0;
        for &c in digits {
            if c.is_ascii_digit() {
                mant = mant * 10 + u64::from(c - b'0');
                nd += 1;
                if seen_dot {
                    frac_digits += 1;
                }
            } else if c == b'.' && !seen_dot {
                seen_dot = true;
            } else {
                ok = false;
                break;
            }
        }
        if ok && nd > 0 && nd <= 15 {
            let v = mant as f64 / POW10[frac_digits];
            return Some(if neg { -v } else { v });
        }
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// Shortest decimal text of a float that parses back to the same value, without a
/// trailing `.0` for integers written as `2.0` (Alibaba v2022 style keeps `.0`).
pub(crate) fn fmt_ms(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// A 128-bit FNV-1a-style hash rendered as 32 lower-case hex digits; used to derive
/// OTLP trace ids from non-hex trace ids deterministically.
pub(crate) fn hex128_of(s: &str) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4 ^ 0x9e37_79b9_7f4a_7c15;
    for &c in s.as_bytes() {
        a ^= u64::from(c);
        a = a.wrapping_mul(0x0000_0100_0000_01b3);
        b ^= u64::from(c).wrapping_add(0x5bd1_e995);
        b = b.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(7);
    }
    format!("{a:016x}{b:016x}")
}

/// 64-bit FNV-1a of a string (non-zero).
pub(crate) fn hash64(s: &str) -> u64 {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in s.as_bytes() {
        a ^= u64::from(c);
        a = a.wrapping_mul(0x0000_0100_0000_01b3);
    }
    a.max(1)
}

/// An open-addressing table from byte strings to `u32` values, with the keys stored
/// in one contiguous arena (no allocation per key) and full 64-bit hashes stored in the
/// slots, so a lookup almost never compares bytes that differ. Built for the hot
/// interning path of the CSV readers; lookups only (no iteration).
pub(crate) struct ByteTable {
    /// (hash, entry index + 1); 0 = empty.
    slots: Vec<(u64, u32)>,
    mask: usize,
    /// (offset, len, value) per entry.
    entries: Vec<(usize, u32, u32)>,
    arena: Vec<u8>,
}

#[inline]
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(b);
    let x = h.finish() ^ (b.len() as u64);
    // final avalanche (splitmix64) so the low bits index well
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i + 8 <= a.len() {
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        x.copy_from_slice(&a[i..i + 8]);
        y.copy_from_slice(&b[i..i + 8]);
        if x != y {
            return false;
        }
        i += 8;
    }
    a[i..] == b[i..]
}

impl ByteTable {
    pub(crate) fn new() -> Self {
        ByteTable {
            slots: vec![(0, 0); 1024],
            mask: 1023,
            entries: Vec::new(),
            arena: Vec::new(),
        }
    }

    /// The value of `key`, inserting `make()` if absent. Returns (value, inserted).
    #[inline]
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: &[u8],
        make: impl FnOnce() -> u32,
    ) -> (u32, bool) {
        let h = hash_bytes(key);
        let mut i = (h as usize) & self.mask;
        loop {
            let (sh, e) = self.slots[i];
            if e == 0 {
                break;
            }
            if sh == h {
                let (off, len, v) = self.entries[(e - 1) as usize];
                if eq_bytes(&self.arena[off..off + len as usize], key) {
                    return (v, false);
                }
            }
            i = (i + 1) & self.mask;
        }
        let v = make();
        self.entries.push((self.arena.len(), key.len() as u32, v));
        self.arena.extend_from_slice(key);
        self.slots[i] = (h, self.entries.len() as u32);
        if self.entries.len() * 2 > self.slots.len() {
            self.grow();
        }
        (v, true)
    }

    /// The key of entry `value` when values are dense insertion indices.
    pub(crate) fn key_of_entry(&self, entry: usize) -> &[u8] {
        match self.entries.get(entry) {
            Some(&(off, len, _)) => &self.arena[off..off + len as usize],
            None => &[],
        }
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let mut slots = vec![(0u64, 0u32); n];
        let mask = n - 1;
        for &(h, e) in &self.slots {
            if e != 0 {
                let mut i = (h as usize) & mask;
                while slots[i].1 != 0 {
                    i = (i + 1) & mask;
                }
                slots[i] = (h, e);
            }
        }
        self.slots = slots;
        self.mask = mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_std() {
        for s in [
            "0.0",
            "2.0",
            "-67",
            "12.5",
            "0.001",
            "123456789.123",
            "1e3",
            "-0.5",
        ] {
            assert_eq!(parse_f64(s.as_bytes()), s.parse::<f64>().ok(), "{s}");
        }
        assert_eq!(parse_f64(b"NaN"), None);
        assert_eq!(parse_f64(b""), None);
        assert_eq!(parse_u64(b"17530085"), Some(17530085));
        assert_eq!(parse_u64(b"2.0"), Some(2));
        assert_eq!(parse_u64(b"-2"), None);
    }

    #[test]
    fn split_quoted() {
        let mut v = Vec::new();
        assert!(split_fields(b"a,\"b,c\",,d", &mut v, 10));
        let f: Vec<&[u8]> = v
            .iter()
            .map(|&(s, e)| &b"a,\"b,c\",,d"[s as usize..e as usize])
            .collect();
        assert_eq!(f, vec![&b"a"[..], b"b,c", b"", b"d"]);
        assert!(!split_fields(b"a,b,c", &mut v, 2));
    }
}
