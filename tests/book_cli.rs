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
