//! Everything a training run is configured by, in one nested struct checked once
//! ([`TrainConfig::validate`], then [`TrainConfig::check_data`] when the data is known).
//!
//! The three programs of the book's first chapters are three presets ([`Variant`]) of the
//! same pieces: a cost, an initialiser and a way to backpropagate a mini-batch.

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::cost::Cost;
use crate::init::Init;

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
    pub fn seed_eta(self) -> f64 {
        match self {
            Variant::Network1 | Variant::Network2 => 3.0,
            Variant::Network3 => 0.5,
        }
    }

    /// The L2 strength of the book's run: none in ch. 1, λ = 5.0 in ch. 3.
    pub fn seed_lambda(self) -> f64 {
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
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
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
    /// Seeds the one `StdRng` that draws the initial weights and shuffles every epoch.
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
}

impl TrainConfig {
    /// The book's run of `variant`: [784, 30, 10], 30 epochs, mini-batches of 10, and the
    /// variant's η and λ.
    pub fn seed_run(variant: Variant) -> Self {
        TrainConfig {
            network: NetworkConfig {
                sizes: vec![784, 30, 10],
                activation: Activation::Sigmoid,
                cost: variant.cost(),
                init: variant.init(),
                precision: Precision::F64,
            },
            sgd: SgdConfig {
                epochs: 30,
                mini_batch_size: 10,
                eta: variant.seed_eta(),
                lambda: variant.seed_lambda(),
                backprop: variant.backprop(),
                monitor: Monitor::default(),
                early_stop: None,
                schedule: None,
                dropout: 0.0,
            },
            seed: 0,
        }
    }

    /// Checks everything that does not depend on the data.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_sizes(&self.network.sizes)?;
        self.sgd.validate()?;
        check_dropout(&self.network.sizes, self.sgd.dropout)
    }

    /// Checks the configuration against data with `inputs` pixels, `classes` labels and `n`
    /// training examples (and everything [`TrainConfig::validate`] checks).
    pub fn check_data(&self, inputs: usize, classes: usize, n: usize) -> Result<(), ConfigError> {
        self.validate()?;
        check_sizes_against(&self.network.sizes, inputs, classes)?;
        self.sgd.check_data(n)
    }
}

impl SgdConfig {
    /// Checks η, λ, the epoch count and the mini-batch size.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(ConfigError::Eta(self.eta));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(ConfigError::Lambda(self.lambda));
        }
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

    /// Checks the mini-batch size against `n` training examples.
    pub fn check_data(&self, n: usize) -> Result<(), ConfigError> {
        if self.mini_batch_size > n {
            return Err(ConfigError::MiniBatchTooLarge {
                mini_batch: self.mini_batch_size,
                n,
            });
        }
        Ok(())
    }
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
    if sizes[0] != inputs {
        return Err(ConfigError::InputSize {
            expected: inputs,
            got: sizes[0],
        });
    }
    let last = sizes[sizes.len() - 1];
    if last != classes {
        return Err(ConfigError::OutputSize {
            expected: classes,
            got: last,
        });
    }
    Ok(())
}
