//! The delivery log, the dead-letter list, retries, recovery and statistics.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::auth::Caller;
use crate::http::error::{body_object, list_query, ApiError, FieldError, Problem};
use crate::http::AppState;
use crate::meta;
use crate::webhooks::deliveries::{
    self, Attempt, AttemptStats, Delivery, DeliveryFilter, RetryRefused, StatusCounts,
};
use crate::webhooks::EventType;

use super::input::{DeliveryStatusName, EventName};
use super::{audit, load, shown, CircuitOut, WebhookOut};

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
    let (mut values, limit, offset) = list_query(query, &["status", "event"])?;
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
    let (mut values, limit, offset) = list_query(query, &["webhook_id", "event"])?;
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
