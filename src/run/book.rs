//! `nndl book`: the book's runs as presets, each printed beside the book's figure with a
//! verdict. Every preset is the book's exact setup — network, initialiser, η, λ, epochs,
//! mini-batch size, data — and is scored by the protocol the book used for that figure:
//! `network.py` and `network2.py` score the test set after every epoch and the book quotes the
//! best epoch (chapters 1 and 3; one chapter-3 figure is on the validation set), while
//! `network3.py` reports the test accuracy of the epoch with the best validation accuracy
//! (chapter 6). A figure within 0.3 points of the book's, or better, counts as reproduced.
//!
//! Several rows one after another, recorded and resumable, and the table of them:
//! [`super::book_record`].
//!
//! What it leaves out: the book's figures come from single runs of unrecorded seeds, so a
//! verdict compares one seed's run with one of the book's.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{Architecture, CheckedConfig, ConfigError, Precision, TrainConfig, Variant};
use crate::data::{Dataset, Mnist, CLASSES};
use crate::model::activation::Activation;
use crate::model::darkness::AverageDarkness;
use crate::model::init::Init;
use crate::model::layers::spec;
use crate::model::network::count_correct;
use crate::real::Real;
use crate::report::console::{say, Console};
use crate::rng::SeededRng;
use crate::train::{Both, Stop, Training};

use super::eval::majority;
use super::{in_precision, load_data, with_model, InPrecision, RunError, RunModel, WithModel};

/// Which figure of a run the book quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The best epoch's test accuracy (chapters 1 and 3: the test set is scored every epoch).
    BestTest,
    /// The best epoch's validation accuracy.
    BestValidation,
    /// The test accuracy of the epoch with the best validation accuracy (`network3.py`).
    TestAtBestValidation,
}

/// The network of a row.
#[derive(Clone, Copy, Debug)]
pub enum Net {
    /// A fully-connected network of chapters 1–3.
    FullyConnected {
        variant: Variant,
        sizes: &'static [usize],
        init: Init,
    },
    /// Chapter 6's layers, with the activation of those that do not set theirs.
    Layers(&'static str, Activation),
    /// No network: chapter 1's average-darkness baseline
    /// ([`crate::model::darkness`]), fitted on the training images, scored on the test images.
    AverageDarkness,
}

/// One of the book's figures and the run that gives it.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub id: &'static str,
    pub chapter: u8,
    pub what: &'static str,
    /// The book's accuracy, in %.
    pub book: f64,
    pub protocol: Protocol,
    pub net: Net,
    pub eta: f64,
    pub lambda: f64,
    pub epochs: usize,
    /// Train on the first N training images only.
    pub train_size: Option<usize>,
    /// Train on `nndl expand`'s 250,000 images.
    pub expanded: bool,
    /// Networks voting (chapter 6's ensemble); 1 for a single network.
    pub ensemble: usize,
    /// The row whose network is this vote's first, bit for bit (same network, data, seed and
    /// settings): run in one record before the vote, it is trained once and kept for both.
    pub first_network_of: Option<&'static str>,
}

const FC30: &[usize] = &[784, 30, 10];
const FC100: &[usize] = &[784, 100, 10];
const DEEP2: &[usize] = &[784, 30, 30, 10];
const DEEP3: &[usize] = &[784, 30, 30, 30, 10];
const DEEP4: &[usize] = &[784, 30, 30, 30, 30, 10];
const TWO_CONV: &str = "conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax";

/// network2.py with its `large_weight_initializer`, as chapter 3 ran it before the section
/// "Weight initialization".
const fn large(sizes: &'static [usize]) -> Net {
    Net::FullyConnected {
        variant: Variant::Network3,
        sizes,
        init: Init::StandardNormal,
    }
}

/// network2.py with its `default_weight_initializer`, N(0, 1/n_in), as chapters 3 (from
/// "Weight initialization" on) and 5 ran it.
const fn scaled(sizes: &'static [usize]) -> Net {
    Net::FullyConnected {
        variant: Variant::Network3,
        sizes,
        init: Init::ScaledNormal,
    }
}

/// The rows, in the book's order.
pub const ROWS: [Row; 19] = {
    let base = Row {
        id: "",
        chapter: 3,
        what: "",
        book: 0.0,
        protocol: Protocol::BestTest,
        net: Net::FullyConnected {
            variant: Variant::Network1,
            sizes: FC30,
            init: Init::StandardNormal,
        },
        eta: 0.5,
        lambda: 0.0,
        epochs: 30,
        train_size: None,
        expanded: false,
        ensemble: 1,
        first_network_of: None,
    };
    // Chapter 5, "The vanishing gradient problem": network2.SGD(training_data, 30, 10, 0.1,
    // lmbda=5.0, evaluation_data=validation_data, monitor_evaluation_accuracy=True).
    let ch5 = Row {
        chapter: 5,
        protocol: Protocol::BestValidation,
        net: scaled(FC30),
        eta: 0.1,
        lambda: 5.0,
        ..base
    };
    let ch6 = Row {
        chapter: 6,
        protocol: Protocol::TestAtBestValidation,
        eta: crate::config::CH6_SIGMOID_ETA,
        epochs: 60,
        ..base
    };
    let relu = Row {
        eta: 0.03,
        lambda: 0.1,
        ..ch6
    };
    [
        Row {
            id: "ch1",
            chapter: 1,
            what: "network.py, [784, 30, 10], quadratic cost, eta 3",
            book: 95.42,
            eta: 3.0,
            ..base
        },
        Row {
            id: "ch1-darkness",
            chapter: 1,
            what: "the baseline: each digit's average darkness, the nearest one guessed",
            book: 22.25,
            net: Net::AverageDarkness,
            epochs: 0,
            ..base
        },
        Row {
            id: "ch3-cross-entropy",
            what: "cross-entropy cost, [784, 30, 10], eta 0.5, N(0, 1) weights",
            book: 95.49,
            net: large(FC30),
            ..base
        },
        Row {
            id: "ch3-100-hidden",
            what: "cross-entropy cost, [784, 100, 10], eta 0.5, N(0, 1) weights",
            book: 96.82,
            net: large(FC100),
            ..base
        },
        Row {
            id: "ch3-overfitting",
            what: "[784, 30, 10] on 1,000 images, 400 epochs, eta 0.5 (peak accuracy)",
            book: 82.27,
            net: large(FC30),
            epochs: 400,
            train_size: Some(1000),
            ..base
        },
        Row {
            id: "ch3-lambda-5",
            what: "[784, 30, 10], lambda 5, eta 0.5, N(0, 1) weights",
            book: 96.49,
            net: large(FC30),
            lambda: 5.0,
            ..base
        },
        Row {
            id: "ch3-100-hidden-lambda-5",
            what: "[784, 100, 10], lambda 5, eta 0.1, 60 epochs (validation accuracy)",
            book: 98.04,
            protocol: Protocol::BestValidation,
            net: large(FC100),
            eta: 0.1,
            lambda: 5.0,
            epochs: 60,
            ..base
        },
        Row {
            id: "ch5-1-hidden",
            what: "[784, 30, 10], eta 0.1, lambda 5 (validation accuracy)",
            book: 96.48,
            ..ch5
        },
        Row {
            id: "ch5-2-hidden",
            what: "[784, 30, 30, 10], eta 0.1, lambda 5 (validation accuracy)",
            book: 96.90,
            net: scaled(DEEP2),
            ..ch5
        },
        Row {
            id: "ch5-3-hidden",
            what: "[784, 30, 30, 30, 10], eta 0.1, lambda 5 (validation accuracy)",
            book: 96.57,
            net: scaled(DEEP3),
            ..ch5
        },
        Row {
            id: "ch5-4-hidden",
            what: "[784, 30, 30, 30, 30, 10], eta 0.1, lambda 5 (validation accuracy)",
            book: 96.53,
            net: scaled(DEEP4),
            ..ch5
        },
        Row {
            id: "ch6-fc",
            what: "fully connected: 100 sigmoid neurons, softmax",
            book: 97.80,
            net: Net::Layers("fc:100,softmax", Activation::Sigmoid),
            ..ch6
        },
        Row {
            id: "ch6-conv",
            what: "a conv-pool layer 20×5×5 / 2×2, then FC-100 and softmax",
            book: 98.78,
            net: Net::Layers("conv:20:5,pool:2,fc:100,softmax", Activation::Sigmoid),
            ..ch6
        },
        Row {
            id: "ch6-two-conv",
            what: "two conv-pool layers (20 and 40 filters), FC-100, softmax",
            book: 99.06,
            net: Net::Layers(TWO_CONV, Activation::Sigmoid),
            ..ch6
        },
        Row {
            id: "ch6-relu",
            what: "the same with ReLU, eta 0.03, lambda 0.1",
            book: 99.23,
            net: Net::Layers(TWO_CONV, Activation::Relu),
            ..relu
        },
        Row {
            id: "ch6-expanded",
            what: "ReLU network on the expanded training data",
            book: 99.37,
            net: Net::Layers(TWO_CONV, Activation::Relu),
            expanded: true,
            ..relu
        },
        Row {
            id: "ch6-extra-fc",
            what: "an extra FC-100 layer, expanded data",
            book: 99.43,
            net: Net::Layers(
                "conv:20:5,pool:2,conv:40:5,pool:2,fc:100,fc:100,softmax",
                Activation::Relu,
            ),
            expanded: true,
            ..relu
        },
        Row {
            id: "ch6-dropout",
            what: "two FC-1000 layers with dropout 0.5, expanded data, 40 epochs",
            book: 99.60,
            net: Net::Layers(DROPOUT_NET, Activation::Relu),
            expanded: true,
            epochs: 40,
            lambda: 0.0,
            ..relu
        },
        Row {
            id: "ch6-vote",
            what: "majority vote of five ch6-dropout networks",
            book: 99.67,
            net: Net::Layers(DROPOUT_NET, Activation::Relu),
            expanded: true,
            epochs: 40,
            lambda: 0.0,
            ensemble: 5,
            first_network_of: Some("ch6-dropout"),
            ..relu
        },
    ]
};

const DROPOUT_NET: &str = "conv:20:5,pool:2,conv:40:5,pool:2,fc:1000:dropout=0.5,\
                           fc:1000:dropout=0.5,softmax:dropout=0.5";

/// The expanded training data `nndl expand` writes by default.
pub const EXPANDED_DATA: &str = super::expand::DEFAULT_OUTPUT;

/// A row by its id.
pub fn row(id: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.id == id)
}

/// Why `nndl book` cannot run what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("unknown row `{0}` (nndl book --list lists them)")]
    UnknownRow(String),
    #[error(
        "{row} trains on the expanded data, and {} does not exist: run `nndl expand` first \
         (or give --expanded FILE)", path.display()
    )]
    NoExpandedData { row: &'static str, path: PathBuf },
    #[error("{0} trains no network: there is nothing for --save to write")]
    NothingToSave(&'static str),
    /// A record file that is not one `nndl book` wrote, or is damaged.
    #[error("{}: not a record of `nndl book`'s rows: {reason}", path.display())]
    Record { path: PathBuf, reason: String },
    /// `--table` without rows to run, and no row recorded.
    #[error(
        "{} records no row: run some first (nndl book --rows ROW,ROW… or --all)",
        .0.display()
    )]
    NothingRecorded(PathBuf),
    /// `--table` naming the record itself.
    #[error("--table {} is the record: give the table another name", .0.display())]
    TableIsRecord(PathBuf),
}

/// `nndl book ROW`, `--rows ROW,ROW…` or `--all`: what to run, checked.
#[derive(Clone, Debug)]
pub struct BookRequest {
    /// The rows to run, one after another, by id; none with `table` alone writes the table
    /// from the record without training.
    pub rows: Vec<String>,
    /// The record of finished rows ([`super::book_record`]): rows already in it with the
    /// same settings are skipped, and each row that finishes is added at once.
    pub record: Option<PathBuf>,
    /// Where to write the record's rows as a markdown table (after every row run).
    pub table: Option<PathBuf>,
    /// Fewer epochs than the book's, for a quick look (the verdict then says so).
    pub epochs: Option<usize>,
    pub data: PathBuf,
    pub expanded: PathBuf,
    /// The precision [default: f64 for chapters 1–3, f32 for chapter 6, as `network3.py` ran
    /// in Theano's float32].
    pub precision: Option<Precision>,
    pub threads: usize,
    pub seed: u64,
    /// Where to write the network the figure comes from (see [`Row::save_paths`]).
    pub save: Option<PathBuf>,
    /// A directory for TensorBoard's event files (see [`Row::tensorboard_dirs`]).
    pub tensorboard: Option<PathBuf>,
}

/// The seed of a row's network `k` (from 0): the row's seed + `k`, wrapping past `u64::MAX`
/// so that every `--seed` names five networks.
pub fn network_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_add(k as u64)
}

impl Row {
    /// The training configuration of this row (with `epochs` in place of the book's).
    pub fn config(
        &self,
        epochs: usize,
        precision: Precision,
        seed: u64,
    ) -> Result<TrainConfig, ConfigError> {
        let mut config = match self.net {
            Net::FullyConnected {
                variant,
                sizes,
                init,
            } => {
                let mut c = TrainConfig::book_run(variant);
                if let Some(fc) = c.network.fully_connected_mut() {
                    fc.sizes = sizes.to_vec();
                    fc.init = init;
                }
                c
            }
            Net::Layers(text, activation) => {
                let mut c = TrainConfig::book_run(Variant::Network3);
                c.network.architecture = Architecture::Layers(spec::parse(text, activation, 0.0)?);
                c
            }
            Net::AverageDarkness => {
                return Err(ConfigError::NotFullyConnected(
                    "chapter 1's average-darkness baseline, which trains no network".into(),
                ))
            }
        };
        config.network.precision = precision;
        config.sgd.eta = self.eta;
        config.sgd.lambda = self.lambda;
        config.sgd.epochs = epochs;
        config.seed = seed;
        Ok(config)
    }

    /// The run directories of the row's networks under `dir` (`--tensorboard`): `dir/ROW`,
    /// or for a vote `dir/ROW/network-1`, `network-2`, …
    pub fn tensorboard_dirs(&self, dir: &Path) -> Vec<PathBuf> {
        let row = dir.join(self.id);
        match self.ensemble {
            1 => vec![row],
            n => (1..=n).map(|k| row.join(format!("network-{k}"))).collect(),
        }
    }

    /// The files `--save path` writes: `path` for a row of one network; for a vote, one per
    /// network with its number before the extension (`nets.json` → `nets-1.json`, …).
    pub fn save_paths(&self, path: &Path) -> Vec<PathBuf> {
        if self.ensemble == 1 {
            return vec![path.to_path_buf()];
        }
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        (1..=self.ensemble)
            .map(|k| {
                let mut name = format!("{stem}-{k}");
                if let Some(ext) = path.extension() {
                    name.push('.');
                    name.push_str(&ext.to_string_lossy());
                }
                path.with_file_name(name)
            })
            .collect()
    }

    /// The default precision of the row.
    pub fn precision(&self) -> Precision {
        match self.chapter {
            6 => Precision::F32,
            _ => Precision::F64,
        }
    }
}

/// `nndl book --list`.
pub fn list() {
    say(&format!("{:<24} {:>7}  what", "row", "book"));
    for r in &ROWS {
        say(&format!(
            "{:<24} {:>6.2}%  ch. {}: {}",
            r.id, r.book, r.chapter, r.what
        ));
    }
}

/// How nndl's figure compares with the book's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Within 0.3 points of the book's figure, or better.
    Reproduced,
    NotReproduced,
    /// Trained for fewer epochs than the book: no verdict.
    Shortened,
}

/// How far below the book's figure a run may be and still count as reproducing it, in points.
pub const TOLERANCE: f64 = 0.3;

impl Verdict {
    /// The verdict on `accuracy` after `epochs` of `row`.
    pub fn of(row: &Row, accuracy: f64, epochs: usize) -> Verdict {
        if epochs < row.epochs {
            Verdict::Shortened
        } else if accuracy >= row.book - TOLERANCE {
            Verdict::Reproduced
        } else {
            Verdict::NotReproduced
        }
    }

    /// The verdict in words, `difference` being nndl's figure less the book's.
    pub fn text(self, difference: f64) -> String {
        match self {
            Verdict::Reproduced => {
                format!("reproduced (within {TOLERANCE} points of the book, or better)")
            }
            Verdict::NotReproduced => format!("not reproduced ({difference:+.2} points)"),
            Verdict::Shortened => "shortened: no verdict".to_string(),
        }
    }

    /// The verdict as the table's column gives it.
    pub fn cell(self, difference: f64) -> String {
        match self {
            Verdict::Reproduced => "reproduced".to_string(),
            Verdict::NotReproduced => format!("not reproduced ({})", signed(difference)),
            Verdict::Shortened => "shortened: no verdict".to_string(),
        }
    }
}

/// `+0.12` or `−0.37` (with a minus sign, as the README writes it).
fn signed(x: f64) -> String {
    format!("{x:+.2}").replace('-', "−")
}

/// A network of a vote that finished: what the row keeps of it to vote with, so that a
/// vote stopped after some of its networks goes on from the next one.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Which of the row's networks, from 1 (it trained with [`network_seed`]`(seed, network − 1)`).
    pub network: usize,
    /// Its own figure, in %.
    pub accuracy: f64,
    /// Its training time in this row: 0 for a network of another row.
    pub seconds: f64,
    /// The digit it gives each test image.
    pub predictions: Vec<usize>,
    /// The row that trained it (and counts its time), if not this one: see
    /// [`Row::first_network_of`].
    pub from: Option<&'static str>,
}

/// The networks of a vote: those finished before (in order, from the first), and where each
/// network that finishes now is handed to be kept.
pub struct Members<'a> {
    pub done: Vec<Member>,
    pub keep: &'a mut dyn FnMut(&Member) -> Result<(), RunError>,
}

/// What a finished row measured.
pub struct Finished {
    /// The row's figure, in %.
    pub accuracy: f64,
    pub seconds: f64,
    /// A single network's digit for each test image (empty for a vote, and for a row that
    /// trains no network).
    pub predictions: Vec<usize>,
    /// The row that trained one of this vote's networks (and counts its time).
    pub shared: Option<&'static str>,
}

impl Row {
    /// Refuses, before anything is trained, a run of this row that cannot be done.
    pub fn check(&self, request: &BookRequest) -> Result<(), RunError> {
        if matches!(self.net, Net::AverageDarkness) {
            return match request.save {
                Some(_) => Err(BookError::NothingToSave(self.id).into()),
                None => Ok(()),
            };
        }
        let epochs = request.epochs.unwrap_or(self.epochs);
        let precision = request.precision.unwrap_or(self.precision());
        self.config(epochs, precision, request.seed)?.check()?;
        if let Some(path) = &request.save {
            for path in self.save_paths(path) {
                super::check_output(&path)?;
            }
        }
        if let Some(dir) = &request.tensorboard {
            for dir in self.tensorboard_dirs(dir) {
                super::check_output_dir(&dir)?;
            }
        }
        if self.expanded && !request.expanded.exists() {
            return Err(BookError::NoExpandedData {
                row: self.id,
                path: request.expanded.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// How the row's figure is scored, as the table says it.
    pub fn scored(&self) -> String {
        match (self.net, self.protocol, self.ensemble) {
            (Net::AverageDarkness, _, _) => "test accuracy of the average-darkness guess".into(),
            (_, _, n) if n > 1 => format!("majority vote of {n} networks on the test set"),
            (_, Protocol::BestTest, _) => "best test epoch".into(),
            (_, Protocol::BestValidation, _) => "best validation epoch".into(),
            (_, Protocol::TestAtBestValidation, _) => "test at best validation epoch".into(),
        }
    }

    /// The set each epoch's line scores.
    fn epoch_set(&self) -> &'static str {
        match self.protocol {
            Protocol::BestTest => "test",
            _ => "validation",
        }
    }
}

/// Runs one row and prints its line with the verdict; `None` if Ctrl-C ended it (it then
/// has no figure to record). A vote goes on from the networks in `members.done` and hands
/// each network that finishes to `members.keep`.
pub fn run_row(
    row: &'static Row,
    request: &BookRequest,
    stop: Option<Arc<AtomicBool>>,
    members: Members<'_>,
) -> Result<Option<Finished>, RunError> {
    row.check(request)?;
    if matches!(row.net, Net::AverageDarkness) {
        return average_darkness(row, request).map(Some);
    }
    let epochs = request.epochs.unwrap_or(row.epochs);
    let precision = request.precision.unwrap_or(row.precision());
    let config = row
        .config(epochs, precision, request.seed)?
        .check()?
        .with_threads(request.threads);
    let save = match &request.save {
        Some(path) => row.save_paths(path),
        None => Vec::new(),
    };
    let tensorboard = match &request.tensorboard {
        Some(dir) => row.tensorboard_dirs(dir),
        None => Vec::new(),
    };
    let data = match row.expanded {
        true => &request.expanded,
        false => &request.data,
    };
    crate::backend::start_threads(request.threads)?;
    say(&format!(
        "{} (chapter {}): {}",
        row.id, row.chapter, row.what
    ));
    say(&format!(
        "Backend: {}, {}",
        crate::backend::describe(),
        precision.name()
    ));
    let outcome = in_precision(
        precision,
        data,
        None,
        Job {
            row,
            members,
            config: &config,
            save: &save,
            tensorboard: &tensorboard,
            tensorboard_root: request.tensorboard.as_deref(),
            stop,
        },
    )??;
    let verdict = if outcome.interrupted {
        "interrupted: no verdict".to_string()
    } else if epochs < row.epochs {
        format!(
            "shortened to {epochs} of the book's {} epochs: no verdict",
            row.epochs
        )
    } else {
        graded(row, outcome.accuracy)
    };
    let protocol = match (row.protocol, row.ensemble) {
        (_, n) if n > 1 => format!("majority vote of {n} networks on the test set"),
        (Protocol::BestTest, _) => "best epoch's test accuracy".to_string(),
        (Protocol::BestValidation, _) => "best epoch's validation accuracy".to_string(),
        (Protocol::TestAtBestValidation, _) => {
            "test accuracy at the best validation epoch".to_string()
        }
    };
    let epochs = match epochs {
        1 => "1 epoch".to_string(),
        n => format!("{n} epochs"),
    };
    // An interrupted run has no figure of nndl's to give.
    let figure = match outcome.interrupted {
        true => "—".to_string(),
        false => format!("{:.2}%", outcome.accuracy),
    };
    say(&format!(
        "{}: book {:.2}%, nndl {figure} ({protocol}, {epochs}, {:.0} s) — {verdict}",
        row.id, row.book, outcome.seconds
    ));
    Ok((!outcome.interrupted).then_some(Finished {
        accuracy: outcome.accuracy,
        seconds: outcome.seconds,
        predictions: outcome.predictions,
        shared: outcome.shared,
    }))
}

/// The verdict on a full run's `accuracy`.
fn graded(row: &Row, accuracy: f64) -> String {
    Verdict::of(row, accuracy, row.epochs).text(accuracy - row.book)
}

/// `nndl book ch1-darkness`: `mnist_average_darkness.py`, fitted on the training images and
/// scored on the test images.
fn average_darkness(row: &'static Row, request: &BookRequest) -> Result<Finished, RunError> {
    say(&format!(
        "{} (chapter {}): {}",
        row.id, row.chapter, row.what
    ));
    let start = Instant::now();
    let mnist = load_data(&request.data, None)?;
    let model = AverageDarkness::fit(&mnist.training);
    let correct = model.evaluate(&mnist.test);
    let accuracy = 100.0 * correct as f64 / mnist.test.len() as f64;
    say(&format!(
        "{} of {} test images guessed right",
        correct,
        mnist.test.len()
    ));
    let seconds = start.elapsed().as_secs_f64();
    say(&format!(
        "{}: book {:.2}%, nndl {accuracy:.2}% (test accuracy, {seconds:.0} s) — {}",
        row.id,
        row.book,
        graded(row, accuracy)
    ));
    Ok(Finished {
        accuracy,
        seconds,
        predictions: Vec::new(),
        shared: None,
    })
}

/// What a row's run measured.
struct Outcome {
    accuracy: f64,
    /// Ctrl-C ended a run before its last epoch.
    interrupted: bool,
    seconds: f64,
    /// As in [`Finished`].
    predictions: Vec<usize>,
    shared: Option<&'static str>,
}

struct Job<'a, 'm> {
    row: &'static Row,
    members: Members<'m>,
    config: &'a CheckedConfig,
    /// One file per network, or none.
    save: &'a [PathBuf],
    /// One TensorBoard run directory per network, or none.
    tensorboard: &'a [PathBuf],
    /// The directory they are in (`--tensorboard`).
    tensorboard_root: Option<&'a Path>,
    stop: Option<Arc<AtomicBool>>,
}

impl InPrecision for Job<'_, '_> {
    type Output = Result<Outcome, RunError>;

    fn run<F: Real>(mut self, mnist: Mnist<F>) -> Result<Outcome, RunError> {
        let Mnist {
            training,
            validation,
            test,
        } = mnist;
        let training = match self.row.train_size {
            Some(n) => training.head(n),
            None => training,
        };
        let start = Instant::now();
        let mut votes = Vec::new();
        let mut accuracy = 0.0;
        let mut interrupted = false;
        // The networks a stopped vote finished, on these very test images.
        let mut earlier = 0.0;
        let mut shared = None;
        let done = std::mem::take(&mut self.members.done);
        for member in done {
            if member.network != votes.len() + 1 {
                break;
            }
            if member.predictions.len() != test.len() {
                say(&format!(
                    "Network {}: kept with predictions for {} test images, not {}: trained again",
                    member.network,
                    member.predictions.len(),
                    test.len()
                ));
                break;
            }
            let seed = network_seed(self.config.seed, votes.len());
            let (k, n) = (member.network, self.row.ensemble);
            say(&match member.from {
                Some(other) => format!(
                    "Network {k} of {n} (seed {seed}): {other}'s network, {:.2}%, trained in that row",
                    member.accuracy
                ),
                None => format!(
                    "Network {k} of {n} (seed {seed}): recorded, {:.2}% in {:.0} s",
                    member.accuracy, member.seconds
                ),
            });
            shared = shared.or(member.from);
            earlier += member.seconds;
            votes.push(member.predictions);
        }
        let mut predictions = Vec::new();
        for k in votes.len()..self.row.ensemble {
            let mut config = (*self.config).clone().into_inner();
            config.seed = network_seed(config.seed, k);
            let config = config.check()?.with_threads(self.config.threads());
            if self.row.ensemble > 1 {
                say(&format!(
                    "Network {} of {} (seed {})",
                    k + 1,
                    self.row.ensemble,
                    config.seed
                ));
            }
            let fit_start = Instant::now();
            let fit = Fit {
                job: &self,
                config: &config,
                save: self.save.get(k).map(PathBuf::as_path),
                tensorboard: self.tensorboard.get(k).map(PathBuf::as_path),
                training: &training,
                validation: &validation,
                test: &test,
            };
            let (figure, network_predictions, stopped) = with_model(&config, None, fit)?;
            accuracy = figure;
            if stopped {
                interrupted = true;
                break;
            }
            if self.row.ensemble == 1 {
                predictions = network_predictions;
            } else {
                let member = Member {
                    network: k + 1,
                    accuracy: figure,
                    seconds: fit_start.elapsed().as_secs_f64(),
                    predictions: network_predictions,
                    from: None,
                };
                say(&format!(
                    "Network {} of {} (seed {}): {figure:.2}% in {:.0} s",
                    member.network, self.row.ensemble, config.seed, member.seconds
                ));
                (self.members.keep)(&member)?;
                votes.push(member.predictions);
            }
        }
        if self.row.ensemble > 1 && !interrupted {
            let correct = count_correct(&majority(&votes), test.labels());
            accuracy = 100.0 * correct as f64 / test.len() as f64;
        }
        Ok(Outcome {
            accuracy,
            interrupted,
            seconds: earlier + start.elapsed().as_secs_f64(),
            predictions,
            shared,
        })
    }
}

/// One network of a row, trained under the row's protocol.
struct Fit<'a, 'm, F: Real> {
    job: &'a Job<'a, 'm>,
    config: &'a CheckedConfig,
    save: Option<&'a Path>,
    tensorboard: Option<&'a Path>,
    training: &'a Dataset<F>,
    validation: &'a Dataset<F>,
    test: &'a Dataset<F>,
}

impl<F: Real> WithModel<F> for Fit<'_, '_, F> {
    /// The figure the book quotes, the chosen network's test-set predictions (for a vote),
    /// and whether Ctrl-C ended the run.
    type Value = (f64, Vec<usize>, bool);

    fn run<M: RunModel<F>>(self, net: M, rng: SeededRng) -> Result<Self::Value, RunError> {
        let Fit {
            job,
            config,
            save,
            tensorboard,
            training,
            validation,
            test,
        } = self;
        let protocol = job.row.protocol;
        let evaluation = match protocol {
            Protocol::BestTest => test,
            _ => validation,
        };
        config.check_data(net.shape(), training.inputs(), CLASSES, training.len())?;
        let mut console = Console::new(false, None, false).scoring(job.row.epoch_set());
        if let Some(flag) = &job.stop {
            console = console.stop_on(Arc::clone(flag));
        }
        let mut run = Training::new(net, config, training.len(), rng);
        run.keep_best();
        let set = job.row.epoch_set();
        let mut events = match tensorboard {
            Some(dir) => Some(super::train::open_tensorboard(
                dir,
                set,
                job.tensorboard_root.unwrap_or(dir),
            )?),
            None => None,
        };
        let result = match &mut events {
            Some(events) => run.run(
                config,
                training,
                evaluation,
                &mut Both(&mut console, events),
            ),
            None => run.run(config, training, evaluation, &mut console),
        };
        console.finish()?;
        if let Some(events) = events {
            super::train::finish_tensorboard(events);
        }
        result?;
        let stopped = matches!(run.history.stop, Stop::Interrupted { .. });
        let Some(best) = run.history.best().cloned() else {
            return Ok((0.0, Vec::new(), stopped));
        };
        let best_model = run.best_model();
        if let Some(path) = save {
            best_model.save(Some(config), path)?;
            say(&format!(
                "Wrote the network of epoch {} to {}",
                best.epoch,
                path.display()
            ));
        }
        let figure = match protocol {
            Protocol::BestTest | Protocol::BestValidation => best.accuracy(),
            Protocol::TestAtBestValidation => {
                let correct = best_model.evaluate(test);
                let percent = 100.0 * correct as f64 / test.len() as f64;
                say(&format!(
                    "Best validation accuracy {:.2}% at epoch {}; test accuracy there {percent:.2}%",
                    best.accuracy(),
                    best.epoch
                ));
                percent
            }
        };
        Ok((figure, best_model.predictions(test), stopped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vote_saves_one_numbered_file_per_network() {
        let one = row("ch6-dropout").unwrap();
        assert_eq!(
            one.save_paths(Path::new("out/net.json")),
            [PathBuf::from("out/net.json")]
        );
        let vote = row("ch6-vote").unwrap();
        let paths = vote.save_paths(Path::new("out/net.json"));
        assert_eq!(paths.len(), 5);
        assert_eq!(paths[0], PathBuf::from("out/net-1.json"));
        assert_eq!(paths[4], PathBuf::from("out/net-5.json"));
        assert_eq!(
            vote.save_paths(Path::new("nets"))[1],
            PathBuf::from("nets-2")
        );
    }

    /// What the README promises: `ch6-vote`'s k-th network is `ch6-dropout` with seed k, so
    /// the five can be trained one run at a time and voted with `nndl vote` — and the first
    /// is the dropout row's own network, which `nndl book` trains once for both.
    #[test]
    fn the_votes_networks_are_the_dropout_row_with_the_next_seeds() {
        let (dropout, vote) = (row("ch6-dropout").unwrap(), row("ch6-vote").unwrap());
        assert_eq!(vote.first_network_of, Some(dropout.id));
        assert!(ROWS
            .iter()
            .all(|r| r.first_network_of.is_none() || r.ensemble > 1));
        assert_eq!(
            (dropout.expanded, dropout.train_size, dropout.protocol),
            (vote.expanded, vote.train_size, vote.protocol)
        );
        for k in 0..vote.ensemble {
            let mut member = vote.config(vote.epochs, Precision::F32, 0).unwrap();
            member.seed = network_seed(member.seed, k);
            let alone = dropout
                .config(dropout.epochs, Precision::F32, k as u64)
                .unwrap();
            assert_eq!(format!("{member:?}"), format!("{alone:?}"));
        }
    }

    /// Every `--seed` names a vote's networks, the largest too.
    #[test]
    fn the_networks_seeds_wrap_past_the_largest() {
        assert_eq!(network_seed(7, 4), 11);
        assert_eq!(
            (0..3)
                .map(|k| network_seed(u64::MAX - 1, k))
                .collect::<Vec<_>>(),
            [u64::MAX - 1, u64::MAX, 0]
        );
    }
}
