//! `--threads`: a mini-batch shared between threads trains the network as one thread does
//! (to rounding), draws the same dropout masks, and repeats to the last bit for a given thread
//! count; scoring a network gives the same numbers on any number of threads.

mod common;

use common::{nndl, nndl_outcome, random_dataset, rng, temp_dir};
use ndarray::Array2;
use nndl::config::{Backprop, Monitor, SgdConfig};
use nndl::data::Dataset;
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::init::Init;
use nndl::model::layers::dense;
use nndl::model::layers::shards::Shards;
use nndl::model::layers::{spec, LayerNetwork};
use nndl::model::network::Network;
use nndl::model::Step;
use nndl::rng::SeededRng;
use nndl::train::step::UpdateMiniBatch;
use nndl::train::Model;
use rand::RngExt;
use rand_distr::StandardNormal;

/// Lists with every kind of layer, with and without dropout, on 12×12 images — among them
/// dense layers large enough to split their neurons between threads (`dense::split`): the
/// first layer (updated by a general product), and layers after a convolution and after
/// another dense layer (by the small-batch kernels).
const LISTS: [&str; 4] = [
    "conv:3:5,pool:2,fc:12,softmax",
    "conv:2:3,pool:2,conv:3:3,pool:1,fc:10:dropout=0.5,softmax:dropout=0.25",
    "fc:700:dropout=0.5,fc:100,softmax",
    "conv:4:3,pool:2,fc:700:dropout=0.25,softmax",
];

/// A network of `list` on 12×12 images with every parameter drawn N(0, 0.5²), so that every
/// layer's gradient is far from zero (`network3.py`'s zero softmax weights would hide them).
fn network(list: &str, activation: Activation, rng: &mut SeededRng) -> LayerNetwork {
    let specs = spec::parse(list, activation, 0.0).unwrap();
    let mut net = LayerNetwork::new(&specs, [1, 12, 12], 10, rng).unwrap();
    for layer in &mut net.layers {
        for mut p in layer.parameters_mut() {
            p.mapv_inplace(|_| 0.5 * rng.sample::<f64, _>(StandardNormal));
        }
    }
    net
}

fn sgd(mini_batch: usize) -> SgdConfig {
    SgdConfig {
        epochs: 1,
        mini_batch_size: mini_batch,
        eta: 0.5,
        lambda: 3.0,
        backprop: Backprop::Batched,
        monitor: Monitor::default(),
        early_stop: None,
        schedule: None,
        dropout: 0.0,
    }
}

/// Every parameter of `net`, flattened.
fn values(net: &LayerNetwork) -> Vec<f64> {
    net.layers
        .iter()
        .flat_map(|l| l.parameters())
        .flat_map(|p| p.values.iter().copied().collect::<Vec<_>>())
        .collect()
}

/// Three mini-batches (a short last one among them) of `net` on `threads` threads, from a
/// generator seeded with `seed`: the network after them and the generator's next draw.
fn train(net: &LayerNetwork, data: &Dataset, threads: usize, seed: u64) -> (LayerNetwork, u64) {
    let mini_batch = 7;
    let mut net = net.clone();
    let mut draws = rng(seed);
    let batches = [
        vec![3, 9, 0, 4, 12, 1, 7],
        vec![5, 2, 8, 11, 6, 10, 13],
        vec![14, 15],
    ];
    if threads == 1 {
        let mut step = net.step(&sgd(mini_batch), 1);
        let step_size = Step {
            eta: 0.5,
            lambda: 3.0,
            n: data.len(),
            dropout: 0.0,
        };
        for batch in &batches {
            step.update_mini_batch(&mut net, data, batch, &step_size, &mut draws);
        }
    } else {
        let mut shards = Shards::new(&net, mini_batch, threads);
        let in_training_set = data.len() / mini_batch;
        for batch in &batches {
            shards.step(
                &mut net,
                data,
                batch,
                (0.5, 3.0),
                in_training_set,
                &mut draws,
            );
        }
    }
    (net, draws.random::<u64>())
}

#[test]
fn a_shared_mini_batch_trains_as_one_thread_does() {
    let mut r = rng(21);
    for list in LISTS {
        for activation in [Activation::Sigmoid, Activation::Relu] {
            let net = network(list, activation, &mut r);
            let data = random_dataset(16, 144, 10, &mut r);
            let (one, after_one) = train(&net, &data, 1, 5);
            assert_ne!(
                values(&one),
                values(&net),
                "{list}: the steps moved nothing"
            );
            for threads in [2, 3, 7, 16] {
                let (shared, after) = train(&net, &data, threads, 5);
                // The same masks were drawn: the generator is where one thread left it.
                assert_eq!(after, after_one, "{list}, {threads} threads: other draws");
                let worst = values(&shared)
                    .iter()
                    .zip(values(&one))
                    .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                    .fold(0.0, f64::max);
                assert!(
                    worst < 1e-12,
                    "{list}, {activation:?}, {threads} threads: off by {worst:e}"
                );
            }
        }
    }
}

#[test]
fn a_shared_mini_batch_repeats_to_the_last_bit() {
    let mut r = rng(22);
    let net = network(LISTS[1], Activation::Relu, &mut r);
    let data = random_dataset(16, 144, 10, &mut r);
    for threads in [2, 3] {
        let runs: Vec<Vec<u64>> = (0..3)
            .map(|_| {
                let (trained, _) = train(&net, &data, threads, 9);
                values(&trained).iter().map(|v| v.to_bits()).collect()
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{threads} threads");
        assert_eq!(runs[0], runs[2], "{threads} threads");
    }
}

#[test]
fn scores_are_the_same_on_any_number_of_threads() {
    let mut r = rng(23);
    // More examples than one chunk of either kind of network, and a short last chunk.
    let layered = network(LISTS[0], Activation::Sigmoid, &mut r);
    let small = random_dataset(133, 144, 10, &mut r);
    let sizes = [784, 30, 10];
    let fully = Network::<f64>::new(&sizes, Init::ScaledNormal, Cost::CrossEntropy, &mut r);
    let images = Array2::from_shape_simple_fn((2_345, 784), || r.random::<f64>());
    let labels = (0..2_345).map(|_| r.random_range(0..10u8)).collect();
    let large = Dataset::new(images, labels);
    let scores = |threads| {
        nndl::backend::start_threads(threads).unwrap();
        assert_eq!(nndl::backend::threads(), threads);
        (
            layered.evaluate(&small),
            layered.predictions(&small),
            layered.total_cost(&small, 2.0, 10).to_bits(),
            fully.evaluate(&large),
            fully.predictions(&large),
            fully.total_cost(&large, 2.0).to_bits(),
        )
    };
    let one = scores(1);
    assert_eq!(one.1.len(), 133);
    assert_eq!(one.4.len(), 2_345);
    for threads in [2, 5] {
        assert_eq!(scores(threads), one, "{threads} threads");
    }
}

/// `nndl train` of a small CNN on 1,000 MNIST images for two epochs on `threads` threads,
/// saved to `path`: the epoch lines it printed.
fn train_cli(threads: &str, path: &std::path::Path) -> Vec<String> {
    let out = nndl(&[
        "train",
        "--layers",
        "conv:6:5,pool:2,fc:20:dropout=0.25,softmax",
        "--activation",
        "relu",
        "--eta",
        "0.1",
        "--lambda",
        "0.1",
        "--precision",
        "f32",
        "--epochs",
        "2",
        "--train-size",
        "1000",
        "--threads",
        threads,
        "--save",
        path.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", common::stderr(&out));
    stdout
        .lines()
        .filter(|l| l.starts_with("Epoch"))
        .map(str::to_string)
        .collect()
}

/// The accuracy of an epoch line `Epoch k: c / n (p%)`.
fn correct(line: &str) -> f64 {
    let after = line.split(": ").nth(1).unwrap();
    after.split(" / ").next().unwrap().parse().unwrap()
}

#[test]
fn a_run_on_two_threads_repeats_and_learns_as_one_thread_does() {
    let dir = temp_dir("threads-run");
    let (a, b, c) = (dir.join("a.json"), dir.join("b.json"), dir.join("c.json"));
    let first = train_cli("2", &a);
    let again = train_cli("2", &b);
    assert_eq!(first, again);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let one = train_cli("1", &c);
    assert_eq!(one.len(), 2);
    assert!(correct(&one[1]) > 7_500.0, "{one:?}");
    for (shared, single) in first.iter().zip(&one) {
        // The same masks and shuffles, the sums rounded otherwise: the same learning, to a
        // few images of 10,000.
        assert!(
            (correct(shared) - correct(single)).abs() <= 50.0,
            "{shared} against {single}"
        );
    }
}

#[test]
fn thread_counts_out_of_range_are_refused() {
    for (threads, wanted) in [
        ("0", "--threads must be between 1 and 1024, got 0"),
        ("5000", "--threads must be between 1 and 1024, got 5000"),
    ] {
        for command in [
            vec!["train", "--epochs", "1", "--threads", threads],
            vec!["book", "ch6-conv", "--threads", threads],
            vec!["bench", "--threads", threads],
        ] {
            let (code, _, stderr) = nndl_outcome(&command);
            assert_eq!(code, Some(2), "{command:?}: {stderr}");
            assert!(stderr.contains(wanted), "{command:?}: {stderr}");
        }
    }
}

#[test]
fn bench_names_its_threads_and_their_peak() {
    let out = nndl(&[
        "bench",
        "--nets",
        "network2",
        "--precisions",
        "f32",
        "--epochs",
        "1",
        "--train-size",
        "100",
        "--threads",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", common::stderr(&out));
    assert!(stdout.contains(", 2 threads"), "{stdout}");
    assert!(stdout.contains("Peak of 2 threads at once: "), "{stdout}");
    assert!(
        stdout.contains("Hand-over between the 2 threads: "),
        "{stdout}"
    );
    assert!(stdout.contains("| network2 | f32 |"), "{stdout}");
}

#[test]
fn convolutions_share_the_examples_and_dense_layers_their_neurons() {
    let heads = |list: &str| {
        let specs = spec::parse(list, Activation::Relu, 0.0).unwrap();
        spec::shared_head(&specs)
    };
    // The book's chapter-6 networks: the convolutions run on shares of the examples, the
    // dense layers on the whole mini-batch.
    assert_eq!(heads("conv:20:5,pool:2,fc:100,softmax"), 1);
    assert_eq!(
        heads("conv:20:5,pool:2,conv:40:5,pool:2,fc:1000,fc:1000,softmax"),
        2
    );
    assert_eq!(heads("fc:100,softmax"), 0);
    // Their dense layers on 2 and 8 threads: the large ones split, the softmax layers and
    // small layers not; no thread with fewer than `SPLIT_WEIGHTS` weights.
    for ((n_out, n_in), on_2, on_8) in [
        ((100, 2880), 2, 8),
        ((100, 784), 2, 2),
        ((1000, 640), 2, 8),
        ((10, 100), 1, 1),
        ((10, 1000), 1, 1),
        ((20, 864), 1, 1),
    ] {
        assert_eq!(dense::split(n_out, n_in, 2), on_2, "{n_out}×{n_in}");
        assert_eq!(dense::split(n_out, n_in, 8), on_8, "{n_out}×{n_in}");
        assert!(n_out * n_in / on_8 >= dense::SPLIT_WEIGHTS || on_8 == 1);
    }
    // Never more parts than neurons.
    assert_eq!(dense::split(3, 1_000_000, 8), 3);
}
