//! Mini-batch stochastic gradient descent: `SGD` of `network.py` and `network2.py`, one loop
//! for every variant. Each epoch shuffles the training set, splits it into mini-batches and
//! hands each to an [`UpdateMiniBatch`] — per example ([`PerExample`], `network.py`'s
//! `update_mini_batch`) or as matrices ([`Batched`]) — then scores the network
//! on the evaluation set and reports the epoch to a callback.
//!
//! Not here yet: the training-cost/accuracy monitors, early stopping and learning-rate
//! schedules of chapter 3.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::batch::Batched;
use crate::config::{check_sizes_against, Backprop, ConfigError, SgdConfig, TrainConfig};
use crate::data::{Dataset, CLASSES};
use crate::network::{Network, Step};
use crate::per_example::PerExample;
use crate::real::Real;

/// One step of gradient descent on one mini-batch.
pub trait UpdateMiniBatch<F: Real> {
    /// Updates `net` from the examples of `data` whose indices are `batch`.
    fn update_mini_batch(
        &mut self,
        net: &mut Network<F>,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
    );
}

/// The mini-batch step a [`Backprop`] choice stands for, with buffers sized for `net`.
pub fn mini_batch_step<F: Real>(
    backprop: Backprop,
    net: &Network<F>,
    mini_batch_size: usize,
) -> Box<dyn UpdateMiniBatch<F>> {
    match backprop {
        Backprop::PerExample => Box::new(PerExample::new(net)),
        Backprop::Batched => Box::new(Batched::new(&net.sizes, mini_batch_size)),
    }
}

/// What one epoch achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based, as the book prints it.
    pub epoch: usize,
    /// Correctly classified examples of the evaluation set.
    pub correct: usize,
    /// Size of the evaluation set.
    pub total: usize,
    /// Seconds since training started, at the end of this epoch (evaluation included).
    pub elapsed: f64,
    /// Seconds this epoch spent in mini-batch steps.
    pub train_seconds: f64,
    /// Seconds this epoch spent scoring the evaluation set.
    pub eval_seconds: f64,
}

impl EpochRecord {
    /// Accuracy in percent.
    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.total as f64
    }
}

/// Everything a run measured, epoch by epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The epoch with the highest accuracy (the first of equals).
    pub fn best(&self) -> Option<&EpochRecord> {
        self.epochs
            .iter()
            .fold(None, |best: Option<&EpochRecord>, e| match best {
                Some(b) if b.correct >= e.correct => Some(b),
                _ => Some(e),
            })
    }
}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "the weights became NaN or infinite in epoch {epoch}: training diverged; \
         try a smaller learning rate than eta = {eta}"
    )]
    Diverged {
        epoch: usize,
        eta: f64,
        history: History,
    },
}

/// A new network for `config`, its weights drawn from `rng`.
pub fn build_network<F: Real>(config: &TrainConfig, rng: &mut StdRng) -> Network<F> {
    let net = &config.network;
    Network::new(&net.sizes, net.init, net.cost, rng)
}

/// Trains a new network as `config` says and returns it with its history. One `StdRng`,
/// seeded from `config.seed`, draws the initial weights and then every epoch's shuffle, so the
/// same seed gives the same run.
pub fn train<F: Real>(
    config: &TrainConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    on_epoch: impl FnMut(&EpochRecord, &[usize]),
) -> Result<(Network<F>, History), TrainError> {
    config.check_data(training.inputs(), CLASSES, training.len())?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut net = build_network(config, &mut rng);
    let history = sgd(
        &mut net,
        &config.sgd,
        training,
        evaluation,
        &mut rng,
        on_epoch,
    )?;
    Ok((net, history))
}

/// `SGD(training_data, epochs, mini_batch_size, eta, lmbda, evaluation_data)`: trains `net`
/// in place, scoring it on `evaluation` after every epoch. `on_epoch` receives each epoch's
/// record and the shuffled order of training examples that epoch used.
pub fn sgd<F: Real>(
    net: &mut Network<F>,
    sgd: &SgdConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    rng: &mut StdRng,
    mut on_epoch: impl FnMut(&EpochRecord, &[usize]),
) -> Result<History, TrainError> {
    sgd.validate()?;
    sgd.check_data(training.len())?;
    check_sizes_against(&net.sizes, training.inputs(), CLASSES)?;
    let step = Step {
        eta: sgd.eta,
        lambda: sgd.lambda,
        n: training.len(),
    };
    let mut stepper = mini_batch_step(sgd.backprop, net, sgd.mini_batch_size);
    let mut order: Vec<usize> = (0..training.len()).collect();
    let mut history = History::default();
    let start = Instant::now();
    for epoch in 0..sgd.epochs {
        let epoch_start = Instant::now();
        order.shuffle(rng);
        let mut batches = order.chunks(sgd.mini_batch_size).peekable();
        while let Some(batch) = batches.next() {
            if let Some(next) = batches.peek() {
                training.prefetch(next);
            }
            stepper.update_mini_batch(net, training, batch, &step);
        }
        if !net.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                eta: sgd.eta,
                history,
            });
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let correct = net.evaluate(evaluation);
        let record = EpochRecord {
            epoch,
            correct,
            total: evaluation.len(),
            elapsed: start.elapsed().as_secs_f64(),
            train_seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        on_epoch(&record, &order);
        history.epochs.push(record);
    }
    Ok(history)
}
