//! The samplers on a cheap known function: TPE, at the same budget, finds a better optimum
//! than random search on average over seeds.

use nndl::tune::sampler::random::Random;
use nndl::tune::sampler::tpe::Tpe;
use nndl::tune::sampler::Sampler;
use nndl::tune::space::{Params, Space, Value};
use nndl::tune::study::{Trial, TrialState};

/// A stand-in for validation accuracy (%) over η, λ and the hidden-layer size: a smooth peak of
/// 98% at η = 0.5, λ = 5, 100 hidden neurons, falling off with the distance in log10 units,
/// and a mini-batch size that costs 1% when it is not 10.
fn accuracy(params: &Params) -> f64 {
    let log10 = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_f64)
            .map_or(f64::NAN, f64::log10)
    };
    let eta = log10("eta") - 0.5f64.log10();
    let lambda = log10("lambda") - 5f64.log10();
    let hidden = log10("hidden") - 100f64.log10();
    let batch = match params.get("mini-batch").and_then(Value::as_i64) {
        Some(10) => 0.0,
        _ => 1.0,
    };
    98.0 - 8.0 * eta * eta - 4.0 * lambda * lambda - 6.0 * hidden * hidden - batch
}

fn space() -> Space {
    Space::parse(&[
        "eta=log:0.001:100",
        "lambda=log:0.001:100",
        "hidden=intlog:10:1000",
        "mini-batch=choice:5,10,20,50,100",
    ])
    .expect("a valid space")
}

/// Runs a study of `budget` trials one after another and returns its best accuracy.
fn best_of(sampler: &dyn Sampler, budget: u32) -> f64 {
    let space = space();
    let mut trials: Vec<Trial> = Vec::new();
    for number in 0..budget {
        let params = sampler
            .sample(&space, number, &trials)
            .expect("the sampler proposes a trial");
        let value = accuracy(&params);
        trials.push(Trial {
            number,
            params,
            state: TrialState::Complete,
            values: vec![value],
            worker: None,
            seconds: 0.0,
            message: None,
        });
    }
    trials
        .iter()
        .filter_map(|t| t.best())
        .map(|(_, v)| v)
        .fold(f64::NEG_INFINITY, f64::max)
}

#[test]
fn tpe_beats_random_search_on_average() {
    let seeds = 0..10u64;
    let budget = 40;
    let tpe: Vec<f64> = seeds
        .clone()
        .map(|s| best_of(&Tpe::new(s), budget))
        .collect();
    let random: Vec<f64> = seeds.map(|s| best_of(&Random::new(s), budget)).collect();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (tpe_mean, random_mean) = (mean(&tpe), mean(&random));
    println!(
        "mean best accuracy over 10 seeds, 40 trials: TPE {tpe_mean:.3}%, random {random_mean:.3}%"
    );
    println!("TPE per seed:    {tpe:.2?}");
    println!("random per seed: {random:.2?}");
    // The optimum is 98%; compare the distance to it (regret).
    let (tpe_regret, random_regret) = (98.0 - tpe_mean, 98.0 - random_mean);
    assert!(
        tpe_regret < 0.75 * random_regret,
        "TPE's regret {tpe_regret:.3} is not clearly below random search's {random_regret:.3}"
    );
}

#[test]
fn tpe_repeats_a_study_for_a_seed() {
    let space = space();
    let sampler = Tpe::new(3);
    let mut trials: Vec<Trial> = Vec::new();
    for number in 0..15 {
        let params = sampler.sample(&space, number, &trials).expect("a trial");
        // Asking again with the same inputs gives the same trial.
        assert_eq!(
            sampler.sample(&space, number, &trials).as_ref(),
            Ok(&params)
        );
        let value = accuracy(&params);
        trials.push(Trial {
            number,
            params,
            state: TrialState::Complete,
            values: vec![value],
            worker: None,
            seconds: 0.0,
            message: None,
        });
    }
    let other = Tpe::new(4).sample(&space, 15, &trials).expect("a trial");
    let again = sampler.sample(&space, 15, &trials).expect("a trial");
    assert_ne!(other, again, "another seed proposes the same trial");
}
