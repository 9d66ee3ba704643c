//! The `nndl` binary: its output on a small file, and a one-line error with exit code 2 for
//! every argument that cannot be trained with.

mod common;

use std::process::Command;

use common::*;

/// `nndl train --data <small file> <base> <args>` must exit 2 with `want` in its message, on one
/// line unless clap itself reports it.
fn expect_usage_error(base: &[&str], args: &[&str], want: &str) {
    let small = fixture("py3_p2.pkl.gz");
    let mut all = vec!["train", "--data", small.to_str().unwrap()];
    all.extend(base);
    all.extend(args);
    let o = nndl(&all);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err}");
    if !want.starts_with("invalid value") {
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn trains_on_a_small_file_and_prints_the_books_lines() {
    let small = fixture("py3_p2.pkl.gz");
    let o = nndl(&[
        "train",
        "--net",
        "network1",
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "2",
        "--mini-batch",
        "2",
        "--sizes",
        "784,5,10",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.contains(
            "network1: sizes [784, 5, 10], eta 3, lambda 0, 2 epochs, mini-batch 2, seed 0, f64"
        ),
        "{out}"
    );
    assert!(out.contains("Backend: "), "{out}");
    assert!(
        out.contains("(6 training, 3 validation, 3 test images)"),
        "{out}"
    );
    assert!(
        out.contains("\nEpoch 0: ") && out.contains(" / 3 ("),
        "{out}"
    );
    assert!(out.contains("\nEpoch 1: "), "{out}");
    assert!(out.contains("Training took "), "{out}");
    // Output is piped here: no progress bar.
    assert!(!stderr(&o).contains("mini-batches"), "{}", stderr(&o));
}

#[test]
fn the_same_seed_prints_the_same_epochs() {
    let small = fixture("py3_p5.pkl.gz");
    let run = |seed: &str| {
        let o = nndl(&[
            "--data",
            small.to_str().unwrap(),
            "--epochs",
            "3",
            "--mini-batch",
            "3",
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("Epoch"))
            .map(String::from)
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        lines
    };
    assert_eq!(run("5"), run("5"));
    // The seed matters: over a few seeds, the epoch lines are not all the same.
    let others: Vec<Vec<String>> = ["6", "7", "8"].iter().map(|s| run(s)).collect();
    assert!(others.iter().any(|o| *o != run("5")), "{others:?}");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for (args, want) in [
        (
            vec!["--eta", "0"],
            "eta must be a finite number above 0, got 0",
        ),
        (
            vec!["--eta", "-1"],
            "eta must be a finite number above 0, got -1",
        ),
        (
            vec!["--eta", "NaN"],
            "eta must be a finite number above 0, got NaN",
        ),
        (
            vec!["--lambda", "-0.5"],
            "lambda must be a finite number of at least 0, got -0.5",
        ),
        (vec!["--epochs", "0"], "epochs must be at least 1"),
        (
            vec!["--mini-batch", "0"],
            "mini-batch size must be at least 1",
        ),
        (
            vec!["--mini-batch", "7"],
            "mini-batch size 7 is larger than the 6 training examples",
        ),
        (
            vec!["--sizes", "784,0,10"],
            "layer 1 of sizes [784, 0, 10] has 0 neurons",
        ),
        (
            vec!["--sizes", "783,30,10"],
            "first layer must have 784 neurons",
        ),
        (
            vec!["--sizes", "784,30,2"],
            "last layer must have 10 neurons",
        ),
        // Nothing to score: the accuracy was printed as NaN%, and the run ended with success.
        (
            vec![
                "--validation-size",
                "0",
                "--mini-batch",
                "2",
                "--eval-on",
                "validation",
            ],
            "the validation set holds no images, so there is nothing to score it on",
        ),
        (vec!["--net", "network9"], "invalid value 'network9'"),
        (vec!["--sizes", "784,x,10"], "invalid value 'x'"),
    ] {
        expect_usage_error(&[], &args, want);
    }
}

#[test]
fn a_missing_data_file_is_a_clear_error() {
    let o = nndl(&["--data", "nowhere/mnist.pkl.gz", "--epochs", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot open nowhere/mnist.pkl.gz"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_diverging_run_says_so() {
    let small = fixture("py3_p2.pkl.gz");
    let o = nndl(&[
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "2",
        "--mini-batch",
        "2",
        "--eta",
        "1e300",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("training diverged; try a smaller learning rate"),
        "{err}"
    );
}

#[test]
fn save_init_and_init_reproduce_a_run() {
    let small = fixture("py3_p4_fortran_u8.pkl.gz");
    let dir = temp_dir("cli-init");
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let base = [
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "2",
        "--mini-batch",
        "2",
        "--seed",
        "3",
    ];
    let mut first: Vec<&str> = base.to_vec();
    let (init, order, a, b) = (p("init.json"), p("order.json"), p("a.json"), p("b.json"));
    first.extend(["--save-init", &init, "--dump-order", &order, "--save", &a]);
    assert!(nndl(&first).status.success());
    let orders: Vec<Vec<usize>> =
        serde_json::from_str(&std::fs::read_to_string(&order).unwrap()).unwrap();
    assert_eq!(orders.len(), 2);
    let mut sorted = orders[0].clone();
    sorted.sort();
    assert_eq!(sorted, (0..6).collect::<Vec<_>>());
    // Starting from the saved initial weights with the same seed repeats the run: the same
    // epochs, and the same trained weights to the last bit.
    let mut second: Vec<&str> = base.to_vec();
    second.extend(["--init", &init, "--save", &b]);
    let o = nndl(&second);
    assert!(o.status.success(), "{}", stderr(&o));
    let load = |path: &str| nndl::model::file::load::<f64>(std::path::Path::new(path)).unwrap();
    let (run_a, run_b) = (load(&a), load(&b));
    assert_eq!(run_a.weights, run_b.weights);
    assert_eq!(run_a.biases, run_b.biases);
    // With another seed the shuffles differ, and so do the trained weights.
    let c = p("c.json");
    let mut third: Vec<&str> = base[..base.len() - 1].to_vec();
    third.extend(["4", "--init", &init, "--save", &c]);
    assert!(nndl(&third).status.success());
    assert_ne!(load(&c).weights, run_a.weights);
    // A model saved with another cost is refused for network1.
    let o = nndl(&[
        "--net",
        "network1",
        "--data",
        small.to_str().unwrap(),
        "--init",
        &init,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(
        "was saved with the cross-entropy cost and sigmoid hidden layers, but this run trains \
         with the quadratic cost and sigmoid hidden layers"
    ));
}

#[test]
fn train_size_limits_the_training_set() {
    let small = fixture("py3_p2.pkl.gz");
    let o = nndl(&[
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "1",
        "--mini-batch",
        "5",
        "--train-size",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("mini-batch size 5 is larger than the 4 training examples"));
    let o = nndl(&[
        "--data",
        small.to_str().unwrap(),
        "--train-size",
        "7",
        "--mini-batch",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--train-size 7 is more than the 6 training images"));
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("cli-closed-stdout");
    let model = dir.join("m.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args([
            "--data",
            small.to_str().unwrap(),
            "--epochs",
            "50",
            "--mini-batch",
            "2",
        ])
        .args(["--save", model.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(model.exists(), "the model was not saved");
}

#[test]
fn metrics_files_hold_one_row_per_epoch() {
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("cli-metrics");
    for name in ["run.csv", "run.jsonl"] {
        let path = dir.join(name);
        let o = nndl(&[
            "--data",
            small.to_str().unwrap(),
            "--epochs",
            "3",
            "--mini-batch",
            "2",
            "--monitor",
            "train-cost,train-acc,eval-cost",
            "--eval-on",
            "validation",
            "--metrics",
            path.to_str().unwrap(),
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.contains("  training cost "), "{out}");
        assert!(
            out.contains("training accuracy ") && out.contains(" / 6 ("),
            "{out}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<nndl::report::metrics::Row> = if name.ends_with(".csv") {
            let mut lines = text.lines();
            let header = lines.next().unwrap();
            assert!(
                header.starts_with("epoch,elapsed,eta,evaluation_correct,evaluation_total"),
                "{header}"
            );
            csv::Reader::from_reader(text.as_bytes())
                .deserialize()
                .map(|r| r.unwrap())
                .collect()
        } else {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert_eq!(rows.len(), 3, "{text}");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.epoch, i);
            assert_eq!(r.evaluation_total, 3, "evaluated on the validation set");
            assert_eq!(r.training_total, 6);
            assert!(r.training_cost.is_some() && r.evaluation_cost.is_some());
            assert_eq!(
                r.training_accuracy,
                r.training_correct.map(|c| 100.0 * c as f64 / 6.0)
            );
            assert!(out.contains(&format!("Epoch {i}: {} / 3", r.evaluation_correct)));
        }
        assert!(rows[0].elapsed < rows[2].elapsed);
    }
}

#[test]
fn monitoring_early_stopping_schedule_and_dropout_options_refuse_bad_values() {
    for (args, want) in [
        (vec!["--metrics", "run.txt"], "must end in .csv or .jsonl"),
        (
            vec!["--early-stop", "0"],
            "early stopping needs a patience of at least 1",
        ),
        (
            vec!["--eta-schedule", "halve:0"],
            "schedule needs a patience of at least 1",
        ),
        (
            vec!["--eta-schedule", "halve:3,2"],
            "floor must be a ratio between 0 and 1, got 2",
        ),
        (
            vec!["--eta-schedule", "double:3"],
            "invalid value 'double:3' for '--eta-schedule <halve:N[,RATIO]>': \"double:3\" is not halve:N or halve:N,RATIO",
        ),
        (vec!["--monitor", "speed"], "invalid value 'speed'"),
        (vec!["--eval-on", "training"], "invalid value 'training'"),
        (
            vec!["--dropout", "1"],
            "the dropout probability must be at least 0 and below 1, got 1",
        ),
        (
            vec!["--dropout", "-0.5"],
            "the dropout probability must be at least 0 and below 1, got -0.5",
        ),
        (
            vec!["--dropout", "0.5", "--sizes", "784,10"],
            "dropout acts on hidden layers, and sizes [784, 10] have none",
        ),
        (vec!["--activation", "swish"], "invalid value 'swish'"),
        (vec!["--cost", "hinge"], "invalid value 'hinge'"),
    ] {
        expect_usage_error(&["--mini-batch", "2"], &args, want);
    }
}

#[test]
fn eval_scores_a_saved_network_as_training_did() {
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("cli-eval");
    let model = dir.join("m.json");
    let o = nndl(&[
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "2",
        "--mini-batch",
        "2",
        "--save",
        model.to_str().unwrap(),
        "--monitor",
        "eval-cost",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    let last = out.lines().rfind(|l| l.starts_with("Epoch 1:")).unwrap();
    let counted = last
        .trim_start_matches("Epoch 1: ")
        .split(" (")
        .next()
        .unwrap();
    let o = nndl(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        small.to_str().unwrap(),
    ]);
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        report.contains(&format!("Accuracy on the test data: {counted} (")),
        "{report}\n{out}"
    );
    // The cost with the L2 term of the λ the model was trained with, as the monitor measured it.
    let line = report
        .lines()
        .find(|l| l.starts_with("Cost on the test data (lambda 5): "));
    let value: f64 = line.unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    let monitored = out
        .lines()
        .rfind(|l| l.contains("evaluation cost"))
        .unwrap();
    assert!(
        monitored.ends_with(&format!("evaluation cost {value:.4}")),
        "{monitored} vs {value}"
    );
    let o = nndl(&[
        "eval",
        "--model",
        "missing.json",
        "--data",
        small.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read missing.json"));
}

#[test]
fn a_softmax_relu_dropout_network_round_trips_through_its_model_file() {
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("cli-softmax");
    let model = dir.join("m.json");
    let data = ["--data", small.to_str().unwrap()];
    let mut args = vec!["--epochs", "2", "--mini-batch", "2", "--seed", "3"];
    args.extend([
        "--cost",
        "log-likelihood",
        "--activation",
        "relu",
        "--dropout",
        "0.3",
    ]);
    args.extend(data);
    args.extend(["--save", model.to_str().unwrap()]);
    let o = nndl(&args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("relu hidden layers, softmax output layer, log-likelihood cost"),
        "{out}"
    );
    assert!(out.contains("dropout 0.3 on the hidden layers"), "{out}");
    let o = nndl(&[&["eval", "--model", model.to_str().unwrap()][..], &data].concat());
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        report.contains(
            "sizes [784, 30, 10], relu hidden layers, softmax output layer, log-likelihood cost"
        ),
        "{report}"
    );
    assert!(
        report.contains("Trained with eta 0.5, lambda 5, dropout 0.3, mini-batch 2, up to 2 epochs, seed 3, f64"),
        "{report}"
    );
    // Continuing from it needs the same cost and activation.
    let o = nndl(
        &[
            &["--init", model.to_str().unwrap(), "--mini-batch", "2"][..],
            &data,
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("saved with the log-likelihood cost and relu hidden layers"));
    let mut again = vec![
        "--init",
        model.to_str().unwrap(),
        "--mini-batch",
        "2",
        "--epochs",
        "1",
    ];
    again.extend(["--cost", "log-likelihood", "--activation", "relu"]);
    let o = nndl(&[&again[..], &data].concat());
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn weight_init_picks_network2s_initialiser() {
    let small = fixture("py3_p2.pkl.gz");
    let dir = temp_dir("cli-weight-init");
    // One run's initial network and its settings lines.
    let run = |net: &str, init: Option<&str>| {
        let path = dir.join(format!("{net}-{}.json", init.unwrap_or("default")));
        let path_text = path.to_str().unwrap();
        let mut args = vec![
            "train",
            "--net",
            net,
            "--data",
            small.to_str().unwrap(),
            "--epochs",
            "1",
            "--mini-batch",
            "2",
            "--quiet",
            "--save-init",
            path_text,
        ];
        if let Some(init) = init {
            args.extend(["--weight-init", init]);
        }
        let o = nndl(&args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{out}{}", stderr(&o));
        (nndl::model::file::load::<f64>(&path).unwrap(), out)
    };
    let max_abs = |w: &ndarray::Array2<f64>| w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let large_line = "  large initial weights: N(0, 1) (network2.py's large_weight_initializer)";
    let scaled_line =
        "  scaled initial weights: N(0, 1/n_in) (network2.py's default_weight_initializer)";

    // network3's own initialiser is the scaled one; --weight-init large draws N(0, 1) weights
    // from the same numbers, so each layer's weights are sqrt(n_in) times as large.
    let (scaled, out) = run("network3", None);
    assert!(!out.contains("initial weights"), "{out}");
    let (large, out) = run("network3", Some("large"));
    assert!(out.contains(large_line), "{out}");
    let (w_large, w_scaled) = (max_abs(&large.weights[0]), max_abs(&scaled.weights[0]));
    assert!((3.0..6.0).contains(&w_large), "max |w| {w_large}");
    assert!((0.1..0.25).contains(&w_scaled), "max |w| {w_scaled}");
    for (l, (a, b)) in large.weights.iter().zip(&scaled.weights).enumerate() {
        let n_in = (large.sizes[l] as f64).sqrt();
        for (x, y) in a.iter().zip(b) {
            assert!((x - y * n_in).abs() <= 1e-12 * x.abs().max(1.0), "{x} {y}");
        }
    }
    assert_eq!(large.biases, scaled.biases);
    // Naming the program's own initialiser changes nothing and prints nothing more.
    let (same, out) = run("network3", Some("scaled"));
    assert!(!out.contains("initial weights"), "{out}");
    assert_eq!(same.weights, scaled.weights);

    // network1's own is the large one; --weight-init scaled gives it network3's weights.
    let (large1, out) = run("network1", None);
    assert!(!out.contains("initial weights"), "{out}");
    assert_eq!(large1.weights, large.weights);
    let (scaled1, out) = run("network1", Some("scaled"));
    assert!(out.contains(scaled_line), "{out}");
    assert_eq!(scaled1.weights, scaled.weights);
}

#[test]
fn a_bad_weight_init_exits_2() {
    expect_usage_error(
        &["--mini-batch", "2"],
        &["--weight-init", "huge"],
        "invalid value 'huge' for '--weight-init <INIT>'",
    );
    // A starting network's weights are its own: naming an initialiser with it is refused.
    let o = nndl(&["train", "--weight-init", "large", "--init", "model.json"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    // nndl tune takes the flag too, and refuses a bad value before opening any study.
    let o = nndl(&["tune", "--weight-init", "huge"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid value 'huge'"),
        "{}",
        stderr(&o)
    );
}

/// `--init FILE` with `--sizes` or `--layers` naming another network is refused (the file's
/// network was trained silently instead); naming the file's own network, or none, starts from
/// it; a chapter-6 file without `--layers` is refused too, since the run was set up with the
/// fully-connected programs' η and λ.
#[test]
fn init_must_hold_the_network_the_command_line_names() {
    let dir = temp_dir("init-conflict");
    let small = fixture("py3_p2.pkl.gz");
    let small = small.to_str().unwrap();
    let fc = dir.join("fc.json");
    let cnn = dir.join("cnn.json");
    let (fc, cnn) = (fc.to_str().unwrap(), cnn.to_str().unwrap());
    let base = [
        "train",
        "--data",
        small,
        "--epochs",
        "1",
        "--mini-batch",
        "2",
        "--quiet",
    ];
    let run = |args: &[&str]| nndl(&[&base[..], args].concat());
    let o = run(&["--sizes", "784,5,10", "--save-init", fc]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["--layers", "conv:2:5,pool:2,softmax", "--save-init", cnn]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (args, want) in [
        (
            vec!["--sizes", "784,30,10", "--init", fc],
            "the file holds the network sizes [784, 5, 10], but this run trains sizes [784, 30, 10]",
        ),
        (
            vec!["--layers", "conv:3:5,pool:2,softmax", "--init", cnn],
            "but this run trains layers conv:3:5",
        ),
        (
            vec!["--init", cnn],
            "softmax:dropout=0, but this run trains sizes [784, 30, 10]",
        ),
        (
            vec!["--layers", "conv:2:5,pool:2,softmax", "--init", fc],
            "the file holds the network sizes [784, 5, 10]",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // A negative λ reads as a number, and is refused as one (it was a parse error).
    let o = nndl(&["eval", "--model", fc, "--data", small, "--lambda", "-3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("got -3"), "{}", stderr(&o));
    for args in [
        vec!["--sizes", "784,5,10", "--init", fc],
        vec!["--init", fc],
        vec!["--layers", "conv:2:5,pool:2,softmax", "--init", cnn],
    ] {
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
}

/// Run from another directory, `nndl` without `--data` finds the book's data in the clone it
/// was built from (it failed on a relative path before).
#[test]
fn the_default_data_is_found_from_any_directory() {
    let dir = temp_dir("elsewhere");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(["train", "--epochs", "1", "--train-size", "100", "--quiet"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("data/mnist.pkl.gz"), "{out}");
}
