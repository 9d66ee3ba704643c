//! What a training run shows while it trains: the book's `Epoch k: c / n (p%)` line after every
//! epoch (as `network.py` prints it) with the monitored costs and accuracies on a line under
//! it, a progress bar over the mini-batches on an interactive terminal, and — kept alongside —
//! the metrics file and each epoch's shuffled order. It is the command line's
//! [`Observer`] of [`crate::train::sgd`], and where Ctrl-C reaches the loop: once the flag
//! given to [`Console::stop_on`] is set, the run ends after the current mini-batch.
//!
//! A closed standard output (the output piped into `head`, say) is ignored: it must neither
//! panic nor stop a run before its files are written.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::metrics::{MetricsError, MetricsWriter, Row, Speeds};
use crate::train::{EpochRecord, Observer};

/// Mini-batches between updates of the progress bar.
const BAR_EVERY: usize = 64;

/// Prints one line to standard output, ignoring a closed stream.
/// `n` and the noun, singular for one: "1 epoch", "30 epochs".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

pub fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The terminal's view of a run.
pub struct Console {
    quiet: bool,
    bar: Option<ProgressBar>,
    metrics: Option<MetricsWriter>,
    /// The first error writing the metrics file; training goes on, [`Console::finish`]
    /// reports it.
    metrics_error: Option<MetricsError>,
    /// Every epoch's order, if asked for.
    orders: Option<Vec<Vec<usize>>>,
    /// Set (by a Ctrl-C handler) to end the run after the current mini-batch.
    stop: Option<Arc<AtomicBool>>,
    /// The set each epoch scores, named on its line if given (`validation`, `test`).
    scored: Option<&'static str>,
    /// Chapter 5's speed of learning, measured over this many training images, if asked.
    speed_images: Option<usize>,
    /// The speeds of learning before training and after the current epoch, until its row
    /// is written.
    speeds: (Option<Vec<f64>>, Option<Vec<f64>>),
}

impl Console {
    /// Epoch lines unless `quiet`; a row per epoch in `metrics`; every epoch's order kept if
    /// `keep_orders`. The progress bar appears only when both output streams are a terminal
    /// and not `quiet`, and is redrawn at most 10 times a second.
    pub fn new(quiet: bool, metrics: Option<MetricsWriter>, keep_orders: bool) -> Self {
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} mini-batches {elapsed}")
            {
                bar.set_style(style);
            }
            bar
        });
        Console {
            quiet,
            bar,
            metrics,
            metrics_error: None,
            orders: keep_orders.then(Vec::new),
            stop: None,
            scored: None,
            speed_images: None,
            speeds: (None, None),
        }
    }

    /// Ends the run after the current mini-batch once `flag` is set.
    pub fn stop_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Names the set each epoch scores on its line: `Epoch 3: validation accuracy 9630 /
    /// 10000 (96.30%)`.
    pub fn scoring(mut self, set: &'static str) -> Self {
        self.scored = Some(set);
        self
    }

    /// Measures chapter 5's speed of learning of each hidden layer over the first `images`
    /// training images, before training and after every epoch: printed with the epoch lines
    /// and written in the metrics file.
    pub fn monitor_learning_speed(mut self, images: usize) -> Self {
        self.speed_images = Some(images);
        self
    }

    /// Clears the progress bar; returns every epoch's order (empty unless kept), or the first
    /// error writing the metrics file.
    pub fn finish(self) -> Result<Vec<Vec<usize>>, MetricsError> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        match self.metrics_error {
            Some(e) => Err(e),
            None => Ok(self.orders.unwrap_or_default()),
        }
    }
}

impl Observer for Console {
    fn epoch(&mut self, e: &EpochRecord, order: &[usize]) -> ControlFlow<()> {
        let print = || {
            if !self.quiet {
                say(&epoch_line(e, self.scored));
                if let Some(line) = monitors(e) {
                    say(&line);
                }
                if let Some(speeds) = &self.speeds.1 {
                    say(&speed_line("after this epoch", speeds));
                }
            }
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
        let (start, after) = std::mem::take(&mut self.speeds);
        if let (Some(m), None) = (&mut self.metrics, &self.metrics_error) {
            let row = Row {
                learning_speed_start: start.map(Speeds),
                learning_speed: after.map(Speeds),
                ..Row::from(e)
            };
            self.metrics_error = m.write_row(&row).err();
        }
        if let Some(orders) = &mut self.orders {
            orders.push(order.to_vec());
        }
        ControlFlow::Continue(())
    }

    fn learning_speed_images(&self) -> Option<usize> {
        self.speed_images
    }

    fn learning_speed(&mut self, after_epoch: Option<usize>, speeds: &[f64]) {
        match after_epoch {
            None => {
                if !self.quiet {
                    say(&speed_line("before training", speeds));
                }
                self.speeds.0 = Some(speeds.to_vec());
            }
            Some(_) => self.speeds.1 = Some(speeds.to_vec()),
        }
    }

    #[inline]
    fn batch(&mut self, done: usize, total: usize) -> ControlFlow<()> {
        if done.is_multiple_of(BAR_EVERY) || done == total {
            if let Some(bar) = &self.bar {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        }
        match &self.stop {
            Some(flag) if flag.load(Ordering::Relaxed) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// The book's `Epoch k: c / n (p%)`, with the set scored if `scored` names it.
fn epoch_line(e: &EpochRecord, scored: Option<&str>) -> String {
    let set = scored.map_or(String::new(), |set| format!("{set} accuracy "));
    format!(
        "Epoch {}: {set}{} / {} ({:.2}%)",
        e.epoch,
        e.correct,
        e.total,
        e.accuracy()
    )
}

/// The monitored quantities of an epoch, as one indented line, if any were monitored.
fn monitors(e: &EpochRecord) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(c) = e.training_cost {
        parts.push(format!("training cost {c:.4}"));
    }
    if let (Some(c), Some(p)) = (e.training_correct, e.training_accuracy()) {
        parts.push(format!(
            "training accuracy {c} / {} ({p:.2}%)",
            e.training_total
        ));
    }
    if let Some(c) = e.evaluation_cost {
        parts.push(format!("evaluation cost {c:.4}"));
    }
    (!parts.is_empty()).then(|| format!("  {}", parts.join(", ")))
}

/// `Speed of learning before training (hidden layers 1–2): 0.0123, 0.0601`: each hidden
/// layer's ‖∂C/∂b‖, as chapter 5 prints them.
fn speed_line(when: &str, speeds: &[f64]) -> String {
    let values: Vec<String> = speeds.iter().map(|v| format!("{v:.3e}")).collect();
    format!(
        "  Speed of learning {when} (hidden layers 1–{}): {}",
        speeds.len(),
        values.join(", ")
    )
}
