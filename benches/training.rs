//! Criterion benches of the training step, per backend (run with and without
//! `--features openblas`):
//! - `step-f64/…`, `step-f32/…`: one mini-batch of 10 (gather, forward, backward, update) for each variant;
//! - `gemm-f64/…`, `gemm-f32/…`: the two products of the first layer of the batched backprop, W·Xᵀ
//!   `(30×784)·(784×m)` and δ·X `(30×m)·(m×784)`, for m = 10 and 100. Throughput is reported
//!   in elements/s where one element is one floating-point operation (2·30·784·m per product),
//!   so `Gelem/s` reads as GFLOP/s.
//!
//! Synthetic data (MNIST-like sparse pixels, random labels) keeps the benches independent of
//! the data file.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use nndl::rng::SeededRng;
use rand::{RngExt, SeedableRng};
use std::hint::black_box;

use nndl::config::{TrainConfig, Variant};
use nndl::data::Dataset;
use nndl::model::network::Network;
use nndl::model::Step;
use nndl::real::Real;
use nndl::train::step::UpdateMiniBatch;
use nndl::train::Model;

const SIZES: [usize; 3] = [784, 30, 10];

fn data<F: Real>(n: usize, rng: &mut SeededRng) -> Dataset<F> {
    // Like MNIST: about 80% of pixels 0, the others k/256 (so the sparse first layer of
    // per-example backprop and the byte-copy gather take the paths they take on MNIST).
    let images = Array2::from_shape_simple_fn((n, 784), || {
        if rng.random::<f64>() < 0.8 {
            F::zero()
        } else {
            F::of(f64::from(rng.random::<u8>()) / 256.0)
        }
    });
    Dataset::new(images, (0..n).map(|_| rng.random_range(0..10u8)).collect())
}

fn step_in<F: Real>(c: &mut Criterion) {
    let mut rng = SeededRng::seed_from_u64(0);
    let training = data::<F>(1000, &mut rng);
    let mut group = c.benchmark_group(format!("step-{}", F::NAME));
    // The three programs, and network1 and network3 with dropout for what the masks cost.
    let cases = [
        (Variant::Network1, 0.0),
        (Variant::Network2, 0.0),
        (Variant::Network3, 0.0),
        (Variant::Network1, 0.5),
        (Variant::Network3, 0.5),
    ];
    for (variant, dropout) in cases {
        let mut net = Network::<F>::new(&SIZES, variant.init(), variant.cost(), &mut rng);
        let step = Step {
            eta: variant.book_eta(),
            lambda: variant.book_lambda(),
            n: 50_000,
            dropout,
        };
        let mut stepper = net.step(&TrainConfig::book_run(variant).sgd);
        let batches: Vec<Vec<usize>> = (0..100).map(|b| (b * 10..b * 10 + 10).collect()).collect();
        let mut i = 0;
        let name = if dropout > 0.0 {
            format!("mini-batch 10, dropout {dropout}")
        } else {
            "mini-batch 10".to_string()
        };
        group.bench_function(BenchmarkId::new(variant.name(), name), |b| {
            b.iter(|| {
                let batch = &batches[i % batches.len()];
                stepper.update_mini_batch(&mut net, &training, batch, &step, &mut rng);
                i += 1;
            })
        });
    }
    group.finish();
}

fn step(c: &mut Criterion) {
    step_in::<f64>(c);
    step_in::<f32>(c);
}

fn gemm_in<F: Real>(c: &mut Criterion) {
    let mut rng = SeededRng::seed_from_u64(1);
    let mut group = c.benchmark_group(format!("gemm-{}", F::NAME));
    let mut random =
        |shape: (usize, usize)| Array2::from_shape_simple_fn(shape, || F::of(rng.random::<f64>()));
    let w = random((30, 784));
    for m in [10usize, 100] {
        let x = random((m, 784));
        let delta = random((30, m));
        let flops = 2 * 30 * 784 * m as u64;
        group.throughput(Throughput::Elements(flops));
        let mut z = Array2::zeros((30, m));
        group.bench_function(BenchmarkId::new("W·Xt (30x784)(784xm)", m), |b| {
            b.iter(|| general_mat_mul(F::one(), black_box(&w), &x.t(), F::zero(), &mut z))
        });
        let mut nw = Array2::zeros((30, 784));
        group.bench_function(BenchmarkId::new("delta·X (30xm)(mx784)", m), |b| {
            b.iter(|| general_mat_mul(F::of(-0.05), black_box(&delta), &x, F::of(0.9999), &mut nw))
        });
    }
    group.finish();
}

fn gemm(c: &mut Criterion) {
    gemm_in::<f64>(c);
    gemm_in::<f32>(c);
}

criterion_group!(benches, step, gemm);
criterion_main!(benches);
