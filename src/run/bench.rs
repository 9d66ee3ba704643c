//! `nndl bench`: each program's training step and evaluation timed over a few epochs of the
//! book's run, and set against the core's measured peak FLOP rate
//! ([`crate::report::bench`]).

use std::path::PathBuf;

use crate::config::{check_threads, Precision, TrainConfig, Variant};
use crate::data::Mnist;
use crate::real::Real;
use crate::report::bench::{fma_kind, fma_peak, EpochRate};
use crate::report::console::say;
use crate::train::{train, History};

use super::{load_data, RunError};

/// What to time.
#[derive(Clone, Debug)]
pub struct BenchRequest {
    /// Epochs per run (the median epoch is reported).
    pub epochs: usize,
    pub nets: Vec<Variant>,
    pub precisions: Vec<Precision>,
    /// Threads for the matrix products.
    pub threads: usize,
    /// The MNIST pickle, or a directory of IDX files.
    pub data: PathBuf,
    /// Validation images taken from the end of the training images (see
    /// [`super::load_data`]); only the training and test images are timed.
    pub validation_size: Option<usize>,
}

/// Times the book's run of each program in each precision and prints a table of seconds per
/// epoch, GFLOP/s and their share of the core's peak.
pub fn bench(request: &BenchRequest) -> Result<(), RunError> {
    check_threads(request.threads)?;
    for &net in &request.nets {
        bench_config(net, Precision::F64, request.epochs).check()?;
    }
    crate::backend::set_threads(request.threads);
    say(&format!("Backend: {}", crate::backend::describe()));
    let (peak64, peak32) = (fma_peak(false), fma_peak(true));
    say(&format!(
        "Peak of one core ({}): {peak64:.1} GFLOP/s in f64, {peak32:.1} GFLOP/s in f32",
        fma_kind()
    ));
    let mnist = load_data(&request.data, request.validation_size)?;
    let mnist32 = request
        .precisions
        .contains(&Precision::F32)
        .then(|| mnist.cast::<f32>());
    let images = mnist.training.images();
    let nonzero = images.iter().filter(|&&p| p != 0.0).count();
    say(&format!(
        "{} epochs of each; training {} images ({:.1}% of their pixels not 0), evaluating {}; \
         times are medians over epochs\n",
        request.epochs,
        mnist.training.len(),
        100.0 * nonzero as f64 / images.len() as f64,
        mnist.test.len()
    ));
    say("| program | precision | train s/epoch | train GFLOP/s | % of peak | eval s/epoch | epoch incl. eval (s) | GFLOP/s incl. eval | % of peak |");
    say("|---|---|---|---|---|---|---|---|---|");
    for &net in &request.nets {
        for &precision in &request.precisions {
            let config = bench_config(net, precision, request.epochs);
            let (history, peak) = match (precision, &mnist32) {
                (Precision::F32, Some(m)) => (time(&config, m)?, peak32),
                _ => (time(&config, &mnist)?, peak64),
            };
            let sizes = &config.network.sizes;
            let (n_train, n_eval) = (mnist.training.len(), mnist.test.len());
            let Some(r) = EpochRate::of(&history, sizes, n_train, n_eval) else {
                continue;
            };
            say(&format!(
                "| {} | {} | {:.3} | {:.1} | {:.0}% | {:.3} | {:.3} | {:.1} | {:.0}% |",
                net.name(),
                precision.name(),
                r.train_seconds,
                r.train_gflops(),
                100.0 * r.train_gflops() / peak,
                r.eval_seconds,
                r.epoch_seconds(),
                r.epoch_gflops(),
                100.0 * r.epoch_gflops() / peak
            ));
        }
    }
    say("\nFLOPs per epoch are the dense algorithm's (see nndl::report::bench); network1 skips the zero pixels, so it does fewer than it is credited with.");
    Ok(())
}

/// The book's run of `net` for `epochs` epochs in `precision`.
fn bench_config(net: Variant, precision: Precision, epochs: usize) -> TrainConfig {
    let mut config = TrainConfig::book_run(net);
    config.sgd.epochs = epochs;
    config.network.precision = precision;
    config
}

/// Trains `config` on `mnist`, scoring on its test set.
fn time<F: Real>(config: &TrainConfig, mnist: &Mnist<F>) -> Result<History, RunError> {
    Ok(train(config, &mnist.training, &mnist.test, |_, _| {})?.1)
}
