//! `POST /v1/advanced/call`: run one stored routine of the source and stream what it
//! returns, like an extraction.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::super::auth::Caller;
use super::super::error::{ApiError, Problem};
use super::super::AppState;
use super::{advanced_timeout, audit, call_body, file_response, open_source, source_error, within};
use crate::catalog::{self, CallRequest};
use crate::dialect::Dialect;
use crate::export::{self, Compression, OutputFormat};
use crate::source::{Routine, Source};

/// Items buffered between the routine and the encoder.
const CALL_CHANNEL_ITEMS: usize = 4;

/// The body of `POST /v1/advanced/call`: a `statement` with `params`, or a `procedure` with `args`.
#[derive(Deserialize, ToSchema)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct CallBody {
    /// Exactly one `CALL name(arg, …)`; each arg is `?`, a number, a `'string'`, `NULL`, `TRUE` or `FALSE`.
    /// The name is a plain identifier, optionally `schema.name`. No `;`, comments or other statements.
    #[schema(example = "CALL aged_debtors(?, ?)")]
    statement: Option<String>,
    /// Values for the statement's `?` placeholders, in order.
    #[schema(value_type = Option<Vec<Object>>, example = json!(["2024-01-01", 90]))]
    params: Option<Vec<serde_json::Value>>,
    /// Instead of a statement: the routine's name (`name` or `schema.name`).
    #[schema(example = "aged_debtors")]
    procedure: Option<String>,
    /// The routine's arguments, with `procedure`.
    #[schema(value_type = Option<Vec<Object>>, example = json!(["2024-01-01", 90]))]
    args: Option<Vec<serde_json::Value>>,
    format: Option<OutputFormat>,
    /// `none` or `gzip` for ndjson/json; `none`, `gzip` or `zip` for csv/parquet.
    compression: Option<Compression>,
    /// `auto` or `sync` (a call always streams: its rows cannot be counted in advance).
    #[schema(example = "sync")]
    mode: Option<String>,
}

/// Run a stored procedure or function of a MySQL/MariaDB or PostgreSQL source.
#[utoipa::path(post, path = "/v1/advanced/call", tag = "advanced", security(("api_key" = []), ("api_key_header" = [])),
    description = "Runs one routine that exists in the source (MySQL/MariaDB: its database; PostgreSQL: its current schema, or `schema.name`) \
in a read-only transaction that is rolled back, under the advanced timeout (180 s by default). Arguments are bound, never spliced; \
string arguments are limited to letters, digits, spaces and `_ . - @ / & : + ,`.\n\n\
**What is returned.** MySQL/MariaDB procedures run with `CALL` and may return several result sets; functions run as `SELECT name(…)`. \
PostgreSQL functions run as `SELECT * FROM name(…)` (each argument cast to the parameter's declared type); PostgreSQL procedures run \
with `CALL` and return one row of their OUT/INOUT parameters, or nothing. \
With `format=ndjson` or `json` every result set is returned: each object starts with `result_set` (0-based) followed by that set's columns. \
With `csv` or `parquet` (one header, one schema) only result set 0 is returned. A result set with no rows contributes nothing. \
A routine that tries to change data fails with 422. A SQLite source answers 422: SQLite has no stored routines.",
    request_body = CallBody,
    responses(
        (status = 200, description = "What the routine returned, as a file, streamed",
            headers(("X-CipherStream-Result-Sets" = String, description = "`all` (ndjson, json) or `first` (csv, parquet)")),
            content((String = "application/x-ndjson"), (String = "application/json"), (String = "text/csv"),
                    (Vec<u8> = "application/vnd.apache.parquet"), (Vec<u8> = "application/gzip"), (Vec<u8> = "application/zip"))),
        (status = 400, description = "Invalid statement, arguments or field (named in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such routine in the source", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "SQLite source, a routine that cannot be called here, or one that tried to change data", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The practice database failed", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within the advanced timeout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn call_routine(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json") || v.contains("+json"));
    if !is_json {
        return Err(ApiError::field(
            "content-type",
            "send the call as a JSON object with Content-Type: application/json",
        ));
    }
    let request = catalog::parse_call_body(&body)?;
    let source = open_source(&state, &caller).await?;
    if source.dialect == Dialect::Sqlite {
        return Err(ApiError::Unprocessable(
            "this customer's practice database is SQLite, which has no stored procedures or \
             functions; CALL needs a MySQL/MariaDB or PostgreSQL source"
                .into(),
        ));
    }
    let deadline = tokio::time::Instant::now() + advanced_timeout(&state);
    let routine = find_routine(&state, &source, &request, deadline).await?;

    let (tx, mut rx) = mpsc::channel(CALL_CHANNEL_ITEMS);
    let cancel = CancellationToken::new();
    let permit = state.sync_slots.clone().try_acquire_owned().ok();
    let task_cancel = cancel.clone();
    let task_source = source.clone();
    let task_routine = routine.clone();
    let args = request.args.clone();
    tokio::spawn(async move {
        // The synchronous slot stays taken while the routine runs.
        let _permit = permit;
        let call = task_source.call(&task_routine, &args, &tx);
        if tokio::time::timeout_at(deadline, call).await.is_err() {
            tracing::warn!("a call passed the advanced time limit; stopping it");
            task_cancel.cancel();
        }
    });
    // Wait for the first result set (or the error) before answering, so a routine that
    // fails at once, writes or times out answers with a problem, not a broken file.
    let first = match within(&state, deadline, async { Ok(rx.recv().await) }).await? {
        Some(Err(error)) => return Err(source_error(error)),
        Some(Ok(item)) => Some(item),
        None if cancel.is_cancelled() => {
            return Err(source_error(crate::source::SourceError::Timeout(
                "the routine ran past the advanced time limit".into(),
            )))
        }
        None => None,
    };
    let body = call_body::body(
        request.format,
        request.compression,
        first,
        rx,
        cancel,
        export::file_name(&stem(&routine), request.format, Compression::None),
    );
    audit(
        &state,
        &caller,
        "advanced.call",
        "/v1/advanced/call".into(),
        started,
        serde_json::json!({
            "routine": format!("{}.{}", routine.schema, routine.name), "arguments": request.args.len(),
            "format": request.format.as_str(), "compression": request.compression.as_str(),
        }),
    )
    .await;
    let mut response = file_response(
        body,
        request.format,
        request.compression,
        &export::file_name(&stem(&routine), request.format, request.compression),
    );
    let sets = match request.format {
        OutputFormat::Ndjson | OutputFormat::Json => "all",
        OutputFormat::Csv | OutputFormat::Parquet => "first",
    };
    response
        .headers_mut()
        .insert("x-cipherstream-result-sets", HeaderValue::from_static(sets));
    Ok(response)
}

/// The one routine the request means, callable with its number of arguments.
async fn find_routine(
    state: &AppState,
    source: &Arc<Source>,
    request: &CallRequest,
    deadline: tokio::time::Instant,
) -> Result<Routine, ApiError> {
    let found = within(state, deadline, source.find_routines(&request.routine)).await?;
    if found.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no stored procedure or function named {} that the source user can see",
            request.routine
        )));
    }
    let given = request.args.len();
    let fitting: Vec<&Routine> = found
        .iter()
        .filter(|r| (r.min_args..=r.max_args).contains(&given))
        .collect();
    let routine = match fitting.as_slice() {
        [one] => *one,
        [] => {
            let takes: Vec<String> = found
                .iter()
                .map(|r| match r.min_args == r.max_args {
                    true => r.max_args.to_string(),
                    false => format!("{} to {}", r.min_args, r.max_args),
                })
                .collect();
            return Err(ApiError::field(
                request.args_field,
                format!(
                    "{} takes {} argument(s), got {given}",
                    request.routine,
                    takes.join(" or ")
                ),
            ));
        }
        _ => {
            return Err(ApiError::Unprocessable(format!(
                "{} is overloaded with several signatures taking {given} argument(s); \
                 CipherStream cannot tell which one is meant",
                request.routine
            )))
        }
    };
    if let Some(reason) = &routine.refusal {
        return Err(ApiError::Unprocessable(format!(
            "{} cannot be called through CipherStream: {reason}",
            request.routine
        )));
    }
    Ok(routine.clone())
}

/// `call_<routine>`, in the characters of a file name.
fn stem(routine: &Routine) -> String {
    let safe: String = routine
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("call_{safe}")
}
