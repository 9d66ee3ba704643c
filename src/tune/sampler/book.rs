//! Chapter 3's own recipe ("How to choose a neural network's hyper-parameters?"), as a
//! sampler: one hyperparameter at a time, by factors of ten.
//!
//! 1. **η**: try η = …, 0.01, 0.1, 1, 10, … (the powers of ten in the range of `eta`) and find
//!    the threshold — the largest η at which the network still learns, its validation accuracy
//!    not falling from its first epoch to its last and above chance — then take half of it,
//!    as the book advises.
//! 2. **λ**: with that η, try λ = the powers of ten in the range of `lambda`; keep the best.
//! 3. **mini-batch size**: with both, try the sizes 1, 2, 5, 10, 20, 50, 100, … in the range of
//!    `mini-batch` (or its choices); keep the best.
//!
//! A stage starts only when every trial of the stages before it has finished, so with several
//! workers the later stages wait ([`SampleError::Waiting`]). Stages for parameters not in the
//! space are skipped, their values left as the study's fixed configuration has them. The book
//! watches the training cost fall in the first epochs; the study records validation accuracy,
//! which rises when the cost falls, so that is what "learns" reads. Left out: the book's finer
//! search around the chosen values, and its early-stopping rule for the number of epochs (give
//! `--early-stop` to every trial for that).

use super::{SampleError, Sampler};
use crate::tune::space::{Kind, Params, Space, Value};
use crate::tune::study::{Trial, TrialState};

/// Accuracy (%) a network must beat to count as learning: twice chance on ten classes.
const LEARNS: f64 = 20.0;

/// The recipe's sampler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Book;

/// The values each stage tries, in order: η, λ, mini-batch size.
fn stages(space: &Space) -> Vec<(&'static str, Vec<Value>)> {
    let mut out = Vec::new();
    for name in ["eta", "lambda", "mini-batch"] {
        if let Some(param) = space.get(name) {
            let values = match name {
                "mini-batch" => sizes(&param.kind),
                _ => powers_of_ten(&param.kind),
            };
            out.push((name, values));
        }
    }
    out
}

/// The powers of ten within a float range (at least its two ends if it holds none), or the
/// choices.
fn powers_of_ten(kind: &Kind) -> Vec<Value> {
    let (lo, hi) = match kind {
        Kind::Float { lo, hi } | Kind::Log { lo, hi } => (*lo, *hi),
        Kind::Int { lo, hi } | Kind::IntLog { lo, hi } => (*lo as f64, *hi as f64),
        Kind::Choice { choices } => {
            return choices.iter().map(|c| Value::Choice(c.clone())).collect();
        }
    };
    let start = lo.max(1e-6).log10().ceil() as i32;
    let end = hi.log10().floor() as i32;
    let mut values: Vec<Value> = (start..=end).map(|k| Value::Float(10f64.powi(k))).collect();
    if values.is_empty() {
        values = vec![Value::Float(lo.max(1e-6)), Value::Float(hi)];
    }
    values
}

/// 1, 2, 5, 10, 20, 50, … within an integer range, or the choices.
fn sizes(kind: &Kind) -> Vec<Value> {
    let (lo, hi) = match kind {
        Kind::Int { lo, hi } | Kind::IntLog { lo, hi } => (*lo, *hi),
        Kind::Float { lo, hi } | Kind::Log { lo, hi } => (lo.ceil() as i64, hi.floor() as i64),
        Kind::Choice { choices } => {
            return choices.iter().map(|c| Value::Choice(c.clone())).collect();
        }
    };
    let mut values = Vec::new();
    let mut decade = 1i64;
    while decade <= hi {
        for step in [1, 2, 5] {
            let v = decade.saturating_mul(step);
            if (lo..=hi).contains(&v) {
                values.push(Value::Int(v));
            }
        }
        // The last decade that fits in an i64 ends the loop (saturating, it looped for ever
        // on a range up to i64::MAX).
        match decade.checked_mul(10) {
            Some(next) => decade = next,
            None => break,
        }
    }
    if values.is_empty() {
        values.push(Value::Int(lo));
    }
    values
}

/// The best trial of a stage by its best validation accuracy (the first of equals).
fn best(trials: &[Trial]) -> Option<&Trial> {
    trials
        .iter()
        .filter_map(|t| t.best().map(|(_, v)| (t, v)))
        .fold(None, |best: Option<(&Trial, f64)>, (t, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((t, v)),
        })
        .map(|(t, _)| t)
}

/// Whether a trial of the η stage learned: it did not fail, beat chance, and its accuracy
/// did not fall from its first epoch to its last.
fn learns(trial: &Trial) -> bool {
    trial.state != TrialState::Failed
        && matches!((trial.values.first(), trial.values.last()),
            (Some(&first), Some(&last)) if last >= first && last > LEARNS)
}

impl Sampler for Book {
    fn sample(&self, space: &Space, number: u32, trials: &[Trial]) -> Result<Params, SampleError> {
        let stages = stages(space);
        let mut chosen = Params::new();
        let mut start = 0usize;
        let number = number as usize;
        for (name, values) in &stages {
            let end = start + values.len();
            if number < end {
                let mut params = chosen;
                params.insert(name.to_string(), values[number - start].clone());
                return Ok(params);
            }
            // This stage's trials must all be finished before the next stage is chosen.
            let stage = trials.get(start..end).ok_or(SampleError::Waiting)?;
            if stage.iter().any(|t| !t.state.is_finished()) {
                return Err(SampleError::Waiting);
            }
            let value = if *name == "eta" {
                // The threshold: the largest η that learns; half of it (or of the smallest η
                // tried, if none does).
                let threshold = stage
                    .iter()
                    .filter(|t| learns(t))
                    .filter_map(|t| t.params.get("eta").and_then(Value::as_f64))
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                let smallest = values.first().and_then(Value::as_f64).unwrap_or(1.0);
                Value::Float(threshold.unwrap_or(smallest) / 2.0)
            } else {
                match best(stage).and_then(|t| t.params.get(*name)) {
                    Some(v) => v.clone(),
                    None => values[0].clone(),
                }
            };
            chosen.insert(name.to_string(), value);
            start = end;
        }
        Err(SampleError::RecipeDone {
            trials: start as u64,
        })
    }

    fn max_trials(&self, space: &Space) -> Result<Option<u64>, SampleError> {
        Ok(Some(
            stages(space).iter().map(|(_, v)| v.len() as u64).sum(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space::parse(&[
            "eta=log:0.001:100",
            "lambda=log:0.01:10",
            "mini-batch=int:1:60",
        ])
        .unwrap()
    }

    fn trial(number: u32, params: Params, values: &[f64], state: TrialState) -> Trial {
        Trial::new(number, params, state, values.to_vec())
    }

    #[test]
    fn sizes_end_at_the_top_of_an_i64_range() {
        let values = sizes(&Kind::Int {
            lo: 1,
            hi: i64::MAX,
        });
        // 1, 2, 5 of each decade up to 10^18, and 2·10^18 and 5·10^18.
        assert_eq!(values.len(), 19 * 3);
        assert_eq!(values.last(), Some(&Value::Int(5_000_000_000_000_000_000)));
    }

    #[test]
    fn the_stages_try_factors_of_ten_then_the_usual_sizes() {
        let s = stages(&space());
        let floats = |v: &[Value]| v.iter().filter_map(Value::as_f64).collect::<Vec<_>>();
        assert_eq!(floats(&s[0].1), [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]);
        assert_eq!(floats(&s[1].1), [0.01, 0.1, 1.0, 10.0]);
        assert_eq!(floats(&s[2].1), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(Book.max_trials(&space()).unwrap(), Some(16));
    }

    #[test]
    fn half_the_threshold_then_the_best_lambda_then_the_best_size() {
        let space = space();
        let mut trials = Vec::new();
        // η: 0.001 … 100; learning up to η = 1 (10 falls back, 100 diverges).
        let curves: [&[f64]; 6] = [
            &[20.0, 40.0],
            &[60.0, 80.0],
            &[85.0, 90.0],
            &[88.0, 93.0],
            &[50.0, 30.0],
            &[],
        ];
        for (k, curve) in curves.iter().enumerate() {
            let p = Book.sample(&space, k as u32, &trials).unwrap();
            let state = if curve.is_empty() {
                TrialState::Failed
            } else {
                TrialState::Complete
            };
            trials.push(trial(k as u32, p, curve, state));
        }
        // λ stage: η = 1/2.
        let p = Book.sample(&space, 6, &trials).unwrap();
        assert_eq!(p["eta"].as_f64(), Some(0.5));
        assert_eq!(p["lambda"].as_f64(), Some(0.01));
        // A λ trial unfinished: the size stage waits.
        for (k, best) in [(6u32, 90.0), (7, 94.0), (8, 92.0), (9, 80.0)] {
            let p = Book.sample(&space, k, &trials).unwrap();
            trials.push(trial(k, p, &[best], TrialState::Running));
        }
        assert_eq!(Book.sample(&space, 10, &trials), Err(SampleError::Waiting));
        for t in &mut trials[6..] {
            t.state = TrialState::Complete;
        }
        let p = Book.sample(&space, 10, &trials).unwrap();
        assert_eq!(p["lambda"].as_f64(), Some(0.1));
        assert_eq!(p["mini-batch"].as_i64(), Some(1));
        assert_eq!(p["eta"].as_f64(), Some(0.5));
    }
}
