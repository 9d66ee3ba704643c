//! Chapter 3's tools in the training loop: monitors, early stopping (which must restore the
//! best epoch's weights) and the halving learning-rate schedule, on constructed cases.

mod common;

use common::*;
use nndl::config::{EtaSchedule, Monitor, TrainConfig, Variant};
use nndl::data::Dataset;
use nndl::train::{train, Stop};

/// 200 random training images, and an evaluation set of one image whose accuracy (0 or 1)
/// cannot move with a tiny η: after epoch 0 no epoch improves on it.
fn frozen_problem() -> (Dataset, Dataset, TrainConfig) {
    let training = random_dataset(200, 784, 10, &mut rng(1));
    let evaluation = random_dataset(1, 784, 10, &mut rng(2));
    let mut config = TrainConfig::book_run(Variant::Network3);
    config.sgd.eta = 1e-9;
    config.sgd.epochs = 50;
    config.seed = 3;
    (training, evaluation, config)
}

#[test]
fn early_stopping_ends_the_run_and_restores_the_best_epoch() {
    let (training, evaluation, mut config) = frozen_problem();
    config.sgd.early_stop = Some(3);
    let (net, history) = train(&config, &training, &evaluation, |_, _| {}).unwrap();
    assert_eq!(history.stop, Stop::NoImprovement { patience: 3 });
    // Epoch 0 is the best; three more without improvement, then stop.
    assert_eq!(history.epochs.len(), 4);
    assert_eq!(history.best().unwrap().epoch, 0);
    // The weights are epoch 0's: exactly those of the same run stopped after one epoch.
    let mut one = config.clone();
    one.sgd.early_stop = None;
    one.sgd.epochs = 1;
    let (after_first, _) = train(&one, &training, &evaluation, |_, _| {}).unwrap();
    let mut four = one.clone();
    four.sgd.epochs = 4;
    let (after_fourth, _) = train(&four, &training, &evaluation, |_, _| {}).unwrap();
    assert_eq!(net, after_first);
    assert_ne!(net, after_fourth);
}

#[test]
fn the_schedule_halves_eta_until_its_floor() {
    let (training, evaluation, mut config) = frozen_problem();
    config.sgd.schedule = Some(EtaSchedule {
        patience: 2,
        min_ratio: 1.0 / 8.0,
    });
    let (_, history) = train(&config, &training, &evaluation, |_, _| {}).unwrap();
    let etas: Vec<f64> = history
        .epochs
        .iter()
        .map(|e| e.eta / config.sgd.eta)
        .collect();
    // Epoch 0 is the best; every 2 epochs without improvement halve η; 1/8 ends the run.
    assert_eq!(etas, [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    assert_eq!(
        history.stop,
        Stop::EtaFloor {
            eta: config.sgd.eta / 8.0
        }
    );
}

#[test]
fn monitors_measure_what_network2_py_does() {
    let m = random_dataset(300, 784, 10, &mut rng(5));
    let mut config = TrainConfig::book_run(Variant::Network3);
    config.sgd.epochs = 2;
    config.sgd.monitor = Monitor {
        training_cost: true,
        training_accuracy: true,
        evaluation_cost: true,
    };
    let evaluation = m.head(100);
    let (net, history) = train(&config, &m, &evaluation, |_, _| {}).unwrap();
    let last = history.epochs.last().unwrap();
    assert_eq!(last.training_correct, Some(net.evaluate(&m)));
    assert_eq!(last.training_cost, Some(net.total_cost(&m, 5.0)));
    assert_eq!(last.evaluation_cost, Some(net.total_cost(&evaluation, 5.0)));
    // The L2 term is eq. (87)'s (λ/2n)·Σw², with n the size of the set being costed.
    let squares: f64 = net
        .weights
        .iter()
        .flat_map(|w| w.iter())
        .map(|w| w * w)
        .sum();
    let l2 = net.total_cost(&m, 5.0) - net.total_cost(&m, 0.0);
    assert!((l2 - 0.5 * 5.0 / 300.0 * squares).abs() < 1e-12 * l2);
    // Unmonitored runs leave them empty.
    config.sgd.monitor = Monitor::default();
    let (_, history) = train(&config, &m, &evaluation, |_, _| {}).unwrap();
    assert_eq!(history.epochs[0].training_cost, None);
    assert_eq!(history.epochs[0].training_correct, None);
}
