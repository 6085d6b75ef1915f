//! `vctp serve`: HTTP request → [`router`] → handler reading the store (or object store) →
//! JSON answer, with Prometheus metrics derived from the database's run records.

mod error;
mod metrics;
mod reports;
mod snapshots;
mod summaries;
mod vcenters;

pub use error::ApiError;
pub use metrics::HttpMetrics;

use crate::aggregate::Day;
use crate::objstore::Objects;
use crate::store::Store;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Where reports are stored (settings.reports_url, else settings.reports_dir).
    pub objects: Objects,
    /// How long a presigned download URL stays valid.
    pub presign_expiry: Duration,
    pub http_metrics: Arc<HttpMetrics>,
}

impl AppState {
    pub fn new(store: Store, objects: Objects) -> Result<AppState, prometheus::Error> {
        Ok(AppState {
            store,
            objects,
            presign_expiry: Duration::from_secs(300),
            http_metrics: Arc::new(HttpMetrics::new()?),
        })
    }
}

/// Every route of the API, without a listener, so tests can call it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/vcenters", get(vcenters::list))
        .route(
            "/api/vcenters/{vcenter}/totals/hourly",
            get(vcenters::hourly),
        )
        .route("/api/vcenters/{vcenter}/totals/daily", get(vcenters::daily))
        .route(
            "/api/vcenters/{vcenter}/totals/monthly",
            get(vcenters::monthly),
        )
        .route("/api/snapshots", get(snapshots::list))
        .route("/api/summaries/daily", get(summaries::daily))
        .route("/api/summaries/monthly", get(summaries::monthly))
        .route("/api/reports", get(reports::list))
        .route("/api/reports/download", get(reports::download))
        .route("/metrics", get(metrics::render))
        .route("/healthz", get(metrics::healthz))
        .route("/readyz", get(metrics::readyz))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        // route_layer: only matched routes, so the path label is the route, never a raw URI.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Unknown paths answer in the API's JSON error shape too.
async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::UnknownRoute(uri.path().to_string())
}

/// The API is read-only in this part: other methods get the JSON error shape as well.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// The query string decoded into `T`, or a 400 in the API's JSON error shape (axum's own
/// rejection is plain text).
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Params<T>, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Params(value))
            .map_err(|rejection| ApiError::bad("query", rejection.body_text()))
    }
}

/// A point in time from a query parameter: Unix seconds, or a UTC date meaning its midnight.
fn parse_time(name: &'static str, text: &str) -> Result<i64, ApiError> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Ok(seconds);
    }
    Day::parse(text).map(Day::start).map_err(|_| {
        ApiError::bad(
            name,
            format!("{text:?} is neither Unix seconds nor YYYY-MM-DD"),
        )
    })
}

fn parse_day(name: &'static str, text: &str) -> Result<Day, ApiError> {
    Day::parse(text).map_err(|_| ApiError::bad(name, format!("{text:?} is not a date YYYY-MM-DD")))
}

/// Fails with a 404 unless `vcenter` has snapshot totals, so a typo is not an empty list.
async fn require_vcenter(state: &AppState, vcenter: &str) -> Result<(), ApiError> {
    if state.store.has_snapshot_totals(vcenter).await? {
        Ok(())
    } else {
        Err(ApiError::UnknownVcenter(vcenter.to_string()))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
