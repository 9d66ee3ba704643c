//! A study as data: its definition ([`StudySpec`]) and its [`Trial`]s, each with its state and
//! the validation accuracy after every epoch it finished. Stores keep it; samplers, pruners,
//! the report and the plots only read it.

use serde::{Deserialize, Serialize};

use super::space::{Params, Space};

/// Where a trial is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// Proposed, not yet started by any worker.
    Waiting,
    /// A worker is training it (or was, until its heartbeat stopped).
    Running,
    /// Trained to its last epoch (or stopped early by its own early stopping).
    Complete,
    /// Ended early by a pruner; its per-epoch values are kept.
    Pruned,
    /// Diverged or failed otherwise (an error or a panic in its training, kept as its
    /// [`Trial::message`]); its per-epoch values are kept.
    Failed,
}

impl TrialState {
    /// True once the trial will not be trained any further.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TrialState::Complete | TrialState::Pruned | TrialState::Failed
        )
    }
}

/// One training run of a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0, 1, 2, … in the order the store created the trials.
    pub number: u32,
    pub params: Params,
    pub state: TrialState,
    /// Validation accuracy (%) after each finished epoch, epoch 0 first.
    pub values: Vec<f64>,
    /// The worker that runs or last ran it.
    pub worker: Option<String>,
    /// Seconds of training spent on it so far, over every worker that ran it.
    pub seconds: f64,
    /// Why a failed trial failed: the error or panic that ended its training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Trial {
    /// A trial as a store would hand it back, with no worker and no time spent yet.
    pub fn new(number: u32, params: Params, state: TrialState, values: Vec<f64>) -> Trial {
        Trial {
            number,
            params,
            state,
            values,
            worker: None,
            seconds: 0.0,
            message: None,
        }
    }

    /// The objective: the best validation accuracy of any finished epoch, with that epoch
    /// (the first of equals).
    pub fn best(&self) -> Option<(usize, f64)> {
        self.values
            .iter()
            .copied()
            .enumerate()
            .fold(None, |best, (e, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((e, v)),
            })
    }

    /// The best validation accuracy up to and including `epoch`.
    pub fn best_until(&self, epoch: usize) -> Option<f64> {
        self.values.iter().take(epoch + 1).copied().reduce(f64::max)
    }
}

/// What defines a study: re-running a study with a different definition is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudySpec {
    pub name: String,
    pub space: Space,
    /// The sampler and its settings, as text (e.g. `tpe`, `grid:5`, `random`).
    pub sampler: String,
    /// Everything else a trial trains with, as JSON (the fixed training configuration).
    pub base: serde_json::Value,
}
