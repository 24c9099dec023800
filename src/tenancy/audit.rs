//! The audit trail: who did what, when, from where. Never holds a secret.

use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto;
use crate::meta::{self, Meta};

/// One audit entry.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AuditEntry {
    pub customer_id: Option<String>,
    pub key_id: Option<String>,
    /// What happened, e.g. `extract`, `customer.create`, `key.revoke`.
    pub action: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<i64>,
    pub duration_ms: Option<i64>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Non-secret details (parameters, row counts).
    pub detail: serde_json::Value,
}

/// Stores an entry. Failing to audit is logged, not fatal to the request already served.
pub async fn record(meta: &Meta, entry: AuditEntry) {
    let action = entry.action.clone();
    let result = async {
        let mut conn = meta.pool.acquire().await?;
        record_in(&mut conn, entry).await
    }
    .await;
    if let Err(error) = result {
        tracing::error!(error = format!("{error:#}"), %action, "could not write audit entry");
    }
}

/// A stored entry as the audit API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoredAuditEntry {
    #[schema(example = "aud_3f9a1c0d5e7b2a64c1d2")]
    pub audit_id: String,
    pub created_at: String,
    /// `api.request`, `job.created`, `job.completed`, `webhook.create`, `key.create`, …
    #[schema(example = "api.request")]
    pub action: String,
    pub key_id: Option<String>,
    pub ip: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<i64>,
    pub duration_ms: Option<i64>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Filters of the audit list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub action: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// A page of a customer's entries, newest first, and the total.
pub async fn list(
    meta: &Meta,
    customer_id: &str,
    filter: &AuditFilter,
) -> anyhow::Result<(Vec<StoredAuditEntry>, i64)> {
    use sqlx::Row;
    let mut conditions = vec!["customer_id = $1".to_string()];
    let mut values = vec![customer_id.to_string()];
    for (condition, value) in [
        ("created_at >= ", &filter.from),
        ("created_at <= ", &filter.to),
        ("action = ", &filter.action),
    ] {
        if let Some(value) = value {
            values.push(value.clone());
            conditions.push(format!("{condition}${}", values.len()));
        }
    }
    let where_clause = conditions.join(" AND ");
    let count_sql = format!("SELECT COUNT(*) FROM audit_entries WHERE {where_clause}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for v in &values {
        count = count.bind(v.clone());
    }
    let total = count.fetch_one(&meta.pool).await?;
    let sql = format!(
        "SELECT id, created_at, action, key_id, ip, method, path, status, duration_ms, request_id, detail \
         FROM audit_entries WHERE {where_clause} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
        filter.limit, filter.offset
    );
    let mut query = sqlx::query(&sql);
    for v in &values {
        query = query.bind(v.clone());
    }
    let rows = query.fetch_all(&meta.pool).await?;
    let entries = rows
        .iter()
        .map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(StoredAuditEntry {
                audit_id: r.try_get("id")?,
                created_at: r.try_get("created_at")?,
                action: r.try_get("action")?,
                key_id: r.try_get("key_id")?,
                ip: r.try_get("ip")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                status: r.try_get("status")?,
                duration_ms: r.try_get("duration_ms")?,
                request_id: r.try_get("request_id")?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((entries, total))
}

/// Writes an entry inside the caller's transaction (job lifecycle transitions).
pub async fn record_in(conn: &mut sqlx::AnyConnection, entry: AuditEntry) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_entries (id, customer_id, key_id, action, method, path, status, duration_ms, ip, request_id, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(format!("aud_{}", crypto::random_hex(10)))
    .bind(entry.customer_id)
    .bind(entry.key_id)
    .bind(&entry.action)
    .bind(entry.method)
    .bind(entry.path)
    .bind(entry.status)
    .bind(entry.duration_ms)
    .bind(entry.ip)
    .bind(entry.request_id)
    .bind(if entry.detail.is_null() { "{}".to_string() } else { entry.detail.to_string() })
    .bind(meta::now())
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes entries older than `cutoff`; returns how many.
pub async fn prune(meta: &Meta, cutoff: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM audit_entries WHERE created_at < $1")
            .bind(meta::format_time(cutoff))
            .execute(&meta.pool)
            .await?
            .rows_affected(),
    )
}
