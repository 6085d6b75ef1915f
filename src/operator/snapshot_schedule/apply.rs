//! Apply: the plan carried out against the API server, the status written in between.

use super::build::{aggregation_job, snapshot_job, target_snapshot_status};
use super::plan::{Actions, Finished};
use super::read::Found;
use crate::crd::snapshot_schedule::TickOutcome;
use crate::crd::vcenter_target::data_key;
use crate::crd::{AggregationJob, Phase, SnapshotSchedule, SnapshotScheduleStatus, VCenterTarget};
use crate::operator::{Context, Error, apply_status, replace_status, secrets, workload};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::collections::HashMap;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "SnapshotSchedule";
/// Field manager of the `VCenterTarget` status fields this controller owns (another
/// controller owns `Ready`, `Reachable`, `lastError` and `lastCheckTime`).
pub const TARGET_MANAGER: &str = "vctp-operator/snapshot";

/// Carries out `plan`: create the Jobs and `AggregationJob`s, report what finished, write
/// the status, then cancel and prune.
pub(super) async fn apply(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    found: &Found,
    plan: &Actions,
    now: Time,
) -> Result<Action, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let targets: HashMap<&str, &VCenterTarget> = found
        .targets
        .iter()
        .map(|t| (t.meta().name.as_deref().unwrap_or_default(), t))
        .collect();
    let mut status = plan.status.clone();
    for new in &plan.create {
        // The plan only starts selected targets.
        let Some(target) = targets.get(new.target.as_str()) else {
            continue;
        };
        // The Job mounts the target's Secrets: each must be opted in first.
        if let Err((reason, message)) =
            secrets::check_all(ctx, &namespace, &target_secrets(target)).await?
        {
            let message = format!("{}: {message}", new.target);
            ctx.event(
                schedule,
                EventType::Warning,
                reason,
                "Snapshot",
                message.clone(),
            )
            .await;
            refuse(&mut status, &new.job, message);
            continue;
        }
        let owners = same_named(ctx, &namespace, &new.target).await?;
        let job = snapshot_job(schedule, target, new, &owners, &ctx.template)?;
        workload::create_job(ctx, &job, CONTROLLER).await?;
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
    write_status(ctx, schedule, &status).await?;
    for name in plan.cancel.iter().chain(&plan.delete_jobs) {
        workload::delete::<Job>(ctx, &namespace, name).await?;
    }
    for name in &plan.delete_aggregations {
        workload::delete::<AggregationJob>(ctx, &namespace, name).await?;
    }
    Ok(Action::requeue(plan.requeue_after))
}

/// The `NAMESPACE/NAME` of every `VCenterTarget` called `name` in the watched namespaces
/// (the schedule's own when none are set), sorted: whose rows an older operator stored under
/// the bare `name` is only clear when there is one. A watched namespace that does not exist
/// holds none.
async fn same_named(ctx: &Context, namespace: &str, name: &str) -> Result<Vec<String>, Error> {
    let own = [namespace.to_string()];
    let watched = if ctx.watched.is_empty() {
        &own[..]
    } else {
        &ctx.watched[..]
    };
    let mut owners = Vec::new();
    for ns in watched {
        let found = kube::Api::<VCenterTarget>::namespaced(ctx.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|source| Error::api("get", "VCenterTarget", ns, name, source))?;
        if found.is_some() {
            owners.push(data_key(ns, name));
        }
    }
    owners.sort();
    Ok(owners)
}

/// The Secrets a snapshot Job of `target` mounts, with the field naming each.
fn target_secrets(target: &VCenterTarget) -> Vec<(String, String)> {
    let credentials = &target.spec.credentials_secret_ref;
    let mut refs = vec![(
        "spec.credentialsSecretRef".to_owned(),
        credentials.name.clone(),
    )];
    let ca = target
        .spec
        .tls
        .as_ref()
        .and_then(|t| t.ca_bundle_secret_ref.as_ref());
    refs.extend(ca.map(|ca| ("spec.tls.caBundleSecretRef".to_owned(), ca.name.clone())));
    refs
}

/// `status` without the Job `job`, which was not created: its target failed with `message`.
fn refuse(status: &mut SnapshotScheduleStatus, job: &str, message: String) {
    status.active.retain(|active| active.name != job);
    let entries = status
        .last_tick
        .iter_mut()
        .flat_map(|tick| &mut tick.targets);
    for entry in entries.filter(|entry| entry.job.as_deref() == Some(job)) {
        entry.job = None;
        entry.outcome = TickOutcome::Failed;
        entry.message = Some(message.clone());
    }
}

/// Writes `status` over the schedule's (see [`replace_status`]: the schedule's status
/// has no other writer). Plain structs with string keys: serializing cannot fail.
pub(super) async fn write_status(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    status: &SnapshotScheduleStatus,
) -> Result<(), Error> {
    let current = serde_json::json!(schedule.status);
    replace_status(ctx, schedule, &current, &serde_json::json!(status)).await
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
    match apply_status(ctx, target, TARGET_MANAGER, status).await {
        // Deleted since it was listed: nothing left to record on.
        Err(e) if e.reason() == "ApiNotFound" => Ok(()),
        result => result,
    }
}
