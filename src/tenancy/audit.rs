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
    let result = sqlx::query(
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
    .execute(&meta.pool)
    .await;
    if let Err(error) = result {
        tracing::error!(error = %error, action = %entry.action, "could not write audit entry");
    }
}
