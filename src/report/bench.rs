//! How close a training step comes to what one core can do: the FLOPs of an epoch, the
//! core's measured peak rate of fused multiply-adds, and the fraction of it a run reaches.
//! Backs `nndl bench`; not part of the book.
//!
//! FLOPs are counted as the dense algorithm does them, 2 per multiply-add of the matrix
//! products (the elementwise work — σ, δ, the update — is left out, as is the shortcut the
//! per-example step takes over zero pixels): per training example, the forward product of
//! every layer, the backward product of every layer but the first, and the weight gradient of
//! every layer: 2·Σ n_in·n_out · (3 − [first layer]). Evaluation is one forward product per
//! example.

use std::time::Instant;

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
        let median = |f: fn(&EpochRecord) -> f64| {
            let mut v: Vec<f64> = history.epochs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let (train_flops, eval_flops) = flops_per_epoch(sizes, n_train, n_eval);
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
}
