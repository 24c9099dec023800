//! The job queue in the metadata database. Every query that a customer can reach
//! takes the customer id; claiming is guarded by the row's status so two workers
//! never run one job (with `FOR UPDATE SKIP LOCKED` on PostgreSQL).

use anyhow::Context;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_job_id, Job, JobStatus};
use crate::meta::{self, Backend, Meta};
use crate::tenancy;
use crate::webhooks::{self, EventType};

const COLUMNS: &str = "id, customer_id, procedure_name, status, request, output_format, compression, metadata, \
    progress_percent, rows_processed, estimated_rows, estimated_completion_seconds, created_at, updated_at, \
    started_at, completed_at, execution_time_ms, file_size_bytes, object_key, sha256, key_id, expires_at, \
    error_message, retry_count, schedule_id";

/// What a new job needs.
pub struct NewJob {
    pub customer_id: String,
    pub procedure_name: String,
    pub request: Vec<(String, String)>,
    pub output_format: String,
    pub compression: String,
    pub metadata: serde_json::Value,
    pub estimated_rows: Option<i64>,
    pub idempotency_key: Option<String>,
    /// The schedule that made this job, if any.
    pub schedule_id: Option<String>,
}

/// Why an idempotent creation did not make a new job.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("Idempotency-Key {0:?} was already used with a different request")]
    KeyReused(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

fn from_row(row: &AnyRow) -> anyhow::Result<Job> {
    let status: String = row.try_get("status")?;
    let request: String = row.try_get("request")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Job {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        procedure_name: row.try_get("procedure_name")?,
        status: JobStatus::parse(&status)
            .with_context(|| format!("unknown job status {status:?}"))?,
        request: serde_json::from_str(&request)?,
        output_format: row.try_get("output_format")?,
        compression: row.try_get("compression")?,
        metadata: serde_json::from_str(&metadata)?,
        progress_percent: row.try_get("progress_percent")?,
        rows_processed: row.try_get("rows_processed")?,
        estimated_rows: row.try_get("estimated_rows")?,
        estimated_completion_seconds: row.try_get("estimated_completion_seconds")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        execution_time_ms: row.try_get("execution_time_ms")?,
        file_size_bytes: row.try_get("file_size_bytes")?,
        object_key: row.try_get("object_key")?,
        sha256: row.try_get("sha256")?,
        key_id: row.try_get("key_id")?,
        expires_at: row.try_get("expires_at")?,
        error_message: row.try_get("error_message")?,
        retry_count: row.try_get("retry_count")?,
        schedule_id: row.try_get("schedule_id")?,
    })
}

/// Writes the event of a job's new state in the transaction that made it.
async fn emit_for(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    event: EventType,
) -> anyhow::Result<()> {
    if event == EventType::JobProgress {
        // Progress is reported twice a second: skip building the event when nobody listens.
        let listeners: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE enabled = 1 AND events LIKE '%job.progress%' \
             AND customer_id = (SELECT customer_id FROM jobs WHERE id = $1)",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        if listeners == 0 {
            return Ok(());
        }
    }
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    let job = from_row(&row)?;
    if event != EventType::JobProgress {
        // The lifecycle transition in the audit trail, with the event.
        tenancy::record_in(
            conn,
            tenancy::AuditEntry {
                customer_id: Some(job.customer_id.clone()),
                action: event.as_str().to_string(),
                detail: serde_json::json!({"job_id": job.id, "status": job.status.as_str(),
                    "rows_processed": job.rows_processed, "error_message": job.error_message}),
                ..Default::default()
            },
        )
        .await?;
    }
    webhooks::emit_job_event(conn, event, &job).await?;
    Ok(())
}

/// Queues a job. With an idempotency key, the same key and request return the
/// existing job (`false` = not newly created); another request under the key is refused.
pub async fn create_job(meta: &Meta, job: NewJob) -> Result<(Job, bool), CreateError> {
    let request = serde_json::to_string(&job.request).map_err(anyhow::Error::from)?;
    let request_hash = hex::encode(Sha256::digest(format!("{}\n{request}", job.procedure_name)));
    if let Some(key) = &job.idempotency_key {
        if let Some(existing) = find_by_idempotency_key(meta, &job.customer_id, key).await? {
            return match existing.1 == request_hash {
                true => Ok((existing.0, false)),
                false => Err(CreateError::KeyReused(key.clone())),
            };
        }
    }
    // Job ids go into object keys and URLs: `table:patients` becomes `table_patients_…`.
    let prefix: String = job
        .procedure_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let id = new_job_id(&prefix);
    let now = meta::now();
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, customer_id, procedure_name, status, request, output_format, compression, metadata, \
         estimated_rows, created_at, updated_at, run_after, idempotency_key, request_hash, schedule_id) \
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $9, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(&job.customer_id)
    .bind(&job.procedure_name)
    .bind(&request)
    .bind(&job.output_format)
    .bind(&job.compression)
    .bind(job.metadata.to_string())
    .bind(job.estimated_rows)
    .bind(&now)
    .bind(&job.idempotency_key)
    .bind(&request_hash)
    .bind(&job.schedule_id)
    .execute(&meta.pool)
    .await;
    match inserted {
        Ok(_) => {}
        // A concurrent request with the same key won the race: answer as it would.
        Err(sqlx::Error::Database(db))
            if db.is_unique_violation() && job.idempotency_key.is_some() =>
        {
            let key = job.idempotency_key.unwrap_or_default();
            let existing = find_by_idempotency_key(meta, &job.customer_id, &key)
                .await?
                .context("idempotent job vanished")?;
            return match existing.1 == request_hash {
                true => Ok((existing.0, false)),
                false => Err(CreateError::KeyReused(key)),
            };
        }
        Err(e) => return Err(anyhow::Error::new(e).context("inserting a job").into()),
    }
    tenancy::record(
        meta,
        tenancy::AuditEntry {
            customer_id: Some(job.customer_id.clone()),
            action: "job.created".into(),
            detail: serde_json::json!({"job_id": id, "procedure": job.procedure_name, "schedule_id": job.schedule_id}),
            ..Default::default()
        },
    )
    .await;
    // The job as inserted: a worker may claim it at once, but the answer to its
    // creation is the queued job.
    let created = Job {
        id,
        customer_id: job.customer_id,
        procedure_name: job.procedure_name,
        status: JobStatus::Queued,
        request: job.request,
        output_format: job.output_format,
        compression: job.compression,
        metadata: job.metadata,
        progress_percent: 0,
        rows_processed: 0,
        estimated_rows: job.estimated_rows,
        estimated_completion_seconds: None,
        created_at: now.clone(),
        updated_at: now,
        started_at: None,
        completed_at: None,
        execution_time_ms: None,
        file_size_bytes: None,
        object_key: None,
        sha256: None,
        key_id: None,
        expires_at: None,
        error_message: None,
        retry_count: 0,
        schedule_id: job.schedule_id,
    };
    Ok((created, true))
}

async fn find_by_idempotency_key(
    meta: &Meta,
    customer_id: &str,
    key: &str,
) -> anyhow::Result<Option<(Job, String)>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, request_hash FROM jobs WHERE customer_id = $1 AND idempotency_key = $2"
    ))
    .bind(customer_id)
    .bind(key)
    .fetch_optional(&meta.pool)
    .await?;
    row.map(|row| Ok((from_row(&row)?, row.try_get::<String, _>("request_hash")?)))
        .transpose()
}

/// One job of a customer.
pub async fn get_job(meta: &Meta, customer_id: &str, id: &str) -> anyhow::Result<Option<Job>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE id = $1 AND customer_id = $2"
    ))
    .bind(id)
    .bind(customer_id)
    .fetch_optional(&meta.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Sort orders of the job list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSort {
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
}

impl JobSort {
    pub fn parse(text: &str) -> Option<JobSort> {
        Some(match text {
            "created_desc" => JobSort::CreatedDesc,
            "created_asc" => JobSort::CreatedAsc,
            "updated_desc" => JobSort::UpdatedDesc,
            "updated_asc" => JobSort::UpdatedAsc,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            JobSort::CreatedDesc => "created_at DESC, id DESC",
            JobSort::CreatedAsc => "created_at ASC, id ASC",
            JobSort::UpdatedDesc => "updated_at DESC, id DESC",
            JobSort::UpdatedAsc => "updated_at ASC, id ASC",
        }
    }
}

/// Validated list parameters.
#[derive(Debug, Clone)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub procedure: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub sort: JobSort,
    pub limit: i64,
    pub offset: i64,
}

/// A page of a customer's jobs and the total matching.
pub async fn list_jobs(
    meta: &Meta,
    customer_id: &str,
    filter: &JobFilter,
) -> anyhow::Result<(Vec<Job>, i64)> {
    let mut conditions = vec!["customer_id = $1".to_string()];
    let mut values: Vec<String> = vec![customer_id.to_string()];
    let mut add = |condition: &str, value: String| {
        values.push(value);
        conditions.push(condition.replace('?', &format!("${}", values.len())));
    };
    if let Some(status) = filter.status {
        add("status = ?", status.as_str().to_string());
    }
    if let Some(procedure) = &filter.procedure {
        add("procedure_name = ?", procedure.clone());
    }
    if let Some(from) = filter.created_from {
        add("created_at >= ?", meta::format_time(from));
    }
    if let Some(to) = filter.created_to {
        add("created_at <= ?", meta::format_time(to));
    }
    let where_clause = conditions.join(" AND ");
    let count_sql = format!("SELECT COUNT(*) FROM jobs WHERE {where_clause}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for value in &values {
        count = count.bind(value.clone());
    }
    let total = count.fetch_one(&meta.pool).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE {where_clause} ORDER BY {} LIMIT {} OFFSET {}",
        filter.sort.sql(),
        filter.limit,
        filter.offset
    );
    let mut query = sqlx::query(&sql);
    for value in &values {
        query = query.bind(value.clone());
    }
    let rows = query.fetch_all(&meta.pool).await?;
    Ok((
        rows.iter().map(from_row).collect::<anyhow::Result<_>>()?,
        total,
    ))
}

/// The result of a cancellation request.
pub enum CancelOutcome {
    /// Was queued: cancelled now.
    Cancelled(Job),
    /// Is running: its worker stops it within a few seconds.
    Stopping(Job),
    /// Already completed, failed or cancelled.
    AlreadyFinal(Job),
    NotFound,
}

/// Cancels a queued job at once, or asks the worker of a running one to stop.
pub async fn cancel_job(meta: &Meta, customer_id: &str, id: &str) -> anyhow::Result<CancelOutcome> {
    let now = meta::now();
    let mut tx = meta.begin().await?;
    let cancelled_now = sqlx::query(
        "UPDATE jobs SET status = 'cancelled', error_message = 'cancelled by user', completed_at = $1, updated_at = $1 \
         WHERE id = $2 AND customer_id = $3 AND status = 'queued'",
    )
    .bind(&now)
    .bind(id)
    .bind(customer_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if cancelled_now {
        emit_for(&mut tx, id, EventType::JobCancelled).await?;
    }
    tx.commit().await?;
    if cancelled_now {
        webhooks::outbox::wake();
    }
    sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = $1 WHERE id = $2 AND customer_id = $3 AND status = 'running'")
        .bind(&now)
        .bind(id)
        .bind(customer_id)
        .execute(&meta.pool)
        .await?;
    Ok(match get_job(meta, customer_id, id).await? {
        None => CancelOutcome::NotFound,
        Some(job) if job.status == JobStatus::Running => CancelOutcome::Stopping(job),
        Some(job) if cancelled_now => CancelOutcome::Cancelled(job),
        Some(job) => CancelOutcome::AlreadyFinal(job),
    })
}

/// Claims the oldest runnable queued job for `worker`, holding it until `lease_until`.
/// A customer with `per_customer_cap` running jobs waits for one to finish.
pub async fn claim_next(
    meta: &Meta,
    worker: &str,
    lease_until: DateTime<Utc>,
    per_customer_cap: i64,
) -> anyhow::Result<Option<Job>> {
    let now = meta::now();
    let lock = if meta.backend == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let mut tx = meta.begin().await?;
    let id: Option<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM jobs j WHERE status = 'queued' AND run_after <= $1 \
         AND (SELECT COUNT(*) FROM jobs r WHERE r.customer_id = j.customer_id AND r.status = 'running') < $2 \
         ORDER BY created_at, id LIMIT 1{lock}"
    ))
    .bind(&now)
    .bind(per_customer_cap)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else { return Ok(None) };
    let claimed = sqlx::query(
        "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), \
         updated_at = $3 WHERE id = $4 AND status = 'queued'",
    )
    .bind(worker)
    .bind(meta::format_time(lease_until))
    .bind(&now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if claimed.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(&id)
        .fetch_one(&meta.pool)
        .await?;
    from_row(&row).map(Some)
}

/// Progress of a running job; renews its lease. Returns whether a cancel was
/// requested, or `None` when the job is no longer this worker's.
pub async fn report_progress(
    meta: &Meta,
    id: &str,
    worker: &str,
    rows: i64,
    percent: i64,
    eta_seconds: Option<i64>,
    lease_until: DateTime<Utc>,
) -> anyhow::Result<Option<bool>> {
    let mut tx = meta.begin().await?;
    let done = sqlx::query(
        "UPDATE jobs SET rows_processed = $1, progress_percent = $2, estimated_completion_seconds = $3, \
         lease_expires_at = $4, updated_at = $5 WHERE id = $6 AND lease_owner = $7 AND status = 'running'",
    )
    .bind(rows)
    .bind(percent)
    .bind(eta_seconds)
    .bind(meta::format_time(lease_until))
    .bind(meta::now())
    .bind(id)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let requested: i64 = sqlx::query_scalar("SELECT cancel_requested FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    emit_for(&mut tx, id, EventType::JobProgress).await?;
    tx.commit().await?;
    webhooks::outbox::wake();
    Ok(Some(requested != 0))
}

/// Records the row count a running job expects (the worker counts before it extracts).
pub async fn record_estimate(meta: &Meta, id: &str, worker: &str, rows: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE jobs SET estimated_rows = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND status = 'running'")
        .bind(rows)
        .bind(meta::now())
        .bind(id)
        .bind(worker)
        .execute(&meta.pool)
        .await?;
    Ok(())
}

/// The stored file of a finished job.
pub struct Finished {
    pub rows: i64,
    pub object_key: String,
    pub size: i64,
    pub sha256: String,
    pub key_id: String,
    pub expires_at: DateTime<Utc>,
    pub execution_ms: i64,
}

/// Marks a job completed with its file, if this worker still holds it.
pub async fn complete(meta: &Meta, id: &str, worker: &str, f: &Finished) -> anyhow::Result<bool> {
    let now = meta::now();
    let mut tx = meta.begin().await?;
    let done = sqlx::query(
        "UPDATE jobs SET status = 'completed', rows_processed = $1, progress_percent = 100, estimated_completion_seconds = 0, \
         object_key = $2, file_size_bytes = $3, sha256 = $4, key_id = $5, expires_at = $6, execution_time_ms = $7, \
         completed_at = $8, updated_at = $8, lease_owner = NULL, lease_expires_at = NULL, error_message = NULL \
         WHERE id = $9 AND lease_owner = $10 AND status = 'running'",
    )
    .bind(f.rows)
    .bind(&f.object_key)
    .bind(f.size)
    .bind(&f.sha256)
    .bind(&f.key_id)
    .bind(meta::format_time(f.expires_at))
    .bind(f.execution_ms)
    .bind(&now)
    .bind(id)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    let completed = done.rows_affected() == 1;
    if completed {
        emit_for(&mut tx, id, EventType::JobCompleted).await?;
    }
    tx.commit().await?;
    webhooks::outbox::wake();
    Ok(completed)
}

/// Ends a job this worker holds as `failed` or `cancelled` with a message.
pub async fn finish_unsuccessfully(
    meta: &Meta,
    id: &str,
    worker: &str,
    status: JobStatus,
    message: &str,
) -> anyhow::Result<()> {
    let now = meta::now();
    let mut tx = meta.begin().await?;
    let done = sqlx::query(
        "UPDATE jobs SET status = $1, error_message = $2, completed_at = $3, updated_at = $3, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(message)
    .bind(&now)
    .bind(id)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        let event = match status {
            JobStatus::Cancelled => EventType::JobCancelled,
            _ => EventType::JobFailed,
        };
        emit_for(&mut tx, id, event).await?;
    }
    tx.commit().await?;
    webhooks::outbox::wake();
    Ok(())
}

/// Puts a job this worker holds back in the queue after a transient error.
pub async fn retry_later(
    meta: &Meta,
    id: &str,
    worker: &str,
    run_after: DateTime<Utc>,
    message: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', retry_count = retry_count + 1, run_after = $1, error_message = $2, \
         rows_processed = 0, progress_percent = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
         WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
    )
    .bind(meta::format_time(run_after))
    .bind(message)
    .bind(meta::now())
    .bind(id)
    .bind(worker)
    .execute(&meta.pool)
    .await?;
    Ok(())
}

/// Returns a job this worker holds to the queue untouched (graceful shutdown).
pub async fn release(meta: &Meta, id: &str, worker: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', rows_processed = 0, progress_percent = 0, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
    )
    .bind(meta::now())
    .bind(id)
    .bind(worker)
    .execute(&meta.pool)
    .await?;
    Ok(())
}

/// Jobs whose worker died (lease expired) go back to the queue, counted as a retry;
/// past `max_retries` they fail. Returns how many were requeued or failed.
pub async fn recover_expired_leases(meta: &Meta, max_retries: i64) -> anyhow::Result<u64> {
    let now = meta::now();
    let exhausted: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < $1 AND retry_count >= $2",
    )
    .bind(&now)
    .bind(max_retries)
    .fetch_all(&meta.pool)
    .await?;
    let mut failed = 0;
    for id in exhausted {
        let mut tx = meta.begin().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_message = 'the worker running this job stopped too many times', \
             completed_at = $1, updated_at = $1, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $2 AND status = 'running' AND lease_expires_at < $1",
        )
        .bind(&now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            emit_for(&mut tx, &id, EventType::JobFailed).await?;
            failed += 1;
        }
        tx.commit().await?;
        webhooks::outbox::wake();
    }
    let requeued = sqlx::query(
        "UPDATE jobs SET status = 'queued', retry_count = retry_count + 1, run_after = $1, rows_processed = 0, \
         progress_percent = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
         WHERE status = 'running' AND lease_expires_at < $1",
    )
    .bind(&now)
    .execute(&meta.pool)
    .await?;
    Ok(failed + requeued.rows_affected())
}

/// Completed jobs whose file has passed its retention: (job id, object key).
pub async fn expired_files(meta: &Meta) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT id, object_key FROM jobs WHERE object_key IS NOT NULL AND expires_at < $1",
    )
    .bind(meta::now())
    .fetch_all(&meta.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("object_key")?)))
        .collect()
}

/// Records that a job's file is gone.
pub async fn forget_file(meta: &Meta, id: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE jobs SET object_key = NULL, updated_at = $1 WHERE id = $2")
        .bind(meta::now())
        .bind(id)
        .execute(&meta.pool)
        .await?;
    Ok(())
}
