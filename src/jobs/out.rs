//! The public shape of a job: what the API answers and what job events carry.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Job, JobStatus};

/// How the stored file is encrypted.
#[derive(Serialize, ToSchema)]
pub struct EncryptionOut {
    #[schema(example = "AES-256-GCM")]
    pub algorithm: &'static str,
    /// First 8 bytes of SHA-256 of the data key, hex; `null` until the file exists.
    #[schema(example = "66687aadf862bd77")]
    pub key_id: Option<String>,
    /// The stream format (see docs/decryption.md).
    #[schema(example = "CSE1")]
    pub format: &'static str,
}

/// A background job; every field is present, `null` where not yet known.
#[derive(Serialize, ToSchema)]
pub struct JobOut {
    #[schema(example = "appointments_1758630144658_c7511999")]
    pub job_id: String,
    pub customer_id: String,
    #[schema(example = "appointments")]
    pub procedure_name: String,
    pub status: JobStatus,
    #[schema(minimum = 0, maximum = 100)]
    pub progress_percent: i64,
    pub rows_processed: i64,
    pub estimated_rows: Option<i64>,
    pub estimated_completion_seconds: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub execution_time_seconds: Option<f64>,
    pub file_size_bytes: Option<i64>,
    #[schema(example = "ndjson")]
    pub output_format: String,
    #[schema(example = "gzip")]
    pub compression: String,
    /// A fresh presigned download URL while the file exists.
    pub s3_url: Option<String>,
    /// When the file (and so any download URL) expires.
    pub expires_at: Option<String>,
    pub error_message: Option<String>,
    pub retry_count: i64,
    /// The extraction parameters: from_date, to_date, date_modifier, filters, columns.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub encryption: EncryptionOut,
    /// Hex SHA-256 of the stored (encrypted) file.
    pub sha256: Option<String>,
    /// The schedule that made this job; `null` for jobs asked for directly.
    pub schedule_id: Option<String>,
}

impl JobOut {
    /// The job as it is now, without a download URL (events store this).
    pub fn snapshot(job: Job) -> JobOut {
        JobOut {
            job_id: job.id,
            customer_id: job.customer_id,
            procedure_name: job.procedure_name,
            status: job.status,
            progress_percent: job.progress_percent,
            rows_processed: job.rows_processed,
            estimated_rows: job.estimated_rows,
            estimated_completion_seconds: job.estimated_completion_seconds,
            created_at: job.created_at,
            updated_at: job.updated_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            execution_time_seconds: job.execution_time_ms.map(|ms| ms as f64 / 1000.0),
            file_size_bytes: job.file_size_bytes,
            output_format: job.output_format,
            compression: job.compression,
            s3_url: None,
            expires_at: job.expires_at,
            error_message: job.error_message,
            retry_count: job.retry_count,
            metadata: job.metadata,
            encryption: EncryptionOut {
                algorithm: "AES-256-GCM",
                key_id: job.key_id,
                format: "CSE1",
            },
            sha256: job.sha256,
            schedule_id: job.schedule_id,
        }
    }
}
