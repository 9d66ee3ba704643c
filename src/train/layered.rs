//! The training step of chapter 6's networks: `network3.py`'s `train_mb` — the whole
//! mini-batch forward, backward and updated at once ([`crate::model::layers::pass`]), with
//! dropout masks drawn afresh for every mini-batch from the run's generator. On several
//! threads, the convolutions split the mini-batch's examples between them and the dense
//! layers their neurons ([`crate::model::layers::shards`]).

use crate::config::SgdConfig;
use crate::data::Dataset;
use crate::model::layers::pass::Pass;
use crate::model::layers::phase::Phase;
use crate::model::layers::shards::Shards;
use crate::model::layers::LayerNetwork;
use crate::model::Step;
use crate::real::Real;
use crate::rng::SeededRng;

use super::model::Model;
use super::step::UpdateMiniBatch;

/// The buffers of one network's training passes — one pass, or one per thread — and the
/// mini-batch size that sets `network3.py`'s number of mini-batches B = n/m in its L2 term.
pub struct LayerStep<F: Real> {
    passes: Passes<F>,
    mini_batch: usize,
}

/// One thread's pass, or the shares of several.
enum Passes<F: Real> {
    One(Pass<F>),
    Shared(Shards<F>),
}

impl<F: Real> LayerStep<F> {
    /// Times every phase of every layer from now on (see [`Pass::time_phases`]); on one
    /// thread only, as a profile of the kernels (`None` from [`LayerStep::phase_seconds`]
    /// otherwise).
    pub fn time_phases(&mut self) {
        if let Passes::One(pass) = &mut self.passes {
            pass.time_phases();
        }
    }

    /// Seconds per phase and layer so far, `[layer][phase as usize]`, if timing.
    pub fn phase_seconds(&self) -> Option<&[[f64; Phase::ALL.len()]]> {
        match &self.passes {
            Passes::One(pass) => pass.phase_seconds(),
            Passes::Shared(_) => None,
        }
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
        let batches = (step.n / self.mini_batch).max(1);
        match &mut self.passes {
            Passes::One(pass) => {
                pass.gather(data, batch);
                pass.draw_masks(rng);
                pass.forward(net);
                pass.backward_update(net, step.eta, step.lambda, batches);
            }
            Passes::Shared(shards) => {
                let rate = (step.eta, step.lambda);
                shards.step(net, data, batch, rate, batches, rng);
            }
        }
    }
}

impl<F: Real> Model<F> for LayerNetwork<F> {
    type Step = LayerStep<F>;

    fn step(&self, sgd: &SgdConfig, threads: usize) -> LayerStep<F> {
        let m = sgd.mini_batch_size;
        let passes = match threads.min(m) {
            n if n > 1 => Passes::Shared(Shards::new(self, m, n)),
            _ => Passes::One(Pass::new(self, m, true)),
        };
        LayerStep {
            passes,
            mini_batch: m,
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
