//! Background extraction jobs: the queue in the metadata database, the workers that
//! claim jobs with a lease, and the janitor that removes expired files.

mod out;
pub mod schedules;
mod store;
mod worker;

pub use out::{EncryptionOut, JobOut};
pub use store::{
    cancel_job, create_job, get_job, list_jobs, CancelOutcome, CreateError, JobFilter, JobSort,
    NewJob,
};
pub use worker::{encrypt, object_key, spawn_workers, sweep, JobSettings};

use serde::Serialize;
use utoipa::ToSchema;

/// The five states of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        Some(match text {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }

    /// Completed, failed and cancelled jobs never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub customer_id: String,
    pub procedure_name: String,
    pub status: JobStatus,
    /// The extraction parameters as given (name, value).
    pub request: Vec<(String, String)>,
    pub output_format: String,
    pub compression: String,
    pub metadata: serde_json::Value,
    pub progress_percent: i64,
    pub rows_processed: i64,
    pub estimated_rows: Option<i64>,
    pub estimated_completion_seconds: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub execution_time_ms: Option<i64>,
    pub file_size_bytes: Option<i64>,
    pub object_key: Option<String>,
    pub sha256: Option<String>,
    pub key_id: Option<String>,
    pub expires_at: Option<String>,
    pub error_message: Option<String>,
    pub retry_count: i64,
    /// The schedule that made this job, if any.
    pub schedule_id: Option<String>,
}

/// `{procedure}_{unix_ms}_{8 hex}`.
pub fn new_job_id(procedure: &str) -> String {
    format!(
        "{procedure}_{}_{}",
        chrono::Utc::now().timestamp_millis(),
        crate::crypto::random_hex(4)
    )
}

/// The public `metadata` of a job: the extraction parameters it runs with.
pub fn job_metadata(params: &crate::catalog::ExtractParams) -> serde_json::Value {
    let filters: serde_json::Map<String, serde_json::Value> = params
        .filters
        .iter()
        .map(|(name, value)| {
            let value = match value {
                crate::catalog::FilterValue::Int(i) => serde_json::json!(i),
                crate::catalog::FilterValue::Text(s) => serde_json::json!(s),
                crate::catalog::FilterValue::Bool(b) => serde_json::json!(b),
            };
            (name.clone(), value)
        })
        .collect();
    serde_json::json!({
        "from_date": params.from_text, "to_date": params.to_text, "date_modifier": params.date_modifier,
        "filters": filters, "columns": params.columns, "limit": params.limit,
    })
}
