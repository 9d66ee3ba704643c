//! Figures from metrics files: PNG and SVG with the title, axes and legend, and clear errors.

mod common;

use common::*;
use nndl::report::metrics::Row;
use nndl::report::plot::{plot, read_metrics, PlotError, Run};

fn rows(n: usize, monitored: bool) -> Vec<Row> {
    (0..n)
        .map(|e| Row {
            epoch: e,
            elapsed: e as f64,
            eta: 0.5,
            evaluation_correct: 8000 + e,
            evaluation_total: 10_000,
            evaluation_accuracy: 80.0 + e as f64 / 100.0,
            evaluation_cost: monitored.then(|| 1.0 + e as f64 / 100.0),
            training_cost: monitored.then(|| 1.0 / (1.0 + e as f64)),
            training_correct: monitored.then_some(900 + e),
            training_total: 1000,
            training_accuracy: monitored.then(|| 90.0 + e as f64 / 10.0),
            train_seconds: 0.1,
            eval_seconds: 0.01,
            learning_speed_start: None,
            learning_speed: None,
        })
        .collect()
}

#[test]
fn png_and_svg_figures_are_drawn() {
    let dir = temp_dir("plot-draw");
    let runs = [
        Run {
            label: "plain".into(),
            rows: rows(40, true),
            scored: "validation",
        },
        Run {
            label: "regularised".into(),
            rows: rows(30, false),
            scored: "test",
        },
    ];
    let png = dir.join("fig.png");
    plot(&runs, "A title", &png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert_eq!((width, height), (1400, 600));

    let svg = dir.join("fig.svg");
    plot(&runs, "A title", &svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    for want in [
        "A title",
        "Accuracy",
        "Cost",
        "epoch",
        "accuracy (%)",
        "plain validation",
        "plain training",
        "regularised test",
    ] {
        assert!(text.contains(want), "{want} missing from the SVG");
    }
    // Each curve is named by the set it scores, not "evaluation".
    assert!(!text.contains("evaluation"));
    // The unmonitored run has no training curve.
    assert!(!text.contains("regularised training"));
}

/// The x axis's tick labels: the numbers centred under the axes (the y axis's are right-aligned).
fn x_ticks(texts: &[SvgText]) -> Vec<&str> {
    texts
        .iter()
        .filter(|t| t.anchor == "middle" && t.text.parse::<f64>().is_ok())
        .map(|t| t.text.as_str())
        .collect()
}

#[test]
fn epochs_are_ticked_whole_and_the_legend_is_under_the_axes() {
    let dir = temp_dir("plot-ticks");
    let svg = dir.join("fig.svg");
    let run = |n| {
        [Run {
            label: "a".into(),
            rows: rows(n, false),
            scored: "validation",
        }]
    };
    plot(&run(3), "t", &svg).unwrap();
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    assert_eq!(x_ticks(&texts), ["0", "1", "2"]);
    // The legend is below every tick label and the axis's name, not over the curves.
    let lowest = texts
        .iter()
        .filter(|t| t.text == "epoch" || t.text.parse::<f64>().is_ok())
        .map(|t| t.y)
        .fold(f64::NEG_INFINITY, f64::max);
    let legend = texts.iter().find(|t| t.text == "validation").unwrap();
    assert!(legend.y > lowest, "legend at y {} above {lowest}", legend.y);

    // Longer runs: fewer ticks, still whole epochs.
    for n in [2, 7, 12, 31] {
        plot(&run(n), "t", &svg).unwrap();
        let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
        let ticks = x_ticks(&texts);
        assert!(
            ticks.len() >= 2 && ticks.len() <= 11,
            "{n} epochs: {ticks:?}"
        );
        for tick in &ticks {
            let epoch: usize = tick
                .parse()
                .unwrap_or_else(|_| panic!("{n} epochs: {ticks:?}"));
            assert!(epoch < n, "{n} epochs: {ticks:?}");
        }
        assert_eq!(ticks[0], "0");
    }
}

#[test]
fn metrics_files_are_read_back() {
    let dir = temp_dir("plot-read");
    let path = dir.join("run.jsonl");
    let lines: Vec<String> = rows(5, true)
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    assert_eq!(read_metrics(&path).unwrap(), rows(5, true));
    let bad = write_file(&dir, "bad.csv", b"epoch,elapsed\nx,y\n");
    assert!(matches!(read_metrics(&bad), Err(PlotError::Parse { .. })));
    assert!(matches!(
        read_metrics(&dir.join("none.csv")),
        Err(PlotError::Read { .. })
    ));
}

#[test]
fn bad_figures_are_refused() {
    let dir = temp_dir("plot-bad");
    let run = [Run {
        label: "a".into(),
        rows: rows(3, false),
        scored: "test",
    }];
    assert!(matches!(
        plot(&run, "t", &dir.join("fig.jpg")),
        Err(PlotError::Format(_))
    ));
    let empty = [Run {
        label: "a".into(),
        rows: vec![],
        scored: "test",
    }];
    assert!(matches!(
        plot(&empty, "t", &dir.join("fig.png")),
        Err(PlotError::Empty(_))
    ));
}

#[test]
fn train_and_plot_commands_write_figures() {
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("plot-cli");
    let (csv, png, svg) = (
        dir.join("run.csv"),
        dir.join("train.png"),
        dir.join("plot.svg"),
    );
    let (csv, png, svg) = (
        csv.to_str().unwrap(),
        png.to_str().unwrap(),
        svg.to_str().unwrap(),
    );
    let o = nndl(&[
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "3",
        "--mini-batch",
        "2",
        "--quiet",
        "--monitor",
        "train-acc",
        "--metrics",
        csv,
        "--plot",
        png,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("Epoch 0:"),
        "--quiet printed epochs"
    );
    assert!(std::fs::metadata(png).unwrap().len() > 1000);
    let o = nndl(&["plot", csv, "-o", svg]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(svg).unwrap();
    assert!(text.contains("\nrun\n"), "the title is the file's name");
    assert_eq!(nndl(&["plot", csv, "-o", "fig.gif"]).status.code(), Some(2));
}

/// `train --plot`'s legend names the set its title says was scored.
#[test]
fn the_legend_names_the_set_the_run_scored() {
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("plot-scored");
    for set in ["validation", "test"] {
        let svg = dir.join(format!("{set}.svg"));
        let o = nndl(&[
            "--data",
            small.to_str().unwrap(),
            "--epochs",
            "2",
            "--mini-batch",
            "2",
            "--quiet",
            "--monitor",
            "train-acc,eval-cost",
            "--eval-on",
            set,
            "--plot",
            svg.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
        let title = &texts[0].text;
        assert!(title.ends_with(&format!("evaluated on {set}")), "{title}");
        let named: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
        // Its accuracy and its cost curve.
        assert_eq!(named.iter().filter(|&&t| t == set).count(), 2, "{named:?}");
        assert!(named.contains(&"training"), "{named:?}");
        assert!(!named.contains(&"evaluation"), "{named:?}");
    }
}
