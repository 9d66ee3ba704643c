//! Random search: each parameter drawn independently and uniformly, on a log scale for the
//! log kinds, as Optuna's `RandomSampler` does. Chapter 3 points to Bergstra and Bengio (2012)
//! for why this beats a grid when only a few parameters matter: a grid of K points per
//! parameter tries only K values of each, random search tries a new value every trial.

use rand::rngs::StdRng;
use rand::RngExt;

use super::{trial_rng, SampleError, Sampler};
use crate::tune::space::{Kind, Params, Space, Value};
use crate::tune::study::Trial;

/// Random search, seeded: trial k's parameters depend only on the seed and k.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Random {
    pub seed: u64,
}

impl Random {
    pub fn new(seed: u64) -> Self {
        Random { seed }
    }
}

impl Sampler for Random {
    fn sample(&self, space: &Space, number: u32, _trials: &[Trial]) -> Result<Params, SampleError> {
        let mut rng = trial_rng(self.seed, number);
        Ok(space
            .params
            .iter()
            .map(|param| (param.name.clone(), draw(&param.kind, &mut rng)))
            .collect())
    }
}

/// One value of `kind`, uniformly (on a log scale for `log` and `intlog`).
///
/// `intlog` draws from [lo − ½, hi + ½] on a log scale and rounds, as Optuna does, so that the
/// two end integers get their half-width share.
pub fn draw(kind: &Kind, rng: &mut StdRng) -> Value {
    match kind {
        Kind::Float { lo, hi } => Value::Float(rng.random_range(*lo..=*hi)),
        Kind::Log { lo, hi } => {
            let x = rng.random_range(lo.ln()..=hi.ln()).exp();
            Value::Float(x.clamp(*lo, *hi))
        }
        Kind::Int { lo, hi } => Value::Int(rng.random_range(*lo..=*hi)),
        Kind::IntLog { lo, hi } => {
            let (low, high) = ((*lo as f64 - 0.5).ln(), (*hi as f64 + 0.5).ln());
            let x = rng.random_range(low..high).exp().round() as i64;
            Value::Int(x.clamp(*lo, *hi))
        }
        Kind::Choice { choices } => {
            Value::Choice(choices[rng.random_range(0..choices.len())].clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        match Space::parse(&[
            "eta=log:0.001:100",
            "lambda=float:0:10",
            "hidden=intlog:10:300",
            "epochs=int:1:30",
            "cost=choice:quadratic,cross-entropy,log-likelihood",
        ]) {
            Ok(space) => space,
            Err(e) => panic!("{e}"),
        }
    }

    fn trials(seed: u64, n: u32) -> Vec<Params> {
        let sampler = Random::new(seed);
        (0..n)
            .map(|k| sampler.sample(&space(), k, &[]).unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_seed_repeats_its_trials_and_another_seed_differs() {
        let first = trials(7, 20);
        assert_eq!(first.len(), 20);
        assert_eq!(first, trials(7, 20));
        let other = trials(8, 20);
        for (a, b) in first.iter().zip(&other) {
            assert_ne!(a.get("eta"), b.get("eta"));
        }
        // Trial k does not depend on which trials were asked before it.
        assert_eq!(
            Random::new(7).sample(&space(), 13, &[]).ok().as_ref(),
            first.get(13)
        );
    }

    #[test]
    fn draws_stay_in_range_and_spread_on_a_log_scale() {
        let all = trials(1, 2000);
        let mut below_one = 0;
        for params in &all {
            let eta = params
                .get("eta")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN);
            assert!((0.001..=100.0).contains(&eta), "eta {eta}");
            below_one += usize::from(eta < 1.0);
            let hidden = params.get("hidden").and_then(Value::as_i64).unwrap_or(0);
            assert!((10..=300).contains(&hidden), "hidden {hidden}");
            let epochs = params.get("epochs").and_then(Value::as_i64).unwrap_or(0);
            assert!((1..=30).contains(&epochs), "epochs {epochs}");
            assert!(
                matches!(params.get("lambda"), Some(Value::Float(l)) if (0.0..=10.0).contains(l))
            );
            assert!(matches!(params.get("cost"), Some(Value::Choice(_))));
        }
        // log10 η is uniform on [-3, 2]: 3/5 of the draws are below 1.
        let share = below_one as f64 / all.len() as f64;
        assert!((share - 0.6).abs() < 0.05, "share below 1: {share}");
    }
}
