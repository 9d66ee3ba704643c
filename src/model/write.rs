//! What every model file shares, whichever layout it has — `network2.py`'s ([`super::file`])
//! or chapter 6's layer list ([`super::layers::file`]): the errors of writing and reading
//! one. Both are written atomically ([`crate::output::write_atomically`]), so that an
//! interrupted save never leaves a half-written model.
//!
//! Both layouts depend on this module and it on neither.

use std::path::PathBuf;

/// How much of a JSON parser's message a [`ModelError::Json`] keeps.
const JSON_MESSAGE_CHARS: usize = 300;

impl ModelError {
    /// [`ModelError::Json`] for `path`, a model file of `layout` that `source` could not read.
    pub fn json(path: &std::path::Path, layout: &'static str, source: serde_json::Error) -> Self {
        ModelError::Json {
            path: path.to_path_buf(),
            layout,
            message: crate::data::quote_within(&source.to_string(), JSON_MESSAGE_CHARS),
        }
    }
}

/// Why a model file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// JSON that is not a model file of `layout`; `message` is the parser's, quoted (cut and
    /// escaped: it repeats the file's text).
    #[error("{path} is not a {layout}: {message}")]
    Json {
        path: PathBuf,
        layout: &'static str,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}
