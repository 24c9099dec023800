//! `GET /v1/advanced/tables` and `GET /v1/advanced/tables/{table}`: what the source user
//! can read, and the rows of one table or view, streamed or (over the thresholds) a job.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use super::super::auth::Caller;
use super::super::error::{ApiError, Problem};
use super::super::extract::estimate_bytes;
use super::super::jobs::JobOut;
use super::super::AppState;
use super::{advanced_timeout, audit, file_response, open_source, query_pairs, within};
use crate::catalog::{self, Mode, Plan, SourceTable, TableKind, TableParams};
use crate::export::{self, Compression, ExportSpec, OutputFormat, Progress};
use crate::jobs::{self, CreateError, NewJob};
use crate::source::Source;
use crate::value::ColumnType;

/// Row batches buffered between the source and the encoder.
const ROW_CHANNEL_BATCHES: usize = 4;

/// A column of a readable table.
#[derive(Serialize, ToSchema)]
pub struct TableColumnOut {
    #[schema(example = "start_time")]
    pub name: String,
    /// How values are written out.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// The database's own type.
    #[schema(example = "datetime")]
    pub db_type: String,
    pub nullable: bool,
}

/// A table or view the source user can read.
#[derive(Serialize, ToSchema)]
pub struct TableOut {
    #[schema(example = "appointments")]
    pub name: String,
    pub kind: TableKind,
    pub columns: Vec<TableColumnOut>,
    /// Columns accepted as `date_column` (dates, date-times and timestamps).
    #[schema(example = json!(["start_time", "created_at", "updated_at"]))]
    pub date_columns: Vec<String>,
    /// Rows are returned in this order; empty when the table has no primary key.
    #[schema(example = json!(["id"]))]
    pub primary_key: Vec<String>,
}

/// Every readable table and view.
#[derive(Serialize, ToSchema)]
pub struct TablesOut {
    pub tables: Vec<TableOut>,
}

impl From<SourceTable> for TableOut {
    fn from(table: SourceTable) -> TableOut {
        TableOut {
            date_columns: table.date_columns().map(|c| c.name.clone()).collect(),
            name: table.name,
            kind: table.kind,
            primary_key: table.primary_key,
            columns: table
                .columns
                .into_iter()
                .map(|c| TableColumnOut {
                    name: c.name,
                    ty: c.ty,
                    db_type: c.db_type,
                    nullable: c.nullable,
                })
                .collect(),
        }
    }
}

/// Query parameters of a table extraction.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct TableQuery {
    /// The column `from_date`/`to_date` apply to: one of the table's `date_columns`. Required with a range.
    #[param(example = "start_time")]
    date_column: Option<String>,
    /// Start of the range, inclusive: `YYYY-MM-DD` or RFC 3339.
    #[param(example = "2024-01-01")]
    from_date: Option<String>,
    /// End of the range, inclusive: `YYYY-MM-DD` (the whole day) or RFC 3339.
    #[param(example = "2024-12-31")]
    to_date: Option<String>,
    /// Comma-separated subset of the table's columns, in output order (default: all).
    #[param(example = "id,patient_id,start_time")]
    columns: Option<String>,
    /// At most this many rows.
    #[param(minimum = 1, maximum = 10000000)]
    limit: Option<u64>,
    #[param(inline)]
    format: Option<OutputFormat>,
    #[param(inline)]
    compression: Option<Compression>,
    /// `auto` streams unless the estimate is over the job thresholds; `sync` always streams; `job` queues a job.
    #[param(inline)]
    mode: Option<Mode>,
}

/// List the tables and views the source user can read, with columns and date columns.
#[utoipa::path(get, path = "/v1/advanced/tables", tag = "advanced", security(("api_key" = []), ("api_key_header" = [])),
    description = "Tables and views of the source's own database (MySQL/MariaDB), current schema (PostgreSQL) or main database (SQLite) \
that the source user can read. `type` is how values are written out: decimals up to 18 digits stay exact numbers; floats, times, JSON, \
UUIDs and other types without a typed form here are written as their text.",
    responses(
        (status = 200, description = "The readable tables", body = TablesOut),
        (status = 400, description = "A query parameter was given (none is accepted)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The practice database failed", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The catalog did not answer within the advanced timeout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_tables(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<TablesOut>, ApiError> {
    let pairs = query_pairs(query);
    if let Some((name, _)) = pairs.first() {
        return Err(ApiError::field(
            name.chars().take(60).collect::<String>(),
            "GET /v1/advanced/tables takes no parameters",
        ));
    }
    let source = open_source(&state, &caller).await?;
    let deadline = tokio::time::Instant::now() + advanced_timeout(&state);
    let tables = within(&state, deadline, source.tables()).await?;
    Ok(Json(TablesOut {
        tables: tables.into_iter().map(TableOut::from).collect(),
    }))
}

/// Extract the rows of one readable table or view.
#[utoipa::path(get, path = "/v1/advanced/tables/{table}", tag = "advanced", security(("api_key" = []), ("api_key_header" = [])),
    description = "Rows of a table from `GET /v1/advanced/tables`, in primary-key order. The name must match the listing exactly; \
columns and `date_column` are checked against the table's own columns. As with /v1/extract, `mode=auto` becomes a job over the \
row or size thresholds; the job's `procedure_name` is `table:<name>`. Runs under the advanced timeout (180 s by default).",
    params(("table" = String, Path, description = "Table or view name, exactly as listed", example = "appointments"), TableQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "When the request becomes a job: the same key and parameters return the same job")),
    responses(
        (status = 200, description = "The rows as a file, streamed",
            headers(("X-CipherStream-Rows-Estimated" = u64, description = "Rows the extraction is expected to return")),
            content((String = "application/x-ndjson"), (String = "application/json"), (String = "text/csv"),
                    (Vec<u8> = "application/vnd.apache.parquet"), (Vec<u8> = "application/gzip"), (Vec<u8> = "application/zip"))),
        (status = 202, description = "Became a background job", body = JobOut, headers(("Location" = String, description = "/v1/jobs/{job_id}"))),
        (status = 400, description = "Invalid parameter, column or date_column (named in `errors`, with the accepted values)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No readable table of that name", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with different parameters", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The practice database failed", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Past the advanced timeout", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn extract_table(
    State(state): State<AppState>,
    caller: Caller,
    Path(table): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    catalog::check_table_name(&table)?;
    let pairs = query_pairs(query);
    let idempotency_key = super::super::jobs::idempotency_key(&headers)?;
    let source = open_source(&state, &caller).await?;
    let deadline = tokio::time::Instant::now() + advanced_timeout(&state);
    let table = within(&state, deadline, source.table(&table))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no readable table or view named {:?}; see GET /v1/advanced/tables",
                table.chars().take(64).collect::<String>()
            ))
        })?;
    let params = catalog::parse_table_params(&table, &pairs, state.config.max_limit)?;
    if params.mode == Mode::Job {
        return queue_table_job(
            &state,
            &caller,
            &table,
            &pairs,
            &params,
            None,
            idempotency_key,
        )
        .await;
    }
    let plan = catalog::plan_table(&table, &params, source.dialect);
    let rows_estimated = within(&state, deadline, source.count(&plan)).await?;
    let bytes_estimated = estimate_bytes(&plan, rows_estimated, params.format);
    let permit = state.sync_slots.clone().try_acquire_owned().ok();
    if params.mode == Mode::Auto
        && (rows_estimated > state.config.job_row_threshold
            || bytes_estimated > state.config.job_size_threshold_bytes
            || permit.is_none())
    {
        return queue_table_job(
            &state,
            &caller,
            &table,
            &pairs,
            &params,
            Some(rows_estimated),
            idempotency_key,
        )
        .await;
    }
    let stem = catalog::table_file_stem(&table.name, &params);
    let spec = ExportSpec {
        format: params.format,
        compression: params.compression,
        columns: plan.columns.clone(),
        entry_name: export::file_name(&stem, params.format, Compression::None),
    };
    let body = stream_table(source, plan, spec, deadline, permit);
    audit(
        &state,
        &caller,
        "advanced.table",
        format!("/v1/advanced/tables/{}", table.name),
        started,
        serde_json::json!({
            "table": table.name, "date_column": params.date_column, "from_date": params.from_text,
            "to_date": params.to_text, "format": params.format.as_str(),
            "compression": params.compression.as_str(), "rows_estimated": rows_estimated,
        }),
    )
    .await;
    let mut response = file_response(
        body,
        params.format,
        params.compression,
        &export::file_name(&stem, params.format, params.compression),
    );
    response.headers_mut().insert(
        "x-cipherstream-rows-estimated",
        HeaderValue::from(rows_estimated),
    );
    Ok(response)
}

/// Queues a job reading `table` (its `procedure_name` is `table:<name>`); the worker
/// checks the table and parameters against the source again when it runs.
async fn queue_table_job(
    state: &AppState,
    caller: &Caller,
    table: &SourceTable,
    pairs: &[(String, String)],
    params: &TableParams,
    estimated_rows: Option<u64>,
    idempotency_key: Option<String>,
) -> Result<Response, ApiError> {
    let request: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| k != "mode").cloned().collect();
    let new = NewJob {
        customer_id: caller.customer.id.clone(),
        procedure_name: format!("{}{}", catalog::TABLE_JOB_PREFIX, table.name),
        request,
        output_format: params.format.as_str().to_string(),
        compression: params.compression.as_str().to_string(),
        metadata: params.job_metadata(&table.name),
        estimated_rows: estimated_rows.map(|n| n as i64),
        idempotency_key,
        schedule_id: None,
    };
    let (job, created) = jobs::create_job(&state.meta, new)
        .await
        .map_err(|e| match e {
            CreateError::KeyReused(_) => ApiError::Conflict(e.to_string()),
            CreateError::Other(e) => ApiError::Internal(e),
        })?;
    let location = format!("/v1/jobs/{}", job.id);
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(JobOut::new(job, state))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Source rows ─▶ encoder ─▶ HTTP body; past the deadline the query is dropped and the
/// body ends in an error, so a cut-off file never looks complete.
fn stream_table(
    source: Arc<Source>,
    plan: Plan,
    spec: ExportSpec,
    deadline: tokio::time::Instant,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> axum::body::Body {
    let (rows_tx, rows_rx) = mpsc::channel(ROW_CHANNEL_BATCHES);
    let cancel = CancellationToken::new();
    let chunks = export::spawn_pipeline(spec, rows_rx, Arc::new(Progress::new()), cancel.clone());
    tokio::spawn(async move {
        let _permit = permit;
        if tokio::time::timeout_at(deadline, source.stream(&plan, &rows_tx))
            .await
            .is_err()
        {
            tracing::warn!("table extraction passed the advanced time limit; stopping it");
            cancel.cancel();
        }
    });
    axum::body::Body::from_stream(ReceiverStream::new(chunks))
}
