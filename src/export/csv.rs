//! RFC 4180 CSV: a header row of column names, CRLF line ends, quotes only where needed,
//! NULL as an empty field, values in the same text forms as JSON.

use std::io::{self, Write};

use crate::value::{ColumnSpec, ColumnType, Row, Value};

use super::text::{format_date, format_datetime, format_decimal};

pub(crate) struct CsvEncoder<W: Write> {
    writer: ::csv::Writer<NoFlush<W>>,
    types: Vec<ColumnType>,
}

impl<W: Write> CsvEncoder<W> {
    /// Writes the header row.
    pub(crate) fn new(out: W, columns: &[ColumnSpec]) -> io::Result<Self> {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .buffer_capacity(64 * 1024)
            .from_writer(NoFlush(out));
        writer
            .write_record(columns.iter().map(|c| c.name.as_bytes()))
            .map_err(csv_error)?;
        Ok(CsvEncoder {
            writer,
            types: columns.iter().map(|c| c.ty).collect(),
        })
    }

    pub(crate) fn write_batch(&mut self, rows: &[Row]) -> io::Result<()> {
        for row in rows {
            super::check_row_width(row, self.types.len())?;
            for (&ty, value) in self.types.iter().zip(row) {
                write_value(&mut self.writer, ty, value).map_err(csv_error)?;
            }
            self.writer.write_record(None::<&[u8]>).map_err(csv_error)?;
        }
        Ok(())
    }

    /// Writes what is buffered and returns the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.writer
            .into_inner()
            .map(|out| out.0)
            .map_err(|err| err.into_error())
    }
}

/// Keeps the csv writer's flush (on `into_inner`) from reaching the compressor, where a
/// gzip sync flush would add bytes and the chunk sender would send a short chunk.
struct NoFlush<W>(W);

impl<W: Write> Write for NoFlush<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one field in the same text forms as JSON, without quotes unless needed.
fn write_value<W: Write>(
    w: &mut ::csv::Writer<W>,
    ty: ColumnType,
    value: &Value,
) -> ::csv::Result<()> {
    match value {
        Value::Null => w.write_field(b""),
        Value::Bool(true) => w.write_field(b"true"),
        Value::Bool(false) => w.write_field(b"false"),
        Value::Int(i) => w.write_field(itoa::Buffer::new().format(*i)),
        Value::Decimal(d) => w.write_field(format_decimal(d).as_bytes()),
        Value::Text(s) => w.write_field(s),
        Value::Date(d) => w.write_field(format_date(*d).as_bytes()),
        Value::DateTime(dt) => {
            w.write_field(format_datetime(*dt, ty == ColumnType::Timestamp).as_bytes())
        }
    }
}

/// The csv crate's error as an `io::Error`, keeping the kind of an underlying I/O failure.
fn csv_error(err: ::csv::Error) -> io::Error {
    match err.into_kind() {
        ::csv::ErrorKind::Io(err) => err,
        other => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("encoding CSV failed: {other:?}"),
        ),
    }
}
