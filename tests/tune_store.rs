//! The study store, on SQLite and on PostgreSQL: a study reopened with the same definition,
//! refused with a different one; concurrent workers (threads and processes, each with its own
//! connection) never exceed the trial budget nor get the same trial or grid point twice; a
//! stale trial is taken over with its values and checkpoint; epoch reports are idempotent; a
//! failed trial keeps its message; a store of nndl's old layout is refused, naming `nndl tune
//! migrate`, and that migration converts it keeping the old tables; bad databases are clear
//! errors.
//!
//! The PostgreSQL tests use the server named by `NNDL_TEST_POSTGRES` (a `postgres://` URL).
//! Without it they are skipped, saying so — except under `CI`, where they fail. `.ci/run`
//! shows how to start a server on 127.0.0.1 for them.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nndl::tune::space::{Kind, Param, Params, Space, Value};
use nndl::tune::store::{self, Store, StoreError, StudyId, StudyResult};
use nndl::tune::study::{StudySpec, Trial, TrialState};

use common::chain;

/// A study name no other test run has used (PostgreSQL databases outlive a test run).
fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn spec(name: &str) -> StudySpec {
    StudySpec {
        name: unique(name),
        space: Space {
            params: vec![
                Param {
                    name: "eta".into(),
                    kind: Kind::Log { lo: 0.01, hi: 10.0 },
                },
                Param {
                    name: "mini-batch".into(),
                    kind: Kind::Choice {
                        choices: vec!["10".into(), "20".into()],
                    },
                },
            ],
        },
        sampler: "grid:4".into(),
        base: serde_json::json!({"net": "network3", "epochs": 10, "train-size": 50000}),
    }
}

fn sqlite_url(test: &str) -> String {
    let dir = common::temp_dir(&format!("tune-store-{test}"));
    format!("sqlite:{}", dir.join("nndl-study.db").display())
}

fn postgres_url() -> Option<String> {
    match std::env::var("NNDL_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !ci,
                "CI is set but NNDL_TEST_POSTGRES is not: the PostgreSQL store must be tested in CI"
            );
            eprintln!(
                "skipped: set NNDL_TEST_POSTGRES=postgres://USER:PASSWORD@HOST:PORT/DATABASE \
                 to test the PostgreSQL store"
            );
            None
        }
    }
}

fn open(url: &str) -> Box<dyn Store> {
    store::open(url).unwrap_or_else(|e| panic!("{}", chain(&e)))
}

/// A grid-like sampler: the lowest grid point no trial has yet. Two workers reading the trials
/// at once would both take it; the sleep widens that window.
fn next_point(_number: u32, trials: &[Trial]) -> Option<Params> {
    let taken: BTreeSet<i64> = trials
        .iter()
        .map(|t| match t.params.get("point") {
            Some(Value::Int(p)) => *p,
            other => panic!("trial {} has point {other:?}", t.number),
        })
        .collect();
    let point = (0..).find(|p| !taken.contains(p))?;
    thread::sleep(Duration::from_millis(2));
    Some(Params::from([("point".to_string(), Value::Int(point))]))
}

fn point(trial: &Trial) -> i64 {
    match trial.params.get("point") {
        Some(Value::Int(p)) => *p,
        other => panic!("trial {} has point {other:?}", trial.number),
    }
}

/// One worker: starts trials until the study is full, reporting two epochs of each.
fn work(store: &mut dyn Store, study: StudyId, worker: &str, max_trials: u32) -> Vec<Trial> {
    let mut mine = Vec::new();
    while let Some(trial) = store
        .start_trial(study, worker, max_trials, &mut next_point)
        .unwrap()
    {
        for epoch in 0..2 {
            let value = 50.0 + trial.number as f64 + epoch as f64;
            assert!(store
                .report_epoch(
                    study,
                    trial.number,
                    worker,
                    epoch,
                    value,
                    0.01,
                    &[epoch as u8; 64]
                )
                .unwrap());
        }
        assert!(store
            .finish(study, trial.number, worker, TrialState::Complete)
            .unwrap());
        mine.push(trial);
    }
    mine
}

/// Every number and every grid point in 0..max exactly once, and nothing more.
fn assert_covered_once(trials: &[Trial], max_trials: u32) {
    let numbers: Vec<u32> = trials.iter().map(|t| t.number).collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..max_trials).collect::<Vec<_>>(), "{numbers:?}");
    let mut points: Vec<i64> = trials.iter().map(point).collect();
    points.sort_unstable();
    assert_eq!(points, (0..i64::from(max_trials)).collect::<Vec<_>>());
}

fn reopen_same_spec_and_refuse_a_different_one(url: &str) {
    let spec = spec("reopen");
    let id = open(url).open_study(&spec).unwrap();
    let mut again = open(url);
    assert_eq!(again.open_study(&spec).unwrap(), id);
    let info = again.studies().unwrap();
    let listed = info.iter().find(|s| s.id == id).expect("study listed");
    assert_eq!(listed.spec, spec);
    assert_eq!(listed.trials, 0);
    assert!(listed.created <= SystemTime::now() + Duration::from_secs(60));

    let mut other = spec.clone();
    other.space.params.push(Param {
        name: "lambda".into(),
        kind: Kind::Log {
            lo: 0.001,
            hi: 50.0,
        },
    });
    other.space.params[0].kind = Kind::Log { lo: 0.1, hi: 10.0 };
    other.sampler = "tpe".into();
    other.base["epochs"] = serde_json::json!(30);
    let err = again.open_study(&other).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::SpecDiffers { .. }), "{message}");
    for part in [
        "parameter eta changed from log:0.01:10 to log:0.1:10",
        "parameter lambda added (log:0.001:50)",
        "sampler changed from grid:4 to tpe",
        "setting epochs changed from 10 to 30",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    // Refused means unchanged.
    assert_eq!(open(url).open_study(&spec).unwrap(), id);
}

fn concurrent_workers_share_the_budget_and_the_grid(url: &str) {
    const WORKERS: usize = 4;
    const MAX: u32 = 24;
    let spec = spec("concurrent");
    // Every worker opens its own connection and the study at once, on a fresh database for
    // SQLite: creating the file, its tables and the study race too.
    let results: Vec<(StudyId, Vec<Trial>)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let spec = &spec;
                scope.spawn(move || {
                    let mut store = open(url);
                    let study = store.open_study(spec).unwrap();
                    (study, work(&mut *store, study, &format!("worker-{w}"), MAX))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let study = results[0].0;
    assert!(results.iter().all(|(id, _)| *id == study));
    let given: Vec<Trial> = results.into_iter().flat_map(|(_, t)| t).collect();
    assert_covered_once(&given, MAX);

    let mut store = open(url);
    let trials = store.trials(study).unwrap();
    assert_covered_once(&trials, MAX);
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete);
        assert_eq!(t.values.len(), 2);
        let mine = given.iter().find(|g| g.number == t.number).unwrap();
        assert_eq!(t.worker, mine.worker);
        assert_eq!(t.params, mine.params);
    }
    // Full: a worker started later gets nothing, and the sampler is not asked.
    let mut asked = false;
    let none = store
        .start_trial(study, "late", MAX, &mut |_, _| {
            asked = true;
            None
        })
        .unwrap();
    assert!(none.is_none() && !asked);
    // A larger budget counts the trials already there.
    let next = store
        .start_trial(study, "late", MAX + 1, &mut next_point)
        .unwrap()
        .unwrap();
    assert_eq!((next.number, point(&next)), (MAX, i64::from(MAX)));
}

fn stale_trial_is_taken_over_with_its_values_and_checkpoint(url: &str) {
    let mut a = open(url);
    let mut b = open(url);
    let study = a.open_study(&spec("stale")).unwrap();
    let trial = a
        .start_trial(study, "a", 10, &mut next_point)
        .unwrap()
        .unwrap();
    // A checkpoint of the size of a network's weights and state.
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert!(a
        .report_epoch(study, trial.number, "a", 0, 91.5, 2.0, b"epoch 0")
        .unwrap());
    assert!(a
        .report_epoch(study, trial.number, "a", 1, 93.25, 2.5, &blob)
        .unwrap());

    // Alive: nothing to take.
    assert!(b
        .claim_stale(study, "b", Duration::from_secs(3600))
        .unwrap()
        .is_none());
    thread::sleep(Duration::from_millis(400));
    assert!(a.heartbeat(study, trial.number, "a").unwrap());
    assert!(b
        .claim_stale(study, "b", Duration::from_millis(300))
        .unwrap()
        .is_none());
    thread::sleep(Duration::from_millis(400));

    // Silent for longer than 300 ms: b takes it, values and checkpoint intact.
    let taken = b
        .claim_stale(study, "b", Duration::from_millis(300))
        .unwrap()
        .expect("the stale trial");
    assert_eq!(taken.number, trial.number);
    assert_eq!(taken.params, trial.params);
    assert_eq!(taken.state, TrialState::Running);
    assert_eq!(taken.worker.as_deref(), Some("b"));
    assert_eq!(taken.values, vec![91.5, 93.25]);
    assert_eq!(taken.seconds, 4.5);
    assert_eq!(b.checkpoint(study, trial.number).unwrap(), Some(blob));
    // Only once.
    assert!(a
        .claim_stale(study, "c", Duration::from_millis(300))
        .unwrap()
        .is_none());

    // The old worker learns it has lost the trial and changes nothing.
    assert!(!a.heartbeat(study, trial.number, "a").unwrap());
    assert!(!a
        .report_epoch(study, trial.number, "a", 2, 99.0, 1.0, b"stale")
        .unwrap());
    assert!(!a
        .finish(study, trial.number, "a", TrialState::Failed)
        .unwrap());

    // The new one goes on from epoch 2.
    assert!(b
        .report_epoch(study, trial.number, "b", 2, 94.0, 1.0, b"epoch 2")
        .unwrap());
    assert!(b
        .finish(study, trial.number, "b", TrialState::Complete)
        .unwrap());
    let t = &b.trials(study).unwrap()[0];
    assert_eq!(t.values, vec![91.5, 93.25, 94.0]);
    assert_eq!(
        (t.state, t.worker.as_deref(), t.seconds),
        (TrialState::Complete, Some("b"), 5.5)
    );
    // A finished trial is never stale.
    thread::sleep(Duration::from_millis(50));
    assert!(a.claim_stale(study, "c", Duration::ZERO).unwrap().is_none());
}

fn waiting_trials_are_claimed_first(url: &str) {
    let mut s = open(url);
    let study = s.open_study(&spec("waiting")).unwrap();
    let running = s
        .start_trial(study, "a", 3, &mut next_point)
        .unwrap()
        .unwrap();
    let params = Params::from([("point".to_string(), Value::Int(7))]);
    assert_eq!(s.enqueue_trial(study, &params, 3).unwrap(), Some(1));
    assert_eq!(s.enqueue_trial(study, &params, 3).unwrap(), Some(2));
    assert_eq!(s.enqueue_trial(study, &params, 3).unwrap(), None);
    thread::sleep(Duration::from_millis(50));
    // Waiting trials before the stale running one, lowest number first.
    let first = s.claim_stale(study, "b", Duration::ZERO).unwrap().unwrap();
    assert_eq!(
        (first.number, first.state, first.params),
        (1, TrialState::Running, params)
    );
    assert_eq!(
        s.claim_stale(study, "c", Duration::ZERO)
            .unwrap()
            .unwrap()
            .number,
        2
    );
    assert_eq!(
        s.claim_stale(study, "d", Duration::ZERO)
            .unwrap()
            .unwrap()
            .number,
        running.number
    );
    assert!(s.checkpoint(study, 1).unwrap().is_none());
}

fn epoch_reports_are_idempotent(url: &str) {
    let mut s = open(url);
    let study = s.open_study(&spec("idempotent")).unwrap();
    let n = s
        .start_trial(study, "w", 5, &mut next_point)
        .unwrap()
        .unwrap()
        .number;
    let values = |s: &mut Box<dyn Store>| s.trials(study).unwrap()[0].values.clone();
    assert!(s.report_epoch(study, n, "w", 0, 50.0, 1.0, b"0").unwrap());
    assert!(s.report_epoch(study, n, "w", 1, 60.0, 1.0, b"1").unwrap());
    // Epoch 1 again, as a worker resumed from the epoch-0 checkpoint reports it.
    assert!(s.report_epoch(study, n, "w", 1, 61.0, 1.0, b"1'").unwrap());
    assert_eq!(values(&mut s), vec![50.0, 61.0]);
    assert_eq!(s.checkpoint(study, n).unwrap().as_deref(), Some(&b"1'"[..]));
    // Epoch 0 again drops the later epochs, which belonged to the abandoned run.
    assert!(s.report_epoch(study, n, "w", 0, 55.0, 1.0, b"0'").unwrap());
    assert_eq!(values(&mut s), vec![55.0]);
    // A gap is refused, as is a value that is not a number; nothing changes.
    let gap = s
        .report_epoch(study, n, "w", 2, 70.0, 1.0, b"2")
        .unwrap_err();
    assert!(
        matches!(
            gap,
            StoreError::EpochGap {
                recorded: 1,
                epoch: 2,
                ..
            }
        ),
        "{gap}"
    );
    let nan = s
        .report_epoch(study, n, "w", 1, f64::NAN, 1.0, b"1")
        .unwrap_err();
    assert!(matches!(nan, StoreError::NotFinite { .. }), "{nan}");
    let t = &s.trials(study).unwrap()[0];
    assert_eq!((t.values.clone(), t.seconds), (vec![55.0], 4.0));
    assert_eq!(s.checkpoint(study, n).unwrap().as_deref(), Some(&b"0'"[..]));
}

fn only_the_best_complete_checkpoint_is_kept(url: &str) {
    let mut s = open(url);
    let study = s.open_study(&spec("keep")).unwrap();
    let run = |s: &mut Box<dyn Store>, values: &[f64], state| {
        let n = s
            .start_trial(study, "w", 10, &mut next_point)
            .unwrap()
            .unwrap()
            .number;
        for (e, v) in values.iter().enumerate() {
            assert!(s
                .report_epoch(study, n, "w", e, *v, 1.0, &[n as u8])
                .unwrap());
        }
        assert!(s.finish(study, n, "w", state).unwrap());
        n
    };
    let t0 = run(&mut s, &[90.0, 95.0], TrialState::Complete);
    let t1 = run(&mut s, &[97.0], TrialState::Pruned);
    let t2 = run(&mut s, &[96.0, 94.0], TrialState::Complete);
    let t3 = run(&mut s, &[10.0], TrialState::Failed);
    let has = |s: &mut Box<dyn Store>, n| s.checkpoint(study, n).unwrap().is_some();
    assert!(!has(&mut s, t0) && !has(&mut s, t1) && has(&mut s, t2) && !has(&mut s, t3));
    // A running trial keeps its checkpoint whatever its values.
    let t4 = s
        .start_trial(study, "w", 10, &mut next_point)
        .unwrap()
        .unwrap()
        .number;
    assert!(s.report_epoch(study, t4, "w", 0, 1.0, 1.0, b"x").unwrap());
    let _ = run(&mut s, &[20.0], TrialState::Complete);
    assert!(has(&mut s, t2) && has(&mut s, t4));
    let not_final = s.finish(study, t4, "w", TrialState::Running).unwrap_err();
    assert!(matches!(not_final, StoreError::NotFinal(_)), "{not_final}");

    assert_eq!(s.study_result(study).unwrap(), None);
    let result = StudyResult {
        trial: t2,
        validation: 96.0,
        test: 95.75,
    };
    s.set_study_result(study, &result).unwrap();
    assert_eq!(open(url).study_result(study).unwrap(), Some(result));
    let missing = s.study_result(StudyId::MAX).unwrap_err();
    assert!(matches!(missing, StoreError::NoStudy { .. }), "{missing}");
}

/// Worker processes: this test binary run again for the ignored `worker_process` test.
fn separate_processes_share_the_study(url: &str) {
    const PROCESSES: usize = 3;
    const MAX: u32 = 12;
    let study = open(url).open_study(&spec("processes")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "worker_process", "--ignored", "--nocapture"])
                .env(
                    "NNDL_STORE_WORKER",
                    format!("{url} {study} {MAX} process-{p}"),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let trials = open(url).trials(study).unwrap();
    assert_covered_once(&trials, MAX);
    let workers: BTreeSet<_> = trials.iter().filter_map(|t| t.worker.clone()).collect();
    assert!(
        workers.iter().all(|w| w.starts_with("process-")),
        "{workers:?}"
    );
}

/// One worker process of `separate_processes_share_the_study`.
#[test]
#[ignore = "run by separate_processes_share_the_study"]
fn worker_process() {
    let job =
        std::env::var("NNDL_STORE_WORKER").expect("run by separate_processes_share_the_study");
    let [url, study, max, worker]: [&str; 4] = job
        .split(' ')
        .collect::<Vec<_>>()
        .try_into()
        .expect("URL STUDY MAX WORKER");
    let mut store = open(url);
    work(
        &mut *store,
        study.parse().unwrap(),
        worker,
        max.parse().unwrap(),
    );
}

fn a_failed_trial_keeps_its_message(url: &str) {
    let mut s = open(url);
    let study = s.open_study(&spec("message")).unwrap();
    let start = |s: &mut Box<dyn Store>| {
        s.start_trial(study, "a", 10, &mut next_point)
            .unwrap()
            .unwrap()
    };
    let failed = start(&mut s);
    let complete = start(&mut s);
    assert!(s
        .report_epoch(study, failed.number, "a", 0, 42.0, 1.0, b"weights")
        .unwrap());
    let message = "panicked: ndarray: inputs 784 × 30, 784 × 10, and output 30 × 10 are \
                   not compatible for matrix multiplication";
    // Only the worker that runs it can fail it.
    assert!(!s.fail(study, failed.number, "b", message).unwrap());
    assert!(s.fail(study, failed.number, "a", message).unwrap());
    assert!(!s.fail(study, failed.number, "a", "again").unwrap());
    assert!(s
        .finish(study, complete.number, "a", TrialState::Complete)
        .unwrap());
    let t = s.trials(study).unwrap();
    assert_eq!(t[0].state, TrialState::Failed);
    assert_eq!(t[0].message.as_deref(), Some(message));
    assert_eq!(t[0].values, [42.0], "its values are kept");
    assert_eq!(s.checkpoint(study, failed.number).unwrap(), None);
    assert_eq!(t[1].state, TrialState::Complete);
    assert_eq!(t[1].message, None);
    // A failed trial is never taken over.
    assert!(s.claim_stale(study, "c", Duration::ZERO).unwrap().is_none());
}

/// Runs `sql` on the database at `url` directly, as another program could.
fn run_sql(url: &str, sql: &str) {
    match url.strip_prefix("sqlite:") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        None => postgres::Client::connect(url, postgres::NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

/// A running trial whose heartbeat is missing or unreadable is taken over, not waited on
/// forever.
fn a_missing_or_garbage_heartbeat_is_stale(url: &str) {
    let mut a = open(url);
    let study = a.open_study(&spec("no-heartbeat")).unwrap();
    let hour = Duration::from_secs(3600);
    for (number, damage) in [
        (0, "DELETE FROM trial_heartbeats WHERE trial_id = {id}"),
        (
            1,
            "UPDATE trial_heartbeats SET heartbeat = '2999-01-01 00:00:00' WHERE trial_id = {id}",
        ),
    ] {
        let trial = a
            .start_trial(study, "a", 10, &mut next_point)
            .unwrap()
            .unwrap();
        assert_eq!(trial.number, number);
        assert!(a.claim_stale(study, "b", hour).unwrap().is_none());
        let id =
            format!("(SELECT trial_id FROM trials WHERE study_id = {study} AND number = {number})");
        run_sql(url, &damage.replace("{id}", &id));
        let taken = a
            .claim_stale(study, "b", hour)
            .unwrap()
            .expect("taken over");
        assert_eq!((taken.number, taken.worker.as_deref()), (number, Some("b")));
    }
}

/// A deleted study is gone with all its rows; the other studies stay.
fn a_study_is_deleted_with_its_trials(url: &str) {
    let mut s = open(url);
    let keep = s.open_study(&spec("keep")).unwrap();
    let gone_spec = spec("gone");
    let gone = s.open_study(&gone_spec).unwrap();
    for study in [keep, gone] {
        let t = s
            .start_trial(study, "a", 10, &mut next_point)
            .unwrap()
            .unwrap();
        assert!(s
            .report_epoch(study, t.number, "a", 0, 90.0, 1.0, b"c")
            .unwrap());
    }
    assert_eq!(s.delete_study(gone).unwrap(), 1);
    let names: Vec<String> = s
        .studies()
        .unwrap()
        .into_iter()
        .map(|i| i.spec.name)
        .collect();
    assert!(!names.contains(&gone_spec.name), "{names:?}");
    assert!(matches!(s.trials(gone), Err(StoreError::NoStudy { .. })));
    assert_eq!(s.trials(keep).unwrap()[0].values, vec![90.0]);
    // A worker still running a trial of the deleted study is told it no longer does.
    assert!(!s.report_epoch(gone, 0, "a", 1, 91.0, 1.0, b"c").unwrap());
    // The name can be used again, for a study with no trials.
    let again = s.open_study(&gone_spec).unwrap();
    assert!(s.trials(again).unwrap().is_empty());
}

/// A running trial whose worker's process on this host has exited is taken over at once,
/// whatever its heartbeat; one whose process lives, or that runs on another host, is not.
/// [`Store::running`] says who runs each and how long it has been silent.
fn a_dead_process_on_this_host_is_taken_over_at_once(url: &str) {
    use nndl::tune::store::process;
    let mut a = open(url);
    let study = a.open_study(&spec("dead-process")).unwrap();
    let hour = Duration::from_secs(3600);
    let mut exited = Command::new("true").spawn().unwrap();
    let dead = exited.id();
    exited.wait().unwrap();
    let mut live = Command::new("sleep").arg("60").spawn().unwrap();
    let host = process::this_host();
    let trial = a
        .start_trial(study, "a", 10, &mut next_point)
        .unwrap()
        .unwrap();
    let running = a.running(study).unwrap();
    assert_eq!(running.len(), 1);
    let r = &running[0];
    assert_eq!(
        (r.number, r.worker.as_deref(), r.host.as_deref(), r.pid),
        (
            trial.number,
            Some("a"),
            Some(host.as_str()),
            Some(process::this_pid())
        )
    );
    assert!(r.is_ours());
    assert!(r.silent.is_some_and(|s| (-5.0..60.0).contains(&s)), "{r:?}");
    let id = format!(
        "(SELECT trial_id FROM trials WHERE study_id = {study} AND number = {})",
        trial.number
    );
    let set = |host: &str, pid: u32| {
        run_sql(
            url,
            &format!(
                "UPDATE nndl_trial_workers SET host = '{host}', pid = {pid} WHERE trial_id = {id}"
            ),
        )
    };
    // This process, a live one of this host, a dead one of another host: all waited for.
    assert!(a.claim_stale(study, "b", hour).unwrap().is_none());
    set(&host, live.id());
    assert!(a.claim_stale(study, "b", hour).unwrap().is_none());
    set("elsewhere pid:[1]", dead);
    assert!(a.claim_stale(study, "b", hour).unwrap().is_none());
    // A dead one of this host: taken over at once, its new worker recorded with its process.
    set(&host, dead);
    assert!(!a.running(study).unwrap()[0].is_ours());
    let taken = a
        .claim_stale(study, "b", hour)
        .unwrap()
        .expect("taken over");
    assert_eq!(
        (taken.number, taken.worker.as_deref()),
        (trial.number, Some("b"))
    );
    assert!(a.running(study).unwrap()[0].is_ours());
    live.kill().unwrap();
    live.wait().unwrap();
}

/// A store made before nndl recorded its workers' processes gains the columns when a worker
/// opens it, and Optuna's tables are left as they were.
#[test]
fn a_store_without_the_worker_process_columns_gains_them() {
    let url = sqlite_url("worker-process-columns");
    let path = url.strip_prefix("sqlite:").unwrap();
    let study = {
        let mut s = open(&url);
        s.open_study(&spec("columns")).unwrap()
    };
    run_sql(
        &url,
        "ALTER TABLE nndl_trial_workers DROP COLUMN host;
         ALTER TABLE nndl_trial_workers DROP COLUMN pid;",
    );
    let columns = || -> Vec<String> {
        let c = rusqlite::Connection::open(path).unwrap();
        let mut q = c
            .prepare("SELECT name FROM pragma_table_info('nndl_trial_workers')")
            .unwrap();
        q.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(columns(), ["trial_id", "worker", "seconds"]);
    let optuna = || -> String {
        let c = rusqlite::Connection::open(path).unwrap();
        let mut q = c
            .prepare("SELECT sql FROM sqlite_master WHERE name NOT LIKE 'nndl%' ORDER BY name")
            .unwrap();
        let rows: Vec<Option<String>> = q
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        format!("{rows:?}")
    };
    let before = optuna();
    let mut s = open(&url);
    assert_eq!(columns(), ["trial_id", "worker", "seconds", "host", "pid"]);
    assert_eq!(optuna(), before);
    let trial = s
        .start_trial(study, "a", 10, &mut next_point)
        .unwrap()
        .unwrap();
    assert!(s.running(study).unwrap()[0].is_ours(), "{trial:?}");
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite_store {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(&super::sqlite_url(stringify!($scenario)));
                }
            )*
        }
        mod postgres_store {
            $(
                #[test]
                fn $scenario() {
                    if let Some(url) = super::postgres_url() {
                        super::$scenario(&url);
                    }
                }
            )*
        }
    };
}

on_both_stores!(
    reopen_same_spec_and_refuse_a_different_one,
    concurrent_workers_share_the_budget_and_the_grid,
    stale_trial_is_taken_over_with_its_values_and_checkpoint,
    waiting_trials_are_claimed_first,
    epoch_reports_are_idempotent,
    only_the_best_complete_checkpoint_is_kept,
    separate_processes_share_the_study,
    a_failed_trial_keeps_its_message,
    a_missing_or_garbage_heartbeat_is_stale,
    a_study_is_deleted_with_its_trials,
    a_dead_process_on_this_host_is_taken_over_at_once,
);

/// Reading commands open a store read-only: a file that is not a study store (empty, or
/// another program's database) is refused, naming what it holds, and left exactly as it was.
#[test]
fn a_read_only_open_changes_nothing_and_refuses_other_databases() {
    let dir = common::temp_dir("tune-store-read-only");
    let empty = common::write_file(&dir, "empty.db", b"");
    let other = dir.join("other.db");
    let _ = std::fs::remove_file(&other);
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('a');")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    for path in [&empty, &other] {
        let url = format!("sqlite:{}", path.display());
        let err = match store::open_read_only(&url) {
            Err(err) => err,
            Ok(_) => panic!("{url} opened"),
        };
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
        assert!(err.to_string().contains("no Optuna tables"), "{err}");
    }
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
    assert_eq!(std::fs::read(&other).unwrap(), before);
    assert!(!dir.join("other.db-wal").exists());
    // A real store opens read-only and reads, but cannot be written through.
    let url = sqlite_url("read-only-store");
    open(&url).open_study(&spec("ro")).unwrap();
    let mut ro = store::open_read_only(&url).unwrap();
    assert_eq!(ro.studies().unwrap().len(), 1);
    assert!(ro.open_study(&spec("another")).is_err());
}

/// Layout version 1 of a SQLite store, as nndl wrote it before trials kept a message.
const SQLITE_V1: &str = "
CREATE TABLE nndl_schema (version INTEGER NOT NULL);
CREATE TABLE nndl_studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    result TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE nndl_trials (
    study_id INTEGER NOT NULL REFERENCES nndl_studies (id),
    number INTEGER NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('waiting', 'running', 'complete', 'pruned', 'failed')),
    worker TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    heartbeat_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (study_id, number)
);
CREATE TABLE nndl_trial_values (
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (study_id, number, epoch),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
CREATE TABLE nndl_checkpoints (
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (study_id, number),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
INSERT INTO nndl_schema (version) VALUES (1);
";

/// Layout version 1 of a PostgreSQL store.
const POSTGRES_V1: &str = "
CREATE TABLE nndl_schema (version BIGINT NOT NULL);
CREATE TABLE nndl_studies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    result TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE nndl_trials (
    study_id BIGINT NOT NULL REFERENCES nndl_studies (id),
    number BIGINT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('waiting', 'running', 'complete', 'pruned', 'failed')),
    worker TEXT,
    seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (study_id, number)
);
CREATE TABLE nndl_trial_values (
    study_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (study_id, number, epoch),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
CREATE TABLE nndl_checkpoints (
    study_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (study_id, number),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
INSERT INTO nndl_schema (version) VALUES (1);
";

/// A study in a store of layout version 1, as the old nndl left it: trial 0 complete with two
/// epochs, trial 1 running on worker "a" with one epoch and its checkpoint. `run` executes
/// the statements (`?` for the time, which each database writes its own way).
fn old_study(spec: &StudySpec, run: &mut dyn FnMut(&str)) {
    let json = serde_json::to_string(spec).unwrap().replace('\'', "''");
    run(&format!(
        "INSERT INTO nndl_studies (name, spec, created_at) VALUES ('{}', '{json}', ?)",
        spec.name
    ));
    for (number, state, worker) in [(0, "complete", "z"), (1, "running", "a")] {
        run(&format!(
            "INSERT INTO nndl_trials (study_id, number, params, state, worker, seconds,
                                      created_at, heartbeat_at)
             VALUES (1, {number}, '{{\"point\":{number}}}', '{state}', '{worker}', 2.5, ?, ?)"
        ));
    }
    run("INSERT INTO nndl_trial_values VALUES (1, 0, 0, 90.0), (1, 0, 1, 91.0), (1, 1, 0, 80.0)");
}

/// The old store at `url` is refused, naming the command that converts it, and left as it
/// was; `nndl tune migrate` (here [`store::migrate`]) converts it once, keeping the old tables;
/// then the study is whole, its running trial resumes from its checkpoint and can be failed
/// with a message.
fn the_old_layout_is_migrated(url: &str, spec: &StudySpec, old_tables: &mut dyn FnMut() -> i64) {
    let err = match store::open(url) {
        Err(err) => err,
        Ok(_) => panic!("an old store opened"),
    };
    assert!(
        matches!(err, StoreError::OldLayout { found: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nndl tune migrate"), "{err}");
    let migrated = store::migrate(url).unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(
        (migrated.from, migrated.studies, migrated.trials),
        (1, 1, 2)
    );
    assert!(matches!(
        store::migrate(url),
        Err(StoreError::NothingToMigrate { .. })
    ));
    assert_eq!(old_tables(), 2, "the old trials are kept");
    let mut s = open(url);
    let study = s.open_study(spec).unwrap();
    let t = s.trials(study).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].state, t[0].values.clone(), t[0].message.clone()),
        (TrialState::Complete, vec![90.0, 91.0], None)
    );
    assert_eq!((point(&t[0]), point(&t[1])), (0, 1));
    assert_eq!(
        (t[1].state, t[1].values.clone(), t[1].seconds),
        (TrialState::Running, vec![80.0], 2.5)
    );
    assert_eq!(s.checkpoint(study, 1).unwrap(), Some(b"ckpt".to_vec()));
    assert!(s
        .fail(study, 1, "a", "diverged in epoch 1 (eta 9)")
        .unwrap());
    let t = s.trials(study).unwrap();
    assert_eq!(t[1].state, TrialState::Failed);
    assert_eq!(t[1].message.as_deref(), Some("diverged in epoch 1 (eta 9)"));
}

#[test]
fn a_sqlite_store_of_layout_1_is_refused_then_migrated() {
    let url = sqlite_url("layout-1");
    let path = url.strip_prefix("sqlite:").unwrap();
    let _ = std::fs::remove_file(path);
    let spec = spec("old");
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SQLITE_V1).unwrap();
    old_study(&spec, &mut |sql| {
        conn.execute_batch(&sql.replace('?', "'2025-01-31T12:00:00.000Z'"))
            .unwrap()
    });
    conn.execute(
        "INSERT INTO nndl_checkpoints VALUES (1, 1, 0, ?1)",
        [b"ckpt".to_vec()],
    )
    .unwrap();
    the_old_layout_is_migrated(&url, &spec, &mut || {
        conn.query_row("SELECT count(*) FROM nndl_v1_trials", [], |row| row.get(0))
            .unwrap()
    });
}

#[test]
fn a_postgres_store_of_layout_1_is_refused_then_migrated() {
    let Some(url) = postgres_url() else {
        return;
    };
    // The old tables in a schema of their own, which the store's connections search first.
    let schema = unique("layout_1").replace('-', "_");
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let in_schema = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let mut old = postgres::Client::connect(&in_schema, postgres::NoTls).unwrap();
    old.batch_execute(POSTGRES_V1).unwrap();
    let spec = spec("old");
    old_study(&spec, &mut |sql| {
        old.batch_execute(&sql.replace('?', "now()")).unwrap()
    });
    old.execute(
        "INSERT INTO nndl_checkpoints VALUES (1, 1, 0, $1)",
        &[&b"ckpt".to_vec()],
    )
    .unwrap();
    the_old_layout_is_migrated(&in_schema, &spec, &mut || {
        old.query_one("SELECT count(*) FROM nndl_v1_trials", &[])
            .unwrap()
            .get(0)
    });
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[test]
fn a_file_that_is_not_a_sqlite_database_is_an_error() {
    let dir = common::temp_dir("tune-store-corrupt");
    // Random bytes (a fixed xorshift stream), a text file, and a directory.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let random: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let random = common::write_file(&dir, "random.db", &random);
    let text = common::write_file(
        &dir,
        "notes.db",
        "eta=0.5 lambda=5\n".repeat(200).as_bytes(),
    );
    for path in [&random, &text, &dir] {
        let url = format!("sqlite:{}", path.display());
        let err = match store::open(&url) {
            Err(err) => err,
            Ok(_) => panic!("{url} opened"),
        };
        assert!(matches!(err, StoreError::Database { .. }), "{err}");
        let message = chain(&err);
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
    // The bad files are left as they were.
    assert_eq!(
        std::fs::read(&text).unwrap(),
        "eta=0.5 lambda=5\n".repeat(200).as_bytes()
    );
}

#[test]
fn a_study_database_of_another_layout_is_refused() {
    let url = sqlite_url("layout");
    drop(open(&url));
    let path = url.strip_prefix("sqlite:").unwrap();
    rusqlite::Connection::open(path)
        .unwrap()
        .execute("UPDATE version_info SET schema_version = 99", [])
        .unwrap();
    let err = match store::open(&url) {
        Err(err) => err,
        Ok(_) => panic!("opened"),
    };
    assert!(
        matches!(err, StoreError::SchemaVersion { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(path), "{err}");
}

#[test]
fn an_unreachable_postgres_is_an_error_without_its_password() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://nndl:s3cret-pw@127.0.0.1:{port}/nndl");
    let started = std::time::Instant::now();
    let err = match store::open(&url) {
        Err(err) => err,
        Ok(_) => panic!("connected to {url}"),
    };
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    let message = chain(&err);
    assert!(
        message.contains(&format!("postgres://nndl:***@127.0.0.1:{port}/nndl")),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

/// Many workers creating one new SQLite file at once: the first statements of each connection
/// can meet "database is locked" without SQLite waiting (several connections switching the new
/// file to write-ahead-log mode at once), and opening must ride that out rather than fail.
#[test]
fn sqlite_store_many_workers_create_one_new_file_at_once() {
    const WORKERS: usize = 8;
    const ROUNDS: usize = 20;
    let dir = common::temp_dir("tune-store-many-workers-create-one-new-file");
    for round in 0..ROUNDS {
        let url = format!("sqlite:{}", dir.join(format!("round-{round}.db")).display());
        let start = std::sync::Barrier::new(WORKERS);
        thread::scope(|scope| {
            for _ in 0..WORKERS {
                scope.spawn(|| {
                    start.wait();
                    let mut store = open(&url);
                    store.open_study(&spec("at-once")).unwrap();
                });
            }
        });
    }
}
