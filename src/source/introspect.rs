//! The source's own catalog: which tables and views its user can read, with their
//! columns (information_schema on MySQL/MariaDB and PostgreSQL, `sqlite_master` and
//! `pragma_table_info` on SQLite). Only the connection's database (MySQL), the current
//! schema (PostgreSQL) or the main database (SQLite) is looked at.

use sqlx::Row as _;

use super::{Pool, Source, SourceError};
use crate::catalog::{SourceColumn, SourceTable, TableKind};
use crate::value::ColumnType;

/// Largest decimal precision written as a decimal (Parquet's Decimal128(18, s)); wider
/// decimals are written as their exact text.
const MAX_DECIMAL_PRECISION: i64 = 18;

/// One row of a catalog query: a column of a table.
struct CatalogRow {
    schema: Option<String>,
    table: String,
    kind: String,
    column: String,
    db_type: String,
    mapped: (ColumnType, u32, bool),
    nullable: bool,
    primary: bool,
}

impl Source {
    /// Every table and view the source user can read, with its columns, by name.
    pub async fn tables(&self) -> Result<Vec<SourceTable>, SourceError> {
        self.catalog(None).await
    }

    /// One table or view by its exact name, if the source user can read it.
    pub async fn table(&self, name: &str) -> Result<Option<SourceTable>, SourceError> {
        Ok(self
            .catalog(Some(name))
            .await?
            .into_iter()
            .find(|t| t.name == name))
    }

    async fn catalog(&self, only: Option<&str>) -> Result<Vec<SourceTable>, SourceError> {
        let only = only.map(str::to_string);
        let rows = match &self.pool {
            Pool::Sqlite(pool) => {
                let rows = sqlx::query(
                    "SELECT m.name AS table_name, m.type AS table_type, p.name AS column_name, \
                     p.type AS data_type, p.\"notnull\" AS not_null, p.pk AS pk \
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                     WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                     AND (? IS NULL OR m.name = ?) ORDER BY m.name, p.cid",
                )
                .bind(only.clone())
                .bind(only)
                .fetch_all(pool)
                .await
                .map_err(SourceError::from_sqlx)?;
                rows.iter()
                    .map(|r| {
                        let db_type: String = r.try_get("data_type")?;
                        Ok(CatalogRow {
                            schema: None,
                            table: r.try_get("table_name")?,
                            kind: r.try_get("table_type")?,
                            column: r.try_get("column_name")?,
                            mapped: sqlite_type(&db_type),
                            db_type,
                            nullable: r.try_get::<i64, _>("not_null")? == 0,
                            primary: r.try_get::<i64, _>("pk")? > 0,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            }
            Pool::Mysql(pool) => {
                let rows = sqlx::query(
                    "SELECT CAST(c.TABLE_NAME AS CHAR) AS table_name, CAST(t.TABLE_TYPE AS CHAR) AS table_type, \
                     CAST(c.COLUMN_NAME AS CHAR) AS column_name, CAST(c.DATA_TYPE AS CHAR) AS data_type, \
                     CAST(c.COLUMN_TYPE AS CHAR) AS column_type, CAST(c.IS_NULLABLE AS CHAR) AS is_nullable, \
                     CAST(c.NUMERIC_PRECISION AS SIGNED) AS num_precision, CAST(c.NUMERIC_SCALE AS SIGNED) AS num_scale, \
                     CAST(c.COLUMN_KEY AS CHAR) AS column_key \
                     FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
                     ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
                     WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED') \
                     AND (? IS NULL OR c.TABLE_NAME = ?) ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
                )
                .bind(only.clone())
                .bind(only)
                .fetch_all(pool)
                .await
                .map_err(SourceError::from_sqlx)?;
                rows.iter()
                    .map(|r| {
                        let data_type: String = r.try_get("data_type")?;
                        let column_type: String = r.try_get("column_type")?;
                        Ok(CatalogRow {
                            schema: None,
                            table: r.try_get("table_name")?,
                            kind: r.try_get("table_type")?,
                            column: r.try_get("column_name")?,
                            mapped: mysql_type(
                                &data_type,
                                &column_type,
                                r.try_get("num_precision")?,
                                r.try_get("num_scale")?,
                            ),
                            db_type: column_type,
                            nullable: r.try_get::<String, _>("is_nullable")? == "YES",
                            primary: r.try_get::<String, _>("column_key")? == "PRI",
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            }
            Pool::Postgres(pool) => {
                let rows = sqlx::query(
                    "SELECT c.table_schema::text AS table_schema, c.table_name::text AS table_name, \
                     t.table_type::text AS table_type, c.column_name::text AS column_name, \
                     c.data_type::text AS data_type, c.is_nullable::text AS is_nullable, \
                     c.numeric_precision::int8 AS num_precision, c.numeric_scale::int8 AS num_scale, \
                     EXISTS (SELECT 1 FROM information_schema.table_constraints tc \
                       JOIN information_schema.key_column_usage k ON k.constraint_schema = tc.constraint_schema \
                       AND k.constraint_name = tc.constraint_name AND k.table_name = tc.table_name \
                       WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema \
                       AND tc.table_name = c.table_name AND k.column_name = c.column_name) AS is_primary \
                     FROM information_schema.columns c JOIN information_schema.tables t \
                     ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                     WHERE c.table_schema = current_schema() AND t.table_type IN ('BASE TABLE', 'VIEW') \
                     AND ($1::text IS NULL OR c.table_name = $1) \
                     AND has_table_privilege(format('%I.%I', c.table_schema, c.table_name), 'SELECT') \
                     ORDER BY c.table_name, c.ordinal_position",
                )
                .bind(only)
                .fetch_all(pool)
                .await
                .map_err(SourceError::from_sqlx)?;
                rows.iter()
                    .map(|r| {
                        let data_type: String = r.try_get("data_type")?;
                        Ok(CatalogRow {
                            schema: Some(r.try_get("table_schema")?),
                            table: r.try_get("table_name")?,
                            kind: r.try_get("table_type")?,
                            column: r.try_get("column_name")?,
                            mapped: postgres_type(
                                &data_type,
                                r.try_get("num_precision")?,
                                r.try_get("num_scale")?,
                            ),
                            db_type: data_type,
                            nullable: r.try_get::<String, _>("is_nullable")? == "YES",
                            primary: r.try_get("is_primary")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            }
        }
        .map_err(|e| SourceError::Decode(format!("reading the source catalog: {e}")))?;
        Ok(group(rows))
    }
}

/// Rows come ordered by table, then column position: one table per run of rows.
fn group(rows: Vec<CatalogRow>) -> Vec<SourceTable> {
    let mut tables: Vec<SourceTable> = Vec::new();
    for row in rows {
        if tables.last().is_none_or(|t| t.name != row.table) {
            tables.push(SourceTable {
                schema: row.schema.clone(),
                name: row.table.clone(),
                kind: if row.kind.eq_ignore_ascii_case("view") {
                    TableKind::View
                } else {
                    TableKind::Table
                },
                columns: Vec::new(),
                primary_key: Vec::new(),
            });
        }
        let Some(table) = tables.last_mut() else {
            continue;
        };
        if row.primary {
            table.primary_key.push(row.column.clone());
        }
        let (ty, scale, as_text) = row.mapped;
        table.columns.push(SourceColumn {
            name: row.column,
            db_type: row.db_type,
            ty,
            nullable: row.nullable,
            scale,
            as_text,
        });
    }
    tables
}

/// (type, decimal scale, read as text) of a column: exact decimals only up to the
/// precision every format can hold, anything without a typed form as text.
fn decimal_or_text(precision: Option<i64>, scale: Option<i64>) -> (ColumnType, u32, bool) {
    match (precision, scale) {
        (Some(p), Some(s)) if p <= MAX_DECIMAL_PRECISION && (0..=p).contains(&s) => {
            (ColumnType::Decimal, s as u32, false)
        }
        _ => (ColumnType::String, 0, true),
    }
}

fn mysql_type(
    data_type: &str,
    column_type: &str,
    precision: Option<i64>,
    scale: Option<i64>,
) -> (ColumnType, u32, bool) {
    let data_type = data_type.to_ascii_lowercase();
    let column_type = column_type.to_ascii_lowercase();
    match data_type.as_str() {
        "tinyint" if column_type.starts_with("tinyint(1)") => (ColumnType::Boolean, 0, false),
        "bigint" if column_type.contains("unsigned") => (ColumnType::String, 0, true),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            (ColumnType::Integer, 0, false)
        }
        "decimal" | "numeric" => decimal_or_text(precision, scale),
        "date" => (ColumnType::Date, 0, false),
        "datetime" => (ColumnType::Datetime, 0, false),
        "timestamp" => (ColumnType::Timestamp, 0, false),
        _ => (ColumnType::String, 0, true),
    }
}

fn postgres_type(
    data_type: &str,
    precision: Option<i64>,
    scale: Option<i64>,
) -> (ColumnType, u32, bool) {
    match data_type {
        "smallint" | "integer" | "bigint" => (ColumnType::Integer, 0, false),
        "numeric" => decimal_or_text(precision, scale),
        "boolean" => (ColumnType::Boolean, 0, false),
        "date" => (ColumnType::Date, 0, false),
        "timestamp without time zone" => (ColumnType::Datetime, 0, false),
        "timestamp with time zone" => (ColumnType::Timestamp, 0, false),
        _ => (ColumnType::String, 0, true),
    }
}

/// SQLite types values, not columns: the declared type decides, by SQLite's own affinity
/// rules, with the practice schema's DATE/DATETIME/BOOLEAN/DECIMAL(p,s) recognised.
fn sqlite_type(declared: &str) -> (ColumnType, u32, bool) {
    let upper = declared.trim().to_ascii_uppercase();
    let base = upper.split('(').next().unwrap_or_default().trim();
    match base {
        "BOOLEAN" | "BOOL" => return (ColumnType::Boolean, 0, false),
        "DATE" => return (ColumnType::Date, 0, false),
        "DATETIME" => return (ColumnType::Datetime, 0, false),
        "TIMESTAMP" => return (ColumnType::Timestamp, 0, false),
        "DECIMAL" | "NUMERIC" => {
            let numbers: Vec<i64> = upper
                .split(['(', ',', ')'])
                .skip(1)
                .filter_map(|n| n.trim().parse().ok())
                .collect();
            return match numbers.as_slice() {
                [p, s] => decimal_or_text(Some(*p), Some(*s)),
                [p] => decimal_or_text(Some(*p), Some(0)),
                _ => (ColumnType::String, 0, true),
            };
        }
        _ => {}
    }
    if upper.contains("INT") {
        (ColumnType::Integer, 0, false)
    } else {
        (ColumnType::String, 0, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_mysql_types() {
        assert_eq!(
            mysql_type("tinyint", "tinyint(1)", Some(3), Some(0)),
            (ColumnType::Boolean, 0, false)
        );
        assert_eq!(
            mysql_type("decimal", "decimal(12,2)", Some(12), Some(2)),
            (ColumnType::Decimal, 2, false)
        );
        assert_eq!(
            mysql_type("decimal", "decimal(30,2)", Some(30), Some(2)),
            (ColumnType::String, 0, true)
        );
        assert_eq!(
            mysql_type("bigint", "bigint(20) unsigned", Some(20), Some(0)),
            (ColumnType::String, 0, true)
        );
        assert_eq!(
            mysql_type("time", "time", None, None),
            (ColumnType::String, 0, true)
        );
        assert_eq!(
            mysql_type("datetime", "datetime", None, None).0,
            ColumnType::Datetime
        );
    }

    #[test]
    fn maps_postgres_types() {
        assert_eq!(
            postgres_type("numeric", Some(12), Some(2)),
            (ColumnType::Decimal, 2, false)
        );
        assert_eq!(
            postgres_type("numeric", None, None),
            (ColumnType::String, 0, true)
        );
        assert_eq!(
            postgres_type("timestamp with time zone", None, None).0,
            ColumnType::Timestamp
        );
        assert_eq!(
            postgres_type("uuid", None, None),
            (ColumnType::String, 0, true)
        );
    }

    #[test]
    fn maps_sqlite_declared_types() {
        assert_eq!(sqlite_type("INTEGER"), (ColumnType::Integer, 0, false));
        assert_eq!(
            sqlite_type("DECIMAL(12,2)"),
            (ColumnType::Decimal, 2, false)
        );
        assert_eq!(sqlite_type("VARCHAR(100)"), (ColumnType::String, 0, true));
        assert_eq!(sqlite_type("DATETIME").0, ColumnType::Datetime);
        assert_eq!(sqlite_type("BOOLEAN").0, ColumnType::Boolean);
        assert_eq!(sqlite_type(""), (ColumnType::String, 0, true));
        assert_eq!(sqlite_type("REAL"), (ColumnType::String, 0, true));
    }
}
