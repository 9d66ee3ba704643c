//! The study store in a PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`),
//! shared by workers on many machines, through the synchronous `postgres` crate (the training
//! loop it serves is synchronous): the adapter that runs [`super::sql`]'s statements on
//! PostgreSQL.
//!
//! Workers are kept apart by row locks, as Optuna's RDB storage does:
//! - a new trial is created while the study's row is locked (`SELECT … FOR UPDATE`), so the
//!   count of trials and the sampler's view of them cannot change under it;
//! - a stale or waiting trial is claimed with `FOR UPDATE SKIP LOCKED`: two workers looking for
//!   work at once take different trials, and neither waits for the other;
//! - a worker's epoch report locks its trial's row and checks it still owns the trial.
//!
//! Times are the database server's, in UTC, so the workers' clocks need not agree for a
//! heartbeat to be judged stale.
//!
//! Optuna's enum columns are PostgreSQL enum types (`trialstate`, …), as SQLAlchemy creates
//! them; a statement's text and integer arguments are converted to whatever type the server
//! infers for its placeholder ([`Arg`]'s `ToSql`), so [`super::sql`] binds one kind of value
//! for both databases.
//!
//! The tables are created on first use, under a transaction-scoped advisory lock so that
//! workers starting together do not race to create them. A URL without `connect_timeout` gets
//! [`CONNECT_TIMEOUT`]; passwords never appear in messages (see [`super::redact`]).
//!
//! Left out: TLS (connections are plain; use a trusted network or a tunnel), and connection
//! pooling (each worker holds one connection).

use std::error::Error;
use std::time::Duration;

use ::postgres::types::{to_sql_checked, FromSql, IsNull, Kind, ToSql, Type};
use ::postgres::{Client, Config, NoTls};
use bytes::BytesMut;

use super::sql::{self, Arg, Cell, Dialect};
use super::{redact, DbError, StoreError};

/// How long to wait for the server to answer when the URL does not say.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The advisory lock taken while creating the tables or a study ("nndl" in ASCII).
const SCHEMA_LOCK: i64 = 0x6e6e_646c;

/// PostgreSQL's types and clauses.
static DIALECT: Dialect = Dialect {
    serial: "SERIAL",
    datetime: "TIMESTAMP WITHOUT TIME ZONE",
    blob: "BYTEA",
    enums: |name| name.to_string(),
    enum_types: "
CREATE TYPE studydirection AS ENUM ('NOT_SET', 'MINIMIZE', 'MAXIMIZE');
CREATE TYPE trialintermediatevaluetype AS ENUM ('FINITE', 'INF_POS', 'INF_NEG', 'NAN');
CREATE TYPE trialstate AS ENUM ('RUNNING', 'COMPLETE', 'PRUNED', 'FAIL', 'WAITING');
CREATE TYPE trialvaluetype AS ENUM ('FINITE', 'INF_POS', 'INF_NEG');
",
    now: "(now() AT TIME ZONE 'UTC')",
    ago: |seconds| format!("((now() AT TIME ZONE 'UTC') - make_interval(secs => {seconds}))"),
    old_time: |column| format!("({column} AT TIME ZONE 'UTC')"),
    old_epoch: |column| format!("CAST(extract(epoch FROM {column}) AS DOUBLE PRECISION)"),
    lock: |table, skip_locked| {
        if skip_locked {
            format!("FOR UPDATE OF {table} SKIP LOCKED")
        } else {
            format!("FOR UPDATE OF {table}")
        }
    },
};

/// A connection to a PostgreSQL study database.
pub struct PostgresConnection {
    client: Client,
    /// The URL without its password.
    url: String,
}

impl PostgresConnection {
    /// Connects to the database at `url`; read-only unless `write`.
    pub fn open(url: &str, write: bool) -> Result<PostgresConnection, StoreError> {
        let shown = redact(url);
        let connect = |source| StoreError::Connect {
            url: shown.clone(),
            source: DbError::new(source),
        };
        let mut config: Config = url.parse().map_err(connect)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("nndl");
        }
        let mut client = config.connect(NoTls).map_err(connect)?;
        if !write {
            client
                .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                .map_err(connect)?;
        }
        Ok(PostgresConnection { client, url: shown })
    }

    fn err(&self) -> impl Fn(::postgres::Error) -> StoreError + '_ {
        |source| StoreError::Database {
            location: self.url.clone(),
            source: DbError::new(source),
        }
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match (*self, ty) {
            (Arg::Null, _) => Ok(IsNull::Yes),
            (Arg::Int(v), &Type::INT4) => i32::try_from(v)?.to_sql(ty, out),
            (Arg::Int(v), &Type::INT2) => i16::try_from(v)?.to_sql(ty, out),
            (Arg::Int(v), &Type::FLOAT8) => (v as f64).to_sql(ty, out),
            (Arg::Int(v), _) => v.to_sql(ty, out),
            (Arg::Float(v), _) => v.to_sql(ty, out),
            // An enum's binary form is its label.
            (Arg::Text(v), ty) if matches!(ty.kind(), Kind::Enum(_)) => {
                out.extend_from_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            (Arg::Text(v), _) => v.to_sql(ty, out),
            (Arg::Blob(v), _) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
            || <i64 as ToSql>::accepts(ty)
            || <i32 as ToSql>::accepts(ty)
            || <i16 as ToSql>::accepts(ty)
            || <f64 as ToSql>::accepts(ty)
            || <&str as ToSql>::accepts(ty)
            || <&[u8] as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, Box<dyn Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT2 => Cell::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Cell::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::BOOL => Cell::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Cell::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Cell::Float(f64::from_sql(ty, raw)?),
            Type::BYTEA => Cell::Blob(raw.to_vec()),
            // Text, and an enum's label.
            _ => Cell::Text(String::from_utf8(raw.to_vec())?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Cell, Box<dyn Error + Sync + Send>> {
        Ok(Cell::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
            || matches!(
                *ty,
                Type::INT2
                    | Type::INT4
                    | Type::INT8
                    | Type::BOOL
                    | Type::FLOAT4
                    | Type::FLOAT8
                    | Type::BYTEA
                    | Type::TEXT
                    | Type::VARCHAR
                    | Type::BPCHAR
                    | Type::NAME
            )
    }
}

fn params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl sql::Connection for PostgresConnection {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn location(&self) -> &str {
        &self.url
    }

    fn begin(&mut self, _write: bool) -> Result<(), StoreError> {
        self.client.batch_execute("BEGIN").map_err(self.err())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(self.err())
    }

    fn query(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Vec<Cell>>, StoreError> {
        let rows = self.client.query(sql, &params(args)).map_err(self.err())?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| row.try_get::<_, Cell>(i)).collect())
            .collect::<Result<_, _>>()
            .map_err(self.err())
    }

    fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        self.client.execute(sql, &params(args)).map_err(self.err())
    }

    fn has_column(&mut self, table: &str, column: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND CAST(table_name AS TEXT) = $1
                   AND CAST(column_name AS TEXT) = $2",
            &[Arg::Text(table), Arg::Text(column)],
        )?;
        Ok(!rows.is_empty())
    }

    fn has_table(&mut self, name: &str) -> Result<bool, StoreError> {
        let rows = self.query("SELECT to_regclass($1) IS NOT NULL", &[Arg::Text(name)])?;
        Ok(rows.first().and_then(|r| r.first()) == Some(&Cell::Int(1)))
    }

    fn lock_schema(&mut self) -> Result<(), StoreError> {
        self.execute("SELECT pg_advisory_xact_lock($1)", &[Arg::Int(SCHEMA_LOCK)])
            .map(|_| ())
    }
}
