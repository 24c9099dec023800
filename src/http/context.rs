//! What every request leaves behind: the client's address (through trusted proxies
//! only), the customer and key that made it, its rate-limit state as `RateLimit-*`
//! headers, and one audit entry per API call.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::error::ApiError;
use super::ratelimit::{Decision, WINDOW};
use super::AppState;
use crate::tenancy::{self, AuditEntry};

/// The address of the client, as far as the server can trust it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

/// The peer, or — when the peer is a trusted proxy — the right-most address in
/// `X-Forwarded-For` that is not itself a trusted proxy. A client cannot choose its
/// address by sending the header: an untrusted peer's header is ignored.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|hop| hop.parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    Some(
        forwarded
            .iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer),
    )
}

/// Whether `ip` is in `allowlist` (an empty list allows everyone). Entries are CIDRs or
/// single addresses, IPv4 or IPv6; an IPv4-mapped IPv6 client matches IPv4 entries.
pub fn allowed(allowlist: &[String], ip: Option<IpAddr>) -> bool {
    if allowlist.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    allowlist.iter().any(|entry| match entry.parse::<IpNet>() {
        Ok(net) => net.contains(&ip),
        Err(_) => entry.parse::<IpAddr>().is_ok_and(|single| single == ip),
    })
}

/// Who made the request, filled in by the authentication extractors.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub customer_id: Option<String>,
    pub key_id: Option<String>,
    pub admin: bool,
    pub rate: Option<Decision>,
}

/// The request's slot for [`Seen`].
#[derive(Clone, Default)]
pub struct RequestContext(Arc<Mutex<Seen>>);

impl RequestContext {
    pub fn update(&self, change: impl FnOnce(&mut Seen)) {
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn take(&self) -> Seen {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Paths whose calls are audited: the API, not health checks, metrics or docs.
fn audited(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/admin/")
}

/// Middleware: resolves the client address, hands the extractors a [`RequestContext`],
/// then writes the rate-limit headers and the audit entry of the call.
pub async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(peer, request.headers(), &state.config.trusted_proxy_nets());
    let context = RequestContext::default();
    request.extensions_mut().insert(ClientIp(ip));
    request.extensions_mut().insert(context.clone());
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Presigned downloads carry no key: the file's owner's allowlist applies to them.
    let owner = file_owner(&path);
    let mut response = match &owner {
        Some(customer) if !file_allowed(&state, customer, ip).await => ApiError::Forbidden(
            "this file's owner accepts downloads only from the addresses on its IP allowlist"
                .into(),
        )
        .into_response(),
        _ => next.run(request).await,
    };
    let seen = context.take();
    if let Some(d) = seen.rate {
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("ratelimit-limit", d.limit.to_string());
        set("ratelimit-remaining", d.remaining.to_string());
        set("ratelimit-reset", d.reset_seconds.to_string());
        set(
            "ratelimit-policy",
            format!("{};w={}", d.limit, WINDOW.as_secs()),
        );
        if let Some(seconds) = d.retry_after {
            set("retry-after", seconds.to_string());
        }
    }
    if audited(&path) {
        let customer_id = seen.customer_id.or(owner);
        tenancy::record(
            &state.meta,
            AuditEntry {
                customer_id,
                key_id: seen.key_id,
                action: if seen.admin {
                    "admin.request"
                } else {
                    "api.request"
                }
                .into(),
                method: Some(method),
                path: Some(path.chars().take(500).collect()),
                status: Some(response.status().as_u16() as i64),
                duration_ms: Some(started.elapsed().as_millis() as i64),
                ip: ip.map(|ip| ip.to_string()),
                request_id,
                detail: serde_json::Value::Null,
            },
        )
        .await;
    }
    response
}

async fn file_allowed(state: &AppState, customer: &str, ip: Option<IpAddr>) -> bool {
    match tenancy::get_customer(&state.meta, customer).await {
        Ok(Some(c)) => allowed(&c.ip_allowlist, ip),
        // An unknown owner: the signature check answers for the file.
        Ok(None) => true,
        Err(error) => {
            tracing::error!(error = %error, "reading a file owner's allowlist failed");
            false
        }
    }
}

/// The customer a presigned file path belongs to (`/v1/files/customers/{id}/…`).
pub fn file_owner(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/files/customers/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_addresses_count_only_through_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/8"]);
        let peer = Some("10.1.1.1".parse().unwrap());
        let outsider = Some("198.51.100.9".parse().unwrap());
        // Through the proxy: the client it saw.
        assert_eq!(
            client_ip(peer, &xff("203.0.113.7"), &proxies),
            "203.0.113.7".parse().ok()
        );
        // A forged left-most entry is skipped: the right-most untrusted hop counts.
        assert_eq!(
            client_ip(peer, &xff("1.2.3.4, 203.0.113.7, 10.2.2.2"), &proxies),
            "203.0.113.7".parse().ok()
        );
        // An untrusted peer's header is ignored.
        assert_eq!(client_ip(outsider, &xff("203.0.113.7"), &proxies), outsider);
        // Garbage in the header: the proxy itself.
        assert_eq!(client_ip(peer, &xff("not-an-ip"), &proxies), peer);
        assert_eq!(client_ip(peer, &HeaderMap::new(), &proxies), peer);
    }

    #[test]
    fn allowlists_match_cidrs_and_addresses_of_both_families() {
        let list = vec![
            "203.0.113.0/24".to_string(),
            "2001:db8::/32".to_string(),
            "198.51.100.7".to_string(),
        ];
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(allowed(&list, ip("203.0.113.200")));
        assert!(allowed(&list, ip("2001:db8::1")));
        assert!(allowed(&list, ip("198.51.100.7")));
        assert!(allowed(&list, ip("::ffff:203.0.113.5")));
        assert!(!allowed(&list, ip("198.51.100.8")));
        assert!(!allowed(&list, ip("2001:db9::1")));
        assert!(!allowed(&list, None));
        assert!(allowed(&[], None));
    }

    #[test]
    fn file_paths_name_their_customer() {
        assert_eq!(
            file_owner("/v1/files/customers/acme/jobs/x.csv.cse").as_deref(),
            Some("acme")
        );
        assert_eq!(file_owner("/v1/jobs"), None);
    }
}
