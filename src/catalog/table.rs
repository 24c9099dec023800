//! Direct table access: a table as the source's own catalog describes it, the
//! parameters of a table extraction checked against it, and the plan that reads it.
//!
//! Table and column names only ever come from the source's catalog (matched exactly
//! against the request) and are quoted for the dialect; values are bound.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::DateKind;
use super::params::{
    lower_limit, parse_enum, parse_limit, parse_mode, parse_range, repeated_params, truncate,
    upper_limit, DateBound, DateLimit, Mode,
};
use crate::export::{Compression, OutputFormat};
use crate::http::error::{ApiError, FieldError};
use crate::value::{ColumnSpec, ColumnType};

/// `procedure_name` of a job that reads a table: `table:<name>`.
pub const TABLE_JOB_PREFIX: &str = "table:";

/// Longest table or column name accepted in a request (MySQL allows 64, PostgreSQL 63).
pub const MAX_IDENTIFIER_CHARS: usize = 64;

/// The parameters of `GET /v1/advanced/tables/{table}`.
pub const TABLE_PARAMS: &[&str] = &[
    "date_column",
    "from_date",
    "to_date",
    "columns",
    "limit",
    "format",
    "compression",
    "mode",
];

/// Whether a relation is a table or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Table,
    View,
}

/// A column as the source's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceColumn {
    pub name: String,
    /// The database's own type name, e.g. `decimal(12,2)`, `timestamp without time zone`.
    pub db_type: String,
    /// How the value is written out.
    pub ty: ColumnType,
    pub nullable: bool,
    /// Digits after the point for decimal columns.
    pub scale: u32,
    /// Read as text (`CAST(… AS TEXT)`): types without an exact typed form here
    /// (floats, times, JSON, UUIDs, …), so the driver never has to decode them.
    pub as_text: bool,
}

impl SourceColumn {
    /// What encoders need.
    pub fn spec(&self) -> ColumnSpec {
        ColumnSpec {
            name: self.name.clone(),
            ty: self.ty,
            nullable: self.nullable,
            scale: self.scale,
        }
    }

    /// How a date filter compares this column; `None` for a column that holds no dates.
    pub fn date_kind(&self) -> Option<DateKind> {
        match self.ty {
            ColumnType::Date => Some(DateKind::Date),
            ColumnType::Datetime => Some(DateKind::Datetime),
            ColumnType::Timestamp => Some(DateKind::Timestamp),
            _ => None,
        }
    }
}

/// A table or view the source user can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    /// The schema it lives in (PostgreSQL's current schema); `None` on MySQL and SQLite,
    /// where the connection's database is implied.
    pub schema: Option<String>,
    pub name: String,
    pub kind: TableKind,
    /// In the table's own column order.
    pub columns: Vec<SourceColumn>,
    /// Primary-key columns; rows are read in this order when there is one.
    pub primary_key: Vec<String>,
}

impl SourceTable {
    pub fn column(&self, name: &str) -> Option<&SourceColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns a date range can apply to.
    pub fn date_columns(&self) -> impl Iterator<Item = &SourceColumn> {
        self.columns.iter().filter(|c| c.date_kind().is_some())
    }

    fn column_names(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        names.join(", ")
    }
}

/// A table extraction's parameters, validated against the table.
#[derive(Debug, Clone)]
pub struct TableParams {
    pub date_column: Option<String>,
    pub from: Option<DateLimit>,
    pub to: Option<DateLimit>,
    /// The range as given, for file names and job metadata.
    pub from_text: Option<String>,
    pub to_text: Option<String>,
    pub format: OutputFormat,
    pub compression: Compression,
    pub mode: Mode,
    /// Selected column names in output order.
    pub columns: Vec<String>,
    pub limit: Option<u64>,
}

impl TableParams {
    /// The public `metadata` of a job that reads the table.
    pub fn job_metadata(&self, table: &str) -> serde_json::Value {
        serde_json::json!({
            "table": table, "date_column": self.date_column, "from_date": self.from_text,
            "to_date": self.to_text, "columns": self.columns, "limit": self.limit,
        })
    }
}

/// Checks a table name from a request before any database sees it: the length and the
/// characters of an identifier. Whether the table exists is the source catalog's answer.
pub fn check_table_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > MAX_IDENTIFIER_CHARS {
        return Err(ApiError::field(
            "table",
            format!("a table name has 1 to {MAX_IDENTIFIER_CHARS} characters"),
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(ApiError::field(
            "table",
            "a table name has no control characters",
        ));
    }
    Ok(())
}

/// Validates every parameter against `table`, collecting all field errors.
pub fn parse_table_params(
    table: &SourceTable,
    pairs: &[(String, String)],
    max_limit: u64,
) -> Result<TableParams, ApiError> {
    let mut errors = Vec::new();
    repeated_params(pairs, &mut errors);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    for (name, _) in pairs {
        if !TABLE_PARAMS.contains(&name.as_str()) {
            errors.push(FieldError::new(
                truncate(name),
                format!(
                    "unknown parameter {:?}; accepted parameters: {}",
                    truncate(name),
                    TABLE_PARAMS.join(", ")
                ),
            ));
        }
    }

    let (from, to) = parse_range(get, &mut errors);
    let date_column = match get("date_column").filter(|t| !t.is_empty()) {
        Some(name) => match table
            .column(name)
            .and_then(|c| c.date_kind().map(|k| (c, k)))
        {
            Some((column, kind)) => Some((column.name.clone(), kind)),
            None => {
                errors.push(date_column_error(table, name));
                None
            }
        },
        None if from.is_some() || to.is_some() => {
            errors.push(FieldError::new(
                "date_column",
                format!(
                    "date_column is required with from_date or to_date; accepted values: {}",
                    date_column_names(table)
                ),
            ));
            None
        }
        None => None,
    };

    let format = parse_enum(
        get("format"),
        "format",
        OutputFormat::default(),
        &mut errors,
    );
    let compression = parse_enum(
        get("compression"),
        "compression",
        Compression::default(),
        &mut errors,
    );
    let mode = parse_mode(get("mode"), &mut errors);
    let columns = parse_columns(table, get("columns"), &mut errors);
    let limit = parse_limit(get("limit"), max_limit, &mut errors);

    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let kind = date_column.as_ref().map(|(_, kind)| *kind);
    let limit_of = |bound: Option<DateBound>, lower: bool| {
        let (bound, kind) = (bound?, kind?);
        Some(if lower {
            lower_limit(bound, kind)
        } else {
            upper_limit(bound, kind)
        })
    };
    Ok(TableParams {
        date_column: date_column.map(|(name, _)| name),
        from: limit_of(from, true),
        to: limit_of(to, false),
        from_text: from.map(DateBound::text),
        to_text: to.map(DateBound::text),
        format,
        compression,
        mode,
        columns,
        limit,
    })
}

fn date_column_names(table: &SourceTable) -> String {
    let names: Vec<&str> = table.date_columns().map(|c| c.name.as_str()).collect();
    if names.is_empty() {
        format!("none ({} has no date columns)", table.name)
    } else {
        names.join(", ")
    }
}

fn date_column_error(table: &SourceTable, name: &str) -> FieldError {
    let what = match table.column(name) {
        Some(column) => format!("column {:?} is {}, not a date", name, column.db_type),
        None => format!("unknown date_column {:?}", truncate(name)),
    };
    FieldError::new(
        "date_column",
        format!(
            "{what}; accepted values for {}: {}",
            table.name,
            date_column_names(table)
        ),
    )
}

fn parse_columns(
    table: &SourceTable,
    list: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let Some(list) = list.map(str::trim).filter(|t| !t.is_empty()) else {
        return table.columns.iter().map(|c| c.name.clone()).collect();
    };
    let mut chosen: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if table.column(name).is_none() {
            errors.push(FieldError::new(
                "columns",
                format!(
                    "unknown column {:?} for {}; accepted values: {}",
                    truncate(name),
                    table.name,
                    table.column_names()
                ),
            ));
        } else if chosen.iter().any(|c| c == name) {
            errors.push(FieldError::new(
                "columns",
                format!("column {name:?} is listed twice"),
            ));
        } else {
            chosen.push(name.to_string());
        }
    }
    chosen
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::catalog) fn column(name: &str, ty: ColumnType, as_text: bool) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            db_type: "t".into(),
            ty,
            nullable: true,
            scale: 2,
            as_text,
        }
    }

    pub(in crate::catalog) fn table() -> SourceTable {
        SourceTable {
            schema: Some("public".into()),
            name: "visits".into(),
            kind: TableKind::Table,
            columns: vec![
                column("id", ColumnType::Integer, false),
                column("seen_on", ColumnType::Date, false),
                column("note", ColumnType::String, true),
                column("at", ColumnType::Timestamp, false),
            ],
            primary_key: vec!["id".into()],
        }
    }

    pub(in crate::catalog) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fields(result: Result<TableParams, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::InvalidInput { errors, .. }) => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn refuses_unknown_names_and_sql_text() {
        let t = table();
        for (name, value, field) in [
            ("columns", "id,nope", "columns"),
            ("columns", "id;DROP TABLE visits", "columns"),
            ("columns", "id,id", "columns"),
            ("columns", "\"id\"", "columns"),
            ("date_column", "note", "date_column"),
            ("date_column", "seen_on OR 1=1", "date_column"),
            ("from_date", "2024-01-01' --", "from_date"),
            ("limit", "0", "limit"),
            ("format", "xml", "format"),
            ("mode", "fast", "mode"),
            ("date_modifier", "Created", "date_modifier"),
        ] {
            assert_eq!(
                fields(parse_table_params(&t, &pairs(&[(name, value)]), 100)),
                [field],
                "{name}={value}"
            );
        }
        assert_eq!(
            fields(parse_table_params(
                &t,
                &pairs(&[("from_date", "2024-01-01")]),
                100
            )),
            ["date_column"]
        );
    }

    #[test]
    fn checks_table_names_before_the_database() {
        assert!(check_table_name("patients").is_ok());
        assert!(check_table_name("").is_err());
        assert!(check_table_name(&"x".repeat(65)).is_err());
        assert!(check_table_name("a\u{0}b").is_err());
    }
}
