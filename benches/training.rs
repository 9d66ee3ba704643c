//! Criterion benches of the training step, per backend (run with and without
//! `--features openblas`):
//! - `step-f64/…`, `step-f32/…`: one mini-batch of 10 (gather, forward, backward, update) for each variant;
//! - `gemm-f64/…`, `gemm-f32/…`: the two products of the first layer of the batched backprop, W·Xᵀ
//!   `(30×784)·(784×m)` and δ·X `(30×m)·(m×784)`, for m = 10 and 100;
//! - `layers-f64/…`, `layers-f32/…`: one training step of chapter 6's networks (`nndl book`'s
//!   `ch6-conv` and `ch6-two-conv`, with their rows' η and λ), a mini-batch of 10: im2col,
//!   the products, pooling and activations, backward and the update; on one thread, and
//!   shared between every core (`--threads`, `nndl::model::layers::shards`);
//! - `layers-gemm-f32/…`: the products of `ch6-two-conv`'s convolutions at a mini-batch of 10,
//!   in the layouts `nndl::model::layers::pass` gives them: conv1 forward W·cols
//!   `(20×25)·(25×5760)` with its im2col and its ∇W = δ_Z·colsᵀ `(20×5760)·(5760×25)`, each
//!   beside `nndl::model::layers::direct_conv`'s kernel, conv2 forward `(40×500)·(500×640)`, conv2's ∇W = δ_Z·colsᵀ
//!   `(40×640)·(640×500)` and its ∂C/∂cols = Wᵀ·δ_Z `(500×40)·(40×640)`;
//! - `layers-dense-f32/…`: a dense layer's products at a mini-batch of 10, for the `fc:100`
//!   after `ch6-conv`'s convolution (100×2880) and after `ch6-two-conv`'s (100×640), and the
//!   two `fc:1000` of `ch6-dropout` (1000×640, 1000×1000):
//!   the forward product and the training step's input error with the update, through
//!   `nndl::model::layers::small_batch`'s kernels and through general products (what
//!   mini-batches over 10 use), each counted as its products' FLOPs.
//!
//! Throughput is reported in elements/s where one element is one floating-point operation, so
//! `Gelem/s` reads as GFLOP/s: 2·m·k·n for an (m×k)·(k×n) product, and for a chapter-6 step
//! the FLOPs `nndl bench` credits it with (`nndl::report::bench::layer_flops_per_example`,
//! the dense algorithm's count, times 10). Run one family with a filter, e.g.
//! `cargo bench --bench training -- layers`.
//!
//! Synthetic data (MNIST-like sparse pixels, random labels) keeps the benches independent of
//! the data file.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use nndl::rng::SeededRng;
use rand::{RngExt, SeedableRng};
use std::hint::black_box;

use nndl::config::{Precision, TrainConfig, Variant};
use nndl::data::{Dataset, CLASSES, IMAGE_SHAPE};
use nndl::model::layers::conv_pool::im2col;
use nndl::model::layers::{direct_conv, row_dots, small_batch, LayerNetwork};
use nndl::model::network::Network;
use nndl::model::Step;
use nndl::real::Real;
use nndl::report::bench::layer_flops_per_example;
use nndl::run::book;
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
        let mut stepper = net.step(&TrainConfig::book_run(variant).sgd, 1);
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

/// A training step of chapter 6's networks, set up as their `nndl book` rows.
fn layers_in<F: Real>(c: &mut Criterion, precision: Precision) {
    let mut rng = SeededRng::seed_from_u64(2);
    let training = data::<F>(1000, &mut rng);
    let mut group = c.benchmark_group(format!("layers-{}", F::NAME));
    for id in ["ch6-conv", "ch6-two-conv"] {
        let row = book::row(id).expect("a row of nndl book");
        let config = row
            .config(1, precision, 0)
            .expect("the row's configuration");
        let layers = config.network.layers().expect("a chapter-6 network");
        let m = config.sgd.mini_batch_size;
        let (per_example, _) =
            layer_flops_per_example(layers, IMAGE_SHAPE, CLASSES).expect("a network that builds");
        group.throughput(Throughput::Elements((per_example * m as f64) as u64));
        let net = LayerNetwork::<F>::new(layers, IMAGE_SHAPE, CLASSES, &mut rng)
            .expect("a network that builds");
        let step = Step {
            eta: config.sgd.eta,
            lambda: config.sgd.lambda,
            n: 50_000,
            dropout: 0.0,
        };
        let batches: Vec<Vec<usize>> = (0..1000 / m)
            .map(|b| (b * m..b * m + m).collect())
            .collect();
        // One thread, and every core sharing the mini-batch (`--threads`).
        let mut counts = vec![1, nndl::backend::cores()];
        counts.dedup();
        for threads in counts {
            let mut net = net.clone();
            let mut stepper = net.step(&config.sgd, threads);
            let mut i = 0;
            let name = match threads {
                1 => format!("mini-batch {m}"),
                n => format!("mini-batch {m}, {n} threads"),
            };
            group.bench_function(BenchmarkId::new(id, name), |b| {
                b.iter(|| {
                    let batch = &batches[i % batches.len()];
                    stepper.update_mini_batch(&mut net, &training, batch, &step, &mut rng);
                    i += 1;
                })
            });
        }
    }
    group.finish();
}

fn layers(c: &mut Criterion) {
    layers_in::<f64>(c, Precision::F64);
    layers_in::<f32>(c, Precision::F32);
}

/// The products of `ch6-two-conv`'s convolutions at a mini-batch of 10, in `f32`.
fn layers_gemm(c: &mut Criterion) {
    type F = f32;
    let mut rng = SeededRng::seed_from_u64(3);
    let mut random =
        |shape: (usize, usize)| Array2::from_shape_simple_fn(shape, || F::of(rng.random::<f64>()));
    let mut group = c.benchmark_group("layers-gemm-f32");
    let flops = |m: usize, k: usize, n: usize| Throughput::Elements(2 * (m * k * n) as u64);

    // conv1: 20 filters of 1×5×5 over 10 images' 24×24 maps; with im2col and a general
    // product, and by `direct_conv` from the images.
    let (w1, images, dz1) = (random((20, 25)), random((1, 7840)), random((20, 5760)));
    let mut cols1 = Array2::<F>::zeros((25, 5760));
    let mut z1 = Array2::<F>::zeros((20, 5760));
    let mut nabla_w1 = Array2::<F>::zeros((20, 25));
    let image = [1, 28, 28];
    group.throughput(flops(20, 25, 5760));
    group.bench_function("conv1 forward im2col, W·cols (20x25)(25x5760)", |b| {
        b.iter(|| {
            im2col(images.view(), image, 5, 10, cols1.view_mut());
            general_mat_mul(1.0, black_box(&w1), &cols1, 0.0, &mut z1)
        })
    });
    group.bench_function("conv1 forward direct", |b| {
        b.iter(|| {
            direct_conv::forward(
                black_box(&w1).view(),
                images.view(),
                image,
                5,
                10,
                z1.view_mut(),
            )
        })
    });
    group.bench_function("conv1 nabla_W delta·colsT (20x5760)(5760x25)", |b| {
        b.iter(|| general_mat_mul(1.0, black_box(&dz1), &cols1.t(), 0.0, &mut nabla_w1))
    });
    group.bench_function("conv1 nabla_W direct", |b| {
        b.iter(|| {
            direct_conv::weight_gradient(
                black_box(&dz1).view(),
                images.view(),
                image,
                5,
                10,
                nabla_w1.view_mut(),
            )
        })
    });

    // conv2: 40 filters of 20×5×5 over 10 examples' 8×8 maps.
    let (w2, mut cols2, dz2) = (random((40, 500)), random((500, 640)), random((40, 640)));
    let mut z2 = Array2::<F>::zeros((40, 640));
    group.throughput(flops(40, 500, 640));
    group.bench_function("conv2 forward W·cols (40x500)(500x640)", |b| {
        b.iter(|| general_mat_mul(1.0, black_box(&w2), &cols2, 0.0, &mut z2))
    });
    let mut nabla_w2 = Array2::<F>::zeros((40, 500));
    group.throughput(flops(40, 640, 500));
    group.bench_function("conv2 nabla_W delta·colsT (40x640)(640x500)", |b| {
        b.iter(|| general_mat_mul(1.0, black_box(&dz2), &cols2.t(), 0.0, &mut nabla_w2))
    });
    let mut scratch = Vec::new();
    group.bench_function("conv2 nabla_W row_dots", |b| {
        b.iter(|| {
            let dz2 = black_box(&dz2).view();
            row_dots::product(dz2, cols2.view(), 640, nabla_w2.view_mut(), &mut scratch)
        })
    });
    group.throughput(flops(500, 40, 640));
    group.bench_function("conv2 d_cols WT·delta (500x40)(40x640)", |b| {
        b.iter(|| general_mat_mul(1.0, &black_box(&w2).t(), &dz2, 0.0, &mut cols2))
    });
    group.finish();
}

/// A dense layer's products at a mini-batch of 10: `small_batch`'s kernels against the
/// general products of the same step.
fn layers_dense(c: &mut Criterion) {
    layers_dense_in::<f32>(c);
    layers_dense_in::<f64>(c);
}

fn layers_dense_in<F: Real>(c: &mut Criterion) {
    const M: usize = 10;
    let mut rng = SeededRng::seed_from_u64(4);
    let mut random = |shape: (usize, usize)| {
        Array2::from_shape_simple_fn(shape, || F::of(rng.random::<f64>() - 0.5))
    };
    let mut group = c.benchmark_group(format!("layers-dense-{}", F::NAME));
    for (n_out, n_in) in [(100, 2880), (100, 640), (1000, 640), (1000, 1000)] {
        let name = format!("({n_out}x{n_in}), m = {M}");
        // x (m, n_in): one example per row; δ and z (n_out, m).
        let (mut w, x, delta) = (random((n_out, n_in)), random((M, n_in)), random((n_out, M)));
        let mut b = vec![F::zero(); n_out];
        let (mut z, mut d_x) = (
            Array2::<F>::zeros((n_out, M)),
            Array2::<F>::zeros((M, n_in)),
        );
        let mut packed = Vec::new();
        // A step small enough that W stays put over the iterations.
        let step = (F::one(), F::of(1e-9));
        let product = Throughput::Elements(2 * (n_out * n_in * M) as u64);
        group.throughput(product.clone());
        group.bench_function(
            BenchmarkId::new("forward W·xT, small-batch", &name),
            |bench| {
                bench.iter(|| {
                    small_batch::forward(
                        F::one(),
                        black_box(w.as_slice().unwrap()),
                        n_in,
                        x.as_slice().unwrap(),
                        M,
                        z.as_slice_mut().unwrap(),
                        M,
                        &mut packed,
                    )
                })
            },
        );
        group.bench_function(BenchmarkId::new("forward W·xT, general", &name), |bench| {
            bench.iter(|| general_mat_mul(F::one(), black_box(&w), &x.t(), F::zero(), &mut z))
        });
        group.throughput(Throughput::Elements(4 * (n_out * n_in * M) as u64));
        group.bench_function(
            BenchmarkId::new("input error and update, small-batch", &name),
            |bench| {
                bench.iter(|| {
                    small_batch::backward_update(
                        black_box(w.as_slice_mut().unwrap()),
                        &mut b,
                        n_in,
                        delta.as_slice().unwrap(),
                        M,
                        x.as_slice().unwrap(),
                        d_x.as_slice_mut().unwrap(),
                        M,
                        step,
                        &mut packed,
                    )
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("input error and update, general", &name),
            |bench| {
                bench.iter(|| {
                    general_mat_mul(F::one(), &delta.t(), black_box(&w), F::zero(), &mut d_x);
                    general_mat_mul(-step.1, &delta, &x, step.0, &mut w);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, step, gemm, layers, layers_gemm, layers_dense);
criterion_main!(benches);
