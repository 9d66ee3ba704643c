//! The Tree-structured Parzen Estimator (TPE) of Bergstra, Bardenet, Bengio and Kégl,
//! "Algorithms for Hyper-Parameter Optimization" (NeurIPS 2011), with Optuna's `TPESampler`
//! defaults (Optuna 5.0) as the reference.
//!
//! # The idea
//!
//! Instead of modelling accuracy as a function of the parameters, TPE splits the trials so far
//! into the best few (`good`) and the rest (`bad`) and models where each group's parameter
//! values lie: densities l(x) over the good trials' values and g(x) over the bad ones'. The
//! paper shows that expected improvement over the split's threshold grows with l(x) / g(x),
//! so TPE draws candidates from l and keeps the one with the largest log l(x) − log g(x).
//! Each density is a Parzen estimator: a mixture of one kernel per trial, plus one wide
//! "prior" kernel over the whole space. A trial's kernel covers all the parameters at once
//! (Optuna's `multivariate`, its default for one objective since 5.0): a Gaussian per
//! numeric parameter, truncated to its range, on a log scale for log kinds, times a
//! distribution over the choices per choice parameter. A candidate draws one kernel and
//! every parameter from it, so values that did well together (η and the mini-batch size,
//! say) are tried together.
//!
//! # What Optuna does, and what nndl does
//!
//! - The first `n_startup_trials` = 10 trials are random ([`super::random::draw`]).
//! - 24 candidates (`n_ei_candidates`), each a whole set of parameters.
//! - The good trials are the best γ(n) = min(⌈0.1 n⌉, 25) of the n trials that count.
//! - Trials that count are the complete ones and the pruned ones with at least one epoch.
//!   As in Optuna, a pruned trial ranks below every complete one; among pruned trials, the
//!   one pruned later ranks higher, and at equal epochs the one whose last validation
//!   accuracy is higher. Running trials other than the one being proposed join the bad ones
//!   without counting in n (`constant_liar`, on by default since 5.0), so that parallel
//!   workers do not all propose the same point. Waiting and failed trials are not read.
//! - Objective: the trial's best validation accuracy ([`Trial::best`]), maximised.
//! - Kernels, per numeric parameter on its modelled interval [a, b]: each trial's Gaussian is
//!   centred on its value, as wide as the larger gap to its sorted neighbours (a and b at the
//!   ends), the lowest and highest values taking their one inner gap
//!   (`consider_endpoints = False`), all clipped to [(b − a) / min(100, n + 2), b − a] for n
//!   trials (the "magic clip"); the prior's is centred on (a + b) / 2 and b − a wide. Each
//!   Gaussian is truncated to [a, b] and normalised on its own. For a choice, a trial's kernel
//!   gives its own choice 1 and every choice 1 / (n + 1) more, normalised; the prior's is
//!   uniform.
//! - Kernel weights: 1 per trial and 1 for the prior (`prior_weight`), except that past 25
//!   trials the oldest ones ramp up linearly from 1/n (`default_weights`).
//! - Integers are modelled over [lo − ½, hi + ½] (on a log scale for intlog); a candidate is
//!   rounded, and scored by the mass of its integer's bin [i − ½, i + ½].
//!
//! [`TpeSettings`] can turn off `multivariate` (each parameter modelled and drawn on its own,
//! Optuna's default before 5.0) and `constant_liar`.
//!
//! The estimator is written here rather than taken from the `tpe` crate, which models one
//! parameter at a time, centres a narrow prior among the observations instead of a wide one,
//! and truncates the mixture as a whole, so that it draws less often near the ends of a range.

use rand::rngs::StdRng;
use rand::RngExt;
use rand_distr::StandardNormal;

use super::random::draw;
use super::{trial_rng, SampleError, Sampler};
use crate::tune::space::{Kind, Param, Params, Space, Value};
use crate::tune::study::{Trial, TrialState};

/// TPE's settings, Optuna's defaults by [`Default`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TpeSettings {
    /// Trials drawn at random before TPE models anything (`n_startup_trials`).
    pub startup_trials: usize,
    /// Candidates drawn from l(x) (`n_ei_candidates`).
    pub candidates: usize,
    /// The share of trials that are good, γ in γ(n) = min(⌈γ n⌉, `max_good`).
    pub good_share: f64,
    /// The most trials that are ever good.
    pub max_good: usize,
    /// One kernel per trial over all the parameters (`multivariate`), or each parameter on
    /// its own.
    pub multivariate: bool,
    /// Running trials count as bad ones (`constant_liar`).
    pub constant_liar: bool,
}

impl Default for TpeSettings {
    fn default() -> Self {
        TpeSettings {
            startup_trials: 10,
            candidates: 24,
            good_share: 0.1,
            max_good: 25,
            multivariate: true,
            constant_liar: true,
        }
    }
}

/// The prior kernel's weight, a trial's being 1 (`prior_weight`).
const PRIOR_WEIGHT: f64 = 1.0;

/// How many of the newest trials weigh 1 in full (`default_weights`).
const FULL_WEIGHTS: usize = 25;

/// ln √(2π), of the normal density's constant.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

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

/// How TPE sees one parameter: an interval of reals (log-scaled for log kinds) or a choice
/// index, with the conversions between a [`Value`] and that real.
struct Axis<'a> {
    kind: &'a Kind,
}

impl Axis<'_> {
    /// The interval TPE models, [start, end]; for a choice, the indices' [0, len].
    fn bounds(&self) -> (f64, f64) {
        match self.kind {
            Kind::Float { lo, hi } => (*lo, *hi),
            Kind::Log { lo, hi } => (lo.ln(), hi.ln()),
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
        (start <= x && x <= end).then_some(x)
    }

    /// A point drawn on the interval as one the parameter can take: integers rounded (after
    /// the exponential for intlog) and kept in range; other points as they are.
    fn snap(&self, x: f64) -> f64 {
        match self.kind {
            Kind::Int { lo, hi } => (x.round() as i64).clamp(*lo, *hi) as f64,
            Kind::IntLog { lo, hi } => ((x.exp().round() as i64).clamp(*lo, *hi) as f64).ln(),
            _ => x,
        }
    }

    /// For an integer kind, the bin of the integer at `x` (snapped) on the modelled interval:
    /// [i − ½, i + ½], or its logarithms for intlog. `None` for the other kinds.
    fn bin(&self, x: f64) -> Option<(f64, f64)> {
        match self.kind {
            Kind::Int { .. } => Some((x - 0.5, x + 0.5)),
            Kind::IntLog { .. } => {
                let i = x.exp().round();
                Some(((i - 0.5).ln(), (i + 0.5).ln()))
            }
            _ => None,
        }
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

/// One parameter's share of every kernel of a Parzen estimator, one per trial and the
/// prior's last.
enum Part {
    /// Gaussians on [low, high]: means, widths, and the log of each one's mass on the
    /// interval, which truncating divides by.
    Numeric {
        mu: Vec<f64>,
        sigma: Vec<f64>,
        ln_mass: Vec<f64>,
        low: f64,
        high: f64,
    },
    /// Probabilities of the choices, and their logarithms.
    Choice {
        p: Vec<Vec<f64>>,
        ln_p: Vec<Vec<f64>>,
    },
}

impl Part {
    /// The kernels over `xs`, one trial's value each (points of `axis`'s interval), and the
    /// prior (see the module documentation for the widths).
    fn new(axis: &Axis<'_>, xs: &[f64]) -> Part {
        let n = xs.len();
        if let Kind::Choice { choices } = axis.kind {
            let floor = PRIOR_WEIGHT / (n + 1) as f64;
            let p: Vec<Vec<f64>> = (0..=n)
                .map(|k| {
                    let mut row = vec![floor; choices.len()];
                    if let Some(&x) = xs.get(k) {
                        row[x as usize] += 1.0;
                    }
                    let sum: f64 = row.iter().sum();
                    row.iter().map(|w| w / sum).collect()
                })
                .collect();
            let ln_p = p
                .iter()
                .map(|row| row.iter().map(|w| w.ln()).collect())
                .collect();
            return Part::Choice { p, ln_p };
        }
        let (low, high) = axis.bounds();
        let width = high - low;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
        let sorted: Vec<f64> = order.iter().map(|&i| xs[i]).collect();
        let mut sigma = vec![0.0; n];
        for (k, &i) in order.iter().enumerate() {
            let prev = if k == 0 { low } else { sorted[k - 1] };
            let next = sorted.get(k + 1).copied().unwrap_or(high);
            sigma[i] = (sorted[k] - prev).max(next - sorted[k]);
        }
        if n >= 2 {
            sigma[order[0]] = sorted[1] - sorted[0];
            sigma[order[n - 1]] = sorted[n - 1] - sorted[n - 2];
        }
        let min_sigma = width / (n as f64 + 2.0).min(100.0);
        for s in &mut sigma {
            *s = s.clamp(min_sigma, width);
        }
        let mut mu = xs.to_vec();
        mu.push(0.5 * (low + high));
        sigma.push(width);
        let ln_mass = mu
            .iter()
            .zip(&sigma)
            .map(|(m, s)| ln_gauss_mass((low - m) / s, (high - m) / s))
            .collect();
        Part::Numeric {
            mu,
            sigma,
            ln_mass,
            low,
            high,
        }
    }
}

/// A Parzen estimator over some parameters: a mixture of kernels, one per trial and the
/// prior's last, each the product of its [`Part`]s.
struct Parzen {
    /// The kernels' weights, summing to 1, and their logarithms.
    weights: Vec<f64>,
    ln_weights: Vec<f64>,
    parts: Vec<Part>,
}

impl Parzen {
    /// The estimator over `rows`, a point of `axes` per trial, oldest first.
    fn new(axes: &[Axis<'_>], rows: &[Vec<f64>]) -> Parzen {
        let mut weights = default_weights(rows.len());
        weights.push(PRIOR_WEIGHT);
        let total: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= total;
        }
        let ln_weights = weights.iter().map(|w| w.ln()).collect();
        let parts = axes
            .iter()
            .enumerate()
            .map(|(d, axis)| {
                let xs: Vec<f64> = rows.iter().map(|row| row[d]).collect();
                Part::new(axis, &xs)
            })
            .collect();
        Parzen {
            weights,
            ln_weights,
            parts,
        }
    }

    /// A point drawn from the mixture: a kernel, then every parameter from that kernel.
    fn sample(&self, axes: &[Axis<'_>], rng: &mut StdRng) -> Vec<f64> {
        let k = pick(&self.weights, rng);
        self.parts
            .iter()
            .zip(axes)
            .map(|(part, axis)| match part {
                Part::Numeric {
                    mu,
                    sigma,
                    low,
                    high,
                    ..
                } => axis.snap(truncated_normal(mu[k], sigma[k], *low, *high, rng)),
                Part::Choice { p, .. } => pick(&p[k], rng) as f64,
            })
            .collect()
    }

    /// The log density at `x` (for an integer, of its bin's probability).
    fn ln_pdf(&self, axes: &[Axis<'_>], x: &[f64]) -> f64 {
        let mut terms = self.ln_weights.clone();
        for ((part, axis), &xd) in self.parts.iter().zip(axes).zip(x) {
            match part {
                Part::Numeric {
                    mu, sigma, ln_mass, ..
                } => {
                    let bin = axis.bin(xd);
                    for (k, term) in terms.iter_mut().enumerate() {
                        let (m, s) = (mu[k], sigma[k]);
                        let ln_p = match bin {
                            Some((left, right)) => ln_gauss_mass((left - m) / s, (right - m) / s),
                            None => {
                                let z = (xd - m) / s;
                                -0.5 * z * z - s.ln() - LN_SQRT_2PI
                            }
                        };
                        *term += ln_p - ln_mass[k];
                    }
                }
                Part::Choice { ln_p, .. } => {
                    for (term, row) in terms.iter_mut().zip(ln_p) {
                        *term += row[xd as usize];
                    }
                }
            }
        }
        ln_sum_exp(&terms)
    }
}

/// Optuna's `default_weights`: 1 for each of the newest 25 of `n` trials; the older ones,
/// oldest first, rise linearly from 1/n.
fn default_weights(n: usize) -> Vec<f64> {
    let ramp = n.saturating_sub(FULL_WEIGHTS);
    let start = 1.0 / n as f64;
    // NumPy's linspace(start, 1, ramp), its last point exactly 1.
    let at = |i: usize| match ramp {
        1 => start,
        _ => {
            let f = i as f64 / (ramp - 1) as f64;
            start * (1.0 - f) + f
        }
    };
    (0..ramp)
        .map(at)
        .chain(std::iter::repeat_n(1.0, n - ramp))
        .collect()
}

/// The values of `params` in `trials` as points of `axes`, oldest trial first. A trial
/// without a value of every one is left out, as Optuna does.
fn rows(params: &[Param], axes: &[Axis<'_>], trials: &[&Trial]) -> Vec<Vec<f64>> {
    let mut trials = trials.to_vec();
    trials.sort_by_key(|t| t.number);
    trials
        .iter()
        .filter_map(|t| {
            params
                .iter()
                .zip(axes)
                .map(|(param, axis)| axis.to_internal(t.params.get(&param.name)?))
                .collect::<Option<Vec<f64>>>()
        })
        .collect()
}

/// An index drawn with probability `weights[i]` (weights summing to 1).
fn pick(weights: &[f64], rng: &mut StdRng) -> usize {
    let u: f64 = rng.random();
    let mut sum = 0.0;
    for (i, &w) in weights.iter().enumerate() {
        sum += w;
        if u < sum {
            return i;
        }
    }
    weights.len() - 1
}

/// A draw from N(mu, sigma²) on [low, high], by rejection: with mu in the interval and sigma at
/// most its width, over a third of the draws land in it.
fn truncated_normal(mu: f64, sigma: f64, low: f64, high: f64, rng: &mut StdRng) -> f64 {
    loop {
        let x = mu + sigma * rng.sample::<f64, _>(StandardNormal);
        if (low..=high).contains(&x) {
            return x;
        }
    }
}

/// ln(Φ(b) − Φ(a)) for a ≤ b, Φ the standard normal's distribution function: from the tail
/// that keeps the difference accurate when both ends are on one side of the mean, from erf
/// when the interval straddles it. (`libm`'s erf and erfc, which the standard library lacks.)
fn ln_gauss_mass(a: f64, b: f64) -> f64 {
    let tail = |z: f64| 0.5 * libm::erfc(z / std::f64::consts::SQRT_2);
    let mass = if a >= 0.0 {
        tail(a) - tail(b)
    } else if b <= 0.0 {
        tail(-b) - tail(-a)
    } else {
        let erf = |z: f64| libm::erf(z / std::f64::consts::SQRT_2);
        0.5 * (erf(b) - erf(a))
    };
    mass.max(0.0).ln()
}

/// ln Σ exp(terms), −∞ for no mass.
fn ln_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

impl Tpe {
    /// Values of `params`: the candidate with the largest l(x) / g(x), where l models their
    /// values among the good trials and g among the bad ones.
    fn propose(
        &self,
        params: &[Param],
        good: &[&Trial],
        bad: &[&Trial],
        rng: &mut StdRng,
    ) -> Vec<Value> {
        let axes: Vec<Axis<'_>> = params.iter().map(|p| Axis { kind: &p.kind }).collect();
        let l = Parzen::new(&axes, &rows(params, &axes, good));
        let g = Parzen::new(&axes, &rows(params, &axes, bad));
        let mut best: (f64, Vec<f64>) = (f64::NAN, Vec::new());
        for _ in 0..self.settings.candidates.max(1) {
            let x = l.sample(&axes, rng);
            let score = l.ln_pdf(&axes, &x) - g.ln_pdf(&axes, &x);
            // The first of the best scores (NaN scores, which finite bounds rule out, are
            // never chosen over a number).
            if best.1.is_empty() || best.0.is_nan() || score > best.0 {
                best = (score, x);
            }
        }
        axes.iter()
            .zip(best.1)
            .map(|(axis, x)| axis.to_value(x))
            .collect()
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
        let mut bad = bad.to_vec();
        if self.settings.constant_liar {
            bad.extend(
                trials
                    .iter()
                    .filter(|t| t.state == TrialState::Running && t.number != number),
            );
        }
        let params = &space.params;
        let values: Vec<Value> = if self.settings.multivariate {
            self.propose(params, good, &bad, &mut rng)
        } else {
            params
                .chunks(1)
                .flat_map(|param| self.propose(param, good, &bad, &mut rng))
                .collect()
        };
        Ok(params
            .iter()
            .map(|param| param.name.clone())
            .zip(values)
            .collect())
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

    #[test]
    fn kernel_widths_follow_optuna() {
        // Optuna 5.0's `_calculate_numerical_distributions` on [0, 10] with values 6, 1, 2:
        // gaps to the neighbours 4, 1 and 4 (the ends taking their one inner gap), clipped
        // below at 10 / min(100, 3 + 2) = 2; the prior at 5, 10 wide.
        let kind = Kind::Float { lo: 0.0, hi: 10.0 };
        let part = Part::new(&Axis { kind: &kind }, &[6.0, 1.0, 2.0]);
        let Part::Numeric { mu, sigma, .. } = part else {
            panic!("a float range is numeric")
        };
        assert_eq!(mu, [6.0, 1.0, 2.0, 5.0]);
        assert_eq!(sigma, [4.0, 2.0, 4.0, 10.0]);
    }

    #[test]
    fn old_trials_weigh_less_past_25() {
        assert_eq!(default_weights(0), Vec::<f64>::new());
        assert_eq!(default_weights(3), [1.0; 3]);
        let w = default_weights(27);
        assert_eq!(w.len(), 27);
        assert_eq!(w[0], 1.0 / 27.0);
        assert!(w[1..].iter().all(|&x| x == 1.0));
    }

    #[test]
    fn gauss_masses_are_right() {
        // Φ(1) − Φ(−1) and Φ(3) − Φ(2); a far tail keeps a mass.
        assert!((ln_gauss_mass(-1.0, 1.0).exp() - 0.682_689_492).abs() < 1e-7);
        assert!((ln_gauss_mass(2.0, 3.0).exp() - 0.021_400_234).abs() < 1e-8);
        assert!(ln_gauss_mass(10.0, 10.1).is_finite());
    }

    #[test]
    fn tpe_keeps_values_that_did_well_together() {
        // The two good trials are (sigmoid, large) and (tanh, scaled); the bad ones cover the
        // four pairs evenly. Each parameter alone says nothing; the pairs do.
        let space = Space::parse(&[
            "activation=choice:sigmoid,tanh",
            "weight-init=choice:large,scaled",
        ]);
        let Ok(space) = space else {
            panic!("{space:?}")
        };
        let pair = |activation: &str, init: &str| -> Params {
            [("activation", activation), ("weight-init", init)]
                .into_iter()
                .map(|(name, value)| (name.to_string(), Value::Choice(value.to_string())))
                .collect()
        };
        let mut trials = vec![
            Trial::new(
                0,
                pair("sigmoid", "large"),
                TrialState::Complete,
                vec![99.0],
            ),
            Trial::new(1, pair("tanh", "scaled"), TrialState::Complete, vec![99.0]),
        ];
        for k in 0..16u32 {
            let activation = if k % 2 == 0 { "sigmoid" } else { "tanh" };
            let init = if k % 4 < 2 { "large" } else { "scaled" };
            let params = pair(activation, init);
            trials.push(Trial::new(k + 2, params, TrialState::Complete, vec![90.0]));
        }
        let tpe = Tpe::new(2);
        let together = (18..118u32)
            .filter_map(|k| tpe.sample(&space, k, &trials).ok())
            .filter(|p| {
                let is = |name: &str, value: &str| {
                    p.get(name) == Some(&Value::Choice(value.to_string()))
                };
                is("activation", "sigmoid") == is("weight-init", "large")
            })
            .count();
        assert!(
            together > 95,
            "{together} of 100 proposals pair the values as a good trial did"
        );
    }
}
