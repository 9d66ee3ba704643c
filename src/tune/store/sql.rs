//! The study store's one body of SQL, in Optuna's RDB schema, for both databases.
//!
//! Every statement is written once, with `$1`, `$2`, … placeholders; what SQLite and
//! PostgreSQL do differently is [`Connection`]'s to say: placeholders, column types (the
//! [`Dialect`]), the current time, row locks (`FOR UPDATE [SKIP LOCKED]` on PostgreSQL,
//! nothing on SQLite, where every write transaction holds the database's one write lock from
//! its start) and how a transaction begins. `INSERT … RETURNING` and `INSERT … ON CONFLICT
//! … DO UPDATE` are written the same in both.
//!
//! Why not a crate: `sqlx` is asynchronous (nndl's training loop is not, and it would bring
//! its own runtime besides the `postgres` crate's), `diesel` wants its schema generated and
//! its own SQLite and PostgreSQL builds, and `sea-query` builds statements but runs none; the
//! dozen statements here, the handful of dialect differences and two small adapters are less
//! to read than any of them.
//!
//! The tables are Optuna's, as Optuna 5.0 creates them (schema version 12, alembic revision
//! `v3.2.0.a`): a study is a `studies` row with a `study_directions` row (`MAXIMIZE`); its
//! definition ([`StudySpec`]), creation time and final result are study system attributes
//! `nndl:spec`, `nndl:created`, `nndl:result`; a trial is a `trials` row with its
//! `trial_params` (see [`super::optuna`]), one `trial_intermediate_values` row per finished
//! epoch (step = epoch, value = validation accuracy in %), a `trial_values` row once it ends
//! complete (its best epoch's accuracy, the objective) or pruned (its last, as Optuna's
//! `tell` does), a `trial_heartbeats` row while it runs, and its failure message as the
//! `fail_reason` system attribute, where Optuna keeps its own. What Optuna has no place for
//! is in two tables of nndl's own, which Optuna never reads:
//! - `nndl_trial_workers(trial_id, worker, seconds, host, pid)`: who runs the trial, the
//!   training time spent, and the host and process id of the worker
//!   ([`super::process`]; columns added to stores made before they existed);
//! - `nndl_trial_checkpoints(trial_id, epoch, data)`: the checkpoint after the trial's last epoch.
//!
//! They have no foreign keys, so `optuna.delete_study` still works on PostgreSQL (it leaves
//! their rows behind; `nndl tune delete` removes everything).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::optuna;
use super::process;
use super::{best_complete, to_json, RunningTrial, StoreError, StudyId, StudyInfo, StudyResult};
use crate::tune::space::Params;
use crate::tune::study::{StudySpec, Trial, TrialState};

/// Optuna's `version_info.schema_version` for the tables this store writes.
pub const OPTUNA_SCHEMA_VERSION: i64 = 12;

/// Optuna's alembic revision for that schema.
pub const ALEMBIC_REVISION: &str = "v3.2.0.a";

/// A value bound to a placeholder.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }

    fn float(&self) -> Option<f64> {
        match self {
            Cell::Float(v) => Some(*v),
            Cell::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(v) => Some(v),
            _ => None,
        }
    }
}

/// The column types and clauses in which the two databases differ.
pub struct Dialect {
    /// An auto-numbered integer key (SQLite's `INTEGER` primary key numbers itself).
    pub serial: &'static str,
    pub datetime: &'static str,
    pub blob: &'static str,
    /// The type of each of Optuna's enum columns, by enum (`trialstate`, …): native enum types
    /// on PostgreSQL (created by [`Dialect::enum_types`]), `VARCHAR` on SQLite.
    pub enums: fn(&str) -> String,
    /// The statements creating the enum types, run before the tables.
    pub enum_types: &'static str,
    /// The current time in UTC, as Optuna's (time-zone-less) datetime columns hold it.
    pub now: &'static str,
    /// The time `$N` seconds ago, given `$N`, in the same form.
    pub ago: fn(&str) -> String,
    /// Column `$0` of nndl's old layout (a time) as Optuna's datetime columns hold it.
    pub old_time: fn(&str) -> String,
    /// Time `$0` (a column of nndl's old layout, one of Optuna's datetimes, or `now`) in
    /// seconds since 1970.
    pub old_epoch: fn(&str) -> String,
    /// The clause that locks the rows of table alias `t` a query selects until the end of the
    /// transaction, skipping rows another transaction has locked if asked.
    pub lock: fn(&str, bool) -> String,
}

/// One connection to a study database: the adapters in [`super::sqlite`] and
/// [`super::postgres`].
pub trait Connection: Send {
    fn dialect(&self) -> &'static Dialect;
    /// Where the database is, fit to print.
    fn location(&self) -> &str;
    /// Starts a transaction that will write (`write`) or only read.
    fn begin(&mut self, write: bool) -> Result<(), StoreError>;
    /// Runs statements without placeholders.
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Runs one statement, returning its rows.
    fn query(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Vec<Cell>>, StoreError>;
    /// Runs one statement, returning the number of rows it changed.
    fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError>;
    /// True if the database has a table called `name` (where unqualified names find it).
    fn has_table(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Whether table `table` has a column `column`.
    fn has_column(&mut self, table: &str, column: &str) -> Result<bool, StoreError>;
    /// Makes workers creating the tables at once wait for each other, until the end of the
    /// transaction.
    fn lock_schema(&mut self) -> Result<(), StoreError>;
}

/// Optuna's tables as Optuna 5.0 creates them, with the dialect's types for `{serial}`,
/// `{datetime}` and `{enum:NAME}`.
const OPTUNA_TABLES: &str = "
CREATE TABLE studies (
    study_id {serial} NOT NULL,
    study_name VARCHAR(512) NOT NULL,
    PRIMARY KEY (study_id)
);
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE TABLE version_info (
    version_info_id INTEGER NOT NULL,
    schema_version INTEGER,
    library_version VARCHAR(256),
    PRIMARY KEY (version_info_id),
    CHECK (version_info_id=1)
);
CREATE TABLE study_directions (
    study_direction_id {serial} NOT NULL,
    direction {enum:studydirection} NOT NULL,
    study_id INTEGER NOT NULL,
    objective INTEGER NOT NULL,
    PRIMARY KEY (study_direction_id),
    UNIQUE (study_id, objective),
    FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
CREATE TABLE study_user_attributes (
    study_user_attribute_id {serial} NOT NULL,
    study_id INTEGER,
    key VARCHAR(512),
    value_json TEXT,
    PRIMARY KEY (study_user_attribute_id),
    UNIQUE (study_id, key),
    FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
CREATE TABLE study_system_attributes (
    study_system_attribute_id {serial} NOT NULL,
    study_id INTEGER,
    key VARCHAR(512),
    value_json TEXT,
    PRIMARY KEY (study_system_attribute_id),
    UNIQUE (study_id, key),
    FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
CREATE TABLE trials (
    trial_id {serial} NOT NULL,
    number INTEGER,
    study_id INTEGER,
    state {enum:trialstate} NOT NULL,
    datetime_start {datetime},
    datetime_complete {datetime},
    PRIMARY KEY (trial_id),
    FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
CREATE INDEX ix_trials_study_id ON trials (study_id);
CREATE TABLE trial_user_attributes (
    trial_user_attribute_id {serial} NOT NULL,
    trial_id INTEGER,
    key VARCHAR(512),
    value_json TEXT,
    PRIMARY KEY (trial_user_attribute_id),
    UNIQUE (trial_id, key),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE trial_system_attributes (
    trial_system_attribute_id {serial} NOT NULL,
    trial_id INTEGER,
    key VARCHAR(512),
    value_json TEXT,
    PRIMARY KEY (trial_system_attribute_id),
    UNIQUE (trial_id, key),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE trial_params (
    param_id {serial} NOT NULL,
    trial_id INTEGER,
    param_name VARCHAR(512),
    param_value FLOAT,
    distribution_json TEXT,
    PRIMARY KEY (param_id),
    UNIQUE (trial_id, param_name),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE trial_values (
    trial_value_id {serial} NOT NULL,
    trial_id INTEGER NOT NULL,
    objective INTEGER NOT NULL,
    value FLOAT,
    value_type {enum:trialvaluetype} NOT NULL,
    PRIMARY KEY (trial_value_id),
    UNIQUE (trial_id, objective),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE trial_intermediate_values (
    trial_intermediate_value_id {serial} NOT NULL,
    trial_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    intermediate_value FLOAT,
    intermediate_value_type {enum:trialintermediatevaluetype} NOT NULL,
    PRIMARY KEY (trial_intermediate_value_id),
    UNIQUE (trial_id, step),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE trial_heartbeats (
    trial_heartbeat_id {serial} NOT NULL,
    trial_id INTEGER NOT NULL,
    heartbeat {datetime} NOT NULL,
    PRIMARY KEY (trial_heartbeat_id),
    UNIQUE (trial_id),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
";

/// nndl's own tables (see the module's documentation), with the dialect's `{blob}`.
pub(super) const NNDL_TABLES: &str = "
CREATE TABLE IF NOT EXISTS nndl_trial_workers (
    trial_id INTEGER NOT NULL PRIMARY KEY,
    worker TEXT,
    seconds FLOAT NOT NULL DEFAULT 0,
    host TEXT,
    pid BIGINT
);
CREATE TABLE IF NOT EXISTS nndl_trial_checkpoints (
    trial_id INTEGER NOT NULL PRIMARY KEY,
    epoch INTEGER NOT NULL,
    data {blob} NOT NULL
);
";

/// The tables in the dialect's types.
pub(super) fn ddl(template: &str, d: &Dialect) -> String {
    let mut out = template
        .replace("{serial}", d.serial)
        .replace("{datetime}", d.datetime)
        .replace("{blob}", d.blob);
    while let Some(start) = out.find("{enum:") {
        let end = start + out[start..].find('}').unwrap_or(0);
        let name = out[start + 6..end].to_string();
        out.replace_range(start..=end, &(d.enums)(&name));
    }
    out
}

/// The study store over one connection.
pub struct SqlStore {
    conn: Box<dyn Connection>,
}

/// The old nndl layout's marker table: a database that has it holds studies in layout version
/// 1 or 2, for `nndl tune migrate`.
pub const OLD_LAYOUT_TABLE: &str = "nndl_schema";

impl SqlStore {
    /// The store over `conn`. With `create`, Optuna's tables and nndl's are created if missing
    /// (in one transaction, one worker at a time); without, nothing is changed and a database
    /// without them is [`StoreError::NotAStore`]. A database of another layout is refused.
    pub fn open(conn: Box<dyn Connection>, create: bool) -> Result<SqlStore, StoreError> {
        let mut store = SqlStore { conn };
        store.transaction(create, |c| {
            if create {
                c.lock_schema()?;
            }
            check_layout(c, create)?;
            if create {
                let nndl = ddl(NNDL_TABLES, c.dialect());
                c.batch(&nndl)?;
                // Stores made before nndl recorded its workers' processes.
                if !c.has_column("nndl_trial_workers", "host")? {
                    c.batch(
                        "ALTER TABLE nndl_trial_workers ADD COLUMN host TEXT;
                         ALTER TABLE nndl_trial_workers ADD COLUMN pid BIGINT;",
                    )?;
                }
                Ok(())
            } else if c.has_table("nndl_trial_workers")? {
                Ok(())
            } else {
                Err(StoreError::NotAStore {
                    location: c.location().to_string(),
                    found: "Optuna's tables without nndl's",
                })
            }
        })?;
        Ok(store)
    }

    /// Runs `f` in one transaction ([`in_transaction`]).
    fn transaction<T>(
        &mut self,
        write: bool,
        f: impl FnOnce(&mut dyn Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        in_transaction(&mut *self.conn, write, f)
    }
}

/// Runs `f` in one transaction on `c`: committed if it succeeds, rolled back if not.
pub(super) fn in_transaction<T>(
    c: &mut dyn Connection,
    write: bool,
    f: impl FnOnce(&mut dyn Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    c.begin(write)?;
    match f(c) {
        Ok(value) => {
            c.batch("COMMIT")?;
            Ok(value)
        }
        Err(e) => {
            // The error that ended the transaction is the one to report.
            let _ = c.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Checks that the database holds Optuna's schema version 12, creating Optuna's tables if it
/// has none and `create`; a database in nndl's old layout is [`StoreError::OldLayout`].
pub fn check_layout(c: &mut dyn Connection, create: bool) -> Result<(), StoreError> {
    if c.has_table(OLD_LAYOUT_TABLE)? {
        let found = c.query(&format!("SELECT max(version) FROM {OLD_LAYOUT_TABLE}"), &[])?;
        return Err(StoreError::OldLayout {
            location: c.location().to_string(),
            found: found
                .first()
                .and_then(|r| r.first())
                .and_then(Cell::int)
                .unwrap_or(0),
        });
    }
    if !c.has_table("version_info")? {
        if !create {
            return Err(StoreError::NotAStore {
                location: c.location().to_string(),
                found: "no Optuna tables",
            });
        }
        let d = c.dialect();
        c.batch(d.enum_types)?;
        c.batch(&ddl(OPTUNA_TABLES, d))?;
        c.execute(
            "INSERT INTO version_info (version_info_id, schema_version, library_version)
             VALUES (1, $1, $2)",
            &[
                Arg::Int(OPTUNA_SCHEMA_VERSION),
                Arg::Text(concat!("nndl ", env!("CARGO_PKG_VERSION"))),
            ],
        )?;
        c.execute(
            "INSERT INTO alembic_version (version_num) VALUES ($1)",
            &[Arg::Text(ALEMBIC_REVISION)],
        )?;
        return Ok(());
    }
    let found = c.query("SELECT schema_version FROM version_info", &[])?;
    let found = found.first().and_then(|r| r.first()).and_then(Cell::int);
    let alembic = c.query("SELECT version_num FROM alembic_version", &[])?;
    let alembic = alembic.first().and_then(|r| r.first()).and_then(Cell::text);
    if found != Some(OPTUNA_SCHEMA_VERSION) || alembic != Some(ALEMBIC_REVISION) {
        return Err(StoreError::SchemaVersion {
            location: c.location().to_string(),
            found: found.unwrap_or(0),
        });
    }
    Ok(())
}

pub(super) fn corrupt(c: &dyn Connection, what: String) -> StoreError {
    StoreError::Corrupt {
        location: c.location().to_string(),
        what,
    }
}

/// The first column of the first row, if any.
pub(super) fn first(rows: Vec<Vec<Cell>>) -> Option<Cell> {
    rows.into_iter().next().and_then(|r| r.into_iter().next())
}

/// Checks that the study exists (`NoStudy` if not), locking its row until the end of the
/// transaction if `lock`.
fn require_study(c: &mut dyn Connection, study: StudyId, lock: bool) -> Result<(), StoreError> {
    let lock = if lock {
        (c.dialect().lock)("s", false)
    } else {
        String::new()
    };
    let sql = format!("SELECT s.study_id FROM studies s WHERE s.study_id = $1 {lock}");
    // Optuna's ids are 32-bit (`SERIAL` on PostgreSQL).
    if i32::try_from(study).is_err() || c.query(&sql, &[Arg::Int(study)])?.is_empty() {
        return Err(StoreError::NoStudy {
            location: c.location().to_string(),
            study,
        });
    }
    Ok(())
}

/// A study system attribute's JSON.
fn study_attribute(
    c: &mut dyn Connection,
    study: StudyId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let rows = c.query(
        "SELECT value_json FROM study_system_attributes WHERE study_id = $1 AND key = $2",
        &[Arg::Int(study), Arg::Text(key)],
    )?;
    Ok(first(rows).and_then(|v| v.text().map(str::to_string)))
}

pub(super) fn set_study_attribute(
    c: &mut dyn Connection,
    study: StudyId,
    key: &str,
    json: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO study_system_attributes (study_id, key, value_json) VALUES ($1, $2, $3)
         ON CONFLICT (study_id, key) DO UPDATE SET value_json = excluded.value_json",
        &[Arg::Int(study), Arg::Text(key), Arg::Text(json)],
    )?;
    Ok(())
}

/// The study's definition, as `open_study` stored it.
fn stored_spec(c: &mut dyn Connection, study: StudyId) -> Result<Option<StudySpec>, StoreError> {
    let Some(json) = study_attribute(c, study, "nndl:spec")? else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|_| corrupt(c, format!("the definition of study {study}")))
}

/// Writes the heartbeat of trial `id` as now.
fn beat(c: &mut dyn Connection, id: i64) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES ($1, {now})
         ON CONFLICT (trial_id) DO UPDATE SET heartbeat = excluded.heartbeat",
        now = c.dialect().now
    );
    c.execute(&sql, &[Arg::Int(id)])?;
    Ok(())
}

/// The id of trial `number` if `worker` runs it, locking its row.
fn owned(
    c: &mut dyn Connection,
    study: StudyId,
    number: u32,
    worker: &str,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT t.trial_id FROM trials t JOIN nndl_trial_workers n ON n.trial_id = t.trial_id
         WHERE t.study_id = $1 AND t.number = $2 AND t.state = 'RUNNING' AND n.worker = $3 {}",
        (c.dialect().lock)("t", false)
    );
    let rows = c.query(
        &sql,
        &[Arg::Int(study), Arg::Int(number.into()), Arg::Text(worker)],
    )?;
    Ok(first(rows).and_then(|v| v.int()))
}

/// Stores a new trial of `study` in `state` (running for `worker`, or waiting) with `params`.
pub(super) fn insert_trial(
    c: &mut dyn Connection,
    study: StudyId,
    number: u32,
    worker: Option<&str>,
    params: &Params,
) -> Result<i64, StoreError> {
    let space = stored_spec(c, study)?.map(|s| s.space).unwrap_or_default();
    let (state, start) = match worker {
        Some(_) => ("RUNNING", c.dialect().now),
        None => ("WAITING", "NULL"),
    };
    let sql = format!(
        "INSERT INTO trials (number, study_id, state, datetime_start)
         VALUES ($1, $2, '{state}', {start}) RETURNING trial_id"
    );
    let id = first(c.query(&sql, &[Arg::Int(number.into()), Arg::Int(study)])?)
        .and_then(|v| v.int())
        .ok_or_else(|| corrupt(c, format!("the new trial {number}")))?;
    for (name, value) in params {
        let (internal, distribution) = optuna::encode(space.get(name).map(|p| &p.kind), value);
        c.execute(
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)
             VALUES ($1, $2, $3, $4)",
            &[
                Arg::Int(id),
                Arg::Text(name),
                Arg::Float(internal),
                Arg::Text(&distribution),
            ],
        )?;
    }
    let host = process::this_host();
    let (host, pid) = match worker {
        Some(_) => (Arg::Text(&host), Arg::Int(process::this_pid())),
        None => (Arg::Null, Arg::Null),
    };
    c.execute(
        "INSERT INTO nndl_trial_workers (trial_id, worker, seconds, host, pid)
         VALUES ($1, $2, 0, $3, $4)",
        &[Arg::Int(id), worker.map_or(Arg::Null, Arg::Text), host, pid],
    )?;
    if worker.is_some() {
        beat(c, id)?;
    }
    Ok(id)
}

/// `rows` (a trial's number first) that belong to one of `trials`, with that number. On
/// PostgreSQL each statement sees what was committed when it began: rows of a trial created
/// since the trials were read are left for the next read.
fn rows_of(trials: &BTreeMap<u32, Trial>, rows: Vec<Vec<Cell>>) -> Vec<(u32, Vec<Cell>)> {
    rows.into_iter()
        .filter_map(|row| {
            let number = u32::try_from(row[0].int()?).ok()?;
            trials.contains_key(&number).then_some((number, row))
        })
        .collect()
}

/// Records Optuna's value of trial `id`, ended in `state` with per-epoch `values`: the
/// objective of a complete trial (its best epoch's), the last reported value of a pruned one
/// (as Optuna's `Study.tell` records it), none for a failed one.
pub(super) fn set_trial_value(
    c: &mut dyn Connection,
    id: i64,
    state: TrialState,
    values: &[f64],
) -> Result<(), StoreError> {
    let value = match state {
        TrialState::Complete => values.iter().copied().reduce(f64::max),
        TrialState::Pruned => values.last().copied(),
        _ => None,
    };
    if let Some(value) = value {
        c.execute(
            "INSERT INTO trial_values (trial_id, objective, value, value_type)
             VALUES ($1, 0, $2, 'FINITE')",
            &[Arg::Int(id), Arg::Float(value)],
        )?;
    }
    Ok(())
}

/// The trials of `study` (only trial `only` if given), by number, with their values.
pub(super) fn read_trials(
    c: &mut dyn Connection,
    study: StudyId,
    only: Option<u32>,
) -> Result<Vec<Trial>, StoreError> {
    let filter = if only.is_some() {
        "AND t.number = $2"
    } else {
        ""
    };
    let mut args = vec![Arg::Int(study)];
    args.extend(only.map(|n| Arg::Int(n.into())));
    let rows = c.query(
        &format!(
            "SELECT t.number, t.state, n.worker, n.seconds, m.value_json FROM trials t
             LEFT JOIN nndl_trial_workers n ON n.trial_id = t.trial_id
             LEFT JOIN trial_system_attributes m
                    ON m.trial_id = t.trial_id AND m.key = 'fail_reason'
             WHERE t.study_id = $1 {filter} ORDER BY t.number"
        ),
        &args,
    )?;
    let mut trials = BTreeMap::new();
    for row in rows {
        let number = row[0]
            .int()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| corrupt(c, format!("trial number {:?}", row[0])))?;
        let state = row[1]
            .text()
            .and_then(optuna::parse_state)
            .ok_or_else(|| corrupt(c, format!("trial {number}'s state")))?;
        let message = match row[4].text() {
            Some(json) => Some(
                serde_json::from_str::<String>(json)
                    .map_err(|_| corrupt(c, format!("trial {number}'s failure message")))?,
            ),
            None => None,
        };
        let trial = Trial {
            number,
            params: Params::new(),
            state,
            values: Vec::new(),
            worker: row[2].text().map(str::to_string),
            seconds: row[3].float().unwrap_or(0.0),
            message,
        };
        trials.insert(number, trial);
    }
    let params = c.query(
        &format!(
            "SELECT t.number, p.param_name, p.param_value, p.distribution_json
             FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id
             WHERE t.study_id = $1 {filter} ORDER BY t.number, p.param_id"
        ),
        &args,
    )?;
    for (number, row) in rows_of(&trials, params) {
        let value = match (row[1].text(), row[2].float(), row[3].text()) {
            (Some(name), Some(internal), Some(json)) => {
                optuna::decode(internal, json).map(|v| (name.to_string(), v))
            }
            _ => None,
        };
        let (name, value) =
            value.ok_or_else(|| corrupt(c, format!("a parameter of trial {number}")))?;
        trials.entry(number).and_modify(|t| {
            t.params.insert(name, value);
        });
    }
    let values = c.query(
        &format!(
            "SELECT t.number, v.step, v.intermediate_value
             FROM trial_intermediate_values v JOIN trials t ON t.trial_id = v.trial_id
             WHERE t.study_id = $1 {filter} ORDER BY t.number, v.step"
        ),
        &args,
    )?;
    for (number, row) in rows_of(&trials, values) {
        let Some(trial) = trials.get_mut(&number) else {
            continue;
        };
        let step = row[1].int();
        match (step, row[2].float()) {
            (Some(step), Some(value)) if usize::try_from(step).ok() == Some(trial.values.len()) => {
                trial.values.push(value)
            }
            _ => return Err(corrupt(c, format!("trial {number}'s epoch {step:?}"))),
        }
    }
    Ok(trials.into_values().collect())
}

impl super::Store for SqlStore {
    fn open_study(&mut self, spec: &StudySpec) -> Result<StudyId, StoreError> {
        self.transaction(true, |c| {
            // Two workers creating the same study at once: the second waits and finds it.
            c.lock_schema()?;
            let found = c.query(
                "SELECT study_id FROM studies WHERE study_name = $1",
                &[Arg::Text(&spec.name)],
            )?;
            if let Some(id) = first(found).and_then(|v| v.int()) {
                let Some(stored) = stored_spec(c, id)? else {
                    return Err(StoreError::NotNndl {
                        name: spec.name.clone(),
                    });
                };
                if stored != *spec {
                    return Err(StoreError::SpecDiffers {
                        name: spec.name.clone(),
                        differences: super::spec_differences(&stored, spec),
                    });
                }
                return Ok(id);
            }
            let id = first(c.query(
                "INSERT INTO studies (study_name) VALUES ($1) RETURNING study_id",
                &[Arg::Text(&spec.name)],
            )?)
            .and_then(|v| v.int())
            .ok_or_else(|| corrupt(c, format!("the new study {:?}", spec.name)))?;
            c.execute(
                "INSERT INTO study_directions (direction, study_id, objective)
                 VALUES ('MAXIMIZE', $1, 0)",
                &[Arg::Int(id)],
            )?;
            let created = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            set_study_attribute(c, id, "nndl:spec", &to_json(spec))?;
            set_study_attribute(c, id, "nndl:created", &to_json(&created))?;
            Ok(id)
        })
    }

    fn studies(&mut self) -> Result<Vec<StudyInfo>, StoreError> {
        self.transaction(false, |c| {
            let rows = c.query(
                "SELECT s.study_id, a.value_json, b.value_json, r.value_json,
                        (SELECT count(*) FROM trials t WHERE t.study_id = s.study_id)
                 FROM studies s
                 JOIN study_system_attributes a ON a.study_id = s.study_id AND a.key = 'nndl:spec'
                 LEFT JOIN study_system_attributes b
                        ON b.study_id = s.study_id AND b.key = 'nndl:created'
                 LEFT JOIN study_system_attributes r
                        ON r.study_id = s.study_id AND r.key = 'nndl:result'
                 ORDER BY s.study_name",
                &[],
            )?;
            rows.into_iter()
                .map(|row| {
                    let id = row[0].int().unwrap_or(0);
                    let bad = |what: &str| corrupt(c, format!("{what} of study {id}"));
                    let json =
                        |cell: &Cell| cell.text().map(serde_json::from_str::<serde_json::Value>);
                    let spec = row[1]
                        .text()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .ok_or_else(|| bad("the definition"))?;
                    let created = match json(&row[2]) {
                        Some(Ok(v)) => v.as_f64(),
                        _ => None,
                    }
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
                    .ok_or_else(|| bad("the creation time"))?;
                    let result = match row[3].text() {
                        Some(r) => Some(serde_json::from_str(r).map_err(|_| bad("the result"))?),
                        None => None,
                    };
                    Ok(StudyInfo {
                        id,
                        spec,
                        created,
                        trials: row[4]
                            .int()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad("the trial count"))?,
                        result,
                    })
                })
                .collect()
        })
    }

    fn trials(&mut self, study: StudyId) -> Result<Vec<Trial>, StoreError> {
        // One read transaction: the trials and their values from the same snapshot.
        self.transaction(false, |c| {
            require_study(c, study, false)?;
            read_trials(c, study, None)
        })
    }

    fn start_trial(
        &mut self,
        study: StudyId,
        worker: &str,
        max_trials: u32,
        sample: &mut dyn FnMut(u32, &[Trial]) -> Option<Params>,
    ) -> Result<Option<Trial>, StoreError> {
        self.transaction(true, |c| {
            require_study(c, study, true)?;
            let trials = read_trials(c, study, None)?;
            if trials.len() >= max_trials as usize {
                return Ok(None);
            }
            let number = trials.last().map_or(0, |t| t.number + 1);
            let Some(params) = sample(number, &trials) else {
                return Ok(None);
            };
            insert_trial(c, study, number, Some(worker), &params)?;
            Ok(Some(Trial {
                worker: Some(worker.to_string()),
                ..Trial::new(number, params, TrialState::Running, Vec::new())
            }))
        })
    }

    fn enqueue_trial(
        &mut self,
        study: StudyId,
        params: &Params,
        max_trials: u32,
    ) -> Result<Option<u32>, StoreError> {
        self.transaction(true, |c| {
            require_study(c, study, true)?;
            let row = c.query(
                "SELECT count(*), coalesce(max(number) + 1, 0) FROM trials WHERE study_id = $1",
                &[Arg::Int(study)],
            )?;
            let (count, next) = match row.first().map(|r| (r[0].int(), r[1].int())) {
                Some((Some(count), Some(next))) => (count, next),
                _ => return Err(corrupt(c, format!("the trials of study {study}"))),
            };
            if count >= i64::from(max_trials) {
                return Ok(None);
            }
            let number =
                u32::try_from(next).map_err(|_| corrupt(c, format!("trial number {next}")))?;
            insert_trial(c, study, number, None, params)?;
            Ok(Some(number))
        })
    }

    fn claim_stale(
        &mut self,
        study: StudyId,
        worker: &str,
        stale_after: Duration,
    ) -> Result<Option<Trial>, StoreError> {
        self.transaction(true, |c| {
            let d = c.dialect();
            // A heartbeat that is missing or later than now (unreadable, or written by a
            // clock that was wrong) is as good as stale: waiting for it would never end.
            let sql = format!(
                "SELECT t.trial_id, t.number, t.state FROM trials t
                 LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id
                 WHERE t.study_id = $1 AND (t.state = 'WAITING' OR (t.state = 'RUNNING'
                       AND (h.heartbeat IS NULL OR h.heartbeat < {ago} OR h.heartbeat > {now})))
                 ORDER BY CASE WHEN t.state = 'WAITING' THEN 0 ELSE 1 END, t.number
                 LIMIT 1 {lock}",
                ago = (d.ago)("$2"),
                now = d.now,
                lock = (d.lock)("t", true),
            );
            let rows = c.query(
                &sql,
                &[Arg::Int(study), Arg::Float(stale_after.as_secs_f64())],
            )?;
            let first = rows
                .first()
                .and_then(|r| Some((r[0].int()?, r[1].int()?, r[2].text() == Some("WAITING"))));
            // A running trial whose worker's process on this host is gone is taken over at
            // once, after any waiting trial.
            let dead = match first {
                Some((_, _, true)) => None,
                _ => {
                    let sql = format!(
                        "SELECT t.trial_id, t.number, n.pid FROM trials t
                         JOIN nndl_trial_workers n ON n.trial_id = t.trial_id
                         WHERE t.study_id = $1 AND t.state = 'RUNNING' AND n.host = $2
                               AND n.pid IS NOT NULL AND n.pid <> $3
                         ORDER BY t.number {lock}",
                        lock = (d.lock)("t", true),
                    );
                    let host = process::this_host();
                    let candidates = c.query(
                        &sql,
                        &[
                            Arg::Int(study),
                            Arg::Text(&host),
                            Arg::Int(process::this_pid()),
                        ],
                    )?;
                    candidates.iter().find_map(|r| {
                        let (id, number, pid) = (r[0].int()?, r[1].int()?, r[2].int()?);
                        process::is_gone(&host, pid).then_some((id, number))
                    })
                }
            };
            let Some((id, number)) = dead.or(first.map(|(id, number, _)| (id, number))) else {
                return Ok(None);
            };
            let number =
                u32::try_from(number).map_err(|_| corrupt(c, format!("trial number {number}")))?;
            c.execute(
                &format!(
                    "UPDATE trials SET state = 'RUNNING',
                            datetime_start = coalesce(datetime_start, {now})
                     WHERE trial_id = $1",
                    now = d.now
                ),
                &[Arg::Int(id)],
            )?;
            let host = process::this_host();
            c.execute(
                "INSERT INTO nndl_trial_workers (trial_id, worker, seconds, host, pid)
                 VALUES ($1, $2, 0, $3, $4)
                 ON CONFLICT (trial_id) DO UPDATE
                 SET worker = excluded.worker, host = excluded.host, pid = excluded.pid",
                &[
                    Arg::Int(id),
                    Arg::Text(worker),
                    Arg::Text(&host),
                    Arg::Int(process::this_pid()),
                ],
            )?;
            beat(c, id)?;
            Ok(read_trials(c, study, Some(number))?.pop())
        })
    }

    fn running(&mut self, study: StudyId) -> Result<Vec<RunningTrial>, StoreError> {
        self.transaction(false, |c| {
            let d = c.dialect();
            let sql = format!(
                "SELECT t.number, n.worker, n.host, n.pid, {now} - {beat} FROM trials t
                 LEFT JOIN nndl_trial_workers n ON n.trial_id = t.trial_id
                 LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id
                 WHERE t.study_id = $1 AND t.state = 'RUNNING' ORDER BY t.number",
                now = (d.old_epoch)(d.now),
                beat = (d.old_epoch)("h.heartbeat"),
            );
            let rows = c.query(&sql, &[Arg::Int(study)])?;
            rows.into_iter()
                .map(|r| {
                    let number = r[0]
                        .int()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| corrupt(c, format!("trial number {:?}", r[0])))?;
                    Ok(RunningTrial {
                        number,
                        worker: r[1].text().map(str::to_string),
                        host: r[2].text().map(str::to_string),
                        pid: r[3].int(),
                        silent: r[4].float(),
                    })
                })
                .collect()
        })
    }

    fn heartbeat(&mut self, study: StudyId, number: u32, worker: &str) -> Result<bool, StoreError> {
        self.transaction(true, |c| match owned(c, study, number, worker)? {
            Some(id) => beat(c, id).map(|()| true),
            None => Ok(false),
        })
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
        self.transaction(true, |c| {
            let Some(id) = owned(c, study, number, worker)? else {
                return Ok(false);
            };
            let recorded = first(c.query(
                "SELECT count(*) FROM trial_intermediate_values WHERE trial_id = $1",
                &[Arg::Int(id)],
            )?)
            .and_then(|v| v.int())
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
            if epoch > recorded {
                return Err(StoreError::EpochGap {
                    number,
                    recorded,
                    epoch,
                });
            }
            // `epoch` is at most the number of rows, which fits Optuna's INTEGER step.
            let step = Arg::Int(epoch as i64);
            c.execute(
                "DELETE FROM trial_intermediate_values WHERE trial_id = $1 AND step >= $2",
                &[Arg::Int(id), step],
            )?;
            c.execute(
                "INSERT INTO trial_intermediate_values
                        (trial_id, step, intermediate_value, intermediate_value_type)
                 VALUES ($1, $2, $3, 'FINITE')",
                &[Arg::Int(id), step, Arg::Float(value)],
            )?;
            c.execute(
                "UPDATE nndl_trial_workers SET seconds = seconds + $2 WHERE trial_id = $1",
                &[Arg::Int(id), Arg::Float(seconds)],
            )?;
            beat(c, id)?;
            c.execute(
                "INSERT INTO nndl_trial_checkpoints (trial_id, epoch, data) VALUES ($1, $2, $3)
                 ON CONFLICT (trial_id) DO UPDATE SET epoch = excluded.epoch,
                                                      data = excluded.data",
                &[Arg::Int(id), step, Arg::Blob(checkpoint)],
            )?;
            Ok(true)
        })
    }

    fn checkpoint(&mut self, study: StudyId, number: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.conn.query(
            "SELECT c.data FROM nndl_trial_checkpoints c JOIN trials t ON t.trial_id = c.trial_id
             WHERE t.study_id = $1 AND t.number = $2",
            &[Arg::Int(study), Arg::Int(number.into())],
        )?;
        Ok(match first(rows) {
            Some(Cell::Blob(data)) => Some(data),
            _ => None,
        })
    }

    fn end(
        &mut self,
        study: StudyId,
        number: u32,
        worker: &str,
        state: TrialState,
        message: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.transaction(true, |c| {
            let Some(id) = owned(c, study, number, worker)? else {
                return Ok(false);
            };
            let now = c.dialect().now;
            c.execute(
                &format!(
                    "UPDATE trials SET state = '{}', datetime_complete = {now}
                     WHERE trial_id = $1",
                    optuna::state_name(state)
                ),
                &[Arg::Int(id)],
            )?;
            if let Some(message) = message {
                c.execute(
                    "INSERT INTO trial_system_attributes (trial_id, key, value_json)
                     VALUES ($1, 'fail_reason', $2)
                     ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json",
                    &[Arg::Int(id), Arg::Text(&to_json(&message))],
                )?;
            }
            let trials = read_trials(c, study, None)?;
            if let Some(this) = trials.iter().find(|t| t.number == number) {
                set_trial_value(c, id, state, &this.values)?;
            }
            let keep = best_complete(&trials).map_or(-1, i64::from);
            c.execute(
                "DELETE FROM nndl_trial_checkpoints WHERE trial_id IN
                     (SELECT trial_id FROM trials WHERE study_id = $1 AND number <> $2
                      AND state IN ('COMPLETE', 'PRUNED', 'FAIL'))",
                &[Arg::Int(study), Arg::Int(keep)],
            )?;
            Ok(true)
        })
    }

    fn delete_study(&mut self, study: StudyId) -> Result<u32, StoreError> {
        self.transaction(true, |c| {
            require_study(c, study, true)?;
            let trials = first(c.query(
                "SELECT count(*) FROM trials WHERE study_id = $1",
                &[Arg::Int(study)],
            )?)
            .and_then(|v| v.int())
            .unwrap_or(0);
            for table in [
                "nndl_trial_checkpoints",
                "nndl_trial_workers",
                "trial_heartbeats",
                "trial_intermediate_values",
                "trial_values",
                "trial_params",
                "trial_system_attributes",
                "trial_user_attributes",
            ] {
                c.execute(
                    &format!(
                        "DELETE FROM {table} WHERE trial_id IN
                             (SELECT trial_id FROM trials WHERE study_id = $1)"
                    ),
                    &[Arg::Int(study)],
                )?;
            }
            for table in [
                "trials",
                "study_system_attributes",
                "study_user_attributes",
                "study_directions",
                "studies",
            ] {
                c.execute(
                    &format!("DELETE FROM {table} WHERE study_id = $1"),
                    &[Arg::Int(study)],
                )?;
            }
            Ok(u32::try_from(trials).unwrap_or(u32::MAX))
        })
    }

    fn set_study_result(&mut self, study: StudyId, result: &StudyResult) -> Result<(), StoreError> {
        self.transaction(true, |c| {
            require_study(c, study, true)?;
            set_study_attribute(c, study, "nndl:result", &to_json(result))
        })
    }

    fn study_result(&mut self, study: StudyId) -> Result<Option<StudyResult>, StoreError> {
        self.transaction(false, |c| {
            require_study(c, study, false)?;
            match study_attribute(c, study, "nndl:result")? {
                Some(json) => serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|_| corrupt(c, format!("the result of study {study}"))),
                None => Ok(None),
            }
        })
    }
}
