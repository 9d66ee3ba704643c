//! How close a training step comes to what one core can do: the FLOPs of an epoch, the
//! core's measured peak rate of fused multiply-adds, and the fraction of it a run reaches.
//! Backs `nndl bench`; not part of the book.
//!
//! FLOPs are counted as the dense algorithm does them, 2 per multiply-add of the matrix
//! products (the elementwise work — σ, δ, the update — is left out, as is the shortcut the
//! per-example step takes over zero pixels): per training example, the forward product of
//! every layer, the backward product of every layer but the first, and the weight gradient of
//! every layer: 2·Σ n_in·n_out · (3 − [first layer]). Evaluation is one forward product per
//! example. Chapter 6's layers are counted the same way ([`layer_flops_per_example`]): a
//! convolution as the product of its weights with the unrolled patches (im2col), which is how
//! [`crate::model::layers::pass`] computes it; pooling is not counted.

use std::time::Instant;

use crate::model::layers::item::{Shape, SpecError};
use crate::model::layers::spec::{self, LayerSpec};
use crate::train::{EpochRecord, History};

/// A run's typical epoch: the median times over its epochs and the FLOPs they did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRate {
    /// Median seconds of an epoch's mini-batch steps.
    pub train_seconds: f64,
    /// Median seconds of an epoch's evaluation.
    pub eval_seconds: f64,
    /// FLOPs of an epoch's training and evaluation ([`flops_per_epoch`]).
    pub train_flops: f64,
    pub eval_flops: f64,
}

impl EpochRate {
    /// The median epoch of `history`, for a network of `sizes` trained on `n_train` examples
    /// and scored on `n_eval`; `None` for a history without epochs.
    pub fn of(history: &History, sizes: &[usize], n_train: usize, n_eval: usize) -> Option<Self> {
        Self::with_flops(history, flops_per_epoch(sizes, n_train, n_eval))
    }

    /// The median epoch of `history`, whose epochs did `(training, evaluation)` FLOPs each
    /// ([`flops_per_epoch`], [`layer_flops_per_epoch`]); `None` for a history without epochs.
    pub fn with_flops(history: &History, (train_flops, eval_flops): (f64, f64)) -> Option<Self> {
        let median = |f: fn(&EpochRecord) -> f64| {
            let mut v: Vec<f64> = history.epochs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        Some(EpochRate {
            train_seconds: median(|e| e.train_seconds)?,
            eval_seconds: median(|e| e.eval_seconds)?,
            train_flops,
            eval_flops,
        })
    }

    /// GFLOP/s of the training steps.
    pub fn train_gflops(&self) -> f64 {
        self.train_flops / self.train_seconds / 1e9
    }

    /// Seconds of a whole epoch, evaluation included.
    pub fn epoch_seconds(&self) -> f64 {
        self.train_seconds + self.eval_seconds
    }

    /// GFLOP/s of a whole epoch, evaluation included.
    pub fn epoch_gflops(&self) -> f64 {
        (self.train_flops + self.eval_flops) / self.epoch_seconds() / 1e9
    }
}

/// FLOPs of one epoch: `(training, evaluation)`, for a network of `sizes` trained on
/// `n_train` examples and scored on `n_eval`.
pub fn flops_per_epoch(sizes: &[usize], n_train: usize, n_eval: usize) -> (f64, f64) {
    let layer = |l: usize| 2.0 * (sizes[l] * sizes[l + 1]) as f64;
    let layers = 0..sizes.len().saturating_sub(1);
    let forward: f64 = layers.clone().map(layer).sum();
    let backward: f64 = layers.clone().skip(1).map(layer).sum();
    let gradient: f64 = layers.map(layer).sum();
    (
        n_train as f64 * (forward + backward + gradient),
        n_eval as f64 * forward,
    )
}

/// FLOPs of one example through chapter 6's `layers`, reading inputs of shape `input` and
/// telling `classes` apart: `(training, evaluation)`, counted as the dense algorithm does them,
/// 2 per multiply-add of the layers' matrix products, as [`flops_per_epoch`] counts a
/// fully-connected network. A convolution of F filters of K×K over C input channels, whose
/// map before pooling is H′×W′, multiplies its (F, C·K·K) weights by the (C·K·K, H′·W′)
/// unrolled patches: 2·F·(C·K·K)·H′·W′ forward, as many for ∇W, and as many for the error of
/// its input except in the first layer, which needs none. A fully-connected or softmax layer
/// of n_in inputs and n_out neurons: 2·n_in·n_out forward, as many for ∇W and, except in the
/// first layer, for the error of its input. Pooling, activations, dropout masks, biases and
/// the update are not counted. Evaluation is the forward products. A list that cannot be
/// built is refused as [`spec::check`] refuses it.
pub fn layer_flops_per_example(
    layers: &[LayerSpec],
    input: Shape,
    classes: usize,
) -> Result<(f64, f64), SpecError> {
    let (mut forward, mut backward) = (0.0, 0.0);
    for (l, multiply_adds) in layer_multiply_adds(layers, input, classes)?
        .into_iter()
        .enumerate()
    {
        let product = 2.0 * multiply_adds;
        forward += product;
        // ∇W, and the input's error except in the first layer.
        backward += if l == 0 { product } else { 2.0 * product };
    }
    Ok((forward + backward, forward))
}

/// The multiply-adds of one of each layer's products for one example — its forward product
/// W·cols or W·x, which ∇W and the input's error match (see [`layer_flops_per_example`]).
pub fn layer_multiply_adds(
    layers: &[LayerSpec],
    input: Shape,
    classes: usize,
) -> Result<Vec<f64>, SpecError> {
    let shapes = spec::check(layers, input, classes)?;
    Ok(layers
        .iter()
        .zip(&shapes)
        .map(|(layer, &input)| layer.multiply_adds(input, classes))
        .collect())
}

/// FLOPs of one epoch of chapter 6's `layers` ([`layer_flops_per_example`]): `(training,
/// evaluation)` for `n_train` training examples and `n_eval` scored.
pub fn layer_flops_per_epoch(
    layers: &[LayerSpec],
    input: Shape,
    classes: usize,
    n_train: usize,
    n_eval: usize,
) -> Result<(f64, f64), SpecError> {
    let (train, eval) = layer_flops_per_example(layers, input, classes)?;
    Ok((n_train as f64 * train, n_eval as f64 * eval))
}

/// The widest fused multiply-add this CPU runs, as used by [`fma_peak`].
pub fn fma_kind() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512 FMA";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2 FMA";
        }
    }
    "scalar mul_add"
}

/// The single-core peak rate of fused multiply-adds in GFLOP/s for `f64` (`single = false`)
/// or `f32`: the best of a few short runs of independent FMA chains, at the widest vector
/// width the CPU has ([`fma_kind`]).
pub fn fma_peak(single: bool) -> f64 {
    let iterations = 20_000_000;
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let (flops, checksum) = fma_loop(single, iterations);
            let seconds = start.elapsed().as_secs_f64();
            std::hint::black_box(checksum);
            flops / seconds / 1e9
        })
        .fold(0.0, f64::max)
}

/// The peak rate of `threads` cores at once, in GFLOP/s: [`fma_peak`]'s loop run on
/// `threads` threads together, the best of a few runs of their summed rates (the cores of a
/// machine can share a clock budget or an FMA unit, so this is measured, not multiplied).
pub fn fma_peak_threads(single: bool, threads: usize) -> f64 {
    if threads <= 1 {
        return fma_peak(single);
    }
    let iterations = 20_000_000;
    (0..3)
        .map(|_| {
            std::thread::scope(|scope| {
                let runs: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(move || {
                            let start = Instant::now();
                            let (flops, checksum) = fma_loop(single, iterations);
                            let seconds = start.elapsed().as_secs_f64();
                            std::hint::black_box(checksum);
                            flops / seconds / 1e9
                        })
                    })
                    .collect();
                runs.into_iter()
                    .map(|run| run.join().unwrap_or(0.0))
                    .sum::<f64>()
            })
        })
        .fold(0.0, f64::max)
}

/// Independent accumulators: enough to cover the FMA latency on two ports.
const CHAINS: usize = 12;

/// Runs `iterations` rounds of [`CHAINS`] vector FMAs; returns (FLOPs, a checksum).
fn fma_loop(single: bool, iterations: u64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        // (kernel, lanes) for the widest FMA this CPU has.
        type Kernel = unsafe fn(u64) -> f64;
        let chosen: Option<(Kernel, f64)> = if has!("avx512f") {
            Some(if single {
                (x86::f32_avx512, 16.0)
            } else {
                (x86::f64_avx512, 8.0)
            })
        } else if has!("avx2") && has!("fma") {
            Some(if single {
                (x86::f32_avx2, 8.0)
            } else {
                (x86::f64_avx2, 4.0)
            })
        } else {
            None
        };
        if let Some((kernel, lanes)) = chosen {
            // Safety: the kernel's target features were detected on this CPU just above.
            let sum = unsafe { kernel(iterations) };
            return (2.0 * lanes * (CHAINS as u64 * iterations) as f64, sum);
        }
    }
    let mut acc = [1.0f64; CHAINS];
    for _ in 0..iterations / 8 {
        for a in acc.iter_mut() {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    let _ = single;
    (
        2.0 * (CHAINS as u64 * (iterations / 8)) as f64,
        acc.iter().sum(),
    )
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    macro_rules! fma_chains {
        ($name:ident, $feature:literal, $set1:ident, $fmadd:ident, $add:ident, $store:ident, $t:ty, $lanes:literal) => {
            #[target_feature(enable = $feature)]
            pub unsafe fn $name(iterations: u64) -> f64 {
                let a = $set1(0.999_999);
                let b = $set1(1e-7);
                let mut acc = [$set1(1.0); CHAINS];
                for _ in 0..iterations {
                    for r in acc.iter_mut() {
                        *r = $fmadd(*r, a, b);
                    }
                }
                let mut s = $set1(0.0);
                for r in acc {
                    s = $add(s, r);
                }
                let mut out = [0.0 as $t; $lanes];
                $store(out.as_mut_ptr(), s);
                out.iter().map(|&v| v as f64).sum()
            }
        };
    }

    fma_chains!(
        f64_avx512,
        "avx512f",
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd,
        f64,
        8
    );
    fma_chains!(
        f32_avx512,
        "avx512f",
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        f32,
        16
    );
    fma_chains!(
        f64_avx2,
        "avx2,fma",
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd,
        f64,
        4
    );
    fma_chains!(
        f32_avx2,
        "avx2,fma",
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps,
        f32,
        8
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_of_the_books_network() {
        // [784, 30, 10]: forward 2·(23520 + 300), backward 2·300, gradient 2·(23520 + 300).
        let (train, eval) = flops_per_epoch(&[784, 30, 10], 50_000, 10_000);
        assert_eq!(train, 50_000.0 * 2.0 * (23_820.0 + 300.0 + 23_820.0));
        assert_eq!(eval, 10_000.0 * 2.0 * 23_820.0);
    }

    fn layers(text: &str) -> Vec<LayerSpec> {
        spec::parse(text, crate::model::activation::Activation::Sigmoid, 0.0).unwrap()
    }

    #[test]
    fn flops_of_a_small_conv_net_by_hand() {
        // 1×6×6 images, 3 classes. conv:2:3 sees 1 channel through 3×3 filters on a 4×4 map:
        // 2·9·16 = 288 multiply-adds, pooled to 2×2×2 = 8 values; fc:4 8·4 = 32; softmax 4·3 = 12.
        // Training: the first layer forward and ∇W (2 products), the others 3 each.
        let net = layers("conv:2:3,pool:2,fc:4,softmax");
        let (train, eval) = layer_flops_per_example(&net, [1, 6, 6], 3).unwrap();
        assert_eq!(train, 2.0 * (2.0 * 288.0 + 3.0 * (32.0 + 12.0)));
        assert_eq!(eval, 2.0 * (288.0 + 32.0 + 12.0));
        // A second convolution reads 2 channels: conv:3:2 on 2×4×4 is 3·(2·2·2)·(3·3) = 216
        // multiply-adds to 3×3×3 = 27 values, and it needs its input's error.
        let net = layers("conv:2:3,conv:3:2,fc:4,softmax");
        let (train, eval) = layer_flops_per_example(&net, [1, 6, 6], 3).unwrap();
        assert_eq!(
            train,
            2.0 * (2.0 * 288.0 + 3.0 * (216.0 + 27.0 * 4.0 + 12.0))
        );
        assert_eq!(eval, 2.0 * (288.0 + 216.0 + 108.0 + 12.0));
        let (train, eval) = layer_flops_per_epoch(&net, [1, 6, 6], 3, 100, 10).unwrap();
        assert_eq!((train, eval), (100.0 * 3168.0, 10.0 * 1248.0));
    }

    #[test]
    fn flops_of_the_books_conv_nets() {
        // ch6-two-conv: conv1 20·25·576 = 288,000; conv2 40·500·64 = 1,280,000; fc 640·100;
        // softmax 100·10 multiply-adds per example.
        let net = layers("conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax");
        let (train, eval) = layer_flops_per_example(&net, [1, 28, 28], 10).unwrap();
        assert_eq!(train, 9_222_000.0);
        assert_eq!(eval, 2.0 * (288_000.0 + 1_280_000.0 + 64_000.0 + 1_000.0));
        // Fully-connected layers alone count as the fully-connected network of their sizes.
        let net = layers("fc:100,softmax");
        assert_eq!(
            layer_flops_per_epoch(&net, [1, 28, 28], 10, 50_000, 10_000).unwrap(),
            flops_per_epoch(&[784, 100, 10], 50_000, 10_000)
        );
        assert!(layer_flops_per_example(&layers("conv:2:7,softmax"), [1, 6, 6], 3).is_err());
    }
}
