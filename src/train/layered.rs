//! The training step of chapter 6's networks: `network3.py`'s `train_mb` — the whole
//! mini-batch forward, backward and updated at once ([`crate::model::layers::pass`]), with
//! dropout masks drawn afresh for every mini-batch from the run's generator.

use crate::config::SgdConfig;
use crate::data::Dataset;
use crate::model::layers::pass::Pass;
use crate::model::layers::phase::Phase;
use crate::model::layers::LayerNetwork;
use crate::model::Step;
use crate::real::Real;
use crate::rng::SeededRng;

use super::model::Model;
use super::step::UpdateMiniBatch;

/// The buffers of one network's training passes, and the mini-batch size that sets
/// `network3.py`'s number of mini-batches B = n/m in its L2 term.
pub struct LayerStep<F: Real> {
    pass: Pass<F>,
    mini_batch: usize,
}

impl<F: Real> LayerStep<F> {
    /// Times every phase of every layer from now on (see [`Pass::time_phases`]).
    pub fn time_phases(&mut self) {
        self.pass.time_phases();
    }

    /// Seconds per phase and layer so far, `[layer][phase as usize]`, if timing.
    pub fn phase_seconds(&self) -> Option<&[[f64; Phase::ALL.len()]]> {
        self.pass.phase_seconds()
    }
}

impl<F: Real> UpdateMiniBatch<F, LayerNetwork<F>> for LayerStep<F> {
    fn update_mini_batch(
        &mut self,
        net: &mut LayerNetwork<F>,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
        rng: &mut SeededRng,
    ) {
        self.pass.gather(data, batch);
        self.pass.draw_masks(rng);
        self.pass.forward(net);
        let batches = (step.n / self.mini_batch).max(1);
        self.pass
            .backward_update(net, step.eta, step.lambda, batches);
    }
}

impl<F: Real> Model<F> for LayerNetwork<F> {
    type Step = LayerStep<F>;

    fn step(&self, sgd: &SgdConfig) -> LayerStep<F> {
        LayerStep {
            pass: Pass::new(self, sgd.mini_batch_size, true),
            mini_batch: sgd.mini_batch_size,
        }
    }

    fn shape(&self) -> (usize, usize) {
        (self.inputs(), self.classes())
    }

    fn evaluate(&self, data: &Dataset<F>) -> usize {
        LayerNetwork::evaluate(self, data)
    }

    fn predictions(&self, data: &Dataset<F>) -> Vec<usize> {
        LayerNetwork::predictions(self, data)
    }

    fn total_cost(&self, data: &Dataset<F>, lambda: f64, mini_batch: usize) -> f64 {
        LayerNetwork::total_cost(self, data, lambda, mini_batch)
    }

    fn is_finite(&self) -> bool {
        LayerNetwork::is_finite(self)
    }

    fn learning_speeds(&self, data: &Dataset<F>, n: usize) -> Vec<f64> {
        super::speed::layer_speeds(self, data, n)
    }
}
