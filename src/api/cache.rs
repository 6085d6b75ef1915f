//! A short-lived cache of whole answers of the totals endpoints and pages: request URI →
//! (status, headers, body), fresh for `ttl`. Totals change once per snapshot (hourly), so an
//! answer a few seconds old is still the current one, and a hundred clients reading the same
//! vCenters cost one query per vCenter per `ttl` rather than one per request. Answers other
//! than 200 are never kept; auth runs before the cache on every request.

use super::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The routes whose answers are kept: long series read from the totals caches.
const CACHED_ROUTES: &[&str] = &[
    "/",
    "/vcenters/totals/hourly",
    "/vcenters/totals/daily",
    "/api/vcenters/{vcenter}/totals/hourly",
    "/api/vcenters/{vcenter}/totals/daily",
    "/api/vcenters/{vcenter}/totals/monthly",
];

/// Bounds memory: past this many distinct URIs the expired entries go, then all of them.
const MAX_ENTRIES: usize = 4_096;

pub struct ResponseCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    stored: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl ResponseCache {
    /// A zero `ttl` keeps nothing.
    pub fn new(ttl: Duration) -> ResponseCache {
        ResponseCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, key: &str) -> Option<Response> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.stored.elapsed() < self.ttl)
            .then(|| (entry.headers.clone(), entry.body.clone()).into_response())
    }

    fn keep(&self, key: String, headers: HeaderMap, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.stored.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let stored = Instant::now();
        entries.insert(
            key,
            Entry {
                stored,
                headers,
                body,
            },
        );
    }
}

/// Answers a GET of a cached route from the cache while fresh, else asks the handler and
/// keeps a 200 answer.
pub async fn serve_cached(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let cacheable = !state.response_cache.ttl.is_zero()
        && request.method() == Method::GET
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|route| CACHED_ROUTES.contains(&route.as_str()));
    if !cacheable {
        return next.run(request).await;
    }
    let key = request.uri().to_string();
    if let Some(hit) = state.response_cache.fresh(&key) {
        return hit;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handlers build these answers in memory already; collecting them cannot run long.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            state
                .response_cache
                .keep(key, parts.headers.clone(), bytes.clone());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to read an answer to cache");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
