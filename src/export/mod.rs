//! Output formats, compression and the streaming pipeline.
//!
//! An export is `rows ─▶ format encoder (ndjson, json, csv, parquet) ─▶ compressor
//! (none, gzip, zip) ─▶ sink`. `RowEncoder` is that chain for any `Write` sink;
//! `spawn_pipeline` runs it on a blocking thread between bounded channels and yields
//! `Bytes` chunks for an HTTP body or an object-store upload.

mod chunk;
mod compress;
mod csv;
mod encoder;
mod format;
mod json;
mod parquet;
mod pipeline;
mod text;
mod zip_stream;

#[cfg(test)]
mod tests;

pub use chunk::{ChunkSender, CHUNK_SIZE};
pub use compress::DEFAULT_COMPRESSION_LEVEL;
pub use encoder::{encode_to_vec, ExportSpec, RowEncoder};
pub use format::{content_type, file_name, Compression, OutputFormat, UnknownValue};
pub use pipeline::{spawn_pipeline, ExportError, Progress, OUTPUT_CHANNEL_CHUNKS};

use std::io;

use crate::value::Row;

/// Rejects a row whose width differs from the column list, which would misalign output.
fn check_row_width(row: &Row, columns: usize) -> io::Result<()> {
    if row.len() == columns {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a row has {} values for {columns} columns", row.len()),
        ))
    }
}
