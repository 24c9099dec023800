//! Checks of an endpoint's fields, and the documentation-only input schemas.

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::http::error::{ApiError, FieldError};
use crate::http::openapi::string_enum;
use crate::http::AppState;
use crate::webhooks::deliveries::{self};
use crate::webhooks::endpoints::{Endpoint, EndpointSpec};
use crate::webhooks::{signing, EventType};

/// The body of `POST /v1/webhooks` (documentation only; the body is read field by field).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({
    "url": "https://hooks.example.com/cipherstream", "events": ["job.completed", "job.failed"],
    "description": "Data warehouse loader", "headers": {"X-Team": "data"}, "timeout_seconds": 30,
    "retry": {"max_retries": 3, "backoff_seconds": 10}, "batch": {"max_events": 1, "max_wait_seconds": 0},
    "rate_limit_per_second": 5, "enabled": true}))]
pub struct WebhookIn {
    /// `https://` (plain `http://` only to loopback when the server allows it); public addresses only.
    #[schema(format = "uri", max_length = 2048)]
    url: String,
    /// Events to receive.
    #[schema(value_type = Vec<EventName>, inline, min_items = 1)]
    events: Vec<String>,
    /// Up to 500 characters.
    #[schema(nullable = false, max_length = 500)]
    description: Option<String>,
    /// Up to 20 custom headers (values: printable ASCII, at most 1000 characters); Host,
    /// Content-Type, Content-Length, User-Agent, connection headers, X-CipherStream-* and
    /// webhook-* are reserved.
    #[schema(nullable = false)]
    headers: Option<BTreeMap<String, String>>,
    /// `whsec_` + base64 of 24-64 bytes; generated when absent. Returned once.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]{32,88}={0,2}$")]
    secret: Option<String>,
    /// Default 30.
    #[schema(nullable = false, minimum = 1, maximum = 60)]
    timeout_seconds: Option<i64>,
    #[schema(nullable = false)]
    retry: Option<RetryIn>,
    #[schema(nullable = false)]
    batch: Option<BatchIn>,
    /// Calls per second at most, or null for no limit.
    #[schema(minimum = 1, maximum = 1000)]
    rate_limit_per_second: Option<i64>,
    /// Default 10: at most one job.progress per this many seconds.
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    progress_interval_seconds: Option<i64>,
    /// Default true.
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

/// The retry policy of an endpoint, as given.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"max_retries": 3, "backoff_seconds": 10}))]
pub struct RetryIn {
    /// Retries after the first attempt; default 5.
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    max_retries: Option<i64>,
    /// First retry delay; doubles with each retry; default 30.
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    backoff_seconds: Option<i64>,
}

/// The batching of an endpoint, as given.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"max_events": 10, "max_wait_seconds": 5}))]
pub struct BatchIn {
    /// Events per call; default 1 (no batching).
    #[schema(nullable = false, minimum = 1, maximum = 100)]
    max_events: Option<i64>,
    /// How long a first event waits for company; default 0.
    #[schema(nullable = false, minimum = 0, maximum = 300)]
    max_wait_seconds: Option<i64>,
}

/// The body of `PATCH /v1/webhooks/{id}`: any field of creation except `secret`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"events": ["job.completed"], "enabled": true}))]
pub struct WebhookPatch {
    #[schema(nullable = false, format = "uri", max_length = 2048)]
    url: Option<String>,
    #[schema(value_type = Option<Vec<EventName>>, inline, nullable = false, min_items = 1)]
    events: Option<Vec<String>>,
    #[schema(nullable = false, max_length = 500)]
    description: Option<String>,
    /// Replaces the custom headers.
    #[schema(nullable = false)]
    headers: Option<BTreeMap<String, String>>,
    #[schema(nullable = false, minimum = 1, maximum = 60)]
    timeout_seconds: Option<i64>,
    #[schema(nullable = false)]
    retry: Option<RetryIn>,
    #[schema(nullable = false)]
    batch: Option<BatchIn>,
    /// Null removes the limit.
    #[schema(minimum = 1, maximum = 1000)]
    rate_limit_per_second: Option<i64>,
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    progress_interval_seconds: Option<i64>,
    /// True re-enables an endpoint (closing its circuit and forgetting its failures).
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

/// An event name (documentation only).
pub struct EventName;

impl PartialSchema for EventName {
    fn schema() -> RefOr<Schema> {
        string_enum(EventType::ALL.map(EventType::as_str)).into()
    }
}

impl ToSchema for EventName {}

/// A delivery status (documentation only).
pub struct DeliveryStatusName;

impl PartialSchema for DeliveryStatusName {
    fn schema() -> RefOr<Schema> {
        string_enum(deliveries::STATUSES).into()
    }
}

impl ToSchema for DeliveryStatusName {}

const FIELDS: &[&str] = &[
    "url",
    "events",
    "description",
    "headers",
    "secret",
    "timeout_seconds",
    "retry",
    "batch",
    "rate_limit_per_second",
    "progress_interval_seconds",
    "enabled",
];

/// Headers a customer may not set: they carry the protocol, the signature or the identity of the call.
fn reserved_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "host",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "user-agent",
        "proxy-authorization",
        "proxy-connection",
    ]
    .contains(&name.as_str())
        || name.starts_with("x-cipherstream-")
        || name.starts_with("webhook-")
}

pub(super) fn int_in(
    value: Option<&serde_json::Value>,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let value = value?;
    match value.as_i64() {
        Some(n) if range.contains(&n) => Some(n),
        _ => {
            errors.push(FieldError::new(
                field,
                format!(
                    "{field} must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            ));
            None
        }
    }
}

fn nested(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    keys: &[(&str, std::ops::RangeInclusive<i64>)],
    errors: &mut Vec<FieldError>,
) -> Vec<Option<i64>> {
    let mut out = vec![None; keys.len()];
    let Some(value) = map.get(field) else {
        return out;
    };
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(
            field,
            format!(
                "{field} must be an object with {}",
                keys.iter().map(|k| k.0).collect::<Vec<_>>().join(" and ")
            ),
        ));
        return out;
    };
    for name in object.keys() {
        if !keys.iter().any(|k| k.0 == name) {
            errors.push(FieldError::new(
                format!("{field}.{}", name.chars().take(60).collect::<String>()),
                format!(
                    "unknown field; accepted: {}",
                    keys.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    for (i, (key, range)) in keys.iter().enumerate() {
        out[i] = int_in(
            object.get(*key),
            &format!("{field}.{key}"),
            range.clone(),
            errors,
        );
    }
    out
}

/// Checks the fields of a creation (`base` None) or an update, collecting every error;
/// then resolves the URL's host to refuse non-public addresses.
pub(super) async fn validate(
    state: &AppState,
    base: Option<&Endpoint>,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<EndpointSpec, ApiError> {
    let mut errors = Vec::new();
    let mut spec = base.map(|b| b.spec.clone()).unwrap_or_default();
    for key in map.keys() {
        if !FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.chars().take(60).collect::<String>(),
                format!("unknown field; accepted fields: {}", FIELDS.join(", ")),
            ));
        }
    }
    if base.is_some() && map.contains_key("secret") {
        errors.push(FieldError::new(
            "secret",
            "the secret cannot be changed here; use POST /v1/webhooks/{webhook_id}/rotate-secret",
        ));
    }
    for name in ["url", "events"] {
        if base.is_none() && !map.contains_key(name) {
            errors.push(FieldError::new(name, format!("{name} is required")));
        }
    }
    let guard = state.config.webhook_settings().guard;
    let mut parsed_url = None;
    match map.get("url") {
        None => {}
        Some(serde_json::Value::String(url)) => match guard.check_url(url.trim()) {
            Ok(parsed) => {
                spec.url = parsed.to_string();
                parsed_url = Some(parsed);
            }
            Err(message) => errors.push(FieldError::new("url", message)),
        },
        Some(_) => errors.push(FieldError::new("url", "url must be a string")),
    }
    if let Some(value) = map.get("events") {
        let accepted = format!("accepted values: {}", EventType::names());
        match value.as_array() {
            Some(list) if !list.is_empty() => {
                let mut events = Vec::new();
                for item in list {
                    match item.as_str().and_then(EventType::parse) {
                        Some(e) if !events.contains(&e) => events.push(e),
                        Some(_) => {}
                        None => errors.push(FieldError::new(
                            "events",
                            format!(
                                "unknown event {}; {accepted}",
                                item.to_string().chars().take(60).collect::<String>()
                            ),
                        )),
                    }
                }
                events.sort();
                spec.events = events;
            }
            _ => errors.push(FieldError::new(
                "events",
                format!("events must be a non-empty list of event names; {accepted}"),
            )),
        }
    }
    match map.get("description") {
        None => {}
        Some(serde_json::Value::String(d)) if d.chars().count() <= 500 => {
            spec.description = d.trim().to_string()
        }
        Some(_) => errors.push(FieldError::new(
            "description",
            "description must be a string of at most 500 characters",
        )),
    }
    if let Some(value) = map.get("headers") {
        match value.as_object() {
            Some(object) if object.len() <= 20 => {
                let mut headers = BTreeMap::new();
                for (name, value) in object {
                    let shown: String = name.chars().take(60).collect();
                    let field = format!("headers.{shown}");
                    if reserved_header(name) {
                        errors.push(FieldError::new(field, format!("{shown} is reserved: CipherStream sets it (Host, Content-Type, Content-Length, User-Agent, connection headers, X-CipherStream-* and webhook-* are reserved)")));
                        continue;
                    }
                    if name.is_empty()
                        || name.len() > 100
                        || http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    {
                        errors.push(FieldError::new(field, "not a valid header name (letters, digits and !#$%&'*+-.^_`|~, at most 100)"));
                        continue;
                    }
                    let Some(text) = value.as_str() else {
                        errors.push(FieldError::new(field, "a header value must be a string"));
                        continue;
                    };
                    if text.len() > 1000
                        || text
                            .chars()
                            .any(|c| c != '\t' && (c.is_control() || !c.is_ascii()))
                    {
                        errors.push(FieldError::new(
                            field,
                            "a header value must be printable ASCII, at most 1000 characters",
                        ));
                        continue;
                    }
                    if headers
                        .keys()
                        .any(|k: &String| k.eq_ignore_ascii_case(name))
                    {
                        errors.push(FieldError::new(
                            field,
                            "the header is given twice (names are case-insensitive)",
                        ));
                        continue;
                    }
                    headers.insert(name.clone(), text.to_string());
                }
                spec.headers = headers;
            }
            _ => errors.push(FieldError::new(
                "headers",
                "headers must be an object of at most 20 name: value strings",
            )),
        }
    }
    if let Some(n) = int_in(
        map.get("timeout_seconds"),
        "timeout_seconds",
        1..=60,
        &mut errors,
    ) {
        spec.timeout_seconds = n;
    }
    let retry = nested(
        map,
        "retry",
        &[("max_retries", 0..=10), ("backoff_seconds", 1..=3600)],
        &mut errors,
    );
    if let Some(n) = retry[0] {
        spec.max_retries = n;
    }
    if let Some(n) = retry[1] {
        spec.backoff_seconds = n;
    }
    let batch = nested(
        map,
        "batch",
        &[("max_events", 1..=100), ("max_wait_seconds", 0..=300)],
        &mut errors,
    );
    if let Some(n) = batch[0] {
        spec.batch_max_events = n;
    }
    if let Some(n) = batch[1] {
        spec.batch_max_wait_seconds = n;
    }
    match map.get("rate_limit_per_second") {
        None => {}
        Some(serde_json::Value::Null) => spec.rate_limit_per_second = None,
        Some(value) => {
            if let Some(n) = int_in(Some(value), "rate_limit_per_second", 1..=1000, &mut errors) {
                spec.rate_limit_per_second = Some(n);
            }
        }
    }
    if let Some(n) = int_in(
        map.get("progress_interval_seconds"),
        "progress_interval_seconds",
        1..=3600,
        &mut errors,
    ) {
        spec.progress_interval_seconds = n;
    }
    match map.get("enabled") {
        None => {}
        Some(serde_json::Value::Bool(b)) => spec.enabled = *b,
        Some(_) => errors.push(FieldError::new("enabled", "enabled must be true or false")),
    }
    if let Some(serde_json::Value::String(secret)) = map.get("secret") {
        if let Err(message) = signing::check_secret(secret) {
            errors.push(FieldError::new("secret", message));
        }
    } else if map.get("secret").is_some_and(|v| !v.is_null()) {
        errors.push(FieldError::new("secret", "secret must be a string"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if let Some(url) = parsed_url {
        guard
            .check_resolved(&url)
            .await
            .map_err(|message| ApiError::field("url", message))?;
    }
    Ok(spec)
}
