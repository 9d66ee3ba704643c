//! A labelled set of images, as the training loop reads it, and MNIST's three sets.

use ndarray::{concatenate, s, Array2, ArrayView2, ArrayViewMut1, Axis};

use crate::real::Real;

/// One labelled set: images `(n, 784)`, one image per row, pixels in [0, 1), and for row `i`
/// the digit (0–9) it shows.
///
/// When every pixel is a whole number of 256ths, as in MNIST, the set also keeps the pixels as
/// bytes (k for k/256): training gathers each random mini-batch from that copy, which moves an
/// eighth of the memory an `f64` row does, and converts exactly.
#[derive(Clone, Debug)]
pub struct Dataset<F: Real = f64> {
    images: Array2<F>,
    labels: Vec<u8>,
    /// `images × 256` as bytes, when that is exact.
    bytes: Option<Array2<u8>>,
}

impl<F: Real> Dataset<F> {
    /// A set of `images` (one per row, in standard layout) and their `labels`.
    ///
    /// # Panics
    /// If there is not one label per image (the loader checks this before it gets here).
    pub fn new(images: Array2<F>, labels: Vec<u8>) -> Self {
        assert_eq!(images.nrows(), labels.len(), "one label per image");
        let images = if images.is_standard_layout() {
            images
        } else {
            images.as_standard_layout().into_owned()
        };
        let bytes = images.as_slice().and_then(|pixels| {
            let mut exact = true;
            let bytes: Vec<u8> = pixels
                .iter()
                .map(|&p| {
                    let (b, is) = as_byte(p);
                    exact &= is;
                    b
                })
                .collect();
            exact.then(|| Array2::from_shape_vec(images.raw_dim(), bytes).ok())?
        });
        Dataset {
            images,
            labels,
            bytes,
        }
    }

    /// A set whose `bytes` are known to be `images × 256` exactly (the loader finds them while
    /// decoding). `images` must be in standard layout, one label per row.
    pub(crate) fn from_parts(images: Array2<F>, labels: Vec<u8>, bytes: Array2<u8>) -> Self {
        debug_assert!(images.is_standard_layout() && images.nrows() == labels.len());
        debug_assert_eq!(images.raw_dim(), bytes.raw_dim());
        Dataset {
            images,
            labels,
            bytes: Some(bytes),
        }
    }

    /// A set of images given as their bytes k (one image per row, in standard layout), each
    /// pixel k/256 as MNIST's are, one label per row: the values are made straight from the
    /// bytes in the run's precision (k/256 is exact in `f32` and `f64`), and the bytes kept as
    /// the byte copy.
    pub(crate) fn from_bytes(bytes: Array2<u8>, labels: Vec<u8>) -> Self {
        let scale = F::of(1.0 / 256.0);
        let images = bytes.mapv(|b| F::from_u8(b) * scale);
        Self::from_parts(images, labels, bytes)
    }

    /// A set whose pixels are known not all to be whole numbers of 256ths (so there is no byte
    /// copy to make): the images, in standard layout, one label per row.
    pub(crate) fn without_byte_copy(images: Array2<F>, labels: Vec<u8>) -> Self {
        debug_assert!(images.is_standard_layout() && images.nrows() == labels.len());
        Dataset {
            images,
            labels,
            bytes: None,
        }
    }

    /// The byte copy of the pixels (`images × 256`), when there is one.
    pub(crate) fn byte_copy(&self) -> Option<ArrayView2<'_, u8>> {
        self.bytes.as_ref().map(|b| b.view())
    }

    /// The images, `(n, pixels)`, one per row.
    pub fn images(&self) -> ArrayView2<'_, F> {
        self.images.view()
    }

    /// The digit shown by each image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Whether the set keeps its pixels as bytes too (every pixel a whole number of 256ths),
    /// from which [`Dataset::copy_row`] gathers.
    pub fn has_byte_copy(&self) -> bool {
        self.bytes.is_some()
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (784 for MNIST).
    pub fn inputs(&self) -> usize {
        self.images.ncols()
    }

    /// Copies image `k` into `out` (from the byte copy when there is one; the values are the
    /// same either way).
    pub fn copy_row(&self, k: usize, mut out: ArrayViewMut1<F>) {
        let bytes = self.bytes.as_ref().map(|b| b.row(k));
        match (
            bytes.as_ref().and_then(|b| b.as_slice()),
            out.as_slice_mut(),
        ) {
            (Some(bytes), Some(out)) => {
                let scale = F::of(1.0 / 256.0);
                for (o, &b) in out.iter_mut().zip(bytes) {
                    *o = F::from_u8(b) * scale;
                }
            }
            _ => out.assign(&self.images.row(k)),
        }
    }

    /// Asks the CPU to start loading images `rows` into its caches (x86-64 only; elsewhere it
    /// does nothing). The training loop calls it with the next mini-batch while the current one
    /// computes, so that gathering a random mini-batch does not wait on memory.
    pub fn prefetch(&self, rows: &[usize]) {
        const LINE: usize = 64;
        for &k in rows {
            let (start, bytes) = match &self.bytes {
                Some(b) => (b.row(k).as_ptr(), b.ncols()),
                None => (
                    self.images.row(k).as_ptr().cast::<u8>(),
                    self.images.ncols() * std::mem::size_of::<F>(),
                ),
            };
            for offset in (0..bytes).step_by(LINE) {
                crate::real::prefetch(start.wrapping_add(offset));
            }
        }
    }

    /// The first `n` examples (all of them if there are fewer).
    pub fn head(&self, n: usize) -> Dataset<F> {
        let n = n.min(self.len());
        Dataset {
            images: self.images.slice(s![..n, ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
            bytes: self.bytes.as_ref().map(|b| b.slice(s![..n, ..]).to_owned()),
        }
    }

    /// Splits the set in two at row `at`: the examples before it and those from it on.
    /// `at` is at most `len()` (callers check it).
    pub(crate) fn split_at(self, at: usize) -> (Dataset<F>, Dataset<F>) {
        let at = at.min(self.len());
        let rows = |a: &Array2<F>| {
            (
                a.slice(s![..at, ..]).to_owned(),
                a.slice(s![at.., ..]).to_owned(),
            )
        };
        let (head, tail) = rows(&self.images);
        let (bytes_head, bytes_tail) = match &self.bytes {
            Some(b) => {
                let (h, t) = (
                    b.slice(s![..at, ..]).to_owned(),
                    b.slice(s![at.., ..]).to_owned(),
                );
                (Some(h), Some(t))
            }
            None => (None, None),
        };
        let mut labels = self.labels;
        let tail_labels = labels.split_off(at);
        (
            Dataset {
                images: head,
                labels,
                bytes: bytes_head,
            },
            Dataset {
                images: tail,
                labels: tail_labels,
                bytes: bytes_tail,
            },
        )
    }

    /// `self`'s examples followed by `other`'s.
    ///
    /// # Panics
    /// If the two sets have different numbers of pixels per image (the loaders give every set
    /// 784).
    fn append(self, other: Dataset<F>) -> Dataset<F> {
        let pooled = concatenate(Axis(0), &[self.images.view(), other.images.view()]);
        let images = pooled.expect("sets with the same number of pixels per image");
        let bytes = match (&self.bytes, &other.bytes) {
            (Some(a), Some(b)) => concatenate(Axis(0), &[a.view(), b.view()]).ok(),
            _ => None,
        };
        let mut labels = self.labels;
        labels.extend(other.labels);
        Dataset {
            images,
            labels,
            bytes,
        }
    }

    /// The same set in another precision (MNIST's pixels, multiples of 1/256, are exact in
    /// `f32`).
    pub fn cast<G: Real>(&self) -> Dataset<G> {
        Dataset {
            images: self.images.mapv(|v| G::of(v.as_f64())),
            labels: self.labels.clone(),
            bytes: self.bytes.clone(),
        }
    }
}

/// The three sets of `mnist.pkl.gz`: 50,000 training, 10,000 validation, 10,000 test images.
#[derive(Clone, Debug)]
pub struct Mnist<F: Real = f64> {
    pub training: Dataset<F>,
    pub validation: Dataset<F>,
    pub test: Dataset<F>,
}

/// A validation set that would leave no training images (`--validation-size`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "--validation-size {asked} leaves no training images: the data has {available} training \
     and validation images together"
)]
pub struct ValidationSizeError {
    pub asked: usize,
    pub available: usize,
}

/// `--validation-size`: the validation set is taken from the end of the training images and
/// must leave at least one of the `available` (training and validation together) to train on.
pub fn check_validation_size(asked: usize, available: usize) -> Result<(), ValidationSizeError> {
    if asked >= available {
        return Err(ValidationSizeError { asked, available });
    }
    Ok(())
}

impl<F: Real> Mnist<F> {
    /// Training and validation images pooled, in that order, and split again so that the
    /// last `validation` of them are the validation set. MNIST's 60,000 training images are
    /// `mnist.pkl.gz`'s 50,000 training then 10,000 validation images, so this is the same
    /// split whether the data came from the pickle or from the IDX files.
    ///
    /// # Panics
    /// If the training and validation images have different numbers of pixels (the loaders
    /// give both 784).
    pub fn with_validation_size(self, validation: usize) -> Result<Mnist<F>, ValidationSizeError> {
        let available = self.training.len() + self.validation.len();
        check_validation_size(validation, available)?;
        if validation == self.validation.len() {
            return Ok(self);
        }
        let (training, validation) = self
            .training
            .append(self.validation)
            .split_at(available - validation);
        Ok(Mnist {
            training,
            validation,
            test: self.test,
        })
    }

    /// All three sets in another precision.
    pub fn cast<G: Real>(&self) -> Mnist<G> {
        Mnist {
            training: self.training.cast(),
            validation: self.validation.cast(),
            test: self.test.cast(),
        }
    }
}

/// The byte k of a pixel k/256, and whether the pixel is exactly that for a whole k in 0..=255.
/// (`as u8` saturates and maps NaN to 0, so the round trip fails for anything else.)
#[inline]
pub(crate) fn as_byte<F: Real>(p: F) -> (u8, bool) {
    let k = p * F::of(256.0);
    let b = k.as_f64() as u8;
    (b, F::from_u8(b) == k)
}
