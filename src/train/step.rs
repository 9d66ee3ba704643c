//! One step of gradient descent on one mini-batch: the seam between the training loop and a
//! model's backprop. `network.py`'s `update_mini_batch` is one such step ([`per_example`](super::per_example)),
//! the whole mini-batch as matrix products another ([`batch`](super::batch)).

use crate::rng::SeededRng;

use crate::data::Dataset;
use crate::model::Step;
use crate::real::Real;

/// Updates a model of type `M` from one mini-batch, keeping whatever buffers it needs between
/// calls.
pub trait UpdateMiniBatch<F: Real, M> {
    /// Updates `model` from the examples of `data` whose indices are `batch`, drawing any
    /// dropout masks from `rng`.
    fn update_mini_batch(
        &mut self,
        model: &mut M,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
        rng: &mut SeededRng,
    );
}
