//! The file a call answers with. CSV and Parquet hold one table, so they carry result
//! set 0 through the standard export pipeline. NDJSON and JSON carry every result set:
//! each row is encoded by the standard NDJSON encoder with a leading `result_set`
//! column, and the lines are framed (and gzipped) here, because the pipeline's
//! encoders take one column list for the whole file.

use std::io::{self, Write};

use axum::body::Body;
use bytes::Bytes;
use flate2::write::GzEncoder;
use tokio::sync::mpsc::{self, Receiver};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::export::{
    self, ChunkSender, Compression, ExportError, ExportSpec, OutputFormat, Progress,
    DEFAULT_COMPRESSION_LEVEL, OUTPUT_CHANNEL_CHUNKS,
};
use crate::source::{CallItem, SourceError};
use crate::value::{ColumnSpec, ColumnType, Value};

type Items = Receiver<Result<CallItem, SourceError>>;

/// The response body for what the routine returns; `first` is the item already received.
pub fn body(
    format: OutputFormat,
    compression: Compression,
    first: Option<CallItem>,
    items: Items,
    cancel: CancellationToken,
    entry_name: String,
) -> Body {
    let chunks = match format {
        OutputFormat::Csv | OutputFormat::Parquet => {
            first_result_set(format, compression, first, items, cancel, entry_name)
        }
        OutputFormat::Ndjson | OutputFormat::Json => all_result_sets(
            format == OutputFormat::Json,
            compression,
            first,
            items,
            cancel,
        ),
    };
    Body::from_stream(ReceiverStream::new(chunks))
}

/// Result set 0 through the export pipeline; later result sets end the file (dropping
/// the receiver stops the routine's stream).
fn first_result_set(
    format: OutputFormat,
    compression: Compression,
    first: Option<CallItem>,
    mut items: Items,
    cancel: CancellationToken,
    entry_name: String,
) -> Receiver<io::Result<Bytes>> {
    let columns = match &first {
        Some(CallItem::ResultSet { index: 0, columns }) => columns.clone(),
        _ => Vec::new(),
    };
    let (rows_tx, rows_rx) = mpsc::channel(4);
    if !columns.is_empty() {
        tokio::spawn(async move {
            while let Some(item) = items.recv().await {
                let sent = match item {
                    Ok(CallItem::Rows(rows)) => rows_tx.send(Ok(rows)).await,
                    Ok(CallItem::ResultSet { .. }) => return,
                    Err(error) => rows_tx.send(Err(anyhow::Error::new(error))).await,
                };
                if sent.is_err() {
                    return;
                }
            }
        });
    }
    let spec = ExportSpec {
        format,
        compression,
        columns,
        entry_name,
    };
    export::spawn_pipeline(spec, rows_rx, std::sync::Arc::new(Progress::new()), cancel)
}

/// Every result set as NDJSON lines or one JSON array, on a blocking thread.
fn all_result_sets(
    array: bool,
    compression: Compression,
    first: Option<CallItem>,
    mut items: Items,
    cancel: CancellationToken,
) -> Receiver<io::Result<Bytes>> {
    // One slot beyond the data chunks is kept for the final error, as in the pipeline.
    let (tx, rx) = mpsc::channel(OUTPUT_CHANNEL_CHUNKS + 1);
    let Ok(error_slot) = tx.clone().try_reserve_owned() else {
        unreachable!("a new channel has room");
    };
    tokio::task::spawn_blocking(move || {
        let sink = ChunkSender::new(tx).with_cancel(cancel.clone());
        let result = match compression {
            Compression::Gzip => {
                let gzip =
                    GzEncoder::new(sink, flate2::Compression::new(DEFAULT_COMPRESSION_LEVEL));
                write_sets(gzip, array, first, &mut items, &cancel)
                    .and_then(|gzip| gzip.finish())
                    .and_then(|mut sink| sink.flush())
            }
            // zip is refused for these formats when the request is checked.
            Compression::None | Compression::Zip => {
                write_sets(sink, array, first, &mut items, &cancel).and_then(|mut s| s.flush())
            }
        };
        drop(items);
        if let Err(error) = result {
            error_slot.send(Err(error));
        }
    });
    rx
}

/// Writes every row with its result set index; returns the writer for its trailer.
fn write_sets<W: Write>(
    mut out: W,
    array: bool,
    first: Option<CallItem>,
    items: &mut Items,
    cancel: &CancellationToken,
) -> io::Result<W> {
    if array {
        out.write_all(b"[")?;
    }
    let mut empty = true;
    let mut spec: Option<ExportSpec> = None;
    let mut index = 0;
    let mut next = first.map(Ok);
    loop {
        let item = match next.take() {
            Some(item) => item,
            None => match receive(items, cancel)? {
                Some(item) => item,
                None => break,
            },
        };
        match item.map_err(|e| io::Error::other(ExportError::Source(Box::new(e))))? {
            CallItem::ResultSet {
                index: set,
                columns,
            } => {
                index = set;
                spec = Some(line_spec(columns));
            }
            CallItem::Rows(rows) => {
                let Some(spec) = &spec else {
                    return Err(io::Error::other("rows arrived before their columns"));
                };
                let rows: Vec<Vec<Value>> = rows
                    .into_iter()
                    .map(|mut row| {
                        row.insert(0, Value::Int(index as i64));
                        row
                    })
                    .collect();
                let lines = export::encode_to_vec(spec, &rows)?;
                if !array {
                    out.write_all(&lines)?;
                    continue;
                }
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    out.write_all(if empty { b"\n" } else { b",\n" })?;
                    out.write_all(line)?;
                    empty = false;
                }
            }
        }
    }
    if cancel.is_cancelled() {
        return Err(io::Error::other(ExportError::Cancelled));
    }
    if array {
        out.write_all(if empty { b"]\n" } else { b"\n]\n" })?;
    }
    Ok(out)
}

/// The next item, or `None` at the end; cancellation is an error, never a clean end.
fn receive(
    items: &mut Items,
    cancel: &CancellationToken,
) -> io::Result<Option<Result<CallItem, SourceError>>> {
    futures::executor::block_on(async {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(io::Error::other(ExportError::Cancelled)),
            item = items.recv() => Ok(item),
        }
    })
}

/// NDJSON lines of one result set: `result_set` first, then the set's columns.
fn line_spec(columns: Vec<ColumnSpec>) -> ExportSpec {
    let mut all = Vec::with_capacity(columns.len() + 1);
    all.push(ColumnSpec {
        name: "result_set".into(),
        ty: ColumnType::Integer,
        nullable: false,
        scale: 0,
    });
    all.extend(columns);
    ExportSpec {
        format: OutputFormat::Ndjson,
        compression: Compression::None,
        columns: all,
        entry_name: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(mut rx: Receiver<io::Result<Bytes>>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn spec(name: &str) -> Vec<ColumnSpec> {
        vec![ColumnSpec {
            name: name.into(),
            ty: ColumnType::Integer,
            nullable: true,
            scale: 0,
        }]
    }

    async fn run(array: bool, items: Vec<Result<CallItem, SourceError>>) -> io::Result<Vec<u8>> {
        let (tx, rx) = mpsc::channel(16);
        for item in items {
            tx.send(item).await.unwrap();
        }
        drop(tx);
        let out = all_result_sets(array, Compression::None, None, rx, CancellationToken::new());
        collect(out).await
    }

    #[tokio::test]
    async fn frames_every_result_set() {
        let items = || {
            vec![
                Ok(CallItem::ResultSet {
                    index: 0,
                    columns: spec("a"),
                }),
                Ok(CallItem::Rows(vec![
                    vec![Value::Int(1)],
                    vec![Value::Int(2)],
                ])),
                Ok(CallItem::ResultSet {
                    index: 2,
                    columns: spec("b"),
                }),
                Ok(CallItem::Rows(vec![vec![Value::Null]])),
            ]
        };
        let ndjson = run(false, items()).await.unwrap();
        assert_eq!(
            String::from_utf8(ndjson).unwrap(),
            "{\"result_set\":0,\"a\":1}\n{\"result_set\":0,\"a\":2}\n{\"result_set\":2,\"b\":null}\n"
        );
        let json = run(true, items()).await.unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 3);
        assert_eq!(run(true, vec![]).await.unwrap(), b"[]\n");
    }

    #[tokio::test]
    async fn no_result_set_gives_an_empty_but_valid_file() {
        for format in [OutputFormat::Csv, OutputFormat::Parquet] {
            let (tx, rx) = mpsc::channel(1);
            drop(tx);
            let out = first_result_set(
                format,
                Compression::None,
                None,
                rx,
                CancellationToken::new(),
                "x".into(),
            );
            let body = collect(out).await.unwrap();
            match format {
                OutputFormat::Parquet => {
                    assert!(body.starts_with(b"PAR1") && body.ends_with(b"PAR1"))
                }
                _ => assert!(body.len() <= 4, "{body:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_source_error_ends_the_stream_with_an_error() {
        let items = vec![
            Ok(CallItem::ResultSet {
                index: 0,
                columns: spec("a"),
            }),
            Ok(CallItem::Rows(vec![vec![Value::Int(1)]])),
            Err(SourceError::ReadOnly("no".into())),
        ];
        assert!(run(true, items).await.is_err());
    }
}
