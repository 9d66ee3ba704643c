//! `nndl tune migrate`: brings a study database of nndl's old layout (versions 1 and 2, tables
//! `nndl_schema`, `nndl_studies`, `nndl_trials`, `nndl_trial_values`, `nndl_checkpoints`) into
//! Optuna's schema ([`super::sql`]), in one transaction: it all happens or nothing does.
//!
//! The old tables are kept, renamed `nndl_vN_…` (`nndl_v2_studies`, …), so nothing written
//! before is lost and an old nndl's data can still be read by hand. Every study keeps its name,
//! definition and result; every trial its number, state, parameters, per-epoch values, worker,
//! training time, failure message, times and heartbeat, and a running trial its checkpoint, so
//! a study interrupted before the migration resumes after it.

use super::sql::{self, Arg, Cell, Connection, OLD_LAYOUT_TABLE};
use super::StoreError;
use crate::tune::space::Params;
use crate::tune::study::TrialState;

/// The old layout's tables, without their `nndl_` prefix.
const OLD_TABLES: [&str; 5] = ["schema", "studies", "trials", "trial_values", "checkpoints"];

/// What [`migrate`] converted.
#[derive(Clone, Debug, PartialEq)]
pub struct Migrated {
    /// The old layout's version.
    pub from: i64,
    pub studies: usize,
    pub trials: usize,
}

/// Converts the old-layout database behind `conn` (see the module's documentation).
pub fn migrate(conn: Box<dyn Connection>) -> Result<Migrated, StoreError> {
    let mut conn = conn;
    sql::in_transaction(&mut *conn, true, convert)
}

fn convert(c: &mut dyn Connection) -> Result<Migrated, StoreError> {
    c.lock_schema()?;
    if !c.has_table(OLD_LAYOUT_TABLE)? {
        return Err(StoreError::NothingToMigrate {
            location: c.location().to_string(),
        });
    }
    let from = sql::first(c.query(&format!("SELECT max(version) FROM {OLD_LAYOUT_TABLE}"), &[])?)
        .and_then(|v| match v {
            Cell::Int(v) => Some(v),
            _ => None,
        })
        .unwrap_or(0);
    if !(1..=2).contains(&from) {
        return Err(StoreError::OldLayout {
            location: c.location().to_string(),
            found: from,
        });
    }
    let old = |table: &str| format!("nndl_v{from}_{table}");
    for table in OLD_TABLES {
        c.batch(&format!(
            "ALTER TABLE nndl_{table} RENAME TO {}",
            old(table)
        ))?;
    }
    sql::check_layout(c, true)?;
    let nndl = sql::ddl(sql::NNDL_TABLES, c.dialect());
    c.batch(&nndl)?;
    let epoch = c.dialect().old_epoch;

    let studies = c.query(
        &format!(
            "SELECT id, name, spec, result, {} FROM {} ORDER BY id",
            epoch("created_at"),
            old("studies")
        ),
        &[],
    )?;
    let mut trials_done = 0;
    for row in &studies {
        let bad = |c: &dyn Connection, what: &str| {
            sql::corrupt(c, format!("{what} in {}", old("studies")))
        };
        let (Cell::Int(old_id), Cell::Text(name), Cell::Text(spec)) = (&row[0], &row[1], &row[2])
        else {
            return Err(bad(c, "a study"));
        };
        let id = sql::first(c.query(
            "INSERT INTO studies (study_name) VALUES ($1) RETURNING study_id",
            &[Arg::Text(name)],
        )?)
        .and_then(|v| match v {
            Cell::Int(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| bad(c, "the new study"))?;
        c.execute(
            "INSERT INTO study_directions (direction, study_id, objective)
             VALUES ('MAXIMIZE', $1, 0)",
            &[Arg::Int(id)],
        )?;
        sql::set_study_attribute(c, id, "nndl:spec", spec)?;
        if let Cell::Text(result) = &row[3] {
            sql::set_study_attribute(c, id, "nndl:result", result)?;
        }
        let created = match row[4] {
            Cell::Float(s) => s,
            Cell::Int(s) => s as f64,
            _ => 0.0,
        };
        sql::set_study_attribute(c, id, "nndl:created", &created.to_string())?;
        trials_done += convert_trials(c, *old_id, id, &old, from)?;
    }
    Ok(Migrated {
        from,
        studies: studies.len(),
        trials: trials_done,
    })
}

/// Converts the trials of old study `old_id` into new study `id`; how many.
fn convert_trials(
    c: &mut dyn Connection,
    old_id: i64,
    id: i64,
    old: &dyn Fn(&str) -> String,
    from: i64,
) -> Result<usize, StoreError> {
    let time = c.dialect().old_time;
    // Layout 1 had no failure message.
    let message = if from >= 2 { "message" } else { "NULL" };
    let trials = c.query(
        &format!(
            "SELECT number, params, state, worker, seconds, {message} FROM {}
             WHERE study_id = $1 ORDER BY number",
            old("trials")
        ),
        &[Arg::Int(old_id)],
    )?;
    for row in &trials {
        let bad = |c: &dyn Connection, what: &str| {
            sql::corrupt(c, format!("{what} of study {old_id} in {}", old("trials")))
        };
        let (Cell::Int(number), Cell::Text(params), Cell::Text(state)) =
            (&row[0], &row[1], &row[2])
        else {
            return Err(bad(c, "a trial"));
        };
        let number = u32::try_from(*number).map_err(|_| bad(c, "a trial number"))?;
        let params: Params =
            serde_json::from_str(params).map_err(|_| bad(c, "the parameters of a trial"))?;
        let state: TrialState = serde_json::from_value(serde_json::Value::String(state.clone()))
            .map_err(|_| bad(c, "the state of a trial"))?;
        let worker = match &row[3] {
            Cell::Text(w) => Some(w.as_str()),
            _ => None,
        };
        // Stored as running (with a heartbeat) when it had a worker, else waiting, then given
        // its old state, times and heartbeat.
        let trial = sql::insert_trial(c, id, number, worker, &params)?;
        let from_old = |column: &str| {
            format!(
                "(SELECT {} FROM {} WHERE study_id = $2 AND number = $3)",
                time(column),
                old("trials")
            )
        };
        c.execute(
            &format!(
                "UPDATE trials SET state = '{}', datetime_start = {}, datetime_complete = {}
                 WHERE trial_id = $1",
                super::optuna::state_name(state),
                from_old("created_at"),
                from_old("finished_at"),
            ),
            &[Arg::Int(trial), Arg::Int(old_id), Arg::Int(number.into())],
        )?;
        let seconds = match row[4] {
            Cell::Float(s) => s,
            Cell::Int(s) => s as f64,
            _ => 0.0,
        };
        c.execute(
            "UPDATE nndl_trial_workers SET seconds = $2 WHERE trial_id = $1",
            &[Arg::Int(trial), Arg::Float(seconds)],
        )?;
        if worker.is_some() {
            c.execute(
                &format!(
                    "UPDATE trial_heartbeats SET heartbeat = coalesce({}, heartbeat)
                     WHERE trial_id = $1",
                    from_old("heartbeat_at")
                ),
                &[Arg::Int(trial), Arg::Int(old_id), Arg::Int(number.into())],
            )?;
        }
        if let Cell::Text(message) = &row[5] {
            c.execute(
                "INSERT INTO trial_system_attributes (trial_id, key, value_json)
                 VALUES ($1, 'fail_reason', $2)",
                &[Arg::Int(trial), Arg::Text(&super::to_json(message))],
            )?;
        }
        let values = c.query(
            &format!(
                "SELECT epoch, value FROM {} WHERE study_id = $1 AND number = $2 ORDER BY epoch",
                old("trial_values")
            ),
            &[Arg::Int(old_id), Arg::Int(number.into())],
        )?;
        let mut curve = Vec::with_capacity(values.len());
        for v in &values {
            let (Cell::Int(step), Cell::Float(value)) = (&v[0], &v[1]) else {
                return Err(bad(c, "a trial's value"));
            };
            c.execute(
                "INSERT INTO trial_intermediate_values
                        (trial_id, step, intermediate_value, intermediate_value_type)
                 VALUES ($1, $2, $3, 'FINITE')",
                &[Arg::Int(trial), Arg::Int(*step), Arg::Float(*value)],
            )?;
            curve.push(*value);
        }
        if state.is_finished() {
            sql::set_trial_value(c, trial, state, &curve)?;
        }
        c.execute(
            &format!(
                "INSERT INTO nndl_trial_checkpoints (trial_id, epoch, data)
                 SELECT CAST($1 AS INTEGER), epoch, data FROM {} WHERE study_id = $2 AND number = $3",
                old("checkpoints")
            ),
            &[Arg::Int(trial), Arg::Int(old_id), Arg::Int(number.into())],
        )?;
    }
    Ok(trials.len())
}
