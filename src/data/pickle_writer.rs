//! The writer of the layout [`super::pickle`] reads: `mnist.pkl.gz`'s tuple
//! `((train_x, train_y), (valid_x, valid_y), (test_x, test_y))` of NumPy arrays — images
//! float32 `(n, pixels)`, one per row, and labels int64 `(n,)` — pickled and gzipped, as
//! `expand_mnist.py` writes `mnist_expanded.pkl.gz` for chapter 6.
//!
//! Each array is written as NumPy pickles one: `numpy.core.multiarray._reconstruct(numpy.ndarray,
//! (0,), b'b')`, then a `BUILD` with the state `(1, shape, dtype, False, raw_bytes)`, the dtype
//! being `numpy.dtype('f4', False, True)` with its own `BUILD` state
//! `(3, '<', None, None, None, -1, -1, 0)`. The file is protocol 3 (raw bytes as `BINBYTES`), so
//! Python 3's plain `pickle.load` reads it with NumPy 1 or 2 — no `encoding='latin1'`, which the
//! book's Python-2 file needs — and so does nndl's `--data`. `numpy.core.multiarray` is the
//! module name NumPy 1 pickles under and NumPy 2 still answers to for pickles.
//!
//! Why by hand and not with a crate: `serde-pickle` writes Python's own data types only and
//! cannot express NumPy's reconstruct call (a global, `REDUCE`, then `BUILD` with the array's
//! state); the layout is fixed, so it takes a few dozen opcodes. Nothing is memoised (Python's
//! pickler shares the dtype object between arrays; here each array names its own), which
//! Python and [`super::pickle`] read the same way.
//!
//! Left out: Python 2, which cannot read protocol 3 (the book's Python-2 `network3.py` needs
//! Python 3 to read this file); other element types and Fortran order (the loader reads them,
//! nothing here needs to write them); pickles larger than
//! [`MAX_PICKLE_BYTES`], which nndl would refuse to read back.
//! The output is written atomically ([`crate::output::write_atomically`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::mnist::MAX_PICKLE_BYTES;
use super::{Dataset, Mnist, CLASSES};
use crate::output::write_atomically;
use crate::real::Real;

/// Why a set could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PickleWriteError {
    #[error(
        "the pickle would be {bytes} bytes, more than the {MAX_PICKLE_BYTES} that nndl reads back"
    )]
    TooLarge { bytes: u64 },
    #[error("{set} set: {message}")]
    Content { set: &'static str, message: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How hard gzip works: its default level. On the expanded MNIST pickle (849 MB) it makes
/// 63 MB; level 1 makes about 78 MB, and the level 9 of the book's `gzip.open` about 62 MB in
/// several times the time.
const LEVEL: Compression = Compression::new(6);

/// Bytes of pixels (or labels) converted and handed to the compressor at a time.
const CHUNK: usize = 1 << 16;

/// The sets' names, in the tuple's order.
const SETS: [&str; 3] = ["training", "validation", "test"];

/// Writes `mnist` to `path` as a gzipped pickle of the book's layout (see the module's note),
/// through a temporary file renamed over `path`. Pixels are stored as float32, as in
/// `mnist.pkl.gz`: exactly the values of an `f32` set, and of any set whose pixels are `f32`
/// values (every set nndl loads from `mnist.pkl.gz` or IDX files); other `f64` pixels are
/// rounded to the nearest `f32`.
///
/// Refused before anything is written: a pickle larger than nndl reads back, a pixel that is
/// not a finite number, a label that is not a digit 0–9 — what `--data` would refuse.
pub fn write_mnist<F: Real>(path: &Path, mnist: &Mnist<F>) -> Result<(), PickleWriteError> {
    let sets = [&mnist.training, &mnist.validation, &mnist.test];
    let bytes = pickled_len(sets.map(|s| (s.len(), s.inputs())));
    if bytes > MAX_PICKLE_BYTES as u64 {
        return Err(PickleWriteError::TooLarge { bytes });
    }
    for (set, data) in SETS.into_iter().zip(sets) {
        check(data).map_err(|message| PickleWriteError::Content { set, message })?;
    }
    write_atomically(path, |file| {
        let mut gz = GzEncoder::new(file, LEVEL);
        pickle_mnist(&mut gz, mnist)?;
        gz.finish().map(drop)
    })
    .map_err(|source| PickleWriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the pickle of `mnist`, uncompressed, to `out` (see [`write_mnist`], which gzips it
/// and checks the sets first).
pub fn pickle_mnist<F: Real>(mut out: impl Write, mnist: &Mnist<F>) -> std::io::Result<()> {
    out.write_all(&[PROTO, 3])?;
    for set in [&mnist.training, &mnist.validation, &mnist.test] {
        write_images(&mut out, set)?;
        write_labels(&mut out, set)?;
        out.write_all(&[TUPLE2])?;
    }
    out.write_all(&[TUPLE3, STOP])
}

/// The length in bytes of the (uncompressed) pickle [`pickle_mnist`] writes of three sets of
/// `(images, pixels)` each.
pub fn pickled_len(sets: [(usize, usize); 3]) -> u64 {
    let mut len = 2 + 2; // PROTO 3 … TUPLE3 STOP
    for (n, pixels) in sets {
        let images = n as u64 * pixels as u64 * 4;
        let labels = n as u64 * 8;
        len += array_head(&[n, pixels], "f4", 0).len() as u64 + images + ARRAY_TAIL.len() as u64;
        len += array_head(&[n], "i8", 0).len() as u64 + labels + ARRAY_TAIL.len() as u64;
        len += 1; // TUPLE2
    }
    len
}

/// What the loader refuses: a pixel that is not finite, a label above 9.
fn check<F: Real>(set: &Dataset<F>) -> Result<(), String> {
    if let Some(i) = set.images().iter().position(|p| !p.is_finite()) {
        return Err(format!("pixel {i} is not a finite number"));
    }
    match set.labels().iter().position(|&d| usize::from(d) >= CLASSES) {
        Some(i) => Err(format!("label {i} is {}, not a digit 0–9", set.labels()[i])),
        None => Ok(()),
    }
}

fn write_images<F: Real>(out: &mut impl Write, set: &Dataset<F>) -> std::io::Result<()> {
    let images = set.images();
    let bytes = images.len() * 4;
    out.write_all(&array_head(&[set.len(), set.inputs()], "f4", bytes))?;
    let mut buf = Vec::with_capacity(CHUNK + 4);
    for &p in images.iter() {
        // `as f32` rounds to nearest; exact for a value that is an f32.
        buf.extend_from_slice(&(p.as_f64() as f32).to_le_bytes());
        if buf.len() >= CHUNK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.write_all(ARRAY_TAIL)
}

fn write_labels<F: Real>(out: &mut impl Write, set: &Dataset<F>) -> std::io::Result<()> {
    let labels = set.labels();
    out.write_all(&array_head(&[labels.len()], "i8", labels.len() * 8))?;
    for chunk in labels.chunks(CHUNK / 8) {
        let bytes: Vec<u8> = chunk
            .iter()
            .flat_map(|&d| i64::from(d).to_le_bytes())
            .collect();
        out.write_all(&bytes)?;
    }
    out.write_all(ARRAY_TAIL)
}

// The opcodes written (Python's `pickletools` names them).
const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const GLOBAL: u8 = b'c';
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const REDUCE: u8 = b'R';
const BUILD: u8 = b'b';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const LONG1: u8 = 0x8a;
const BINUNICODE: u8 = b'X';
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';

/// Closes the array's state tuple and builds the array from it.
const ARRAY_TAIL: &[u8] = &[TUPLE, BUILD];

/// Everything of an array of `shape` and dtype `code` up to its `payload` bytes of data, which
/// follow it (then [`ARRAY_TAIL`]). `payload` is at most `u32::MAX` ([`write_mnist`] keeps the
/// whole pickle under 1 GiB).
fn array_head(shape: &[usize], code: &str, payload: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(160);
    // _reconstruct(ndarray, (0,), b'b')
    global(&mut h, "numpy.core.multiarray", "_reconstruct");
    global(&mut h, "numpy", "ndarray");
    int(&mut h, 0);
    h.push(TUPLE1);
    h.extend([SHORT_BINBYTES, 1, b'b']);
    h.extend([TUPLE3, REDUCE]);
    // (1, shape, dtype, is_fortran, raw bytes)
    h.push(MARK);
    int(&mut h, 1);
    h.push(MARK);
    for &d in shape {
        int(&mut h, d as u64);
    }
    h.push(TUPLE);
    // dtype(code, False, True), built with (3, '<', None, None, None, -1, -1, 0)
    global(&mut h, "numpy", "dtype");
    text(&mut h, code);
    h.extend([NEWFALSE, NEWTRUE, TUPLE3, REDUCE]);
    h.push(MARK);
    int(&mut h, 3);
    text(&mut h, "<");
    h.extend([NONE, NONE, NONE]);
    h.push(BININT);
    h.extend((-1i32).to_le_bytes());
    h.push(BININT);
    h.extend((-1i32).to_le_bytes());
    int(&mut h, 0);
    h.extend([TUPLE, BUILD]);
    h.push(NEWFALSE);
    h.push(BINBYTES);
    h.extend((payload as u32).to_le_bytes());
    h
}

fn global(h: &mut Vec<u8>, module: &str, name: &str) {
    h.push(GLOBAL);
    h.extend(format!("{module}\n{name}\n").as_bytes());
}

fn text(h: &mut Vec<u8>, s: &str) {
    h.push(BINUNICODE);
    h.extend((s.len() as u32).to_le_bytes());
    h.extend(s.as_bytes());
}

/// A non-negative integer, in the shortest form Python's pickler uses.
fn int(h: &mut Vec<u8>, v: u64) {
    if v < 1 << 8 {
        h.extend([BININT1, v as u8]);
    } else if v < 1 << 16 {
        h.push(BININT2);
        h.extend((v as u16).to_le_bytes());
    } else if v < 1 << 31 {
        h.push(BININT);
        h.extend((v as u32).to_le_bytes());
    } else {
        // Little-endian two's complement in as few bytes as keep the sign bit clear.
        let bytes = v.to_le_bytes();
        let mut n = 8 - (v.leading_zeros() as usize / 8);
        if bytes[n - 1] & 0x80 != 0 {
            n += 1;
        }
        h.extend([LONG1, n as u8]);
        h.extend(&bytes[..n.min(8)]);
        h.extend(std::iter::repeat_n(0, n.saturating_sub(8)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::pickle::{self, ElementType, Value};
    use super::*;
    use ndarray::Array2;

    fn int_value(v: u64) -> i64 {
        let mut h = vec![PROTO, 3];
        int(&mut h, v);
        h.push(STOP);
        match pickle::read(&h).unwrap() {
            Value::Int(i) => i,
            other => panic!("{v} read back as a {}", other.type_name()),
        }
    }

    #[test]
    fn integers_of_every_width_read_back() {
        for v in [
            0,
            1,
            255,
            256,
            65_535,
            65_536,
            (1 << 31) - 1,
            1 << 31,
            (1 << 32) + 7,
            i64::MAX as u64,
        ] {
            assert_eq!(int_value(v), v as i64, "{v}");
        }
    }

    fn sets() -> Mnist<f32> {
        let set = |n: usize, first: f32| {
            let images = Array2::from_shape_fn((n, 4), |(i, k)| first + (i * 4 + k) as f32 / 7.0);
            Dataset::new(images, (0..n).map(|i| (i % 10) as u8).collect())
        };
        Mnist {
            training: set(3, 0.0),
            validation: set(2, 0.5),
            test: set(0, 0.25),
        }
    }

    #[test]
    fn the_reader_reads_what_the_writer_writes() {
        let mnist = sets();
        let mut raw = Vec::new();
        pickle_mnist(&mut raw, &mnist).unwrap();
        let sets = [&mnist.training, &mnist.validation, &mnist.test];
        assert_eq!(raw.len() as u64, pickled_len(sets.map(|s| (s.len(), 4))));
        let root = pickle::read(&raw).unwrap();
        let read = root.as_tuple().unwrap();
        assert_eq!(read.len(), 3);
        for (set, pair) in sets.into_iter().zip(read) {
            let [x, y] = pair.as_tuple().unwrap() else {
                panic!("not a pair")
            };
            let x = x.clone().into_array().unwrap();
            assert_eq!(x.shape, [set.len(), 4]);
            assert_eq!(x.dtype.element, ElementType::F32);
            assert!(!x.dtype.big_endian && !x.fortran_order);
            let pixels: Vec<u8> = set.images().iter().flat_map(|p| p.to_le_bytes()).collect();
            assert_eq!(x.data.as_ref().as_ref(), &pixels[..]);
            let y = y.clone().into_array().unwrap();
            assert_eq!(y.shape, [set.len()]);
            assert_eq!(y.dtype.element, ElementType::I64);
            let labels: Vec<u8> = set
                .labels()
                .iter()
                .flat_map(|&d| i64::from(d).to_le_bytes())
                .collect();
            assert_eq!(y.data.as_ref().as_ref(), &labels[..]);
        }
    }

    #[test]
    fn the_expanded_mnist_fits_in_what_nndl_reads() {
        let len = pickled_len([(250_000, 784), (10_000, 784), (10_000, 784)]);
        assert!(len < MAX_PICKLE_BYTES as u64, "{len}");
        assert!(len > 250_000 * 784 * 4, "{len}");
        assert!(
            pickled_len([(350_000, 784), (10_000, 784), (10_000, 784)]) > MAX_PICKLE_BYTES as u64
        );
    }

    #[test]
    fn a_set_the_loader_would_refuse_is_not_written() {
        let dir = std::env::temp_dir().join(format!("nndl-pickle-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("refused.pkl.gz");
        let mut mnist = sets();
        mnist.validation = Dataset::new(Array2::from_elem((1, 4), f32::NAN), vec![1]);
        let err = write_mnist(&path, &mnist).unwrap_err().to_string();
        assert!(
            err.contains("validation set: pixel 0 is not a finite number"),
            "{err}"
        );
        let mut mnist = sets();
        mnist.test = Dataset::new(Array2::zeros((2, 4)), vec![1, 10]);
        let err = write_mnist(&path, &mnist).unwrap_err().to_string();
        assert!(
            err.contains("test set: label 1 is 10, not a digit 0–9"),
            "{err}"
        );
        assert!(!path.exists() && !dir.join("refused.pkl.gz.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
