//! MNIST as its authors distribute it (LeCun, Cortes and Burges): four files in the IDX format,
//! and the drop-in replacements of the same shape (Fashion-MNIST, Kuzushiji-MNIST, …).
//!
//! A directory given to `--data` must hold `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each raw or gzipped (`NAME.gz`; the
//! file's first bytes tell which). An IDX file is a header — two zero bytes, the element type
//! (`0x08`, unsigned byte), the number of dimensions, each dimension as a big-endian `u32` —
//! followed by the elements in C order: images `(n, 28, 28)`, labels `(n)`.
//!
//! The book's `mnist.pkl.gz` was made from these files: each pixel there is the byte here
//! divided by 256, and its validation set is the last 10,000 of the 60,000 training images.
//! [`load_idx`] makes the same three sets (with [`DEFAULT_VALIDATION`] or any other number of
//! validation images), so a run on the IDX files is the run on the pickle.
//!
//! Every header field is checked (magic number, element type, number of dimensions, 28×28
//! images, counts that agree, labels 0–9), and nothing is allocated from an unchecked header:
//! a header declaring more than a file can hold (its size, or for a gzipped file 1032 times its
//! size, deflate's largest expansion) or more than [`MAX_IMAGE_BYTES`] is refused before
//! anything is read, as are images that would take more than the memory here in the run's
//! precision. A file is inflated only up to the size its header declares (one byte more shows
//! it is too long), straight into the buffers of the sets it makes: the bytes are the sets'
//! byte copy, and their pixels in the run's precision are made from them, so the images are
//! held once as bytes and once as `f32` or `f64`. A gzipped file is read as `gzip -d` reads it:
//! several gzip members one after the other (as `cat a.gz b.gz` makes) are one file, and zero
//! padding after the last is ignored ([`super::file::GzipMembers`]). Left out: element types
//! other than unsigned bytes (no MNIST-like set uses them) and images of other sizes (these
//! networks take 784 inputs).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::dataset::{Dataset, Mnist};
use super::mnist::DataError;
use super::{CLASSES, IMAGE_PIXELS};
use crate::real::Real;

/// The four files, as the original distribution names them (each may also end in `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Validation images taken from the end of the training images unless told otherwise: the
/// book's split of MNIST's 60,000 into 50,000 and 10,000.
pub const DEFAULT_VALIDATION: usize = 10_000;

/// The most image bytes one IDX file may declare: 1 GiB, 1.37 million 28×28 images, above the
/// largest MNIST-like set (EMNIST ByClass, 814,255 training images). A header declaring more
/// is refused before anything is allocated.
pub const MAX_IMAGE_BYTES: usize = 1 << 30;

/// Side of an image, in pixels.
const SIDE: u32 = 28;
/// IDX element type of unsigned bytes.
const UNSIGNED_BYTE: u8 = 0x08;
/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Deflate cannot expand data by more than about 1032:1; caps a gzipped file's first buffer.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The paths of the four files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxFiles {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

impl IdxFiles {
    /// The four files in `dir`, each `NAME` or `NAME.gz`.
    pub fn in_dir(dir: &Path) -> Result<IdxFiles, DataError> {
        let find = |name: &str| -> Result<PathBuf, DataError> {
            let raw = dir.join(name);
            let gz = dir.join(format!("{name}.gz"));
            // An entry of the name that is not a regular file is named as what it is (a FIFO
            // would block the read; a directory or broken link is not "missing").
            for path in [&raw, &gz] {
                if let Some(what) = super::file::not_regular(path) {
                    return Err(DataError::Content {
                        path: path.clone(),
                        message: format!("it is {what}, not a regular file"),
                    });
                }
            }
            match (raw.is_file(), gz.is_file()) {
                (true, _) => Ok(raw),
                (false, true) => Ok(gz),
                (false, false) => Err(DataError::Content {
                    path: dir.to_path_buf(),
                    message: format!(
                        "no {name} or {name}.gz (a directory of IDX files needs \
                         {TRAIN_IMAGES}, {TRAIN_LABELS}, {TEST_IMAGES} and {TEST_LABELS}, \
                         each raw or gzipped)"
                    ),
                }),
            }
        };
        Ok(IdxFiles {
            train_images: find(TRAIN_IMAGES)?,
            train_labels: find(TRAIN_LABELS)?,
            test_images: find(TEST_IMAGES)?,
            test_labels: find(TEST_LABELS)?,
        })
    }
}

/// Loads the IDX files in `dir` as MNIST's three sets, the last `validation` training images
/// being the validation set. `validation` must leave at least one training image
/// ([`DataError::Content`] otherwise; the command line checks it first).
pub fn load_idx(dir: &Path, validation: usize) -> Result<Mnist, DataError> {
    load_idx_files(&IdxFiles::in_dir(dir)?, validation)
}

/// [`load_idx`] on four named files.
pub fn load_idx_files(files: &IdxFiles, validation: usize) -> Result<Mnist, DataError> {
    load_idx_files_as(files, validation)
}

/// [`load_idx_files`] in precision `F`: each set is read as bytes straight from the
/// (inflating) stream — the training file's first images into the training set's buffer, the
/// rest into the validation set's — and its pixels made from them in `F`, so that the images
/// are held once in `F` and once as bytes (the set's byte copy), and never more. The images
/// a header declares are refused, before anything is allocated, when they would take more
/// than the memory here in `F` ([`super::check_fits`]).
pub fn load_idx_files_as<F: Real>(
    files: &IdxFiles,
    validation: usize,
) -> Result<Mnist<F>, DataError> {
    let available = super::memory_total();
    let (train, train_labels) = labelled_set::<F>(
        &files.train_images,
        &files.train_labels,
        Some(validation),
        available,
    )?;
    let (test, test_labels) =
        labelled_set::<F>(&files.test_images, &files.test_labels, None, available)?;
    let mut train = train.into_iter();
    let (Some(training), Some(validation_images), Some(test)) =
        (train.next(), train.next(), test.into_iter().next())
    else {
        unreachable!("labelled_set gives two parts when asked to split, one otherwise");
    };
    let mut training_labels = train_labels;
    let validation_labels = training_labels.split_off(training.nrows());
    Ok(Mnist {
        training: Dataset::from_bytes(training, training_labels),
        validation: Dataset::from_bytes(validation_images, validation_labels),
        test: Dataset::from_bytes(test, test_labels),
    })
}

/// The number of images an images file's header declares (checked as [`parse_images`]
/// checks it, without reading the images).
pub fn image_count(path: &Path) -> Result<usize, DataError> {
    let (mut stream, _) = open(path)?;
    images_header(path, &mut stream)
}

/// The number of labels a labels file's header declares (checked as [`parse_labels`] checks
/// it), from its first 8 bytes alone: of a gzipped file only they are inflated. For the
/// training labels, the number of training and validation images together, known before the
/// images are read.
pub fn label_count(path: &Path) -> Result<usize, DataError> {
    let (mut stream, _) = open(path)?;
    let dims = header(path, &mut stream, 1, "labels")?;
    Ok(dims[0] as usize)
}

/// The images (as bytes) of one file with the labels of another, which must be as many. With
/// `split`, the images come in two parts, the last `split` images in the second (which must
/// leave some in the first); without, in one. The images' size in `F` is checked against
/// `available` memory from the header, before the body is read.
fn labelled_set<F: Real>(
    images: &Path,
    labels: &Path,
    split: Option<usize>,
    available: Option<u128>,
) -> Result<(Vec<Array2<u8>>, Vec<u8>), DataError> {
    let content = |message: String| DataError::Content {
        path: images.to_path_buf(),
        message,
    };
    let (mut stream, most) = open(images)?;
    let n = images_header(images, &mut stream)?;
    let declared = format!("{n} images of 28×28");
    super::check_fits(
        images,
        &format!("the header's {declared}, in {} with their bytes,", F::NAME),
        super::dataset_bytes::<F>(n, IMAGE_PIXELS),
        available,
    )?;
    let parts = match split {
        Some(v) if v >= n => {
            return Err(content(format!(
                "{n} training images cannot give {v} to the validation set and keep some to \
                 train on"
            )))
        }
        Some(v) => vec![n - v, v],
        None => vec![n],
    };
    let pixels = body(
        images,
        &mut stream,
        most,
        16,
        &parts,
        IMAGE_PIXELS,
        &declared,
    )?;
    let pixels = parts
        .iter()
        .zip(pixels)
        .map(|(&rows, data)| Array2::from_shape_vec((rows, IMAGE_PIXELS), data))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(e.to_string()))?;
    let (mut stream, most) = open(labels)?;
    let digits = parse_labels(labels, &mut stream, most)?;
    if digits.len() != n {
        return Err(DataError::Content {
            path: labels.to_path_buf(),
            message: format!(
                "{} labels for the {n} images of {}",
                digits.len(),
                images.display()
            ),
        });
    }
    Ok((pixels, digits))
}

/// An open file as a byte stream — inflated if it is gzipped, as it is otherwise — and the
/// most bytes that stream can give (the file's size; 1032 times that when gzipped).
pub fn open(path: &Path) -> Result<(Box<dyn Read>, u64), DataError> {
    let open_err = |source| DataError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = super::file::open_regular(path).map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(open_err)?;
    let start = std::io::Cursor::new(magic[..n].to_vec());
    let stream = BufReader::with_capacity(1 << 16, start.chain(file));
    Ok(if magic == GZIP_MAGIC {
        (
            Box::new(super::file::GzipMembers::new(stream)),
            size.saturating_mul(MAX_DEFLATE_RATIO),
        )
    } else {
        (Box::new(stream), size)
    })
}

/// Reads until `buf` is full or the stream ends; the number of bytes read.
fn read_up_to(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads an images file `(n, 28, 28)` from `stream` as an `(n, 784)` matrix of bytes.
/// `most` is the most bytes `stream` can give (see [`open`]; for bytes in memory, their
/// number); `path` is only used in errors.
pub fn parse_images(
    path: &Path,
    stream: &mut dyn Read,
    most: u64,
) -> Result<Array2<u8>, DataError> {
    let n = images_header(path, stream)?;
    let declared = format!("{n} images of 28×28");
    let mut data = body(path, stream, most, 16, &[n], IMAGE_PIXELS, &declared)?;
    let data = data.pop().unwrap_or_default();
    Array2::from_shape_vec((n, IMAGE_PIXELS), data).map_err(|e| DataError::Content {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads and checks an images file's header: 28×28 images, and no more of them than
/// [`MAX_IMAGE_BYTES`] hold. The number of images.
fn images_header(path: &Path, stream: &mut dyn Read) -> Result<usize, DataError> {
    let content = |message: String| DataError::Content {
        path: path.to_path_buf(),
        message,
    };
    let dims = header(path, stream, 3, "images")?;
    let (n, rows, cols) = (dims[0] as usize, dims[1], dims[2]);
    if (rows, cols) != (SIDE, SIDE) {
        return Err(content(format!(
            "the images are {rows}×{cols} pixels; these networks read 28×28 images (784 inputs)"
        )));
    }
    match n.checked_mul(IMAGE_PIXELS) {
        Some(len) if len <= MAX_IMAGE_BYTES => Ok(n),
        _ => Err(content(format!(
            "the header declares {n} images, more than the {} (1 GiB) nndl reads",
            MAX_IMAGE_BYTES / IMAGE_PIXELS
        ))),
    }
}

/// Reads a labels file `(n)` from `stream`: digits 0–9. Arguments as [`parse_images`].
pub fn parse_labels(path: &Path, stream: &mut dyn Read, most: u64) -> Result<Vec<u8>, DataError> {
    let dims = header(path, stream, 1, "labels")?;
    let n = dims[0] as usize;
    // No more labels than there can be images: a 4 MB gzip declaring 2^32 − 1 labels took
    // 4 GiB before it was found short.
    let max = MAX_IMAGE_BYTES / IMAGE_PIXELS;
    if n > max {
        return Err(DataError::Content {
            path: path.to_path_buf(),
            message: format!(
                "the header declares {n} labels, more than the {max} images (1 GiB) nndl reads"
            ),
        });
    }
    let mut labels = body(path, stream, most, 8, &[n], 1, &format!("{n} labels"))?;
    let labels = labels.pop().unwrap_or_default();
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= CLASSES) {
        return Err(DataError::Content {
            path: path.to_path_buf(),
            message: format!("label {i} is {}, not a digit 0–9", labels[i]),
        });
    }
    Ok(labels)
}

/// Reads and checks the header of an IDX file of unsigned bytes with `ndims` dimensions
/// (`what` it should hold, for errors); the dimensions.
fn header(
    path: &Path,
    stream: &mut dyn Read,
    ndims: u8,
    what: &str,
) -> Result<Vec<u32>, DataError> {
    let content = |message: String| DataError::Content {
        path: path.to_path_buf(),
        message,
    };
    let read_err = |source| DataError::Gzip {
        path: path.to_path_buf(),
        source,
    };
    let size = 4 + 4 * usize::from(ndims);
    let mut head = [0u8; 16];
    let head = &mut head[..size];
    let got = read_up_to(stream, head).map_err(read_err)?;
    if got < size {
        return Err(content(format!(
            "{got} bytes is too short for the {size}-byte header of an IDX file of {what}"
        )));
    }
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let expected = u32::from(UNSIGNED_BYTE) << 8 | u32::from(ndims);
    if head[..2] != [0, 0] {
        return Err(content(format!(
            "magic number 0x{magic:08x} is not an IDX file's (0x{expected:08x} for {what})"
        )));
    }
    if head[2] != UNSIGNED_BYTE {
        return Err(content(format!(
            "IDX element type 0x{:02x}: nndl reads unsigned bytes (0x08), as MNIST stores them",
            head[2]
        )));
    }
    if head[3] != ndims {
        return Err(content(format!(
            "an IDX file of {} dimensions, but {what} have {ndims} (magic number 0x{expected:08x})",
            head[3]
        )));
    }
    Ok(head[4..]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
        .collect())
}

/// The data after a `header`-byte header, which must be all that is left of the stream, as
/// `parts.len()` buffers of `parts[i] × row` bytes, read one after the other straight from the
/// stream. A stream that cannot give that many (`most`: the file's size, 1032 times that
/// gzipped) is refused before anything is allocated; each buffer is then allocated at its
/// size once (the images' size was checked against the memory here too), not grown.
fn body(
    path: &Path,
    stream: &mut dyn Read,
    most: u64,
    header: u64,
    parts: &[usize],
    row: usize,
    declared: &str,
) -> Result<Vec<Vec<u8>>, DataError> {
    let content = |message: String| DataError::Content {
        path: path.to_path_buf(),
        message,
    };
    let read_err = |source| DataError::Gzip {
        path: path.to_path_buf(),
        source,
    };
    // At most MAX_IMAGE_BYTES, checked by the headers' readers.
    let want = parts.iter().sum::<usize>() as u64 * row as u64;
    if header + want > most {
        return Err(content(format!(
            "the header declares {declared} ({want} bytes after the {header}-byte header), \
             more than the file can hold"
        )));
    }
    let mut got = 0u64;
    let mut out = Vec::with_capacity(parts.len());
    for &rows in parts {
        let len = rows * row;
        let mut data = Vec::with_capacity(len);
        got += (&mut *stream)
            .take(len as u64)
            .read_to_end(&mut data)
            .map_err(read_err)? as u64;
        if data.len() < len {
            return Err(content(format!(
                "the header declares {declared} ({want} bytes after the {header}-byte header), \
                 but the file ends after {got}"
            )));
        }
        out.push(data);
    }
    let mut past = [0u8; 1];
    if read_up_to(stream, &mut past).map_err(read_err)? > 0 {
        return Err(content(format!(
            "the header declares {declared} ({want} bytes after the {header}-byte header), \
             but the file holds more"
        )));
    }
    Ok(out)
}
