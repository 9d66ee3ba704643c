//! Default runs are bit-for-bit what they have been: two epochs on the first 5,000 MNIST
//! training images, for each program and a few options, must end with exactly the weights the
//! earlier releases trained (a 64-bit FNV-1a digest of every weight and bias, as `f64` bits).
//! A change that reorders a sum, draws one more random number or rounds differently fails
//! here; a change that means to alter a run must say so by updating a digest.
//!
//! network1's step is nndl's own arithmetic, the same on every machine. The others go through
//! matrix products, whose rounding depends on the library's kernels: their digests were taken
//! with the pure-Rust backend's AVX-512 kernels and are checked where those run.

mod common;

use common::*;
use nndl::config::{Precision, TrainConfig, Variant};
use nndl::data::load_mnist;
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::network::Network;
use nndl::real::Real;
use nndl::train::train;

/// FNV-1a over the little-endian bytes of every weight (layer by layer, row by row), then
/// every bias, each as an `f64`.
fn digest<F: Real>(net: &Network<F>) -> u64 {
    let values = net
        .weights
        .iter()
        .flat_map(|w| w.iter())
        .chain(net.biases.iter().flat_map(|b| b.iter()));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for byte in v.as_f64().to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Whether matrixmultiply takes its AVX-512 kernels here.
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

#[test]
fn default_runs_train_the_same_weights_as_before() {
    let mnist = load_mnist(mnist_path()).unwrap();
    let training = mnist.training.head(5000);
    let training32 = training.cast::<f32>();
    let test32 = mnist.test.cast::<f32>();
    let run = |variant: Variant| {
        let mut config = TrainConfig::book_run(variant);
        config.sgd.epochs = 2;
        config
    };
    let cases: [(&str, TrainConfig, u64); 5] = [
        ("network1", run(Variant::Network1), 0xe60d_ed04_9e85_c5e0),
        ("network2", run(Variant::Network2), 0x7bc2_1966_9c67_22f6),
        ("network3", run(Variant::Network3), 0xbf27_0f9f_cc6a_653d),
        (
            "network3, ReLU, softmax, dropout 0.2",
            {
                let mut c = run(Variant::Network3);
                c.network.fully_connected_mut().unwrap().activation = Activation::Relu;
                c.network.fully_connected_mut().unwrap().cost = Cost::LogLikelihood;
                c.sgd.dropout = 0.2;
                c
            },
            0xd380_07d9_e061_af76,
        ),
        (
            "network2, f32",
            {
                let mut c = run(Variant::Network2);
                c.network.precision = Precision::F32;
                c
            },
            0x56ea_8fdb_ac57_a4f3,
        ),
    ];
    let same_kernels = nndl::backend::NAME.starts_with("pure Rust") && avx512();
    if !same_kernels {
        eprintln!(
            "the matrix-product runs are pinned for the pure-Rust backend on AVX-512; \
             checking network1 only here ({})",
            nndl::backend::NAME
        );
    }
    for (name, config, want) in cases {
        if !same_kernels && config.sgd.backprop != Variant::Network1.backprop() {
            continue;
        }
        let got = match config.network.precision {
            Precision::F64 => digest(&train(&config, &training, &mnist.test, |_, _| {}).unwrap().0),
            Precision::F32 => digest(
                &train::<f32>(&config, &training32, &test32, |_, _| {})
                    .unwrap()
                    .0,
            ),
        };
        assert_eq!(got, want, "{name}: {got:#018x}");
    }
}
