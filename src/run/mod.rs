//! What each `nndl` command does, as library functions over checked requests: [`train`] (the
//! one entry point that trains, used by the command line and by anything that drives runs
//! from code), [`eval`] and [`predict`] for saved networks, [`bench`] for timing,
//! [`plot`] for metrics files, [`tune_report`] for showing, exporting and drawing a
//! hyperparameter study, and [`expand`] for chapter 6's expanded training set. `main.rs` only
//! maps its arguments onto these requests.
//!
//! Each function prints what the book's programs print through [`crate::report::console`]
//! and returns a [`RunError`], which says whether the arguments were at fault
//! ([`RunError::is_usage`]) so that the command line can exit with code 2.

pub mod bench;
pub mod book;
pub mod book_record;
pub mod eval;
pub mod expand;
pub mod export;
pub mod figure;
pub mod inspect;
pub mod train;
pub mod tune;
pub mod tune_report;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{Architecture, CheckedConfig, ConfigError, FullyConnected, Precision, Variant};
use crate::data::dataset::check_validation_size;
use crate::data::expand::ExpandError;
use crate::data::image::ImageError;
use crate::data::pickle_writer::PickleWriteError;
use crate::data::{idx, mnist, DataError, Dataset, Mnist, CLASSES, IMAGE_SHAPE};
use crate::model::file::{ModelError, SaveModel, SavedModel};
use crate::model::layers::LayerNetwork;
use crate::model::network::Network;
use crate::real::Real;
use crate::report::metrics::MetricsError;
use crate::report::plot::{self, PlotError};
use crate::report::study::ExportError;
use crate::rng::SeededRng;
use crate::train::TrainError;
use crate::train::{build_network, Model};
use crate::tune::store::StoreError;

/// The MNIST pickle the commands read unless told otherwise (`--data`).
pub const DEFAULT_DATA: &str = "data/mnist.pkl.gz";

/// `--data` when it is not given: [`DEFAULT_DATA`] under the current directory if it is there,
/// else under the repository nndl was built from (so that an installed `nndl`, from
/// `cargo install --path .`, finds the book's data from any directory), else
/// [`DEFAULT_DATA`], which loading then reports as missing.
pub fn default_data() -> PathBuf {
    let here = PathBuf::from(DEFAULT_DATA);
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_DATA);
    match (here.exists(), built_from.exists()) {
        (false, true) => built_from,
        _ => here,
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration breaks a rule (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Book(#[from] book::BookError),
    #[error(transparent)]
    Figure(#[from] figure::FigureError),
    #[error(
        "cannot load the MNIST data (use --data to point at mnist.pkl.gz or a directory of \
         IDX files)"
    )]
    Data(#[source] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Threads(#[from] crate::backend::ThreadsError),
    #[error(transparent)]
    Expand(#[from] ExpandError),
    #[error(transparent)]
    PickleWrite(#[from] PickleWriteError),
    /// The set a run scores holds no images (exit code 2): its accuracy would be 0/0.
    #[error(
        "the {set} set holds no images, so there is nothing to score it on (give another \
         --validation-size, or data with {set} images)"
    )]
    EmptySet { set: &'static str },
    /// A saved network does not fit the data or this run (exit code 2).
    #[error("{path}: {source}")]
    ModelMismatch { path: PathBuf, source: ConfigError },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    TensorBoard(#[from] crate::report::tensorboard::TensorBoardError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A deletion the user did not confirm (exit code 2).
    #[error("not deleting {0}: confirm on a terminal or pass --yes")]
    NotConfirmed(String),
    /// A model `nndl export` cannot read: missing, unreadable or not a model (exit code 2).
    #[error(transparent)]
    ExportInput(ModelError),
    /// No study database at this path (exit code 2).
    #[error("there is no study database at {}", .0.display())]
    NoStore(PathBuf),
    /// The store has no study of that name (exit code 2).
    #[error(
        "{storage} has no study {name:?}; {}",
        if known.is_empty() { "it holds none".to_string() } else { format!("its studies are {}", known.join(", ")) }
    )]
    NoStudy {
        name: String,
        storage: String,
        known: Vec<String>,
    },
    #[error(transparent)]
    Train(TrainError),
    /// An output file that cannot be written, found before the run starts (exit code 2).
    #[error("cannot write {path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tune(#[from] crate::tune::TuneError),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a worker stopped unexpectedly")]
    WorkerPanicked,
    /// Training finished, but some of its outputs could not be written; the others were.
    #[error("{}", .0.iter().map(|e| chain(e)).collect::<Vec<_>>().join("; "))]
    Outputs(Vec<RunError>),
}

/// An error and its sources on one line, `a: b: c`, as the command line prints errors.
fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}

impl From<TrainError> for RunError {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Config(c) => RunError::Config(c),
            other => RunError::Train(other),
        }
    }
}

impl RunError {
    /// True when the arguments were at fault, not the files or the run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RunError::Config(_)
                | RunError::Book(_)
                | RunError::Figure(_)
                | RunError::ModelMismatch { .. }
                | RunError::EmptySet { .. }
                | RunError::Output { .. }
                | RunError::Metrics(MetricsError::Format(_))
                | RunError::Plot(PlotError::Format(_) | PlotError::Empty(_))
                | RunError::Tune(_)
                | RunError::Store(
                    StoreError::SpecDiffers { .. } | StoreError::Url(_) | StoreError::InMemory(_),
                )
                | RunError::Export(ExportError::Format(_))
                | RunError::NoStore(_)
                | RunError::NotConfirmed(_)
                | RunError::NoStudy { .. }
                | RunError::ExportInput(_)
        )
    }
}

/// Which set of `mnist.pkl.gz` to score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvalSet {
    Validation,
    Test,
}

impl EvalSet {
    /// The training set and this set of `mnist`, refused if this set is empty.
    pub fn pick<F: Real>(self, mnist: Mnist<F>) -> Result<(Dataset<F>, Dataset<F>), RunError> {
        let picked = match self {
            EvalSet::Validation => (mnist.training, mnist.validation),
            EvalSet::Test => (mnist.training, mnist.test),
        };
        match picked.1.len() {
            0 => Err(RunError::EmptySet { set: self.name() }),
            _ => Ok(picked),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EvalSet::Validation => "validation",
            EvalSet::Test => "test",
        }
    }
}

/// Loads the data at `path` (`--data`): a directory is read as MNIST's IDX files
/// ([`crate::data::idx`]), a file as the book's pickle ([`crate::data::mnist`]). A
/// `validation_size` (`--validation-size`) pools the training and validation images and takes
/// that many from their end, so the split is the same from either; without it the validation
/// set is the pickle's, or the last 10,000 IDX training images (the same images).
pub fn load_data(path: &Path, validation_size: Option<usize>) -> Result<Mnist, RunError> {
    load_data_as(path, validation_size)
}

/// [`load_data`] in precision `F`: the sets are made in `F` straight from the file's bytes.
pub fn load_data_as<F: Real>(
    path: &Path,
    validation_size: Option<usize>,
) -> Result<Mnist<F>, RunError> {
    if path.is_dir() {
        let validation = validation_size.unwrap_or(idx::DEFAULT_VALIDATION);
        let files = idx::IdxFiles::in_dir(path).map_err(RunError::Data)?;
        // A size the training images cannot give is the argument's fault, not the files'.
        let count = idx::image_count(&files.train_images).map_err(RunError::Data)?;
        check_validation_size(validation, count).map_err(ConfigError::from)?;
        return idx::load_idx_files_as(&files, validation).map_err(RunError::Data);
    }
    let mnist = mnist::load_mnist_as(path).map_err(RunError::Data)?;
    Ok(match validation_size {
        Some(n) => mnist.with_validation_size(n).map_err(ConfigError::from)?,
        None => mnist,
    })
}

/// The number of training images [`load_data`] would give for `path` and `validation_size`,
/// where the data's headers tell it without loading the data, so that a run can be checked
/// against it first. For a directory of IDX files, the training labels file's header (its first
/// 8 bytes) less the validation images; for a pickle, the shape of its training images
/// ([`mnist::training_count`]), when the validation set is the pickle's own.
///
/// `None` when it cannot be known so: files that cannot be read (loading names them), a
/// validation set that leaves no training images (loading refuses it once the images' header
/// has been checked too), a pickle whose first bytes do not tell, and a pickle with
/// `validation_size`, whose training images are its training and validation images less
/// `validation_size` — the validation images' number follows the training images' pixels, so
/// only loading the file tells it, and the rules that need it are checked after loading.
pub fn training_count(path: &Path, validation_size: Option<usize>) -> Option<usize> {
    if path.is_dir() {
        let files = idx::IdxFiles::in_dir(path).ok()?;
        let count = idx::label_count(&files.train_labels).ok()?;
        let validation = validation_size.unwrap_or(idx::DEFAULT_VALIDATION);
        return count.checked_sub(validation).filter(|&n| n > 0);
    }
    match validation_size {
        Some(_) => None,
        None => mnist::training_count(path),
    }
}

/// Checks, before a run, that `path` can be written: it is not a directory, its directory
/// exists, and a file can be made there (tried by creating and removing an empty file beside
/// it — permissions alone do not tell, for instance on a read-only file system or as root) or,
/// when `path` exists, opened for writing (without changing it). A full disk is only found
/// when writing.
pub fn check_output(path: &Path) -> Result<(), RunError> {
    let refuse = |reason: String| RunError::Output {
        path: path.to_path_buf(),
        reason,
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".to_string()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(refuse(format!(
            "the directory {} does not exist",
            dir.display()
        )));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| refuse(e.to_string()));
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let probe = dir.join(format!(".{name}.{}.probe", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| refuse(format!("cannot create a file in {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Checks, before a run, that files can be written in the directory `dir` (`--tensorboard`):
/// creates it and its parents if need be, and tries a file in it as [`check_output`] does.
pub fn check_output_dir(dir: &Path) -> Result<(), RunError> {
    let refuse = |reason: String| RunError::Output {
        path: dir.to_path_buf(),
        reason,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(refuse("it is not a directory".to_string()));
    }
    std::fs::create_dir_all(dir).map_err(|e| refuse(format!("cannot create it: {e}")))?;
    check_output(&dir.join("events.out.tfevents"))
}

pub use crate::data::memory_total;

/// What the commands need of a network of either kind: to train it ([`Model`]), to save it
/// as a model file ([`SaveModel`]) and to checkpoint it (serde).
pub trait RunModel<F: Real>: Model<F> + SaveModel + Serialize + DeserializeOwned {}

impl<F: Real, M: Model<F> + SaveModel + Serialize + DeserializeOwned> RunModel<F> for M {}

/// Work to do with the network a configuration describes, of whichever kind
/// ([`with_model`]).
pub trait WithModel<F: Real> {
    type Value;
    fn run<M: RunModel<F>>(self, model: M, rng: SeededRng) -> Result<Self::Value, RunError>;
}

/// Draws the network `config` describes — chapter 6's layers or a fully-connected network —
/// with the run's generator seeded from `config.seed`, puts `init`'s weights in its place when
/// given, and hands it and the generator to `task`. The weights are drawn even when `init`
/// replaces them, so that the shuffles that follow are the same: a run from its own
/// `--save-init` file repeats it exactly.
pub fn with_model<F: Real, T: WithModel<F>>(
    config: &CheckedConfig,
    init: Option<&SavedModel>,
    task: T,
) -> Result<T::Value, RunError> {
    let mut rng = crate::rng::seeded(config.seed);
    match &config.network.architecture {
        Architecture::Layers(layers) => {
            let mut net: LayerNetwork<F> =
                LayerNetwork::new(layers, IMAGE_SHAPE, CLASSES, &mut rng)
                    .map_err(ConfigError::from)?;
            if let Some(SavedModel::Layers(init)) = init {
                net = init.cast();
            }
            task.run(net, rng)
        }
        Architecture::FullyConnected(fc) => {
            let mut net: Network<F> = build_network(fc, &mut rng);
            if let Some(SavedModel::FullyConnected(init)) = init {
                net = init.cast();
            }
            task.run(net, rng)
        }
    }
}

/// The architecture of a saved network, as a run started from it (`--init`) trains it: its
/// sizes, activation and cost, or its layers. A fully-connected file does not say how its
/// weights were first drawn; `run`'s initialiser is kept (the program's own for a layer list).
pub fn saved_architecture(saved: &SavedModel, run: &Architecture) -> Architecture {
    match saved {
        SavedModel::FullyConnected(net) => Architecture::FullyConnected(FullyConnected {
            sizes: net.sizes.clone(),
            activation: net.activation,
            cost: net.cost,
            init: match run {
                Architecture::FullyConnected(fc) => fc.init,
                Architecture::Layers(_) => Variant::Network3.init(),
            },
        }),
        SavedModel::Layers(net) => Architecture::Layers(net.specs()),
    }
}

/// Work to do in the precision a run asks for ([`in_precision`]).
pub trait InPrecision {
    type Output;
    fn run<F: Real>(self, mnist: Mnist<F>) -> Self::Output;

    /// Called with the data once it is loaded (from `path`, in `seconds`), before
    /// [`InPrecision::run`]: says what was loaded. A task that refuses some data does so here.
    fn loaded<F: Real>(&self, path: &Path, seconds: f64, mnist: &Mnist<F>) -> Result<(), RunError> {
        crate::report::console::say(&format!(
            "Loaded {} in {seconds:.2} seconds ({} training, {} validation, {} test images)",
            path.display(),
            mnist.training.len(),
            mnist.validation.len(),
            mnist.test.len()
        ));
        Ok(())
    }
}

/// Loads the data at `path` ([`load_data`], with `validation_size`) in `precision` — each
/// pixel made straight in `f32` or `f64`, with no copy in the other — and runs `task` on it.
pub fn in_precision<T: InPrecision>(
    precision: Precision,
    path: &Path,
    validation_size: Option<usize>,
    task: T,
) -> Result<T::Output, RunError> {
    fn load_and_run<F: Real, T: InPrecision>(
        path: &Path,
        validation_size: Option<usize>,
        task: T,
    ) -> Result<T::Output, RunError> {
        let start = std::time::Instant::now();
        let mnist = load_data_as::<F>(path, validation_size)?;
        task.loaded(path, start.elapsed().as_secs_f64(), &mnist)?;
        Ok(task.run(mnist))
    }
    match precision {
        Precision::F64 => load_and_run::<f64, T>(path, validation_size, task),
        Precision::F32 => load_and_run::<f32, T>(path, validation_size, task),
    }
}

/// `nndl plot`: draws the metrics files `runs` side by side into `output`, titled `title` (or
/// the files' names).
pub fn plot(runs: &[PathBuf], title: Option<&str>, output: &Path) -> Result<(), RunError> {
    let labels = plot::labels(runs);
    let mut drawn = Vec::with_capacity(runs.len());
    for (path, label) in runs.iter().zip(labels) {
        drawn.push(plot::Run {
            label,
            rows: plot::read_metrics(path)?,
            scored: plot::UNNAMED_SET,
        });
    }
    let title = title.map(str::to_string).unwrap_or_else(|| {
        let names: Vec<&str> = drawn.iter().map(|r| r.label.as_str()).collect();
        names.join(" vs ")
    });
    plot::plot(&drawn, &title, output)?;
    crate::report::console::say(&format!("Wrote {}", output.display()));
    Ok(())
}
