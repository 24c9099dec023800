//! The target database: connect, recreate the practice schema, bulk-load batches.
//!
//! SQLite and MySQL/MariaDB get multi-row `INSERT`s built with `sqlx::QueryBuilder`,
//! chunked under each server's bind-parameter limit; PostgreSQL gets `COPY … FROM
//! STDIN` (text format). Each batch is one transaction. Values are bound per dialect:
//! SQLite stores dates and times as `YYYY-MM-DD` / `YYYY-MM-DD HH:MM:SS` text and
//! money as a number (a float, which its NUMERIC affinity keeps as REAL or INTEGER);
//! MySQL and PostgreSQL get chrono dates and times and `rust_decimal` money of scale 2.
//! Indexes are created after the load: a sorted build is faster than maintaining them
//! row by row while batches of different tables interleave (SQLite at 100,000
//! patients: 86 s this way, 356 s with the indexes in place during the load).

use std::str::FromStr;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Executor, QueryBuilder};

use super::encode::{date_text, datetime_text, encode_copy_row};
use super::schema;
use super::tables::TableDef;
use crate::dialect::Dialect;
use crate::value::{Row, Value};

/// Most bound values one statement may carry.
const SQLITE_MAX_PARAMS: usize = 32_766;
const MYSQL_MAX_PARAMS: usize = 65_535;
/// More rows per statement stop paying off (measured on SQLite: 250 and 2,000 rows per
/// statement load equally fast) and make MySQL packets large.
const MAX_ROWS_PER_STATEMENT: usize = 2_000;
/// Connections loading in parallel into MySQL/PostgreSQL.
const SERVER_LANES: usize = 2;
/// COPY data is sent in pieces of about this many bytes.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// A connected target database.
pub(crate) enum Target {
    Sqlite(SqlitePool),
    Mysql(MySqlPool),
    Postgres(PgPool),
}

impl Target {
    /// Connects to `url` (`sqlite:` files are created if missing).
    pub(crate) async fn connect(url: &str) -> Result<Target> {
        let dialect = Dialect::from_url(url).with_context(|| {
            format!("unsupported target URL {url:?}: expected sqlite:, mysql: or postgres:")
        })?;
        Ok(match dialect {
            Dialect::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .context("parsing the SQLite URL")?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Off)
                    .pragma("cache_size", "-65536")
                    .pragma("temp_store", "memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
                    .context("opening the SQLite target")?;
                Target::Sqlite(pool)
            }
            Dialect::Mysql => {
                let opts = MySqlConnectOptions::from_str(url).context("parsing the MySQL URL")?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(SERVER_LANES as u32)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await
                    .context("connecting to the MySQL target")?;
                Target::Mysql(pool)
            }
            Dialect::Postgres => {
                let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
                let pool = PgPoolOptions::new()
                    .max_connections(SERVER_LANES as u32)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET synchronous_commit = off").await?;
                            conn.execute("SET maintenance_work_mem = '256MB'").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await
                    .context("connecting to the PostgreSQL target")?;
                Target::Postgres(pool)
            }
        })
    }

    /// How many batches may load at once: SQLite has one writer; the servers take two
    /// connections, which keeps both cores busy while the generator runs.
    pub(crate) fn lanes(&self) -> usize {
        match self {
            Target::Sqlite(_) => 1,
            Target::Mysql(_) | Target::Postgres(_) => SERVER_LANES,
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Target::Sqlite(_) => Dialect::Sqlite,
            Target::Mysql(_) => Dialect::Mysql,
            Target::Postgres(_) => Dialect::Postgres,
        }
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        match self {
            Target::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            Target::Mysql(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            Target::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        }
        .with_context(|| format!("executing {}", sql.lines().next().unwrap_or(sql)))
    }

    /// Drops the practice tables if they exist and creates them empty, without indexes.
    pub(crate) async fn recreate_tables(&self) -> Result<()> {
        for table in schema::TABLES.iter().rev() {
            self.execute(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        for stmt in schema::statements(self.dialect()) {
            if stmt.starts_with("CREATE TABLE") {
                self.execute(&stmt).await?;
            }
        }
        Ok(())
    }

    /// Creates the schema's indexes (after the load).
    ///
    /// One job per table, `lanes` tables at a time; on MySQL a table's indexes are
    /// added by one `ALTER TABLE`, which builds them all from a single scan.
    pub(crate) async fn create_indexes(&self) -> Result<()> {
        let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
        for stmt in schema::statements(self.dialect()) {
            let Some((table, name, columns)) = parse_create_index(&stmt) else {
                continue;
            };
            if jobs.last().is_none_or(|(t, _)| *t != table) {
                jobs.push((table.to_string(), Vec::new()));
            }
            let job = &mut jobs.last_mut().expect("pushed above").1;
            match self {
                Target::Mysql(_) if job.is_empty() => {
                    job.push(format!("ALTER TABLE {table} ADD INDEX {name} ({columns})"))
                }
                Target::Mysql(_) => job[0].push_str(&format!(", ADD INDEX {name} ({columns})")),
                _ => job.push(stmt.clone()),
            }
        }
        futures::stream::iter(jobs)
            .map(|(_, statements)| async move {
                for sql in &statements {
                    self.execute(sql).await?;
                }
                Ok::<(), anyhow::Error>(())
            })
            .buffer_unordered(self.lanes())
            .try_collect::<()>()
            .await
    }

    /// Refreshes planner statistics and, for SQLite, folds the WAL into the file.
    pub(crate) async fn finish(&self) -> Result<()> {
        match self {
            Target::Sqlite(_) => {
                // Sampled statistics: as good for the planner, a fraction of the time.
                self.execute("PRAGMA analysis_limit = 1000").await?;
                self.execute("ANALYZE").await?;
                self.execute("PRAGMA wal_checkpoint(TRUNCATE)").await
            }
            Target::Mysql(_) => Ok(()),
            Target::Postgres(_) => self.execute("ANALYZE").await,
        }
    }

    pub(crate) async fn close(self) {
        match self {
            Target::Sqlite(p) => p.close().await,
            Target::Mysql(p) => p.close().await,
            Target::Postgres(p) => p.close().await,
        }
    }

    /// Loads `rows` into `def` in one transaction.
    pub(crate) async fn write(&self, def: &TableDef, rows: Vec<Row>) -> Result<()> {
        let result = match self {
            Target::Sqlite(pool) => {
                let per_statement = rows_per_statement(def, SQLITE_MAX_PARAMS);
                let mut tx = pool.begin().await?;
                let mut rows = rows.into_iter().peekable();
                while rows.peek().is_some() {
                    let mut qb = insert_head::<Sqlite>(def);
                    qb.push_values(rows.by_ref().take(per_statement), |mut b, row| {
                        row.into_iter().for_each(|v| bind_sqlite(&mut b, v));
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Target::Mysql(pool) => {
                let per_statement = rows_per_statement(def, MYSQL_MAX_PARAMS);
                let mut tx = pool.begin().await?;
                let mut rows = rows.into_iter().peekable();
                while rows.peek().is_some() {
                    let mut qb = insert_head::<MySql>(def);
                    qb.push_values(rows.by_ref().take(per_statement), |mut b, row| {
                        row.into_iter().for_each(|v| bind_mysql(&mut b, v));
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Target::Postgres(pool) => copy_postgres(pool, def, rows).await,
        };
        result.with_context(|| format!("loading rows into {}", def.name))
    }
}

/// (table, index name, column list) of a `CREATE INDEX name ON table (columns)`.
fn parse_create_index(stmt: &str) -> Option<(&str, &str, &str)> {
    let rest = stmt.strip_prefix("CREATE INDEX ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    let _on = words.next().filter(|w| w.eq_ignore_ascii_case("ON"))?;
    let table = words.next()?.trim_end_matches('(');
    let columns = &rest[rest.find('(')? + 1..rest.rfind(')')?];
    Some((table, name, columns.trim()))
}

fn rows_per_statement(def: &TableDef, max_params: usize) -> usize {
    (max_params / def.columns.len()).clamp(1, MAX_ROWS_PER_STATEMENT)
}

fn insert_head<DB: sqlx::Database>(def: &TableDef) -> QueryBuilder<'static, DB> {
    QueryBuilder::new(format!(
        "INSERT INTO {} ({}) ",
        def.name,
        def.columns.join(", ")
    ))
}

fn bind_sqlite(b: &mut Separated<'_, 'static, Sqlite, &'static str>, v: Value) {
    match v {
        Value::Null => b.push_bind(None::<i64>),
        Value::Bool(x) => b.push_bind(x),
        Value::Int(x) => b.push_bind(x),
        // NUMERIC affinity stores money as a number either way; a float is cheaper
        // to bind than text (the division of exact integers is correctly rounded).
        Value::Decimal(x) => b.push_bind(x.mantissa() as f64 / 10f64.powi(x.scale() as i32)),
        Value::Text(x) => b.push_bind(x),
        Value::Date(x) => b.push_bind(date_text(x)),
        Value::DateTime(x) => b.push_bind(datetime_text(x)),
    };
}

fn bind_mysql(b: &mut Separated<'_, 'static, MySql, &'static str>, v: Value) {
    match v {
        Value::Null => b.push_bind(None::<i64>),
        Value::Bool(x) => b.push_bind(x),
        Value::Int(x) => b.push_bind(x),
        Value::Decimal(x) => b.push_bind(x),
        Value::Text(x) => b.push_bind(x),
        Value::Date(x) => b.push_bind(x),
        Value::DateTime(x) => b.push_bind(x),
    };
}

async fn copy_postgres(pool: &PgPool, def: &TableDef, rows: Vec<Row>) -> sqlx::Result<()> {
    let mut conn = pool.acquire().await?;
    let sql = format!("COPY {} ({}) FROM STDIN", def.name, def.columns.join(", "));
    let mut copy = conn.copy_in_raw(&sql).await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK_BYTES + 4096);
    for row in rows {
        encode_copy_row(&mut buf, &row);
        if buf.len() >= COPY_CHUNK_BYTES {
            copy.send(std::mem::take(&mut buf)).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    copy.finish().await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_statements_parse() {
        assert_eq!(
            parse_create_index(
                "CREATE INDEX ix_patients_last_name ON patients (last_name, first_name)"
            ),
            Some(("patients", "ix_patients_last_name", "last_name, first_name"))
        );
        assert_eq!(parse_create_index("CREATE TABLE x (id INTEGER)"), None);
        let indexes = schema::statements(Dialect::Mysql)
            .iter()
            .filter(|s| s.starts_with("CREATE INDEX"))
            .count();
        let parsed = schema::statements(Dialect::Mysql)
            .iter()
            .filter_map(|s| parse_create_index(s).map(drop))
            .count();
        assert_eq!(indexes, parsed);
    }

    #[test]
    fn statements_stay_under_parameter_limits() {
        for def in super::super::tables::DEFS.iter() {
            assert!(
                rows_per_statement(def, SQLITE_MAX_PARAMS) * def.columns.len() <= SQLITE_MAX_PARAMS
            );
            assert!(
                rows_per_statement(def, MYSQL_MAX_PARAMS) * def.columns.len() <= MYSQL_MAX_PARAMS
            );
        }
    }
}
