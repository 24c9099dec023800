//! `RowEncoder`: format encoder → compressor → sink, for one output file.

use std::io::{self, Write};

use crate::value::{ColumnSpec, Row};

use super::compress::{Compressor, DEFAULT_COMPRESSION_LEVEL};
use super::csv::CsvEncoder;
use super::format::{Compression, OutputFormat};
use super::json::JsonEncoder;
use super::parquet::ParquetEncoder;

/// What to produce: the format, its compression and the columns of every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    pub format: OutputFormat,
    pub compression: Compression,
    pub columns: Vec<ColumnSpec>,
    /// File name of the single entry inside a zip archive (unused otherwise).
    pub entry_name: String,
}

/// Encodes batches of rows into a sink as one file of the spec's format and compression.
pub struct RowEncoder {
    inner: Encoder<Box<dyn Write + Send>>,
}

impl RowEncoder {
    /// Starts the file: headers (CSV header row, `[`, zip local header) may be written now.
    pub fn new(spec: &ExportSpec, sink: Box<dyn Write + Send>) -> io::Result<Self> {
        Ok(RowEncoder {
            inner: Encoder::new(spec, sink)?,
        })
    }

    /// Encodes rows; each must have one value per column, in column order.
    pub fn write_batch(&mut self, rows: &[Row]) -> io::Result<()> {
        self.inner.write_batch(rows)
    }

    /// Writes the trailers (`]`, Parquet footer, gzip trailer, zip directory) and flushes.
    pub fn finish(self) -> io::Result<()> {
        self.inner.finish()?.flush()
    }
}

/// Encodes `rows` into one complete file in memory.
pub fn encode_to_vec(spec: &ExportSpec, rows: &[Row]) -> io::Result<Vec<u8>> {
    let mut encoder = Encoder::new(spec, Vec::new())?;
    encoder.write_batch(rows)?;
    encoder.finish()
}

/// The encoder over any sink; `RowEncoder` fixes the sink to a boxed writer.
pub(crate) enum Encoder<W: Write + Send> {
    Json(JsonEncoder<Compressor<W>>),
    Csv(CsvEncoder<Compressor<W>>),
    Parquet(ParquetEncoder<Compressor<W>>),
}

impl<W: Write + Send> Encoder<W> {
    pub(crate) fn new(spec: &ExportSpec, sink: W) -> io::Result<Self> {
        let modified = chrono::Local::now().naive_local();
        let out = Compressor::new(
            sink,
            spec.compression,
            DEFAULT_COMPRESSION_LEVEL,
            &spec.entry_name,
            modified,
        )?;
        Ok(match spec.format {
            OutputFormat::Ndjson => Encoder::Json(JsonEncoder::new(out, &spec.columns, false)),
            OutputFormat::Json => Encoder::Json(JsonEncoder::new(out, &spec.columns, true)),
            OutputFormat::Csv => Encoder::Csv(CsvEncoder::new(out, &spec.columns)?),
            OutputFormat::Parquet => Encoder::Parquet(ParquetEncoder::new(out, &spec.columns)?),
        })
    }

    pub(crate) fn write_batch(&mut self, rows: &[Row]) -> io::Result<()> {
        match self {
            Encoder::Json(e) => e.write_batch(rows),
            Encoder::Csv(e) => e.write_batch(rows),
            Encoder::Parquet(e) => e.write_batch(rows),
        }
    }

    /// Writes the format's and the compressor's trailers and returns the sink.
    pub(crate) fn finish(self) -> io::Result<W> {
        let compressor = match self {
            Encoder::Json(e) => e.finish()?,
            Encoder::Csv(e) => e.finish()?,
            Encoder::Parquet(e) => e.finish()?,
        };
        compressor.finish()
    }
}
