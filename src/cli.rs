//! The command line's arguments (clap), each command's mapped onto the library request it
//! stands for.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use nndl::config::{EtaSchedule, Monitor, Precision, TrainConfig, Variant};
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::run::bench::BenchRequest;
use nndl::run::train::{Outputs, TrainRequest};
use nndl::run::{EvalSet, DEFAULT_DATA};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "The networks of Nielsen's Neural Networks and Deep Learning, on MNIST",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand: `train` with these options.
    #[command(flatten)]
    pub train: TrainArgs,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a network with SGD and report its test accuracy after every epoch.
    Train(TrainArgs),
    /// Time each program's training step and compare it with this core's peak FLOP rate.
    Bench(BenchArgs),
    /// Score a saved network (network2.py's JSON) on the test or validation images.
    Eval(EvalArgs),
    /// Draw accuracy and cost against epoch from metrics files (.csv or .jsonl).
    Plot(PlotArgs),
    /// Read handwritten digits from PNG images with a saved network.
    Predict(PredictArgs),
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The saved network.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// PNG images of one digit each: 28×28 as MNIST, or any size (fitted and centred as
    /// MNIST digits were); white on black or black on white.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Metrics files written by `train --metrics`; several are drawn side by side.
    #[arg(required = true, value_name = "METRICS")]
    pub runs: Vec<PathBuf>,
    /// The figure to write: .png or .svg.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The figure's title [default: the files' names].
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The saved network.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The set to score.
    #[arg(long, value_enum, default_value_t = EvalSet::Test)]
    pub on: EvalSet,
    /// λ for the cost's L2 term (as network2.py's total_cost) [default: the λ the model was
    /// trained with, if its file says, else 0].
    #[arg(long = "lambda")]
    pub lambda: Option<f64>,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000, the
    /// book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    pub validation_size: Option<usize>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Epochs per run (the median epoch is reported).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Programs to time.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "network1,network2,network3"
    )]
    nets: Vec<Variant>,
    /// Precisions to time.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f64,f32")]
    precisions: Vec<Precision>,
    /// Threads for the matrix products (OpenBLAS).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000, the
    /// book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    validation_size: Option<usize>,
}

impl BenchArgs {
    pub fn request(&self) -> BenchRequest {
        BenchRequest {
            epochs: self.epochs,
            nets: self.nets.clone(),
            precisions: self.precisions.clone(),
            threads: self.threads,
            data: self.data.clone(),
            validation_size: self.validation_size,
        }
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Which of the book's programs to run.
    #[arg(long, value_enum, default_value_t = Variant::Network3)]
    net: Variant,
    /// Neurons per layer, input first.
    #[arg(long, value_delimiter = ',', default_value = "784,30,10")]
    sizes: Vec<usize>,
    /// Learning rate η [default: 3.0 for network1/2, 0.5 for network3].
    #[arg(long, allow_negative_numbers = true)]
    eta: Option<f64>,
    /// L2 regularisation λ [default: 0 for network1/2, 5.0 for network3].
    #[arg(long = "lambda", allow_negative_numbers = true)]
    lambda: Option<f64>,
    /// The cost; log-likelihood puts a softmax output layer in place of sigmoid neurons
    /// [default: quadratic for network1/2, cross-entropy for network3].
    #[arg(long, value_enum)]
    cost: Option<Cost>,
    /// The hidden layers' activation.
    #[arg(long, value_enum, default_value_t = Activation::Sigmoid)]
    activation: Activation,
    /// Drop each hidden neuron with probability P for each training example (inverted
    /// dropout: off when evaluating).
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    dropout: f64,
    /// Passes over the training set.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Examples per mini-batch.
    #[arg(long = "mini-batch", default_value_t = 10)]
    mini_batch: usize,
    /// Seed of the random initial weights and shuffles; the same seed repeats a run exactly.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000, the
    /// book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    validation_size: Option<usize>,
    /// Train on only the first N training images (default: all of them).
    #[arg(long, value_name = "N")]
    train_size: Option<usize>,
    /// The set scored after every epoch (and watched by --early-stop and --eta-schedule).
    #[arg(long, value_enum, default_value_t = EvalSet::Test)]
    eval_on: EvalSet,
    /// What else to measure after every epoch, as network2.py's monitor_* flags.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    monitor: Vec<MonitorItem>,
    /// Write every epoch's measurements to FILE (.csv or .jsonl).
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Draw accuracy and cost against epoch to FILE (.png or .svg) when training ends.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Print no line per epoch, only the summary.
    #[arg(long)]
    quiet: bool,
    /// Stop when the evaluation accuracy has not improved for N epochs; keep the best epoch's
    /// weights.
    #[arg(long, value_name = "N")]
    early_stop: Option<usize>,
    /// Halve η when the evaluation accuracy has not improved for N epochs; stop when η has
    /// fallen to RATIO of its start (default 1/128).
    #[arg(long, value_name = "halve:N[,RATIO]", value_parser = parse_schedule)]
    eta_schedule: Option<EtaSchedule>,
    /// Threads for the matrix products (OpenBLAS; the pure-Rust backend always uses one).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The floating-point type to compute in.
    #[arg(long, value_enum, default_value_t = Precision::F64)]
    precision: Precision,
    /// Start from this saved network (network2.py's JSON) instead of random weights.
    #[arg(long, value_name = "FILE")]
    init: Option<PathBuf>,
    /// Write the initial network to FILE before training (network2.py's JSON).
    #[arg(long, value_name = "FILE")]
    save_init: Option<PathBuf>,
    /// Write the trained network to FILE (network2.py's JSON).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Write each epoch's shuffled order of training examples to FILE (JSON, a list per epoch).
    #[arg(long, value_name = "FILE")]
    dump_order: Option<PathBuf>,
}

impl TrainArgs {
    /// The request these options make, with the program's book defaults where an option is
    /// not given.
    pub fn request(&self) -> TrainRequest {
        let mut config = TrainConfig::book_run(self.net);
        config.network.sizes = self.sizes.clone();
        config.network.cost = self.cost.unwrap_or(self.net.cost());
        config.network.activation = self.activation;
        config.network.precision = self.precision;
        let sgd = &mut config.sgd;
        sgd.eta = self.eta.unwrap_or(self.net.book_eta());
        sgd.lambda = self.lambda.unwrap_or(self.net.book_lambda());
        sgd.dropout = self.dropout;
        sgd.epochs = self.epochs;
        sgd.mini_batch_size = self.mini_batch;
        sgd.monitor = Monitor {
            training_cost: self.monitor.contains(&MonitorItem::TrainCost),
            training_accuracy: self.monitor.contains(&MonitorItem::TrainAcc),
            evaluation_cost: self.monitor.contains(&MonitorItem::EvalCost),
        };
        sgd.early_stop = self.early_stop;
        sgd.schedule = self.eta_schedule;
        config.seed = self.seed;
        TrainRequest {
            program: self.net,
            config,
            data: self.data.clone(),
            validation_size: self.validation_size,
            train_size: self.train_size,
            eval_on: self.eval_on,
            threads: self.threads,
            init: self.init.clone(),
            quiet: self.quiet,
            outputs: Outputs {
                save_init: self.save_init.clone(),
                save: self.save.clone(),
                metrics: self.metrics.clone(),
                plot: self.plot.clone(),
                dump_order: self.dump_order.clone(),
            },
        }
    }
}

/// One of `--monitor`'s items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum MonitorItem {
    TrainCost,
    TrainAcc,
    EvalCost,
    /// Always on; accepted for symmetry with network2.py.
    EvalAcc,
}

/// `halve:N` or `halve:N,RATIO`.
fn parse_schedule(text: &str) -> Result<EtaSchedule, String> {
    let usage = || format!("{text:?} is not halve:N or halve:N,RATIO");
    let rest = text.strip_prefix("halve:").ok_or_else(usage)?;
    let (n, ratio) = match rest.split_once(',') {
        Some((n, r)) => (n, r.parse::<f64>().map_err(|_| usage())?),
        None => (rest, 1.0 / 128.0),
    };
    Ok(EtaSchedule {
        patience: n.parse().map_err(|_| usage())?,
        min_ratio: ratio,
    })
}
