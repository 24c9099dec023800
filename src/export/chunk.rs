//! `ChunkSender`: the blocking end of the pipeline, turning writes into `Bytes` chunks
//! on a bounded channel, so a slow reader holds the encoder back.

use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

use super::pipeline::{ExportError, Progress};

/// Size of the chunks sent downstream.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// A `Write` that sends 64 KiB `Bytes` chunks into a channel. Blocks while the channel
/// is full, so it must run on a blocking thread (as `spawn_pipeline` does).
pub struct ChunkSender {
    tx: Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    progress: Option<Arc<Progress>>,
    cancel: Option<CancellationToken>,
}

impl ChunkSender {
    /// Sends into `tx`; writes fail with `BrokenPipe` once the receiver is gone.
    pub fn new(tx: Sender<io::Result<Bytes>>) -> Self {
        ChunkSender {
            tx,
            buf: Vec::with_capacity(CHUNK_SIZE),
            progress: None,
            cancel: None,
        }
    }

    /// Counts the bytes of every chunk sent in `progress`.
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Stops waiting for room in the channel when `cancel` fires: the write then fails
    /// with `ExportError::Cancelled`.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_SIZE),
        ));
        let len = chunk.len() as u64;
        let sent = match &self.cancel {
            None => self.tx.blocking_send(Ok(chunk)).is_ok(),
            Some(cancel) => match block_on_cancellable(cancel, self.tx.send(Ok(chunk))) {
                Some(result) => result.is_ok(),
                None => return Err(io::Error::other(ExportError::Cancelled)),
            },
        };
        if !sent {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the receiver of the export stream is gone",
            ));
        }
        if let Some(progress) = &self.progress {
            progress.add_bytes(len);
        }
        Ok(())
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let take = rest.len().min(CHUNK_SIZE - self.buf.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.send_buffered()?;
            }
        }
        Ok(data.len())
    }

    /// Sends the partial chunk, if any.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

impl Drop for ChunkSender {
    fn drop(&mut self) {
        // Not while unwinding: a panic must not turn into a clean-looking end of stream
        // (and blocking inside a panic is no help).
        if !std::thread::panicking() {
            let _ = self.send_buffered();
        }
    }
}

/// Runs `fut` to completion on this (blocking) thread unless `cancel` fires first.
pub(crate) fn block_on_cancellable<F: Future>(
    cancel: &CancellationToken,
    fut: F,
) -> Option<F::Output> {
    futures::executor::block_on(async {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            out = fut => Some(out),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn sends_full_chunks_then_the_remainder_on_flush() {
        let (tx, mut rx) = mpsc::channel(8);
        let progress = Arc::new(Progress::new());
        let mut sender = ChunkSender::new(tx).with_progress(progress.clone());
        let data: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        for piece in data.chunks(1000) {
            sender.write_all(piece).unwrap();
        }
        assert_eq!(progress.bytes(), 2 * CHUNK_SIZE as u64);
        sender.flush().unwrap();
        let mut chunks = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            chunks.push(chunk.unwrap());
        }
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [CHUNK_SIZE, CHUNK_SIZE, 150_000 - 2 * CHUNK_SIZE]);
        assert_eq!(chunks.concat(), data);
        assert_eq!(progress.bytes(), 150_000);
    }

    #[test]
    fn drop_sends_the_remainder() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut sender = ChunkSender::new(tx);
        sender.write_all(b"tail").unwrap();
        drop(sender);
        assert_eq!(&rx.try_recv().unwrap().unwrap()[..], b"tail");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn writes_fail_with_broken_pipe_once_the_receiver_is_gone() {
        let (tx, rx) = mpsc::channel(8);
        let mut sender = ChunkSender::new(tx);
        drop(rx);
        let err = sender.write_all(&vec![0; CHUNK_SIZE]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
