//! The study store in one SQLite file (`sqlite:PATH`, by default `nndl-study.db`), through
//! `rusqlite` with SQLite compiled in, so nothing needs installing: the adapter that runs
//! [`super::sql`]'s statements on SQLite.
//!
//! Several workers — threads or processes of one machine, each with its own connection — can
//! share the file without corrupting it or failing with "database is locked", which is where
//! Optuna's SQLite storage breaks down:
//! - the file is in write-ahead-log mode, so readers never block the writer nor it them;
//! - every change is one `BEGIN IMMEDIATE` transaction, which takes the write lock before it
//!   reads: two workers never both read the trials and then both try to upgrade to a write
//!   (the deadlock that surfaces as an immediate `SQLITE_BUSY` whatever the timeout). This is
//!   SQLite's row locking: one writer at a time, so `FOR UPDATE` clauses are left out;
//! - a worker waiting for the lock waits up to [`BUSY_TIMEOUT`] rather than failing, and a new
//!   connection whose first statements meet the lock without SQLite waiting tries them again.
//!
//! Times are SQLite's clock in UTC, written as SQLAlchemy writes Optuna's datetimes
//! (`2025-01-31 12:00:00.000000`), so Optuna reads them and they compare as text.
//!
//! Left out: sharing the file over a network file system, where SQLite's locks are not to be
//! trusted (use PostgreSQL for workers on several machines).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::sql::{self, Arg, Cell, Dialect};
use super::{DbError, StoreError};

/// How long a worker waits for another's write before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// SQLite's types and clauses.
static DIALECT: Dialect = Dialect {
    serial: "INTEGER",
    datetime: "DATETIME",
    blob: "BLOB",
    enums: |name| {
        // SQLAlchemy sizes an enum's VARCHAR to its longest name.
        let len = match name {
            "trialstate" | "studydirection" => 8,
            _ => 7,
        };
        format!("VARCHAR({len})")
    },
    enum_types: "",
    now: "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')",
    ago: |seconds| {
        format!("(strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || {seconds} || ' seconds') || '000')")
    },
    old_time: |column| format!("(strftime('%Y-%m-%d %H:%M:%f', {column}) || '000')"),
    old_epoch: |column| format!("((julianday({column}) - 2440587.5) * 86400.0)"),
    lock: |_, _| String::new(),
};

/// A connection to a SQLite study file.
pub struct SqliteConnection {
    conn: Connection,
    path: PathBuf,
    location: String,
}

impl SqliteConnection {
    /// Opens the file at `path`: created if missing when `create`, else opened read-only.
    pub fn open(path: impl AsRef<Path>, create: bool) -> Result<SqliteConnection, StoreError> {
        let path = path.as_ref().to_path_buf();
        let location = path.display().to_string();
        let flags = if create {
            OpenFlags::default()
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let err = |e| database(&location, e);
        let conn = Connection::open_with_flags(&path, flags).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // The first statement that reads the file: a file that is not a SQLite database fails
        // here ("file is not a database").
        if create {
            retry_while_busy(|| {
                conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
                    row.get::<_, String>(0)
                })
            })
            .map_err(err)?;
        } else {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(err)?;
        }
        Ok(SqliteConnection {
            conn,
            path,
            location,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |e| database(&self.location, e)
    }

    /// `sql` with PostgreSQL's `$N` placeholders written as SQLite's `?N`.
    fn translate(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                out.push('?');
            } else {
                out.push(ch);
            }
        }
        out
    }

    fn statement(&self, sql: &str) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        self.conn
            .prepare_cached(&Self::translate(sql))
            .map_err(self.err())
    }
}

fn database(location: &str, source: rusqlite::Error) -> StoreError {
    StoreError::Database {
        location: location.to_string(),
        source: DbError::new(source),
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Float(v) => ValueRef::Real(v),
            Arg::Text(v) => ValueRef::Text(v.as_bytes()),
            Arg::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(v),
        ValueRef::Real(v) => Cell::Float(v),
        ValueRef::Text(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Cell::Blob(v.to_vec()),
    }
}

impl sql::Connection for SqliteConnection {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn begin(&mut self, write: bool) -> Result<(), StoreError> {
        let sql = if write { "BEGIN IMMEDIATE" } else { "BEGIN" };
        retry_while_busy(|| self.conn.execute_batch(sql)).map_err(self.err())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(self.err())
    }

    fn query(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Vec<Cell>>, StoreError> {
        let mut statement = self.statement(sql)?;
        let columns = statement.column_count();
        let rows = statement
            .query_map(rusqlite::params_from_iter(args), |row| {
                (0..columns)
                    .map(|i| row.get_ref(i).map(cell))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| database(&self.location, e))?;
        Ok(rows)
    }

    fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        let mut statement = self.statement(sql)?;
        let changed = statement
            .execute(rusqlite::params_from_iter(args))
            .map_err(|e| database(&self.location, e))?;
        Ok(changed as u64)
    }

    fn has_column(&mut self, table: &str, column: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT 1 FROM pragma_table_info($1) WHERE name = $2",
            &[Arg::Text(table), Arg::Text(column)],
        )?;
        Ok(!rows.is_empty())
    }

    fn has_table(&mut self, name: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
            &[Arg::Text(name)],
        )?;
        Ok(!rows.is_empty())
    }

    fn lock_schema(&mut self) -> Result<(), StoreError> {
        // The write transaction already keeps every other worker out.
        Ok(())
    }
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
