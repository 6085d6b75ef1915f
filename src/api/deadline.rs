//! The per-request deadline: a read that has not answered within
//! settings.request_timeout_seconds answers 503 `request timed out`, so no client hangs on a
//! database or object store that stopped answering mid-request.

use super::ApiError;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Bounds GET and HEAD requests by `limit`. Writes (aggregation, repair, login) are left
/// alone: they run units of work that may rightly take minutes, each with its own bounds.
pub async fn bound(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Deadline(limit).into_response(),
    }
}
