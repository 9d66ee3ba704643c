//! Outputs that cannot be written and networks that cannot fit are refused before any data is
//! loaded; a write that fails at the end of a run names the file, loses no other output, and
//! leaves devices and earlier files as they were.

mod common;

use std::os::unix::fs::FileTypeExt;

use common::*;

/// Runs `nndl train` with `args` on a data file that does not exist: whatever is refused
/// here was refused before loading.
fn refused_before_loading(args: &[&str]) -> String {
    let mut all = vec!["train", "--data", "no-such-data.pkl.gz", "--epochs", "1"];
    all.extend(args);
    let out = nndl(&all);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        !err.contains("no-such-data"),
        "{args:?} loaded data first: {err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Loaded"));
    err
}

#[test]
fn an_output_into_a_missing_directory_is_refused_before_loading() {
    for (flag, file) in [
        ("--save", "missing/model.json"),
        ("--save-init", "missing/init.json"),
        ("--metrics", "missing/run.csv"),
        ("--plot", "missing/run.png"),
        ("--dump-order", "missing/order.json"),
    ] {
        let err = refused_before_loading(&[flag, file]);
        assert!(
            err.contains(&format!(
                "cannot write {file}: the directory missing does not exist"
            )),
            "{flag}: {err}"
        );
    }
}

#[test]
fn an_output_that_is_a_directory_or_in_a_read_only_one_is_refused_before_loading() {
    let dir = temp_dir("faults_dir_output");
    let err = refused_before_loading(&["--save", dir.to_str().unwrap()]);
    assert!(err.contains("it is a directory"), "{err}");
    // /proc takes no new files, whoever runs the test (permission bits do not stop root).
    let err = refused_before_loading(&["--save", "/proc/nndl-model.json"]);
    assert!(
        err.contains("cannot write /proc/nndl-model.json: cannot create a file in /proc"),
        "{err}"
    );
    // An unknown figure format, too.
    let err = refused_before_loading(&["--plot", "run.jpg"]);
    assert!(
        err.contains("run.jpg: a figure must end in .png or .svg"),
        "{err}"
    );
}

#[test]
fn sizes_that_do_not_fit_in_memory_are_refused_with_the_memory_needed() {
    let err = refused_before_loading(&["--sizes", "784,100000000,10"]);
    assert!(
        err.contains("sizes [784, 100000000, 10] need 1.3 TB to train"),
        "{err}"
    );
    assert!(err.contains("of memory here"), "{err}");
    let err = refused_before_loading(&["--sizes", "784,18446744073709551615,10"]);
    assert!(
        err.contains("sizes [784, 18446744073709551615, 10] need"),
        "{err}"
    );
    // The book's network fits anywhere.
    let need = nndl::config::memory_needed(&[784, 30, 10], 10, nndl::config::Precision::F64);
    assert_eq!(
        need,
        Some(8 * (2 * (784 * 30 + 30 + 30 * 10 + 10) + 2 * 10 * 824))
    );
}

/// A short run on the small fixture, with `args` added.
fn small_run(args: &[&str]) -> std::process::Output {
    let data = fixture("py3_p5.pkl.gz");
    let mut all = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--sizes",
        "784,5,10",
        "--epochs",
        "1",
        "--mini-batch",
        "2",
        "--quiet",
    ];
    all.extend(args);
    nndl(&all)
}

#[test]
fn saving_to_a_full_device_fails_clearly_and_leaves_the_device_alone() {
    let out = small_run(&["--save", "/dev/full"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write /dev/full"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let kind = std::fs::metadata("/dev/full").unwrap().file_type();
    assert!(kind.is_char_device(), "/dev/full was replaced");
}

#[test]
fn a_failing_metrics_file_does_not_lose_the_model() {
    let dir = temp_dir("faults_metrics_full");
    let metrics = dir.join("run.csv");
    std::os::unix::fs::symlink("/dev/full", &metrics).unwrap();
    let model = dir.join("model.json");
    let out = small_run(&[
        "--metrics",
        metrics.to_str().unwrap(),
        "--save",
        model.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("run.csv"), "{err}");
    let net: nndl::model::network::Network = nndl::model::file::load(&model)
        .unwrap_or_else(|e| panic!("the model was not saved: {}", chain(&e)));
    assert_eq!(net.sizes, [784, 5, 10]);
}

#[test]
fn a_failed_save_leaves_the_earlier_model_intact() {
    let dir = temp_dir("faults_keep_model");
    let model = dir.join("model.json");
    let first = small_run(&["--save", model.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = std::fs::read(&model).unwrap();
    // The temporary file the save writes first cannot be made: a directory is in its way.
    std::fs::create_dir(dir.join("model.json.tmp")).unwrap();
    let out = small_run(&["--save", model.to_str().unwrap(), "--seed", "7"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write"), "{err}");
    assert!(err.contains("model.json"), "{err}");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the earlier model changed"
    );
}

#[test]
fn a_save_killed_midway_leaves_the_earlier_model_loadable() {
    let dir = temp_dir("faults_sigkill");
    let model = dir.join("model.json");
    let first = small_run(&["--save", model.to_str().unwrap()]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = std::fs::read(&model).unwrap();
    // A network of 2.4 million weights (a 45 MB file), killed while its file is written.
    let data = fixture("py3_p5.pkl.gz");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args([
            "train",
            "--data",
            data.to_str().unwrap(),
            "--sizes",
            "784,3000,10",
        ])
        .args(["--epochs", "1", "--mini-batch", "2", "--quiet", "--save"])
        .arg(&model)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run nndl");
    let tmp = dir.join("model.json.tmp");
    let start = std::time::Instant::now();
    let mut caught = false;
    while start.elapsed() < std::time::Duration::from_secs(60) {
        if tmp.exists() {
            caught = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    child.kill().ok(); // SIGKILL
    child.wait().unwrap();
    assert!(caught, "the save finished before it could be interrupted");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the earlier model changed"
    );
    let net: nndl::model::network::Network = nndl::model::file::load(&model).unwrap();
    assert_eq!(net.sizes, [784, 5, 10]);
}

#[test]
fn a_figure_that_cannot_be_written_is_said_in_words_and_keeps_the_earlier_one() {
    let dir = temp_dir("faults_plot");
    let metrics = dir.join("run.csv");
    let small = fixture("py3_p2.pkl.gz");
    let o = nndl(&[
        "train",
        "--data",
        small.to_str().unwrap(),
        "--epochs",
        "2",
        "--mini-batch",
        "2",
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for ext in ["png", "svg"] {
        let full = dir.join(format!("full.{ext}"));
        std::os::unix::fs::symlink("/dev/full", &full).unwrap();
        let out = nndl(&[
            "plot",
            metrics.to_str().unwrap(),
            "-o",
            full.to_str().unwrap(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "cannot write {}: No space left on device",
                full.display()
            )),
            "{err}"
        );
        assert!(!err.contains("Error(") && !err.contains("Os {"), "{err}");
        // An earlier figure stays as it was when the new one cannot be written: the
        // temporary file it goes through is blocked by a directory.
        let figure = dir.join(format!("run.{ext}"));
        let first = nndl(&[
            "plot",
            metrics.to_str().unwrap(),
            "-o",
            figure.to_str().unwrap(),
        ]);
        assert!(first.status.success(), "{}", stderr(&first));
        let before = std::fs::read(&figure).unwrap();
        std::fs::create_dir(dir.join(format!("run.{ext}.tmp"))).unwrap();
        let out = nndl(&[
            "plot",
            metrics.to_str().unwrap(),
            "-o",
            figure.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(std::fs::read(&figure).unwrap(), before);
    }
}

#[test]
fn a_run_that_saturates_says_so() {
    let out = nndl(&[
        "train",
        "--net",
        "network2",
        "--eta",
        "1000",
        "--train-size",
        "2000",
        "--epochs",
        "2",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("The network has not learned"), "{text}");
    assert!(
        text.contains("try a smaller eta (this run's is 1000)"),
        "{text}"
    );
    // The book's η learns, and says nothing of the kind.
    let out = nndl(&[
        "train",
        "--net",
        "network2",
        "--train-size",
        "2000",
        "--epochs",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("has not learned"), "{text}");
}

/// A sigmoid conv net at the book's η = 0.1 stays at chance for its first thousands of
/// images: it is told to train longer, not to lower η (which would only slow it further).
/// Above the book's η, or after a whole book epoch's worth of images, saturation is the
/// likelier cause and a smaller η the advice.
#[test]
fn a_sigmoid_conv_net_that_has_not_learned_yet_is_told_to_train_longer() {
    let conv = "conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax";
    for (eta, train_size, want, not) in [
        ("0.1", "1000", "Train longer", "smaller eta (this"),
        ("0.05", "1000", "Train longer", "smaller eta (this"),
        (
            "5",
            "1000",
            "try a smaller eta (this run's is 5)",
            "Train longer",
        ),
    ] {
        let out = nndl(&[
            "train",
            "--layers",
            conv,
            "--eta",
            eta,
            "--train-size",
            train_size,
            "--epochs",
            "1",
            "--precision",
            "f32",
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("The network has not learned"),
            "{eta}: {text}"
        );
        assert!(text.contains(want), "{eta}: {text}");
        assert!(!text.contains(not), "{eta}: {text}");
    }
    // A fully-connected sigmoid network is not a conv net: saturation, as before.
    let out = nndl(&[
        "train",
        "--layers",
        "fc:100,softmax",
        "--eta",
        "100",
        "--train-size",
        "1000",
        "--epochs",
        "1",
        "--quiet",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("has not learned") {
        assert!(text.contains("try a smaller eta"), "{text}");
    }
}
