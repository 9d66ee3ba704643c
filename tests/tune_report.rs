//! Showing a study: the table of `nndl tune show` (its header, rows and order by value), the
//! list of studies, the CSV and JSON Lines exports read back, the three figures written as
//! valid PNG and SVG files, and clear errors naming the path or the study.

mod common;

use std::path::{Path, PathBuf};

use nndl::report::plot::PlotError;
use nndl::report::study::{self, ExportError, SortBy};
use nndl::report::study_plot;
use nndl::run::tune_report;
use nndl::run::RunError;
use nndl::tune::space::{Kind, Param, Params, Space, Value};
use nndl::tune::store::{self, StudyResult};
use nndl::tune::study::{StudySpec, Trial, TrialState};

use common::{chain, svg_texts, SvgText};

fn spec(name: &str) -> StudySpec {
    let param = |name: &str, kind| Param {
        name: name.into(),
        kind,
    };
    StudySpec {
        name: name.into(),
        space: Space {
            params: vec![
                param("eta", Kind::Log { lo: 0.01, hi: 10.0 }),
                param("hidden", Kind::IntLog { lo: 10, hi: 200 }),
                param(
                    "mini-batch",
                    Kind::Choice {
                        choices: vec!["5".into(), "10".into(), "20".into()],
                    },
                ),
                param("lambda", Kind::Float { lo: 0.0, hi: 5.0 }),
            ],
        },
        sampler: "tpe".into(),
        base: serde_json::json!({"net": "network3", "epochs": 3}),
    }
}

/// The trials the study is built from: (state, per-epoch values, worker, parameters).
fn plan() -> Vec<(TrialState, Vec<f64>, &'static str, Params)> {
    let params = |eta: f64, hidden: i64, batch: &str, lambda: f64| {
        Params::from([
            ("eta".to_string(), Value::Float(eta)),
            ("hidden".to_string(), Value::Int(hidden)),
            ("mini-batch".to_string(), Value::Choice(batch.into())),
            ("lambda".to_string(), Value::Float(lambda)),
        ])
    };
    vec![
        (
            TrialState::Complete,
            vec![90.0, 94.0, 93.0],
            "w1",
            params(0.5, 30, "10", 1.0),
        ),
        (
            TrialState::Pruned,
            vec![85.0],
            "w2",
            params(0.02, 12, "5", 4.5),
        ),
        (
            TrialState::Complete,
            vec![91.0, 95.5],
            "w1",
            params(3.0, 100, "20", 0.1),
        ),
        (
            TrialState::Failed,
            vec![80.0, 70.0],
            "w2",
            params(9.0, 50, "5", 2.0),
        ),
        (
            TrialState::Running,
            vec![92.0],
            "w1",
            params(0.1, 150, "10", 3.0),
        ),
        (
            TrialState::Complete,
            vec![96.0, 96.0],
            "w2",
            params(1.0, 60, "20", 5.0),
        ),
    ]
}

/// Why the failed trial of [`plan`] failed.
const FAILURE: &str = "diverged in epoch 1 (eta 9)";

/// A SQLite store holding the study `name` built from [`plan`], its result recorded; its URL.
fn build(test: &str, name: &str) -> (PathBuf, String) {
    let dir = common::temp_dir(&format!("tune-report-{test}"));
    let url = format!("sqlite:{}", dir.join("study.db").display());
    let mut store = store::open(&url).unwrap_or_else(|e| panic!("{}", chain(&e)));
    let study = store.open_study(&spec(name)).unwrap();
    for (number, (state, values, worker, params)) in plan().into_iter().enumerate() {
        let mut sample = |n: u32, _: &[Trial]| {
            assert_eq!(n as usize, number);
            Some(params.clone())
        };
        let trial = store
            .start_trial(study, worker, 100, &mut sample)
            .unwrap()
            .unwrap();
        for (epoch, &value) in values.iter().enumerate() {
            assert!(store
                .report_epoch(
                    study,
                    trial.number,
                    worker,
                    epoch,
                    value,
                    1.5,
                    b"checkpoint"
                )
                .unwrap());
        }
        match state {
            TrialState::Running => {}
            TrialState::Failed => {
                assert!(store.fail(study, trial.number, worker, FAILURE).unwrap())
            }
            _ => assert!(store.finish(study, trial.number, worker, state).unwrap()),
        }
    }
    store
        .set_study_result(
            study,
            &StudyResult {
                trial: 5,
                validation: 96.0,
                test: 95.8,
            },
        )
        .unwrap();
    (dir, url)
}

fn read_back(url: &str, name: &str) -> (StudySpec, Vec<Trial>, Option<StudyResult>) {
    let mut store = store::open(url).unwrap();
    let info = store
        .studies()
        .unwrap()
        .into_iter()
        .find(|s| s.spec.name == name)
        .unwrap();
    let trials = store.trials(info.id).unwrap();
    (info.spec, trials, info.result)
}

#[test]
fn the_table_has_a_header_the_result_and_a_row_per_trial_sorted_by_value() {
    let (_dir, url) = build("table", "ch3");
    let (spec, trials, result) = read_back(&url, "ch3");
    let text = study::table(&spec, &trials, result.as_ref(), SortBy::Value);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Study ch3 (sampler tpe): 6 trials: 3 complete, 1 pruned, 1 failed, 1 running"
    );
    assert_eq!(
        lines[1],
        "Best trial 5: validation 96.00%, test 95.80%, eta=1 hidden=60 mini-batch=20 lambda=5"
    );
    let head: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        head,
        [
            "trial",
            "state",
            "best",
            "%",
            "at",
            "epoch",
            "epochs",
            "seconds",
            "worker",
            "eta",
            "hidden",
            "mini-batch",
            "lambda"
        ]
    );
    let rows: Vec<Vec<&str>> = lines[3..9]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Last, why the failed trial failed.
    assert_eq!(lines[9..], [format!("Trial 3 failed: {FAILURE}")]);
    // Complete and pruned by best value, highest first; then failed and running by number.
    let order: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(order, ["5", "2", "0", "1", "3", "4"]);
    assert_eq!(
        rows[2],
        ["0", "complete", "94.00", "1", "3", "4.5", "w1", "0.5", "30", "10", "1"]
    );
    assert_eq!(rows[0][3], "0", "the first of equal epochs");
    assert_eq!(rows[3][1], "pruned");
    assert_eq!(rows[5][..5], ["4", "running", "92.00", "0", "1"]);

    let by_number = study::table(&spec, &trials, None, SortBy::Number);
    let lines: Vec<&str> = by_number.lines().collect();
    assert!(!lines[1].starts_with("Best trial"), "no result, no line");
    let order: Vec<&str> = lines[2..8]
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(order, ["0", "1", "2", "3", "4", "5"]);
    assert_eq!(lines[8..], [format!("Trial 3 failed: {FAILURE}")]);
}

#[test]
fn the_study_list_names_each_study_with_its_best() {
    let (_dir, url) = build("list", "first");
    let mut store = store::open(&url).unwrap();
    let mut second = spec("second");
    second.sampler = "random".into();
    let id = store.open_study(&second).unwrap();
    let mut sample = |_: u32, _: &[Trial]| Some(Params::new());
    let t = store.start_trial(id, "w", 5, &mut sample).unwrap().unwrap();
    store
        .report_epoch(id, t.number, "w", 0, 88.0, 1.0, b"")
        .unwrap();
    store
        .finish(id, t.number, "w", TrialState::Complete)
        .unwrap();
    let mut all = Vec::new();
    for info in store.studies().unwrap() {
        let trials = store.trials(info.id).unwrap();
        all.push((info, trials));
    }
    let text = study::study_list(&all);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "first (sampler tpe): 6 trials: 3 complete, 1 pruned, 1 failed, 1 running; \
             best trial 5: validation 96.00%, test 95.80%",
            "second (sampler random): 1 trial: 1 complete; \
             best trial 0: validation 88.00% at epoch 0",
        ]
    );
    tune_report::show(&url, None, SortBy::Number).unwrap();
    tune_report::show(&url, Some("first"), SortBy::Value).unwrap();
}

#[test]
fn unknown_studies_and_missing_databases_are_usage_errors() {
    let (dir, url) = build("unknown", "ch3");
    let err = tune_report::show(&url, Some("ch4"), SortBy::Number).unwrap_err();
    assert!(matches!(err, RunError::NoStudy { .. }), "{err:?}");
    assert!(err.is_usage());
    let message = err.to_string();
    assert!(
        message.contains("\"ch4\"") && message.contains("its studies are ch3"),
        "{message}"
    );

    let missing = dir.join("typo.db");
    let err = tune_report::show(
        &format!("sqlite:{}", missing.display()),
        None,
        SortBy::Number,
    )
    .unwrap_err();
    assert!(matches!(err, RunError::NoStore(_)), "{err:?}");
    assert!(err.is_usage());
    assert!(err.to_string().contains(&missing.display().to_string()));
    assert!(!missing.exists(), "showing must not create a database");
}

#[test]
fn csv_export_reads_back_one_row_per_trial() {
    let (dir, url) = build("csv", "ch3");
    let out = dir.join("trials.csv");
    tune_report::export(&url, "ch3", &out).unwrap();
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let head: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        head,
        [
            "number",
            "state",
            "best_value",
            "best_epoch",
            "epochs",
            "seconds",
            "worker",
            "eta",
            "hidden",
            "mini-batch",
            "lambda",
            "message"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 6);
    for (number, ((state, values, worker, params), row)) in plan().iter().zip(&rows).enumerate() {
        let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let best_epoch = values.iter().position(|&v| v == best).unwrap();
        assert_eq!(row[0], number.to_string());
        assert_eq!(row[1], format!("{state:?}").to_lowercase());
        assert_eq!(row[2].parse::<f64>().unwrap(), best);
        assert_eq!(row[3], best_epoch.to_string());
        assert_eq!(row[4], values.len().to_string());
        assert_eq!(row[5].parse::<f64>().unwrap(), 1.5 * values.len() as f64);
        assert_eq!(row[6], *worker);
        assert_eq!(row[7].parse::<f64>().ok(), params["eta"].as_f64());
        assert_eq!(row[8].parse::<i64>().ok(), params["hidden"].as_i64());
        assert_eq!(row[9], params["mini-batch"].to_string());
        assert_eq!(row[10].parse::<f64>().ok(), params["lambda"].as_f64());
        let message = if *state == TrialState::Failed {
            FAILURE
        } else {
            ""
        };
        assert_eq!(row[11], message);
    }
    assert!(!dir.join("trials.csv.tmp").exists());
}

#[test]
fn jsonl_export_keeps_every_epoch() {
    let (dir, url) = build("jsonl", "ch3");
    let out = dir.join("trials.jsonl");
    tune_report::export(&url, "ch3", &out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    for (number, ((state, values, worker, params), row)) in plan().iter().zip(&rows).enumerate() {
        assert_eq!(row["number"], number);
        assert_eq!(row["state"], format!("{state:?}").to_lowercase());
        assert_eq!(row["values"], serde_json::json!(values));
        assert_eq!(row["epochs"], values.len());
        assert_eq!(row["worker"], *worker);
        assert_eq!(row["params"], serde_json::to_value(params).unwrap());
        let message = (*state == TrialState::Failed).then_some(FAILURE);
        assert_eq!(row["message"], serde_json::json!(message));
    }
    assert_eq!(rows[5]["best_value"], 96.0);
    assert_eq!(rows[5]["best_epoch"], 0);
}

#[test]
fn exports_refuse_unknown_extensions_and_name_an_unwritable_path() {
    let (dir, url) = build("export-bad", "ch3");
    let gif = dir.join("trials.xlsx");
    let err = tune_report::export(&url, "ch3", &gif).unwrap_err();
    assert!(
        matches!(err, RunError::Export(ExportError::Format(_))),
        "{err:?}"
    );
    assert!(err.is_usage());
    assert!(err.to_string().contains(&gif.display().to_string()));
    assert!(!gif.exists());

    let nowhere = dir.join("no-such-dir").join("trials.csv");
    let err = tune_report::export(&url, "ch3", &nowhere).unwrap_err();
    assert!(
        matches!(err, RunError::Export(ExportError::Write { .. })),
        "{err:?}"
    );
    assert!(!err.is_usage());
    assert!(chain(&err).contains(&nowhere.display().to_string()));
}

/// The PNG signature, and a full decode by the `png` crate: its size.
fn decode_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let mut reader = png::Decoder::new(bytes.as_slice()).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    // Not a blank canvas: some pixels are not white.
    assert!(pixels[..frame.buffer_size()].iter().any(|&b| b < 200));
    (frame.width, frame.height)
}

#[test]
fn the_three_figures_are_written_as_png() {
    let (dir, url) = build("png", "ch3");
    let paths = tune_report::plot(&url, "ch3", &dir.join("fig")).unwrap();
    let want: Vec<PathBuf> = ["history", "params", "curves"]
        .iter()
        .map(|f| dir.join(format!("fig-{f}.png")))
        .collect();
    assert_eq!(paths, want);
    for path in &paths {
        let (w, h) = decode_png(path);
        assert!(w >= 800 && h >= 500, "{}: {w}×{h}", path.display());
    }
    // A directory gets the study's name.
    let paths = tune_report::plot(&url, "ch3", &dir).unwrap();
    assert_eq!(paths[0], dir.join("ch3-history.png"));
    for path in &paths {
        decode_png(path);
    }
    // Figures are drawn beside their place and renamed into it: no temporary file is left.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_three_figures_are_written_as_svg_with_their_labels() {
    let (dir, url) = build("svg", "ch3");
    let paths = tune_report::plot(&url, "ch3", &dir.join("fig.svg")).unwrap();
    let read = |i: usize| {
        assert_eq!(paths[i].extension().unwrap(), "svg");
        let text = std::fs::read_to_string(&paths[i]).unwrap();
        assert!(text.contains("<svg"), "{}", paths[i].display());
        text
    };
    let history = read(0);
    let texts = svg_texts(&history);
    let has = |texts: &[SvgText], want: &str| texts.iter().any(|t| t.text == want);
    for want in [
        "ch3: optimisation history",
        "best so far",
        "pruned",
        "trial",
    ] {
        assert!(has(&texts, want), "{want} missing from the history");
    }
    // Trials 0 to 5 on the x axis, each a whole number.
    let ticks: Vec<&str> = texts
        .iter()
        .filter(|t| t.anchor == "middle" && t.text.parse::<f64>().is_ok())
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(ticks, ["0", "1", "2", "3", "4", "5"]);
    let params = read(1);
    let texts = svg_texts(&params);
    for want in ["eta (log)", "hidden (log)", "mini-batch", "lambda"] {
        assert!(has(&texts, want), "{want} missing from the parameters");
    }
    // The choices label their positions, in the order given.
    let choices: Vec<&str> = texts
        .iter()
        .filter(|t| ["5", "10", "20"].contains(&t.text.as_str()))
        .filter(|t| t.anchor == "middle")
        .map(|t| t.text.as_str())
        .collect();
    assert!(
        choices.windows(3).any(|w| w == ["5", "10", "20"]),
        "{choices:?}"
    );
    let curves = read(2);
    let texts = svg_texts(&curves);
    for want in [
        "best: trial 5",
        "complete",
        "pruned",
        "failed",
        "running",
        "epoch",
    ] {
        assert!(has(&texts, want), "{want} missing from the curves");
    }
    // The failed trial is dashed: many short segments of its colour.
    assert!(curves.matches("#FCA0A0").count() > 3);
}

#[test]
fn figures_refuse_unknown_extensions_and_name_an_unwritable_path() {
    let (dir, url) = build("plot-bad", "ch3");
    let gif = dir.join("fig.gif");
    let err = tune_report::plot(&url, "ch3", &gif).unwrap_err();
    assert!(
        matches!(err, RunError::Plot(PlotError::Format(_))),
        "{err:?}"
    );
    assert!(err.is_usage());
    assert!(err.to_string().contains(&gif.display().to_string()));

    let (spec, trials, _) = read_back(&url, "ch3");
    let nowhere = dir.join("no-such-dir").join("history.png");
    for draw in [study_plot::history, study_plot::params, study_plot::curves] {
        let err = draw(&spec, &trials, &nowhere).unwrap_err();
        assert!(matches!(err, PlotError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains(&nowhere.display().to_string()));
    }
    // A figure that cannot be replaced leaves the file in its place as it was.
    let taken = dir.join("taken.svg");
    std::fs::create_dir(&taken).unwrap();
    assert!(study_plot::curves(&spec, &trials, &taken).is_err());
    assert!(taken.is_dir());
    assert!(!dir.join("taken.tmp.svg").exists());
    // A study with no finished epoch has nothing to draw.
    let fresh: Vec<Trial> = Vec::new();
    assert!(matches!(
        study_plot::history(&spec, &fresh, &dir.join("h.svg")),
        Err(PlotError::Empty(_))
    ));
}

/// `tune list` lists the studies; `tune delete` deletes one only when confirmed: without a
/// terminal to ask on, `--yes` is required (exit 2 and nothing deleted otherwise).
#[test]
fn studies_are_listed_and_deleted_only_with_yes() {
    let (_dir, url) = build("delete", "ch3");
    let (code, out, err) = common::nndl_outcome(&["tune", "list", "--storage", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ch3"), "{out}");
    // The test's standard input is not a terminal.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(["tune", "delete", "ch3", "--storage", &url])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(
        common::stderr(&o).contains("--yes"),
        "{}",
        common::stderr(&o)
    );
    assert_eq!(read_back(&url, "ch3").1.len(), plan().len());
    let (code, out, err) =
        common::nndl_outcome(&["tune", "delete", "ch3", "--yes", "--storage", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Deleted study ch3"), "{out}");
    let mut store = store::open(&url).unwrap();
    assert!(store.studies().unwrap().is_empty());
}

/// Reading commands refuse a file that is not a study store and leave it as it was; an
/// old-layout store names the command that converts it.
#[test]
fn reading_commands_refuse_other_databases_unchanged() {
    let dir = common::temp_dir("tune-report-not-a-store");
    let empty = common::write_file(&dir, "empty.db", b"");
    let url = format!("sqlite:{}", empty.display());
    let (code, _, err) = common::nndl_outcome(&["tune", "show", "--storage", &url]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not an nndl study database"), "{err}");
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
}
