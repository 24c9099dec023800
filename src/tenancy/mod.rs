//! Customers, API keys and the audit trail.

mod audit;
mod customers;
mod keys;

pub use audit::{list as list_audit, prune as prune_audit};
pub use audit::{record, record_in, AuditEntry, AuditFilter, StoredAuditEntry};
pub use customers::{
    create_customer, data_key, get_customer, list_customers, rotate_data_key, source_url, Customer,
    NewCustomer,
};
pub use keys::{
    authenticate, create_key, list_keys, revoke_key, ApiKeyInfo, CreatedKey, KeyGrant, KeyLimits,
};

/// Errors of the tenancy store that callers act on.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("customer {0:?} already exists")]
    CustomerExists(String),
    #[error("no customer {0:?}")]
    NoCustomer(String),
    #[error("no API key {0:?} for this customer")]
    NoKey(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for TenancyError {
    fn from(error: sqlx::Error) -> Self {
        TenancyError::Other(anyhow::Error::new(error).context("metadata database"))
    }
}

impl From<TenancyError> for crate::http::error::ApiError {
    fn from(error: TenancyError) -> Self {
        use crate::http::error::ApiError;
        match error {
            TenancyError::CustomerExists(_) => ApiError::Conflict(error.to_string()),
            TenancyError::NoCustomer(_) | TenancyError::NoKey(_) => {
                ApiError::NotFound(error.to_string())
            }
            TenancyError::Invalid { field, message } => ApiError::field(field, message),
            TenancyError::Other(e) => ApiError::Internal(e),
        }
    }
}

/// Checks a customer id: a slug of 2–63 lower-case letters, digits and dashes.
pub fn validate_customer_id(id: &str) -> Result<(), TenancyError> {
    let ok = (2..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(TenancyError::Invalid {
            field: "id",
            message: format!("customer id {id:?} must be 2-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_slugs() {
        assert!(validate_customer_id("demo").is_ok());
        assert!(validate_customer_id("smile-dental-2").is_ok());
        for bad in ["", "a", "Demo", "-x", "x-", "a b", "a;drop", "ü-x"] {
            assert!(validate_customer_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
