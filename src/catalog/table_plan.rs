//! Planning a table read: the table's own quoted names, the date range bound, rows in
//! primary-key order.

use super::params::DateLimit;
use super::plan::{BindValue, Plan};
use super::table::{SourceColumn, SourceTable, TableParams};
use crate::dialect::Dialect;
use crate::value::ColumnType;

/// The quoted, schema-qualified name of `table`.
pub fn qualified_name(table: &SourceTable, dialect: Dialect) -> String {
    match &table.schema {
        Some(schema) => format!(
            "{}.{}",
            dialect.quote_ident(schema),
            dialect.quote_ident(&table.name)
        ),
        None => dialect.quote_ident(&table.name),
    }
}

/// The SELECT-list expression of a column, cast to text where the column is read as text.
fn select_expr(column: &SourceColumn, dialect: Dialect) -> String {
    let quoted = dialect.quote_ident(&column.name);
    if !column.as_text {
        return quoted;
    }
    let text = match dialect {
        Dialect::Mysql => "CHAR",
        Dialect::Sqlite | Dialect::Postgres => "TEXT",
    };
    format!("CAST({quoted} AS {text}) AS {quoted}")
}

/// Builds the query for `params` (already validated against `table`).
pub fn plan_table(table: &SourceTable, params: &TableParams, dialect: Dialect) -> Plan {
    let mut binds = Vec::new();
    let mut conditions = Vec::new();
    let date_column = params.date_column.as_deref().and_then(|n| table.column(n));
    if let Some(column) = date_column {
        let quoted = dialect.quote_ident(&column.name);
        for (limit, lower) in [(&params.from, true), (&params.to, false)] {
            let Some(limit) = limit else { continue };
            let (op, value) = match (limit, lower) {
                (DateLimit::Date(d), true) => (">=", BindValue::Date(*d)),
                (DateLimit::Date(d), false) => ("<=", BindValue::Date(*d)),
                (DateLimit::At(t), true) => (">=", BindValue::DateTime(*t)),
                (DateLimit::At(t), false) => ("<=", BindValue::DateTime(*t)),
                (DateLimit::Before(t), _) => ("<", BindValue::DateTime(*t)),
            };
            binds.push(value);
            let mut placeholder = dialect.placeholder(binds.len());
            // A timestamptz compared with a bound UTC wall-clock time: say that it is UTC.
            if dialect == Dialect::Postgres && column.ty == ColumnType::Timestamp {
                placeholder = format!("({placeholder} AT TIME ZONE 'UTC')");
            }
            conditions.push(format!("{quoted} {op} {placeholder}"));
        }
    }
    let mut body = format!(" FROM {}", qualified_name(table, dialect));
    if !conditions.is_empty() {
        body.push_str(" WHERE ");
        body.push_str(&conditions.join(" AND "));
    }
    let limit = params
        .limit
        .map(|n| format!(" LIMIT {n}"))
        .unwrap_or_default();
    let order: Vec<String> = table
        .primary_key
        .iter()
        .map(|c| dialect.quote_ident(c))
        .collect();
    let order_by = if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    };
    let selected: Vec<&SourceColumn> = params
        .columns
        .iter()
        .filter_map(|n| table.column(n))
        .collect();
    let select: Vec<String> = selected.iter().map(|c| select_expr(c, dialect)).collect();
    Plan {
        dialect,
        sql: format!("SELECT {}{body}{order_by}{limit}", select.join(", ")),
        count_sql: format!("SELECT COUNT(*) FROM (SELECT 1 AS one{body}{limit}) cs_count"),
        binds,
        columns: selected.iter().map(|c| c.spec()).collect(),
    }
}

/// The download name's stem: `table_<name>[_<from>_<to>]`, in the characters of a file name.
pub fn file_stem(table: &str, params: &TableParams) -> String {
    let safe: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let day = |t: &Option<String>, open: &str| {
        t.as_deref()
            .map(|t| t.chars().take(10).collect())
            .unwrap_or_else(|| open.to_string())
    };
    if params.from_text.is_none() && params.to_text.is_none() {
        return format!("table_{safe}");
    }
    format!(
        "table_{safe}_{}_{}",
        day(&params.from_text, "start"),
        day(&params.to_text, "latest")
    )
}

#[cfg(test)]
mod tests {
    use super::super::table::parse_table_params;
    use super::super::table::tests::{pairs, table};
    use super::*;

    #[test]
    fn plans_quoted_bound_and_ordered() {
        let params = parse_table_params(
            &table(),
            &pairs(&[
                ("date_column", "seen_on"),
                ("from_date", "2024-01-01"),
                ("to_date", "2024-01-31"),
                ("columns", "note,id"),
                ("limit", "5"),
            ]),
            100,
        )
        .unwrap();
        let plan = plan_table(&table(), &params, Dialect::Postgres);
        assert_eq!(
            plan.sql,
            "SELECT CAST(\"note\" AS TEXT) AS \"note\", \"id\" FROM \"public\".\"visits\" \
             WHERE \"seen_on\" >= $1 AND \"seen_on\" <= $2 ORDER BY \"id\" LIMIT 5"
        );
        assert_eq!(plan.binds.len(), 2);
        assert_eq!(plan.columns[0].name, "note");
        let mysql = plan_table(&table(), &params, Dialect::Mysql);
        assert!(mysql.sql.contains("CAST(`note` AS CHAR) AS `note`"));
        assert!(mysql.sql.contains("`seen_on` >= ? AND `seen_on` <= ?"));
    }

    #[test]
    fn timestamptz_bounds_are_utc() {
        let params = parse_table_params(
            &table(),
            &pairs(&[("date_column", "at"), ("to_date", "2024-01-31")]),
            100,
        )
        .unwrap();
        let plan = plan_table(&table(), &params, Dialect::Postgres);
        assert!(
            plan.sql.contains("\"at\" < ($1 AT TIME ZONE 'UTC')"),
            "{}",
            plan.sql
        );
    }

    #[test]
    fn file_stems_are_file_name_safe() {
        let params = parse_table_params(&table(), &[], 100).unwrap();
        assert_eq!(file_stem("my table", &params), "table_my_table");
    }
}
