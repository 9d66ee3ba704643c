//! Default runs are bit-for-bit what they have been: two epochs on the first 5,000 MNIST
//! training images, for each program and a few options, must end with exactly the weights the
//! earlier releases trained (a 64-bit FNV-1a digest of every weight and bias, as `f64` bits).
//! A change that reorders a sum, draws one more random number or rounds differently fails
//! here; a change that means to alter a run must say so by updating a digest.
//!
//! network1's step is nndl's own arithmetic, the same on every machine: its digests (the
//! book's run, and one in `f32` with weight decay and dropout) are checked everywhere. The other runs go through matrix products, whose bits are those of the kernels
//! that make them. In `f64` every product of network2's step is a general one (`ndarray`'s
//! `general_mat_mul`, the backend's); in `f32` on a CPU with FMA the step takes nndl's
//! small-batch kernels (`nndl::model::layers::small_batch`, whose sums are in an order of their
//! own, the same on every such CPU) for its forward products and updates, and a general product
//! for BP2. A general product's bits are the backend's kernels' — which neither the CPU's
//! vendor nor its feature flags name for sure (an AVX-512 CPU rounds like an AVX2 one if the
//! library was built without, or chose not to take, its AVX-512 kernels; BLAS libraries pick
//! kernels by CPU model). So the digests are keyed on what decides the bits: fingerprints of
//! the products themselves, digests of the results of the very products nndl's batched step
//! performs — the same kernels, shapes, transposed views, α and β — on fixed pseudo-random
//! inputs. [`products_fingerprint`] (the step's general products, in `f64` and `f32`) keys the
//! runs in [`KNOWN`]; [`kernels_fingerprint`] (the `f32` step through the small-batch kernels)
//! keys the `f32` run in [`KNOWN_KERNELS`] where it takes them. For each run:
//! - on a known fingerprint, its digest must match exactly;
//! - on an unknown one, the test checks what it can on this machine: the run repeats bit for
//!   bit when trained again, and ends within a tight tolerance of the book's `update_mini_batch`
//!   (one example at a time, no matrix products) from the same start and order; it then prints
//!   the fingerprint and the digests, the entry to add.
//!
//! Another CPU's kernels can be had on this one: matrixmultiply reads `MMTEST_FEATURE` when
//! it is built and then takes only the kernels of the features it lists, so
//! `MMTEST_FEATURE=fma,avx2 cargo test --release --test repeatable` (in a target directory of
//! its own, since the variable rebuilds matrixmultiply and all that uses it) runs the AVX2
//! kernels of a CPU without AVX-512 on one with it. The FMA/AVX2 entry was taken that way, and
//! an AMD EPYC without AVX-512 trained the same. The entries of AVX-512 CPUs and of OpenBLAS's
//! Cooperlake kernels were taken when the `f32` step took general products too; their `f32`
//! digests hold where it still does, and the kernels' fingerprints of those CPUs are still to
//! be taken.

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
use nndl::train::batch::takes_small_batch_kernels;
use nndl::train::{build_network, train};
use rand::seq::SliceRandom;

/// The digests of some of [`product_runs`], in order, where one fingerprint decides them.
struct Known {
    /// [`products_fingerprint`] or [`kernels_fingerprint`].
    fingerprint: u64,
    /// The backend and kernels it was seen with.
    seen_with: &'static str,
    digests: &'static [u64],
}

/// Every [`products_fingerprint`] seen so far, with the digests of the runs whose steps are
/// general products, in the order of [`product_runs`]: the `f64` runs everywhere, and the `f32`
/// run where it does not take the small-batch kernels (an entry seen where it does has three).
const KNOWN: &[Known] = &[
    Known {
        fingerprint: 0x7612_c5db_2f02_26c6,
        seen_with: "pure Rust (matrixmultiply), its AVX-512 kernels: AMD Zen 4 (and an Intel \
                    Rocket Lake Xeon trained the same network2)",
        digests: &[
            0x6d30_3240_c054_417e,
            0x4521_5dc1_9b26_0ddd,
            0x3013_af21_0034_c6ea,
            0x9b03_7ab5_6df6_3086,
        ],
    },
    Known {
        fingerprint: 0xebd6_922a_e979_e432,
        seen_with: "pure Rust (matrixmultiply), its FMA/AVX2 kernels, as on a CPU without \
                    AVX-512 (taken on Zen 4 with MMTEST_FEATURE=fma,avx2; the same on an AMD \
                    EPYC without AVX-512, family 25, model 1)",
        digests: &[
            0x7bc2_1966_9c67_22f6,
            0xbf27_0f9f_cc6a_653d,
            0xd380_07d9_e061_af76,
            0x56ea_8fdb_ac57_a4f3,
        ],
    },
    Known {
        fingerprint: 0x99e5_9533_cf5e_8a42,
        seen_with: "pure Rust (matrixmultiply), its AVX kernels without FMA, as on a CPU \
                    without FMA (taken on Zen 4 with MMTEST_FEATURE=avx)",
        digests: &[
            0x969c_4980_7d8c_8926,
            0x95a3_e9c0_0613_8d26,
            0x58a5_d2a2_e42f_51af,
            0xe7bf_ee6c_1aeb_f795,
        ],
    },
    Known {
        fingerprint: 0x633c_cec2_b39b_c334,
        seen_with: "OpenBLAS 0.3.21 (Debian), its Zen kernels, one thread: AMD EPYC, family 25, \
                    model 1",
        digests: &[
            0x3796_992a_80d1_0398,
            0x263b_02d8_eaba_1ea4,
            0xa3f9_21bc_3d02_871a,
        ],
    },
    Known {
        fingerprint: 0x1426_c8c7_83a1_2e4d,
        seen_with: "OpenBLAS 0.3.21 (Debian), its Cooperlake kernels, one thread: AMD Zen 4",
        digests: &[
            0x69cf_ebd4_3341_a461,
            0x6b28_b88c_68f7_fc8b,
            0x5e08_84e5_ef5c_e0a0,
            0xcea3_cddc_7d74_736b,
        ],
    },
];

/// Every [`kernels_fingerprint`] seen so far, with the digest of the `f32` run of
/// [`product_runs`] where its step takes the small-batch kernels.
const KNOWN_KERNELS: &[Known] = &[
    Known {
        fingerprint: 0xeb12_4057_64d1_c494,
        seen_with:
            "pure Rust: the small-batch kernels and matrixmultiply's FMA/AVX2 kernels, on a \
                    CPU without AVX-512 (AMD EPYC, family 25, model 1)",
        digests: &[0x4b52_23da_78b6_2285],
    },
    Known {
        fingerprint: 0x3928_cd20_084b_0b62,
        seen_with: "the small-batch kernels and OpenBLAS 0.3.21 (Debian), its Zen kernels, one \
                    thread: AMD EPYC, family 25, model 1",
        digests: &[0x9183_7af8_795d_ee23],
    },
];

/// network1's digests, the same everywhere, for [`network1_runs`].
const NETWORK1: [u64; 2] = [0xe60d_ed04_9e85_c5e0, 0x6715_fc79_8f43_0269];

/// network1's runs: the book's, and one in `f32` with weight decay and dropout (the first
/// layer's step over touched and untouched columns, and the masks).
fn network1_runs() -> [(&'static str, TrainConfig); 2] {
    [
        ("network1", run(Variant::Network1)),
        ("network1, f32, lambda 5, dropout 0.2", {
            let mut c = run(Variant::Network1);
            c.network.precision = Precision::F32;
            c.sgd.lambda = 5.0;
            c.sgd.dropout = 0.2;
            c
        }),
    ]
}

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

/// Pseudo-random matrices of values in [−1, 1), the same sequence on every machine.
fn random_matrices<F: Real>() -> impl FnMut((usize, usize)) -> Array2<F> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    move |shape| {
        Array2::from_shape_simple_fn(shape, || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            F::of((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
    }
}

/// The products of one step of `nndl::train::batch` for the runs' [784, 30, 10] network and
/// mini-batch of 10 where every product is a general one, made as that step makes them (the same calls on the same layouts: the
/// images one per row in a buffer of the largest mini-batch, read through a transposed view;
/// the layers' buffers sliced to the mini-batch; Wᵀ and Aᵀ as transposed views; α = 1, β = 0
/// forward and backward; α = −η/m, β = 1 − ηλ/n in the fused update, with and without weight
/// decay), on pseudo-random values; each result goes into `h`.
fn general_step_products<F: Real>(h: &mut Fnv) {
    const M: usize = 10;
    let mut random = random_matrices::<F>();
    let x = random((M, 784));
    let (w0, w1) = (random((30, 784)), random((10, 30)));
    let mut a0 = Array2::<F>::zeros((30, M));
    let mut a1 = Array2::<F>::zeros((10, M));
    let mut d0 = Array2::<F>::zeros((30, M));
    let d1 = random((10, M));
    let x_m = x.slice(s![..M, ..]);
    // Forward: Z¹ = W¹·Xᵀ, Z² = W²·A¹.
    general_mat_mul(
        F::one(),
        &w0,
        &x_m.t(),
        F::zero(),
        &mut a0.slice_mut(s![.., ..M]),
    );
    h.add(&a0);
    general_mat_mul(
        F::one(),
        &w1,
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

/// The products of the same step where it takes the small-batch kernels, in `f32` on a CPU
/// with FMA ([`small_batch::available`]): the forward products from the images one per row and
/// from A¹ turned into rows, BP2's δ¹ = (W²)ᵀ·δ² as a general product, and the fused update from
/// the packed inputs, with and without weight decay.
fn kernel_step_products(h: &mut Fnv) {
    const M: usize = 10;
    let mut random = random_matrices::<f32>();
    let x = random((M, 784));
    let (w0, w1) = (random((30, 784)), random((10, 30)));
    let d1 = random((10, M));
    let mut packed = [Vec::new(), Vec::new()];
    let forward = |w: &Array2<f32>, x: &Array2<f32>, packed: &mut Vec<f32>| {
        let mut z = Array2::<f32>::zeros((w.nrows(), M));
        let (w_s, x_s) = (w.as_slice().unwrap(), x.as_slice().unwrap());
        let z_s = z.as_slice_mut().unwrap();
        small_batch::forward(1.0, w_s, w.ncols(), x_s, M, z_s, M, packed);
        z
    };
    let a0 = forward(&w0, &x, &mut packed[0]);
    h.add(&a0);
    let a1 = forward(&w1, &a0.t().as_standard_layout().to_owned(), &mut packed[1]);
    h.add(&a1);
    let mut d0 = Array2::<f32>::zeros((30, M));
    general_mat_mul(1.0, &w1.t(), &d1, 0.0, &mut d0);
    h.add(&d0);
    let scale = 3.0 / M as f32;
    for decay in [1.0, 1.0 - 0.5 * 5.0 / 5000.0] {
        for (w, delta, packed) in [(&w0, &d0, &packed[0]), (&w1, &d1, &packed[1])] {
            let mut v = w.clone();
            let n_in = w.ncols();
            let x = small_batch::packed(packed, n_in, M);
            let (v_s, delta_s) = (v.as_slice_mut().unwrap(), delta.as_slice().unwrap());
            small_batch::update_packed(v_s, n_in, delta_s, M, x, M, (decay, scale));
            h.add(&v);
        }
    }
}

/// The fingerprint of the general products: [`general_step_products`] in `f64`, then in `f32`,
/// hashed together. Two machines with the same fingerprint round every general product of the
/// runs alike.
fn products_fingerprint() -> u64 {
    let mut h = Fnv::new();
    general_step_products::<f64>(&mut h);
    general_step_products::<f32>(&mut h);
    h.0
}

/// The fingerprint of the `f32` step through the small-batch kernels, [`kernel_step_products`].
fn kernels_fingerprint() -> u64 {
    let mut h = Fnv::new();
    kernel_step_products(&mut h);
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
    let got = network1_runs().map(|(_, config)| trained_digest(&config, &sets));
    for ((what, _), (got, want)) in network1_runs().iter().zip(got.iter().zip(NETWORK1)) {
        assert_eq!(*got, want, "{what}: {got:#018x}");
    }

    // Each run with the fingerprint that decides its bits: the general products', or, for
    // the `f32` run where its step takes the small-batch kernels, theirs.
    let general = ("KNOWN", KNOWN, products_fingerprint());
    let kernels = ("KNOWN_KERNELS", KNOWN_KERNELS, kernels_fingerprint());
    let mut unknown: Vec<((&str, u64), Vec<String>)> = Vec::new();
    let mut wrong = Vec::new();
    for (i, (name, config)) in product_runs().into_iter().enumerate() {
        let in_f32 = config.network.precision == Precision::F32;
        let ((table, known, fingerprint), index) = if in_f32 && takes_small_batch_kernels::<f32>() {
            (kernels, 0)
        } else {
            (general, i)
        };
        let found = known.iter().find(|k| k.fingerprint == fingerprint);
        if let Some((known, &want)) = found.and_then(|k| Some((k, k.digests.get(index)?))) {
            let got = trained_digest(&config, &sets);
            assert_eq!(
                got, want,
                "{name}: {got:#018x}, where the products' fingerprint {fingerprint:#018x} \
                 ({}) trained {want:#018x}",
                known.seen_with
            );
            continue;
        }
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
        let digest = format!("{:#018x}", c.digest);
        match unknown
            .iter_mut()
            .find(|(key, _)| *key == (table, fingerprint))
        {
            Some((_, digests)) => digests.push(digest),
            None => unknown.push(((table, fingerprint), vec![digest])),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("; "));
    for ((table, fingerprint), digests) in unknown {
        eprintln!(
            "The products here have a fingerprint not in {table}: {fingerprint:#018x} ({}). The \
             runs repeat and agree with update_mini_batch; to pin them, add to {table}:\n    \
             Known {{ fingerprint: {fingerprint:#018x}, seen_with: \"…\", digests: &[{}] }},",
            nndl::backend::describe(),
            digests.join(", ")
        );
    }
}

/// The fingerprints are the products' alone: computed again, they are the same.
#[test]
fn the_fingerprints_repeat() {
    assert_eq!(products_fingerprint(), products_fingerprint());
    assert_eq!(kernels_fingerprint(), kernels_fingerprint());
}
