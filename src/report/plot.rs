//! Chapter 3's figures: accuracy and cost against epoch, on the training and the evaluation
//! data (each curve named by the set it scores), for one run or several side by side — drawn from metrics rows
//! ([`crate::report::metrics::Row`], as a run's metrics file holds them) to PNG or SVG.
//!
//! The figure has two panels, accuracy (%) on the left and cost on the right; each run
//! contributes its evaluation curves (solid) and, where they were monitored, its training
//! curves (a lighter shade). The epoch axis is marked at whole epochs only, and the legend sits
//! in a strip under the axes, where it cannot hide the ends of the curves. Text is drawn with
//! DejaVu Sans, embedded in the binary, so a PNG renders the same on a machine with no fonts
//! installed. A figure is drawn to a temporary file beside its place and renamed into it.
//!
//! Below them, the book's one-panel figures with a log axis: chapter 5's speed of learning
//! against epoch and chapter 3's accuracy against the size of the training set.
//!
//! The study figures ([`crate::report::study_plot`]) share this module's look: its font,
//! colours, whole-number ticks, legend strip and PNG/SVG output (`render`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::report::metrics::Row;

/// The largest metrics file read (256 MiB; a row per epoch takes under 200 bytes).
const MAX_METRICS_BYTES: u64 = 1 << 28;

/// DejaVu Sans (Bitstream Vera license, see `assets/fonts/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family every figure's text is drawn in (the embedded font, once [`render`] registered it).
pub(crate) const FAMILY: &str = "sans-serif";

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{0}: a figure must end in .png or .svg")]
    Format(PathBuf),
    #[error("there is nothing to plot: {0}")]
    Empty(String),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a metrics file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One run's rows and the name it goes by in the legend.
pub struct Run {
    pub label: String,
    pub rows: Vec<Row>,
    /// The set its evaluation rows score, as the legend names their curves: `validation`,
    /// `test` or `training` — or [`UNNAMED_SET`] where the rows do not say (a metrics file
    /// read back by `nndl plot`).
    pub scored: &'static str,
}

/// The legend's name for evaluation curves of a set nobody named.
pub const UNNAMED_SET: &str = "evaluation";

/// A label for each of `paths`, for a legend: the file's stem (`run` for `out/run.csv`), or,
/// where two stems are the same, the file's name, or failing that the whole path.
pub fn labels(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = |p: &PathBuf| p.file_name().map(|s| s.to_string_lossy().into_owned());
    let unique = |f: &dyn Fn(&PathBuf) -> Option<String>| {
        let all: Vec<Option<String>> = paths.iter().map(f).collect();
        let distinct: std::collections::HashSet<&Option<String>> = all.iter().collect();
        (distinct.len() == all.len() && all.iter().all(Option::is_some))
            .then(|| all.into_iter().flatten().collect())
    };
    unique(&stem)
        .or_else(|| unique(&name))
        .unwrap_or_else(|| paths.iter().map(|p| p.display().to_string()).collect())
}

/// Reads a metrics file written by [`crate::report::metrics::MetricsWriter`] (`.csv` or `.jsonl`).
pub fn read_metrics(path: &Path) -> Result<Vec<Row>, PlotError> {
    let text = crate::data::file::read_text(path, MAX_METRICS_BYTES).map_err(|source| {
        PlotError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let parse = |message: String| PlotError::Parse {
        path: path.to_path_buf(),
        message,
    };
    if path.extension().is_some_and(|e| e == "jsonl") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| parse(format!("line {}: {e}", i + 1)))
            })
            .collect()
    } else {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .map(|r| r.map_err(|e| parse(e.to_string())))
            .collect()
    }
}

/// A figure's name ends in `.png` or `.svg`.
pub fn check_format(path: &Path) -> Result<(), PlotError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png" | "svg") => Ok(()),
        _ => Err(PlotError::Format(path.to_path_buf())),
    }
}

/// Draws `runs` to `out` (`.png` or `.svg`) under `title`.
pub fn plot(runs: &[Run], title: &str, out: &Path) -> Result<(), PlotError> {
    check_format(out)?;
    if runs.iter().all(|r| r.rows.is_empty()) {
        return Err(PlotError::Empty("no epochs in any run".into()));
    }
    // Chapter 5's speed of learning, where monitored, in a third panel.
    let width = match runs.iter().any(|r| has_speeds(&r.rows)) {
        true => 2100,
        false => 1400,
    };
    render(out, (width, 600), &Figure { runs, title })
}

/// A figure's drawing, for either backend (PNG or SVG).
pub(crate) trait Draw {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws `figure` at `size` pixels to `out`, a PNG or an SVG by its extension, in the embedded
/// font (registered with plotters the first time). The figure is drawn in memory and written
/// through a temporary file renamed over `out`, so a failed drawing or write leaves no
/// half-written figure.
pub(crate) fn render(out: &Path, size: (u32, u32), figure: &impl Draw) -> Result<(), PlotError> {
    check_format(out)?;
    let ready = font_ready();
    let draw_err = |message: String| PlotError::Draw {
        path: out.to_path_buf(),
        message,
    };
    if !ready {
        return Err(draw_err("the embedded font could not be read".into()));
    }
    // Drawn in memory, then written through a temporary file renamed over `out`, so that a
    // failed write is reported as what it is and leaves an earlier figure intact.
    let bytes = match out.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let (w, h) = size;
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                figure.draw(&root).map_err(draw_err)?;
                root.present().map_err(|e| draw_err(e.to_string()))?;
            }
            encode_png(&rgb, size).map_err(|e| draw_err(e.to_string()))?
        }
        Some("svg") => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                figure.draw(&root).map_err(draw_err)?;
                root.present().map_err(|e| draw_err(e.to_string()))?;
            }
            svg.into_bytes()
        }
        _ => return Err(PlotError::Format(out.to_path_buf())),
    };
    crate::output::write_atomically(out, |w| std::io::Write::write_all(w, &bytes)).map_err(
        |source| PlotError::Write {
            path: out.to_path_buf(),
            source,
        },
    )
}

/// Registers the embedded font with plotters as [`FAMILY`] (the first time); false if it
/// cannot be read.
pub(crate) fn font_ready() -> bool {
    static FONT_READY: OnceLock<bool> = OnceLock::new();
    *FONT_READY
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok())
}

/// An 8-bit RGB image as a PNG file's bytes.
pub(crate) fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(bytes)
}

/// The accuracy and cost figure of [`plot`].
struct Figure<'a> {
    runs: &'a [Run],
    title: &'a str,
}

impl Draw for Figure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(root, self.runs, self.title)
    }
}

/// How many ticks to ask plotters for on an axis of whole numbers from `lo` to `hi` (epochs,
/// trial numbers): one per number when there are at most 11, else 11. Plotters spaces ticks
/// by 1, 2 or 5 × 10ᵏ with at most that many, so none falls between two whole numbers.
pub(crate) fn whole_ticks(lo: f64, hi: f64) -> usize {
    ((hi - lo).floor().max(0.0) as usize + 1).clamp(2, 11)
}

/// A tick label on an axis of whole numbers: `3`, or nothing between two whole numbers.
pub(crate) fn whole_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}

/// How a legend entry shows its series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mark {
    Line,
    Dashed,
    Dot,
}

/// One legend entry.
pub(crate) struct Key {
    pub label: String,
    pub colour: RGBColor,
    pub mark: Mark,
}

/// Height of one row of the legend, in pixels.
const KEY_ROW: u32 = 24;
/// Length of a legend entry's sample line, in pixels.
const KEY_SAMPLE: i32 = 24;

/// Splits `area` into the part for the axes and, under it, a strip with `keys` laid out in as
/// many rows as they need, and draws the keys there: outside the axes, a legend cannot hide
/// the ends of the curves. Returns the part for the axes.
pub(crate) fn legend_below<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
) -> Result<DrawingArea<DB, Shift>, String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if keys.is_empty() {
        return Ok(area.clone());
    }
    let style = TextStyle::from((FAMILY, 15).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let (width, height) = area.dim_in_pixel();
    const LEFT: i32 = 64;
    const GAP: i32 = 24;
    let mut rows: Vec<Vec<(i32, &Key)>> = vec![Vec::new()];
    let mut x = LEFT;
    for key in keys {
        let (w, _) = area.estimate_text_size(&key.label, &style).map_err(text)?;
        let span = KEY_SAMPLE + 6 + w as i32;
        if x > LEFT && x + span > width as i32 {
            rows.push(Vec::new());
            x = LEFT;
        }
        if let Some(row) = rows.last_mut() {
            row.push((x, key));
        }
        x += span + GAP;
    }
    let strip = (rows.len() as u32 * KEY_ROW + 8).min(height / 2);
    let (axes, legend) = area.split_vertically(height - strip);
    for (r, row) in rows.iter().enumerate() {
        let y = (r as u32 * KEY_ROW + KEY_ROW / 2 + 4) as i32;
        for &(x, key) in row {
            let colour = key.colour;
            match key.mark {
                Mark::Line => legend
                    .draw(&PathElement::new(
                        vec![(x, y), (x + KEY_SAMPLE, y)],
                        colour.stroke_width(2),
                    ))
                    .map_err(text)?,
                Mark::Dashed => {
                    for start in [0, 10, 20] {
                        legend
                            .draw(&PathElement::new(
                                vec![(x + start, y), (x + (start + 5).min(KEY_SAMPLE), y)],
                                colour.stroke_width(2),
                            ))
                            .map_err(text)?;
                    }
                }
                Mark::Dot => legend
                    .draw(&Circle::new((x + KEY_SAMPLE / 2, y), 4, colour.filled()))
                    .map_err(text)?,
            }
            legend
                .draw_text(&key.label, &style, (x + KEY_SAMPLE + 6, y))
                .map_err(text)?;
        }
    }
    Ok(axes)
}

/// Colours for successive runs: (evaluation, training).
pub const COLOURS: [(RGBColor, RGBColor); 4] = [
    (RGBColor(31, 119, 180), RGBColor(158, 202, 225)),
    (RGBColor(214, 39, 40), RGBColor(252, 160, 160)),
    (RGBColor(44, 160, 44), RGBColor(161, 217, 155)),
    (RGBColor(148, 103, 189), RGBColor(203, 183, 227)),
];

/// A curve: its legend entry, colour and points (epoch, value).
type Curve = (String, RGBColor, Vec<(f64, f64)>);

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[Run],
    title: &str,
) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    let root = root.titled(title, (FAMILY, 26)).map_err(text)?;
    let speeds: Vec<Series> = runs
        .iter()
        .flat_map(|run| speed_series(run, runs.len() > 1))
        .collect();
    let (root, speed_area) = match speeds.is_empty() {
        true => (root.clone(), None),
        false => {
            let (left, right) = root.split_horizontally(root.dim_in_pixel().0 * 2 / 3);
            (left, Some(right))
        }
    };
    if let Some(area) = &speed_area {
        draw_panel(area, &SPEED_PANEL, &speeds)?;
    }
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let name = |run: &Run, set: &str| {
        if runs.len() == 1 {
            set.to_string()
        } else {
            format!("{} {set}", run.label)
        }
    };
    let mut accuracy: Vec<Curve> = Vec::new();
    let mut cost: Vec<Curve> = Vec::new();
    for (run, &(dark, light)) in runs.iter().zip(COLOURS.iter().cycle()) {
        let points = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
            run.rows
                .iter()
                .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
                .collect()
        };
        let curves = [
            (
                false,
                run.scored,
                dark,
                points(&|r| Some(r.evaluation_accuracy)),
            ),
            (false, "training", light, points(&|r| r.training_accuracy)),
            (true, run.scored, dark, points(&|r| r.evaluation_cost)),
            (true, "training", light, points(&|r| r.training_cost)),
        ];
        for (is_cost, set, colour, pts) in curves {
            if !pts.is_empty() {
                let panel = if is_cost { &mut cost } else { &mut accuracy };
                panel.push((name(run, set), colour, pts));
            }
        }
    }
    panel(&left, "Accuracy", "accuracy (%)", &accuracy)?;
    panel(&right, "Cost", "cost", &cost)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_label: &str,
    curves: &[Curve],
) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if curves.is_empty() {
        let style = TextStyle::from((FAMILY, 18).into_font()).color(&BLACK);
        area.draw_text(
            &format!("{caption}: not monitored (train with --monitor train-cost,eval-cost)"),
            &style,
            (40, area.dim_in_pixel().1 as i32 / 2),
        )
        .map_err(text)?;
        return Ok(());
    }
    let all = curves.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-6);
    let keys: Vec<Key> = curves
        .iter()
        .map(|(label, colour, _)| Key {
            label: label.clone(),
            colour: *colour,
            mark: Mark::Line,
        })
        .collect();
    let axes = legend_below(area, &keys)?;
    let mut chart = ChartBuilder::on(&axes)
        .caption(caption, (FAMILY, 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_labels(whole_ticks(0.0, x_max))
        .x_label_formatter(&whole_label)
        .x_max_light_lines(0)
        .x_desc("epoch")
        .y_desc(y_label)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()
        .map_err(text)?;
    for (_, colour, points) in curves {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(text)?;
    }
    Ok(())
}

// Chapter 5's speed of learning (log y) and chapter 3's accuracy against the size of the
// training set (log x): the book's figures that are not accuracy or cost against epoch.

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
