//! Storage against a real temporary directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;

const KEY: &str = "customers/demo/jobs/appointments_1758630144658_c7511999.ndjson.gz.cse";

fn storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    // A root that does not exist yet: `local` creates it.
    let storage = Storage::local(dir.path().join("files"), [3; 32]).unwrap();
    (dir, storage)
}

fn root(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("files")
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Deterministic bytes that are not all alike, so offsets show.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn put(storage: &Storage, key: &str, bytes: &[u8]) -> anyhow::Result<StoredObject> {
    let (sender, body) = body_channel(4);
    let chunks: Vec<Bytes> = bytes.chunks(300_000).map(Bytes::copy_from_slice).collect();
    let producer = async move {
        for chunk in chunks {
            sender.send(chunk).await?;
        }
        sender.finish().await
    };
    let (stored, sent) = tokio::join!(storage.put_stream(key, body), producer);
    sent?;
    stored
}

async fn read_all(
    storage: &Storage,
    key: &str,
    range: Option<(u64, u64)>,
) -> (ObjectRead, Vec<u8>) {
    let mut read = storage.get_range(key, range).await.unwrap();
    let body = std::mem::replace(&mut read.body, stream::empty().boxed());
    let chunks: Vec<Bytes> = body.try_collect().await.unwrap();
    (read, chunks.concat())
}

#[tokio::test]
async fn put_stream_round_trip() {
    let (dir, storage) = storage();
    // Several parts, the last one short.
    let bytes = data(2 * 1024 * 1024 + 12_345);
    let stored = put(&storage, KEY, &bytes).await.unwrap();
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&bytes)));
    assert!(
        !stored.etag.is_empty() && !stored.etag.contains('"'),
        "{}",
        stored.etag
    );

    let info = storage.head(KEY).await.unwrap().unwrap();
    assert_eq!(info.size, stored.size);
    assert_eq!(info.etag, stored.etag);
    let (read, content) = read_all(&storage, KEY, None).await;
    assert_eq!(read.range, 0..bytes.len() as u64);
    assert_eq!(read.info, info);
    assert!(content == bytes, "content differs");
    assert_eq!(files(&root(&dir)), vec![KEY.to_string()]);

    // Replacing an object publishes the new bytes whole.
    let stored = put(&storage, KEY, b"second").await.unwrap();
    assert_eq!(stored.size, 6);
    assert_eq!(read_all(&storage, KEY, None).await.1, b"second");

    // An empty body is an empty object.
    let stored = put(&storage, "customers/demo/empty", b"").await.unwrap();
    assert_eq!(
        (stored.size, stored.sha256.as_str()),
        (0, hex::encode(Sha256::digest(b"")).as_str())
    );
    assert_eq!(
        read_all(&storage, "customers/demo/empty", None).await.1,
        b""
    );
}

#[tokio::test]
async fn object_is_invisible_until_complete() {
    let (dir, storage) = storage();
    let (sender, body) = body_channel(4);
    let upload =
        tokio::spawn(async move { storage.put_stream(KEY, body).await.map(|s| (s, storage)) });
    sender
        .send(Bytes::from(data(3 * 1024 * 1024)))
        .await
        .unwrap();
    let staging = root(&dir).join(format!("{KEY}#1"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&staging).map_or(0, |m| m.len()) < 1024 * 1024 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no part reached the staging file"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!root(&dir).join(KEY).exists(), "visible before completion");
    sender.finish().await.unwrap();
    let (stored, storage) = upload.await.unwrap().unwrap();
    assert_eq!(stored.size, 3 * 1024 * 1024);
    assert!(storage.head(KEY).await.unwrap().is_some());
    assert_eq!(files(&root(&dir)), vec![KEY.to_string()]);
}

#[tokio::test]
async fn err_chunk_mid_stream_leaves_nothing() {
    let (dir, storage) = storage();
    let (sender, body) = body_channel(4);
    let producer = async move {
        // Enough for parts to reach the staging file before the failure.
        for _ in 0..5 {
            sender.send(Bytes::from(data(700_000))).await.unwrap();
        }
        sender
            .fail(io::Error::other("source connection lost"))
            .await;
    };
    let (stored, ()) = tokio::join!(storage.put_stream(KEY, body), producer);
    let error = format!("{:#}", stored.unwrap_err());
    assert!(error.contains("source connection lost"), "{error}");
    assert!(storage.head(KEY).await.unwrap().is_none());
    assert_eq!(files(&root(&dir)), Vec::<String>::new());
}

#[tokio::test]
async fn dropped_sender_leaves_nothing() {
    let (dir, storage) = storage();
    let (sender, body) = body_channel(4);
    let producer = async move {
        for _ in 0..5 {
            sender.send(Bytes::from(data(700_000))).await.unwrap();
        }
        drop(sender); // a crashed or cancelled producer, without finish()
    };
    let (stored, ()) = tokio::join!(storage.put_stream(KEY, body), producer);
    let error = format!("{:#}", stored.unwrap_err());
    assert!(error.contains("stopped before the end"), "{error}");
    assert!(storage.head(KEY).await.unwrap().is_none());
    assert_eq!(files(&root(&dir)), Vec::<String>::new());

    // The same through a raw channel that closes without the end marker.
    let (tx, rx) = mpsc::channel(4);
    tx.send(Ok(Bytes::from_static(b"partial"))).await.unwrap();
    drop(tx);
    assert!(storage.put_stream(KEY, rx).await.is_err());
    assert_eq!(files(&root(&dir)), Vec::<String>::new());
}

#[tokio::test]
async fn cancelled_upload_task_leaves_nothing() {
    let (dir, storage) = storage();
    let (sender, body) = body_channel(4);
    let upload = tokio::spawn(async move { storage.put_stream(KEY, body).await });
    sender
        .send(Bytes::from(data(3 * 1024 * 1024)))
        .await
        .unwrap();
    let staging = root(&dir).join(format!("{KEY}#1"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !staging.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The task is dropped mid-upload (e.g. a worker shutting down): the dropped upload
    // removes its staging file on the blocking pool, so wait for it.
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());
    while !files(&root(&dir)).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {:?}",
            files(&root(&dir))
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sender.send(Bytes::from_static(b"more")).await.is_err());
}

#[tokio::test]
async fn raw_channel_protocol() {
    let (dir, storage) = storage();
    // Data, the empty end marker, then the channel closes.
    let (tx, rx) = mpsc::channel(4);
    for chunk in [&b"hello "[..], b"world", b""] {
        tx.send(Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
    }
    drop(tx);
    let stored = storage.put_stream(KEY, rx).await.unwrap();
    assert_eq!(stored.size, 11);
    assert_eq!(read_all(&storage, KEY, None).await.1, b"hello world");

    // Data after the end marker is refused, leaving the old object as it was.
    let (tx, rx) = mpsc::channel(4);
    for chunk in [&b"new"[..], b"", b"more"] {
        tx.send(Ok(Bytes::copy_from_slice(chunk))).await.unwrap();
    }
    drop(tx);
    assert!(storage.put_stream(KEY, rx).await.is_err());
    assert_eq!(read_all(&storage, KEY, None).await.1, b"hello world");
    assert_eq!(files(&root(&dir)), vec![KEY.to_string()]);
}

#[tokio::test]
async fn get_range_reads_the_requested_bytes() {
    let (_dir, storage) = storage();
    let bytes = data(300_000);
    put(&storage, KEY, &bytes).await.unwrap();
    let size = bytes.len() as u64;
    for (asked, expected) in [
        ((0, 0), 0..1),
        ((5, 9), 5..10),
        ((1000, 299_999), 1000..300_000),
        ((299_999, 299_999), 299_999..300_000),
        ((100, 10_000_000), 100..300_000), // end clamped
        ((0, u64::MAX), 0..300_000),
    ] {
        let (read, content) = read_all(&storage, KEY, Some(asked)).await;
        assert_eq!(read.range, expected, "{asked:?}");
        assert_eq!(read.info.size, size);
        let (start, end) = (expected.start as usize, expected.end as usize);
        assert!(content == bytes[start..end], "content of {asked:?} differs");
    }
    for asked in [(size, size), (size + 10, size + 20), (10, 9)] {
        assert!(
            matches!(
                storage.get_range(KEY, Some(asked)).await,
                Err(ReadError::Unsatisfiable { size: 300_000 })
            ),
            "{asked:?}"
        );
    }
    assert!(matches!(
        storage.get_range("customers/demo/missing", None).await,
        Err(ReadError::NotFound)
    ));
    assert!(matches!(
        storage.get_range("../x", None).await,
        Err(ReadError::InvalidKey(_))
    ));

    put(&storage, "empty", b"").await.unwrap();
    assert!(matches!(
        storage.get_range("empty", Some((0, 0))).await,
        Err(ReadError::Unsatisfiable { size: 0 })
    ));
    assert_eq!(read_all(&storage, "empty", None).await.0.range, 0..0);
}

#[tokio::test]
async fn delete_removes_and_tolerates_missing() {
    let (dir, storage) = storage();
    put(&storage, KEY, b"bytes").await.unwrap();
    storage.delete(KEY).await.unwrap();
    assert!(storage.head(KEY).await.unwrap().is_none());
    assert!(matches!(
        storage.get_range(KEY, None).await,
        Err(ReadError::NotFound)
    ));
    storage.delete(KEY).await.unwrap();
    storage.delete("customers/never/was").await.unwrap();
    assert_eq!(files(&root(&dir)), Vec::<String>::new());
}

#[tokio::test]
async fn cleanup_orphans_removes_only_old_staging_files() {
    let (dir, storage) = storage();
    put(&storage, KEY, b"kept").await.unwrap();
    let jobs = root(&dir).join("customers/demo/jobs");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let write = |name: &str, modified: SystemTime| {
        let file = std::fs::File::create(jobs.join(name)).unwrap();
        file.set_modified(modified).unwrap();
    };
    write("crashed.ndjson.gz.cse#1", two_hours_ago);
    write("crashed.ndjson.gz.cse#2", two_hours_ago);
    write("running.ndjson.gz.cse#1", SystemTime::now());
    // Not a staging name; and a real object that is old.
    write("notes#draft", two_hours_ago);
    std::fs::File::options()
        .write(true)
        .open(jobs.join(KEY.rsplit('/').next().unwrap()))
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    assert_eq!(
        storage
            .cleanup_orphans(Duration::from_secs(3600))
            .await
            .unwrap(),
        2
    );
    let file = |name: &str| format!("customers/demo/jobs/{name}");
    assert_eq!(
        files(&root(&dir)),
        vec![
            KEY.to_string(),
            file("notes#draft"),
            file("running.ndjson.gz.cse#1")
        ]
    );
    assert_eq!(read_all(&storage, KEY, None).await.1, b"kept");
    assert_eq!(
        storage
            .cleanup_orphans(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn invalid_keys_never_reach_the_store() {
    let (dir, storage) = storage();
    for key in ["../x", "/abs", "", "a/../../x", "a#1"] {
        let (_tx, rx) = mpsc::channel(1);
        assert!(storage.put_stream(key, rx).await.is_err(), "put {key:?}");
        assert!(storage.head(key).await.is_err(), "head {key:?}");
        assert!(storage.delete(key).await.is_err(), "delete {key:?}");
    }
    assert_eq!(files(dir.path()), Vec::<String>::new());
}
