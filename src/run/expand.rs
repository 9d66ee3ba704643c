//! `nndl expand`: chapter 6's `expand_mnist.py` as a command. It loads the data (the MNIST
//! pickle or a directory of IDX files), makes the training set five times larger by moving each
//! image one pixel down, up, right and left ([`crate::data::expand`]), shuffles it with a seed,
//! and writes it with the validation and test sets, unchanged, in `mnist.pkl.gz`'s layout
//! ([`crate::data::pickle_writer`]) — a file that `--data` then reads like the original.
//!
//! The output path is checked before the data is loaded, and the size of the pickle before the
//! set is expanded, so that neither fails after the work. Unlike the book's script, which
//! exits when `mnist_expanded.pkl.gz` exists, an existing file is replaced (atomically, as every
//! `nndl` output) — unless it is the input itself.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::expand::expand as expand_set;
use crate::data::mnist::MAX_PICKLE_BYTES;
use crate::data::pickle_writer::{pickled_len, write_mnist, PickleWriteError};
use crate::data::Mnist;
use crate::report::console::say;

use super::{check_output, load_data_as, RunError};

/// Where `nndl expand` writes unless told otherwise (`--output`): beside the default input, as
/// the book's script writes `../data/mnist_expanded.pkl.gz`.
pub const DEFAULT_OUTPUT: &str = "data/mnist_expanded.pkl.gz";

/// Everything `nndl expand` can be asked.
#[derive(Clone, Debug)]
pub struct ExpandRequest {
    /// The MNIST pickle, or a directory of IDX files.
    pub data: PathBuf,
    /// Validation images taken from the end of the training images (default: the data's own
    /// split, 10,000 for MNIST); the rest are expanded.
    pub validation_size: Option<usize>,
    /// The gzipped pickle to write.
    pub output: PathBuf,
    /// Seed of the shuffle of the expanded training set; `None` keeps the order it is made in
    /// (each image, then its moves down, up, right and left).
    pub shuffle: Option<u64>,
}

/// What [`expand`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expanded {
    pub training: usize,
    pub validation: usize,
    pub test: usize,
    /// Bytes of the pickle before and after gzip.
    pub pickled: u64,
    pub gzipped: u64,
}

/// `nndl expand`: checks that the output can be written and is not the input, loads the data,
/// expands its training set (refusing, before it does, one whose pickle nndl could not read
/// back), and writes the three sets to `request.output`, printing the counts and times.
pub fn expand(request: &ExpandRequest) -> Result<Expanded, RunError> {
    let output = &request.output;
    check_output(output)?;
    if same_file(output, &request.data) {
        return Err(RunError::Output {
            path: output.clone(),
            reason: "it is the input (--data); write the expanded set to another file".into(),
        });
    }
    let order = match request.shuffle {
        Some(seed) => format!("shuffled with seed {seed}"),
        None => "not shuffled".to_string(),
    };
    say(&format!(
        "Expanding the training set of {}: each image, then moved one pixel down, up, right \
         and left; {order}",
        request.data.display()
    ));

    let start = Instant::now();
    let Mnist {
        training,
        validation,
        test,
    } = load_data_as::<f32>(&request.data, request.validation_size)?;
    say(&format!(
        "Loaded {} in {:.2} seconds ({} training, {} validation, {} test images)",
        request.data.display(),
        start.elapsed().as_secs_f64(),
        training.len(),
        validation.len(),
        test.len()
    ));
    let pixels = training.inputs();
    let expanded_len = training.len().saturating_mul(5);
    let pickled = pickled_len([
        (expanded_len, pixels),
        (validation.len(), validation.inputs()),
        (test.len(), test.inputs()),
    ]);
    if pickled > MAX_PICKLE_BYTES as u64 {
        return Err(PickleWriteError::TooLarge { bytes: pickled }.into());
    }

    let start = Instant::now();
    // Loaded in f32, as the file stores it (MNIST's pixels, whole 256ths, are exact): half
    // the memory of the one expanded copy.
    let originals = training;
    let expanded = Mnist {
        training: expand_set(&originals, request.shuffle)?,
        validation,
        test,
    };
    say(&format!(
        "Expanded {} training images to {} in {:.2} seconds",
        originals.len(),
        expanded.training.len(),
        start.elapsed().as_secs_f64()
    ));
    drop(originals);

    let start = Instant::now();
    write_mnist(output, &expanded)?;
    let gzipped = std::fs::metadata(output).map_or(0, |m| m.len());
    let written = Expanded {
        training: expanded.training.len(),
        validation: expanded.validation.len(),
        test: expanded.test.len(),
        pickled,
        gzipped,
    };
    say(&format!(
        "Wrote {} in {:.2} seconds: {} training, {} validation, {} test images ({:.1} MB, \
         {:.1} MB gzipped)",
        output.display(),
        start.elapsed().as_secs_f64(),
        written.training,
        written.validation,
        written.test,
        pickled as f64 / 1e6,
        gzipped as f64 / 1e6
    ));
    Ok(written)
}

/// Whether `a` and `b` name the same existing file.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
