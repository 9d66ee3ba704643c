//! Default runs are bit-for-bit what they have been: two epochs on the first 5,000 MNIST
//! training images, for each program and a few options, must end with exactly the weights the
//! earlier releases trained (a 64-bit FNV-1a digest of every weight and bias, as `f64` bits).
//! A change that reorders a sum, draws one more random number or rounds differently fails
//! here; a change that means to alter a run must say so by updating a digest.
//!
//! network1's step is nndl's own arithmetic, the same on every machine: its digest is checked
//! everywhere. The other runs go through matrix products, whose bits are those of the kernels
//! that make them. In `f32` where the CPU has FMA, network2's step takes nndl's small-batch kernels
//! (`nndl::model::layers::small_batch`, whose sums are in an order of their own, the same on
//! every such CPU) for its forward products and updates, and a general product for BP2; else
//! every product is a general one. A general product's bits are the backend's kernels' — which
//! neither the CPU's vendor nor its feature flags name for sure (an AVX-512 CPU rounds like an
//! AVX2 one if the library was built without, or chose not to take, its AVX-512 kernels; BLAS
//! libraries pick kernels by CPU model). So the digests are keyed on what decides the bits: a
//! fingerprint of the products themselves, a digest of the results of the very products nndl's
//! batched step performs — the same kernels, shapes, transposed views, α and β, in `f64` and in
//! `f32` — on fixed pseudo-random inputs ([`products_fingerprint`]). [`KNOWN`] maps the
//! fingerprints seen so far to the product runs' digests:
//! - on a known fingerprint, each digest must match exactly;
//! - on an unknown one, the test checks what it can on this machine: every product run
//!   repeats bit for bit when trained again, and ends within a tight tolerance of the book's
//!   `update_mini_batch` (one example at a time, no matrix products) from the same start and
//!   order; it then prints the fingerprint and the digests, the entry to add to [`KNOWN`].
//!
//! Another CPU's kernels can be had on this one: matrixmultiply reads `MMTEST_FEATURE` when
//! it is built and then takes only the kernels of the features it lists, so
//! `MMTEST_FEATURE=fma,avx2 cargo test --release --test repeatable` (in a target directory of
//! its own, since the variable rebuilds matrixmultiply and all that uses it) runs the AVX2
//! kernels of a CPU without AVX-512 on one with it. (Its `f64` runs' digests are those the
//! FMA/AVX2 entry had before `f32` took the small-batch kernels: `f64` kept its products.) The
//! entries for AVX-512 CPUs (Zen 4, Intel) went with the `f32` run's general products; until
//! one is taken again, those CPUs run the checks of an unknown fingerprint.

mod common;

use common::*;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2};
use nndl::config::{Precision, TrainConfig, Variant};
use nndl::data::{load_mnist, Dataset};
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::layers::small_batch;
use nndl::model::network::Network;
use nndl::model::Step;
use nndl::real::Real;
use nndl::train::{build_network, train};
use rand::seq::SliceRandom;

/// The digests of [`product_runs`], in order, where the products have one fingerprint.
struct Known {
    /// [`products_fingerprint`].
    fingerprint: u64,
    /// The backend and kernels it was seen with.
    seen_with: &'static str,
    digests: [u64; 4],
}

/// Every fingerprint seen so far, with the product runs' digests.
const KNOWN: &[Known] = &[
    Known {
        fingerprint: 0xf9da_c386_d809_70d4,
        seen_with: "pure Rust: matrixmultiply's FMA/AVX2 kernels, and the small-batch kernels in \
                    f32, on a CPU without AVX-512 (AMD EPYC, family 25, model 1)",
        digests: [
            0x7bc2_1966_9c67_22f6,
            0xbf27_0f9f_cc6a_653d,
            0xd380_07d9_e061_af76,
            0x4b52_23da_78b6_2285,
        ],
    },
    Known {
        fingerprint: 0x5196_79db_d12b_e06c,
        seen_with: "OpenBLAS 0.3.21 (Debian), its Zen kernels, one thread, and the small-batch \
                    kernels in f32: AMD EPYC, family 25, model 1",
        digests: [
            0x3796_992a_80d1_0398,
            0x263b_02d8_eaba_1ea4,
            0xa3f9_21bc_3d02_871a,
            0x9183_7af8_795d_ee23,
        ],
    },
    Known {
        fingerprint: 0x99e5_9533_cf5e_8a42,
        seen_with: "pure Rust (matrixmultiply), its AVX kernels without FMA, as on a CPU \
                    without FMA, where every product is a general one (taken on Zen 4 with \
                    MMTEST_FEATURE=avx, before the small-batch kernels; a CPU without FMA \
                    takes the same products as then)",
        digests: [
            0x969c_4980_7d8c_8926,
            0x95a3_e9c0_0613_8d26,
            0x58a5_d2a2_e42f_51af,
            0xe7bf_ee6c_1aeb_f795,
        ],
    },
];

/// network1's digest, the same everywhere.
const NETWORK1: u64 = 0xe60d_ed04_9e85_c5e0;

/// 64-bit FNV-1a over the little-endian bytes of values, each as an `f64`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn add<'a, F: Real>(&mut self, values: impl IntoIterator<Item = &'a F>) {
        for v in values {
            for byte in v.as_f64().to_le_bytes() {
                self.0 ^= u64::from(byte);
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
}

/// FNV-1a over every weight (layer by layer, row by row), then every bias, each as an `f64`.
fn digest<F: Real>(net: &Network<F>) -> u64 {
    let mut h = Fnv::new();
    for w in &net.weights {
        h.add(w);
    }
    for b in &net.biases {
        h.add(b);
    }
    h.0
}

/// The products of one step of `nndl::train::batch` for the runs' [784, 30, 10] network and
/// mini-batch of 10, made as that step makes them, on pseudo-random values; each result goes
/// into `h`. In `f32`, where the CPU has the small-batch kernels ([`small_batch::available`]),
/// the step takes them for the forward products and the fused update (their sums are in an order of
/// their own, the same on every such CPU) and one general product, BP2's δ¹ = (W²)ᵀ·δ²;
/// elsewhere every product is a general one ([`general_step_products`]).
fn batched_step_products<F: Real>(h: &mut Fnv) {
    const M: usize = 10;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = |shape: (usize, usize)| {
        Array2::from_shape_simple_fn(shape, || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            F::of((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
    };
    let x = random((M, 784));
    let (w0, w1) = (random((30, 784)), random((10, 30)));
    let d1 = random((10, M));
    if !(small_batch::available() && std::mem::size_of::<F>() == 4) {
        general_step_products(h, &x, (&w0, &w1), &d1);
        return;
    }
    // Forward: Z¹ = W¹·Xᵀ from the images one per row, Z² = W²·A¹ from A¹ turned into rows.
    let mut packed = [Vec::new(), Vec::new()];
    let forward = |w: &Array2<F>, x: &Array2<F>, packed: &mut Vec<F>| {
        let mut z = Array2::<F>::zeros((w.nrows(), M));
        let (w_s, x_s) = (w.as_slice().unwrap(), x.as_slice().unwrap());
        let z_s = z.as_slice_mut().unwrap();
        small_batch::forward(F::one(), w_s, w.ncols(), x_s, M, z_s, M, packed);
        z
    };
    let a0 = forward(&w0, &x, &mut packed[0]);
    h.add(&a0);
    let a1 = forward(&w1, &a0.t().as_standard_layout().to_owned(), &mut packed[1]);
    h.add(&a1);
    // Backward: δ¹ = (W²)ᵀ·δ², a general product.
    let mut d0 = Array2::<F>::zeros((30, M));
    general_mat_mul(F::one(), &w1.t(), &d1, F::zero(), &mut d0);
    h.add(&d0);
    // The fused update W ← β·W + α·δ·Aᵀ from the packed inputs, as network2 (β = 1) and
    // network3 (β < 1) make it.
    let scale = F::of(3.0 / M as f64);
    for decay in [1.0, 1.0 - 0.5 * 5.0 / 5000.0] {
        for (w, delta, packed) in [(&w0, &d0, &packed[0]), (&w1, &d1, &packed[1])] {
            let mut v = w.clone();
            let n_in = w.ncols();
            let x = small_batch::packed(packed, n_in, M);
            let (v_s, delta_s) = (v.as_slice_mut().unwrap(), delta.as_slice().unwrap());
            small_batch::update_packed(v_s, n_in, delta_s, M, x, M, (F::of(decay), scale));
            h.add(&v);
        }
    }
}

/// [`batched_step_products`] where every product is a general one: the same calls on the same
/// layouts as the step (the images one per row in a buffer of the largest mini-batch, read
/// through a transposed view; the layers' buffers sliced to the mini-batch; Wᵀ and Aᵀ as
/// transposed views; α = 1, β = 0 forward and backward; α = −η/m, β = 1 − ηλ/n in the fused
/// update, with and without weight decay).
fn general_step_products<F: Real>(
    h: &mut Fnv,
    x: &Array2<F>,
    (w0, w1): (&Array2<F>, &Array2<F>),
    d1: &Array2<F>,
) {
    const M: usize = 10;
    let mut a0 = Array2::<F>::zeros((30, M));
    let mut a1 = Array2::<F>::zeros((10, M));
    let mut d0 = Array2::<F>::zeros((30, M));
    let x_m = x.slice(s![..M, ..]);
    // Forward: Z¹ = W¹·Xᵀ, Z² = W²·A¹.
    general_mat_mul(
        F::one(),
        w0,
        &x_m.t(),
        F::zero(),
        &mut a0.slice_mut(s![.., ..M]),
    );
    h.add(&a0);
    general_mat_mul(
        F::one(),
        w1,
        &a0.slice(s![.., ..M]),
        F::zero(),
        &mut a1.slice_mut(s![.., ..M]),
    );
    h.add(&a1);
    // Backward: δ¹ = (W²)ᵀ·δ².
    general_mat_mul(
        F::one(),
        &w1.t(),
        &d1.slice(s![.., ..M]),
        F::zero(),
        &mut d0.slice_mut(s![.., ..M]),
    );
    h.add(&d0);
    // The fused update W ← β·W + α·δ·Aᵀ, as network2 (β = 1) and network3 (β < 1) make it.
    let alpha = F::of(-3.0 / M as f64);
    for decay in [1.0, 1.0 - 0.5 * 5.0 / 5000.0] {
        let (mut v0, mut v1) = (w0.clone(), w1.clone());
        general_mat_mul(alpha, &d0.slice(s![.., ..M]), &x_m, F::of(decay), &mut v0);
        general_mat_mul(
            alpha,
            &d1.slice(s![.., ..M]),
            &a0.slice(s![.., ..M]).t(),
            F::of(decay),
            &mut v1,
        );
        h.add(&v0);
        h.add(&v1);
    }
}

/// The fingerprint of the matrix products here: [`batched_step_products`] in `f64`, then in
/// `f32`, hashed together. Two machines with the same fingerprint round every product of the
/// runs alike.
fn products_fingerprint() -> u64 {
    let mut h = Fnv::new();
    batched_step_products::<f64>(&mut h);
    batched_step_products::<f32>(&mut h);
    h.0
}

/// The book's run of `variant`, for two epochs.
fn run(variant: Variant) -> TrainConfig {
    let mut config = TrainConfig::book_run(variant);
    config.sgd.epochs = 2;
    config
}

/// The runs whose steps are matrix products, in the order of [`Known::digests`].
fn product_runs() -> [(&'static str, TrainConfig); 4] {
    [
        ("network2", run(Variant::Network2)),
        ("network3", run(Variant::Network3)),
        ("network3, ReLU, softmax, dropout 0.2", {
            let mut c = run(Variant::Network3);
            c.network.fully_connected_mut().unwrap().activation = Activation::Relu;
            c.network.fully_connected_mut().unwrap().cost = Cost::LogLikelihood;
            c.sgd.dropout = 0.2;
            c
        }),
        ("network2, f32", {
            let mut c = run(Variant::Network2);
            c.network.precision = Precision::F32;
            c
        }),
    ]
}

/// The training and test sets in both precisions.
struct Sets {
    training: Dataset,
    test: Dataset,
    training32: Dataset<f32>,
    test32: Dataset<f32>,
}

/// What one run gives: its digest, the digest of the same run again, and the largest
/// relative difference of a weight or bias from the book's `update_mini_batch` run.
struct Checked {
    digest: u64,
    again: u64,
    deviation: f64,
}

fn trained_digest(config: &TrainConfig, sets: &Sets) -> u64 {
    match config.network.precision {
        Precision::F64 => digest(
            &train(config, &sets.training, &sets.test, |_, _| {})
                .unwrap()
                .0,
        ),
        Precision::F32 => digest(
            &train::<f32>(config, &sets.training32, &sets.test32, |_, _| {})
                .unwrap()
                .0,
        ),
    }
}

fn checked(config: &TrainConfig, sets: &Sets) -> Checked {
    fn in_precision<F: Real>(
        config: &TrainConfig,
        training: &Dataset<F>,
        test: &Dataset<F>,
    ) -> Checked {
        let net = train(config, training, test, |_, _| {}).unwrap().0;
        let again = train(config, training, test, |_, _| {}).unwrap().0;
        Checked {
            digest: digest(&net),
            again: digest(&again),
            deviation: deviation(&net, &by_the_book(config, training)),
        }
    }
    match config.network.precision {
        Precision::F64 => in_precision(config, &sets.training, &sets.test),
        Precision::F32 => in_precision(config, &sets.training32, &sets.test32),
    }
}

/// The run `config` describes, stepped by the book's `update_mini_batch` (every example on its
/// own, its gradients summed): the same start, shuffles and masks as `train`, but no matrix
/// products.
fn by_the_book<F: Real>(config: &TrainConfig, training: &Dataset<F>) -> Network<F> {
    let config = config.check().unwrap();
    let sgd = &config.sgd;
    assert!(sgd.early_stop.is_none() && sgd.schedule.is_none());
    let mut rng = nndl::rng::seeded(config.seed);
    let mut net: Network<F> = build_network(config.network.fully_connected().unwrap(), &mut rng);
    let step = Step {
        eta: sgd.eta,
        lambda: sgd.lambda,
        n: training.len(),
        dropout: sgd.dropout,
    };
    let mut order: Vec<usize> = (0..training.len()).collect();
    for _ in 0..sgd.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(sgd.mini_batch_size) {
            net.update_mini_batch(training, batch, &step, &mut rng);
        }
    }
    net
}

/// How far `a` ends from `b`: the norm of the difference of all their weights and biases,
/// relative to the norm of `b`'s.
fn deviation<F: Real>(a: &Network<F>, b: &Network<F>) -> f64 {
    let values = |n: &Network<F>| -> Vec<f64> {
        n.weights
            .iter()
            .flat_map(|w| w.iter())
            .chain(n.biases.iter().flat_map(|b| b.iter()))
            .map(|v| v.as_f64())
            .collect()
    };
    let (a, b) = (values(a), values(b));
    assert_eq!(a.len(), b.len());
    let difference: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (difference / norm).sqrt()
}

/// How far a product run may end from the book's step: the products and the example-by-example
/// sums round differently, and two epochs of SGD carry those differences along.
fn tolerance(precision: Precision) -> f64 {
    match precision {
        Precision::F64 => 1e-8,
        Precision::F32 => 1e-4,
    }
}

#[test]
fn default_runs_train_the_same_weights_as_before() {
    // One thread, should the backend be a BLAS that would share a product between threads.
    nndl::backend::set_blas_threads(1);
    let mnist = load_mnist(mnist_path()).unwrap();
    let training = mnist.training.head(5000);
    let sets = Sets {
        training32: training.cast::<f32>(),
        test32: mnist.test.cast::<f32>(),
        training,
        test: mnist.test,
    };
    let got = trained_digest(&run(Variant::Network1), &sets);
    assert_eq!(got, NETWORK1, "network1: {got:#018x}");

    let fingerprint = products_fingerprint();
    if let Some(known) = KNOWN.iter().find(|k| k.fingerprint == fingerprint) {
        for ((name, config), want) in product_runs().iter().zip(known.digests) {
            let got = trained_digest(config, &sets);
            assert_eq!(
                got, want,
                "{name}: {got:#018x}, where the products' fingerprint {fingerprint:#018x} \
                 ({}) trained {want:#018x}",
                known.seen_with
            );
        }
        return;
    }
    let mut digests = Vec::new();
    let mut wrong = Vec::new();
    for (name, config) in product_runs() {
        let c = checked(&config, &sets);
        let tolerance = tolerance(config.network.precision);
        eprintln!(
            "{name}: {:#018x}, again {:#018x}, {:.1e} from update_mini_batch's weights",
            c.digest, c.again, c.deviation
        );
        if c.digest != c.again {
            wrong.push(format!("{name} trained twice ends with other weights"));
        }
        if c.deviation > tolerance {
            wrong.push(format!(
                "{name} ends {:e} away from update_mini_batch's weights, more than {tolerance:e}",
                c.deviation
            ));
        }
        digests.push(format!("{:#018x}", c.digest));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("; "));
    eprintln!(
        "The products here have a fingerprint not in KNOWN: {fingerprint:#018x} ({}). The runs \
         repeat and agree with update_mini_batch; to pin them, add to KNOWN:\n    \
         Known {{ fingerprint: {fingerprint:#018x}, seen_with: \"…\", digests: [{}] }},",
        nndl::backend::describe(),
        digests.join(", ")
    );
}

/// The fingerprint is the products' alone: computed again, it is the same.
#[test]
fn the_fingerprint_repeats() {
    assert_eq!(products_fingerprint(), products_fingerprint());
}
