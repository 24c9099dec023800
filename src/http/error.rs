//! RFC 9457 problem+json: the one way every error leaves the API.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Base of the `type` URIs of our problems.
pub const PROBLEM_BASE: &str = "https://docs.cipherstream.dev/errors/";
const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// The parameter or body field, e.g. `to_date`.
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, stable across releases.
    #[serde(rename = "type")]
    #[schema(example = "https://docs.cipherstream.dev/errors/invalid-parameter")]
    pub kind: String,
    /// Short summary of the kind of problem.
    #[schema(example = "Invalid parameter")]
    pub title: String,
    /// The HTTP status.
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong with this request.
    #[schema(example = "to_date must not be before from_date")]
    pub detail: String,
    /// The request path.
    #[schema(example = "/v1/extract/appointments")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Per-field errors, when the input was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id (also in the `X-Request-Id` header); quote it to support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Errors a handler returns; each maps to one status and problem type.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more inputs are invalid (400).
    #[error("{detail}")]
    InvalidInput {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Missing or unknown credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Allowed credentials but not from here (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource for this customer (404).
    #[error("{0}")]
    NotFound(String),
    /// State conflict (409).
    #[error("{0}")]
    Conflict(String),
    /// The resource existed but is gone for good (410).
    #[error("{0}")]
    Gone(String),
    /// Well-formed but cannot be processed (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The practice database could not be reached or failed (502).
    #[error("{0}")]
    SourceUnavailable(String),
    /// A synchronous extraction ran past its time limit (504).
    #[error("{0}")]
    Timeout(String),
    /// Over the request quota (429); `Retry-After` says when to come back.
    #[error("{0}")]
    RateLimited(String),
    /// Anything else (500); the chain is logged, not shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A single-field input error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        ApiError::InvalidInput {
            detail: error.message.clone(),
            errors: vec![error],
        }
    }

    /// Several field errors at once; the detail is the first message.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => one.message.clone(),
            [first, ..] => format!("{} (and {} more)", first.message, errors.len() - 1),
            [] => "invalid input".to_string(),
        };
        ApiError::InvalidInput { detail, errors }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::InvalidInput { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid-parameter",
                "Invalid parameter",
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone", "Gone"),
            ApiError::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Unprocessable request",
            ),
            ApiError::SourceUnavailable(_) => (
                StatusCode::BAD_GATEWAY,
                "source-unavailable",
                "Practice database unavailable",
            ),
            ApiError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "Extraction timed out",
            ),
            ApiError::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let detail = match &self {
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                "The server failed to handle this request; quote the request_id to support."
                    .to_string()
            }
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::InvalidInput { errors, .. } => errors,
            _ => Vec::new(),
        };
        problem_response(status, kind, title, detail, errors)
    }
}

/// Builds a problem+json response; `instance` and `request_id` are filled in by [`problem_context`].
pub fn problem_response(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: String,
    errors: Vec<FieldError>,
) -> Response {
    let problem = Problem {
        kind: format!("{PROBLEM_BASE}{kind}"),
        title: title.to_string(),
        status: status.as_u16(),
        detail,
        instance: None,
        errors,
        request_id: None,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

/// Middleware: gives every error response a problem+json body carrying the request
/// path and id, including the bare 404/405/413 answers of the router itself.
pub async fn problem_context(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = response.into_parts();
    let mut problem: serde_json::Value = if is_problem {
        match axum::body::to_bytes(body, 64 * 1024).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| serde_json::json!({})),
            Err(_) => serde_json::json!({}),
        }
    } else {
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let (kind, title, detail) = generic_problem(status, &path, &bytes);
        serde_json::json!({
            "type": format!("{PROBLEM_BASE}{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        })
    };
    if let Some(object) = problem.as_object_mut() {
        object.insert("instance".into(), path.into());
        if let Some(id) = request_id {
            object.insert("request_id".into(), id.into());
        }
    }
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&problem).unwrap_or_default()),
    )
}

fn generic_problem(
    status: StatusCode,
    path: &str,
    body: &[u8],
) -> (&'static str, &'static str, String) {
    let text = String::from_utf8_lossy(body).trim().to_string();
    match status {
        StatusCode::NOT_FOUND => (
            "not-found",
            "Not found",
            format!("no endpoint at {path}; see /docs for the API"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "Method not allowed",
            format!("{path} does not accept this method"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "Payload too large",
            "the request body is too large".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json".into(),
        ),
        s if s.is_server_error() => (
            "internal",
            "Internal server error",
            "The server failed to handle this request; quote the request_id to support.".into(),
        ),
        _ => (
            "bad-request",
            "Bad request",
            if text.is_empty() {
                "the request is invalid".into()
            } else {
                text
            },
        ),
    }
}

/// Reads `limit` (1–100) or `offset` (≥ 0) of a list endpoint into `target`; any other
/// name returns false so the caller can handle it.
pub fn page_param(
    name: &str,
    value: &str,
    limit: &mut i64,
    offset: &mut i64,
    errors: &mut Vec<FieldError>,
) -> bool {
    match name {
        "limit" => match value.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => *limit = n,
            _ => errors.push(FieldError::new(
                "limit",
                "limit must be an integer from 1 to 100",
            )),
        },
        "offset" => match value.parse::<i64>() {
            Ok(n) if n >= 0 => *offset = n,
            _ => errors.push(FieldError::new(
                "offset",
                "offset must be an integer of 0 or more",
            )),
        },
        _ => return false,
    }
    true
}

/// The request body as a JSON object, or a 400 naming `body`.
pub fn body_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::field(
            "body",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::field(
            "body",
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

/// The query of a list: `limit` (1-100, default 50) and `offset`, plus the named filters
/// (returned by name); a repeated or unknown parameter is refused, naming it.
pub fn list_query(
    query: Option<String>,
    filters: &[&str],
) -> Result<(std::collections::BTreeMap<String, String>, i64, i64), ApiError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (mut limit, mut offset) = (50, 0);
    let mut values = std::collections::BTreeMap::new();
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
