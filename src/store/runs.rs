//! Run records: one row per collector attempt at a vCenter (`snapshot_runs`), one per
//! aggregation attempt (`aggregation_runs`) and the last run of each scheduled job
//! (`cron_status`). Metrics, diagnostics and the catch-up logic read them, so they are right
//! whichever process did the work.

use super::{QueryContext, Result, Store, Tx, with_pool, with_tx};

/// One snapshot attempt at one vCenter, successful or not.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SnapshotRun {
    pub vcenter: String,
    pub snapshot_time: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub success: bool,
    pub row_count: i64,
    /// Empty on success.
    pub error: String,
    /// Empty on success, else what failed: 'connect', 'login', 'collect' or 'store'.
    pub failure_kind: String,
}

const INSERT_RUN: &str = "INSERT INTO snapshot_runs (vcenter, snapshot_time, started_at, finished_at, success, row_count, error, failure_kind) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

macro_rules! bind_run {
    ($run:expr) => {
        sqlx::query(INSERT_RUN)
            .bind(&$run.vcenter)
            .bind($run.snapshot_time)
            .bind($run.started_at)
            .bind($run.finished_at)
            .bind($run.success)
            .bind($run.row_count)
            .bind(&$run.error)
            .bind(&$run.failure_kind)
    };
}

/// The last run of a scheduled job.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRun {
    pub job: String,
    /// The scheduled time the run stood for (a tick, or the start of the day/month it did).
    pub last_tick: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub success: bool,
    pub error: String,
}

/// The snapshot runs of one vCenter, counted: what `/metrics` reports.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunStats {
    pub vcenter: String,
    pub runs: i64,
    pub failed: i64,
    /// snapshot_time of the newest successful run, 0 if none.
    pub last_snapshot: i64,
    /// row_count of the newest successful run, 0 if none.
    pub last_rows: i64,
    /// Failed runs whose failure_kind is 'connect'.
    pub connect_failures: i64,
    /// finished_at - started_at of the newest run, successful or not (whole seconds).
    pub last_duration: i64,
}

/// One daily or monthly aggregation attempt, successful or not.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AggregationRun {
    /// 'daily' or 'monthly' (as `TotalsGrain::as_str`).
    pub grain: String,
    pub period_start: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub duration_seconds: f64,
    pub success: bool,
    pub rows_written: i64,
    /// Who asked: 'job', 'standalone', 'cli', 'api' or 'demo'.
    pub source: String,
    /// Empty on success.
    pub error: String,
}

/// The aggregation runs of one grain, counted: what `/metrics` reports.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AggregationStats {
    pub grain: String,
    pub runs: i64,
    pub failed: i64,
    /// duration_seconds of the newest run, successful or not.
    pub last_duration: f64,
}

impl Store {
    /// Run counts per vCenter, ordered by vCenter.
    pub async fn run_stats(&self) -> Result<Vec<RunStats>> {
        const SQL: &str = "SELECT s.vcenter, COUNT(*) AS runs, \
            SUM(CASE WHEN s.success THEN 0 ELSE 1 END) AS failed, \
            COALESCE(MAX(CASE WHEN s.success THEN s.snapshot_time END), 0) AS last_snapshot, \
            COALESCE((SELECT r.row_count FROM snapshot_runs r WHERE r.vcenter = s.vcenter AND r.success \
                ORDER BY r.started_at DESC, r.id DESC LIMIT 1), 0) AS last_rows, \
            SUM(CASE WHEN s.failure_kind = 'connect' THEN 1 ELSE 0 END) AS connect_failures, \
            COALESCE((SELECT r.finished_at - r.started_at FROM snapshot_runs r WHERE r.vcenter = s.vcenter \
                ORDER BY r.started_at DESC, r.id DESC LIMIT 1), 0) AS last_duration \
            FROM snapshot_runs s GROUP BY s.vcenter ORDER BY s.vcenter";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .fetch_all(pool)
                .await
                .op("count snapshot runs")
        })
    }

    /// Records a run on its own (a failed attempt, which stores no snapshot).
    pub async fn record_run(&self, run: &SnapshotRun) -> Result<()> {
        with_pool!(self, |pool| {
            bind_run!(run)
                .execute(pool)
                .await
                .op("record a snapshot run")?;
        });
        Ok(())
    }

    /// The newest runs first, at most `limit`, optionally of one vCenter.
    pub async fn snapshot_runs(
        &self,
        vcenter: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SnapshotRun>> {
        const SQL: &str = "SELECT vcenter, snapshot_time, started_at, finished_at, success, row_count, error, failure_kind \
            FROM snapshot_runs WHERE ($1 IS NULL OR vcenter = $1) ORDER BY started_at DESC, id DESC LIMIT $2";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(vcenter)
                .bind(limit)
                .fetch_all(pool)
                .await
                .op("list snapshot runs")
        })
    }

    /// Records one aggregation attempt on its own connection, after the aggregation's own
    /// transaction committed or rolled back, so a failure's record is never rolled back with it.
    pub async fn record_aggregation_run(&self, run: &AggregationRun) -> Result<()> {
        const SQL: &str = "INSERT INTO aggregation_runs (grain, period_start, started_at, finished_at, duration_seconds, success, rows_written, source, error) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&run.grain)
                .bind(run.period_start)
                .bind(run.started_at)
                .bind(run.finished_at)
                .bind(run.duration_seconds)
                .bind(run.success)
                .bind(run.rows_written)
                .bind(&run.source)
                .bind(&run.error)
                .execute(pool)
                .await
                .op("record an aggregation run")?;
        });
        Ok(())
    }

    /// Aggregation run counts per grain, ordered by grain; a grain never run has no entry.
    pub async fn aggregation_stats(&self) -> Result<Vec<AggregationStats>> {
        const SQL: &str = "SELECT a.grain, COUNT(*) AS runs, \
            SUM(CASE WHEN a.success THEN 0 ELSE 1 END) AS failed, \
            COALESCE((SELECT r.duration_seconds FROM aggregation_runs r WHERE r.grain = a.grain \
                ORDER BY r.started_at DESC, r.id DESC LIMIT 1), 0.0) AS last_duration \
            FROM aggregation_runs a GROUP BY a.grain ORDER BY a.grain";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .fetch_all(pool)
                .await
                .op("count aggregation runs")
        })
    }

    /// The aggregation runs of one period, oldest first.
    pub async fn aggregation_runs(
        &self,
        grain: &str,
        period_start: i64,
    ) -> Result<Vec<AggregationRun>> {
        const SQL: &str = "SELECT grain, period_start, started_at, finished_at, duration_seconds, success, rows_written, source, error \
            FROM aggregation_runs WHERE grain = $1 AND period_start = $2 ORDER BY started_at, id";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(grain)
                .bind(period_start)
                .fetch_all(pool)
                .await
                .op("list aggregation runs")
        })
    }

    /// The last recorded run of `job`, if it ever ran.
    pub async fn job_run(&self, job: &str) -> Result<Option<JobRun>> {
        const SQL: &str = "SELECT job, last_tick, started_at, finished_at, success, error FROM cron_status WHERE job = $1";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(job)
                .fetch_optional(pool)
                .await
                .op("read a scheduled job's last run")
        })
    }

    pub async fn record_job_run(&self, run: &JobRun) -> Result<()> {
        const SQL: &str = "INSERT INTO cron_status (job, last_tick, started_at, finished_at, success, error) \
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job) DO UPDATE SET last_tick = excluded.last_tick, \
            started_at = excluded.started_at, finished_at = excluded.finished_at, success = excluded.success, error = excluded.error";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&run.job)
                .bind(run.last_tick)
                .bind(run.started_at)
                .bind(run.finished_at)
                .bind(run.success)
                .bind(&run.error)
                .execute(pool)
                .await
                .op("record a scheduled job's run")?;
        });
        Ok(())
    }
}

/// Records a successful run inside the transaction that stores its snapshot, so the two are
/// committed together or not at all.
pub async fn record_run_in(tx: &mut Tx, run: &SnapshotRun) -> Result<()> {
    with_tx!(tx, |conn| {
        bind_run!(run)
            .execute(&mut *conn)
            .await
            .op("record a snapshot run")?;
    });
    Ok(())
}
