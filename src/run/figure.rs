//! `nndl figure`: the book's figure-making scripts (`fig/` in the book's repository) rerun
//! with their settings, each writing its picture (PNG) and the numbers behind it (CSV) and
//! printing what the book's text states beside what this run measured:
//!
//! - `generate_gradient` (chapter 5): each hidden layer's speed of learning, before and over
//!   500 epochs of full-batch training on the first 1,000 training images, for 2, 3 and 4
//!   hidden layers of 30 neurons;
//! - `weight_initialization` (chapter 3): validation accuracy over 30 epochs with N(0, 1/n_in)
//!   against N(0, 1) weights;
//! - `multiple_eta` (chapter 3): training cost over 30 epochs for η = 0.025, 0.25 and 2.5;
//! - `more_data` (chapter 3): validation accuracy against the size of the training set, with
//!   the script's epochs (1,500,000 / size) and λ (size / 10,000);
//! - `overfitting` (chapter 3): 400 epochs on 1,000 images without regularisation.
//!
//! `--quick` runs each on a few hundred images for a few epochs, to check the commands (CI).
//! What it leaves out: the scripts' NumPy seeds cannot be reproduced (nndl's generator is not
//! NumPy's); `weight_initialization` and `multiple_eta` use the number they seed with,
//! 12345678, the others seed 0. `more_data`'s SVM comparison curve is not drawn.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::{CheckedConfig, ConfigError, Monitor, TrainConfig, Variant};
use crate::data::{Dataset, Mnist};
use crate::model::init::Init;
use crate::model::network::Network;
use crate::report::console::{say, Console};
use crate::report::metrics::MetricsWriter;
use crate::report::plot::{self, Panel, Run, Scale, Series, SPEED_PANEL};
use crate::train::{build_network, sgd, History};

use super::{check_output, load_data, RunError};

/// The seed `weight_initialization.py` and `multiple_eta.py` give NumPy's generator.
const BOOK_SEED: u64 = 12_345_678;

/// One of the book's figure scripts.
pub struct Figure {
    pub name: &'static str,
    pub chapter: u8,
    pub what: &'static str,
    make: fn(&Make) -> Result<(), RunError>,
}

/// The figures, in the book's order.
pub const FIGURES: [Figure; 5] = [
    Figure {
        name: "overfitting",
        chapter: 3,
        what: "[784, 30, 10] on 1,000 images, 400 epochs, eta 0.5, lambda 0: cost and accuracy",
        make: overfitting,
    },
    Figure {
        name: "weight_initialization",
        chapter: 3,
        what: "validation accuracy, N(0, 1/n_in) against N(0, 1) weights, eta 0.1, lambda 5",
        make: weight_initialization,
    },
    Figure {
        name: "multiple_eta",
        chapter: 3,
        what: "training cost for eta 0.025, 0.25 and 2.5, lambda 5",
        make: multiple_eta,
    },
    Figure {
        name: "more_data",
        chapter: 3,
        what: "validation accuracy against training-set size, 100 to 50,000 images",
        make: more_data,
    },
    Figure {
        name: "generate_gradient",
        chapter: 5,
        what: "speed of learning of each hidden layer, 2, 3 and 4 hidden layers, 500 epochs",
        make: generate_gradient,
    },
];

/// Why `nndl figure` cannot run what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("unknown figure `{0}` (nndl figure --list lists them)")]
    Unknown(String),
    #[error("name the figures to make, or give --all")]
    NoneNamed,
}

/// `nndl figure NAME…|--all`: what to make, unchecked.
#[derive(Clone, Debug)]
pub struct FigureRequest {
    pub names: Vec<String>,
    pub all: bool,
    pub out: PathBuf,
    pub data: PathBuf,
    /// A few hundred images for a few epochs, to check the commands.
    pub quick: bool,
}

/// `nndl figure --list`.
pub fn list() {
    say(&format!("{:<22} ch.  what", "figure"));
    for f in &FIGURES {
        say(&format!("{:<22} {:>3}  {}", f.name, f.chapter, f.what));
    }
}

/// Makes the figures asked for into `request.out`, one after another, printing each one's
/// comparison with the book and wall time.
pub fn figure(request: &FigureRequest) -> Result<(), RunError> {
    let chosen: Vec<&Figure> = match (request.all, request.names.is_empty()) {
        (true, _) => FIGURES.iter().collect(),
        (false, true) => return Err(FigureError::NoneNamed.into()),
        (false, false) => request
            .names
            .iter()
            .map(|n| {
                FIGURES
                    .iter()
                    .find(|f| f.name == n)
                    .ok_or_else(|| FigureError::Unknown(n.clone()))
            })
            .collect::<Result<_, _>>()?,
    };
    std::fs::create_dir_all(&request.out).map_err(|source| RunError::Write {
        path: request.out.clone(),
        source,
    })?;
    check_output(&request.out.join("figure.png"))?;
    let mnist = load_data(&request.data, None)?;
    let make = Make {
        out: request.out.clone(),
        quick: request.quick,
        mnist,
    };
    for f in chosen {
        say(&format!("{} (chapter {}): {}", f.name, f.chapter, f.what));
        let start = Instant::now();
        (f.make)(&make)?;
        say(&format!(
            "{}: took {:.1} s",
            f.name,
            start.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// What every figure works from.
struct Make {
    out: PathBuf,
    quick: bool,
    mnist: Mnist,
}

impl Make {
    fn path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// The first `n` training images, or 500 under `--quick`.
    fn training(&self, n: Option<usize>) -> Dataset {
        let quick = self.quick.then_some(500);
        match quick.or(n) {
            Some(n) => self.mnist.training.head(n),
            None => self.mnist.training.clone(),
        }
    }

    /// The validation images, or 500 under `--quick`.
    fn validation(&self) -> Dataset {
        match self.quick {
            true => self.mnist.validation.head(500),
            false => self.mnist.validation.clone(),
        }
    }

    /// `epochs`, or 2 under `--quick`.
    fn epochs(&self, epochs: usize) -> usize {
        match self.quick {
            true => epochs.min(2),
            false => epochs,
        }
    }
}

/// `network2.Network(sizes)` with `init`: cross-entropy, sigmoid neurons.
fn network2(sizes: &[usize], init: Init, eta: f64, lambda: f64, epochs: usize) -> TrainConfig {
    let mut config = TrainConfig::book_run(Variant::Network3);
    if let Some(fc) = config.network.fully_connected_mut() {
        fc.sizes = sizes.to_vec();
        fc.init = init;
    }
    config.sgd.eta = eta;
    config.sgd.lambda = lambda;
    config.sgd.epochs = epochs;
    config
}

/// Trains `config`'s network on `training`, scoring `evaluation`, and writes its metrics to
/// `csv` if given (with the speed of learning over `speed_images`, if given).
fn fit(
    config: &CheckedConfig,
    training: &Dataset,
    evaluation: &Dataset,
    csv: Option<&Path>,
    speed_images: Option<usize>,
) -> Result<(Network, History), RunError> {
    let fc = config
        .network
        .fully_connected()
        .ok_or_else(|| ConfigError::NotFullyConnected(config.network.describe()))?;
    let mut rng = crate::rng::seeded(config.seed);
    let mut net = build_network::<f64>(fc, &mut rng);
    let metrics = csv.map(MetricsWriter::create).transpose()?;
    let mut console = Console::new(true, metrics, false);
    if let Some(n) = speed_images {
        console = console.monitor_learning_speed(n);
    }
    let result = sgd(
        &mut net,
        config,
        training,
        evaluation,
        &mut rng,
        &mut console,
    );
    console.finish()?;
    Ok((net, result?))
}

/// A metrics file written by [`fit`] scoring the set `scored`, as a run for the plots.
fn read_run(csv: &Path, label: &str, scored: &'static str) -> Result<Run, RunError> {
    Ok(Run {
        label: label.to_string(),
        rows: plot::read_metrics(csv)?,
        scored,
    })
}

/// Series of one value per epoch from runs' metrics, x the epoch counted from 1.
fn per_epoch(runs: &[Run], value: fn(&crate::report::metrics::Row) -> Option<f64>) -> Vec<Series> {
    runs.iter()
        .map(|run| Series {
            label: run.label.clone(),
            points: run
                .rows
                .iter()
                .filter_map(|r| value(r).map(|v| (r.epoch as f64 + 1.0, v)))
                .collect(),
        })
        .collect()
}

fn wrote(paths: &[&Path]) {
    for p in paths {
        say(&format!("  wrote {}", p.display()));
    }
}

/// `fig/overfitting.py`: the overfitting run of chapter 3, every monitor on, scored on the
/// test data as the book's figures are.
fn overfitting(make: &Make) -> Result<(), RunError> {
    let mut config = network2(
        &[784, 30, 10],
        Init::StandardNormal,
        0.5,
        0.0,
        make.epochs(400),
    );
    config.sgd.monitor = Monitor {
        training_cost: true,
        training_accuracy: true,
        evaluation_cost: true,
    };
    let config = config.check()?;
    let test = match make.quick {
        true => make.mnist.test.head(500),
        false => make.mnist.test.clone(),
    };
    let csv = make.path("overfitting.csv");
    let (_, history) = fit(&config, &make.training(Some(1000)), &test, Some(&csv), None)?;
    let png = make.path("overfitting.png");
    plot::plot(
        &[read_run(&csv, "λ = 0", "test")?],
        "Overfitting: [784, 30, 10], 1,000 training images, η = 0.5, λ = 0 (test data)",
        &png,
    )?;
    if let Some(best) = history.best() {
        say(&format!(
            "  best test accuracy {:.2}% at epoch {} (the book: 82.27% at its peak)",
            best.accuracy(),
            best.epoch
        ));
    }
    let costs: Vec<f64> = history
        .epochs
        .iter()
        .filter_map(|e| e.evaluation_cost)
        .collect();
    if let Some((lowest, _)) = costs.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)) {
        say(&format!(
            "  test cost lowest at epoch {lowest} (the book: it improves until around epoch 15, \
             then gets worse)"
        ));
    }
    wrote(&[&csv, &png]);
    Ok(())
}

/// `fig/weight_initialization.py` with n = 30, η = 0.1: the same network from N(0, 1/n_in) and
/// from N(0, 1) weights, λ = 5, scored on the validation data.
fn weight_initialization(make: &Make) -> Result<(), RunError> {
    let training = make.training(None);
    let validation = make.validation();
    let mut runs = Vec::new();
    let mut csvs = Vec::new();
    for (init, label, file) in [
        (Init::ScaledNormal, "new: N(0, 1/n_in) weights", "scaled"),
        (Init::StandardNormal, "old: N(0, 1) weights", "large"),
    ] {
        let mut config = network2(&[784, 30, 10], init, 0.1, 5.0, make.epochs(30));
        config.seed = BOOK_SEED;
        let csv = make.path(&format!("weight_initialization-{file}.csv"));
        let (_, history) = fit(&config.check()?, &training, &validation, Some(&csv), None)?;
        let first = history.epochs.first().map_or(0.0, |e| e.accuracy());
        let last = history.epochs.last().map_or(0.0, |e| e.accuracy());
        say(&format!(
            "  {label}: {first:.2}% after the first epoch, {last:.2}% after the last"
        ));
        runs.push(read_run(&csv, label, "validation")?);
        csvs.push(csv);
    }
    say(
        "  the book: after the first epoch the old weights give under 87%, the new almost 93%; \
         both end somewhat over 96%",
    );
    let png = make.path("weight_initialization.png");
    plot::draw_figure(
        &per_epoch(&runs, |r| Some(r.evaluation_accuracy)),
        Panel {
            caption: "Validation accuracy",
            x_desc: "epoch",
            y_desc: "accuracy on the validation data (%)",
            scale: Scale::Linear,
        },
        "Weight initialization: [784, 30, 10], η = 0.1, λ = 5.0",
        &png,
    )?;
    wrote(&[&csvs[0], &csvs[1], &png]);
    Ok(())
}

/// `fig/multiple_eta.py`: `network2.Network([784, 30, 10])`, λ = 5, the training cost for
/// each of three learning rates.
fn multiple_eta(make: &Make) -> Result<(), RunError> {
    let training = make.training(None);
    let validation = make.validation();
    let mut runs = Vec::new();
    let mut paths = Vec::new();
    for eta in [0.025, 0.25, 2.5] {
        let mut config = network2(
            &[784, 30, 10],
            Init::ScaledNormal,
            eta,
            5.0,
            make.epochs(30),
        );
        config.seed = BOOK_SEED;
        config.sgd.monitor.training_cost = true;
        let csv = make.path(&format!("multiple_eta-{eta}.csv"));
        let (_, history) = fit(&config.check()?, &training, &validation, Some(&csv), None)?;
        let costs: Vec<String> = history
            .epochs
            .iter()
            .filter_map(|e| e.training_cost)
            .map(|c| format!("{c:.3}"))
            .collect();
        say(&format!(
            "  η = {eta}: training cost by epoch {}",
            costs.join(" ")
        ));
        runs.push(read_run(&csv, &format!("η = {eta}"), "validation")?);
        paths.push(csv);
    }
    say(
        "  the book: with η = 0.025 the cost falls smoothly to the last epoch; with η = 0.25 it \
         falls, then levels off after about 20 epochs with small oscillations; with η = 2.5 it \
         oscillates widely from the start",
    );
    let png = make.path("multiple_eta.png");
    plot::draw_figure(
        &per_epoch(&runs, |r| r.training_cost),
        Panel {
            caption: "Cost on the training data",
            x_desc: "epoch",
            y_desc: "training cost (cross-entropy + L2 term)",
            scale: Scale::Linear,
        },
        "Multiple learning rates: [784, 30, 10], λ = 5.0",
        &png,
    )?;
    paths.push(png);
    wrote(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    Ok(())
}

/// One point of `more_data`'s figure.
#[derive(Serialize)]
struct MoreData {
    training_images: usize,
    epochs: usize,
    lambda: f64,
    validation_correct: usize,
    validation_total: usize,
    validation_accuracy: f64,
    seconds: f64,
}

/// `fig/more_data.py`: `[784, 30, 10]` (cross-entropy, N(0, 1) weights) trained afresh on the
/// first `size` images for 1,500,000 / size epochs with η = 0.5, λ = size / 10,000 (so that
/// λ/n, the weight decay per example, is the same for every size), then scored on the
/// validation data.
fn more_data(make: &Make) -> Result<(), RunError> {
    const SIZES: [usize; 9] = [100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
    const EXAMPLES: usize = 1_500_000;
    let sizes: &[usize] = match make.quick {
        true => &SIZES[..2],
        false => &SIZES,
    };
    let validation = make.validation();
    let csv = make.path("more_data.csv");
    check_output(&csv)?;
    let mut points = Vec::new();
    for &size in sizes {
        let epochs = match make.quick {
            true => 2,
            false => EXAMPLES / size,
        };
        let lambda = size as f64 * 0.0001;
        let config = network2(&[784, 30, 10], Init::StandardNormal, 0.5, lambda, epochs).check()?;
        let training = make.mnist.training.head(size);
        let start = Instant::now();
        // The script scores the network as its last epoch leaves it, on the validation data;
        // the loop's scoring after every epoch (which does not change the training) is done on
        // the training images, which costs a fraction of training on them.
        let (net, _) = fit(&config, &training, &training, None, None)?;
        let correct = net.evaluate(&validation);
        let point = MoreData {
            training_images: size,
            epochs,
            lambda,
            validation_correct: correct,
            validation_total: validation.len(),
            validation_accuracy: 100.0 * correct as f64 / validation.len() as f64,
            seconds: start.elapsed().as_secs_f64(),
        };
        say(&format!(
            "  {size} images, {epochs} epochs, λ = {lambda}: {:.2}%",
            point.validation_accuracy
        ));
        points.push(point);
    }
    crate::output::write_atomically(&csv, |out| {
        let mut w = csv::Writer::from_writer(out);
        for p in &points {
            w.serialize(p).map_err(std::io::Error::other)?;
        }
        w.flush()
    })
    .map_err(|source| RunError::Write {
        path: csv.clone(),
        source,
    })?;
    let png = make.path("more_data.png");
    plot::draw_figure(
        &[Series {
            label: "[784, 30, 10], η = 0.5, λ = size / 10,000".into(),
            points: points
                .iter()
                .map(|p| (p.training_images as f64, p.validation_accuracy))
                .collect(),
        }],
        Panel {
            caption: "Accuracy against training data",
            x_desc: "training images (log scale)",
            y_desc: "accuracy on the validation data (%)",
            scale: Scale::LogX,
        },
        "More training data: [784, 30, 10], 1,500,000 examples' training per size",
        &png,
    )?;
    wrote(&[&csv, &png]);
    Ok(())
}

/// The book's speeds of learning before training (chapter 5's text), for 2, 3 and 4 hidden
/// layers.
const BOOK_SPEEDS: [&[f64]; 3] = [
    &[0.07, 0.31],
    &[0.012, 0.060, 0.283],
    &[0.003, 0.017, 0.070, 0.285],
];

/// `fig/generate_gradient.py`: for 2, 3 and 4 hidden layers of 30 neurons, each hidden layer's
/// speed of learning over the first 1,000 training images, before training and after each of
/// 500 epochs of full-batch training on those images (mini-batch 1,000, η = 0.1, λ = 5.0).
fn generate_gradient(make: &Make) -> Result<(), RunError> {
    let images = match make.quick {
        true => 200,
        false => 1000,
    };
    let training = make.mnist.training.head(images);
    for (k, book) in BOOK_SPEEDS.iter().enumerate() {
        let hidden = k + 2;
        let mut sizes = vec![784];
        sizes.extend(std::iter::repeat_n(30, hidden));
        sizes.push(10);
        let mut config = network2(&sizes, Init::ScaledNormal, 0.1, 5.0, make.epochs(500));
        config.sgd.mini_batch_size = images;
        let csv = make.path(&format!("generate_gradient-{hidden}-hidden.csv"));
        // Scored on the same images: the figure is about the gradients, not the accuracy.
        fit(
            &config.check()?,
            &training,
            &training,
            Some(&csv),
            Some(images),
        )?;
        let run = read_run(&csv, &format!("{hidden} hidden layers"), "training")?;
        let series = plot::speed_series(&run, false);
        let start: Vec<String> = series
            .iter()
            .filter_map(|s| s.points.first().map(|p| format!("{:.3}", p.1)))
            .collect();
        let book: Vec<String> = book.iter().map(|v| format!("{v:.3}")).collect();
        say(&format!(
            "  {sizes:?}: before training {} (the book: {})",
            start.join(", "),
            book.join(", ")
        ));
        let png = make.path(&format!("generate_gradient-{hidden}-hidden.png"));
        plot::draw_figure(
            &series,
            SPEED_PANEL,
            &format!("Speed of learning: {sizes:?}, {images} images, η = 0.1, λ = 5.0"),
            &png,
        )?;
        wrote(&[&csv, &png]);
    }
    Ok(())
}
