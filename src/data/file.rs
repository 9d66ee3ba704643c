//! Opening the files a user names (`--data`, `--model`, a PNG, a metrics file, a space file):
//! only regular files, refused by kind before they are opened, so that a FIFO cannot block
//! the open and a device such as `/dev/zero` cannot feed a read for ever; reads of whole
//! files bounded by a size said in the error; and gzip files read as `gzip -d` reads them
//! ([`GzipMembers`]).

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;

/// The decompressed bytes of a gzip file as `gzip -d` reads it: its members one after the
/// other (`cat a.gz b.gz` is one file), and bytes after the last member that do not begin
/// another (zero padding, as some tools write) ignored. Written over flate2's one-member
/// decoder because flate2's `MultiGzDecoder` refuses such trailing bytes as a broken header.
pub struct GzipMembers<R: BufRead> {
    /// The member being read; `None` once the last has ended.
    member: Option<GzDecoder<R>>,
}

/// The first byte of a gzip member (its magic number is `1f 8b`).
const GZIP_FIRST_BYTE: u8 = 0x1f;

impl<R: BufRead> GzipMembers<R> {
    pub fn new(input: R) -> Self {
        GzipMembers {
            member: Some(GzDecoder::new(input)),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let Some(member) = &mut self.member {
            let n = member.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The member has ended (its checksum checked): another follows if the next byte
            // begins one; a broken header there is an error, as in the first member.
            let next = member.get_mut().fill_buf()?.first().copied();
            self.member = match (self.member.take(), next) {
                (Some(ended), Some(GZIP_FIRST_BYTE)) => Some(GzDecoder::new(ended.into_inner())),
                _ => None,
            };
        }
        Ok(0)
    }
}

/// What `path` is when it is not a regular file (following symbolic links), as a sentence's
/// object: "a directory", "a named pipe (FIFO)", "a broken or looping symbolic link".
pub fn not_regular(path: &Path) -> Option<&'static str> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) if std::fs::symlink_metadata(path).is_ok() => {
            return Some("a broken or looping symbolic link")
        }
        Err(_) => return None, // missing: opening it says so
    };
    if meta.is_file() {
        return None;
    }
    if meta.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// The error for a path that is `what` instead of a regular file.
fn refused(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    )
}

/// Opens `path` for reading if it is a regular file (or a link to one).
pub fn open_regular(path: &Path) -> io::Result<File> {
    match not_regular(path) {
        Some(what) => Err(refused(what)),
        None => File::open(path),
    }
}

/// The bytes of the regular file `path`, refused unread when it holds more than `max`.
pub fn read_bytes(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let size = file.metadata()?.len();
    if size > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it holds {size} bytes, more than the {max} read from such a file"),
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // `take`: a file that grows while it is read stops at the limit too.
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The text of the regular file `path`, refused unread when it holds more than `max` bytes.
pub fn read_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_bytes(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("nndl-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_regular_files_are_opened() {
        let dir = scratch("kinds");
        let file = dir.join("f.txt");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_text(&file, 5).unwrap(), "12345");
        let err = read_text(&file, 4).unwrap_err().to_string();
        assert!(err.contains("5 bytes, more than the 4"), "{err}");
        assert_eq!(
            open_regular(&dir).unwrap_err().to_string(),
            "it is a directory, not a regular file"
        );
        #[cfg(unix)]
        {
            let broken = dir.join("broken");
            std::os::unix::fs::symlink(dir.join("nothing"), &broken).unwrap();
            assert_eq!(
                not_regular(&broken),
                Some("a broken or looping symbolic link")
            );
            let looping = dir.join("loop");
            std::os::unix::fs::symlink(&looping, &looping).unwrap();
            assert_eq!(
                not_regular(&looping),
                Some("a broken or looping symbolic link")
            );
            assert_eq!(not_regular(Path::new("/dev/zero")), Some("a device"));
            let link = dir.join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert_eq!(not_regular(&link), None);
        }
        assert_eq!(not_regular(&dir.join("missing")), None);
        assert!(open_regular(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
