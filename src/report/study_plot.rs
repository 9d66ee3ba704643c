//! A study's figures, PNG or SVG, in the look of the accuracy plots ([`crate::report::plot`]:
//! the same embedded font, colours, whole-number ticks and legend under the axes):
//! - [`history`]: each finished trial's best validation accuracy against its number, and the
//!   best so far as a step line — Optuna's `plot_optimization_history`;
//! - [`params`]: one panel per parameter, its value against the trial's best validation
//!   accuracy, on a log axis for `log` and `intlog` kinds and at evenly spaced positions for
//!   choices — Optuna's `plot_slice`;
//! - [`curves`]: every trial's validation accuracy after each epoch, complete trials in colour
//!   (the best one picked out), pruned ones grey, failed ones dashed — Optuna's
//!   `plot_intermediate_values`.
//!
//! The value of a trial is its best validation accuracy over the epochs it finished. The best
//! so far counts complete trials only, as the study's result does; pruned trials are drawn
//! grey beside them.
//!
//! Left out: Optuna's contour, parallel-coordinate, parameter-importance and empirical
//! distribution plots, colouring points by trial number, and interactive (HTML) figures.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::data::quote;
use crate::report::plot::{
    check_format, legend_below, render, whole_label, whole_ticks, Draw, Key, Mark, PlotError,
    COLOURS, FAMILY,
};
use crate::report::study::best_trial;
use crate::tune::space::{significant, Kind, Param, Value};
use crate::tune::study::{StudySpec, Trial, TrialState};

/// Complete trials.
const COMPLETE: RGBColor = COLOURS[0].0;
/// The best complete trial, and the best-so-far line.
const BEST: RGBColor = COLOURS[1].0;
/// Trials still running (or waiting with values, after their worker stopped).
const RUNNING: RGBColor = COLOURS[2].0;
/// Pruned trials.
const GREY: RGBColor = RGBColor(170, 170, 170);
/// Failed trials.
const FAILED: RGBColor = COLOURS[1].1;

/// The y axis of every figure: validation accuracy.
const ACCURACY: &str = "validation accuracy (%)";

/// Draws the optimisation history of the study `spec` to `out` (`.png` or `.svg`): every
/// complete or pruned trial's best validation accuracy against its number, and the best of
/// the complete trials so far as a step line.
pub fn history(spec: &StudySpec, trials: &[Trial], out: &Path) -> Result<(), PlotError> {
    check_format(out)?;
    if ranked(trials).next().is_none() {
        return Err(nothing(spec));
    }
    render(out, (1000, 600), &History { spec, trials })
}

/// The most parameters the parameters figure draws, each in its panel (the first ones of the
/// space; the title says how many there are): a figure's size grows with its panels, to
/// 80 MB for a space of 3,000 parameters.
const MAX_PANELS: usize = 12;

/// Draws one panel per parameter of the study `spec` to `out` (`.png` or `.svg`), up to
/// [`MAX_PANELS`]: each complete or pruned trial's value of the parameter against its best
/// validation accuracy.
pub fn params(spec: &StudySpec, trials: &[Trial], out: &Path) -> Result<(), PlotError> {
    check_format(out)?;
    if spec.space.params.is_empty() {
        return Err(PlotError::Empty(format!(
            "study {} varies no parameter",
            spec.name
        )));
    }
    if ranked(trials).next().is_none() {
        return Err(nothing(spec));
    }
    let n = spec.space.params.len().min(MAX_PANELS) as u32;
    let columns = n.min(3);
    let rows = n.div_ceil(columns);
    let size = (460 * columns.max(2), 380 * rows + 90);
    render(out, size, &Params { spec, trials })
}

/// Draws the validation accuracy after each epoch of every trial of the study `spec` to
/// `out` (`.png` or `.svg`).
pub fn curves(spec: &StudySpec, trials: &[Trial], out: &Path) -> Result<(), PlotError> {
    check_format(out)?;
    if trials.iter().all(|t| t.values.is_empty()) {
        return Err(nothing(spec));
    }
    render(out, (1000, 600), &Curves { spec, trials })
}

fn nothing(spec: &StudySpec) -> PlotError {
    PlotError::Empty(format!(
        "no trial of study {} has finished an epoch",
        spec.name
    ))
}

/// The complete and pruned trials that finished an epoch, with their best value.
fn ranked(trials: &[Trial]) -> impl Iterator<Item = (&Trial, f64)> {
    trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
        .filter_map(|t| t.best().map(|(_, v)| (t, v)))
}

/// The colour of a trial's point.
fn dot_colour(t: &Trial) -> RGBColor {
    if t.state == TrialState::Pruned {
        GREY
    } else {
        COMPLETE
    }
}

/// A range around `values`, padded by 5% (at least ½ a percentage point) on each side.
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..100.0;
    }
    let pad = ((hi - lo) * 0.05).max(0.5);
    (lo - pad)..(hi + pad)
}

/// A number in at most three significant digits, without trailing zeros: `0.01`, `2.5`, `100`,
/// `1e300`.
fn short(x: &f64) -> String {
    significant(*x, 3)
}

/// The keys for the trials' points: complete, and pruned if any are drawn.
fn dot_keys(trials: &[Trial]) -> Vec<Key> {
    let mut keys = vec![Key {
        label: "complete".into(),
        colour: COMPLETE,
        mark: Mark::Dot,
    }];
    if ranked(trials).any(|(t, _)| t.state == TrialState::Pruned) {
        keys.push(Key {
            label: "pruned".into(),
            colour: GREY,
            mark: Mark::Dot,
        });
    }
    keys
}

struct History<'a> {
    spec: &'a StudySpec,
    trials: &'a [Trial],
}

impl Draw for History<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let root = blank_titled(root, &format!("{}: optimisation history", self.spec.name))?;
        let mut complete: Vec<(u32, f64)> = ranked(self.trials)
            .filter(|(t, _)| t.state == TrialState::Complete)
            .map(|(t, v)| (t.number, v))
            .collect();
        complete.sort_by_key(|&(n, _)| n);
        let mut keys = dot_keys(self.trials);
        if !complete.is_empty() {
            keys.push(Key {
                label: "best so far".into(),
                colour: BEST,
                mark: Mark::Line,
            });
        }
        let axes = legend_below(&root, &keys)?;
        let last = ranked(self.trials)
            .map(|(t, _)| t.number)
            .max()
            .unwrap_or(0);
        let x = -0.5..(f64::from(last.max(1)) + 0.5);
        let mut chart = ChartBuilder::on(&axes)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), padded(ranked(self.trials).map(|(_, v)| v)))
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_labels(whole_ticks(x.start, x.end))
            .x_label_formatter(&whole_label)
            .x_max_light_lines(0)
            .x_desc("trial")
            .y_desc(format!("best {ACCURACY}"))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 16))
            .draw()
            .map_err(text)?;
        // The step line: flat from each record to the next, to the last trial drawn.
        let mut steps: Vec<(f64, f64)> = Vec::new();
        let mut best = f64::NEG_INFINITY;
        for &(n, v) in &complete {
            if v > best {
                if let Some(&(_, prev)) = steps.last() {
                    steps.push((f64::from(n), prev));
                }
                best = v;
                steps.push((f64::from(n), v));
            }
        }
        if let Some(&(_, v)) = steps.last() {
            steps.push((f64::from(last), v));
        }
        chart
            .draw_series(LineSeries::new(steps, BEST.stroke_width(2)))
            .map_err(text)?;
        chart
            .draw_series(
                ranked(self.trials)
                    .map(|(t, v)| Circle::new((f64::from(t.number), v), 5, dot_colour(t).filled())),
            )
            .map_err(text)?;
        Ok(())
    }
}

/// The figure's area cleared to white under `title`, and the area below the title.
fn blank_titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    root.titled(title, (FAMILY, 24)).map_err(|e| e.to_string())
}

struct Params<'a> {
    spec: &'a StudySpec,
    trials: &'a [Trial],
}

impl Draw for Params<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let all = self.spec.space.params.len();
        let params = &self.spec.space.params[..all.min(MAX_PANELS)];
        let shown = match all > params.len() {
            true => format!(" (the first {} of {all})", params.len()),
            false => String::new(),
        };
        let root = blank_titled(
            root,
            &format!(
                "{}: parameters{shown} against validation accuracy",
                quote(&self.spec.name)
            ),
        )?;
        let axes = legend_below(&root, &dot_keys(self.trials))?;
        let n = params.len();
        let columns = n.clamp(1, 3);
        let panels = axes.split_evenly((n.div_ceil(columns), columns));
        let y = padded(ranked(self.trials).map(|(_, v)| v));
        for (param, area) in params.iter().zip(&panels) {
            let points: Vec<(f64, f64, RGBColor)> = ranked(self.trials)
                .filter_map(|(t, v)| {
                    let x = position(param, t.params.get(&param.name)?)?;
                    Some((x, v, dot_colour(t)))
                })
                .collect();
            param_panel(area, param, &points, y.clone())?;
        }
        Ok(())
    }
}

/// Where a value goes on its parameter's axis: the number itself, or a choice's index.
fn position(param: &Param, value: &Value) -> Option<f64> {
    match &param.kind {
        Kind::Choice { choices } => {
            let text = value.to_string();
            let number = value.as_f64();
            choices
                .iter()
                .position(|c| *c == text || (number.is_some() && c.parse::<f64>().ok() == number))
                .map(|i| i as f64)
        }
        _ => value.as_f64(),
    }
}

/// How a parameter's x axis is labelled.
struct Labels<'a> {
    /// The axis's name.
    name: String,
    /// A tick's label.
    label: &'a dyn Fn(&f64) -> String,
    /// At most this many ticks.
    ticks: usize,
    /// Minor grid lines between two ticks: none where only whole positions mean anything.
    light_lines: usize,
}

/// One parameter's panel: its axis by kind, then the points.
fn param_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    param: &Param,
    points: &[(f64, f64, RGBColor)],
    y: std::ops::Range<f64>,
) -> Result<(), String> {
    let numbers = |name: String| Labels {
        name,
        label: &short,
        ticks: 6,
        light_lines: 10,
    };
    let log_name = format!("{} (log)", param.name);
    match &param.kind {
        Kind::Float { lo, hi } => {
            let x = linear_axis(*lo, *hi, 0.0);
            scatter(area, x, y, points, numbers(param.name.clone()))
        }
        Kind::Int { lo, hi } => {
            let x = linear_axis(*lo as f64, *hi as f64, 0.5);
            let labels = Labels {
                name: param.name.clone(),
                label: &whole_label,
                ticks: whole_ticks(x.start, x.end).min(6),
                light_lines: 0,
            };
            scatter(area, x, y, points, labels)
        }
        Kind::Log { lo, hi } => log_panel(area, *lo, *hi, y, points, log_name),
        Kind::IntLog { lo, hi } => log_panel(area, *lo as f64, *hi as f64, y, points, log_name),
        Kind::Choice { choices } => {
            let x = -0.5..(choices.len() as f64 - 0.5);
            let label = |x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-9 && i >= 0.0 {
                    choices.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            let labels = Labels {
                name: param.name.clone(),
                label: &label,
                ticks: whole_ticks(x.start, x.end),
                light_lines: 0,
            };
            scatter(area, x, y, points, labels)
        }
    }
}

/// A linear axis from `lo` to `hi` padded by 4% (at least `min_pad`) on each side, as long as
/// its ends and width stay finite numbers; a range up to `f64::MAX` is drawn unpadded, one
/// wider than `f64::MAX` at half scale (an infinite axis hung the tick search).
fn linear_axis(lo: f64, hi: f64, min_pad: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * 0.04).max(min_pad);
    let finite = |a: f64, b: f64| a.is_finite() && b.is_finite() && (b - a).is_finite();
    if finite(lo - pad, hi + pad) {
        (lo - pad)..(hi + pad)
    } else if finite(lo, hi) {
        lo..hi
    } else {
        (lo / 2.0)..(hi / 2.0)
    }
}

/// The most decades a log axis draws light grid lines in; a wider one (η up to 1e308) has
/// only its ticks, as the light lines of hundreds of decades took minutes to place.
const LIGHT_DECADES: f64 = 12.0;

/// A log-scale panel from `lo` to `hi`, padded by a factor of 1.15 where that keeps `hi / lo`
/// finite, else unpadded, else cut to the top 300 decades.
fn log_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    y: std::ops::Range<f64>,
    points: &[(f64, f64, RGBColor)],
    name: String,
) -> Result<(), String> {
    // plotters counts the decades as ln(hi / lo): an infinite ratio counted for ever.
    let (lo, hi) = match (lo / 1.15, hi * 1.15) {
        (a, b) if (b / a).is_finite() => (a, b),
        _ if (hi / lo).is_finite() => (lo, hi),
        _ => (hi / 1e300, hi),
    };
    let labels = Labels {
        name,
        label: &short,
        ticks: 6,
        light_lines: if (hi / lo).log10() <= LIGHT_DECADES {
            10
        } else {
            0
        },
    };
    scatter(area, (lo..hi).log_scale(), y, points, labels)
}

/// A scatter of `points` on an x axis `x` (linear, log or choice positions) against
/// validation accuracy.
fn scatter<DB, X>(
    area: &DrawingArea<DB, Shift>,
    x: X,
    y: std::ops::Range<f64>,
    points: &[(f64, f64, RGBColor)],
    labels: Labels<'_>,
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(&labels.name, (FAMILY, 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_labels(labels.ticks)
        .x_label_formatter(labels.label)
        .x_max_light_lines(labels.light_lines)
        .x_desc(&labels.name)
        .y_desc(ACCURACY)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(text)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&(x, v, colour)| Circle::new((x, v), 5, colour.filled())),
        )
        .map_err(text)?;
    Ok(())
}

struct Curves<'a> {
    spec: &'a StudySpec,
    trials: &'a [Trial],
}

impl Draw for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let root = blank_titled(
            root,
            &format!("{}: validation accuracy per epoch", self.spec.name),
        )?;
        let drawn: Vec<&Trial> = self
            .trials
            .iter()
            .filter(|t| !t.values.is_empty())
            .collect();
        let best = best_trial(self.trials).map(|t| t.number);
        let has = |s: TrialState| drawn.iter().any(|t| t.state == s);
        let mut keys = Vec::new();
        let mut key = |label: String, colour, mark| {
            keys.push(Key {
                label,
                colour,
                mark,
            })
        };
        if has(TrialState::Complete) {
            key("complete".into(), COMPLETE, Mark::Line);
        }
        if let Some(n) = best {
            key(format!("best: trial {n}"), BEST, Mark::Line);
        }
        if has(TrialState::Running) || has(TrialState::Waiting) {
            key("running".into(), RUNNING, Mark::Line);
        }
        if has(TrialState::Pruned) {
            key("pruned".into(), GREY, Mark::Line);
        }
        if has(TrialState::Failed) {
            key("failed".into(), FAILED, Mark::Dashed);
        }
        let axes = legend_below(&root, &keys)?;
        let last = drawn.iter().map(|t| t.values.len()).max().unwrap_or(1) - 1;
        let x = 0.0..(last.max(1) as f64);
        let y = padded(drawn.iter().flat_map(|t| t.values.iter().copied()));
        let mut chart = ChartBuilder::on(&axes)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), y)
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_labels(whole_ticks(x.start, x.end))
            .x_label_formatter(&whole_label)
            .x_max_light_lines(0)
            .x_desc("epoch")
            .y_desc(ACCURACY)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 16))
            .draw()
            .map_err(text)?;
        // Grey and dashed first, the best last, so colour stays on top.
        let rank = |t: &Trial| match t.state {
            TrialState::Pruned => 0,
            TrialState::Failed => 1,
            _ if Some(t.number) == best => 3,
            _ => 2,
        };
        let mut order = drawn;
        order.sort_by_key(|t| rank(t));
        for t in order {
            let points: Vec<(f64, f64)> = t
                .values
                .iter()
                .enumerate()
                .map(|(e, &v)| (e as f64, v))
                .collect();
            let (colour, width) = match t.state {
                TrialState::Pruned => (GREY, 1),
                TrialState::Failed => (FAILED, 2),
                TrialState::Running | TrialState::Waiting => (RUNNING, 1),
                TrialState::Complete if Some(t.number) == best => (BEST, 3),
                TrialState::Complete => (COMPLETE, 1),
            };
            if t.state == TrialState::Failed {
                chart
                    .draw_series(DashedLineSeries::new(
                        points.iter().copied(),
                        6,
                        4,
                        colour.stroke_width(width),
                    ))
                    .map_err(text)?;
            } else {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        colour.stroke_width(width),
                    ))
                    .map_err(text)?;
            }
            // A trial ended after one epoch has no line; its end is marked either way.
            if let Some(&end) = points.last() {
                chart
                    .draw_series([Circle::new(end, 3, colour.filled())])
                    .map_err(text)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_keep_three_significant_digits() {
        let cases = [
            (0.01, "0.01"),
            (0.0123456, "0.0123"),
            (2.5, "2.5"),
            (100.0, "100"),
            (1234.0, "1234"),
            (10.0, "10"),
        ];
        for (x, want) in cases {
            assert_eq!(short(&x), want, "{x}");
        }
    }

    /// Ranges out to `f64::MAX` and more parameters than panels: drawn at once, at the size
    /// of twelve panels. (The ranges hung the tick search; the parameters grew the image.)
    #[test]
    fn extreme_ranges_and_many_parameters_draw_at_a_bounded_size() {
        let mut args = vec![
            "eta=log:0.01:1e308".to_string(),
            "lambda=float:0.01:1.7976931348623157e308".to_string(),
            "epochs=intlog:1:9223372036854775807".to_string(),
        ];
        args.extend((1..=20).map(|i| format!("hidden{i}=int:1:9223372036854775807")));
        let space = crate::tune::space::Space::parse(&args).unwrap();
        let mut trial = Trial::new(0, Default::default(), TrialState::Complete, vec![11.0]);
        trial.params.insert("eta".into(), Value::Float(1e300));
        trial.params.insert("lambda".into(), Value::Float(1e308));
        trial.params.insert("epochs".into(), Value::Int(i64::MAX));
        let spec = StudySpec {
            name: "wide".into(),
            space,
            sampler: "random".into(),
            base: serde_json::Value::Null,
        };
        let out = std::env::temp_dir().join(format!("nndl-wide-{}.png", std::process::id()));
        let started = std::time::Instant::now();
        params(&spec, &[trial], &out).unwrap();
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (460 * 3, 380 * 4 + 90));
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn choices_are_placed_by_index_even_when_stored_as_numbers() {
        let param = Param {
            name: "mini-batch".into(),
            kind: Kind::Choice {
                choices: vec!["5".into(), "10".into(), "20".into()],
            },
        };
        assert_eq!(position(&param, &Value::Int(10)), Some(1.0));
        assert_eq!(position(&param, &Value::Choice("20".into())), Some(2.0));
        assert_eq!(position(&param, &Value::Int(7)), None);
    }
}
