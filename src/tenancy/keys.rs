//! API keys: created with a customer or later, stored as SHA-256 hashes, shown once.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};
use utoipa::ToSchema;

use super::{get_customer, Customer, TenancyError};
use crate::crypto;
use crate::meta::{self, Meta};

/// A key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    /// Key id, e.g. `key_3f9a0c1d2b4e5f60`.
    pub id: String,
    pub customer_id: String,
    /// A label for the key.
    pub name: String,
    /// The first characters of the key, to recognise it.
    #[schema(example = "cs_live_Ab3d")]
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// After this time the key no longer works; `null`: never expires.
    pub expires_at: Option<String>,
    /// Addresses this key may be used from (on top of the customer's allowlist); empty: any.
    pub ip_allowlist: Vec<String>,
    /// Requests per minute for this key, on top of the customer's quota; `null`: none of its own.
    pub rate_limit_per_minute: Option<i64>,
}

/// What an authenticated key brings besides its customer.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: String,
    pub ip_allowlist: Vec<String>,
    pub rate_limit_per_minute: Option<i64>,
}

/// What a new key may be limited to.
#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ip_allowlist: Vec<String>,
    pub rate_limit_per_minute: Option<i64>,
}

/// A new key: the only time its secret is visible.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// The API key; store it now, it cannot be shown again.
    #[schema(example = "cs_live_Ab3dEf5gHi7jKl9mNo1pQr3sTu5vWx7y")]
    pub api_key: String,
}

pub(super) async fn insert_key(
    tx: &mut Transaction<'_, Any>,
    customer_id: &str,
    name: &str,
    limits: &KeyLimits,
) -> Result<CreatedKey, TenancyError> {
    let api_key = crypto::new_api_key();
    let info = ApiKeyInfo {
        id: format!("key_{}", crypto::random_hex(8)),
        customer_id: customer_id.to_string(),
        name: name.to_string(),
        prefix: api_key[..12].to_string(),
        created_at: meta::now(),
        last_used_at: None,
        revoked_at: None,
        expires_at: limits.expires_at.map(meta::format_time),
        ip_allowlist: limits.ip_allowlist.clone(),
        rate_limit_per_minute: limits.rate_limit_per_minute,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, customer_id, name, prefix, key_hash, created_at, expires_at, ip_allowlist, \
         rate_limit_per_minute) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&info.id)
    .bind(&info.customer_id)
    .bind(&info.name)
    .bind(&info.prefix)
    .bind(crypto::hash_api_key(&api_key))
    .bind(&info.created_at)
    .bind(&info.expires_at)
    .bind(serde_json::to_string(&info.ip_allowlist).map_err(anyhow::Error::from)?)
    .bind(info.rate_limit_per_minute)
    .execute(&mut **tx)
    .await?;
    Ok(CreatedKey { info, api_key })
}

/// Adds a key to an existing customer.
pub async fn create_key(
    meta: &Meta,
    customer_id: &str,
    name: Option<&str>,
    limits: &KeyLimits,
) -> Result<CreatedKey, TenancyError> {
    let name = name.unwrap_or("default").trim();
    if name.is_empty() || name.len() > 100 {
        return Err(TenancyError::Invalid {
            field: "name",
            message: "name must be 1-100 characters".into(),
        });
    }
    if limits.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
        return Err(TenancyError::Invalid {
            field: "expires_at",
            message: "expires_at must be in the future".into(),
        });
    }
    super::customers::check_allowlist(&limits.ip_allowlist)?;
    if limits
        .rate_limit_per_minute
        .is_some_and(|n| !(1..=1_000_000).contains(&n))
    {
        return Err(TenancyError::Invalid {
            field: "rate_limit_per_minute",
            message: "rate_limit_per_minute must be from 1 to 1000000".into(),
        });
    }
    if get_customer(meta, customer_id).await?.is_none() {
        return Err(TenancyError::NoCustomer(customer_id.to_string()));
    }
    let mut tx = meta.begin().await?;
    let key = insert_key(&mut tx, customer_id, name, limits).await?;
    tx.commit().await?;
    Ok(key)
}

/// The keys of a customer, newest first.
pub async fn list_keys(meta: &Meta, customer_id: &str) -> Result<Vec<ApiKeyInfo>, TenancyError> {
    let rows = sqlx::query(
        "SELECT id, customer_id, name, prefix, created_at, last_used_at, revoked_at, expires_at, ip_allowlist, rate_limit_per_minute FROM api_keys \
         WHERE customer_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(customer_id)
    .fetch_all(&meta.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiKeyInfo {
                id: row.try_get("id")?,
                customer_id: row.try_get("customer_id")?,
                name: row.try_get("name")?,
                prefix: row.try_get("prefix")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                revoked_at: row.try_get("revoked_at")?,
                expires_at: row.try_get("expires_at")?,
                ip_allowlist: serde_json::from_str(&row.try_get::<String, _>("ip_allowlist")?)
                    .map_err(anyhow::Error::from)?,
                rate_limit_per_minute: row.try_get("rate_limit_per_minute")?,
            })
        })
        .collect()
}

/// Revokes a key of a customer; revoking twice is harmless.
pub async fn revoke_key(meta: &Meta, customer_id: &str, key_id: &str) -> Result<(), TenancyError> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND customer_id = $3")
        .bind(meta::now())
        .bind(key_id)
        .bind(customer_id)
        .execute(&meta.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(TenancyError::NoKey(key_id.to_string()));
    }
    Ok(())
}

/// The customer and key id behind an API key, if the key is valid (known, not revoked, not expired).
pub async fn authenticate(
    meta: &Meta,
    api_key: &str,
) -> Result<Option<(Customer, KeyGrant)>, TenancyError> {
    if !api_key.starts_with("cs_live_") || api_key.len() > 100 {
        return Ok(None);
    }
    let now = meta::now();
    let row = sqlx::query(
        "SELECT id, customer_id, ip_allowlist, rate_limit_per_minute FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(crypto::hash_api_key(api_key))
    .bind(&now)
    .fetch_optional(&meta.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let key_id: String = row.try_get("id")?;
    let customer_id: String = row.try_get("customer_id")?;
    let key_allowlist: Vec<String> =
        serde_json::from_str(&row.try_get::<String, _>("ip_allowlist")?)
            .map_err(anyhow::Error::from)?;
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(&now)
        .bind(&key_id)
        .execute(&meta.pool)
        .await?;
    let customer = get_customer(meta, &customer_id)
        .await?
        .ok_or(TenancyError::NoCustomer(customer_id))?;
    let grant = KeyGrant {
        key_id,
        ip_allowlist: key_allowlist,
        rate_limit_per_minute: row.try_get("rate_limit_per_minute")?,
    };
    Ok(Some((customer, grant)))
}
