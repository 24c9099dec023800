//! Running a stored routine on a connection of its own, inside a read-only transaction
//! that is rolled back, streaming every result set it returns.
//!
//! Read-only is layered: the session is read-only, the call runs in `START TRANSACTION
//! READ ONLY` / `BEGIN READ ONLY`, the transaction is rolled back and the connection is
//! closed afterwards (so nothing a routine changes in its session outlives the call).
//! MariaDB lets a procedure end our transaction and switch its session back to READ
//! WRITE on purpose; only the source user's privileges stop that, so give CipherStream
//! a user without write grants.

use rust_decimal::Decimal;
use sqlx::{Column as _, Executor as _, Row as _, TypeInfo as _};
use tokio::sync::mpsc;

use super::result_sets::{assemble, CallItem};
use super::routines::{Routine, RoutineKind};
use super::{decode, Pool, Source, SourceError};
use crate::catalog::CallArg;

impl Source {
    /// Runs `routine` with `args` (their count already checked) and sends what it returns.
    /// Stops quietly when the receiver goes away; a failure is sent as the last item and returned.
    pub async fn call(
        &self,
        routine: &Routine,
        args: &[CallArg],
        tx: &mpsc::Sender<Result<CallItem, SourceError>>,
    ) -> Result<(), SourceError> {
        let result = self.run_call(routine, args, tx).await;
        if let Err(error) = &result {
            let _ = tx.send(Err(error.clone())).await;
        }
        result
    }

    async fn run_call(
        &self,
        routine: &Routine,
        args: &[CallArg],
        tx: &mpsc::Sender<Result<CallItem, SourceError>>,
    ) -> Result<(), SourceError> {
        let dialect = self.dialect;
        let q = |name: &str| dialect.quote_ident(name);
        let target = format!("{}.{}", q(&routine.schema), q(&routine.name));
        match &self.pool {
            Pool::Sqlite(_) => Err(SourceError::Query(
                "SQLite has no stored routines".to_string(),
            )),
            Pool::Mysql(pool) => {
                let marks = vec!["?"; args.len()].join(", ");
                let sql = match routine.kind {
                    RoutineKind::Procedure => format!("CALL {target}({marks})"),
                    RoutineKind::Function => {
                        format!("SELECT {target}({marks}) AS {}", q(&routine.name))
                    }
                };
                // A connection of its own, closed afterwards: whatever the routine did to
                // its session (it may SET things) must not reach the next pool user.
                let mut conn = pool
                    .acquire()
                    .await
                    .map_err(SourceError::from_sqlx)?
                    .detach();
                // MariaDB's max_statement_time does not stop a procedure: if the call is
                // abandoned (deadline, client gone), its query is killed from another connection.
                let thread: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(SourceError::from_sqlx)?;
                let killer = pool.clone();
                let mut guard = CancelOnDrop::new(async move {
                    let _ = sqlx::query(&format!("KILL QUERY {thread}"))
                        .execute(&killer)
                        .await;
                });
                sqlx::query("START TRANSACTION READ ONLY")
                    .execute(&mut conn)
                    .await
                    .map_err(SourceError::from_sqlx)?;
                let query = args.iter().fold(sqlx::query(&sql), |query, arg| match arg {
                    CallArg::Null => query.bind(None::<String>),
                    CallArg::Bool(b) => query.bind(*b),
                    CallArg::Int(i) => query.bind(*i),
                    CallArg::Decimal(d) => query.bind(*d),
                    CallArg::Text(s) => query.bind(s.clone()),
                });
                let finished = assemble(
                    (&mut conn).fetch_many(query),
                    dialect,
                    |row: &sqlx::mysql::MySqlRow, i| {
                        decimal_scale(row.try_get::<Option<Decimal>, _>(i))
                    },
                    decode::mysql_row,
                    tx,
                )
                .await;
                if settle(&mut guard, finished)? {
                    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                }
                Ok(())
            }
            Pool::Postgres(pool) => {
                // Arguments travel as text and are cast to each parameter's declared type
                // (the catalog's own rendering of it), so PostgreSQL resolves the routine
                // exactly as declared, whatever JSON type the client used.
                let casts: Vec<String> = args
                    .iter()
                    .enumerate()
                    .map(|(i, _)| {
                        let ty = routine.arg_types.get(i).map_or("text", String::as_str);
                        format!("CAST(${} AS {ty})", i + 1)
                    })
                    .collect();
                let invocation = format!("{target}({})", casts.join(", "));
                let mut conn = pool
                    .acquire()
                    .await
                    .map_err(SourceError::from_sqlx)?
                    .detach();
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(SourceError::from_sqlx)?;
                let canceller = pool.clone();
                let mut guard = CancelOnDrop::new(async move {
                    let _ = sqlx::query("SELECT pg_cancel_backend($1)")
                        .bind(pid)
                        .execute(&canceller)
                        .await;
                });
                sqlx::query("BEGIN READ ONLY")
                    .execute(&mut conn)
                    .await
                    .map_err(SourceError::from_sqlx)?;
                let sql = match routine.kind {
                    RoutineKind::Procedure => format!("CALL {invocation}"),
                    RoutineKind::Function => {
                        let inner = format!("SELECT * FROM {invocation}");
                        let described = (&mut conn)
                            .describe(&inner)
                            .await
                            .map_err(SourceError::from_sqlx)?;
                        // Types without a typed form here come out as their text.
                        let select: Vec<String> = described
                            .columns()
                            .iter()
                            .map(|c| {
                                let name = q(c.name());
                                if decodable_postgres(c.type_info().name()) {
                                    format!("cs_call.{name}")
                                } else {
                                    format!("CAST(cs_call.{name} AS TEXT) AS {name}")
                                }
                            })
                            .collect();
                        format!("SELECT {} FROM ({inner}) AS cs_call", select.join(", "))
                    }
                };
                let query = args
                    .iter()
                    .fold(sqlx::query(&sql), |query, arg| query.bind(arg.as_text()));
                let finished = assemble(
                    (&mut conn).fetch_many(query),
                    dialect,
                    |row: &sqlx::postgres::PgRow, i| {
                        decimal_scale(row.try_get::<Option<Decimal>, _>(i))
                    },
                    decode::postgres_row,
                    tx,
                )
                .await;
                if settle(&mut guard, finished)? {
                    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                }
                Ok(())
            }
        }
    }
}

/// Whether to roll back: a call that ran to its end (or failed, so the routine has
/// stopped either way) disarms the guard; one whose reader went away is left to the
/// guard, which stops its query when the connection is dropped.
fn settle(
    guard: &mut CancelOnDrop,
    finished: Result<bool, SourceError>,
) -> Result<bool, SourceError> {
    if !matches!(finished, Ok(false)) {
        guard.disarm();
    }
    finished
}

/// Runs a cancellation when dropped while armed: a call dropped at its deadline, or
/// abandoned by its reader, must not keep running on the database.
struct CancelOnDrop(Option<futures::future::BoxFuture<'static, ()>>);

impl CancelOnDrop {
    fn new(cancel: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        CancelOnDrop(Some(Box::pin(cancel)))
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let (Some(cancel), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(cancel);
        }
    }
}

fn decimal_scale(value: Result<Option<Decimal>, sqlx::Error>) -> Option<u32> {
    value.ok().flatten().map(|d| d.scale())
}

/// PostgreSQL types `decode::postgres_row` reads natively.
fn decodable_postgres(type_name: &str) -> bool {
    matches!(
        type_name,
        "INT2"
            | "INT4"
            | "INT8"
            | "NUMERIC"
            | "FLOAT4"
            | "FLOAT8"
            | "BOOL"
            | "DATE"
            | "TIMESTAMP"
            | "TIMESTAMPTZ"
            | "TEXT"
            | "VARCHAR"
            | "BPCHAR"
            | "NAME"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_natively_read_types_skip_the_text_cast() {
        assert!(decodable_postgres("NUMERIC") && decodable_postgres("TIMESTAMPTZ"));
        assert!(!decodable_postgres("UUID") && !decodable_postgres("JSONB"));
    }
}
