//! Connections to practice databases (SQLite, MySQL/MariaDB, PostgreSQL): every
//! session read-only, statements time-limited, rows streamed in bounded batches.

mod call;
mod decode;
mod introspect;
mod result_sets;
mod routines;

pub use result_sets::CallItem;
pub use routines::{Routine, RoutineKind};

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::{mpsc, Mutex};

use crate::catalog::{BindValue, Plan};
use crate::dialect::Dialect;
use crate::value::Row;

/// Rows per batch handed to the encoder.
pub const BATCH_ROWS: usize = 1024;

/// Why a source operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The database could not be reached or refused the login.
    #[error("cannot connect to the practice database: {0}")]
    Connect(String),
    /// The database rejected or aborted the statement.
    #[error("the practice database failed the query: {0}")]
    Query(String),
    /// The connection was lost or the statement was killed, aborted by a deadlock or a
    /// server shutdown: trying again may succeed.
    #[error("the practice database interrupted the query: {0}")]
    Interrupted(String),
    /// The database stopped the statement at its time limit.
    #[error("the practice database stopped the query at the time limit: {0}")]
    Timeout(String),
    /// A row could not be read as its declared type (a catalog/schema mismatch).
    #[error("{0}")]
    Decode(String),
    /// The statement tried to change data in a read-only session.
    #[error(
        "the practice database refused to change data (CipherStream's sessions are read-only): {0}"
    )]
    ReadOnly(String),
}

impl SourceError {
    /// Whether running the same query again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Connect(_) | SourceError::Interrupted(_))
    }

    fn from_sqlx(error: sqlx::Error) -> SourceError {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Configuration(_) => SourceError::Connect(error.to_string()),
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
                SourceError::Interrupted(error.to_string())
            }
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c == "28000" || c == "28P01" || c == "1045" || c == "3D000" || c == "1049"
                }) =>
            {
                SourceError::Connect(db.message().to_string())
            }
            // PostgreSQL 57014 (statement_timeout), MariaDB 1969 (max_statement_time), MySQL 3024.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c == "57014" || c == "1969" || c == "3024" || c == "70100"
                }) =>
            {
                SourceError::Timeout(db.message().to_string())
            }
            // PostgreSQL 57P01-57P03 (terminated), 40001/40P01 (serialization, deadlock); MariaDB
            // 1317 (query killed), 1927 (connection killed), 1213 (deadlock), 1205 (lock wait).
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    [
                        "57P01", "57P02", "57P03", "40001", "40P01", "1317", "1927", "1213", "1205",
                    ]
                    .contains(&c.as_ref())
                }) =>
            {
                SourceError::Interrupted(db.message().to_string())
            }
            // 25006 read_only_sql_transaction (PostgreSQL, and MySQL/MariaDB error 1792); 2D000
            // invalid_transaction_termination: a routine's COMMIT inside our read-only transaction.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| c == "25006" || c == "2D000") =>
            {
                SourceError::ReadOnly(db.message().to_string())
            }
            sqlx::Error::Database(db) => SourceError::Query(db.message().to_string()),
            _ => SourceError::Query(error.to_string()),
        }
    }
}

enum Pool {
    Sqlite(SqlitePool),
    Mysql(MySqlPool),
    Postgres(PgPool),
}

/// One customer's practice database.
pub struct Source {
    pub dialect: Dialect,
    pool: Pool,
}

/// Settings shared by every source connection.
#[derive(Debug, Clone, Copy)]
pub struct SourceSettings {
    pub pool_size: u32,
    /// Enforced by the database itself on every statement.
    pub statement_timeout: Duration,
}

impl Source {
    /// Creates a lazy pool: no connection is opened until the first query.
    pub fn open(url: &SecretString, settings: SourceSettings) -> anyhow::Result<Source> {
        let url = url.expose_secret();
        let dialect = Dialect::from_url(url)
            .context("source URL must start with sqlite:, mysql: or postgres:")?;
        let acquire = Duration::from_secs(10);
        let timeout_ms = settings.statement_timeout.as_millis();
        let pool = match dialect {
            Dialect::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .context("parsing the SQLite source URL")?
                    .read_only(true);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(settings.pool_size)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            Dialect::Mysql => {
                let url = url.replacen("mariadb:", "mysql:", 1);
                let options =
                    MySqlConnectOptions::from_str(&url).context("parsing the MySQL source URL")?;
                let secs = settings.statement_timeout.as_secs_f64();
                Pool::Mysql(
                    MySqlPoolOptions::new()
                        .max_connections(settings.pool_size)
                        .acquire_timeout(acquire)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                sqlx::query("SET SESSION TRANSACTION READ ONLY")
                                    .execute(&mut *conn)
                                    .await?;
                                // MariaDB and MySQL name the statement limit differently; set whichever exists.
                                if sqlx::query(&format!("SET SESSION max_statement_time = {secs}"))
                                    .execute(&mut *conn)
                                    .await
                                    .is_err()
                                {
                                    sqlx::query(&format!(
                                        "SET SESSION max_execution_time = {timeout_ms}"
                                    ))
                                    .execute(&mut *conn)
                                    .await?;
                                }
                                Ok(())
                            })
                        })
                        .connect_lazy_with(options),
                )
            }
            Dialect::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .context("parsing the PostgreSQL source URL")?
                    .application_name("cipherstream")
                    .options([
                        ("default_transaction_read_only", "on".to_string()),
                        ("statement_timeout", timeout_ms.to_string()),
                    ]);
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.pool_size)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(Source { dialect, pool })
    }

    /// The exact number of rows the plan yields (its LIMIT applied).
    pub async fn count(&self, plan: &Plan) -> Result<u64, SourceError> {
        let n: i64 = match &self.pool {
            Pool::Sqlite(pool) => {
                bind_all(
                    sqlx::query_scalar(&plan.count_sql),
                    &plan.binds,
                    bind_sqlite,
                )
                .fetch_one(pool)
                .await
            }
            Pool::Mysql(pool) => {
                bind_all(sqlx::query_scalar(&plan.count_sql), &plan.binds, bind_mysql)
                    .fetch_one(pool)
                    .await
            }
            Pool::Postgres(pool) => {
                bind_all(
                    sqlx::query_scalar(&plan.count_sql),
                    &plan.binds,
                    bind_postgres,
                )
                .fetch_one(pool)
                .await
            }
        }
        .map_err(SourceError::from_sqlx)?;
        Ok(n.max(0) as u64)
    }

    /// Runs the plan and sends its rows in batches of [`BATCH_ROWS`]. Stops quietly
    /// when the receiver goes away; a failure is sent as the last item and returned.
    pub async fn stream(
        &self,
        plan: &Plan,
        tx: &mpsc::Sender<anyhow::Result<Vec<Row>>>,
    ) -> Result<(), SourceError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => {
                let rows = bind_all(sqlx::query(&plan.sql), &plan.binds, bind_sqlite).fetch(pool);
                forward(rows, |r| decode::sqlite_row(r, &plan.columns), tx).await
            }
            Pool::Mysql(pool) => {
                let rows = bind_all(sqlx::query(&plan.sql), &plan.binds, bind_mysql).fetch(pool);
                forward(rows, |r| decode::mysql_row(r, &plan.columns), tx).await
            }
            Pool::Postgres(pool) => {
                let rows = bind_all(sqlx::query(&plan.sql), &plan.binds, bind_postgres).fetch(pool);
                forward(rows, |r| decode::postgres_row(r, &plan.columns), tx).await
            }
        };
        if let Err(error) = &result {
            let _ = tx.send(Err(anyhow::Error::new(error.clone()))).await;
        }
        result
    }
}

async fn forward<R>(
    mut rows: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    decode: impl Fn(&R) -> anyhow::Result<Row>,
    tx: &mpsc::Sender<anyhow::Result<Vec<Row>>>,
) -> Result<(), SourceError> {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = rows.try_next().await.map_err(SourceError::from_sqlx)? {
        batch.push(decode(&row).map_err(|e| SourceError::Decode(format!("{e:#}")))?);
        if batch.len() == BATCH_ROWS
            && tx
                .send(Ok(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_ROWS),
                )))
                .await
                .is_err()
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
    Ok(())
}

/// Something values can be bound to (a query or a scalar query).
trait Bindable<'q, DB: sqlx::Database>: Sized {
    fn bind_value<T: 'q + Send + sqlx::Encode<'q, DB> + sqlx::Type<DB>>(self, value: T) -> Self;
}

impl<'q, DB: sqlx::Database> Bindable<'q, DB>
    for sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
{
    fn bind_value<T: 'q + Send + sqlx::Encode<'q, DB> + sqlx::Type<DB>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, DB: sqlx::Database, O> Bindable<'q, DB>
    for sqlx::query::QueryScalar<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>
{
    fn bind_value<T: 'q + Send + sqlx::Encode<'q, DB> + sqlx::Type<DB>>(self, value: T) -> Self {
        self.bind(value)
    }
}

fn bind_all<'q, DB: sqlx::Database, Q: Bindable<'q, DB>>(
    query: Q,
    binds: &[BindValue],
    bind: fn(Q, &BindValue) -> Q,
) -> Q {
    binds.iter().fold(query, bind)
}

fn bind_sqlite<'q, Q: Bindable<'q, sqlx::Sqlite>>(query: Q, value: &BindValue) -> Q {
    // The practice schema keeps SQLite dates as text in these exact shapes.
    match value {
        BindValue::Int(i) => query.bind_value(*i),
        BindValue::Text(s) => query.bind_value(s.clone()),
        BindValue::Bool(b) => query.bind_value(i64::from(*b)),
        BindValue::Date(d) => query.bind_value(d.format("%Y-%m-%d").to_string()),
        BindValue::DateTime(t) => query.bind_value(t.format("%Y-%m-%d %H:%M:%S").to_string()),
    }
}

fn bind_mysql<'q, Q: Bindable<'q, sqlx::MySql>>(query: Q, value: &BindValue) -> Q {
    match value {
        BindValue::Int(i) => query.bind_value(*i),
        BindValue::Text(s) => query.bind_value(s.clone()),
        BindValue::Bool(b) => query.bind_value(*b),
        BindValue::Date(d) => query.bind_value(*d),
        BindValue::DateTime(t) => query.bind_value(*t),
    }
}

fn bind_postgres<'q, Q: Bindable<'q, sqlx::Postgres>>(query: Q, value: &BindValue) -> Q {
    match value {
        BindValue::Int(i) => query.bind_value(*i),
        BindValue::Text(s) => query.bind_value(s.clone()),
        BindValue::Bool(b) => query.bind_value(*b),
        BindValue::Date(d) => query.bind_value(*d),
        BindValue::DateTime(t) => query.bind_value(*t),
    }
}

/// Open sources, one per customer, created on first use.
#[derive(Default)]
pub struct Sources {
    open: Mutex<HashMap<String, Arc<Source>>>,
}

impl Sources {
    /// The customer's source; `url` is awaited only when the pool is not open yet.
    pub async fn get_or_open(
        &self,
        customer_id: &str,
        url: impl std::future::Future<Output = anyhow::Result<SecretString>>,
        settings: SourceSettings,
    ) -> anyhow::Result<Arc<Source>> {
        // Synchronous requests and jobs run under different statement time limits: one pool each.
        let key = format!("{customer_id}@{}", settings.statement_timeout.as_millis());
        let mut open = self.open.lock().await;
        if let Some(source) = open.get(&key) {
            return Ok(source.clone());
        }
        let source = Arc::new(Source::open(&url.await?, settings)?);
        open.insert(key, source.clone());
        Ok(source)
    }
}
