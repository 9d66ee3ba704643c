//! `nndl train`: one training run from a request to its files. Everything the command line
//! can ask of a run is a field of [`TrainRequest`]; [`TrainRequest::check`] applies every rule
//! that does not need the data, and those that need only the number of training images when
//! the data's headers tell it (before anything is loaded), and returns a [`CheckedTrain`],
//! which [`train`] runs: it loads the data, builds or loads the network, trains it in the
//! precision asked for while printing the book's epoch lines, and writes the model, metrics,
//! plot and shuffle orders asked for. A failure to write one output does not stop the others.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::{
    check_init, check_sizes_against, check_threads, check_train_size, Architecture, CheckedConfig,
    ConfigError, NetworkConfig, TrainConfig, Variant,
};
use crate::data::{Dataset, Mnist, CLASSES, IMAGE_PIXELS};
use crate::model::activation::Activation;
use crate::model::file::{self, SavedModel};
use crate::model::layers::LayerSpec;
use crate::real::Real;
use crate::report::console::{count, say, Console};
use crate::report::metrics::{self, MetricsWriter};
use crate::report::plot;
use crate::report::tensorboard::TensorBoard;
use crate::rng::SeededRng;
use crate::train::{sgd, Both, History, Stop};

use super::{
    check_output, check_output_dir, in_precision, memory_total, saved_architecture, training_count,
    with_model, EvalSet, InPrecision, RunError, RunModel, WithModel,
};

/// Files a run writes, each only if asked for.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// The network before training (network2.py's JSON).
    pub save_init: Option<PathBuf>,
    /// The trained network (the best epoch's under early stopping).
    pub save: Option<PathBuf>,
    /// Every epoch's measurements, `.csv` or `.jsonl`.
    pub metrics: Option<PathBuf>,
    /// Accuracy and cost against epoch, `.png` or `.svg`.
    pub plot: Option<PathBuf>,
    /// Every epoch's shuffled order of training examples (JSON).
    pub dump_order: Option<PathBuf>,
    /// A directory for TensorBoard's event file, written as the run goes.
    pub tensorboard: Option<PathBuf>,
}

/// Everything `nndl train` can be asked, unchecked.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    /// Which of the book's programs this is (for the printed name; its defaults are already in
    /// `config`).
    pub program: Variant,
    pub config: TrainConfig,
    /// The MNIST pickle, or a directory of IDX files.
    pub data: PathBuf,
    /// Validation images taken from the end of the training images (default: the data's own
    /// split, 10,000 for MNIST).
    pub validation_size: Option<usize>,
    /// Train on the first N training images only.
    pub train_size: Option<usize>,
    /// The set scored after every epoch.
    pub eval_on: EvalSet,
    /// Threads that share each mini-batch and score the network (see
    /// [`CheckedConfig::with_threads`]).
    pub threads: usize,
    /// Start from this saved network instead of random weights.
    pub init: Option<PathBuf>,
    /// The command line named the network (`--sizes`, `--layers`): `init` must hold that
    /// network. Otherwise the saved network is the network.
    pub network_given: bool,
    /// Print only the summary, no line per epoch.
    pub quiet: bool,
    /// Measure chapter 5's speed of learning of each hidden layer over the first N training
    /// images (all of them if fewer), before training and after every epoch.
    pub learning_speed: Option<usize>,
    pub outputs: Outputs,
}

/// A [`TrainRequest`] whose every data-free rule holds, with its starting network if it
/// names one.
#[derive(Debug)]
pub struct CheckedTrain {
    request: TrainRequest,
    config: CheckedConfig,
    init: Option<SavedModel>,
}

impl TrainRequest {
    /// Checks every rule that does not need the training data: the configuration, the thread
    /// count and `--train-size`, the network's sizes against MNIST's 784 pixels and 10 classes,
    /// the starting network (read here, a small file) against the run's cost and activation,
    /// that training fits in memory, and that every output file's format is known and its
    /// directory takes it — so that a long run cannot end unable to write what it was for.
    /// Where the data's headers tell the number of training images ([`training_count`]),
    /// `--train-size` and the mini-batch are checked against it too; otherwise after loading.
    pub fn check(mut self) -> Result<CheckedTrain, RunError> {
        check_threads(self.threads)?;
        if let Some(n) = self.train_size {
            check_train_size(n, None)?;
        }
        let init = match &self.init {
            Some(path) => {
                let (saved, _) = file::load_model(path)?;
                let network = &mut self.config.network;
                if let (SavedModel::FullyConnected(net), Architecture::FullyConnected(fc)) =
                    (&saved, &network.architecture)
                {
                    check_init(path, (net.cost, net.activation), (fc.cost, fc.activation))?;
                }
                // The saved network is the network: its sizes or layers replace the run's,
                // unless the command line named another (a conflict), or the run was set up
                // for the other kind of network (its η and λ are that kind's).
                let from_file = saved_architecture(&saved, &network.architecture);
                let kind_differs = matches!(
                    (&from_file, &network.architecture),
                    (Architecture::Layers(_), Architecture::FullyConnected(_))
                        | (Architecture::FullyConnected(_), Architecture::Layers(_))
                );
                let file_net = NetworkConfig {
                    architecture: from_file,
                    precision: network.precision,
                };
                if (self.network_given || kind_differs)
                    && file_net.architecture != network.architecture
                {
                    return Err(ConfigError::InitNetwork {
                        path: path.clone(),
                        saved: file_net.describe(),
                        run: network.describe(),
                    }
                    .into());
                }
                network.architecture = file_net.architecture;
                Some(saved)
            }
            None => None,
        };
        let config = self.config.check()?.with_threads(self.threads);
        let memory = memory_total().unwrap_or(u128::MAX);
        if let Some(fc) = config.network.fully_connected() {
            check_sizes_against(&fc.sizes, IMAGE_PIXELS, CLASSES)?;
        }
        config
            .network
            .check_memory(config.sgd.mini_batch_size, self.threads, memory)?;
        // The training images, where the data's headers tell their number: --train-size and
        // the mini-batch are checked against it here rather than after a long load.
        let available = training_count(&self.data, self.validation_size);
        if let Some(n) = self.train_size {
            check_train_size(n, available)?;
        }
        if let Some(n) = self.train_size.or(available) {
            config.check_data((IMAGE_PIXELS, CLASSES), IMAGE_PIXELS, CLASSES, n)?;
        }
        if let Some(path) = &self.outputs.metrics {
            metrics::check_format(path)?;
        }
        if let Some(path) = &self.outputs.plot {
            plot::check_format(path)?;
        }
        let outputs = &self.outputs;
        for path in [
            &outputs.save_init,
            &outputs.save,
            &outputs.metrics,
            &outputs.plot,
            &outputs.dump_order,
        ]
        .into_iter()
        .flatten()
        {
            check_output(path)?;
        }
        if let Some(dir) = &self.outputs.tensorboard {
            check_output_dir(dir)?;
        }
        Ok(CheckedTrain {
            request: self,
            config,
            init,
        })
    }
}

impl CheckedTrain {
    pub fn request(&self) -> &TrainRequest {
        &self.request
    }

    pub fn config(&self) -> &CheckedConfig {
        &self.config
    }
}

/// Runs a checked request: prints the run's settings, loads the data, trains, writes the
/// outputs and prints the summary. Setting `stop` (from a Ctrl-C handler) ends training after
/// the current mini-batch; the files are then written as for a finished run.
pub fn train(run: &CheckedTrain, stop: Option<Arc<AtomicBool>>) -> Result<History, RunError> {
    let (request, config) = (&run.request, &run.config);
    print_settings(request, config);
    crate::backend::start_threads(request.threads)?;
    say(&format!("Backend: {}", crate::backend::describe()));

    in_precision(
        config.network.precision,
        &request.data,
        request.validation_size,
        Job { run, stop },
    )?
}

/// The settings line(s) the run starts with.
fn print_settings(request: &TrainRequest, config: &TrainConfig) {
    let (network, sgd) = (&config.network, &config.sgd);
    let net = match &network.architecture {
        Architecture::Layers(_) => network.describe(),
        Architecture::FullyConnected(_) => {
            format!("{}: {}", request.program.name(), network.describe())
        }
    };
    say(&format!(
        "{net}, eta {}, lambda {}, {}, mini-batch {}, seed {}, {}",
        sgd.eta,
        sgd.lambda,
        count(sgd.epochs as u64, "epoch"),
        sgd.mini_batch_size,
        config.seed,
        network.precision.name()
    ));
    let Some(fc) = network.fully_connected() else {
        return;
    };
    if fc.cost != request.program.cost() || fc.activation != Activation::Sigmoid {
        say(&format!(
            "  {} hidden layers, {} output layer, {} cost",
            fc.activation.name(),
            fc.cost.output().name(),
            fc.cost.name()
        ));
    }
    if fc.init != request.program.init() {
        say(&format!(
            "  {} initial weights: {} (network2.py's {})",
            fc.init.name(),
            fc.init.weight_distribution(),
            fc.init.book_name()
        ));
    }
    if sgd.dropout > 0.0 {
        say(&format!("  dropout {} on the hidden layers", sgd.dropout));
    }
}

/// The run's name in a plot: `network3 [784, 30, 10]`, or the layer list.
fn plot_name(request: &TrainRequest, config: &TrainConfig) -> String {
    match &config.network.architecture {
        Architecture::FullyConnected(fc) => format!("{} {:?}", request.program.name(), fc.sizes),
        Architecture::Layers(layers) => crate::model::layers::spec::text(layers),
    }
}

/// The training run in one precision.
struct Job<'a> {
    run: &'a CheckedTrain,
    stop: Option<Arc<AtomicBool>>,
}

impl InPrecision for Job<'_> {
    type Output = Result<History, RunError>;

    fn run<F: Real>(self, mnist: Mnist<F>) -> Result<History, RunError> {
        let (request, config) = (&self.run.request, &self.run.config);
        let (training, evaluation) = request.eval_on.pick(mnist)?;
        let training = match request.train_size {
            Some(n) => {
                check_train_size(n, Some(training.len()))?;
                training.head(n)
            }
            None => training,
        };
        let init = self.run.init.as_ref();
        with_model(
            config,
            init,
            Fit {
                job: self,
                training: &training,
                evaluation: &evaluation,
            },
        )
    }
}

/// The training of a run's network and the writing of its outputs.
struct Fit<'a, F: Real> {
    job: Job<'a>,
    training: &'a Dataset<F>,
    evaluation: &'a Dataset<F>,
}

impl<F: Real> WithModel<F> for Fit<'_, F> {
    type Value = History;

    /// Trains `net` (freshly drawn by `rng`, or loaded) and writes the outputs.
    fn run<M: RunModel<F>>(self, mut net: M, mut rng: SeededRng) -> Result<History, RunError> {
        let (training, evaluation) = (self.training, self.evaluation);
        let (request, config) = (&self.job.run.request, &self.job.run.config);
        config.check_data(net.shape(), training.inputs(), CLASSES, training.len())?;
        let outputs = &request.outputs;
        // The files written, said after the summary.
        let mut written = Vec::new();
        if let Some(path) = &outputs.save_init {
            net.save(Some(config), path)?;
            written.push(path);
        }
        let metrics = match &outputs.metrics {
            Some(path) => Some(MetricsWriter::create(path)?),
            None => None,
        };
        let mut console = Console::new(request.quiet, metrics, outputs.dump_order.is_some());
        if let Some(flag) = self.job.stop {
            console = console.stop_on(flag);
        }
        if let Some(n) = request.learning_speed {
            console = console.monitor_learning_speed(n);
        }
        let mut tensorboard = match &outputs.tensorboard {
            Some(dir) => Some(open_tensorboard(dir, request.eval_on.name(), dir)?),
            None => None,
        };
        let result = match &mut tensorboard {
            Some(events) => sgd(
                &mut net,
                config,
                training,
                evaluation,
                &mut rng,
                &mut Both(&mut console, events),
            ),
            None => sgd(
                &mut net,
                config,
                training,
                evaluation,
                &mut rng,
                &mut console,
            ),
        };

        // Write every output asked for, even when another fails; report the failures together.
        let mut failures = Vec::new();
        let orders = console.finish();
        if let Some(path) = &outputs.dump_order {
            match orders {
                Ok(orders) => match write_json(path, &orders) {
                    Ok(()) => written.push(path),
                    Err(e) => failures.push(e),
                },
                Err(e) => failures.push(e.into()),
            }
        } else if let Err(e) = orders {
            failures.push(e.into());
        }
        if let Some(Err(e)) = tensorboard.map(TensorBoard::finish) {
            failures.push(e.into());
        }
        let history = result?;
        let trained = !history.epochs.is_empty();
        if let (Some(path), true) = (&outputs.metrics, trained) {
            written.push(path);
        }
        if let Some(path) = &outputs.save {
            if trained {
                match net.save(Some(config), path) {
                    Ok(()) => written.push(path),
                    Err(e) => failures.push(e.into()),
                }
            } else {
                say(&format!(
                    "Not writing {}: no epoch finished",
                    path.display()
                ));
            }
        }
        if let (Some(path), true) = (&outputs.plot, trained) {
            let title = format!(
                "{}, η = {}, λ = {}, {} training images, evaluated on {}",
                plot_name(request, config),
                config.sgd.eta,
                config.sgd.lambda,
                training.len(),
                request.eval_on.name()
            );
            let run = plot::Run {
                label: match config.network.fully_connected() {
                    Some(_) => request.program.name().to_string(),
                    None => "layers".to_string(),
                },
                rows: history.epochs.iter().map(metrics::Row::from).collect(),
                scored: request.eval_on.name(),
            };
            match plot::plot(&[run], &title, path) {
                Ok(()) => written.push(path),
                Err(e) => failures.push(e.into()),
            }
        }
        print_summary(request, config, &history, training.len());
        for path in written {
            say(&format!("Wrote {}", path.display()));
        }
        if failures.is_empty() {
            Ok(history)
        } else {
            Err(RunError::Outputs(failures))
        }
    }
}

/// A new TensorBoard event file in `dir` for a run scored on the `set` data, and a line saying
/// how to watch it in TensorBoard, from `logdir` (`dir` or a directory above it).
pub fn open_tensorboard(
    dir: &std::path::Path,
    set: &'static str,
    logdir: &std::path::Path,
) -> Result<TensorBoard, RunError> {
    let events = TensorBoard::create(dir, set)?;
    say(&format!(
        "TensorBoard events: {} (watch with `tensorboard --logdir {}`)",
        events.path().display(),
        logdir.display()
    ));
    Ok(events)
}

/// Ends a run's event file where the run has other results to give (`nndl book`, a trial of
/// `nndl tune`): a failure to write it is said on standard error and costs nothing else.
pub fn finish_tensorboard(events: TensorBoard) {
    if let Err(e) = events.finish() {
        eprintln!("warning: {} (the run went on without it)", super::chain(&e));
    }
}

/// Writes `value` as JSON to `path`, atomically (an earlier file survives a failed write).
fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), RunError> {
    crate::output::write_atomically(path, |out| {
        serde_json::to_writer(out, value).map_err(Into::into)
    })
    .map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// How the run ended, and its best epoch.
fn print_summary(request: &TrainRequest, config: &TrainConfig, history: &History, images: usize) {
    let eval = request.eval_on.name();
    match history.stop {
        Stop::Completed => {}
        Stop::NoImprovement { patience } => say(&format!(
            "Stopped early: no improvement on the {eval} data in {patience} epochs; \
             the network is the best epoch's"
        )),
        Stop::EtaFloor { eta } => say(&format!(
            "Stopped: the schedule halved eta to {eta} (1/{} of its start)",
            (config.sgd.eta / eta).round()
        )),
        Stop::Observer { epoch } => say(&format!("Stopped after epoch {epoch}")),
        Stop::Interrupted { epoch, done, total } => {
            let kept = match (config.sgd.early_stop, history.epochs.last()) {
                (_, None) => "no epoch was scored".to_string(),
                (Some(_), Some(_)) => "the network is the best epoch's".to_string(),
                (None, Some(last)) => format!("the network is epoch {}'s", last.epoch),
            };
            say(&format!(
                "Interrupted in epoch {epoch} after {done} of {total} mini-batches; {kept}"
            ));
        }
    }
    if let (Some(last), Some(best)) = (history.epochs.last(), history.best()) {
        say(&format!(
            "Training took {:.2} seconds; best epoch {} with {:.2}%",
            last.elapsed,
            best.epoch,
            best.accuracy()
        ));
        if best.total >= 100 && best.accuracy() < SATURATED_BELOW {
            let seen = images.saturating_mul(history.epochs.len());
            say(&not_learned(config, best.accuracy(), seen));
        }
    }
}

/// What a run whose best accuracy is below [`SATURATED_BELOW`] is told, after training on
/// `seen` images in all (epochs × training images).
///
/// - A layer list with a sigmoid convolutional layer, at η no larger than the book's for
///   chapter 6's sigmoid networks ([`crate::config::CH6_SIGMOID_ETA`]), that has seen fewer than
///   [`SLOW_START_IMAGES`]: such networks sit at chance for their first thousands of images
///   before they learn, so it is told to train longer — not to lower η, which only makes the
///   start slower.
/// - Otherwise: sigmoid neurons driven far into saturation stop learning without any NaN (the
///   network then names one digit for every image, about one in ten right); it is told to try
///   a smaller η.
fn not_learned(config: &TrainConfig, accuracy: f64, seen: usize) -> String {
    let eta = config.sgd.eta;
    let sigmoid_conv = config.network.layers().is_some_and(|layers| {
        layers
            .iter()
            .any(|l| matches!(l, LayerSpec::ConvPool(c) if c.activation == Activation::Sigmoid))
    });
    let start = format!(
        "The network has not learned: its best accuracy, {accuracy:.2}%, is what naming one \
         digit for every image gets."
    );
    if sigmoid_conv && eta <= crate::config::CH6_SIGMOID_ETA && seen < SLOW_START_IMAGES {
        format!(
            "{start} Sigmoid convolutional layers at eta {eta} learn slowly at first: the \
             book's (chapter 6, eta {}) stay at chance for thousands of images before they \
             learn, and this run trained on {seen} in all. Train longer (more --epochs, or \
             a larger --train-size), not with a smaller eta, which only makes the start \
             slower",
            crate::config::CH6_SIGMOID_ETA
        )
    } else {
        format!(
            "{start} Its neurons have probably saturated; try a smaller eta (this run's is \
             {eta})"
        )
    }
}

/// Training images (epochs × images per epoch) that the book's sigmoid convolutional networks
/// need before they leave chance at η = 0.1: measured with the two conv-pool layers of
/// `ch6-two-conv`, which were still at chance after one epoch of 16,000 images and at 65%
/// after one of 30,000 — one epoch of the book's 50,000 training images is past it.
pub const SLOW_START_IMAGES: usize = 50_000;

/// Accuracy (%) below which a run has learned nothing: a little above one in ten classes.
const SATURATED_BELOW: f64 = 15.0;

#[cfg(test)]
mod tests {
    use super::*;

    /// Which advice follows which condition: a sigmoid conv layer, η at most the book's, and
    /// fewer images seen than [`SLOW_START_IMAGES`] — all three — get "train longer".
    #[test]
    fn a_slow_start_is_told_apart_from_saturation() {
        let config = |layers: &str, activation, eta| {
            let mut c = TrainConfig::book_run(crate::config::Variant::Network3);
            c.network.architecture = crate::config::Architecture::Layers(
                crate::model::layers::spec::parse(layers, activation, 0.0).unwrap(),
            );
            c.sgd.eta = eta;
            c
        };
        let conv = "conv:20:5,pool:2,fc:100,softmax";
        let slow = |c: &TrainConfig, seen| not_learned(c, 10.0, seen).contains("Train longer");
        let sigmoid = config(conv, Activation::Sigmoid, 0.1);
        assert!(slow(&sigmoid, 1000));
        assert!(slow(&sigmoid, SLOW_START_IMAGES - 1));
        assert!(!slow(&sigmoid, SLOW_START_IMAGES));
        assert!(slow(&config(conv, Activation::Sigmoid, 0.01), 1000));
        assert!(!slow(&config(conv, Activation::Sigmoid, 0.11), 1000));
        assert!(!slow(&config(conv, Activation::Relu, 0.03), 1000));
        assert!(!slow(
            &config("fc:100,softmax", Activation::Sigmoid, 0.1),
            1000
        ));
        let saturated = not_learned(&config(conv, Activation::Sigmoid, 0.5), 10.0, 1000);
        assert!(saturated.ends_with("try a smaller eta (this run's is 0.5)"));
    }
}
