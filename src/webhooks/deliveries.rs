//! The delivery log: listing, one delivery with its attempts, the dead-letter list,
//! manual retry, time-window recovery and per-endpoint statistics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

use crate::meta::{self, Meta};

/// One delivery of an event to an endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    #[schema(example = "del_1758630144658_9f1c2a4b")]
    pub delivery_id: String,
    #[schema(example = "wh_3f9a1c0d5e7b2a64")]
    pub webhook_id: String,
    #[schema(example = "job.completed")]
    pub event: String,
    pub event_id: String,
    /// `pending`, `sending`, `retrying`, `succeeded` or `dead`.
    #[schema(example = "succeeded")]
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Attempts allowed before the delivery goes to the dead-letter list.
    pub max_attempts: i64,
    /// HTTP status of the last attempt; `null` when there was no answer.
    pub last_http_status: Option<i64>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    /// The first 4 KiB of the last answer's body.
    pub last_response_excerpt: Option<String>,
    /// When the next attempt is due (pending and retrying deliveries).
    pub next_attempt_at: Option<String>,
    /// A test event sent with `POST /v1/webhooks/{id}/test`.
    pub test: bool,
    pub created_at: String,
    pub updated_at: String,
    pub delivered_at: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub attempt: i64,
    /// The call that carried it (the delivery id, or a `bat_` id for a batch).
    pub call_id: String,
    pub started_at: String,
    pub succeeded: bool,
    pub http_status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Delivery statuses, for filters.
pub const STATUSES: [&str; 5] = ["pending", "sending", "retrying", "succeeded", "dead"];

const COLUMNS: &str = "id, endpoint_id, event_type, event_id, status, attempts, max_attempts, last_http_status, \
    last_latency_ms, last_error, last_response, next_attempt_at, is_test, created_at, updated_at, delivered_at";

fn from_row(row: &AnyRow) -> anyhow::Result<Delivery> {
    let status: String = row.try_get("status")?;
    let waiting = status == "pending" || status == "retrying";
    Ok(Delivery {
        delivery_id: row.try_get("id")?,
        webhook_id: row.try_get("endpoint_id")?,
        event: row.try_get("event_type")?,
        event_id: row.try_get("event_id")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        last_http_status: row.try_get("last_http_status")?,
        last_latency_ms: row.try_get("last_latency_ms")?,
        last_error: row.try_get("last_error")?,
        last_response_excerpt: row.try_get("last_response")?,
        next_attempt_at: if waiting {
            Some(row.try_get("next_attempt_at")?)
        } else {
            None
        },
        test: row.try_get::<i64, _>("is_test")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        delivered_at: row.try_get("delivered_at")?,
        status,
    })
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub status: Option<String>,
    pub event: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// A page of a customer's deliveries, newest first, and the total.
pub async fn list_deliveries(
    meta: &Meta,
    customer_id: &str,
    filter: &DeliveryFilter,
) -> anyhow::Result<(Vec<Delivery>, i64)> {
    let mut conditions = vec!["customer_id = $1".to_string()];
    let mut values = vec![customer_id.to_string()];
    for (column, value) in [
        ("endpoint_id", &filter.endpoint_id),
        ("status", &filter.status),
        ("event_type", &filter.event),
    ] {
        if let Some(value) = value {
            values.push(value.clone());
            conditions.push(format!("{column} = ${}", values.len()));
        }
    }
    let where_clause = conditions.join(" AND ");
    let count_sql = format!("SELECT COUNT(*) FROM webhook_deliveries WHERE {where_clause}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for v in &values {
        count = count.bind(v.clone());
    }
    let total = count.fetch_one(&meta.pool).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE {where_clause} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
        filter.limit, filter.offset
    );
    let mut query = sqlx::query(&sql);
    for v in &values {
        query = query.bind(v.clone());
    }
    let rows = query.fetch_all(&meta.pool).await?;
    Ok((
        rows.iter().map(from_row).collect::<anyhow::Result<_>>()?,
        total,
    ))
}

/// One delivery of a customer with its attempts, oldest first.
pub async fn get_delivery(
    meta: &Meta,
    customer_id: &str,
    id: &str,
) -> anyhow::Result<Option<(Delivery, Vec<Attempt>)>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1 AND customer_id = $2"
    ))
    .bind(id)
    .bind(customer_id)
    .fetch_optional(&meta.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let attempts = sqlx::query(
        "SELECT attempt, call_id, started_at, succeeded, http_status, latency_ms, error, response_excerpt \
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt, started_at",
    )
    .bind(id)
    .fetch_all(&meta.pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Attempt {
            attempt: r.try_get("attempt")?,
            call_id: r.try_get("call_id")?,
            started_at: r.try_get("started_at")?,
            succeeded: r.try_get::<i64, _>("succeeded")? != 0,
            http_status: r.try_get("http_status")?,
            latency_ms: r.try_get("latency_ms")?,
            error: r.try_get("error")?,
            response_excerpt: r.try_get("response_excerpt")?,
        })
    })
    .collect::<anyhow::Result<_>>()?;
    Ok(Some((from_row(&row)?, attempts)))
}

/// Why a manual retry was refused.
#[derive(Debug)]
pub enum RetryRefused {
    NotFound,
    /// Still on its way (pending, sending or retrying).
    InFlight(String),
}

/// Sends a finished (dead or succeeded) delivery once more: one more attempt, now.
pub async fn retry_delivery(
    meta: &Meta,
    customer_id: &str,
    id: &str,
) -> anyhow::Result<Result<Delivery, RetryRefused>> {
    let now = meta::now();
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', max_attempts = attempts + 1, next_attempt_at = $1, updated_at = $1 \
         WHERE id = $2 AND customer_id = $3 AND status IN ('dead', 'succeeded')",
    )
    .bind(&now)
    .bind(id)
    .bind(customer_id)
    .execute(&meta.pool)
    .await?
    .rows_affected();
    let current = get_delivery(meta, customer_id, id).await?;
    Ok(match (done, current) {
        (_, None) => Err(RetryRefused::NotFound),
        (1, Some((delivery, _))) => {
            super::outbox::wake();
            Ok(delivery)
        }
        (_, Some((delivery, _))) => Err(RetryRefused::InFlight(delivery.status)),
    })
}

/// Re-sends every dead delivery of an endpoint created in `[since, until]`, one more
/// attempt each. Returns how many were queued.
pub async fn recover(
    meta: &Meta,
    endpoint_id: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let now = meta::now();
    let requeued = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', max_attempts = attempts + 1, next_attempt_at = $1, updated_at = $1 \
         WHERE endpoint_id = $2 AND status = 'dead' AND created_at >= $3 AND created_at <= $4",
    )
    .bind(&now)
    .bind(endpoint_id)
    .bind(meta::format_time(since))
    .bind(meta::format_time(until))
    .execute(&meta.pool)
    .await?
    .rows_affected();
    if requeued > 0 {
        super::outbox::wake();
    }
    Ok(requeued)
}

/// Delivery counts by status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub sending: i64,
    pub retrying: i64,
    pub succeeded: i64,
    pub dead: i64,
}

/// Latency percentiles of calls, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Latency {
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

/// Attempts in a window and how they went.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AttemptStats {
    pub since: String,
    pub attempts: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// succeeded / attempts; `null` without attempts.
    pub success_rate: Option<f64>,
    pub latency_ms: Latency,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
}

/// Counts of an endpoint's deliveries and statistics of its attempts since `since`.
pub async fn stats(
    meta: &Meta,
    endpoint_id: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<(StatusCounts, AttemptStats)> {
    let mut counts = StatusCounts::default();
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY status",
    )
    .bind(endpoint_id)
    .fetch_all(&meta.pool)
    .await?;
    for row in rows {
        let n: i64 = row.try_get("n")?;
        match row.try_get::<String, _>("status")?.as_str() {
            "pending" => counts.pending = n,
            "sending" => counts.sending = n,
            "retrying" => counts.retrying = n,
            "succeeded" => counts.succeeded = n,
            "dead" => counts.dead = n,
            _ => {}
        }
    }
    let since_text = meta::format_time(since);
    // One row per call: a batch call (`bat_` id) records an attempt per delivery it
    // carried; a single delivery's calls share its id and differ by attempt.
    let rows = sqlx::query(
        "SELECT call_id, MIN(started_at) AS started_at, MAX(succeeded) AS succeeded, MAX(latency_ms) AS latency_ms \
         FROM webhook_attempts WHERE endpoint_id = $1 AND started_at >= $2 \
         GROUP BY call_id, CASE WHEN call_id LIKE 'bat%' THEN 0 ELSE attempt END",
    )
    .bind(endpoint_id)
    .bind(&since_text)
    .fetch_all(&meta.pool)
    .await?;
    let mut latencies = Vec::with_capacity(rows.len());
    let mut stats = AttemptStats {
        since: since_text,
        ..AttemptStats::default()
    };
    for row in rows {
        let ok = row.try_get::<i64, _>("succeeded")? != 0;
        let at: String = row.try_get("started_at")?;
        latencies.push(row.try_get::<i64, _>("latency_ms")?);
        stats.attempts += 1;
        let last = if ok {
            stats.succeeded += 1;
            &mut stats.last_success_at
        } else {
            stats.failed += 1;
            &mut stats.last_failure_at
        };
        if last.as_ref().is_none_or(|l| *l < at) {
            *last = Some(at);
        }
    }
    latencies.sort_unstable();
    let pick = |q: f64| -> Option<i64> {
        if latencies.is_empty() {
            return None;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        Some(latencies[rank - 1])
    };
    stats.latency_ms = Latency {
        p50: pick(0.50),
        p95: pick(0.95),
        p99: pick(0.99),
    };
    stats.success_rate =
        (stats.attempts > 0).then(|| stats.succeeded as f64 / stats.attempts as f64);
    Ok((counts, stats))
}

/// Removes the log of finished deliveries (succeeded or dead), sent mails and events
/// nothing refers to any more, last touched before `cutoff`. Returns deliveries removed.
pub async fn prune(meta: &Meta, cutoff: DateTime<Utc>) -> anyhow::Result<u64> {
    let cutoff = meta::format_time(cutoff);
    let mut tx = meta.begin().await?;
    sqlx::query("DELETE FROM email_outbox WHERE status IN ('sent', 'failed') AND created_at < $1")
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries \
         WHERE status IN ('succeeded', 'dead') AND updated_at < $1)",
    )
    .bind(&cutoff)
    .execute(&mut *tx)
    .await?;
    let removed = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE status IN ('succeeded', 'dead') AND updated_at < $1",
    )
    .bind(&cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "DELETE FROM webhook_events WHERE created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id) \
         AND NOT EXISTS (SELECT 1 FROM email_outbox o WHERE o.event_id = webhook_events.id)",
    )
    .bind(&cutoff)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(removed)
}
