//! Health, readiness and the fallback.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Liveness and readiness answer.
#[derive(Serialize, ToSchema)]
pub struct HealthOut {
    /// `ok`, or `unavailable` when a dependency is down.
    #[schema(example = "ok")]
    pub status: String,
    /// Server version.
    #[schema(example = "0.1.0")]
    pub version: String,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Alive", body = HealthOut)))]
pub async fn health() -> Json<HealthOut> {
    Json(HealthOut {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// The metadata database answers, so requests can be served.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready", body = HealthOut),
    (status = 503, description = "The metadata database is unreachable", body = HealthOut),
))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<HealthOut>) {
    let up = state.meta.ping().await;
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(HealthOut {
            status: if up { "ok" } else { "unavailable" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
    )
}

/// Unknown paths.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint at {}; the API is described at /openapi.json and /docs",
        uri.path()
    ))
}
