//! Download URLs for the local store, signed by CipherStream itself:
//! `{base}/v1/files/{key}?expires={unix seconds}&signature={hex HMAC-SHA256 of "{key}\n{expires}"}`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Backend, ObjectKey, Storage};

/// Why a download URL was refused; the message is safe to show the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// `expires` or `signature` missing or malformed, or the key is not a valid key.
    #[error("the download link is incomplete or malformed; request a new one")]
    Malformed,
    /// The signature does not match the key and expiry.
    #[error("the download link's signature is invalid; request a new one")]
    BadSignature,
    /// The link is past its expiry.
    #[error("the download link has expired; request a new one")]
    Expired,
}

fn url_mac(url_key: &[u8; 32], key: &str, expires: i64) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(url_key).expect("HMAC takes keys of any length");
    mac.update(key.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

impl Storage {
    /// A URL under `public_base` that downloads `key` until `expires_at`.
    ///
    /// Signs for the local store; `key` is expected to be a stored object's key
    /// (an invalid key yields a URL that [`Storage::verify`] refuses).
    pub fn presign(&self, public_base: &str, key: &str, expires_at: DateTime<Utc>) -> String {
        let expires = expires_at.timestamp();
        let signature = match &self.backend {
            Backend::Local { url_key, .. } => {
                hex::encode(url_mac(url_key, key, expires).finalize().into_bytes())
            }
        };
        let base = public_base.trim_end_matches('/');
        format!("{base}/v1/files/{key}?expires={expires}&signature={signature}")
    }

    /// Checks a download URL's `expires` (unix seconds) and hex `signature` for `key`
    /// at `now`; the signature comparison takes constant time.
    pub fn verify(
        &self,
        key: &str,
        expires: i64,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Denied> {
        let Backend::Local { url_key, .. } = &self.backend;
        ObjectKey::parse(key).map_err(|_| Denied::Malformed)?;
        let given = hex::decode(signature).map_err(|_| Denied::Malformed)?;
        url_mac(url_key, key, expires)
            .verify_slice(&given)
            .map_err(|_| Denied::BadSignature)?;
        if now.timestamp() > expires {
            return Err(Denied::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use url::Url;

    const KEY: &str = "customers/demo/jobs/appointments_1758630144658_c7511999.ndjson.gz.cse";

    fn storage(dir: &tempfile::TempDir) -> Storage {
        Storage::local(dir.path().join("files"), [7; 32]).unwrap()
    }

    /// The path key and the `expires` and `signature` parameters of a presigned URL.
    fn parts(url: &str) -> (String, String, String) {
        let url = Url::parse(url).unwrap();
        let key = url.path().strip_prefix("/v1/files/").unwrap().to_string();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        (key, param("expires"), param("signature"))
    }

    #[test]
    fn accepts_a_fresh_url_and_rejects_tampering_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(&dir);
        let now = Utc::now();
        let url = storage.presign("https://dl.example.com/", KEY, now + Duration::hours(12));
        assert!(
            url.starts_with(&format!("https://dl.example.com/v1/files/{KEY}?expires=")),
            "{url}"
        );
        let (key, expires, signature) = parts(&url);
        assert_eq!(key, KEY);
        assert_eq!(signature.len(), 64);
        let expires: i64 = expires.parse().unwrap();
        assert_eq!(storage.verify(&key, expires, &signature, now), Ok(()));
        // Still valid at the expiry second itself, refused after.
        let at = DateTime::from_timestamp(expires, 0).unwrap();
        assert_eq!(storage.verify(&key, expires, &signature, at), Ok(()));
        assert_eq!(
            storage.verify(&key, expires, &signature, at + Duration::seconds(1)),
            Err(Denied::Expired)
        );

        let other = KEY.replace("c7511999", "c7511998");
        assert_eq!(
            storage.verify(&other, expires, &signature, now),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            storage.verify(&key, expires + 3600, &signature, now),
            Err(Denied::BadSignature)
        );
        let mut flipped = signature.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            storage.verify(&key, expires, &flipped, now),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            storage.verify(&key, expires, &signature[..62], now),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            storage.verify(&key, expires, "", now),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            storage.verify(&key, expires, "zz", now),
            Err(Denied::Malformed)
        );
        assert_eq!(
            storage.verify("../x", expires, &signature, now),
            Err(Denied::Malformed)
        );

        // Another url key never verifies this URL.
        let other_dir = tempfile::tempdir().unwrap();
        let other_storage = Storage::local(other_dir.path().to_path_buf(), [8; 32]).unwrap();
        assert_eq!(
            other_storage.verify(&key, expires, &signature, now),
            Err(Denied::BadSignature)
        );
    }

    #[test]
    fn an_expired_url_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(&dir);
        let now = Utc::now();
        let (key, expires, signature) =
            parts(&storage.presign("http://127.0.0.1:8080", KEY, now - Duration::seconds(1)));
        assert_eq!(
            storage.verify(&key, expires.parse().unwrap(), &signature, now),
            Err(Denied::Expired)
        );
    }

    #[test]
    fn signature_is_hmac_sha256_of_key_newline_expires() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(&dir);
        let expires = DateTime::from_timestamp(1_758_673_344, 0).unwrap();
        let (_, _, signature) = parts(&storage.presign("http://h", "a/b.cse", expires));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"a/b.cse\n1758673344");
        assert_eq!(signature, hex::encode(mac.finalize().into_bytes()));
    }
}
