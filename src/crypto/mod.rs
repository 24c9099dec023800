//! Key material: the master key, customer data keys wrapped by it, and API key hashing.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

pub mod cse1;

/// File name of the generated master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The key that wraps every stored secret (data keys, source URLs).
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    /// Decodes a base64 master key from configuration.
    pub fn from_base64(text: &str) -> anyhow::Result<MasterKey> {
        let bytes = B64
            .decode(text.trim())
            .context("master_key is not valid base64")?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!("master_key must be 32 bytes, got {}", b.len())
        })?;
        Ok(MasterKey(SecretBox::new(Box::new(key))))
    }

    /// Reads `master.key` from the data directory, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<MasterKey> {
        let path = data_dir.join(MASTER_KEY_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return MasterKey::from_base64(&text).with_context(|| format!("in {}", path.display()));
        }
        let key = random_key();
        write_private(&path, B64.encode(key).as_bytes())?;
        Ok(MasterKey(SecretBox::new(Box::new(key))))
    }

    /// Encrypts a secret for storage: base64 of nonce ‖ AES-256-GCM ciphertext ‖ tag.
    pub fn wrap(&self, plaintext: &[u8]) -> String {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.expose_secret()));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce and in-memory buffers cannot fail.
        let ciphertext = cipher.encrypt(&nonce, plaintext).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        B64.encode(out)
    }

    /// A 32-byte key for one purpose (e.g. `"download-urls"`), derived with HMAC-SHA256
    /// so that no two uses share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Decrypts what [`MasterKey::wrap`] produced.
    pub fn unwrap(&self, wrapped: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = B64
            .decode(wrapped)
            .context("wrapped secret is not base64")?;
        anyhow::ensure!(bytes.len() > 12 + 16, "wrapped secret is too short");
        let (nonce, ciphertext) = bytes.split_at(12);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.expose_secret()));
        cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("wrapped secret does not decrypt with this master key"))
    }
}

/// 32 random bytes from the OS generator.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

/// The 8-byte key id of a data key: the first 8 bytes of its SHA-256, as hex.
pub fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

/// The stored form of an API key: hex SHA-256. Keys carry 190 bits of randomness,
/// so a fast hash is enough (no password stretching needed).
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new API key, `cs_live_` followed by 32 base62 characters.
pub fn new_api_key() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("cs_live_{tail}")
}

/// A random lower-case hex string of `bytes` bytes, for ids.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_detects_tampering() {
        let master = MasterKey::from_base64(&B64.encode([7u8; 32])).unwrap();
        let wrapped = master.wrap(b"secret data key");
        assert_eq!(master.unwrap(&wrapped).unwrap(), b"secret data key");
        let mut bytes = B64.decode(&wrapped).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(master.unwrap(&B64.encode(bytes)).is_err());
        let other = MasterKey::from_base64(&B64.encode([8u8; 32])).unwrap();
        assert!(other.unwrap(&wrapped).is_err());
    }

    #[test]
    fn api_keys_have_the_documented_shape() {
        let key = new_api_key();
        assert!(key.starts_with("cs_live_"));
        assert_eq!(key.len(), 8 + 32);
        assert_ne!(key, new_api_key());
        assert_eq!(hash_api_key(&key).len(), 64);
    }

    #[test]
    fn key_id_is_first_8_bytes_of_sha256() {
        // SHA-256 of 32 zero bytes starts with 66687aadf862bd77.
        assert_eq!(key_id(&[0u8; 32]), "66687aadf862bd77");
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64(&B64.encode([1u8; 16])).is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
    }
}
