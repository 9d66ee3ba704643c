//! `nndl tune` end to end: studies on the first MNIST images, run by the binary.
//! - the same seed proposes the same trials, another seed others;
//! - a grid shared by two workers runs every point exactly once (SQLite here; PostgreSQL when
//!   `NNDL_TEST_POSTGRES` names a server, as in CI);
//! - a worker killed with SIGKILL mid-trial and started again finishes that trial with the
//!   weights of an uninterrupted run, bit for bit; a worker started while another runs the
//!   trial says what it waits for, and takes the trial over at once when that worker is killed
//!   on this host (SQLite, and PostgreSQL when `NNDL_TEST_POSTGRES` is set);
//! - a diverging trial fails and the study goes on; the best trial is scored on the test set at
//!   its best validation epoch's weights;
//! - a trial that panics (on purpose, or resuming a checkpoint whose weights do not fit its
//!   network) fails with its message in the store, and the study finishes the other trials and
//!   returns within a bounded time;
//! - `weight-init` searches network2.py's two initialisers;
//! - bad requests exit 2 before anything is written.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use nndl::config::{TrainConfig, Variant};
use nndl::model::layers::spec::LayerSpec;
use nndl::model::layers::LayerNetwork;
use nndl::model::network::Network;
use nndl::run::tune::TuneRequest;
use nndl::train::{build_network, Training};
use nndl::tune::pruner::PrunerSpec;
use nndl::tune::sampler::SamplerSpec;
use nndl::tune::space::Space;
use nndl::tune::store;
use nndl::tune::study::{Trial, TrialState};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Longer than any study of these tests takes: a study still running then is hung.
const HUNG: Duration = Duration::from_secs(180);

/// `nndl tune` on the first 2,000 training images, 2 epochs per trial unless `args` say.
fn tune_args<'a>(storage: &'a str, args: &[&'a str]) -> Vec<String> {
    let data = mnist_path();
    let mut all: Vec<String> = [
        "tune",
        "--storage",
        storage,
        "--data",
        data.to_str().unwrap(),
        "--train-size",
        "2000",
        "--heartbeat",
        "0.2",
        "--stale-after",
        "1.5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !args.contains(&"--epochs") {
        all.extend(["--epochs".to_string(), "2".to_string()]);
    }
    all.extend(args.iter().map(|s| s.to_string()));
    all
}

fn tune(storage: &str, args: &[&str]) -> std::process::Output {
    let all = tune_args(storage, args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    nndl(&refs)
}

fn trials(storage: &str, study: &str) -> Vec<Trial> {
    let mut store = store::open(storage).unwrap();
    let id = store
        .studies()
        .unwrap()
        .into_iter()
        .find(|s| s.spec.name == study)
        .unwrap_or_else(|| panic!("no study {study}"))
        .id;
    store.trials(id).unwrap()
}

fn sqlite(dir: &str) -> String {
    format!("sqlite:{}", temp_dir(dir).join("study.db").display())
}

#[test]
fn the_same_seed_proposes_the_same_trials() {
    let space = ["--param", "eta=log:0.05:5", "--param", "lambda=log:0.01:10"];
    let run = |seed: &str, dir: &str| {
        let storage = sqlite(dir);
        let mut args = vec![
            "--study",
            "s",
            "--sampler",
            "random",
            "--trials",
            "3",
            "--epochs",
            "1",
            "--seed",
            seed,
        ];
        args.extend(space);
        let o = tune(&storage, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(out.matches("\nTrial ").count(), 3, "{out}");
        assert!(out.contains("\nBest trial "), "{out}");
        let t = trials(&storage, "s");
        assert!(t
            .iter()
            .all(|t| t.state == TrialState::Complete && t.values.len() == 1));
        t.into_iter()
            .map(|t| (t.params, t.values))
            .collect::<Vec<_>>()
    };
    let a = run("3", "tune-seed-a");
    assert_eq!(a, run("3", "tune-seed-b"));
    assert_ne!(
        a.iter().map(|t| &t.0).collect::<Vec<_>>(),
        run("4", "tune-seed-c")
            .iter()
            .map(|t| &t.0)
            .collect::<Vec<_>>()
    );
}

/// A 2×3 grid run by `--jobs 2`: six trials, each point once.
fn grid_with_two_workers(storage: &str, study: &str) {
    let o = tune(
        storage,
        &[
            "--study",
            study,
            "--sampler",
            "grid",
            "--trials",
            "100",
            "--jobs",
            "2",
            "--epochs",
            "1",
            "--param",
            "eta=choice:0.5,1",
            "--param",
            "mini-batch=choice:10,20,40",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("The grid sampler proposes 6 trials"), "{out}");
    let t = trials(storage, study);
    assert_eq!(t.len(), 6);
    let points: BTreeSet<String> = t.iter().map(|t| format!("{:?}", t.params)).collect();
    assert_eq!(points.len(), 6);
    let workers: BTreeSet<&str> = t.iter().filter_map(|t| t.worker.as_deref()).collect();
    assert!(t.iter().all(|t| t.state == TrialState::Complete));
    assert!(!workers.is_empty());
}

#[test]
fn two_workers_run_every_grid_point_once() {
    grid_with_two_workers(&sqlite("tune-grid"), "grid");
}

#[test]
fn two_workers_share_a_postgres_study() {
    let url = match std::env::var("NNDL_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!ci, "CI is set but NNDL_TEST_POSTGRES is not: the study must be tested on PostgreSQL in CI");
            eprintln!("skipped: set NNDL_TEST_POSTGRES=postgres://… to run the PostgreSQL study");
            return;
        }
    };
    // A name no earlier run has used: the database outlives a test run.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    grid_with_two_workers(&url, &format!("grid-{}-{nanos}", std::process::id()));
}

/// One trial (a one-point grid) of 6 epochs in the study `one`, of the network and
/// parameters `args` give.
fn one_trial(args: &[&'static str]) -> Vec<&'static str> {
    let mut all = vec![
        "--study",
        "one",
        "--sampler",
        "grid",
        "--trials",
        "1",
        "--epochs",
        "6",
    ];
    all.extend(args);
    all
}

/// One trial of network3 with dropout.
fn single_trial_args() -> Vec<&'static str> {
    one_trial(&[
        "--param",
        "eta=choice:0.5",
        "--dropout",
        "0.2",
        "--sizes",
        "784,30,10",
    ])
}

/// One trial of a chapter-6 network: a conv layer and an fc layer with dropout, the filters
/// and the learning rate as parameters.
fn single_cnn_trial_args() -> Vec<&'static str> {
    one_trial(&[
        "--layers",
        "conv:3:5,pool:2,fc:20:dropout=0.2,softmax",
        "--param",
        "eta=choice:0.1",
        "--param",
        "conv1.filters=choice:4",
    ])
}

/// The network of the checkpoint the study keeps for its best trial (trial 0).
fn checkpoint_model<M: Serialize + DeserializeOwned + Clone>(storage: &str) -> M {
    let mut store = store::open(storage).unwrap();
    let id = store.studies().unwrap()[0].id;
    let bytes = store
        .checkpoint(id, 0)
        .unwrap()
        .expect("the best trial keeps its checkpoint");
    let training: Training<M> = Training::restore(&bytes, 2000).unwrap();
    training.model
}

/// Trains the one trial of `args` whole in one study; in another, kills the worker (SIGKILL)
/// after two epochs and runs the same command again: the second study must end with the same
/// per-epoch values and the same network, to the last bit.
fn a_killed_worker_resumes<
    M: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
>(
    name: &str,
    args: &[&str],
) {
    let whole = sqlite(&format!("{name}-whole"));
    let o = tune(&whole, args);
    assert!(o.status.success(), "{}", stderr(&o));

    let killed = sqlite(&format!("{name}-killed"));
    let args = tune_args(&killed, args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two epochs are in the store.
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let done = store::open(&killed)
            .ok()
            .and_then(|mut s| {
                let id = s.studies().ok()?.first()?.id;
                Some(s.trials(id).ok()?.first()?.values.len())
            })
            .unwrap_or(0);
        if done >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no epoch reported"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = trials(&killed, "one");
    assert_eq!(before[0].state, TrialState::Running);
    assert!(
        (2..6).contains(&before[0].values.len()),
        "{:?}",
        before[0].values
    );

    // Started again, it takes the silent trial over once its heartbeat is stale.
    let o = nndl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let after = trials(&killed, "one");
    let reference = trials(&whole, "one");
    assert_eq!(after[0].state, TrialState::Complete);
    assert_eq!(after[0].values, reference[0].values);
    let (a, b): (M, M) = (checkpoint_model(&killed), checkpoint_model(&whole));
    assert_eq!(a, b);
    assert!(out.contains("Best trial 0: "), "{out}");
}

#[test]
fn a_killed_worker_resumes_its_trial_bit_for_bit() {
    a_killed_worker_resumes::<Network>("tune-kill", &single_trial_args());
}

#[test]
fn a_killed_worker_resumes_a_chapter_6_trial_bit_for_bit() {
    a_killed_worker_resumes::<LayerNetwork>("tune-kill-cnn", &single_cnn_trial_args());
}

/// A study of a chapter-6 network over its training settings and its layers' numbers runs
/// every trial with the network its parameters describe.
#[test]
fn a_study_tunes_a_chapter_6_network() {
    let storage = sqlite("tune-cnn");
    let o = tune(
        &storage,
        &[
            "--study",
            "cnn",
            "--sampler",
            "random",
            "--trials",
            "3",
            "--epochs",
            "1",
            "--layers",
            "conv:2:5,pool:2,fc:10,softmax",
            "--activation",
            "relu",
            "--param",
            "eta=log:0.01:0.3",
            "--param",
            "conv1.filters=int:1:4",
            "--param",
            "fc1.size=choice:8,16",
            "--param",
            "dropout=float:0:0.5",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let t = trials(&storage, "cnn");
    assert_eq!(t.len(), 3, "{out}");
    assert!(t.iter().all(|t| t.state == TrialState::Complete), "{out}");
    assert!(out.contains("Best trial "), "{out}");
    // The best trial's checkpoint holds the network its parameters describe.
    let mut s = store::open(&storage).unwrap();
    let id = s.studies().unwrap()[0].id;
    let number = store::best_complete(&t).unwrap();
    let bytes = s.checkpoint(id, number).unwrap().unwrap();
    let net: LayerNetwork = Training::<LayerNetwork>::restore(&bytes, 2000)
        .unwrap()
        .model;
    let params = &t[number as usize].params;
    let specs = net.specs();
    match (specs[0], specs[1]) {
        (LayerSpec::ConvPool(conv), LayerSpec::FullyConnected(fc)) => {
            assert_eq!(
                conv.filters.to_string(),
                params["conv1.filters"].to_string()
            );
            assert_eq!(fc.neurons.to_string(), params["fc1.size"].to_string());
            assert_eq!(fc.dropout.to_string(), params["dropout"].to_string());
            assert_eq!(conv.activation, nndl::model::activation::Activation::Relu);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_diverging_trial_fails_and_the_study_goes_on() {
    let storage = sqlite("tune-diverge");
    let o = tune(
        &storage,
        &[
            "--study",
            "d",
            "--sampler",
            "grid",
            "--trials",
            "2",
            "--activation",
            "relu",
            "--cost",
            "log-likelihood",
            "--param",
            "eta=choice:1000,0.1",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let t = trials(&storage, "d");
    assert_eq!(t[0].state, TrialState::Failed, "{out}");
    assert_eq!(t[1].state, TrialState::Complete, "{out}");
    assert!(
        out.contains("Trial 0: failed: diverged in epoch 0"),
        "{out}"
    );
    let message = t[0].message.as_deref().unwrap_or_default();
    assert!(message.starts_with("diverged in epoch 0"), "{message:?}");
    assert_eq!(t[1].message, None);
    assert!(out.contains("Best trial 1: "), "{out}");
}

#[test]
fn the_initialiser_is_a_choice_a_study_can_search() {
    // network1's book run with each of network2.py's initialisers: the same seed draws the
    // same numbers, scaled or not, so the two trials' accuracies differ only by the scale.
    let storage = sqlite("tune-weight-init");
    let o = tune(
        &storage,
        &[
            "--study",
            "w",
            "--sampler",
            "grid",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--net",
            "network1",
            "--param",
            "weight-init=choice:large,scaled",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let t = trials(&storage, "w");
    let inits: BTreeSet<String> = t
        .iter()
        .map(|t| t.params["weight-init"].to_string())
        .collect();
    assert_eq!(inits, BTreeSet::from(["large".into(), "scaled".into()]));
    assert!(t.iter().all(|t| t.state == TrialState::Complete), "{out}");
    assert_ne!(t[0].values, t[1].values, "{out}");
}

#[test]
fn bad_requests_exit_2_and_write_nothing() {
    let dir = temp_dir("tune-bad");
    let db = dir.join("never.db");
    let storage = format!("sqlite:{}", db.display());
    for (args, want) in [
        (vec!["--param", "eta"], "eta"),
        (vec!["--param", "eta=log:5:1"], "eta"),
        (vec!["--param", "eta=log:0:1"], "eta"),
        (vec!["--param", "speed=float:0:1"], "speed"),
        (
            vec!["--param", "weight-init=choice:large,xavier"],
            "\"xavier\" is not one of large, scaled",
        ),
        (
            vec!["--param", "eta=log:0.1:1", "--sampler", "bayes"],
            "unknown sampler",
        ),
        (
            vec!["--param", "eta=log:0.1:1", "--pruner", "mean"],
            "unknown pruner",
        ),
        (vec!["--param", "eta=log:0.1:1", "--sampler", "grid"], "eta"),
        (vec![], "the search space is empty"),
        (
            vec!["--param", "eta=log:0.1:1", "--trials", "0"],
            "--trials must be at least 1",
        ),
        // Parameters of the other kind of network, or of a layer the list does not have.
        (
            vec!["--param", "conv1.filters=int:1:4"],
            "conv1.filters applies to chapter 6's layer lists (--layers), and this study trains \
             sizes [784, 30, 10]",
        ),
        (
            vec![
                "--layers",
                "conv:2:5,pool:2,softmax",
                "--param",
                "hidden=int:10:20",
            ],
            "hidden applies to the fully-connected networks (--sizes)",
        ),
        (
            vec![
                "--layers",
                "conv:2:5,pool:2,softmax",
                "--param",
                "conv2.filters=int:1:4",
            ],
            "conv2.filters names conv layer 2",
        ),
        (
            vec![
                "--layers",
                "conv:2:5,pool:2,softmax",
                "--param",
                "fc1.size=int:1:4",
            ],
            "fc1.size names fc layer 1",
        ),
        (
            vec!["--sizes", "784,30,10", "--param", "hidden2=int:1:4"],
            "hidden2 names hidden layer 2",
        ),
        // A range whose end cannot be built or held in memory.
        (
            vec![
                "--layers",
                "conv:2:5,pool:2,softmax",
                "--param",
                "conv1.size=int:3:40",
            ],
            "conv1.size=int:3:40: a trial with conv1.size=40 cannot be trained",
        ),
        (
            vec!["--param", "hidden=int:1:9223372036854775807"],
            "more than the",
        ),
        (
            vec![
                "--param",
                "hidden=int:10:100000",
                "--param",
                "mini-batch=int:10:100000",
            ],
            "every range at its high end",
        ),
        // Counts that would allocate or spawn without end before anything is trained.
        (
            vec![
                "--param",
                "eta=log:0.1:1",
                "--sampler",
                "grid:18446744073709551615",
            ],
            "grid:K takes at most 100000 points a range, got 18446744073709551615",
        ),
        (
            vec!["--param", "eta=log:0.1:1", "--sampler", "grid:4294967296"],
            "grid:K takes at most 100000 points",
        ),
        (
            vec![
                "--param",
                "mini-batch=int:10:9223372036854775807",
                "--sampler",
                "grid",
            ],
            "mini-batch=int:10:9223372036854775807 has 9223372036854775798 whole numbers",
        ),
        (
            vec!["--param", "eta=log:0.1:1", "--jobs", "18446744073709551615"],
            "--jobs must be from 1 to 1024, got 18446744073709551615",
        ),
        (
            vec!["--param", "eta=log:0.1:1", "--jobs", "0"],
            "--jobs must be from 1 to 1024, got 0",
        ),
        // Options that mean nothing for a layer list.
        (
            vec![
                "--layers",
                "conv:2:5,pool:2,softmax",
                "--weight-init",
                "large",
                "--param",
                "eta=log:0.1:1",
            ],
            "--weight-init large applies to the fully-connected networks",
        ),
        (
            vec![
                "--layers",
                "conv:2:5,pool:2,softmax",
                "--cost",
                "quadratic",
                "--param",
                "eta=log:0.1:1",
            ],
            "log-likelihood cost, not quadratic",
        ),
    ] {
        let o = tune(&storage, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!db.exists(), "{args:?} wrote the store");
    }
    // A study run again with another space is refused, saying what differs.
    let storage = sqlite("tune-respace");
    let o = tune(
        &storage,
        &[
            "--study",
            "r",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--param",
            "eta=log:0.1:1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tune(
        &storage,
        &[
            "--study",
            "r",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--param",
            "eta=log:0.1:2",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("eta"), "{}", stderr(&o));
    // A file that is not a database is a clear error.
    let junk = write_file(&dir, "junk.db", b"not a database at all, just text");
    let o = tune(
        &format!("sqlite:{}", junk.display()),
        &["--param", "eta=log:0.1:1"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("junk.db"), "{}", stderr(&o));
    // An unreachable server too.
    let o = tune(
        "postgres://nndl:secret@127.0.0.1:1/nndl",
        &["--param", "eta=log:0.1:1"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("secret"), "{}", stderr(&o));
}

/// Runs `nndl` with `args`, killing it if it has not exited within [`HUNG`].
fn nndl_within_bound(args: &[String]) -> std::process::Output {
    nndl_within(args, HUNG)
}

/// A study of three trials in this process (two workers), in which trial 1 panics as it starts:
/// it fails with the panic's message, the others complete, and the study returns its result.
#[test]
fn a_panicking_trial_fails_and_the_study_goes_on() {
    let storage = sqlite("tune-panic");
    let mut base = TrainConfig::book_run(Variant::Network3);
    base.sgd.epochs = 1;
    let request = TuneRequest {
        study: "p".into(),
        storage: storage.clone(),
        space: Space::parse(&["eta=choice:0.25,0.5,1".to_string()]).unwrap(),
        sampler: "grid".parse::<SamplerSpec>().unwrap(),
        pruner: "none".parse::<PrunerSpec>().unwrap(),
        trials: 3,
        jobs: 2,
        base,
        layers: None,
        data: mnist_path(),
        train_size: Some(1000),
        validation_size: Some(1000),
        worker: Some("w".into()),
        heartbeat: Duration::from_millis(100),
        stale_after: Duration::from_secs(1),
        threads: 1,
        tensorboard: None,
        panic_in_trial: Some(1),
    };
    let checked = request.check().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let result = nndl::run::tune::tune(&checked, Arc::new(AtomicBool::new(false)));
        let _ = send.send(result.map_err(|e| chain(&e)));
    });
    let result = match receive.recv_timeout(HUNG) {
        Ok(result) => result.unwrap(),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the study hung"),
        Err(e) => panic!("the study's thread ended without an answer: {e}"),
    };
    let t = trials(&storage, "p");
    assert_eq!(t.len(), 3);
    assert_eq!(t[1].state, TrialState::Failed);
    assert_eq!(
        t[1].message.as_deref(),
        Some("panicked: trial 1 panics on purpose")
    );
    for i in [0, 2] {
        assert_eq!(t[i].state, TrialState::Complete, "trial {i}");
        assert_eq!(t[i].values.len(), 1, "trial {i}");
        assert_eq!(t[i].message, None, "trial {i}");
    }
    let result = result.expect("a best trial");
    assert_ne!(result.trial, 1);
}

/// A trial taken over from a worker that died, whose checkpoint holds its first weight matrix
/// transposed (784 × 30 where the network needs 30 × 784): it is refused when restored, before
/// the first matrix product would panic on it. The trial fails with that message; the command
/// ends with success.
#[test]
fn a_trial_with_a_transposed_checkpoint_fails_and_the_study_goes_on() {
    let storage = sqlite("tune-transposed");
    let args = |trials: &'static str| {
        tune_args(
            &storage,
            &[
                "--study",
                "x",
                "--sampler",
                "random",
                "--trials",
                trials,
                "--param",
                "eta=log:0.1:1",
            ],
        )
    };
    let o = nndl_within_bound(&args("1"));
    assert!(o.status.success(), "{}", stderr(&o));

    // Trial 1, one epoch in, as a dead worker left it.
    let mut s = store::open(&storage).unwrap();
    let id = s.studies().unwrap()[0].id;
    let params = trials(&storage, "x")[0].params.clone();
    assert_eq!(s.enqueue_trial(id, &params, 2).unwrap(), Some(1));
    let claimed = s.claim_stale(id, "dead", Duration::ZERO).unwrap().unwrap();
    assert_eq!(claimed.number, 1);
    let config = TrainConfig::book_run(Variant::Network3).check().unwrap();
    let mut rng = rng(1);
    let mut net: Network = build_network(config.network.fully_connected().unwrap(), &mut rng);
    net.weights[0] = net.weights[0].t().to_owned();
    let bytes = Training::new(net, &config, 2000, rng).save().unwrap();
    assert!(s.report_epoch(id, 1, "dead", 0, 50.0, 1.0, &bytes).unwrap());
    drop(s);
    // Stale after --stale-after 1.5 seconds.
    std::thread::sleep(Duration::from_millis(1600));

    let o = nndl_within_bound(&args("2"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Trial 1: failed: "), "{out}");
    let t = trials(&storage, "x");
    assert_eq!(t[0].state, TrialState::Complete, "{out}");
    assert_eq!(t[1].state, TrialState::Failed, "{out}");
    let message = t[1].message.as_deref().unwrap_or_default();
    assert_eq!(
        message,
        "its checkpoint cannot be resumed: the saved run does not match this one: its network \
         is not laid out as the trial's network (other layers or shapes)"
    );
    assert!(
        out.contains(&format!("Trial 1: failed: {message}")),
        "{out}"
    );
    assert_eq!(
        t[1].values,
        [50.0],
        "the values before the failure are kept"
    );
    assert!(out.contains("Best trial 0: "), "{out}");
}

/// A worker killed (SIGKILL) on this host leaves its trial running with a fresh heartbeat.
/// Another worker started meanwhile says what it waits for — which trial, whose worker, its
/// process, until when — and, once the process is gone, takes the trial over at once, not
/// after `--stale-after` (ten minutes here) of silence.
fn a_dead_workers_trial_is_taken_over_at_once(storage: &str, study: &str) {
    let mut args = tune_args(
        storage,
        &[
            "--study",
            study,
            "--sampler",
            "grid",
            "--trials",
            "1",
            "--epochs",
            "200",
            "--param",
            "eta=choice:0.5",
        ],
    );
    let stale = args.iter().position(|a| a == "--stale-after").unwrap();
    args[stale + 1] = "600".into();
    let spawn = |output: fn() -> Stdio| {
        Command::new(env!("CARGO_BIN_EXE_nndl"))
            .args(&args)
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap()
    };
    let mut first = spawn(Stdio::null);
    let start = Instant::now();
    let epochs = || {
        store::open(storage)
            .ok()
            .and_then(|mut s| {
                let id = s
                    .studies()
                    .ok()?
                    .into_iter()
                    .find(|s| s.spec.name == study)?
                    .id;
                Some(s.trials(id).ok()?.first()?.values.len())
            })
            .unwrap_or(0)
    };
    while epochs() < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no epoch reported"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = spawn(Stdio::piped);
    let (lines, printed) = mpsc::channel();
    let stdout = second.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    // The second worker's errors, read as they come (a full pipe would stall it), to show
    // why it stopped if it does.
    let mut stderr = second.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut said = Vec::new();
    let waiting = loop {
        match printed.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("Waiting for ") => break line,
            Ok(line) => said.push(line),
            Err(e) => {
                let _ = first.kill();
                let _ = second.kill();
                let status = second.wait().unwrap();
                let errors = errors.join().unwrap();
                panic!(
                    "the second worker said nothing of what it waits for ({e:?}, {status}); \
                     it said {said:?}, and on stderr:\n{errors}"
                );
            }
        }
    };
    let pid = first.id();
    for want in [
        "Waiting for trial 0 of worker ".to_string(),
        format!("(process {pid} on this host, still running)"),
        "taken over at ".to_string(),
        " UTC (in ".to_string(),
        "(--stale-after 600 s)".to_string(),
    ] {
        assert!(waiting.contains(&want), "{want:?} not in {waiting:?}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let killed = Instant::now();
    // The rest of the trial takes seconds; waiting out --stale-after would take ten minutes.
    let mut rest = Vec::new();
    while let Ok(line) = printed.recv_timeout(Duration::from_secs(120)) {
        rest.push(line);
    }
    let status = second.wait().unwrap();
    let errors = errors.join().unwrap();
    assert!(status.success(), "{rest:?}\n{errors}");
    assert!(killed.elapsed() < Duration::from_secs(120), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("Best trial 0: ")),
        "{rest:?}"
    );
    let mut s = store::open(storage).unwrap();
    let id = s
        .studies()
        .unwrap()
        .into_iter()
        .find(|s| s.spec.name == study)
        .unwrap()
        .id;
    let trials = s.trials(id).unwrap();
    assert_eq!(trials[0].state, TrialState::Complete);
    assert_eq!(trials[0].values.len(), 200);
}

#[test]
fn a_dead_workers_trial_on_this_host_is_taken_over_at_once() {
    a_dead_workers_trial_is_taken_over_at_once(&sqlite("tune-dead-worker"), "one");
}

#[test]
fn a_dead_workers_trial_on_this_host_is_taken_over_at_once_on_postgres() {
    let Ok(url) = std::env::var("NNDL_TEST_POSTGRES") else {
        eprintln!("skipped: set NNDL_TEST_POSTGRES=postgres://… to run it on PostgreSQL");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let study = format!("dead-worker-{}-{nanos}", std::process::id());
    a_dead_workers_trial_is_taken_over_at_once(&url, &study);
}
