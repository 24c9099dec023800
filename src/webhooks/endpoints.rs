//! Webhook endpoints in the metadata database. Secrets and custom headers are wrapped
//! by the master key at rest; every query a customer can reach takes the customer id.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::EventType;
use crate::crypto::{self, MasterKey};
use crate::meta::{self, Meta};

/// An endpoint as stored (secrets still wrapped).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub customer_id: String,
    pub spec: EndpointSpec,
    pub secret_wrapped: String,
    pub previous_secret_wrapped: Option<String>,
    pub previous_secret_expires_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// `closed`, `open` or `half_open`.
    pub circuit_state: String,
    pub circuit_retry_at: Option<String>,
    pub consecutive_failures: i64,
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a customer sets on an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    pub headers: BTreeMap<String, String>,
    pub timeout_seconds: i64,
    pub max_retries: i64,
    pub backoff_seconds: i64,
    pub batch_max_events: i64,
    pub batch_max_wait_seconds: i64,
    pub rate_limit_per_second: Option<i64>,
    pub progress_interval_seconds: i64,
    pub enabled: bool,
}

impl Default for EndpointSpec {
    fn default() -> Self {
        EndpointSpec {
            url: String::new(),
            description: String::new(),
            events: Vec::new(),
            headers: BTreeMap::new(),
            timeout_seconds: 30,
            max_retries: 3,
            backoff_seconds: 10,
            batch_max_events: 1,
            batch_max_wait_seconds: 0,
            rate_limit_per_second: None,
            progress_interval_seconds: 10,
            enabled: true,
        }
    }
}

impl Endpoint {
    pub fn subscribes(&self, event: EventType) -> bool {
        self.spec.events.contains(&event)
    }

    /// The secrets that sign deliveries now: the current one, then the previous one
    /// while its grace period after a rotation lasts.
    pub fn active_secrets(&self, master: &MasterKey) -> anyhow::Result<Vec<String>> {
        let mut secrets = vec![unwrap_text(master, &self.secret_wrapped)?];
        if let (Some(previous), Some(until)) = (
            &self.previous_secret_wrapped,
            &self.previous_secret_expires_at,
        ) {
            if meta::parse_time(until)? > Utc::now() {
                secrets.push(unwrap_text(master, previous)?);
            }
        }
        Ok(secrets)
    }

    /// When the previous secret stops signing, while a rotation's grace period lasts.
    pub fn rotation_ends_at(&self) -> Option<String> {
        let until = self.previous_secret_expires_at.as_ref()?;
        let live = meta::parse_time(until).ok()? > Utc::now();
        live.then(|| until.clone())
    }
}

fn unwrap_text(master: &MasterKey, wrapped: &str) -> anyhow::Result<String> {
    String::from_utf8(master.unwrap(wrapped)?).context("a wrapped secret is not text")
}

const COLUMNS: &str = "id, customer_id, url, description, events, headers_wrapped, secret_wrapped, \
    previous_secret_wrapped, previous_secret_expires_at, timeout_seconds, max_retries, backoff_seconds, \
    batch_max_events, batch_max_wait_seconds, rate_limit_per_second, progress_interval_seconds, enabled, \
    disabled_reason, circuit_state, circuit_retry_at, consecutive_failures, failing_since, created_at, updated_at";

/// Space-separated event names, as stored.
pub fn events_text(events: &[EventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses stored event names (unknown ones, from a newer version, are skipped).
pub fn parse_events(text: &str) -> Vec<EventType> {
    text.split_whitespace()
        .filter_map(EventType::parse)
        .collect()
}

pub(crate) fn from_row(master: &MasterKey, row: &AnyRow) -> anyhow::Result<Endpoint> {
    let headers_wrapped: String = row.try_get("headers_wrapped")?;
    let headers: BTreeMap<String, String> =
        serde_json::from_str(&unwrap_text(master, &headers_wrapped)?)?;
    let events: String = row.try_get("events")?;
    Ok(Endpoint {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        spec: EndpointSpec {
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            events: parse_events(&events),
            headers,
            timeout_seconds: row.try_get("timeout_seconds")?,
            max_retries: row.try_get("max_retries")?,
            backoff_seconds: row.try_get("backoff_seconds")?,
            batch_max_events: row.try_get("batch_max_events")?,
            batch_max_wait_seconds: row.try_get("batch_max_wait_seconds")?,
            rate_limit_per_second: row.try_get("rate_limit_per_second")?,
            progress_interval_seconds: row.try_get("progress_interval_seconds")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
        },
        secret_wrapped: row.try_get("secret_wrapped")?,
        previous_secret_wrapped: row.try_get("previous_secret_wrapped")?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
        disabled_reason: row.try_get("disabled_reason")?,
        circuit_state: row.try_get("circuit_state")?,
        circuit_retry_at: row.try_get("circuit_retry_at")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        failing_since: row.try_get("failing_since")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Stores a new endpoint with its (plain) secret.
pub async fn create_endpoint(
    meta: &Meta,
    master: &MasterKey,
    customer_id: &str,
    spec: &EndpointSpec,
    secret: &str,
) -> anyhow::Result<Endpoint> {
    let id = format!("wh_{}", crypto::random_hex(8));
    let now = meta::now();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, customer_id, url, description, events, headers_wrapped, secret_wrapped, \
         timeout_seconds, max_retries, backoff_seconds, batch_max_events, batch_max_wait_seconds, rate_limit_per_second, \
         progress_interval_seconds, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    )
    .bind(&id)
    .bind(customer_id)
    .bind(&spec.url)
    .bind(&spec.description)
    .bind(events_text(&spec.events))
    .bind(master.wrap(serde_json::to_string(&spec.headers)?.as_bytes()))
    .bind(master.wrap(secret.as_bytes()))
    .bind(spec.timeout_seconds)
    .bind(spec.max_retries)
    .bind(spec.backoff_seconds)
    .bind(spec.batch_max_events)
    .bind(spec.batch_max_wait_seconds)
    .bind(spec.rate_limit_per_second)
    .bind(spec.progress_interval_seconds)
    .bind(spec.enabled as i64)
    .bind(&now)
    .execute(&meta.pool)
    .await
    .context("inserting a webhook endpoint")?;
    get_endpoint(meta, master, customer_id, &id)
        .await?
        .context("the new endpoint vanished")
}

/// One endpoint of a customer.
pub async fn get_endpoint(
    meta: &Meta,
    master: &MasterKey,
    customer_id: &str,
    id: &str,
) -> anyhow::Result<Option<Endpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1 AND customer_id = $2"
    ))
    .bind(id)
    .bind(customer_id)
    .fetch_optional(&meta.pool)
    .await?;
    row.map(|r| from_row(master, &r)).transpose()
}

/// An endpoint by id alone (the dispatcher).
pub async fn load_endpoint(
    meta: &Meta,
    master: &MasterKey,
    id: &str,
) -> anyhow::Result<Option<Endpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&meta.pool)
    .await?;
    row.map(|r| from_row(master, &r)).transpose()
}

/// A page of a customer's endpoints, oldest first, and the total.
pub async fn list_endpoints(
    meta: &Meta,
    master: &MasterKey,
    customer_id: &str,
    limit: i64,
    offset: i64,
) -> anyhow::Result<(Vec<Endpoint>, i64)> {
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_one(&meta.pool)
            .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE customer_id = $1 ORDER BY created_at, id LIMIT {limit} OFFSET {offset}"
    ))
    .bind(customer_id)
    .fetch_all(&meta.pool)
    .await?;
    let endpoints = rows
        .iter()
        .map(|r| from_row(master, r))
        .collect::<anyhow::Result<_>>()?;
    Ok((endpoints, total))
}

/// Replaces an endpoint's settings. Enabling a disabled endpoint closes its circuit
/// and forgets its failures.
pub async fn update_endpoint(
    meta: &Meta,
    master: &MasterKey,
    current: &Endpoint,
    spec: &EndpointSpec,
) -> anyhow::Result<Option<Endpoint>> {
    let reenabled = spec.enabled && !current.spec.enabled;
    let reset = if reenabled {
        ", disabled_reason = NULL, circuit_state = 'closed', circuit_retry_at = NULL, consecutive_failures = 0, failing_since = NULL"
    } else {
        ""
    };
    let disabled = if !spec.enabled && current.spec.enabled {
        ", disabled_reason = 'disabled by the customer'"
    } else {
        ""
    };
    sqlx::query(&format!(
        "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, headers_wrapped = $4, timeout_seconds = $5, \
         max_retries = $6, backoff_seconds = $7, batch_max_events = $8, batch_max_wait_seconds = $9, rate_limit_per_second = $10, \
         progress_interval_seconds = $11, enabled = $12, updated_at = $13{reset}{disabled} WHERE id = $14 AND customer_id = $15"
    ))
    .bind(&spec.url)
    .bind(&spec.description)
    .bind(events_text(&spec.events))
    .bind(master.wrap(serde_json::to_string(&spec.headers)?.as_bytes()))
    .bind(spec.timeout_seconds)
    .bind(spec.max_retries)
    .bind(spec.backoff_seconds)
    .bind(spec.batch_max_events)
    .bind(spec.batch_max_wait_seconds)
    .bind(spec.rate_limit_per_second)
    .bind(spec.progress_interval_seconds)
    .bind(spec.enabled as i64)
    .bind(meta::now())
    .bind(&current.id)
    .bind(&current.customer_id)
    .execute(&meta.pool)
    .await?;
    get_endpoint(meta, master, &current.customer_id, &current.id).await
}

/// Deletes an endpoint with its deliveries and attempts.
pub async fn delete_endpoint(meta: &Meta, customer_id: &str, id: &str) -> anyhow::Result<bool> {
    let mut tx = meta.begin().await?;
    let owned: Option<String> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1 AND customer_id = $2")
            .bind(id)
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?;
    if owned.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM webhook_attempts WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Makes `secret` the signing secret; the old one keeps signing beside it until
/// `grace_until` (a rotation during a grace period drops the oldest secret).
pub async fn rotate_secret(
    meta: &Meta,
    master: &MasterKey,
    current: &Endpoint,
    secret: &str,
    grace_until: DateTime<Utc>,
) -> anyhow::Result<Option<Endpoint>> {
    sqlx::query(
        "UPDATE webhook_endpoints SET previous_secret_wrapped = secret_wrapped, previous_secret_expires_at = $1, \
         secret_wrapped = $2, updated_at = $3 WHERE id = $4 AND customer_id = $5",
    )
    .bind(meta::format_time(grace_until))
    .bind(master.wrap(secret.as_bytes()))
    .bind(meta::now())
    .bind(&current.id)
    .bind(&current.customer_id)
    .execute(&meta.pool)
    .await?;
    get_endpoint(meta, master, &current.customer_id, &current.id).await
}
