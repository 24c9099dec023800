//! `/v1/webhooks`: endpoints and their secrets, and test events; the delivery log,
//! statistics, retries and recovery are in [`delivery_log`], input checks in [`input`].

mod delivery_log;
mod input;

pub use delivery_log::*;
use input::{int_in, validate};
pub use input::{BatchIn, DeliveryStatusName, EventName, RetryIn, WebhookIn, WebhookPatch};

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{body_object, list_query, ApiError, FieldError, Problem};
use super::AppState;
use crate::meta;
use crate::tenancy::{self, AuditEntry};
use crate::webhooks::deliveries::{self, Delivery};
use crate::webhooks::endpoints::{self, Endpoint};
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

pub(super) async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    detail: serde_json::Value,
) {
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
    let (_, limit, offset) = list_query(query, &[])?;
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

pub(super) fn shown(id: &str) -> String {
    id.chars().take(60).collect()
}

pub(super) async fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Endpoint, ApiError> {
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
