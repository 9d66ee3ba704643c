//! `nndl figure --quick`: every figure script runs on a few hundred images and writes its
//! PNG and CSV; each PNG is read back — its size, a plot area that is not blank, and each
//! series' colour both in the plot and in the legend strip under it — and each CSV parses
//! with the rows its figure needs. `nndl train --monitor-learning-speed` and `nndl plot`
//! draw the speed of learning the same way.

mod common;

use std::path::Path;

use common::*;
use nndl::report::plot::{read_metrics, COLOURS, SERIES_COLOURS};

/// An 8-bit RGB(A) PNG: its width, height and pixels as RGB.
fn read_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

/// Checks `path`'s size, that its middle is not blank, and that each of `colours` appears
/// among the curves (the top four-fifths) and in the legend strip (the bottom 40 rows).
fn check_png(path: &Path, size: (u32, u32), colours: &[[u8; 3]]) {
    let (w, h, pixels) = read_png(path);
    assert_eq!((w, h), size, "{}", path.display());
    let at = |x: u32, y: u32| pixels[(y * w + x) as usize];
    let (mut inked, mut total) = (0, 0);
    for y in h / 4..h * 3 / 4 {
        for x in w / 4..w * 3 / 4 {
            total += 1;
            if at(x, y) != [255, 255, 255] {
                inked += 1;
            }
        }
    }
    assert!(
        inked * 100 > total,
        "{}: the plot area is blank ({inked} of {total} pixels drawn)",
        path.display()
    );
    for &colour in colours {
        let count = |ys: std::ops::Range<u32>| {
            ys.flat_map(|y| (0..w).map(move |x| (x, y)))
                .filter(|&(x, y)| at(x, y) == colour)
                .count()
        };
        let curve = count(0..h * 4 / 5);
        let legend = count(h - 40..h);
        assert!(
            curve > 20 && legend > 20,
            "{}: colour {colour:?} has {curve} pixels in the plot and {legend} in the legend",
            path.display()
        );
    }
}

fn rgb(c: plotters::style::RGBColor) -> [u8; 3] {
    [c.0, c.1, c.2]
}

fn series(n: usize) -> Vec<[u8; 3]> {
    SERIES_COLOURS[..n].iter().map(|&c| rgb(c)).collect()
}

#[test]
fn every_figure_is_drawn_with_its_csv() {
    let dir = temp_dir("figures-quick");
    let data = mnist_path();
    let o = nndl(&[
        "figure",
        "--all",
        "--quick",
        "-o",
        dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    for hidden in 2..=4 {
        let name = format!("generate_gradient-{hidden}-hidden");
        check_png(
            &dir.join(format!("{name}.png")),
            (900, 600),
            &series(hidden),
        );
        let rows = read_metrics(&dir.join(format!("{name}.csv"))).unwrap();
        assert_eq!(rows.len(), 2, "two epochs under --quick");
        assert_eq!(
            rows[0].learning_speed_start.as_ref().unwrap().0.len(),
            hidden
        );
        assert!(rows
            .iter()
            .all(|r| r.learning_speed.as_ref().unwrap().0.len() == hidden));
    }
    assert!(out.contains("(the book: 0.070, 0.310)"), "{out}");
    assert!(
        out.contains("(the book: 0.003, 0.017, 0.070, 0.285)"),
        "{out}"
    );
    check_png(
        &dir.join("weight_initialization.png"),
        (900, 600),
        &series(2),
    );
    check_png(&dir.join("multiple_eta.png"), (900, 600), &series(3));
    check_png(&dir.join("more_data.png"), (900, 600), &series(1));
    let (dark, light) = COLOURS[0];
    check_png(
        &dir.join("overfitting.png"),
        (1400, 600),
        &[rgb(dark), rgb(light)],
    );
    for csv in [
        "weight_initialization-scaled",
        "multiple_eta-2.5",
        "overfitting",
    ] {
        let rows = read_metrics(&dir.join(format!("{csv}.csv"))).unwrap();
        assert_eq!(rows.len(), 2, "{csv}");
    }
    let more = std::fs::read_to_string(dir.join("more_data.csv")).unwrap();
    assert!(more.starts_with("training_images,epochs,lambda,"), "{more}");
    assert_eq!(more.lines().count(), 3, "a header and two sizes: {more}");
}

#[test]
fn unknown_or_missing_figures_are_refused() {
    let o = nndl(&["figure", "no_such_figure", "-o", "/tmp/nndl-never"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no_such_figure"), "{}", stderr(&o));
    let o = nndl(&["figure"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = nndl(&["figure", "--list"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for name in [
        "generate_gradient",
        "weight_initialization",
        "multiple_eta",
        "more_data",
        "overfitting",
    ] {
        assert!(out.contains(name), "{out}");
    }
}

#[test]
fn a_trained_runs_speed_of_learning_is_written_and_plotted() {
    let dir = temp_dir("figures-speed");
    let data = mnist_path();
    let csv = dir.join("run.csv");
    let o = nndl(&[
        "train",
        "--sizes",
        "784,20,20,20,10",
        "--epochs",
        "2",
        "--train-size",
        "300",
        "--monitor-learning-speed",
        "200",
        "--metrics",
        csv.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.contains("Speed of learning before training (hidden layers 1–3): "),
        "{out}"
    );
    let rows = read_metrics(&csv).unwrap();
    assert_eq!(rows[0].learning_speed_start.as_ref().unwrap().0.len(), 3);
    assert!(rows[1].learning_speed_start.is_none());
    let png = dir.join("run.png");
    let o = nndl(&["plot", csv.to_str().unwrap(), "-o", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    check_png(&png, (2100, 600), &series(3));
    // Without the monitor, no speed is measured and the figure keeps its two panels.
    let plain = dir.join("plain.csv");
    let o = nndl(&[
        "train",
        "--epochs",
        "1",
        "--train-size",
        "100",
        "--metrics",
        plain.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read_metrics(&plain)
        .unwrap()
        .iter()
        .all(|r| r.learning_speed.is_none()));
}
