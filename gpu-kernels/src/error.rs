//! Typed errors of the crate.

use std::path::PathBuf;

/// Every failure of loading a model or running a backend.
///
/// Errors name what is wrong and where: the file, the config field or the tensor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or lacks a field.
    #[error("{path}: bad config: {msg}")]
    Config {
        /// The config file (or `<memory>`).
        path: PathBuf,
        /// What is wrong, naming the field.
        msg: String,
    },
    /// A config field has an invalid or unsupported value.
    #[error("config field `{field}`: {msg}")]
    ConfigField {
        /// The field name, as spelled in `config.json`.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// A safetensors file is malformed (header, offsets, dtype).
    #[error("{path}: bad safetensors file: {msg}")]
    Safetensors {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A tensor the model needs is not in the files.
    #[error("missing tensor `{name}`")]
    MissingTensor {
        /// The tensor name.
        name: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{name}` has shape {got:?}, expected {expected:?}")]
    TensorShape {
        /// The tensor name.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// A tensor has a dtype we do not read (we read F32, BF16, F16).
    #[error("tensor `{name}` has unsupported dtype {dtype}")]
    TensorDtype {
        /// The tensor name.
        name: String,
        /// The dtype string of the file.
        dtype: String,
    },
    /// The tokenizer could not be loaded or failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An input (token ids, batch, sampling settings) is invalid.
    #[error("invalid input: {0}")]
    Input(String),
    /// The CUDA backend is unavailable (no driver, no NVRTC, no cuBLAS, or it is not compiled in).
    #[error("CUDA unavailable: {0}")]
    CudaUnavailable(String),
    /// A CUDA driver, NVRTC or cuBLAS call failed.
    #[error("CUDA error: {0}")]
    Cuda(String),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn field(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::ConfigField {
            field: field.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
}
