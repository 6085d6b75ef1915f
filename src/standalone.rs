//! `vctp standalone`: one process doing what the operator's Jobs do, on a clock: a snapshot
//! of every vCenter every `vcenter_inventory_snapshot_seconds`, the daily aggregation of the
//! previous UTC day after midnight, the monthly one on the 1st, retention on
//! `snapshot_cleanup_cron`, and each of `settings.metrics_exports` on its own schedule (the
//! same run a MetricsExport's Job makes, [`crate::jobs::export::run_resource`]).
//!
//! Each job's last run is kept in `cron_status`, so after a restart a missed run is made up
//! once (the latest missed tick only), never once per missed tick. A shutdown signal stops
//! the loop; a job in flight gets a grace period to commit, otherwise it is dropped, which
//! rolls its transaction back. Either way no write is left half done.

use crate::aggregate::engine::Source;
use crate::aggregate::{Day, Engine};
use crate::config::exports::StandaloneExport;
use crate::config::{Settings, VcenterTarget};
use crate::inventory::collector::Collector;
use crate::jobs::aggregate::{self, WhenEmpty};
use crate::jobs::report::Period;
use crate::jobs::{Stores, retention, snapshot};
use crate::objstore::Objects;
use crate::store::{Store, runs::JobRun};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;

/// How long a job in flight may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The scheduled jobs, in the order they run when several are due at once: the daily
/// aggregation after the snapshot, the monthly one after the daily one it builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Snapshot,
    Daily,
    Monthly,
    Cleanup,
}

impl Job {
    pub const ALL: [Job; 4] = [Job::Snapshot, Job::Daily, Job::Monthly, Job::Cleanup];

    /// The key in `cron_status`.
    pub fn name(self) -> &'static str {
        match self {
            Job::Snapshot => "snapshot",
            Job::Daily => "daily",
            Job::Monthly => "monthly",
            Job::Cleanup => "cleanup",
        }
    }
}

/// When the jobs are due.
#[derive(Debug, Clone)]
pub struct Timetable {
    /// Snapshot ticks are the multiples of this many seconds since the epoch (on the hour
    /// for 3600).
    pub snapshot_every: i64,
    pub cleanup: cron::Schedule,
}

impl Timetable {
    pub fn from_settings(settings: &Settings) -> Result<Timetable> {
        Ok(Timetable {
            snapshot_every: i64::try_from(settings.vcenter_inventory_snapshot_seconds)?.max(1),
            cleanup: settings
                .snapshot_cleanup_cron
                .parse()
                .map_err(|e| anyhow::anyhow!("settings.snapshot_cleanup_cron: {e}"))?,
        })
    }

    /// The latest tick of `job` at or before `now`: the time a run at `now` stands for.
    pub fn latest_tick(&self, job: Job, now: i64) -> Option<i64> {
        match job {
            Job::Snapshot => Some(now.div_euclid(self.snapshot_every) * self.snapshot_every),
            // Yesterday, once today has begun; the tick is the day it aggregates.
            Job::Daily => Day::containing(now - 86_400).ok().map(Day::start),
            Job::Monthly => Day::containing(now)
                .ok()
                .and_then(|today| Day::containing(today.month().start() - 1).ok())
                .map(|last_day| last_day.month().start()),
            Job::Cleanup => {
                // The cron crate walks forwards only: step from a day before `now`.
                let from = DateTime::<Utc>::from_timestamp(now - 86_400 * 31, 0)?;
                self.cleanup
                    .after(&from)
                    .map(|t| t.timestamp())
                    .take_while(|t| *t <= now)
                    .last()
            }
        }
    }

    /// When `job` is next due after `now`.
    pub fn next_tick(&self, job: Job, now: i64) -> i64 {
        match job {
            Job::Snapshot => (now.div_euclid(self.snapshot_every) + 1) * self.snapshot_every,
            Job::Daily | Job::Monthly => Day::containing(now).map_or(now + 3_600, |d| d.end()),
            Job::Cleanup => DateTime::<Utc>::from_timestamp(now, 0)
                .and_then(|t| self.cleanup.after(&t).next())
                .map_or(now + 86_400, |t| t.timestamp()),
        }
    }

    /// The tick `job` should run for now, if its last run (`last_tick`) is older than the
    /// latest tick. Only the latest tick is returned, so missed ticks are made up once.
    pub fn due(&self, job: Job, last_tick: Option<i64>, now: i64) -> Option<i64> {
        let tick = self.latest_tick(job, now)?;
        match last_tick {
            Some(last) if last >= tick => None,
            _ => Some(tick),
        }
    }
}

/// What the scheduler works with.
pub struct Scheduler {
    pub store: Store,
    /// Where the reports written after each job go.
    pub reports: Objects,
    pub settings: Settings,
    pub collector: Collector,
    pub targets: Vec<VcenterTarget>,
    pub plan: Timetable,
    pub engine: Engine,
}

impl Scheduler {
    /// Runs until `shutdown` completes. Errors of single jobs are logged and recorded; only
    /// a failure to read or write `cron_status` ends the loop.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            let woke = now();
            for job in Job::ALL {
                let last = self.store.job_run(job.name()).await?.map(|r| r.last_tick);
                let Some(tick) = self.plan.due(job, last, woke) else {
                    continue;
                };
                let started_at = now();
                let work = self.run_job(job, tick);
                tokio::pin!(work);
                let outcome = tokio::select! {
                    outcome = &mut work => outcome,
                    () = &mut shutdown => {
                        tracing::info!(job = job.name(), "shutdown requested; letting the running job finish");
                        match tokio::time::timeout(SHUTDOWN_GRACE, work).await {
                            Ok(outcome) => { self.record(job.name(), tick, started_at, &outcome).await?; }
                            Err(_) => tracing::warn!(job = job.name(), "job did not finish in time; its transaction was rolled back"),
                        }
                        return Ok(());
                    }
                };
                self.record(job.name(), tick, started_at, &outcome).await?;
            }
            for export in &self.settings.metrics_exports {
                let name = export_job_name(export);
                let last = self.store.job_run(&name).await?.map(|r| r.last_tick);
                let Some(tick) = export_due(export, last, woke) else {
                    continue;
                };
                let started_at = now();
                let cancel = tokio_util::sync::CancellationToken::new();
                let work = self.run_export(export, tick, &cancel);
                tokio::pin!(work);
                tokio::select! {
                    outcome = &mut work => self.record(&name, tick, started_at, &outcome).await?,
                    () = &mut shutdown => {
                        // The export stops at once and keeps its checkpoint; its tick is not
                        // recorded, so the next start resumes it.
                        cancel.cancel();
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, work).await;
                        return Ok(());
                    }
                }
            }
            let after = now();
            let wake = Job::ALL
                .into_iter()
                .map(|job| self.plan.next_tick(job, after))
                .chain(
                    self.settings
                        .metrics_exports
                        .iter()
                        .filter_map(|export| export_next(export, after)),
                )
                .min()
                .unwrap_or(after + 60);
            let sleep = Duration::from_secs(u64::try_from(wake - after).unwrap_or(0).max(1));
            tracing::debug!(seconds = sleep.as_secs(), "sleeping until the next tick");
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = &mut shutdown => return Ok(()),
            }
        }
    }

    async fn record(
        &self,
        job: &str,
        tick: i64,
        started_at: i64,
        outcome: &Result<String>,
    ) -> Result<()> {
        let (success, error) = match outcome {
            Ok(summary) => {
                tracing::info!(job, tick, "{summary}");
                (true, String::new())
            }
            Err(e) => {
                tracing::error!(job, tick, error = %format!("{e:#}"), "scheduled job failed");
                (false, format!("{e:#}"))
            }
        };
        self.store
            .record_job_run(&JobRun {
                job: job.to_string(),
                last_tick: tick,
                started_at,
                finished_at: now(),
                success,
                error,
            })
            .await?;
        Ok(())
    }

    /// Runs one job for `tick` (with the report of what it produced); the text says what it
    /// did.
    pub async fn run_job(&self, job: Job, tick: i64) -> Result<String> {
        let stores = Stores {
            store: &self.store,
            objects: &self.reports,
            pivots: &self.settings.report_summary_pivots,
            pricing: &self.settings.pricing,
        };
        let period = match job {
            Job::Snapshot => {
                let policy = snapshot::RoundPolicy {
                    concurrency: self.settings.hourly_snapshot_concurrency,
                    hourly_report: self.settings.hourly_reports.then_some(stores),
                };
                let round =
                    snapshot::round(&self.store, &self.collector, &self.targets, now(), policy)
                        .await?
                        .check()?;
                return Ok(format!(
                    "snapshot of {} vCenters: {} VMs{}",
                    round.outcomes.len(),
                    round.rows(),
                    report_named(round.reports.first().map(|e| e.object_key.as_str()))
                ));
            }
            Job::Daily => Period::Day(Day::containing(tick)?),
            Job::Monthly => Period::Month(Day::containing(tick)?.month()),
            Job::Cleanup => {
                let policy = retention::Policy::from_settings(&self.settings);
                return Ok(retention::run(&self.store, policy, now())
                    .await?
                    .to_string());
            }
        };
        let request = aggregate::Request {
            period,
            vcenters: Vec::new(),
            engine: self.engine,
            report: true,
        };
        let outcome =
            aggregate::run(&stores, &request, Source::Standalone, WhenEmpty::Skip).await?;
        let label = format!("{} {}", period.kind(), period.label());
        if outcome.skipped {
            return Ok(format!("{label}: nothing to aggregate"));
        }
        Ok(format!(
            "{label}: {} VM rows{}",
            outcome.rows_written,
            report_named(outcome.reports.first().map(|r| r.key.as_str()))
        ))
    }
}

/// "; report KEY" for a summary line, or nothing.
fn report_named(key: Option<&str>) -> String {
    key.map(|key| format!("; report {key}")).unwrap_or_default()
}

impl Scheduler {
    /// One run of a scheduled export for `tick`: the range before the tick, the run named
    /// by it, the bundle in its destination (else the reports store).
    async fn run_export(
        &self,
        export: &StandaloneExport,
        tick: i64,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<String> {
        use crate::jobs::export::{
            BundleStores, LogObserver, Reports, Resource, RunAt, run_resource,
        };
        let at = DateTime::<Utc>::from_timestamp(tick, 0).context("tick out of range")?;
        let spec = export.resolved_spec();
        let run = RunAt::for_tick(&spec, at)
            .map_err(|e| anyhow::anyhow!("metrics export {}: {e}", export.name))?;
        let resource = Resource {
            spec: &spec,
            namespace: STANDALONE_NAMESPACE,
            name: &export.name,
        };
        let stores = BundleStores::new(
            Reports::Open(self.reports.clone()),
            &self.settings.object_store_options,
            std::env::vars(),
        )
        .with_retry_timeout(self.settings.object_store_retry_timeout());
        let mut observer = LogObserver {
            name: export.name.clone(),
        };
        let outcome = run_resource(
            &resource,
            &run,
            export.env(),
            &stores,
            &mut observer,
            cancel,
        )
        .await?;
        let bundle = outcome
            .bundle
            .map(|b| {
                format!(
                    "{} ({} bytes, sha256 {})",
                    b.bundle.key, b.bundle.size, b.bundle.sha256
                )
            })
            .unwrap_or_default();
        Ok(format!(
            "metrics export {} run {}: {} series, {} samples, method {}; {bundle}",
            export.name,
            outcome.run_id,
            outcome.series,
            outcome.samples,
            outcome.method.name()
        ))
    }
}

/// The namespace part of a standalone export's default prefix (`exports/standalone/<name>`).
const STANDALONE_NAMESPACE: &str = "standalone";

/// The export's key in `cron_status`.
fn export_job_name(export: &StandaloneExport) -> String {
    format!("export:{}", export.name)
}

fn export_schedule(export: &StandaloneExport) -> Option<crate::schedule::CronSchedule> {
    crate::schedule::CronSchedule::parse(export.spec.schedule.as_deref()?, &export.spec.time_zone)
        .ok()
}

/// The export's latest tick at or before `now` when it is newer than its last run (only the
/// latest missed tick runs, as for the other jobs).
fn export_due(export: &StandaloneExport, last_tick: Option<i64>, now: i64) -> Option<i64> {
    let schedule = export_schedule(export)?;
    let now_at = DateTime::<Utc>::from_timestamp(now, 0)?;
    let since = last_tick
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .unwrap_or(now_at - chrono::Duration::days(31));
    let tick = schedule.latest_before(since, now_at)?.timestamp();
    (last_tick.is_none_or(|last| tick > last)).then_some(tick)
}

fn export_next(export: &StandaloneExport, now: i64) -> Option<i64> {
    let now_at = DateTime::<Utc>::from_timestamp(now, 0)?;
    Some(export_schedule(export)?.next_after(now_at)?.timestamp())
}

fn now() -> i64 {
    Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Timetable {
        Timetable {
            snapshot_every: 3_600,
            cleanup: crate::config::DEFAULT_CLEANUP_CRON.parse().unwrap(),
        }
    }

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    #[test]
    fn snapshots_are_due_once_per_hour_and_missed_hours_are_made_up_once() {
        let plan = plan();
        let now = at("2026-03-10T14:20:00Z");
        assert_eq!(
            plan.due(Job::Snapshot, None, now),
            Some(at("2026-03-10T14:00:00Z"))
        );
        assert_eq!(
            plan.due(Job::Snapshot, Some(at("2026-03-10T14:00:00Z")), now),
            None
        );
        // Down since 09:00: one snapshot now, not five.
        assert_eq!(
            plan.due(Job::Snapshot, Some(at("2026-03-10T09:00:00Z")), now),
            Some(at("2026-03-10T14:00:00Z"))
        );
        assert_eq!(
            plan.next_tick(Job::Snapshot, now),
            at("2026-03-10T15:00:00Z")
        );
    }

    #[test]
    fn the_daily_run_aggregates_yesterday_and_the_monthly_run_last_month() {
        let plan = plan();
        let now = at("2026-03-01T00:05:00Z");
        assert_eq!(
            plan.due(Job::Daily, None, now),
            Some(at("2026-02-28T00:00:00Z"))
        );
        assert_eq!(
            plan.due(Job::Daily, Some(at("2026-02-28T00:00:00Z")), now),
            None
        );
        assert_eq!(
            plan.due(Job::Monthly, None, now),
            Some(at("2026-02-01T00:00:00Z"))
        );
        assert_eq!(
            plan.due(Job::Monthly, Some(at("2026-02-01T00:00:00Z")), now),
            None
        );
        // A restart on 3 March after missing both: each runs once, for the latest period.
        let later = at("2026-03-03T10:00:00Z");
        assert_eq!(
            plan.due(Job::Daily, Some(at("2026-02-27T00:00:00Z")), later),
            Some(at("2026-03-02T00:00:00Z"))
        );
        assert_eq!(
            plan.next_tick(Job::Daily, later),
            at("2026-03-04T00:00:00Z")
        );
        assert_eq!(
            plan.due(Job::Monthly, Some(at("2026-01-01T00:00:00Z")), later),
            Some(at("2026-02-01T00:00:00Z"))
        );
    }

    #[test]
    fn cleanup_follows_its_cron_and_a_missed_run_is_made_up_once() {
        let plan = plan();
        let before = at("2026-03-10T02:00:00Z");
        assert_eq!(
            plan.latest_tick(Job::Cleanup, before),
            Some(at("2026-03-09T02:30:00Z"))
        );
        assert_eq!(
            plan.next_tick(Job::Cleanup, before),
            at("2026-03-10T02:30:00Z")
        );
        assert_eq!(
            plan.due(Job::Cleanup, Some(at("2026-03-09T02:30:00Z")), before),
            None
        );
        let after_a_week_down = at("2026-03-17T08:00:00Z");
        assert_eq!(
            plan.due(
                Job::Cleanup,
                Some(at("2026-03-09T02:30:00Z")),
                after_a_week_down
            ),
            Some(at("2026-03-17T02:30:00Z"))
        );
    }
}
