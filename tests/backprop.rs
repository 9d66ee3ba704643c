//! Backprop is checked against the definition of the derivative (central finite differences
//! of the cost) for both costs on a network with two hidden layers, and the matrix-based
//! mini-batch backprop against the per-example one.

mod common;

use common::*;
use nndl::batch::Batched;
use nndl::cost::Cost;
use nndl::data::Dataset;
use nndl::init::Init;
use nndl::network::{one_hot, Gradient, Network, Step};
use nndl::per_example::PerExample;
use nndl::train::UpdateMiniBatch;

const SIZES: [usize; 4] = [6, 5, 4, 3];

fn small_problem(cost: Cost, seed: u64) -> (Network, Dataset) {
    let mut rng = rng(seed);
    let net = Network::new(&SIZES, Init::StandardNormal, cost, &mut rng);
    let data = random_dataset(4, SIZES[0], SIZES[3] as u8, &mut rng);
    (net, data)
}

/// C = Σₓ C(a(x), y(x)) over all of `data`.
fn total_cost(net: &Network, data: &Dataset) -> f64 {
    (0..data.len())
        .map(|i| {
            let a = net.feedforward(data.images().row(i));
            let y = one_hot(data.labels()[i], SIZES[3]);
            net.cost.value(a.as_slice().unwrap(), y.as_slice().unwrap())
        })
        .sum()
}

fn per_example_gradient(net: &Network, data: &Dataset) -> Gradient {
    let mut g = Gradient::zeros_like(net);
    for i in 0..data.len() {
        let y = one_hot(data.labels()[i], SIZES[3]);
        let d = net.backprop(data.images().row(i), y.view());
        for (a, b) in g.nabla_w.iter_mut().zip(&d.nabla_w) {
            *a += b;
        }
        for (a, b) in g.nabla_b.iter_mut().zip(&d.nabla_b) {
            *a += b;
        }
    }
    g
}

fn batched_gradient(net: &Network, data: &Dataset) -> Gradient {
    let mut b = Batched::new(&net.sizes, data.len());
    let all: Vec<usize> = (0..data.len()).collect();
    b.gather(data, &all);
    b.backprop(net);
    b.gradient(net)
}

/// |got − want| ≤ rel · max(|got|, |want|, 1e-2): relative, with an absolute floor for values
/// near zero, where finite differences are dominated by round-off.
fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
    let scale = want.abs().max(got.abs()).max(1e-2);
    assert!(
        (got - want).abs() <= rel * scale,
        "{what}: backprop {got:e} vs expected {want:e}"
    );
}

fn finite_difference_check(cost: Cost) {
    let (net, data) = small_problem(cost, 11);
    let grad = per_example_gradient(&net, &data);
    let h = 1e-5;
    let numeric = |perturb: &dyn Fn(&mut Network, f64)| {
        let mut plus = net.clone();
        perturb(&mut plus, h);
        let mut minus = net.clone();
        perturb(&mut minus, -h);
        (total_cost(&plus, &data) - total_cost(&minus, &data)) / (2.0 * h)
    };
    for l in 0..net.weights.len() {
        for ((j, k), &g) in grad.nabla_w[l].indexed_iter() {
            let n = numeric(&|net: &mut Network, d| net.weights[l][[j, k]] += d);
            assert_close(&format!("{cost:?} dC/dw[{l}][{j},{k}]"), g, n, 1e-6);
        }
        for (j, &g) in grad.nabla_b[l].indexed_iter() {
            let n = numeric(&|net: &mut Network, d| net.biases[l][j] += d);
            assert_close(&format!("{cost:?} dC/db[{l}][{j}]"), g, n, 1e-6);
        }
    }
}

#[test]
fn quadratic_cost_gradient_matches_finite_differences() {
    finite_difference_check(Cost::Quadratic);
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    finite_difference_check(Cost::CrossEntropy);
}

#[test]
fn batched_backprop_equals_per_example_backprop() {
    for cost in [Cost::Quadratic, Cost::CrossEntropy] {
        let (net, data) = small_problem(cost, 5);
        let a = per_example_gradient(&net, &data);
        let b = batched_gradient(&net, &data);
        for l in 0..net.weights.len() {
            for (x, y) in a.nabla_w[l].iter().zip(&b.nabla_w[l]) {
                assert_close("nabla_w", *y, *x, 1e-12);
            }
            for (x, y) in a.nabla_b[l].iter().zip(&b.nabla_b[l]) {
                assert_close("nabla_b", *y, *x, 1e-12);
            }
        }
    }
}

#[test]
fn one_mini_batch_gives_the_same_weights_either_way() {
    for cost in [Cost::Quadratic, Cost::CrossEntropy] {
        let (net, data) = small_problem(cost, 9);
        let step = Step {
            eta: 3.0,
            lambda: 5.0,
            n: 1000,
        };
        // Two mini-batches, the second smaller, in a shuffled order.
        let batches: [&[usize]; 2] = [&[2, 0, 3], &[1]];
        let mut a = net.clone();
        let mut per_example = PerExample::new(&a);
        let mut b = net.clone();
        let mut batched = Batched::new(&b.sizes, 3);
        for batch in batches {
            per_example.update_mini_batch(&mut a, &data, batch, &step);
            batched.update_mini_batch(&mut b, &data, batch, &step);
        }
        assert_ne!(a.weights, net.weights, "the step changed nothing");
        for (wa, wb) in a.weights.iter().zip(&b.weights) {
            for (x, y) in wa.iter().zip(wb) {
                assert_close("weight", *y, *x, 1e-10);
            }
        }
        for (ba, bb) in a.biases.iter().zip(&b.biases) {
            for (x, y) in ba.iter().zip(bb) {
                assert_close("bias", *y, *x, 1e-10);
            }
        }
    }
}

#[test]
fn batched_feedforward_and_evaluate_match_the_per_example_ones() {
    let (net, _) = small_problem(Cost::CrossEntropy, 2);
    let data = random_dataset(2500, SIZES[0], SIZES[3] as u8, &mut rng(4));
    let out = net.feedforward_batch(data.images().t());
    let mut correct = 0;
    for i in 0..data.len() {
        let a = net.feedforward(data.images().row(i));
        for (x, y) in a.iter().zip(out.column(i)) {
            assert_close("activation", *y, *x, 1e-14);
        }
        correct +=
            usize::from(nndl::network::argmax(a.iter().copied()) == usize::from(data.labels()[i]));
    }
    assert_eq!(net.evaluate(&data), correct);
}

#[test]
fn weight_decay_follows_eq_93() {
    // With a zero gradient the update is pure decay: w → (1 − ηλ/n)·w, b unchanged.
    let (mut net, _) = small_problem(Cost::CrossEntropy, 1);
    let before = net.clone();
    let step = Step {
        eta: 0.5,
        lambda: 5.0,
        n: 50_000,
    };
    net.update(&Gradient::zeros_like(&net), 10, &step);
    let decay = 1.0 - 0.5 * 5.0 / 50_000.0;
    for (w, w0) in net.weights.iter().zip(&before.weights) {
        for (x, x0) in w.iter().zip(w0) {
            assert_eq!(*x, decay * x0);
        }
    }
    assert_eq!(net.biases, before.biases);
}

#[test]
fn f32_backprop_matches_f64_to_single_precision() {
    for cost in [Cost::CrossEntropy, Cost::Quadratic] {
        let (net, data) = small_problem(cost, 13);
        let net32: Network<f32> = Network {
            sizes: net.sizes.clone(),
            weights: net.weights.iter().map(|w| w.mapv(|v| v as f32)).collect(),
            biases: net.biases.iter().map(|b| b.mapv(|v| v as f32)).collect(),
            cost,
        };
        let data32 = data.cast::<f32>();
        let g64 = batched_gradient(&net, &data);
        let mut b = Batched::new(&net32.sizes, data32.len());
        let all: Vec<usize> = (0..data32.len()).collect();
        b.gather(&data32, &all);
        b.backprop(&net32);
        let g32 = b.gradient(&net32);
        for (w64, w32) in g64.nabla_w.iter().zip(&g32.nabla_w) {
            for (x, y) in w64.iter().zip(w32) {
                assert_close("f32 nabla_w", f64::from(*y), *x, 1e-4);
            }
        }
    }
}

/// One epoch of `data` in mini-batches of 10 with `step_fn`, from the same start.
fn epoch_with(
    net: &Network,
    data: &Dataset,
    mut step_fn: impl FnMut(&mut Network, &[usize]),
) -> Network {
    let mut net = net.clone();
    let order: Vec<usize> = (0..data.len()).rev().collect();
    for batch in order.chunks(10) {
        step_fn(&mut net, batch);
    }
    net
}

fn assert_same_network(what: &str, a: &Network, b: &Network, rel: f64) {
    for (wa, wb) in a.weights.iter().zip(&b.weights) {
        for (x, y) in wa.iter().zip(wb) {
            assert_close(what, *y, *x, rel);
        }
    }
    for (ba, bb) in a.biases.iter().zip(&b.biases) {
        for (x, y) in ba.iter().zip(bb) {
            assert_close(what, *y, *x, rel);
        }
    }
}

#[test]
fn fast_steps_match_the_books_update_mini_batch_over_an_epoch() {
    // MNIST-like inputs (mostly zero pixels, k/256 values) so the sparse and byte-copy paths
    // are the ones exercised; the network3 step (cross-entropy, L2) and the network1 step.
    let mut r = rng(21);
    let images = ndarray::Array2::from_shape_simple_fn((1000, 784), || {
        if rand::RngExt::random::<f64>(&mut r) < 0.8 {
            0.0
        } else {
            f64::from(rand::RngExt::random::<u8>(&mut r)) / 256.0
        }
    });
    let labels = (0..1000)
        .map(|_| rand::RngExt::random_range(&mut r, 0..10u8))
        .collect();
    let data = Dataset::new(images, labels);
    for (cost, init, eta, lambda) in [
        (Cost::Quadratic, Init::StandardNormal, 3.0, 0.0),
        (Cost::CrossEntropy, Init::ScaledNormal, 0.5, 5.0),
    ] {
        let net = Network::new(&[784, 30, 10], init, cost, &mut rng(5));
        let step = Step {
            eta,
            lambda,
            n: 1000,
        };
        let reference = epoch_with(&net, &data, |n, b| n.update_mini_batch(&data, b, &step));
        let mut per_example = PerExample::new(&net);
        let fast = epoch_with(&net, &data, |n, b| {
            per_example.update_mini_batch(n, &data, b, &step)
        });
        assert_same_network("per-example after an epoch", &reference, &fast, 1e-10);
        let mut batched = Batched::new(&net.sizes, 10);
        let fast = epoch_with(&net, &data, |n, b| {
            batched.update_mini_batch(n, &data, b, &step)
        });
        assert_same_network("batched after an epoch", &reference, &fast, 1e-10);
        assert_ne!(reference.weights, net.weights);
    }
}
