//! `GET /v1/audit`: the customer's audit trail.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{list_query, ApiError, FieldError, Problem};
use super::AppState;
use crate::meta;
use crate::tenancy::{self, AuditFilter, StoredAuditEntry};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list_audit))
}

/// A page of audit entries.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<StoredAuditEntry>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Filters of the audit trail.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct AuditQuery {
    /// RFC 3339 time: entries at or after it.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339 time: entries at or before it; not before `from`.
    #[param(format = DateTime)]
    to: Option<String>,
    /// One action, e.g. `api.request`, `job.completed`, `webhook.create`.
    #[param(pattern = "^[a-z._]{1,60}$", example = "api.request")]
    action: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// This customer's audit trail, newest first: every API call (time, key, IP, method,
/// path, status, duration, request id), job lifecycle transitions, webhook endpoint
/// changes and key actions. Nothing secret is recorded.
#[utoipa::path(get, path = "/v1/audit", tag = "operations", security(("api_key" = []), ("api_key_header" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditList>, ApiError> {
    let (values, limit, offset) = list_query(query, &["from", "to", "action"])?;
    let mut filter = AuditFilter {
        limit,
        offset,
        ..AuditFilter::default()
    };
    let mut errors = Vec::new();
    let mut bounds: Vec<(String, DateTime<Utc>)> = Vec::new();
    for (name, value) in &values {
        match name.as_str() {
            "from" | "to" => match DateTime::parse_from_rfc3339(value) {
                Ok(t) => bounds.push((name.clone(), t.with_timezone(&Utc))),
                Err(_) => errors.push(FieldError::new(
                    name,
                    format!("{name} must be an RFC 3339 time, e.g. 2024-09-26T10:02:15Z"),
                )),
            },
            "action" => {
                let ok = !value.is_empty()
                    && value.len() <= 60
                    && value
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
                if ok {
                    filter.action = Some(value.clone());
                } else {
                    errors.push(FieldError::new(
                        "action",
                        "action must be an action name such as api.request, job.completed or webhook.create",
                    ));
                }
            }
            // list_query admits no other name.
            _ => {}
        }
    }
    for (name, time) in &bounds {
        let text = meta::format_time(*time);
        if name == "from" {
            filter.from = Some(text);
        } else {
            filter.to = Some(text);
        }
    }
    if let (Some(from), Some(to)) = (&filter.from, &filter.to) {
        if from > to {
            errors.push(FieldError::new("to", "to must not be before from"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (entries, total) = tenancy::list_audit(&state.meta, &caller.customer.id, &filter).await?;
    Ok(Json(AuditList {
        entries,
        total,
        limit: filter.limit,
        offset: filter.offset,
    }))
}
