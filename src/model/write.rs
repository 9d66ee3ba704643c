//! What every model file shares, whichever layout it has — `network2.py`'s ([`super::file`])
//! or chapter 6's layer list ([`super::layers::file`]): the errors of writing and reading
//! one, and the atomic write (a temporary file renamed over the target, as a careful
//! `save()` would do), so that an interrupted save never leaves a half-written model.
//!
//! Both layouts depend on this module and it on neither.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// Writes `path` through a temporary file beside it (`path` with `.tmp` appended), flushed to
/// disk and then renamed over `path`, so an interrupted write never leaves a half-written
/// file; on failure the temporary file is removed and `path` is untouched. A device or pipe
/// (`/dev/stdout`, `/dev/full`) is written as it is: renaming a file over it would replace it.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut out = BufWriter::new(fs::File::create(path)?);
        write(&mut out)?;
        return out.flush();
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let attempt = || -> std::io::Result<()> {
        let mut out = BufWriter::new(fs::File::create(&tmp)?);
        write(&mut out)?;
        out.flush()?;
        out.get_ref().sync_all()
    };
    if let Err(e) = attempt() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
