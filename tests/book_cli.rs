//! `nndl book` from the command line: the list of rows, a shortened row with its verdict
//! withheld, and bad rows refused.

mod common;

use common::*;

#[test]
fn the_list_names_every_row_with_the_books_figure() {
    let o = nndl(&["book", "--list"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    for (row, figure) in [
        ("ch1", "95.42"),
        ("ch1-darkness", "22.25"),
        ("ch5-1-hidden", "96.48"),
        ("ch5-2-hidden", "96.90"),
        ("ch5-3-hidden", "96.57"),
        ("ch5-4-hidden", "96.53"),
        ("ch3-overfitting", "82.27"),
        ("ch6-two-conv", "99.06"),
        ("ch6-relu", "99.23"),
        ("ch6-vote", "99.67"),
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(row))
            .unwrap_or_else(|| panic!("no row {row}: {out}"));
        assert!(line.contains(figure), "{row}: {line}");
    }
}

#[test]
fn a_shortened_row_runs_and_withholds_its_verdict() {
    let data = mnist_path();
    let o = nndl(&[
        "book",
        "ch6-fc",
        "--epochs",
        "1",
        "--data",
        data.to_str().unwrap(),
    ]);
    let out = succeeded(&o);
    // network3.py's protocol: each epoch scores the validation set, and its line says so.
    assert!(out.contains("\nEpoch 0: validation accuracy "), "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.starts_with("ch6-fc: book 97.80%, nndl "), "{out}");
    assert!(
        last.contains("(test accuracy at the best validation epoch, 1 epoch, "),
        "{last}"
    );
    assert!(
        last.ends_with("shortened to 1 of the book's 60 epochs: no verdict"),
        "{last}"
    );
    // One epoch of FC-100 on all 50,000 images is well past 90%.
    let accuracy: f64 = figure(&out)
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("{last}"));
    assert!(accuracy > 90.0, "{last}");
}

/// The book's figure exactly: 2,225 of the 10,000 test images (its text says 22.25%).
#[test]
fn the_average_darkness_baseline_guesses_as_the_books() {
    let data = mnist_path();
    let o = nndl(&["book", "ch1-darkness", "--data", data.to_str().unwrap()]);
    let out = succeeded(&o);
    assert!(
        out.contains("2225 of 10000 test images guessed right"),
        "{out}"
    );
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ch1-darkness: book 22.25%, nndl 22.25% (test accuracy, "),
        "{last}"
    );
    assert!(last.ends_with("— reproduced (within 0.3 points of the book, or better)"));
    let o = nndl(&["book", "ch1-darkness", "--save", "x.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("trains no network"), "{}", stderr(&o));
}

#[test]
fn bad_rows_are_refused() {
    for (args, want) in [
        (&["book", "ch6-nope"][..], "ch6-nope"),
        (&["book", "ch6-fc", "--epochs", "0"][..], "epochs"),
    ] {
        let o = nndl(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn a_row_saves_the_network_its_figure_comes_from() {
    let dir = temp_dir("book-save");
    let model = dir.join("overfitting.json");
    let data = mnist_path();
    let o = nndl(&[
        "book",
        "ch3-overfitting",
        "--epochs",
        "3",
        "--data",
        data.to_str().unwrap(),
        "--save",
        model.to_str().unwrap(),
    ]);
    let out = succeeded(&o);
    assert!(out.contains(&format!("to {}", model.display())), "{out}");
    // The row's figure is its best epoch's test accuracy: the saved network scores it again.
    let figure = figure(&out);
    let o = nndl(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let scored = succeeded(&o);
    assert!(
        scored.contains(&format!("({figure})")),
        "book: {figure}; eval: {scored}"
    );
}

#[test]
fn a_save_path_that_cannot_be_written_is_refused_before_training() {
    let dir = temp_dir("book-save-refused");
    // A vote row checks each of its five files; the fourth's name is taken by a directory.
    std::fs::create_dir_all(dir.join("nets-4.json")).unwrap();
    for (row, path, named) in [
        (
            "ch3-overfitting",
            dir.join("missing").join("net.json"),
            "net.json",
        ),
        ("ch6-vote", dir.join("nets.json"), "nets-4.json"),
    ] {
        let o = nndl(&["book", row, "--save", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{row}: {err}");
        assert!(err.contains("cannot write"), "{row}: {err}");
        assert!(err.contains(named), "{row}: {err}");
    }
    assert!(!dir.join("nets-1.json").exists());
}

#[test]
fn a_votes_saved_networks_vote_as_the_row_did() {
    let dir = temp_dir("book-vote");
    let sets = [
        RawSet::new(200, 0),
        RawSet::new(50, 200),
        RawSet::new(100, 250),
    ];
    let data = write_file(&dir, "small.pkl.gz", &gzip(&py2_mnist(&sets)));
    let data = data.to_str().unwrap();
    let nets = dir.join("net.json");
    // In f64, so that `nndl vote` (which computes in f64) sees the very same networks.
    let o = nndl(&[
        "book",
        "ch6-vote",
        "--epochs",
        "1",
        "--precision",
        "f64",
        "--data",
        data,
        "--expanded",
        data,
        "--save",
        nets.to_str().unwrap(),
    ]);
    let out = succeeded(&o);
    let figure = figure(&out);
    let models: Vec<String> = (1..=5)
        .map(|k| dir.join(format!("net-{k}.json")).display().to_string())
        .collect();
    let mut args = vec!["vote", "--data", data];
    for m in &models {
        args.extend(["--model", m.as_str()]);
    }
    let o = nndl(&args);
    let voted = succeeded(&o);
    let last = voted.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Majority vote of 5 networks on the test data:"),
        "{voted}"
    );
    assert!(
        last.ends_with(&format!("({figure})")),
        "book: {figure}; vote: {last}"
    );
}

/// The standard output of a run that must have succeeded.
fn succeeded(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(o));
    out
}

/// nndl's figure in the verdict line that ends a `nndl book` run ("… nndl 98.95% (…").
fn figure(out: &str) -> String {
    out.lines()
        .last()
        .and_then(|l| l.split("nndl ").nth(1))
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

/// `nndl book --rows … --record R --table T` with the rest of `args`, in `dir`.
fn rows(dir: &std::path::Path, rows: &str, args: &[&str]) -> std::process::Output {
    let data = mnist_path();
    let mut all = vec![
        "book",
        "--rows",
        rows,
        "--data",
        data.to_str().unwrap(),
        "--record",
        dir.join("record.json").to_str().unwrap().to_owned().leak(),
        "--table",
        dir.join("table.md").to_str().unwrap().to_owned().leak(),
    ];
    all.extend_from_slice(args);
    nndl(&all)
}

/// Runs two rows in two sittings, as after a stop: the second skips the row the first
/// recorded, and the table holds both, in the book's order, with the totals under it.
#[test]
fn rows_are_recorded_skipped_when_done_and_tabled() {
    let dir = temp_dir("book-rows");
    let first = succeeded(&rows(&dir, "ch3-overfitting", &["--epochs", "1"]));
    assert!(!first.contains("skipped"), "{first}");
    // The epoch lines name the set they score: this row's figure is a test accuracy.
    assert!(first.contains("Epoch 0: test accuracy "), "{first}");
    let record = std::fs::read_to_string(dir.join("record.json")).unwrap();
    assert!(record.contains("\"row\": \"ch3-overfitting\""), "{record}");
    let second = succeeded(&rows(&dir, "ch3-overfitting,ch1", &["--epochs", "1"]));
    let skipped = second.lines().next().unwrap_or_default();
    assert!(
        skipped.starts_with("ch3-overfitting: skipped, recorded in "),
        "{second}"
    );
    assert_eq!(second.matches("(chapter ").count(), 1, "{second}");
    assert!(second.contains("ch1: book 95.42%"), "{second}");
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("| row | book | nndl |"), "{table}");
    assert!(lines[2].starts_with("| ch1 | 95.42% | "), "{table}");
    assert!(
        lines[3].starts_with("| ch3-overfitting | 82.27% | "),
        "{table}"
    );
    assert!(
        lines[3].contains("| best test epoch | 1 of 400 | "),
        "{table}"
    );
    assert!(lines[3].ends_with("| shortened: no verdict |"), "{table}");
    assert!(
        table.contains("2 of the book's 19 rows recorded"),
        "{table}"
    );
    assert!(
        table.contains("Seed 0. Precision: f64 for chapters 1, 3."),
        "{table}"
    );
    // The table again from the record alone, training nothing.
    std::fs::remove_file(dir.join("table.md")).unwrap();
    let again = nndl(&[
        "book",
        "--record",
        dir.join("record.json").to_str().unwrap(),
        "--table",
        dir.join("table.md").to_str().unwrap(),
    ]);
    let out = succeeded(&again);
    assert!(!out.contains("Epoch"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.join("table.md")).unwrap(),
        table
    );
    // Other settings: the recorded row is not reused, and the message says why.
    let third = succeeded(&rows(&dir, "ch3-overfitting", &["--epochs", "2"]));
    assert!(
        third.contains("ch3-overfitting: recorded in ".to_owned().as_str())
            && third.contains("with seed 0, f64, 1 epochs, not seed 0, f64, 2 epochs: not reused"),
        "{third}"
    );
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("| 2 of 400 |"), "{table}");
}

/// `nndl book --rows ROWS --record RECORD` started, returned once the first row is recorded.
fn recording(rows: &str, record: &std::path::Path) -> std::process::Child {
    use std::process::{Command, Stdio};
    let data = mnist_path();
    let child = Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(["book", "--rows", rows, "--data", data.to_str().unwrap()])
        .arg("--record")
        .arg(record)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !record.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no record"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// A record killed mid-row keeps every row finished before: the rerun skips them.
#[test]
fn a_killed_run_keeps_the_rows_it_finished() {
    let dir = temp_dir("book-rows-killed");
    let record = dir.join("record.json");
    let mut child = recording("ch1-darkness,ch3-overfitting", &record);
    // ch3-overfitting's 400 epochs are under way: kill -9.
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.contains("ch1-darkness") && !text.contains("ch3-overfitting"),
        "{text}"
    );
    let data = mnist_path();
    let o = nndl(&[
        "book",
        "--rows",
        "ch1-darkness",
        "--data",
        data.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
    ]);
    let out = succeeded(&o);
    assert!(
        out.starts_with("ch1-darkness: skipped, recorded in "),
        "{out}"
    );
    assert!(out.contains("nndl 22.25% — reproduced"), "{out}");
}

#[test]
fn a_record_that_is_not_one_is_refused() {
    let dir = temp_dir("book-record-refused");
    let table = dir.join("table.md");
    let entry = r#"{"row": "ch1", "settings": {"seed": 0, "precision": "f64", "epochs": 30},
        "book": 95.42, "nndl": NNDL, "verdict": "VERDICT", "seconds": 11.0, "threads": 1,
        "backend": "b", "machine": "m", "date": "2026-12-06"}"#;
    let record =
        |rows: &str| format!(r#"{{"format": "nndl book record", "version": 1, "rows": [{rows}]}}"#);
    let good = entry
        .replace("NNDL", "95.05")
        .replace("VERDICT", "not-reproduced");
    // A network of an unfinished vote, kept.
    let network = r#"{"row": "ch6-vote", "settings": {"seed": 0, "precision": "f32", "epochs": 40},
        "network": 2, "nndl": 99.5, "seconds": 2000.0, "threads": 2, "backend": "b", "machine": "m",
        "date": "2026-12-06", "predictions": "7210414959"}"#;
    let kept = |networks: &str| {
        format!(
            r#"{{"format": "nndl book record", "version": 1, "rows": [{good}], "networks": [{networks}]}}"#
        )
    };
    for (name, text, want) in [
        ("truncated", record(&good)[..60].to_string(), "not JSON"),
        (
            "model",
            r#"{"sizes": [784, 30, 10], "weights": []}"#.to_string(),
            "no \"format\"",
        ),
        (
            "version",
            record(&good).replace("\"version\": 1", "\"version\": 7"),
            "version is 7",
        ),
        (
            "row",
            record(&good.replace("\"ch1\"", "\"ch9\"")),
            "unknown row \"ch9\"",
        ),
        (
            "twice",
            record(&format!("{good}, {good}")),
            "ch1 is recorded twice",
        ),
        (
            "accuracy",
            record(
                &entry
                    .replace("NNDL", "1e9")
                    .replace("VERDICT", "reproduced"),
            ),
            "accuracy",
        ),
        (
            "verdict",
            record(&entry.replace("NNDL", "90").replace("VERDICT", "reproduced")),
            "does not follow",
        ),
        (
            "field",
            record(&good.replace("\"date\"", "\"when\"")),
            "unknown field",
        ),
        (
            "not-a-vote",
            kept(&network.replace("ch6-vote", "ch1")),
            "ch1 is not a vote",
        ),
        (
            "network-number",
            kept(&network.replace("\"network\": 2", "\"network\": 6")),
            "\"networks\", ch6-vote network 6: ch6-vote has 5 networks",
        ),
        (
            "predictions",
            kept(&network.replace("72104", "721x4")),
            "ch6-vote network 2: its predictions are not a string of digits",
        ),
        (
            "from",
            kept(&network.replace(
                "\"network\": 2",
                "\"network\": 2, \"from\": \"ch6-dropout\"",
            )),
            "ch6-vote network 2: it is not ch6-dropout's network",
        ),
        (
            "network-twice",
            kept(&format!("{network}, {network}")),
            "ch6-vote's network 2 is recorded twice with the same settings",
        ),
    ] {
        let path = write_file(&dir, &format!("{name}.json"), text.as_bytes());
        for args in [
            vec!["book", "--table", table.to_str().unwrap()],
            vec!["book", "--rows", "ch1", "--epochs", "1"],
        ] {
            let mut args = args.clone();
            args.extend(["--record", path.to_str().unwrap()]);
            let o = nndl(&args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{name}: {err}");
            assert!(
                err.contains("not a record of `nndl book`'s rows"),
                "{name}: {err}"
            );
            assert!(err.contains(want), "{name}: {err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{name}");
        }
    }
    assert!(!table.exists());
    // A record with nothing in it has no table to give.
    let o = nndl(&[
        "book",
        "--record",
        dir.join("none.json").to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("records no row"), "{}", stderr(&o));
}

#[test]
fn conflicting_options_are_refused() {
    let before = book_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    for args in [
        &["book", "ch1", "--rows", "ch1"][..],
        &["book", "ch1", "--all"],
        &["book", "--rows", "ch1", "--all"],
        &["book", "--rows", "ch1", "--save", "x.json"],
        &["book", "--all", "--save", "x.json"],
        &["book", "--list", "--rows", "ch1"],
        &["book", "--list", "--table", "t.md"],
        &["book", "--rows", "ch1,ch9"],
        &["book", "--rows", ""],
        &[
            "book", "--rows", "ch1", "--record", "r.json", "--table", "r.json",
        ],
    ] {
        let o = nndl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    // Nothing was written: not the files named, and not the default record (which the
    // repository keeps, so it is compared, not looked for).
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["x.json", "t.md", "r.json"] {
        assert!(!crate_dir.join(name).exists(), "{name} was written");
    }
    assert_eq!(book_dir(crate_dir), before, "the book directory changed");
}

/// The README's results table and the docs' are the ones `nndl book --table` writes from the
/// record the repository keeps: regenerated by a command, not edited by hand.
#[test]
fn the_readme_shows_the_recorded_table() {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = temp_dir("book-readme-table").join("table.md");
    let record = crate_dir.join("book/results.json");
    let o = nndl(&[
        "book",
        "--record",
        record.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]);
    succeeded(&o);
    let table = std::fs::read_to_string(&table).unwrap();
    assert!(table.contains("| ch6-vote |"), "{table}");
    for page in ["README.md", "docs/chapter6.md"] {
        let text = std::fs::read_to_string(crate_dir.join(page)).unwrap();
        assert!(
            text.contains(table.trim()),
            "{page} does not show the table `nndl book --table` writes from book/results.json:\n{table}"
        );
    }
}

/// The names and contents of the files in the crate's `book/` directory (empty if it is not
/// there).
fn book_dir(crate_dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(crate_dir.join("book")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap_or_default())
        })
        .collect();
    files.sort();
    files
}

/// A vote killed after some of its networks keeps them in the record, and the rerun trains
/// only the rest: its figure is the uninterrupted vote's, and the row's entry replaces the
/// networks kept.
#[test]
fn a_killed_vote_goes_on_from_its_next_network() {
    use std::process::{Command, Stdio};
    let dir = temp_dir("book-vote-killed");
    // MNIST's first images, few enough for a vote of seconds, and enough that its networks
    // disagree on some test images.
    let mnist = nndl::data::load_mnist(mnist_path()).unwrap();
    let sets = [
        first(&mnist.training, 1000),
        first(&mnist.validation, 100),
        first(&mnist.test, 500),
    ];
    let data = write_file(&dir, "small.pkl.gz", &gzip(&py2_mnist(&sets)));
    let rows = |rows: &str, record: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nndl"));
        c.args(["book", "--rows", rows, "--epochs", "2", "--threads", "1"])
            .arg("--data")
            .arg(&data)
            .arg("--expanded")
            .arg(&data)
            .arg("--record")
            .arg(record)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let vote = |record: &std::path::Path| rows("ch6-vote", record);
    let whole = succeeded(&vote(&dir.join("whole.json")).output().unwrap());
    assert_eq!(whole.matches("Epoch 1:").count(), 5, "{whole}");

    let record = dir.join("record.json");
    let mut child = vote(&record).spawn().unwrap();
    let start = std::time::Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        if text.contains("\"networks\"") {
            break text;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no network kept"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&record).unwrap_or(text);
    assert!(
        !text.contains("\"rows\": [\n    {"),
        "the vote finished: {text}"
    );
    let kept = text.matches("\"network\": ").count();
    assert!((1..5).contains(&kept), "{text}");
    let seconds = |text: &str, at: &str| -> f64 {
        let record: serde_json::Value = serde_json::from_str(text).unwrap();
        record[at]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seconds"].as_f64().unwrap())
            .sum()
    };
    let kept_seconds = seconds(&text, "networks");
    assert!(kept_seconds > 0.0, "{text}");

    let rerun_start = std::time::Instant::now();
    let rerun = succeeded(&vote(&record).output().unwrap());
    let rerun_seconds = rerun_start.elapsed().as_secs_f64();
    // Each network's own test figure, as the uninterrupted vote printed them.
    let figures: Vec<&str> = whole
        .lines()
        .filter_map(|l| l.split("test accuracy there ").nth(1))
        .collect();
    assert_eq!(figures.len(), 5, "{whole}");
    // Each network trained says its figure and time as it finishes.
    for (k, figure) in figures.iter().enumerate() {
        let line = format!("Network {} of 5 (seed {k}): {figure} in ", k + 1);
        assert!(whole.contains(&line), "{line}\n{whole}");
    }
    for k in 1..=kept {
        let line = format!(
            "Network {k} of 5 (seed {}): recorded, {} in ",
            k - 1,
            figures[k - 1]
        );
        assert!(rerun.contains(&line), "{line}\n{rerun}");
    }
    assert_eq!(rerun.matches("Epoch 1:").count(), 5 - kept, "{rerun}");
    assert_eq!(figure(&rerun), figure(&whole), "{whole}\n{rerun}");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("\"row\": \"ch6-vote\""), "{text}");
    assert!(!text.contains("\"networks\""), "{text}");
    // The row's time counts the networks kept, trained before the kill: it is more than the
    // rerun took.
    let row_seconds = seconds(&text, "rows");
    assert!(
        row_seconds > rerun_seconds && row_seconds < rerun_seconds + kept_seconds,
        "{row_seconds} s recorded; rerun {rerun_seconds} s, kept {kept_seconds} s"
    );

    // ch6-dropout's network is the vote's first: run before it, it is not trained again.
    let both = dir.join("both.json");
    let out = succeeded(&rows("ch6-dropout,ch6-vote", &both).output().unwrap());
    assert_eq!(out.matches("Epoch 1:").count(), 5, "{out}");
    let line = format!(
        "Network 1 of 5 (seed 0): ch6-dropout's network, {}, trained in that row",
        figures[0]
    );
    assert!(out.contains(&line), "{line}\n{out}");
    assert_eq!(figure(&out), figure(&whole), "{whole}\n{out}");
    let table = dir.join("table.md");
    let o = nndl(&[
        "book",
        "--record",
        both.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]);
    succeeded(&o);
    let table = std::fs::read_to_string(&table).unwrap();
    assert!(table.contains(" s + ch6-dropout's network |"), "{table}");
    assert!(
        table.contains("ch6-vote's first network is ch6-dropout's, trained once"),
        "{table}"
    );
}

/// The first `n` images of `set`, as a test's pickle holds them.
fn first(set: &nndl::data::Dataset, n: usize) -> RawSet {
    RawSet {
        pixels: set
            .images()
            .rows()
            .into_iter()
            .take(n)
            .flatten()
            .map(|&p| p as f32)
            .collect(),
        labels: set.labels()[..n].iter().map(|&l| i64::from(l)).collect(),
    }
}

/// Ctrl-C ends the row under way unrecorded and runs no further row; the rows before it stay
/// recorded, and the exit code says it was interrupted.
#[test]
fn ctrl_c_stops_after_the_row_under_way_unrecorded() {
    let dir = temp_dir("book-rows-ctrl-c");
    let record = dir.join("record.json");
    let child = recording("ch1-darkness,ch3-overfitting,ch1", &record);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // Safety: sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "{out}{}", stderr(&o));
    assert!(out.contains("ch3-overfitting: book 82.27%"), "{out}");
    assert!(out.contains("interrupted: no verdict"), "{out}");
    assert!(!out.contains("ch1 (chapter 1)"), "{out}");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.contains("ch1-darkness") && !text.contains("ch3-overfitting"),
        "{text}"
    );
}
