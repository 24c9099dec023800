//! NDJSON (one object per line) and JSON (one array of objects) encoders.
//!
//! Rows are written by hand into one reusable buffer: keys are escaped once up front,
//! numbers go through itoa and `Decimal`'s Display, dates through the stack formatters.

use std::io::{self, Write};

use crate::value::{ColumnSpec, ColumnType, Row, Value};

use super::text::{format_date, format_datetime, format_decimal, push_json_string};

/// Bytes gathered before handing them to the compressor.
const FLUSH_AT: usize = 64 * 1024;

pub(crate) struct JsonEncoder<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Per column, `{"name":` for the first and `,"name":` for the others.
    keys: Vec<Vec<u8>>,
    types: Vec<ColumnType>,
    /// JSON array rather than NDJSON.
    array: bool,
    empty: bool,
}

impl<W: Write> JsonEncoder<W> {
    pub(crate) fn new(out: W, columns: &[ColumnSpec], array: bool) -> Self {
        let keys = columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let mut key = vec![if i == 0 { b'{' } else { b',' }];
                push_json_string(&mut key, &column.name);
                key.push(b':');
                key
            })
            .collect();
        let mut buf = Vec::with_capacity(FLUSH_AT + 4096);
        if array {
            buf.push(b'[');
        }
        JsonEncoder {
            out,
            buf,
            keys,
            types: columns.iter().map(|c| c.ty).collect(),
            array,
            empty: true,
        }
    }

    pub(crate) fn write_batch(&mut self, rows: &[Row]) -> io::Result<()> {
        for row in rows {
            super::check_row_width(row, self.types.len())?;
            if self.array {
                self.buf
                    .extend_from_slice(if self.empty { b"\n" } else { b",\n" });
            }
            self.empty = false;
            if row.is_empty() {
                self.buf.push(b'{');
            }
            for ((key, &ty), value) in self.keys.iter().zip(&self.types).zip(row) {
                self.buf.extend_from_slice(key);
                push_value(&mut self.buf, ty, value);
            }
            self.buf.push(b'}');
            if !self.array {
                self.buf.push(b'\n');
            }
            if self.buf.len() >= FLUSH_AT {
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Closes the array (if any), writes what is buffered and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.array {
            self.buf
                .extend_from_slice(if self.empty { b"]\n" } else { b"\n]\n" });
        }
        self.out.write_all(&self.buf)?;
        Ok(self.out)
    }
}

/// Appends one value as JSON: numbers bare, dates and times as ISO 8601 strings.
fn push_value(buf: &mut Vec<u8>, ty: ColumnType, value: &Value) {
    match value {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Bool(true) => buf.extend_from_slice(b"true"),
        Value::Bool(false) => buf.extend_from_slice(b"false"),
        Value::Int(i) => buf.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Decimal(d) => buf.extend_from_slice(format_decimal(d).as_bytes()),
        Value::Text(s) => push_json_string(buf, s),
        Value::Date(d) => {
            buf.push(b'"');
            buf.extend_from_slice(format_date(*d).as_bytes());
            buf.push(b'"');
        }
        Value::DateTime(dt) => {
            buf.push(b'"');
            let utc = ty == ColumnType::Timestamp;
            buf.extend_from_slice(format_datetime(*dt, utc).as_bytes());
            buf.push(b'"');
        }
    }
}
