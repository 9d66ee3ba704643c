//! `nndl tune`: a study of the validation accuracy over a space of hyperparameters, run by
//! one or more workers that share it through a store ([`crate::tune`]).
//!
//! Each worker repeats: take over a trial nobody is training (waiting, or running with a
//! silent worker) and resume it from its last epoch's checkpoint, else start a new one with
//! the sampler's parameters; train it epoch by epoch on the training set, scoring it on the
//! validation set, and after every epoch store its value and a checkpoint (weights, generator,
//! order, η, early stopping) in one transaction, then ask the pruner. A heartbeat thread tells
//! the store the worker is alive. When every trial is finished, the best complete trial — by
//! its best validation epoch — is scored once on the test set, at that epoch's weights.
//!
//! A trial can fail but cannot stop the study: an error or a panic in its training (its
//! configuration, restoring its checkpoint, an epoch, saving its checkpoint) ends that trial
//! as failed, with the message kept in the store and printed (`Trial 3: failed: …`), and the
//! worker goes on to the next trial. Only a store that no longer answers ends a worker with
//! an error, leaving its trial running for another worker to take over once its heartbeat is
//! stale. The heartbeat thread ends however the worker's loop ends, so a worker never hangs.
//!
//! `--jobs J` runs J workers in this process; the same command on other machines against one
//! PostgreSQL database adds more. Re-running the command resumes the study: `--trials N`
//! means N in all, and a trial a killed worker left behind is taken over at once if that
//! worker's process was on this host and is gone ([`store::process`]), else once its heartbeat
//! is older than `--stale-after`; a worker that waits says for which trial and until when.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{check_threads, CheckedConfig, ConfigError, TrainConfig};
use crate::data::{Dataset, Mnist, CLASSES};
use crate::real::Real;
use crate::report::console::{count, say};
use crate::report::study::params_line;
use crate::report::tensorboard::TensorBoard;
use crate::rng::SeededRng;
use crate::train::{Both, Observer, Stop, TrainError, Training};
use crate::tune::hyper::LayerList;
use crate::tune::objective::{apply, params_text};
use crate::tune::pruner::PrunerSpec;
use crate::tune::sampler::SamplerSpec;
use crate::tune::space::{Kind, Params, Space, Value};
use crate::tune::store::{self, StoreError, StudyId, StudyResult};
use crate::tune::study::{StudySpec, Trial, TrialState};
use crate::tune::TuneError;

use super::{
    in_precision, memory_total, with_model, EvalSet, InPrecision, RunError, RunModel, WithModel,
};

/// How often a worker with nothing to start looks again for a trial to take over or for the
/// study's end.
const WAIT: Duration = Duration::from_millis(200);

/// Everything `nndl tune` can be asked, unchecked.
#[derive(Clone, Debug)]
pub struct TuneRequest {
    /// The study's name in its store.
    pub study: String,
    /// `sqlite:PATH` or `postgres://…`.
    pub storage: String,
    pub space: Space,
    pub sampler: SamplerSpec,
    pub pruner: PrunerSpec,
    /// Trials in the study in all, counting those of earlier runs.
    pub trials: u32,
    /// Workers in this process.
    pub jobs: usize,
    /// What every trial trains with besides the searched parameters; its seed also seeds the
    /// sampler.
    pub base: TrainConfig,
    /// The layer list as written, for a chapter-6 network: each trial reads it again with its
    /// own `activation` and `dropout` as the defaults.
    pub layers: Option<LayerList>,
    /// The MNIST pickle.
    pub data: PathBuf,
    /// Train on the first N training images only.
    pub train_size: Option<usize>,
    /// Validation images, taken from the end of the training images (default 10,000).
    pub validation_size: Option<usize>,
    /// This process's workers are named `NAME-1`, `NAME-2`, … (default: host and process id).
    pub worker: Option<String>,
    pub heartbeat: Duration,
    pub stale_after: Duration,
    /// Threads of each worker: they share each of its trial's mini-batches (chapter 6's
    /// networks) and score its networks. The process runs `jobs × threads` threads in all.
    pub threads: usize,
    /// A directory for TensorBoard's event files: one run directory per trial
    /// ([`TuneRequest::tensorboard_dir`]).
    pub tensorboard: Option<PathBuf>,
    /// Testing only: the trial of this number panics as it starts training, so that a test
    /// can follow a failing trial through the worker. Always `None` from the command line.
    #[doc(hidden)]
    pub panic_in_trial: Option<u32>,
}

/// A [`TuneRequest`] whose rules hold, with its study opened (or created) in the store.
pub struct CheckedTune {
    request: TuneRequest,
    spec: StudySpec,
    trials: u32,
}

/// What [`StudySpec::base`] holds: every setting of a trial besides the searched ones.
#[derive(serde::Serialize)]
struct Base<'a> {
    config: &'a TrainConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<&'a LayerList>,
    train_size: Option<usize>,
    validation_size: Option<usize>,
    pruner: String,
}

impl TuneRequest {
    /// The TensorBoard run directory of trial `number` under `--tensorboard DIR`:
    /// `DIR/STUDY/trial-NUMBER`, the study's name kept to letters, digits, `-`, `_` and `.`
    /// (anything else becomes `_`).
    pub fn tensorboard_dir(&self, number: u32) -> Option<PathBuf> {
        let study: String = self
            .study
            .chars()
            .map(|c| match c.is_ascii_alphanumeric() || "-_.".contains(c) {
                true => c,
                false => '_',
            })
            .collect();
        let study = match study.trim_matches('.') {
            "" => "_".to_string(),
            _ => study,
        };
        let dir = self.tensorboard.as_ref()?;
        Some(dir.join(study).join(format!("trial-{number}")))
    }

    /// Checks the request before any data is loaded: the space, the sampler over it, the
    /// counts, the fixed configuration, and the store, in which the study is created or, if
    /// it exists, found to have the same definition.
    pub fn check(self) -> Result<CheckedTune, RunError> {
        check_threads(self.threads)?;
        if self.space.params.is_empty() {
            return Err(TuneError::EmptySpace.into());
        }
        self.space.check().map_err(TuneError::from)?;
        if self.trials == 0 {
            return Err(TuneError::NoTrials.into());
        }
        if !(1..=crate::tune::MAX_JOBS).contains(&self.jobs) {
            return Err(TuneError::Jobs(self.jobs).into());
        }
        if self.stale_after <= self.heartbeat {
            return Err(TuneError::Heartbeat {
                heartbeat: self.heartbeat,
                stale: self.stale_after,
            }
            .into());
        }
        if let Some(n) = self.train_size {
            crate::config::check_train_size(n, None)?;
        }
        self.base.check()?;
        if let Some(dir) = self
            .tensorboard_dir(0)
            .as_deref()
            .and_then(std::path::Path::parent)
        {
            super::check_output_dir(dir)?;
        }
        let sampler = self.sampler.build(self.base.seed);
        let max_trials = sampler.max_trials(&self.space).map_err(TuneError::from)?;
        self.check_params()?;
        let trials = match max_trials {
            Some(size) if u64::from(self.trials) > size => {
                say(&format!(
                    "The {} sampler proposes {size} trials: the study will have {size}, not {}",
                    self.sampler, self.trials
                ));
                u32::try_from(size).unwrap_or(u32::MAX)
            }
            _ => self.trials,
        };
        let base = serde_json::to_value(Base {
            config: &self.base,
            layers: self.layers.as_ref(),
            train_size: self.train_size,
            validation_size: self.validation_size,
            pruner: self.pruner.to_string(),
        })
        .map_err(|e| StoreError::Corrupt {
            location: "the study's definition".into(),
            what: e.to_string(),
        })?;
        let spec = StudySpec {
            name: self.study.clone(),
            space: self.space.clone(),
            sampler: self.sampler.to_string(),
            base,
        };
        store::open(&self.storage)?.open_study(&spec)?;
        Ok(CheckedTune {
            request: self,
            spec,
            trials,
        })
    }
}

impl TuneRequest {
    /// Checks that every parameter applies to the study's network and that a trial can be
    /// trained — its network built and held in memory — at each end of every range (each
    /// choice of a list), the other parameters at the base's values; then at once with every
    /// range at its high end, where the network and mini-batch are largest. The `--jobs`
    /// workers of this process train side by side, so each trial gets its share of memory.
    fn check_params(&self) -> Result<(), RunError> {
        let memory = memory_total().unwrap_or(u128::MAX) / self.jobs as u128;
        let check = |param: &str, params: &Params| -> Result<(), RunError> {
            let unfit = |reason: String| TuneError::Unfit {
                param: param.to_string(),
                values: params_text(params),
                reason,
            };
            let config = apply(&self.base, self.layers.as_ref(), params)
                .map_err(|e| unfit(e.to_string()))?;
            let checked = config.check().map_err(|e| unfit(e.to_string()))?;
            checked
                .network
                .check_memory(checked.sgd.mini_batch_size, self.threads, memory)
                .map_err(|e| match self.jobs {
                    1 => unfit(e.to_string()),
                    jobs => unfit(format!(
                        "{e}: each of the {jobs} --jobs workers has its share"
                    )),
                })?;
            Ok(())
        };
        let mut highest = Params::new();
        for param in &self.space.params {
            let ends = match &param.kind {
                Kind::Float { lo, hi } | Kind::Log { lo, hi } => {
                    vec![Value::Float(*lo), Value::Float(*hi)]
                }
                Kind::Int { lo, hi } | Kind::IntLog { lo, hi } => {
                    vec![Value::Int(*lo), Value::Int(*hi)]
                }
                Kind::Choice { choices } => choices.iter().cloned().map(Value::Choice).collect(),
            };
            for value in &ends {
                check(
                    &param.to_string(),
                    &Params::from([(param.name.clone(), value.clone())]),
                )?;
            }
            if !matches!(param.kind, Kind::Choice { .. }) {
                highest.insert(param.name.clone(), ends[1].clone());
            }
        }
        if highest.len() > 1 {
            check("every range at its high end", &highest)?;
        }
        Ok(())
    }
}

/// Runs a checked study until every one of its trials is finished (or `stop` is set, by
/// Ctrl-C: each worker then ends its trial after the current mini-batch, leaving it to be
/// resumed from its last finished epoch), then scores the best trial on the test set.
pub fn tune(run: &CheckedTune, stop: Arc<AtomicBool>) -> Result<Option<StudyResult>, RunError> {
    let request = &run.request;
    let threads = request.jobs.saturating_mul(request.threads);
    crate::backend::start_threads(request.threads)?;
    say(&format!(
        "Study {:?} in {}: {}, {} sampler, {}, {} here",
        request.study,
        store::redact(&request.storage),
        count(run.trials, "trial"),
        request.sampler,
        match request.pruner.to_string().as_str() {
            "none" => "no pruner".to_string(),
            pruner => format!("{pruner} pruner"),
        },
        count(request.jobs as u64, "worker")
    ));
    say(&format!("Backend: {}", crate::backend::describe()));
    let cores = crate::backend::cores();
    if threads > cores {
        say(&format!(
            "{} × {} = {threads} threads on {}: they take turns, and each trial runs slower \
             than it would with --jobs × --threads at most {cores}",
            count(request.jobs as u64, "worker"),
            count(request.threads as u64, "thread"),
            count(cores as u64, "core"),
        ));
    }
    in_precision(
        request.base.network.precision,
        &request.data,
        request.validation_size,
        Study { run, stop },
    )?
}

/// The study in one precision.
struct Study<'a> {
    run: &'a CheckedTune,
    stop: Arc<AtomicBool>,
}

impl InPrecision for Study<'_> {
    type Output = Result<Option<StudyResult>, RunError>;

    fn loaded<F: Real>(
        &self,
        path: &std::path::Path,
        seconds: f64,
        mnist: &Mnist<F>,
    ) -> Result<(), RunError> {
        // Trials are scored on the validation set, the best of them on the test set.
        for (set, images) in [
            (EvalSet::Validation, mnist.validation.len()),
            (EvalSet::Test, mnist.test.len()),
        ] {
            if images == 0 {
                return Err(RunError::EmptySet { set: set.name() });
            }
        }
        say(&format!(
            "Loaded {} in {seconds:.2} seconds; trials train on {} images and are scored on the \
             {} validation images",
            path.display(),
            self.run.request.train_size.unwrap_or(mnist.training.len()),
            mnist.validation.len()
        ));
        Ok(())
    }

    fn run<F: Real>(self, mnist: Mnist<F>) -> Self::Output {
        let request = &self.run.request;
        let training = match request.train_size {
            Some(n) => {
                crate::config::check_train_size(n, Some(mnist.training.len()))?;
                mnist.training.head(n)
            }
            None => mnist.training.clone(),
        };
        let data = Data {
            training,
            validation: mnist.validation,
        };
        let name = request.worker.clone().unwrap_or_else(default_worker_name);
        let bar = study_bar(self.run);
        let results: Vec<Result<(), RunError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=request.jobs)
                .map(|job| {
                    let worker = Worker {
                        run: self.run,
                        data: &data,
                        name: format!("{name}-{job}"),
                        stop: &self.stop,
                        bar: bar.as_ref(),
                    };
                    scope.spawn(move || worker.work())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(RunError::WorkerPanicked)))
                .collect()
        });
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        for result in results {
            result?;
        }
        if self.stop.load(Ordering::SeqCst) {
            say("Interrupted: the study goes on where it stopped when the command is run again");
            return Ok(None);
        }
        finish_study(self.run, &data, &mnist.test)
    }
}

/// The sets a study's trials train on and are scored on.
struct Data<F: Real> {
    training: Dataset<F>,
    validation: Dataset<F>,
}

/// `HOST-PID`: unique to this process, so no two live workers share a name.
fn default_worker_name() -> String {
    format!("{}-{}", store::process::host_name(), std::process::id())
}

/// What a worker with nothing to start says of a running trial `t` of another process: whose
/// worker runs it, where, and when it is taken over if its heartbeat stays silent.
fn waiting_for(t: &store::RunningTrial, stale_after: Duration) -> String {
    let worker = t.worker.as_deref().unwrap_or("an unnamed worker");
    let this_host = store::process::this_host();
    let place = match (&t.host, t.pid) {
        (Some(host), Some(pid)) if *host == this_host => {
            format!("process {pid} on this host, still running")
        }
        (Some(host), Some(pid)) => format!("process {pid} on {host}"),
        _ => "a process nndl did not record".to_string(),
    };
    let when = match t.silent {
        Some(silent) => {
            let left = (stale_after.as_secs_f64() - silent).max(0.0);
            let at = SystemTime::now() + Duration::from_secs_f64(left);
            format!(
                "its last heartbeat was {silent:.0} s ago; taken over at {} UTC (in {left:.0} \
                 s) if it stays silent",
                clock(at)
            )
        }
        None => "it has no heartbeat; taken over at the next look".to_string(),
    };
    format!(
        "Waiting for trial {} of worker {worker} ({place}) to finish: {when} \
         (--stale-after {:.0} s)",
        t.number,
        stale_after.as_secs_f64()
    )
}

/// `HH:MM:SS` of `at` in UTC.
fn clock(at: SystemTime) -> String {
    let s = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// One worker of this process.
struct Worker<'a, F: Real> {
    run: &'a CheckedTune,
    data: &'a Data<F>,
    name: String,
    stop: &'a AtomicBool,
    /// The study's progress bar, on a terminal.
    bar: Option<&'a ProgressBar>,
}

/// A bar over the study's trials when both output streams are a terminal, starting at the
/// trials an earlier run finished.
fn study_bar(run: &CheckedTune) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(
        Some(u64::from(run.trials)),
        ProgressDrawTarget::stderr_with_hz(4),
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} trials {elapsed}") {
        bar.set_style(style);
    }
    Some(bar)
}

/// How a trial ended for this worker.
enum Outcome {
    /// Finished in this state.
    Finished(TrialState),
    /// Failed: an error or a panic in its training, with what went wrong.
    Failed(String),
    /// Ctrl-C: left running, to be resumed.
    Interrupted,
    /// Another worker took the trial over.
    Lost,
}

impl<F: Real> Worker<'_, F> {
    /// Runs trials until the study has none left to run.
    fn work(&self) -> Result<(), RunError> {
        let request = &self.run.request;
        let mut store = store::open(&request.storage)?;
        let study = store.open_study(&self.run.spec)?;
        let sampler = request.sampler.build(request.base.seed);
        let current: Arc<Mutex<Option<u32>>> = Arc::new(Mutex::new(None));
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let beat = scope.spawn(|| self.heartbeat(study, &current, &done));
            let result = {
                // Ends the heartbeat however the loop ends, an error or a panic included: the
                // scope waits for the heartbeat thread before it returns (or goes on
                // unwinding), so a heartbeat left running would hang the worker for good.
                let _end_heartbeat = SetOnDrop(&done);
                self.trials(store.as_mut(), study, &*sampler, &current)
            };
            let beat = beat.join().unwrap_or(Err(RunError::WorkerPanicked));
            result.and(beat)
        })
    }

    /// The worker's loop: takes or starts a trial, trains it, records how it ended, until the
    /// study has none left to run or Ctrl-C is pressed.
    fn trials(
        &self,
        store: &mut dyn store::Store,
        study: StudyId,
        sampler: &dyn crate::tune::sampler::Sampler,
        current: &Mutex<Option<u32>>,
    ) -> Result<(), RunError> {
        let request = &self.run.request;
        let mut waited = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            let claimed = store.claim_stale(study, &self.name, request.stale_after)?;
            let trial = match claimed {
                Some(trial) => Some(trial),
                None => store.start_trial(
                    study,
                    &self.name,
                    self.run.trials,
                    &mut |number, trials| sampler.sample(&request.space, number, trials).ok(),
                )?,
            };
            let Some(trial) = trial else {
                // Nothing to start: done once every trial is finished; otherwise wait, in
                // case a silent worker's trial needs taking over.
                let trials = store.trials(study)?;
                let all = u32::try_from(trials.len()).unwrap_or(u32::MAX);
                if all >= self.run.trials && trials.iter().all(|t| t.state.is_finished()) {
                    return Ok(());
                }
                // Say what the worker waits for, rather than sitting silent: once, and again
                // when that changes.
                let others: Vec<store::RunningTrial> = store
                    .running(study)?
                    .into_iter()
                    .filter(|t| !t.is_ours())
                    .collect();
                let what: Vec<(u32, Option<String>)> = others
                    .iter()
                    .map(|t| (t.number, t.worker.clone()))
                    .collect();
                if !others.is_empty() && waited != what {
                    for t in &others {
                        self.say(&waiting_for(t, request.stale_after));
                    }
                    waited = what;
                }
                std::thread::sleep(request.heartbeat.min(WAIT));
                continue;
            };
            let outcome = {
                // The trial's heartbeat, until it ends in any way.
                let _beating = Beating::start(current, trial.number);
                self.guarded_trial(store, study, &trial)?
            };
            let line = report(&trial, &self.name, &outcome, store, study, &self.run.spec)?;
            for line in line {
                self.say(&line);
            }
            if let (Some(bar), false) = (self.bar, matches!(outcome, Outcome::Interrupted)) {
                let trials = store.trials(study)?;
                let finished = trials.iter().filter(|t| t.state.is_finished()).count();
                bar.set_position(finished as u64);
            }
        }
        Ok(())
    }

    /// [`Worker::trial`], with its errors and panics turned into a failed trial, except for
    /// errors of the store itself, which end the worker.
    fn guarded_trial(
        &self,
        store: &mut dyn store::Store,
        study: StudyId,
        trial: &Trial,
    ) -> Result<Outcome, RunError> {
        let panic_in_trial = self.run.request.panic_in_trial;
        // A panic leaves nothing of the worker's half-changed: the trial's model and training
        // are dropped with it, and the store's transactions roll back when dropped.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if panic_in_trial == Some(trial.number) {
                panic!("trial {} panics on purpose", trial.number);
            }
            self.trial(store, study, trial)
        }));
        match caught {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(e)) if store_unusable(&e) => Err(e),
            Ok(Err(e)) => Ok(Outcome::Failed(super::chain(&e))),
            Err(panic) => Ok(Outcome::Failed(format!(
                "panicked: {}",
                panic_message(panic.as_ref())
            ))),
        }
    }

    /// Prints a line above the progress bar, if there is one.
    fn say(&self, line: &str) {
        match self.bar {
            Some(bar) => bar.suspend(|| say(line)),
            None => say(line),
        }
    }

    /// Sends the heartbeat of the trial in `current` every `--heartbeat` until `done`.
    fn heartbeat(
        &self,
        study: StudyId,
        current: &Mutex<Option<u32>>,
        done: &AtomicBool,
    ) -> Result<(), RunError> {
        let request = &self.run.request;
        let mut store = store::open(&request.storage)?;
        let tick = Duration::from_millis(20).min(request.heartbeat);
        let mut last = Instant::now();
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(tick);
            if last.elapsed() < request.heartbeat {
                continue;
            }
            last = Instant::now();
            let trial = *current.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(number) = trial {
                store.heartbeat(study, number, &self.name)?;
            }
        }
        Ok(())
    }

    /// Trains `trial` from its checkpoint, if it has one, to its end.
    fn trial(
        &self,
        store: &mut dyn store::Store,
        study: StudyId,
        trial: &Trial,
    ) -> Result<Outcome, RunError> {
        let config = match self.config(&trial.params) {
            Ok(config) => config,
            Err(reason) => {
                return Ok(Outcome::Failed(format!("cannot be trained: {reason}")));
            }
        };
        let run = TrialRun {
            worker: self,
            store,
            study,
            trial,
            config: &config,
        };
        with_model(&config, None, run)
    }

    /// The trial's configuration, checked as `nndl train` checks one, and against the data.
    fn config(&self, params: &Params) -> Result<CheckedConfig, String> {
        let request = &self.run.request;
        let config =
            apply(&request.base, request.layers.as_ref(), params).map_err(|e| e.to_string())?;
        let checked = config
            .check()
            .map_err(|e: ConfigError| e.to_string())?
            .with_threads(request.threads);
        let memory = memory_total().unwrap_or(u128::MAX);
        let data = &self.data.training;
        checked
            .network
            .check_memory(checked.sgd.mini_batch_size, request.threads, memory)
            .and_then(|()| {
                checked.check_data(checked.network.shape(), data.inputs(), CLASSES, data.len())
            })
            .map_err(|e| e.to_string())?;
        Ok(checked)
    }
}

/// One trial of a worker, trained as a network of its configuration's kind: resumed from its
/// checkpoint if it has one, else from the network [`with_model`] draws.
struct TrialRun<'a, 'w, F: Real> {
    worker: &'a Worker<'w, F>,
    store: &'a mut dyn store::Store,
    study: StudyId,
    trial: &'a Trial,
    config: &'a CheckedConfig,
}

impl<F: Real> WithModel<F> for TrialRun<'_, '_, F> {
    type Value = Outcome;

    fn run<M: RunModel<F>>(self, model: M, rng: SeededRng) -> Result<Outcome, RunError> {
        let TrialRun {
            worker,
            store,
            study,
            trial,
            config,
        } = self;
        let request = &worker.run.request;
        let data = worker.data;
        let n = data.training.len();
        let mut training: Training<M> = match store.checkpoint(study, trial.number)? {
            Some(bytes) if !trial.values.is_empty() => {
                match Training::restore_for(&bytes, n, &model) {
                    Ok(training) => training,
                    Err(e) => {
                        return Ok(Outcome::Failed(format!(
                            "its checkpoint cannot be resumed: {e}"
                        )));
                    }
                }
            }
            _ => Training::new(model, config, n, rng),
        };
        training.keep_best();
        let pruner = request.pruner.build();
        let mut stepper = training.model.step(&config.sgd, config.threads());
        let mut stop = StopFlag(worker.stop);
        let mut events = TrialEvents(match request.tensorboard_dir(trial.number) {
            Some(dir) => Some(super::train::open_tensorboard(
                &dir,
                "validation",
                request.tensorboard.as_deref().unwrap_or(&dir),
            )?),
            None => None,
        });
        let mut both;
        let observer: &mut dyn Observer = match &mut events.0 {
            Some(events) => {
                both = Both(&mut stop, events);
                &mut both
            }
            None => &mut stop,
        };
        while !training.is_finished() {
            let before = training.history.epochs.len();
            match training.epoch(
                config,
                &data.training,
                &data.validation,
                observer,
                &mut stepper,
            ) {
                Ok(()) => {}
                Err(TrainError::Diverged { epoch, eta, .. }) => {
                    return Ok(Outcome::Failed(format!(
                        "diverged in epoch {epoch} (eta {})",
                        crate::tune::space::number(eta)
                    )));
                }
                Err(TrainError::Config(e)) => return Err(e.into()),
            }
            if matches!(training.history.stop, Stop::Interrupted { .. }) {
                return Ok(Outcome::Interrupted);
            }
            let Some(record) = training.history.epochs.get(before) else {
                continue;
            };
            let (epoch, value) = (record.epoch, record.accuracy());
            let seconds = record.train_seconds + record.eval_seconds;
            let bytes = training.save().map_err(|e| StoreError::Corrupt {
                location: format!("trial {}", trial.number),
                what: e.to_string(),
            })?;
            if !store.report_epoch(
                study,
                trial.number,
                &worker.name,
                epoch,
                value,
                seconds,
                &bytes,
            )? {
                return Ok(Outcome::Lost);
            }
            if let Some(pruner) = &pruner {
                if training.is_finished() {
                    break;
                }
                let trials = store.trials(study)?;
                if let Some(now) = trials.iter().find(|t| t.number == trial.number) {
                    if pruner.prune(now, epoch, &trials) {
                        return Ok(Outcome::Finished(TrialState::Pruned));
                    }
                }
            }
        }
        Ok(Outcome::Finished(TrialState::Complete))
    }
}

/// A trial's TensorBoard event file, ended (and a failure to write it said) however the trial
/// ends.
struct TrialEvents(Option<TensorBoard>);

impl Drop for TrialEvents {
    fn drop(&mut self) {
        if let Some(events) = self.0.take() {
            super::train::finish_tensorboard(events);
        }
    }
}

/// Ends the trial's epoch early when Ctrl-C has been pressed.
struct StopFlag<'a>(&'a AtomicBool);

impl Observer for StopFlag<'_> {
    fn epoch(&mut self, _: &crate::train::EpochRecord, _: &[usize]) -> std::ops::ControlFlow<()> {
        std::ops::ControlFlow::Continue(())
    }

    #[inline]
    fn batch(&mut self, _done: usize, _total: usize) -> std::ops::ControlFlow<()> {
        if self.0.load(Ordering::Relaxed) {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    }
}

fn set(current: &Mutex<Option<u32>>, value: Option<u32>) {
    *current.lock().unwrap_or_else(|e| e.into_inner()) = value;
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The heartbeat thread beats for a trial while one of these lives.
struct Beating<'a>(&'a Mutex<Option<u32>>);

impl<'a> Beating<'a> {
    fn start(current: &'a Mutex<Option<u32>>, number: u32) -> Self {
        set(current, Some(number));
        Beating(current)
    }
}

impl Drop for Beating<'_> {
    fn drop(&mut self) {
        set(self.0, None);
    }
}

/// True for an error of the store itself (the database unreachable or refusing a statement,
/// the study gone): the worker cannot record anything, so it ends rather than failing trials
/// one after the other. Any other error ends only the trial.
fn store_unusable(e: &RunError) -> bool {
    matches!(
        e,
        RunError::Store(
            StoreError::Database { .. } | StoreError::Connect { .. } | StoreError::NoStudy { .. }
        )
    )
}

/// What a panic said, as `panic!` formats it.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Records how `trial` ended; the lines to print about it.
fn report(
    trial: &Trial,
    worker: &str,
    outcome: &Outcome,
    store: &mut dyn store::Store,
    study: StudyId,
    spec: &StudySpec,
) -> Result<Vec<String>, RunError> {
    let mut lines = Vec::new();
    let finished = match outcome {
        Outcome::Finished(state) => store.finish(study, trial.number, worker, *state)?,
        Outcome::Failed(message) => {
            lines.push(format!("Trial {}: failed: {message}", trial.number));
            store.fail(study, trial.number, worker, message)?
        }
        Outcome::Interrupted => return Ok(lines),
        Outcome::Lost => {
            lines.push(format!(
                "Trial {}: another worker has taken it over",
                trial.number
            ));
            return Ok(lines);
        }
    };
    if !finished {
        return Ok(lines);
    }
    let trials = store.trials(study)?;
    let now = trials
        .iter()
        .find(|t| t.number == trial.number)
        .unwrap_or(trial);
    lines.push(trial_line(now, spec));
    Ok(lines)
}

/// `Trial k: validation 96.12% at epoch 8, eta=… lambda=… [pruned at epoch 3]`.
pub fn trial_line(trial: &Trial, spec: &StudySpec) -> String {
    let params = params_line(spec, &trial.params);
    let result = match trial.best() {
        Some((epoch, value)) => format!("validation {value:.2}% at epoch {epoch}"),
        None => "no epoch finished".into(),
    };
    let epochs = trial.values.len();
    let state = match trial.state {
        TrialState::Pruned => format!(" [pruned at epoch {}]", epochs.saturating_sub(1)),
        TrialState::Failed => " [failed]".into(),
        _ => String::new(),
    };
    format!("Trial {}: {result}, {params}{state}", trial.number)
}

/// The test-set accuracy (%) of the best epoch of a trial's checkpoint.
struct ScoreBest<'a, F: Real> {
    bytes: &'a [u8],
    /// Training examples the trial's order indexes.
    n: usize,
    test: &'a Dataset<F>,
    trial: u32,
}

impl<F: Real> WithModel<F> for ScoreBest<'_, F> {
    type Value = f64;

    /// The network [`with_model`] draws names the kind and the layout the checkpoint must have;
    /// the checkpoint holds the weights.
    fn run<M: RunModel<F>>(self, drawn: M, _rng: SeededRng) -> Result<f64, RunError> {
        let training: Training<M> =
            Training::restore_for(self.bytes, self.n, &drawn).map_err(|e| StoreError::Corrupt {
                location: format!("trial {}", self.trial),
                what: e.to_string(),
            })?;
        let best = training.best_model();
        Ok(100.0 * best.evaluate(self.test) as f64 / self.test.len() as f64)
    }
}

/// Once every trial is finished: the best complete trial, scored on the test set at its best
/// validation epoch's weights (from the checkpoint the store keeps for it).
fn finish_study<F: Real>(
    run: &CheckedTune,
    data: &Data<F>,
    test: &Dataset<F>,
) -> Result<Option<StudyResult>, RunError> {
    let request = &run.request;
    let mut store = store::open(&request.storage)?;
    let study = store.open_study(&run.spec)?;
    let trials = store.trials(study)?;
    let best = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| t.best().map(|b| (t, b)))
        .fold(
            None,
            |best: Option<(&Trial, (usize, f64))>, (t, b)| match best {
                Some((_, (_, v))) if v >= b.1 => best,
                _ => Some((t, b)),
            },
        );
    let Some((trial, (epoch, validation))) = best else {
        say("No trial completed: there is no best trial to score");
        return Ok(None);
    };
    let result = match store.study_result(study)? {
        Some(result) if result.trial == trial.number => result,
        _ => {
            let Some(bytes) = store.checkpoint(study, trial.number)? else {
                say(&format!(
                    "Trial {} is the best, but its checkpoint is gone: it cannot be scored on \
                     the test set",
                    trial.number
                ));
                return Ok(None);
            };
            let config = apply(&request.base, request.layers.as_ref(), &trial.params)
                .map_err(|e| e.to_string())
                .and_then(|c| c.check().map_err(|e| e.to_string()))
                .map_err(|what| StoreError::Corrupt {
                    location: format!("trial {}", trial.number),
                    what,
                })?;
            let score = ScoreBest {
                bytes: &bytes,
                n: data.training.len(),
                test,
                trial: trial.number,
            };
            let test_accuracy = with_model(&config, None, score)?;
            let result = StudyResult {
                trial: trial.number,
                validation,
                test: test_accuracy,
            };
            store.set_study_result(study, &result)?;
            result
        }
    };
    say(&format!(
        "Best trial {}: validation {:.2}% (epoch {epoch}), test {:.2}%, {}",
        result.trial,
        result.validation,
        result.test,
        params_line(&run.spec, &trial.params)
    ));
    Ok(Some(result))
}
