//! `GET|POST /v1/extract/{procedure}`: validate, plan, estimate, then stream the rows
//! as a file in the requested format and compression.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::catalog::find;
use super::error::{ApiError, Problem};
use super::jobs;
use super::openapi::{BinaryFile, DateOrTime};
use super::AppState;
use crate::catalog::{self, ExtractParams, Mode, Plan, Procedure};
use crate::export::{self, Compression, ExportSpec, OutputFormat, Progress};
use crate::source::{Source, SourceError, SourceSettings};
use crate::tenancy::{self, AuditEntry};
use crate::value::ColumnType;

/// Row batches buffered between the source and the encoder.
const ROW_CHANNEL_BATCHES: usize = 4;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/extract/{procedure}",
        get(extract_get).post(extract_post),
    )
}

/// Query parameters of an extraction (the procedure's filters, e.g. `location_id=3`, come on top).
#[derive(Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct ExtractQuery {
    /// Start of the range, inclusive: `YYYY-MM-DD` or RFC 3339.
    #[param(value_type = Option<DateOrTime>, inline, example = "2024-01-01")]
    from_date: Option<String>,
    /// End of the range, inclusive: `YYYY-MM-DD` (the whole day) or RFC 3339. Not before `from_date`.
    #[param(value_type = Option<DateOrTime>, inline, example = "2024-12-31")]
    to_date: Option<String>,
    /// Which date the range applies to; one of the procedure's `date_modifiers` (default: its first).
    #[param(example = "Created")]
    date_modifier: Option<String>,
    /// Output format.
    #[param(inline)]
    format: Option<OutputFormat>,
    /// Compression of the file.
    #[param(inline)]
    compression: Option<Compression>,
    /// `auto` streams unless the estimate is over the job thresholds; `sync` always streams; `job` queues a background job.
    #[param(inline)]
    mode: Option<Mode>,
    /// Comma-separated subset of the procedure's columns, in output order.
    #[param(example = "appointment_id,patient_id,start_time")]
    columns: Option<String>,
    /// At most this many rows (1 to 10,000,000).
    #[param(minimum = 1, maximum = 10000000)]
    limit: Option<u64>,
}

/// The JSON body of `POST /v1/extract/{procedure}`: the same fields as the query string.
#[derive(Deserialize, ToSchema)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct ExtractBody {
    /// Start of the range, inclusive: `YYYY-MM-DD` or RFC 3339.
    #[schema(value_type = Option<DateOrTime>, inline, nullable = false, example = "2024-01-01")]
    from_date: Option<String>,
    /// End of the range, inclusive: `YYYY-MM-DD` (the whole day) or RFC 3339. Not before `from_date`.
    #[schema(value_type = Option<DateOrTime>, inline, nullable = false, example = "2024-12-31")]
    to_date: Option<String>,
    #[schema(nullable = false, example = "AppointmentDate")]
    date_modifier: Option<String>,
    #[schema(nullable = false)]
    format: Option<OutputFormat>,
    #[schema(nullable = false)]
    compression: Option<Compression>,
    #[schema(nullable = false)]
    mode: Option<Mode>,
    /// Column names (an array, or a comma-separated string).
    #[schema(nullable = false, example = json!(["appointment_id", "start_time"]))]
    columns: Option<Vec<String>>,
    #[schema(nullable = false, minimum = 1, maximum = 10000000)]
    limit: Option<u64>,
    /// Equality filters by name, e.g. `{"location_id": 3}`; they may also be given at the top level.
    #[schema(nullable = false, value_type = Option<HashMap<String, FilterValue>>, example = json!({"location_id": 1}))]
    filters: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A filter value: a string, number or boolean.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FilterValue {
    String(String),
    Number(f64),
    Boolean(bool),
}

/// Extract a procedure's rows (query-string parameters).
#[utoipa::path(get, path = "/v1/extract/{procedure}", tag = "extraction", security(("api_key" = []), ("api_key_header" = [])),
    params(("procedure" = String, Path, description = "Procedure name (see /v1/procedures)", example = "appointments"), ExtractQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "When the request becomes a job: the same key and parameters return the same job (1-255 printable ASCII characters)",
            min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The rows as a file, streamed. Header X-CipherStream-Rows-Estimated carries the row estimate.",
            headers(("X-CipherStream-Rows-Estimated" = u64, description = "Rows the extraction is expected to return"),
                    ("X-CipherStream-Bytes-Estimated" = u64, description = "Estimated uncompressed output size"),
                    ("Content-Disposition" = String, description = "attachment; filename=\"appointments_2024-01-01_2024-12-31.ndjson\"")),
            content(
                (String = "application/x-ndjson"),
                (Vec<Object> = "application/json"),
                (String = "text/csv"),
                (inline(BinaryFile) = "application/vnd.apache.parquet"),
                (inline(BinaryFile) = "application/gzip"),
                (inline(BinaryFile) = "application/zip"),
            )),
        (status = 400, description = "Invalid parameter (named in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown procedure", body = Problem, content_type = "application/problem+json"),
        (status = 202, description = "Became a background job (mode=job, or mode=auto over the thresholds or at the synchronous limit); with an Idempotency-Key used before, the job that request created",
            body = super::jobs::JobOut, headers(("Location" = String, description = "/v1/jobs/{job_id}"))),
        (status = 409, description = "Idempotency-Key reused with different parameters", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The practice database failed", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The estimate did not finish within the synchronous timeout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn extract_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(procedure): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let procedure = find(&state, &procedure)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    run(&state, caller, procedure, &pairs, &headers).await
}

/// Extract a procedure's rows (JSON body).
#[utoipa::path(post, path = "/v1/extract/{procedure}", tag = "extraction", security(("api_key" = []), ("api_key_header" = [])),
    params(("procedure" = String, Path, description = "Procedure name (see /v1/procedures)", example = "appointments"),
        ("Idempotency-Key" = Option<String>, Header, description = "When the request becomes a job: the same key and parameters return the same job (1-255 printable ASCII characters)",
            min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    request_body = ExtractBody,
    responses(
        (status = 200, description = "The rows as a file, streamed (same as GET)",
            headers(("X-CipherStream-Rows-Estimated" = u64, description = "Rows the extraction is expected to return")),
            content((String = "application/x-ndjson"), (Vec<Object> = "application/json"), (String = "text/csv"),
                    (inline(BinaryFile) = "application/vnd.apache.parquet"), (inline(BinaryFile) = "application/gzip"), (inline(BinaryFile) = "application/zip"))),
        (status = 400, description = "Invalid parameter or body (named in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown procedure", body = Problem, content_type = "application/problem+json"),
        (status = 202, description = "Became a background job (mode=job, or mode=auto over the thresholds or at the synchronous limit); with an Idempotency-Key used before, the job that request created",
            body = super::jobs::JobOut, headers(("Location" = String, description = "/v1/jobs/{job_id}"))),
        (status = 409, description = "Idempotency-Key reused with different parameters", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The practice database failed", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The estimate did not finish within the synchronous timeout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn extract_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(procedure): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let procedure = find(&state, &procedure)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json") || v.contains("+json"));
    if !is_json {
        return Err(ApiError::field(
            "content-type",
            "send the parameters as a JSON object with Content-Type: application/json",
        ));
    }
    let pairs = catalog::pairs_from_json(&body)?;
    run(&state, caller, procedure, &pairs, &headers).await
}

async fn run(
    state: &AppState,
    caller: Caller,
    procedure: &Procedure,
    pairs: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = catalog::parse_params(procedure, pairs, state.config.max_limit)?;
    let idempotency_key = jobs::idempotency_key(headers)?;
    if params.mode == Mode::Job {
        return jobs::queue_job(
            state,
            &caller,
            procedure,
            pairs,
            &params,
            None,
            idempotency_key,
        )
        .await
        .map(accepted);
    }
    let settings = SourceSettings {
        pool_size: state.config.source_pool_size,
        statement_timeout: state.config.sync_timeout(),
    };
    let customer_id = caller.customer.id.clone();
    let source = state
        .sources
        .get_or_open(
            &customer_id,
            async { Ok(tenancy::source_url(&state.meta, &state.master, &customer_id).await?) },
            settings,
        )
        .await
        .map_err(|e| {
            ApiError::SourceUnavailable(format!("the practice database is not usable: {e:#}"))
        })?;
    let plan = catalog::plan(procedure, &params, source.dialect);
    let deadline = tokio::time::Instant::now() + state.config.sync_timeout();

    let rows_estimated = tokio::time::timeout_at(deadline, source.count(&plan))
        .await
        .map_err(|_| {
            ApiError::Timeout(format!(
                "estimating the rows took longer than {} s; narrow the date range",
                state.config.sync_timeout_seconds
            ))
        })?
        .map_err(source_error)?;
    let bytes_estimated = estimate_bytes(&plan, rows_estimated, params.format);
    // `auto` becomes a job over the thresholds or when every synchronous slot is busy.
    let permit = state.sync_slots.clone().try_acquire_owned().ok();
    if params.mode == Mode::Auto
        && (rows_estimated > state.config.job_row_threshold
            || bytes_estimated > state.config.job_size_threshold_bytes
            || permit.is_none())
    {
        return jobs::queue_job(
            state,
            &caller,
            procedure,
            pairs,
            &params,
            Some(rows_estimated),
            idempotency_key,
        )
        .await
        .map(accepted);
    }

    let file_name = export::file_name(
        &file_stem(procedure, &params),
        params.format,
        params.compression,
    );
    let entry_name = export::file_name(
        &file_stem(procedure, &params),
        params.format,
        Compression::None,
    );
    let spec = ExportSpec {
        format: params.format,
        compression: params.compression,
        columns: plan.columns.clone(),
        entry_name,
    };
    let body = stream_body(source, plan, spec, deadline, permit);

    tenancy::record(
        &state.meta,
        AuditEntry {
            customer_id: Some(customer_id.clone()),
            key_id: Some(caller.key_id),
            action: "extract".into(),
            method: None,
            path: Some(format!("/v1/extract/{}", procedure.name)),
            status: Some(200),
            duration_ms: Some(started.elapsed().as_millis() as i64),
            ip: caller.ip,
            request_id: caller.request_id,
            detail: serde_json::json!({
                "procedure": procedure.name, "from_date": params.from_text, "to_date": params.to_text,
                "date_modifier": params.date_modifier, "format": params.format.as_str(),
                "compression": params.compression.as_str(), "rows_estimated": rows_estimated,
            }),
        },
    )
    .await;

    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(export::content_type(params.format, params.compression)),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        "x-cipherstream-rows-estimated",
        HeaderValue::from(rows_estimated),
    );
    headers.insert(
        "x-cipherstream-bytes-estimated",
        HeaderValue::from(bytes_estimated),
    );
    headers.insert("x-cipherstream-mode", HeaderValue::from_static("sync"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A job answer here is always 202, also when an Idempotency-Key replays an earlier
/// job (`POST /v1/jobs` answers that with 200): on this endpoint a 200 is the file.
fn accepted(mut response: Response) -> Response {
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// Source rows ─▶ encoder ─▶ HTTP body, all through bounded channels. Past the
/// deadline the source query is dropped and the body ends in an error, so a
/// client never takes a cut-off file for a complete one.
fn stream_body(
    source: Arc<Source>,
    plan: Plan,
    spec: ExportSpec,
    deadline: tokio::time::Instant,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Body {
    let (rows_tx, rows_rx) = mpsc::channel(ROW_CHANNEL_BATCHES);
    let cancel = CancellationToken::new();
    let progress = Arc::new(Progress::new());
    let chunks = export::spawn_pipeline(spec, rows_rx, progress, cancel.clone());
    tokio::spawn(async move {
        // The synchronous slot stays taken while the source is read.
        let _permit = permit;
        if tokio::time::timeout_at(deadline, source.stream(&plan, &rows_tx))
            .await
            .is_err()
        {
            tracing::warn!("synchronous extraction passed its time limit; stopping it");
            cancel.cancel();
        }
    });
    Body::from_stream(ReceiverStream::new(chunks))
}

fn source_error(error: SourceError) -> ApiError {
    match error {
        SourceError::Timeout(_) => {
            ApiError::Timeout(format!("{error}; narrow the date range or add filters"))
        }
        other => ApiError::SourceUnavailable(other.to_string()),
    }
}

/// `appointments_2024-01-01_2024-12-31`, or just `appointments` without a range.
fn file_stem(procedure: &Procedure, params: &ExtractParams) -> String {
    let day = |t: &Option<String>, open: &str| {
        t.as_deref()
            .map(|t| t.chars().take(10).collect())
            .unwrap_or_else(|| open.to_string())
    };
    if params.from_text.is_none() && params.to_text.is_none() {
        return procedure.name.clone();
    }
    format!(
        "{}_{}_{}",
        procedure.name,
        day(&params.from_text, "start"),
        day(&params.to_text, "latest")
    )
}

/// A rough uncompressed size: typical text widths per column type (plus key names for JSON).
pub fn estimate_bytes(plan: &Plan, rows: u64, format: OutputFormat) -> u64 {
    let per_row: u64 = plan
        .columns
        .iter()
        .map(|c| {
            let value = match c.ty {
                ColumnType::Integer => 6,
                ColumnType::Decimal => 8,
                ColumnType::String => 16,
                ColumnType::Boolean => 5,
                ColumnType::Date => 12,
                ColumnType::Datetime | ColumnType::Timestamp => 22,
            };
            let key = match format {
                OutputFormat::Ndjson | OutputFormat::Json => c.name.len() as u64 + 4,
                OutputFormat::Csv => 1,
                OutputFormat::Parquet => 0,
            };
            value + key
        })
        .sum::<u64>()
        + 2;
    let per_row = if format == OutputFormat::Parquet {
        per_row / 3 + 1
    } else {
        per_row
    };
    rows.saturating_mul(per_row)
}
