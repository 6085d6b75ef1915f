//! Plan (pure): the Actions one reconcile takes, decided from the spec, the status, what was read
//! and the clock.

use super::read::{Found, SnapshotJob};
use super::validate::Validated;
use crate::crd::aggregation_job::AggregationPeriod;
use crate::crd::snapshot_schedule::{
    self as crd, CONDITION_LAST_TICK_SUCCEEDED, JobRef, TargetOutcome, TickOutcome, TickReport,
};
use crate::crd::{
    CONDITION_READY, Phase, SnapshotSchedule, SnapshotScheduleSpec, SnapshotScheduleStatus,
    VCenterTarget,
};
use crate::operator::job::{job_name, label_value};
use crate::operator::workload::Observed;
use crate::operator::{condition, condition_of, from_timestamp, to_timestamp};
use crate::schedule::{self, CronSchedule, MissedTickPolicy};
use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Why the targets of a tick that came while the schedule was suspended were skipped.
const SUSPENDED_SKIP: &str = "skipped: the schedule is suspended";

/// Longest wait between two reconciles of a schedule.
const MAX_REQUEUE: std::time::Duration = std::time::Duration::from_secs(300);

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
pub struct Actions {
    /// Snapshot Jobs to create, in target order (at most the free concurrency slots).
    pub create: Vec<NewSnapshot>,
    /// `AggregationJob`s to create.
    pub aggregations: Vec<NewAggregation>,
    /// Snapshot Jobs that finished since the status was written: each gets an Event,
    /// metrics and the target's snapshot fields.
    pub finished: Vec<Finished>,
    /// Unfinished snapshot Jobs of targets that are gone or no longer selected.
    pub cancel: Vec<String>,
    /// Finished snapshot Jobs beyond the history limits, oldest first, then those given up
    /// (their Pod cannot get its image; Kubernetes would keep them waiting).
    pub delete_jobs: Vec<String>,
    /// Finished `AggregationJob`s of the schedule beyond the history limits of their period.
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
///   finished is in [`Actions::finished`].
/// - Once every target of the tick finished and one succeeded, an `Hourly` `AggregationJob`
///   (with `hourlyReports`); on the daily and monthly crons (decided after their own last
///   handled tick) a `Daily` one for the UTC day before the cron tick's UTC date and a
///   `Monthly` one for the UTC month before the tick's UTC month.
/// - Finished snapshot Jobs and `AggregationJob`s beyond the history limits (those of each
///   period counted apart) are deleted, oldest first.
pub fn plan(
    schedule: &SnapshotSchedule,
    validated: &Validated,
    found: &Found,
    now: DateTime<Utc>,
) -> Actions {
    let input = Input::new(schedule, found, now);
    let previous = &input.previous;
    let snapshots = input.decide(&validated.snapshots, previous.last_schedule_time.as_ref());
    let (mut tick, notices) = input.tick(&snapshots);
    let cancel = input.cancelled();
    // A Job whose Secret or ConfigMap is missing could only fail: its target waits instead.
    let create = match (tick.as_mut(), schedule.spec.suspend, &found.missing) {
        (Some(tick), false, None) => start_pending(&input.name, tick, input.free_slots(&cancel)),
        _ => Vec::new(),
    };
    let notices = notices.into_iter().chain(input.newly_missing()).collect();
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
        conditions: input.conditions(tick.as_ref(), snapshots.next),
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
    Actions {
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
    fn decide(&self, cron: &CronSchedule, last: Option<&Time>) -> schedule::Decision {
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
    fn tick(&self, snapshots: &schedule::Decision) -> (Option<TickReport>, Vec<Notice>) {
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
            SUSPENDED_SKIP.to_string()
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
        daily: Option<&schedule::Decision>,
        monthly: Option<&schedule::Decision>,
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
        // A day or month that ended before the schedule existed holds none of its
        // snapshots: its aggregation could only fail ("no snapshots are registered"), as
        // the first daily tick of a schedule created just after midnight would.
        let created_day = self.created.date_naive();
        if let Some(run) = daily.and_then(|d| d.run)
            && previous_day(run) >= created_day
        {
            due.push(new_aggregation(
                &self.name,
                AggregationRun::Daily(previous_day(run)),
            ));
        }
        if let Some(run) = monthly.and_then(|m| m.run)
            && previous_month(run) >= (created_day.year(), created_day.month())
        {
            let (year, month) = previous_month(run);
            due.push(new_aggregation(
                &self.name,
                AggregationRun::Monthly { year, month },
            ));
        }
        due.retain(|a| !(self.found.aggregations.iter()).any(|e| e.name_any() == a.name));
        due
    }

    /// The Warning Event about a missing Secret or ConfigMap of the Job template, when the
    /// last status did not say it already.
    fn newly_missing(&self) -> Option<Notice> {
        let (reason, message) = self.found.missing.as_ref()?;
        let said = (self.previous.conditions.iter())
            .any(|c| c.type_ == CONDITION_READY && c.reason == *reason && c.message == *message);
        (!said).then(|| Notice {
            reason,
            message: message.clone(),
        })
    }

    /// `Ready` and `LastTickSucceeded`, given the tick after this reconcile and the next
    /// tick of the snapshot cron.
    fn conditions(&self, tick: Option<&TickReport>, next: Option<DateTime<Utc>>) -> Vec<Condition> {
        let previous = &self.previous.conditions;
        vec![
            ready_condition(self, next, previous),
            last_tick_condition(
                tick,
                previous,
                self.schedule.metadata.generation,
                k8s_time(self.now),
            ),
        ]
    }
}

/// The last tick a cron decision handled.
fn handled(decision: Option<&schedule::Decision>) -> Option<Time> {
    decision.and_then(|d| d.handled).map(k8s_time)
}

fn all_succeeded(tick: &TickReport) -> bool {
    !tick.targets.is_empty() && (tick.targets.iter()).all(|t| t.outcome == TickOutcome::Succeeded)
}

/// A notice about ticks passed over without a run.
fn missed_ticks(snapshots: &schedule::Decision, latest: DateTime<Utc>) -> Notice {
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

pub(super) fn k8s_time(t: DateTime<Utc>) -> Time {
    Time(to_timestamp(t))
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
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

pub(super) fn new_aggregation(schedule: &str, run: AggregationRun) -> NewAggregation {
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

/// The snapshot Jobs and `AggregationJob`s to delete: finished ones beyond
/// `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` (for each period of aggregation),
/// oldest first.
fn beyond_history(
    spec: &SnapshotScheduleSpec,
    found: &Found,
    cancelled: &[String],
) -> (Vec<String>, Vec<String>) {
    let keep = |phase: Phase| match phase {
        Phase::Succeeded => spec.successful_jobs_history_limit,
        _ => spec.failed_jobs_history_limit,
    };
    let kept = |j: &&SnapshotJob| !cancelled.contains(&j.name) && !j.observed.abandoned;
    let jobs = found
        .jobs
        .iter()
        .filter(|j| j.is_finished())
        .filter(kept)
        .map(|j| {
            let at = j.tick.map_or(0, |t| t.timestamp());
            ((), j.observed.phase, at, j.name.as_str())
        });
    let abandoned = found
        .jobs
        .iter()
        .filter(|j| j.observed.abandoned && !cancelled.contains(&j.name))
        .map(|j| j.name.clone());
    // Each period keeps its own history: hourly runs, one an hour, would otherwise push the
    // daily and monthly ones out at once.
    let aggregations = found.aggregations.iter().filter_map(|a| {
        let phase = a.status.as_ref()?.phase.filter(|p| p.is_finished())?;
        let start =
            crate::jobs::aggregate::Request::from_spec(&a.spec).map_or(0, |r| r.period.start());
        let name = a.meta().name.as_deref().unwrap_or_default();
        Some((period_rank(a.spec.period), phase, start, name))
    });
    let mut delete_jobs = oldest_beyond(jobs, keep);
    delete_jobs.extend(abandoned);
    (delete_jobs, oldest_beyond(aggregations, keep))
}

/// An order of the periods, to keep their histories apart.
fn period_rank(period: AggregationPeriod) -> u8 {
    match period {
        AggregationPeriod::Hourly => 0,
        AggregationPeriod::Daily => 1,
        AggregationPeriod::Monthly => 2,
    }
}

/// Per group and phase, the names beyond the newest `keep(phase)`, oldest first.
fn oldest_beyond<'a, G: Ord>(
    items: impl Iterator<Item = (G, Phase, i64, &'a str)>,
    keep: impl Fn(Phase) -> i32,
) -> Vec<String> {
    let mut groups: BTreeMap<(G, bool), Vec<(i64, &str)>> = BTreeMap::new();
    for (group, phase, at, name) in items {
        groups
            .entry((group, phase == Phase::Succeeded))
            .or_default()
            .push((at, name));
    }
    let mut beyond: Vec<(i64, &str)> = groups
        .into_iter()
        .flat_map(|((_, succeeded), mut items)| {
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

/// `Ready`: the schedule is valid and scheduling — not suspended, at least one target
/// selected, a next tick planned. What became of the ticks is [`last_tick_condition`]'s,
/// so a failed snapshot does not hide that the schedule itself works, and a new schedule
/// is not shown failed before its first tick.
fn ready_condition(
    input: &Input,
    next: Option<DateTime<Utc>>,
    previous: &[Condition],
) -> Condition {
    let ready = |ok: bool, reason: &str, message: String| {
        condition(
            previous,
            CONDITION_READY,
            ok,
            reason,
            message,
            input.schedule.metadata.generation,
            k8s_time(input.now),
        )
    };
    let spec = &input.schedule.spec;
    if let Some((reason, message)) = &input.found.missing {
        return ready(false, reason, message.clone());
    }
    if spec.suspend {
        return ready(
            false,
            "Suspended",
            "spec.suspend is true: ticks are skipped until it is false".into(),
        );
    }
    if input.targets.is_empty() {
        return ready(
            false,
            "NoTargets",
            "no VCenterTarget in the namespace matches targetSelector".into(),
        );
    }
    match next {
        Some(next) => ready(
            true,
            "Scheduling",
            format!(
                "{} VCenterTarget(s) selected; next tick at {}",
                input.targets.len(),
                rfc3339(next)
            ),
        ),
        None => ready(
            false,
            "NoNextTick",
            format!("schedule {:?} has no tick after now", spec.schedule),
        ),
    }
}

/// `LastTickSucceeded`: `True` when every target of the last finished tick succeeded
/// (skipped ones aside), `False` with each failure's message when one failed or the tick was
/// missed, `Unknown` before a first finished tick; while a tick runs, or when a tick was
/// skipped because the schedule is suspended (nothing was attempted), the previous verdict
/// holds.
fn last_tick_condition(
    tick: Option<&TickReport>,
    previous: &[Condition],
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let verdict = |ok: Option<bool>, reason: &str, message: String| {
        condition_of(
            previous,
            CONDITION_LAST_TICK_SUCCEEDED,
            ok,
            reason,
            message,
            generation,
            now.clone(),
        )
    };
    let held = |or_else: Condition| {
        (previous.iter())
            .find(|c| c.type_ == CONDITION_LAST_TICK_SUCCEEDED)
            .map_or(or_else, |c| Condition {
                observed_generation: generation,
                ..c.clone()
            })
    };
    let no_tick_yet = || verdict(None, "NoTickYet", "no tick has finished yet".into());
    let Some(tick) = tick else {
        return held(no_tick_yet());
    };
    let at = rfc3339(from_timestamp(tick.time.0));
    if !tick_finished(tick) {
        return held(verdict(
            None,
            "TickRunning",
            format!("the first tick ({at}) is running"),
        ));
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
        verdict(
            Some(false),
            "NoTargets",
            format!("no VCenterTarget in the namespace matched targetSelector at {at}"),
        )
    } else if !failed.is_empty() {
        verdict(
            Some(false),
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
        if why == SUSPENDED_SKIP {
            held(no_tick_yet())
        } else {
            verdict(Some(false), "TickSkipped", format!("tick {at} {why}"))
        }
    } else {
        verdict(
            Some(true),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AggregationJob;
    use crate::jobs::termination::JobResult;
    use crate::operator::job;
    use crate::operator::snapshot_schedule::fixtures::*;
    use crate::operator::snapshot_schedule::validate::validate;

    /// Only the hourly snapshots: no aggregation crons, no hourly reports.
    const SNAPSHOTS_ONLY: &str = "  aggregation:\n    hourlyReports: false\n    daily: {enabled: false}\n    monthly: {enabled: false}\n";

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

    /// A schedule with `spec`, its `targets`, and the plan of its first tick (10:00).
    fn first_tick(spec: &str, names: &[&str]) -> (SnapshotSchedule, Found, Actions) {
        let schedule = schedule(spec);
        let found = Found {
            targets: targets(names),
            ..Found::default()
        };
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        (schedule, found, first)
    }

    fn plan_at(schedule: &SnapshotSchedule, found: &Found, now: &str) -> Actions {
        let validated = validate(&schedule.spec).unwrap();
        plan(schedule, &validated, found, at(now))
    }

    /// `schedule` as the next reconcile reads it: with the status `plan` wrote.
    fn after(schedule: &SnapshotSchedule, plan: &Actions) -> SnapshotSchedule {
        let mut next = schedule.clone();
        next.status = Some(plan.status.clone());
        next
    }

    fn outcomes(plan: &Actions) -> Vec<(String, TickOutcome)> {
        plan.status
            .last_tick
            .iter()
            .flat_map(|t| &t.targets)
            .map(|t| (t.target.clone(), t.outcome))
            .collect()
    }

    fn created(plan: &Actions) -> Vec<&str> {
        plan.create.iter().map(|c| c.job.as_str()).collect()
    }

    fn ready(plan: &Actions) -> &Condition {
        condition_of(plan, CONDITION_READY)
    }

    fn last_tick(plan: &Actions) -> &Condition {
        condition_of(plan, CONDITION_LAST_TICK_SUCCEEDED)
    }

    fn condition_of<'a>(plan: &'a Actions, type_: &str) -> &'a Condition {
        (plan.status.conditions.iter())
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} in {:?}", plan.status.conditions))
    }

    fn verdict(condition: &Condition) -> (&str, &str) {
        (condition.status.as_str(), condition.reason.as_str())
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
        // Valid and scheduling: Ready; the first tick has no result yet.
        assert_eq!(verdict(ready(&plan)), ("True", "Scheduling"));
        assert_eq!(verdict(last_tick(&plan)), ("Unknown", "TickRunning"));
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
        // A new schedule is Ready (not failed) and says when its first tick comes.
        assert_eq!(verdict(ready(&plan)), ("True", "Scheduling"));
        assert!(
            ready(&plan).message.contains("2026-03-10T10:00:00Z"),
            "{}",
            ready(&plan).message
        );
        assert_eq!(verdict(last_tick(&plan)), ("Unknown", "NoTickYet"));
        assert_eq!(plan.requeue_after, std::time::Duration::from_secs(120));
    }

    #[test]
    fn concurrency_leaves_the_rest_pending_and_starts_them_as_slots_free() {
        let (schedule, found, first) = first_tick(
            &format!("  concurrency: 2\n{SNAPSHOTS_ONLY}"),
            &["vc01", "vc02", "vc03"],
        );
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
        let (schedule, found, first) = first_tick(SNAPSHOTS_ONLY, &["vc01", "vc02"]);
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
        assert_eq!(verdict(ready(&plan)), ("False", "Suspended"));
        // Nothing was attempted: no verdict on the last tick.
        assert_eq!(verdict(last_tick(&plan)), ("Unknown", "NoTickYet"));
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
        assert_eq!(verdict(last_tick(&skip)), ("False", "TickSkipped"));
        assert_eq!(verdict(ready(&skip)), ("True", "Scheduling"));
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
        schedule.metadata.creation_timestamp = Some(k8s_time(at("2025-12-01T00:00:00Z")));
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
            schedule.metadata.creation_timestamp = Some(k8s_time(at("2025-12-01T00:00:00Z")));
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
    fn no_day_or_month_that_ended_before_the_schedule_existed_is_aggregated() {
        // Created at 00:10 UTC on 1 April: the first daily and monthly ticks (00:30) fall on
        // 31 March and March, which hold none of the schedule's snapshots.
        let mut schedule = schedule(
            "  aggregation:\n    hourlyReports: false\n    daily: {schedule: \"30 0 * * *\"}\n    monthly: {schedule: \"30 0 1 * *\"}\n",
        );
        schedule.metadata.creation_timestamp = Some(k8s_time(at("2026-04-01T00:10:00Z")));
        let first = plan_at(&schedule, &Found::default(), "2026-04-01T00:31:00Z");
        assert!(first.aggregations.is_empty(), "{:?}", first.aggregations);
        // Handled all the same: not planned again on the next reconcile.
        assert_eq!(
            first.status.last_daily_aggregation_time,
            Some(k8s_time(at("2026-04-01T00:30:00Z")))
        );
        assert_eq!(
            first.status.last_monthly_aggregation_time,
            Some(k8s_time(at("2026-04-01T00:30:00Z")))
        );
        // The day it was created in, partly covered, is aggregated the next night; its
        // month at the start of May.
        let next = plan_at(
            &after(&schedule, &first),
            &Found::default(),
            "2026-04-02T00:31:00Z",
        );
        let names: Vec<&str> = next.aggregations.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["hourly-daily-2026-04-01"]);
        let may = plan_at(
            &after(&schedule, &first),
            &Found::default(),
            "2026-05-01T00:31:00Z",
        );
        assert!(
            (may.aggregations.iter()).any(|a| a.name == "hourly-monthly-2026-04"),
            "{:?}",
            may.aggregations
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
            missing: None,
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
    fn history_limits_apply_to_daily_and_monthly_aggregations_each_on_its_own() {
        let schedule = schedule(&format!(
            "  successfulJobsHistoryLimit: 2\n  failedJobsHistoryLimit: 1\n{SNAPSHOTS_ONLY}"
        ));
        let aggregation = |name: &str, period: &str, phase: &str| -> AggregationJob {
            serde_yaml::from_str(&format!(
                "apiVersion: vctp.io/v1alpha1\nkind: AggregationJob\nmetadata: {{name: {name}, namespace: finance}}\nspec: {{{period}}}\nstatus: {{phase: {phase}}}\n"
            ))
            .unwrap()
        };
        let daily = |date: &str, phase: &str| {
            aggregation(
                &format!("hourly-daily-{date}"),
                &format!("period: Daily, date: '{date}'"),
                phase,
            )
        };
        let monthly = |month: &str, phase: &str| {
            aggregation(
                &format!("hourly-monthly-{month}"),
                &format!("period: Monthly, month: '{month}'"),
                phase,
            )
        };
        let found = Found {
            targets: targets(&["vc01"]),
            aggregations: vec![
                daily("2026-03-07", "Succeeded"),
                daily("2026-03-09", "Succeeded"),
                daily("2026-03-06", "Succeeded"),
                daily("2026-03-08", "Succeeded"),
                daily("2026-03-05", "Failed"),
                daily("2026-03-04", "Failed"),
                daily("2026-03-10", "Running"),
                monthly("2025-12", "Succeeded"),
                monthly("2026-02", "Succeeded"),
                monthly("2026-01", "Succeeded"),
            ],
            ..Found::default()
        };
        let plan = plan_at(&schedule, &found, "2026-03-10T14:05:00Z");
        // Two successful and one failed of each period are kept: the daily ones do not
        // push the monthly ones out, nor the other way round.
        assert_eq!(
            plan.delete_aggregations,
            [
                "hourly-monthly-2025-12",
                "hourly-daily-2026-03-04",
                "hourly-daily-2026-03-06",
                "hourly-daily-2026-03-07",
            ]
        );
    }

    #[test]
    fn a_snapshot_job_given_up_for_its_image_fails_its_target_with_the_reason_and_is_deleted() {
        let (schedule, found, first) = first_tick(SNAPSHOTS_ONLY, &["vc01"]);
        let schedule = after(&schedule, &first);
        let mut stuck = snap("2026-03-10T10:00:00Z", "vc01", Phase::Failed);
        stuck.observed.failure = Some("ErrImageNeverPull".into());
        stuck.observed.abandoned = true;
        stuck.observed.message = Some("image \"vctp:0.1.0\" is not present".into());
        let found = Found {
            jobs: vec![stuck],
            ..found
        };
        let plan = plan_at(&schedule, &found, "2026-03-10T10:06:00Z");
        assert_eq!(plan.delete_jobs, ["hourly-snap-20260310t1000-vc01"]);
        assert_eq!(plan.finished.len(), 1);
        let tick = plan.status.last_tick.as_ref().unwrap();
        assert_eq!(tick.targets[0].outcome, TickOutcome::Failed);
        assert_eq!(
            tick.targets[0].message.as_deref(),
            Some("ErrImageNeverPull: image \"vctp:0.1.0\" is not present")
        );
    }

    #[test]
    fn last_tick_succeeded_follows_the_outcomes_of_the_last_finished_tick_and_ready_holds() {
        let (schedule, found, first) = first_tick(SNAPSHOTS_ONLY, &["vc01", "vc02"]);
        let schedule = after(&schedule, &first);
        let finish = |vc02: Phase| Found {
            jobs: vec![
                snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded),
                snap("2026-03-10T10:00:00Z", "vc02", vc02),
            ],
            ..found.clone()
        };

        let all = plan_at(&schedule, &finish(Phase::Succeeded), "2026-03-10T10:05:00Z");
        let condition = last_tick(&all);
        assert_eq!(verdict(condition), ("True", "Succeeded"));
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
        let condition = last_tick(&one_failed);
        assert_eq!(verdict(condition), ("False", "SnapshotFailed"));
        assert_eq!(
            condition.message,
            "1 of 2 snapshots failed at 2026-03-10T10:00:00Z: vc02 (InvalidLogin: wrong user name or password)"
        );
        assert_eq!(one_failed.status.last_successful_time, None);
        // A failed tick does not make the schedule itself unready: it still schedules.
        assert_eq!(verdict(ready(&one_failed)), ("True", "Scheduling"));

        // While the next tick runs, the last finished tick's verdict holds.
        let schedule = after(&schedule, &one_failed);
        let next = plan_at(&schedule, &failing, "2026-03-10T11:00:05Z");
        assert_eq!(next.create.len(), 2);
        assert_eq!(last_tick(&next), last_tick(&one_failed));

        // No target selected: the schedule has nothing to schedule.
        let none = plan_at(&schedule, &Found::default(), "2026-03-10T11:00:05Z");
        assert_eq!(verdict(ready(&none)), ("False", "NoTargets"));
    }

    #[test]
    fn a_missing_secret_the_jobs_need_stops_the_schedule_with_a_reason_naming_it() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let message = "Secret finance/vctp-database (env VCTP_DATABASE_URL of the Job template) does not exist";
        let found = Found {
            targets: targets(&["vc01"]),
            missing: Some(("SecretNotFound", message.to_string())),
            ..Found::default()
        };
        let blocked = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        // No Job that could only fail; the target waits for its slot.
        assert!(blocked.create.is_empty(), "{:?}", blocked.create);
        assert_eq!(outcomes(&blocked), [("vc01".into(), TickOutcome::Pending)]);
        assert_eq!(verdict(ready(&blocked)), ("False", "SecretNotFound"));
        assert_eq!(ready(&blocked).message, message);
        let notices: Vec<(&str, &str)> = (blocked.notices.iter())
            .map(|n| (n.reason, n.message.as_str()))
            .collect();
        assert_eq!(notices, [("SecretNotFound", message)]);
        // Announced once, not at every reconcile.
        let again = plan_at(&after(&schedule, &blocked), &found, "2026-03-10T10:01:00Z");
        assert!(again.notices.is_empty(), "{:?}", again.notices);

        // Once the Secret is there, the waiting target gets its Job.
        let fixed = Found {
            missing: None,
            ..found.clone()
        };
        let resumed = plan_at(&after(&schedule, &blocked), &fixed, "2026-03-10T10:02:00Z");
        assert_eq!(created(&resumed), ["hourly-snap-20260310t1000-vc01"]);
        assert_eq!(verdict(ready(&resumed)), ("True", "Scheduling"));
    }

    /// What Argo CD shows for `schedule` with the status `plan` wrote (the chart's health
    /// script run by Lua).
    fn argocd(schedule: &SnapshotSchedule, plan: &Actions) -> (String, String) {
        crate::operator::argocd::health("SnapshotSchedule", &after(schedule, plan))
    }

    #[test]
    #[ignore = "needs Lua: source scripts/lua.sh; lua_start (VCTP_TEST_LUA)"]
    fn argo_cd_health_follows_the_schedules_conditions() {
        let schedule = schedule(SNAPSHOTS_ONLY);
        let found = Found {
            targets: targets(&["vc01", "vc02"]),
            ..Found::default()
        };
        // A new schedule, before and during its first tick: Progressing, not Degraded.
        let unchecked = crate::operator::argocd::health("SnapshotSchedule", &schedule);
        assert_eq!(unchecked.0, "Progressing", "{unchecked:?}");
        let waiting = plan_at(&schedule, &found, "2026-03-10T09:58:00Z");
        let (state, message) = argocd(&schedule, &waiting);
        assert_eq!(state, "Progressing", "{message}");
        assert!(
            message.contains("next tick at 2026-03-10T10:00:00Z"),
            "{message}"
        );
        let first = plan_at(&schedule, &found, "2026-03-10T10:00:05Z");
        assert_eq!(argocd(&schedule, &first).0, "Progressing");

        // The tick succeeded: Healthy; one target failed: Degraded with its message.
        let scheduled = after(&schedule, &first);
        let finish = |vc02: SnapshotJob| Found {
            jobs: vec![snap("2026-03-10T10:00:00Z", "vc01", Phase::Succeeded), vc02],
            ..found.clone()
        };
        let all = finish(snap("2026-03-10T10:00:00Z", "vc02", Phase::Succeeded));
        let succeeded = plan_at(&scheduled, &all, "2026-03-10T10:05:00Z");
        assert_eq!(argocd(&scheduled, &succeeded).0, "Healthy");
        let mut failed_job = snap("2026-03-10T10:00:00Z", "vc02", Phase::Failed);
        failed_job.observed.result = JobResult::from_message(
            r#"{"succeeded":false,"reason":"InvalidLogin","message":"wrong user name or password"}"#,
        );
        let failed = plan_at(&scheduled, &finish(failed_job), "2026-03-10T10:05:00Z");
        let (state, message) = argocd(&scheduled, &failed);
        assert_eq!(state, "Degraded");
        assert_eq!(
            message,
            "SnapshotFailed: 1 of 2 snapshots failed at 2026-03-10T10:00:00Z: vc02 (InvalidLogin: wrong user name or password)"
        );

        // Suspended: Suspended. No target selected: Degraded saying so.
        let mut suspended = scheduled.clone();
        suspended.spec.suspend = true;
        let paused = plan_at(&suspended, &found, "2026-03-10T11:00:05Z");
        assert_eq!(argocd(&suspended, &paused).0, "Suspended");
        let none = plan_at(&scheduled, &Found::default(), "2026-03-10T10:05:00Z");
        let (state, message) = argocd(&scheduled, &none);
        assert_eq!(state, "Degraded");
        assert!(message.starts_with("NoTargets: "), "{message}");

        // An invalid spec: Degraded with the reason and the field.
        let mut invalid = after(&scheduled, &succeeded);
        invalid.spec.time_zone = "Mars/Olympus".into();
        let error = validate(&invalid.spec).unwrap_err().into_error(&invalid);
        let now = k8s_time(at("2026-03-10T10:06:00Z"));
        invalid.status = Some(super::super::validate::invalid_status(
            &invalid, &error, now,
        ));
        let (state, message) = crate::operator::argocd::health("SnapshotSchedule", &invalid);
        assert_eq!(state, "Degraded");
        assert!(message.starts_with("InvalidTimeZone: "), "{message}");
    }

    #[test]
    fn a_finished_job_is_reported_once_with_its_target_and_result() {
        let (schedule, found, first) = first_tick(SNAPSHOTS_ONLY, &["vc01"]);
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
        let (schedule, found, first) = first_tick(SNAPSHOTS_ONLY, &["vc01"]);
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
        let (schedule, found, first) = first_tick(
            &format!("  concurrency: 1\n{SNAPSHOTS_ONLY}"),
            &["vc01", "vc02"],
        );
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
        let (schedule, found, first) = first_tick(SNAPSHOTS_ONLY, &["vc01"]);
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
}
