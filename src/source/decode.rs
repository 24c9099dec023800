//! Turning driver rows into typed [`Value`]s, guided by the catalog's column types.
//!
//! Each driver reports its own type names; we read the native value first and then
//! coerce it to the declared column type, so `SUM(int)` (NUMERIC in PostgreSQL,
//! DECIMAL in MariaDB, INTEGER in SQLite) comes out the same everywhere.

use anyhow::{anyhow, Context};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use sqlx::{Row as _, TypeInfo, ValueRef};

use crate::value::{ColumnSpec, ColumnType, Row, Value};

/// A value as the driver gave it, before coercion.
enum Native {
    Null,
    Int(i64),
    Float(f64),
    Dec(Decimal),
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

/// Decodes every column of `row`: `native` reads a non-NULL cell given the driver's
/// type name, then the value is coerced to the column's declared type.
fn decode_row<R>(
    row: &R,
    columns: &[ColumnSpec],
    native: impl Fn(&R, usize, &str) -> anyhow::Result<Native>,
) -> anyhow::Result<Row>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
{
    let mut out = Vec::with_capacity(columns.len());
    for (i, spec) in columns.iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Native::Null
        } else {
            let type_info = raw.type_info();
            native(row, i, type_info.name())?
        };
        out.push(coerce(value, spec)?);
    }
    Ok(out)
}

pub fn sqlite_row(row: &sqlx::sqlite::SqliteRow, columns: &[ColumnSpec]) -> anyhow::Result<Row> {
    // SQLite types values, not columns: the name is the value's storage class.
    decode_row(row, columns, |row, i, name| {
        Ok(match name {
            "INTEGER" => Native::Int(row.try_get_unchecked(i)?),
            "REAL" => Native::Float(row.try_get_unchecked(i)?),
            "BLOB" => Native::Text(
                String::from_utf8_lossy(&row.try_get_unchecked::<Vec<u8>, _>(i)?).into_owned(),
            ),
            _ => Native::Text(row.try_get_unchecked(i)?),
        })
    })
}

pub fn mysql_row(row: &sqlx::mysql::MySqlRow, columns: &[ColumnSpec]) -> anyhow::Result<Row> {
    decode_row(row, columns, |row, i, name| {
        Ok(match name {
            "BOOLEAN" => Native::Bool(row.try_get(i)?),
            n if n.ends_with("UNSIGNED") => {
                let v: u64 = row.try_get(i)?;
                Native::Int(i64::try_from(v).context("unsigned value out of range")?)
            }
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
                Native::Int(row.try_get(i)?)
            }
            "DECIMAL" => Native::Dec(row.try_get(i)?),
            "FLOAT" | "DOUBLE" => Native::Float(row.try_get(i)?),
            "DATE" => Native::Date(row.try_get(i)?),
            "DATETIME" | "TIMESTAMP" => Native::DateTime(row.try_get(i)?),
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
                Native::Text(String::from_utf8_lossy(&row.try_get::<Vec<u8>, _>(i)?).into_owned())
            }
            _ => Native::Text(row.try_get(i)?),
        })
    })
}

pub fn postgres_row(row: &sqlx::postgres::PgRow, columns: &[ColumnSpec]) -> anyhow::Result<Row> {
    decode_row(row, columns, |row, i, name| {
        Ok(match name {
            "INT2" => Native::Int(row.try_get::<i16, _>(i)?.into()),
            "INT4" => Native::Int(row.try_get::<i32, _>(i)?.into()),
            "INT8" => Native::Int(row.try_get(i)?),
            "NUMERIC" => Native::Dec(row.try_get(i)?),
            "FLOAT4" => Native::Float(row.try_get::<f32, _>(i)?.into()),
            "FLOAT8" => Native::Float(row.try_get(i)?),
            "BOOL" => Native::Bool(row.try_get(i)?),
            "DATE" => Native::Date(row.try_get(i)?),
            "TIMESTAMP" => Native::DateTime(row.try_get(i)?),
            "TIMESTAMPTZ" => Native::DateTime(
                row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)?
                    .naive_utc(),
            ),
            _ => Native::Text(row.try_get(i)?),
        })
    })
}

fn coerce(native: Native, spec: &ColumnSpec) -> anyhow::Result<Value> {
    let mismatch = |what: &str| {
        anyhow!(
            "column {} is declared {} but the database returned {what}",
            spec.name,
            spec.ty.as_str()
        )
    };
    Ok(match (spec.ty, native) {
        (_, Native::Null) => Value::Null,
        (ColumnType::Integer, Native::Int(i)) => Value::Int(i),
        (ColumnType::Integer, Native::Dec(d)) => Value::Int(
            d.to_i64()
                .filter(|_| d.fract().is_zero())
                .ok_or_else(|| mismatch("a fraction"))?,
        ),
        (ColumnType::Integer, Native::Bool(b)) => Value::Int(b.into()),
        (ColumnType::Integer, Native::Text(t)) => {
            Value::Int(t.trim().parse().map_err(|_| mismatch("text"))?)
        }
        (ColumnType::Decimal, Native::Dec(d)) => Value::Decimal(with_scale(d, spec.scale)),
        (ColumnType::Decimal, Native::Int(i)) => {
            Value::Decimal(with_scale(Decimal::from(i), spec.scale))
        }
        (ColumnType::Decimal, Native::Float(f)) => {
            // SQLite keeps DECIMAL(12,2) as REAL; rounding to the column's scale restores the exact cents.
            Value::Decimal(with_scale(
                Decimal::from_f64(f).ok_or_else(|| mismatch("a non-finite float"))?,
                spec.scale,
            ))
        }
        (ColumnType::Decimal, Native::Text(t)) => Value::Decimal(with_scale(
            t.trim().parse().map_err(|_| mismatch("text"))?,
            spec.scale,
        )),
        (ColumnType::String, Native::Text(t)) => Value::Text(t),
        (ColumnType::String, Native::Int(i)) => Value::Text(i.to_string()),
        (ColumnType::String, Native::Dec(d)) => Value::Text(d.to_string()),
        (ColumnType::String, Native::Bool(b)) => Value::Text(b.to_string()),
        (ColumnType::String, Native::Date(d)) => Value::Text(d.to_string()),
        (ColumnType::String, Native::Float(f)) => Value::Text(f.to_string()),
        (ColumnType::String, Native::DateTime(t)) => {
            Value::Text(t.format("%Y-%m-%dT%H:%M:%S").to_string())
        }
        (ColumnType::Boolean, Native::Bool(b)) => Value::Bool(b),
        (ColumnType::Boolean, Native::Int(i)) => Value::Bool(i != 0),
        (ColumnType::Boolean, Native::Text(t)) => {
            Value::Bool(matches!(t.as_str(), "1" | "true" | "t" | "TRUE"))
        }
        (ColumnType::Date, Native::Date(d)) => Value::Date(d),
        (ColumnType::Date, Native::DateTime(t)) => Value::Date(t.date()),
        (ColumnType::Date, Native::Text(t)) => {
            Value::Date(parse_date(&t).ok_or_else(|| mismatch("text that is not a date"))?)
        }
        (ColumnType::Datetime | ColumnType::Timestamp, Native::DateTime(t)) => Value::DateTime(t),
        (ColumnType::Datetime | ColumnType::Timestamp, Native::Date(d)) => {
            Value::DateTime(d.and_time(NaiveTime::MIN))
        }
        (ColumnType::Datetime | ColumnType::Timestamp, Native::Text(t)) => Value::DateTime(
            parse_datetime(&t).ok_or_else(|| mismatch("text that is not a date-time"))?,
        ),
        (_, Native::Float(_)) => return Err(mismatch("a float")),
        (_, Native::Int(_)) => return Err(mismatch("an integer")),
        (_, Native::Dec(_)) => return Err(mismatch("a decimal")),
        (_, Native::Bool(_)) => return Err(mismatch("a boolean")),
        (_, Native::Date(_)) => return Err(mismatch("a date")),
        (_, Native::DateTime(_)) => return Err(mismatch("a date-time")),
    })
}

fn with_scale(value: Decimal, scale: u32) -> Decimal {
    let mut rounded = value.round_dp(scale);
    rounded.rescale(scale);
    // Float noise such as SQLite's -7e-15 must not print as -0.00.
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            (text.len() == 10)
                .then(|| parse_date(text))
                .flatten()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            ty,
            nullable: true,
            scale: 2,
        }
    }

    #[test]
    fn sqlite_reals_become_exact_cents() {
        let v = coerce(Native::Float(120.0), &spec(ColumnType::Decimal)).unwrap();
        assert_eq!(v, Value::Decimal(Decimal::new(12000, 2)));
        assert_eq!(
            coerce(Native::Float(0.1 + 0.2), &spec(ColumnType::Decimal)).unwrap(),
            Value::Decimal(Decimal::new(30, 2))
        );
        assert_eq!(
            coerce(Native::Int(-5), &spec(ColumnType::Decimal))
                .unwrap()
                .clone(),
            Value::Decimal(Decimal::new(-500, 2))
        );
    }

    #[test]
    fn text_dates_parse() {
        let v = coerce(
            Native::Text("2024-03-05 09:30:00".into()),
            &spec(ColumnType::Datetime),
        )
        .unwrap();
        assert_eq!(
            v,
            Value::DateTime(
                NaiveDate::from_ymd_opt(2024, 3, 5)
                    .unwrap()
                    .and_hms_opt(9, 30, 0)
                    .unwrap()
            )
        );
        assert!(coerce(Native::Text("yesterday".into()), &spec(ColumnType::Date)).is_err());
    }

    #[test]
    fn integral_sums_become_integers() {
        assert_eq!(
            coerce(Native::Dec(Decimal::new(42, 0)), &spec(ColumnType::Integer)).unwrap(),
            Value::Int(42)
        );
        assert!(coerce(
            Native::Dec(Decimal::new(425, 1)),
            &spec(ColumnType::Integer)
        )
        .is_err());
    }
}
