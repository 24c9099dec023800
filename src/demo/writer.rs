//! The target database: connect, recreate the practice schema, bulk-load batches.
//!
//! SQLite and MySQL/MariaDB get multi-row `INSERT`s built with `sqlx::QueryBuilder`,
//! chunked under each server's bind-parameter limit; PostgreSQL gets `COPY … FROM
//! STDIN` (text format). Each batch is one transaction. Values are bound per dialect:
//! SQLite stores dates and times as `YYYY-MM-DD` / `YYYY-MM-DD HH:MM:SS` text and
//! money as decimal text (NUMERIC affinity turns it into a number); MySQL and
//! PostgreSQL get chrono dates and times and `rust_decimal` money of scale 2.
//! MySQL and PostgreSQL get their indexes after the load (a sorted build is faster
//! than maintaining them row by row); SQLite is the other way round.

use std::str::FromStr;

use anyhow::{Context, Result};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Executor, QueryBuilder};

use super::schema;
use super::tables::TableDef;
use crate::dialect::Dialect;
use crate::value::{Row, Value};

/// Most bound values one statement may carry.
const SQLITE_MAX_PARAMS: usize = 32_766;
const MYSQL_MAX_PARAMS: usize = 65_535;
/// More rows per statement stop paying off and make packets large.
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
                    .pragma("cache_size", "-262144")
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

    /// Drops the practice tables if they exist and creates them empty (with their
    /// indexes only where that loads faster, see `indexes_first`).
    pub(crate) async fn recreate_tables(&self) -> Result<()> {
        for table in schema::TABLES.iter().rev() {
            self.execute(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        let with_indexes = self.indexes_first();
        for stmt in schema::statements(self.dialect()) {
            if with_indexes || stmt.starts_with("CREATE TABLE") {
                self.execute(&stmt).await?;
            }
        }
        Ok(())
    }

    /// SQLite maintains indexes during the load faster than it builds them afterwards
    /// (one table scan and sort per index); the servers build them faster afterwards.
    fn indexes_first(&self) -> bool {
        matches!(self, Target::Sqlite(_))
    }

    /// Creates the schema's indexes after the load (unless they exist already).
    pub(crate) async fn create_indexes(&self) -> Result<()> {
        if self.indexes_first() {
            return Ok(());
        }
        for stmt in schema::statements(self.dialect()) {
            if !stmt.starts_with("CREATE TABLE") {
                self.execute(&stmt).await?;
            }
        }
        Ok(())
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
        Value::Decimal(x) => b.push_bind(x.to_string()),
        Value::Text(x) => b.push_bind(x),
        Value::Date(x) => b.push_bind(x.format("%Y-%m-%d").to_string()),
        Value::DateTime(x) => b.push_bind(x.format("%Y-%m-%d %H:%M:%S").to_string()),
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

/// One row in PostgreSQL's COPY text format: tab-separated, `\N` for NULL, backslash
/// escapes for the characters that would break the format.
fn encode_copy_row(buf: &mut Vec<u8>, row: &[Value]) {
    use std::io::Write;
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        // Writing into a Vec cannot fail.
        let _ = match v {
            Value::Null => buf.write_all(b"\\N"),
            Value::Bool(x) => buf.write_all(if *x { b"t" } else { b"f" }),
            Value::Int(x) => write!(buf, "{x}"),
            Value::Decimal(x) => write!(buf, "{x}"),
            Value::Date(x) => write!(buf, "{}", x.format("%Y-%m-%d")),
            Value::DateTime(x) => write!(buf, "{}", x.format("%Y-%m-%d %H:%M:%S")),
            Value::Text(s) => {
                for byte in s.bytes() {
                    match byte {
                        b'\\' => buf.extend_from_slice(b"\\\\"),
                        b'\t' => buf.extend_from_slice(b"\\t"),
                        b'\n' => buf.extend_from_slice(b"\\n"),
                        b'\r' => buf.extend_from_slice(b"\\r"),
                        other => buf.push(other),
                    }
                }
                Ok(())
            }
        };
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn copy_text_escapes_and_formats() {
        let d = chrono::NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        let row = vec![
            Value::Int(7),
            Value::Null,
            Value::Text("O'Brien\tline\\two\n".into()),
            Value::Decimal(Decimal::new(1250, 2)),
            Value::Bool(true),
            Value::Date(d),
            Value::DateTime(d.and_hms_opt(9, 5, 0).unwrap()),
        ];
        let mut buf = Vec::new();
        encode_copy_row(&mut buf, &row);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "7\t\\N\tO'Brien\\tline\\\\two\\n\t12.50\tt\t2024-03-05\t2024-03-05 09:05:00\n"
        );
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
