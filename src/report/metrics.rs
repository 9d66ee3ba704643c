//! The per-epoch metrics file: one row per epoch of a run's [`History`](crate::train::History)
//! — time, η, evaluation accuracy and, where monitored, the costs and training accuracy the
//! book's `network2.py` collects — as CSV (`.csv`) or JSON Lines (`.jsonl`), chosen by the
//! file's extension. Each row is flushed as its epoch ends, so a run that stops (or diverges)
//! keeps every epoch it finished. Plotting reads these files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::train::EpochRecord;

/// Why the metrics file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{0}: the metrics file must end in .csv or .jsonl")]
    Format(PathBuf),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Csv { path: PathBuf, source: csv::Error },
}

/// One epoch, as a row of the metrics file (empty where not monitored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub epoch: usize,
    /// Seconds since training started.
    pub elapsed: f64,
    pub eta: f64,
    pub evaluation_correct: usize,
    pub evaluation_total: usize,
    /// Percent.
    pub evaluation_accuracy: f64,
    pub evaluation_cost: Option<f64>,
    pub training_cost: Option<f64>,
    pub training_correct: Option<usize>,
    pub training_total: usize,
    /// Percent.
    pub training_accuracy: Option<f64>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// Chapter 5's speed of learning of each hidden layer before any training, if monitored
    /// (in the first row only).
    #[serde(default)]
    pub learning_speed_start: Option<Speeds>,
    /// Chapter 5's speed of learning of each hidden layer after this epoch, if monitored.
    #[serde(default)]
    pub learning_speed: Option<Speeds>,
}

/// The speed of learning of each hidden layer, first to last
/// ([`crate::train::speed`]): in a metrics file, the numbers separated by spaces in one
/// field (`"0.0123 0.0601"`), the same in CSV and JSON Lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Speeds(pub Vec<f64>);

impl Serialize for Speeds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = self.0.iter().map(|v| format!("{v:e}")).collect();
        s.serialize_str(&text.join(" "))
    }
}

impl<'de> Deserialize<'de> for Speeds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.split_whitespace()
            .map(|v| match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(serde::de::Error::custom(format!(
                    "a speed of learning must be a number ≥ 0, not `{v}`"
                ))),
            })
            .collect::<Result<Vec<f64>, _>>()
            .map(Speeds)
    }
}

impl From<&EpochRecord> for Row {
    fn from(e: &EpochRecord) -> Self {
        Row {
            epoch: e.epoch,
            elapsed: e.elapsed,
            eta: e.eta,
            evaluation_correct: e.correct,
            evaluation_total: e.total,
            evaluation_accuracy: e.accuracy(),
            evaluation_cost: e.evaluation_cost,
            training_cost: e.training_cost,
            training_correct: e.training_correct,
            training_total: e.training_total,
            training_accuracy: e.training_accuracy(),
            train_seconds: e.train_seconds,
            eval_seconds: e.eval_seconds,
            learning_speed_start: None,
            learning_speed: None,
        }
    }
}

enum Sink {
    Csv(Box<csv::Writer<File>>),
    JsonLines(BufWriter<File>),
}

/// Writes a metrics file row by row.
pub struct MetricsWriter {
    path: PathBuf,
    sink: Sink,
}

/// A metrics file's name ends in `.csv` or `.jsonl`.
pub fn check_format(path: &Path) -> Result<(), MetricsError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv" | "jsonl") => Ok(()),
        _ => Err(MetricsError::Format(path.to_path_buf())),
    }
}

impl MetricsWriter {
    /// Creates (or truncates) `path`, a `.csv` or `.jsonl` file.
    pub fn create(path: &Path) -> Result<Self, MetricsError> {
        check_format(path)?;
        let kind = path.extension().and_then(|e| e.to_str());
        let file = File::create(path).map_err(|source| MetricsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sink = if kind == Some("csv") {
            Sink::Csv(Box::new(csv::Writer::from_writer(file)))
        } else {
            Sink::JsonLines(BufWriter::new(file))
        };
        Ok(MetricsWriter {
            path: path.to_path_buf(),
            sink,
        })
    }

    /// Appends one epoch and flushes it to the file.
    pub fn write(&mut self, epoch: &EpochRecord) -> Result<(), MetricsError> {
        self.write_row(&Row::from(epoch))
    }

    /// Appends one row (an epoch with more than its record: the speeds of learning) and
    /// flushes it to the file.
    pub fn write_row(&mut self, row: &Row) -> Result<(), MetricsError> {
        let io = |source| MetricsError::Io {
            path: self.path.clone(),
            source,
        };
        match &mut self.sink {
            Sink::Csv(w) => {
                w.serialize(row).map_err(|source| MetricsError::Csv {
                    path: self.path.clone(),
                    source,
                })?;
                w.flush().map_err(io)
            }
            Sink::JsonLines(w) => {
                serde_json::to_writer(&mut *w, row).map_err(|e| io(e.into()))?;
                w.write_all(b"\n").map_err(io)?;
                w.flush().map_err(io)
            }
        }
    }
}
