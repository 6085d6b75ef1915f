//! The `MetricsExport` controller: [`validate`] (CEL rules client-side, pure) → [`plan`] the
//! run due (once at creation, or the latest tick of `schedule`; its range resolved once, so a
//! retried or resumed run exports the same window — pure) → `read` the keys of the
//! destination's Secret → [`build`] the Job running `vctp job export` with the run's
//! `--run-id/--start/--end` and the Secrets as env (pure) → apply: create it once, or delete
//! it while `suspend` is set → [`status`] from the Job and its termination message (pure),
//! with Events. The running Job patches `status.progress` and
//! `status.checkpoint` itself; everything else in status is written here.
//!
//! A finalizer cleans up on deletion: the Job is deleted (which stops the export), then the
//! run's staging parts (and, with `destination.deleteOnResourceDeletion`, its bundles) are
//! removed from object storage. Deletion is never blocked for more than ten minutes.

use super::job::{config_map_env, job_name, secret_env};
use super::secrets;
use super::workload::{self, JobRequest, Run, ensure_run};
use super::{Context, Error, condition, condition_of, error_policy, now, replace_status};
use crate::crd::metrics_export::{Archive, CONDITION_COMPLETE, ExportPhase, Span};
use crate::crd::{Condition, MetricsExport, MetricsExportStatus, Phase};
use crate::export::plan::env;
use crate::export::windows::Window;
use crate::jobs::export::{RangeError, RunAt};
use crate::jobs::termination::ExportResult;
use crate::schedule::CronSchedule;
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::{finalizer, watcher};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "MetricsExport";
/// Set on every MetricsExport: removed once its Job is gone and its staging parts deleted.
pub const FINALIZER: &str = "vctp.io/metricsexport-cleanup";
/// How far back a scheduled export looks for a missed tick: only the latest one runs.
const MISSED_TICK_HORIZON: chrono::Duration = chrono::Duration::days(31);
/// Deletion waits at most this long for the cleanup.
const CLEANUP_DEADLINE: chrono::Duration = chrono::Duration::minutes(10);

/// Reconciles the `MetricsExport`s of `namespace` until the stream ends.
pub async fn run(ctx: Arc<Context>, namespace: String) {
    let exports = Api::<MetricsExport>::namespaced(ctx.client.clone(), &namespace);
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &namespace);
    let results = Controller::new(exports, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .run(reconcile, error_policy, ctx);
    super::drain(CONTROLLER, &namespace, results).await;
}

async fn reconcile(export: Arc<MetricsExport>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::reconcile_fresh(CONTROLLER, export.as_ref(), &ctx, with_finalizer).await
}

/// [`reconcile_export`] while the resource lives, [`cleanup`] once it is being deleted, with
/// [`FINALIZER`] added first and removed after the cleanup.
async fn with_finalizer(export: &MetricsExport, ctx: &Context) -> Result<Action, Error> {
    let namespace = export.namespace().unwrap_or_default();
    let api = Api::<MetricsExport>::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer::finalizer(&api, FINALIZER, Arc::new(export.clone()), |event| async {
        match event {
            finalizer::Event::Apply(export) => reconcile_export(&export, ctx).await,
            finalizer::Event::Cleanup(export) => cleanup(&export, ctx).await,
        }
    })
    .await;
    result.map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        finalizer::Error::AddFinalizer(source) | finalizer::Error::RemoveFinalizer(source) => {
            Error::api(
                "update the finalizers of",
                CONTROLLER,
                &namespace,
                &export.name_any(),
                source,
            )
        }
        other => Error::invalid_spec(export, "UnnamedObject", other.to_string()),
    })
}

/// The run due now.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// The run standing for `tick`; `next` is the following tick of a schedule.
    Run {
        tick: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
    /// No tick has come yet; wait until `next`.
    Wait { next: DateTime<Utc> },
}

/// The run due at `now` for an export created at `created`: a one-off export stands for its
/// creation, a scheduled one for its latest tick.
pub fn due(
    export: &MetricsExport,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Due, crate::schedule::Error> {
    let Some(expression) = &export.spec.schedule else {
        return Ok(Due::Run {
            tick: created,
            next: None,
        });
    };
    let schedule = CronSchedule::parse(expression, &export.spec.time_zone)?;
    let since = created.max(now - MISSED_TICK_HORIZON);
    let next = schedule.next_after(now);
    Ok(match (schedule.latest_before(since, now), next) {
        (Some(tick), next) => Due::Run { tick, next },
        (None, Some(next)) => Due::Wait { next },
        (None, None) => Due::Run {
            tick: created,
            next: None,
        },
    })
}

/// One run: its id, Job and range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    pub run_id: String,
    pub job_name: String,
    pub range: Window,
}

/// The run standing for `tick` ([`RunAt::for_tick`]) and its Job.
pub fn run_plan(export: &MetricsExport, tick: DateTime<Utc>) -> Result<RunPlan, RangeError> {
    let RunAt { run_id, range } = RunAt::for_tick(&export.spec, tick)?;
    Ok(RunPlan {
        job_name: job_name(&[&export.name_any(), "export", &run_id.to_lowercase()]),
        run_id,
        range,
    })
}

/// The `vctp job export` Job of `run`: its arguments, and env referencing the resource's
/// Secrets (the Job reads none itself). `store_keys` are the keys of the destination's
/// credentials Secret, each passed as `VCTP_STORE_<key>`.
pub fn build(export: &MetricsExport, run: &RunPlan, store_keys: &[String]) -> JobRequest {
    let spec = &export.spec;
    let rfc3339 = |ms: i64| crate::export::metadata::rfc3339_ms(ms);
    let mut vars = Vec::new();
    if let Some(auth) = &spec.source.auth_secret_ref {
        let key_env = |variable: &str, key: &Option<String>| {
            key.as_ref().map(|key| {
                secret_env(
                    variable,
                    &crate::crd::SecretKeyRef {
                        name: auth.name.clone(),
                        key: key.clone(),
                    },
                )
            })
        };
        vars.extend(key_env(env::SOURCE_USERNAME, &auth.username_key));
        vars.extend(key_env(env::SOURCE_PASSWORD, &auth.password_key));
        vars.extend(key_env(env::SOURCE_TOKEN, &auth.token_key));
    }
    for (index, header) in spec.source.headers.iter().enumerate() {
        if let Some(secret) = &header.value_from {
            vars.push(secret_env(
                &format!("{}{index}", env::SOURCE_HEADER_PREFIX),
                secret,
            ));
        }
    }
    if let Some(tls) = &spec.source.tls {
        if let Some(secret) = &tls.ca_bundle_secret_ref {
            vars.push(secret_env(env::SOURCE_CA_BUNDLE, secret));
        }
        if let Some(config_map) = &tls.ca_bundle_config_map_ref {
            vars.push(config_map_env(env::SOURCE_CA_BUNDLE, config_map));
        }
    }
    if let Some(key) = &spec.obfuscation.key_secret_ref {
        vars.push(secret_env(env::OBFUSCATION_KEY, key));
    }
    if let Some(credentials) = &spec.destination.credentials_secret_ref {
        for key in store_keys {
            vars.push(secret_env(
                &format!("{}{key}", env::STORE_OPTION_PREFIX),
                &crate::crd::SecretKeyRef {
                    name: credentials.name.clone(),
                    key: key.clone(),
                },
            ));
        }
    }
    JobRequest {
        name: run.job_name.clone(),
        component: "export",
        args: vec![
            "job".into(),
            "export".into(),
            "--name".into(),
            format!(
                "{}/{}",
                export.namespace().unwrap_or_default(),
                export.name_any()
            ),
            "--run-id".into(),
            run.run_id.clone(),
            "--start".into(),
            rfc3339(run.range.start_ms),
            "--end".into(),
            rfc3339(run.range.end_ms),
        ],
        env: vars,
    }
}

/// Why a spec cannot run: a stable reason and a message.
type Invalid = (&'static str, String);

/// The CRD's CEL rules, for API servers before 1.25 that do not enforce them.
pub fn validate(export: &MetricsExport) -> Result<(), Invalid> {
    export
        .validate_cel()
        .map_err(|e| ("InvalidSpec", format!("{e:?}")))
}

/// The run due at `now` for an export created at `created` (none before the first tick of a
/// schedule) and the tick after it, or why the spec cannot run (pure).
pub fn plan(
    export: &MetricsExport,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Option<RunPlan>, Option<DateTime<Utc>>), Invalid> {
    match due(export, created, now).map_err(|e| (e.reason(), e.to_string()))? {
        Due::Wait { next } => Ok((None, Some(next))),
        Due::Run { tick, next } => run_plan(export, tick)
            .map(|run| (Some(run), next))
            .map_err(|e| (e.reason(), e.to_string())),
    }
}

async fn reconcile_export(export: &MetricsExport, ctx: &Context) -> Result<Action, Error> {
    let current = export.status.clone().unwrap_or_default();
    let generation = export.meta().generation;
    let now_utc = Utc::now();
    let created = export
        .meta()
        .creation_timestamp
        .clone()
        .map_or(now_utc, |t| super::from_timestamp(t.0));
    let planned = validate(export).and_then(|()| plan(export, created, now_utc));
    let (run, next) = match planned {
        Ok((Some(run), next)) => (run, next),
        Ok((None, Some(next))) => return Ok(requeue_at(next, now_utc)),
        Ok((None, None)) => return Ok(Action::await_change()),
        Err((reason, message)) => {
            let invalid = MetricsExportStatus {
                phase: Some(ExportPhase::Failed),
                errors: vec![message.clone()],
                conditions: vec![condition(
                    &current.conditions,
                    crate::crd::CONDITION_READY,
                    false,
                    reason,
                    &message,
                    generation,
                    now(),
                )],
                observed_generation: generation,
                ..current.clone()
            };
            replace_status(ctx, export, &to_json(&current), &to_json(&invalid)).await?;
            return Err(ctx.reject(export, reason, message).await);
        }
    };
    let after = |action: Action| next.map_or(action, |n| requeue_at(n, now_utc));
    let same_run = current.run_id.as_deref() == Some(run.run_id.as_str());
    let previous = if same_run {
        current.clone()
    } else {
        // A new run: the last one's progress and outcome go.
        MetricsExportStatus {
            conditions: current.conditions.clone(),
            ..MetricsExportStatus::default()
        }
    };
    if same_run && previous.phase.is_some_and(ExportPhase::is_finished) {
        return Ok(after(Action::await_change()));
    }
    let namespace = export.namespace().unwrap_or_default();

    if export.spec.suspend {
        if workload::get_job(ctx, &namespace, &run.job_name)
            .await?
            .is_some()
        {
            workload::delete::<Job>(ctx, &namespace, &run.job_name).await?;
        }
        let suspended = suspended_status(&previous, &run, generation);
        if previous.phase != Some(ExportPhase::Suspended) {
            ctx.event(
                export,
                EventType::Normal,
                "Suspended",
                "Suspend",
                format!("run {} suspended; its progress is kept", run.run_id),
            )
            .await;
        }
        replace_status(ctx, export, &to_json(&current), &to_json(&suspended)).await?;
        return Ok(Action::await_change());
    }
    // A Job of this run still being deleted (after a suspension) is not this run's outcome.
    if let Some(job) = workload::get_job(ctx, &namespace, &run.job_name).await?
        && job.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let store_keys = match read(export, ctx).await? {
        Ok(keys) => keys,
        Err((reason, message)) => {
            let failed = MetricsExportStatus {
                conditions: vec![condition(
                    &current.conditions,
                    crate::crd::CONDITION_READY,
                    false,
                    reason,
                    &message,
                    generation,
                    now(),
                )],
                ..previous.clone()
            };
            replace_status(ctx, export, &to_json(&current), &to_json(&failed)).await?;
            ctx.event(export, EventType::Warning, reason, "Export", message)
                .await;
            return Ok(Action::requeue(ctx.recheck_every));
        }
    };
    let request = build(export, &run, &store_keys);
    let resumed = previous.phase == Some(ExportPhase::Suspended);
    let job_named = previous.job_name.as_deref() == Some(run.job_name.as_str());
    let run_state = ensure_run(ctx, export, CONTROLLER, request, job_named).await?;
    if resumed {
        ctx.event(
            export,
            EventType::Normal,
            "Resumed",
            "Export",
            format!("run {} resumes from its checkpoint", run.run_id),
        )
        .await;
    }
    let previous_phase = previous.phase.and_then(as_phase);
    if let Some((kind, reason, note)) = run_state.event(previous_phase) {
        ctx.event(export, kind, &reason, "Export", note).await;
    }
    let next_status = status(&previous, &run, &run_state, generation);
    replace_status(ctx, export, &to_json(&current), &to_json(&next_status)).await?;
    run_state.stop_if_abandoned(ctx, &namespace).await?;
    if next_status.phase.is_some_and(ExportPhase::is_finished) {
        Ok(after(Action::await_change()))
    } else {
        Ok(ctx.until_unfinished_checked())
    }
}

/// The keys of the destination's credentials Secret, or why the Secrets cannot be used: the
/// Job mounts every Secret of [`mounted_secrets`], so each must exist and be opted in.
async fn read(
    export: &MetricsExport,
    ctx: &Context,
) -> Result<Result<Vec<String>, secrets::Refusal>, Error> {
    let namespace = export.namespace().unwrap_or_default();
    if let Err(refused) = secrets::check_all(ctx, &namespace, &mounted_secrets(export)).await? {
        return Ok(Err(refused));
    }
    let Some(credentials) = &export.spec.destination.credentials_secret_ref else {
        return Ok(Ok(Vec::new()));
    };
    let field = "spec.destination.credentialsSecretRef";
    let secret = match secrets::get(ctx, &namespace, &credentials.name, field).await? {
        Ok(secret) => secret,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut keys: Vec<String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .chain(secret.string_data.iter().flatten().map(|(k, _)| k.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    Ok(Ok(keys))
}

/// The Secrets the export Job mounts by `secretKeyRef` besides the destination's
/// credentials (read by [`read`]), with the field naming each.
fn mounted_secrets(export: &MetricsExport) -> Vec<(String, String)> {
    let spec = &export.spec;
    let source = &spec.source;
    let mut refs = Vec::new();
    if let Some(auth) = &source.auth_secret_ref {
        refs.push(("spec.source.authSecretRef".to_owned(), auth.name.clone()));
    }
    for (index, header) in source.headers.iter().enumerate() {
        if let Some(secret) = &header.value_from {
            refs.push((
                format!("spec.source.headers[{index}].valueFrom"),
                secret.name.clone(),
            ));
        }
    }
    if let Some(secret) = source
        .tls
        .as_ref()
        .and_then(|t| t.ca_bundle_secret_ref.as_ref())
    {
        refs.push((
            "spec.source.tls.caBundleSecretRef".to_owned(),
            secret.name.clone(),
        ));
    }
    if let Some(key) = &spec.obfuscation.key_secret_ref {
        refs.push(("spec.obfuscation.keySecretRef".to_owned(), key.name.clone()));
    }
    refs
}

/// On deletion: delete the Job (stopping the export), then the staging parts, and the
/// bundles when asked. Gives up (deletion goes on) after [`CLEANUP_DEADLINE`].
async fn cleanup(export: &MetricsExport, ctx: &Context) -> Result<Action, Error> {
    let namespace = export.namespace().unwrap_or_default();
    let status = export.status.clone().unwrap_or_default();
    if let Some(job) = &status.job_name {
        workload::delete::<Job>(ctx, &namespace, job).await?;
        // Wait for its Pod to stop writing parts before removing them (an Ok here would let
        // the finalizer go at once).
        if !workload::job_pods(ctx, &namespace, job).await?.is_empty() && !past_deadline(export) {
            return Err(Error::Waiting(format!(
                "the Pods of Job {namespace}/{job} to stop"
            )));
        }
    }
    match remove_objects(export, ctx).await {
        Ok(removed) => {
            tracing::info!(namespace, name = %export.name_any(), removed, "export cleaned up");
            Ok(Action::await_change())
        }
        Err(message) if past_deadline(export) => {
            ctx.event(
                export,
                EventType::Warning,
                "CleanupAbandoned",
                "Cleanup",
                format!("gave up after 10 minutes, the objects may remain: {message}"),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(message) => {
            ctx.event(
                export,
                EventType::Warning,
                "CleanupFailed",
                "Cleanup",
                message.clone(),
            )
            .await;
            Err(Error::api(
                "clean up the objects of",
                CONTROLLER,
                &namespace,
                &export.name_any(),
                kube::Error::Service(message.into()),
            ))
        }
    }
}

fn past_deadline(export: &MetricsExport) -> bool {
    export
        .meta()
        .deletion_timestamp
        .as_ref()
        .is_some_and(|t| Utc::now() - super::from_timestamp(t.0) > CLEANUP_DEADLINE)
}

/// Deletes the staging parts of every run under the export's prefix, and its bundles too
/// with `deleteOnResourceDeletion`; returns how many objects went.
async fn remove_objects(export: &MetricsExport, ctx: &Context) -> Result<usize, String> {
    let Some(store) = &ctx.export_store else {
        return Ok(0);
    };
    let destination = &export.spec.destination;
    let mut options = store.options.clone();
    if let Some(credentials) = &destination.credentials_secret_ref {
        let namespace = export.namespace().unwrap_or_default();
        let field = "spec.destination.credentialsSecretRef";
        let secret = match secrets::get(ctx, &namespace, &credentials.name, field).await {
            Ok(Ok(secret)) => Some(secret),
            // Gone: the default store's own credentials may still do.
            Ok(Err((secrets::NOT_FOUND, _))) => None,
            Ok(Err((_, refused))) => return Err(refused),
            Err(e) => return Err(e.to_string()),
        };
        for (key, value) in secret.and_then(|s| s.data).into_iter().flatten() {
            options.insert(key, String::from_utf8_lossy(&value.0).into_owned());
        }
    }
    let url = destination
        .store_url
        .clone()
        .unwrap_or_else(|| store.url.clone());
    if url.is_empty() {
        return Ok(0);
    }
    let objects = crate::objstore::Objects::from_url(&url, &options).map_err(|e| e.to_string())?;
    let (prefix, _) = crate::export::plan::bundle_place(
        destination,
        &export.namespace().unwrap_or_default(),
        &export.name_any(),
    );
    if destination.delete_on_resource_deletion {
        return objects
            .delete_prefix(&prefix)
            .await
            .map_err(|e| e.to_string());
    }
    let mut removed = 0;
    for listed in objects.list(&prefix).await.map_err(|e| e.to_string())? {
        if listed.key.contains(".parts/") {
            objects
                .delete(&listed.key)
                .await
                .map_err(|e| e.to_string())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn to_json(status: &MetricsExportStatus) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_default()
}

fn requeue_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Action {
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Action::requeue(wait + Duration::from_secs(1))
}

fn as_phase(phase: ExportPhase) -> Option<Phase> {
    match phase {
        ExportPhase::Pending => Some(Phase::Pending),
        ExportPhase::Running => Some(Phase::Running),
        ExportPhase::Succeeded => Some(Phase::Succeeded),
        ExportPhase::Failed => Some(Phase::Failed),
        ExportPhase::Suspended => None,
    }
}

fn window_range(window: Window) -> Span {
    crate::crd::time::span_of_millis(window.start_ms, window.end_ms)
}

/// The status of a suspended run: its progress and checkpoint are kept, no Job.
pub fn suspended_status(
    previous: &MetricsExportStatus,
    run: &RunPlan,
    generation: Option<i64>,
) -> MetricsExportStatus {
    let ready = condition(
        &previous.conditions,
        crate::crd::CONDITION_READY,
        false,
        "Suspended",
        format!(
            "run {} is suspended; set spec.suspend to false to resume it",
            run.run_id
        ),
        generation,
        now(),
    );
    MetricsExportStatus {
        phase: Some(ExportPhase::Suspended),
        run_id: Some(run.run_id.clone()),
        range: Some(window_range(run.range)),
        job_name: None,
        conditions: vec![ready],
        observed_generation: generation,
        ..previous.clone()
    }
}

/// The status after `run_state`, from the one of the same run before.
pub fn status(
    previous: &MetricsExportStatus,
    run: &RunPlan,
    run_state: &Run,
    generation: Option<i64>,
) -> MetricsExportStatus {
    let phase = run_state.phase();
    let observed = run_state.observed();
    let message = run_state.message().unwrap_or_default();
    let complete = condition_of(
        &previous.conditions,
        CONDITION_COMPLETE,
        run_state.verdict(),
        run_state.reason(),
        &message,
        generation,
        now(),
    );
    let ready = Condition {
        type_: crate::crd::CONDITION_READY.into(),
        ..complete.clone()
    };
    let mut next = MetricsExportStatus {
        phase: Some(phase.into()),
        run_id: Some(run.run_id.clone()),
        range: Some(window_range(run.range)),
        job_name: Some(run_state.job_name().to_string()),
        start_time: observed
            .and_then(|o| o.start_time.clone())
            .or_else(|| previous.start_time.clone()),
        completion_time: observed.and_then(|o| o.completion_time.clone()),
        errors: if phase == Phase::Failed {
            vec![message]
        } else {
            Vec::new()
        },
        conditions: vec![complete, ready],
        observed_generation: generation,
        ..previous.clone()
    };
    if let Some(result) = observed
        .and_then(|o| o.result.as_ref())
        .and_then(|r| r.export.as_ref())
        .filter(|_| phase == Phase::Succeeded)
    {
        apply_result(&mut next, result);
    }
    next
}

/// What a finished Job reported: the bundle, the counts, the final progress.
fn apply_result(status: &mut MetricsExportStatus, result: &ExportResult) {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    status.archive = Some(Archive {
        key: result.bundle.key.clone(),
        size: count(result.bundle.size),
        sha256: result.bundle.sha256.clone(),
        manifest_key: Some(result.bundle.manifest_key.clone()),
    });
    status.series_exported = Some(count(result.series));
    status.samples_exported = Some(count(result.samples));
    let mut progress = status.progress.clone().unwrap_or_default();
    progress.batches_done = count(result.windows);
    progress.batches_total = count(result.windows);
    progress.method = Some(result.method.clone());
    progress.series = count(result.series);
    progress.samples = count(result.samples);
    progress.current_window = None;
    progress.eta_seconds = None;
    status.progress = Some(progress);
    // The parts are gone with the bundle written.
    status.checkpoint = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::termination::{BundleEntry, JobResult};

    fn export(schedule: Option<&str>) -> MetricsExport {
        let mut export: MetricsExport = serde_yaml::from_str(
            r#"
apiVersion: vctp.io/v1alpha1
kind: MetricsExport
metadata: {name: support-case-4711, namespace: monitoring, uid: 9d3c4f0a-2222-4e4e-9a9a-0c0c0c0c0c0c}
spec:
  source:
    url: "http://vmselect:8481"
    kind: Cluster
    tenant: "0"
    authSecretRef: {name: vm-reader, usernameKey: user, passwordKey: pass}
    headers:
      - {name: X-Org, value: acme}
      - {name: X-Api-Key, valueFrom: {name: gateway, key: api-key}}
    tls: {caBundleConfigMapRef: {name: vm-ca, key: ca.crt}}
  lookbackSeconds: 3600
  selectors: ['{job="vmagent"}']
  obfuscation: {keySecretRef: {name: export-key, key: key}}
  destination: {credentialsSecretRef: {name: bucket}}
"#,
        )
        .unwrap();
        export.spec.schedule = schedule.map(str::to_string);
        export
    }

    #[test]
    fn every_secret_the_job_mounts_is_checked_with_the_field_naming_it() {
        let mut export = export(None);
        export.spec.source.tls = serde_json::from_value(
            serde_json::json!({"caBundleSecretRef": {"name": "vm-ca", "key": "ca.crt"}}),
        )
        .unwrap();
        let refs = mounted_secrets(&export);
        let expected = [
            ("spec.source.authSecretRef", "vm-reader"),
            ("spec.source.headers[1].valueFrom", "gateway"),
            ("spec.source.tls.caBundleSecretRef", "vm-ca"),
            ("spec.obfuscation.keySecretRef", "export-key"),
        ];
        let refs: Vec<(&str, &str)> = refs.iter().map(|(f, n)| (f.as_str(), n.as_str())).collect();
        assert_eq!(refs, expected);
        // And they are every Secret of the Job but the destination's (read, then checked).
        let run = plan(
            &export,
            at("2026-03-10T14:00:00Z"),
            at("2026-03-10T14:00:00Z"),
        )
        .unwrap()
        .0
        .unwrap();
        let request = build(&export, &run, &["key".to_owned()]);
        let mut mounted: Vec<String> = request
            .env
            .iter()
            .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
            .map(|s| s.name.clone())
            .filter(|name| name != "bucket")
            .collect();
        mounted.sort();
        mounted.dedup();
        let mut named: Vec<String> = refs.iter().map(|(_, n)| n.to_string()).collect();
        named.sort();
        assert_eq!(mounted, named);
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_one_off_export_stands_for_its_creation_and_looks_back_from_there() {
        let export = export(None);
        let created = at("2026-03-10T14:00:00.700Z");
        let due = due(&export, created, at("2026-03-10T15:00:00Z")).unwrap();
        assert_eq!(
            due,
            Due::Run {
                tick: created,
                next: None
            }
        );
        let Due::Run { tick, .. } = due else {
            unreachable!()
        };
        let run = run_plan(&export, tick).unwrap();
        assert_eq!(run.run_id, "20260310T140000Z");
        assert_eq!(run.job_name, "support-case-4711-export-20260310t140000z");
        assert_eq!(
            run.range,
            Window::new(1_773_147_600_000, 1_773_151_200_000).unwrap()
        );
    }

    #[test]
    fn a_scheduled_export_waits_for_its_first_tick_then_runs_the_latest_one_in_its_zone() {
        let mut export = export(Some("0 2 * * *"));
        let created = at("2026-03-10T14:00:00Z");
        assert_eq!(
            due(&export, created, at("2026-03-10T15:00:00Z")).unwrap(),
            Due::Wait {
                next: at("2026-03-11T02:00:00Z")
            }
        );
        assert_eq!(
            due(&export, created, at("2026-03-13T09:00:00Z")).unwrap(),
            Due::Run {
                tick: at("2026-03-13T02:00:00Z"),
                next: Some(at("2026-03-14T02:00:00Z"))
            }
        );
        export.spec.time_zone = "Europe/Zurich".into();
        assert_eq!(
            due(&export, created, at("2026-03-13T09:00:00Z")).unwrap(),
            Due::Run {
                tick: at("2026-03-13T01:00:00Z"),
                next: Some(at("2026-03-14T01:00:00Z"))
            }
        );
        export.spec.schedule = Some("0 2 * *".into());
        assert_eq!(
            due(&export, created, Utc::now()).unwrap_err().reason(),
            "InvalidSchedule"
        );
    }

    #[test]
    fn the_job_gets_the_resolved_run_and_every_secret_as_env() {
        let export = export(None);
        let run = run_plan(&export, at("2026-03-10T14:00:00Z")).unwrap();
        let request = build(&export, &run, &["aws_access_key_id".into()]);
        assert_eq!(
            request.args,
            [
                "job",
                "export",
                "--name",
                "monitoring/support-case-4711",
                "--run-id",
                "20260310T140000Z",
                "--start",
                "2026-03-10T13:00:00Z",
                "--end",
                "2026-03-10T14:00:00Z"
            ]
        );
        let names: Vec<&str> = request.env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "VCTP_SOURCE_USERNAME",
                "VCTP_SOURCE_PASSWORD",
                "VCTP_SOURCE_HEADER_1",
                "VCTP_SOURCE_CA_BUNDLE",
                "VCTP_OBFUSCATION_KEY",
                "VCTP_STORE_aws_access_key_id"
            ]
        );
        // Only references: no value of a Secret is in the Job.
        assert!(
            request
                .env
                .iter()
                .all(|e| e.value.is_none() && e.value_from.is_some())
        );
    }

    #[test]
    fn a_succeeded_run_records_the_bundle_and_its_counts() {
        let export = export(None);
        let run = run_plan(&export, at("2026-03-10T14:00:00Z")).unwrap();
        let mut result = JobResult::succeeded("done".into());
        result.export = Some(ExportResult {
            run_id: run.run_id.clone(),
            method: "Export".into(),
            series: 200,
            samples: 288_000,
            skipped: 0,
            windows: 72,
            splits: 0,
            resumed: 0,
            bundle: BundleEntry {
                key: "exports/monitoring/support-case-4711/20260310T140000Z.zip".into(),
                size: 1_234,
                sha256: "ab".repeat(32),
                manifest_key: "exports/monitoring/support-case-4711/20260310T140000Z.manifest.json"
                    .into(),
            },
        });
        let state = Run::Observed {
            job_name: run.job_name.clone(),
            observed: Box::new(workload::Observed {
                phase: Phase::Succeeded,
                start_time: None,
                completion_time: None,
                result: Some(result),
                message: None,
                failure: None,
                abandoned: false,
            }),
        };
        let previous = MetricsExportStatus {
            checkpoint: Some(Default::default()),
            ..MetricsExportStatus::default()
        };
        let status = status(&previous, &run, &state, Some(3));
        assert_eq!(status.phase, Some(ExportPhase::Succeeded));
        let archive = status.archive.unwrap();
        assert_eq!(archive.sha256, "ab".repeat(32));
        assert!(archive.manifest_key.unwrap().ends_with(".manifest.json"));
        assert_eq!(status.samples_exported, Some(288_000));
        assert_eq!(status.progress.unwrap().batches_done, 72);
        assert_eq!(status.checkpoint, None);
        assert_eq!(status.run_id.as_deref(), Some("20260310T140000Z"));
    }

    #[test]
    fn a_failed_run_lists_its_error_and_a_suspended_one_keeps_its_progress() {
        let export = export(None);
        let run = run_plan(&export, at("2026-03-10T14:00:00Z")).unwrap();
        let state = Run::Observed {
            job_name: run.job_name.clone(),
            observed: Box::new(workload::Observed {
                phase: Phase::Failed,
                start_time: None,
                completion_time: None,
                result: Some(JobResult::failed(
                    "Unauthorized",
                    "http://vm refused the credentials (HTTP 401)".into(),
                )),
                message: None,
                failure: None,
                abandoned: false,
            }),
        };
        let status = status(&MetricsExportStatus::default(), &run, &state, Some(1));
        assert_eq!(status.phase, Some(ExportPhase::Failed));
        assert_eq!(status.conditions[0].reason, "Unauthorized");
        assert_eq!(status.conditions[0].status, "False");
        assert_eq!(status.errors.len(), 1);

        // A run that has not ended has no verdict: Complete and Ready are Unknown.
        let created = Run::Created {
            job_name: run.job_name.clone(),
        };
        let pending = super::status(&MetricsExportStatus::default(), &run, &created, Some(1));
        assert!(
            pending.conditions.iter().all(|c| c.status == "Unknown"),
            "{:?}",
            pending.conditions
        );

        let running = MetricsExportStatus {
            progress: Some(crate::crd::metrics_export::Progress {
                batches_done: 3,
                batches_total: 12,
                ..Default::default()
            }),
            job_name: Some(run.job_name.clone()),
            ..MetricsExportStatus::default()
        };
        let suspended = suspended_status(&running, &run, Some(2));
        assert_eq!(suspended.phase, Some(ExportPhase::Suspended));
        assert_eq!(suspended.job_name, None);
        assert_eq!(suspended.progress.unwrap().batches_done, 3);
    }

    #[test]
    #[ignore = "needs Lua: source scripts/lua.sh; lua_start (VCTP_TEST_LUA)"]
    fn argo_cd_health_follows_the_latest_run() {
        let export = export(None);
        let run = run_plan(&export, at("2026-03-10T14:00:00Z")).unwrap();
        let health = |export: &MetricsExport, next: MetricsExportStatus| {
            let mut object = export.clone();
            object.status = Some(next);
            crate::operator::argocd::health("MetricsExport", &object)
        };
        let observed = |phase: Phase, result: Option<JobResult>| Run::Observed {
            job_name: run.job_name.clone(),
            observed: Box::new(workload::Observed {
                phase,
                start_time: None,
                completion_time: None,
                result,
                message: None,
                failure: None,
                abandoned: false,
            }),
        };
        let at_state =
            |state: &Run| super::status(&MetricsExportStatus::default(), &run, state, Some(1));
        let created = Run::Created {
            job_name: run.job_name.clone(),
        };
        assert_eq!(health(&export, at_state(&created)).0, "Progressing");
        let running = observed(Phase::Running, None);
        assert_eq!(health(&export, at_state(&running)).0, "Progressing");
        let done = observed(Phase::Succeeded, Some(JobResult::succeeded("done".into())));
        assert_eq!(health(&export, at_state(&done)).0, "Healthy");
        let refused = observed(
            Phase::Failed,
            Some(JobResult::failed(
                "Unauthorized",
                "http://vm refused the credentials (HTTP 401)".into(),
            )),
        );
        let (state, message) = health(&export, at_state(&refused));
        assert_eq!(state, "Degraded");
        assert!(message.contains("HTTP 401"), "{message}");
        let mut paused = export.clone();
        paused.spec.suspend = true;
        let suspended = suspended_status(&at_state(&running), &run, Some(1));
        assert_eq!(health(&paused, suspended).0, "Suspended");
    }

    #[test]
    fn env_names_follow_the_jobs_contract() {
        let var = |e: &k8s_openapi::api::core::v1::EnvVar| e.name.clone();
        let export = export(None);
        let run = run_plan(&export, at("2026-03-10T14:00:00Z")).unwrap();
        let request = build(&export, &run, &[]);
        assert!(request.env.iter().map(var).all(|n| n.starts_with("VCTP_")));
    }
}
