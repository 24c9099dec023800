//! The export pipeline: source batches → `RowEncoder` → `ChunkSender` → byte chunks,
//! on a blocking thread between two bounded channels, so a slow reader slows the source
//! and memory stays flat. One piece of code for the HTTP body and the job upload.

use std::error::Error as StdError;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio_util::sync::CancellationToken;

use crate::value::Row;

use super::chunk::{block_on_cancellable, ChunkSender};
use super::encoder::{ExportSpec, RowEncoder};

/// Output chunks (64 KiB each) the channel holds before the encoder waits for the reader.
pub const OUTPUT_CHANNEL_CHUNKS: usize = 8;

/// Rows encoded and bytes emitted so far, readable while the export runs.
#[derive(Debug, Default)]
pub struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
}

/// An extraction's totals count into the process metrics when it is done with.
impl Drop for Progress {
    fn drop(&mut self) {
        metrics::counter!("cipherstream_extraction_rows_total").increment(self.rows());
        metrics::counter!("cipherstream_extraction_bytes_total").increment(self.bytes());
        metrics::counter!("cipherstream_extractions_total").increment(1);
    }
}

impl Progress {
    /// Zero rows, zero bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows encoded so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Output bytes (after compression) handed to the reader so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn add_rows(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why an export stream ended in an error; carried inside the `io::Error` the stream
/// ends with (`err.get_ref()` and downcast to tell them apart).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the export was cancelled")]
    Cancelled,
    #[error("reading the source rows failed")]
    Source(#[source] Box<dyn StdError + Send + Sync>),
    #[error("the export encoder panicked")]
    Panicked,
}

/// Encodes the batches from `rows` on a blocking thread and returns the file's bytes as
/// a stream of chunks. The stream ends after the complete file, or with one `Err` (a
/// source error, cancellation, an encoding failure) and no trailer, so a reader never
/// mistakes a cut-off export for a complete one. Dropping the receiver stops the
/// pipeline, which then drops `rows`. Must be called within a Tokio runtime.
pub fn spawn_pipeline(
    spec: ExportSpec,
    mut rows: Receiver<anyhow::Result<Vec<Row>>>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Receiver<io::Result<Bytes>> {
    // One slot beyond the data chunks is reserved for the final error, so it is
    // delivered without waiting even when the reader has stalled.
    let (tx, rx) = mpsc::channel(OUTPUT_CHANNEL_CHUNKS + 1);
    let Ok(error_slot) = tx.clone().try_reserve_owned() else {
        unreachable!("a new channel has room");
    };
    tokio::task::spawn_blocking(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            encode_stream(&spec, &mut rows, &progress, &cancel, tx)
        }));
        // Stop the source before the reader learns the outcome.
        drop(rows);
        let err = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err,
            Err(_) => io::Error::other(ExportError::Panicked),
        };
        error_slot.send(Err(err));
    });
    rx
}

fn encode_stream(
    spec: &ExportSpec,
    rows: &mut Receiver<anyhow::Result<Vec<Row>>>,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
    tx: Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    let cancelled = || io::Error::other(ExportError::Cancelled);
    let sink = ChunkSender::new(tx)
        .with_progress(progress.clone())
        .with_cancel(cancel.clone());
    let mut encoder = RowEncoder::new(spec, Box::new(sink))?;
    while let Some(batch) = block_on_cancellable(cancel, rows.recv()).ok_or_else(cancelled)? {
        let batch = batch.map_err(|err| io::Error::other(ExportError::Source(err.into())))?;
        encoder.write_batch(&batch)?;
        progress.add_rows(batch.len() as u64);
    }
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{rows, spec};
    use super::super::{encode_to_vec, Compression, OutputFormat, CHUNK_SIZE};
    use super::*;

    /// Many rows, so the output spans several chunks and a full output channel.
    fn many_rows() -> Vec<Row> {
        rows().into_iter().cycle().take(20_000).collect()
    }

    async fn collect(mut rx: Receiver<io::Result<Bytes>>) -> (Vec<Bytes>, Option<io::Error>) {
        let mut chunks = Vec::new();
        while let Some(item) = rx.recv().await {
            match item {
                Ok(chunk) => chunks.push(chunk),
                Err(err) => {
                    assert!(rx.recv().await.is_none(), "the error ends the stream");
                    return (chunks, Some(err));
                }
            }
        }
        (chunks, None)
    }

    fn export_error(err: &io::Error) -> &ExportError {
        err.get_ref()
            .and_then(|e| e.downcast_ref::<ExportError>())
            .unwrap_or_else(|| panic!("not an ExportError: {err:?}"))
    }

    #[tokio::test]
    async fn delivers_the_bytes_of_encode_to_vec() {
        let all = many_rows();
        for (format, compression) in [
            (OutputFormat::Ndjson, Compression::None),
            (OutputFormat::Csv, Compression::Gzip),
            (OutputFormat::Json, Compression::None),
            (OutputFormat::Parquet, Compression::None),
        ] {
            let expected = encode_to_vec(&spec(format, compression), &all).unwrap();
            let (tx, rows_rx) = mpsc::channel(4);
            let progress = Arc::new(Progress::new());
            let out = spawn_pipeline(
                spec(format, compression),
                rows_rx,
                progress.clone(),
                CancellationToken::new(),
            );
            let batches: Vec<Vec<Row>> = all.chunks(1000).map(<[Row]>::to_vec).collect();
            tokio::spawn(async move {
                for batch in batches {
                    tx.send(Ok(batch)).await.unwrap();
                }
            });
            let (chunks, err) = collect(out).await;
            assert!(err.is_none(), "{err:?}");
            let (last, full) = chunks.split_last().unwrap();
            assert!(full.iter().all(|c| c.len() == CHUNK_SIZE));
            assert!(!last.is_empty() && last.len() <= CHUNK_SIZE);
            assert_eq!(chunks.concat(), expected, "{format} {compression}");
            assert_eq!(progress.rows(), all.len() as u64);
            assert_eq!(progress.bytes(), expected.len() as u64);
        }
    }

    #[tokio::test]
    async fn a_source_error_ends_the_stream_with_an_error_and_no_trailer() {
        let (tx, rows_rx) = mpsc::channel(4);
        let out = spawn_pipeline(
            spec(OutputFormat::Json, Compression::None),
            rows_rx,
            Arc::new(Progress::new()),
            CancellationToken::new(),
        );
        tx.send(Ok(many_rows())).await.unwrap();
        tx.send(Err(
            anyhow::anyhow!("connection reset").context("reading appointments")
        ))
        .await
        .unwrap();
        let (chunks, err) = collect(out).await;
        let err = err.expect("the stream ends with an error");
        let ExportError::Source(source) = export_error(&err) else {
            panic!("{err:?}");
        };
        assert_eq!(source.to_string(), "reading appointments");
        assert_eq!(source.source().unwrap().to_string(), "connection reset");
        let body = chunks.concat();
        assert!(body.starts_with(b"[\n{"));
        assert!(!body.ends_with(b"]\n"), "no closing bracket after an error");
        assert!(tx.is_closed(), "the pipeline dropped the source");
    }

    #[tokio::test]
    async fn cancel_stops_a_stalled_export_promptly() {
        let (tx, rows_rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let out = spawn_pipeline(
            spec(OutputFormat::Ndjson, Compression::Gzip),
            rows_rx,
            Arc::new(Progress::new()),
            cancel.clone(),
        );
        tx.send(Ok(rows())).await.unwrap();
        // The source now stalls with its sender open.
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        let (_, err) = tokio::time::timeout(Duration::from_secs(5), collect(out))
            .await
            .expect("cancel is prompt");
        assert!(matches!(
            export_error(&err.unwrap()),
            ExportError::Cancelled
        ));
    }

    #[tokio::test]
    async fn cancel_reaches_a_stalled_reader_and_the_error_still_arrives() {
        let (tx, rows_rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let mut out = spawn_pipeline(
            spec(OutputFormat::Ndjson, Compression::None),
            rows_rx,
            Arc::new(Progress::new()),
            cancel.clone(),
        );
        let all = many_rows();
        for batch in all.chunks(1000) {
            tx.send(Ok(batch.to_vec())).await.unwrap();
        }
        // Nobody reads: the output channel fills up and the encoder waits on it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), tx.closed())
            .await
            .expect("the pipeline stops although the reader is stalled");
        let mut last = None;
        while let Some(item) = out.recv().await {
            last = Some(item);
        }
        assert!(matches!(
            export_error(&last.unwrap().unwrap_err()),
            ExportError::Cancelled
        ));
    }

    #[tokio::test]
    async fn a_gone_reader_stops_the_pipeline_and_the_source() {
        let (tx, rows_rx) = mpsc::channel(2);
        let out = spawn_pipeline(
            spec(OutputFormat::Csv, Compression::None),
            rows_rx,
            Arc::new(Progress::new()),
            CancellationToken::new(),
        );
        drop(out);
        let feed = async {
            for batch in many_rows().chunks(1000).cycle() {
                if tx.send(Ok(batch.to_vec())).await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), feed)
            .await
            .expect("the source learns that nobody reads");
    }
}
