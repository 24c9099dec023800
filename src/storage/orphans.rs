//! Staging files left behind by a process that died mid-upload.
//!
//! The local store writes a multipart upload to `{object path}#{n}` (`n` = 1, 2, …)
//! and renames it into place on completion; an abort or a dropped upload removes it.
//! Only a crash leaves one behind. The store's listing hides these names and our keys
//! cannot contain `#`, so they never collide with an object.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::{Backend, Storage};

impl Storage {
    /// Removes upload staging files not written to for `older_than`; returns how many.
    ///
    /// A live upload rewrites its staging file at every part, so `older_than` must exceed
    /// the longest pause of a producer (a job's lease is a safe floor; hours are typical).
    pub async fn cleanup_orphans(&self, older_than: Duration) -> anyhow::Result<usize> {
        match &self.backend {
            Backend::Local { root, .. } => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    let cutoff = SystemTime::now()
                        .checked_sub(older_than)
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    remove_staging_files(&root, cutoff)
                })
                .await
                .context("the orphan sweep panicked")?
            }
        }
    }
}

impl Storage {
    /// Removes the staging files of one key, left by an earlier attempt at the same
    /// upload. Only the current owner of a job writes its key, so any are abandoned.
    pub async fn remove_partials(&self, key: &str) -> anyhow::Result<usize> {
        let key = super::ObjectKey::parse(key)?;
        match &self.backend {
            Backend::Local { root, .. } => {
                let path = root.join(key.as_str());
                let (Some(dir), Some(name)) =
                    (path.parent(), path.file_name().and_then(|n| n.to_str()))
                else {
                    return Ok(0);
                };
                let prefix = format!("{name}#");
                let mut removed = 0;
                let Ok(entries) = std::fs::read_dir(dir) else {
                    return Ok(0);
                };
                for entry in entries.flatten() {
                    let file = entry.file_name();
                    let Some(file) = file.to_str() else { continue };
                    if file.starts_with(&prefix) && is_staging_name(file) {
                        std::fs::remove_file(entry.path())
                            .with_context(|| format!("removing {file}"))?;
                        removed += 1;
                    }
                }
                Ok(removed)
            }
        }
    }
}

/// `name#digits`: the local store's staging file names.
fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((stem, n)) => {
            !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn remove_staging_files(dir: &Path, cutoff: SystemTime) -> anyhow::Result<usize> {
    let mut removed = 0;
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        // `file_type` does not follow symlinks, so the sweep stays inside the store.
        let file_type = entry
            .file_type()
            .with_context(|| format!("reading the type of {}", path.display()))?;
        if file_type.is_dir() {
            removed += remove_staging_files(&path, cutoff)?;
            continue;
        }
        let is_staging = entry.file_name().to_str().is_some_and(is_staging_name);
        if !file_type.is_file() || !is_staging {
            continue;
        }
        let modified = match entry.metadata().and_then(|m| m.modified()) {
            Ok(modified) => modified,
            // Completed or aborted meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if modified >= cutoff {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed an abandoned upload staging file");
                removed += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::is_staging_name;

    #[test]
    fn recognises_staging_names() {
        assert!(is_staging_name("a.ndjson.gz.cse#1"));
        assert!(is_staging_name("a#12"));
        for name in ["a", "a#", "#1", "a#1x", "a#x1", "a.cse"] {
            assert!(!is_staging_name(name), "{name}");
        }
    }
}
