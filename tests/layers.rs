//! Chapter 6's layers: the fast mini-batch passes against the slow per-example reference
//! (outputs and gradients, with and without dropout masks), the reference's gradients against
//! finite differences of its cost, `network3.py`'s update rule, the training step's fused
//! backward pass and update (small-batch kernels and general products) against the gradients
//! and the update done apart, and the model file.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewD, Ix1, Ix2};
use nndl::data::Dataset;
use nndl::model::activation::Activation;
use nndl::model::layers::pass::Pass;
use nndl::model::layers::{reference, spec, Layer, LayerNetwork};
use nndl::rng::{seeded, SeededRng};
use rand::RngExt;
use rand_distr::StandardNormal;

/// Small networks covering every layer kind, activation and option, on `input`-shaped
/// examples: (layer list, activation, input shape).
const NETS: [(&str, Activation, [usize; 3]); 7] = [
    (
        "conv:3:5,pool:2,fc:7,softmax",
        Activation::Sigmoid,
        [1, 12, 12],
    ),
    (
        "conv:2:3,pool:2,conv:3:2,fc:6:dropout=0.5,softmax:dropout=0.3",
        Activation::Relu,
        [1, 12, 12],
    ),
    (
        "conv:2:3,pool:2,conv:3:2,pool:2,softmax",
        Activation::Tanh,
        [1, 12, 12],
    ),
    (
        "fc:8:dropout=0.25,fc:5,softmax",
        Activation::Tanh,
        [1, 6, 6],
    ),
    (
        "conv:4:3,softmax:dropout=0.5",
        Activation::Sigmoid,
        [1, 7, 9],
    ),
    // Two input channels and a pool other than 2×2 (the kernels' general path).
    ("conv:3:4,pool:3,softmax", Activation::Relu, [2, 9, 12]),
    // Maps 16 and 8 wide: both convolutions' forward products and ∇W by the direct kernels,
    // the second's input error by a general product and col2im.
    (
        "conv:3:3,pool:2,conv:2:1,fc:5,softmax",
        Activation::Sigmoid,
        [1, 10, 18],
    ),
];

/// A network of `layers` with every weight and bias drawn N(0, 0.5²) — not `network3.py`'s
/// initialisation, whose zero softmax weights would hide the other layers' gradients.
fn network(
    layers: &str,
    activation: Activation,
    input: [usize; 3],
    rng: &mut SeededRng,
) -> LayerNetwork {
    let specs = spec::parse(layers, activation, 0.0).unwrap();
    let mut net = LayerNetwork::new(&specs, input, 10, rng).unwrap();
    for layer in &mut net.layers {
        for mut p in layer.parameters_mut() {
            p.mapv_inplace(|_| 0.5 * rng.sample::<f64, _>(StandardNormal));
        }
    }
    net
}

/// The weights of a layer: its first parameter (every kind here has one (W, b) pair).
fn weights(layer: &Layer) -> ArrayView2<'_, f64> {
    let first = layer.parameters().swap_remove(0);
    first.values.into_dimensionality::<Ix2>().unwrap()
}

/// The biases of a layer: its second parameter.
fn biases(layer: &Layer) -> ArrayView1<'_, f64> {
    let second = layer.parameters().swap_remove(1);
    second.values.into_dimensionality::<Ix1>().unwrap()
}

/// Sets value `at` (row-major) of parameter `p` of `layer`.
fn set(layer: &mut Layer, p: usize, at: usize, value: f64) {
    layer.parameters_mut()[p].as_slice_mut().unwrap()[at] = value;
}

/// A gradient as a matrix (a bias gradient as one row).
fn matrix(g: ArrayViewD<'_, f64>) -> Array2<f64> {
    let cols = g.shape().last().copied().unwrap_or(1);
    g.to_owned()
        .into_shape_with_order((g.len() / cols, cols))
        .unwrap()
}

/// `n` random examples of `input` values in [0, 1) with random labels.
fn data(n: usize, input: [usize; 3], rng: &mut SeededRng) -> Dataset {
    let values: usize = input.iter().product();
    let images = Array2::from_shape_simple_fn((n, values), || rng.random::<f64>());
    let labels = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    Dataset::new(images, labels)
}

/// Random 0/1 masks for each example of a mini-batch of `m` and each dense layer with dropout,
/// as the reference takes them (`masks[e][l]`).
fn masks(net: &LayerNetwork, m: usize, rng: &mut SeededRng) -> Vec<Vec<Option<Vec<f64>>>> {
    (0..m)
        .map(|_| {
            net.layers
                .iter()
                .map(|layer| {
                    let p = Some(layer.dropout()).filter(|&p| p > 0.0)?;
                    let n_in: usize = layer.input().iter().product();
                    Some(
                        (0..n_in)
                            .map(|_| f64::from(u8::from(rng.random::<f64>() >= p)))
                            .collect(),
                    )
                })
                .collect()
        })
        .collect()
}

/// Sets the dropout masks of the gathered mini-batch by hand (`masks[e][l]`).
fn set_masks(pass: &mut Pass<f64>, net: &LayerNetwork, masks: &[Vec<Option<Vec<f64>>>]) {
    for l in 0..net.layers.len() {
        if net.layers[l].dropout() > 0.0 {
            let buffer = pass.masks_mut(l);
            for (e, example) in masks.iter().enumerate() {
                let mask = example[l].as_ref().unwrap();
                for (i, &v) in mask.iter().enumerate() {
                    buffer[[e, i]] = v;
                }
            }
        }
    }
}

/// A training pass over `batch` with the given masks, its gradients left in the pass.
fn fast_gradient(
    net: &LayerNetwork,
    data: &Dataset,
    batch: &[usize],
    masks: &[Vec<Option<Vec<f64>>>],
) -> Pass<f64> {
    let mut pass = Pass::new(net, batch.len() + 2, true);
    pass.gather(data, batch);
    set_masks(&mut pass, net, masks);
    pass.forward(net);
    pass.backward(net);
    pass
}

fn max_relative(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
    (&a - &b).iter().fold(0.0f64, |m, v| m.max(v.abs())) / scale
}

#[test]
fn fast_gradients_match_the_per_example_reference() {
    let mut rng = seeded(1);
    for (layers, activation, input) in NETS {
        let net = network(layers, activation, input, &mut rng);
        let data = data(9, input, &mut rng);
        // A full mini-batch, and a shorter one in buffers made for more (the last of an epoch).
        for batch in [vec![4, 0, 7, 2, 8], vec![3, 1]] {
            let masks = masks(&net, batch.len(), &mut rng);
            let pass = fast_gradient(&net, &data, &batch, &masks);
            let slow = reference::gradient(&net, &data, &batch, &masks);
            for l in 0..net.layers.len() {
                let fast = pass.gradients(&net, l);
                assert_eq!(fast.len(), slow.nabla[l].len());
                for (p, (fast, slow)) in fast.iter().zip(&slow.nabla[l]).enumerate() {
                    let d = max_relative(matrix(fast.view()).view(), matrix(slow.view()).view());
                    assert!(
                        d < 1e-12,
                        "{layers}, layer {l}, parameter {p}: off by {d:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn reference_gradients_match_finite_differences() {
    let mut rng = seeded(2);
    let (lambda, batches) = (0.7, 3);
    for (layers, activation, input) in NETS {
        let mut net = network(layers, activation, input, &mut rng);
        let data = data(4, input, &mut rng);
        let batch = [0, 1, 2, 3];
        let masks = masks(&net, batch.len(), &mut rng);
        let g = reference::gradient(&net, &data, &batch, &masks);
        let m = batch.len() as f64;
        let h = 1e-6;
        let mut worst = 0.0f64;
        for l in 0..net.layers.len() {
            let decays: Vec<bool> = net.layers[l]
                .parameters()
                .iter()
                .map(|p| p.decays)
                .collect();
            for (p, &decays) in decays.iter().enumerate() {
                let values = net.layers[l].parameters()[p].values.to_owned();
                let values = values.as_slice().unwrap().to_vec();
                // Every value of a vector (biases), a spread of a matrix's (all of them in the
                // small layers).
                let step = (values.len() / 40).max(1);
                for k in (0..values.len()).step_by(step) {
                    let v0 = values[k];
                    let decay = if decays {
                        lambda * v0 / batches as f64
                    } else {
                        0.0
                    };
                    let analytic = g.nabla[l][p].as_slice().unwrap()[k] / m + decay;
                    let mut at = |v: f64| {
                        set(&mut net.layers[l], p, k, v);
                        reference::cost(&net, &data, &batch, &masks, lambda, batches)
                    };
                    let numeric = (at(v0 + h) - at(v0 - h)) / (2.0 * h);
                    at(v0);
                    worst = worst.max(
                        (numeric - analytic).abs() / (1e-4 + numeric.abs().max(analytic.abs())),
                    );
                }
            }
        }
        assert!(
            worst < 1e-5,
            "{layers}: gradient off finite differences by {worst:e}"
        );
    }
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    // The finite-difference check above can fail: a gradient with one weight's entry
    // perturbed by 1% is far outside its tolerance.
    let mut rng = seeded(3);
    let (layers, activation, input) = NETS[0];
    let mut net = network(layers, activation, input, &mut rng);
    let data = data(2, input, &mut rng);
    let masks = masks(&net, 2, &mut rng);
    let g = reference::gradient(&net, &data, &[0, 1], &masks);
    let w0 = weights(&net.layers[0])[[1, 3]];
    let cols = weights(&net.layers[0]).ncols();
    let analytic = 1.01 * g.nabla[0][0].as_slice().unwrap()[cols + 3] / 2.0;
    let h = 1e-6;
    let mut at = |w: f64| {
        set(&mut net.layers[0], 0, cols + 3, w);
        reference::cost(&net, &data, &[0, 1], &masks, 0.0, 1)
    };
    let numeric = (at(w0 + h) - at(w0 - h)) / (2.0 * h);
    assert!((numeric - analytic).abs() / numeric.abs() > 1e-3);
}

#[test]
fn evaluation_outputs_match_the_reference() {
    let mut rng = seeded(4);
    for (layers, activation, input) in NETS {
        let net = network(layers, activation, input, &mut rng);
        let data = data(13, input, &mut rng);
        // 13 examples at once (general products), then 7 (small-batch kernels).
        let mut pass = Pass::new(&net, 13, false);
        pass.gather(&data, &(0..13).collect::<Vec<_>>());
        pass.forward(&net);
        for k in 0..13 {
            let slow = reference::feedforward(&net, &reference::example(&data, k));
            for (j, &v) in slow.iter().enumerate() {
                assert!(
                    (pass.output()[[j, k]] - v).abs() < 1e-13,
                    "{layers}: example {k} of 13, output {j}"
                );
            }
        }
        pass.gather(&data, &[0, 1, 2, 3, 4, 5, 6]);
        pass.forward(&net);
        let out = pass.output();
        for k in 0..7 {
            let slow = reference::feedforward(&net, &reference::example(&data, k));
            for (j, &v) in slow.iter().enumerate() {
                assert!(
                    (out[[j, k]] - v).abs() < 1e-13,
                    "{layers}: example {k}, output {j}"
                );
            }
            let sum: f64 = slow.iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "softmax outputs sum to 1");
        }
        let predictions = net.predictions(&data);
        let correct = (0..13)
            .filter(|&k| predictions[k] == usize::from(data.labels()[k]))
            .count();
        assert_eq!(net.evaluate(&data), correct);
    }
}

#[test]
fn the_update_is_network3s_rule() {
    let mut rng = seeded(5);
    let (layers, activation, input) = NETS[1];
    let net = network(layers, activation, input, &mut rng);
    let data = data(5, input, &mut rng);
    let batch = [0, 1, 2, 3, 4];
    let masks = masks(&net, 5, &mut rng);
    let mut pass = fast_gradient(&net, &data, &batch, &masks);
    let (eta, lambda, batches) = (0.3, 2.0, 7);
    let mut updated = net.clone();
    pass.update(&mut updated, eta, lambda, batches);
    for l in 0..net.layers.len() {
        let g = pass.gradients(&net, l);
        let (nw, nb) = (matrix(g[0].view()), g[1].view());
        let w = weights(&net.layers[l]);
        let expected = &w - &(eta * (nw / 5.0 + lambda * &w / batches as f64));
        assert!(max_relative(weights(&updated.layers[l]), expected.view()) < 1e-14);
        let expected_b = &biases(&net.layers[l]) - &(eta * &nb / 5.0);
        assert!((&biases(&updated.layers[l]) - &expected_b)
            .iter()
            .all(|d| d.abs() < 1e-14));
    }
}

/// The training step's fused backward pass and update — through `small_batch`'s kernels
/// for a mini-batch of up to 10, and through general products for a larger one or when told
/// to — against the gradients and the update done apart.
#[test]
fn the_training_step_is_backward_then_update() {
    let mut rng = seeded(8);
    let (eta, lambda, batches) = (0.3, 2.0, 7);
    for (layers, activation, input) in NETS {
        let net = network(layers, activation, input, &mut rng);
        let data = data(14, input, &mut rng);
        // (mini-batch, buffers made for, general products only): a short last mini-batch and
        // full ones, through the kernels and not.
        for (batch, m_max, general) in [
            (vec![4, 0, 7, 2, 8], 6, false),
            (vec![4, 0, 7, 2, 8], 6, true),
            ((0..10).collect(), 10, false),
            ((0..13).rev().collect::<Vec<_>>(), 13, false),
        ] {
            let m = batch.len();
            let masks = masks(&net, m, &mut rng);
            let mut apart = fast_gradient(&net, &data, &batch, &masks);
            let mut expected = net.clone();
            apart.update(&mut expected, eta, lambda, batches);

            let mut fused = net.clone();
            let mut pass = Pass::new(&net, m_max, true);
            if general {
                pass.use_general_products(&net);
            }
            // On the CPUs CI runs on, the kernels are what a mini-batch of up to 10 takes.
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("avx2")
            {
                assert_eq!(pass.small_batch_kernels(m), !general && m <= 10);
            }
            pass.gather(&data, &batch);
            set_masks(&mut pass, &net, &masks);
            pass.forward(&fused);
            pass.backward_update(&mut fused, eta, lambda, batches);
            for l in 0..net.layers.len() {
                let (got, want) = (&fused.layers[l], &expected.layers[l]);
                let dw = max_relative(weights(got), weights(want));
                let b = |layer| biases(layer).insert_axis(ndarray::Axis(0));
                let db = max_relative(b(got), b(want));
                assert!(
                    dw < 1e-13 && db < 1e-13,
                    "{layers}, m = {m}, general {general}: layer {l} off by {dw:e} / {db:e}"
                );
                assert_ne!(
                    weights(got),
                    weights(&net.layers[l]),
                    "{layers}: layer {l} moved"
                );
            }
        }
    }
}

#[test]
fn network3s_initial_weights() {
    let mut rng = seeded(6);
    let specs = spec::parse("conv:20:5,pool:2,fc:100,softmax", Activation::Sigmoid, 0.0).unwrap();
    let net: LayerNetwork = LayerNetwork::new(&specs, [1, 28, 28], 10, &mut rng).unwrap();
    let sd = |w: ArrayView2<f64>| (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    // Convolution: N(0, 1/n_out) with n_out = 20·5·5/(2·2) = 125.
    let conv = sd(weights(&net.layers[0]));
    assert!((conv - (1.0f64 / 125.0).sqrt()).abs() < 0.01, "{conv}");
    let fc = sd(weights(&net.layers[1]));
    assert!((fc - 0.1).abs() < 0.003, "{fc}");
    assert!(weights(&net.layers[2]).iter().all(|&w| w == 0.0));
    assert!(biases(&net.layers[2]).iter().all(|&b| b == 0.0));
    assert!(matches!(net.layers[1], Layer::FullyConnected(_)));
    // f32 starts from the same draws, rounded.
    let net32: LayerNetwork<f32> =
        LayerNetwork::new(&specs, [1, 28, 28], 10, &mut seeded(6)).unwrap();
    assert_eq!(
        net32.layers[0].parameters()[0].values[[3, 7]],
        weights(&net.layers[0])[[3, 7]] as f32
    );
}
