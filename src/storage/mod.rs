//! Stored files: the object store wrapper (local directory by default), multipart
//! upload published only when complete, and signed download URLs.
//!
//! Every operation goes through `Arc<dyn ObjectStore>`, so an S3 store can stand
//! behind the same [`Storage`] later; what differs per backend (part size, how
//! download URLs are signed, how orphans are found) is matched on [`Backend`].

mod key;
mod orphans;
mod signing;

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use key::{InvalidKey, ObjectKey, MAX_KEY_LEN};
pub use signing::Denied;

/// Parts uploaded at once by one upload; with the part size this bounds its memory.
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes read from a local file per body chunk when serving a download.
const READ_CHUNK: usize = 128 * 1024;

/// What a completed upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// The store's entity tag, without quotes (same value as [`ObjectInfo::etag`]).
    pub etag: String,
}

/// What the store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The store's entity tag, without quotes; quote it for an HTTP `ETag`.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

/// An object opened for reading: its metadata and the requested bytes as a stream.
pub struct ObjectRead {
    pub info: ObjectInfo,
    /// The byte range the body holds (the whole object when no range was asked).
    pub range: Range<u64>,
    /// The bytes, read as the stream is polled (constant memory).
    pub body: BoxStream<'static, io::Result<Bytes>>,
}

/// Why [`Storage::get_range`] returned no body.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    #[error("no object at this key")]
    NotFound,
    /// The range starts past the end (or ends before it starts); `size` is the object's size.
    #[error("the range is not satisfiable for an object of {size} bytes")]
    Unsatisfiable { size: u64 },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Where objects live and how their download URLs are signed.
enum Backend {
    /// A directory on this machine; URLs signed by CipherStream with `url_key`.
    Local { root: PathBuf, url_key: [u8; 32] },
}

/// The object store and the key that signs download URLs.
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL key.
        f.debug_struct("Storage")
            .field("store", &self.store.to_string())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// A local-directory store under `root`.
    pub fn local(root: PathBuf, url_key: [u8; 32]) -> anyhow::Result<Storage> {
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating the file store directory {}", root.display()))?;
        let root = std::fs::canonicalize(&root)
            .with_context(|| format!("resolving the file store directory {}", root.display()))?;
        // fsync: a completed upload survives a power loss, not just a process crash.
        let store = LocalFileSystem::new_with_prefix(&root)
            .with_context(|| format!("opening the file store in {}", root.display()))?
            .with_fsync(true);
        Ok(Storage {
            store: Arc::new(store),
            backend: Backend::Local { root, url_key },
        })
    }

    /// Bytes per multipart part (S3 needs at least 5 MiB for all parts but the last).
    fn part_size(&self) -> usize {
        match self.backend {
            Backend::Local { .. } => 1024 * 1024,
        }
    }

    /// Uploads the chunks as `key`; visible only once complete, removed on error.
    ///
    /// The body ends with an empty chunk (what [`BodySender::finish`] sends) followed by
    /// the channel closing. An `Err` chunk, or the channel closing before that end
    /// marker (the producer dropped its sender: crashed or was cancelled), aborts the
    /// upload and leaves nothing behind. Use [`body_channel`] rather than a raw channel.
    pub async fn put_stream(
        &self,
        key: &str,
        mut body: mpsc::Receiver<io::Result<Bytes>>,
    ) -> anyhow::Result<StoredObject> {
        let key = ObjectKey::parse(key)?;
        let upload = self
            .store
            .put_multipart(&key.to_path())
            .await
            .with_context(|| format!("starting the upload of {key}"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size());
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let received: anyhow::Result<()> = async {
            loop {
                match body.recv().await {
                    Some(Ok(chunk)) if chunk.is_empty() => break,
                    Some(Ok(chunk)) => {
                        writer
                            .wait_for_capacity(PARTS_IN_FLIGHT)
                            .await
                            .context("writing a part")?;
                        hasher.update(&chunk);
                        size += chunk.len() as u64;
                        writer.put(chunk);
                    }
                    Some(Err(error)) => {
                        return Err(anyhow::Error::new(error).context("the producer failed"))
                    }
                    None => anyhow::bail!("the producer stopped before the end of the body"),
                }
            }
            // The end marker must be the last message.
            if body.recv().await.is_some() {
                anyhow::bail!("the producer sent data after the end of the body");
            }
            Ok(())
        }
        .await;
        if let Err(error) = received {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key = %key, error = %abort, "aborting an upload failed");
            }
            return Err(error.context(format!("uploading {key}; upload aborted")));
        }
        let result = writer
            .finish()
            .await
            .with_context(|| format!("completing the upload of {key}"))?;
        let etag = match result.e_tag {
            Some(etag) => unquote(&etag),
            None => self
                .head(key.as_str())
                .await?
                .map(|info| info.etag)
                .unwrap_or_default(),
        };
        Ok(StoredObject {
            size,
            sha256: hex::encode(hasher.finalize()),
            etag,
        })
    }

    /// Removes `key` (missing is fine).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let key = ObjectKey::parse(key)?;
        match self.store.delete(&key.to_path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(anyhow::Error::new(error).context(format!("deleting {key}"))),
        }
    }

    /// Size, entity tag and modification time of `key`, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectInfo>> {
        let key = ObjectKey::parse(key)?;
        match self.store.head(&key.to_path()).await {
            Ok(meta) => Ok(Some(ObjectInfo::from(&meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => {
                Err(anyhow::Error::new(error).context(format!("reading the metadata of {key}")))
            }
        }
    }

    /// Opens `key` for reading the bytes `start..=end_inclusive` (the whole object when
    /// `None`); an end past the object is clamped to its last byte.
    pub async fn get_range(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<ObjectRead, ReadError> {
        let key = ObjectKey::parse(key)?;
        let path = key.to_path();
        let not_found = |error: object_store::Error| match error {
            object_store::Error::NotFound { .. } => ReadError::NotFound,
            error => ReadError::Other(anyhow::Error::new(error).context(format!("reading {key}"))),
        };
        // The local store answers with the open file, so the size checked here is the
        // size of the very file read below; other stores answer a HEAD.
        let opened = self
            .store
            .get_opts(&path, GetOptions::new().with_head(true))
            .await
            .map_err(not_found)?;
        let info = ObjectInfo::from(&opened.meta);
        let range = match range {
            None => 0..info.size,
            Some((start, end)) if start < info.size && start <= end => {
                start..end.saturating_add(1).min(info.size)
            }
            Some(_) => return Err(ReadError::Unsatisfiable { size: info.size }),
        };
        let body = match opened.payload {
            GetResultPayload::File(file, _) => file_stream(file, range.clone()),
            GetResultPayload::Stream(_) if range.is_empty() => stream::empty().boxed(),
            GetResultPayload::Stream(_) => {
                // Pinned to the entity tag just seen, so the bytes match the metadata.
                let options = GetOptions::new()
                    .with_range(Some(GetRange::Bounded(range.clone())))
                    .with_if_match(opened.meta.e_tag.clone());
                let result = self
                    .store
                    .get_opts(&path, options)
                    .await
                    .map_err(not_found)?;
                result.into_stream().map_err(io::Error::other).boxed()
            }
        };
        Ok(ObjectRead { info, range, body })
    }
}

impl From<&ObjectMeta> for ObjectInfo {
    fn from(meta: &ObjectMeta) -> Self {
        let etag = match &meta.e_tag {
            Some(etag) => unquote(etag),
            // Every store we use gives one; derive a stable stand-in otherwise.
            None => format!(
                "{:x}-{:x}",
                meta.last_modified.timestamp_micros(),
                meta.size
            ),
        };
        ObjectInfo {
            size: meta.size,
            etag,
            last_modified: meta.last_modified,
        }
    }
}

/// `"abc"` or `W/"abc"` → `abc`.
fn unquote(etag: &str) -> String {
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"').to_string()
}

/// Reads `range` of a local file in [`READ_CHUNK`]-sized pieces on the blocking pool.
fn file_stream(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, io::Result<Bytes>> {
    use std::io::{Read, Seek, SeekFrom};
    let state = (Some(file), range.start, range.end - range.start);
    stream::try_unfold(state, |(file, offset, remaining)| async move {
        let Some(mut file) = file.filter(|_| remaining > 0) else {
            return Ok(None);
        };
        let (file, chunk) = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let want = remaining.min(READ_CHUNK as u64);
            file.seek(SeekFrom::Start(offset))?;
            let mut chunk = Vec::with_capacity(want as usize);
            (&mut file).take(want).read_to_end(&mut chunk)?;
            Ok((file, chunk))
        })
        .await
        .map_err(io::Error::other)??;
        if chunk.is_empty() {
            // The file shrank under us: fail rather than send a short body.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stored file is shorter than its size",
            ));
        }
        let read = chunk.len() as u64;
        Ok(Some((
            Bytes::from(chunk),
            (Some(file), offset + read, remaining - read),
        )))
    })
    .boxed()
}

/// The sending half of an upload body for [`Storage::put_stream`].
///
/// Send the chunks, then [`BodySender::finish`]; dropping it unfinished (an error,
/// a panic, a cancelled task) aborts the upload.
pub struct BodySender(mpsc::Sender<io::Result<Bytes>>);

/// A bounded channel for [`Storage::put_stream`]: `capacity` chunks wait at most.
pub fn body_channel(capacity: usize) -> (BodySender, mpsc::Receiver<io::Result<Bytes>>) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (BodySender(sender), receiver)
}

impl BodySender {
    /// Sends one chunk (empty chunks are skipped); fails when the upload has stopped.
    pub async fn send(&self, chunk: Bytes) -> anyhow::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.0
            .send(Ok(chunk))
            .await
            .map_err(|_| anyhow::anyhow!("the upload stopped before the body was sent"))
    }

    /// Ends the body: the upload completes and the object becomes visible.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.0
            .send(Ok(Bytes::new()))
            .await
            .map_err(|_| anyhow::anyhow!("the upload stopped before the body was sent"))
    }

    /// Aborts the upload with `error`.
    pub async fn fail(self, error: io::Error) {
        // The upload may already have stopped; nothing is left to tell then.
        let _ = self.0.send(Err(error)).await;
    }
}

#[cfg(test)]
mod tests;
