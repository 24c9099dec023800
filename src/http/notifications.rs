//! `/v1/notifications/email`: a customer's optional mails about its jobs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::auth::Caller;
use super::error::{body_object, ApiError, FieldError, Problem};
use super::openapi::string_enum;
use super::AppState;
use crate::webhooks::email::{self, EmailSettings, EMAIL_EVENTS};
use crate::webhooks::EventType;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/notifications/email",
        get(get_email).put(put_email).delete(delete_email),
    )
}

/// A customer's email notifications.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"recipients": ["it@practice.example"], "events": ["job.completed", "job.failed"],
    "enabled": true, "updated_at": "2024-09-26T10:02:15.120Z"}))]
pub struct EmailOut {
    pub recipients: Vec<String>,
    /// Any of job.completed, job.failed, job.cancelled.
    pub events: Vec<String>,
    pub enabled: bool,
    pub updated_at: String,
}

impl From<EmailSettings> for EmailOut {
    fn from(s: EmailSettings) -> Self {
        EmailOut {
            recipients: s.recipients,
            events: s.events.iter().map(|e| e.as_str().to_string()).collect(),
            enabled: s.enabled,
            updated_at: s.updated_at,
        }
    }
}

/// The body of `PUT /v1/notifications/email` (documentation only).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"recipients": ["it@practice.example"], "events": ["job.completed", "job.failed"]}))]
pub struct EmailIn {
    /// 1-10 addresses.
    #[schema(value_type = Vec<EmailAddress>, inline, min_items = 1, max_items = 10)]
    recipients: Vec<String>,
    /// Default: job.completed and job.failed.
    #[schema(value_type = Option<Vec<EmailEventName>>, inline, nullable = false, min_items = 1)]
    events: Option<Vec<String>>,
    /// Default true.
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

/// An event that can be mailed (documentation only).
pub struct EmailEventName;

impl PartialSchema for EmailEventName {
    fn schema() -> RefOr<Schema> {
        string_enum(EMAIL_EVENTS.map(EventType::as_str)).into()
    }
}

impl ToSchema for EmailEventName {}

/// An email address (documentation only).
pub struct EmailAddress;

impl PartialSchema for EmailAddress {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254))
            .into()
    }
}

impl ToSchema for EmailAddress {}

fn not_found() -> ApiError {
    ApiError::NotFound(
        "no email notifications are set up; PUT /v1/notifications/email to set them up".into(),
    )
}

/// This customer's email notification settings.
#[utoipa::path(get, path = "/v1/notifications/email", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    responses(
        (status = 200, description = "The settings", body = EmailOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not set up", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_email(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<EmailOut>, ApiError> {
    let settings = email::get_settings(&state.meta, &caller.customer.id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(settings.into()))
}

/// Set up (or replace) mails about this customer's jobs.
#[utoipa::path(put, path = "/v1/notifications/email", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    request_body(content = EmailIn, description = "Recipients and events"),
    responses(
        (status = 200, description = "The settings", body = EmailOut),
        (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "This server has no SMTP server configured", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_email(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<EmailOut>, ApiError> {
    let map = body_object(&body)?;
    let mut errors = Vec::new();
    for key in map.keys() {
        if !["recipients", "events", "enabled"].contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.chars().take(60).collect::<String>(),
                "unknown field; accepted fields: recipients, events, enabled",
            ));
        }
    }
    let mut recipients = Vec::new();
    match map.get("recipients").and_then(|v| v.as_array()) {
        Some(list) if (1..=10).contains(&list.len()) => {
            for item in list {
                match item.as_str().map(|a| (a, email::check_address(a))) {
                    Some((address, Ok(()))) => recipients.push(address.to_string()),
                    Some((_, Err(message))) => errors.push(FieldError::new("recipients", message)),
                    None => {
                        errors.push(FieldError::new("recipients", "recipients must be strings"))
                    }
                }
            }
        }
        _ => errors.push(FieldError::new(
            "recipients",
            "recipients must be a list of 1 to 10 email addresses",
        )),
    }
    let accepted = EMAIL_EVENTS.map(EventType::as_str).join(", ");
    let events = match map.get("events") {
        None => vec![EventType::JobCompleted, EventType::JobFailed],
        Some(value) => {
            let mut events = Vec::new();
            match value.as_array().filter(|l| !l.is_empty()) {
                Some(list) => {
                    for item in list {
                        match item.as_str().and_then(EventType::parse) {
                            Some(e) if EMAIL_EVENTS.contains(&e) => {
                                if !events.contains(&e) {
                                    events.push(e)
                                }
                            }
                            _ => errors.push(FieldError::new(
                                "events",
                                format!("unknown event {item}; accepted values: {accepted}"),
                            )),
                        }
                    }
                }
                None => errors.push(FieldError::new(
                    "events",
                    format!("events must be a non-empty list; accepted values: {accepted}"),
                )),
            }
            events
        }
    };
    let enabled = match map.get("enabled") {
        None => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("enabled", "enabled must be true or false"));
            true
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if state.config.smtp_settings().is_none() {
        return Err(ApiError::Unprocessable(
            "email notifications are not available: this server has no SMTP server configured (smtp_host)".into(),
        ));
    }
    let settings = email::put_settings(
        &state.meta,
        &caller.customer.id,
        &recipients,
        &events,
        enabled,
    )
    .await?;
    Ok(Json(settings.into()))
}

/// Stop mails about this customer's jobs.
#[utoipa::path(delete, path = "/v1/notifications/email", tag = "webhooks", security(("api_key" = []), ("api_key_header" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not set up", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_email(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    if email::delete_settings(&state.meta, &caller.customer.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
