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
//! so that as in `network2.py` row j holds neuron j's weights; the layer's input `(m, n_in)`,
//! one example per row, so that each example's inputs lie together (what
//! [`super::small_batch`]'s kernels read); its output `(n_out, m)`, one example per column. A
//! layer after a convolution reads the previous output `(C, m·H·W)` as n_in = C·H·W values per
//! example in (channel, y, x) order, `network3.py`'s `reshape`: [`gather`] copies them into
//! rows, [`scatter`] sends the errors back.

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

/// Copies `m` examples of `prev` `(C, m·HW)` into `input` `(m, C·HW)`:
/// input[e, c·HW + p] = prev[c, e·HW + p], times `mask` (same shape as `input`) if given.
/// Each channel's HW values of an example are one copied run (one value, a transpose, after
/// another dense layer).
pub fn gather<F: Real>(
    prev: ArrayView2<F>,
    hw: usize,
    m: usize,
    mask: Option<ArrayView2<F>>,
    mut input: ArrayViewMut2<F>,
) {
    let n_in = input.ncols();
    {
        let to = input.as_slice_mut().expect("layer inputs are contiguous");
        for (c, row) in prev.outer_iter().enumerate() {
            let row = row.as_slice().expect("rows of activations are contiguous");
            if hw == 1 {
                for (e, &v) in row[..m].iter().enumerate() {
                    to[e * n_in + c] = v;
                }
            } else {
                for (e, example) in row[..m * hw].chunks_exact(hw).enumerate() {
                    to[e * n_in + c * hw..e * n_in + (c + 1) * hw].copy_from_slice(example);
                }
            }
        }
    }
    if let Some(mask) = mask {
        let mut to = input.slice_mut(s![..m, ..]);
        to *= &mask.slice(s![..m, ..]);
    }
}

/// The reverse of [`gather`]: d_prev[c, e·HW + p] = d_input[e, c·HW + p] (the mask already
/// applied to `d_input`).
pub fn scatter<F: Real>(d_input: ArrayView2<F>, hw: usize, m: usize, mut d_prev: ArrayViewMut2<F>) {
    let n_in = d_input.ncols();
    let from = d_input.as_slice().expect("layer inputs are contiguous");
    for (c, mut row) in d_prev.outer_iter_mut().enumerate() {
        let row = row
            .as_slice_mut()
            .expect("rows of activations are contiguous");
        if hw == 1 {
            for (e, v) in row[..m].iter_mut().enumerate() {
                *v = from[e * n_in + c];
            }
        } else {
            for (e, example) in row[..m * hw].chunks_exact_mut(hw).enumerate() {
                example.copy_from_slice(&from[e * n_in + c * hw..e * n_in + (c + 1) * hw]);
            }
        }
    }
}
