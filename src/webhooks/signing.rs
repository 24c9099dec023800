//! Signatures on every delivery: CipherStream's own `X-CipherStream-Signature`
//! (hex HMAC-SHA256 of the raw body, verifiable with the product documentation's
//! Python snippet) and the Standard Webhooks `webhook-signature`
//! (base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every endpoint secret; the rest is the base64 of the key bytes.
pub const SECRET_PREFIX: &str = "whsec_";

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(crate::crypto::random_key())
    )
}

/// Checks a secret a customer chose: `whsec_` and the base64 of 24 to 64 bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let accepted = "a secret must be \"whsec_\" followed by the base64 of 24 to 64 random bytes \
                    (omit it and one is generated)";
    let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(accepted.into());
    };
    match STANDARD.decode(encoded) {
        Ok(bytes) if (24..=64).contains(&bytes.len()) => Ok(()),
        _ => Err(accepted.into()),
    }
}

/// `X-CipherStream-Signature`: `sha256=<hex>` per active secret, space-separated (the
/// newest first). The HMAC key is the whole secret string, as the documentation's
/// `verify_webhook_signature(payload, signature, secret)` computes it.
pub fn cipherstream_signature(secrets: &[String], body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| format!("sha256={}", hex::encode(hmac(s.as_bytes(), &[body]))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Standard Webhooks `webhook-signature`: `v1,<base64>` per active secret, over
/// `{msg_id}.{timestamp}.{body}` with the base64-decoded part of the secret as key.
pub fn standard_signature(secrets: &[String], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    secrets
        .iter()
        .map(|s| {
            let key = s
                .strip_prefix(SECRET_PREFIX)
                .and_then(|k| STANDARD.decode(k).ok())
                .unwrap_or_else(|| s.as_bytes().to_vec());
            let mac = hmac(&key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            format!("v1,{}", STANDARD.encode(mac))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn cipherstream_signature_is_hex_hmac_of_the_body_per_secret() {
        let secrets = vec!["whsec_new".to_string(), "whsec_old".to_string()];
        let header = cipherstream_signature(&secrets, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            format!("sha256={}", hex::encode(hmac(b"whsec_new", &[b"{}"])))
        );
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn chosen_secrets_are_checked() {
        assert!(check_secret(&new_secret()).is_ok());
        assert!(check_secret("hunter2").is_err());
        assert!(check_secret("whsec_c2hvcnQ=").is_err());
        assert!(check_secret("whsec_not base64!").is_err());
    }
}
