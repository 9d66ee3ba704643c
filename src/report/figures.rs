//! The book's figures that are not accuracy or cost against epoch ([`super::plot`] draws
//! those): chapter 5's speed of learning of each hidden layer against epoch, on a log scale as
//! `fig/generate_gradient.py` draws it, and chapter 3's accuracy against the size of the
//! training set, on a log scale of sizes as `fig/more_data.py` draws it. Both share
//! [`super::plot`]'s font, colours, whole-epoch ticks, legend strip and PNG/SVG output.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::metrics::Row;
use super::plot::{
    legend_below, render, whole_label, whole_ticks, Draw, Key, Mark, PlotError, Run, FAMILY,
};

/// Colours for successive hidden layers (or series): distinct at a glance, and not the
/// lighter training shades of [`super::plot::COLOURS`].
pub const SERIES_COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One series: its legend entry and points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Chapter 5's speed of learning in `run`'s rows, one series per hidden layer: x is the
/// number of epochs trained (0 before training, e + 1 after epoch e). Empty if not monitored.
pub fn speed_series(run: &Run, prefix: bool) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    let mut add = |x: f64, speeds: &[f64]| {
        for (l, &v) in speeds.iter().enumerate() {
            if series.len() <= l {
                let name = format!("hidden layer {}", l + 1);
                series.push(Series {
                    label: match prefix {
                        true => format!("{} {name}", run.label),
                        false => name,
                    },
                    points: Vec::new(),
                });
            }
            // A log axis has no place for 0 (a layer whose gradient vanished exactly).
            if v > 0.0 {
                series[l].points.push((x, v));
            }
        }
    };
    for row in &run.rows {
        if let Some(start) = &row.learning_speed_start {
            add(0.0, &start.0);
        }
        if let Some(after) = &row.learning_speed {
            add(row.epoch as f64 + 1.0, &after.0);
        }
    }
    series
}

/// Whether any row holds speeds of learning.
pub fn has_speeds(rows: &[Row]) -> bool {
    rows.iter()
        .any(|r| r.learning_speed.is_some() || r.learning_speed_start.is_some())
}

/// What a panel shows: its caption, axis titles, and which axis is logarithmic.
pub struct Panel<'a> {
    pub caption: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub scale: Scale,
}

/// Which axis of a panel is logarithmic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Epochs on x (whole ticks), a log scale on y: the speed of learning.
    LogY,
    /// A log scale on x (training images), linear y: accuracy against data.
    LogX,
    /// Epochs on x (whole ticks), linear y: accuracy or cost against epoch.
    Linear,
}

/// Draws `series` in `area` as `panel` says, with a legend strip under the axes.
pub fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    series: &[Series],
) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let all = || series.iter().flat_map(|s| s.points.iter());
    if all().next().is_none() {
        let style = TextStyle::from((FAMILY, 18).into_font()).color(&BLACK);
        area.draw_text(
            &format!("{}: not monitored", panel.caption),
            &style,
            (40, area.dim_in_pixel().1 as i32 / 2),
        )
        .map_err(text)?;
        return Ok(());
    }
    let (mut x_min, mut x_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all() {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let keys: Vec<Key> = series
        .iter()
        .zip(SERIES_COLOURS.iter().cycle())
        .map(|(s, &colour)| Key {
            label: s.label.clone(),
            colour,
            mark: Mark::Line,
        })
        .collect();
    let axes = legend_below(area, &keys)?;
    let epochs = x_min..x_max.max(x_min + 1.0);
    let epoch_ticks: Ticks = (whole_ticks(epochs.start, epochs.end), &whole_label);
    let pad = (y_max - y_min) * 0.05;
    match panel.scale {
        // A decade's margin would waste the panel; a fifth of one each way is enough.
        Scale::LogY => chart(
            &axes,
            panel,
            series,
            epochs,
            (y_min / 1.5..y_max * 1.5).log_scale(),
            epoch_ticks,
            (10, &|y: &f64| format!("{y:.0e}")),
        ),
        Scale::Linear => chart(
            &axes,
            panel,
            series,
            epochs,
            (y_min - pad.max(1e-6))..(y_max + pad.max(1e-6)),
            epoch_ticks,
            (10, &|y: &f64| {
                // Ticks fall on round numbers; print them without binary rounding's tail.
                let text = format!("{y:.4}");
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            }),
        ),
        Scale::LogX => chart(
            &axes,
            panel,
            series,
            (x_min / 1.3..x_max * 1.3).log_scale(),
            (y_min - pad.max(0.5))..(y_max + pad.max(0.5)),
            (12, &|x: &f64| format!("{}", x.round() as i64)),
            (8, &|y: &f64| format!("{y:.0}")),
        ),
    }
}

/// An axis's tick count and label.
type Ticks<'a> = (usize, &'a dyn Fn(&f64) -> String);

fn chart<DB, X, Y>(
    axes: &DrawingArea<DB, Shift>,
    panel: &Panel,
    series: &[Series],
    x: X,
    y: Y,
    x_ticks: Ticks,
    y_ticks: Ticks,
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(axes)
        .caption(panel.caption, (FAMILY, 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_labels(x_ticks.0)
        .x_label_formatter(x_ticks.1)
        .y_labels(y_ticks.0)
        .y_label_formatter(y_ticks.1)
        .x_max_light_lines(0)
        .x_desc(panel.x_desc)
        .y_desc(panel.y_desc)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()
        .map_err(text)?;
    for (s, colour) in series.iter().zip(SERIES_COLOURS.iter().cycle()) {
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(text)?;
        if panel.scale == Scale::LogX {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(text)?;
        }
    }
    Ok(())
}

/// A figure of one panel.
struct OnePanel<'a> {
    title: &'a str,
    panel: Panel<'a>,
    series: &'a [Series],
}

impl Draw for OnePanel<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(text)?;
        let area = root.titled(self.title, (FAMILY, 22)).map_err(text)?;
        draw_panel(&area, &self.panel, self.series)
    }
}

/// Draws `series` as one panel under `title` to `out` (`.png` or `.svg`), 900 × 600 pixels.
pub fn draw_figure(
    series: &[Series],
    panel: Panel,
    title: &str,
    out: &Path,
) -> Result<(), PlotError> {
    if series.iter().all(|s| s.points.is_empty()) {
        return Err(PlotError::Empty(format!("no points for {}", panel.caption)));
    }
    render(
        out,
        (900, 600),
        &OnePanel {
            title,
            panel,
            series,
        },
    )
}

/// The panel of chapter 5's speed of learning.
pub const SPEED_PANEL: Panel<'static> = Panel {
    caption: "Speed of learning",
    x_desc: "epochs trained",
    y_desc: "‖∂C/∂b‖ of the hidden layer (log scale)",
    scale: Scale::LogY,
};
