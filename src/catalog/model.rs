//! Procedure definitions: the catalog files, loaded and checked once at startup.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dialect::Dialect;
use crate::value::{ColumnSpec, ColumnType};

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/catalog");

/// The six categories, in API order: (name, title, description).
pub const CATEGORIES: &[(&str, &str, &str)] = &[
    ("patient_management", "Patient management", "Core patient data and analytics: demographics, lifetime value, recalls."),
    ("scheduling", "Scheduling & appointments", "Appointments, their statuses and types, cancellations, waitlist, reminders and schedule templates."),
    ("financial", "Financial management", "Transactions, receipts, deposits, allocations, invoices, discounts, aged debtors, fees and payment types."),
    ("clinical", "Clinical & treatment", "Completed treatments, treatment plans and the service item catalogue."),
    ("business_operations", "Business operations", "Practice expenses and their categories."),
    ("practice_setup", "Practice setup & configuration", "Practitioners, users and roles, locations, health funds, third parties, referral sources and recall types."),
];

/// How a date modifier's expression is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateKind {
    /// A DATE column.
    Date,
    /// A practice-local DATETIME column.
    Datetime,
    /// A UTC record-keeping time (`created_at`, `updated_at`).
    Timestamp,
}

/// The type of an equality filter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterType {
    Integer,
    String,
    Boolean,
}

/// An SQL expression with optional per-dialect replacements.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateModifier {
    pub name: String,
    pub expr: String,
    #[serde(rename = "type")]
    pub kind: DateKind,
    pub description: String,
}

/// An optional equality filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub name: String,
    pub expr: String,
    #[serde(rename = "type")]
    pub ty: FilterType,
    pub description: String,
}

/// An output column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    pub expr: String,
    pub expr_sqlite: Option<String>,
    pub expr_mysql: Option<String>,
    pub expr_postgres: Option<String>,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub nullable: bool,
    pub description: String,
    pub scale: Option<u32>,
}

impl Column {
    /// The expression for `dialect`.
    pub fn expr_for(&self, dialect: Dialect) -> &str {
        let special = match dialect {
            Dialect::Sqlite => &self.expr_sqlite,
            Dialect::Mysql => &self.expr_mysql,
            Dialect::Postgres => &self.expr_postgres,
        };
        special.as_deref().unwrap_or(&self.expr)
    }

    /// What encoders need.
    pub fn spec(&self) -> ColumnSpec {
        ColumnSpec {
            name: self.name.clone(),
            ty: self.ty,
            nullable: self.nullable,
            scale: self.scale.unwrap_or(2),
        }
    }
}

/// One API procedure: a query over the practice schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub name: String,
    pub category: String,
    pub title: String,
    pub description: String,
    pub from: String,
    pub from_sqlite: Option<String>,
    pub from_mysql: Option<String>,
    pub from_postgres: Option<String>,
    #[serde(default)]
    pub group_by: Option<String>,
    pub order_by: String,
    pub date_modifiers: Vec<DateModifier>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    pub columns: Vec<Column>,
}

impl Procedure {
    /// The FROM clause for `dialect`.
    pub fn from_for(&self, dialect: Dialect) -> &str {
        let special = match dialect {
            Dialect::Sqlite => &self.from_sqlite,
            Dialect::Mysql => &self.from_mysql,
            Dialect::Postgres => &self.from_postgres,
        };
        special.as_deref().unwrap_or(&self.from)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn date_modifier(&self, name: &str) -> Option<&DateModifier> {
        self.date_modifiers.iter().find(|m| m.name == name)
    }

    pub fn filter(&self, name: &str) -> Option<&Filter> {
        self.filters.iter().find(|f| f.name == name)
    }

    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            is_snake(&self.name),
            "procedure name {:?} must be snake_case",
            self.name
        );
        ensure!(
            CATEGORIES.iter().any(|(c, _, _)| *c == self.category),
            "unknown category {:?}; known: {}",
            self.category,
            CATEGORIES
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>()
                .join(", ")
        );
        ensure!(!self.columns.is_empty(), "no columns");
        ensure!(!self.date_modifiers.is_empty(), "no date modifiers");
        for required in ["Created", "Modified"] {
            ensure!(
                self.date_modifier(required).is_some(),
                "missing the {required} date modifier"
            );
        }
        let mut sql: Vec<&str> = vec![&self.from, &self.order_by];
        sql.extend(
            [
                &self.from_sqlite,
                &self.from_mysql,
                &self.from_postgres,
                &self.group_by,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        );
        let mut seen = HashMap::new();
        for column in &self.columns {
            ensure!(
                is_snake(&column.name),
                "column name {:?} must be snake_case",
                column.name
            );
            ensure!(
                seen.insert(column.name.as_str(), ()).is_none(),
                "column {:?} appears twice",
                column.name
            );
            ensure!(
                column.scale.is_none() || column.ty == ColumnType::Decimal,
                "column {:?}: scale is for decimal columns",
                column.name
            );
            sql.push(&column.expr);
            sql.extend(
                [
                    &column.expr_sqlite,
                    &column.expr_mysql,
                    &column.expr_postgres,
                ]
                .into_iter()
                .flatten()
                .map(String::as_str),
            );
        }
        for modifier in &self.date_modifiers {
            ensure!(
                modifier
                    .name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
                    && modifier.name.chars().all(|c| c.is_ascii_alphanumeric()),
                "date modifier {:?} must be PascalCase",
                modifier.name
            );
            sql.push(&modifier.expr);
        }
        let mut filter_names = HashMap::new();
        for filter in &self.filters {
            ensure!(
                is_snake(&filter.name),
                "filter name {:?} must be snake_case",
                filter.name
            );
            ensure!(
                filter_names.insert(filter.name.as_str(), ()).is_none(),
                "filter {:?} appears twice",
                filter.name
            );
            ensure!(
                !RESERVED_PARAMS.contains(&filter.name.as_str()),
                "filter {:?} clashes with an extraction parameter",
                filter.name
            );
            sql.push(&filter.expr);
        }
        for text in sql {
            // Placeholders and statement separators belong to the planner alone.
            for bad in ["?", "$", ";", "--", "/*"] {
                ensure!(
                    !text.contains(bad),
                    "SQL fragment {text:?} contains {bad:?}"
                );
            }
        }
        Ok(())
    }
}

/// Extraction parameter names, which no filter may take.
pub const RESERVED_PARAMS: &[&str] = &[
    "from_date",
    "to_date",
    "date_modifier",
    "format",
    "compression",
    "mode",
    "columns",
    "limit",
    "filters",
];

fn is_snake(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// All procedures, in category order then file order.
#[derive(Debug, Clone)]
pub struct Catalog {
    procedures: Vec<Procedure>,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn builtin() -> anyhow::Result<Catalog> {
        let files = BUILTIN
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
            .map(|f| {
                (
                    f.path().display().to_string(),
                    f.contents_utf8().unwrap_or_default().to_string(),
                )
            })
            .collect();
        Catalog::from_files(files).context("built-in catalog")
    }

    /// A catalog directory of `*.toml` files, replacing the built-in one.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Catalog> {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading catalog directory {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                files.push((path.display().to_string(), text));
            }
        }
        Catalog::from_files(files).with_context(|| format!("catalog directory {}", dir.display()))
    }

    fn from_files(mut files: Vec<(String, String)>) -> anyhow::Result<Catalog> {
        files.sort();
        let mut procedures: Vec<Procedure> = Vec::new();
        for (path, text) in files {
            let procedure: Procedure =
                toml::from_str(&text).with_context(|| format!("parsing {path}"))?;
            procedure
                .validate()
                .with_context(|| format!("in {path} (procedure {})", procedure.name))?;
            if procedures.iter().any(|p| p.name == procedure.name) {
                bail!("procedure {:?} is defined twice ({path})", procedure.name);
            }
            procedures.push(procedure);
        }
        ensure!(!procedures.is_empty(), "the catalog has no procedures");
        procedures.sort_by_key(|p| CATEGORIES.iter().position(|(c, _, _)| *c == p.category));
        Ok(Catalog { procedures })
    }

    /// A procedure by name.
    pub fn get(&self, name: &str) -> Option<&Procedure> {
        self.procedures.iter().find(|p| p.name == name)
    }

    /// All procedures in API order.
    pub fn procedures(&self) -> &[Procedure] {
        &self.procedures
    }

    /// All procedure names, for error messages.
    pub fn names(&self) -> Vec<&str> {
        self.procedures.iter().map(|p| p.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid_and_complete() {
        let catalog = Catalog::builtin().unwrap();
        assert_eq!(catalog.procedures().len(), 32, "{:?}", catalog.names());
        for (category, _, _) in CATEGORIES {
            assert!(
                catalog.procedures().iter().any(|p| p.category == *category),
                "{category} is empty"
            );
        }
    }

    #[test]
    fn rejects_placeholders_and_missing_modifiers() {
        let good = r#"
name = "x"
category = "clinical"
title = "X"
description = "d"
from = "t"
order_by = "t.id"
[[date_modifiers]]
name = "Created"
expr = "t.created_at"
type = "timestamp"
description = "c"
[[date_modifiers]]
name = "Modified"
expr = "t.updated_at"
type = "timestamp"
description = "m"
[[columns]]
name = "id"
expr = "t.id"
type = "integer"
nullable = false
description = "id"
"#;
        assert!(Catalog::from_files(vec![("x.toml".into(), good.into())]).is_ok());
        let injected = good.replace("t.id\"\ntype", "t.id; DROP TABLE t\"\ntype");
        assert!(Catalog::from_files(vec![("x.toml".into(), injected)]).is_err());
        let no_modified = good.replace("name = \"Modified\"", "name = \"Other\"");
        assert!(Catalog::from_files(vec![("x.toml".into(), no_modified)]).is_err());
        let unknown_key = format!("{good}\nsurprise = 1\n");
        assert!(Catalog::from_files(vec![("x.toml".into(), unknown_key)]).is_err());
    }
}
