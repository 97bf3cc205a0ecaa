//! `tokenizer.json` through the `tokenizers` crate (no hub, no network).

use std::path::Path;

use crate::error::{Error, Result};

/// A Hugging Face tokenizer loaded from a `tokenizer.json`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json` from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// Parses the bytes of a `tokenizer.json`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Tokenizer { inner })
    }

    /// Token ids of `text`. No special tokens are added (chat templates spell them out).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of token ids; special tokens are skipped when `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The id of a token string (e.g. `"<|im_end|>"`), if it exists.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// ChatML (Qwen) prompt pieces: the shared prefix holding the system message, and the per-prompt
/// suffix holding the user message and the opening of the assistant turn.
///
/// `prefix + suffix` is the full prompt. The split sits on a `<|im_start|>` special token, so
/// tokenising the two parts separately gives the same ids as tokenising the whole.
pub fn chatml(system: &str, user: &str) -> (String, String) {
    (
        format!("<|im_start|>system\n{system}<|im_end|>\n"),
        format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"),
    )
}
