//! What every model file shares, whichever layout it has — `network2.py`'s ([`super::file`])
//! or chapter 6's layer list ([`super::layers::file`]): the errors of writing and reading
//! one. Both are written atomically ([`crate::output::write_atomically`]), so that an
//! interrupted save never leaves a half-written model.
//!
//! Both layouts depend on this module and it on neither.

use std::path::PathBuf;

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
    #[error("{path} is not a network2.py model file")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}
