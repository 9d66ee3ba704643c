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
//! against the bytes that are really there before it allocates.

pub mod dataset;
pub mod expand;
pub mod file;
pub mod idx;
pub mod image;
pub mod mnist;
pub mod pickle;
pub mod pickle_writer;

pub use dataset::{Dataset, Mnist};
pub use mnist::{load_mnist, DataError};

/// Pixels per MNIST image (28 × 28).
pub const IMAGE_PIXELS: usize = 784;

/// `(channels, height, width)` of one MNIST image, as chapter 6's layers read it.
pub const IMAGE_SHAPE: [usize; 3] = [1, 28, 28];
/// Number of digit classes.
pub const CLASSES: usize = 10;

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
