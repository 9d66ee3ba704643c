//! Mini-batch stochastic gradient descent: `SGD` of `network.py` and `network2.py`, one loop
//! for every model. Each epoch shuffles the training set, splits it into mini-batches and
//! hands each to the model's step ([`Model::Step`]: per example as `network.py`'s
//! `update_mini_batch` in [`per_example`], or as matrices in [`batch`]), then scores the model
//! on the evaluation set, measures what the [`Monitor`](crate::config::Monitor) asks for, and
//! reports the epoch to an [`Observer`], which may end the run. The one `SeededRng` of the run
//! shuffles the examples and, under dropout, draws the masks, so a seed repeats a run exactly.
//!
//! Chapter 3's ways of ending a run are here too ([`plateau`]): early stopping on no
//! improvement in n epochs (restoring the best epoch's weights), and the schedule that halves
//! η on the same rule until η has fallen to a set fraction of its start.

pub mod batch;
pub mod model;
pub mod per_example;
pub mod plateau;
pub mod step;

use std::ops::ControlFlow;
use std::time::Instant;

use crate::rng::SeededRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::config::{CheckedConfig, ConfigError, TrainConfig};
use crate::data::{Dataset, CLASSES};
use crate::model::network::Network;
use crate::model::Step;
use crate::real::Real;

pub use model::Model;
use plateau::Plateau;
use step::UpdateMiniBatch;

/// Follows a run as it trains ([`sgd`]), and may end it.
pub trait Observer {
    /// An epoch has ended: its record, and the order of training examples it used.
    /// [`ControlFlow::Break`] ends the run here ([`Stop::Observer`]), as a pruner would.
    fn epoch(&mut self, record: &EpochRecord, order: &[usize]) -> ControlFlow<()>;

    /// `done` of the epoch's `total` mini-batches are finished; called after every mini-batch.
    /// [`ControlFlow::Break`] ends the run at once, before the epoch is scored
    /// ([`Stop::Interrupted`]), as Ctrl-C does.
    #[inline]
    fn batch(&mut self, _done: usize, _total: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// An epoch callback as an [`Observer`] that never stops the run.
pub struct EpochFn<G>(pub G);

impl<G: FnMut(&EpochRecord, &[usize])> Observer for EpochFn<G> {
    fn epoch(&mut self, record: &EpochRecord, order: &[usize]) -> ControlFlow<()> {
        (self.0)(record, order);
        ControlFlow::Continue(())
    }
}

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
    /// The observer ended the run after this epoch (a pruner, say).
    Observer { epoch: usize },
    /// Interrupted during `epoch` after `done` of its `total` mini-batches (Ctrl-C). That
    /// epoch was not scored; the model is the last scored epoch's, or the best one's under
    /// early stopping, and is the initial model if no epoch was scored.
    Interrupted {
        epoch: usize,
        done: usize,
        total: usize,
    },
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
pub fn build_network<F: Real>(config: &TrainConfig, rng: &mut SeededRng) -> Network<F> {
    let net = &config.network;
    Network::new(&net.sizes, net.init, net.cost, rng).with_activation(net.activation)
}

/// Checks `config`, then trains a new network as it says and returns it with its history.
/// One `SeededRng`, seeded from `config.seed`, draws the initial weights and then every epoch's
/// shuffle, so the same seed gives the same run.
pub fn train<F: Real>(
    config: &TrainConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    on_epoch: impl FnMut(&EpochRecord, &[usize]),
) -> Result<(Network<F>, History), TrainError> {
    let config = config.check()?;
    let mut rng = crate::rng::seeded(config.seed);
    let mut net = build_network(&config, &mut rng);
    let history = sgd(
        &mut net,
        &config,
        training,
        evaluation,
        &mut rng,
        &mut EpochFn(on_epoch),
    )?;
    Ok((net, history))
}

/// `SGD(training_data, epochs, mini_batch_size, eta, lmbda, evaluation_data, monitor_…)`:
/// trains `model` in place as the checked `config` says, scoring it on `evaluation` after
/// every epoch and reporting each epoch (with the shuffled order of training examples it
/// used) to `observer`. With early stopping, `model` ends with the weights of its best epoch.
pub fn sgd<F: Real, M: Model<F>>(
    model: &mut M,
    config: &CheckedConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    rng: &mut SeededRng,
    observer: &mut dyn Observer,
) -> Result<History, TrainError> {
    let sgd = &config.sgd;
    config.check_data(model.shape(), training.inputs(), CLASSES, training.len())?;
    let mut step = Step {
        eta: sgd.eta,
        lambda: sgd.lambda,
        n: training.len(),
        dropout: sgd.dropout,
    };
    let mut stepper = model.step(sgd);
    let mut order: Vec<usize> = (0..training.len()).collect();
    let mut history = History::default();
    let mut plateau = Plateau::new();
    // The model as its last scored epoch left it (at first, as it started), to go back to if
    // the run is interrupted mid-epoch.
    let mut last_scored = model.clone();
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
            stepper.update_mini_batch(model, training, batch, &step, rng);
            if observer.batch(i + 1, total).is_break() {
                let best = sgd.early_stop.and_then(|_| plateau.take_best());
                *model = best.unwrap_or(last_scored);
                history.stop = Stop::Interrupted {
                    epoch,
                    done: i + 1,
                    total,
                };
                return Ok(history);
            }
        }
        if !model.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                eta: step.eta,
                history,
            });
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let correct = model.evaluate(evaluation);
        let monitor = sgd.monitor;
        let record = EpochRecord {
            epoch,
            eta: step.eta,
            correct,
            total: evaluation.len(),
            evaluation_cost: monitor
                .evaluation_cost
                .then(|| model.total_cost(evaluation, sgd.lambda)),
            training_cost: monitor
                .training_cost
                .then(|| model.total_cost(training, sgd.lambda)),
            training_correct: monitor.training_accuracy.then(|| model.evaluate(training)),
            training_total: training.len(),
            elapsed: start.elapsed().as_secs_f64(),
            train_seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        let flow = observer.epoch(&record, &order);
        history.epochs.push(record);

        // Chapter 3's rules, on the evaluation accuracy.
        plateau.record(correct, model, sgd.early_stop.is_some());
        if let Some(patience) = sgd.early_stop {
            if plateau.since_best >= patience {
                if let Some(best) = plateau.take_best() {
                    *model = best;
                }
                history.stop = Stop::NoImprovement { patience };
                break;
            }
        }
        if let Some(schedule) = sgd.schedule {
            if plateau.since_change >= schedule.patience {
                step.eta /= 2.0;
                plateau.eta_changed();
                if step.eta <= sgd.eta * schedule.min_ratio * (1.0 + 1e-12) {
                    history.stop = Stop::EtaFloor { eta: step.eta };
                    break;
                }
            }
        }
        if flow.is_break() {
            if let Some(best) = sgd.early_stop.and_then(|_| plateau.take_best()) {
                *model = best;
            }
            history.stop = Stop::Observer { epoch };
            break;
        }
        if epoch + 1 < sgd.epochs {
            last_scored.clone_from(model);
        }
    }
    Ok(history)
}
