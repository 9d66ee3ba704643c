//! Chapter 5's speed of learning (`--monitor-learning-speed`): each hidden layer's
//! ‖(1/n) Σₓ ∂Cₓ/∂bˡ‖ against the book's `backprop` summed by hand, against central finite
//! differences of the mean cost, for chapter 6's layers against the per-example reference
//! pass, and through the training loop (before training and after every epoch).

mod common;

use std::ops::ControlFlow;

use common::*;
use ndarray::Array1;
use nndl::config::{TrainConfig, Variant};
use nndl::data::Dataset;
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::init::Init;
use nndl::model::layers::{reference, spec, LayerNetwork};
use nndl::model::network::{one_hot, Network};
use nndl::train::{sgd, EpochRecord, Model, Observer};
use rand::RngExt;
use rand_distr::StandardNormal;

const SIZES: [usize; 5] = [6, 5, 4, 4, 3];

fn problem(cost: Cost, seed: u64) -> (Network, Dataset) {
    let mut rng = rng(seed);
    let net = Network::new(&SIZES, Init::StandardNormal, cost, &mut rng);
    let data = random_dataset(9, SIZES[0], SIZES[4] as u8, &mut rng);
    (net, data)
}

/// The mean cost over the first `n` examples.
fn mean_cost(net: &Network, data: &Dataset, n: usize) -> f64 {
    (0..n)
        .map(|i| {
            let a = net.feedforward(data.images().row(i));
            let y = one_hot(data.labels()[i], SIZES[4]);
            net.cost.value(a.as_slice().unwrap(), y.as_slice().unwrap())
        })
        .sum::<f64>()
        / n as f64
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1e-12)
}

#[test]
fn the_speeds_are_the_norms_of_backprops_average_bias_gradient() {
    for cost in [Cost::Quadratic, Cost::CrossEntropy, Cost::LogLikelihood] {
        let (net, data) = problem(cost, 3);
        for n in [1, 5, 9] {
            let speeds = net.learning_speeds(&data, n);
            assert_eq!(speeds.len(), SIZES.len() - 2, "one speed per hidden layer");
            let mut sums: Vec<Array1<f64>> =
                SIZES[1..4].iter().map(|&s| Array1::zeros(s)).collect();
            for i in 0..n {
                let y = one_hot(data.labels()[i], SIZES[4]);
                let g = net.backprop(data.images().row(i), y.view());
                for (s, b) in sums.iter_mut().zip(&g.nabla_b) {
                    *s += b;
                }
            }
            for (l, s) in sums.iter().enumerate() {
                let direct = (s / n as f64).mapv(|v| v * v).sum().sqrt();
                assert!(
                    close(speeds[l], direct, 1e-12),
                    "{cost:?}, n = {n}, layer {l}: {} against {direct}",
                    speeds[l]
                );
            }
        }
    }
}

#[test]
fn the_speeds_match_finite_differences_of_the_mean_cost() {
    let h = 1e-6;
    for cost in [Cost::Quadratic, Cost::CrossEntropy] {
        let (mut net, data) = problem(cost, 4);
        let n = 7;
        let speeds = net.learning_speeds(&data, n);
        for (l, &speed) in speeds.iter().enumerate() {
            let mut squares = 0.0;
            for j in 0..SIZES[l + 1] {
                let b = net.biases[l][j];
                net.biases[l][j] = b + h;
                let up = mean_cost(&net, &data, n);
                net.biases[l][j] = b - h;
                let down = mean_cost(&net, &data, n);
                net.biases[l][j] = b;
                squares += ((up - down) / (2.0 * h)).powi(2);
            }
            let numeric = squares.sqrt();
            assert!(
                close(speed, numeric, 1e-6),
                "{cost:?}, layer {l}: {speed} against finite differences {numeric}"
            );
        }
    }
}

#[test]
fn a_layer_lists_speeds_are_its_biases_average_gradient() {
    let mut rng = rng(5);
    let specs = spec::parse("conv:3:3,pool:2,fc:6,softmax", Activation::Sigmoid, 0.0).unwrap();
    let mut net: LayerNetwork = LayerNetwork::new(&specs, [1, 8, 8], 4, &mut rng).unwrap();
    // network3.py's zero softmax weights would leave every hidden gradient 0.
    for layer in &mut net.layers {
        for mut p in layer.parameters_mut() {
            p.mapv_inplace(|_| 0.5 * rng.sample::<f64, _>(StandardNormal));
        }
    }
    let data = random_dataset(150, 64, 4, &mut rng);
    // 150 images: two of the measure's chunks of 100, the second short.
    let n = 150;
    let speeds = net.learning_speeds(&data, n);
    assert_eq!(
        speeds.len(),
        2,
        "the conv-pool and the fully-connected layer"
    );
    let batch: Vec<usize> = (0..n).collect();
    let masks = vec![vec![None; net.layers.len()]; n];
    let slow = reference::gradient(&net, &data, &batch, &masks);
    for (l, &speed) in speeds.iter().enumerate() {
        // The biases: the parameter the L2 term does not cover (one per filter for a conv).
        let parameters = net.layers[l].parameters();
        let (p, _) = parameters
            .iter()
            .enumerate()
            .find(|(_, p)| !p.decays)
            .unwrap();
        let direct = (&slow.nabla[l][p] / n as f64).mapv(|v| v * v).sum().sqrt();
        assert!(speed > 0.0);
        assert!(
            close(speed, direct, 1e-10),
            "layer {l}: {speed} against the reference {direct}"
        );
    }
}

/// Records what the loop reports.
#[derive(Default)]
struct Speeds {
    start: Option<Vec<f64>>,
    after: Vec<(usize, Vec<f64>)>,
    epochs: usize,
}

impl Observer for Speeds {
    fn epoch(&mut self, record: &EpochRecord, _order: &[usize]) -> ControlFlow<()> {
        assert_eq!(
            self.after.last().map(|a| a.0),
            Some(record.epoch),
            "each epoch's speeds come before the epoch is reported"
        );
        self.epochs += 1;
        ControlFlow::Continue(())
    }

    fn learning_speed_images(&self) -> Option<usize> {
        Some(20)
    }

    fn learning_speed(&mut self, after_epoch: Option<usize>, speeds: &[f64]) {
        match after_epoch {
            None => self.start = Some(speeds.to_vec()),
            Some(e) => self.after.push((e, speeds.to_vec())),
        }
    }
}

#[test]
fn the_loop_measures_before_training_and_after_every_epoch() {
    let mut r = rng(6);
    let data = random_dataset(40, 6, 3, &mut r);
    let mut config = TrainConfig::book_run(Variant::Network3);
    config.sgd.epochs = 3;
    config.sgd.eta = 0.5;
    let fc = config.network.fully_connected_mut().unwrap();
    fc.sizes = SIZES.iter().map(|&s| if s == 3 { 10 } else { s }).collect();
    let checked = config.check().unwrap();
    let fc = checked.network.fully_connected().unwrap().clone();
    let mut net: Network = nndl::train::build_network(&fc, &mut rng(7));
    let start = net.learning_speeds(&data, 20);
    let mut observer = Speeds::default();
    sgd(&mut net, &checked, &data, &data, &mut rng(8), &mut observer).unwrap();
    assert_eq!(observer.start, Some(start));
    assert_eq!(observer.epochs, 3);
    let epochs: Vec<usize> = observer.after.iter().map(|a| a.0).collect();
    assert_eq!(epochs, [0, 1, 2]);
    assert_eq!(observer.after[2].1, net.learning_speeds(&data, 20));
    assert_ne!(
        observer.after[0].1, observer.after[2].1,
        "the network learned"
    );
}
