//! A short-lived cache of whole answers of the totals endpoints and pages: request URI →
//! (status, headers, body), fresh for `ttl`. Totals change once per snapshot (hourly), so an
//! answer a few seconds old is still the current one, and a hundred clients reading the same
//! vCenters cost one query per vCenter per `ttl` rather than one per request. One request per
//! URI computes at a time: the others wait for it on a first miss, and are given the expired
//! answer while it is being recomputed, so an expiry is not a hundred identical queries at
//! once. Answers other than 200 are never kept; auth runs before the cache on every request.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// One gate per URI: held by the request computing its answer.
    computing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
            computing: Mutex::new(HashMap::new()),
        }
    }

    /// The kept answer of `key`, and whether it is still fresh.
    fn kept(&self, key: &str) -> Option<(Response, bool)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        let answer = (entry.headers.clone(), entry.body.clone()).into_response();
        Some((answer, entry.stored.elapsed() < self.ttl))
    }

    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = match self.computing.lock() {
            Ok(gates) => gates,
            // A panic elsewhere poisoned the map: a gate of its own still answers correctly.
            Err(_) => return Arc::default(),
        };
        if gates.len() >= MAX_ENTRIES {
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates.entry(key.to_string()).or_default().clone()
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
pub async fn serve_cached(
    State(cache): State<Arc<ResponseCache>>,
    request: Request,
    next: Next,
) -> Response {
    let cacheable = !cache.ttl.is_zero()
        && request.method() == Method::GET
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|route| CACHED_ROUTES.contains(&route.as_str()));
    if !cacheable {
        return next.run(request).await;
    }
    let key = request.uri().to_string();
    let kept = match cache.kept(&key) {
        Some((answer, true)) => return answer,
        Some((stale, false)) => Some(stale),
        None => None,
    };
    let gate = cache.gate(&key);
    let _computing = match (gate.try_lock(), kept) {
        (Ok(guard), _) => guard,
        // Someone is recomputing this answer: the expired one is good for that long.
        (Err(_), Some(stale)) => return stale,
        (Err(_), None) => {
            let guard = gate.lock().await;
            if let Some((answer, _)) = cache.kept(&key) {
                return answer;
            }
            guard
        }
    };
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handlers build these answers in memory already; collecting them cannot run long.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            cache.keep(key, parts.headers.clone(), bytes.clone());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to read an answer to cache");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
