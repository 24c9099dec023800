//! Webhooks: endpoints customers subscribe to events, the event outbox written in the
//! same transaction as the state change that causes an event, and the dispatcher that
//! delivers signed calls with retries, a circuit breaker, rate limits and batching.
//! Email notifications ride on the same outbox.

pub mod deliveries;
mod dispatcher;
pub mod email;
pub mod endpoints;
pub mod guard;
pub mod outbox;
pub mod signing;

use std::path::PathBuf;
use std::time::Duration;

pub use dispatcher::{http_client, spawn_dispatcher};
pub use endpoints::{Endpoint, EndpointSpec};
pub use outbox::{emit, emit_job_event};

/// The events an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventType {
    JobCompleted,
    JobFailed,
    JobCancelled,
    JobProgress,
    SystemMaintenance,
    ApiRateLimit,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::JobCompleted,
        EventType::JobFailed,
        EventType::JobCancelled,
        EventType::JobProgress,
        EventType::SystemMaintenance,
        EventType::ApiRateLimit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::JobCompleted => "job.completed",
            EventType::JobFailed => "job.failed",
            EventType::JobCancelled => "job.cancelled",
            EventType::JobProgress => "job.progress",
            EventType::SystemMaintenance => "system.maintenance",
            EventType::ApiRateLimit => "api.rate_limit",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// The accepted names, for error messages.
    pub fn names() -> String {
        EventType::ALL.map(EventType::as_str).join(", ")
    }
}

/// How the dispatcher behaves; from configuration.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub guard: guard::Guard,
    /// Extra trusted root certificate(s), PEM (a private CA of the receivers).
    pub ca_file: Option<PathBuf>,
    /// Calls in flight at once from this process.
    pub concurrency: usize,
    pub poll_interval: Duration,
    /// Consecutive failed calls that open an endpoint's circuit.
    pub circuit_failure_threshold: i64,
    /// How long an open circuit waits before one probe call.
    pub circuit_cooldown: Duration,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    /// Finished deliveries are kept in the log this long.
    pub log_retention: Duration,
}

/// Response bodies are kept up to this many bytes.
pub const RESPONSE_EXCERPT_BYTES: usize = 4096;

/// A maintenance announcement, sent as `system.maintenance` to every endpoint of every
/// customer that subscribes to it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"message": "Database upgrade; extractions pause for up to 30 minutes",
    "starts_at": "2024-09-28T01:00:00Z", "ends_at": "2024-09-28T01:30:00Z", "severity": "info"}))]
pub struct Maintenance {
    /// What happens, for the integrators' operators (1-1000 characters).
    pub message: String,
    /// RFC 3339 start of the window.
    pub starts_at: String,
    /// RFC 3339 end of the window, when known.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// `info`, `warning` or `critical` (default `info`).
    #[serde(default)]
    pub severity: Option<String>,
}

impl Maintenance {
    /// Checks the fields; errors name the field.
    pub fn check(&self) -> Result<(), Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let chars = self.message.trim().chars().count();
        if chars == 0 || chars > 1000 {
            errors.push(("message", "message must be 1-1000 characters".to_string()));
        }
        let start = chrono::DateTime::parse_from_rfc3339(&self.starts_at);
        if start.is_err() {
            errors.push((
                "starts_at",
                "starts_at must be an RFC 3339 time, e.g. 2024-09-28T01:00:00Z".into(),
            ));
        }
        if let Some(end) = &self.ends_at {
            match (chrono::DateTime::parse_from_rfc3339(end), &start) {
                (Err(_), _) => errors.push(("ends_at", "ends_at must be an RFC 3339 time".into())),
                (Ok(end), Ok(start)) if end < *start => {
                    errors.push(("ends_at", "ends_at must not be before starts_at".into()))
                }
                _ => {}
            }
        }
        if let Some(severity) = &self.severity {
            if !["info", "warning", "critical"].contains(&severity.as_str()) {
                errors.push((
                    "severity",
                    "severity must be one of: info, warning, critical".into(),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Queues a checked announcement for every subscribed endpoint; returns the event id
/// (`None` when nobody subscribes) and the number of deliveries.
pub async fn announce_maintenance(
    meta: &crate::meta::Meta,
    announcement: &Maintenance,
) -> anyhow::Result<(Option<String>, usize)> {
    let data = serde_json::json!({
        "message": announcement.message.trim(),
        "starts_at": announcement.starts_at,
        "ends_at": announcement.ends_at,
        "severity": announcement.severity.as_deref().unwrap_or("info"),
    });
    let mut tx = meta.begin().await?;
    let emitted = outbox::emit(
        &mut tx,
        outbox::Audience::Everyone,
        EventType::SystemMaintenance,
        data,
    )
    .await?;
    tx.commit().await?;
    outbox::wake();
    Ok((emitted.event_id, emitted.deliveries.len()))
}
