//! Typed cell values and column descriptions shared by sources, the catalog and encoders.
//!
//! A value keeps the type the practice database gave it: money stays an exact
//! decimal, dates stay dates, NULL stays null. Every encoder writes from these.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The declared type of an output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// 64-bit signed integer.
    Integer,
    /// Exact decimal (money); written with the column's scale, never rounded through a float.
    Decimal,
    /// Text.
    String,
    /// true/false.
    Boolean,
    /// Calendar date, `YYYY-MM-DD`.
    Date,
    /// Practice-local wall-clock date and time, `YYYY-MM-DDTHH:MM:SS` (no offset).
    Datetime,
    /// UTC instant, `YYYY-MM-DDTHH:MM:SSZ` (record-keeping times such as `created_at`).
    Timestamp,
}

impl ColumnType {
    /// The name used in the catalog and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Decimal => "decimal",
            ColumnType::String => "string",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
            ColumnType::Timestamp => "timestamp",
        }
    }
}

/// One output column: what encoders need to know to write and type it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// Digits after the decimal point for `Decimal` columns (money: 2).
    pub scale: u32,
}

/// One cell. `Decimal` values already carry the column's scale.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(Decimal),
    Text(String),
    Date(NaiveDate),
    /// Used for both `Datetime` and `Timestamp` columns; the column type decides the `Z`.
    DateTime(NaiveDateTime),
}

/// One row, in the order of the plan's columns.
pub type Row = Vec<Value>;
