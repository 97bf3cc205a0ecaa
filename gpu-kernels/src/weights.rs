//! Safetensors files: a small validating reader (single file or sharded index) and a writer.
//!
//! The format: 8 bytes little-endian header length `n`, `n` bytes of JSON mapping tensor names to
//! `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the header),
//! an optional `__metadata__` entry, then the data. Every offset, shape and dtype is checked;
//! malformed input is an [`Error::Safetensors`], never a panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use serde_json::Value;

use crate::error::{Error, Result};

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// IEEE f32.
    F32,
    /// bfloat16.
    BF16,
    /// IEEE f16.
    F16,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::BF16 | Dtype::F16 => 2,
        }
    }
    /// The safetensors spelling.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::BF16 => "BF16",
            Dtype::F16 => "F16",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: String,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

/// A borrowed tensor: dtype, shape and raw little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawTensor<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Shape (row-major).
    pub shape: &'a [usize],
    /// Raw bytes (`numel * dtype.size()`).
    pub data: &'a [u8],
}

impl RawTensor<'_> {
    /// Converts to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            Dtype::F32 => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => self
                .data
                .chunks_exact(2)
                .map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
            Dtype::F16 => self
                .data
                .chunks_exact(2)
                .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
        }
    }

    /// Converts to bf16 bits (round to nearest even from f32/f16).
    pub fn to_bf16_bits(&self) -> Vec<u16> {
        match self.dtype {
            Dtype::BF16 => self
                .data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
            _ => self
                .to_f32()
                .into_iter()
                .map(|x| bf16::from_f32(x).to_bits())
                .collect(),
        }
    }
}

/// A set of safetensors files opened as one name -> tensor map.
#[derive(Debug, Default)]
pub struct TensorStore {
    files: Vec<(PathBuf, Vec<u8>, usize)>,
    entries: BTreeMap<String, Entry>,
}

fn st_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Safetensors {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

impl TensorStore {
    /// Opens a model directory: `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        if single.exists() {
            let bytes = std::fs::read(&single).map_err(|e| Error::io(&single, e))?;
            let mut s = TensorStore::default();
            s.add_file(single, bytes)?;
            return Ok(s);
        }
        let index = dir.join("model.safetensors.index.json");
        if !index.exists() {
            return Err(Error::io(
                &single,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "neither model.safetensors nor model.safetensors.index.json exists",
                ),
            ));
        }
        let bytes = std::fs::read(&index).map_err(|e| Error::io(&index, e))?;
        let shards = Self::parse_index(&index, &bytes)?;
        let mut s = TensorStore::default();
        for shard in shards {
            if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
                return Err(st_err(&index, format!("bad shard file name `{shard}`")));
            }
            let p = dir.join(&shard);
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            s.add_file(p, b)?;
        }
        Ok(s)
    }

    /// Parses a sharded index; returns the distinct shard file names in first-seen order.
    pub fn parse_index(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| st_err(path, format!("index is not valid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| st_err(path, "index lacks a `weight_map` object"))?;
        let mut shards: Vec<String> = Vec::new();
        for (name, f) in map {
            let f = f
                .as_str()
                .ok_or_else(|| st_err(path, format!("weight_map[`{name}`] is not a string")))?;
            if !shards.iter().any(|s| s == f) {
                shards.push(f.to_string());
            }
        }
        Ok(shards)
    }

    /// Parses one safetensors file from memory and adds its tensors.
    pub fn add_file(&mut self, path: PathBuf, bytes: Vec<u8>) -> Result<()> {
        if bytes.len() < 8 {
            return Err(st_err(&path, "shorter than the 8-byte header length"));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= bytes.len() - 8)
            .ok_or_else(|| st_err(&path, format!("header length {n} exceeds the file")))?;
        let header: Value = serde_json::from_slice(&bytes[8..8 + n])
            .map_err(|e| st_err(&path, format!("header is not valid JSON: {e}")))?;
        let obj = header
            .as_object()
            .ok_or_else(|| st_err(&path, "header is not a JSON object"))?;
        let data_len = bytes.len() - 8 - n;
        let file = self.files.len();
        for (name, info) in obj {
            if name == "__metadata__" {
                continue;
            }
            let bad = |m: &str| st_err(&path, format!("tensor `{name}`: {m}"));
            let dtype = info
                .get("dtype")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("missing dtype"))?
                .to_string();
            let shape: Vec<usize> = info
                .get("shape")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("missing shape"))?
                .iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("shape is not a list of integers"))?;
            let offs = info
                .get("data_offsets")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 2)
                .ok_or_else(|| bad("data_offsets is not a pair"))?;
            let begin = offs[0]
                .as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| bad("bad data offset"))?;
            let end = offs[1]
                .as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| bad("bad data offset"))?;
            if begin > end || end > data_len {
                return Err(bad(&format!(
                    "data_offsets [{begin}, {end}] outside the data ({data_len} bytes)"
                )));
            }
            let esize = match dtype.as_str() {
                "F32" => Some(4),
                "BF16" | "F16" => Some(2),
                _ => None,
            };
            if let Some(es) = esize {
                let numel = shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .and_then(|n| n.checked_mul(es));
                if numel != Some(end - begin) {
                    return Err(bad(&format!(
                        "{} bytes of data for shape {shape:?} and dtype {dtype}",
                        end - begin
                    )));
                }
            }
            if self.entries.contains_key(name) {
                return Err(bad("defined twice"));
            }
            self.entries.insert(
                name.clone(),
                Entry {
                    file,
                    dtype,
                    shape,
                    begin: 8 + n + begin,
                    end: 8 + n + end,
                },
            );
        }
        self.files.push((path, bytes, 8 + n));
        Ok(())
    }

    /// Whether a tensor exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// A tensor, checked against the expected shape.
    pub fn get(&self, name: &str, expected: &[usize]) -> Result<RawTensor<'_>> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::MissingTensor { name: name.into() })?;
        let dtype = match e.dtype.as_str() {
            "F32" => Dtype::F32,
            "BF16" => Dtype::BF16,
            "F16" => Dtype::F16,
            other => {
                return Err(Error::TensorDtype {
                    name: name.into(),
                    dtype: other.into(),
                });
            }
        };
        if e.shape != expected {
            return Err(Error::TensorShape {
                name: name.into(),
                got: e.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(RawTensor {
            dtype,
            shape: &e.shape,
            data: &self.files[e.file].1[e.begin..e.end],
        })
    }
}

/// Serialises tensors `(name, shape, f32 values)` to safetensors bytes in the given dtype.
///
/// Tensors are written in the order given. Used by tests and benchmarks to make random models.
pub fn write_safetensors(tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, shape, vals) in tensors {
        let begin = data.len();
        for &x in vals {
            match dtype {
                Dtype::F32 => data.extend_from_slice(&x.to_le_bytes()),
                Dtype::BF16 => data.extend_from_slice(&bf16::from_f32(x).to_bits().to_le_bytes()),
                Dtype::F16 => data.extend_from_slice(&f16::from_f32(x).to_bits().to_le_bytes()),
            }
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).expect("json");
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}
