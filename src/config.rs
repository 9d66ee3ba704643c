//! Everything a training run is configured by, in one nested struct, and every rule it must
//! obey. [`TrainConfig::check`] turns a configuration into a [`CheckedConfig`], the only kind the
//! training loop accepts; [`CheckedConfig::check_data`] adds the rules that need the data
//! (its pixels, classes and size). Each broken rule is a [`ConfigError`] in the user's terms.
//!
//! The three programs of the book's first chapters are three presets ([`Variant`]) of the
//! same pieces: a cost, an initialiser and a way to backpropagate a mini-batch.

use serde::{Deserialize, Serialize};

use crate::data::dataset::ValidationSizeError;
use crate::data::{CLASSES, IMAGE_SHAPE};

use crate::model::activation::Activation;
use crate::model::cost::Cost;
use crate::model::init::Init;
use crate::model::layers::item::SpecError;
use crate::model::layers::spec::{self, LayerSpec};

/// The three NumPy programs this crate mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// `network.py` (ch. 1): sigmoid, quadratic cost, N(0, 1) weights, backprop per example.
    Network1,
    /// The same model, backprop of the whole mini-batch as matrices.
    Network2,
    /// network2 with N(0, 1/n_in) weights, cross-entropy cost and L2 regularisation (ch. 3).
    Network3,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Network1 => "network1",
            Variant::Network2 => "network2",
            Variant::Network3 => "network3",
        }
    }

    pub fn cost(self) -> Cost {
        match self {
            Variant::Network1 | Variant::Network2 => Cost::Quadratic,
            Variant::Network3 => Cost::CrossEntropy,
        }
    }

    pub fn init(self) -> Init {
        match self {
            Variant::Network1 | Variant::Network2 => Init::StandardNormal,
            Variant::Network3 => Init::ScaledNormal,
        }
    }

    pub fn backprop(self) -> Backprop {
        match self {
            Variant::Network1 => Backprop::PerExample,
            Variant::Network2 | Variant::Network3 => Backprop::Batched,
        }
    }

    /// The learning rate of the book's run of this program: η = 3.0 (ch. 1), 0.5 (ch. 3).
    pub fn book_eta(self) -> f64 {
        match self {
            Variant::Network1 | Variant::Network2 => 3.0,
            Variant::Network3 => 0.5,
        }
    }

    /// The L2 strength of the book's run: none in ch. 1, λ = 5.0 in ch. 3.
    pub fn book_lambda(self) -> f64 {
        match self {
            Variant::Network1 | Variant::Network2 => 0.0,
            Variant::Network3 => 5.0,
        }
    }
}

/// η of chapter 6's sigmoid networks: `network3.py`'s runs in the book, mini-batch 10.
pub const CH6_SIGMOID_ETA: f64 = 0.1;

/// How a mini-batch's gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backprop {
    /// One example at a time, summing gradients, as `network.py`.
    PerExample,
    /// The whole mini-batch as matrices, one GEMM per layer and direction.
    Batched,
}

/// The floating-point type the network computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Single precision: half the memory traffic and twice the SIMD lanes.
    F32,
    /// Double precision, as NumPy computes.
    #[default]
    F64,
}

impl Precision {
    /// `"f32"` or `"f64"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// The network to build and the precision it computes in.
///
/// What the network *is* is one [`Architecture`]: every command asks it, through one `match`
/// per use, whether it is one of the book's fully-connected programs or a chapter-6 layer list,
/// and no code reads the sizes of a network that has none. Its serde form is the flat one
/// model files, checkpoints and studies have always stored (`sizes`, `activation`, `cost`,
/// `init`, or `layers`), so files written before keep loading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NetworkFile", into = "NetworkFile")]
pub struct NetworkConfig {
    pub architecture: Architecture,
    pub precision: Precision,
}

/// What a network is made of.
#[derive(Clone, Debug, PartialEq)]
pub enum Architecture {
    /// The book's fully-connected networks of chapters 1–3 (`network.py`, `network2.py`).
    FullyConnected(FullyConnected),
    /// Chapter 6's layer list (`--layers`, `network3.py`): trained on the log-likelihood cost,
    /// with `network3.py`'s initial weights and each layer's own activation and dropout.
    Layers(Vec<LayerSpec>),
}

/// A fully-connected network of chapters 1–3.
#[derive(Clone, Debug, PartialEq)]
pub struct FullyConnected {
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The hidden layers' activation (sigmoid in all three programs).
    pub activation: Activation,
    /// The cost, which also picks the output layer (softmax for log-likelihood).
    pub cost: Cost,
    pub init: Init,
}

/// [`NetworkConfig`] as files store it: the fields of both kinds side by side, as they were
/// before there were two kinds. Only serde sees it.
#[derive(Serialize, Deserialize)]
struct NetworkFile {
    #[serde(default)]
    sizes: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layers: Option<Vec<LayerSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost: Option<Cost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    init: Option<Init>,
    precision: Precision,
}

impl TryFrom<NetworkFile> for NetworkConfig {
    type Error = String;

    fn try_from(file: NetworkFile) -> Result<Self, String> {
        let architecture = match file.layers {
            Some(layers) => Architecture::Layers(layers),
            None => Architecture::FullyConnected(FullyConnected {
                sizes: file.sizes,
                activation: file.activation.unwrap_or_default(),
                cost: file
                    .cost
                    .ok_or("a fully-connected network needs its cost")?,
                init: file
                    .init
                    .ok_or("a fully-connected network needs its init")?,
            }),
        };
        Ok(NetworkConfig {
            architecture,
            precision: file.precision,
        })
    }
}

impl From<NetworkConfig> for NetworkFile {
    fn from(network: NetworkConfig) -> Self {
        let precision = network.precision;
        match network.architecture {
            Architecture::FullyConnected(fc) => NetworkFile {
                sizes: fc.sizes,
                layers: None,
                activation: Some(fc.activation),
                cost: Some(fc.cost),
                init: Some(fc.init),
                precision,
            },
            Architecture::Layers(layers) => NetworkFile {
                sizes: Vec::new(),
                layers: Some(layers),
                activation: None,
                cost: Some(Cost::LogLikelihood),
                init: None,
                precision,
            },
        }
    }
}

impl NetworkConfig {
    /// The fully-connected network, if this is one.
    pub fn fully_connected(&self) -> Option<&FullyConnected> {
        match &self.architecture {
            Architecture::FullyConnected(fc) => Some(fc),
            Architecture::Layers(_) => None,
        }
    }

    /// The fully-connected network, if this is one, to change.
    pub fn fully_connected_mut(&mut self) -> Option<&mut FullyConnected> {
        match &mut self.architecture {
            Architecture::FullyConnected(fc) => Some(fc),
            Architecture::Layers(_) => None,
        }
    }

    /// The layer list, if this is a chapter-6 network.
    pub fn layers(&self) -> Option<&[LayerSpec]> {
        match &self.architecture {
            Architecture::FullyConnected(_) => None,
            Architecture::Layers(layers) => Some(layers),
        }
    }

    /// The cost it trains on.
    pub fn cost(&self) -> Cost {
        match &self.architecture {
            Architecture::FullyConnected(fc) => fc.cost,
            Architecture::Layers(_) => Cost::LogLikelihood,
        }
    }

    /// `(inputs, outputs)`: the values it reads per example and the classes it tells apart. A
    /// layer list is drawn for MNIST's images and classes.
    pub fn shape(&self) -> (usize, usize) {
        match &self.architecture {
            Architecture::FullyConnected(fc) => (
                fc.sizes.first().copied().unwrap_or(0),
                fc.sizes.last().copied().unwrap_or(0),
            ),
            Architecture::Layers(_) => (IMAGE_SHAPE.iter().product(), CLASSES),
        }
    }

    /// The network in a few words, as the settings line and plot titles name it:
    /// `sizes [784, 30, 10]` or `layers conv:20:5,pool:2,fc:100,softmax`.
    pub fn describe(&self) -> String {
        match &self.architecture {
            Architecture::FullyConnected(fc) => format!("sizes {:?}", fc.sizes),
            Architecture::Layers(layers) => format!("layers {}", spec::text(layers)),
        }
    }

    /// The least memory, in bytes, that training it with mini-batches of `mini_batch` shared
    /// by `threads` threads takes ([`memory_needed`] or [`layers_memory_needed`]); `None` past
    /// 128 bits.
    pub fn memory_needed(&self, mini_batch: usize, threads: usize) -> Option<u128> {
        match &self.architecture {
            Architecture::FullyConnected(fc) => {
                memory_needed(&fc.sizes, mini_batch, self.precision)
            }
            Architecture::Layers(layers) => {
                layers_memory_needed(layers, mini_batch, threads, self.precision)
            }
        }
    }

    /// Refuses a network whose training needs more than the `available` bytes (of memory, or
    /// of address space if that is less) before anything is allocated: `--sizes
    /// 784,100000000,10` would abort on a failed allocation, and sizes beyond the address
    /// space make the array library panic.
    pub fn check_memory(
        &self,
        mini_batch: usize,
        threads: usize,
        available: u128,
    ) -> Result<(), ConfigError> {
        let needed = self.memory_needed(mini_batch, threads);
        let available = available.min(isize::MAX as u128);
        match needed {
            Some(n) if n <= available => Ok(()),
            _ => {
                let needed = needed.map_or(f64::INFINITY, |n| n as f64);
                let available = available as f64;
                Err(match &self.architecture {
                    Architecture::FullyConnected(fc) => ConfigError::TooLarge {
                        sizes: fc.sizes.clone(),
                        needed,
                        available,
                    },
                    Architecture::Layers(layers) => ConfigError::LayersTooLarge {
                        layers: spec::text(layers),
                        needed,
                        available,
                    },
                })
            }
        }
    }
}

/// Stochastic gradient descent, as `SGD(training_data, epochs, mini_batch_size, eta, lmbda)`,
/// with chapter 3's monitors, early stopping and learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// The most epochs to train (fewer if early stopping or the schedule ends the run).
    pub epochs: usize,
    pub mini_batch_size: usize,
    /// Learning rate η (the starting one, under a schedule).
    pub eta: f64,
    /// L2 regularisation λ (0 for none).
    pub lambda: f64,
    pub backprop: Backprop,
    /// What to measure after every epoch besides the evaluation accuracy.
    pub monitor: Monitor,
    /// Stop when the evaluation accuracy has not improved for this many epochs, and go back
    /// to the weights of the best epoch (ch. 3's "no-improvement-in-n").
    pub early_stop: Option<usize>,
    pub schedule: Option<EtaSchedule>,
    /// Probability of dropping each hidden neuron for each training example (ch. 3's
    /// dropout; 0 for none).
    #[serde(default)]
    pub dropout: f64,
}

/// `network2.py`'s `monitor_*` flags. The evaluation accuracy is always measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    pub training_cost: bool,
    pub training_accuracy: bool,
    pub evaluation_cost: bool,
}

/// Chapter 3's learning-rate schedule: halve η whenever the evaluation accuracy has not
/// improved for `patience` epochs, and stop once η has fallen to `min_ratio` of its start
/// (the book suggests 1/128).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EtaSchedule {
    pub patience: usize,
    pub min_ratio: f64,
}

/// One training run: the network, the optimiser and the seed that makes it repeatable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub network: NetworkConfig,
    pub sgd: SgdConfig,
    /// Seeds the one `SeededRng` that draws the initial weights and shuffles every epoch.
    pub seed: u64,
}

/// A configuration that cannot be trained, with what is wrong in the user's terms.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("sizes must name at least an input and an output layer, got {0:?}")]
    TooFewLayers(Vec<usize>),
    #[error("layer {index} of sizes {sizes:?} has 0 neurons")]
    EmptyLayer { index: usize, sizes: Vec<usize> },
    #[error("the first layer must have {expected} neurons (one per pixel of the data), got {got}")]
    InputSize { expected: usize, got: usize },
    #[error("the last layer must have {expected} neurons (one per class), got {got}")]
    OutputSize { expected: usize, got: usize },
    #[error("the learning rate eta must be a finite number above 0, got {0}")]
    Eta(f64),
    #[error("the regularisation lambda must be a finite number of at least 0, got {0}")]
    Lambda(f64),
    #[error("epochs must be at least 1")]
    NoEpochs,
    #[error("the mini-batch size must be at least 1")]
    EmptyMiniBatch,
    #[error("the mini-batch size {mini_batch} is larger than the {n} training examples")]
    MiniBatchTooLarge { mini_batch: usize, n: usize },
    #[error("early stopping needs a patience of at least 1 epoch")]
    EarlyStopPatience,
    #[error("the learning-rate schedule needs a patience of at least 1 epoch")]
    SchedulePatience,
    #[error("the learning-rate schedule's floor must be a ratio between 0 and 1, got {0}")]
    ScheduleRatio(f64),
    #[error("the dropout probability must be at least 0 and below 1, got {0}")]
    Dropout(f64),
    #[error("dropout acts on hidden layers, and sizes {0:?} have none")]
    DropoutWithoutHiddenLayer(Vec<usize>),
    /// The list's own error, not its source too: said once.
    #[error("--layers: {0}")]
    Layers(SpecError),
    #[error("chapter 6's layers train on the log-likelihood cost, not {0}")]
    LayersCost(&'static str),
    #[error(
        "chapter 6's layers draw network3.py's initial weights; --weight-init {0} applies to \
         the fully-connected networks (--sizes)"
    )]
    LayersInit(&'static str),
    #[error(
        "chapter 6's layers set their dropout layer by layer (fc:100:dropout=P, or --dropout \
         for every fc and softmax layer that sets none), not as one probability {0}"
    )]
    LayersDropout(f64),
    #[error("this trains the book's fully-connected networks (--sizes), not {0}")]
    NotFullyConnected(String),
    #[error(
        "layers {layers} need {} to train (weights, their gradients and one mini-batch's \
         buffers), more than the {} of memory here",
        bytes_text(*needed), bytes_text(*available)
    )]
    LayersTooLarge {
        layers: String,
        needed: f64,
        available: f64,
    },
    #[error("--train-size must be at least 1")]
    NoTrainingExamples,
    #[error("--train-size {asked} is more than the {available} training images")]
    TrainSize { asked: usize, available: usize },
    #[error("--threads must be between 1 and {MAX_THREADS}, got {0}")]
    Threads(usize),
    #[error(
        "sizes {sizes:?} need {} to train (weights, their gradients and one mini-batch's \
         activations and errors), more than the {} of memory here",
        bytes_text(*needed), bytes_text(*available)
    )]
    TooLarge {
        sizes: Vec<usize>,
        /// Bytes needed (infinite when more than a 128-bit count).
        needed: f64,
        /// Bytes of memory, or of address space if that is less.
        available: f64,
    },
    #[error(transparent)]
    ValidationSize(#[from] ValidationSizeError),
    #[error(
        "{} was saved with the {saved_cost} cost and {saved_activation} hidden layers, but this \
         run trains with the {cost} cost and {activation} hidden layers (see --cost and \
         --activation)", path.display()
    )]
    InitDiffers {
        path: std::path::PathBuf,
        saved_cost: &'static str,
        saved_activation: &'static str,
        cost: &'static str,
        activation: &'static str,
    },
    /// `--init` holds another network than the one the command line names (or, naming none,
    /// sets up for the other kind).
    #[error(
        "--init {}: the file holds the network {saved}, but this run trains {run}; give the \
         file's network (--sizes or --layers) or drop the option that names another",
        path.display()
    )]
    InitNetwork {
        path: std::path::PathBuf,
        saved: String,
        run: String,
    },
}

impl From<SpecError> for ConfigError {
    fn from(e: SpecError) -> Self {
        ConfigError::Layers(e)
    }
}

impl TrainConfig {
    /// The book's run of `variant`: [784, 30, 10], 30 epochs, mini-batches of 10, and the
    /// variant's η and λ.
    pub fn book_run(variant: Variant) -> Self {
        TrainConfig {
            network: NetworkConfig {
                architecture: Architecture::FullyConnected(FullyConnected {
                    sizes: vec![784, 30, 10],
                    activation: Activation::Sigmoid,
                    cost: variant.cost(),
                    init: variant.init(),
                }),
                precision: Precision::F64,
            },
            sgd: SgdConfig {
                epochs: 30,
                mini_batch_size: 10,
                eta: variant.book_eta(),
                lambda: variant.book_lambda(),
                backprop: variant.backprop(),
                monitor: Monitor::default(),
                early_stop: None,
                schedule: None,
                dropout: 0.0,
            },
            seed: 0,
        }
    }

    /// Checks every rule that does not depend on the data, and vouches for the configuration
    /// if it passes.
    pub fn check(&self) -> Result<CheckedConfig, ConfigError> {
        self.sgd.check()?;
        match &self.network.architecture {
            Architecture::Layers(layers) => {
                spec::check(layers, IMAGE_SHAPE, CLASSES)?;
                // Each layer carries its own dropout; the fully-connected networks' one
                // probability for every hidden layer has no meaning here.
                if self.sgd.dropout != 0.0 {
                    return Err(ConfigError::LayersDropout(self.sgd.dropout));
                }
            }
            Architecture::FullyConnected(fc) => {
                check_sizes(&fc.sizes)?;
                check_dropout(&fc.sizes, self.sgd.dropout)?;
            }
        }
        Ok(CheckedConfig {
            config: self.clone(),
            threads: 1,
        })
    }
}

/// A [`TrainConfig`] that passed [`TrainConfig::check`]: the only configuration the training
/// loop takes. It derefs to the configuration for reading; changing it means checking again.
///
/// Beside it, how many threads share each mini-batch ([`CheckedConfig::with_threads`]; 1
/// unless set): not a setting of the network or the optimiser, and so not stored with them,
/// but a run repeats to the last bit only with the same count (the gradients of the threads'
/// shares are added in a fixed order, which differs from one count to another).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CheckedConfig {
    config: TrainConfig,
    #[serde(skip)]
    threads: usize,
}

impl std::ops::Deref for CheckedConfig {
    type Target = TrainConfig;

    fn deref(&self) -> &TrainConfig {
        &self.config
    }
}

impl CheckedConfig {
    /// The configuration itself.
    pub fn into_inner(self) -> TrainConfig {
        self.config
    }

    /// The same run with each mini-batch shared by `threads` threads (at least 1; see
    /// [`check_threads`]). Chapter 6's networks split a mini-batch's examples between them
    /// ([`crate::model::layers::shards`]); the fully-connected networks train on one whatever
    /// the count (both kinds are scored on every thread).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The threads that share each mini-batch.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The rules that need the data: a model of `shape` (inputs, outputs) reads the data's
    /// `inputs` values per example and has one output per class of `classes`, and a mini-batch
    /// is no larger than the `n` training examples.
    pub fn check_data(
        &self,
        shape: (usize, usize),
        inputs: usize,
        classes: usize,
        n: usize,
    ) -> Result<(), ConfigError> {
        check_shape(shape, inputs, classes)?;
        if self.sgd.mini_batch_size > n {
            return Err(ConfigError::MiniBatchTooLarge {
                mini_batch: self.sgd.mini_batch_size,
                n,
            });
        }
        Ok(())
    }
}

impl SgdConfig {
    /// λ is a finite number of at least 0.
    pub fn check_lambda(lambda: f64) -> Result<(), ConfigError> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(ConfigError::Lambda(lambda));
        }
        Ok(())
    }

    /// Checks η, λ, the epoch count, the mini-batch size, early stopping, the schedule and the
    /// dropout probability.
    fn check(&self) -> Result<(), ConfigError> {
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(ConfigError::Eta(self.eta));
        }
        Self::check_lambda(self.lambda)?;
        if self.epochs == 0 {
            return Err(ConfigError::NoEpochs);
        }
        if self.mini_batch_size == 0 {
            return Err(ConfigError::EmptyMiniBatch);
        }
        if self.early_stop == Some(0) {
            return Err(ConfigError::EarlyStopPatience);
        }
        if let Some(schedule) = self.schedule {
            if schedule.patience == 0 {
                return Err(ConfigError::SchedulePatience);
            }
            let r = schedule.min_ratio;
            if !(r > 0.0 && r < 1.0) {
                return Err(ConfigError::ScheduleRatio(r));
            }
        }
        if !(self.dropout >= 0.0 && self.dropout < 1.0) {
            return Err(ConfigError::Dropout(self.dropout));
        }
        Ok(())
    }
}

/// The most threads `--threads` may ask for: far more than any machine's cores, and few
/// enough that starting them cannot exhaust the system.
pub const MAX_THREADS: usize = 1024;

/// At least one thread, and at most [`MAX_THREADS`].
pub fn check_threads(threads: usize) -> Result<(), ConfigError> {
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(ConfigError::Threads(threads));
    }
    Ok(())
}

/// `--train-size`: at least one example, and no more than the `available` ones (when known).
pub fn check_train_size(asked: usize, available: Option<usize>) -> Result<(), ConfigError> {
    match available {
        _ if asked == 0 => Err(ConfigError::NoTrainingExamples),
        Some(available) if asked > available => Err(ConfigError::TrainSize { asked, available }),
        _ => Ok(()),
    }
}

/// The least memory, in bytes, that training a network of `sizes` with mini-batches of
/// `mini_batch` in `precision` takes: its weights and biases and as many gradients, and each
/// layer's activations and errors for one mini-batch. `None` if it does not fit in 128 bits.
pub fn memory_needed(sizes: &[usize], mini_batch: usize, precision: Precision) -> Option<u128> {
    let element: u128 = match precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    };
    let mut values: u128 = 0;
    for pair in sizes.windows(2) {
        let (n_in, n_out) = (pair[0] as u128, pair[1] as u128);
        let parameters = n_in.checked_mul(n_out)?.checked_add(n_out)?;
        values = values.checked_add(parameters.checked_mul(2)?)?;
    }
    for &n in sizes {
        values = values.checked_add(
            (n as u128)
                .checked_mul(mini_batch as u128)?
                .checked_mul(2)?,
        )?;
    }
    values.checked_mul(element)
}

/// The least memory, in bytes, that training chapter 6's `layers` on MNIST images with
/// mini-batches of `mini_batch` shared by `threads` threads in `precision` takes: their
/// parameters, the buffers (gradients among them) of the training passes, and an evaluation
/// pass per thread ([`crate::model::layers::spec::bytes_needed`]). `None` for a list that
/// cannot be built or a count past 128 bits.
pub fn layers_memory_needed(
    layers: &[LayerSpec],
    mini_batch: usize,
    threads: usize,
    precision: Precision,
) -> Option<u128> {
    let (m, shapes) = (mini_batch, spec::check(layers, IMAGE_SHAPE, CLASSES).ok()?);
    match precision {
        Precision::F32 => spec::bytes_needed::<f32>(layers, &shapes, CLASSES, m, threads),
        Precision::F64 => spec::bytes_needed::<f64>(layers, &shapes, CLASSES, m, threads),
    }
}

/// A byte count in words: `1.2 GB`, `640.0 MB`.
fn bytes_text(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "more bytes than can be counted".to_string();
    }
    let units = [
        (1e15, "PB"),
        (1e12, "TB"),
        (1e9, "GB"),
        (1e6, "MB"),
        (1e3, "kB"),
    ];
    units.iter().find(|(scale, _)| bytes >= *scale).map_or_else(
        || format!("{bytes} bytes"),
        |(scale, unit)| format!("{:.1} {unit}", bytes / scale),
    )
}

/// A saved network given as the starting point (read from `path`) has the cost and hidden
/// activation of the run.
pub fn check_init(
    path: &std::path::Path,
    saved: (Cost, Activation),
    run: (Cost, Activation),
) -> Result<(), ConfigError> {
    if saved != run {
        return Err(ConfigError::InitDiffers {
            path: path.to_path_buf(),
            saved_cost: saved.0.name(),
            saved_activation: saved.1.name(),
            cost: run.0.name(),
            activation: run.1.name(),
        });
    }
    Ok(())
}

/// At least an input and an output layer, none of them empty.
pub fn check_sizes(sizes: &[usize]) -> Result<(), ConfigError> {
    if sizes.len() < 2 {
        return Err(ConfigError::TooFewLayers(sizes.to_vec()));
    }
    if let Some(index) = sizes.iter().position(|&n| n == 0) {
        return Err(ConfigError::EmptyLayer {
            index,
            sizes: sizes.to_vec(),
        });
    }
    Ok(())
}

/// Dropout needs a hidden layer to act on.
pub fn check_dropout(sizes: &[usize], p: f64) -> Result<(), ConfigError> {
    if p > 0.0 && sizes.len() < 3 {
        return Err(ConfigError::DropoutWithoutHiddenLayer(sizes.to_vec()));
    }
    Ok(())
}

/// The first layer takes one neuron per input value and the last has one per class.
pub fn check_sizes_against(
    sizes: &[usize],
    inputs: usize,
    classes: usize,
) -> Result<(), ConfigError> {
    check_sizes(sizes)?;
    check_shape((sizes[0], sizes[sizes.len() - 1]), inputs, classes)
}

/// A model with `shape` (inputs, outputs) fits data of `inputs` values and `classes` classes.
pub fn check_shape(
    shape: (usize, usize),
    inputs: usize,
    classes: usize,
) -> Result<(), ConfigError> {
    if shape.0 != inputs {
        return Err(ConfigError::InputSize {
            expected: inputs,
            got: shape.0,
        });
    }
    if shape.1 != classes {
        return Err(ConfigError::OutputSize {
            expected: classes,
            got: shape.1,
        });
    }
    Ok(())
}
