//! The data a network learns from: MNIST as the book loads it (`mnist_loader.py`), and the
//! images a reader hands `nndl predict`.
//!
//! - [`dataset`]: a labelled set of images, one per row, as the training loop reads it;
//! - [`mnist`]: `mnist.pkl.gz`'s three sets, through the small, safe [`pickle`] reader;
//! - [`idx`]: the same three sets from MNIST's original IDX files (or any set in their shape);
//! - [`image`]: a handwritten digit from a PNG file, prepared as MNIST's digits were;
//! - [`file`]: opening only regular files, with bounded reads;
//! - [`expand`]: chapter 6's `expand_mnist.py`, the training set grown fivefold by one-pixel
//!   moves, and [`pickle_writer`], which writes the three sets back in `mnist.pkl.gz`'s layout.
//!
//! Every loader names the file and what is wrong with it, and checks each length it reads
//! against the bytes that are really there before it allocates. The sets are made in the run's
//! precision (`Dataset<f32>` or `Dataset<f64>`) straight from the file's bytes, with no `f64`
//! copy on the way; a set whose size in that precision is more than the memory here
//! ([`memory_total`]) is refused before it is allocated ([`check_fits`]).

pub mod dataset;
pub mod expand;
pub mod file;
pub mod idx;
pub mod image;
pub mod mnist;
pub mod pickle;
pub mod pickle_writer;

use crate::real;

pub use dataset::{Dataset, Mnist};
pub use mnist::{load_mnist, DataError};

/// Pixels per MNIST image (28 × 28).
pub const IMAGE_PIXELS: usize = 784;

/// `(channels, height, width)` of one MNIST image, as chapter 6's layers read it.
pub const IMAGE_SHAPE: [usize; 3] = [1, 28, 28];
/// Number of digit classes.
pub const CLASSES: usize = 10;

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), or the process's address
/// space (`ulimit -v`, from `/proc/self/limits`) if that is less; `None` where neither is known.
/// Every check of a size against the memory here uses it: a network's (`train`, `tune`) and a
/// data file's ([`check_fits`]).
pub fn memory_total() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok();
    let total = info.as_deref().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    // "Max address space   unlimited   unlimited   bytes": the soft limit, in bytes.
    let address_space = limits.as_deref().and_then(|limits| {
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max address space"))?;
        line["Max address space".len()..]
            .split_whitespace()
            .next()?
            .parse::<u128>()
            .ok()
    });
    match (total, address_space) {
        (Some(t), Some(a)) => Some(t.min(a)),
        (t, a) => t.or(a),
    }
}

/// Bytes of one set of `images` images of `pixels` pixels held in precision `F` as a
/// [`Dataset`] holds them: the values and their byte copy (`None` past `u128`).
pub fn dataset_bytes<F: real::Real>(images: usize, pixels: usize) -> Option<u128> {
    let per_pixel = std::mem::size_of::<F>() as u128 + 1;
    (images as u128)
        .checked_mul(pixels as u128)?
        .checked_mul(per_pixel)
}

/// Refuses data of `bytes` bytes in memory (`what` it is, for the message: "1369000 images
/// of 28×28") before it is allocated, when that is more than `available` (see
/// [`memory_total`]).
pub fn check_fits(
    path: &std::path::Path,
    what: &str,
    bytes: Option<u128>,
    available: Option<u128>,
) -> Result<(), DataError> {
    let available = available.unwrap_or(u128::MAX).min(isize::MAX as u128);
    match bytes {
        Some(b) if b <= available => Ok(()),
        _ => Err(DataError::Content {
            path: path.to_path_buf(),
            message: format!(
                "{what} take {} in memory, more than the {} this process may use (the \
                 machine's memory, or its address space if less: ulimit -v)",
                bytes.map_or_else(|| "more than 2^128 bytes".to_string(), gigabytes),
                gigabytes(available)
            ),
        }),
    }
}

/// A byte count as `5.4 GB (5368709120 bytes)`.
fn gigabytes(bytes: u128) -> String {
    format!("{:.1} GB ({bytes} bytes)", bytes as f64 / 1e9)
}

/// The most characters of a file's text an error message quotes.
const QUOTE_CHARS: usize = 60;

/// Text from a file as an error message quotes it: control characters, quotes and
/// backslashes escaped (as Rust's `{:?}` does, without the surrounding quotes), and cut after
/// [`QUOTE_CHARS`] characters with the full length said, so that a 50 MB name makes a short
/// message and nothing in a file can drive the terminal.
pub fn quote(text: &str) -> String {
    quote_within(text, QUOTE_CHARS)
}

/// [`quote`], cut after `max` characters.
pub fn quote_within(text: &str, max: usize) -> String {
    let mut shown: String = text
        .chars()
        .take(max)
        .flat_map(char::escape_debug)
        .collect();
    let total = text.chars().count();
    if total > max {
        shown.push_str(&format!("… ({total} characters)"));
    }
    shown
}
