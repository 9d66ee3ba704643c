//! The loop's observer can end a run: after an epoch (as a pruner does) or in the middle of
//! one (as Ctrl-C does), leaving the network as the last scored epoch left it — or the best
//! epoch's under early stopping.

mod common;

use std::ops::ControlFlow;

use common::*;
use nndl::config::{TrainConfig, Variant};
use nndl::data::Dataset;
use nndl::model::network::Network;
use nndl::train::{build_network, sgd, train, EpochRecord, Observer, Stop};

/// Ends the run after epoch `after_epoch`, or after mini-batch `after_batch` of epoch
/// `in_epoch`.
struct StopAt {
    after_epoch: Option<usize>,
    in_epoch: Option<(usize, usize)>,
    epoch: usize,
}

impl Observer for StopAt {
    fn epoch(&mut self, record: &EpochRecord, _order: &[usize]) -> ControlFlow<()> {
        self.epoch = record.epoch + 1;
        match self.after_epoch {
            Some(e) if e == record.epoch => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }

    fn batch(&mut self, done: usize, _total: usize) -> ControlFlow<()> {
        match self.in_epoch {
            Some((e, b)) if e == self.epoch && b == done => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

fn problem() -> (Dataset, Dataset, TrainConfig) {
    let training = random_dataset(300, 784, 10, &mut rng(4));
    let evaluation = random_dataset(100, 784, 10, &mut rng(5));
    let mut config = TrainConfig::book_run(Variant::Network3);
    config.sgd.epochs = 6;
    config.seed = 9;
    (training, evaluation, config)
}

fn run_observed(
    config: &TrainConfig,
    data: &(Dataset, Dataset),
    mut observer: StopAt,
) -> (Network, nndl::train::History) {
    let checked = config.check().unwrap();
    let mut rng = nndl::rng::seeded(checked.seed);
    let mut net = build_network(checked.network.fully_connected().unwrap(), &mut rng);
    let history = sgd(
        &mut net,
        &checked,
        &data.0,
        &data.1,
        &mut rng,
        &mut observer,
    )
    .unwrap();
    (net, history)
}

#[test]
fn an_observer_ends_the_run_after_an_epoch() {
    let (training, evaluation, config) = problem();
    let data = (training, evaluation);
    let stop = StopAt {
        after_epoch: Some(2),
        in_epoch: None,
        epoch: 0,
    };
    let (net, history) = run_observed(&config, &data, stop);
    assert_eq!(history.stop, Stop::Observer { epoch: 2 });
    assert_eq!(history.epochs.len(), 3);
    // The same network as a run of three epochs.
    let mut three = config.clone();
    three.sgd.epochs = 3;
    let (after_three, h3) = train(&three, &data.0, &data.1, |_, _| {}).unwrap();
    assert_eq!(net, after_three);
    assert_eq!(h3.stop, Stop::Completed);
}

#[test]
fn an_interrupt_mid_epoch_goes_back_to_the_last_scored_epoch() {
    let (training, evaluation, config) = problem();
    let data = (training, evaluation);
    for backprop in [Variant::Network1, Variant::Network3] {
        let mut config = config.clone();
        config.sgd.backprop = backprop.backprop();
        // Stopped after 7 of epoch 3's 30 mini-batches: the network of a 3-epoch run.
        let stop = StopAt {
            after_epoch: None,
            in_epoch: Some((3, 7)),
            epoch: 0,
        };
        let (net, history) = run_observed(&config, &data, stop);
        assert_eq!(
            history.stop,
            Stop::Interrupted {
                epoch: 3,
                done: 7,
                total: 30
            }
        );
        assert_eq!(history.epochs.len(), 3);
        let mut three = config.clone();
        three.sgd.epochs = 3;
        let (after_three, _) = train(&three, &data.0, &data.1, |_, _| {}).unwrap();
        assert_eq!(net.weights, after_three.weights, "{backprop:?}");
        assert_eq!(net.biases, after_three.biases, "{backprop:?}");
        // Interrupted before any epoch was scored: the initial network.
        let stop = StopAt {
            after_epoch: None,
            in_epoch: Some((0, 1)),
            epoch: 0,
        };
        let (net, history) = run_observed(&config, &data, stop);
        assert!(history.epochs.is_empty());
        let checked = config.check().unwrap();
        let initial: Network = build_network(
            checked.network.fully_connected().unwrap(),
            &mut nndl::rng::seeded(9),
        );
        assert_eq!(net.weights, initial.weights);
    }
}

#[test]
fn an_interrupt_under_early_stopping_keeps_the_best_epoch() {
    let (training, evaluation, mut config) = problem();
    config.sgd.early_stop = Some(100);
    config.sgd.eta = 3.0;
    config.sgd.epochs = 12;
    let data = (training, evaluation);
    let stop = StopAt {
        after_epoch: None,
        in_epoch: Some((8, 5)),
        epoch: 0,
    };
    let (net, history) = run_observed(&config, &data, stop);
    assert_eq!(history.epochs.len(), 8);
    let best = history.best().unwrap();
    // The case is meaningful: the best epoch is not the last one scored.
    assert!(
        best.epoch < 7,
        "{:?}",
        history.epochs.iter().map(|e| e.correct).collect::<Vec<_>>()
    );
    assert_eq!(net.evaluate(&data.1), best.correct);
    // The best epoch's network, exactly.
    let mut upto = config.clone();
    upto.sgd.early_stop = None;
    upto.sgd.epochs = best.epoch + 1;
    let (at_best, _) = train(&upto, &data.0, &data.1, |_, _| {}).unwrap();
    assert_eq!(net.weights, at_best.weights);
}

/// Trains `config` epoch by epoch, saving the run after `stop_after` epochs, restoring it from
/// the bytes and training it to the end.
fn resumed(
    config: &TrainConfig,
    data: &(Dataset, Dataset),
    stop_after: usize,
) -> (Network, nndl::train::History) {
    use nndl::train::{EpochFn, Model, Training};
    let checked = config.check().unwrap();
    let mut rng = nndl::rng::seeded(checked.seed);
    let net: Network = build_network(checked.network.fully_connected().unwrap(), &mut rng);
    let mut run = Training::new(net, &checked, data.0.len(), rng);
    let mut stepper = run.model.step(&checked.sgd, checked.threads());
    let mut quiet = EpochFn(|_: &EpochRecord, _: &[usize]| {});
    for _ in 0..stop_after {
        run.epoch(&checked, &data.0, &data.1, &mut quiet, &mut stepper)
            .unwrap();
    }
    let bytes = run.save().unwrap();
    drop(run);
    let mut run: Training<Network> = Training::restore(&bytes, data.0.len()).unwrap();
    run.run(&checked, &data.0, &data.1, &mut quiet).unwrap();
    (run.model, run.history)
}

#[test]
fn a_saved_run_resumes_exactly() {
    let (training, evaluation, config) = problem();
    let data = (training, evaluation);
    let mut with_rules = config.clone();
    with_rules.sgd.dropout = 0.3;
    with_rules.sgd.early_stop = Some(3);
    with_rules.sgd.schedule = Some(nndl::config::EtaSchedule {
        patience: 1,
        min_ratio: 1.0 / 64.0,
    });
    with_rules.sgd.epochs = 10;
    let mut per_example = config.clone();
    per_example.sgd.backprop = Variant::Network1.backprop();
    per_example.sgd.dropout = 0.2;
    for config in [config, with_rules, per_example] {
        let (whole, whole_history) = train(&config, &data.0, &data.1, |_, _| {}).unwrap();
        for stop_after in [0, 1, 2, 4] {
            let (net, history) = resumed(&config, &data, stop_after);
            assert_eq!(net.weights, whole.weights, "after {stop_after}: {config:?}");
            assert_eq!(net.biases, whole.biases);
            assert_eq!(history.stop, whole_history.stop);
            let correct = |h: &nndl::train::History| {
                h.epochs
                    .iter()
                    .map(|e| (e.correct, e.eta))
                    .collect::<Vec<_>>()
            };
            assert_eq!(correct(&history), correct(&whole_history));
        }
    }
}

#[test]
fn a_damaged_saved_run_is_refused() {
    use nndl::train::{RestoreError, Training};
    let (training, _, config) = problem();
    let checked = config.check().unwrap();
    let mut rng = nndl::rng::seeded(1);
    let net: Network = build_network(checked.network.fully_connected().unwrap(), &mut rng);
    let bytes = Training::new(net, &checked, training.len(), rng)
        .save()
        .unwrap();
    assert!(Training::<Network>::restore(&bytes, training.len()).is_ok());
    let cut = Training::<Network>::restore(&bytes[..bytes.len() / 2], training.len());
    assert!(matches!(cut, Err(RestoreError::Format(_))));
    let other = Training::<Network>::restore(&bytes, training.len() + 1);
    assert!(
        matches!(other, Err(RestoreError::Mismatch(_))),
        "{:?}",
        other.err()
    );
}
