//! Chapter 3's "How to choose a neural network's hyper-parameters?", automated: a *study*
//! searches a [`space`] of hyperparameters (η, λ, mini-batch size, hidden layers, …) for the
//! network with the best validation accuracy, one *trial* (one training run) at a time.
//!
//! As in Optuna, a study is data ([`study`]: its trials, their states and per-epoch values)
//! kept in a [`store`] (a SQLite file, or a PostgreSQL database shared by workers on many
//! machines), and the strategies are small types over that data: samplers propose the
//! next trial's parameters, pruners end unpromising trials early. The test set is never used
//! to choose.

pub mod hyper;
pub mod objective;
pub mod pruner;
pub mod sampler;
pub mod space;
pub mod store;
pub mod study;

use std::time::Duration;

/// The most workers (`--jobs`) one process runs. Each is a thread training its own trial, so
/// a count past the cores only adds memory; the cap turns a mistyped count into an error
/// instead of an attempt to start that many threads.
pub const MAX_JOBS: usize = 1024;

/// Why a tune request cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("the search space is empty: give at least one --param")]
    EmptySpace,
    #[error("--trials must be at least 1")]
    NoTrials,
    #[error("--jobs must be from 1 to {max}, got {0} (each job is a worker thread \
             holding a trial's network; more workers share a study from other processes)", max = MAX_JOBS)]
    Jobs(usize),
    #[error("{0} must be a number of seconds, got {1}")]
    Seconds(String, f64),
    #[error("--stale-after ({stale:?}) must be longer than --heartbeat ({heartbeat:?})")]
    Heartbeat {
        heartbeat: Duration,
        stale: Duration,
    },
    #[error(transparent)]
    Space(#[from] space::SpaceError),
    /// A trial at the end of a range could not be trained.
    #[error("--param {param}: a trial with {values} cannot be trained: {reason}")]
    Unfit {
        param: String,
        values: String,
        reason: String,
    },
    #[error(transparent)]
    Sampler(#[from] sampler::SampleError),
}
