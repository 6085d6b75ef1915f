//! `/metrics`, `/healthz`, `/readyz`: the seed's metric families computed at each scrape from
//! the run records in the database (right whichever process did the work), this server's own
//! request counters by matched route, and the month-to-date cost gauges last computed.

use super::ApiError;
use super::error::unavailable;
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Request counters and durations of this server, labelled by route pattern.
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new() -> Result<HttpMetrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("vctp_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "vctp_http_request_duration_seconds",
                "Time to answer an HTTP request",
            ),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics {
            registry,
            requests,
            duration,
        })
    }
}

/// Counts and times each request under its matched route (never the raw URI, which would
/// make a label per query string).
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = route(&request);
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .inc();
    response
}

/// Wraps each request in a span with its route, method, status and latency, so every line
/// logged while answering it (auth decisions included) says which request it belongs to.
pub async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        route = %route(&request),
        method = %request.method(),
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
    // Status and latency are known only now: one line that carries them, at debug level so
    // the default log shows no line per request.
    tracing::debug!(parent: &span, "request answered");
    response
}

/// The matched route pattern (never the raw URI, whose ids and query strings would make a
/// label or span per request); "unmatched" for unknown paths.
fn route(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// The database-derived families, built fresh for each scrape.
async fn stored_metrics(store: &Store) -> Result<Registry, ApiError> {
    let registry = Registry::new();
    let per_vcenter = |name: &str, help: &str| -> Result<IntGaugeVec, ApiError> {
        let gauge = IntGaugeVec::new(Opts::new(name, help), &["vcenter"])?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(gauge)
    };
    // Counters recounted from the database at each scrape: snapshot_runs only grows, so
    // they only grow, whichever process recorded the runs.
    let counter = |name: &str, help: &str| -> Result<IntCounterVec, ApiError> {
        let counter = IntCounterVec::new(Opts::new(name, help), &["vcenter"])?;
        registry.register(Box::new(counter.clone()))?;
        Ok(counter)
    };
    let runs = counter(
        "vctp_hourly_snapshots_total",
        "Hourly snapshot attempts recorded in snapshot_runs",
    )?;
    let failed = counter(
        "vctp_hourly_snapshots_failed_total",
        "Failed hourly snapshot attempts recorded in snapshot_runs",
    )?;
    let last_unix = per_vcenter(
        "vctp_hourly_snapshot_last_unix",
        "Snapshot time of the newest successful hourly snapshot",
    )?;
    let last_rows = per_vcenter(
        "vctp_hourly_snapshot_last_rows",
        "VM rows of the newest successful hourly snapshot",
    )?;
    let inventory = per_vcenter(
        "vctp_vcenter_inventory_size",
        "VMs in the newest snapshot of the vCenter",
    )?;
    let connect_failures = counter(
        "vctp_vcenter_connect_failures_total",
        "Snapshot attempts that did not reach the vCenter (failure_kind 'connect' in snapshot_runs)",
    )?;
    let snapshot_duration = per_vcenter(
        "vctp_vcenter_snapshot_duration_seconds",
        "finished_at - started_at of the newest snapshot attempt (whole seconds)",
    )?;
    for stats in store.run_stats().await? {
        let label = [stats.vcenter.as_str()];
        connect_failures
            .with_label_values(&label)
            .inc_by(u64::try_from(stats.connect_failures).unwrap_or(0));
        snapshot_duration
            .with_label_values(&label)
            .set(stats.last_duration);
        runs.with_label_values(&label)
            .inc_by(u64::try_from(stats.runs).unwrap_or(0));
        failed
            .with_label_values(&label)
            .inc_by(u64::try_from(stats.failed).unwrap_or(0));
        last_unix.with_label_values(&label).set(stats.last_snapshot);
        last_rows.with_label_values(&label).set(stats.last_rows);
    }
    for totals in store.latest_totals().await? {
        // A snapshot's vm_count is a count of rows, so it is whole.
        inventory
            .with_label_values(&[totals.vcenter.as_str()])
            .set(totals.vm_count.round() as i64);
    }
    aggregation_metrics(store, &registry).await?;
    let reports = IntGauge::new("vctp_reports_available", "Reports in the report registry")?;
    registry.register(Box::new(reports.clone()))?;
    reports.set(i64::try_from(store.reports(None).await?.len()).unwrap_or(i64::MAX));
    Ok(registry)
}

/// `vctp_{daily,monthly}_aggregations_total`, `…_failed_total` (counters recounted from
/// `aggregation_runs`) and `…_aggregation_duration_seconds` (a gauge: the duration of the
/// newest attempt, successful or not; 0 before the first). A gauge rather than a histogram:
/// aggregations run once a day or month, too rarely for buckets to say more than the rows.
async fn aggregation_metrics(store: &Store, registry: &Registry) -> Result<(), ApiError> {
    let stats = store.aggregation_stats().await?;
    for grain in ["daily", "monthly"] {
        let runs = IntCounter::new(
            format!("vctp_{grain}_aggregations_total"),
            format!("{grain} aggregation attempts recorded in aggregation_runs"),
        )?;
        let failed = IntCounter::new(
            format!("vctp_{grain}_aggregations_failed_total"),
            format!("Failed {grain} aggregation attempts recorded in aggregation_runs"),
        )?;
        let duration = Gauge::new(
            format!("vctp_{grain}_aggregation_duration_seconds"),
            format!("Duration of the newest {grain} aggregation attempt"),
        )?;
        if let Some(s) = stats.iter().find(|s| s.grain == grain) {
            runs.inc_by(u64::try_from(s.runs).unwrap_or(0));
            failed.inc_by(u64::try_from(s.failed).unwrap_or(0));
            duration.set(s.last_duration);
        }
        registry.register(Box::new(runs))?;
        registry.register(Box::new(failed))?;
        registry.register(Box::new(duration))?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn render(
    State(store): State<Store>,
    State(http_metrics): State<Arc<HttpMetrics>>,
    State(finance): State<Arc<super::Finance>>,
    State(auth): State<Arc<crate::auth::Auth>>,
) -> Result<Response, ApiError> {
    let stored = stored_metrics(&store).await?;
    let mut families = stored.gather();
    families.extend(http_metrics.registry.gather());
    // Computed off the scrape path (api::finance): a scrape never waits for pricing. What
    // tenants cost is data, and `/metrics` is public: under auth_mode: required it is shown
    // only when the settings say so.
    if auth.mode() != crate::auth::roles::Mode::Required || finance.public_gauges {
        families.extend(finance.families());
    }
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    encoder.encode(&families, &mut out)?;
    Ok((
        [(header::CONTENT_TYPE, encoder.format_type().to_string())],
        out,
    )
        .into_response())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "The process answers")))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers"),
        (status = 503, description = "The database does not answer")))]
pub async fn readyz(State(store): State<Store>) -> Response {
    // Its own short bound, under the pool's: a probe that hangs is as bad as one that fails.
    let answered = tokio::time::timeout(READY_TIMEOUT, store.ping()).await;
    match answered {
        Ok(Ok(())) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(reason = e.reason(), error = %e, "not ready: database does not answer");
            unavailable("database unavailable")
        }
        Err(_) => {
            tracing::warn!(
                timeout_seconds = READY_TIMEOUT.as_secs_f64(),
                "not ready: database does not answer in time"
            );
            unavailable("database unavailable")
        }
    }
}

/// How long `/readyz` waits for the database: well inside the probe timeouts Kubernetes uses.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;
    use tower::ServiceExt;
    use tracing::span::{Attributes, Id, Record};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// Every span's fields as text, and the span each event was logged in.
    #[derive(Clone, Default)]
    struct Captured {
        spans: Arc<Mutex<HashMap<u64, BTreeMap<String, String>>>>,
        event_spans: Arc<Mutex<Vec<u64>>>,
    }

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Captured {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.spans.lock().unwrap().insert(id.into_u64(), fields);
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
            let mut spans = self.spans.lock().unwrap();
            values.record(&mut Fields(spans.entry(id.into_u64()).or_default()));
        }

        fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
            if let Some(span) = ctx.event_span(event) {
                self.event_spans.lock().unwrap().push(span.id().into_u64());
            }
        }
    }

    #[tokio::test]
    async fn a_handlers_log_lines_belong_to_a_span_with_route_method_status_and_latency() {
        let captured = Captured::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
        let app = Router::new()
            .route(
                "/things/{id}",
                axum::routing::get(|| async {
                    tracing::info!("inside the handler");
                    StatusCode::ACCEPTED
                }),
            )
            .layer(axum::middleware::from_fn(request_span));
        let request = axum::http::Request::get("/things/42?x=1")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);

        let event_spans = captured.event_spans.lock().unwrap().clone();
        let handler_span = event_spans
            .first()
            .expect("the handler's line is in a span");
        let fields = captured.spans.lock().unwrap()[handler_span].clone();
        assert_eq!(
            fields.get("route").map(String::as_str),
            Some("/things/{id}")
        );
        assert_eq!(fields.get("method").map(String::as_str), Some("GET"));
        assert_eq!(fields.get("status").map(String::as_str), Some("202"));
        let latency: f64 = fields["latency_ms"].parse().unwrap();
        assert!(latency >= 0.0, "{fields:?}");
    }
}
