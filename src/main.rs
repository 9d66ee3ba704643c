//! `nndl`: train the book's networks on MNIST from the command line.
//!
//! `nndl train --net network1|network2|network3 …` (or just `nndl`, which trains network3 with
//! the book's chapter-3 parameters) prints the backend, the load time, each epoch's test
//! accuracy as the book's programs do, and the training time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use rand::rngs::StdRng;
use rand::SeedableRng;

use nndl::activation::Activation;
use nndl::bench;
use nndl::checkpoint;
use nndl::config::{EtaSchedule, Monitor, Precision, TrainConfig, Variant};
use nndl::console::Console;
use nndl::cost::Cost;
use nndl::data::{load_mnist, Dataset, Mnist, CLASSES};
use nndl::metrics::{self, MetricsError, MetricsWriter};
use nndl::plot;
use nndl::real::Real;
use nndl::train::{build_network, sgd_observed, train, Stop, TrainError};

/// Prints a line to stdout, ignoring a closed stdout ([`nndl::console::say`]).
macro_rules! say {
    ($($arg:tt)*) => {
        nndl::console::say(&format!($($arg)*))
    };
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "The networks of Nielsen's Neural Networks and Deep Learning, on MNIST",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand: `train` with these options.
    #[command(flatten)]
    train: TrainArgs,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
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
struct PredictArgs {
    /// The saved network.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// PNG images of one digit each: 28×28 as MNIST, or any size (fitted and centred as
    /// MNIST digits were); white on black or black on white.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// Metrics files written by `train --metrics`; several are drawn side by side.
    #[arg(required = true, value_name = "METRICS")]
    runs: Vec<PathBuf>,
    /// The figure to write: .png or .svg.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// The figure's title [default: the files' names].
    #[arg(long)]
    title: Option<String>,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The saved network.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The set to score.
    #[arg(long, value_enum, default_value_t = EvalSet::Test)]
    on: EvalSet,
    /// λ for the cost's L2 term (as network2.py's total_cost) [default: the λ the model was
    /// trained with, if its file says, else 0].
    #[arg(long = "lambda")]
    lambda: Option<f64>,
    /// The MNIST pickle.
    #[arg(long, default_value = "data/mnist.pkl.gz")]
    data: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
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
    /// The MNIST pickle.
    #[arg(long, default_value = "data/mnist.pkl.gz")]
    data: PathBuf,
}

#[derive(Args, Debug)]
struct TrainArgs {
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
    /// The MNIST pickle.
    #[arg(long, default_value = "data/mnist.pkl.gz")]
    data: PathBuf,
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
    /// Maps the options onto the library's configuration, with the variant's book defaults.
    fn config(&self) -> TrainConfig {
        let mut config = TrainConfig::seed_run(self.net);
        config.network.sizes = self.sizes.clone();
        config.sgd.eta = self.eta.unwrap_or(self.net.seed_eta());
        config.sgd.lambda = self.lambda.unwrap_or(self.net.seed_lambda());
        config.network.cost = self.cost.unwrap_or(self.net.cost());
        config.network.activation = self.activation;
        config.sgd.dropout = self.dropout;
        config.sgd.epochs = self.epochs;
        config.sgd.mini_batch_size = self.mini_batch;
        config.network.precision = self.precision;
        config.sgd.monitor = Monitor {
            training_cost: self.monitor.contains(&MonitorItem::TrainCost),
            training_accuracy: self.monitor.contains(&MonitorItem::TrainAcc),
            evaluation_cost: self.monitor.contains(&MonitorItem::EvalCost),
        };
        config.sgd.early_stop = self.early_stop;
        config.sgd.schedule = self.eta_schedule;
        config.seed = self.seed;
        config
    }
}

/// Which set of `mnist.pkl.gz` to score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EvalSet {
    Validation,
    Test,
}

impl EvalSet {
    fn pick<F: Real>(self, validation: Dataset<F>, test: Dataset<F>) -> Dataset<F> {
        match self {
            EvalSet::Validation => validation,
            EvalSet::Test => test,
        }
    }

    fn name(self) -> &'static str {
        match self {
            EvalSet::Validation => "validation",
            EvalSet::Test => "test",
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

/// Exit code for arguments that cannot be trained with, as clap uses for parse errors.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Train(args)) => run_train(&args),
        Some(Command::Bench(args)) => run_bench(&args),
        Some(Command::Eval(args)) => run_eval(&args),
        Some(Command::Plot(args)) => run_plot(&args),
        Some(Command::Predict(args)) => run_predict(&args),
        None => run_train(&cli.train),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(USAGE)
        }
        Err(Failure::Other(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    /// The arguments are wrong: exit 2.
    Usage(String),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure::Other(err.into())
    }
}

fn run_train(args: &TrainArgs) -> Result<(), Failure> {
    let config = args.config();
    config
        .validate()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let hyper = &config.sgd;
    say!(
        "{}: sizes {:?}, eta {}, lambda {}, {} epochs, mini-batch {}, seed {}, {}",
        args.net.name(),
        config.network.sizes,
        hyper.eta,
        hyper.lambda,
        hyper.epochs,
        hyper.mini_batch_size,
        config.seed,
        config.network.precision.name()
    );
    let network = &config.network;
    if network.cost != args.net.cost() || network.activation != Activation::Sigmoid {
        say!(
            "  {} hidden layers, {} output layer, {} cost",
            network.activation.name(),
            network.cost.output().name(),
            network.cost.name()
        );
    }
    if hyper.dropout > 0.0 {
        say!("  dropout {} on the hidden layers", hyper.dropout);
    }
    nndl::backend::set_threads(args.threads);
    say!("Backend: {}", nndl::backend::describe());

    let start = Instant::now();
    let mnist = load_mnist(&args.data)
        .with_context(|| "cannot load the MNIST data (use --data to point at mnist.pkl.gz)")?;
    say!(
        "Loaded {} in {:.2} seconds ({} training, {} validation, {} test images)",
        args.data.display(),
        start.elapsed().as_secs_f64(),
        mnist.training.len(),
        mnist.validation.len(),
        mnist.test.len()
    );

    match config.network.precision {
        Precision::F64 => train_in(args, config, mnist),
        Precision::F32 => train_in::<f32>(args, config, mnist.cast()),
    }
}

/// Trains in precision `F` on `mnist`, as `args` and the checked `config` say.
fn train_in<F: Real>(
    args: &TrainArgs,
    mut config: TrainConfig,
    mnist: Mnist<F>,
) -> Result<(), Failure> {
    let usage = |e: nndl::config::ConfigError| Failure::Usage(e.to_string());
    let training = match args.train_size {
        Some(0) => return Err(Failure::Usage("--train-size must be at least 1".into())),
        Some(n) if n > mnist.training.len() => {
            return Err(Failure::Usage(format!(
                "--train-size {n} is more than the {} training images",
                mnist.training.len()
            )))
        }
        Some(n) => mnist.training.head(n),
        None => mnist.training,
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut net = match &args.init {
        Some(path) => {
            let net: nndl::network::Network<F> = checkpoint::load(path)?;
            let saved = (net.cost, net.activation);
            let asked = (config.network.cost, config.network.activation);
            if saved != asked {
                return Err(Failure::Usage(format!(
                    "{} was saved with the {} cost and {} hidden layers, but this run trains \
                     with the {} cost and {} hidden layers (see --cost and --activation)",
                    path.display(),
                    saved.0.name(),
                    saved.1.name(),
                    asked.0.name(),
                    asked.1.name()
                )));
            }
            config.network.sizes = net.sizes.clone();
            net
        }
        None => build_network(&config, &mut rng),
    };
    config
        .check_data(training.inputs(), CLASSES, training.len())
        .map_err(usage)?;
    if let Some(path) = &args.save_init {
        checkpoint::save(&net, Some(&config), path)?;
    }

    let metrics = match &args.metrics {
        Some(path) => Some(MetricsWriter::create(path).map_err(|e| match e {
            MetricsError::Format(_) => Failure::Usage(e.to_string()),
            other => Failure::Other(other.into()),
        })?),
        None => None,
    };
    let evaluation = args.eval_on.pick(mnist.validation, mnist.test);
    let mut console = Console::new(args.quiet, metrics, args.dump_order.is_some());
    let result = sgd_observed(
        &mut net,
        &config.sgd,
        &training,
        &evaluation,
        &mut rng,
        &mut console,
    );
    let orders = console.finish()?;
    if let Some(path) = &args.dump_order {
        let json = serde_json::to_string(&orders).map_err(anyhow::Error::from)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let history = match result {
        Ok(history) => history,
        Err(TrainError::Config(e)) => return Err(usage(e)),
        Err(e) => return Err(Failure::Other(e.into())),
    };
    if let Some(path) = &args.save {
        checkpoint::save(&net, Some(&config), path)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{} {:?}, η = {}, λ = {}, {} training images, evaluated on {}",
            args.net.name(),
            config.network.sizes,
            config.sgd.eta,
            config.sgd.lambda,
            training.len(),
            args.eval_on.name()
        );
        let run = plot::Run {
            label: args.net.name().to_string(),
            rows: history.epochs.iter().map(metrics::Row::from).collect(),
        };
        plot::plot(&[run], &title, path)?;
    }
    match history.stop {
        Stop::Completed => {}
        Stop::NoImprovement { patience } => say!(
            "Stopped early: no improvement on the {} data in {patience} epochs; \
             the network is the best epoch's",
            args.eval_on.name()
        ),
        Stop::EtaFloor { eta } => say!(
            "Stopped: the schedule halved eta to {eta} (1/{} of its start)",
            (config.sgd.eta / eta).round()
        ),
    }
    if let (Some(last), Some(best)) = (history.epochs.last(), history.best()) {
        say!(
            "Training took {:.2} seconds; best epoch {} with {:.2}%",
            last.elapsed,
            best.epoch,
            best.accuracy()
        );
    }
    Ok(())
}

fn run_predict(args: &PredictArgs) -> Result<(), Failure> {
    let net: nndl::network::Network = checkpoint::load(&args.model)?;
    nndl::config::check_sizes_against(&net.sizes, nndl::data::IMAGE_PIXELS, CLASSES)
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.model.display())))?;
    for path in &args.images {
        let x = nndl::predict::read_digit(path)?;
        let a = net.feedforward(x.view());
        let digit = nndl::network::argmax(a.iter().copied());
        let activations: Vec<String> = a.iter().map(|v| format!("{v:.3}")).collect();
        say!(
            "{}: {digit}   (output activations 0–9: {})",
            path.display(),
            activations.join(" ")
        );
    }
    Ok(())
}

fn run_plot(args: &PlotArgs) -> Result<(), Failure> {
    let mut runs = Vec::with_capacity(args.runs.len());
    for path in &args.runs {
        let label = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        runs.push(plot::Run {
            label,
            rows: plot::read_metrics(path)?,
        });
    }
    let title = args.title.clone().unwrap_or_else(|| {
        let names: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
        names.join(" vs ")
    });
    plot::plot(&runs, &title, &args.output).map_err(|e| match e {
        plot::PlotError::Format(_) | plot::PlotError::Empty(_) => Failure::Usage(e.to_string()),
        other => Failure::Other(other.into()),
    })?;
    say!("Wrote {}", args.output.display());
    Ok(())
}

fn run_eval(args: &EvalArgs) -> Result<(), Failure> {
    let (net, config): (nndl::network::Network, _) = checkpoint::load_with_config(&args.model)?;
    let mnist = load_mnist(&args.data)
        .with_context(|| "cannot load the MNIST data (use --data to point at mnist.pkl.gz)")?;
    let data = args.on.pick(mnist.validation, mnist.test);
    nndl::config::check_sizes_against(&net.sizes, data.inputs(), CLASSES)
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.model.display())))?;
    say!(
        "{}: sizes {:?}, {} hidden layers, {} output layer, {} cost",
        args.model.display(),
        net.sizes,
        net.activation.name(),
        net.output().name(),
        net.cost.name()
    );
    let lambda = args
        .lambda
        .or(config.as_ref().map(|c| c.sgd.lambda))
        .unwrap_or(0.0);
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(Failure::Usage(
            nndl::config::ConfigError::Lambda(lambda).to_string(),
        ));
    }
    if let Some(c) = config {
        let sgd = &c.sgd;
        say!(
            "Trained with eta {}, lambda {}, dropout {}, mini-batch {}, up to {} epochs, seed {}, {}",
            sgd.eta,
            sgd.lambda,
            sgd.dropout,
            sgd.mini_batch_size,
            sgd.epochs,
            c.seed,
            c.network.precision.name()
        );
    }
    let correct = net.evaluate(&data);
    say!(
        "Accuracy on the {} data: {correct} / {} ({:.2}%)",
        args.on.name(),
        data.len(),
        100.0 * correct as f64 / data.len() as f64
    );
    say!(
        "Cost on the {} data (lambda {lambda}): {:.6}",
        args.on.name(),
        net.total_cost(&data, lambda)
    );
    Ok(())
}

fn run_bench(args: &BenchArgs) -> Result<(), Failure> {
    if args.epochs == 0 {
        return Err(Failure::Usage("epochs must be at least 1".into()));
    }
    nndl::backend::set_threads(args.threads);
    say!("Backend: {}", nndl::backend::describe());
    let peak = |p: Precision| bench::fma_peak(p == Precision::F32);
    let (peak64, peak32) = (peak(Precision::F64), peak(Precision::F32));
    say!(
        "Peak of one core ({}): {peak64:.1} GFLOP/s in f64, {peak32:.1} GFLOP/s in f32",
        bench::fma_kind()
    );
    let mnist = load_mnist(&args.data)
        .with_context(|| "cannot load the MNIST data (use --data to point at mnist.pkl.gz)")?;
    let mnist32 = mnist.cast::<f32>();
    let images = mnist.training.images();
    let nonzero = images.iter().filter(|&&p| p != 0.0).count();
    say!(
        "{} epochs of each; training {} images ({:.1}% of their pixels not 0), evaluating {}; \
         times are medians over epochs\n",
        args.epochs,
        mnist.training.len(),
        100.0 * nonzero as f64 / images.len() as f64,
        mnist.test.len()
    );
    say!("| program | precision | train s/epoch | train GFLOP/s | % of peak | eval s/epoch | epoch incl. eval (s) | GFLOP/s incl. eval | % of peak |");
    say!("|---|---|---|---|---|---|---|---|---|");
    for &net in &args.nets {
        for &precision in &args.precisions {
            let mut config = TrainConfig::seed_run(net);
            config.sgd.epochs = args.epochs;
            config.network.precision = precision;
            let (history, peak) = match precision {
                Precision::F64 => (
                    train(&config, &mnist.training, &mnist.test, |_, _| {})?.1,
                    peak64,
                ),
                Precision::F32 => (
                    train(&config, &mnist32.training, &mnist32.test, |_, _| {})?.1,
                    peak32,
                ),
            };
            let sizes = &config.network.sizes;
            let (n_train, n_eval) = (mnist.training.len(), mnist.test.len());
            let Some(r) = bench::EpochRate::of(&history, sizes, n_train, n_eval) else {
                continue;
            };
            say!(
                "| {} | {} | {:.3} | {:.1} | {:.0}% | {:.3} | {:.3} | {:.1} | {:.0}% |",
                net.name(),
                precision.name(),
                r.train_seconds,
                r.train_gflops(),
                100.0 * r.train_gflops() / peak,
                r.eval_seconds,
                r.epoch_seconds(),
                r.epoch_gflops(),
                100.0 * r.epoch_gflops() / peak
            );
        }
    }
    say!("\nFLOPs per epoch are the dense algorithm's (see nndl::bench); network1 skips the zero pixels, so it does fewer than it is credited with.");
    Ok(())
}
