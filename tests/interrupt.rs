//! Ctrl-C during `nndl train`: the first SIGINT ends the run after the current mini-batch
//! with every finished epoch in the metrics file and `--save` written (the best epoch's
//! weights under early stopping), and a message; a second SIGINT ends the process at once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn sigint(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // Safety: sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
}

/// `nndl train ARGS` with standard output piped to us, line by line.
fn spawn(
    args: &[&str],
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn ctrl_c_ends_the_run_and_keeps_its_files() {
    let dir = temp_dir("interrupt-files");
    let (metrics, model) = (dir.join("run.csv"), dir.join("best.json"));
    let data = mnist_path();
    let (mut child, mut lines) = spawn(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--train-size",
        "5000",
        "--eval-on",
        "validation",
        "--epochs",
        "1000",
        "--early-stop",
        "900",
        "--metrics",
        metrics.to_str().unwrap(),
        "--save",
        model.to_str().unwrap(),
    ]);
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let epoch = line.starts_with("Epoch ");
        printed.push(line);
        if epoch && printed.iter().filter(|l| l.starts_with("Epoch ")).count() == 3 {
            sigint(&child);
            break;
        }
    }
    printed.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    let out = printed.join("\n");
    assert_eq!(status.code(), Some(130), "{out}\n{err}");
    assert!(
        err.contains("Interrupted: stopping after this mini-batch"),
        "{err}"
    );
    assert!(out.contains("Interrupted in epoch "), "{out}");
    assert!(out.contains("the network is the best epoch's"), "{out}");
    let epochs = printed.iter().filter(|l| l.starts_with("Epoch ")).count();
    assert!((3..1000).contains(&epochs), "{out}");

    // Every epoch printed is a row of the metrics file.
    let rows = nndl::report::plot::read_metrics(&metrics).unwrap();
    assert_eq!(rows.len(), epochs, "{out}");
    let best = rows.iter().map(|r| r.evaluation_correct).max().unwrap();

    // The saved network is the best epoch's: it scores what that epoch scored.
    let o = nndl(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--on",
        "validation",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains(&format!("Accuracy on the validation data: {best} / 10000")),
        "best epoch {best}: {report}"
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = temp_dir("interrupt-twice");
    let model = dir.join("never.json");
    let data = mnist_path();
    let (mut child, mut lines) = spawn(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--save",
        model.to_str().unwrap(),
    ]);
    // The handler is in place before the backend line; the data takes a while to load after it.
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let backend = line.starts_with("Backend:");
        printed.push(line);
        if backend {
            break;
        }
    }
    let start = Instant::now();
    sigint(&child);
    std::thread::sleep(Duration::from_millis(50));
    sigint(&child);
    let status = child.wait().unwrap();
    printed.extend(lines.map(Result::unwrap));
    assert_eq!(status.code(), Some(130), "{printed:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // It ended while loading: nothing after the backend line, no model.
    assert!(
        printed.last().unwrap().starts_with("Backend:"),
        "{printed:?}"
    );
    assert!(!model.exists());
}
