//! `/v1/advanced`: direct table access and stored-routine calls, for needs the
//! catalog's procedures do not cover. Requests here run under the advanced timeout
//! (180 s by default) both on the practice database (its statement time limit) and
//! in the server (a deadline on the whole request).
//!
//! Table and column names are never taken from input: a request names them, and the
//! source's own catalog supplies the identifiers that are quoted into SQL.

pub mod call;
mod call_body;
pub mod tables;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::export::{self, Compression, OutputFormat};
use crate::source::{Source, SourceError, SourceSettings};
use crate::tenancy::{self, AuditEntry};

/// The advanced time limit in force, on the database and in the server.
fn advanced_timeout(state: &AppState) -> Duration {
    Duration::from_secs(state.config.advanced_timeout_seconds)
}

/// The handlers and schemas of this module in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(tables::list_tables, tables::extract_table, call::call_routine),
    components(schemas(
        tables::TablesOut,
        tables::TableOut,
        tables::TableColumnOut,
        crate::catalog::TableKind,
        call::CallBody
    ))
)]
pub struct AdvancedDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/advanced/tables", get(tables::list_tables))
        .route("/v1/advanced/tables/{table}", get(tables::extract_table))
        .route("/v1/advanced/call", post(call::call_routine))
}

/// A streamed file: content type, attachment name, no caching.
fn file_response(
    body: axum::body::Body,
    format: OutputFormat,
    compression: Compression,
    file_name: &str,
) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(export::content_type(format, compression)),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert("x-cipherstream-mode", HeaderValue::from_static("sync"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The customer's source, on the pool whose statements run under the advanced time limit.
async fn open_source(state: &AppState, caller: &Caller) -> Result<Arc<Source>, ApiError> {
    let settings = SourceSettings {
        pool_size: state.config.source_pool_size,
        statement_timeout: advanced_timeout(state),
    };
    let customer_id = caller.customer.id.clone();
    state
        .sources
        .get_or_open(
            &customer_id,
            async { Ok(tenancy::source_url(&state.meta, &state.master, &customer_id).await?) },
            settings,
        )
        .await
        .map_err(|e| {
            ApiError::SourceUnavailable(format!("the practice database is not usable: {e:#}"))
        })
}

/// Runs a source operation under the request's deadline.
async fn within<T>(
    state: &AppState,
    deadline: tokio::time::Instant,
    operation: impl std::future::Future<Output = Result<T, SourceError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout_at(deadline, operation)
        .await
        .map_err(|_| {
            ApiError::Timeout(format!(
                "the practice database did not answer within the advanced time limit of {} s",
                advanced_timeout(state).as_secs()
            ))
        })?
        .map_err(source_error)
}

/// A source failure as the client sees it: read-only refusals are the request's
/// fault (422), time limits 504, anything else the database's (502).
fn source_error(error: SourceError) -> ApiError {
    match error {
        SourceError::ReadOnly(_) => ApiError::Unprocessable(error.to_string()),
        SourceError::Timeout(_) => ApiError::Timeout(format!(
            "{error}; narrow the request (a date range, fewer columns, a limit)"
        )),
        other => ApiError::SourceUnavailable(other.to_string()),
    }
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    path: String,
    started: Instant,
    detail: serde_json::Value,
) {
    tenancy::record(
        &state.meta,
        AuditEntry {
            customer_id: Some(caller.customer.id.clone()),
            key_id: Some(caller.key_id.clone()),
            action: action.into(),
            path: Some(path),
            status: Some(200),
            duration_ms: Some(started.elapsed().as_millis() as i64),
            ip: caller.ip.clone(),
            request_id: caller.request_id.clone(),
            detail,
            ..AuditEntry::default()
        },
    )
    .await;
}

fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::AdvancedDoc;

    #[test]
    fn handlers_are_documented_under_the_advanced_tag() {
        let doc = serde_json::to_value(AdvancedDoc::openapi()).unwrap();
        for (path, method) in [
            ("/v1/advanced/tables", "get"),
            ("/v1/advanced/tables/{table}", "get"),
            ("/v1/advanced/call", "post"),
        ] {
            let operation = &doc["paths"][path][method];
            assert_eq!(operation["tags"][0], "advanced", "{path}");
            assert!(operation["responses"]["400"].is_object(), "{path}");
        }
        let parameters = doc["paths"]["/v1/advanced/tables/{table}"]["get"]["parameters"]
            .as_array()
            .unwrap();
        for name in ["table", "date_column", "from_date", "columns", "mode"] {
            assert!(parameters.iter().any(|p| p["name"] == name), "{name}");
        }
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["CallBody"]["properties"]["statement"].is_object());
        assert!(schemas["TableOut"]["properties"]["date_columns"].is_object());
    }
}
