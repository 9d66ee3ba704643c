//! `nndl bench`: each network's training step and evaluation timed over a few epochs of its
//! book run, and set against the core's measured peak FLOP rate ([`crate::report::bench`]).
//!
//! The networks are the three programs, as `nndl train --net` runs them, and chapter 6's,
//! named by their `nndl book` rows (`ch6-conv`, `ch6-two-conv`, …; [`BenchNet`]), each with
//! its row's layers, activation, η, λ and mini-batch, in its row's precision unless told
//! otherwise. Every run is drawn by [`with_model`] and trained by the one training loop, as
//! `nndl train` and `nndl book` train them, and scores the test set after every epoch.
//!
//! What it leaves out of the book's rows: their data (a row the book trains on the expanded
//! images is timed on `--data`'s training set, whose size sets the epoch) and how they are
//! scored (the test set every epoch, as for the programs).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use crate::config::{
    check_threads, check_train_size, Architecture, CheckedConfig, ConfigError, Precision,
    TrainConfig, Variant,
};
use crate::data::{Dataset, CLASSES, IMAGE_PIXELS, IMAGE_SHAPE};
use crate::model::layers::phase::Phase;
use crate::model::layers::LayerNetwork;
use crate::model::Step;
use crate::real::Real;
use crate::report::bench::{
    flops_per_epoch, fma_kind, fma_peak, fma_peak_threads, layer_flops_per_epoch,
    layer_multiply_adds, EpochRate,
};
use crate::report::console::say;
use crate::rng::SeededRng;
use crate::train::step::UpdateMiniBatch;
use crate::train::{sgd, EpochFn, EpochRecord, History, Model};

use super::book::{Net, Row, ROWS};
use super::{load_data, memory_total, training_count, with_model, RunError, RunModel, WithModel};

/// A network `nndl bench` times.
#[derive(Clone, Copy, Debug)]
pub enum BenchNet {
    /// One of the three programs, in its book run (`TrainConfig::book_run`).
    Program(Variant),
    /// A chapter-6 network, set up as its `nndl book` row.
    Book(&'static Row),
}

/// A name `--nets` does not take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownNet {
    #[error(
        "unknown network `{name}`: bench takes network1, network2, network3 and chapter 6's \
         networks by their `nndl book` rows: {}",
        BenchNet::book_rows().map(|r| r.id).collect::<Vec<_>>().join(", ")
    )]
    Unknown { name: String },
    #[error("`{name}` trains the network of `{same}` ({what}): bench `{same}` instead")]
    SameAs {
        name: String,
        same: &'static str,
        what: &'static str,
    },
}

impl BenchNet {
    /// The `nndl book` rows `--nets` takes: chapter 6's, one for each distinct network (a row
    /// that trains an earlier row's network — on other data, or several times to vote — is
    /// refused, naming that row).
    pub fn book_rows() -> impl Iterator<Item = &'static Row> {
        ROWS.iter()
            .enumerate()
            .filter(|(i, row)| {
                matches!(row.net, Net::Layers(..)) && same_network_before(row, *i).is_none()
            })
            .map(|(_, row)| row)
    }

    /// The name `--nets` knows it by.
    pub fn name(&self) -> &'static str {
        match self {
            BenchNet::Program(variant) => variant.name(),
            BenchNet::Book(row) => row.id,
        }
    }

    /// The precisions timed unless `--precisions` says otherwise: `f64` and `f32` for the
    /// programs, the row's (`f32`, as `network3.py` ran in Theano's float32) for chapter 6.
    pub fn precisions(&self) -> Vec<Precision> {
        match self {
            BenchNet::Program(_) => vec![Precision::F64, Precision::F32],
            BenchNet::Book(row) => vec![row.precision()],
        }
    }

    /// The run timed: the book's, for `epochs` epochs in `precision` (seed 0).
    pub fn config(&self, precision: Precision, epochs: usize) -> Result<TrainConfig, ConfigError> {
        match self {
            BenchNet::Program(variant) => {
                let mut config = TrainConfig::book_run(*variant);
                config.sgd.epochs = epochs;
                config.network.precision = precision;
                Ok(config)
            }
            BenchNet::Book(row) => row.config(epochs, precision, 0),
        }
    }
}

/// The first row before `ROWS[index]` with the same chapter-6 network (layers and activation).
fn same_network_before(row: &Row, index: usize) -> Option<&'static Row> {
    let Net::Layers(text, activation) = row.net else {
        return None;
    };
    ROWS[..index]
        .iter()
        .find(|r| matches!(r.net, Net::Layers(t, a) if t == text && a == activation))
}

impl FromStr for BenchNet {
    type Err = UnknownNet;

    /// `network1`, `network2`, `network3`, or a chapter-6 row of [`BenchNet::book_rows`].
    fn from_str(text: &str) -> Result<Self, UnknownNet> {
        let name = text.trim();
        if let Some(variant) = [Variant::Network1, Variant::Network2, Variant::Network3]
            .into_iter()
            .find(|v| v.name() == name)
        {
            return Ok(BenchNet::Program(variant));
        }
        let unknown = || UnknownNet::Unknown {
            name: name.to_string(),
        };
        let index = ROWS.iter().position(|r| r.id == name).ok_or_else(unknown)?;
        let row = &ROWS[index];
        if !matches!(row.net, Net::Layers(..)) {
            return Err(unknown());
        }
        match same_network_before(row, index) {
            Some(same) => Err(UnknownNet::SameAs {
                name: name.to_string(),
                same: same.id,
                what: row.what,
            }),
            None => Ok(BenchNet::Book(row)),
        }
    }
}

/// What to time.
#[derive(Clone, Debug)]
pub struct BenchRequest {
    /// Epochs per run (the median epoch is reported).
    pub epochs: usize,
    pub nets: Vec<BenchNet>,
    /// The precisions to time every network in [default: each network's
    /// ([`BenchNet::precisions`])].
    pub precisions: Option<Vec<Precision>>,
    /// Threads that share each mini-batch and score the networks.
    pub threads: usize,
    /// The MNIST pickle, or a directory of IDX files.
    pub data: PathBuf,
    /// Validation images taken from the end of the training images (see
    /// [`super::load_data`]); only the training and test images are timed.
    pub validation_size: Option<usize>,
    /// Train on the first N training images only (all of them by default).
    pub train_size: Option<usize>,
    /// Also time each phase of each chapter-6 network's training step, layer by layer.
    pub phases: bool,
}

/// One network in one precision, checked.
struct Run {
    net: BenchNet,
    config: CheckedConfig,
}

/// Times the book's run of each network in each precision and prints a table of seconds per
/// epoch, GFLOP/s and their share of the core's peak. Every argument is checked before the
/// data is loaded (`--train-size` and the mini-batch against the number of training images
/// where the data's headers tell it, as `nndl train` checks them).
pub fn bench(request: &BenchRequest) -> Result<(), RunError> {
    check_threads(request.threads)?;
    if let Some(n) = request.train_size {
        check_train_size(n, None)?;
    }
    let memory = memory_total().unwrap_or(u128::MAX);
    let mut runs = Vec::new();
    for &net in &request.nets {
        let precisions = request
            .precisions
            .clone()
            .unwrap_or_else(|| net.precisions());
        for precision in precisions {
            let config = net
                .config(precision, request.epochs)?
                .check()?
                .with_threads(request.threads);
            config
                .network
                .check_memory(config.sgd.mini_batch_size, request.threads, memory)?;
            runs.push(Run { net, config });
        }
    }
    let available = training_count(&request.data, request.validation_size);
    if let Some(n) = request.train_size {
        check_train_size(n, available)?;
    }
    if let Some(n) = request.train_size.or(available) {
        check_runs_against(&runs, n)?;
    }

    crate::backend::start_threads(request.threads)?;
    say(&format!("Backend: {}", crate::backend::describe()));
    let (core64, core32) = (fma_peak(false), fma_peak(true));
    say(&format!(
        "Peak of one core ({}): {core64:.1} GFLOP/s in f64, {core32:.1} GFLOP/s in f32",
        fma_kind()
    ));
    // The share of the peak is of every core the run uses.
    let (peak64, peak32) = match request.threads {
        1 => (core64, core32),
        n => {
            let peaks = (fma_peak_threads(false, n), fma_peak_threads(true, n));
            say(&format!(
                "Peak of {n} threads at once: {:.1} GFLOP/s in f64, {:.1} GFLOP/s in f32 \
                 (the shares of the peak below are of this)",
                peaks.0, peaks.1
            ));
            say(&format!(
                "Hand-over between the {n} threads: {:.1} µs per fork and join (a shared \
                 mini-batch of ch6-conv takes six: three for its convolution, three for \
                 its fc:100)",
                1e6 * crate::backend::fork_join_seconds(n, 9)
            ));
            peaks
        }
    };
    let mnist = load_data(&request.data, request.validation_size)?;
    let training = match request.train_size {
        Some(n) => {
            check_train_size(n, Some(mnist.training.len()))?;
            mnist.training.head(n)
        }
        None => mnist.training,
    };
    let test = mnist.test;
    check_runs_against(&runs, training.len())?;
    let in_f32 = runs
        .iter()
        .any(|r| r.config.network.precision == Precision::F32);
    let sets32 = in_f32.then(|| (training.cast::<f32>(), test.cast::<f32>()));

    for (i, run) in runs.iter().enumerate() {
        let first = runs[..i].iter().all(|r| r.net.name() != run.net.name());
        if let (BenchNet::Book(row), true) = (run.net, first) {
            describe(row, &run.config);
        }
    }
    let images = training.images();
    let nonzero = images.iter().filter(|&&p| p != 0.0).count();
    say(&format!(
        "{} epochs of each; training {} images ({:.1}% of their pixels not 0), evaluating {}; \
         times are medians over epochs\n",
        request.epochs,
        training.len(),
        100.0 * nonzero as f64 / images.len() as f64,
        test.len()
    ));
    say("| program | precision | train s/epoch | train GFLOP/s | % of peak | eval s/epoch | epoch incl. eval (s) | GFLOP/s incl. eval | % of peak |");
    say("|---|---|---|---|---|---|---|---|---|");
    for run in &runs {
        let precision = run.config.network.precision;
        let (history, peak) = match (precision, &sets32) {
            (Precision::F32, Some((training, test))) => {
                (time(&run.config, training, test)?, peak32)
            }
            _ => (time(&run.config, &training, &test)?, peak64),
        };
        let flops = epoch_flops(&run.config, training.len(), test.len())?;
        let Some(r) = EpochRate::with_flops(&history, flops) else {
            continue;
        };
        say(&format!(
            "| {} | {} | {:.3} | {:.1} | {:.0}% | {:.3} | {:.3} | {:.1} | {:.0}% |",
            run.net.name(),
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
    if request.phases {
        for run in runs.iter().filter(|r| r.config.network.layers().is_some()) {
            match (run.config.network.precision, &sets32) {
                (Precision::F32, Some((training, _))) => phases(run, training, core32)?,
                _ => phases(run, &training, core64)?,
            }
        }
    }
    say("\nFLOPs per epoch are the dense algorithm's (see nndl::report::bench); network1 skips the zero pixels, so it does fewer than it is credited with.");
    if runs.iter().any(|r| matches!(r.net, BenchNet::Book(_))) {
        say("A convolution is counted as its product with the unrolled patches (im2col); pooling and activations are not counted.");
    }
    Ok(())
}

/// One epoch of `run`'s chapter-6 network over `training` in order (no shuffle, no
/// evaluation), its training step timed phase by phase ([`Phase`]), printed as a table: each
/// layer's phases with their seconds, share of the step and, for the products, GFLOP/s and
/// share of `peak`.
fn phases<F: Real>(run: &Run, training: &Dataset<F>, peak: f64) -> Result<(), RunError> {
    let config = &run.config;
    let Some(layers) = config.network.layers() else {
        return Ok(());
    };
    let mut rng = crate::rng::seeded(config.seed);
    let mut net: LayerNetwork<F> =
        LayerNetwork::new(layers, IMAGE_SHAPE, CLASSES, &mut rng).map_err(ConfigError::from)?;
    // One thread: the phases are a profile of the kernels.
    let mut step = net.step(&config.sgd, 1);
    step.time_phases();
    let sgd = Step {
        eta: config.sgd.eta,
        lambda: config.sgd.lambda,
        n: training.len(),
        dropout: 0.0,
    };
    let order: Vec<usize> = (0..training.len()).collect();
    let start = Instant::now();
    for batch in order.chunks(config.sgd.mini_batch_size) {
        step.update_mini_batch(&mut net, training, batch, &sgd, &mut rng);
    }
    let total = start.elapsed().as_secs_f64();
    let seconds = step.phase_seconds().unwrap_or(&[]);
    let n = training.len() as f64;
    say(&format!(
        "\n{} {}: one epoch of {} images in {total:.3} s, by phase",
        run.net.name(),
        config.network.precision.name(),
        training.len()
    ));
    say("| layer | phase | s | share of the step | GFLOP/s | % of peak |");
    say("|---|---|---|---|---|---|");
    let multiply_adds =
        layer_multiply_adds(layers, IMAGE_SHAPE, CLASSES).map_err(ConfigError::from)?;
    for (l, ((layer, times), macs)) in net
        .layers
        .iter()
        .zip(seconds)
        .zip(multiply_adds)
        .enumerate()
    {
        let spec = layer.spec();
        for phase in Phase::ALL {
            let s = times[phase as usize];
            if s == 0.0 {
                continue;
            }
            let products = match phase {
                Phase::ConvForward | Phase::ConvGradient | Phase::ConvInputError => 1.0,
                Phase::DenseForward => 1.0,
                Phase::DenseBackward => {
                    if l == 0 {
                        1.0
                    } else {
                        2.0
                    }
                }
                _ => 0.0,
            };
            let rate = if products > 0.0 {
                let gflops = 2.0 * products * macs * n / s / 1e9;
                format!("{gflops:.1} | {:.0}%", 100.0 * gflops / peak)
            } else {
                " | ".to_string()
            };
            say(&format!(
                "| {} `{}` | {} | {s:.3} | {:.1}% | {rate} |",
                l + 1,
                spec.text(),
                phase.name(),
                100.0 * s / total
            ));
        }
    }
    Ok(())
}

/// The mini-batch of every run against `n` training images.
fn check_runs_against(runs: &[Run], n: usize) -> Result<(), ConfigError> {
    for run in runs {
        run.config
            .check_data((IMAGE_PIXELS, CLASSES), IMAGE_PIXELS, CLASSES, n)?;
    }
    Ok(())
}

/// A line on what a chapter-6 row's run is.
fn describe(row: &Row, config: &TrainConfig) {
    let Net::Layers(text, activation) = row.net else {
        return;
    };
    let data = if row.expanded {
        " (the book trains it on the expanded images)"
    } else {
        ""
    };
    say(&format!(
        "{}: layers {text}, {} neurons, eta {}, lambda {}, mini-batch {}{data}",
        row.id,
        activation.name(),
        config.sgd.eta,
        config.sgd.lambda,
        config.sgd.mini_batch_size
    ));
}

/// FLOPs of an epoch of `config`'s network: `(training, evaluation)`.
fn epoch_flops(
    config: &TrainConfig,
    n_train: usize,
    n_eval: usize,
) -> Result<(f64, f64), ConfigError> {
    Ok(match &config.network.architecture {
        Architecture::Layers(layers) => {
            layer_flops_per_epoch(layers, IMAGE_SHAPE, CLASSES, n_train, n_eval)?
        }
        Architecture::FullyConnected(fc) => flops_per_epoch(&fc.sizes, n_train, n_eval),
    })
}

/// Draws `config`'s network ([`with_model`]) and trains it on `training`, scoring `test` after
/// every epoch.
fn time<F: Real>(
    config: &CheckedConfig,
    training: &Dataset<F>,
    test: &Dataset<F>,
) -> Result<History, RunError> {
    with_model(
        config,
        None,
        Timed {
            config,
            training,
            test,
        },
    )
}

/// A timed run's network, trained by the training loop.
struct Timed<'a, F: Real> {
    config: &'a CheckedConfig,
    training: &'a Dataset<F>,
    test: &'a Dataset<F>,
}

impl<F: Real> WithModel<F> for Timed<'_, F> {
    type Value = History;

    fn run<M: RunModel<F>>(self, mut net: M, mut rng: SeededRng) -> Result<History, RunError> {
        let mut quiet = EpochFn(|_: &EpochRecord, _: &[usize]| {});
        Ok(sgd(
            &mut net,
            self.config,
            self.training,
            self.test,
            &mut rng,
            &mut quiet,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_takes_each_chapter_6_network_once() {
        let ids: Vec<&str> = BenchNet::book_rows().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                "ch6-fc",
                "ch6-conv",
                "ch6-two-conv",
                "ch6-relu",
                "ch6-extra-fc",
                "ch6-dropout"
            ]
        );
        for id in ids {
            let net: BenchNet = id.parse().unwrap();
            assert_eq!(net.name(), id);
            assert_eq!(net.precisions(), [Precision::F32]);
            let config = net.config(Precision::F32, 2).unwrap().check().unwrap();
            assert_eq!(config.sgd.mini_batch_size, 10);
            assert_eq!(config.sgd.epochs, 2);
        }
        let relu = BenchNet::from_str("ch6-relu").unwrap();
        let config = relu.config(Precision::F32, 1).unwrap();
        assert_eq!((config.sgd.eta, config.sgd.lambda), (0.03, 0.1));
        let net: BenchNet = "network1".parse().unwrap();
        assert_eq!(net.precisions(), [Precision::F64, Precision::F32]);
        assert!(matches!(
            "ch6-vote".parse::<BenchNet>(),
            Err(UnknownNet::SameAs {
                same: "ch6-dropout",
                ..
            })
        ));
        assert!(matches!(
            "ch3-lambda-5".parse::<BenchNet>(),
            Err(UnknownNet::Unknown { .. })
        ));
    }
}
