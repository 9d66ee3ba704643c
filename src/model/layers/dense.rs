//! `network3.py`'s `FullyConnectedLayer` and `SoftmaxLayer`: every input joined to every
//! neuron, out = f(W·x + b), or the softmax of W·x + b (eq. 78) for the output layer.
//!
//! Dropout is `network3.py`'s: while training, each *input* of the layer is kept with
//! probability 1 − p and zeroed otherwise, with no rescaling; evaluation uses every input and
//! scales the weighted input instead, f((1 − p)·W·x + b), which is what the layer computes on
//! average. (Chapter 3's [`crate::model::dropout`] for the fully-connected networks is the
//! *inverted* form of the same rule.)
//!
//! Shapes, with m examples: `weights` `(n_out, n_in)` — the transpose of `network3.py`'s `w`,
//! so that as in `network2.py` row j holds neuron j's weights; the layer's input `(n_in, m)`,
//! one example per column; its output `(n_out, m)`. A layer after a convolution reads the
//! previous output `(C, m·H·W)` as n_in = C·H·W values per example in (channel, y, x) order,
//! `network3.py`'s `reshape`: [`gather`] copies them into columns, [`scatter`] sends the
//! errors back.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};

use crate::real::Real;

/// The weights and biases of a fully-connected or softmax layer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Dense<F: Real = f64> {
    /// `(C, H, W)` of one example's input, n_in = C·H·W values.
    pub input: super::spec::Shape,
    /// Probability of dropping each input while training.
    pub dropout: f64,
    /// `(n_out, n_in)`.
    pub weights: Array2<F>,
    /// `(n_out,)`.
    pub biases: Array1<F>,
}

/// Copies `m` examples of `prev` `(C, m·HW)` into `input` `(C·HW, m)`:
/// input[c·HW + p, e] = prev[c, e·HW + p], times `mask` (same shape as `input`) if given.
/// A transpose of each channel, read in order and written with a stride of one row of
/// `input`; indexing the buffers' slices directly, not a view per row, is what keeps it small
/// next to the layer's product when m is the book's 10.
pub fn gather<F: Real>(
    prev: ArrayView2<F>,
    hw: usize,
    m: usize,
    mask: Option<ArrayView2<F>>,
    mut input: ArrayViewMut2<F>,
) {
    let stride = input.ncols();
    {
        let to = input.as_slice_mut().expect("layer inputs are contiguous");
        for (c, row) in prev.outer_iter().enumerate() {
            let row = row.as_slice().expect("rows of activations are contiguous");
            let block = &mut to[c * hw * stride..(c + 1) * hw * stride];
            for (e, example) in row[..m * hw].chunks_exact(hw).enumerate() {
                for (p, &v) in example.iter().enumerate() {
                    block[p * stride + e] = v;
                }
            }
        }
    }
    if let Some(mask) = mask {
        let mut to = input.slice_mut(s![.., ..m]);
        to *= &mask.slice(s![.., ..m]);
    }
}

/// The reverse of [`gather`]: d_prev[c, e·HW + p] = d_input[c·HW + p, e] (the mask already
/// applied to `d_input`).
pub fn scatter<F: Real>(d_input: ArrayView2<F>, hw: usize, m: usize, mut d_prev: ArrayViewMut2<F>) {
    let stride = d_input.ncols();
    let from = d_input.as_slice().expect("layer inputs are contiguous");
    for (c, mut row) in d_prev.outer_iter_mut().enumerate() {
        let row = row
            .as_slice_mut()
            .expect("rows of activations are contiguous");
        let block = &from[c * hw * stride..(c + 1) * hw * stride];
        for (e, example) in row[..m * hw].chunks_exact_mut(hw).enumerate() {
            for (p, v) in example.iter_mut().enumerate() {
                *v = block[p * stride + e];
            }
        }
    }
}
