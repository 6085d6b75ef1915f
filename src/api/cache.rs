//! A short-lived cache of whole answers of the totals endpoints and pages: route and query
//! parameters → (status, headers, body), fresh for `ttl`. Totals change once per snapshot
//! (hourly), so an answer a few seconds old is still the current one, and a hundred clients
//! reading the same vCenters cost one query per vCenter per `ttl` rather than one per
//! request. One request per key computes at a time: the others wait for it on a first miss,
//! and are given the expired answer while it is being recomputed, so an expiry is not a
//! hundred identical queries at once. Answers other than 200 are never kept; auth runs
//! before the cache on every request.
//!
//! Anyone who may read can choose keys, so the cache is bounded in bytes, not entries: the
//! key is the path and the decoded query parameters in canonical order (the handlers refuse
//! parameters they do not know with 400, and a 400 is never kept), expired entries go on
//! every insert, then the oldest until the new one fits under [`MAX_BYTES`].

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The routes whose answers are kept: long series read from the totals caches, and costs
/// (a month of 100k VMs prices in about a second; summaries and cards change far less often
/// than the cache's seconds).
const CACHED_ROUTES: &[&str] = &[
    "/",
    "/finance",
    "/api/costs/daily",
    "/api/costs/monthly",
    "/vcenters/totals/hourly",
    "/vcenters/totals/daily",
    "/api/vcenters/{vcenter}/totals/hourly",
    "/api/vcenters/{vcenter}/totals/daily",
    "/api/vcenters/{vcenter}/totals/monthly",
];

/// What the kept answers may take together: a few hundred long series, well inside the
/// chart's 512 MiB API memory limit.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// What an entry costs beyond its key, headers and body: the map slots, the order index
/// and the `Entry` itself, so that a flood of tiny answers is bounded too.
const ENTRY_OVERHEAD: usize = 256;

/// Bounds the gates: past this many keys being computed, the idle gates go.
const MAX_GATES: usize = 4_096;

pub struct ResponseCache {
    ttl: Duration,
    max_bytes: usize,
    entries: Mutex<Entries>,
    /// One gate per key: held by the request computing its answer.
    computing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The kept answers, their insertion order (oldest first), and what they cost.
#[derive(Default)]
struct Entries {
    by_key: HashMap<String, Entry>,
    /// Insertion number → key. Entries are stored at insertion, so this is also the order
    /// of their ages: the expired ones are always at the front.
    order: BTreeMap<u64, String>,
    next: u64,
    bytes: usize,
}

struct Entry {
    stored: Instant,
    number: u64,
    size: usize,
    headers: HeaderMap,
    body: Bytes,
}

impl Entries {
    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.by_key.remove(key) {
            self.order.remove(&entry.number);
            self.bytes -= entry.size;
        }
    }

    /// Removes the oldest entry; false when there is none.
    fn remove_oldest(&mut self) -> bool {
        match self.order.pop_first() {
            Some((_, key)) => {
                if let Some(entry) = self.by_key.remove(&key) {
                    self.bytes -= entry.size;
                }
                true
            }
            None => false,
        }
    }

    fn oldest_is_expired(&self, ttl: Duration) -> bool {
        self.order
            .first_key_value()
            .and_then(|(_, key)| self.by_key.get(key))
            .is_some_and(|entry| entry.stored.elapsed() >= ttl)
    }
}

impl ResponseCache {
    /// A zero `ttl` keeps nothing; the kept answers take at most `max_bytes`.
    pub fn new(ttl: Duration, max_bytes: usize) -> ResponseCache {
        ResponseCache {
            ttl,
            max_bytes,
            entries: Mutex::new(Entries::default()),
            computing: Mutex::new(HashMap::new()),
        }
    }

    /// Whether answers are kept at all.
    pub fn is_on(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// What the kept answers take now, as counted against `max_bytes`.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.bytes)
    }

    /// The kept answer of `key`, and whether it is still fresh.
    fn kept(&self, key: &str) -> Option<(Response, bool)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.by_key.get(key)?;
        let answer = (entry.headers.clone(), entry.body.clone()).into_response();
        Some((answer, entry.stored.elapsed() < self.ttl))
    }

    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = match self.computing.lock() {
            Ok(gates) => gates,
            // A panic elsewhere poisoned the map: a gate of its own still answers correctly.
            Err(_) => return Arc::default(),
        };
        if gates.len() >= MAX_GATES {
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates.entry(key.to_string()).or_default().clone()
    }

    fn keep(&self, key: String, headers: HeaderMap, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.remove(&key);
        while entries.oldest_is_expired(self.ttl) {
            entries.remove_oldest();
        }
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let size = ENTRY_OVERHEAD + 2 * key.len() + header_bytes + body.len();
        if size > self.max_bytes {
            return;
        }
        while entries.bytes + size > self.max_bytes && entries.remove_oldest() {}
        let number = entries.next;
        entries.next += 1;
        entries.bytes += size;
        entries.order.insert(number, key.clone());
        entries.by_key.insert(
            key,
            Entry {
                stored: Instant::now(),
                number,
                size,
                headers,
                body,
            },
        );
    }
}

/// The path and the query parameters decoded, sorted and encoded again: `?b=2&a=1` and
/// `?a=%31&b=2` are one answer. The answer is kept as compressed for the client, so the
/// Accept-Encoding it sent (lower case, without spaces) is part of the key: clients send a
/// handful of distinct ones, and the byte bound holds whatever they send.
fn cache_key(request: &Request) -> String {
    let mut parameters: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    parameters.sort();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(parameters)
        .finish();
    let accepted: Vec<String> = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .to_ascii_lowercase()
                .replace(|c: char| c.is_ascii_whitespace(), "")
        })
        .collect();
    let accepted = accepted.join(",");
    format!("{}?{query} {accepted}", request.uri().path())
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
    let key = cache_key(&request);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(cache: &ResponseCache, key: &str, body_bytes: usize) {
        cache.keep(
            key.to_string(),
            HeaderMap::new(),
            Bytes::from(vec![b'x'; body_bytes]),
        );
    }

    fn kept(cache: &ResponseCache, key: &str) -> bool {
        cache.kept(key).is_some()
    }

    #[test]
    fn many_distinct_keys_stay_under_the_byte_cap_and_the_oldest_go_first() {
        let cap = 64 * 1024;
        let cache = ResponseCache::new(Duration::from_secs(60), cap);
        let keys: Vec<String> = (0..4_095).map(|i| format!("/?since={i}")).collect();
        for key in &keys {
            keep(&cache, key, 1_000);
            assert!(cache.bytes() <= cap, "{} > {cap}", cache.bytes());
        }
        assert!(cache.bytes() > cap / 2, "the cap is used, not emptied");
        assert!(!kept(&cache, &keys[0]), "the oldest went");
        assert!(kept(&cache, &keys[keys.len() - 1]), "the newest stays");
    }

    #[test]
    fn expired_entries_go_on_insert_and_a_replaced_key_is_counted_once() {
        let cache = ResponseCache::new(Duration::from_millis(50), 1 << 20);
        keep(&cache, "/old", 10_000);
        keep(&cache, "/old", 10_000);
        let one = cache.bytes();
        assert!(one > 10_000 && one < 20_000, "{one}");
        std::thread::sleep(Duration::from_millis(60));
        keep(&cache, "/new", 10);
        assert!(!kept(&cache, "/old"), "expired, so evicted by the insert");
        assert!(cache.bytes() < one, "{}", cache.bytes());
    }

    #[test]
    fn an_answer_larger_than_the_cap_is_not_kept() {
        let cap = 4 * 1024;
        let cache = ResponseCache::new(Duration::from_secs(60), cap);
        keep(&cache, "/small", 100);
        keep(&cache, "/huge", cap);
        assert!(!kept(&cache, "/huge"));
        assert!(kept(&cache, "/small"), "nothing was evicted for it");
    }
}
