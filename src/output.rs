//! Writing the files nndl makes — model files, pickles, metrics, figures, study exports — as a
//! careful `save()` would: through a temporary file renamed over the target, so that an
//! interrupted write never leaves a half-written file.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
