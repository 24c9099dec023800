//! `/v1/advanced`: direct table access and stored-procedure calls.

use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
