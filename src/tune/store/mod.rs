//! The study store: where a study's definition, its trials, their per-epoch validation
//! accuracies and the checkpoint of every running trial are kept, so that several workers —
//! threads, processes, or machines — can share one study and a study can be resumed.
//!
//! [`Store`] is the one interface; [`open`] picks an implementation from a URL:
//! - `sqlite:PATH` — [`sqlite::SqliteStore`], one file (`nndl-study.db` by default, see
//!   [`DEFAULT_URL`]) for the workers of one machine;
//! - `postgres://…` or `postgresql://…` — [`postgres::PostgresStore`], one database shared by
//!   workers on many machines.
//!
//! It mirrors Optuna's RDB storage: a study is rows in a database; a worker claims a trial
//! inside a transaction, sends heartbeats while it trains, and a trial whose worker has been
//! silent for too long is taken over by another ("stale-trial retry"); one whose worker's
//! process on the same host is gone, at once ([`process`]). Where nndl does better:
//! - a trial taken over *resumes*: the store keeps, for every running trial, the checkpoint
//!   written after its last finished epoch (weights, RNG state, schedule — opaque bytes here)
//!   and its per-epoch values, and hands both to the worker that takes it over (Optuna's
//!   retried trials start again from nothing and lose their intermediate values);
//! - [`Store::start_trial`] counts every trial of the study, old ones included, so
//!   `--trials N` means N in total however often the study is restarted;
//! - SQLite is safe under several processes: write-ahead logging, a busy timeout and every
//!   write in a `BEGIN IMMEDIATE` transaction, so writers queue instead of failing with
//!   "database is locked" or deadlocking on a read lock upgraded to a write lock;
//! - the sampler runs inside the transaction that creates the trial, so two workers are never
//!   given the same grid point.
//!
//! The store is one body of SQL ([`sql`]) in Optuna's RDB schema (version 12), so
//! `optuna.load_study` and optuna-dashboard open nndl's studies; [`sqlite`] and [`postgres`]
//! are the small adapters that run it on each database. [`sql`] says where each thing is kept,
//! [`optuna`] how parameters and states are written.
//!
//! Checkpoints are dropped when a trial finishes, except the best complete trial's (the
//! highest best-epoch validation accuracy, the first of equals), which is kept so the study
//! can score its winner on the test set without training it again. The database therefore
//! holds one checkpoint per running trial plus one.
//!
//! Files written by nndl before it used Optuna's schema (nndl's layouts 1 and 2, with tables
//! `nndl_schema`, `nndl_studies`, …) are refused with [`StoreError::OldLayout`], which names
//! `nndl tune migrate`; [`migrate`] converts them.
//!
//! Left out: Optuna's journal-file storage (SQLite in WAL mode covers one machine and
//! PostgreSQL many), user attributes on trials, renaming studies, multi-objective studies,
//! and TLS to PostgreSQL (use a trusted network, an SSH tunnel or a sidecar proxy).

pub mod migrate;
pub mod optuna;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod process;
pub mod sql;
pub mod sqlite;

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::space::Params;
use super::study::{StudySpec, Trial, TrialState};

/// The storage used when none is given.
pub const DEFAULT_URL: &str = "sqlite:nndl-study.db";

/// A study's key in its store.
pub type StudyId = i64;

/// The final answer of a study: its best trial, scored once on the test set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyResult {
    /// The best trial's number.
    pub trial: u32,
    /// Its best validation accuracy (%), the value it was chosen by.
    pub validation: f64,
    /// Its accuracy (%) on the test set.
    pub test: f64,
}

/// One study of a store, as `nndl tune show` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyInfo {
    pub id: StudyId,
    pub spec: StudySpec,
    pub created: SystemTime,
    /// Its trials, in every state.
    pub trials: u32,
    pub result: Option<StudyResult>,
}

/// A store of studies, shared by the workers of one or many machines.
///
/// Every method is one transaction. The methods that change a trial a worker is running take
/// that worker's name and do nothing, returning `false`, once another worker has taken the
/// trial over: the first worker should then stop training it. A store is one connection: a
/// worker that sends heartbeats from a thread of its own opens a second store for it.
pub trait Store: Send {
    /// Creates the study, or opens it if a study of that name exists with an equal
    /// definition; a different definition is [`StoreError::SpecDiffers`], saying what differs.
    fn open_study(&mut self, spec: &StudySpec) -> Result<StudyId, StoreError>;

    /// Every study in the store, by name.
    fn studies(&mut self) -> Result<Vec<StudyInfo>, StoreError>;

    /// The study's trials, by number, each with its per-epoch values.
    fn trials(&mut self, study: StudyId) -> Result<Vec<Trial>, StoreError>;

    /// Starts a new trial for `worker` unless the study already has `max_trials` trials (in
    /// any state): `sample(number, trials)` proposes its parameters from the trials so far,
    /// and the trial is stored as running, with a fresh heartbeat. Workers are serialised
    /// from reading the trials to storing the new one, so numbers and proposals are never
    /// given twice. `None` when the study is full or `sample` has nothing more to propose
    /// (returns `None`, e.g. a grid whose every point is taken, or a sequential strategy
    /// waiting for results).
    fn start_trial(
        &mut self,
        study: StudyId,
        worker: &str,
        max_trials: u32,
        sample: &mut dyn FnMut(u32, &[Trial]) -> Option<Params>,
    ) -> Result<Option<Trial>, StoreError>;

    /// Queues a trial with given parameters as waiting, for the next worker that calls
    /// [`Store::claim_stale`] (Optuna's `enqueue_trial`), unless the study already has
    /// `max_trials` trials. Its number, or `None` when the study is full.
    fn enqueue_trial(
        &mut self,
        study: StudyId,
        params: &Params,
        max_trials: u32,
    ) -> Result<Option<u32>, StoreError>;

    /// Takes over, for `worker`, one trial nobody is training: a waiting one (lowest number
    /// first), else a running one whose worker's process on this host is gone
    /// ([`process::is_gone`]), else a running one whose heartbeat is older than `stale_after`.
    /// The trial's worker is then recorded with this process's host and id. Its per-epoch
    /// values and checkpoint are kept; resume it from [`Store::checkpoint`]. Two workers never
    /// take the same trial.
    fn claim_stale(
        &mut self,
        study: StudyId,
        worker: &str,
        stale_after: Duration,
    ) -> Result<Option<Trial>, StoreError>;

    /// Refreshes the heartbeat of a trial `worker` runs; `false` if it no longer does.
    fn heartbeat(&mut self, study: StudyId, number: u32, worker: &str) -> Result<bool, StoreError>;

    /// Records a finished epoch of a trial `worker` runs: its validation accuracy `value`
    /// (replacing an earlier report of the same epoch and dropping any later ones, so a trial
    /// resumed from an older checkpoint keeps one consistent curve), `seconds` more of
    /// training, and `checkpoint`, which replaces the previous one; refreshes the heartbeat.
    /// `epoch` may be at most the number of epochs already recorded. `false` (and nothing
    /// recorded) if `worker` no longer runs the trial.
    #[allow(clippy::too_many_arguments)]
    fn report_epoch(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        epoch: usize,
        value: f64,
        seconds: f64,
        checkpoint: &[u8],
    ) -> Result<bool, StoreError>;

    /// The trial's last checkpoint, if it has one.
    fn checkpoint(&mut self, study: StudyId, number: u32) -> Result<Option<Vec<u8>>, StoreError>;

    /// Ends a trial `worker` runs in the finished `state`, keeping `message` with it, and drops
    /// the checkpoints no longer needed (see the module's documentation). `false` (and nothing
    /// changed) if `worker` no longer runs the trial. Called through [`Store::finish`] and
    /// [`Store::fail`], which check the state.
    fn end(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        state: TrialState,
        message: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Ends a trial `worker` runs as complete, pruned or failed ([`Store::end`]).
    fn finish(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        state: TrialState,
    ) -> Result<bool, StoreError> {
        if !state.is_finished() {
            return Err(StoreError::NotFinal(state));
        }
        self.end(study, number, worker, state, None)
    }

    /// Ends a trial `worker` runs as failed, keeping `message` (what went wrong) as its
    /// [`Trial::message`]; otherwise as [`Store::finish`].
    fn fail(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        self.end(study, number, worker, TrialState::Failed, Some(message))
    }

    /// The study's running trials, with their workers' processes and how long each has been
    /// silent: what a worker with nothing to start waits for.
    fn running(&mut self, study: StudyId) -> Result<Vec<RunningTrial>, StoreError>;

    /// Deletes the study with all its trials, their values and checkpoints; how many trials it
    /// had. A worker still running one of them finds it gone at its next report and stops.
    fn delete_study(&mut self, study: StudyId) -> Result<u32, StoreError>;

    /// Records the study's final result, replacing an earlier one.
    fn set_study_result(&mut self, study: StudyId, result: &StudyResult) -> Result<(), StoreError>;

    /// The study's final result, once recorded.
    fn study_result(&mut self, study: StudyId) -> Result<Option<StudyResult>, StoreError>;
}

/// A running trial and the worker that runs it ([`Store::running`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningTrial {
    pub number: u32,
    pub worker: Option<String>,
    /// The worker's host and process id ([`process`]), where recorded.
    pub host: Option<String>,
    pub pid: Option<i64>,
    /// Seconds since its last heartbeat, by the database's clock; `None` without one.
    pub silent: Option<f64>,
}

impl RunningTrial {
    /// Whether this process runs it.
    pub fn is_ours(&self) -> bool {
        self.host.as_deref() == Some(&process::this_host()) && self.pid == Some(process::this_pid())
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unknown storage {0:?}: expected sqlite:PATH, postgres://HOST/DATABASE or \
         postgresql://HOST/DATABASE"
    )]
    Url(String),
    #[error("study database {location}")]
    Database { location: String, source: DbError },
    #[error("cannot connect to the study database {url}")]
    Connect { url: String, source: DbError },
    #[error(
        "{location} holds Optuna's schema version {found}; this nndl reads and writes version \
         {} (Optuna 3.2 to 5.x)",
        sql::OPTUNA_SCHEMA_VERSION
    )]
    SchemaVersion { location: String, found: i64 },
    #[error(
        "{location} holds studies in nndl's old layout (version {found}); convert it with \
         `nndl tune migrate --storage URL` (the old tables are kept)"
    )]
    OldLayout { location: String, found: i64 },
    #[error(
        "{0} is a PostgreSQL database, but this nndl was built without the `postgres` feature \
         (build it with `cargo build --release --features postgres`)"
    )]
    NoPostgres(String),
    #[error("{location} holds no studies in nndl's old layout: there is nothing to migrate")]
    NothingToMigrate { location: String },
    #[error("{location} is not an nndl study database: it has {found}")]
    NotAStore {
        location: String,
        found: &'static str,
    },
    #[error(
        "{0:?} is a database in memory, which would lose the study when nndl exits; \
         give a file: sqlite:PATH"
    )]
    InMemory(String),
    #[error(
        "study {name:?} was not created by nndl (it has no nndl definition); give another \
         name with --study NAME"
    )]
    NotNndl { name: String },
    #[error("{location}: {what} is corrupt")]
    Corrupt { location: String, what: String },
    #[error(
        "study {name:?} already exists with a different definition:\n  {}\n(to run a \
         different search, give it another name: --study NAME)",
        .differences.join("\n  ")
    )]
    SpecDiffers {
        name: String,
        differences: Vec<String>,
    },
    #[error("{location} has no study with id {study}")]
    NoStudy { location: String, study: StudyId },
    #[error("study {study} has no trial {number}")]
    NoTrial { study: StudyId, number: u32 },
    #[error("trial {number} has {recorded} epochs recorded; cannot record epoch {epoch}")]
    EpochGap {
        number: u32,
        recorded: usize,
        epoch: usize,
    },
    #[error("trial {number}: epoch {epoch}'s validation accuracy is {value}, not a number")]
    NotFinite {
        number: u32,
        epoch: usize,
        value: f64,
    },
    #[error("a trial cannot finish as {0:?}")]
    NotFinal(TrialState),
}

/// An error of the database client, whichever it is: its message and its causes.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(Box<dyn std::error::Error + Send + Sync>);

impl DbError {
    pub fn new(source: impl std::error::Error + Send + Sync + 'static) -> DbError {
        DbError(Box::new(source))
    }
}

/// Opens the store at `url` to read and write: `sqlite:PATH` (the file is created if missing)
/// or `postgres://…`/`postgresql://…` (the database must exist); Optuna's tables and nndl's
/// are created if missing.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    Ok(Box::new(sql::SqlStore::open(connect(url, true)?, true)?))
}

/// Opens the store at `url` only to read it: nothing is created or changed, and a database
/// without Optuna's tables is [`StoreError::NotAStore`].
pub fn open_read_only(url: &str) -> Result<Box<dyn Store>, StoreError> {
    Ok(Box::new(sql::SqlStore::open(connect(url, false)?, false)?))
}

/// Converts the study database at `url` from nndl's old layout to Optuna's schema, keeping the
/// old tables ([`migrate::migrate`]).
pub fn migrate(url: &str) -> Result<migrate::Migrated, StoreError> {
    migrate::migrate(connect(url, true)?)
}

/// A connection to the database at `url`, able to write if `write`.
pub fn connect(url: &str, write: bool) -> Result<Box<dyn sql::Connection>, StoreError> {
    if let Some(path) = sqlite_path(url) {
        if path.is_empty() {
            return Err(StoreError::Url(url.to_string()));
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(StoreError::InMemory(url.to_string()));
        }
        Ok(Box::new(sqlite::SqliteConnection::open(path, write)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(postgres::PostgresConnection::open(url, write)?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::NoPostgres(redact(url)));
    } else {
        Err(StoreError::Url(redact(url)))
    }
}

/// The file a `sqlite:PATH` URL names (`sqlite://PATH` too, as SQLAlchemy and Optuna write
/// it), or `None` for another kind of URL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite:")?;
    Some(path.strip_prefix("//").unwrap_or(path))
}

/// `url` with its password, if any, replaced by `***`, fit to print.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = url[..scheme_end + 3].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    // A password may also be given as a query parameter.
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// What differs between a study's stored definition and the one it is opened with, one
/// phrase per difference; empty when they are equal.
pub fn spec_differences(stored: &StudySpec, given: &StudySpec) -> Vec<String> {
    let mut out = Vec::new();
    let old = &stored.space.params;
    let new = &given.space.params;
    for p in new {
        match old.iter().find(|q| q.name == p.name) {
            None => out.push(format!("parameter {} added ({})", p.name, Kind(&p.kind))),
            Some(q) if q.kind != p.kind => out.push(format!(
                "parameter {} changed from {} to {}",
                p.name,
                Kind(&q.kind),
                Kind(&p.kind)
            )),
            Some(_) => {}
        }
    }
    for q in old {
        if !new.iter().any(|p| p.name == q.name) {
            out.push(format!(
                "parameter {} removed (was {})",
                q.name,
                Kind(&q.kind)
            ));
        }
    }
    if out.is_empty() && old != new {
        let names = |ps: &[super::space::Param]| {
            ps.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push(format!(
            "parameters reordered from {} to {}",
            names(old),
            names(new)
        ));
    }
    if stored.sampler != given.sampler {
        out.push(format!(
            "sampler changed from {} to {}",
            stored.sampler, given.sampler
        ));
    }
    match (&stored.base, &given.base) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (key, v) in b {
                match a.get(key) {
                    None => out.push(format!("setting {key} added ({v})")),
                    Some(u) if u != v => out.push(format!("setting {key} changed from {u} to {v}")),
                    Some(_) => {}
                }
            }
            for (key, u) in a {
                if !b.contains_key(key) {
                    out.push(format!("setting {key} removed (was {u})"));
                }
            }
        }
        (a, b) if a != b => out.push(format!("training settings changed from {a} to {b}")),
        _ => {}
    }
    out
}

/// A parameter's kind as the command line writes it (`log:0.01:10`).
struct Kind<'a>(&'a super::space::Kind);

impl fmt::Display for Kind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::space::Kind as K;
        match self.0 {
            K::Float { lo, hi } => write!(f, "float:{lo}:{hi}"),
            K::Log { lo, hi } => write!(f, "log:{lo}:{hi}"),
            K::Int { lo, hi } => write!(f, "int:{lo}:{hi}"),
            K::IntLog { lo, hi } => write!(f, "intlog:{lo}:{hi}"),
            K::Choice { choices } => write!(f, "choice:{}", choices.join(",")),
        }
    }
}

/// The study's best trial, whose checkpoint is worth keeping once `trials` have been updated:
/// the complete trial with the highest best validation accuracy, the first of equals.
pub fn best_complete(trials: &[Trial]) -> Option<u32> {
    trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| t.best().map(|(_, v)| (t.number, v)))
        .fold(None, |best: Option<(u32, f64)>, (n, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((n, v)),
        })
        .map(|(n, _)| n)
}

/// The state's name in the `state` column, as its serde form writes it.
pub fn state_name(state: TrialState) -> &'static str {
    match state {
        TrialState::Waiting => "waiting",
        TrialState::Running => "running",
        TrialState::Complete => "complete",
        TrialState::Pruned => "pruned",
        TrialState::Failed => "failed",
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // The types stored (specs, parameters, results) are maps, strings and numbers: JSON
    // always represents them.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::space::{Kind as K, Param, Space};

    fn spec() -> StudySpec {
        StudySpec {
            name: "s".into(),
            space: Space {
                params: vec![
                    Param {
                        name: "eta".into(),
                        kind: K::Log { lo: 0.01, hi: 10.0 },
                    },
                    Param {
                        name: "hidden".into(),
                        kind: K::IntLog { lo: 10, hi: 200 },
                    },
                ],
            },
            sampler: "tpe".into(),
            base: serde_json::json!({"epochs": 10, "net": "network3"}),
        }
    }

    #[test]
    fn equal_specs_have_no_differences() {
        assert!(spec_differences(&spec(), &spec()).is_empty());
    }

    #[test]
    fn differences_are_named() {
        let mut other = spec();
        other.space.params[0].kind = K::Log { lo: 0.1, hi: 10.0 };
        other.space.params.remove(1);
        other.space.params.push(Param {
            name: "lambda".into(),
            kind: K::Float { lo: 0.0, hi: 5.0 },
        });
        other.sampler = "random".into();
        other.base = serde_json::json!({"epochs": 30, "data": "x.pkl.gz"});
        let d = spec_differences(&spec(), &other);
        assert_eq!(
            d,
            vec![
                "parameter eta changed from log:0.01:10 to log:0.1:10",
                "parameter lambda added (float:0:5)",
                "parameter hidden removed (was intlog:10:200)",
                "sampler changed from tpe to random",
                "setting data added (\"x.pkl.gz\")",
                "setting epochs changed from 10 to 30",
                "setting net removed (was \"network3\")",
            ]
        );
    }

    #[test]
    fn reordering_is_a_difference() {
        let mut other = spec();
        other.space.params.reverse();
        assert_eq!(
            spec_differences(&spec(), &other),
            vec!["parameters reordered from eta,hidden to hidden,eta"]
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://ann:s3cret@db.example:5432/nndl?sslmode=disable"),
            "postgres://ann:***@db.example:5432/nndl?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://ann@db/nndl?password=s3cret&user=ann"),
            "postgresql://ann@db/nndl?password=***&user=ann"
        );
        assert_eq!(redact("postgres://db/nndl"), "postgres://db/nndl");
        // '@' in the password is escaped in a URL, but an unescaped one must not leak.
        assert_eq!(
            redact("postgres://ann:p@ss@db/x"),
            "postgres://ann:***@db/x"
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        for url in ["mysql://db/x", "sqlite:", "nndl-study.db"] {
            assert!(matches!(open(url), Err(StoreError::Url(_))), "{url}");
        }
        assert!(matches!(
            open("sqlite::memory:"),
            Err(StoreError::InMemory(_))
        ));
    }

    #[test]
    fn best_complete_ignores_pruned_and_ties_go_to_the_first() {
        let t = |number, state, values: &[f64]| {
            Trial::new(number, Params::new(), state, values.to_vec())
        };
        let trials = [
            t(0, TrialState::Complete, &[90.0, 95.0]),
            t(1, TrialState::Pruned, &[97.0]),
            t(2, TrialState::Complete, &[95.0, 94.0]),
            t(3, TrialState::Running, &[99.0]),
        ];
        assert_eq!(best_complete(&trials), Some(0));
        assert_eq!(best_complete(&trials[1..2]), None);
    }
}
