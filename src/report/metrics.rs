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
    /// The file, opened but left as it was until the first epoch is written.
    pending: Option<File>,
    /// The writer, from the first epoch on.
    sink: Option<Sink>,
    /// The file did not exist before [`MetricsWriter::create`]: removed again if no epoch is
    /// ever written (Ctrl-C before the first one left a 0-byte file).
    created_here: bool,
}

/// A metrics file's name ends in `.csv` or `.jsonl`.
pub fn check_format(path: &Path) -> Result<(), MetricsError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv" | "jsonl") => Ok(()),
        _ => Err(MetricsError::Format(path.to_path_buf())),
    }
}

impl MetricsWriter {
    /// Opens `path`, a `.csv` or `.jsonl` file, for writing (so an unwritable path fails
    /// here, before training); its old content stays until the first epoch replaces it.
    pub fn create(path: &Path) -> Result<Self, MetricsError> {
        check_format(path)?;
        let created_here = std::fs::symlink_metadata(path).is_err();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| MetricsError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(MetricsWriter {
            path: path.to_path_buf(),
            pending: Some(file),
            sink: None,
            created_here,
        })
    }

    /// The writer, made (and the file emptied) at the first epoch.
    fn sink(&mut self) -> Result<&mut Sink, MetricsError> {
        if let Some(file) = self.pending.take() {
            file.set_len(0).map_err(|source| MetricsError::Io {
                path: self.path.clone(),
                source,
            })?;
            let csv = self.path.extension().and_then(|e| e.to_str()) == Some("csv");
            self.sink = Some(match csv {
                true => Sink::Csv(Box::new(csv::Writer::from_writer(file))),
                false => Sink::JsonLines(BufWriter::new(file)),
            });
        }
        self.sink.as_mut().ok_or_else(|| MetricsError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("an earlier write failed"),
        })
    }

    /// Appends one epoch and flushes it to the file.
    pub fn write(&mut self, epoch: &EpochRecord) -> Result<(), MetricsError> {
        self.write_row(&Row::from(epoch))
    }

    /// Appends one row (an epoch with more than its record: the speeds of learning) and
    /// flushes it to the file.
    pub fn write_row(&mut self, row: &Row) -> Result<(), MetricsError> {
        let path = self.path.clone();
        let io = |source| MetricsError::Io {
            path: path.clone(),
            source,
        };
        match self.sink()? {
            Sink::Csv(w) => {
                w.serialize(row).map_err(|source| MetricsError::Csv {
                    path: path.clone(),
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

impl Drop for MetricsWriter {
    /// A file this writer created and never wrote an epoch to is removed.
    fn drop(&mut self) {
        if self.sink.is_none() && self.created_here {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No epoch written: a file created for the run is removed, an earlier one kept as it was.
    #[test]
    fn a_run_without_an_epoch_leaves_the_file_as_it_found_it() {
        let dir = std::env::temp_dir().join(format!("nndl-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new.csv");
        drop(MetricsWriter::create(&new).unwrap());
        assert!(!new.exists());
        let old = dir.join("old.jsonl");
        std::fs::write(&old, "{\"epoch\":0}\n").unwrap();
        drop(MetricsWriter::create(&old).unwrap());
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "{\"epoch\":0}\n");
        assert!(MetricsWriter::create(&dir.join("missing/m.csv")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
