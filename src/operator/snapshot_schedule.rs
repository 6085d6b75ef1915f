//! The `SnapshotSchedule` controller: validate the crons and the target selector (pure) →
//! read the selected `VCenterTarget`s and the schedule's Jobs, Pods and `AggregationJob`s →
//! [`plan`] (pure: which snapshot Jobs and `AggregationJob`s to create, what finished, what to
//! delete, the new status) → apply (create-if-absent server-side apply, Events, metrics, the
//! targets' snapshot fields by server-side apply under their own field manager) → status
//! (a merge patch, written only when it changed) → cancel and prune.
//!
//! Each tick of `spec.schedule` gets one Job per selected target, named from the schedule,
//! the tick and the target, so planning a tick again (after a restart) finds the Jobs it
//! created instead of making more. A tick's state lives in `status.lastTick`; Jobs beyond
//! `concurrency` wait there as `Pending` and are created as running Jobs finish. A Job is
//! reported (Event, metrics, the target's `LastSnapshot` condition) when it is seen finished
//! after the last status listed it as unfinished; the report comes before the status write
//! that records it, so a failure in between repeats the report rather than losing it.

use super::job::{self, JobTemplate, job_name, label_value};
use super::workload::{self, Observed};
use super::{Context, Error, MANAGER, condition, from_timestamp, to_timestamp};
use crate::crd::aggregation_job::{AggregationPeriod, ReportOptions};
use crate::crd::snapshot_schedule::{self as crd, JobRef, TargetOutcome, TickOutcome, TickReport};
use crate::crd::{
    AggregationJob, AggregationJobSpec, CONDITION_READY, Phase, SnapshotSchedule,
    SnapshotScheduleSpec, SnapshotScheduleStatus, VCenterTarget,
};
use crate::jobs::env;
use crate::schedule::{self, CronSchedule, MissedTickPolicy};
use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta, Time};
use kube::api::{Api, ListParams};
use kube::core::{NamespaceResourceScope, Selector};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "SnapshotSchedule";
/// Label of a snapshot Job: its tick, in Unix seconds.
pub const TICK_LABEL: &str = "vctp.io/tick";
/// Label of a snapshot Job: its `VCenterTarget` (shortened like `app.kubernetes.io/instance`
/// when longer than a label value may be).
pub const TARGET_LABEL: &str = "vctp.io/target";
/// The condition this controller sets on a `VCenterTarget`: how its last snapshot went.
pub const CONDITION_LAST_SNAPSHOT: &str = "LastSnapshot";
/// Field manager of the `VCenterTarget` status fields this controller owns (another
/// controller owns `Ready`, `Reachable`, `lastError` and `lastCheckTime`).
pub const TARGET_MANAGER: &str = "vctp-operator/snapshot";
/// `app.kubernetes.io/component` of the snapshot Jobs.
const SNAPSHOT: &str = "snapshot";
/// `app.kubernetes.io/component` of the `AggregationJob`s the schedule creates.
const AGGREGATION: &str = "aggregation";
/// Longest wait between two reconciles of a schedule.
const MAX_REQUEUE: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs the controller for the `SnapshotSchedule`s of `namespace` until the process stops.
/// A schedule is reconciled when it, one of its Jobs or `AggregationJob`s changes, or when
/// the spec or labels of a `VCenterTarget` of the namespace change (status updates of the
/// targets, which this controller makes itself, do not count).
pub async fn run(ctx: Arc<Context>, namespace: String) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by={MANAGER},app.kubernetes.io/component={SNAPSHOT}"
    ));
    let target_changes = watcher(
        Api::<VCenterTarget>::namespaced(client.clone(), &namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(
        predicates::generation.combine(predicates::labels),
        Default::default(),
    )
    .filter_map(|target| async move {
        match target {
            Ok(_) => Some(()),
            Err(error) => {
                tracing::warn!(%error, "watching VCenterTargets failed");
                None
            }
        }
    });
    let results = Controller::new(
        Api::<SnapshotSchedule>::namespaced(client.clone(), &namespace),
        watcher::Config::default(),
    )
    .owns(Api::<Job>::namespaced(client.clone(), &namespace), owned)
    .owns(
        Api::<AggregationJob>::namespaced(client, &namespace),
        watcher::Config::default(),
    )
    .reconcile_all_on(target_changes)
    .run(reconcile, super::error_policy, ctx);
    super::drain(CONTROLLER, &namespace, results).await;
}

/// One reconcile of `schedule` as the API server has it now (the controller's cache may
/// not show the status written a moment ago yet, and a stale status would report a finished
/// Job twice), with its metrics and backoff bookkeeping.
pub async fn reconcile(
    schedule: Arc<SnapshotSchedule>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    super::reconcile_fresh(CONTROLLER, schedule.as_ref(), &ctx, reconcile_schedule).await
}

async fn reconcile_schedule(schedule: &SnapshotSchedule, ctx: &Context) -> Result<Action, Error> {
    let now = super::now();
    let validated = match validate(&schedule.spec) {
        Ok(validated) => validated,
        Err(invalid) => {
            let invalid = invalid.into_error(schedule);
            let status = invalid_status(schedule, &invalid, now);
            write_status(ctx, schedule, &status).await?;
            ctx.event(
                schedule,
                EventType::Warning,
                invalid.reason(),
                "Validate",
                invalid.to_string(),
            )
            .await;
            return Err(invalid);
        }
    };
    let found = read(ctx, schedule, &validated).await?;
    let plan = plan(schedule, &validated, &found, from_timestamp(now.0));
    apply(ctx, schedule, &found, &plan, now).await
}

// ---------------------------------------------------------------------------------------
// Validate

/// The spec, checked: the crons parsed in the time zone, the selector as a string.
#[derive(Debug, Clone)]
pub struct Validated {
    pub snapshots: CronSchedule,
    /// The daily aggregation cron, when enabled.
    pub daily: Option<CronSchedule>,
    /// The monthly aggregation cron, when enabled.
    pub monthly: Option<CronSchedule>,
    /// `targetSelector` as the label selector of a list request (empty: every target).
    pub target_selector: String,
}

/// What is wrong with a spec: a stable reason and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

impl Invalid {
    /// The controller error for `schedule`, which waits for the spec to change.
    pub fn into_error(self, schedule: &SnapshotSchedule) -> Error {
        Error::invalid_spec(schedule, self.reason, self.message)
    }
}

/// Checks what the schema cannot: the cron expressions and time zone, and the operators of
/// the target selector.
pub fn validate(spec: &SnapshotScheduleSpec) -> Result<Validated, Invalid> {
    let cron = |field: &str, expression: &str| {
        CronSchedule::parse(expression, &spec.time_zone).map_err(|e| Invalid {
            reason: e.reason(),
            message: format!("{field}: {e}"),
        })
    };
    let aggregation = &spec.aggregation;
    Ok(Validated {
        snapshots: cron("schedule", &spec.schedule)?,
        daily: aggregation
            .daily
            .enabled
            .then(|| cron("aggregation.daily.schedule", &aggregation.daily.schedule))
            .transpose()?,
        monthly: aggregation
            .monthly
            .enabled
            .then(|| {
                cron(
                    "aggregation.monthly.schedule",
                    &aggregation.monthly.schedule,
                )
            })
            .transpose()?,
        target_selector: selector_string(spec.target_selector.as_ref()).map_err(|message| {
            Invalid {
                reason: "InvalidTargetSelector",
                message: format!("targetSelector: {message}"),
            }
        })?,
    })
}

/// `selector` as the label selector string of a list request: `matchLabels` as `key=value`,
/// `matchExpressions` as `key in (a,b)`, `key notin (a)`, `key`, `!key`; empty for none
/// (every object). The error says which requirement is wrong.
pub fn selector_string(selector: Option<&LabelSelector>) -> Result<String, String> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_ref().map_or(0, Vec::len);
        let key = &requirement.key;
        match (requirement.operator.as_str(), values) {
            ("In" | "NotIn", 0) => {
                return Err(format!(
                    "operator {} of key {key:?} needs at least one value",
                    requirement.operator
                ));
            }
            ("Exists" | "DoesNotExist", 1..) => {
                return Err(format!(
                    "operator {} of key {key:?} takes no values",
                    requirement.operator
                ));
            }
            ("In" | "NotIn" | "Exists" | "DoesNotExist", _) => {}
            (other, _) => {
                return Err(format!(
                    "unknown operator {other:?} of key {key:?} (In, NotIn, Exists or DoesNotExist)"
                ));
            }
        }
    }
    Selector::try_from(selector.clone())
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
}

/// The status written for an invalid spec: what the schedule had, with `Ready` false for
/// the reason and the generation that is invalid.
fn invalid_status(
    schedule: &SnapshotSchedule,
    invalid: &Error,
    now: Time,
) -> SnapshotScheduleStatus {
    let mut status = schedule.status.clone().unwrap_or_default();
    let generation = schedule.metadata.generation;
    status.conditions = vec![condition(
        &status.conditions,
        CONDITION_READY,
        false,
        invalid.reason(),
        invalid.to_string(),
        generation,
        now,
    )];
    status.observed_generation = generation;
    status
}

// ---------------------------------------------------------------------------------------
// Read

/// A snapshot Job of the schedule, as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotJob {
    pub name: String,
    /// The tick it snapshots (its [`TICK_LABEL`]).
    pub tick: Option<DateTime<Utc>>,
    /// Its [`TARGET_LABEL`].
    pub target_label: Option<String>,
    pub observed: Observed,
}

impl SnapshotJob {
    /// `job` (with its Pods) as the plan sees it.
    pub fn new(job: &Job, pods: &[Pod]) -> SnapshotJob {
        let label = |key: &str| job.labels().get(key).cloned();
        SnapshotJob {
            name: job.name_any(),
            tick: label(TICK_LABEL)
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|t| DateTime::from_timestamp(t, 0)),
            target_label: label(TARGET_LABEL),
            observed: workload::observe(job, pods),
        }
    }

    fn is_finished(&self) -> bool {
        self.observed.phase.is_finished()
    }
}

/// What the schedule finds in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The selected `VCenterTarget`s.
    pub targets: Vec<VCenterTarget>,
    /// The schedule's snapshot Jobs.
    pub jobs: Vec<SnapshotJob>,
    /// The `AggregationJob`s the schedule created.
    pub aggregations: Vec<AggregationJob>,
}

async fn read(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    validated: &Validated,
) -> Result<Found, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let targets = list::<VCenterTarget>(ctx, &namespace, &validated.target_selector).await?;
    let snapshots = instance_selector(schedule, SNAPSHOT);
    let jobs = list::<Job>(ctx, &namespace, &snapshots).await?;
    let pods = list::<Pod>(ctx, &namespace, &snapshots).await?;
    let mut pods_by_job: HashMap<String, Vec<Pod>> = HashMap::new();
    for pod in pods {
        if let Some(job) = pod.labels().get("job-name").cloned() {
            pods_by_job.entry(job).or_default().push(pod);
        }
    }
    let jobs = jobs
        .iter()
        .filter(|j| controlled_by(&j.metadata, schedule))
        .map(|j| SnapshotJob::new(j, pods_by_job.get(&j.name_any()).map_or(&[], Vec::as_slice)))
        .collect();
    let aggregations =
        list::<AggregationJob>(ctx, &namespace, &instance_selector(schedule, AGGREGATION))
            .await?
            .into_iter()
            .filter(|a| controlled_by(&a.metadata, schedule))
            .collect();
    Ok(Found {
        targets,
        jobs,
        aggregations,
    })
}

/// The label selector of what the schedule created of `component`.
fn instance_selector(schedule: &SnapshotSchedule, component: &str) -> String {
    format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component={component}",
        label_value(&schedule.name_any())
    )
}

/// Whether `meta`'s controller is `schedule` (labels alone could match a hand-made object).
fn controlled_by(meta: &ObjectMeta, schedule: &SnapshotSchedule) -> bool {
    let uid = schedule.meta().uid.as_deref();
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
}

async fn list<K>(ctx: &Context, namespace: &str, selector: &str) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|list| list.items)
        .map_err(|source| {
            Error::api(
                "list",
                &K::kind(&()),
                namespace,
                &format!("[{selector}]"),
                source,
            )
        })
}

// ---------------------------------------------------------------------------------------
// Plan

/// A snapshot Job to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    pub target: String,
    pub job: String,
    pub tick: DateTime<Utc>,
}

/// The period of an `AggregationJob` to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregationRun {
    /// The report of the hour of this tick.
    Hourly(DateTime<Utc>),
    /// The summaries of this UTC day.
    Daily(NaiveDate),
    /// The summaries of this UTC month.
    Monthly { year: i32, month: u32 },
}

/// An `AggregationJob` to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAggregation {
    pub name: String,
    pub run: AggregationRun,
}

/// A snapshot Job seen finished for the first time.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The `VCenterTarget` it snapshotted.
    pub target: String,
    pub job: String,
    pub tick: Option<DateTime<Utc>>,
    pub observed: Observed,
}

/// A Warning Event for the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub reason: &'static str,
    pub message: String,
}

/// What one reconcile does, decided from the spec, the status, what is in the cluster and
/// the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Snapshot Jobs to create, in target order (at most the free concurrency slots).
    pub create: Vec<NewSnapshot>,
    /// `AggregationJob`s to create.
    pub aggregations: Vec<NewAggregation>,
    /// Snapshot Jobs that finished since the status was written: each gets an Event,
    /// metrics and the target's snapshot fields.
    pub finished: Vec<Finished>,
    /// Unfinished snapshot Jobs of targets that are gone or no longer selected.
    pub cancel: Vec<String>,
    /// Finished snapshot Jobs beyond the history limits, oldest first.
    pub delete_jobs: Vec<String>,
    /// Finished `Hourly` `AggregationJob`s of the schedule beyond the history limits.
    pub delete_aggregations: Vec<String>,
    /// Warning Events about ticks that did not run as scheduled.
    pub notices: Vec<Notice>,
    /// The status to write.
    pub status: SnapshotScheduleStatus,
    /// When to reconcile again at the latest.
    pub requeue_after: std::time::Duration,
}

/// Decides one reconcile (pure).
///
/// - The snapshot tick comes from [`schedule::decide`] after `status.lastScheduleTime`. A new
///   tick starts `status.lastTick` with every selected target `Pending` (or `Skipped` when
///   the schedule is suspended or the tick is past its starting deadline); Jobs found for it
///   set their targets' outcome instead, so planning the same tick twice creates nothing new.
/// - `Pending` targets get their Job while fewer than `concurrency` snapshot Jobs of the
///   schedule are unfinished (none while suspended), and become `Running`.
/// - A Job listed as unfinished by the previous status (`active`, or `lastTick`) and now
///   finished is in [`Plan::finished`].
/// - Once every target of the tick finished and one succeeded, an `Hourly` `AggregationJob`
///   (with `hourlyReports`); on the daily and monthly crons (decided after their own last
///   handled tick) a `Daily` one for the UTC day before the cron tick's UTC date and a
///   `Monthly` one for the UTC month before the tick's UTC month.
/// - Finished snapshot Jobs and `Hourly` `AggregationJob`s beyond the history limits are
///   deleted, oldest first.
pub fn plan(
    schedule: &SnapshotSchedule,
    validated: &Validated,
    found: &Found,
    now: DateTime<Utc>,
) -> Plan {
    let input = Input::new(schedule, found, now);
    let previous = &input.previous;
    let snapshots = input.decide(&validated.snapshots, previous.last_schedule_time.as_ref());
    let (mut tick, notices) = input.tick(&snapshots);
    let cancel = input.cancelled();
    let create = match (tick.as_mut(), schedule.spec.suspend) {
        (Some(tick), false) => start_pending(&input.name, tick, input.free_slots(&cancel)),
        _ => Vec::new(),
    };
    let finished = newly_finished(previous, &input.jobs);
    let daily = (validated.daily.as_ref())
        .map(|cron| input.decide(cron, previous.last_daily_aggregation_time.as_ref()));
    let monthly = (validated.monthly.as_ref())
        .map(|cron| input.decide(cron, previous.last_monthly_aggregation_time.as_ref()));
    let aggregations = input.aggregations(tick.as_mut(), daily.as_ref(), monthly.as_ref());
    let (delete_jobs, delete_aggregations) = beyond_history(&schedule.spec, found, &cancel);
    let next = [Some(&snapshots), daily.as_ref(), monthly.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|d| d.next)
        .min();
    let status = SnapshotScheduleStatus {
        conditions: vec![input.ready(tick.as_ref())],
        last_schedule_time: snapshots.handled.map(k8s_time),
        next_schedule_time: snapshots.next.map(k8s_time),
        last_successful_time: tick
            .as_ref()
            .filter(|t| all_succeeded(t))
            .map(|t| t.time.clone())
            .or(previous.last_successful_time.clone()),
        active: active_jobs(found, &cancel, &create, tick.as_ref(), previous),
        last_tick: tick,
        observed_generation: schedule.metadata.generation,
        last_daily_aggregation_time: handled(daily.as_ref())
            .or(previous.last_daily_aggregation_time.clone()),
        last_monthly_aggregation_time: handled(monthly.as_ref())
            .or(previous.last_monthly_aggregation_time.clone()),
    };
    Plan {
        create,
        aggregations,
        finished,
        cancel,
        delete_jobs,
        delete_aggregations,
        notices,
        status,
        requeue_after: requeue_after(next, now),
    }
}

/// What the plan reads, indexed.
struct Input<'a> {
    schedule: &'a SnapshotSchedule,
    found: &'a Found,
    name: String,
    previous: SnapshotScheduleStatus,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    /// The selected targets by name.
    targets: BTreeMap<&'a str, &'a VCenterTarget>,
    /// The snapshot Jobs by name.
    jobs: HashMap<&'a str, &'a SnapshotJob>,
}

impl<'a> Input<'a> {
    fn new(schedule: &'a SnapshotSchedule, found: &'a Found, now: DateTime<Utc>) -> Self {
        Input {
            schedule,
            found,
            name: schedule.name_any(),
            previous: schedule.status.clone().unwrap_or_default(),
            created: (schedule.metadata.creation_timestamp.as_ref())
                .map_or(now, |t| from_timestamp(t.0)),
            now,
            targets: (found.targets.iter())
                .map(|t| (t.meta().name.as_deref().unwrap_or_default(), t))
                .collect(),
            jobs: found.jobs.iter().map(|j| (j.name.as_str(), j)).collect(),
        }
    }

    /// [`schedule::decide`] for `cron` after `last` with the schedule's deadline, policy
    /// and suspension.
    fn decide(&self, cron: &CronSchedule, last: Option<&Time>) -> schedule::Plan {
        let spec = &self.schedule.spec;
        schedule::decide(
            cron,
            last.map(|t| from_timestamp(t.0)),
            self.created,
            self.now,
            spec.starting_deadline_seconds.map(Duration::seconds),
            missed_tick_policy(spec.missed_tick_policy),
            spec.suspend,
        )
    }

    /// The tick report after `snapshots` was decided: a new tick, or the one in the status
    /// brought up to date; with notices about ticks that did not run as scheduled.
    fn tick(&self, snapshots: &schedule::Plan) -> (Option<TickReport>, Vec<Notice>) {
        let last = self.previous.last_schedule_time.as_ref();
        let new_tick = snapshots
            .handled
            .filter(|t| Some(*t) != last.map(|l| from_timestamp(l.0)));
        let Some(time) = new_tick else {
            let tick = (self.previous.last_tick.clone())
                .map(|t| refresh_tick(t, &self.targets, &self.jobs));
            return (tick, Vec::new());
        };
        let spec = &self.schedule.spec;
        let mut notices: Vec<Notice> =
            never_started(self.previous.last_tick.as_ref(), spec.concurrency)
                .into_iter()
                .collect();
        if snapshots.skipped > 0 && !spec.suspend {
            notices.push(missed_ticks(snapshots, time));
        }
        let skip_message = if spec.suspend {
            "skipped: the schedule is suspended".to_string()
        } else {
            format!(
                "skipped: the tick was {} s old, past startingDeadlineSeconds",
                (self.now - time).num_seconds()
            )
        };
        let targets = self.targets.keys().copied();
        let run = snapshots.run.is_some();
        let tick = start_tick(&self.name, time, targets, &self.jobs, run, &skip_message);
        (Some(tick), notices)
    }

    /// Unfinished snapshot Jobs whose target is gone or no longer selected.
    fn cancelled(&self) -> Vec<String> {
        let selected: BTreeSet<String> = self.targets.keys().map(|t| label_value(t)).collect();
        (self.found.jobs.iter())
            .filter(|j| !j.is_finished())
            .filter(|j| (j.target_label.as_ref()).is_none_or(|t| !selected.contains(t)))
            .map(|j| j.name.clone())
            .collect()
    }

    /// Snapshot Jobs that may start now: `concurrency` less the unfinished ones.
    fn free_slots(&self, cancelled: &[String]) -> usize {
        let unfinished = (self.found.jobs.iter())
            .filter(|j| !j.is_finished() && !cancelled.contains(&j.name))
            .count();
        let concurrency = self.schedule.spec.concurrency.max(1);
        usize::try_from(concurrency)
            .unwrap_or(1)
            .saturating_sub(unfinished)
    }

    /// The `AggregationJob`s due and not created yet: the tick's `Hourly` one (recorded in
    /// the tick report), and those of the daily and monthly crons.
    fn aggregations(
        &self,
        tick: Option<&mut TickReport>,
        daily: Option<&schedule::Plan>,
        monthly: Option<&schedule::Plan>,
    ) -> Vec<NewAggregation> {
        let mut due = Vec::new();
        if let Some(tick) = tick
            && self.schedule.spec.aggregation.hourly_reports
            && tick.aggregation_job.is_none()
            && tick_finished(tick)
            && (tick.targets.iter()).any(|t| t.outcome == TickOutcome::Succeeded)
        {
            let hourly = new_aggregation(
                &self.name,
                AggregationRun::Hourly(from_timestamp(tick.time.0)),
            );
            tick.aggregation_job = Some(hourly.name.clone());
            due.push(hourly);
        }
        if let Some(run) = daily.and_then(|d| d.run) {
            due.push(new_aggregation(
                &self.name,
                AggregationRun::Daily(previous_day(run)),
            ));
        }
        if let Some(run) = monthly.and_then(|m| m.run) {
            let (year, month) = previous_month(run);
            due.push(new_aggregation(
                &self.name,
                AggregationRun::Monthly { year, month },
            ));
        }
        due.retain(|a| !(self.found.aggregations.iter()).any(|e| e.name_any() == a.name));
        due
    }

    fn ready(&self, tick: Option<&TickReport>) -> Condition {
        ready_condition(
            tick,
            &self.previous.conditions,
            self.schedule.spec.suspend,
            self.schedule.metadata.generation,
            k8s_time(self.now),
        )
    }
}

/// The last tick a cron decision handled.
fn handled(decision: Option<&schedule::Plan>) -> Option<Time> {
    decision.and_then(|d| d.handled).map(k8s_time)
}

fn all_succeeded(tick: &TickReport) -> bool {
    !tick.targets.is_empty() && (tick.targets.iter()).all(|t| t.outcome == TickOutcome::Succeeded)
}

/// A notice about ticks passed over without a run.
fn missed_ticks(snapshots: &schedule::Plan, latest: DateTime<Utc>) -> Notice {
    let missed = snapshots.skipped;
    let message = match snapshots.run {
        Some(_) => format!(
            "{missed} missed tick(s) before {} were not run; that tick runs",
            rfc3339(latest)
        ),
        None => format!(
            "{missed} missed tick(s) up to {} were not run (missedTickPolicy Skip)",
            rfc3339(latest)
        ),
    };
    Notice {
        reason: "TicksMissed",
        message,
    }
}

fn missed_tick_policy(policy: crd::MissedTickPolicy) -> MissedTickPolicy {
    match policy {
        crd::MissedTickPolicy::Skip => MissedTickPolicy::Skip,
        crd::MissedTickPolicy::RunOnce => MissedTickPolicy::RunOnce,
    }
}

fn k8s_time(t: DateTime<Utc>) -> Time {
    Time(to_timestamp(t))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The tick in Job names: `20260310t1400` (UTC).
fn stamp(tick: DateTime<Utc>) -> String {
    tick.format("%Y%m%dt%H%M").to_string()
}

/// The name of the snapshot Job of `target` at `tick`.
pub fn snapshot_job_name(schedule: &str, tick: DateTime<Utc>, target: &str) -> String {
    job_name(&[schedule, "snap", &stamp(tick), target])
}

/// The name of the `AggregationJob` of `run`.
pub fn aggregation_name(schedule: &str, run: AggregationRun) -> String {
    match run {
        AggregationRun::Hourly(tick) => job_name(&[schedule, "hourly", &stamp(tick)]),
        AggregationRun::Daily(date) => {
            job_name(&[schedule, "daily", &date.format("%Y-%m-%d").to_string()])
        }
        AggregationRun::Monthly { year, month } => {
            job_name(&[schedule, "monthly", &format!("{year:04}-{month:02}")])
        }
    }
}

fn new_aggregation(schedule: &str, run: AggregationRun) -> NewAggregation {
    NewAggregation {
        name: aggregation_name(schedule, run),
        run,
    }
}

/// The last complete UTC day before `tick`.
fn previous_day(tick: DateTime<Utc>) -> NaiveDate {
    tick.date_naive().pred_opt().unwrap_or(NaiveDate::MIN)
}

/// The last complete UTC month before `tick`.
fn previous_month(tick: DateTime<Utc>) -> (i32, u32) {
    if tick.month() == 1 {
        (tick.year() - 1, 12)
    } else {
        (tick.year(), tick.month() - 1)
    }
}

/// The tick report of a new tick: one entry per selected target (in name order), from its
/// Job when one exists (the tick was planned before), else `Pending` when the tick runs or
/// `Skipped` with `skip_message`.
fn start_tick<'a>(
    schedule: &str,
    tick: DateTime<Utc>,
    targets: impl Iterator<Item = &'a str>,
    jobs: &HashMap<&str, &SnapshotJob>,
    run: bool,
    skip_message: &str,
) -> TickReport {
    let targets = targets
        .map(|target| {
            let job = snapshot_job_name(schedule, tick, target);
            let (outcome, message) = match jobs.get(job.as_str()) {
                Some(found) => outcome_of(&found.observed),
                None if run => (TickOutcome::Pending, None),
                None => (TickOutcome::Skipped, Some(skip_message.to_string())),
            };
            TargetOutcome {
                target: target.to_string(),
                job: (outcome != TickOutcome::Skipped).then_some(job),
                outcome,
                message,
            }
        })
        .collect();
    TickReport {
        time: k8s_time(tick),
        targets,
        aggregation_job: None,
    }
}

/// The tick report of the status brought up to date with the Jobs found: a Job's phase sets
/// its target's outcome; targets gone or no longer selected are `Skipped` unless finished;
/// a `Running` target whose Job vanished failed.
fn refresh_tick(
    mut tick: TickReport,
    targets: &BTreeMap<&str, &VCenterTarget>,
    jobs: &HashMap<&str, &SnapshotJob>,
) -> TickReport {
    for entry in &mut tick.targets {
        let job = entry.job.as_deref().and_then(|j| jobs.get(j));
        let selected = targets.contains_key(entry.target.as_str());
        let finished = matches!(entry.outcome, TickOutcome::Succeeded | TickOutcome::Failed);
        let (outcome, message) = match job {
            Some(job) if selected || job.is_finished() => outcome_of(&job.observed),
            _ if finished || entry.outcome == TickOutcome::Skipped => continue,
            _ if !selected => (
                TickOutcome::Skipped,
                Some("cancelled: the VCenterTarget is gone or no longer selected".into()),
            ),
            None if entry.outcome == TickOutcome::Running => (
                TickOutcome::Failed,
                Some("its Job was deleted before it finished".into()),
            ),
            _ => continue,
        };
        entry.outcome = outcome;
        entry.message = message;
    }
    tick
}

/// A target's outcome from its Job.
fn outcome_of(observed: &Observed) -> (TickOutcome, Option<String>) {
    match observed.phase {
        Phase::Pending | Phase::Running => (TickOutcome::Running, observed.message.clone()),
        Phase::Succeeded => (TickOutcome::Succeeded, observed.summary()),
        Phase::Failed => (
            TickOutcome::Failed,
            Some(match observed.summary() {
                Some(summary) => format!("{}: {summary}", observed.reason()),
                None => observed.reason().to_string(),
            }),
        ),
    }
}

/// A notice about the targets of `previous` that were still waiting for a slot when the
/// next tick came.
fn never_started(previous: Option<&TickReport>, concurrency: i32) -> Option<Notice> {
    let previous = previous?;
    let waiting: Vec<&str> = previous
        .targets
        .iter()
        .filter(|t| t.outcome == TickOutcome::Pending)
        .map(|t| t.target.as_str())
        .collect();
    (!waiting.is_empty()).then(|| Notice {
        reason: "SnapshotsNotStarted",
        message: format!(
            "the next tick came before a slot freed up (concurrency {concurrency}): no snapshot of {} at {}",
            waiting.join(", "),
            rfc3339(from_timestamp(previous.time.0))
        ),
    })
}

/// Starts up to `slots` `Pending` targets of `tick` (in target order): they become `Running`.
fn start_pending(schedule: &str, tick: &mut TickReport, slots: usize) -> Vec<NewSnapshot> {
    let at = from_timestamp(tick.time.0);
    tick.targets
        .iter_mut()
        .filter(|t| t.outcome == TickOutcome::Pending)
        .take(slots)
        .map(|entry| {
            let job = snapshot_job_name(schedule, at, &entry.target);
            entry.outcome = TickOutcome::Running;
            entry.message = None;
            entry.job = Some(job.clone());
            NewSnapshot {
                target: entry.target.clone(),
                job,
                tick: at,
            }
        })
        .collect()
}

/// Whether every target of `tick` is done (succeeded, failed or skipped).
fn tick_finished(tick: &TickReport) -> bool {
    tick.targets
        .iter()
        .all(|t| !matches!(t.outcome, TickOutcome::Pending | TickOutcome::Running))
}

/// The Jobs the previous status listed as unfinished (in `active` or `lastTick`) that are
/// now finished, by Job name.
fn newly_finished(
    previous: &SnapshotScheduleStatus,
    jobs: &HashMap<&str, &SnapshotJob>,
) -> Vec<Finished> {
    let from_active = previous
        .active
        .iter()
        .filter_map(|r| Some((r.name.as_str(), r.target.as_deref()?)));
    let from_tick = previous
        .last_tick
        .iter()
        .flat_map(|t| &t.targets)
        .filter(|t| matches!(t.outcome, TickOutcome::Pending | TickOutcome::Running))
        .filter_map(|t| Some((t.job.as_deref()?, t.target.as_str())));
    let unfinished: BTreeMap<&str, &str> = from_active.chain(from_tick).collect();
    unfinished
        .into_iter()
        .filter_map(|(name, target)| {
            let job = jobs.get(name).filter(|j| j.is_finished())?;
            Some(Finished {
                target: target.to_string(),
                job: name.to_string(),
                tick: job.tick,
                observed: job.observed.clone(),
            })
        })
        .collect()
}

/// The snapshot Jobs and `Hourly` `AggregationJob`s to delete: finished ones beyond
/// `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`, oldest first.
fn beyond_history(
    spec: &SnapshotScheduleSpec,
    found: &Found,
    cancelled: &[String],
) -> (Vec<String>, Vec<String>) {
    let keep = |phase: Phase| match phase {
        Phase::Succeeded => spec.successful_jobs_history_limit,
        _ => spec.failed_jobs_history_limit,
    };
    let jobs = found
        .jobs
        .iter()
        .filter(|j| j.is_finished() && !cancelled.contains(&j.name))
        .map(|j| {
            let at = j.tick.map_or(0, |t| t.timestamp());
            (j.observed.phase, at, j.name.as_str())
        });
    let hourly = found
        .aggregations
        .iter()
        .filter(|a| a.spec.period == AggregationPeriod::Hourly)
        .filter_map(|a| {
            let phase = a.status.as_ref()?.phase.filter(|p| p.is_finished())?;
            let at = a.spec.at.as_ref().map_or(0, |t| t.0.as_second());
            Some((phase, at, a.meta().name.as_deref().unwrap_or_default()))
        });
    (oldest_beyond(jobs, keep), oldest_beyond(hourly, keep))
}

/// Per phase, the names beyond the newest `keep(phase)`, oldest first.
fn oldest_beyond<'a>(
    items: impl Iterator<Item = (Phase, i64, &'a str)>,
    keep: impl Fn(Phase) -> i32,
) -> Vec<String> {
    let mut by_phase: BTreeMap<bool, Vec<(i64, &str)>> = BTreeMap::new();
    for (phase, at, name) in items {
        by_phase
            .entry(phase == Phase::Succeeded)
            .or_default()
            .push((at, name));
    }
    let mut beyond: Vec<(i64, &str)> = by_phase
        .into_iter()
        .flat_map(|(succeeded, mut items)| {
            let phase = if succeeded {
                Phase::Succeeded
            } else {
                Phase::Failed
            };
            items.sort_unstable_by(|a, b| b.cmp(a));
            let keep = usize::try_from(keep(phase)).unwrap_or(0);
            items.into_iter().skip(keep)
        })
        .collect();
    beyond.sort_unstable();
    beyond
        .into_iter()
        .map(|(_, name)| name.to_string())
        .collect()
}

/// The unfinished snapshot Jobs after this reconcile, with their targets, by name.
fn active_jobs(
    found: &Found,
    cancelled: &[String],
    created: &[NewSnapshot],
    tick: Option<&TickReport>,
    previous: &SnapshotScheduleStatus,
) -> Vec<JobRef> {
    let mut targets: HashMap<&str, &str> = previous
        .active
        .iter()
        .filter_map(|r| Some((r.name.as_str(), r.target.as_deref()?)))
        .collect();
    targets.extend(
        tick.iter()
            .flat_map(|t| &t.targets)
            .filter_map(|t| Some((t.job.as_deref()?, t.target.as_str()))),
    );
    let running = found
        .jobs
        .iter()
        .filter(|j| !j.is_finished() && !cancelled.contains(&j.name))
        .map(|j| JobRef {
            name: j.name.clone(),
            target: targets
                .get(j.name.as_str())
                .map(|t| t.to_string())
                .or(j.target_label.clone()),
        });
    let new = created.iter().map(|n| JobRef {
        name: n.job.clone(),
        target: Some(n.target.clone()),
    });
    let active: BTreeMap<String, JobRef> =
        running.chain(new).map(|r| (r.name.clone(), r)).collect();
    active.into_values().collect()
}

/// `Ready`: true when every target of the last finished tick succeeded (skipped ones aside);
/// while a tick runs, the previous `Ready` holds.
fn ready_condition(
    tick: Option<&TickReport>,
    previous: &[Condition],
    suspended: bool,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let ready = |ok: bool, reason: &str, message: String| {
        condition(
            previous,
            CONDITION_READY,
            ok,
            reason,
            message,
            generation,
            now.clone(),
        )
    };
    let Some(tick) = tick else {
        return ready(false, "NoTickYet", "no tick has come yet".into());
    };
    let at = rfc3339(from_timestamp(tick.time.0));
    if !tick_finished(tick) {
        return match previous.iter().find(|c| c.type_ == CONDITION_READY) {
            Some(c) => ready(c.status == "True", &c.reason, c.message.clone()),
            None => ready(
                false,
                "TickRunning",
                format!("the first tick ({at}) is running"),
            ),
        };
    }
    let failed: Vec<String> = tick
        .targets
        .iter()
        .filter(|t| t.outcome == TickOutcome::Failed)
        .map(|t| match &t.message {
            Some(message) => format!("{} ({message})", t.target),
            None => t.target.clone(),
        })
        .collect();
    let succeeded = tick
        .targets
        .iter()
        .filter(|t| t.outcome == TickOutcome::Succeeded)
        .count();
    if tick.targets.is_empty() {
        ready(
            false,
            "NoTargets",
            format!("no VCenterTarget in the namespace matches targetSelector (tick {at})"),
        )
    } else if !failed.is_empty() {
        ready(
            false,
            "SnapshotFailed",
            format!(
                "{} of {} snapshots failed at {at}: {}",
                failed.len(),
                tick.targets.len(),
                failed.join("; ")
            ),
        )
    } else if succeeded == 0 {
        let why = tick.targets[0].message.clone().unwrap_or_default();
        let reason = if suspended {
            "Suspended"
        } else {
            "TickSkipped"
        };
        ready(false, reason, format!("tick {at} {why}"))
    } else {
        ready(
            true,
            "Succeeded",
            format!(
                "{succeeded} of {} snapshots succeeded at {at}",
                tick.targets.len()
            ),
        )
    }
}

/// The wait until `next` (at least a second), at most [`MAX_REQUEUE`].
fn requeue_after(next: Option<DateTime<Utc>>, now: DateTime<Utc>) -> std::time::Duration {
    next.and_then(|next| (next - now).to_std().ok())
        .map_or(MAX_REQUEUE, |wait| {
            wait.clamp(std::time::Duration::from_secs(1), MAX_REQUEUE)
        })
}

// ---------------------------------------------------------------------------------------
// Build

/// The snapshot Job of `new.target` (pure): `vctp job snapshot --target NS/NAME --at TICK
/// --max-retries N --retry-interval-seconds S --hourly-max-age-days D --daily-max-age-months
/// M` (the schedule's retry policy and retention) with the target's account (and CA bundle)
/// as env, owned by the schedule (controller) and by the target, labelled with the tick and
/// the target.
pub fn snapshot_job(
    schedule: &SnapshotSchedule,
    target: &VCenterTarget,
    new: &NewSnapshot,
    template: &JobTemplate,
) -> Result<Job, job::Error> {
    let (retry, retention) = (&schedule.spec.retry, &schedule.spec.retention);
    let args = [
        "job",
        "snapshot",
        "--target",
        &format!("{}/{}", target.namespace().unwrap_or_default(), new.target),
        "--at",
        &rfc3339(new.tick),
        "--max-retries",
        &retry.max_retries.to_string(),
        "--retry-interval-seconds",
        &retry.interval_seconds.to_string(),
        "--hourly-max-age-days",
        &retention.hourly_max_age_days.to_string(),
        "--daily-max-age-months",
        &retention.daily_max_age_months.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let mut job = job::build_job(
        schedule,
        &new.job,
        SNAPSHOT,
        args,
        target_env(target),
        template,
    )?;
    let labels = job.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(TICK_LABEL.into(), new.tick.timestamp().to_string());
    labels.insert(TARGET_LABEL.into(), label_value(&new.target));
    // Not a controller reference: it ties the Job to its target for tools and lets the
    // garbage collector delete it once the schedule is gone too. (The collector keeps a
    // dependent while any owner exists, so the controller itself cancels the Jobs of a
    // target that is gone.)
    if let Some(owner) = target.owner_ref(&()) {
        job.metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(owner);
    }
    Ok(job)
}

/// The env of a snapshot Job from its target: the account from its Secret, the CA bundle
/// from its Secret or ConfigMap.
fn target_env(target: &VCenterTarget) -> Vec<EnvVar> {
    let credentials = &target.spec.credentials_secret_ref;
    let mut env = vec![
        job::secret_env(env::VCENTER_USERNAME, &credentials.username()),
        job::secret_env(env::VCENTER_PASSWORD, &credentials.password()),
    ];
    if let Some(tls) = &target.spec.tls {
        if let Some(secret) = &tls.ca_bundle_secret_ref {
            env.push(job::secret_env(env::VCENTER_CA_BUNDLE, secret));
        } else if let Some(config_map) = &tls.ca_bundle_config_map_ref {
            env.push(job::config_map_env(env::VCENTER_CA_BUNDLE, config_map));
        }
    }
    env
}

/// The `AggregationJob` of `new` (pure), owned by the schedule (controller) and labelled as
/// its `aggregation` component. Objects read from the API server always have the uid the
/// owner reference needs.
pub fn aggregation_job(schedule: &SnapshotSchedule, new: &NewAggregation) -> AggregationJob {
    let (period, at, date, month) = match new.run {
        AggregationRun::Hourly(tick) => {
            (AggregationPeriod::Hourly, Some(k8s_time(tick)), None, None)
        }
        AggregationRun::Daily(day) => (
            AggregationPeriod::Daily,
            None,
            Some(day.format("%Y-%m-%d").to_string()),
            None,
        ),
        AggregationRun::Monthly { year, month } => (
            AggregationPeriod::Monthly,
            None,
            None,
            Some(format!("{year:04}-{month:02}")),
        ),
    };
    let mut aggregation = AggregationJob::new(
        &new.name,
        AggregationJobSpec {
            period,
            date,
            month,
            at,
            vcenters: Vec::new(),
            engine: schedule.spec.aggregation.engine,
            report: ReportOptions::default(),
        },
    );
    aggregation.metadata.namespace = schedule.namespace();
    aggregation.metadata.labels = Some(job::labels(&schedule.name_any(), AGGREGATION));
    aggregation.metadata.owner_references = schedule.controller_owner_ref(&()).map(|mut r| {
        r.block_owner_deletion = Some(true);
        vec![r]
    });
    aggregation
}

/// The `VCenterTarget` status fields this controller owns after `finished` (pure): the
/// snapshot time, rows, inventory size and vCenter version of the last success (kept from
/// the target's status on a failure: server-side apply drops owned fields left out) and
/// the `LastSnapshot` condition.
pub fn target_snapshot_status(
    target: &VCenterTarget,
    finished: &Finished,
    now: Time,
) -> serde_json::Value {
    let current = target.status.clone().unwrap_or_default();
    let succeeded = finished.observed.phase == Phase::Succeeded;
    let mut last_time = current.last_snapshot_time;
    let mut rows = current.last_snapshot_rows;
    let mut inventory_size = current.inventory_size;
    let mut version = current.vcenter_version;
    if succeeded {
        let snapshot = finished
            .observed
            .result
            .as_ref()
            .and_then(|r| r.snapshot.as_ref());
        last_time = snapshot
            .and_then(|s| DateTime::from_timestamp(s.snapshot_time, 0))
            .or(finished.tick)
            .map(k8s_time)
            .or(finished.observed.completion_time.clone())
            .or(last_time);
        if let Some(snapshot) = snapshot {
            rows = Some(snapshot.rows);
            inventory_size = Some(snapshot.inventory_size);
            version = snapshot.vcenter_version.clone().or(version);
        }
    }
    let (reason, message) = if succeeded {
        let message = finished.observed.summary().unwrap_or_else(|| match rows {
            Some(rows) => format!("stored {rows} rows"),
            None => "the snapshot is stored".into(),
        });
        ("Succeeded".to_string(), message)
    } else {
        let message = finished
            .observed
            .summary()
            .unwrap_or_else(|| "the snapshot Job failed".into());
        (finished.observed.reason().to_string(), message)
    };
    let last_snapshot = condition(
        &current.conditions,
        CONDITION_LAST_SNAPSHOT,
        succeeded,
        &reason,
        format!("{message} (Job {})", finished.job),
        target.metadata.generation,
        now,
    );
    let mut status = serde_json::Map::new();
    let mut set = |key: &str, value: serde_json::Value| {
        if !value.is_null() {
            status.insert(key.to_string(), value);
        }
    };
    set("lastSnapshotTime", serde_json::json!(last_time));
    set("lastSnapshotRows", serde_json::json!(rows));
    set("inventorySize", serde_json::json!(inventory_size));
    set("vcenterVersion", serde_json::json!(version));
    set("conditions", serde_json::json!([last_snapshot]));
    serde_json::Value::Object(status)
}

// ---------------------------------------------------------------------------------------
// Apply

/// Carries out `plan`: create the Jobs and `AggregationJob`s, report what finished, write
/// the status, then cancel and prune.
async fn apply(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    found: &Found,
    plan: &Plan,
    now: Time,
) -> Result<Action, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let targets: HashMap<&str, &VCenterTarget> = found
        .targets
        .iter()
        .map(|t| (t.meta().name.as_deref().unwrap_or_default(), t))
        .collect();
    for new in &plan.create {
        // The plan only starts selected targets.
        if let Some(target) = targets.get(new.target.as_str()) {
            let job = snapshot_job(schedule, target, new, &ctx.template)?;
            workload::create_job(ctx, &job, CONTROLLER).await?;
        }
    }
    for new in &plan.aggregations {
        workload::create(ctx, &aggregation_job(schedule, new)).await?;
    }
    for finished in &plan.finished {
        report(
            ctx,
            schedule,
            targets.get(finished.target.as_str()).copied(),
            finished,
            &now,
        )
        .await?;
    }
    for notice in &plan.notices {
        ctx.event(
            schedule,
            EventType::Warning,
            notice.reason,
            "Schedule",
            notice.message.clone(),
        )
        .await;
    }
    write_status(ctx, schedule, &plan.status).await?;
    for name in plan.cancel.iter().chain(&plan.delete_jobs) {
        workload::delete::<Job>(ctx, &namespace, name).await?;
    }
    for name in &plan.delete_aggregations {
        workload::delete::<AggregationJob>(ctx, &namespace, name).await?;
    }
    Ok(Action::requeue(plan.requeue_after))
}

/// Writes `status` over the schedule's (see [`super::replace_status`]: the schedule's status
/// has no other writer). Plain structs with string keys: serializing cannot fail.
async fn write_status(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    status: &SnapshotScheduleStatus,
) -> Result<(), Error> {
    let current = serde_json::json!(schedule.status);
    super::replace_status(ctx, schedule, &current, &serde_json::json!(status)).await
}

/// Reports a finished snapshot: an Event on the schedule, the metrics, and the target's
/// snapshot fields (unless the target is gone or no longer selected).
async fn report(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    target: Option<&VCenterTarget>,
    finished: &Finished,
    now: &Time,
) -> Result<(), Error> {
    let observed = &finished.observed;
    let summary = observed.summary();
    if observed.phase == Phase::Succeeded {
        let snapshot = observed.result.as_ref().and_then(|r| r.snapshot.as_ref());
        let snapshot_time = snapshot
            .map(|s| s.snapshot_time)
            .or(finished.tick.map(|t| t.timestamp()))
            .unwrap_or_else(|| now.0.as_second());
        ctx.metrics
            .snapshot_succeeded(&finished.target, snapshot_time, snapshot.map(|s| s.rows));
        let note = format!(
            "{}: {}",
            finished.target,
            summary.unwrap_or_else(|| "snapshot stored".into())
        );
        ctx.event(
            schedule,
            EventType::Normal,
            "SnapshotSucceeded",
            "Snapshot",
            note,
        )
        .await;
    } else {
        ctx.metrics.snapshot_failed(&finished.target);
        let note = format!(
            "{}: {}: {}",
            finished.target,
            observed.reason(),
            summary.unwrap_or_else(|| format!("Job {} failed", finished.job))
        );
        ctx.event(
            schedule,
            EventType::Warning,
            "SnapshotFailed",
            "Snapshot",
            note,
        )
        .await;
    }
    let Some(target) = target else {
        return Ok(());
    };
    let status = target_snapshot_status(target, finished, now.clone());
    match super::apply_status(ctx, target, TARGET_MANAGER, status).await {
        // Deleted since it was listed: nothing left to record on.
        Err(e) if e.reason() == "ApiNotFound" => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::termination::JobResult;

    const UID: &str = "6f1c2a52-0d7e-4b8a-9a51-3c3f1e0b7a10";

    /// The schedule `hourly` in `finance`, created at 09:20 on 2026-03-10, with `spec` (YAML
    /// lines indented by two) added to the spec; the snapshots run hourly unless `spec`
    /// starts with another `schedule`.
    fn schedule(spec: &str) -> SnapshotSchedule {
        let default = if spec.starts_with("  schedule:") {
            ""
        } else {
            "  schedule: \"0 * * * *\"\n"
        };
        serde_yaml::from_str(&format!(
            r#"
apiVersion: vctp.io/v1alpha1
kind: SnapshotSchedule
metadata:
  name: hourly
  namespace: finance
  uid: {UID}
  generation: 3
  creationTimestamp: "2026-03-10T09:20:00Z"
spec:
{default}{spec}
"#
        ))
        .unwrap()
    }

    /// Only the hourly snapshots: no aggregation crons, no hourly reports.
    const SNAPSHOTS_ONLY: &str = "  aggregation:\n    hourlyReports: false\n    daily: {enabled: false}\n    monthly: {enabled: false}\n";

    fn target(name: &str) -> VCenterTarget {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: vctp.io/v1alpha1
kind: VCenterTarget
metadata:
  name: {name}
  namespace: finance
  uid: 0000-{name}
  generation: 1
spec:
  url: https://{name}.example.com/sdk
  credentialsSecretRef: {{name: {name}-account}}
"#
        ))
        .unwrap()
    }

    fn targets(names: &[&str]) -> Vec<VCenterTarget> {
        names.iter().map(|n| target(n)).collect()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn observed(phase: Phase) -> Observed {
        Observed {
            phase,
            start_time: None,
            completion_time: None,
            result: None,
            message: None,
        }
    }

    /// The snapshot Job of `target` at `tick`, in `phase`.
    fn snap(tick: &str, target: &str, phase: Phase) -> SnapshotJob {
        let tick = at(tick);
        SnapshotJob {
            name: snapshot_job_name("hourly", tick, target),
            tick: Some(tick),
            target_label: Some(label_value(target)),
            observed: observed(phase),
        }
    }

    fn plan_at(schedule: &SnapshotSchedule, found: &Found, now: &str) -> Plan {
        let validated = validate(&schedule.spec).unwrap();
        plan(schedule, &validated, found, at(now))
    }

    /// `schedule` as the next reconcile reads it: with the status `plan` wrote.
    fn after(schedule: &SnapshotSchedule, plan: &Plan) -> SnapshotSchedule {
        let mut next = schedule.clone();
        next.status = Some(plan.status.clone());
        next
    }

    fn outcomes(plan: &Plan) -> Vec<(String, TickOutcome)> {
        plan.status
            .last_tick
            .iter()
            .flat_map(|t| &t.targets)
            .map(|t| (t.target.clone(), t.outcome))
            .collect()
    }

    fn created(plan: &Plan) -> Vec<&str> {
        plan.create.iter().map(|c| c.job.as_str()).collect()
    }

    fn ready(plan: &Plan) -> &Condition {
        plan.status
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY)
            .unwrap()
    }

    #[test]
    fn the_first_tick_creates_one_job_per_selected_target() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc02", "vc01", "vc03"]),
            ..Found::default()
        };
        let plan = plan_at(&schedule, &found, "2026-03-10T10:00:07Z");

        assert_eq!(
            created(&plan),
            [
                "hourly-snap-20260310t1000-vc01",
                "hourly-snap-20260310t1000-vc02",
                "hourly-snap-20260310t1000-vc03"
            ]
        );
        assert!(
            plan.create
                .iter()
                .all(|c| c.tick == at("2026-03-10T10:00:00Z"))
        );
        let status = &plan.status;
        assert_eq!(
            status.last_schedule_time,
            Some(k8s_time(at("2026-03-10T10:00:00Z")))
        );
        assert_eq!(
            status.next_schedule_time,
            Some(k8s_time(at("2026-03-10T11:00:00Z")))
        );
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.active.len(), 3);
        assert_eq!(status.active[0].target.as_deref(), Some("vc01"));
        assert!(
            outcomes(&plan)
                .iter()
                .all(|(_, o)| *o == TickOutcome::Running)
        );
        assert_eq!(ready(&plan).reason, "TickRunning");
        assert!(plan.finished.is_empty() && plan.aggregations.is_empty());
        assert_eq!(plan.requeue_after, MAX_REQUEUE);
    }

    #[test]
    fn before_its_first_tick_a_schedule_waits_and_says_so() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01"]),
            ..Found::default()
        };
        let plan = plan_at(&schedule, &found, "2026-03-10T09:58:00Z");
        assert!(plan.create.is_empty());
        assert_eq!(plan.status.last_tick, None);
        assert_eq!(plan.status.last_schedule_time, None);
        assert_eq!(ready(&plan).reason, "NoTickYet");
        assert_eq!(plan.requeue_after, std::time::Duration::from_secs(120));
    }

    #[test]
    fn concurrency_leaves_the_rest_pending_and_starts_them_as_slots_free() {
        let schedule = schedule(&format!("  concurrency: 2\n{SNAPSHOTS_ONLY}"));
        let found = Found {
            targets: targets(&["vc01", "vc02", "vc03"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        assert_eq!(
            created(&first),
            [
                "hourly-snap-20260310t1000-vc01",
                "hourly-snap-20260310t1000-vc02"
            ]
        );
        assert_eq!(
            outcomes(&first),
            [
                ("vc01".into(), TickOutcome::Running),
                ("vc02".into(), TickOutcome::Running),
                ("vc03".into(), TickOutcome::Pending)
            ]
        );

        // Both still running: no slot.
        let schedule = after(&schedule, &first);
        let running = Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Running),
                snap("2026-03-10T10:00:00Z", "vc02", Phase::Pending),
            ],
            ..found.clone()
        };
        let second = plan_at(&schedule, &running, "2026-03-10T10:01:00Z");
        assert!(second.create.is_empty());
        assert_eq!(outcomes(&second)[2].1, TickOutcome::Pending);

        // vc01 finished: vc03 takes its slot, and vc01 is reported.
        let schedule = after(&schedule, &second);
        let one_done = Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T10:00:00Z", "vc02", Phase::Running),
            ],
            ..found.clone()
        };
        let third = plan_at(&schedule, &one_done, "2026-03-10T10:04:00Z");
        assert_eq!(created(&third), ["hourly-snap-20260310t1000-vc03"]);
        assert_eq!(
            outcomes(&third),
            [
                ("vc01".into(), TickOutcome::Succeeded),
                ("vc02".into(), TickOutcome::Running),
                ("vc03".into(), TickOutcome::Running)
            ]
        );
        let finished: Vec<&str> = third.finished.iter().map(|f| f.target.as_str()).collect();
        assert_eq!(finished, ["vc01"]);
        let active: Vec<&str> = third
            .status
            .active
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            active,
            [
                "hourly-snap-20260310t1000-vc02",
                "hourly-snap-20260310t1000-vc03"
            ]
        );
    }

    #[test]
    fn replanning_a_tick_after_a_restart_gives_the_same_jobs_and_creates_none() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        assert_eq!(first.create.len(), 2);
        let with_jobs = Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Pending),
                snap("2026-03-10T10:00:00Z", "vc02", Phase::Running),
            ],
            ..found.clone()
        };

        // The status was written before the restart.
        let replanned = plan_at(
            &after(&schedule, &first),
            &with_jobs,
            "2026-03-10T10:00:30Z",
        );
        assert!(replanned.create.is_empty());
        assert_eq!(replanned.status.last_tick, first.status.last_tick);
        assert_eq!(replanned.status.active, first.status.active);

        // The operator stopped after creating the Jobs, before writing the status: the same
        // tick is planned again, finds its Jobs by name and creates nothing.
        let lost = plan_at(&schedule, &with_jobs, "2026-03-10T10:00:30Z");
        assert!(lost.create.is_empty(), "{:?}", lost.create);
        assert_eq!(lost.status.last_tick, first.status.last_tick);
        assert_eq!(
            lost.status.last_schedule_time,
            first.status.last_schedule_time
        );
    }

    #[test]
    fn a_suspended_schedule_skips_its_targets_and_creates_no_jobs() {
        let schedule = schedule(&format!("  suspend: true\n{SNAPSHOTS_ONLY}"));
        let found = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        let plan = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        assert!(plan.create.is_empty());
        let tick = plan.status.last_tick.clone().unwrap();
        assert!(
            tick.targets
                .iter()
                .all(|t| t.outcome == TickOutcome::Skipped
                    && t.job.is_none()
                    && t.message.as_deref() == Some("skipped: the schedule is suspended"))
        );
        assert_eq!(
            plan.status.last_schedule_time,
            Some(k8s_time(at("2026-03-10T10:00:00Z")))
        );
        let ready = ready(&plan);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Suspended")
        );
        assert!(plan.notices.is_empty(), "{:?}", plan.notices);
    }

    #[test]
    fn missed_ticks_run_the_latest_once_with_run_once_and_none_with_skip() {
        let status = "lastScheduleTime: \"2026-03-10T03:00:00Z\"";
        let found = Found {
            targets: targets(&["vc01"]),
            ..Found::default()
        };
        let make = |policy: &str| {
            let mut s = schedule(&format!(
                "  startingDeadlineSeconds: 600\n  missedTickPolicy: {policy}\n{SNAPSHOTS_ONLY}"
            ));
            s.status = Some(serde_yaml::from_str(status).unwrap());
            s
        };

        let once = plan_at(&make("RunOnce"), &found, "2026-03-10T09:30:00Z");
        assert_eq!(created(&once), ["hourly-snap-20260310t0900-vc01"]);
        assert_eq!(once.notices.len(), 1);
        assert_eq!(once.notices[0].reason, "TicksMissed");
        assert_eq!(
            once.notices[0].message,
            "5 missed tick(s) before 2026-03-10T09:00:00Z were not run; that tick runs"
        );

        let skip = plan_at(&make("Skip"), &found, "2026-03-10T09:30:00Z");
        assert!(skip.create.is_empty());
        assert_eq!(
            skip.status.last_schedule_time,
            Some(k8s_time(at("2026-03-10T09:00:00Z")))
        );
        let tick = skip.status.last_tick.clone().unwrap();
        assert_eq!(tick.targets[0].outcome, TickOutcome::Skipped);
        assert_eq!(
            tick.targets[0].message.as_deref(),
            Some("skipped: the tick was 1800 s old, past startingDeadlineSeconds")
        );
        assert_eq!(ready(&skip).reason, "TickSkipped");
        assert_eq!(
            skip.notices[0].message,
            "6 missed tick(s) up to 2026-03-10T09:00:00Z were not run (missedTickPolicy Skip)"
        );
    }

    #[test]
    fn an_hourly_aggregation_job_follows_once_every_target_finished_and_only_once() {
        let schedule = schedule(
            "  aggregation:\n    daily: {enabled: false}\n    monthly: {enabled: false}\n",
        );
        let found = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let schedule = after(&schedule, &first);

        let half = Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T10:00:00Z", "vc02", Phase::Running),
            ],
            ..found.clone()
        };
        let waiting = plan_at(&schedule, &half, "2026-03-10T10:03:00Z");
        assert!(waiting.aggregations.is_empty());

        let done = Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T10:00:00Z", "vc02", Phase::Failed),
            ],
            ..found.clone()
        };
        let plan = plan_at(&after(&schedule, &waiting), &done, "2026-03-10T10:06:00Z");
        assert_eq!(
            plan.aggregations,
            [NewAggregation {
                name: "hourly-hourly-20260310t1000".into(),
                run: AggregationRun::Hourly(at("2026-03-10T10:00:00Z")),
            }]
        );
        assert_eq!(
            plan.status
                .last_tick
                .as_ref()
                .unwrap()
                .aggregation_job
                .as_deref(),
            Some("hourly-hourly-20260310t1000")
        );
        // Recorded in the status: never created again, even once the history limit has
        // deleted it.
        let again = plan_at(&after(&schedule, &plan), &done, "2026-03-10T10:07:00Z");
        assert!(again.aggregations.is_empty());
    }

    #[test]
    fn a_tick_whose_snapshots_all_failed_gets_no_hourly_report() {
        let schedule = schedule(
            "  aggregation:\n    daily: {enabled: false}\n    monthly: {enabled: false}\n",
        );
        let found = Found {
            targets: targets(&["vc01"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let failed = Found {
            jobs: vec![snap("2026-03-10T10:00:00Z", "vc01", Phase::Failed)],
            ..found
        };
        let plan = plan_at(&after(&schedule, &first), &failed, "2026-03-10T10:06:00Z");
        assert!(plan.aggregations.is_empty());
    }

    #[test]
    fn the_daily_cron_aggregates_the_utc_day_before_its_tick_in_a_non_utc_zone() {
        // 00:30 in Berlin (winter) is 23:30 UTC the day before: the last complete UTC day
        // before the tick of 2026-01-10T23:30Z is 2026-01-09.
        let mut schedule = schedule(
            "  timeZone: Europe/Berlin\n  aggregation:\n    hourlyReports: false\n    daily: {schedule: \"30 0 * * *\"}\n    monthly: {enabled: false}\n",
        );
        schedule.status = Some(SnapshotScheduleStatus {
            last_schedule_time: Some(k8s_time(at("2026-01-10T23:00:00Z"))),
            last_daily_aggregation_time: Some(k8s_time(at("2026-01-09T23:30:00Z"))),
            ..SnapshotScheduleStatus::default()
        });
        let plan = plan_at(&schedule, &Found::default(), "2026-01-10T23:31:00Z");
        assert_eq!(
            plan.aggregations,
            [NewAggregation {
                name: "hourly-daily-2026-01-09".into(),
                run: AggregationRun::Daily(NaiveDate::from_ymd_opt(2026, 1, 9).unwrap()),
            }]
        );
        assert_eq!(
            plan.status.last_daily_aggregation_time,
            Some(k8s_time(at("2026-01-10T23:30:00Z")))
        );
        // Three minutes before a daily tick, the next reconcile is at that tick.
        let before = plan_at(&schedule, &Found::default(), "2026-01-10T23:27:00Z");
        assert!(before.aggregations.is_empty());
        assert_eq!(before.requeue_after, std::time::Duration::from_secs(180));

        // Handled: the next reconcile creates nothing more.
        let again = plan_at(
            &after(&schedule, &plan),
            &Found::default(),
            "2026-01-10T23:40:00Z",
        );
        assert!(again.aggregations.is_empty());
        assert_eq!(
            again.status.last_daily_aggregation_time,
            plan.status.last_daily_aggregation_time
        );
    }

    #[test]
    fn the_monthly_cron_aggregates_the_last_complete_utc_month() {
        let monthly = "  timeZone: Europe/Berlin\n  aggregation:\n    hourlyReports: false\n    daily: {enabled: false}\n";
        let plan_for = |last: &str, now: &str| {
            let mut schedule = schedule(monthly);
            schedule.status = Some(SnapshotScheduleStatus {
                last_monthly_aggregation_time: Some(k8s_time(at(last))),
                ..SnapshotScheduleStatus::default()
            });
            plan_at(&schedule, &Found::default(), now).aggregations
        };
        // 1 February 01:00 in Berlin is 00:00 UTC: January is complete.
        assert_eq!(
            plan_for("2026-01-01T00:00:00Z", "2026-02-01T00:00:30Z"),
            [NewAggregation {
                name: "hourly-monthly-2026-01".into(),
                run: AggregationRun::Monthly {
                    year: 2026,
                    month: 1
                },
            }]
        );
        // 1 August 01:00 in Berlin (summer) is 23:00 UTC on 31 July: July is not complete
        // in UTC yet, June is the last complete month.
        assert_eq!(
            plan_for("2026-06-30T23:00:00Z", "2026-07-31T23:00:30Z")[0].name,
            "hourly-monthly-2026-06"
        );
        // January's tick aggregates December of the year before.
        assert_eq!(
            plan_for("2026-11-30T23:00:00Z", "2027-01-01T00:00:30Z")[0].name,
            "hourly-monthly-2026-12"
        );
    }

    #[test]
    fn history_limits_delete_the_oldest_finished_jobs_and_hourly_aggregations() {
        let mut schedule = schedule(&format!(
            "  successfulJobsHistoryLimit: 2\n  failedJobsHistoryLimit: 1\n{SNAPSHOTS_ONLY}"
        ));
        schedule.status = Some(SnapshotScheduleStatus {
            last_schedule_time: Some(k8s_time(at("2026-03-10T14:00:00Z"))),
            ..SnapshotScheduleStatus::default()
        });
        let hourly = |hour: u32, phase: &str| -> AggregationJob {
            serde_yaml::from_str(&format!(
                r#"
apiVersion: vctp.io/v1alpha1
kind: AggregationJob
metadata: {{name: "hourly-hourly-20260310t{hour:02}00", namespace: finance}}
spec: {{period: Hourly, at: "2026-03-10T{hour:02}:00:00Z"}}
status: {{phase: {phase}}}
"#
            ))
            .unwrap()
        };
        let found = Found {
            targets: targets(&["vc01"]),
            jobs: vec![
                snap("2026-03-10T12:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T13:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T11:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T09:00:00Z", "vc01", Phase::Failed),
                snap("2026-03-10T11:00:00Z", "vc02", Phase::Failed),
                snap("2026-03-10T14:00:00Z", "vc01", Phase::Running),
            ],
            aggregations: vec![
                hourly(10, "Succeeded"),
                hourly(11, "Succeeded"),
                hourly(12, "Succeeded"),
                hourly(13, "Running"),
                hourly(9, "Failed"),
            ],
        };
        let plan = plan_at(&schedule, &found, "2026-03-10T14:05:00Z");
        assert_eq!(
            plan.delete_jobs,
            [
                "hourly-snap-20260310t0900-vc01",
                "hourly-snap-20260310t1000-vc01",
                "hourly-snap-20260310t1100-vc01"
            ]
        );
        assert_eq!(plan.delete_aggregations, ["hourly-hourly-20260310t1000"]);
    }

    #[test]
    fn ready_follows_the_outcomes_of_the_last_finished_tick() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let schedule = after(&schedule, &first);
        let finish = |vc02: Phase| Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T10:00:00Z", "vc02", vc02),
            ],
            ..found.clone()
        };

        let all = plan_at(&schedule, &finish(Phase::Succeeded), "2026-03-10T10:05:00Z");
        let condition = ready(&all);
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "Succeeded")
        );
        assert_eq!(condition.observed_generation, Some(3));
        assert_eq!(
            all.status.last_successful_time,
            Some(k8s_time(at("2026-03-10T10:00:00Z")))
        );

        let mut failed_job = snap("2026-03-10T10:00:00Z", "vc02", Phase::Failed);
        failed_job.observed.result = JobResult::from_message(
            r#"{"succeeded":false,"reason":"InvalidLogin","message":"wrong user name or password"}"#,
        );
        let mut failing = finish(Phase::Failed);
        failing.jobs[1] = failed_job;
        let one_failed = plan_at(&schedule, &failing, "2026-03-10T10:05:00Z");
        let condition = ready(&one_failed);
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "SnapshotFailed")
        );
        assert_eq!(
            condition.message,
            "1 of 2 snapshots failed at 2026-03-10T10:00:00Z: vc02 (InvalidLogin: wrong user name or password)"
        );
        assert_eq!(one_failed.status.last_successful_time, None);

        // While the next tick runs, the last finished tick's verdict holds.
        let schedule = after(&schedule, &one_failed);
        let next = plan_at(&schedule, &failing, "2026-03-10T11:00:05Z");
        assert_eq!(next.create.len(), 2);
        assert_eq!(ready(&next), ready(&one_failed));

        // No target selected.
        let none = plan_at(&schedule, &Found::default(), "2026-03-10T11:00:05Z");
        assert_eq!(ready(&none).reason, "NoTargets");
    }

    #[test]
    fn a_finished_job_is_reported_once_with_its_target_and_result() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let schedule = after(&schedule, &first);
        let mut job = snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded);
        job.observed.result = JobResult::from_message(
            r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1773136800,"rows":412,"inventorySize":415}}"#,
        );
        let done = Found {
            jobs: vec![job.clone()],
            ..found
        };
        let plan = plan_at(&schedule, &done, "2026-03-10T10:03:00Z");
        assert_eq!(
            plan.finished,
            [Finished {
                target: "vc01".into(),
                job: job.name.clone(),
                tick: Some(at("2026-03-10T10:00:00Z")),
                observed: job.observed.clone(),
            }]
        );
        assert!(plan.status.active.is_empty());
        assert_eq!(
            plan.status.last_tick.as_ref().unwrap().targets[0]
                .message
                .as_deref(),
            Some("stored 412 rows")
        );
        let again = plan_at(&after(&schedule, &plan), &done, "2026-03-10T10:04:00Z");
        assert!(again.finished.is_empty());
    }

    #[test]
    fn jobs_of_a_previous_tick_are_still_reported_after_the_next_tick_started() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let long_running = Found {
            jobs: vec![snap("2026-03-10T10:00:00Z", "vc01", Phase::Running)],
            ..found.clone()
        };
        let next_tick = plan_at(
            &after(&schedule, &first),
            &long_running,
            "2026-03-10T11:00:05Z",
        );
        assert_eq!(created(&next_tick), ["hourly-snap-20260310t1100-vc01"]);
        assert_eq!(next_tick.status.active.len(), 2);

        let old_done = Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Failed),
                snap("2026-03-10T11:00:00Z", "vc01", Phase::Running),
            ],
            ..found
        };
        let plan = plan_at(
            &after(&schedule, &next_tick),
            &old_done,
            "2026-03-10T11:10:00Z",
        );
        let finished: Vec<&str> = plan.finished.iter().map(|f| f.job.as_str()).collect();
        assert_eq!(finished, ["hourly-snap-20260310t1000-vc01"]);
    }

    #[test]
    fn targets_still_waiting_when_the_next_tick_comes_are_reported() {
        let schedule = schedule(&format!("  concurrency: 1\n{SNAPSHOTS_ONLY}"));
        let found = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let stuck = Found {
            jobs: vec![snap("2026-03-10T10:00:00Z", "vc01", Phase::Running)],
            ..found
        };
        let next = plan_at(&after(&schedule, &first), &stuck, "2026-03-10T11:00:05Z");
        assert_eq!(next.notices.len(), 1);
        assert_eq!(next.notices[0].reason, "SnapshotsNotStarted");
        assert!(
            next.notices[0]
                .message
                .contains("no snapshot of vc02 at 2026-03-10T10:00:00Z")
        );
        // vc01's Job of 10:00 still holds the one slot.
        assert!(next.create.is_empty());
    }

    #[test]
    fn the_unfinished_job_of_a_target_that_is_gone_is_cancelled() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let both = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &both, "2026-03-10T10:00:05Z");
        let vc02_gone = Found {
            targets: targets(&["vc01"]),
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Running),
                snap("2026-03-10T10:00:00Z", "vc02", Phase::Running),
            ],
            ..Found::default()
        };
        let plan = plan_at(
            &after(&schedule, &first),
            &vc02_gone,
            "2026-03-10T10:01:00Z",
        );
        assert_eq!(plan.cancel, ["hourly-snap-20260310t1000-vc02"]);
        assert_eq!(
            outcomes(&plan),
            [
                ("vc01".into(), TickOutcome::Running),
                ("vc02".into(), TickOutcome::Skipped)
            ]
        );
        assert_eq!(plan.status.active.len(), 1);
    }

    #[test]
    fn a_running_target_whose_job_vanished_failed() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01"]),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        let plan = plan_at(&after(&schedule, &first), &found, "2026-03-10T10:30:00Z");
        assert!(
            plan.create.is_empty(),
            "a Job once created is never created again"
        );
        let entry = &plan.status.last_tick.as_ref().unwrap().targets[0];
        assert_eq!(entry.outcome, TickOutcome::Failed);
        assert_eq!(
            entry.message.as_deref(),
            Some("its Job was deleted before it finished")
        );
    }

    #[test]
    fn target_selectors_become_label_selector_strings() {
        let selector: LabelSelector = serde_yaml::from_str(
            r#"
matchLabels: {site: zurich, tier: prod}
matchExpressions:
  - {key: env, operator: In, values: [prod, staging]}
  - {key: legacy, operator: NotIn, values: ["true"]}
  - {key: owner, operator: Exists}
  - {key: retired, operator: DoesNotExist}
"#,
        )
        .unwrap();
        assert_eq!(
            selector_string(Some(&selector)).unwrap(),
            "site=zurich,tier=prod,env in (prod,staging),legacy notin (true),owner,!retired"
        );
        assert_eq!(selector_string(None).unwrap(), "");
        assert_eq!(
            selector_string(Some(&LabelSelector::default())).unwrap(),
            ""
        );

        for (expression, expected) in [
            (
                "{key: env, operator: In, values: []}",
                "operator In of key \"env\" needs at least one value",
            ),
            (
                "{key: env, operator: NotIn}",
                "operator NotIn of key \"env\" needs at least one value",
            ),
            (
                "{key: env, operator: Exists, values: [x]}",
                "operator Exists of key \"env\" takes no values",
            ),
            (
                "{key: env, operator: Equals, values: [x]}",
                "unknown operator \"Equals\" of key \"env\"",
            ),
        ] {
            let selector: LabelSelector =
                serde_yaml::from_str(&format!("matchExpressions: [{expression}]")).unwrap();
            let err = selector_string(Some(&selector)).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn invalid_crons_time_zones_and_selectors_are_named_in_the_error() {
        let cases = [
            (
                "  schedule: \"0 * * *\"\n",
                "InvalidSchedule",
                "schedule: invalid schedule",
            ),
            (
                "  timeZone: Mars/Olympus\n",
                "InvalidTimeZone",
                "schedule: unknown time zone",
            ),
            (
                "  aggregation:\n    daily: {schedule: \"99 0 * * *\"}\n",
                "InvalidSchedule",
                "aggregation.daily.schedule:",
            ),
            (
                "  aggregation:\n    monthly: {schedule: \"0 1 1 * * *\"}\n",
                "InvalidSchedule",
                "aggregation.monthly.schedule:",
            ),
            (
                "  targetSelector:\n    matchExpressions: [{key: a, operator: Has}]\n",
                "InvalidTargetSelector",
                "targetSelector: unknown operator",
            ),
        ];
        for (spec, reason, message) in cases {
            let schedule = schedule(spec);
            let invalid = validate(&schedule.spec).unwrap_err();
            assert_eq!(invalid.reason, reason, "{spec}");
            assert!(invalid.message.starts_with(message), "{}", invalid.message);
            let error = invalid.into_error(&schedule);
            assert_eq!(error.reason(), reason);
            assert!(error.waits_for_change());
            assert!(
                error
                    .to_string()
                    .starts_with("SnapshotSchedule finance/hourly is invalid: ")
            );
        }
        // A disabled cron is not looked at.
        let disabled =
            schedule("  aggregation:\n    daily: {enabled: false, schedule: \"nonsense\"}\n");
        assert!(validate(&disabled.spec).is_ok());
    }

    #[test]
    fn an_invalid_spec_sets_ready_false_and_keeps_the_rest_of_the_status() {
        let mut schedule = schedule("");
        schedule.status = Some(SnapshotScheduleStatus {
            last_schedule_time: Some(k8s_time(at("2026-03-10T10:00:00Z"))),
            last_daily_aggregation_time: Some(k8s_time(at("2026-03-10T00:30:00Z"))),
            ..SnapshotScheduleStatus::default()
        });
        let invalid = Invalid {
            reason: "InvalidSchedule",
            message: "schedule: bad".into(),
        }
        .into_error(&schedule);
        let now = k8s_time(at("2026-03-10T10:10:00Z"));
        let status = invalid_status(&schedule, &invalid, now);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].reason, "InvalidSchedule");
        assert_eq!(status.conditions[0].status, "False");
        assert_eq!(
            status.last_schedule_time,
            schedule.status.as_ref().unwrap().last_schedule_time
        );
        assert!(status.last_daily_aggregation_time.is_some());
    }

    #[test]
    fn the_snapshot_job_runs_the_snapshot_of_its_target_at_its_tick() {
        let schedule = schedule("  retry: {intervalSeconds: 120, maxRetries: 5}\n");
        let mut target: VCenterTarget = target("vc01");
        target.spec.tls =
            Some(serde_yaml::from_str("caBundleConfigMapRef: {name: vc-ca, key: ca.crt}").unwrap());
        let new = NewSnapshot {
            target: "vc01".into(),
            job: snapshot_job_name("hourly", at("2026-03-10T10:00:00Z"), "vc01"),
            tick: at("2026-03-10T10:00:00Z"),
        };
        let template = JobTemplate::restricted(&job::Defaults {
            image: "vctp:test".into(),
            image_pull_policy: None,
            service_account: "vctp-job".into(),
            database_url_secret: crate::crd::SecretKeyRef {
                name: "db".into(),
                key: "url".into(),
            },
            reports_url: "file:///tmp/reports".into(),
            backoff_limit: 0,
            ttl_seconds_after_finished: 86_400,
        });
        let built = snapshot_job(&schedule, &target, &new, &template).unwrap();
        let json = serde_json::to_value(&built).unwrap();
        let expected: serde_json::Value = serde_yaml::from_str(&format!(
            r#"
name: hourly-snap-20260310t1000-vc01
namespace: finance
labels:
  app.kubernetes.io/name: vctp
  app.kubernetes.io/instance: hourly
  app.kubernetes.io/component: snapshot
  app.kubernetes.io/managed-by: vctp-operator
  app.kubernetes.io/part-of: vctp
  vctp.io/tick: "1773136800"
  vctp.io/target: vc01
ownerReferences:
  - {{apiVersion: vctp.io/v1alpha1, kind: SnapshotSchedule, name: hourly, uid: {UID}, controller: true, blockOwnerDeletion: true}}
  - {{apiVersion: vctp.io/v1alpha1, kind: VCenterTarget, name: vc01, uid: 0000-vc01}}
"#
        ))
        .unwrap();
        assert_eq!(json["metadata"], expected);
        let container = &json["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            serde_json::json!([
                "job",
                "snapshot",
                "--target",
                "finance/vc01",
                "--at",
                "2026-03-10T10:00:00Z",
                "--max-retries",
                "5",
                "--retry-interval-seconds",
                "120",
                "--hourly-max-age-days",
                "60",
                "--daily-max-age-months",
                "12"
            ])
        );
        let env: Vec<&serde_json::Value> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"].as_str().unwrap().starts_with("VCTP_VCENTER_"))
            .collect();
        assert_eq!(
            env,
            [
                &serde_json::json!({"name": "VCTP_VCENTER_USERNAME", "valueFrom": {"secretKeyRef": {"name": "vc01-account", "key": "username", "optional": false}}}),
                &serde_json::json!({"name": "VCTP_VCENTER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "vc01-account", "key": "password", "optional": false}}}),
                &serde_json::json!({"name": "VCTP_VCENTER_CA_BUNDLE", "valueFrom": {"configMapKeyRef": {"name": "vc-ca", "key": "ca.crt", "optional": false}}}),
            ]
        );

        // Read back, the Job is recognised as the target's Job of that tick.
        let seen = SnapshotJob::new(&built, &[]);
        assert_eq!(seen.tick, Some(new.tick));
        assert_eq!(seen.target_label.as_deref(), Some("vc01"));
        assert_eq!(seen.observed.phase, Phase::Pending);
    }

    #[test]
    fn job_names_are_deterministic_and_fit_for_long_target_names() {
        let tick = at("2026-03-10T10:00:00Z");
        let long = format!("vcenter-{}.example.com", "x".repeat(80));
        let name = snapshot_job_name("hourly", tick, &long);
        assert_eq!(name, snapshot_job_name("hourly", tick, &long));
        assert!(
            name.len() <= job::MAX_NAME_LEN
                && name.starts_with("hourly-snap-20260310t1000-vcenter-")
        );
        assert_ne!(
            name,
            snapshot_job_name("hourly", tick + Duration::hours(1), &long)
        );
        let label = label_value(&long);
        assert!(label.len() <= 63);
        assert_eq!(label, label_value(&long));
    }

    #[test]
    fn aggregation_jobs_are_owned_labelled_and_valid() {
        let schedule = schedule("  aggregation: {engine: sql}\n");
        for run in [
            AggregationRun::Hourly(at("2026-03-10T10:00:00Z")),
            AggregationRun::Daily(NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()),
            AggregationRun::Monthly {
                year: 2026,
                month: 2,
            },
        ] {
            let new = new_aggregation("hourly", run);
            let made = aggregation_job(&schedule, &new);
            made.validate_cel().unwrap();
            assert_eq!(made.metadata.namespace.as_deref(), Some("finance"));
            assert_eq!(made.labels()["app.kubernetes.io/component"], "aggregation");
            assert_eq!(made.labels()["app.kubernetes.io/instance"], "hourly");
            assert!(controlled_by(&made.metadata, &schedule));
            assert_eq!(made.spec.engine, crate::crd::Engine::Sql);
            assert!(made.spec.vcenters.is_empty());
        }
        let daily = aggregation_job(
            &schedule,
            &new_aggregation(
                "hourly",
                AggregationRun::Daily(NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()),
            ),
        );
        assert_eq!(daily.name_any(), "hourly-daily-2026-03-09");
        assert_eq!(daily.spec.date.as_deref(), Some("2026-03-09"));
        let monthly = aggregation_job(
            &schedule,
            &new_aggregation(
                "hourly",
                AggregationRun::Monthly {
                    year: 2026,
                    month: 2,
                },
            ),
        );
        assert_eq!(monthly.spec.month.as_deref(), Some("2026-02"));
    }

    #[test]
    fn a_success_writes_the_targets_snapshot_fields_and_a_failure_keeps_them() {
        let mut target = target("vc01");
        target.status = Some(serde_yaml::from_str(
            r#"
lastSnapshotTime: "2026-03-10T09:00:00Z"
lastSnapshotRows: 400
inventorySize: 402
vcenterVersion: 8.0.2 build-22617221
lastError: owned by the VCenterTarget controller
conditions:
  - {type: Reachable, status: "True", reason: LoggedIn, message: ok, lastTransitionTime: "2026-03-10T08:00:00Z"}
"#,
        )
        .unwrap());
        let now = k8s_time(at("2026-03-10T10:03:00Z"));
        let mut succeeded = Finished {
            target: "vc01".into(),
            job: "hourly-snap-20260310t1000-vc01".into(),
            tick: Some(at("2026-03-10T10:00:00Z")),
            observed: observed(Phase::Succeeded),
        };
        succeeded.observed.result = JobResult::from_message(
            r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1773136805,"rows":412,"inventorySize":415,"vcenterVersion":"8.0.3 build-24022515"}}"#,
        );
        let status = target_snapshot_status(&target, &succeeded, now.clone());
        assert_eq!(status["lastSnapshotTime"], "2026-03-10T10:00:05Z");
        assert_eq!(status["lastSnapshotRows"], 412);
        assert_eq!(status["inventorySize"], 415);
        assert_eq!(status["vcenterVersion"], "8.0.3 build-24022515");
        let conditions = status["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1, "only LastSnapshot is ours");
        assert_eq!(conditions[0]["type"], "LastSnapshot");
        assert_eq!(conditions[0]["status"], "True");
        assert_eq!(
            conditions[0]["message"],
            "stored 412 rows (Job hourly-snap-20260310t1000-vc01)"
        );
        assert!(status.get("lastError").is_none() && status.get("lastCheckTime").is_none());

        let mut failed = succeeded.clone();
        failed.observed = observed(Phase::Failed);
        failed.observed.result = JobResult::from_message(
            r#"{"succeeded":false,"reason":"InvalidLogin","message":"wrong user name or password"}"#,
        );
        let status = target_snapshot_status(&target, &failed, now);
        assert_eq!(status["lastSnapshotTime"], "2026-03-10T09:00:00Z");
        assert_eq!(status["lastSnapshotRows"], 400);
        assert_eq!(status["inventorySize"], 402);
        assert_eq!(status["vcenterVersion"], "8.0.2 build-22617221");
        assert_eq!(status["conditions"][0]["status"], "False");
        assert_eq!(status["conditions"][0]["reason"], "InvalidLogin");

        // A first failure owns nothing but the condition.
        let status = target_snapshot_status(
            &self::target("vc02"),
            &failed,
            k8s_time(at("2026-03-10T10:03:00Z")),
        );
        let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["conditions"]);
    }

    #[test]
    fn the_next_reconcile_is_at_the_earliest_cron_tick_and_within_five_minutes() {
        let now = at("2026-03-10T10:00:00Z");
        assert_eq!(
            requeue_after(Some(at("2026-03-10T10:02:00Z")), now),
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            requeue_after(Some(at("2026-03-10T11:00:00Z")), now),
            MAX_REQUEUE
        );
        assert_eq!(
            requeue_after(Some(at("2026-03-10T09:59:00Z")), now),
            MAX_REQUEUE,
            "a tick in the past is not waited for"
        );
        assert_eq!(
            requeue_after(Some(at("2026-03-10T10:00:00.2Z")), now),
            std::time::Duration::from_secs(1)
        );
        assert_eq!(requeue_after(None, now), MAX_REQUEUE);
    }

    /// Scenarios: the real reconcile against a scripted API server (`scenario`), one
    /// behaviour per test, each within a second.
    mod scenarios {
        use super::super::super::scenario::{self, Handle, expect};
        use super::super::{Action, Context, Error, SnapshotSchedule, reconcile};
        use chrono::Datelike;
        use serde_json::{Value, json};
        use std::sync::{Arc, Mutex};

        const SCHEDULE: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/snapshotschedules/yearly";
        const STATUS: &str =
            "/apis/vctp.io/v1alpha1/namespaces/finance/snapshotschedules/yearly/status";
        const TARGETS: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/vcentertargets";
        const JOBS: &str = "/apis/batch/v1/namespaces/finance/jobs";
        const PODS: &str = "/api/v1/namespaces/finance/pods";
        const AGGREGATIONS: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/aggregationjobs";
        const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/finance/events";

        fn year() -> i32 {
            chrono::Utc::now().year()
        }

        /// This year's tick as Job names have it.
        fn stamp() -> String {
            format!("{}0101t0000", year())
        }

        /// A schedule ticking on 1 January at 00:00 UTC, created the day before this year's
        /// tick: whatever the clock says, exactly one tick is due (this year's) and the next
        /// is a year away. Snapshots only.
        fn schedule(status: Value) -> Value {
            json!({
                "apiVersion": "vctp.io/v1alpha1", "kind": "SnapshotSchedule",
                "metadata": {
                    "name": "yearly", "namespace": "finance", "generation": 1,
                    "uid": "3b0c3f4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                    "creationTimestamp": format!("{}-12-31T00:00:00Z", year() - 1),
                },
                "spec": {
                    "schedule": "0 0 1 1 *",
                    "aggregation": {"hourlyReports": false, "daily": {"enabled": false}, "monthly": {"enabled": false}},
                },
                "status": status,
            })
        }

        fn target(name: &str) -> Value {
            json!({
                "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
                "metadata": {"name": name, "namespace": "finance", "uid": format!("uid-{name}"), "generation": 1},
                "spec": {"url": format!("https://{name}.example.com/sdk"), "credentialsSecretRef": {"name": format!("{name}-account")}},
            })
        }

        fn list(items: Vec<Value>) -> Value {
            json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})
        }

        async fn reconcile_json(schedule: Value, ctx: Arc<Context>) -> Result<Action, Error> {
            let schedule: SnapshotSchedule = serde_json::from_value(schedule).unwrap();
            reconcile(Arc::new(schedule), ctx).await
        }

        /// The reads every reconcile makes: the schedule itself, the targets, the Jobs and
        /// their Pods, the AggregationJobs.
        async fn reads(api: &mut Handle, schedule: &Value, jobs: Vec<Value>, pods: Vec<Value>) {
            expect(api, "GET", SCHEDULE, 200, schedule.clone()).await;
            let targets = list(vec![target("vc01"), target("vc02")]);
            expect(api, "GET", TARGETS, 200, targets).await;
            expect(api, "GET", JOBS, 200, list(jobs)).await;
            expect(api, "GET", PODS, 200, list(pods)).await;
            expect(api, "GET", AGGREGATIONS, 200, list(vec![])).await;
        }

        /// `job` as the API server has it once its Pod started.
        fn running(mut job: Value) -> Value {
            job["status"] = json!({"active": 1});
            job
        }

        #[tokio::test]
        async fn a_ticks_jobs_are_created_once_and_a_reconcile_after_a_restart_creates_none() {
            // The first reconcile creates one Job per target, then writes the tick.
            let (ctx, mut api) = scenario::context();
            let fresh = schedule(Value::Null);
            let seen = Arc::new(Mutex::new((Value::Null, Vec::new())));
            let (script_schedule, written) = (fresh.clone(), seen.clone());
            let result = scenario::run(reconcile_json(fresh.clone(), ctx.clone()), async move {
                reads(&mut api, &script_schedule, vec![], vec![]).await;
                let mut jobs = Vec::new();
                for target in ["vc01", "vc02"] {
                    let path = format!("{JOBS}/yearly-snap-{}-{target}", stamp());
                    jobs.push(expect(&mut api, "PATCH", &path, 200, Value::Null).await);
                }
                let status = expect(&mut api, "PATCH", STATUS, 200, script_schedule).await;
                *written.lock().unwrap() = (status["status"].clone(), jobs);
            })
            .await;
            assert!(result.is_ok(), "{result:?}");
            let (status, jobs) = seen.lock().unwrap().clone();
            assert_eq!(
                status["lastScheduleTime"],
                format!("{}-01-01T00:00:00Z", year())
            );
            assert_eq!(
                status["nextScheduleTime"],
                format!("{}-01-01T00:00:00Z", year() + 1)
            );
            assert_eq!(
                status["active"],
                json!([
                    {"name": format!("yearly-snap-{}-vc01", stamp()), "target": "vc01"},
                    {"name": format!("yearly-snap-{}-vc02", stamp()), "target": "vc02"},
                ])
            );
            assert_eq!(
                jobs[1]["spec"]["template"]["spec"]["containers"][0]["args"][3],
                "finance/vc02"
            );
            let metrics = ctx.metrics.render().unwrap();
            assert!(
                metrics.contains(
                    "vctp_operator_jobs_created_total{controller=\"SnapshotSchedule\"} 2"
                )
            );

            // After a restart, with the status written: the Jobs are there; nothing is
            // created and the status, unchanged, is not written again.
            let running_jobs: Vec<Value> = jobs.into_iter().map(running).collect();
            let (ctx, mut api) = scenario::context();
            let restarted = schedule(status);
            let (script_schedule, listed) = (restarted.clone(), running_jobs.clone());
            let result = scenario::run(reconcile_json(restarted, ctx), async move {
                reads(&mut api, &script_schedule, listed, vec![]).await;
            })
            .await;
            assert!(result.is_ok(), "{result:?}");

            // After a restart that lost the status write: the same tick is planned again, its
            // Jobs are found by name, nothing is created and the tick is recorded.
            let (ctx, mut api) = scenario::context();
            let script_schedule = fresh.clone();
            let result = scenario::run(reconcile_json(fresh, ctx), async move {
                reads(&mut api, &script_schedule, running_jobs, vec![]).await;
                let status = expect(&mut api, "PATCH", STATUS, 200, script_schedule).await;
                assert_eq!(
                    status["status"]["lastScheduleTime"],
                    format!("{}-01-01T00:00:00Z", year())
                );
                assert_eq!(
                    status["status"]["lastTick"]["targets"][1]["outcome"],
                    "Running"
                );
            })
            .await;
            assert!(result.is_ok(), "{result:?}");
        }

        #[tokio::test]
        async fn a_finished_snapshot_is_reported_on_the_schedule_and_its_target() {
            let tick = format!("{}-01-01T00:00:00Z", year());
            let vc01 = format!("yearly-snap-{}-vc01", stamp());
            let vc02 = format!("yearly-snap-{}-vc02", stamp());
            let current = schedule(json!({
                "lastScheduleTime": tick,
                "active": [{"name": vc01, "target": "vc01"}, {"name": vc02, "target": "vc02"}],
                "lastTick": {"time": tick, "targets": [
                    {"target": "vc01", "job": vc01, "outcome": "Running"},
                    {"target": "vc02", "job": vc02, "outcome": "Running"},
                ]},
            }));
            let job = |name: &str, target: &str, status: Value| {
                json!({
                    "apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": name, "namespace": "finance", "labels": {"vctp.io/target": target},
                        "ownerReferences": [{"apiVersion": "vctp.io/v1alpha1", "kind": "SnapshotSchedule", "name": "yearly",
                            "uid": "3b0c3f4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "controller": true}]},
                    "status": status,
                })
            };
            let jobs = vec![
                job(
                    &vc01,
                    "vc01",
                    json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
                ),
                job(&vc02, "vc02", json!({"active": 1})),
            ];
            let result = r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1767225605,"rows":412,"inventorySize":415,"vcenterVersion":"8.0.3 build-24022515"}}"#;
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{vc01}-x1"), "namespace": "finance", "labels": {"job-name": vc01}},
                "status": {"containerStatuses": [{"name": "vctp", "image": "vctp", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "message": result}}}]},
            });

            let (ctx, mut api) = scenario::context();
            let script_schedule = current.clone();
            let outcome = scenario::run(reconcile_json(current, ctx.clone()), async move {
                reads(&mut api, &script_schedule, jobs, vec![pod]).await;
                let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
                assert_eq!(
                    (event["type"].as_str(), event["reason"].as_str()),
                    (Some("Normal"), Some("SnapshotSucceeded"))
                );
                assert_eq!(event["note"], "vc01: stored 412 rows");
                assert_eq!(event["regarding"]["name"], "yearly");
                let target_status = expect(
                    &mut api,
                    "PATCH",
                    &format!("{TARGETS}/vc01/status"),
                    200,
                    target("vc01"),
                )
                .await;
                let target_status = &target_status["status"];
                assert_eq!(target_status["lastSnapshotTime"], "2026-01-01T00:00:05Z");
                assert_eq!(target_status["lastSnapshotRows"], 412);
                assert_eq!(target_status["vcenterVersion"], "8.0.3 build-24022515");
                assert_eq!(target_status["conditions"][0]["type"], "LastSnapshot");
                let patch = expect(&mut api, "PATCH", STATUS, 200, script_schedule).await;
                let outcomes: Vec<&str> = patch["status"]["lastTick"]["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["outcome"].as_str().unwrap())
                    .collect();
                assert_eq!(outcomes, ["Succeeded", "Running"]);
                assert_eq!(
                    patch["status"]["active"],
                    json!([{"name": vc02, "target": "vc02"}])
                );
            })
            .await;
            assert!(outcome.is_ok(), "{outcome:?}");
            let metrics = ctx.metrics.render().unwrap();
            assert!(
                metrics.contains("vctp_hourly_snapshots_total{vcenter=\"vc01\"} 1"),
                "{metrics}"
            );
            assert!(
                metrics.contains("vctp_hourly_snapshot_last_rows{vcenter=\"vc01\"} 412"),
                "{metrics}"
            );
        }

        #[tokio::test]
        async fn an_invalid_schedule_is_reported_and_waits_for_a_change() {
            let mut invalid = schedule(Value::Null);
            invalid["spec"]["timeZone"] = json!("Mars/Olympus");
            let (ctx, mut api) = scenario::context();
            let script_schedule = invalid.clone();
            let result = scenario::run(reconcile_json(invalid, ctx), async move {
                expect(&mut api, "GET", SCHEDULE, 200, script_schedule.clone()).await;
                let patch = expect(&mut api, "PATCH", STATUS, 200, script_schedule).await;
                let ready = &patch["status"]["conditions"][0];
                assert_eq!(
                    (ready["status"].as_str(), ready["reason"].as_str()),
                    (Some("False"), Some("InvalidTimeZone"))
                );
                assert_eq!(patch["status"]["observedGeneration"], 1);
                let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
                assert_eq!(
                    (event["type"].as_str(), event["reason"].as_str()),
                    (Some("Warning"), Some("InvalidTimeZone"))
                );
            })
            .await;
            let error = result.unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("unknown time zone \"Mars/Olympus\""),
                "{error}"
            );
            assert!(error.waits_for_change());
        }

        #[tokio::test]
        async fn a_schedule_deleted_meanwhile_is_left_alone() {
            let (ctx, mut api) = scenario::context();
            let result = scenario::run(reconcile_json(schedule(Value::Null), ctx), async move {
                expect(&mut api, "GET", SCHEDULE, 404, scenario::not_found()).await;
            })
            .await;
            assert!(result.is_ok(), "{result:?}");
        }
    }
}
