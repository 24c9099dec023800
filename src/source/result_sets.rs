//! A routine's output as it streams: the driver's rows, with a query result ending each
//! result set, become [`CallItem`]s — a result set's columns, then its rows in batches.

use futures::{Stream, TryStreamExt};
use sqlx::{Column as _, Either, TypeInfo as _};
use tokio::sync::mpsc;

use super::{SourceError, BATCH_ROWS};
use crate::dialect::Dialect;
use crate::value::{ColumnSpec, ColumnType, Row};

/// What a call streams: a result set's columns, then its rows, for each result set.
#[derive(Debug, Clone, PartialEq)]
pub enum CallItem {
    /// Result set `index` (0-based) begins; an empty result set announces nothing.
    ResultSet {
        index: usize,
        columns: Vec<ColumnSpec>,
    },
    Rows(Vec<Row>),
}

/// The output type of a result column, from the driver's type name.
pub(super) fn result_type(dialect: Dialect, type_name: &str) -> ColumnType {
    match type_name {
        "BOOLEAN" | "BOOL" => ColumnType::Boolean,
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "INT2" | "INT4" | "INT8" => {
            ColumnType::Integer
        }
        n if n.ends_with("INT UNSIGNED") => ColumnType::Integer,
        "DECIMAL" | "NUMERIC" => ColumnType::Decimal,
        "DATE" => ColumnType::Date,
        "DATETIME" => ColumnType::Datetime,
        "TIMESTAMP" if dialect == Dialect::Mysql => ColumnType::Timestamp,
        "TIMESTAMP" => ColumnType::Datetime,
        "TIMESTAMPTZ" => ColumnType::Timestamp,
        _ => ColumnType::String,
    }
}

/// Sends the driver's stream as [`CallItem`]s; returns false when the receiver went away
/// before the end. A result set's columns are announced once its first batch is in: the
/// driver does not say a decimal's scale, so it is read from those values.
pub(super) async fn assemble<R, Q>(
    mut rows: impl Stream<Item = Result<Either<Q, R>, sqlx::Error>> + Unpin,
    dialect: Dialect,
    scale_of: impl Fn(&R, usize) -> Option<u32>,
    decode: fn(&R, &[ColumnSpec]) -> anyhow::Result<Row>,
    tx: &mpsc::Sender<Result<CallItem, SourceError>>,
) -> Result<bool, SourceError>
where
    R: sqlx::Row,
{
    let mut set = ResultSet::new(0);
    while let Some(item) = rows.try_next().await.map_err(SourceError::from_sqlx)? {
        let more = match item {
            Either::Right(row) => set.push(row, dialect, &scale_of, decode, tx).await?,
            Either::Left(_) => {
                let next = ResultSet::new(set.index + 1);
                std::mem::replace(&mut set, next)
                    .finish(dialect, &scale_of, decode, tx)
                    .await?
            }
        };
        if !more {
            return Ok(false);
        }
    }
    set.finish(dialect, &scale_of, decode, tx).await
}

/// One result set on its way out: raw rows until the columns are known, then batches.
struct ResultSet<R> {
    index: usize,
    pending: Vec<R>,
    columns: Option<Vec<ColumnSpec>>,
    batch: Vec<Row>,
}

impl<R: sqlx::Row> ResultSet<R> {
    fn new(index: usize) -> Self {
        ResultSet {
            index,
            pending: Vec::new(),
            columns: None,
            batch: Vec::new(),
        }
    }

    /// Returns false when the receiver is gone.
    async fn push(
        &mut self,
        row: R,
        dialect: Dialect,
        scale_of: &impl Fn(&R, usize) -> Option<u32>,
        decode: fn(&R, &[ColumnSpec]) -> anyhow::Result<Row>,
        tx: &mpsc::Sender<Result<CallItem, SourceError>>,
    ) -> Result<bool, SourceError> {
        let Some(columns) = &self.columns else {
            self.pending.push(row);
            if self.pending.len() < BATCH_ROWS {
                return Ok(true);
            }
            return self.announce(dialect, scale_of, decode, tx).await;
        };
        self.batch.push(decode_row(decode, &row, columns)?);
        if self.batch.len() < BATCH_ROWS {
            return Ok(true);
        }
        let batch = std::mem::take(&mut self.batch);
        Ok(tx.send(Ok(CallItem::Rows(batch))).await.is_ok())
    }

    /// Sends the columns and the rows held back until now.
    async fn announce(
        &mut self,
        dialect: Dialect,
        scale_of: &impl Fn(&R, usize) -> Option<u32>,
        decode: fn(&R, &[ColumnSpec]) -> anyhow::Result<Row>,
        tx: &mpsc::Sender<Result<CallItem, SourceError>>,
    ) -> Result<bool, SourceError> {
        let Some(first) = self.pending.first() else {
            return Ok(true);
        };
        let columns: Vec<ColumnSpec> = first
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ty = result_type(dialect, c.type_info().name());
                let scale = match ty {
                    ColumnType::Decimal => self
                        .pending
                        .iter()
                        .filter_map(|r| scale_of(r, i))
                        .max()
                        .unwrap_or(0),
                    _ => 0,
                };
                ColumnSpec {
                    name: c.name().to_string(),
                    ty,
                    nullable: true,
                    scale,
                }
            })
            .collect();
        let rows = std::mem::take(&mut self.pending)
            .iter()
            .map(|r| decode_row(decode, r, &columns))
            .collect::<Result<Vec<Row>, SourceError>>()?;
        let announced = CallItem::ResultSet {
            index: self.index,
            columns: columns.clone(),
        };
        self.columns = Some(columns);
        Ok(tx.send(Ok(announced)).await.is_ok() && tx.send(Ok(CallItem::Rows(rows))).await.is_ok())
    }

    /// Sends what is left of the set; returns false when the receiver is gone.
    async fn finish(
        mut self,
        dialect: Dialect,
        scale_of: &impl Fn(&R, usize) -> Option<u32>,
        decode: fn(&R, &[ColumnSpec]) -> anyhow::Result<Row>,
        tx: &mpsc::Sender<Result<CallItem, SourceError>>,
    ) -> Result<bool, SourceError> {
        if self.columns.is_none() {
            return self.announce(dialect, scale_of, decode, tx).await;
        }
        if self.batch.is_empty() {
            return Ok(true);
        }
        Ok(tx.send(Ok(CallItem::Rows(self.batch))).await.is_ok())
    }
}

fn decode_row<R>(
    decode: fn(&R, &[ColumnSpec]) -> anyhow::Result<Row>,
    row: &R,
    columns: &[ColumnSpec],
) -> Result<Row, SourceError> {
    decode(row, columns).map_err(|e| SourceError::Decode(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_types_follow_the_driver() {
        assert_eq!(
            result_type(Dialect::Mysql, "TIMESTAMP"),
            ColumnType::Timestamp
        );
        assert_eq!(
            result_type(Dialect::Postgres, "TIMESTAMP"),
            ColumnType::Datetime
        );
        assert_eq!(
            result_type(Dialect::Mysql, "BIGINT UNSIGNED"),
            ColumnType::Integer
        );
        assert_eq!(
            result_type(Dialect::Postgres, "NUMERIC"),
            ColumnType::Decimal
        );
        assert_eq!(result_type(Dialect::Mysql, "VARCHAR"), ColumnType::String);
    }
}
