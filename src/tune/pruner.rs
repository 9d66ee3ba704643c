//! Pruners: ending a trial early when its validation accuracy so far says it will not be the
//! best. Chapter 3 does this by eye ("if the accuracy hasn't improved after a few epochs, stop
//! and try something else"); a pruner does it by comparing the trial with the study's others.
//!
//! A [`Pruner`] is asked after each epoch a trial finishes. Like the samplers it keeps no state:
//! its answer depends only on the trials' per-epoch values, so a trial resumed by another
//! worker is judged the same way. A pruned trial keeps its values; they are data for the
//! samplers and the plots.
//!
//! - [`Median`]: Optuna's `MedianPruner`: below the median of the other trials at the same
//!   epoch.
//! - [`SuccessiveHalving`]: Optuna's `SuccessiveHalvingPruner` (asynchronous successive
//!   halving, ASHA; Li et al. 2020): at rungs of r, rη, rη², … epochs only the top 1/η go on.

use super::study::{Trial, TrialState};

/// Decides whether a trial stops early.
pub trait Pruner {
    /// Whether `trial` should stop now that it has finished `epoch` (counted from 0, so
    /// `trial.values` holds epochs 0..=`epoch`), given every trial of the study (`trials`,
    /// which may include `trial` itself as the store last saw it; it is recognised by its
    /// number and not compared with itself).
    fn prune(&self, trial: &Trial, epoch: usize, trials: &[Trial]) -> bool;
}

/// The median rule: prune a trial whose best validation accuracy up to epoch e is below the
/// median of the other trials' best accuracies up to e.
///
/// As in Optuna's `MedianPruner`: nothing is pruned before `startup_trials` trials have
/// completed, nor during the first `warmup` epochs, nor at an epoch fewer than `min_trials`
/// other trials have reached; a trial whose accuracy is not a number (it diverged) is pruned.
/// Where Optuna compares with the *completed* trials' values *at* epoch e, nndl compares with
/// the best value up to e of every earlier trial that has reached e, complete, pruned, failed
/// or still running: accuracy curves are noisy from epoch to epoch, and with several workers
/// the trials started before this one are its fairest company.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Median {
    /// Completed trials needed before any pruning (Optuna's `n_startup_trials`, 5).
    pub startup_trials: usize,
    /// Epochs never pruned at: epochs 0..warmup (Optuna's `n_warmup_steps`, 0).
    pub warmup: usize,
    /// Earlier trials that must have reached the epoch (Optuna's `n_min_trials`, 1).
    pub min_trials: usize,
}

impl Default for Median {
    fn default() -> Self {
        Median {
            startup_trials: 5,
            warmup: 0,
            min_trials: 1,
        }
    }
}

impl Pruner for Median {
    fn prune(&self, trial: &Trial, epoch: usize, trials: &[Trial]) -> bool {
        if epoch < self.warmup {
            return false;
        }
        let completed = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete && t.number != trial.number)
            .count();
        if completed < self.startup_trials {
            return false;
        }
        let Some(best) = trial.best_until(epoch) else {
            return false;
        };
        if best.is_nan() {
            return true;
        }
        let mut others: Vec<f64> = trials
            .iter()
            .filter(|t| t.number < trial.number && t.state != TrialState::Waiting)
            .filter(|t| t.values.len() > epoch)
            .filter_map(|t| t.best_until(epoch))
            .filter(|v| !v.is_nan())
            .collect();
        if others.is_empty() || others.len() < self.min_trials {
            return false;
        }
        best < median(&mut others)
    }
}

/// The median of a non-empty list (the mean of the middle two for an even length).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Asynchronous successive halving (ASHA).
///
/// Rung k is reached after r·ηᵏ epochs (r = `min_epochs`, η = `reduction_factor`). A trial
/// reaching a rung is compared with every trial that has reached it so far, itself included:
/// it goes on if its validation accuracy at the rung's epoch is among the top ⌊n/η⌋ of those n
/// values (the top one while n < η), else it is pruned. No trial waits for others, which is
/// what makes it asynchronous: early trials are promoted easily, later ones must beat a fuller
/// rung.
///
/// This is Optuna's `SuccessiveHalvingPruner` with `min_early_stopping_rate` 0 and
/// `bootstrap_count` 0; Optuna's default η is 4, nndl's 3 (the paper's). Optuna records each
/// trial's value at each rung; here it is read from the per-epoch values, the value at the
/// rung's last epoch, so nothing needs storing. A trial whose accuracy is not a number is
/// pruned at its next rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuccessiveHalving {
    /// r: the epochs every trial is trained before its first comparison.
    pub min_epochs: usize,
    /// η: the share promoted at each rung is 1/η, and rungs are η times apart.
    pub reduction_factor: usize,
}

impl Default for SuccessiveHalving {
    fn default() -> Self {
        SuccessiveHalving {
            min_epochs: 1,
            reduction_factor: 3,
        }
    }
}

impl SuccessiveHalving {
    /// The number of epochs at which each rung is reached, r, rη, rη², …, up to `epochs`.
    pub fn rungs(&self, epochs: usize) -> Vec<usize> {
        let mut rungs = Vec::new();
        let mut at = self.min_epochs.max(1);
        while at <= epochs {
            rungs.push(at);
            match at.checked_mul(self.reduction_factor.max(2)) {
                Some(next) => at = next,
                None => break,
            }
        }
        rungs
    }
}

impl Pruner for SuccessiveHalving {
    fn prune(&self, trial: &Trial, epoch: usize, trials: &[Trial]) -> bool {
        let trained = epoch + 1;
        if self.rungs(trained).last() != Some(&trained) {
            return false;
        }
        let Some(&value) = trial.values.get(epoch) else {
            return false;
        };
        if value.is_nan() {
            return true;
        }
        // Every other trial that reached this rung, by its value there, and this one.
        let mut rung: Vec<f64> = trials
            .iter()
            .filter(|t| t.number != trial.number && t.state != TrialState::Waiting)
            .filter_map(|t| t.values.get(epoch).copied())
            .filter(|v| !v.is_nan())
            .collect();
        rung.push(value);
        rung.sort_by(|a, b| b.total_cmp(a));
        let promoted = (rung.len() / self.reduction_factor.max(2)).max(1);
        value < rung[promoted - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::space::Params;

    fn trial(number: u32, state: TrialState, values: &[f64]) -> Trial {
        Trial::new(number, Params::new(), state, values.to_vec())
    }

    /// Five complete trials whose best accuracies up to epoch 2 are 90, 91, 92, 93, 94.
    fn finished() -> Vec<Trial> {
        (0..5)
            .map(|k| {
                let top = 90.0 + f64::from(k);
                trial(
                    k,
                    TrialState::Complete,
                    &[top - 5.0, top, top - 1.0, top + 1.0],
                )
            })
            .collect()
    }

    #[test]
    fn median_prunes_a_bad_trial_and_keeps_a_good_one() {
        let mut trials = finished();
        let bad = trial(5, TrialState::Running, &[80.0, 85.0, 91.5]);
        let good = trial(6, TrialState::Running, &[86.0, 92.5, 92.0]);
        trials.push(bad.clone());
        trials.push(good.clone());
        let pruner = Median::default();
        // Up to epoch 2 the bad trial (91.5) is below the median of trials 0..5 (92); the good one
        // (92.5) is above that of trials 0..6 (91.75).
        assert!(pruner.prune(&bad, 2, &trials));
        assert!(!pruner.prune(&good, 2, &trials));
        // At epoch 0 the median of trials 0..6 is 86.5, and the good trial's 86 is below it.
        assert!(pruner.prune(&good, 0, &trials));
    }

    #[test]
    fn median_waits_for_warmup_startup_and_company() {
        let mut trials = finished();
        let bad = trial(5, TrialState::Running, &[10.0, 10.0, 10.0]);
        trials.push(bad.clone());
        let warm = Median {
            warmup: 3,
            ..Median::default()
        };
        assert!(!warm.prune(&bad, 2, &trials));
        let early = Median {
            startup_trials: 6,
            ..Median::default()
        };
        assert!(!early.prune(&bad, 2, &trials));
        let crowd = Median {
            min_trials: 6,
            ..Median::default()
        };
        assert!(!crowd.prune(&bad, 2, &trials));
        // No earlier trial reached epoch 4 (they have four epochs: 0..=3).
        let long = trial(5, TrialState::Running, &[10.0; 5]);
        assert!(!Median::default().prune(&long, 4, &trials));
        assert!(Median::default().prune(&long, 3, &trials));
        let diverged = trial(5, TrialState::Running, &[f64::NAN]);
        assert!(Median::default().prune(&diverged, 0, &trials));
    }

    #[test]
    fn rungs_grow_by_the_reduction_factor() {
        let asha = SuccessiveHalving::default();
        assert_eq!(asha.rungs(30), [1, 3, 9, 27]);
        let asha = SuccessiveHalving {
            min_epochs: 2,
            reduction_factor: 4,
        };
        assert_eq!(asha.rungs(40), [2, 8, 32]);
    }

    #[test]
    fn asha_promotes_the_top_third_at_each_rung() {
        let asha = SuccessiveHalving::default();
        // Rung 0 is after 1 epoch (epoch 0), rung 1 after 3 (epoch 2).
        let first = trial(0, TrialState::Running, &[50.0]);
        assert!(
            !asha.prune(&first, 0, std::slice::from_ref(&first)),
            "alone on its rung"
        );
        let others: Vec<Trial> = (0..5u32)
            .map(|k| {
                trial(
                    k,
                    TrialState::Complete,
                    &[60.0 + f64::from(k), 70.0, 80.0 + f64::from(k)],
                )
            })
            .collect();
        // Six values at rung 0 → the top ⌊6/3⌋ = 2 go on: 64 and the newcomer's if above 63.
        let strong = trial(9, TrialState::Running, &[63.5]);
        let weak = trial(9, TrialState::Running, &[62.5]);
        assert!(!asha.prune(&strong, 0, &others));
        assert!(asha.prune(&weak, 0, &others));
        // Between rungs nothing is pruned, however weak.
        let between = trial(9, TrialState::Running, &[63.5, 1.0]);
        assert!(!asha.prune(&between, 1, &others));
        // At rung 1 the same rule over the values after 3 epochs: 80..84 and this one.
        let climbing = trial(9, TrialState::Running, &[63.5, 70.0, 83.5]);
        let stalled = trial(9, TrialState::Running, &[63.5, 70.0, 82.5]);
        assert!(!asha.prune(&climbing, 2, &others));
        assert!(asha.prune(&stalled, 2, &others));
        // With fewer values than η at a rung only the best goes on.
        let two = [trial(0, TrialState::Complete, &[70.0])];
        assert!(asha.prune(&trial(1, TrialState::Running, &[69.0]), 0, &two));
        assert!(!asha.prune(&trial(1, TrialState::Running, &[71.0]), 0, &two));
    }
}

/// A pruner as `--pruner` names it: `none`, `median` (or `median:W`, with W warm-up epochs)
/// or `asha` (or `asha:R`, with R epochs before the first rung).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrunerSpec {
    None,
    Median { warmup: usize },
    Asha { min_epochs: usize },
}

/// A pruner name that is not one of [`PrunerSpec`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown pruner {0:?}; use none, median, median:WARMUP, asha or asha:MIN_EPOCHS")]
pub struct UnknownPruner(pub String);

impl std::str::FromStr for PrunerSpec {
    type Err = UnknownPruner;

    fn from_str(text: &str) -> Result<PrunerSpec, UnknownPruner> {
        let unknown = || UnknownPruner(text.to_string());
        let (name, number) = match text.split_once(':') {
            Some((name, n)) => (name, Some(n.parse::<usize>().map_err(|_| unknown())?)),
            None => (text, None),
        };
        match (name, number) {
            ("none", None) => Ok(PrunerSpec::None),
            ("median", n) => Ok(PrunerSpec::Median {
                warmup: n.unwrap_or(Median::default().warmup),
            }),
            ("asha", n) => {
                let min_epochs = n.unwrap_or(SuccessiveHalving::default().min_epochs);
                if min_epochs == 0 {
                    return Err(unknown());
                }
                Ok(PrunerSpec::Asha { min_epochs })
            }
            _ => Err(unknown()),
        }
    }
}

impl std::fmt::Display for PrunerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrunerSpec::None => f.write_str("none"),
            PrunerSpec::Median { warmup } => write!(f, "median:{warmup}"),
            PrunerSpec::Asha { min_epochs } => write!(f, "asha:{min_epochs}"),
        }
    }
}

impl PrunerSpec {
    /// The pruner, or `None` for no pruning.
    pub fn build(self) -> Option<Box<dyn Pruner + Send + Sync>> {
        match self {
            PrunerSpec::None => None,
            PrunerSpec::Median { warmup } => Some(Box::new(Median {
                warmup,
                ..Median::default()
            })),
            PrunerSpec::Asha { min_epochs } => Some(Box::new(SuccessiveHalving {
                min_epochs,
                ..SuccessiveHalving::default()
            })),
        }
    }
}
