//! The Tree-structured Parzen Estimator (TPE) of Bergstra, Bardenet, Bengio and Kégl,
//! "Algorithms for Hyper-Parameter Optimization" (NeurIPS 2011), with Optuna's `TPESampler`
//! defaults as the reference.
//!
//! # The idea
//!
//! Instead of modelling accuracy as a function of the parameters, TPE splits the trials so far
//! into the best few (`good`) and the rest (`bad`) and models where each group's parameter
//! values lie: densities l(x) over the good trials' values and g(x) over the bad ones'. The
//! paper shows that expected improvement over the split's threshold grows with l(x) / g(x),
//! so TPE draws candidates from l and keeps the one with the largest log l(x) − log g(x).
//! Each density is a Parzen estimator: a mixture of one Gaussian per observed value, plus one
//! wide "prior" component over the whole range, truncated to the range. Each parameter is
//! modelled on its own ("univariate"), on a log scale for log kinds.
//!
//! # What Optuna does, and what nndl does
//!
//! - The first `n_startup_trials` = 10 trials are random ([`super::random::draw`]).
//! - 24 candidates (`n_ei_candidates`) per parameter.
//! - The good trials are the best γ(n) = min(⌈0.1 n⌉, 25) of the n trials that count.
//! - Trials that count are the complete ones and the pruned ones with at least one epoch.
//!   As in Optuna, a pruned trial ranks below every complete one; among pruned trials, the
//!   one pruned later ranks higher, and at equal epochs the one whose last validation
//!   accuracy is higher. Running, waiting and failed trials are not read.
//! - Objective: the trial's best validation accuracy ([`Trial::best`]), maximised.
//! - Integer parameters are modelled over [lo − ½, hi + ½] and rounded; choices by a
//!   histogram with one prior count per choice.
//!
//! The densities and the candidate search are the `tpe` crate's (by a former Optuna
//! developer): its Parzen estimator sets each Gaussian's width to the larger gap to its
//! neighbours, clipped below at range / min(100, n + 1) (Optuna's "magic clip") and at the
//! ends to the one gap (Optuna's `consider_endpoints = False`), with prior weight 1. It
//! differs from Optuna in two ways this module leaves as they are: all observations weigh the
//! same (Optuna ramps the weight of the oldest trials down once there are more than 25), and
//! the prior component's width is set like the others' instead of the whole range. With the
//! few dozen trials a network study runs, both matter little; writing the estimator by hand
//! to match Optuna exactly would double this module for no measured gain.

use tpe::{categorical_range, histogram_estimator, parzen_estimator, range, TpeOptimizerBuilder};

use super::random::draw;
use super::{trial_rng, SampleError, Sampler};
use crate::tune::space::{Kind, Param, Params, Space, Value};
use crate::tune::study::{Trial, TrialState};

/// TPE's settings, Optuna's defaults by [`Default`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TpeSettings {
    /// Trials drawn at random before TPE models anything (`n_startup_trials`).
    pub startup_trials: usize,
    /// Candidates drawn from l(x) per parameter (`n_ei_candidates`).
    pub candidates: usize,
    /// The share of trials that are good, γ in γ(n) = min(⌈γ n⌉, `max_good`).
    pub good_share: f64,
    /// The most trials that are ever good.
    pub max_good: usize,
}

impl Default for TpeSettings {
    fn default() -> Self {
        TpeSettings {
            startup_trials: 10,
            candidates: 24,
            good_share: 0.1,
            max_good: 25,
        }
    }
}

/// The TPE sampler, seeded: trial k's draws come from [`trial_rng`]`(seed, k)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tpe {
    pub seed: u64,
    pub settings: TpeSettings,
}

impl Tpe {
    /// TPE with Optuna's default settings.
    pub fn new(seed: u64) -> Self {
        Tpe {
            seed,
            settings: TpeSettings::default(),
        }
    }

    /// γ(n): how many of `n` ranked trials are good.
    pub fn good_count(&self, n: usize) -> usize {
        let share = (self.settings.good_share * n as f64).ceil() as usize;
        share.min(self.settings.max_good)
    }
}

/// The trials TPE learns from, best first (see the module documentation for the order).
pub fn ranked(trials: &[Trial]) -> Vec<&Trial> {
    let mut counted: Vec<&Trial> = trials
        .iter()
        .filter(|t| {
            !t.values.is_empty() && matches!(t.state, TrialState::Complete | TrialState::Pruned)
        })
        .collect();
    // Sort keys: complete before pruned; complete ones by best accuracy, pruned ones by epochs
    // reached, then last accuracy; equal keys by trial number, so the order is total.
    let key = |t: &Trial| -> (bool, f64, usize, f64) {
        match t.state {
            TrialState::Complete => (
                false,
                t.best().map_or(f64::NEG_INFINITY, |(_, v)| v),
                0,
                0.0,
            ),
            _ => (
                true,
                0.0,
                t.values.len(),
                t.values.last().copied().unwrap_or(f64::NEG_INFINITY),
            ),
        }
    };
    counted.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
            .then(kb.3.total_cmp(&ka.3))
            .then(a.number.cmp(&b.number))
    });
    counted
}

/// How TPE sees one parameter: a range of reals (log-scaled for log kinds) or a categorical
/// index, with the conversions between a [`Value`] and that real.
struct Axis<'a> {
    kind: &'a Kind,
}

impl Axis<'_> {
    /// The interval TPE models, [start, end).
    fn bounds(&self) -> (f64, f64) {
        match self.kind {
            // `range` excludes its end; the next float above hi lets hi itself be observed.
            Kind::Float { lo, hi } => (*lo, hi.next_up()),
            Kind::Log { lo, hi } => (lo.ln(), hi.ln().next_up()),
            Kind::Int { lo, hi } => (*lo as f64 - 0.5, *hi as f64 + 0.5),
            Kind::IntLog { lo, hi } => ((*lo as f64 - 0.5).ln(), (*hi as f64 + 0.5).ln()),
            Kind::Choice { choices } => (0.0, choices.len() as f64),
        }
    }

    /// A trial's value as a point of the modelled interval, if it is one of this kind's.
    fn to_internal(&self, value: &Value) -> Option<f64> {
        let x = match (self.kind, value) {
            (Kind::Float { .. }, Value::Float(x)) => *x,
            (Kind::Log { .. }, Value::Float(x)) => x.ln(),
            (Kind::Int { .. }, Value::Int(i)) => *i as f64,
            (Kind::IntLog { .. }, Value::Int(i)) => (*i as f64).ln(),
            (Kind::Choice { choices }, Value::Choice(c)) => {
                choices.iter().position(|choice| choice == c)? as f64
            }
            _ => return None,
        };
        let (start, end) = self.bounds();
        (start <= x && x < end).then_some(x)
    }

    /// The value at a point of the modelled interval: rounded for integers, clamped to the
    /// parameter's bounds.
    fn to_value(&self, x: f64) -> Value {
        match self.kind {
            Kind::Float { lo, hi } => Value::Float(x.clamp(*lo, *hi)),
            Kind::Log { lo, hi } => Value::Float(x.exp().clamp(*lo, *hi)),
            Kind::Int { lo, hi } => Value::Int((x.round() as i64).clamp(*lo, *hi)),
            Kind::IntLog { lo, hi } => Value::Int((x.exp().round() as i64).clamp(*lo, *hi)),
            Kind::Choice { choices } => {
                let index = (x.floor().max(0.0) as usize).min(choices.len() - 1);
                Value::Choice(choices[index].clone())
            }
        }
    }
}

impl Tpe {
    /// One parameter's value: the candidate with the largest l(x) / g(x), where l models the
    /// values of `param` among the good trials and g among the rest.
    fn sample_param(
        &self,
        param: &Param,
        good: &[&Trial],
        bad: &[&Trial],
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Value, SampleError> {
        let fail = |reason: String| SampleError::Tpe {
            param: param.to_string(),
            reason,
        };
        let axis = Axis { kind: &param.kind };
        let observed = |trials: &[&Trial]| -> Vec<f64> {
            trials
                .iter()
                .filter_map(|t| t.params.get(&param.name))
                .filter_map(|v| axis.to_internal(v))
                .collect()
        };
        let (good_x, bad_x) = (observed(good), observed(bad));
        let n = good_x.len() + bad_x.len();
        // The crate splits the values it is told at ⌈γ n⌉ after sorting them by loss; told
        // loss 0 for good values and 1 for bad ones, γ = (good − ½) / n makes it split
        // exactly between the two groups.
        let gamma = match good_x.len() {
            0 => 0.0,
            good => (good as f64 - 0.5) / n as f64,
        };
        let (estimator, interval) = match param.kind {
            Kind::Choice { ref choices } => {
                (histogram_estimator(), categorical_range(choices.len()))
            }
            _ => {
                let (start, end) = axis.bounds();
                (parzen_estimator(), range(start, end))
            }
        };
        let interval = interval.map_err(|e| fail(e.to_string()))?;
        let mut optimizer = TpeOptimizerBuilder::new()
            .gamma(gamma)
            .candidates(self.settings.candidates)
            .build(estimator, interval)
            .map_err(|e| fail(e.to_string()))?;
        let told = good_x
            .iter()
            .map(|&x| (x, 0.0))
            .chain(bad_x.iter().map(|&x| (x, 1.0)));
        for (x, loss) in told {
            optimizer.tell(x, loss).map_err(|e| fail(e.to_string()))?;
        }
        match optimizer.ask(rng) {
            Ok(x) => Ok(axis.to_value(x)),
            Err(never) => match never {},
        }
    }
}

impl Sampler for Tpe {
    fn sample(&self, space: &Space, number: u32, trials: &[Trial]) -> Result<Params, SampleError> {
        let mut rng = trial_rng(self.seed, number);
        let ranked = ranked(trials);
        if ranked.len() < self.settings.startup_trials {
            return Ok(space
                .params
                .iter()
                .map(|param| (param.name.clone(), draw(&param.kind, &mut rng)))
                .collect());
        }
        let (good, bad) = ranked.split_at(self.good_count(ranked.len()));
        space
            .params
            .iter()
            .map(|param| {
                Ok((
                    param.name.clone(),
                    self.sample_param(param, good, bad, &mut rng)?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::sampler::random::Random;

    fn trial(number: u32, state: TrialState, values: &[f64]) -> Trial {
        Trial::new(number, Params::new(), state, values.to_vec())
    }

    #[test]
    fn complete_trials_rank_above_pruned_ones_and_others_are_ignored() {
        let trials = [
            trial(0, TrialState::Complete, &[90.0, 92.0, 91.0]),
            trial(1, TrialState::Pruned, &[95.0, 96.0]),
            trial(2, TrialState::Complete, &[93.0]),
            trial(3, TrialState::Pruned, &[97.0]),
            trial(4, TrialState::Failed, &[99.0]),
            trial(5, TrialState::Running, &[99.0]),
            trial(6, TrialState::Complete, &[]),
            trial(7, TrialState::Pruned, &[94.0, 95.5]),
        ];
        let order: Vec<u32> = ranked(&trials).iter().map(|t| t.number).collect();
        // Complete by best value; pruned by epochs reached, then by last value.
        assert_eq!(order, [2, 0, 1, 7, 3]);
    }

    #[test]
    fn the_good_share_follows_optuna() {
        let tpe = Tpe::new(0);
        let counts: Vec<usize> = [1, 10, 11, 40, 250, 251, 1000]
            .into_iter()
            .map(|n| tpe.good_count(n))
            .collect();
        assert_eq!(counts, [1, 1, 2, 4, 25, 25, 25]);
    }

    #[test]
    fn the_startup_trials_are_random_search() {
        let space = Space::parse(&["eta=log:0.01:10", "hidden=int:10:100"]);
        let Ok(space) = space else {
            panic!("{space:?}")
        };
        let tpe = Tpe::new(5);
        let random = Random::new(5);
        let nine: Vec<Trial> = (0..9)
            .map(|k| trial(k, TrialState::Complete, &[90.0]))
            .collect();
        assert_eq!(
            tpe.sample(&space, 9, &nine),
            random.sample(&space, 9, &nine)
        );
    }

    #[test]
    fn tpe_proposes_near_the_good_trials() {
        // Good trials at η ≈ 1, bad ones spread elsewhere: TPE's proposals concentrate near 1.
        let space = Space::parse(&["eta=log:0.001:1000"]);
        let Ok(space) = space else {
            panic!("{space:?}")
        };
        let mut trials = Vec::new();
        for k in 0..30u32 {
            let eta = 10f64.powf(-3.0 + 6.0 * f64::from(k) / 29.0);
            let accuracy = 98.0 - eta.log10().abs();
            let mut t = trial(k, TrialState::Complete, &[accuracy]);
            t.params.insert("eta".into(), Value::Float(eta));
            trials.push(t);
        }
        let tpe = Tpe::new(1);
        let near = (30..130u32)
            .filter_map(|k| tpe.sample(&space, k, &trials).ok())
            .filter_map(|p| p.get("eta").and_then(Value::as_f64))
            .filter(|eta| eta.log10().abs() < 1.0)
            .count();
        // Random search would land there a third of the time.
        assert!(
            near > 70,
            "{near} of 100 proposals within a factor of 10 of η = 1"
        );
    }

    #[test]
    fn values_map_to_the_model_and_back() {
        let kinds = [
            (Kind::Float { lo: 0.0, hi: 1.0 }, Value::Float(1.0)),
            (Kind::Log { lo: 0.01, hi: 10.0 }, Value::Float(10.0)),
            (Kind::Int { lo: 1, hi: 30 }, Value::Int(30)),
            (Kind::IntLog { lo: 10, hi: 200 }, Value::Int(10)),
            (
                Kind::Choice {
                    choices: vec!["tanh".into(), "relu".into()],
                },
                Value::Choice("relu".into()),
            ),
        ];
        for (kind, value) in &kinds {
            let axis = Axis { kind };
            let x = axis.to_internal(value);
            assert!(x.is_some(), "{value} is in {kind}");
            assert_eq!(x.map(|x| axis.to_value(x)).as_ref(), Some(value), "{kind}");
        }
        let axis = Axis {
            kind: &Kind::Int { lo: 1, hi: 30 },
        };
        assert_eq!(axis.to_internal(&Value::Int(31)), None);
        assert_eq!(axis.to_internal(&Value::Float(3.0)), None);
    }
}
