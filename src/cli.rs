//! The command line's arguments (clap), each command's mapped onto the library request it
//! stands for.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use nndl::config::{
    Architecture, ConfigError, EtaSchedule, FullyConnected, Monitor, Precision, TrainConfig,
    Variant,
};
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::init::Init;
use nndl::model::layers::spec;
use std::time::Duration;

use nndl::run::bench::{BenchNet, BenchRequest, UnknownNet};
use nndl::run::book::BookRequest;
use nndl::run::expand::{ExpandRequest, DEFAULT_OUTPUT as EXPAND_OUTPUT};
use nndl::run::export::ExportFormat;
use nndl::run::figure::FigureRequest;
use nndl::run::train::{Outputs, TrainRequest};
use nndl::run::tune::TuneRequest;
use nndl::run::tune_report::SortBy;
use nndl::run::{default_data, EvalSet, RunError};
use nndl::tune::hyper::LayerList;
use nndl::tune::pruner::{PrunerSpec, UnknownPruner};
use nndl::tune::sampler::{SamplerSpec, UnknownSampler};
use nndl::tune::space::Space;
use nndl::tune::store::DEFAULT_URL as DEFAULT_STORAGE;
use nndl::tune::TuneError;

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
    /// Time each network's training step (the three programs, and chapter 6's networks by
    /// their `nndl book` rows) and compare it with this core's peak FLOP rate.
    Bench(BenchArgs),
    /// Score a saved network (network2.py's JSON, or chapter 6's layers) on the test or
    /// validation images.
    Eval(EvalArgs),
    /// Draw accuracy and cost against epoch from metrics files (.csv or .jsonl).
    Plot(PlotArgs),
    /// Read handwritten digits from PNG images with a saved network.
    Predict(PredictArgs),
    /// Run one of the book's networks as the book did and compare the result with the book's
    /// figure (`nndl book --list` lists them); several, or the whole table, with --rows or
    /// --all, recorded and resumable, and the table written with --table.
    Book(BookArgs),
    /// Score saved networks and their majority vote (chapter 6's ensemble) on the test or
    /// validation images.
    Vote(VoteArgs),
    /// Search hyperparameters on the validation set (grid, random or Bayesian), trial by trial,
    /// in a study shared by any number of workers; `tune show|export|plot` read it.
    Tune(TuneArgs),
    /// Make the training set five times larger, each image moved one pixel down, up, right and
    /// left (chapter 6's expand_mnist.py), and write it with the validation and test sets as a
    /// pickle that --data reads.
    Expand(ExpandArgs),
    /// Look inside a saved network: its confusion matrix on the test (or validation) images,
    /// the misclassified digits it was surest of, and its first layer's weights, as PNG images.
    Inspect(InspectArgs),
    /// Write a saved network as an ONNX model (for onnxruntime, Netron) or a safetensors file
    /// (for PyTorch and others), with the network's description inside.
    Export(ExportModelArgs),
    /// Rerun the book's figure scripts (fig/*.py) with their settings: each writes its PNG and
    /// the CSV behind it, and prints the book's numbers beside this run's.
    Figure(FigureArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The saved network (network2.py's JSON, or chapter 6's layers; f32 or f64).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The set to score.
    #[arg(long, value_enum, default_value_t = EvalSet::Test)]
    on: EvalSet,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    data: PathBuf,
    /// Validation images, taken from the end of the training images [default: the data's
    /// own split].
    #[arg(long, value_name = "N")]
    validation_size: Option<usize>,
    /// The images' names: PREFIX-confusion.png, PREFIX-mistakes.png, PREFIX-weights.png
    /// [default: the model file's name without its extension].
    #[arg(short, long, value_name = "PREFIX")]
    output: Option<PathBuf>,
}

impl InspectArgs {
    pub fn request(&self) -> nndl::run::inspect::InspectRequest {
        nndl::run::inspect::InspectRequest {
            model: self.model.clone(),
            on: self.on,
            data: self.data.clone(),
            validation_size: self.validation_size,
            output: self
                .output
                .clone()
                .unwrap_or_else(|| self.model.with_extension("")),
        }
    }
}

#[derive(Args, Debug)]
pub struct ExportModelArgs {
    /// The saved network (network2.py's JSON, chapter 6's layers, or a safetensors export).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The file to write (replaced if it exists).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct FigureArgs {
    /// The figures to make: generate_gradient, weight_initialization, multiple_eta, more_data,
    /// overfitting (`--list` lists them).
    #[arg(value_name = "NAME", required_unless_present_any = ["all", "list"])]
    pub names: Vec<String>,
    /// Make every figure.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// List the figures.
    #[arg(long)]
    pub list: bool,
    /// The directory to write the PNGs and CSVs to (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = "figures")]
    pub out: PathBuf,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    pub data: PathBuf,
    /// A few hundred images for at most two epochs each: checks the commands, not the book.
    #[arg(long)]
    pub quick: bool,
}

impl FigureArgs {
    pub fn request(&self) -> FigureRequest {
        FigureRequest {
            names: self.names.clone(),
            all: self.all,
            out: self.out.clone(),
            data: self.data.clone(),
            quick: self.quick,
        }
    }
}

#[derive(Args, Debug)]
pub struct ExpandArgs {
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    data: PathBuf,
    /// The gzipped pickle to write (replaced if it exists).
    #[arg(short, long, value_name = "FILE", default_value = EXPAND_OUTPUT)]
    output: PathBuf,
    /// Validation images, taken from the end of the training images before the rest are
    /// expanded [default: 10,000, the book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    validation_size: Option<usize>,
    /// Seed of the shuffle of the expanded training set; the same seed writes the same file.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep the expanded training set in the order it is made: each image, then its moves
    /// down, up, right and left.
    #[arg(long, conflicts_with = "seed")]
    no_shuffle: bool,
}

impl ExpandArgs {
    pub fn request(&self) -> ExpandRequest {
        ExpandRequest {
            data: self.data.clone(),
            validation_size: self.validation_size,
            output: self.output.clone(),
            shuffle: (!self.no_shuffle).then_some(self.seed),
        }
    }
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
pub struct BookArgs {
    /// The row to run, e.g. ch1, ch3-cross-entropy, ch6-relu.
    #[arg(
        required_unless_present_any = ["list", "rows", "all", "table"],
        conflicts_with_all = ["rows", "all"]
    )]
    pub row: Option<String>,
    /// List the rows with the book's figures.
    #[arg(long, conflicts_with_all = ["rows", "all", "table", "record"])]
    pub list: bool,
    /// Run these rows one after another (e.g. --rows ch1,ch3-cross-entropy), recording each
    /// as it finishes in --record; rows already recorded with the same seed, precision and
    /// epochs are skipped, so a stopped run goes on where it stopped (a vote from the next of
    /// its networks).
    #[arg(
        long,
        value_name = "ROW,ROW…",
        value_delimiter = ',',
        conflicts_with = "all"
    )]
    pub rows: Vec<String>,
    /// Run every row of the book's table, as --rows does.
    #[arg(long)]
    pub all: bool,
    /// The record of finished rows (JSON) [default with --rows, --all or --table:
    /// book/results.json]; a single ROW without --table is recorded only if this is given.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write the recorded rows as a markdown table to FILE (after every row run); without a
    /// row to run, writes it from the record alone, training nothing.
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Train for fewer epochs than the book, for a quick look (the verdict says so).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    pub data: PathBuf,
    /// The expanded training data, as `nndl expand` writes it.
    #[arg(long, default_value = nndl::run::book::EXPANDED_DATA)]
    pub expanded: PathBuf,
    /// The floating-point type [default: f64 for chapters 1–3, f32 for chapter 6].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Threads: they share each mini-batch of chapter 6's networks and score every network
    /// (a run repeats to the last bit with the same count) [default: the cores available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seed of the initial weights and shuffles (an ensemble's networks take the next ones).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the network of the epoch the row's figure comes from (network2.py's JSON, or the
    /// layer list's); a vote row writes one file per network, numbered before the extension
    /// (FILE-1.json, FILE-2.json, …), for `nndl vote`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["rows", "all"])]
    pub save: Option<PathBuf>,
    /// Write a TensorBoard event file as the run goes, into DIR/ROW (a vote row's networks
    /// into DIR/ROW/network-1, network-2, …).
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

impl BookArgs {
    /// What to run.
    pub fn request(&self) -> BookRequest {
        let rows: Vec<String> = match (&self.row, self.all) {
            (Some(row), _) => vec![row.clone()],
            (None, true) => nndl::run::book::ROWS
                .iter()
                .map(|r| r.id.to_string())
                .collect(),
            (None, false) => self.rows.clone(),
        };
        // A table comes from a record: with one ROW, the default one unless --record names one.
        let several = self.row.is_none() || self.table.is_some();
        BookRequest {
            record: nndl::run::book_record::record_path(self.record.as_deref(), several),
            table: self.table.clone(),
            rows,
            epochs: self.epochs,
            data: self.data.clone(),
            expanded: self.expanded.clone(),
            precision: self.precision,
            threads: self.threads.unwrap_or_else(nndl::backend::cores),
            seed: self.seed,
            save: self.save.clone(),
            tensorboard: self.tensorboard.clone(),
        }
    }
}

#[derive(Args, Debug)]
pub struct VoteArgs {
    /// A saved network; give --model once per network of the ensemble.
    #[arg(long = "model", value_name = "FILE", required = true)]
    pub models: Vec<PathBuf>,
    /// The set to score.
    #[arg(long, value_enum, default_value_t = EvalSet::Test)]
    pub on: EvalSet,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    pub data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000].
    #[arg(long, value_name = "N")]
    pub validation_size: Option<usize>,
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
    #[arg(long = "lambda", allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    pub data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000, the
    /// book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    pub validation_size: Option<usize>,
    /// Also write each example's label, the digit read and the output activations to FILE
    /// (CSV: label,digit,a0,…,a9), to compare with another program's.
    #[arg(long, value_name = "FILE")]
    pub outputs: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Epochs per run (the median epoch is reported).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Networks to time: network1, network2, network3, and chapter 6's by their `nndl book`
    /// rows — ch6-fc, ch6-conv, ch6-two-conv, ch6-relu, ch6-extra-fc, ch6-dropout — each with
    /// its row's layers, activation, η, λ and mini-batch.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "network1,network2,network3",
        value_parser = parse_bench_net
    )]
    nets: Vec<BenchNet>,
    /// Precisions to time [default: f64,f32 for network1–3; f32 for chapter 6's, as their rows
    /// run].
    #[arg(long, value_enum, value_delimiter = ',')]
    precisions: Option<Vec<Precision>>,
    /// Threads: they share each mini-batch of chapter 6's networks and score every network;
    /// the shares of the peak are of that many cores at once [default: the cores available].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// The MNIST pickle, or a directory of MNIST's IDX files.
    #[arg(long, default_value_os_t = default_data())]
    data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000, the
    /// book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    validation_size: Option<usize>,
    /// Train on only the first N training images (default: all of them).
    #[arg(long, value_name = "N")]
    train_size: Option<usize>,
    /// Then time one more epoch of each chapter-6 network phase by phase, layer by layer
    /// (im2col, each product, pooling, …), with each product's GFLOP/s.
    #[arg(long)]
    phases: bool,
}

impl BenchArgs {
    pub fn request(&self) -> BenchRequest {
        BenchRequest {
            epochs: self.epochs,
            nets: self.nets.clone(),
            precisions: self.precisions.clone(),
            threads: self.threads.unwrap_or_else(nndl::backend::cores),
            data: self.data.clone(),
            validation_size: self.validation_size,
            train_size: self.train_size,
            phases: self.phases,
        }
    }
}

fn parse_bench_net(text: &str) -> Result<BenchNet, String> {
    text.parse().map_err(|e: UnknownNet| e.to_string())
}

/// What every training run is configured by: the network, SGD and the data (shared by
/// `train` and `tune`, whose trials start from these settings).
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Which of the book's programs to run.
    #[arg(long, value_enum, default_value_t = Variant::Network3)]
    net: Variant,
    /// Neurons per layer, input first [default: 784,30,10].
    #[arg(long, value_delimiter = ',', conflicts_with = "layers")]
    sizes: Option<Vec<usize>>,
    /// Chapter 6's network3.py instead: a list of layers, e.g.
    /// conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax — conv:FILTERS:SIZE (valid, stride 1),
    /// pool:SIZE (max-pooling of the conv before it), fc:NEURONS, softmax (last). Options
    /// per layer: act=sigmoid|tanh|relu (conv, fc), dropout=P (fc, softmax), e.g.
    /// fc:1000:dropout=0.5. Trained on the log-likelihood cost with network3.py's L2 term.
    #[arg(long, value_name = "LIST")]
    layers: Option<String>,
    /// Learning rate η [default: 3.0 for network1/2, 0.5 for network3, 0.1 with --layers].
    #[arg(long, allow_negative_numbers = true)]
    eta: Option<f64>,
    /// L2 regularisation λ [default: 0 for network1/2, 5.0 for network3, 0 with --layers].
    #[arg(long = "lambda", allow_negative_numbers = true)]
    lambda: Option<f64>,
    /// The cost; log-likelihood puts a softmax output layer in place of sigmoid neurons
    /// [default: quadratic for network1/2, cross-entropy for network3].
    #[arg(long, value_enum)]
    cost: Option<Cost>,
    /// The hidden layers' activation (with --layers: of every conv and fc layer that does not
    /// set its own).
    #[arg(long, value_enum, default_value_t = Activation::Sigmoid)]
    activation: Activation,
    /// How the initial weights are drawn, as network2.py's two initialisers [default: large
    /// for network1/2, scaled for network3].
    #[arg(long, value_enum, value_name = "INIT")]
    weight_init: Option<Init>,
    /// Drop each hidden neuron with probability P for each training example (inverted
    /// dropout: off when evaluating). With --layers: the inputs of every fc and softmax layer
    /// that does not set its own, as network3.py.
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
    #[arg(long, default_value_os_t = default_data())]
    data: PathBuf,
    /// Validation images, taken from the end of the training images [default: 10,000, the
    /// book's split of MNIST's 60,000].
    #[arg(long, value_name = "N")]
    validation_size: Option<usize>,
    /// Train on only the first N training images (default: all of them).
    #[arg(long, value_name = "N")]
    train_size: Option<usize>,
    /// What else to measure after every epoch, as network2.py's monitor_* flags.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    monitor: Vec<MonitorItem>,
    /// Stop when the evaluation accuracy has not improved for N epochs; keep the best epoch's
    /// weights.
    #[arg(long, value_name = "N")]
    early_stop: Option<usize>,
    /// Halve η when the evaluation accuracy has not improved for N epochs; stop when η has
    /// fallen to RATIO of its start (default 1/128).
    #[arg(long, value_name = "halve:N[,RATIO]", value_parser = parse_schedule)]
    eta_schedule: Option<EtaSchedule>,
    /// Threads: they share each mini-batch of chapter 6's networks (a run repeats to the
    /// last bit with the same count; the fully-connected networks train on one thread) and score
    /// every network [default: the cores available; for `tune`, each worker's share of them].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// The floating-point type to compute in.
    #[arg(long, value_enum, default_value_t = Precision::F64)]
    precision: Precision,
}

/// `--sizes` when it is not given: the book's first network.
const DEFAULT_SIZES: [usize; 3] = [784, 30, 10];

impl ConfigArgs {
    /// True when the command line names the network (`--sizes` or `--layers`), which a saved
    /// network it starts from (`--init`) must then be.
    pub fn names_network(&self) -> bool {
        self.sizes.is_some() || self.layers.is_some()
    }

    /// The configuration these options make, with the program's book defaults where an
    /// option is not given; fails on a layer list that cannot be read.
    pub fn config(&self) -> Result<TrainConfig, RunError> {
        let mut config = TrainConfig::book_run(self.net);
        let sgd = &mut config.sgd;
        match &self.layers {
            Some(text) => {
                if let Some(cost) = self.cost.filter(|&c| c != Cost::LogLikelihood) {
                    return Err(ConfigError::LayersCost(cost.name()).into());
                }
                if let Some(init) = self.weight_init {
                    return Err(ConfigError::LayersInit(init.name()).into());
                }
                let layers =
                    spec::parse(text, self.activation, self.dropout).map_err(ConfigError::from)?;
                config.network.architecture = Architecture::Layers(layers);
                sgd.eta = self.eta.unwrap_or(LAYERS_ETA);
                sgd.lambda = self.lambda.unwrap_or(0.0);
                sgd.dropout = 0.0;
            }
            None => {
                config.network.architecture = Architecture::FullyConnected(FullyConnected {
                    sizes: self.sizes.clone().unwrap_or_else(|| DEFAULT_SIZES.to_vec()),
                    activation: self.activation,
                    cost: self.cost.unwrap_or(self.net.cost()),
                    init: self.weight_init.unwrap_or(self.net.init()),
                });
                sgd.eta = self.eta.unwrap_or(self.net.book_eta());
                sgd.lambda = self.lambda.unwrap_or(self.net.book_lambda());
                sgd.dropout = self.dropout;
            }
        }
        config.network.precision = self.precision;
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
        Ok(config)
    }
}

/// η of chapter 6's first networks (the book's runs use 0.1, and 0.03 with ReLU).
const LAYERS_ETA: f64 = 0.1;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    run: ConfigArgs,
    /// The set scored after every epoch (and watched by --early-stop and --eta-schedule).
    #[arg(long, value_enum, default_value_t = EvalSet::Test)]
    eval_on: EvalSet,
    /// Write every epoch's measurements to FILE (.csv or .jsonl).
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Draw accuracy and cost against epoch to FILE (.png or .svg) when training ends.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Print no line per epoch, only the summary.
    #[arg(long)]
    quiet: bool,
    /// Start from this saved network (network2.py's JSON, or a layer list's) instead of random
    /// weights.
    #[arg(long, value_name = "FILE", conflicts_with = "weight_init")]
    init: Option<PathBuf>,
    /// Write the initial network to FILE before training (network2.py's JSON; chapter 6's
    /// layers in their own layout).
    #[arg(long, value_name = "FILE")]
    save_init: Option<PathBuf>,
    /// Write the trained network to FILE (network2.py's JSON; chapter 6's layers in their own
    /// layout).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Write each epoch's shuffled order of training examples to FILE (JSON, a list per epoch).
    #[arg(long, value_name = "FILE")]
    dump_order: Option<PathBuf>,
    /// Write a TensorBoard event file into DIR as the run goes: scalars, the first layer's
    /// weights and misclassified digits as images, weight histograms (`tensorboard --logdir
    /// DIR`).
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// Chapter 5: measure each hidden layer's speed of learning, the norm of the average ∂C/∂b
    /// over the first IMAGES training images [default: 1000, as the book], before training and
    /// after every epoch (printed, and written to --metrics; `nndl plot` draws it).
    #[arg(
        long,
        value_name = "IMAGES",
        num_args = 0..=1,
        default_missing_value = "1000",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    monitor_learning_speed: Option<usize>,
}

impl TrainArgs {
    /// The request these options make.
    pub fn request(&self) -> Result<TrainRequest, RunError> {
        let run = &self.run;
        Ok(TrainRequest {
            program: run.net,
            config: run.config()?,
            data: run.data.clone(),
            train_size: run.train_size,
            validation_size: run.validation_size,
            eval_on: self.eval_on,
            threads: run.threads.unwrap_or_else(nndl::backend::cores),
            init: self.init.clone(),
            network_given: run.names_network(),
            quiet: self.quiet,
            learning_speed: self.monitor_learning_speed,
            outputs: Outputs {
                save_init: self.save_init.clone(),
                save: self.save.clone(),
                metrics: self.metrics.clone(),
                plot: self.plot.clone(),
                dump_order: self.dump_order.clone(),
                tensorboard: self.tensorboard.clone(),
            },
        })
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TuneArgs {
    #[command(subcommand)]
    pub command: Option<TuneCommand>,
    #[command(flatten)]
    pub search: SearchArgs,
}

/// `nndl tune`'s study: what to search, how, and where it is kept.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The study's name: the same name continues the same study.
    #[arg(long, default_value = "nndl")]
    study: String,
    /// Where the study is kept: sqlite:PATH, or postgres://USER:PASSWORD@HOST/DB to share it
    /// with workers on other machines.
    #[arg(long, default_value = DEFAULT_STORAGE)]
    storage: String,
    /// A hyperparameter to search, NAME=KIND: KIND float:LO:HI, log:LO:HI, int:LO:HI,
    /// intlog:LO:HI or choice:A,B,… (the names: --help)
    #[arg(long = "param", value_name = "NAME=KIND", long_help = param_help())]
    params: Vec<String>,
    /// The search space as a TOML file (params = ["eta=log:0.01:10", …]), besides --param.
    #[arg(long, value_name = "FILE")]
    space: Option<PathBuf>,
    /// How to choose each trial's parameters: random, tpe (Bayesian), grid or grid:K (ranges
    /// split into K points), or book (chapter 3's recipe: η by factors of ten to its
    /// threshold, then λ, then the mini-batch size).
    #[arg(long, default_value = "tpe", value_parser = parse_sampler)]
    sampler: SamplerSpec,
    /// How to end unpromising trials early: none, median[:WARMUP] or asha[:MIN_EPOCHS].
    #[arg(long, default_value = "none", value_parser = parse_pruner)]
    pruner: PrunerSpec,
    /// Trials in the study in all, counting those of earlier runs.
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// Workers to run in this process.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// This process's workers are named NAME-1, NAME-2, … [default: host and process id].
    #[arg(long, value_name = "NAME")]
    worker: Option<String>,
    /// Seconds between a worker's heartbeats.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    heartbeat: f64,
    /// Seconds of silence after which another worker takes a trial over.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    stale_after: f64,
    /// Write a TensorBoard event file per trial as it trains, into DIR/STUDY/trial-N.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    #[command(flatten)]
    run: ConfigArgs,
}

impl SearchArgs {
    /// The request these options make; the space from --space and --param.
    pub fn request(&self) -> Result<TuneRequest, RunError> {
        let mut texts = Vec::new();
        if let Some(path) = &self.space {
            let toml =
                nndl::data::file::read_text(path, 1 << 20).map_err(|source| RunError::Read {
                    path: path.clone(),
                    source,
                })?;
            let space = Space::from_toml(&toml).map_err(TuneError::from)?;
            texts.extend(space.params.iter().map(|p| p.to_string()));
        }
        texts.extend(self.params.iter().cloned());
        let space = Space::parse(&texts).map_err(TuneError::from)?;
        let seconds = |s: f64, what: &str| {
            Duration::try_from_secs_f64(s).map_err(|_| TuneError::Seconds(what.to_string(), s))
        };
        Ok(TuneRequest {
            study: self.study.clone(),
            storage: self.storage.clone(),
            space,
            sampler: self.sampler,
            pruner: self.pruner,
            trials: self.trials,
            jobs: self.jobs,
            base: self.run.config()?,
            layers: self.run.layers.as_ref().map(|text| LayerList {
                text: text.clone(),
                activation: self.run.activation,
                dropout: self.run.dropout,
            }),
            data: self.run.data.clone(),
            train_size: self.run.train_size,
            validation_size: self.run.validation_size,
            worker: self.worker.clone(),
            heartbeat: seconds(self.heartbeat, "--heartbeat")?,
            stale_after: seconds(self.stale_after, "--stale-after")?,
            threads: self
                .run
                .threads
                .unwrap_or_else(|| (nndl::backend::cores() / self.jobs.max(1)).max(1)),
            tensorboard: self.tensorboard.clone(),
            panic_in_trial: None,
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum TuneCommand {
    /// List the studies of a store, or one study's trials.
    Show(ShowArgs),
    /// Write a study's trials to a .csv or .jsonl file.
    Export(ExportArgs),
    /// Draw a study: its history, each parameter against accuracy, every trial's curve.
    Plot(StudyPlotArgs),
    /// List the studies of a store (as `tune show` without --study).
    List(ListArgs),
    /// Delete a study and all its trials (asks first unless --yes).
    Delete(DeleteArgs),
    /// Convert a study database of nndl's old layout to Optuna's schema (old tables kept).
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, default_value = DEFAULT_STORAGE)]
    pub storage: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The study to delete.
    pub study: String,
    #[arg(long, default_value = DEFAULT_STORAGE)]
    pub storage: String,
    /// Delete without asking (needed when standard input is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[arg(long, default_value = DEFAULT_STORAGE)]
    pub storage: String,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[arg(long, default_value = DEFAULT_STORAGE)]
    pub storage: String,
    /// The study to show [default: list every study].
    #[arg(long)]
    pub study: Option<String>,
    /// The order of the trials.
    #[arg(long, value_enum, default_value_t = SortBy::Number)]
    pub sort: SortBy,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, default_value = DEFAULT_STORAGE)]
    pub storage: String,
    #[arg(long, default_value = "nndl")]
    pub study: String,
    /// The file to write: .csv or .jsonl.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct StudyPlotArgs {
    #[arg(long, default_value = DEFAULT_STORAGE)]
    pub storage: String,
    #[arg(long, default_value = "nndl")]
    pub study: String,
    /// Where the figures go: PREFIX-history, PREFIX-params and PREFIX-curves, .png unless
    /// PREFIX ends in .svg.
    #[arg(short, long, value_name = "PREFIX")]
    pub output: PathBuf,
}

/// `--param`'s long help: the kinds, then every name of the table the studies read.
fn param_help() -> String {
    format!(
        "A hyperparameter to search, NAME=KIND: KIND float:LO:HI, log:LO:HI, int:LO:HI, \
         intlog:LO:HI or choice:A,B,… NAME one of (N: a layer's number, from 1):\n{}",
        nndl::tune::hyper::help()
    )
}

fn parse_sampler(text: &str) -> Result<SamplerSpec, String> {
    text.parse().map_err(|e: UnknownSampler| e.to_string())
}

fn parse_pruner(text: &str) -> Result<PrunerSpec, String> {
    text.parse().map_err(|e: UnknownPruner| e.to_string())
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
