//! The study store in a PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`),
//! shared by workers on many machines, through the synchronous `postgres` crate (the training
//! loop it serves is synchronous).
//!
//! Workers are kept apart by row locks, as Optuna's RDB storage does:
//! - a new trial is created while the study's row is locked (`SELECT … FOR UPDATE`), so the
//!   count of trials and the sampler's view of them cannot change under it;
//! - a stale or waiting trial is claimed with `FOR UPDATE SKIP LOCKED`: two workers looking for
//!   work at once take different trials, and neither waits for the other;
//! - a worker's epoch report locks its trial's row and checks it still owns the trial.
//!
//! Times are the database server's (`now()`), so the workers' clocks need not agree for a
//! heartbeat to be judged stale.
//!
//! The tables are created on first use, under a transaction-scoped advisory lock so that
//! workers starting together do not race to create them; their names start with `nndl_`, so
//! the database can be shared with other applications. A URL without `connect_timeout` gets
//! [`CONNECT_TIMEOUT`]; passwords never appear in messages (see [`super::redact`]).
//!
//! Left out: TLS (connections are plain; use a trusted network or a tunnel), and connection
//! pooling (each worker holds one connection).

use std::time::{Duration, SystemTime};

use ::postgres::{Client, Config, GenericClient, NoTls};

use super::{
    assemble, best_complete, needs_migration, redact, spec_differences, state_name, to_json,
    StoreError, StudyId, StudyInfo, StudyResult, TrialRow, MIGRATE_1_TO_2, SCHEMA_VERSION,
};
use crate::tune::space::Params;
use crate::tune::study::{StudySpec, Trial, TrialState};

/// How long to wait for the server to answer when the URL does not say.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The advisory lock taken while creating the tables ("nndl" in ASCII).
const SCHEMA_LOCK: i64 = 0x6e6e_646c;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nndl_schema (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS nndl_studies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    result TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS nndl_trials (
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
    message TEXT,
    PRIMARY KEY (study_id, number)
);
CREATE TABLE IF NOT EXISTS nndl_trial_values (
    study_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (study_id, number, epoch),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
CREATE TABLE IF NOT EXISTS nndl_checkpoints (
    study_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (study_id, number),
    FOREIGN KEY (study_id, number) REFERENCES nndl_trials (study_id, number)
);
";

/// A study store in a PostgreSQL database.
pub struct PostgresStore {
    client: Client,
    /// The URL without its password.
    url: String,
}

impl PostgresStore {
    /// Connects to the database at `url` and creates its tables if missing, or brings tables
    /// of an older layout to this one (see [`super`]).
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = redact(url);
        let connect = |source| StoreError::Connect {
            url: shown.clone(),
            source,
        };
        let mut config: Config = url.parse().map_err(connect)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("nndl");
        }
        let client = config.connect(NoTls).map_err(connect)?;
        let mut store = PostgresStore { client, url: shown };
        store.create_schema()?;
        Ok(store)
    }

    fn create_schema(&mut self) -> Result<(), StoreError> {
        let err = err(&self.url);
        let mut tx = self.client.transaction().map_err(&err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(&err)?;
        tx.batch_execute(SCHEMA).map_err(&err)?;
        let found: Option<i64> = tx
            .query_one("SELECT max(version) FROM nndl_schema", &[])
            .map_err(&err)?
            .try_get(0)
            .map_err(&err)?;
        match found {
            None => {
                tx.execute(
                    "INSERT INTO nndl_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .map_err(&err)?;
            }
            // An error rolls the transaction back: a newer layout is left as it was.
            Some(found) => {
                if needs_migration(&self.url, found)? {
                    tx.batch_execute(MIGRATE_1_TO_2).map_err(&err)?;
                }
            }
        }
        tx.commit().map_err(&err)
    }

    /// Locks the study's row until the end of the transaction; `NoStudy` if there is none.
    fn lock_study(
        tx: &mut impl GenericClient,
        url: &str,
        study: StudyId,
    ) -> Result<(), StoreError> {
        let found = tx
            .query_opt(
                "SELECT id FROM nndl_studies WHERE id = $1 FOR UPDATE",
                &[&study],
            )
            .map_err(err(url))?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::NoStudy {
                location: url.to_string(),
                study,
            }),
        }
    }
}

fn err(url: &str) -> impl Fn(::postgres::Error) -> StoreError + '_ {
    move |source| StoreError::Postgres {
        url: url.to_string(),
        source,
    }
}

/// The trials of `study` (only trial `only` if given), with their values.
fn read_trials(
    client: &mut impl GenericClient,
    url: &str,
    study: StudyId,
    only: Option<u32>,
) -> Result<Vec<Trial>, StoreError> {
    let only = only.map(i64::from);
    let rows = client
        .query(
            "SELECT number, params, state, worker, seconds, message FROM nndl_trials
             WHERE study_id = $1 AND ($2::BIGINT IS NULL OR number = $2) ORDER BY number",
            &[&study, &only],
        )
        .map_err(err(url))?
        .iter()
        .map(|row| {
            Ok(TrialRow {
                number: row.try_get(0)?,
                params: row.try_get(1)?,
                state: row.try_get(2)?,
                worker: row.try_get(3)?,
                seconds: row.try_get(4)?,
                message: row.try_get(5)?,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(err(url))?;
    let values = client
        .query(
            "SELECT number, epoch, value FROM nndl_trial_values
             WHERE study_id = $1 AND ($2::BIGINT IS NULL OR number = $2)
             ORDER BY number, epoch",
            &[&study, &only],
        )
        .map_err(err(url))?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect::<Result<_, _>>()
        .map_err(err(url))?;
    assemble(url, rows, values)
}

/// Locks trial `number` and tells whether `worker` runs it.
fn lock_owned(
    client: &mut impl GenericClient,
    url: &str,
    study: StudyId,
    number: u32,
    worker: &str,
) -> Result<bool, StoreError> {
    let row = client
        .query_opt(
            "SELECT 1 FROM nndl_trials
             WHERE study_id = $1 AND number = $2 AND state = 'running' AND worker = $3
             FOR UPDATE",
            &[&study, &i64::from(number), &worker],
        )
        .map_err(err(url))?;
    Ok(row.is_some())
}

impl super::Store for PostgresStore {
    fn open_study(&mut self, spec: &StudySpec) -> Result<StudyId, StoreError> {
        let err = err(&self.url);
        let inserted = self
            .client
            .query_opt(
                "INSERT INTO nndl_studies (name, spec) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&spec.name, &to_json(spec)],
            )
            .map_err(&err)?;
        if let Some(row) = inserted {
            return row.try_get(0).map_err(&err);
        }
        let row = self
            .client
            .query_one(
                "SELECT id, spec FROM nndl_studies WHERE name = $1",
                &[&spec.name],
            )
            .map_err(&err)?;
        let stored: String = row.try_get(1).map_err(&err)?;
        let stored: StudySpec = serde_json::from_str(&stored).map_err(|_| StoreError::Corrupt {
            location: self.url.clone(),
            what: format!("the definition of study {:?}", spec.name),
        })?;
        if stored != *spec {
            return Err(StoreError::SpecDiffers {
                name: spec.name.clone(),
                differences: spec_differences(&stored, spec),
            });
        }
        row.try_get(0).map_err(&err)
    }

    fn studies(&mut self) -> Result<Vec<StudyInfo>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT s.id, s.spec, s.created_at, s.result,
                        (SELECT count(*) FROM nndl_trials t WHERE t.study_id = s.id)
                 FROM nndl_studies s ORDER BY s.name",
                &[],
            )
            .map_err(err(&self.url))?;
        rows.iter()
            .map(|row| {
                let id: StudyId = row.try_get(0).map_err(err(&self.url))?;
                let corrupt = |what: &str| StoreError::Corrupt {
                    location: self.url.clone(),
                    what: format!("{what} of study {id}"),
                };
                let spec: String = row.try_get(1).map_err(err(&self.url))?;
                let created: SystemTime = row.try_get(2).map_err(err(&self.url))?;
                let result: Option<String> = row.try_get(3).map_err(err(&self.url))?;
                let trials: i64 = row.try_get(4).map_err(err(&self.url))?;
                Ok(StudyInfo {
                    id,
                    spec: serde_json::from_str(&spec).map_err(|_| corrupt("the definition"))?,
                    created,
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
        let url = &self.url;
        // REPEATABLE READ: the trials and their values from the same snapshot.
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(err(url))?;
        let exists = tx
            .query_opt("SELECT 1 FROM nndl_studies WHERE id = $1", &[&study])
            .map_err(err(url))?;
        if exists.is_none() {
            return Err(StoreError::NoStudy {
                location: url.clone(),
                study,
            });
        }
        let trials = read_trials(&mut tx, url, study, None)?;
        tx.commit().map_err(err(url))?;
        Ok(trials)
    }

    fn start_trial(
        &mut self,
        study: StudyId,
        worker: &str,
        max_trials: u32,
        sample: &mut dyn FnMut(u32, &[Trial]) -> Option<Params>,
    ) -> Result<Option<Trial>, StoreError> {
        let url = &self.url;
        let mut tx = self.client.transaction().map_err(err(url))?;
        Self::lock_study(&mut tx, url, study)?;
        let trials = read_trials(&mut tx, url, study, None)?;
        if trials.len() >= max_trials as usize {
            return Ok(None);
        }
        let number = trials.last().map_or(0, |t| t.number + 1);
        let Some(params) = sample(number, &trials) else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO nndl_trials (study_id, number, params, state, worker, heartbeat_at)
             VALUES ($1, $2, $3, 'running', $4, now())",
            &[&study, &i64::from(number), &to_json(&params), &worker],
        )
        .map_err(err(url))?;
        tx.commit().map_err(err(url))?;
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
        let url = &self.url;
        let mut tx = self.client.transaction().map_err(err(url))?;
        Self::lock_study(&mut tx, url, study)?;
        let row = tx
            .query_one(
                "SELECT count(*), coalesce(max(number) + 1, 0) FROM nndl_trials
                 WHERE study_id = $1",
                &[&study],
            )
            .map_err(err(url))?;
        let count: i64 = row.try_get(0).map_err(err(url))?;
        let next: i64 = row.try_get(1).map_err(err(url))?;
        if count >= i64::from(max_trials) {
            return Ok(None);
        }
        let number = u32::try_from(next).map_err(|_| StoreError::Corrupt {
            location: url.clone(),
            what: format!("trial number {next}"),
        })?;
        tx.execute(
            "INSERT INTO nndl_trials (study_id, number, params, state)
             VALUES ($1, $2, $3, 'waiting')",
            &[&study, &next, &to_json(params)],
        )
        .map_err(err(url))?;
        tx.commit().map_err(err(url))?;
        Ok(Some(number))
    }

    fn claim_stale(
        &mut self,
        study: StudyId,
        worker: &str,
        stale_after: Duration,
    ) -> Result<Option<Trial>, StoreError> {
        let url = &self.url;
        let mut tx = self.client.transaction().map_err(err(url))?;
        let row = tx
            .query_opt(
                "SELECT number FROM nndl_trials
                 WHERE study_id = $1 AND (state = 'waiting' OR (state = 'running'
                       AND heartbeat_at < now() - make_interval(secs => $2)))
                 ORDER BY state = 'waiting' DESC, number LIMIT 1
                 FOR UPDATE SKIP LOCKED",
                &[&study, &stale_after.as_secs_f64()],
            )
            .map_err(err(url))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let number: i64 = row.try_get(0).map_err(err(url))?;
        tx.execute(
            "UPDATE nndl_trials SET state = 'running', worker = $3, heartbeat_at = now()
             WHERE study_id = $1 AND number = $2",
            &[&study, &number, &worker],
        )
        .map_err(err(url))?;
        let number = u32::try_from(number).map_err(|_| StoreError::Corrupt {
            location: url.clone(),
            what: format!("trial number {number}"),
        })?;
        let trial = read_trials(&mut tx, url, study, Some(number))?.pop();
        tx.commit().map_err(err(url))?;
        Ok(trial)
    }

    fn heartbeat(&mut self, study: StudyId, number: u32, worker: &str) -> Result<bool, StoreError> {
        let changed = self
            .client
            .execute(
                "UPDATE nndl_trials SET heartbeat_at = now()
                 WHERE study_id = $1 AND number = $2 AND state = 'running' AND worker = $3",
                &[&study, &i64::from(number), &worker],
            )
            .map_err(err(&self.url))?;
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
        let url = &self.url;
        let mut tx = self.client.transaction().map_err(err(url))?;
        if !lock_owned(&mut tx, url, study, number, worker)? {
            return Ok(false);
        }
        let n = i64::from(number);
        let recorded: i64 = tx
            .query_one(
                "SELECT count(*) FROM nndl_trial_values WHERE study_id = $1 AND number = $2",
                &[&study, &n],
            )
            .map_err(err(url))?
            .try_get(0)
            .map_err(err(url))?;
        let recorded = usize::try_from(recorded).unwrap_or(0);
        if epoch > recorded {
            return Err(StoreError::EpochGap {
                number,
                recorded,
                epoch,
            });
        }
        let e = i64::try_from(epoch).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM nndl_trial_values WHERE study_id = $1 AND number = $2 AND epoch >= $3",
            &[&study, &n, &e],
        )
        .map_err(err(url))?;
        tx.execute(
            "INSERT INTO nndl_trial_values (study_id, number, epoch, value)
             VALUES ($1, $2, $3, $4)",
            &[&study, &n, &e, &value],
        )
        .map_err(err(url))?;
        tx.execute(
            "UPDATE nndl_trials SET seconds = seconds + $3, heartbeat_at = now()
             WHERE study_id = $1 AND number = $2",
            &[&study, &n, &seconds],
        )
        .map_err(err(url))?;
        tx.execute(
            "INSERT INTO nndl_checkpoints (study_id, number, epoch, data)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (study_id, number) DO UPDATE SET epoch = excluded.epoch,
                                                          data = excluded.data",
            &[&study, &n, &e, &checkpoint],
        )
        .map_err(err(url))?;
        tx.commit().map_err(err(url))?;
        Ok(true)
    }

    fn checkpoint(&mut self, study: StudyId, number: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT data FROM nndl_checkpoints WHERE study_id = $1 AND number = $2",
                &[&study, &i64::from(number)],
            )
            .map_err(err(&self.url))?;
        row.map(|row| row.try_get(0))
            .transpose()
            .map_err(err(&self.url))
    }

    fn end(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        state: TrialState,
        message: Option<&str>,
    ) -> Result<bool, StoreError> {
        let url = &self.url;
        let mut tx = self.client.transaction().map_err(err(url))?;
        // The study's row first (as start_trial locks it), so finishes are serialised and
        // each sees every other finished trial when choosing the checkpoint to keep.
        Self::lock_study(&mut tx, url, study)?;
        if !lock_owned(&mut tx, url, study, number, worker)? {
            return Ok(false);
        }
        tx.execute(
            "UPDATE nndl_trials SET state = $3, message = $4, finished_at = now()
             WHERE study_id = $1 AND number = $2",
            &[&study, &i64::from(number), &state_name(state), &message],
        )
        .map_err(err(url))?;
        let trials = read_trials(&mut tx, url, study, None)?;
        let keep = best_complete(&trials).map_or(-1, i64::from);
        tx.execute(
            "DELETE FROM nndl_checkpoints WHERE study_id = $1 AND number <> $2 AND number IN
                 (SELECT number FROM nndl_trials WHERE study_id = $1
                  AND state IN ('complete', 'pruned', 'failed'))",
            &[&study, &keep],
        )
        .map_err(err(url))?;
        tx.commit().map_err(err(url))?;
        Ok(true)
    }

    fn set_study_result(&mut self, study: StudyId, result: &StudyResult) -> Result<(), StoreError> {
        let changed = self
            .client
            .execute(
                "UPDATE nndl_studies SET result = $2 WHERE id = $1",
                &[&study, &to_json(result)],
            )
            .map_err(err(&self.url))?;
        if changed == 0 {
            return Err(StoreError::NoStudy {
                location: self.url.clone(),
                study,
            });
        }
        Ok(())
    }

    fn study_result(&mut self, study: StudyId) -> Result<Option<StudyResult>, StoreError> {
        let row = self
            .client
            .query_opt("SELECT result FROM nndl_studies WHERE id = $1", &[&study])
            .map_err(err(&self.url))?;
        let Some(row) = row else {
            return Err(StoreError::NoStudy {
                location: self.url.clone(),
                study,
            });
        };
        let result: Option<String> = row.try_get(0).map_err(err(&self.url))?;
        result
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|_| StoreError::Corrupt {
                location: self.url.clone(),
                what: format!("the result of study {study}"),
            })
    }
}
