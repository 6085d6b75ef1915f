//! `SnapshotSchedule` (short `snapsched`): when the selected `VCenterTarget`s are snapshotted,
//! how failures are retried, how long data is kept, and when the days and months are
//! aggregated. Each tick creates one Job per selected target; the daily and monthly crons
//! create `AggregationJob`s, the way a Velero Schedule creates Backups.

use super::{Engine, RetryPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: what became of the last finished tick (`Unknown` before the first).
pub const CONDITION_LAST_TICK_SUCCEEDED: &str = "LastTickSucceeded";

/// A cron expression of five fields: minute, hour, day of month, month, day of week.
pub(crate) const CRON_PATTERN: &str = r"^\s*\S+(\s+\S+){4}\s*$";
/// An IANA time zone name, e.g. `UTC` or `Europe/Zurich`.
pub(crate) const TIME_ZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$";

/// A schedule of hourly inventory snapshots of the selected vCenters, with retention and the
/// daily and monthly aggregations.
// clippy takes the repeated `type_`/`priority` keys of the `printcolumn(…)` lists for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vctp.io",
    version = "v1alpha1",
    kind = "SnapshotSchedule",
    plural = "snapshotschedules",
    shortname = "snapsched",
    category = "vctp",
    namespaced,
    status = "SnapshotScheduleStatus",
    derive = "PartialEq",
    cel,
    doc = "When the selected VCenterTargets are snapshotted (one Job per target and tick), how failures are retried, how long data is kept, and when days and months are aggregated.",
    printcolumn(
        name = "Schedule",
        type_ = "string",
        json_path = ".spec.schedule",
        description = "Cron schedule of the snapshots"
    ),
    printcolumn(
        name = "Suspend",
        type_ = "boolean",
        json_path = ".spec.suspend",
        description = "Whether new ticks are skipped"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the schedule is valid and scheduling"
    ),
    printcolumn(
        name = "Last Tick",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"LastTickSucceeded\")].status",
        description = "Whether every target of the last finished tick succeeded (Unknown before the first)"
    ),
    printcolumn(
        name = "Last Schedule",
        type_ = "date",
        json_path = ".status.lastScheduleTime",
        description = "The last tick"
    ),
    printcolumn(
        name = "Last Success",
        type_ = "date",
        json_path = ".status.lastSuccessfulTime",
        description = "The last tick whose snapshots all succeeded"
    ),
    printcolumn(
        name = "Next",
        type_ = "date",
        json_path = ".status.nextScheduleTime",
        description = "The next tick",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotScheduleSpec {
    /// Cron schedule of the snapshots (minute hour day-of-month month day-of-week), in
    /// `timeZone`.
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 9, max = 256), regex(pattern = CRON_PATTERN))]
    pub schedule: String,
    /// IANA time zone of the cron schedules, e.g. `Europe/Zurich`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: String,
    /// The `VCenterTarget`s of this namespace to snapshot [default: all of them].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_selector: Option<LabelSelector>,
    /// Snapshot Jobs running at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 100))]
    pub concurrency: i32,
    /// How a failed snapshot is retried.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// How long stored data is kept.
    #[serde(default)]
    pub retention: Retention,
    /// Skip new ticks while true; running Jobs go on.
    #[serde(default)]
    pub suspend: bool,
    /// A tick not started within this many seconds of its time counts as missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub starting_deadline_seconds: Option<i64>,
    /// What to do about ticks missed while the operator was down: `RunOnce` runs the latest
    /// missed tick once, `Skip` waits for the next one.
    #[serde(default)]
    pub missed_tick_policy: MissedTickPolicy,
    /// Finished successful snapshot Jobs to keep, and as many successful `AggregationJob`s of
    /// each period (hourly, daily, monthly).
    #[serde(default = "default_successful_jobs_history_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: i32,
    /// Finished failed snapshot Jobs to keep, and as many failed `AggregationJob`s of each
    /// period.
    #[serde(default = "default_failed_jobs_history_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: i32,
    /// When days and months are aggregated, and whether hourly reports are written.
    #[serde(default)]
    pub aggregation: AggregationSchedule,
}

fn default_schedule() -> String {
    "0 * * * *".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_concurrency() -> i32 {
    4
}

fn default_successful_jobs_history_limit() -> i32 {
    3
}

fn default_failed_jobs_history_limit() -> i32 {
    1
}

/// What happens to ticks missed while the operator was not running.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MissedTickPolicy {
    /// Wait for the next tick.
    Skip,
    /// Run the latest missed tick once.
    #[default]
    RunOnce,
}

/// Retention of stored data, applied after each tick.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Hourly snapshot rows older than this many days are deleted.
    #[serde(default = "default_hourly_max_age_days")]
    #[schemars(range(min = 1, max = 3_650))]
    pub hourly_max_age_days: i32,
    /// Daily summaries older than this many months are deleted.
    #[serde(default = "default_daily_max_age_months")]
    #[schemars(range(min = 1, max = 1_200))]
    pub daily_max_age_months: i32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            hourly_max_age_days: default_hourly_max_age_days(),
            daily_max_age_months: default_daily_max_age_months(),
        }
    }
}

fn default_hourly_max_age_days() -> i32 {
    60
}

fn default_daily_max_age_months() -> i32 {
    12
}

/// When the previous day and month are aggregated (each run is an `AggregationJob`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregationSchedule {
    /// Aggregation of the previous day.
    #[serde(default)]
    pub daily: DailyAggregation,
    /// Aggregation of the previous month.
    #[serde(default)]
    pub monthly: MonthlyAggregation,
    /// The aggregation core the `AggregationJob`s use.
    #[serde(default)]
    pub engine: Engine,
    /// Write the hour's report after each tick (an `Hourly` `AggregationJob`).
    #[serde(default = "default_true")]
    pub hourly_reports: bool,
}

/// The daily aggregation of the previous day.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyAggregation {
    /// Aggregate each day.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Cron schedule (in `timeZone`) of the aggregation of the previous day.
    #[serde(default = "default_daily_schedule")]
    #[schemars(length(min = 9, max = 256), regex(pattern = CRON_PATTERN))]
    pub schedule: String,
}

impl Default for DailyAggregation {
    fn default() -> Self {
        DailyAggregation {
            enabled: true,
            schedule: default_daily_schedule(),
        }
    }
}

fn default_daily_schedule() -> String {
    "30 0 * * *".into()
}

/// The monthly aggregation of the previous month.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyAggregation {
    /// Aggregate each month.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Cron schedule (in `timeZone`) of the aggregation of the previous month.
    #[serde(default = "default_monthly_schedule")]
    #[schemars(length(min = 9, max = 256), regex(pattern = CRON_PATTERN))]
    pub schedule: String,
}

impl Default for MonthlyAggregation {
    fn default() -> Self {
        MonthlyAggregation {
            enabled: true,
            schedule: default_monthly_schedule(),
        }
    }
}

fn default_monthly_schedule() -> String {
    "0 1 1 * *".into()
}

impl Default for AggregationSchedule {
    fn default() -> Self {
        AggregationSchedule {
            daily: DailyAggregation::default(),
            monthly: MonthlyAggregation::default(),
            engine: Engine::default(),
            hourly_reports: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// What the schedule last did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotScheduleStatus {
    /// `Ready`: the schedule is valid and scheduling (not suspended, targets selected, the
    /// Jobs' Secrets and ConfigMaps present, a next tick planned). `LastTickSucceeded`: every
    /// target of the last finished tick succeeded; `Unknown` before the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The last tick handled: run, or skipped (suspended, or missed past the starting
    /// deadline). The next tick is looked for after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The time of the next tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The time of the last tick whose snapshots all succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The snapshot Jobs running now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub active: Vec<JobRef>,
    /// What became of each target at the last tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick: Option<TickReport>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last tick of the daily aggregation cron handled (its `AggregationJob` created, or
    /// the tick skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_daily_aggregation_time: Option<Time>,
    /// The last tick of the monthly aggregation cron handled (its `AggregationJob` created, or
    /// the tick skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_monthly_aggregation_time: Option<Time>,
}

/// A Job created by the schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    /// Name of the Job, in the namespace of the schedule.
    pub name: String,
    /// The `VCenterTarget` it snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One tick and what became of each target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    /// The scheduled time of the tick.
    pub time: Time,
    /// One entry per selected target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["target"]))]
    pub targets: Vec<TargetOutcome>,
    /// The `Hourly` `AggregationJob` created once every target of this tick had finished
    /// (with `aggregation.hourlyReports`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_job: Option<String>,
}

/// What became of one target at a tick.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetOutcome {
    /// Name of the `VCenterTarget`.
    pub target: String,
    /// Name of the snapshot Job of this target and tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Skipped`.
    pub outcome: TickOutcome,
    /// Details: the error of a failure, why a target was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The state of one target's snapshot at a tick.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TickOutcome {
    /// Waiting for a free concurrency slot.
    Pending,
    /// Its Job is running.
    Running,
    /// The snapshot is stored.
    Succeeded,
    /// The snapshot failed after its retries.
    Failed,
    /// Not attempted, or cancelled: the schedule was suspended, the tick was past its starting
    /// deadline, the next tick came first, or the target is gone or no longer selected.
    Skipped,
}
