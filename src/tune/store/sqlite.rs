//! The study store in one SQLite file (`sqlite:PATH`, by default `nndl-study.db`), through
//! `rusqlite` with SQLite compiled in, so nothing needs installing.
//!
//! Several workers — threads or processes of one machine, each with its own connection — can
//! share the file without corrupting it or failing with "database is locked", which is where
//! Optuna's SQLite storage breaks down:
//! - the file is in write-ahead-log mode, so readers never block the writer nor it them;
//! - every change is one `BEGIN IMMEDIATE` transaction, which takes the write lock before it
//!   reads: two workers never both read the trials and then both try to upgrade to a write
//!   (the deadlock that surfaces as an immediate `SQLITE_BUSY` whatever the timeout);
//! - a worker waiting for the lock waits up to [`BUSY_TIMEOUT`] rather than failing, and a new
//!   connection whose first statements meet the lock without SQLite waiting tries them again.
//!
//! Times are SQLite's clock, written as ISO 8601 text (`2025-01-31T12:00:00.000Z`), so the
//! file reads well in the `sqlite3` shell.
//!
//! Left out: sharing the file over a network file system, where SQLite's locks are not to be
//! trusted (use PostgreSQL for workers on several machines).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    assemble, best_complete, needs_migration, spec_differences, state_name, to_json, StoreError,
    StudyId, StudyInfo, StudyResult, TrialRow, MIGRATE_1_TO_2, SCHEMA_VERSION,
};
use crate::tune::space::Params;
use crate::tune::study::{StudySpec, Trial, TrialState};

/// How long a worker waits for another's write before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The current time as SQLite writes it.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nndl_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nndl_studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    result TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nndl_trials (
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
    message TEXT,
    PRIMARY KEY (study_id, number)
);
CREATE TABLE IF NOT EXISTS nndl_trial_values (
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (study_id, number, epoch),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
CREATE TABLE IF NOT EXISTS nndl_checkpoints (
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (study_id, number),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
";

/// A study store in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the file at `path`, creating it and its tables if missing, and bringing a file of
    /// an older layout to this one (see [`super`]).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let err = err(&path);
        let location = path.display().to_string();
        let mut conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        retry_while_busy(|| prepare(&mut conn, &location))
            .map_err(err)?
            .map_err(|e| *e)?;
        Ok(SqliteStore { conn, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
        err(&self.path)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// Puts a new connection's file in write-ahead-log mode, creates the tables if missing and
/// migrates a file of an older layout, all in one transaction; the inner error is a layout
/// this nndl cannot read (nothing changed then).
fn prepare(conn: &mut Connection, location: &str) -> rusqlite::Result<Result<(), Box<StoreError>>> {
    // The first statement that reads the file: a file that is not a SQLite database fails
    // here ("file is not a database").
    conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    })?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    let found: Option<i64> =
        tx.query_row("SELECT max(version) FROM nndl_schema", [], |row| row.get(0))?;
    match found.map(|found| needs_migration(location, found)) {
        None => {
            tx.execute(
                "INSERT INTO nndl_schema (version) VALUES (?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(Ok(false)) => {}
        Some(Ok(true)) => tx.execute_batch(MIGRATE_1_TO_2)?,
        // Dropping the transaction rolls it back: a newer layout is left as it was.
        Some(Err(e)) => return Ok(Err(Box::new(e))),
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// Runs `attempt` again while SQLite answers "database is locked" without waiting, for up to
/// [`BUSY_TIMEOUT`] in all.
///
/// The busy timeout covers a connection that waits for a lock, but a connection's first
/// statements can get `SQLITE_BUSY` at once, where waiting could deadlock: several connections
/// switching a new file to write-ahead-log mode together (each holds a read lock and wants the
/// write lock), or one opening while the last other connection cleans up the log on close.
/// SQLite leaves the retry to the application; these statements change nothing when repeated.
fn retry_while_busy<T>(mut attempt: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt() {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// A transaction of `behavior` on the store at `path`, once study `study` is known to exist.
fn begin_for_study<'c>(
    conn: &'c mut Connection,
    path: &Path,
    study: StudyId,
    behavior: TransactionBehavior,
) -> Result<rusqlite::Transaction<'c>, StoreError> {
    let err = err(path);
    let tx = conn.transaction_with_behavior(behavior).map_err(err)?;
    if !study_exists(&tx, study).map_err(err)? {
        return Err(StoreError::NoStudy {
            location: path.display().to_string(),
            study,
        });
    }
    Ok(tx)
}

fn err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// The trials of `study` (only trial `only` if given), with their values.
fn read_trials(
    conn: &Connection,
    path: &Path,
    study: StudyId,
    only: Option<u32>,
) -> Result<Vec<Trial>, StoreError> {
    let err = err(path);
    let only = only.map(i64::from);
    let rows = conn
        .prepare_cached(
            "SELECT number, params, state, worker, seconds, message FROM nndl_trials
             WHERE study_id = ?1 AND (?2 IS NULL OR number = ?2) ORDER BY number",
        )
        .map_err(err)?
        .query_map(params![study, only], |row| {
            Ok(TrialRow {
                number: row.get(0)?,
                params: row.get(1)?,
                state: row.get(2)?,
                worker: row.get(3)?,
                seconds: row.get(4)?,
                message: row.get(5)?,
            })
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let values = conn
        .prepare_cached(
            "SELECT number, epoch, value FROM nndl_trial_values
             WHERE study_id = ?1 AND (?2 IS NULL OR number = ?2) ORDER BY number, epoch",
        )
        .map_err(err)?
        .query_map(params![study, only], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    assemble(&path.display().to_string(), rows, values)
}

fn study_exists(conn: &Connection, study: StudyId) -> Result<bool, rusqlite::Error> {
    conn.query_row("SELECT 1 FROM nndl_studies WHERE id = ?1", [study], |_| {
        Ok(())
    })
    .optional()
    .map(|found| found.is_some())
}

/// True if `worker` runs trial `number`.
fn owns(
    conn: &Connection,
    study: StudyId,
    number: u32,
    worker: &str,
) -> Result<bool, rusqlite::Error> {
    conn.query_row(
        "SELECT 1 FROM nndl_trials
         WHERE study_id = ?1 AND number = ?2 AND state = 'running' AND worker = ?3",
        params![study, number, worker],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

impl super::Store for SqliteStore {
    fn open_study(&mut self, spec: &StudySpec) -> Result<StudyId, StoreError> {
        let path = self.path.clone();
        let err = err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let existing: Option<(StudyId, String)> = tx
            .query_row(
                "SELECT id, spec FROM nndl_studies WHERE name = ?1",
                [&spec.name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let id = match existing {
            Some((id, stored)) => {
                let stored: StudySpec =
                    serde_json::from_str(&stored).map_err(|_| StoreError::Corrupt {
                        location: path.display().to_string(),
                        what: format!("the definition of study {:?}", spec.name),
                    })?;
                if stored != *spec {
                    return Err(StoreError::SpecDiffers {
                        name: spec.name.clone(),
                        differences: spec_differences(&stored, spec),
                    });
                }
                id
            }
            None => {
                tx.execute(
                    &format!(
                        "INSERT INTO nndl_studies (name, spec, created_at) VALUES (?1, ?2, {NOW})"
                    ),
                    params![spec.name, to_json(spec)],
                )
                .map_err(err)?;
                tx.last_insert_rowid()
            }
        };
        tx.commit().map_err(err)?;
        Ok(id)
    }

    fn studies(&mut self) -> Result<Vec<StudyInfo>, StoreError> {
        let location = self.location();
        let path = self.path.clone();
        let err = err(&path);
        let rows = self
            .conn
            .prepare(
                "SELECT s.id, s.spec, (julianday(s.created_at) - 2440587.5) * 86400.0, s.result,
                        (SELECT count(*) FROM nndl_trials t WHERE t.study_id = s.id)
                 FROM nndl_studies s ORDER BY s.name",
            )
            .map_err(err)?
            .query_map([], |row| {
                Ok((
                    row.get::<_, StudyId>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, f64>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        rows.into_iter()
            .map(|(id, spec, created, result, trials)| {
                let corrupt = |what: &str| StoreError::Corrupt {
                    location: location.clone(),
                    what: format!("{what} of study {id}"),
                };
                Ok(StudyInfo {
                    id,
                    spec: serde_json::from_str(&spec).map_err(|_| corrupt("the definition"))?,
                    created: Duration::try_from_secs_f64(created)
                        .ok()
                        .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
                        .ok_or_else(|| corrupt("the creation time"))?,
                    trials: u32::try_from(trials).map_err(|_| corrupt("the trial count"))?,
                    result: result
                        .map(|r| serde_json::from_str(&r))
                        .transpose()
                        .map_err(|_| corrupt("the result"))?,
                })
            })
            .collect()
    }

    fn trials(&mut self, study: StudyId) -> Result<Vec<Trial>, StoreError> {
        let path = self.path.clone();
        let err = err(&path);
        // One read transaction: the trials and their values from the same snapshot.
        let tx = begin_for_study(&mut self.conn, &path, study, TransactionBehavior::Deferred)?;
        let trials = read_trials(&tx, &path, study, None)?;
        tx.commit().map_err(err)?;
        Ok(trials)
    }

    fn start_trial(
        &mut self,
        study: StudyId,
        worker: &str,
        max_trials: u32,
        sample: &mut dyn FnMut(u32, &[Trial]) -> Option<Params>,
    ) -> Result<Option<Trial>, StoreError> {
        let path = self.path.clone();
        let err = err(&path);
        let tx = begin_for_study(&mut self.conn, &path, study, TransactionBehavior::Immediate)?;
        let trials = read_trials(&tx, &path, study, None)?;
        if trials.len() >= max_trials as usize {
            return Ok(None);
        }
        let number = trials.last().map_or(0, |t| t.number + 1);
        let Some(params) = sample(number, &trials) else {
            return Ok(None);
        };
        tx.execute(
            &format!(
                "INSERT INTO nndl_trials
                 (study_id, number, params, state, worker, created_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, 'running', ?4, {NOW}, {NOW})"
            ),
            params![study, number, to_json(&params), worker],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Some(Trial {
            number,
            params,
            state: TrialState::Running,
            values: Vec::new(),
            worker: Some(worker.to_string()),
            seconds: 0.0,
            message: None,
        }))
    }

    fn enqueue_trial(
        &mut self,
        study: StudyId,
        params: &Params,
        max_trials: u32,
    ) -> Result<Option<u32>, StoreError> {
        let path = self.path.clone();
        let err = err(&path);
        let tx = begin_for_study(&mut self.conn, &path, study, TransactionBehavior::Immediate)?;
        let (count, next): (i64, i64) = tx
            .query_row(
                "SELECT count(*), coalesce(max(number) + 1, 0) FROM nndl_trials
                 WHERE study_id = ?1",
                [study],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(err)?;
        if count >= i64::from(max_trials) {
            return Ok(None);
        }
        let number = u32::try_from(next).map_err(|_| StoreError::Corrupt {
            location: path.display().to_string(),
            what: format!("trial number {next}"),
        })?;
        tx.execute(
            &format!(
                "INSERT INTO nndl_trials (study_id, number, params, state, created_at)
                 VALUES (?1, ?2, ?3, 'waiting', {NOW})"
            ),
            params![study, number, to_json(params)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Some(number))
    }

    fn claim_stale(
        &mut self,
        study: StudyId,
        worker: &str,
        stale_after: Duration,
    ) -> Result<Option<Trial>, StoreError> {
        let path = self.path.clone();
        let err = err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let before = format!("-{:.3} seconds", stale_after.as_secs_f64());
        let number: Option<u32> = tx
            .query_row(
                "SELECT number FROM nndl_trials
                 WHERE study_id = ?1 AND (state = 'waiting' OR (state = 'running'
                       AND heartbeat_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)))
                 ORDER BY state = 'waiting' DESC, number LIMIT 1",
                params![study, before],
                |row| row.get(0),
            )
            .optional()
            .map_err(err)?;
        let Some(number) = number else {
            return Ok(None);
        };
        tx.execute(
            &format!(
                "UPDATE nndl_trials SET state = 'running', worker = ?3, heartbeat_at = {NOW}
                 WHERE study_id = ?1 AND number = ?2"
            ),
            params![study, number, worker],
        )
        .map_err(err)?;
        let trial = read_trials(&tx, &path, study, Some(number))?.pop();
        tx.commit().map_err(err)?;
        Ok(trial)
    }

    fn heartbeat(&mut self, study: StudyId, number: u32, worker: &str) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                &format!(
                    "UPDATE nndl_trials SET heartbeat_at = {NOW}
                     WHERE study_id = ?1 AND number = ?2 AND state = 'running' AND worker = ?3"
                ),
                params![study, number, worker],
            )
            .map_err(self.err())?;
        Ok(changed == 1)
    }

    fn report_epoch(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        epoch: usize,
        value: f64,
        seconds: f64,
        checkpoint: &[u8],
    ) -> Result<bool, StoreError> {
        if !value.is_finite() {
            return Err(StoreError::NotFinite {
                number,
                epoch,
                value,
            });
        }
        let path = self.path.clone();
        let err = err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        if !owns(&tx, study, number, worker).map_err(err)? {
            return Ok(false);
        }
        let recorded: i64 = tx
            .query_row(
                "SELECT count(*) FROM nndl_trial_values WHERE study_id = ?1 AND number = ?2",
                params![study, number],
                |row| row.get(0),
            )
            .map_err(err)?;
        let recorded = usize::try_from(recorded).unwrap_or(0);
        let epoch_i64 = i64::try_from(epoch).unwrap_or(i64::MAX);
        if epoch > recorded {
            return Err(StoreError::EpochGap {
                number,
                recorded,
                epoch,
            });
        }
        tx.execute(
            "DELETE FROM nndl_trial_values WHERE study_id = ?1 AND number = ?2 AND epoch >= ?3",
            params![study, number, epoch_i64],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO nndl_trial_values (study_id, number, epoch, value)
             VALUES (?1, ?2, ?3, ?4)",
            params![study, number, epoch_i64, value],
        )
        .map_err(err)?;
        tx.execute(
            &format!(
                "UPDATE nndl_trials SET seconds = seconds + ?3, heartbeat_at = {NOW}
                 WHERE study_id = ?1 AND number = ?2"
            ),
            params![study, number, seconds],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO nndl_checkpoints (study_id, number, epoch, data)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (study_id, number) DO UPDATE SET epoch = excluded.epoch,
                                                          data = excluded.data",
            params![study, number, epoch_i64, checkpoint],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(true)
    }

    fn checkpoint(&mut self, study: StudyId, number: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT data FROM nndl_checkpoints WHERE study_id = ?1 AND number = ?2",
                params![study, number],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    fn end(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        state: TrialState,
        message: Option<&str>,
    ) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let err = err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        if !owns(&tx, study, number, worker).map_err(err)? {
            return Ok(false);
        }
        tx.execute(
            &format!(
                "UPDATE nndl_trials SET state = ?3, message = ?4, finished_at = {NOW}
                 WHERE study_id = ?1 AND number = ?2"
            ),
            params![study, number, state_name(state), message],
        )
        .map_err(err)?;
        let trials = read_trials(&tx, &path, study, None)?;
        let keep = best_complete(&trials).map_or(-1, i64::from);
        tx.execute(
            "DELETE FROM nndl_checkpoints WHERE study_id = ?1 AND number <> ?2 AND number IN
                 (SELECT number FROM nndl_trials WHERE study_id = ?1
                  AND state IN ('complete', 'pruned', 'failed'))",
            params![study, keep],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(true)
    }

    fn set_study_result(&mut self, study: StudyId, result: &StudyResult) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE nndl_studies SET result = ?2 WHERE id = ?1",
                params![study, to_json(result)],
            )
            .map_err(self.err())?;
        if changed == 0 {
            return Err(StoreError::NoStudy {
                location: self.location(),
                study,
            });
        }
        Ok(())
    }

    fn study_result(&mut self, study: StudyId) -> Result<Option<StudyResult>, StoreError> {
        let result: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT result FROM nndl_studies WHERE id = ?1",
                [study],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err())?;
        let Some(result) = result else {
            return Err(StoreError::NoStudy {
                location: self.location(),
                study,
            });
        };
        result
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|_| StoreError::Corrupt {
                location: self.location(),
                what: format!("the result of study {study}"),
            })
    }
}
