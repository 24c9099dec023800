//! `/v1/webhooks`: endpoints, their secrets, deliveries, statistics, the dead-letter
//! list, retries and recovery, and test events.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::auth::Caller;
use super::error::{body_object, page_param, ApiError, FieldError, Problem};
use super::openapi::string_enum;
use super::AppState;
use crate::meta;
use crate::tenancy::{self, AuditEntry};
use crate::webhooks::deliveries::{
    self, Attempt, AttemptStats, Delivery, DeliveryFilter, RetryRefused, StatusCounts,
};
use crate::webhooks::endpoints::{self, Endpoint, EndpointSpec};
use crate::webhooks::outbox::{self, Audience};
use crate::webhooks::{signing, EventType};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/v1/webhooks/dead-letter", get(dead_letter))
        .route("/v1/webhooks/deliveries/{delivery_id}", get(get_delivery))
        .route(
            "/v1/webhooks/deliveries/{delivery_id}/retry",
            post(retry_delivery),
        )
        .route(
            "/v1/webhooks/{webhook_id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route(
            "/v1/webhooks/{webhook_id}/rotate-secret",
            post(rotate_secret),
        )
        .route("/v1/webhooks/{webhook_id}/test", post(test_webhook))
        .route("/v1/webhooks/{webhook_id}/deliveries", get(list_deliveries))
        .route("/v1/webhooks/{webhook_id}/stats", get(webhook_stats))
        .route("/v1/webhooks/{webhook_id}/recover", post(recover))
}

/// Retry policy of an endpoint.
#[derive(Serialize, ToSchema)]
pub struct RetryOut {
    /// Retries after the first attempt (0-10).
    #[schema(example = 3)]
    pub max_retries: i64,
    /// First retry delay in seconds; doubles with each retry, ±20% jitter (1-3600).
    #[schema(example = 10)]
    pub backoff_seconds: i64,
}

/// Batch settings of an endpoint.
#[derive(Serialize, ToSchema)]
pub struct BatchOut {
    /// Events per call (1-100); above 1 every call is a `batch` envelope.
    #[schema(example = 1)]
    pub max_events: i64,
    /// How long a first event waits for company before its batch goes (0-300).
    #[schema(example = 0)]
    pub max_wait_seconds: i64,
}

/// The circuit breaker of an endpoint.
#[derive(Serialize, ToSchema)]
pub struct CircuitOut {
    /// `closed` (delivering), `open` (waiting out the cool-down) or `half_open` (one probe in flight).
    #[schema(example = "closed")]
    pub state: String,
    pub consecutive_failures: i64,
    /// When an open circuit lets its probe through.
    pub retry_at: Option<String>,
    /// Since when every call has failed.
    pub failing_since: Option<String>,
}

/// A webhook endpoint.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "webhook_id": "wh_3f9a1c0d5e7b2a64", "url": "https://hooks.example.com/cipherstream",
    "description": "Data warehouse loader", "events": ["job.completed", "job.failed"],
    "headers": {"X-Team": "data"}, "timeout_seconds": 30,
    "retry": {"max_retries": 3, "backoff_seconds": 10}, "batch": {"max_events": 1, "max_wait_seconds": 0},
    "rate_limit_per_second": null, "progress_interval_seconds": 10, "enabled": true, "disabled_reason": null,
    "circuit": {"state": "closed", "consecutive_failures": 0, "retry_at": null, "failing_since": null},
    "secret_rotation_ends_at": null,
    "created_at": "2024-09-26T10:02:15.120Z", "updated_at": "2024-09-26T10:02:15.120Z"}))]
pub struct WebhookOut {
    #[schema(example = "wh_3f9a1c0d5e7b2a64")]
    pub webhook_id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    /// Custom headers sent with every call.
    pub headers: BTreeMap<String, String>,
    pub timeout_seconds: i64,
    pub retry: RetryOut,
    pub batch: BatchOut,
    /// Calls per second at most; `null` for no limit.
    pub rate_limit_per_second: Option<i64>,
    /// `job.progress` at most once per this many seconds.
    pub progress_interval_seconds: i64,
    pub enabled: bool,
    /// Why the endpoint is disabled, when it is.
    pub disabled_reason: Option<String>,
    pub circuit: CircuitOut,
    /// While a rotation's grace period lasts, the old secret signs beside the new one until then.
    pub secret_rotation_ends_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret: only in the answer to creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq=")]
    pub secret: Option<String>,
}

impl WebhookOut {
    fn new(e: Endpoint, secret: Option<String>) -> WebhookOut {
        let secret_rotation_ends_at = e.rotation_ends_at();
        let open = e.circuit_state != "closed";
        WebhookOut {
            webhook_id: e.id,
            url: e.spec.url,
            description: e.spec.description,
            events: e
                .spec
                .events
                .iter()
                .map(|v| v.as_str().to_string())
                .collect(),
            headers: e.spec.headers,
            timeout_seconds: e.spec.timeout_seconds,
            retry: RetryOut {
                max_retries: e.spec.max_retries,
                backoff_seconds: e.spec.backoff_seconds,
            },
            batch: BatchOut {
                max_events: e.spec.batch_max_events,
                max_wait_seconds: e.spec.batch_max_wait_seconds,
            },
            rate_limit_per_second: e.spec.rate_limit_per_second,
            progress_interval_seconds: e.spec.progress_interval_seconds,
            enabled: e.spec.enabled,
            disabled_reason: e.disabled_reason,
            circuit: CircuitOut {
                state: e.circuit_state,
                consecutive_failures: e.consecutive_failures,
                retry_at: if open { e.circuit_retry_at } else { None },
                failing_since: e.failing_since,
            },
            secret_rotation_ends_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
            secret,
        }
    }
}

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

fn int_in(
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
async fn validate(
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

async fn audit(state: &AppState, caller: &Caller, action: &str, detail: serde_json::Value) {
    tenancy::record(
        &state.meta,
        AuditEntry {
            customer_id: Some(caller.customer.id.clone()),
            key_id: Some(caller.key_id.clone()),
            action: action.into(),
            ip: caller.ip.clone(),
            request_id: caller.request_id.clone(),
            detail,
            ..AuditEntry::default()
        },
    )
    .await;
}

/// Subscribe an endpoint to events.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    request_body(content = WebhookIn, description = "The endpoint"),
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = WebhookOut, headers(("Location" = String, description = "/v1/webhooks/{webhook_id}"))),
        (status = 400, description = "Invalid field (named in `errors`, with the accepted values), including refused URLs", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = body_object(&body)?;
    let spec = validate(&state, None, &map).await?;
    let secret = match map.get("secret").and_then(|v| v.as_str()) {
        Some(s) => s.to_string(),
        None => signing::new_secret(),
    };
    let endpoint = endpoints::create_endpoint(
        &state.meta,
        &state.master,
        &caller.customer.id,
        &spec,
        &secret,
    )
    .await?;
    audit(
        &state,
        &caller,
        "webhook.create",
        serde_json::json!({"webhook_id": endpoint.id, "url": endpoint.spec.url, "events": endpoints::events_text(&endpoint.spec.events)}),
    )
    .await;
    let location = format!("/v1/webhooks/{}", endpoint.id);
    let mut response = (
        StatusCode::CREATED,
        Json(WebhookOut::new(endpoint, Some(secret))),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Query parameters of lists: only `limit` and `offset`, plus the named filters.
fn parse_query(
    query: Option<String>,
    filters: &[&str],
) -> Result<(BTreeMap<String, String>, i64, i64), ApiError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (mut limit, mut offset) = (50, 0);
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in &pairs {
        if pairs.iter().filter(|(n, _)| n == name).count() > 1 {
            errors.push(FieldError::new(
                name,
                format!("{name} is given more than once"),
            ));
            continue;
        }
        if page_param(name, value, &mut limit, &mut offset, &mut errors) {
            continue;
        }
        if filters.contains(&name.as_str()) {
            values.insert(name.clone(), value.clone());
        } else {
            let shown: String = name.chars().take(60).collect();
            let mut accepted = vec!["limit", "offset"];
            accepted.extend_from_slice(filters);
            errors.push(FieldError::new(
                name,
                format!(
                    "unknown parameter {shown:?}; accepted parameters: {}",
                    accepted.join(", ")
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok((values, limit, offset))
    } else {
        Err(ApiError::fields(errors))
    }
}

/// A page of endpoints.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookOut>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Paging parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct PageQuery {
    /// 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// List this customer's endpoints, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = WebhookList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<WebhookList>, ApiError> {
    let (_, limit, offset) = parse_query(query, &[])?;
    let (items, total) = endpoints::list_endpoints(
        &state.meta,
        &state.master,
        &caller.customer.id,
        limit,
        offset,
    )
    .await?;
    Ok(Json(WebhookList {
        webhooks: items
            .into_iter()
            .map(|e| WebhookOut::new(e, None))
            .collect(),
        total,
        limit,
        offset,
    }))
}

fn shown(id: &str) -> String {
    id.chars().take(60).collect()
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<Endpoint, ApiError> {
    endpoints::get_endpoint(&state.meta, &state.master, &caller.customer.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {:?}", shown(id))))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookOut>, ApiError> {
    Ok(Json(WebhookOut::new(
        load(&state, &caller, &id).await?,
        None,
    )))
}

/// Change an endpoint; `"enabled": true` re-enables a disabled one.
#[utoipa::path(patch, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id")),
    request_body(content = WebhookPatch, description = "Any field of creation except `secret`"),
    responses(
        (status = 200, description = "The updated endpoint", body = WebhookOut),
        (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<WebhookOut>, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let map = body_object(&body)?;
    let spec = validate(&state, Some(&current), &map).await?;
    let updated = endpoints::update_endpoint(&state.meta, &state.master, &current, &spec)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {:?}", shown(&id))))?;
    let changed: Vec<&String> = map.keys().collect();
    audit(
        &state,
        &caller,
        "webhook.update",
        serde_json::json!({"webhook_id": id, "fields": changed, "enabled": updated.spec.enabled}),
    )
    .await;
    if updated.spec.enabled {
        outbox::wake();
    }
    Ok(Json(WebhookOut::new(updated, None)))
}

/// Delete an endpoint with its delivery log.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !endpoints::delete_endpoint(&state.meta, &caller.customer.id, &id).await? {
        return Err(ApiError::NotFound(format!("no webhook {:?}", shown(&id))));
    }
    audit(
        &state,
        &caller,
        "webhook.delete",
        serde_json::json!({"webhook_id": id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /v1/webhooks/{id}/rotate-secret`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct RotateIn {
    /// The new secret (`whsec_` + base64 of 24-64 bytes); generated when absent or null.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]{32,88}={0,2}$")]
    secret: Option<String>,
    /// How long the old secret keeps signing beside the new one: 0 to 604800 seconds
    /// (7 days); the server's default (24 h) when absent.
    #[schema(nullable = false, minimum = 0, maximum = 604800)]
    grace_period_seconds: Option<i64>,
}

/// Rotate the signing secret; the old one keeps signing beside it for a grace period.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/rotate-secret", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id")),
    request_body(content = Option<RotateIn>, description = "Optional: the new secret and the grace period"),
    responses(
        (status = 200, description = "Rotated; the new `secret` is shown only now", body = WebhookOut),
        (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<WebhookOut>, ApiError> {
    let current = load(&state, &caller, &id).await?;
    // The body is optional: nothing, or JSON `null`, keeps the defaults.
    let trimmed = body.trim_ascii();
    let map = if trimmed.is_empty() || trimmed == b"null" {
        serde_json::Map::new()
    } else {
        body_object(&body)?
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        if key != "secret" && key != "grace_period_seconds" {
            errors.push(FieldError::new(
                shown(key),
                "unknown field; accepted fields: secret, grace_period_seconds",
            ));
        }
    }
    let secret = match map.get("secret") {
        None | Some(serde_json::Value::Null) => signing::new_secret(),
        Some(serde_json::Value::String(s)) => {
            if let Err(message) = signing::check_secret(s) {
                errors.push(FieldError::new("secret", message));
            }
            s.clone()
        }
        Some(_) => {
            errors.push(FieldError::new("secret", "secret must be a string"));
            String::new()
        }
    };
    let grace = int_in(
        map.get("grace_period_seconds"),
        "grace_period_seconds",
        0..=604_800,
        &mut errors,
    )
    .unwrap_or(state.config.webhook_secret_grace_seconds as i64);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let until = Utc::now() + chrono::Duration::seconds(grace);
    let rotated = endpoints::rotate_secret(&state.meta, &state.master, &current, &secret, until)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {:?}", shown(&id))))?;
    audit(
        &state,
        &caller,
        "webhook.rotate_secret",
        serde_json::json!({"webhook_id": id, "grace_period_seconds": grace}),
    )
    .await;
    Ok(Json(WebhookOut::new(rotated, Some(secret))))
}

/// Send a sample `job.completed` event, marked `"test": true`, to this endpoint.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/test", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id")),
    responses(
        (status = 202, description = "Queued; follow it in the delivery log", body = Delivery),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let endpoint = load(&state, &caller, &id).await?;
    if !endpoint.spec.enabled {
        return Err(ApiError::Conflict(format!(
            "webhook {id} is disabled; enable it with PATCH {{\"enabled\": true}} first"
        )));
    }
    let data = sample_job(&caller.customer.id, &state.public_base);
    let mut tx = state.meta.begin().await.map_err(anyhow::Error::from)?;
    let emitted = outbox::emit(
        &mut tx,
        Audience::Endpoint(&endpoint.id),
        EventType::JobCompleted,
        data,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    outbox::wake();
    let delivery_id = emitted.deliveries.first().cloned().unwrap_or_default();
    let (delivery, _) = deliveries::get_delivery(&state.meta, &caller.customer.id, &delivery_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the test delivery vanished"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

/// A completed job as an example payload.
fn sample_job(customer_id: &str, public_base: &str) -> serde_json::Value {
    let now = Utc::now();
    let id = format!(
        "appointments_{}_{}",
        now.timestamp_millis(),
        crate::crypto::random_hex(4)
    );
    serde_json::json!({
        "job_id": id, "customer_id": customer_id, "procedure_name": "appointments", "status": "completed",
        "progress_percent": 100, "rows_processed": 45678, "estimated_rows": 45678, "estimated_completion_seconds": 0,
        "created_at": meta::format_time(now - chrono::Duration::seconds(65)), "updated_at": meta::format_time(now),
        "started_at": meta::format_time(now - chrono::Duration::seconds(65)), "completed_at": meta::format_time(now),
        "execution_time_seconds": 64.75, "file_size_bytes": 2048576, "output_format": "ndjson", "compression": "gzip",
        "s3_url": format!("{public_base}/v1/files/example-only"),
        "expires_at": meta::format_time(now + chrono::Duration::hours(12)), "error_message": null, "retry_count": 0,
        "metadata": {"from_date": "2024-01-01", "to_date": "2024-12-31", "date_modifier": "Created", "filters": {}, "columns": null, "limit": null},
        "encryption": {"algorithm": "AES-256-GCM", "key_id": null, "format": "CSE1"}, "sha256": null, "schedule_id": null,
    })
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Filters of the delivery log.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct DeliveryQuery {
    /// Only deliveries in this state.
    #[param(value_type = Option<DeliveryStatusName>, inline)]
    status: Option<String>,
    /// Only deliveries of this event.
    #[param(value_type = Option<EventName>, inline)]
    event: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

fn delivery_filter(
    values: &BTreeMap<String, String>,
    limit: i64,
    offset: i64,
) -> Result<DeliveryFilter, ApiError> {
    let mut errors = Vec::new();
    if let Some(status) = values.get("status") {
        if !deliveries::STATUSES.contains(&status.as_str()) {
            errors.push(FieldError::new(
                "status",
                format!(
                    "unknown status {:?}; accepted values: {}",
                    shown(status),
                    deliveries::STATUSES.join(", ")
                ),
            ));
        }
    }
    if let Some(event) = values.get("event") {
        if EventType::parse(event).is_none() {
            errors.push(FieldError::new(
                "event",
                format!(
                    "unknown event {:?}; accepted values: {}",
                    shown(event),
                    EventType::names()
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(DeliveryFilter {
        endpoint_id: values.get("webhook_id").cloned(),
        status: values.get("status").cloned(),
        event: values.get("event").cloned(),
        limit,
        offset,
    })
}

/// The delivery log of an endpoint, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let (mut values, limit, offset) = parse_query(query, &["status", "event"])?;
    let endpoint = load(&state, &caller, &id).await?;
    values.insert("webhook_id".into(), endpoint.id);
    let filter = delivery_filter(&values, limit, offset)?;
    let (items, total) =
        deliveries::list_deliveries(&state.meta, &caller.customer.id, &filter).await?;
    Ok(Json(DeliveryList {
        deliveries: items,
        total,
        limit,
        offset,
    }))
}

/// Filters of the dead-letter list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct DeadLetterQuery {
    /// Only this endpoint's deliveries.
    webhook_id: Option<String>,
    /// Only deliveries of this event.
    #[param(value_type = Option<EventName>, inline)]
    event: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// Deliveries that used up their attempts, newest first.
#[utoipa::path(get, path = "/v1/webhooks/dead-letter", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "A page of dead deliveries", body = DeliveryList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let (mut values, limit, offset) = parse_query(query, &["webhook_id", "event"])?;
    values.insert("status".into(), "dead".into());
    let filter = delivery_filter(&values, limit, offset)?;
    let (items, total) =
        deliveries::list_deliveries(&state.meta, &caller.customer.id, &filter).await?;
    Ok(Json(DeliveryList {
        deliveries: items,
        total,
        limit,
        offset,
    }))
}

/// A delivery with every attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<Attempt>,
}

/// One delivery with its attempts.
#[utoipa::path(get, path = "/v1/webhooks/deliveries/{delivery_id}", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("delivery_id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let (delivery, attempt_log) = deliveries::get_delivery(&state.meta, &caller.customer.id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery {:?}", shown(&id))))?;
    Ok(Json(DeliveryDetail {
        delivery,
        attempt_log,
    }))
}

/// Send a dead (or succeeded) delivery once more.
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{delivery_id}/retry", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("delivery_id" = String, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued for one more attempt", body = Delivery),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery for this customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is still on its way", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    match deliveries::retry_delivery(&state.meta, &caller.customer.id, &id).await? {
        Ok(delivery) => Ok((StatusCode::ACCEPTED, Json(delivery))),
        Err(RetryRefused::NotFound) => {
            Err(ApiError::NotFound(format!("no delivery {:?}", shown(&id))))
        }
        Err(RetryRefused::InFlight(status)) => Err(ApiError::Conflict(format!(
            "delivery {id} is {status}: only dead or succeeded deliveries can be sent again"
        ))),
    }
}

/// The body of `POST /v1/webhooks/{id}/recover`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"since": "2024-09-26T00:00:00Z"}))]
pub struct RecoverIn {
    /// RFC 3339 time: dead deliveries created since then are sent again.
    #[schema(format = DateTime)]
    since: String,
    /// RFC 3339 time, default now; not before `since`.
    #[schema(format = DateTime, nullable = false)]
    until: Option<String>,
}

/// How many deliveries a recovery queued.
#[derive(Serialize, ToSchema)]
pub struct Recovered {
    pub requeued: u64,
}

fn time_field(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let value = map.get(field)?;
    match value.as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        _ => {
            errors.push(FieldError::new(
                field,
                format!("{field} must be an RFC 3339 time, e.g. 2024-09-26T10:02:15Z"),
            ));
            None
        }
    }
}

/// Send again every dead delivery of this endpoint created in a time window.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/recover", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id")),
    request_body(content = RecoverIn, description = "The window"),
    responses(
        (status = 202, description = "Queued", body = Recovered),
        (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Recovered>), ApiError> {
    let endpoint = load(&state, &caller, &id).await?;
    let map = body_object(&body)?;
    let mut errors = Vec::new();
    for key in map.keys() {
        if key != "since" && key != "until" {
            errors.push(FieldError::new(
                shown(key),
                "unknown field; accepted fields: since, until",
            ));
        }
    }
    if !map.contains_key("since") {
        errors.push(FieldError::new(
            "since",
            "since is required (RFC 3339 time)",
        ));
    }
    let since = time_field(&map, "since", &mut errors);
    let until = time_field(&map, "until", &mut errors).unwrap_or_else(Utc::now);
    if let Some(since) = since {
        if since > until {
            let field = if map.contains_key("until") {
                "until"
            } else {
                "since"
            };
            errors.push(FieldError::new(
                field,
                "since must not be after until (default: now)",
            ));
        }
    }
    let Some(since) = since.filter(|_| errors.is_empty()) else {
        return Err(ApiError::fields(errors));
    };
    let requeued = deliveries::recover(&state.meta, &endpoint.id, since, until).await?;
    audit(
        &state,
        &caller,
        "webhook.recover",
        serde_json::json!({"webhook_id": id, "since": meta::format_time(since), "until": meta::format_time(until), "requeued": requeued}),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(Recovered { requeued })))
}

/// Delivery statistics of an endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookStats {
    pub webhook_id: String,
    /// Deliveries by status (all time).
    pub deliveries: StatusCounts,
    /// Calls since `since` (default: the last 24 hours).
    pub calls: AttemptStats,
    pub circuit: CircuitOut,
    pub enabled: bool,
}

/// The window of the statistics.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct StatsQuery {
    /// RFC 3339 time; default 24 hours ago.
    #[param(format = DateTime)]
    since: Option<String>,
}

/// Success rate, latency percentiles and circuit state of an endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/stats", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    params(("webhook_id" = String, Path, description = "Webhook id"), StatsQuery),
    responses(
        (status = 200, description = "The statistics", body = WebhookStats),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn webhook_stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<WebhookStats>, ApiError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut since = Utc::now() - chrono::Duration::hours(24);
    let mut errors = Vec::new();
    for (name, value) in &pairs {
        if name != "since" {
            errors.push(FieldError::new(
                shown(name),
                "unknown parameter; accepted parameters: since",
            ));
            continue;
        }
        match DateTime::parse_from_rfc3339(value) {
            Ok(t) => since = t.with_timezone(&Utc),
            Err(_) => errors.push(FieldError::new(
                "since",
                "since must be an RFC 3339 time, e.g. 2024-09-26T10:02:15Z",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let endpoint = load(&state, &caller, &id).await?;
    let (counts, calls) = deliveries::stats(&state.meta, &endpoint.id, since).await?;
    let out = WebhookOut::new(endpoint, None);
    Ok(Json(WebhookStats {
        webhook_id: out.webhook_id,
        deliveries: counts,
        calls,
        circuit: out.circuit,
        enabled: out.enabled,
    }))
}
