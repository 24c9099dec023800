//! Parquet through arrow's `ArrowWriter`: typed columns, snappy inside the file, row
//! groups of at most 64k rows so the writer's buffered row group stays bounded.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::Datelike;
use rust_decimal::Decimal;

use ::parquet::arrow::ArrowWriter;
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;

use crate::value::{ColumnSpec, ColumnType, Row, Value};

/// Decimal precision of money columns (Decimal128(18, scale), stored as INT64).
const DECIMAL_PRECISION: u8 = 18;
/// Rows gathered in the column builders before they become one record batch.
const BATCH_ROWS: usize = 8192;
/// Upper bound of a row group; the writer holds one encoded row group in memory.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub(crate) struct ParquetEncoder<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    columns: Vec<ColumnSpec>,
    builders: Vec<ColumnBuilder>,
    pending: usize,
}

/// The arrow schema of `columns`.
pub(crate) fn arrow_schema_for(columns: &[ColumnSpec]) -> io::Result<Schema> {
    let fields = columns
        .iter()
        .map(|column| {
            let ty = match column.ty {
                ColumnType::Integer => DataType::Int64,
                ColumnType::Decimal => {
                    let scale = i8::try_from(column.scale)
                        .ok()
                        .filter(|s| *s as u8 <= DECIMAL_PRECISION)
                        .ok_or_else(|| {
                            invalid_input(format!(
                                "column {}: decimal scale {} exceeds precision {DECIMAL_PRECISION}",
                                column.name, column.scale
                            ))
                        })?;
                    DataType::Decimal128(DECIMAL_PRECISION, scale)
                }
                ColumnType::String => DataType::Utf8,
                ColumnType::Boolean => DataType::Boolean,
                ColumnType::Date => DataType::Date32,
                ColumnType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
                ColumnType::Timestamp => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
            };
            Ok(Field::new(&column.name, ty, column.nullable))
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(Schema::new(fields))
}

impl<W: Write + Send> ParquetEncoder<W> {
    pub(crate) fn new(out: W, columns: &[ColumnSpec]) -> io::Result<Self> {
        let schema = Arc::new(arrow_schema_for(columns)?);
        let props = WriterProperties::builder()
            .set_compression(::parquet::basic::Compression::SNAPPY)
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .build();
        let writer =
            ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(parquet_error)?;
        let builders = columns
            .iter()
            .map(ColumnBuilder::new)
            .collect::<io::Result<_>>()?;
        Ok(ParquetEncoder {
            writer,
            schema,
            columns: columns.to_vec(),
            builders,
            pending: 0,
        })
    }

    pub(crate) fn write_batch(&mut self, rows: &[Row]) -> io::Result<()> {
        for row in rows {
            super::check_row_width(row, self.columns.len())?;
            for ((builder, column), value) in self.builders.iter_mut().zip(&self.columns).zip(row) {
                builder.append(column, value)?;
            }
            self.pending += 1;
            if self.pending >= BATCH_ROWS {
                self.flush_batch()?;
            }
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> io::Result<()> {
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        self.pending = 0;
        self.writer.write(&batch).map_err(parquet_error)
    }

    /// Writes the last row group and the footer, and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.pending > 0 {
            self.flush_batch()?;
        }
        self.writer.into_inner().map_err(parquet_error)
    }
}

enum ColumnBuilder {
    Integer(Int64Builder),
    Decimal(Decimal128Builder),
    String(StringBuilder),
    Boolean(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    fn new(column: &ColumnSpec) -> io::Result<Self> {
        Ok(match column.ty {
            ColumnType::Integer => ColumnBuilder::Integer(Int64Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Decimal => ColumnBuilder::Decimal(
                Decimal128Builder::with_capacity(BATCH_ROWS)
                    .with_precision_and_scale(DECIMAL_PRECISION, column.scale as i8)
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
            ),
            ColumnType::String => {
                ColumnBuilder::String(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16))
            }
            ColumnType::Boolean => {
                ColumnBuilder::Boolean(BooleanBuilder::with_capacity(BATCH_ROWS))
            }
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Datetime => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS))
            }
            ColumnType::Timestamp => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            ),
        })
    }

    fn append(&mut self, column: &ColumnSpec, value: &Value) -> io::Result<()> {
        match (self, value) {
            (builder, Value::Null) => {
                if !column.nullable {
                    return Err(invalid_data(format!(
                        "column {} is not nullable but a row has NULL",
                        column.name
                    )));
                }
                builder.append_null();
            }
            (ColumnBuilder::Integer(b), Value::Int(v)) => b.append_value(*v),
            (ColumnBuilder::Decimal(b), Value::Decimal(d)) => {
                b.append_value(decimal_mantissa(d, column)?)
            }
            (ColumnBuilder::String(b), Value::Text(s)) => b.append_value(s),
            (ColumnBuilder::Boolean(b), Value::Bool(v)) => b.append_value(*v),
            (ColumnBuilder::Date(b), Value::Date(d)) => {
                b.append_value(d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
            }
            (ColumnBuilder::Timestamp(b), Value::DateTime(dt)) => {
                b.append_value(dt.and_utc().timestamp_micros())
            }
            (_, value) => {
                return Err(invalid_data(format!(
                    "column {} of type {} got the value {value:?}",
                    column.name,
                    column.ty.as_str()
                )))
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Integer(b) => b.append_null(),
            ColumnBuilder::Decimal(b) => b.append_null(),
            ColumnBuilder::String(b) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Integer(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b) => Arc::new(b.finish()),
            ColumnBuilder::String(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// The unscaled value of `d` at the column's scale; an error rather than rounding money.
fn decimal_mantissa(d: &Decimal, column: &ColumnSpec) -> io::Result<i128> {
    let mut exact = *d;
    if exact.scale() != column.scale && exact.round_dp(column.scale) == *d {
        exact.rescale(column.scale);
    }
    let mantissa = exact.mantissa();
    if exact.scale() != column.scale || mantissa.unsigned_abs() >= 10u128.pow(18) {
        return Err(invalid_data(format!(
            "column {}: {d} does not fit decimal({DECIMAL_PRECISION}, {})",
            column.name, column.scale
        )));
    }
    Ok(mantissa)
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Parquet's error as an `io::Error`, unwrapping a sink failure so its kind survives.
fn parquet_error(err: ParquetError) -> io::Error {
    match err {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::other(other),
        },
        other => io::Error::other(other),
    }
}
