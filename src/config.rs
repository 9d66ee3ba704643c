//! Everything a training run is configured by, in one nested struct, and every rule it must
//! obey. [`TrainConfig::check`] turns a configuration into a [`CheckedConfig`], the only kind the
//! training loop accepts; [`CheckedConfig::check_data`] adds the rules that need the data
//! (its pixels, classes and size). Each broken rule is a [`ConfigError`] in the user's terms.
//!
//! The three programs of the book's first chapters are three presets ([`Variant`]) of the
//! same pieces: a cost, an initialiser and a way to backpropagate a mini-batch.

use serde::{Deserialize, Serialize};

use crate::data::{CLASSES, IMAGE_SHAPE};

use crate::model::activation::Activation;
use crate::model::cost::Cost;
use crate::model::init::Init;
use crate::model::layers::spec::{self, LayerSpec, SpecError};

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

/// The network to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Neurons per layer, input first (a fully-connected network; unused with `layers`).
    pub sizes: Vec<usize>,
    /// Chapter 6's layer list (`--layers`); when given, the network is made of these layers
    /// and trained on the log-likelihood cost, and `sizes` and `init` are not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerSpec>>,
    /// The hidden layers' activation (sigmoid in all three programs).
    #[serde(default)]
    pub activation: Activation,
    /// The cost, which also picks the output layer (softmax for log-likelihood).
    pub cost: Cost,
    pub init: Init,
    pub precision: Precision,
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
    #[error("--layers: {0}")]
    Layers(#[from] SpecError),
    #[error("chapter 6's layers train on the log-likelihood cost, not {0}")]
    LayersCost(&'static str),
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
    #[error("--threads must be at least 1")]
    NoThreads,
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
    #[error(
        "--validation-size {asked} leaves no training images: the data has {available} \
         training and validation images together"
    )]
    ValidationSize { asked: usize, available: usize },
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
}

impl TrainConfig {
    /// The book's run of `variant`: [784, 30, 10], 30 epochs, mini-batches of 10, and the
    /// variant's η and λ.
    pub fn book_run(variant: Variant) -> Self {
        TrainConfig {
            network: NetworkConfig {
                sizes: vec![784, 30, 10],
                layers: None,
                activation: Activation::Sigmoid,
                cost: variant.cost(),
                init: variant.init(),
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
        match &self.network.layers {
            Some(layers) => {
                spec::check(layers, IMAGE_SHAPE, CLASSES)?;
                if self.network.cost != Cost::LogLikelihood {
                    return Err(ConfigError::LayersCost(self.network.cost.name()));
                }
                self.sgd.check()?;
            }
            None => {
                check_sizes(&self.network.sizes)?;
                self.sgd.check()?;
                check_dropout(&self.network.sizes, self.sgd.dropout)?;
            }
        }
        Ok(CheckedConfig(self.clone()))
    }
}

/// A [`TrainConfig`] that passed [`TrainConfig::check`]: the only configuration the training
/// loop takes. It derefs to the configuration for reading; changing it means checking again.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CheckedConfig(TrainConfig);

impl std::ops::Deref for CheckedConfig {
    type Target = TrainConfig;

    fn deref(&self) -> &TrainConfig {
        &self.0
    }
}

impl CheckedConfig {
    /// The configuration itself.
    pub fn into_inner(self) -> TrainConfig {
        self.0
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

/// At least one thread for the matrix products.
pub fn check_threads(threads: usize) -> Result<(), ConfigError> {
    if threads == 0 {
        return Err(ConfigError::NoThreads);
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

/// A network whose training needs more than the `available` bytes (of memory, or of address
/// space) is refused before anything is allocated: `--sizes 784,100000000,10` would abort
/// on a failed allocation, and sizes beyond the address space make the array library panic.
pub fn check_memory(
    sizes: &[usize],
    mini_batch: usize,
    precision: Precision,
    available: u128,
) -> Result<(), ConfigError> {
    let needed = memory_needed(sizes, mini_batch, precision);
    let available = available.min(isize::MAX as u128);
    match needed {
        Some(n) if n <= available => Ok(()),
        _ => Err(ConfigError::TooLarge {
            sizes: sizes.to_vec(),
            needed: needed.map_or(f64::INFINITY, |n| n as f64),
            available: available as f64,
        }),
    }
}

/// [`check_memory`] for chapter 6's `layers` on MNIST images: their parameters and
/// gradients, and the buffers of a training pass of `mini_batch` examples and of an
/// evaluation pass ([`crate::model::layers::pass`]).
pub fn check_layers_memory(
    layers: &[LayerSpec],
    mini_batch: usize,
    precision: Precision,
    available: u128,
) -> Result<(), ConfigError> {
    let m = mini_batch.max(crate::model::layers::pass::EVAL_CHUNK);
    let needed =
        spec::check(layers, IMAGE_SHAPE, CLASSES)
            .ok()
            .and_then(|shapes| match precision {
                Precision::F32 => spec::bytes_needed::<f32>(layers, &shapes, CLASSES, m),
                Precision::F64 => spec::bytes_needed::<f64>(layers, &shapes, CLASSES, m),
            });
    let available = available.min(isize::MAX as u128);
    match needed {
        Some(n) if n <= available => Ok(()),
        _ => Err(ConfigError::LayersTooLarge {
            layers: spec::text(layers),
            needed: needed.map_or(f64::INFINITY, |n| n as f64),
            available: available as f64,
        }),
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

/// `--validation-size`: the validation set is taken from the end of the training images and
/// must leave at least one of the `available` (training and validation together) to train on.
pub fn check_validation_size(asked: usize, available: usize) -> Result<(), ConfigError> {
    if asked >= available {
        return Err(ConfigError::ValidationSize { asked, available });
    }
    Ok(())
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
