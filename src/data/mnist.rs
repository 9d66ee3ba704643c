//! MNIST, as the book loads it: `mnist_loader.py`'s `load_data()` on `mnist.pkl.gz`.
//!
//! The file is a gzip of a pickled `((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`
//! (see [`crate::data::pickle`]). Unlike `load_data_wrapper()`, nothing is reshaped into lists of
//! column vectors: each set stays one matrix with **one image per row**, `(n, 784)`, and the
//! labels stay digits (the one-hot vectors the book builds for training are made per mini-batch
//! by the training code).
//!
//! The sets are made in the run's precision ([`load_mnist_as`]): the inflated pickle is read
//! into the pixels' bytes (MNIST's pixels are whole 256ths), freed, and the values made from
//! the bytes, so that an `f32` run never holds an `f64` copy ([`parse_mnist_owned`]).
//!
//! Every failure names the file and what is wrong with it; no length read from the file is used
//! before it has been checked against the bytes that are really there. The file is inflated
//! only as far as the pickle goes — reading stops at its `STOP`, as Python's `pickle.load`
//! does, so gigabytes of anything after it are never inflated — and at most
//! [`MAX_PICKLE_BYTES`] of it. [`training_count`] learns the number of training images from
//! the file's first bytes alone, so that a run can be checked against it before the file is
//! loaded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::dataset::{as_byte, Dataset, Mnist};
use super::pickle::{self, ElementType, NdArray, Value};
use super::{CLASSES, IMAGE_PIXELS};
use crate::real::Real;

/// Largest decompressed size we reserve up front from the gzip trailer's claim (the real
/// `mnist.pkl.gz` is 220 MB); a larger file still loads, it just grows its buffer as it goes.
const MAX_RESERVE: u64 = 512 << 20;

/// The most bytes a pickle may inflate to: 1 GiB, enough for MNIST's pickle (220 MB) with
/// its pixels as float64 (440 MB) and to spare. A file that has not reached the pickle's
/// `STOP` by then is refused (a gzip bomb — a small file of gigabytes of zeros — included).
pub const MAX_PICKLE_BYTES: usize = 1 << 30;

/// Why a data file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a complete gzip file")]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a readable pickle")]
    Pickle {
        path: PathBuf,
        source: pickle::PickleError,
    },
    #[error("{path}: {message}")]
    Content { path: PathBuf, message: String },
}

/// How much of a pickle [`training_count`] inflates at most: the book's file reaches the bytes
/// of its training images within its first 200 bytes.
const PEEK_BYTES: u64 = 1 << 16;

/// The number of training images in the pickle at `path`, from its first bytes only: the
/// shape `(n, 784)` of the first array, which is the training images (see
/// [`pickle::first_array_shape`]). `None` when those bytes do not tell — the file cannot be
/// opened or is not a gzip, or its pickle holds the pixels before their shape or in a layout
/// that only reading them tells (see there) — and loading the file is left to find the number,
/// or what is wrong.
pub fn training_count(path: impl AsRef<Path>) -> Option<usize> {
    let file = super::file::open_regular(path.as_ref()).ok()?;
    let mut prefix = Vec::new();
    // A read error (a file cut short, a corrupt stream) leaves what was inflated before it,
    // which may still hold the shape; loading reports the error.
    let _ = super::file::GzipMembers::new(std::io::BufReader::new(file))
        .take(PEEK_BYTES)
        .read_to_end(&mut prefix);
    match pickle::first_array_shape(&prefix)?[..] {
        [n, IMAGE_PIXELS] => Some(n),
        _ => None,
    }
}

/// Loads `mnist.pkl.gz` (or any pickle of the same tuple; see [`crate::data::pickle`]).
pub fn load_mnist(path: impl AsRef<Path>) -> Result<Mnist, DataError> {
    load_mnist_as(path)
}

/// [`load_mnist`] in precision `F`.
pub fn load_mnist_as<F: Real>(path: impl AsRef<Path>) -> Result<Mnist<F>, DataError> {
    load_within(path.as_ref(), MAX_PICKLE_BYTES)
}

/// [`load_mnist`], inflating at most `max_bytes` of the file.
pub fn load_mnist_within(path: impl AsRef<Path>, max_bytes: usize) -> Result<Mnist, DataError> {
    load_within(path.as_ref(), max_bytes)
}

/// [`load_mnist_as`], inflating at most `max_bytes` of the file.
fn load_within<F: Real>(path: &Path, max_bytes: usize) -> Result<Mnist<F>, DataError> {
    let raw = read_gzip(path, max_bytes)?;
    parse_mnist_owned(path, raw, super::memory_total())
}

/// Inflates a gzipped pickle up to its `STOP`, or to the end of the file, whichever comes
/// first; refuses to inflate more than `max_bytes`.
fn read_gzip(path: &Path, max_bytes: usize) -> Result<Vec<u8>, DataError> {
    let open_err = |source| DataError::Open {
        path: path.to_path_buf(),
        source,
    };
    let gzip_err = |source| DataError::Gzip {
        path: path.to_path_buf(),
        source,
    };
    let mut file = super::file::open_regular(path).map_err(open_err)?;
    // The gzip trailer's last four bytes claim the decompressed size (mod 2^32). It is only a
    // hint for the first allocation: capped, and never trusted for anything else.
    let hint = size_hint(&mut file).map_err(open_err)?.min(max_bytes);
    let mut raw = Vec::with_capacity(hint);
    let mut gz = super::file::GzipMembers::new(std::io::BufReader::with_capacity(1 << 16, file));
    // One byte past the hint, so that a file whose trailer is right is read to its end (and
    // its checksum checked) in one go; otherwise, twice as much each time.
    let mut target = hint.max(1 << 20).saturating_add(1).min(max_bytes);
    loop {
        let want = target - raw.len();
        let got = (&mut gz)
            .take(want as u64)
            .read_to_end(&mut raw)
            .map_err(gzip_err)?;
        if got < want {
            return Ok(raw); // the whole file; parse_mnist says what is wrong with it, if anything
        }
        // More follows. If the pickle is already complete, the rest is never read.
        match pickle::read(&raw) {
            Err(e) if e.is_truncated() => {}
            _ => return Ok(raw),
        }
        if raw.len() >= max_bytes {
            return Err(DataError::Content {
                path: path.to_path_buf(),
                message: format!(
                    "the pickle does not end within {max_bytes} bytes inflated (nndl reads \
                     pickles of up to {MAX_PICKLE_BYTES} bytes; mnist.pkl.gz is 220 MB)"
                ),
            });
        }
        target = target.saturating_mul(2).min(max_bytes);
    }
}

fn size_hint(file: &mut File) -> std::io::Result<usize> {
    let len = file.metadata()?.len();
    if len < 18 {
        return Ok(0);
    }
    file.seek(SeekFrom::End(-4))?;
    let mut isize = [0u8; 4];
    file.read_exact(&mut isize)?;
    file.seek(SeekFrom::Start(0))?;
    let claimed = u64::from(u32::from_le_bytes(isize));
    // Deflate cannot expand by more than about 1032:1.
    Ok(claimed.min(MAX_RESERVE).min(len.saturating_mul(1032)) as usize)
}

/// Interprets decompressed pickle bytes as the MNIST tuple; `path` is only used in errors.
pub fn parse_mnist(path: &Path, raw: &[u8]) -> Result<Mnist, DataError> {
    let sets = parse_sets::<f64>(path, raw, super::memory_total())?;
    Ok(into_mnist(sets))
}

/// [`parse_mnist`] in precision `F` on a buffer it frees half-way: the three sets are read
/// from `raw` as bytes (or, for pixels that are not whole 256ths, straight into `F`), `raw` is
/// freed, and only then are the pixels made in `F` from the bytes. The images are so never
/// held as the file's bytes, the values and the byte copy at once: for the book's `float32`
/// pixels, at most 1.25 times their size in `f32` (the file's bytes and the byte copy, then
/// the values and the byte copy), 1.125 times their size in `f64`. Sets whose size in `F` is
/// more than `available` are refused before they are made ([`super::check_fits`]).
pub fn parse_mnist_owned<F: Real>(
    path: &Path,
    raw: Vec<u8>,
    available: Option<u128>,
) -> Result<Mnist<F>, DataError> {
    let sets = parse_sets::<F>(path, &raw, available)?;
    drop(raw);
    Ok(into_mnist(sets))
}

/// The three sets as [`Mnist`], each made in `F` in turn.
fn into_mnist<F: Real>(sets: [Set<F>; 3]) -> Mnist<F> {
    let [training, validation, test] = sets.map(Set::into_dataset);
    Mnist {
        training,
        validation,
        test,
    }
}

/// The three sets of the pickle in `raw`, their size in `F` checked against `available`.
fn parse_sets<F: Real>(
    path: &Path,
    raw: &[u8],
    available: Option<u128>,
) -> Result<[Set<F>; 3], DataError> {
    let content = |message: String| DataError::Content {
        path: path.to_path_buf(),
        message,
    };
    let root = pickle::read(raw).map_err(|source| DataError::Pickle {
        path: path.to_path_buf(),
        source,
    })?;
    let sets = match root.as_tuple() {
        Some(sets) if sets.len() == 3 => sets.to_vec(),
        _ => {
            return Err(content(format!(
                "expected a tuple (training, validation, test), found {}",
                describe(&root)
            )))
        }
    };
    drop(root);
    let names = ["training", "validation", "test"];
    let mut arrays = Vec::with_capacity(3);
    for (name, set) in names.into_iter().zip(sets) {
        arrays.push(set_arrays(name, set).map_err(content)?);
    }
    let count: usize = arrays.iter().map(|(x, _)| x.shape[0]).sum();
    super::check_fits(
        path,
        &format!(
            "the pickle's {count} images of 28×28, in {} with their bytes,",
            F::NAME
        ),
        super::dataset_bytes::<F>(count, IMAGE_PIXELS),
        available,
    )?;
    let mut out = Vec::with_capacity(3);
    for (name, (x, y)) in names.into_iter().zip(arrays) {
        let pixels = images(&x).map_err(|e| content(format!("{name} images: {e}")))?;
        let labels = labels(&y).map_err(|e| content(format!("{name} labels: {e}")))?;
        out.push(Set { pixels, labels });
    }
    out.try_into()
        .map_err(|_| content("expected three sets".to_string()))
}

/// One set as read from the pickle, before its pixels are made in `F`.
struct Set<F> {
    pixels: Pixels<F>,
    labels: Vec<u8>,
}

impl<F: Real> Set<F> {
    fn into_dataset(self) -> Dataset<F> {
        match self.pixels {
            Pixels::Bytes(bytes) => Dataset::from_bytes(bytes, self.labels),
            Pixels::Values(values) => Dataset::without_byte_copy(values, self.labels),
        }
    }
}

fn describe(v: &Value) -> String {
    match v.as_tuple() {
        Some(items) => format!("a tuple of {} items", items.len()),
        None => format!("a {}", v.type_name()),
    }
}

/// A set's two arrays, images `(n, 784)` and labels `(n)`, their shapes checked.
fn set_arrays<'a>(name: &str, set: Value<'a>) -> Result<(NdArray<'a>, NdArray<'a>), String> {
    let items = match set.as_tuple() {
        Some(items) if items.len() == 2 => items.to_vec(),
        _ => {
            return Err(format!(
                "{name} set: expected a tuple (images, labels), found {}",
                describe(&set)
            ))
        }
    };
    drop(set);
    let mut items = items.into_iter();
    let (Some(x), Some(y)) = (items.next(), items.next()) else {
        return Err(format!("{name} set: expected (images, labels)"));
    };
    let x = x
        .into_array()
        .ok_or_else(|| format!("{name} images: not a NumPy array"))?;
    let y = y
        .into_array()
        .ok_or_else(|| format!("{name} labels: not a NumPy array"))?;

    let [n, cols] = x.shape[..] else {
        return Err(format!(
            "{name} images: expected a 2-D array, found shape {}",
            super::quote(&format!("{:?}", x.shape))
        ));
    };
    if cols != IMAGE_PIXELS {
        return Err(format!(
            "{name} images: expected {IMAGE_PIXELS} columns (28×28 pixels), found {cols}"
        ));
    }
    let [n_labels] = y.shape[..] else {
        return Err(format!(
            "{name} labels: expected a 1-D array, found shape {}",
            super::quote(&format!("{:?}", y.shape))
        ));
    };
    if n_labels != n {
        return Err(format!("{name} set: {n} images but {n_labels} labels"));
    }
    Ok((x, y))
}

/// A set's pixels `(n, 784)`, one image per row: as the bytes k when every pixel is a whole
/// number k of 256ths, as in MNIST (their values in `F` are made later, from the bytes), else
/// as values in `F`.
enum Pixels<F> {
    Bytes(Array2<u8>),
    Values(Array2<F>),
}

/// Reads the pixel buffer, in the file's order (C or Fortran).
fn images<F: Real>(x: &NdArray) -> Result<Pixels<F>, String> {
    let shape = (x.shape[0], x.shape[1]);
    let (data, fortran) = (&x.data[..], x.fortran_order);
    // One loop per element type and byte order, without a branch inside.
    match (x.dtype.element, x.dtype.big_endian) {
        (ElementType::F32, false) => {
            decode(data, shape, fortran, |b| f64::from(f32::from_le_bytes(b)))
        }
        (ElementType::F32, true) => {
            decode(data, shape, fortran, |b| f64::from(f32::from_be_bytes(b)))
        }
        (ElementType::F64, false) => decode(data, shape, fortran, f64::from_le_bytes),
        (ElementType::F64, true) => decode(data, shape, fortran, f64::from_be_bytes),
        (other, _) => Err(format!(
            "pixels must be float32 or float64, found {other:?}"
        )),
    }
}

/// Every `N`-byte element of `data` (of `shape`, in Fortran order if `fortran`), decoded by
/// `f`: as the bytes k = 256·value in one pass when they are all whole 256ths, else, in a
/// second pass, as values in `F` — each the `f64` value rounded to `F`, as an `f64` load cast
/// to `F` has it — refusing any that is not a finite number. Rows are made contiguous.
fn decode<const N: usize, F: Real>(
    data: &[u8],
    shape: (usize, usize),
    fortran: bool,
    f: impl Fn([u8; N]) -> f64,
) -> Result<Pixels<F>, String> {
    let elements = || {
        data.chunks_exact(N).map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
    };
    let shape = ndarray::ShapeBuilder::set_f(shape, fortran);
    let mut bytes = Vec::with_capacity(data.len() / N);
    let mut exact = true;
    for v in elements() {
        let (b, is) = as_byte(v);
        if !is {
            exact = false;
            break;
        }
        bytes.push(b);
    }
    if exact {
        let bytes = Array2::from_shape_vec(shape, bytes).map_err(|e| e.to_string())?;
        return Ok(Pixels::Bytes(standard_layout(bytes)));
    }
    drop(bytes);
    let mut values = Vec::with_capacity(data.len() / N);
    for (i, v) in elements().enumerate() {
        if !v.is_finite() {
            return Err(format!("pixel {i} is not a finite number"));
        }
        values.push(F::of(v));
    }
    let values = Array2::from_shape_vec(shape, values).map_err(|e| e.to_string())?;
    Ok(Pixels::Values(standard_layout(values)))
}

/// `a` with its rows contiguous (a copy only for an array in Fortran order).
fn standard_layout<T: Clone>(a: Array2<T>) -> Array2<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// Converts the label buffer to digits, rejecting anything outside 0–9.
fn labels(y: &NdArray) -> Result<Vec<u8>, String> {
    let big = y.dtype.big_endian;
    let values: Vec<i64> = match y.dtype.element {
        ElementType::I64 => y
            .data
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                if big {
                    i64::from_be_bytes(b)
                } else {
                    i64::from_le_bytes(b)
                }
            })
            .collect(),
        ElementType::I32 => y
            .data
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                i64::from(if big {
                    i32::from_be_bytes(b)
                } else {
                    i32::from_le_bytes(b)
                })
            })
            .collect(),
        ElementType::U8 => y.data.iter().map(|&b| i64::from(b)).collect(),
        other => return Err(format!("labels must be integers, found {other:?}")),
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match u8::try_from(v) {
            Ok(d) if usize::from(d) < CLASSES => Ok(d),
            _ => Err(format!("label {i} is {v}, not a digit 0–9")),
        })
        .collect()
}
