//! `/v1/jobs`: create, list, get, cancel and download background extraction jobs.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::catalog::find;
use super::error::{page_param, ApiError, FieldError, Problem};
use super::extract::ExtractBody;
use super::openapi::DateOrTime;
use super::AppState;
use crate::catalog::{self, ExtractParams, Procedure};
use crate::jobs::{self, CancelOutcome, CreateError, Job, JobFilter, JobSort, JobStatus, NewJob};
pub use crate::jobs::{EncryptionOut, JobOut};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(list_jobs).post(create_job))
        .route("/v1/jobs/{job_id}", get(get_job))
        .route("/v1/jobs/{job_id}/cancel", post(cancel_job))
        .route("/v1/jobs/{job_id}/download", get(download_job))
}

impl JobOut {
    /// The job with a fresh presigned download URL while its file exists.
    pub fn new(job: Job, state: &AppState) -> JobOut {
        let now = Utc::now();
        let file_alive = job.object_key.is_some()
            && job
                .expires_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t > now);
        let s3_url = match (&job.object_key, file_alive) {
            (Some(key), true) => Some(presign(state, key, job.expires_at.as_deref())),
            _ => None,
        };
        JobOut {
            s3_url,
            ..JobOut::snapshot(job)
        }
    }
}

/// A URL valid for the configured lifetime, but never past the file's own expiry.
fn presign(state: &AppState, key: &str, file_expires: Option<&str>) -> String {
    let ttl = chrono::Duration::seconds(state.config.download_url_ttl_seconds as i64);
    let mut expires = Utc::now() + ttl;
    if let Some(file) = file_expires.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        expires = expires.min(file.with_timezone(&Utc));
    }
    state.storage.presign(&state.public_base, key, expires)
}

/// Queues a job for `procedure` with already-validated parameters.
pub async fn queue_job(
    state: &AppState,
    caller: &Caller,
    procedure: &Procedure,
    pairs: &[(String, String)],
    params: &ExtractParams,
    estimated_rows: Option<u64>,
    idempotency_key: Option<String>,
) -> Result<Response, ApiError> {
    // The stored request never carries `mode`: a job always runs as a job.
    let request: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| k != "mode").cloned().collect();
    let metadata = jobs::job_metadata(params);
    let new = NewJob {
        customer_id: caller.customer.id.clone(),
        procedure_name: procedure.name.clone(),
        request,
        output_format: params.format.as_str().to_string(),
        compression: params.compression.as_str().to_string(),
        metadata,
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

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() || text.len() > 255 || !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::field(
            "Idempotency-Key",
            "Idempotency-Key must be 1-255 printable ASCII characters",
        ));
    }
    Ok(Some(text.to_string()))
}

/// The body of `POST /v1/jobs`: a procedure and the extraction fields of `POST /v1/extract`.
#[derive(Deserialize, ToSchema)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"procedure": "appointments", "from_date": "2024-01-01", "to_date": "2024-12-31", "format": "csv", "compression": "gzip"}))]
pub struct JobIn {
    /// The procedure to extract (see /v1/procedures).
    #[schema(example = "appointments")]
    procedure: String,
    #[serde(flatten)]
    extraction: ExtractBody,
}

/// Create a background job for a procedure (the extraction fields plus `procedure`).
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", security(("api_key" = []), ("api_key_header" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation: the same key and body return the same job (1-255 printable ASCII characters)",
        min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    request_body(content = JobIn, description = "`{\"procedure\": \"appointments\", ...extraction fields of POST /v1/extract}`"),
    responses(
        (status = 202, description = "Queued", body = JobOut, headers(("Location" = String, description = "/v1/jobs/{job_id}"))),
        (status = 200, description = "The job an earlier request with this Idempotency-Key created", body = JobOut),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown procedure", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let mut pairs = catalog::pairs_from_json(&body)?;
    let Some(position) = pairs.iter().position(|(k, _)| k == "procedure") else {
        return Err(ApiError::field(
            "procedure",
            "procedure is required (see /v1/procedures)",
        ));
    };
    let (_, name) = pairs.remove(position);
    let procedure = find(&state, &name).map_err(|e| match e {
        ApiError::NotFound(detail) => ApiError::fields(vec![FieldError::new("procedure", detail)]),
        other => other,
    })?;
    let params = catalog::parse_params(procedure, &pairs, state.config.max_limit)?;
    queue_job(&state, &caller, procedure, &pairs, &params, None, key).await
}

/// Query parameters of the job list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct JobListQuery {
    /// 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
    /// Only jobs in this state.
    #[param(inline)]
    status: Option<JobStatus>,
    /// The order, newest created first by default.
    #[param(inline)]
    sort: Option<JobSortParam>,
    /// Only jobs of this procedure.
    procedure: Option<String>,
    /// Jobs created at or after (YYYY-MM-DD or RFC 3339).
    #[param(value_type = Option<DateOrTime>, inline)]
    from_date: Option<String>,
    /// Jobs created at or before (YYYY-MM-DD: the whole day, or RFC 3339).
    #[param(value_type = Option<DateOrTime>, inline)]
    to_date: Option<String>,
}

/// An order of the job list (documentation only; `JobSort::parse` reads it).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobSortParam {
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
}

/// A page of jobs.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobOut>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

fn parse_list(query: Option<String>, state: &AppState) -> Result<JobFilter, ApiError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut errors = Vec::new();
    let mut filter = JobFilter {
        status: None,
        procedure: None,
        created_from: None,
        created_to: None,
        sort: JobSort::CreatedDesc,
        limit: 50,
        offset: 0,
    };
    for (name, value) in &pairs {
        if pairs.iter().filter(|(n, _)| n == name).count() > 1 {
            errors.push(FieldError::new(
                name,
                format!("{name} is given more than once"),
            ));
            continue;
        }
        if page_param(
            name,
            value,
            &mut filter.limit,
            &mut filter.offset,
            &mut errors,
        ) {
            continue;
        }
        match name.as_str() {
            "status" => match JobStatus::parse(value) {
                Some(s) => filter.status = Some(s),
                None => errors.push(FieldError::new("status", "status must be one of queued, running, completed, failed, cancelled")),
            },
            "sort" => match JobSort::parse(value) {
                Some(s) => filter.sort = s,
                None => errors.push(FieldError::new("sort", "sort must be one of created_desc, created_asc, updated_desc, updated_asc")),
            },
            "procedure" => match state.catalog.get(value) {
                Some(p) => filter.procedure = Some(p.name.clone()),
                None => errors.push(FieldError::new("procedure", format!("unknown procedure; accepted values: {}", state.catalog.names().join(", ")))),
            },
            "from_date" | "to_date" => match catalog::DateBound::parse(value) {
                Some(bound) => {
                    let (start, end) = bound.utc_span();
                    if name == "from_date" {
                        filter.created_from = Some(start);
                    } else {
                        filter.created_to = Some(end);
                    }
                }
                None => errors.push(FieldError::new(name, format!("{name} must be YYYY-MM-DD or RFC 3339"))),
            },
            other => errors.push(FieldError::new(
                other,
                format!("unknown parameter {other:?}; accepted parameters: limit, offset, status, sort, procedure, from_date, to_date"),
            )),
        }
    }
    if let (Some(from), Some(to)) = (filter.created_from, filter.created_to) {
        if to < from {
            errors.push(FieldError::new(
                "to_date",
                "to_date must not be before from_date",
            ));
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(ApiError::fields(errors))
    }
}

/// List this customer's jobs.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", security(("api_key" = []), ("api_key_header" = [])),
    params(JobListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<JobList>, ApiError> {
    let filter = parse_list(query, &state)?;
    let (jobs, total) = jobs::list_jobs(&state.meta, &caller.customer.id, &filter).await?;
    let jobs = jobs.into_iter().map(|j| JobOut::new(j, &state)).collect();
    Ok(Json(JobList {
        jobs,
        total,
        limit: filter.limit,
        offset: filter.offset,
    }))
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    jobs::get_job(&state.meta, &caller.customer.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))
}

/// One job, with progress.
#[utoipa::path(get, path = "/v1/jobs/{job_id}", tag = "jobs", security(("api_key" = []), ("api_key_header" = [])),
    params(("job_id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobOut>, ApiError> {
    Ok(Json(JobOut::new(load(&state, &caller, &id).await?, &state)))
}

/// Cancel a queued (at once) or running (within seconds) job.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/cancel", tag = "jobs", security(("api_key" = []), ("api_key_header" = [])),
    params(("job_id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (was queued)", body = JobOut),
        (status = 202, description = "Stopping (was running); poll the job", body = JobOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already completed, failed or cancelled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match jobs::cancel_job(&state.meta, &caller.customer.id, &id).await? {
        CancelOutcome::Cancelled(job) => {
            Ok((StatusCode::OK, Json(JobOut::new(job, &state))).into_response())
        }
        CancelOutcome::Stopping(job) => {
            Ok((StatusCode::ACCEPTED, Json(JobOut::new(job, &state))).into_response())
        }
        CancelOutcome::AlreadyFinal(job) => Err(ApiError::Conflict(format!(
            "job {} is already {}",
            job.id,
            job.status.as_str()
        ))),
        CancelOutcome::NotFound => Err(ApiError::NotFound(format!("no job {id:?}"))),
    }
}

/// Redirect to a fresh presigned URL of the job's file.
#[utoipa::path(get, path = "/v1/jobs/{job_id}/download", tag = "jobs", security(("api_key" = []), ("api_key_header" = [])),
    params(("job_id" = String, Path, description = "Job id")),
    responses(
        (status = 307, description = "To the presigned URL", headers(("Location" = String, description = "The presigned URL"))),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not completed", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The file has expired and was removed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = load(&state, &caller, &id).await?;
    if job.status != JobStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "job {id} is {}; only completed jobs have a file",
            job.status.as_str()
        )));
    }
    let out = JobOut::new(job, &state);
    let Some(url) = out.s3_url else {
        return Err(ApiError::Gone(format!(
            "the file of job {id} expired at {} and was removed",
            out.expires_at.unwrap_or_default()
        )));
    };
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(anyhow::Error::from)?,
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
