//! `nndl bench` from the command line: the names `--nets` takes, `--train-size` checked as
//! `nndl train` checks it, and a short timed run of a chapter-6 network in its row's
//! precision.

mod common;

use common::*;
use nndl::run::bench::BenchNet;

/// `nndl bench <args>` must exit 2 with `want` in its message.
fn expect_usage_error(args: &[&str], want: &str) {
    let mut all = vec!["bench"];
    all.extend(args);
    let o = nndl(&all);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
}

#[test]
fn unknown_networks_are_refused_with_the_names_bench_takes() {
    let known = "ch6-fc, ch6-conv, ch6-two-conv, ch6-relu, ch6-extra-fc, ch6-dropout";
    expect_usage_error(&["--nets", "ch6-nope"], "unknown network `ch6-nope`");
    expect_usage_error(&["--nets", "network1,ch6-nope"], known);
    // Chapters 1–3's rows are the three programs.
    expect_usage_error(&["--nets", "ch1"], "unknown network `ch1`");
    // A row that trains an earlier row's network points to it.
    expect_usage_error(
        &["--nets", "ch6-expanded"],
        "`ch6-expanded` trains the network of `ch6-relu`",
    );
    expect_usage_error(
        &["--nets", "ch6-vote"],
        "`ch6-vote` trains the network of `ch6-dropout`",
    );
    // The help names every row bench takes.
    let o = nndl(&["bench", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for row in BenchNet::book_rows() {
        assert!(help.contains(row.id), "{}: {help}", row.id);
    }
}

#[test]
fn train_size_is_checked_before_loading() {
    let small = fixture("py3_p2.pkl.gz");
    let small = small.to_str().unwrap();
    // Refused before the data is read.
    let missing = ["--data", "no/such/file.pkl.gz"];
    expect_usage_error(
        &[&missing[..], &["--train-size", "0"]].concat(),
        "--train-size must be at least 1",
    );
    // The fixture's header says 6 training images.
    expect_usage_error(
        &["--data", small, "--train-size", "7"],
        "--train-size 7 is more than the 6 training images",
    );
    expect_usage_error(
        &["--data", small, "--nets", "ch6-conv", "--train-size", "5"],
        "the mini-batch size 10 is larger than the 5 training examples",
    );
}

#[test]
fn a_conv_net_is_timed_in_its_rows_precision() {
    let data = mnist_path();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "1",
            "--train-size",
            "200",
        ];
        args.extend(extra);
        let o = nndl(&args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{out}{}", stderr(&o));
        out
    };
    let out = run(&["--nets", "ch6-conv"]);
    assert!(
        out.contains("ch6-conv: layers conv:20:5,pool:2,fc:100,softmax, sigmoid neurons, eta 0.1"),
        "{out}"
    );
    assert!(out.contains("training 200 images"), "{out}");
    assert!(out.contains("\n| ch6-conv | f32 | "), "{out}");
    assert!(!out.contains("| ch6-conv | f64 | "), "{out}");
    assert!(out.contains("A convolution is counted"), "{out}");
    // --precisions applies to every network; a program is timed beside a row.
    let out = run(&["--nets", "network2,ch6-fc", "--precisions", "f64"]);
    assert!(out.contains("\n| network2 | f64 | "), "{out}");
    assert!(out.contains("\n| ch6-fc | f64 | "), "{out}");
    assert!(!out.contains("| f32 |"), "{out}");
}

#[test]
fn phases_are_timed_layer_by_layer_and_add_up_to_the_step() {
    let data = mnist_path();
    let o = nndl(&[
        "bench",
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "1",
        "--train-size",
        "1000",
        "--nets",
        "ch6-conv",
        "--phases",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let (_, table) = out
        .split_once("ch6-conv f32: one epoch of 1000 images in ")
        .unwrap_or_else(|| panic!("no phase table: {out}"));
    let total: f64 = table.split(' ').next().unwrap().parse().unwrap();
    // Every phase of each layer kind is there, with its own layer.
    for row in [
        "| 1 `conv:20:5:act=sigmoid,pool:2` | product W·cols |",
        "| 1 `conv:20:5:act=sigmoid,pool:2` | max-pool, bias, activation |",
        "| 1 `conv:20:5:act=sigmoid,pool:2` | product ∇W = δ·colsᵀ |",
        "| 1 `conv:20:5:act=sigmoid,pool:2` | update |",
        "| 2 `fc:100:act=sigmoid:dropout=0` | f′, products δᵀ·W and ∇W = δ·x, update |",
        "| 3 `softmax:dropout=0` | f′, products δᵀ·W and ∇W = δ·x, update |",
    ] {
        assert!(table.contains(row), "{row}: {table}");
    }
    // The first convolution is computed without im2col where the direct kernels take it.
    let direct = nndl::model::layers::direct_conv::applies::<f32>([1, 28, 28], 5);
    assert_eq!(
        table.contains("| 1 `conv:20:5:act=sigmoid,pool:2` | im2col |"),
        !direct,
        "{table}"
    );
    // The first layer has no input error to compute, and a dense layer's update is part of
    // its backward pass.
    assert!(
        !table.contains("| 1 `conv:20:5:act=sigmoid,pool:2` | col2im"),
        "{table}"
    );
    assert!(
        !table.contains("| 3 `softmax:dropout=0` | update |"),
        "{table}"
    );
    // The phases cover the step: their seconds add up to most of the epoch and not past it.
    let rows: Vec<f64> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| layer"))
        .map(|l| l.split(" | ").nth(2).unwrap().trim().parse().unwrap())
        .collect();
    let phases: f64 = rows.iter().sum();
    // Each figure is printed to the millisecond, so each is off by up to half of one (either
    // way: a 10 ms step's rows can lose a fifth of it to rounding).
    let rounding = 0.0005 * (rows.len() + 1) as f64;
    assert!(
        phases <= total + rounding && phases + rounding > 0.8 * total,
        "{phases} of {total}: {table}"
    );
}
