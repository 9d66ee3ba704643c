//! What each `nndl` command does, as library functions over checked requests: [`train`] (the
//! one entry point that trains, used by the command line and by anything that drives runs
//! from code), [`eval`] and [`predict`] for saved networks, [`bench`] for timing,
//! [`plot`] for metrics files, and [`tune_report`] for showing, exporting and drawing a
//! hyperparameter study. `main.rs` only maps its arguments onto these requests.
//!
//! Each function prints what the book's programs print through [`crate::report::console`]
//! and returns a [`RunError`], which says whether the arguments were at fault
//! ([`RunError::is_usage`]) so that the command line can exit with code 2.

pub mod bench;
pub mod eval;
pub mod train;
pub mod tune_report;

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Precision};
use crate::data::image::ImageError;
use crate::data::{load_mnist, DataError, Dataset, Mnist};
use crate::model::file::ModelError;
use crate::real::Real;
use crate::report::metrics::MetricsError;
use crate::report::plot::{self, PlotError};
use crate::report::study::ExportError;
use crate::train::TrainError;
use crate::tune::store::StoreError;

/// The MNIST pickle the commands read unless told otherwise (`--data`).
pub const DEFAULT_DATA: &str = "data/mnist.pkl.gz";

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration breaks a rule (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot load the MNIST data (use --data to point at mnist.pkl.gz)")]
    Data(#[source] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A saved network does not fit the data or this run (exit code 2).
    #[error("{path}: {source}")]
    ModelMismatch { path: PathBuf, source: ConfigError },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
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
                | RunError::ModelMismatch { .. }
                | RunError::Metrics(MetricsError::Format(_))
                | RunError::Plot(PlotError::Format(_) | PlotError::Empty(_))
                | RunError::Export(ExportError::Format(_))
                | RunError::Store(StoreError::Url(_))
                | RunError::NoStore(_)
                | RunError::NoStudy { .. }
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
    pub fn pick<F: Real>(self, mnist: Mnist<F>) -> (Dataset<F>, Dataset<F>) {
        match self {
            EvalSet::Validation => (mnist.training, mnist.validation),
            EvalSet::Test => (mnist.training, mnist.test),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EvalSet::Validation => "validation",
            EvalSet::Test => "test",
        }
    }
}

/// Loads the MNIST pickle at `path`.
pub fn load_data(path: &Path) -> Result<Mnist, RunError> {
    load_mnist(path).map_err(RunError::Data)
}

/// Work to do in the precision a run asks for ([`in_precision`]).
pub trait InPrecision {
    type Output;
    fn run<F: Real>(self, mnist: Mnist<F>) -> Self::Output;
}

/// Runs `task` on `mnist` in `precision` (converting the images for `f32`).
pub fn in_precision<T: InPrecision>(precision: Precision, mnist: Mnist, task: T) -> T::Output {
    match precision {
        Precision::F64 => task.run(mnist),
        Precision::F32 => {
            let mnist32 = mnist.cast::<f32>();
            drop(mnist);
            task.run(mnist32)
        }
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
