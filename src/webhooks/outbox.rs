//! The outbox: an event and its deliveries are written with the caller's connection,
//! inside the transaction of the state change that causes the event, so a committed
//! change always has its deliveries and a rolled-back one never does.

use std::sync::OnceLock;

use chrono::{Duration, Utc};
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;

use super::endpoints::parse_events;
use super::EventType;
use crate::crypto;
use crate::jobs::{Job, JobOut};
use crate::meta;

/// Wakes the dispatcher of this process once an event is committed.
pub fn wake() {
    notifier().notify_waiters();
    notifier().notify_one();
}

pub(crate) fn notifier() -> &'static Notify {
    static NOTIFY: OnceLock<Notify> = OnceLock::new();
    NOTIFY.get_or_init(Notify::new)
}

/// What was written for an event.
#[derive(Debug, Default)]
pub struct Emitted {
    /// `None` when nobody was subscribed (nothing was written).
    pub event_id: Option<String>,
    pub deliveries: Vec<String>,
    pub emails: usize,
}

/// `evt_{unix_ms}_{8 hex}`.
fn new_event_id() -> String {
    format!(
        "evt_{}_{}",
        Utc::now().timestamp_millis(),
        crypto::random_hex(4)
    )
}

/// `del_{unix_ms}_{8 hex}`.
pub fn new_delivery_id() -> String {
    format!(
        "del_{}_{}",
        Utc::now().timestamp_millis(),
        crypto::random_hex(4)
    )
}

/// Which endpoints get an event: one customer's, or every customer's (`None`).
pub enum Audience<'a> {
    Customer(&'a str),
    Everyone,
    /// One endpoint, whatever it subscribes to (the test event).
    Endpoint(&'a str),
}

/// Writes `event` with `data` and a delivery for every enabled endpoint of the
/// audience that subscribes to it (`job.progress` at most once per endpoint per its
/// interval), plus the customer's notification email where one is configured.
pub async fn emit(
    conn: &mut AnyConnection,
    audience: Audience<'_>,
    event: EventType,
    data: serde_json::Value,
) -> anyhow::Result<Emitted> {
    let now = Utc::now();
    let now_text = meta::format_time(now);
    let (condition, bind) = match audience {
        Audience::Customer(c) => ("customer_id = $1 AND enabled = 1", Some(c)),
        Audience::Everyone => ("enabled = 1", None),
        Audience::Endpoint(id) => ("id = $1", Some(id)),
    };
    let sql = format!(
        "SELECT id, customer_id, events, max_retries, batch_max_events, batch_max_wait_seconds, progress_interval_seconds \
         FROM webhook_endpoints WHERE {condition}"
    );
    let mut query = sqlx::query(&sql);
    if let Some(value) = bind {
        query = query.bind(value);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let is_test = matches!(audience, Audience::Endpoint(_));
    let mut targets = Vec::new();
    for row in rows {
        let events: String = row.try_get("events")?;
        if !is_test && !parse_events(&events).contains(&event) {
            continue;
        }
        let id: String = row.try_get("id")?;
        if event == EventType::JobProgress {
            // Throttle: claim this endpoint's progress slot, or skip it.
            let interval: i64 = row.try_get("progress_interval_seconds")?;
            let cutoff = meta::format_time(now - Duration::seconds(interval));
            let claimed = sqlx::query(
                "UPDATE webhook_endpoints SET last_progress_at = $1 WHERE id = $2 \
                 AND (last_progress_at IS NULL OR last_progress_at <= $3)",
            )
            .bind(&now_text)
            .bind(&id)
            .bind(&cutoff)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if claimed == 0 {
                continue;
            }
        }
        targets.push((
            id,
            row.try_get::<String, _>("customer_id")?,
            row.try_get::<i64, _>("max_retries")?,
            row.try_get::<i64, _>("batch_max_events")?,
            row.try_get::<i64, _>("batch_max_wait_seconds")?,
        ));
    }
    let email_recipients = match (&audience, is_job_outcome(event)) {
        (Audience::Customer(customer), true) => email_recipients(conn, customer, event).await?,
        _ => None,
    };
    if targets.is_empty() && email_recipients.is_none() {
        return Ok(Emitted::default());
    }

    let event_id = new_event_id();
    sqlx::query(
        "INSERT INTO webhook_events (id, customer_id, event_type, data, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&event_id)
    .bind(match audience {
        Audience::Customer(c) => Some(c.to_string()),
        _ => None,
    })
    .bind(event.as_str())
    .bind(data.to_string())
    .bind(&now_text)
    .execute(&mut *conn)
    .await?;

    let mut deliveries = Vec::new();
    for (endpoint_id, customer_id, max_retries, batch_max, batch_wait) in targets {
        let delivery_id = new_delivery_id();
        // A batching endpoint's first attempt waits for company, at most batch_wait.
        let due = if batch_max > 1 {
            meta::format_time(now + Duration::seconds(batch_wait))
        } else {
            now_text.clone()
        };
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, customer_id, event_id, event_type, is_test, status, attempts, \
             max_attempts, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9, $9)",
        )
        .bind(&delivery_id)
        .bind(&endpoint_id)
        .bind(&customer_id)
        .bind(&event_id)
        .bind(event.as_str())
        .bind(is_test as i64)
        .bind(1 + max_retries)
        .bind(&due)
        .bind(&now_text)
        .execute(&mut *conn)
        .await?;
        if batch_max > 1 {
            // A full batch goes at once.
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'",
            )
            .bind(&endpoint_id)
            .fetch_one(&mut *conn)
            .await?;
            if waiting >= batch_max {
                sqlx::query(
                    "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE endpoint_id = $2 AND status = 'pending' \
                     AND next_attempt_at > $1",
                )
                .bind(&now_text)
                .bind(&endpoint_id)
                .execute(&mut *conn)
                .await?;
            }
        }
        deliveries.push(delivery_id);
    }

    let mut emails = 0;
    if let (Some(recipients), Audience::Customer(customer)) = (email_recipients, &audience) {
        sqlx::query(
            "INSERT INTO email_outbox (id, customer_id, event_id, event_type, recipients, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(format!("eml_{}", crypto::random_hex(8)))
        .bind(*customer)
        .bind(&event_id)
        .bind(event.as_str())
        .bind(recipients)
        .bind(&now_text)
        .execute(&mut *conn)
        .await?;
        emails = 1;
    }
    metrics::counter!("cipherstream_webhook_events_total", "event" => event.as_str()).increment(1);
    Ok(Emitted {
        event_id: Some(event_id),
        deliveries,
        emails,
    })
}

fn is_job_outcome(event: EventType) -> bool {
    matches!(
        event,
        EventType::JobCompleted | EventType::JobFailed | EventType::JobCancelled
    )
}

/// The customer's notification addresses when it wants mail for `event`.
async fn email_recipients(
    conn: &mut AnyConnection,
    customer: &str,
    event: EventType,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT recipients, events FROM email_settings WHERE customer_id = $1 AND enabled = 1",
    )
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let events: String = row.try_get("events")?;
    Ok(parse_events(&events)
        .contains(&event)
        .then(|| row.try_get("recipients"))
        .transpose()?)
}

/// The event a job's new state causes, with the job as its data.
pub async fn emit_job_event(
    conn: &mut AnyConnection,
    event: EventType,
    job: &Job,
) -> anyhow::Result<Emitted> {
    let data = serde_json::to_value(JobOut::snapshot(job.clone()))?;
    emit(conn, Audience::Customer(&job.customer_id), event, data).await
}
