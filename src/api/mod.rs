//! `vctp serve`: HTTP request → [`router`] → handler reading the store (or object store) →
//! JSON answer, with Prometheus metrics derived from the database's run records.

mod admin;
mod auth;
mod cache;
mod costs;
mod deadline;
mod debug;
mod diagnostics;
mod error;
mod finance;
mod metrics;
mod reports;
mod server;
mod session;
mod snapshots;
mod summaries;
pub mod tls;
mod trace;
/// The HTML pages, served beside the API from the same store.
mod ui;
mod vcenters;

pub use admin::{Aggregation, Trigger};
pub use error::ApiError;
pub use error::error_body;
pub use finance::Finance;
pub use metrics::HttpMetrics;
pub use server::{Background, Limits, ServerOptions, StartError, start};

use crate::aggregate::Day;
use crate::aggregate::period::{Error as PeriodError, check_time};
use crate::objstore::Objects;
use crate::store::Store;
use axum::Router;
use axum::extract::FromRef;
use std::sync::Arc;
use std::time::Duration;
use tower_http::compression::predicate::{
    DefaultPredicate, NotForContentType, Predicate, SizeAbove,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Where reports are stored (settings.reports_url, else settings.reports_dir).
    pub objects: Objects,
    /// How long a presigned download URL stays valid.
    pub presign_expiry: Duration,
    pub http_metrics: Arc<HttpMetrics>,
    /// Login, tokens and roles; disabled unless [`AppState::with_auth`] says otherwise.
    pub auth: Arc<crate::auth::Auth>,
    /// How `POST /api/snapshots/aggregate` gets the work done.
    pub trigger: Trigger,
    /// The engine and report pivots of in-process aggregations and repairs.
    pub aggregation: Aggregation,
    /// The key of `POST /api/encrypt`; without one it answers 503.
    pub encryption_key: Option<Arc<crate::credentials::Key>>,
    /// Recent answers of the totals endpoints and pages; off unless
    /// [`AppState::with_response_cache`].
    pub response_cache: Arc<cache::ResponseCache>,
    /// Serve `/debug/pprof/` (settings.enable_pprof).
    pub pprof: bool,
    /// Cookies are marked `Secure` (sent back over HTTPS only); see
    /// [`AppState::with_secure_cookies`].
    pub secure_cookies: bool,
    /// The longest a GET or HEAD request may take before it answers 503 `request timed out`
    /// (settings.request_timeout_seconds).
    pub request_timeout: Duration,
    /// The rate cards and tenant rules, and the costs last computed with them (the finance
    /// page's months and the cost gauges of `/metrics`).
    pub finance: Arc<Finance>,
}

impl AppState {
    pub fn new(store: Store, objects: Objects) -> Result<AppState, prometheus::Error> {
        Ok(AppState {
            store,
            objects,
            presign_expiry: Duration::from_secs(300),
            http_metrics: Arc::new(HttpMetrics::new()?),
            auth: Arc::new(crate::auth::Auth::disabled()),
            trigger: Trigger::InProcess,
            aggregation: Aggregation::default(),
            encryption_key: None,
            response_cache: Arc::new(cache::ResponseCache::new(Duration::ZERO, 0)),
            pprof: false,
            secure_cookies: false,
            request_timeout: crate::config::DEFAULT_REQUEST_TIMEOUT,
            finance: Arc::new(Finance::new(Default::default(), 0, false)),
        })
    }

    pub fn with_auth(mut self, auth: crate::auth::Auth) -> AppState {
        self.auth = Arc::new(auth);
        self
    }

    /// Aggregation requests go through `trigger` instead of running in process.
    pub fn with_trigger(mut self, trigger: Trigger) -> AppState {
        self.trigger = trigger;
        self
    }

    pub fn with_aggregation(mut self, aggregation: Aggregation) -> AppState {
        self.aggregation = aggregation;
        self
    }

    /// Totals answers are served from memory for `ttl` after they were computed, in at
    /// most 64 MiB ([`cache::MAX_BYTES`]).
    pub fn with_response_cache(mut self, ttl: Duration) -> AppState {
        self.response_cache = Arc::new(cache::ResponseCache::new(ttl, cache::MAX_BYTES));
        self
    }

    pub fn with_pprof(mut self, enabled: bool) -> AppState {
        self.pprof = enabled;
        self
    }

    /// Set when the server is reached over HTTPS (its own TLS, or a TLS proxy in front), so
    /// the session and CSRF cookies never travel in clear text.
    pub fn with_secure_cookies(mut self, secure: bool) -> AppState {
        self.secure_cookies = secure;
        self
    }

    /// The longest a GET or HEAD request may take before it answers 503 `request timed out`.
    pub fn with_request_timeout(mut self, limit: Duration) -> AppState {
        self.request_timeout = limit;
        self
    }

    /// Prices with `pricing` (settings.rate_cards, tenant_rules); `/metrics` has per-VM cost
    /// gauges for the `vm_limit` most costly VMs of each currency; under `auth_mode:
    /// required` only when `public_gauges` (settings.cost_metrics_public).
    pub fn with_pricing(
        mut self,
        pricing: crate::cost::Pricing,
        vm_limit: usize,
        public_gauges: bool,
    ) -> AppState {
        self.finance = Arc::new(Finance::new(pricing, vm_limit, public_gauges));
        self
    }

    pub fn with_encryption_key(mut self, key: crate::credentials::Key) -> AppState {
        self.encryption_key = Some(Arc::new(key));
        self
    }
}

// The parts handlers take on their own (`State<Store>`, …), so each says what it uses.
impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<HttpMetrics> {
    fn from_ref(state: &AppState) -> Arc<HttpMetrics> {
        state.http_metrics.clone()
    }
}

impl FromRef<AppState> for Arc<Finance> {
    fn from_ref(state: &AppState) -> Arc<Finance> {
        state.finance.clone()
    }
}

impl FromRef<AppState> for Arc<crate::auth::Auth> {
    fn from_ref(state: &AppState) -> Arc<crate::auth::Auth> {
        state.auth.clone()
    }
}

/// The OpenAPI document's fixed parts; the paths come from the handlers' `#[utoipa::path]`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vctp",
        description = "vSphere chargeback: vCenter totals, VM summaries, snapshots and reports."
    ),
    tags(
        (name = "vcenters", description = "Per-vCenter totals from the totals caches"),
        (name = "summaries", description = "Daily and monthly VM summaries"),
        (name = "snapshots", description = "Snapshot runs and summarised periods"),
        (name = "reports", description = "XLSX reports in object storage"),
        (name = "vms", description = "One VM's history"),
        (name = "operations", description = "Metrics and health"),
        (name = "auth", description = "LDAP login and bearer tokens"),
        (name = "admin", description = "Regeneration, repair, cache rebuild, credential encryption (admin role)"),
        (name = "diagnostics", description = "Why a day's summary is what it is"),
        (name = "costs", description = "What a day or month costs: daily summaries priced at the rate cards, by tenant, VM, pool, vCenter or cluster"),
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Documents the bearer token: the scheme, and that every `/api/` operation but login
/// takes it (whether it is required depends on settings.auth_mode).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") || path == "/api/auth/login" {
                continue;
            }
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
            }
        }
    }
}

/// The documented routes, and the OpenAPI document built from their handlers.
fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(vcenters::list))
        .routes(routes!(vcenters::hourly))
        .routes(routes!(vcenters::daily))
        .routes(routes!(vcenters::monthly))
        .routes(routes!(snapshots::list))
        .routes(routes!(summaries::daily))
        .routes(routes!(summaries::monthly))
        .routes(routes!(costs::daily))
        .routes(routes!(costs::monthly))
        .routes(routes!(reports::list))
        .routes(routes!(reports::download))
        .routes(routes!(trace::trace))
        .routes(routes!(auth::login))
        .routes(routes!(auth::me))
        .routes(routes!(admin::aggregate))
        .routes(routes!(admin::repair))
        .routes(routes!(admin::repair_all))
        .routes(routes!(admin::rebuild_cache))
        .routes(routes!(admin::encrypt))
        .routes(routes!(diagnostics::daily_creation))
        .routes(routes!(metrics::render))
        .routes(routes!(metrics::healthz))
        .routes(routes!(metrics::readyz))
        .split_for_parts()
}

/// The OpenAPI document served at `/swagger.json` (also printed by `vctp openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().1
}

/// Every route of the API, without a listener, so tests can call it directly.
pub fn router(state: AppState) -> Router {
    routes(&state)
        // route_layer: only matched routes, so the path label is the route, never a raw URI;
        // after the cache, so answers from it are counted too.
        .route_layer(axum::middleware::from_fn_with_state(
            state.http_metrics.clone(),
            metrics::track,
        ))
        // Every request, unknown paths included, is classified by auth::Access.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        // Around auth and the handler, inside the span, so a timed-out request is logged
        // with its 503.
        .layer(axum::middleware::from_fn_with_state(
            state.request_timeout,
            deadline::bound,
        ))
        // Outermost, so the auth decisions are logged inside the request's span too; a
        // `layer` runs after routing, so the span can name the matched route.
        .layer(axum::middleware::from_fn(metrics::request_span))
        .with_state(state)
}

/// The routes behind the answer cache, without auth, metrics or deadline: what
/// [`cache::prewarm`] asks on start-up, besides [`router`].
fn routes(state: &AppState) -> Router<AppState> {
    let (api, document) = documented_routes();
    // Swagger UI's files are compiled in (vendored); the validator would call out to
    // validator.swagger.io, so it is off.
    let swagger = SwaggerUi::new("/swagger")
        .url("/swagger.json", document)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    let swagger = Router::from(swagger).layer(axum::middleware::map_response(cache_swagger_files));
    let debug = if state.pprof {
        debug::routes()
    } else {
        Router::new()
    };
    api.merge(swagger)
        .merge(ui::router())
        .route(
            "/login",
            axum::routing::get(auth::login_page).post(auth::login_form),
        )
        .route("/logout", axum::routing::post(auth::logout))
        .merge(admin::legacy_routes())
        .merge(debug)
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        // Inside the cache, so a kept answer is kept compressed and served without
        // compressing it again.
        .route_layer(compression())
        .route_layer(axum::middleware::from_fn_with_state(
            state.response_cache.clone(),
            cache::serve_cached,
        ))
}

/// Fills the answer cache with the default answers of every vCenter's hourly totals (the
/// API's and the page's) before the first client comes: on a cold start a hundred clients
/// would otherwise all wait while each answer is computed the first time. Bounded by
/// [`PREWARM_BUDGET`]; what is left is computed on demand as before.
pub async fn prewarm(state: &AppState) {
    use tower::ServiceExt;
    if !state.response_cache.is_on() {
        return;
    }
    let vcenters = match state.store.latest_totals().await {
        Ok(latest) => latest,
        Err(e) => {
            tracing::warn!(error = %e, "no answers pre-computed: the vCenters could not be listed");
            return;
        }
    };
    let app = routes(state).with_state(state.clone());
    let started = std::time::Instant::now();
    let mut answers = 0;
    'vcenters: for totals in &vcenters {
        // As a client writes it: `/` as %2F in the path segment, a space as %20.
        let key = url::form_urlencoded::byte_serialize(totals.vcenter.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        for uri in [
            format!("/api/vcenters/{key}/totals/hourly"),
            format!("/vcenters/totals/hourly?vcenter={key}"),
        ] {
            if started.elapsed() > PREWARM_BUDGET {
                break 'vcenters;
            }
            let Ok(request) = axum::http::Request::get(uri).body(axum::body::Body::empty()) else {
                continue;
            };
            match app.clone().oneshot(request).await {
                Ok(response) => answers += usize::from(response.status().is_success()),
                Err(never) => match never {},
            }
        }
    }
    tracing::info!(
        answers,
        vcenters = vcenters.len(),
        seconds = started.elapsed().as_secs_f64(),
        "answers pre-computed"
    );
}

/// How long start-up may spend on [`prewarm`].
const PREWARM_BUDGET: Duration = Duration::from_secs(5);

/// Compresses an answer in the best encoding the client accepts (gzip, br or zstd, by the
/// q-values of its Accept-Encoding) and says `Vary: Accept-Encoding`. Small answers are not
/// worth it, and the downloads are compressed files already (an XLSX is a ZIP).
fn compression() -> tower_http::compression::CompressionLayer<impl Predicate> {
    tower_http::compression::CompressionLayer::new()
        .no_deflate()
        .compress_when(
            DefaultPredicate::new()
                .and(SizeAbove::new(MIN_COMPRESSED_BYTES))
                .and(NotForContentType::const_new(
                    "application/vnd.openxmlformats",
                ))
                .and(NotForContentType::const_new("application/zip"))
                .and(NotForContentType::const_new("application/gzip")),
        )
}

/// Below this, an answer is sent as it is: it fits a packet or two anyway.
const MIN_COMPRESSED_BYTES: u16 = 1024;

/// Swagger UI's files change only with the binary; an hour keeps a redeploy visible soon.
async fn cache_swagger_files(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// Unknown paths answer in the API's JSON error shape too.
async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::UnknownRoute(uri.path().to_string())
}

/// A method a route does not answer gets the JSON error shape as well.
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

/// The query of a route that takes no parameters: any parameter is refused with 400, so a
/// cached route's `?n=1` is neither a cache key of its own nor silently ignored.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}

/// A point in time from a query parameter: Unix seconds, or a UTC date meaning its midnight.
/// Only times from 1970 to 9999 pass, so arithmetic on them cannot overflow.
fn parse_time(name: &'static str, text: &str) -> Result<i64, ApiError> {
    let out_of_range = |e: PeriodError| ApiError::bad(name, e.to_string());
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return check_time(seconds).map_err(out_of_range);
    }
    match Day::parse(text) {
        Ok(day) => Ok(day.start()),
        Err(e @ PeriodError::OutOfRange(_)) => Err(out_of_range(e)),
        Err(_) => Err(ApiError::bad(
            name,
            format!("{text:?} is neither Unix seconds nor YYYY-MM-DD"),
        )),
    }
}

fn parse_day(name: &'static str, text: &str) -> Result<Day, ApiError> {
    Day::parse(text).map_err(|e| match e {
        PeriodError::OutOfRange(_) => ApiError::bad(name, e.to_string()),
        _ => ApiError::bad(name, format!("{text:?} is not a date YYYY-MM-DD")),
    })
}

/// Fails with a 404 unless `vcenter` has snapshot totals, so a typo is not an empty list.
async fn require_vcenter(store: &Store, vcenter: &str) -> Result<(), ApiError> {
    if store.has_snapshot_totals(vcenter).await? {
        Ok(())
    } else {
        Err(ApiError::UnknownVcenter(vcenter.to_string()))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
