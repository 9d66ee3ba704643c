//! Backprop is checked against the definition of the derivative (central finite differences
//! of the cost) for every hidden activation with every cost (and so both output layers), with
//! and without fixed dropout masks, on a network with two hidden layers; then the fast
//! mini-batch steps against the book's reference, with and without dropout.

mod common;

use common::*;
use ndarray::Array1;
use nndl::data::Dataset;
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::init::Init;
use nndl::model::network::{one_hot, Gradient, Network};
use nndl::model::Step;
use nndl::train::batch::Batched;
use nndl::train::per_example::PerExample;
use nndl::train::step::UpdateMiniBatch;

const SIZES: [usize; 4] = [6, 5, 4, 3];

const ACTIVATIONS: [Activation; 3] = [Activation::Sigmoid, Activation::Tanh, Activation::Relu];
const COSTS: [Cost; 3] = [Cost::Quadratic, Cost::CrossEntropy, Cost::LogLikelihood];

/// Every hidden activation with every cost.
fn combinations() -> impl Iterator<Item = (Activation, Cost)> {
    ACTIVATIONS
        .into_iter()
        .flat_map(|a| COSTS.into_iter().map(move |c| (a, c)))
}

fn small_problem(activation: Activation, cost: Cost, seed: u64) -> (Network, Dataset) {
    let mut rng = rng(seed);
    let net =
        Network::new(&SIZES, Init::StandardNormal, cost, &mut rng).with_activation(activation);
    let data = random_dataset(4, SIZES[0], SIZES[3] as u8, &mut rng);
    (net, data)
}

/// One set of dropout masks per example of `data`.
type Masks = Vec<Vec<Array1<f64>>>;

/// Masks for each of `n` examples, dropping with probability `p`, drawn from seed `seed` in
/// the order every implementation draws them.
fn example_masks(net: &Network, n: usize, p: f64, seed: u64) -> Masks {
    let mut r = rng(seed);
    (0..n).map(|_| net.draw_masks(p, &mut r)).collect()
}

/// C = Σₓ C(a(x), y(x)) over all of `data`, each example thinned by its masks (if any).
fn total_cost(net: &Network, data: &Dataset, masks: &Masks) -> f64 {
    (0..data.len())
        .map(|i| {
            let m = masks.get(i).map_or(&[][..], |m| &m[..]);
            let a = net.feedforward_masked(data.images().row(i), m);
            let y = one_hot(data.labels()[i], SIZES[3]);
            net.cost.value(a.as_slice().unwrap(), y.as_slice().unwrap())
        })
        .sum()
}

fn add(sum: &mut Gradient, g: &Gradient) {
    for (a, b) in sum.nabla_w.iter_mut().zip(&g.nabla_w) {
        *a += b;
    }
    for (a, b) in sum.nabla_b.iter_mut().zip(&g.nabla_b) {
        *a += b;
    }
}

fn per_example_gradient(net: &Network, data: &Dataset, masks: &Masks) -> Gradient {
    let mut g = Gradient::zeros_like(net);
    for i in 0..data.len() {
        let y = one_hot(data.labels()[i], SIZES[3]);
        let m = masks.get(i).map_or(&[][..], |m| &m[..]);
        add(
            &mut g,
            &net.backprop_masked(data.images().row(i), y.view(), m),
        );
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

fn assert_same_gradient(what: &str, a: &Gradient, b: &Gradient, rel: f64) {
    for (wa, wb) in a.nabla_w.iter().zip(&b.nabla_w) {
        for (x, y) in wa.iter().zip(wb) {
            assert_close(&format!("{what} nabla_w"), *y, *x, rel);
        }
    }
    for (ba, bb) in a.nabla_b.iter().zip(&b.nabla_b) {
        for (x, y) in ba.iter().zip(bb) {
            assert_close(&format!("{what} nabla_b"), *y, *x, rel);
        }
    }
}

/// Every ∂C/∂w and ∂C/∂b of backprop against (C(θ + h) − C(θ − h)) / 2h.
fn finite_difference_check(net: &Network, data: &Dataset, masks: &Masks, what: &str) {
    let grad = per_example_gradient(net, data, masks);
    let h = 1e-5;
    let numeric = |perturb: &dyn Fn(&mut Network, f64)| {
        let mut plus = net.clone();
        perturb(&mut plus, h);
        let mut minus = net.clone();
        perturb(&mut minus, -h);
        (total_cost(&plus, data, masks) - total_cost(&minus, data, masks)) / (2.0 * h)
    };
    let mut nonzero = 0;
    for l in 0..net.weights.len() {
        for ((j, k), &g) in grad.nabla_w[l].indexed_iter() {
            let n = numeric(&|net: &mut Network, d| net.weights[l][[j, k]] += d);
            assert_close(&format!("{what} dC/dw[{l}][{j},{k}]"), g, n, 1e-6);
            nonzero += usize::from(g != 0.0);
        }
        for (j, &g) in grad.nabla_b[l].indexed_iter() {
            let n = numeric(&|net: &mut Network, d| net.biases[l][j] += d);
            assert_close(&format!("{what} dC/db[{l}][{j}]"), g, n, 1e-6);
        }
    }
    assert!(
        nonzero > 20,
        "{what}: only {nonzero} weights have a gradient"
    );
}

#[test]
fn gradients_match_finite_differences_for_every_activation_and_cost() {
    for (activation, cost) in combinations() {
        let (net, data) = small_problem(activation, cost, 11);
        finite_difference_check(
            &net,
            &data,
            &Vec::new(),
            &format!("{activation:?}/{cost:?}"),
        );
    }
}

#[test]
fn dropout_gradients_match_finite_differences_with_fixed_masks() {
    for (activation, cost) in combinations() {
        let (net, data) = small_problem(activation, cost, 12);
        let masks = example_masks(&net, data.len(), 0.5, 3);
        let all = masks.iter().flatten().flat_map(|m| m.iter());
        let dropped = all.clone().filter(|&&s| s == 0.0).count();
        assert!(
            dropped > 0 && dropped < all.count(),
            "masks must drop some, not all"
        );
        let what = format!("{activation:?}/{cost:?} with dropout");
        finite_difference_check(&net, &data, &masks, &what);
        // And the masks matter: the gradient differs from the whole network's.
        let whole = per_example_gradient(&net, &data, &Vec::new());
        assert_ne!(per_example_gradient(&net, &data, &masks), whole, "{what}");
    }
}

#[test]
fn softmax_outputs_are_a_distribution() {
    let (net, data) = small_problem(Activation::Relu, Cost::LogLikelihood, 6);
    for i in 0..data.len() {
        let a = net.feedforward(data.images().row(i));
        assert!(a.iter().all(|&v| v > 0.0));
        assert!((a.sum() - 1.0).abs() < 1e-15);
    }
}

#[test]
fn batched_backprop_equals_per_example_backprop() {
    for (activation, cost) in combinations() {
        let (net, data) = small_problem(activation, cost, 5);
        let a = per_example_gradient(&net, &data, &Vec::new());
        let b = batched_gradient(&net, &data);
        assert_same_gradient(&format!("{activation:?}/{cost:?}"), &a, &b, 1e-12);
    }
}

#[test]
fn batched_dropout_uses_the_masks_the_reference_draws() {
    // Batched draws its masks example by example, as the reference does: the same rng gives
    // the same thinned networks and so the same gradient.
    for (activation, cost) in combinations() {
        let (net, data) = small_problem(activation, cost, 8);
        let masks = example_masks(&net, data.len(), 0.3, 4);
        let want = per_example_gradient(&net, &data, &masks);
        let mut b = Batched::new(&net.sizes, data.len());
        let all: Vec<usize> = (0..data.len()).collect();
        b.gather(&data, &all);
        b.draw_masks(0.3, &mut rng(4));
        b.backprop(&net);
        let what = format!("{activation:?}/{cost:?} batched dropout");
        assert_same_gradient(&what, &want, &b.gradient(&net), 1e-12);
    }
}

#[test]
fn one_mini_batch_gives_the_same_weights_either_way() {
    for (activation, cost) in combinations() {
        for dropout in [0.0, 0.5] {
            let (net, data) = small_problem(activation, cost, 9);
            let step = Step {
                eta: 0.5,
                lambda: 5.0,
                n: 1000,
                dropout,
            };
            // Two mini-batches, the second smaller, in a shuffled order.
            let batches: [&[usize]; 2] = [&[2, 0, 3], &[1]];
            let mut a = net.clone();
            let mut per_example = PerExample::new(&a);
            let mut b = net.clone();
            let mut batched = Batched::new(&b.sizes, 3);
            let (mut ra, mut rb) = (rng(1), rng(1));
            for batch in batches {
                per_example.update_mini_batch(&mut a, &data, batch, &step, &mut ra);
                batched.update_mini_batch(&mut b, &data, batch, &step, &mut rb);
            }
            assert_ne!(a.weights, net.weights, "the step changed nothing");
            let what = format!("{activation:?}/{cost:?}, dropout {dropout}");
            assert_same_network(&what, &a, &b, 1e-10);
        }
    }
}

#[test]
fn batched_feedforward_and_evaluate_match_the_per_example_ones() {
    for (activation, cost) in combinations() {
        let (net, _) = small_problem(activation, cost, 2);
        let data = random_dataset(2500, SIZES[0], SIZES[3] as u8, &mut rng(4));
        let out = net.feedforward_batch(data.images().t());
        let mut correct = 0;
        for i in 0..data.len() {
            let a = net.feedforward(data.images().row(i));
            for (x, y) in a.iter().zip(out.column(i)) {
                assert_close("activation", *y, *x, 1e-14);
            }
            correct += usize::from(
                nndl::model::network::argmax(a.iter().copied()) == usize::from(data.labels()[i]),
            );
        }
        assert_eq!(net.evaluate(&data), correct);
    }
}

#[test]
fn weight_decay_follows_eq_93() {
    // With a zero gradient the update is pure decay: w → (1 − ηλ/n)·w, b unchanged.
    let (mut net, _) = small_problem(Activation::Sigmoid, Cost::CrossEntropy, 1);
    let before = net.clone();
    let step = Step {
        eta: 0.5,
        lambda: 5.0,
        n: 50_000,
        dropout: 0.0,
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
    for (activation, cost) in combinations() {
        let (net, data) = small_problem(activation, cost, 13);
        let net32: Network<f32> = Network {
            sizes: net.sizes.clone(),
            weights: net.weights.iter().map(|w| w.mapv(|v| v as f32)).collect(),
            biases: net.biases.iter().map(|b| b.mapv(|v| v as f32)).collect(),
            activation,
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
    // are the ones exercised: the network1 step, the network3 step (cross-entropy, L2), and
    // the other output layer and activations, with dropout.
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
    for (activation, cost, init, eta, lambda, dropout) in [
        (
            Activation::Sigmoid,
            Cost::Quadratic,
            Init::StandardNormal,
            3.0,
            0.0,
            0.0,
        ),
        (
            Activation::Sigmoid,
            Cost::CrossEntropy,
            Init::ScaledNormal,
            0.5,
            5.0,
            0.0,
        ),
        (
            Activation::Relu,
            Cost::LogLikelihood,
            Init::ScaledNormal,
            0.1,
            5.0,
            0.5,
        ),
        (
            Activation::Tanh,
            Cost::CrossEntropy,
            Init::ScaledNormal,
            0.1,
            0.0,
            0.2,
        ),
    ] {
        let net = Network::new(&[784, 30, 10], init, cost, &mut rng(5)).with_activation(activation);
        let step = Step {
            eta,
            lambda,
            n: 1000,
            dropout,
        };
        let what = format!("{activation:?}/{cost:?}, dropout {dropout}");
        let mut r = rng(6);
        let reference = epoch_with(&net, &data, |n, b| {
            n.update_mini_batch(&data, b, &step, &mut r)
        });
        let mut per_example = PerExample::new(&net);
        let mut r = rng(6);
        let fast = epoch_with(&net, &data, |n, b| {
            per_example.update_mini_batch(n, &data, b, &step, &mut r)
        });
        assert_same_network(&format!("{what}: per-example"), &reference, &fast, 1e-10);
        let mut batched = Batched::new(&net.sizes, 10);
        let mut r = rng(6);
        let fast = epoch_with(&net, &data, |n, b| {
            batched.update_mini_batch(n, &data, b, &step, &mut r)
        });
        assert_same_network(&format!("{what}: batched"), &reference, &fast, 1e-10);
        assert_ne!(reference.weights, net.weights);
        if dropout > 0.0 {
            // The masks matter: without them the epoch ends elsewhere.
            let plain = Step {
                dropout: 0.0,
                ..step
            };
            let mut r = rng(6);
            let without = epoch_with(&net, &data, |n, b| {
                n.update_mini_batch(&data, b, &plain, &mut r)
            });
            assert_ne!(without.weights, reference.weights, "{what}");
        }
    }
}

/// In `f32`, network2's step through the small-batch kernels (forward products and the fused
/// update, where the CPU has them) ends as the step through general products does: a full
/// mini-batch of 10 and a short one, inputs that fill strips of the kernels' lanes and leave a
/// tail, with and without dropout.
#[test]
fn the_f32_step_through_the_kernels_is_the_general_one() {
    let sizes = [19, 13, 10];
    for (activation, cost) in combinations() {
        for dropout in [0.0, 0.5] {
            let mut r = rng(21);
            let net: Network<f32> = Network::new(&sizes, Init::StandardNormal, cost, &mut r)
                .with_activation(activation);
            let data = random_dataset(12, sizes[0], sizes[2] as u8, &mut r).cast::<f32>();
            let step = Step {
                eta: 0.5,
                lambda: 5.0,
                n: 1000,
                dropout,
            };
            let batches: [&[usize]; 2] = [&[3, 0, 7, 11, 2, 9, 4, 1, 8, 10], &[5, 6]];
            let trained = |general: bool| {
                let mut net = net.clone();
                let mut batched = Batched::new(&net.sizes, 10);
                if general {
                    batched.use_general_products();
                }
                let mut r = rng(2);
                for batch in batches {
                    batched.update_mini_batch(&mut net, &data, batch, &step, &mut r);
                    // On the CPUs CI runs on, the kernels are what a mini-batch of up to 10
                    // takes in f32.
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("fma")
                        && std::arch::is_x86_feature_detected!("avx2")
                    {
                        assert_eq!(batched.small_batch_kernels(&net), !general);
                    }
                }
                net
            };
            let (kernels, general) = (trained(false), trained(true));
            assert_ne!(general.weights, net.weights, "the step changed nothing");
            let what = format!("{activation:?}/{cost:?}, dropout {dropout}");
            let values = |n: &Network<f32>| -> Vec<f64> {
                let w = n.weights.iter().flat_map(|w| w.iter());
                w.chain(n.biases.iter().flat_map(|b| b.iter()))
                    .map(|&v| f64::from(v))
                    .collect()
            };
            for (x, y) in values(&kernels).into_iter().zip(values(&general)) {
                assert_close(&what, x, y, 1e-4);
            }
        }
    }
}
