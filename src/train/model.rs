//! What the training loop needs of a model, and the fully-connected network's answer.
//!
//! The loop ([`super::sgd`]) shuffles, splits into mini-batches, scores and decides when to
//! stop; everything that depends on what the model *is* goes through [`Model`]: its mini-batch
//! step, scoring, cost, a finite check and a copy for early stopping. The fully-connected
//! [`Network`] keeps its two specialised fast steps behind it; a model made of other layers
//! (chapter 6) brings its own step and implements the same trait.

use crate::config::{Backprop, SgdConfig};
use crate::data::Dataset;
use crate::model::network::Network;
use crate::model::view::Inspect;
use crate::real::Real;

use super::batch::Batched;
use super::per_example::PerExample;
use super::step::UpdateMiniBatch;

/// A model the training loop can train: cloned to keep its best epoch, updated one
/// mini-batch at a time by its [`Model::Step`], and looked inside by observers that draw it
/// ([`Inspect`]).
pub trait Model<F: Real>: Clone + Send + Sync + Inspect<F> {
    /// The mini-batch step, with its work buffers.
    type Step: UpdateMiniBatch<F, Self>;

    /// A step for this model under `sgd` (its mini-batch size, and how it backpropagates),
    /// sharing each mini-batch between `threads` threads where the model can.
    fn step(&self, sgd: &SgdConfig, threads: usize) -> Self::Step;

    /// `(inputs, outputs)`: the values it reads per example and the classes it tells apart,
    /// checked against the data before training.
    fn shape(&self) -> (usize, usize);

    /// How many examples of `data` the model classifies correctly.
    fn evaluate(&self, data: &Dataset<F>) -> usize;

    /// The class the model names for each example of `data` (for a vote of several models).
    fn predictions(&self, data: &Dataset<F>) -> Vec<usize>;

    /// The mean cost over `data` plus the L2 term with strength `lambda` (eq. 87 for the
    /// fully-connected networks; `network3.py`'s form, which counts mini-batches of size
    /// `mini_batch`, for chapter 6's).
    fn total_cost(&self, data: &Dataset<F>, lambda: f64, mini_batch: usize) -> f64;

    /// True when every parameter is a finite number.
    fn is_finite(&self) -> bool;

    /// Chapter 5's speed of learning of each hidden layer over the first `n` examples of
    /// `data`: the norm of the average ∂C/∂b of the layer ([`super::speed`]).
    fn learning_speeds(&self, data: &Dataset<F>, n: usize) -> Vec<f64>;
}

/// The per-example or the batched step, as [`SgdConfig::backprop`] chooses.
pub enum NetworkStep<F: Real> {
    PerExample(PerExample<F>),
    Batched(Batched<F>),
}

impl<F: Real> UpdateMiniBatch<F, Network<F>> for NetworkStep<F> {
    #[inline]
    fn update_mini_batch(
        &mut self,
        net: &mut Network<F>,
        data: &Dataset<F>,
        batch: &[usize],
        step: &crate::model::Step,
        rng: &mut crate::rng::SeededRng,
    ) {
        match self {
            NetworkStep::PerExample(s) => s.update_mini_batch(net, data, batch, step, rng),
            NetworkStep::Batched(s) => s.update_mini_batch(net, data, batch, step, rng),
        }
    }
}

impl<F: Real> Model<F> for Network<F> {
    type Step = NetworkStep<F>;

    /// The fully-connected networks train on one thread whatever `threads` says (their
    /// scoring is shared, [`Network::map_outputs`]); their steps are not split.
    fn step(&self, sgd: &SgdConfig, _threads: usize) -> NetworkStep<F> {
        match sgd.backprop {
            Backprop::PerExample => NetworkStep::PerExample(PerExample::new(self)),
            Backprop::Batched => {
                NetworkStep::Batched(Batched::new(&self.sizes, sgd.mini_batch_size))
            }
        }
    }

    fn shape(&self) -> (usize, usize) {
        (self.sizes[0], self.sizes[self.sizes.len() - 1])
    }

    fn evaluate(&self, data: &Dataset<F>) -> usize {
        Network::evaluate(self, data)
    }

    fn predictions(&self, data: &Dataset<F>) -> Vec<usize> {
        Network::predictions(self, data)
    }

    fn total_cost(&self, data: &Dataset<F>, lambda: f64, _mini_batch: usize) -> f64 {
        Network::total_cost(self, data, lambda)
    }

    fn is_finite(&self) -> bool {
        Network::is_finite(self)
    }

    fn learning_speeds(&self, data: &Dataset<F>, n: usize) -> Vec<f64> {
        super::speed::network_speeds(self, data, n)
    }
}
