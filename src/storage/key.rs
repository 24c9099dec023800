//! Object keys: checked once, before anything touches the store or a file path.

use object_store::path::Path;

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// A key that names one stored object, e.g.
/// `customers/demo/jobs/appointments_1758630144658_c7511999.ndjson.gz.cse`.
///
/// Segments are separated by `/` and made of ASCII letters, digits, `.`, `_` and `-`;
/// no empty, `.` or `..` segment, no leading or trailing `/`. The charset keeps keys
/// safe in URLs without escaping, and excludes `#`, which the local store uses for its
/// staging files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key: {0}")]
pub struct InvalidKey(&'static str);

impl ObjectKey {
    /// Checks `key` against the rules above.
    pub fn parse(key: &str) -> Result<ObjectKey, InvalidKey> {
        if key.is_empty() {
            return Err(InvalidKey("it is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(InvalidKey("it is longer than 1024 bytes"));
        }
        if key.starts_with('/') || key.ends_with('/') {
            return Err(InvalidKey("it starts or ends with '/'"));
        }
        for segment in key.split('/') {
            match segment {
                "" => return Err(InvalidKey("it has an empty segment")),
                "." | ".." => return Err(InvalidKey("it has a '.' or '..' segment")),
                _ => {}
            }
            let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
            if !segment.bytes().all(allowed) {
                return Err(InvalidKey(
                    "only letters, digits, '.', '_', '-' and '/' are allowed",
                ));
            }
        }
        Ok(ObjectKey(key.to_string()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment, used as the download's file name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The object store path; the charset makes it the key itself, unescaped.
    pub(crate) fn to_path(&self) -> Path {
        Path::from(self.0.as_str())
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_job_file_keys() {
        let key = "customers/demo/jobs/appointments_1758630144658_c7511999.ndjson.gz.cse";
        let parsed = ObjectKey::parse(key).unwrap();
        assert_eq!(parsed.as_str(), key);
        assert_eq!(
            parsed.file_name(),
            "appointments_1758630144658_c7511999.ndjson.gz.cse"
        );
        assert_eq!(parsed.to_path().as_ref(), key);
        assert_eq!(ObjectKey::parse("x").unwrap().file_name(), "x");
    }

    #[test]
    fn rejects_unsafe_keys() {
        for key in [
            "", "../x", "a/../x", "a/..", "./x", "a/./b", "/abs", "a/", "a//b", "a\\b", "a b",
            "a#1", "a%2e", "a?b", "é", "a\nb", "~/x",
        ] {
            assert!(ObjectKey::parse(key).is_err(), "{key:?} was accepted");
        }
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_LEN)).is_ok());
    }
}
