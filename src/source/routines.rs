//! Stored routines in the source's catalog: MySQL/MariaDB's information_schema, and
//! PostgreSQL's pg_proc (which alone tells overloads, parameter defaults, procedures
//! from functions and extension members apart). System schemas are never looked at.

use sqlx::Row as _;

use super::{Pool, Source, SourceError};
use crate::catalog::RoutineName;

/// Schemas whose routines are the database's own, never called.
const SYSTEM_SCHEMAS: &[&str] = &[
    "information_schema",
    "mysql",
    "performance_schema",
    "sys",
    "pg_catalog",
    "pg_toast",
];

/// What a routine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutineKind {
    /// Run with `CALL`.
    Procedure,
    /// Run with `SELECT * FROM name(…)` (PostgreSQL) or `SELECT name(…)` (MySQL).
    Function,
}

/// A routine found in the source's catalog.
#[derive(Debug, Clone)]
pub struct Routine {
    pub schema: String,
    pub name: String,
    pub kind: RoutineKind,
    /// Fewest and most arguments it takes (PostgreSQL parameters may have defaults).
    pub min_args: usize,
    pub max_args: usize,
    /// PostgreSQL: each parameter's type as the catalog renders it, for explicit casts.
    pub arg_types: Vec<String>,
    /// Why it cannot be called through CipherStream, when it cannot.
    pub refusal: Option<String>,
}

impl Source {
    /// The routines `name` may mean (several when PostgreSQL overloads the name). An
    /// unqualified name is looked up in the connection's database or current schema.
    pub async fn find_routines(&self, name: &RoutineName) -> Result<Vec<Routine>, SourceError> {
        if name
            .schema
            .as_deref()
            .is_some_and(|s| SYSTEM_SCHEMAS.contains(&s.to_ascii_lowercase().as_str()))
        {
            return Ok(Vec::new());
        }
        match &self.pool {
            Pool::Sqlite(_) => Ok(Vec::new()),
            Pool::Mysql(pool) => {
                let rows = sqlx::query(
                    "SELECT CAST(r.ROUTINE_SCHEMA AS CHAR) AS routine_schema, CAST(r.ROUTINE_NAME AS CHAR) AS routine_name, \
                     CAST(r.ROUTINE_TYPE AS CHAR) AS routine_type, CAST(r.SQL_DATA_ACCESS AS CHAR) AS data_access, \
                     (SELECT COUNT(*) FROM information_schema.PARAMETERS p WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA \
                      AND p.SPECIFIC_NAME = r.SPECIFIC_NAME AND p.ORDINAL_POSITION > 0) AS n_params, \
                     (SELECT COUNT(*) FROM information_schema.PARAMETERS p WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA \
                      AND p.SPECIFIC_NAME = r.SPECIFIC_NAME AND p.PARAMETER_MODE IN ('OUT', 'INOUT')) AS n_out \
                     FROM information_schema.ROUTINES r \
                     WHERE r.ROUTINE_SCHEMA = COALESCE(?, DATABASE()) AND r.ROUTINE_NAME = ?",
                )
                .bind(name.schema.clone())
                .bind(name.name.clone())
                .fetch_all(pool)
                .await
                .map_err(SourceError::from_sqlx)?;
                rows.iter()
                    .map(|r| {
                        let kind = match r.try_get::<String, _>("routine_type")?.as_str() {
                            "FUNCTION" => RoutineKind::Function,
                            _ => RoutineKind::Procedure,
                        };
                        let n = r.try_get::<i64, _>("n_params")? as usize;
                        let refusal = if r.try_get::<i64, _>("n_out")? > 0 {
                            Some("it has OUT or INOUT parameters, which a call here cannot return; wrap it in a procedure that SELECTs them".to_string())
                        } else if r.try_get::<String, _>("data_access")? == "MODIFIES SQL DATA" {
                            Some("it is declared MODIFIES SQL DATA, and practice databases are read-only here".to_string())
                        } else {
                            None
                        };
                        Ok(Routine {
                            schema: r.try_get("routine_schema")?,
                            name: r.try_get("routine_name")?,
                            kind,
                            min_args: n,
                            max_args: n,
                            arg_types: Vec::new(),
                            refusal,
                        })
                    })
                    .filter(|r: &Result<Routine, sqlx::Error>| {
                        // The catalog compares names case- and accent-insensitively; we want the ASCII name given.
                        r.as_ref()
                            .map_or(true, |r| r.name.eq_ignore_ascii_case(&name.name))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(|e| SourceError::Decode(format!("reading the routine catalog: {e}")))
            }
            Pool::Postgres(pool) => {
                // pg_proc rather than information_schema.routines: it alone tells overloads,
                // parameter defaults, procedures from functions and extension members apart.
                let rows = sqlx::query(
                    "SELECT n.nspname::text AS routine_schema, p.proname::text AS routine_name, p.prokind::text AS kind, \
                     format_type(p.prorettype, NULL) AS returns, p.pronargs::int8 AS n_args, p.pronargdefaults::int8 AS n_defaults, \
                     ARRAY(SELECT format_type(a.t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY AS a(t, i) ORDER BY a.i) AS arg_types, \
                     EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') AS from_extension \
                     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                     WHERE n.nspname = COALESCE($1, current_schema()) AND (p.proname = $2 OR p.proname = lower($2)) \
                     ORDER BY p.oid",
                )
                .bind(name.schema.clone())
                .bind(name.name.clone())
                .fetch_all(pool)
                .await
                .map_err(SourceError::from_sqlx)?;
                let routines = rows
                    .iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind")?;
                        let returns: String = r.try_get("returns")?;
                        let n_args = r.try_get::<i64, _>("n_args")? as usize;
                        let n_defaults = r.try_get::<i64, _>("n_defaults")? as usize;
                        let refusal = if r.try_get::<bool, _>("from_extension")? {
                            Some("it belongs to an extension".to_string())
                        } else {
                            match (kind.as_str(), returns.as_str()) {
                                ("a" | "w", _) => {
                                    Some("it is an aggregate or window function".to_string())
                                }
                                ("f", "void" | "trigger" | "event_trigger") => {
                                    Some(format!("it is a function returning {returns}, not rows"))
                                }
                                _ => None,
                            }
                        };
                        Ok(Routine {
                            schema: r.try_get("routine_schema")?,
                            name: r.try_get("routine_name")?,
                            kind: if kind == "p" {
                                RoutineKind::Procedure
                            } else {
                                RoutineKind::Function
                            },
                            min_args: n_args.saturating_sub(n_defaults),
                            max_args: n_args,
                            arg_types: r.try_get("arg_types")?,
                            refusal,
                        })
                    })
                    .collect::<Result<Vec<Routine>, sqlx::Error>>()
                    .map_err(|e| {
                        SourceError::Decode(format!("reading the routine catalog: {e}"))
                    })?;
                // An exact-case match wins over the folded one (`p` vs `"P"`).
                let exact: Vec<Routine> = routines
                    .iter()
                    .filter(|r| r.name == name.name)
                    .cloned()
                    .collect();
                Ok(if exact.is_empty() { routines } else { exact })
            }
        }
    }
}
