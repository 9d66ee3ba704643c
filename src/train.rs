//! Mini-batch stochastic gradient descent: `SGD` of `network.py` and `network2.py`, one loop
//! for every variant. Each epoch shuffles the training set, splits it into mini-batches and
//! hands each to an [`UpdateMiniBatch`] — per example ([`PerExample`], `network.py`'s
//! `update_mini_batch`) or as matrices ([`Batched`]) — then scores the network on the
//! evaluation set, measures what the [`Monitor`](crate::config::Monitor) asks for, and reports
//! the epoch to a callback. The one `StdRng` of the run shuffles the examples and, under
//! dropout, draws the masks, so a seed repeats a run exactly.
//!
//! Chapter 3's ways of ending a run are here too: early stopping on no improvement in n
//! epochs (restoring the best epoch's weights), and the schedule that halves η on the same
//! rule until η has fallen to a set fraction of its start.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::batch::Batched;
use crate::config::{
    check_dropout, check_sizes_against, Backprop, ConfigError, SgdConfig, TrainConfig,
};
use crate::data::{Dataset, CLASSES};
use crate::network::{Network, Step};
use crate::per_example::PerExample;
use crate::real::Real;

/// One step of gradient descent on one mini-batch.
pub trait UpdateMiniBatch<F: Real> {
    /// Updates `net` from the examples of `data` whose indices are `batch`, drawing any
    /// dropout masks from `rng`.
    fn update_mini_batch(
        &mut self,
        net: &mut Network<F>,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
        rng: &mut StdRng,
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

/// Follows a run as it trains ([`sgd_observed`]); [`sgd`] takes just the epoch callback.
pub trait Observer {
    /// An epoch has ended: its record, and the order of training examples it used.
    fn epoch(&mut self, record: &EpochRecord, order: &[usize]);

    /// `done` of the epoch's `total` mini-batches are finished. Called every
    /// [`BATCH_REPORT`] mini-batches and at the end of each epoch, so it costs the step nothing.
    fn batches(&mut self, _done: usize, _total: usize) {}
}

/// An epoch callback as an [`Observer`].
struct EpochFn<G>(G);

impl<G: FnMut(&EpochRecord, &[usize])> Observer for EpochFn<G> {
    fn epoch(&mut self, record: &EpochRecord, order: &[usize]) {
        (self.0)(record, order)
    }
}

/// Mini-batches between calls of [`Observer::batches`].
pub const BATCH_REPORT: usize = 64;

/// What one epoch achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based, as the book prints it.
    pub epoch: usize,
    /// The learning rate this epoch trained with.
    pub eta: f64,
    /// Correctly classified examples of the evaluation set.
    pub correct: usize,
    /// Size of the evaluation set.
    pub total: usize,
    /// `total_cost` on the evaluation set (with the L2 term), if monitored.
    pub evaluation_cost: Option<f64>,
    /// `total_cost` on the training set (with the L2 term), if monitored.
    pub training_cost: Option<f64>,
    /// Correctly classified training examples, if monitored.
    pub training_correct: Option<usize>,
    /// Size of the training set.
    pub training_total: usize,
    /// Seconds since training started, at the end of this epoch (evaluation included).
    pub elapsed: f64,
    /// Seconds this epoch spent in mini-batch steps.
    pub train_seconds: f64,
    /// Seconds this epoch spent scoring the evaluation set.
    pub eval_seconds: f64,
}

impl EpochRecord {
    /// Accuracy on the evaluation set, in percent.
    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct as f64 / self.total as f64
    }

    /// Accuracy on the training set, in percent, if monitored.
    pub fn training_accuracy(&self) -> Option<f64> {
        self.training_correct
            .map(|c| 100.0 * c as f64 / self.training_total as f64)
    }
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum Stop {
    /// It trained every epoch it was given.
    #[default]
    Completed,
    /// Early stopping: no improvement for `patience` epochs; the weights are the best
    /// epoch's.
    NoImprovement { patience: usize },
    /// The schedule halved η down to its floor.
    EtaFloor { eta: f64 },
}

/// Everything a run measured, epoch by epoch, and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    pub stop: Stop,
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
    Network::new(&net.sizes, net.init, net.cost, rng).with_activation(net.activation)
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

/// `SGD(training_data, epochs, mini_batch_size, eta, lmbda, evaluation_data, monitor_…)`:
/// trains `net` in place, scoring it on `evaluation` after every epoch. `on_epoch` receives
/// each epoch's record and the shuffled order of training examples that epoch used. With
/// early stopping, `net` ends with the weights of its best epoch.
pub fn sgd<F: Real>(
    net: &mut Network<F>,
    sgd: &SgdConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    rng: &mut StdRng,
    on_epoch: impl FnMut(&EpochRecord, &[usize]),
) -> Result<History, TrainError> {
    sgd_observed(net, sgd, training, evaluation, rng, &mut EpochFn(on_epoch))
}

/// [`sgd`], reporting to an [`Observer`], which also hears how far each epoch has got.
pub fn sgd_observed<F: Real>(
    net: &mut Network<F>,
    sgd: &SgdConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    rng: &mut StdRng,
    observer: &mut dyn Observer,
) -> Result<History, TrainError> {
    sgd.validate()?;
    sgd.check_data(training.len())?;
    check_sizes_against(&net.sizes, training.inputs(), CLASSES)?;
    check_dropout(&net.sizes, sgd.dropout)?;
    let mut step = Step {
        eta: sgd.eta,
        lambda: sgd.lambda,
        n: training.len(),
        dropout: sgd.dropout,
    };
    let mut stepper = mini_batch_step(sgd.backprop, net, sgd.mini_batch_size);
    let mut order: Vec<usize> = (0..training.len()).collect();
    let mut history = History::default();
    let mut progress = Progress::default();
    let start = Instant::now();
    for epoch in 0..sgd.epochs {
        let epoch_start = Instant::now();
        order.shuffle(rng);
        let total = order.len().div_ceil(sgd.mini_batch_size);
        let mut batches = order.chunks(sgd.mini_batch_size).enumerate().peekable();
        while let Some((i, batch)) = batches.next() {
            if let Some((_, next)) = batches.peek() {
                training.prefetch(next);
            }
            stepper.update_mini_batch(net, training, batch, &step, rng);
            if (i + 1) % BATCH_REPORT == 0 || i + 1 == total {
                observer.batches(i + 1, total);
            }
        }
        if !net.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                eta: step.eta,
                history,
            });
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let correct = net.evaluate(evaluation);
        let monitor = sgd.monitor;
        let record = EpochRecord {
            epoch,
            eta: step.eta,
            correct,
            total: evaluation.len(),
            evaluation_cost: monitor
                .evaluation_cost
                .then(|| net.total_cost(evaluation, sgd.lambda)),
            training_cost: monitor
                .training_cost
                .then(|| net.total_cost(training, sgd.lambda)),
            training_correct: monitor.training_accuracy.then(|| net.evaluate(training)),
            training_total: training.len(),
            elapsed: start.elapsed().as_secs_f64(),
            train_seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        observer.epoch(&record, &order);
        history.epochs.push(record);

        // Chapter 3's rules, on the evaluation accuracy.
        if progress.improved(correct) && sgd.early_stop.is_some() {
            progress.best_net = Some(Box::new(net.clone()));
        }
        if let Some(patience) = sgd.early_stop {
            if progress.since_best >= patience {
                if let Some(best) = progress.best_net.take() {
                    *net = *best;
                }
                history.stop = Stop::NoImprovement { patience };
                break;
            }
        }
        if let Some(schedule) = sgd.schedule {
            if progress.since_change >= schedule.patience {
                step.eta /= 2.0;
                progress.since_change = 0;
                if step.eta <= sgd.eta * schedule.min_ratio * (1.0 + 1e-12) {
                    history.stop = Stop::EtaFloor { eta: step.eta };
                    break;
                }
            }
        }
    }
    Ok(history)
}

/// Epochs without improvement of the evaluation accuracy, for early stopping and the schedule.
struct Progress<F: Real> {
    best: Option<usize>,
    /// Epochs since the best one.
    since_best: usize,
    /// Epochs since the best one or the last change of η, whichever is later.
    since_change: usize,
    best_net: Option<Box<Network<F>>>,
}

impl<F: Real> Default for Progress<F> {
    fn default() -> Self {
        Progress {
            best: None,
            since_best: 0,
            since_change: 0,
            best_net: None,
        }
    }
}

impl<F: Real> Progress<F> {
    /// Records an epoch with `correct` evaluation examples; true if it is a new best.
    fn improved(&mut self, correct: usize) -> bool {
        if self.best.is_none_or(|b| correct > b) {
            self.best = Some(correct);
            self.since_best = 0;
            self.since_change = 0;
            true
        } else {
            self.since_best += 1;
            self.since_change += 1;
            false
        }
    }
}
