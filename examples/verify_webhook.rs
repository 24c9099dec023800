//! Verify a CipherStream webhook delivery (format: docs/webhooks.md) with the `hmac`,
//! `sha2`, `base64`, `hex`, `serde_json` and `chrono` crates.
//!
//! ```sh
//! cargo run --example verify_webhook -- delivery.json
//! ```
//!
//! `delivery.json` holds `{"payload": <raw body text>, "headers": {<lower-case name>:
//! <value>}, "secret": "whsec_..."}`. Prints `{"cipherstream": bool, "standard": bool,
//! "fresh": bool}`: whether `X-CipherStream-Signature` matches, whether the Standard
//! Webhooks `webhook-signature` matches, and whether the delivery's timestamps are
//! within five minutes of now. Accept a delivery only when a signature matches and it
//! is fresh. Exits with status 2 when the file cannot be read.
//!
//! In a receiver, verify the raw request body exactly as received (axum: `Bytes`),
//! before any JSON parsing.

use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Deliveries whose timestamp is further than this from now are refused (replays).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// `X-CipherStream-Signature`: `sha256=<hex HMAC-SHA256 of the raw body>` keyed with the
/// whole secret string; during a secret rotation one value per active secret,
/// space-separated. One match is enough.
pub fn verify_cipherstream(body: &[u8], header: &str, secret: &str) -> bool {
    header.split_whitespace().any(|value| {
        let Some(signature) = value
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let mut mac = mac(secret.as_bytes());
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&signature).is_ok()
    })
}

/// Standard Webhooks `webhook-signature`: `v1,<base64>` values, space-separated,
/// HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the
/// base64-decoded part of the secret after `whsec_`.
pub fn verify_standard(
    body: &[u8],
    webhook_id: &str,
    webhook_timestamp: &str,
    header: &str,
    secret: &str,
) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    header.split_whitespace().any(|value| {
        let Some(signature) = value
            .strip_prefix("v1,")
            .and_then(|s| STANDARD.decode(s).ok())
        else {
            return false;
        };
        let mut mac = mac(&key);
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(webhook_timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    })
}

/// Replay protection: a timestamp (Unix seconds) more than five minutes from `now` is refused.
pub fn is_fresh(unix_seconds: i64, now: i64) -> bool {
    (now - unix_seconds).abs() <= TOLERANCE_SECONDS
}

/// The body's `timestamp` (RFC 3339, covered by `X-CipherStream-Signature`) as Unix seconds.
pub fn body_timestamp(body: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value.get("timestamp")?.as_str()?;
    Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp())
}

/// The verdict on one delivery: accept it only when a signature matches and it is fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// `X-CipherStream-Signature` matches.
    pub cipherstream: bool,
    /// The Standard Webhooks `webhook-signature` matches.
    pub standard: bool,
    /// Every timestamp is within five minutes of now.
    pub fresh: bool,
}

impl std::fmt::Display for Verdict {
    /// As JSON: `{"cipherstream":true,"standard":true,"fresh":true}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            r#"{{"cipherstream":{},"standard":{},"fresh":{}}}"#,
            self.cipherstream, self.standard, self.fresh
        )
    }
}

/// Checks one delivery; `headers` looks a header up by its lower-case name.
pub fn check<'a>(
    body: &[u8],
    headers: impl Fn(&str) -> Option<&'a str>,
    secret: &str,
    now: i64,
) -> Verdict {
    let header = |name| headers(name).unwrap_or_default();
    let cipherstream = verify_cipherstream(body, header("x-cipherstream-signature"), secret);
    let standard = verify_standard(
        body,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        secret,
    );
    // The body's timestamp is signed by X-CipherStream-Signature, webhook-timestamp by
    // webhook-signature; X-CipherStream-Timestamp is the same instant. All must be fresh.
    let stamps = [
        body_timestamp(body),
        header("x-cipherstream-timestamp").parse().ok(),
        header("webhook-timestamp").parse().ok(),
    ];
    let fresh = stamps.iter().all(|s| s.is_some_and(|s| is_fresh(s, now)));
    Verdict {
        cipherstream,
        standard,
        fresh,
    }
}

fn run(path: &str) -> Result<Verdict, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let item: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let (Some(payload), Some(headers), Some(secret)) = (
        item["payload"].as_str(),
        item["headers"].as_object(),
        item["secret"].as_str(),
    ) else {
        return Err("payload and secret must be strings, headers an object".into());
    };
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    Ok(check(
        payload.as_bytes(),
        lookup,
        secret,
        chrono::Utc::now().timestamp(),
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: verify_webhook DELIVERY.json");
        return ExitCode::from(2);
    };
    match run(path) {
        Ok(verdict) => {
            println!("{verdict}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("verify_webhook: error: {path}: {error}");
            ExitCode::from(2)
        }
    }
}
