//! The data a network learns from: MNIST as the book loads it (`mnist_loader.py`), and the
//! images a reader hands `nndl predict`.
//!
//! - [`dataset`]: a labelled set of images, one per row, as the training loop reads it;
//! - [`mnist`]: `mnist.pkl.gz`'s three sets, through the small, safe [`pickle`] reader;
//! - [`idx`]: the same three sets from MNIST's original IDX files (or any set in their shape);
//! - [`image`]: a handwritten digit from a PNG file, prepared as MNIST's digits were.
//!
//! Every loader names the file and what is wrong with it, and checks each length it reads
//! against the bytes that are really there before it allocates.

pub mod dataset;
pub mod idx;
pub mod image;
pub mod mnist;
pub mod pickle;

pub use dataset::{Dataset, Mnist};
pub use mnist::{load_mnist, DataError};

/// Pixels per MNIST image (28 × 28).
pub const IMAGE_PIXELS: usize = 784;
/// Number of digit classes.
pub const CLASSES: usize = 10;
