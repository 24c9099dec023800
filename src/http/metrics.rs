//! `/metrics` in the Prometheus text format: request counts and latencies by route
//! and status, extraction rows and bytes, webhook and mail counters, and job and delivery gauges by status read
//! from the metadata database at scrape time. Aggregates only: no customer data.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::Row;

use super::AppState;

/// The process-wide recorder (installed once, on first use).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets(&buckets)
            .expect("non-empty buckets");
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (an embedding program's): render ours unattached.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Counts and times every request by method, route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("cipherstream_http_requests_total", &labels).increment(1);
    metrics::histogram!("cipherstream_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Err(error) = queue_gauges(&state).await {
        tracing::warn!(error = format!("{error:#}"), "reading queue gauges failed");
    }
    let handle = handle();
    handle.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

async fn queue_gauges(state: &AppState) -> anyhow::Result<()> {
    const JOB_STATUSES: &[&str] = &["queued", "running", "completed", "failed", "cancelled"];
    for (table, gauge, statuses) in [
        ("jobs", "cipherstream_jobs", JOB_STATUSES),
        (
            "webhook_deliveries",
            "cipherstream_webhook_deliveries",
            &crate::webhooks::deliveries::STATUSES[..],
        ),
    ] {
        let rows = sqlx::query(&format!(
            "SELECT status, COUNT(*) AS n FROM {table} GROUP BY status"
        ))
        .fetch_all(&state.meta.pool)
        .await?;
        let mut counts: HashMap<String, i64> = HashMap::new();
        for row in rows {
            counts.insert(row.try_get("status")?, row.try_get("n")?);
        }
        // Every status, so one that emptied reads 0 rather than its last count.
        for status in statuses {
            let n = counts.get(*status).copied().unwrap_or(0);
            metrics::gauge!(gauge, "status" => *status).set(n as f64);
        }
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_endpoints WHERE circuit_state <> 'closed' AND enabled = 1",
    )
    .fetch_one(&state.meta.pool)
    .await?;
    metrics::gauge!("cipherstream_webhook_open_circuits").set(open as f64);
    Ok(())
}
