//! The HTTP API: routers per resource, authentication, problem+json and OpenAPI.

pub mod admin;
pub mod advanced;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod context;
pub mod error;
pub mod extract;
pub mod files;
pub mod jobs;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod ratelimit;
pub mod schedules;
pub mod webhooks;

use std::sync::Arc;

use axum::http::{HeaderName, Request};
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::meta::Meta;
use crate::source::Sources;
use crate::storage::Storage;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub meta: Meta,
    pub master: Arc<MasterKey>,
    pub catalog: Arc<Catalog>,
    pub sources: Arc<Sources>,
    pub storage: Arc<Storage>,
    /// Permits for synchronous extractions; none left means `mode=auto` makes a job.
    pub sync_slots: Arc<tokio::sync::Semaphore>,
    /// The base of URLs handed to clients (download links).
    pub public_base: Arc<str>,
    /// Per-customer request quotas of this node.
    pub rate_limiter: Arc<ratelimit::RateLimiter>,
}

#[derive(Clone, Copy)]
struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = format!("req_{}", crate::crypto::random_hex(12));
        Some(RequestId::new(id.parse().ok()?))
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let context_state = state.clone();
    Router::new()
        .merge(ops::router())
        .merge(catalog::router())
        .merge(extract::router())
        .merge(advanced::router())
        .merge(audit::router())
        .merge(jobs::router())
        .merge(schedules::router())
        .merge(webhooks::router())
        .merge(notifications::router())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .merge(files::router())
        .merge(admin::router())
        .merge(openapi::router())
        .fallback(ops::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            context_state,
            context::track,
        ))
        .layer(axum::middleware::from_fn(error::problem_context))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, RequestIds))
}
