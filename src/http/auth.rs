//! Authentication extractors: the customer behind an API key, and the admin token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::context::{allowed, ClientIp, RequestContext};
use super::error::ApiError;
use super::AppState;
use crate::tenancy::{self, Customer};

/// The authenticated customer of a request, from `Authorization: Bearer` or `X-API-Key`.
pub struct Caller {
    pub customer: Customer,
    pub key_id: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

fn presented_key(parts: &Parts) -> Option<String> {
    if let Some(value) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or_else(|| {
            ApiError::Unauthorized(
                "send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'".into(),
            )
        })?;
        let (customer, grant) =
            tenancy::authenticate(&state.meta, &key)
                .await?
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the API key is not valid (unknown, revoked or expired)".into(),
                    )
                })?;
        let key_id = grant.key_id.clone();
        let context = parts.extensions.get::<RequestContext>().cloned();
        if let Some(context) = &context {
            context.update(|seen| {
                seen.customer_id = Some(customer.id.clone());
                seen.key_id = Some(key_id.clone());
            });
        }
        let address = parts.extensions.get::<ClientIp>().and_then(|c| c.0);
        if !allowed(&customer.ip_allowlist, address) || !allowed(&grant.ip_allowlist, address) {
            return Err(ApiError::Forbidden(format!(
                "requests for this customer must come from an allowed address; {} is not on its IP allowlist",
                address.map(|a| a.to_string()).unwrap_or_else(|| "this client".into())
            )));
        }
        // The customer's quota, then the key's own: the answer reports the tighter one.
        let customer_quota = customer
            .rate_limit_per_minute
            .map(|n| n.max(1) as u64)
            .or(state.config.default_rate_limit_per_minute);
        let mut reported: Option<super::ratelimit::Decision> = None;
        for (bucket, quota, whose) in [
            (customer.id.clone(), customer_quota, "customer"),
            (
                format!("key:{key_id}"),
                grant.rate_limit_per_minute.map(|n| n.max(1) as u64),
                "key",
            ),
        ] {
            let Some(per_minute) = quota else { continue };
            let decision = state.rate_limiter.check(&bucket, per_minute);
            if whose == "customer" && decision.warn {
                super::ratelimit::warn(state, &customer.id, decision);
            }
            if reported
                .is_none_or(|r| decision.remaining < r.remaining || decision.retry_after.is_some())
            {
                reported = Some(decision);
            }
            if let Some(context) = &context {
                context.update(|seen| seen.rate = reported);
            }
            if let Some(seconds) = decision.retry_after {
                return Err(ApiError::RateLimited(format!(
                    "over the {whose}'s quota of {per_minute} requests per minute; retry in {seconds} s"
                )));
            }
        }
        let ip = client_ip(parts);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Caller {
            customer,
            key_id,
            ip,
            request_id,
        })
    }
}

/// The client address the context middleware resolved (the peer without it).
fn client_ip(parts: &Parts) -> Option<String> {
    match parts.extensions.get::<ClientIp>() {
        Some(ClientIp(ip)) => ip.map(|ip| ip.to_string()),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
    }
}

/// A request carrying the configured admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.config.admin_token else {
            return Err(ApiError::Unauthorized(
                "the admin API is disabled: set admin_token (CIPHERSTREAM_ADMIN_TOKEN)".into(),
            ));
        };
        let presented = presented_key(parts).unwrap_or_default();
        // Compare digests so the comparison time does not depend on where the strings differ.
        let equal = Sha256::digest(presented.as_bytes())
            == Sha256::digest(expected.expose_secret().as_bytes());
        if presented.is_empty() || !equal {
            return Err(ApiError::Unauthorized(
                "send the admin token as 'Authorization: Bearer <token>'".into(),
            ));
        }
        if let Some(context) = parts.extensions.get::<RequestContext>() {
            context.update(|seen| seen.admin = true);
        }
        Ok(Admin)
    }
}
