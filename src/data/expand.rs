//! Chapter 6's `expand_mnist.py`: the training set made five times larger by moving each image
//! one pixel down, up, right and left.
//!
//! For each training image in turn the expanded set holds the image itself and then four copies
//! of it, each moved one pixel — down, up, right, left, the book's order — with the row or column
//! that `np.roll` would wrap round to the far side set to 0 instead; every copy keeps its
//! original's label. 50,000 images become 250,000. Like the book's script, [`expand`] then
//! shuffles the pairs, here with the run's seeded generator ([`crate::rng::seeded`]), so that a
//! seed always gives the same set; without a seed the pairs stay in the order they are made
//! (original, down, up, right, left, image after image).
//!
//! The expanded set is made directly in its final order, row by row from the original, so only
//! one copy of it is ever in memory; when the original keeps a byte copy of its pixels (as
//! MNIST's sets do, see [`Dataset`]) the byte copy is moved the same way, with no second pass.
//!
//! Left out: Python's `random.shuffle` order (its Mersenne Twister is not the run's generator),
//! the script's progress lines and its refusal to run when the output exists (`nndl expand`
//! replaces the file, atomically, as every `nndl` output). The validation and test sets are not
//! touched here; the command writes them unchanged, as the book does. Any square image works,
//! not only 28×28.

use std::borrow::Cow;

use ndarray::{Array2, ArrayView2};
use num_traits::Zero;
use rand::seq::SliceRandom;

use super::Dataset;
use crate::real::Real;

/// A one-pixel move of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    /// Every row one down (`np.roll(image, 1, 0)`); the top row is 0.
    Down,
    /// Every row one up (`np.roll(image, -1, 0)`); the bottom row is 0.
    Up,
    /// Every column one right (`np.roll(image, 1, 1)`); the left column is 0.
    Right,
    /// Every column one left (`np.roll(image, -1, 1)`); the right column is 0.
    Left,
}

impl Shift {
    /// The four moves in the order `expand_mnist.py` makes them.
    pub const ALL: [Shift; 4] = [Shift::Down, Shift::Up, Shift::Right, Shift::Left];

    /// `"down"`, `"up"`, `"right"` or `"left"`.
    pub fn name(self) -> &'static str {
        match self {
            Shift::Down => "down",
            Shift::Up => "up",
            Shift::Right => "right",
            Shift::Left => "left",
        }
    }
}

/// Why a set cannot be expanded.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error(
        "the images have {0} pixels, which is not a square number: only square images can be \
         moved a pixel down, up, right and left (MNIST's have 784, 28×28)"
    )]
    NotSquare(usize),
    #[error("{images} images of {pixels} pixels, five times over, do not fit in memory")]
    TooLarge { images: usize, pixels: usize },
}

/// Writes into `out` the `side`×`side` image `image` (row by row, as a row of
/// [`Dataset::images`]) moved one pixel as `shift` says, the row or column left empty set to 0.
///
/// # Panics
/// If `image` or `out` does not have `side × side` pixels.
pub fn shift_image<T: Copy + Zero>(image: &[T], side: usize, shift: Shift, out: &mut [T]) {
    let pixels = side * side;
    assert!(
        image.len() == pixels && out.len() == pixels,
        "a {side}×{side} image has {pixels} pixels (got {} in, {} out)",
        image.len(),
        out.len()
    );
    if side == 0 {
        return;
    }
    let zero = T::zero();
    let last = pixels - side;
    match shift {
        Shift::Down => {
            out[..side].fill(zero);
            out[side..].copy_from_slice(&image[..last]);
        }
        Shift::Up => {
            out[..last].copy_from_slice(&image[side..]);
            out[last..].fill(zero);
        }
        Shift::Right => {
            for (o, i) in out.chunks_exact_mut(side).zip(image.chunks_exact(side)) {
                o[0] = zero;
                o[1..].copy_from_slice(&i[..side - 1]);
            }
        }
        Shift::Left => {
            for (o, i) in out.chunks_exact_mut(side).zip(image.chunks_exact(side)) {
                o[..side - 1].copy_from_slice(&i[1..]);
                o[side - 1] = zero;
            }
        }
    }
}

/// The side of a square image of `pixels` pixels.
pub fn square_side(pixels: usize) -> Result<usize, ExpandError> {
    let side = pixels.isqrt();
    match side * side == pixels {
        true => Ok(side),
        false => Err(ExpandError::NotSquare(pixels)),
    }
}

/// `set` expanded as `expand_mnist.py` expands MNIST's training set: each image followed by its
/// four one-pixel moves ([`Shift::ALL`]), `5 × len` examples in all; then, given a `shuffle`
/// seed, in the order a shuffle by [`crate::rng::seeded`]`(seed)` puts them.
///
/// Example `5i` of the unshuffled set is image `i` itself and `5i + 1 + j` its move
/// `Shift::ALL[j]`; the shuffled set is the unshuffled one permuted by [`expanded_order`].
pub fn expand<F: Real>(set: &Dataset<F>, shuffle: Option<u64>) -> Result<Dataset<F>, ExpandError> {
    let pixels = set.inputs();
    let side = square_side(pixels)?;
    let too_large = || ExpandError::TooLarge {
        images: set.len(),
        pixels,
    };
    let n = set.len().checked_mul(5).ok_or_else(too_large)?;
    n.checked_mul(pixels)
        .and_then(|v| v.checked_mul(std::mem::size_of::<F>()))
        .filter(|&bytes| bytes <= isize::MAX as usize)
        .ok_or_else(too_large)?;
    let order = expanded_order(set.len(), shuffle);

    let images = moved(set.images(), side, &order)?;
    let source = set.labels();
    let labels = order.iter().map(|&k| source[k / 5]).collect();
    // Moving pixels keeps them whole 256ths, and a set without a byte copy has a pixel that is
    // not one among its originals, which the expanded set keeps.
    Ok(match set.byte_copy() {
        Some(bytes) => Dataset::from_parts(images, labels, moved(bytes, side, &order)?),
        None => Dataset::without_byte_copy(images, labels),
    })
}

/// The order of [`expand`]'s examples: entry `p` is the index, in the unshuffled expanded set
/// of `len` images (image `i`'s original at `5i`, its moves at `5i + 1 …= 5i + 4`), of the
/// example at position `p`. The identity without a `shuffle` seed.
pub fn expanded_order(len: usize, shuffle: Option<u64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len * 5).collect();
    if let Some(seed) = shuffle {
        order.shuffle(&mut crate::rng::seeded(seed));
    }
    order
}

/// The rows `order` names of the expanded `images` (see [`expanded_order`]), made from the
/// originals.
fn moved<T: Copy + Zero>(
    images: ArrayView2<'_, T>,
    side: usize,
    order: &[usize],
) -> Result<Array2<T>, ExpandError> {
    let pixels = images.ncols();
    let mut out = vec![T::zero(); order.len() * pixels];
    // `max(1)`: images of no pixels make no rows to fill.
    for (to, &k) in out.chunks_exact_mut(pixels.max(1)).zip(order) {
        let original = images.row(k / 5);
        // A row of a set's arrays (in standard layout) is contiguous; copied if it were not.
        let from = match original.as_slice() {
            Some(from) => Cow::Borrowed(from),
            None => Cow::Owned(original.to_vec()),
        };
        match k % 5 {
            0 => to.copy_from_slice(&from),
            j => shift_image(&from, side, Shift::ALL[j - 1], to),
        }
    }
    Array2::from_shape_vec((order.len(), pixels), out).map_err(|_| ExpandError::TooLarge {
        images: images.nrows(),
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 image 1…9, row by row.
    const IMAGE: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn moved_by(shift: Shift) -> [u8; 9] {
        let mut out = [99; 9];
        shift_image(&IMAGE, 3, shift, &mut out);
        out
    }

    #[test]
    fn each_move_on_a_3x3_image() {
        assert_eq!(moved_by(Shift::Down), [0, 0, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(moved_by(Shift::Up), [4, 5, 6, 7, 8, 9, 0, 0, 0]);
        assert_eq!(moved_by(Shift::Right), [0, 1, 2, 0, 4, 5, 0, 7, 8]);
        assert_eq!(moved_by(Shift::Left), [2, 3, 0, 5, 6, 0, 8, 9, 0]);
    }

    #[test]
    fn a_1x1_image_moves_out_of_sight_and_an_empty_one_is_left_alone() {
        for shift in Shift::ALL {
            let mut out = [7.0f32];
            shift_image(&[0.5f32], 1, shift, &mut out);
            assert_eq!(out, [0.0], "{}", shift.name());
            shift_image::<f64>(&[], 0, shift, &mut []);
        }
    }

    #[test]
    #[should_panic(expected = "a 3×3 image has 9 pixels")]
    fn a_wrong_length_is_a_bug_said_plainly() {
        shift_image(&[0u8; 8], 3, Shift::Up, &mut [0u8; 9]);
    }

    #[test]
    fn square_sides() {
        assert_eq!(square_side(784).unwrap(), 28);
        assert_eq!(square_side(1).unwrap(), 1);
        assert_eq!(square_side(0).unwrap(), 0);
        let err = square_side(783).unwrap_err().to_string();
        assert!(err.contains("783 pixels"), "{err}");
    }

    #[test]
    fn the_order_is_a_permutation_fixed_by_the_seed() {
        assert_eq!(expanded_order(3, None), (0..15).collect::<Vec<_>>());
        let a = expanded_order(100, Some(0));
        assert_eq!(a, expanded_order(100, Some(0)));
        assert_ne!(a, expanded_order(100, Some(1)));
        assert_ne!(a, (0..500).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn two_images_unshuffled() {
        let images = Array2::from_shape_fn((2, 9), |(i, k)| (10 * i + k + 1) as f64 / 256.0);
        let set = Dataset::new(images, vec![3, 8]);
        assert!(set.has_byte_copy());
        let out = expand(&set, None).unwrap();
        assert_eq!(out.len(), 10);
        assert_eq!(out.labels(), &[3, 3, 3, 3, 3, 8, 8, 8, 8, 8]);
        assert!(out.has_byte_copy());
        for i in 0..2 {
            assert_eq!(out.images().row(5 * i), set.images().row(i));
            for (j, shift) in Shift::ALL.into_iter().enumerate() {
                let mut want = vec![0.0; 9];
                let original = set.images().row(i).to_vec();
                shift_image(&original, 3, shift, &mut want);
                assert_eq!(out.images().row(5 * i + 1 + j).to_vec(), want);
            }
        }
        // The byte copy moved with the pixels: a fresh set of the same pixels has the same one.
        let fresh = Dataset::new(out.images().to_owned(), out.labels().to_vec());
        assert_eq!(out.byte_copy(), fresh.byte_copy());
    }

    #[test]
    fn a_set_without_a_byte_copy_gives_one_without() {
        let images = Array2::from_shape_fn((2, 4), |(i, k)| 0.1 + (i * 4 + k) as f32);
        let set = Dataset::new(images, vec![0, 1]);
        assert!(!set.has_byte_copy());
        let out = expand(&set, Some(3)).unwrap();
        assert!(!out.has_byte_copy());
        let order = expanded_order(2, Some(3));
        let plain = expand(&set, None).unwrap();
        for (p, &k) in order.iter().enumerate() {
            assert_eq!(out.images().row(p), plain.images().row(k));
            assert_eq!(out.labels()[p], plain.labels()[k]);
        }
    }

    #[test]
    fn images_that_are_not_square_are_refused() {
        let set = Dataset::new(Array2::<f64>::zeros((2, 10)), vec![0, 1]);
        let err = expand(&set, None).unwrap_err();
        assert!(matches!(err, ExpandError::NotSquare(10)), "{err}");
    }

    #[test]
    fn an_empty_set_expands_to_an_empty_set() {
        let set = Dataset::new(Array2::<f32>::zeros((0, 784)), vec![]);
        let out = expand(&set, Some(0)).unwrap();
        assert_eq!((out.len(), out.inputs()), (0, 784));
    }
}
