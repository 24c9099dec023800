//! The customer store.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::keys::{insert_key, CreatedKey};
use super::{validate_customer_id, TenancyError};
use crate::crypto::{self, MasterKey};
use crate::dialect::Dialect;
use crate::meta::{self, Meta};

/// A customer (tenant). Its source URL is stored encrypted and never returned.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    /// Slug id, e.g. `smile-dental`.
    #[schema(example = "smile-dental")]
    pub id: String,
    /// Display name.
    #[schema(example = "Smile Dental Group")]
    pub name: String,
    /// Kind of practice database: `sqlite`, `mysql` or `postgres`.
    #[schema(example = "mysql")]
    pub source_kind: String,
    /// CIDRs allowed to call the API for this customer; empty means any.
    pub ip_allowlist: Vec<String>,
    /// Requests per minute allowed; `null` uses the server default.
    pub rate_limit_per_minute: Option<i64>,
    /// Id of the current data key (first 8 bytes of its SHA-256, hex).
    #[schema(example = "66687aadf862bd77")]
    pub data_key_id: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Input of customer creation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Slug id; generated from the name when absent.
    pub id: Option<String>,
    /// Display name.
    #[schema(example = "Smile Dental Group")]
    pub name: String,
    /// The practice database: `sqlite://…`, `mysql://…` (MySQL/MariaDB) or `postgres://…`.
    #[schema(example = "mysql://reader:secret@db.example.com:3306/practice")]
    pub source_url: String,
    /// CIDRs allowed to call the API (IPv4 or IPv6).
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    /// Requests per minute allowed.
    pub rate_limit_per_minute: Option<i64>,
}

/// Creates a customer with its first API key and data key. Returns the customer,
/// the key (shown once) and the base64 data key (shown once).
pub async fn create_customer(
    meta: &Meta,
    master: &MasterKey,
    input: NewCustomer,
) -> Result<(Customer, CreatedKey, String), TenancyError> {
    let name = input.name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(TenancyError::Invalid {
            field: "name",
            message: "name must be 1-200 characters".into(),
        });
    }
    let id = match input.id {
        Some(id) => id,
        None => slugify(&name),
    };
    validate_customer_id(&id)?;
    let Some(dialect) = Dialect::from_url(&input.source_url) else {
        return Err(TenancyError::Invalid {
            field: "source_url",
            message:
                "source_url must start with sqlite://, mysql:// (MySQL/MariaDB) or postgres://"
                    .into(),
        });
    };
    if url::Url::parse(&input.source_url).is_err() && dialect != Dialect::Sqlite {
        return Err(TenancyError::Invalid {
            field: "source_url",
            message: "source_url is not a valid URL".into(),
        });
    }
    check_allowlist(&input.ip_allowlist)?;
    if let Some(limit) = input.rate_limit_per_minute {
        if !(1..=1_000_000).contains(&limit) {
            return Err(TenancyError::Invalid {
                field: "rate_limit_per_minute",
                message: "rate_limit_per_minute must be between 1 and 1000000".into(),
            });
        }
    }
    if get_customer(meta, &id).await?.is_some() {
        return Err(TenancyError::CustomerExists(id));
    }
    let data_key = crypto::random_key();
    let now = meta::now();
    let customer = Customer {
        id: id.clone(),
        name,
        source_kind: dialect.as_str().to_string(),
        ip_allowlist: input.ip_allowlist,
        rate_limit_per_minute: input.rate_limit_per_minute,
        data_key_id: crypto::key_id(&data_key),
        created_at: now.clone(),
        updated_at: now,
    };
    let mut tx = meta.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO customers (id, name, source_kind, source_url_wrapped, ip_allowlist, rate_limit_per_minute, \
         data_key_wrapped, data_key_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&customer.id)
    .bind(&customer.name)
    .bind(&customer.source_kind)
    .bind(master.wrap(input.source_url.as_bytes()))
    .bind(serde_json::to_string(&customer.ip_allowlist).map_err(anyhow::Error::from)?)
    .bind(customer.rate_limit_per_minute)
    .bind(master.wrap(&data_key))
    .bind(&customer.data_key_id)
    .bind(&customer.created_at)
    .bind(&customer.updated_at)
    .execute(&mut *tx)
    .await;
    if let Err(error) = inserted {
        // Two creations racing for one id: the primary key decides.
        if matches!(&error, sqlx::Error::Database(db) if db.is_unique_violation()) {
            return Err(TenancyError::CustomerExists(customer.id));
        }
        return Err(error.into());
    }
    sqlx::query("INSERT INTO data_keys (key_id, customer_id, created_at) VALUES ($1, $2, $3)")
        .bind(&customer.data_key_id)
        .bind(&customer.id)
        .bind(&customer.created_at)
        .execute(&mut *tx)
        .await?;
    let key = insert_key(&mut tx, &customer.id, "default", &Default::default()).await?;
    tx.commit().await?;
    Ok((customer, key, B64.encode(data_key)))
}

/// One customer, if it exists.
pub async fn get_customer(meta: &Meta, id: &str) -> Result<Option<Customer>, TenancyError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM customers WHERE id = $1"))
        .bind(id)
        .fetch_optional(&meta.pool)
        .await?;
    row.map(|row| from_row(&row)).transpose()
}

/// Every customer, by id.
pub async fn list_customers(meta: &Meta) -> Result<Vec<Customer>, TenancyError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM customers ORDER BY id"))
        .fetch_all(&meta.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The decrypted source URL of a customer.
pub async fn source_url(
    meta: &Meta,
    master: &MasterKey,
    id: &str,
) -> Result<SecretString, TenancyError> {
    let wrapped: Option<String> =
        sqlx::query_scalar("SELECT source_url_wrapped FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(&meta.pool)
            .await?;
    let wrapped = wrapped.ok_or_else(|| TenancyError::NoCustomer(id.to_string()))?;
    let bytes = master.unwrap(&wrapped)?;
    let url =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("stored source URL is not UTF-8"))?;
    Ok(SecretString::from(url))
}

/// Replaces a customer's data key. New files use the new key; files already stored
/// stay as they are, readable with the key they name in their header until they
/// expire. Returns the customer and the new base64 key (shown only now).
pub async fn rotate_data_key(
    meta: &Meta,
    master: &MasterKey,
    id: &str,
) -> Result<(Customer, String), TenancyError> {
    let old = get_customer(meta, id)
        .await?
        .ok_or_else(|| TenancyError::NoCustomer(id.to_string()))?;
    let key = crypto::random_key();
    let key_id = crypto::key_id(&key);
    let now = meta::now();
    let mut tx = meta.begin().await?;
    sqlx::query("UPDATE customers SET data_key_wrapped = $1, data_key_id = $2, updated_at = $3 WHERE id = $4")
        .bind(master.wrap(&key))
        .bind(&key_id)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE data_keys SET retired_at = $1 WHERE customer_id = $2 AND key_id = $3")
        .bind(&now)
        .bind(id)
        .bind(&old.data_key_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO data_keys (key_id, customer_id, created_at) VALUES ($1, $2, $3)")
        .bind(&key_id)
        .bind(id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let customer = get_customer(meta, id)
        .await?
        .ok_or_else(|| TenancyError::NoCustomer(id.to_string()))?;
    Ok((customer, B64.encode(key)))
}

/// The decrypted current data key of a customer.
pub async fn data_key(meta: &Meta, master: &MasterKey, id: &str) -> Result<[u8; 32], TenancyError> {
    let wrapped: Option<String> =
        sqlx::query_scalar("SELECT data_key_wrapped FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(&meta.pool)
            .await?;
    let wrapped = wrapped.ok_or_else(|| TenancyError::NoCustomer(id.to_string()))?;
    let key: [u8; 32] = master
        .unwrap(&wrapped)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("stored data key of {id} is not 32 bytes"))?;
    Ok(key)
}

const COLUMNS: &str = "id, name, source_kind, ip_allowlist, rate_limit_per_minute, data_key_id, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Customer, TenancyError> {
    let allowlist: String = row.try_get("ip_allowlist")?;
    Ok(Customer {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        source_kind: row.try_get("source_kind")?,
        ip_allowlist: serde_json::from_str(&allowlist).map_err(anyhow::Error::from)?,
        rate_limit_per_minute: row.try_get("rate_limit_per_minute")?,
        data_key_id: row.try_get("data_key_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.truncate(63);
    slug.trim_end_matches('-').to_string()
}

/// Checks an IP allowlist: addresses or CIDRs, IPv4 or IPv6, at most 100.
pub(super) fn check_allowlist(list: &[String]) -> Result<(), TenancyError> {
    if list.len() > 100 {
        return Err(TenancyError::Invalid {
            field: "ip_allowlist",
            message: "ip_allowlist may hold at most 100 entries".into(),
        });
    }
    for cidr in list {
        if !valid_cidr(cidr) {
            return Err(TenancyError::Invalid {
                field: "ip_allowlist",
                message: format!(
                    "{:?} is not an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.0/24)",
                    cidr.chars().take(60).collect::<String>()
                ),
            });
        }
    }
    Ok(())
}

fn valid_cidr(text: &str) -> bool {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_cidrs() {
        assert_eq!(slugify("Smile Dental Group!"), "smile-dental-group");
        assert!(valid_cidr("10.0.0.0/8"));
        assert!(valid_cidr("2001:db8::/32"));
        assert!(valid_cidr("203.0.113.7"));
        assert!(!valid_cidr("10.0.0.0/33"));
        assert!(!valid_cidr("example.com"));
    }
}
