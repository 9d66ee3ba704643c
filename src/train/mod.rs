//! Mini-batch stochastic gradient descent: `SGD` of `network.py` and `network2.py`, one loop
//! for every model. Each epoch shuffles the training set, splits it into mini-batches and
//! hands each to the model's step ([`Model::Step`]: per example as `network.py`'s
//! `update_mini_batch` in [`per_example`], or as matrices in [`batch`]; chapter 6's layers in
//! [`layered`]), then scores the model
//! on the evaluation set, measures what the [`Monitor`](crate::config::Monitor) asks for, and
//! reports the epoch to an [`Observer`], which may end the run. The one `SeededRng` of the run
//! shuffles the examples and, under dropout, draws the masks, so a seed repeats a run exactly.
//!
//! Chapter 3's ways of ending a run are here too ([`plateau`]): early stopping on no
//! improvement in n epochs (restoring the best epoch's weights), and the schedule that halves
//! η on the same rule until η has fallen to a set fraction of its start.

pub mod batch;
pub mod layered;
pub mod model;
pub mod per_example;
pub mod plateau;
pub mod speed;
pub mod step;

use std::ops::ControlFlow;
use std::time::Instant;

use crate::rng::SeededRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::config::{CheckedConfig, ConfigError, FullyConnected, TrainConfig};
use crate::data::{Dataset, CLASSES};
use crate::model::network::Network;
use crate::model::view::Snapshot;
use crate::model::Step;
use crate::real::Real;

pub use model::Model;
pub use plateau::Plateau;

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

    /// How many misclassified evaluation examples [`Observer::snapshot`] wants to see after
    /// each epoch, if it wants a snapshot at all (it costs one more pass over the evaluation
    /// set, outside the epoch's measured time).
    fn wants_snapshot(&self) -> Option<usize> {
        None
    }

    /// The model as the epoch `record` left it, when [`Observer::wants_snapshot`] asked for
    /// it; called just before [`Observer::epoch`].
    fn snapshot(&mut self, _record: &EpochRecord, _snapshot: &Snapshot) {}

    /// How many of the first training examples chapter 5's speed of learning is measured
    /// over ([`speed`]), or `None` (the default) for no measure: nothing is then computed.
    #[inline]
    fn learning_speed_images(&self) -> Option<usize> {
        None
    }

    /// The speed of learning of each hidden layer, first to last: before any training
    /// (`after_epoch` None) and after each scored epoch, just before [`Observer::epoch`]
    /// reports it. Called only when [`Observer::learning_speed_images`] asks.
    fn learning_speed(&mut self, _after_epoch: Option<usize>, _speeds: &[f64]) {}
}

/// Ends the run if either observer would.
fn either(first: ControlFlow<()>, second: ControlFlow<()>) -> ControlFlow<()> {
    match first.is_break() || second.is_break() {
        true => ControlFlow::Break(()),
        false => ControlFlow::Continue(()),
    }
}

/// Two observers of one run: each sees every call, and either may end the run.
pub struct Both<'a>(pub &'a mut dyn Observer, pub &'a mut dyn Observer);

impl Observer for Both<'_> {
    fn epoch(&mut self, record: &EpochRecord, order: &[usize]) -> ControlFlow<()> {
        let first = self.0.epoch(record, order);
        either(first, self.1.epoch(record, order))
    }

    #[inline]
    fn batch(&mut self, done: usize, total: usize) -> ControlFlow<()> {
        let first = self.0.batch(done, total);
        either(first, self.1.batch(done, total))
    }

    fn wants_snapshot(&self) -> Option<usize> {
        self.0.wants_snapshot().max(self.1.wants_snapshot())
    }

    fn snapshot(&mut self, record: &EpochRecord, snapshot: &Snapshot) {
        if self.0.wants_snapshot().is_some() {
            self.0.snapshot(record, snapshot);
        }
        if self.1.wants_snapshot().is_some() {
            self.1.snapshot(record, snapshot);
        }
    }

    fn learning_speed_images(&self) -> Option<usize> {
        self.0
            .learning_speed_images()
            .max(self.1.learning_speed_images())
    }

    fn learning_speed(&mut self, after_epoch: Option<usize>, speeds: &[f64]) {
        if self.0.learning_speed_images().is_some() {
            self.0.learning_speed(after_epoch, speeds);
        }
        if self.1.learning_speed_images().is_some() {
            self.1.learning_speed(after_epoch, speeds);
        }
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
    /// Seconds of training and scoring up to the end of this epoch (the loop's own time:
    /// what observers do between epochs is not counted).
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
#[serde(rename_all = "kebab-case")]
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

/// Why a saved run could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the saved run is not readable: {0}")]
    Format(#[from] postcard::Error),
    #[error("the saved run is of format {found}, this version reads format {CHECKPOINT_FORMAT}")]
    Version { found: u32 },
    #[error("the saved run does not match this one: {0}")]
    Mismatch(String),
}

/// The layout of [`Training::save`]'s bytes; raised when it changes.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// What [`Training::save`] writes (its `Borrowed` twin writes the same fields, field for
/// field, without copying). The model of the last scored epoch is the model itself (a run is
/// saved between epochs), so it is not written twice.
#[derive(Serialize, Deserialize)]
#[serde(bound = "M: Serialize + serde::de::DeserializeOwned")]
struct SavedTraining<M> {
    format: u32,
    model: M,
    rng: Vec<u8>,
    history: History,
    order: Vec<usize>,
    eta: f64,
    plateau: Plateau<M>,
    keep_best: bool,
    finished: bool,
}

/// A model's serde form with every number left out and every list of numbers replaced by its
/// length: what two models of one network share whatever their weights. Generic over the
/// model, so a new kind of layer needs nothing here.
fn layout<M: Serialize>(model: &M) -> Result<serde_json::Value, RestoreError> {
    use serde_json::Value;
    fn strip(value: Value) -> Value {
        match value {
            // An array's `dim` is its shape: kept.
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| if k == "dim" { (k, v) } else { (k, strip(v)) })
                    .collect(),
            ),
            // A list of numbers (a NaN weight serialises as null) is its length.
            Value::Array(items) if items.iter().all(|v| v.is_number() || v.is_null()) => {
                Value::from(items.len())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
            Value::Number(_) => Value::Null,
            other => other,
        }
    }
    serde_json::to_value(model)
        .map(strip)
        .map_err(|e| RestoreError::Mismatch(format!("its network cannot be read: {e}")))
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

/// A new fully-connected network as `fc` describes it, its weights drawn from `rng`.
pub fn build_network<F: Real>(fc: &FullyConnected, rng: &mut SeededRng) -> Network<F> {
    Network::new(&fc.sizes, fc.init, fc.cost, rng).with_activation(fc.activation)
}

/// Checks `config`, then trains a new fully-connected network as it says and returns it with
/// its history: `network2.py`'s `Network(sizes).SGD(…)` in one call. One `SeededRng`, seeded
/// from `config.seed`, draws the initial weights and then every epoch's shuffle, so the same
/// seed gives the same run. A chapter-6 layer list is refused ([`ConfigError::NotFullyConnected`]);
/// [`crate::run::train`] trains either kind.
pub fn train<F: Real>(
    config: &TrainConfig,
    training: &Dataset<F>,
    evaluation: &Dataset<F>,
    on_epoch: impl FnMut(&EpochRecord, &[usize]),
) -> Result<(Network<F>, History), TrainError> {
    let config = config.check()?;
    let fc = config
        .network
        .fully_connected()
        .ok_or_else(|| ConfigError::NotFullyConnected(config.network.describe()))?;
    let mut rng = crate::rng::seeded(config.seed);
    let mut net = build_network(fc, &mut rng);
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
    config.check_data(model.shape(), training.inputs(), CLASSES, training.len())?;
    let taken = std::mem::replace(rng, crate::rng::seeded(0));
    let mut run = Training::new(model.clone(), config, training.len(), taken);
    let result = run.run(config, training, evaluation, observer);
    *model = run.model;
    *rng = run.rng;
    result.map(|()| run.history)
}

/// A run in progress: everything the loop carries from one epoch to the next — the model,
/// the generator, the order of examples (each epoch shuffles the last one's), η under the
/// schedule, early stopping's state and the history. [`sgd`] drives one to its end; a caller
/// that acts between epochs (saving a checkpoint, asking a pruner) calls [`Training::epoch`]
/// itself, and [`Training::save`]/[`Training::restore`] let a run stopped after any epoch go
/// on exactly as if it had not stopped.
pub struct Training<M> {
    pub model: M,
    pub rng: SeededRng,
    pub history: History,
    order: Vec<usize>,
    /// η of the next epoch.
    eta: f64,
    plateau: Plateau<M>,
    /// The model as its last scored epoch left it (at first, as it started), to go back to
    /// if the run is interrupted mid-epoch.
    last_scored: M,
    /// Keep the best epoch's model even without early stopping ([`Training::keep_best`]).
    keep_best: bool,
    finished: bool,
}

impl<M: Clone> Training<M> {
    /// A run of `model` on `n` training examples, at epoch 0.
    pub fn new(model: M, config: &CheckedConfig, n: usize, rng: SeededRng) -> Self {
        Training {
            last_scored: model.clone(),
            model,
            rng,
            history: History::default(),
            order: (0..n).collect(),
            eta: config.sgd.eta,
            plateau: Plateau::new(),
            keep_best: false,
            finished: false,
        }
    }

    /// Keeps a copy of the best epoch's model as the run goes, early stopping or not, for
    /// [`Training::best_model`].
    pub fn keep_best(&mut self) {
        self.keep_best = true;
    }

    /// The model of the best epoch so far, when early stopping or [`Training::keep_best`]
    /// keeps it; otherwise the current model.
    pub fn best_model(&self) -> &M {
        self.plateau.best().unwrap_or(&self.model)
    }

    /// The run as bytes, between epochs: with [`Training::restore`] it goes on exactly as if
    /// it had not stopped (the same shuffles, masks and weights, to the last bit).
    pub fn save(&self) -> Result<Vec<u8>, postcard::Error>
    where
        M: Serialize + serde::de::DeserializeOwned,
    {
        #[derive(Serialize)]
        #[serde(bound = "M: Serialize")]
        struct Borrowed<'a, M> {
            format: u32,
            model: &'a M,
            rng: Vec<u8>,
            history: &'a History,
            order: &'a [usize],
            eta: f64,
            plateau: &'a Plateau<M>,
            keep_best: bool,
            finished: bool,
        }
        postcard::to_stdvec(&Borrowed {
            format: CHECKPOINT_FORMAT,
            model: &self.model,
            rng: crate::rng::save(&self.rng).to_vec(),
            history: &self.history,
            order: &self.order,
            eta: self.eta,
            plateau: &self.plateau,
            keep_best: self.keep_best,
            finished: self.finished,
        })
    }

    /// A run saved by [`Training::save`], for training data of `n` examples.
    pub fn restore(bytes: &[u8], n: usize) -> Result<Self, RestoreError>
    where
        M: Serialize + serde::de::DeserializeOwned,
    {
        let saved: SavedTraining<M> = postcard::from_bytes(bytes)?;
        if saved.format != CHECKPOINT_FORMAT {
            return Err(RestoreError::Version {
                found: saved.format,
            });
        }
        let rng: [u8; 49] = saved.rng.as_slice().try_into().map_err(|_| {
            RestoreError::Mismatch(format!("a generator state of {} bytes", saved.rng.len()))
        })?;
        // The order must be a permutation of the n examples: it indexes the data.
        let mut seen = vec![false; n];
        let permutation = saved.order.len() == n
            && saved
                .order
                .iter()
                .all(|&k| k < n && !std::mem::replace(&mut seen[k], true));
        if !permutation {
            return Err(RestoreError::Mismatch(format!(
                "its order of examples is not one of the {n} training examples"
            )));
        }
        Ok(Training {
            last_scored: saved.model.clone(),
            model: saved.model,
            rng: crate::rng::restore(&rng),
            history: saved.history,
            order: saved.order,
            eta: saved.eta,
            plateau: saved.plateau,
            keep_best: saved.keep_best,
            finished: saved.finished,
        })
    }

    /// A run saved by [`Training::save`], for training data of `n` examples, whose model (and
    /// kept best model) must be laid out as `network` is: the same layers, kinds and shapes,
    /// only the numbers differing. A checkpoint made for another network (or with a matrix
    /// transposed) is refused here instead of failing inside the first matrix product.
    pub fn restore_for(bytes: &[u8], n: usize, network: &M) -> Result<Self, RestoreError>
    where
        M: Serialize + serde::de::DeserializeOwned,
    {
        let training = Self::restore(bytes, n)?;
        let want = layout(network)?;
        for (what, model) in [
            ("network", Some(&training.model)),
            ("best network", training.plateau.best()),
        ] {
            if let Some(model) = model {
                if layout(model)? != want {
                    return Err(RestoreError::Mismatch(format!(
                        "its {what} is not laid out as the trial's network (other layers or shapes)"
                    )));
                }
            }
        }
        Ok(training)
    }

    /// True once the run has ended (every epoch trained, or stopped).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Trains every epoch left, until the run ends or `observer` ends it.
    pub fn run<F: Real>(
        &mut self,
        config: &CheckedConfig,
        training: &Dataset<F>,
        evaluation: &Dataset<F>,
        observer: &mut dyn Observer,
    ) -> Result<(), TrainError>
    where
        M: Model<F>,
    {
        let mut stepper = self.model.step(&config.sgd, config.threads());
        while !self.finished {
            self.epoch(config, training, evaluation, observer, &mut stepper)?;
        }
        Ok(())
    }

    /// Trains the next epoch with `stepper` (made by [`Model::step`] for this run), scores it
    /// and applies chapter 3's rules; may end the run.
    pub fn epoch<F: Real>(
        &mut self,
        config: &CheckedConfig,
        training: &Dataset<F>,
        evaluation: &Dataset<F>,
        observer: &mut dyn Observer,
        stepper: &mut M::Step,
    ) -> Result<(), TrainError>
    where
        M: Model<F>,
    {
        let sgd = &config.sgd;
        let epoch = self.history.epochs.len();
        if self.finished || epoch >= sgd.epochs {
            self.finished = true;
            return Ok(());
        }
        let step = Step {
            eta: self.eta,
            lambda: sgd.lambda,
            n: training.len(),
            dropout: sgd.dropout,
        };
        let speed_images = observer.learning_speed_images();
        if let (Some(n), true) = (speed_images, self.history.epochs.is_empty()) {
            observer.learning_speed(None, &self.model.learning_speeds(training, n));
        }
        let start = Instant::now();
        self.order.shuffle(&mut self.rng);
        let total = self.order.len().div_ceil(sgd.mini_batch_size);
        let mut batches = self
            .order
            .chunks(sgd.mini_batch_size)
            .enumerate()
            .peekable();
        while let Some((i, batch)) = batches.next() {
            if let Some((_, next)) = batches.peek() {
                training.prefetch(next);
            }
            stepper.update_mini_batch(&mut self.model, training, batch, &step, &mut self.rng);
            if observer.batch(i + 1, total).is_break() {
                let best = sgd.early_stop.and_then(|_| self.plateau.take_best());
                self.model = best.unwrap_or_else(|| self.last_scored.clone());
                self.history.stop = Stop::Interrupted {
                    epoch,
                    done: i + 1,
                    total,
                };
                self.finished = true;
                return Ok(());
            }
        }
        let model = &self.model;
        if !model.is_finite() {
            self.finished = true;
            return Err(TrainError::Diverged {
                epoch,
                eta: step.eta,
                history: self.history.clone(),
            });
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let correct = model.evaluate(evaluation);
        let monitor = sgd.monitor;
        let evaluation_cost = monitor
            .evaluation_cost
            .then(|| model.total_cost(evaluation, sgd.lambda, sgd.mini_batch_size));
        let training_cost = monitor
            .training_cost
            .then(|| model.total_cost(training, sgd.lambda, sgd.mini_batch_size));
        let training_correct = monitor.training_accuracy.then(|| model.evaluate(training));
        let eval_seconds = eval_start.elapsed().as_secs_f64();
        // Seconds of training and scoring so far, over every process that ran this run.
        let elapsed =
            self.history.epochs.last().map_or(0.0, |e| e.elapsed) + train_seconds + eval_seconds;
        let record = EpochRecord {
            epoch,
            eta: step.eta,
            correct,
            total: evaluation.len(),
            evaluation_cost,
            training_cost,
            training_correct,
            training_total: training.len(),
            elapsed,
            train_seconds,
            eval_seconds,
        };
        if let Some(mistakes) = observer.wants_snapshot() {
            observer.snapshot(&record, &Snapshot::of(model, evaluation, mistakes));
        }
        if let Some(n) = speed_images {
            observer.learning_speed(Some(epoch), &self.model.learning_speeds(training, n));
        }
        let flow = observer.epoch(&record, &self.order);
        self.history.epochs.push(record);

        // Chapter 3's rules, on the evaluation accuracy.
        let keep = self.keep_best || sgd.early_stop.is_some();
        self.plateau.record(correct, &self.model, keep);
        if let Some(patience) = sgd.early_stop {
            if self.plateau.since_best >= patience {
                if let Some(best) = self.plateau.take_best() {
                    self.model = best;
                }
                self.history.stop = Stop::NoImprovement { patience };
                self.finished = true;
                return Ok(());
            }
        }
        if let Some(schedule) = sgd.schedule {
            if self.plateau.since_change >= schedule.patience {
                self.eta /= 2.0;
                self.plateau.eta_changed();
                if self.eta <= sgd.eta * schedule.min_ratio * (1.0 + 1e-12) {
                    self.history.stop = Stop::EtaFloor { eta: self.eta };
                    self.finished = true;
                    return Ok(());
                }
            }
        }
        if flow.is_break() {
            if let Some(best) = sgd.early_stop.and_then(|_| self.plateau.take_best()) {
                self.model = best;
            }
            self.history.stop = Stop::Observer { epoch };
            self.finished = true;
            return Ok(());
        }
        if epoch + 1 < sgd.epochs {
            self.last_scored.clone_from(&self.model);
        } else {
            self.finished = true;
        }
        Ok(())
    }
}
