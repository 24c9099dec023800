//! The reference practice schema (one DDL template, rendered per dialect).
//!
//! The template is `schema/practice.sql`: portable DDL whose only dialect-specific
//! token is the type `DATETIME`, rendered as `TIMESTAMP` on PostgreSQL. Every
//! `created_at`/`updated_at` is UTC; other `DATETIME` columns are practice-local
//! wall-clock time unless the DDL comment says otherwise. There are no foreign-key
//! constraints (see the file's header), so tables can be loaded in any order.

use crate::dialect::Dialect;

/// The DDL template, as written in the repository.
const TEMPLATE: &str = include_str!("../../schema/practice.sql");

/// Every practice table, in creation order.
pub const TABLES: &[&str] = &[
    "locations",
    "practitioners",
    "user_roles",
    "users",
    "health_funds",
    "referral_sources",
    "third_parties",
    "patients",
    "appointment_statuses",
    "appointment_types",
    "appointments",
    "cancellations",
    "waitlist",
    "reminders",
    "schedule_templates",
    "recall_types",
    "recalls",
    "service_items",
    "fee_schedules",
    "fee_schedule_items",
    "treatment_plans",
    "treatment_plan_items",
    "treatments",
    "invoices",
    "payment_types",
    "payments",
    "transactions",
    "deposits",
    "payment_allocations",
    "discounts",
    "expense_categories",
    "expenses",
];

/// The DDL that creates every practice table and index in `dialect`.
pub fn ddl(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => replace_word(TEMPLATE, "DATETIME", "TIMESTAMP"),
        Dialect::Sqlite | Dialect::Mysql => TEMPLATE.to_string(),
    }
}

/// The DDL of `dialect` as individual statements (no trailing `;`), comments stripped,
/// in execution order: each table is followed by its indexes.
pub fn statements(dialect: Dialect) -> Vec<String> {
    let ddl = ddl(dialect);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in ddl.lines() {
        // The template holds no string literals, so `--` always starts a comment.
        let code = match line.find("--") {
            Some(i) => &line[..i],
            None => line,
        };
        let code = code.trim_end();
        if code.trim().is_empty() {
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(code);
        if current.ends_with(';') {
            current.pop();
            let stmt = current.trim().to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Replaces `word` where it stands alone (not part of a longer identifier).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before_ok = !rest[..i].chars().next_back().is_some_and(is_ident);
        let after = &rest[i + word.len()..];
        let after_ok = !after.chars().next().is_some_and(is_ident);
        out.push_str(&rest[..i]);
        out.push_str(if before_ok && after_ok { with } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Mysql, Dialect::Postgres];

    fn created_tables(dialect: Dialect) -> Vec<String> {
        statements(dialect)
            .iter()
            .filter_map(|s| s.strip_prefix("CREATE TABLE "))
            .map(|s| s.split_whitespace().next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn tables_match_the_ddl_in_order() {
        for d in ALL {
            assert_eq!(created_tables(d), TABLES, "{d:?}");
        }
        assert_eq!(TABLES.len(), 32);
    }

    #[test]
    fn postgres_uses_timestamp_and_others_datetime() {
        let pg = statements(Dialect::Postgres).join("\n");
        assert!(!pg.contains("DATETIME"));
        assert!(pg.contains("created_at TIMESTAMP NOT NULL"));
        assert!(!ddl(Dialect::Postgres).contains("DATETIME"));
        for d in [Dialect::Sqlite, Dialect::Mysql] {
            assert_eq!(ddl(d), TEMPLATE);
            let s = statements(d).join("\n");
            assert!(s.contains("created_at DATETIME NOT NULL"));
            assert!(!s.contains("TIMESTAMP"));
        }
    }

    #[test]
    fn statements_are_clean() {
        for d in ALL {
            let stmts = statements(d);
            assert!(stmts.len() > TABLES.len());
            for s in &stmts {
                assert!(!s.contains("--"), "comment left in {s}");
                assert!(!s.contains(';'), "separator left in {s}");
                assert!(
                    s.starts_with("CREATE TABLE ") || s.starts_with("CREATE INDEX "),
                    "unexpected statement {s}"
                );
                assert_eq!(s.matches('(').count(), s.matches(')').count(), "{s}");
            }
        }
    }

    #[test]
    fn every_table_has_utc_audit_columns_and_indexes() {
        let stmts = statements(Dialect::Sqlite);
        for table in TABLES {
            let create = stmts
                .iter()
                .find(|s| s.starts_with(&format!("CREATE TABLE {table} (")))
                .unwrap();
            assert!(create.contains("id INTEGER PRIMARY KEY"), "{table}");
            assert!(create.contains("created_at DATETIME NOT NULL"), "{table}");
            assert!(create.contains("updated_at DATETIME NOT NULL"), "{table}");
            for col in ["created_at", "updated_at"] {
                let ix = format!("CREATE INDEX ix_{table}_{col} ON {table} ({col})");
                assert!(stmts.contains(&ix), "missing {ix}");
            }
        }
    }

    #[test]
    fn index_names_are_unique_and_short() {
        let mut names: Vec<String> = statements(Dialect::Postgres)
            .iter()
            .filter_map(|s| s.strip_prefix("CREATE INDEX "))
            .map(|s| s.split_whitespace().next().unwrap().to_string())
            .collect();
        assert!(names.iter().all(|n| n.len() <= 63), "identifier too long");
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn portable_types_only() {
        let allowed = [
            "INTEGER", "BIGINT", "VARCHAR", "TEXT", "DECIMAL", "DATE", "DATETIME", "BOOLEAN",
        ];
        for s in statements(Dialect::Sqlite) {
            let Some(body) = s.strip_prefix("CREATE TABLE ") else {
                continue;
            };
            let body = &body[body.find('(').unwrap() + 1..body.rfind(')').unwrap()];
            for line in body.lines() {
                let line = line.trim().trim_end_matches(',');
                if line.is_empty() {
                    continue;
                }
                let ty = line.split_whitespace().nth(1).unwrap();
                let base = ty.split('(').next().unwrap();
                assert!(allowed.contains(&base), "type {ty} in {line}");
                if base == "DECIMAL" {
                    assert_eq!(ty, "DECIMAL(12,2)");
                }
            }
        }
    }

    #[test]
    fn replace_word_respects_identifiers() {
        assert_eq!(
            replace_word(
                "a DATETIME, b DATETIME_X, XDATETIME, DATETIME",
                "DATETIME",
                "TIMESTAMP"
            ),
            "a TIMESTAMP, b DATETIME_X, XDATETIME, TIMESTAMP"
        );
    }
}
