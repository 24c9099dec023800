//! Planning: a procedure and validated parameters become one SQL statement with
//! bound values, in the dialect of the customer's source.

use chrono::{NaiveDate, NaiveDateTime};

use super::model::Procedure;
use super::params::{DateLimit, ExtractParams, FilterValue};
use crate::dialect::Dialect;
use crate::value::ColumnSpec;

/// A value bound to a placeholder; never spliced into SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum BindValue {
    Int(i64),
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

/// A ready-to-run extraction.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dialect: Dialect,
    /// The extraction query.
    pub sql: String,
    /// `SELECT COUNT(*)` over the same rows (with the same binds), for the estimate.
    pub count_sql: String,
    pub binds: Vec<BindValue>,
    /// Output columns, in order.
    pub columns: Vec<ColumnSpec>,
}

/// Builds the query for `params` (already validated against `procedure`).
pub fn plan(procedure: &Procedure, params: &ExtractParams, dialect: Dialect) -> Plan {
    let mut binds = Vec::new();
    let mut conditions = Vec::new();
    let modifier = procedure
        .date_modifier(&params.date_modifier)
        .unwrap_or(&procedure.date_modifiers[0]);
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
        conditions.push(format!(
            "{} {op} {}",
            modifier.expr,
            dialect.placeholder(binds.len())
        ));
    }
    for (name, value) in &params.filters {
        let Some(filter) = procedure.filter(name) else {
            continue;
        };
        binds.push(match value {
            FilterValue::Int(i) => BindValue::Int(*i),
            FilterValue::Text(s) => BindValue::Text(s.clone()),
            FilterValue::Bool(b) => BindValue::Bool(*b),
        });
        conditions.push(format!(
            "{} = {}",
            filter.expr,
            dialect.placeholder(binds.len())
        ));
    }

    let mut body = format!(" FROM {}", procedure.from_for(dialect));
    if !conditions.is_empty() {
        body.push_str(" WHERE ");
        body.push_str(&conditions.join(" AND "));
    }
    if let Some(group_by) = procedure
        .group_by
        .as_deref()
        .filter(|g| !g.trim().is_empty())
    {
        body.push_str(" GROUP BY ");
        body.push_str(group_by);
    }
    let limit = params
        .limit
        .map(|n| format!(" LIMIT {n}"))
        .unwrap_or_default();

    let mut columns = Vec::new();
    let mut select = Vec::new();
    for name in &params.columns {
        let Some(column) = procedure.column(name) else {
            continue;
        };
        select.push(format!(
            "{} AS {}",
            column.expr_for(dialect),
            dialect.quote_ident(&column.name)
        ));
        columns.push(column.spec());
    }
    let sql = format!(
        "SELECT {}{body} ORDER BY {}{limit}",
        select.join(", "),
        procedure.order_by
    );
    let count_sql = format!("SELECT COUNT(*) FROM (SELECT 1 AS one{body}{limit}) cs_count");
    Plan {
        dialect,
        sql,
        count_sql,
        binds,
        columns,
    }
}
