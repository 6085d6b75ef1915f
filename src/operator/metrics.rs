//! The operator's own metrics and health endpoints: `/metrics` (reconciles, errors by
//! reason, durations, Jobs created, leadership, the outcome of hourly snapshots per vCenter)
//! and `/healthz`.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Instant;

/// The operator's metric families, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    jobs_created: IntCounterVec,
    leader: IntGauge,
    namespace_missing: IntGaugeVec,
    snapshots: IntCounterVec,
    snapshots_failed: IntCounterVec,
    snapshot_last_unix: IntGaugeVec,
    snapshot_last_rows: IntGaugeVec,
    /// `vctp_{daily,monthly}_aggregations_total` and `…_failed_total` (the seed's names), of
    /// the aggregation Jobs this replica saw finish.
    aggregations: [(&'static str, IntCounter, IntCounter); 2],
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "vctp_operator_reconciles_total",
                "Reconciles run, by controller.",
            ),
            &["controller"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "vctp_operator_reconcile_errors_total",
                "Reconciles that failed, by controller and reason.",
            ),
            &["controller", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "vctp_operator_reconcile_duration_seconds",
                "Time spent in one reconcile, by controller.",
            )
            .buckets(vec![0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["controller"],
        )?;
        let jobs_created = IntCounterVec::new(
            Opts::new(
                "vctp_operator_jobs_created_total",
                "Jobs created, by controller.",
            ),
            &["controller"],
        )?;
        let leader = IntGauge::new(
            "vctp_operator_leader",
            "1 while this replica holds the leader Lease.",
        )?;
        // The seed's names: the chart's alerts (VctpSnapshotsFailed, VctpSnapshotsStale) use them.
        let snapshots = IntCounterVec::new(
            Opts::new(
                "vctp_hourly_snapshots_total",
                "Hourly snapshots finished (succeeded or failed), by vCenter.",
            ),
            &["vcenter"],
        )?;
        let snapshots_failed = IntCounterVec::new(
            Opts::new(
                "vctp_hourly_snapshots_failed_total",
                "Hourly snapshots that failed after their retries, by vCenter.",
            ),
            &["vcenter"],
        )?;
        let namespace_missing = IntGaugeVec::new(
            Opts::new(
                "vctp_operator_watched_namespace_missing",
                "1 while a watched namespace does not exist (its controllers start once it is created).",
            ),
            &["namespace"],
        )?;
        let snapshot_last_unix = IntGaugeVec::new(
            Opts::new(
                "vctp_hourly_snapshot_last_unix",
                "Snapshot time (Unix seconds) of the last successful hourly snapshot, by vCenter.",
            ),
            &["vcenter"],
        )?;
        let snapshot_last_rows = IntGaugeVec::new(
            Opts::new(
                "vctp_hourly_snapshot_last_rows",
                "Rows stored by the last successful hourly snapshot, by vCenter.",
            ),
            &["vcenter"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(jobs_created.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(namespace_missing.clone()))?;
        registry.register(Box::new(snapshots.clone()))?;
        registry.register(Box::new(snapshots_failed.clone()))?;
        registry.register(Box::new(snapshot_last_unix.clone()))?;
        registry.register(Box::new(snapshot_last_rows.clone()))?;
        let mut aggregation_counters = Vec::new();
        for period in ["daily", "monthly"] {
            let total = IntCounter::new(
                format!("vctp_{period}_aggregations_total"),
                format!("{period} aggregation Jobs that finished."),
            )?;
            let failed = IntCounter::new(
                format!("vctp_{period}_aggregations_failed_total"),
                format!("{period} aggregation Jobs that failed."),
            )?;
            registry.register(Box::new(total.clone()))?;
            registry.register(Box::new(failed.clone()))?;
            aggregation_counters.push((period, total, failed));
        }
        let aggregations = aggregation_counters
            .try_into()
            .map_err(|_| prometheus::Error::Msg("aggregation counters".into()))?;
        Ok(Metrics {
            registry,
            reconciles,
            errors,
            duration,
            jobs_created,
            leader,
            namespace_missing,
            snapshots,
            snapshots_failed,
            snapshot_last_unix,
            snapshot_last_rows,
            aggregations,
        })
    }

    /// Starts timing one reconcile of `kind`; finish it with [`ReconcileTimer::done`].
    pub fn reconcile(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.with_label_values(&[kind]).inc();
        ReconcileTimer {
            metrics: self,
            kind,
            started: Instant::now(),
        }
    }

    /// Whether the watched `namespace` is missing.
    pub fn set_namespace_missing(&self, namespace: &str, missing: bool) {
        self.namespace_missing
            .with_label_values(&[namespace])
            .set(i64::from(missing));
    }

    pub fn job_created(&self, kind: &'static str) {
        self.jobs_created.with_label_values(&[kind]).inc();
    }

    /// Counts a successful hourly snapshot of `vcenter` taken at `snapshot_time` (Unix
    /// seconds) that stored `rows` (when the Job reported them).
    pub fn snapshot_succeeded(&self, vcenter: &str, snapshot_time: i64, rows: Option<i64>) {
        self.snapshots.with_label_values(&[vcenter]).inc();
        self.snapshot_last_unix
            .with_label_values(&[vcenter])
            .set(snapshot_time);
        if let Some(rows) = rows {
            self.snapshot_last_rows
                .with_label_values(&[vcenter])
                .set(rows);
        }
    }

    /// Counts an hourly snapshot of `vcenter` that failed after its retries.
    pub fn snapshot_failed(&self, vcenter: &str) {
        self.snapshots.with_label_values(&[vcenter]).inc();
        self.snapshots_failed.with_label_values(&[vcenter]).inc();
    }

    /// Counts a finished aggregation Job of `period` (`hourly`, `daily`, `monthly`; the seed
    /// has no hourly family, so hourly reports are not counted).
    pub fn aggregation_finished(&self, period: &str, succeeded: bool) {
        if let Some((_, total, failed)) = self.aggregations.iter().find(|(p, ..)| *p == period) {
            total.inc();
            if !succeeded {
                failed.inc();
            }
        }
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The text exposition of every family.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// `/metrics` and `/healthz`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let metrics = self.clone();
                    async move {
                        match metrics.render() {
                            Ok(text) => (
                                StatusCode::OK,
                                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                                text,
                            )
                                .into_response(),
                            Err(e) => {
                                (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                            }
                        }
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
    }
}

/// Times one reconcile.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    started: Instant,
}

impl ReconcileTimer<'_> {
    /// Records the duration and, for a failure, its reason.
    pub fn done(self, error_reason: Option<&'static str>) {
        self.metrics
            .duration
            .with_label_values(&[self.kind])
            .observe(self.started.elapsed().as_secs_f64());
        if let Some(reason) = error_reason {
            self.metrics
                .errors
                .with_label_values(&[self.kind, reason])
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_errors_and_jobs_show_up_in_the_exposition() {
        let metrics = Metrics::new().unwrap();
        metrics.reconcile("AggregationJob").done(None);
        metrics
            .reconcile("AggregationJob")
            .done(Some("JobCreateFailed"));
        metrics.job_created("SnapshotSchedule");
        metrics.set_leader(true);
        metrics.aggregation_finished("daily", true);
        metrics.aggregation_finished("daily", false);
        metrics.aggregation_finished("hourly", false);
        let text = metrics.render().unwrap();
        assert!(
            text.contains("vctp_operator_reconciles_total{controller=\"AggregationJob\"} 2"),
            "{text}"
        );
        assert!(text.contains("vctp_operator_reconcile_errors_total{controller=\"AggregationJob\",reason=\"JobCreateFailed\"} 1"), "{text}");
        assert!(
            text.contains("vctp_operator_jobs_created_total{controller=\"SnapshotSchedule\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "vctp_operator_reconcile_duration_seconds_count{controller=\"AggregationJob\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("vctp_operator_leader 1"), "{text}");
        assert!(text.contains("vctp_daily_aggregations_total 2"), "{text}");
        assert!(
            text.contains("vctp_daily_aggregations_failed_total 1"),
            "{text}"
        );
        assert!(
            text.contains("vctp_monthly_aggregations_failed_total 0"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_watched_namespace_is_1_until_it_exists() {
        let metrics = Metrics::new().unwrap();
        metrics.set_namespace_missing("finance", true);
        let line = "vctp_operator_watched_namespace_missing{namespace=\"finance\"}";
        assert!(metrics.render().unwrap().contains(&format!("{line} 1")));
        metrics.set_namespace_missing("finance", false);
        assert!(metrics.render().unwrap().contains(&format!("{line} 0")));
    }

    #[test]
    fn snapshot_outcomes_are_counted_per_vcenter_and_the_last_success_kept() {
        let metrics = Metrics::new().unwrap();
        metrics.snapshot_succeeded("vc01", 1_773_151_200, Some(412));
        metrics.snapshot_failed("vc02");
        metrics.snapshot_succeeded("vc01", 1_773_154_800, None);
        let text = metrics.render().unwrap();
        for line in [
            "vctp_hourly_snapshots_total{vcenter=\"vc01\"} 2",
            "vctp_hourly_snapshots_total{vcenter=\"vc02\"} 1",
            "vctp_hourly_snapshots_failed_total{vcenter=\"vc02\"} 1",
            "vctp_hourly_snapshot_last_unix{vcenter=\"vc01\"} 1773154800",
            "vctp_hourly_snapshot_last_rows{vcenter=\"vc01\"} 412",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("vctp_hourly_snapshots_failed_total{vcenter=\"vc01\"}"));
    }
}
