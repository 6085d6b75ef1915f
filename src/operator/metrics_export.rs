//! The `MetricsExport` controller: pick the run (once, or the latest tick of `schedule`, pure)
//! → build the Job running `vctp job export --name NS/NAME` (pure) → create it once
//! (server-side apply) → copy its phase, times and outcome into status, with Events. The
//! export itself comes in a later release: until then the Job fails with `NotYetSupported`,
//! which status and a Warning Event show.

use super::schedule::CronSchedule;
use super::workload::{JobRequest, Run, ensure_run};
use super::{Context, Error, condition, error_policy, now, replace_status};
use crate::crd::metrics_export::CONDITION_COMPLETE;
use crate::crd::{Condition, MetricsExport, MetricsExportStatus, Phase};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "MetricsExport";
/// How far back a scheduled export looks for a missed tick: only the latest one runs.
const MISSED_TICK_HORIZON: chrono::Duration = chrono::Duration::days(31);

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
    super::reconcile_fresh(CONTROLLER, export.as_ref(), &ctx, apply).await
}

/// Which run is due: the one-off export, or the latest tick of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Run now under this Job name; `next` is the following tick of a schedule.
    Run {
        job_name: String,
        next: Option<DateTime<Utc>>,
    },
    /// No tick has come yet; wait until `next`.
    Wait { next: DateTime<Utc> },
}

/// The run due at `now` for an export created at `created`.
pub fn due(
    export: &MetricsExport,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Due, super::schedule::Error> {
    let name = export.name_any();
    let Some(expression) = &export.spec.schedule else {
        return Ok(Due::Run {
            job_name: super::job::job_name(&[&name, "export"]),
            next: None,
        });
    };
    let schedule = CronSchedule::parse(expression, "UTC")?;
    let since = created.max(now - MISSED_TICK_HORIZON);
    let next = schedule.next_after(now);
    Ok(match schedule.latest_in(since, now) {
        Some(tick) => Due::Run {
            job_name: super::job::job_name(&[
                &name,
                "export",
                &tick.format("%Y%m%dt%H%M").to_string(),
            ]),
            next,
        },
        None => match next {
            Some(next) => Due::Wait { next },
            None => Due::Run {
                job_name: super::job::job_name(&[&name, "export"]),
                next: None,
            },
        },
    })
}

async fn apply(export: &MetricsExport, ctx: &Context) -> Result<Action, Error> {
    let status = export.status.clone().unwrap_or_default();
    let generation = export.meta().generation;
    let now_utc = Utc::now();
    let created = export
        .meta()
        .creation_timestamp
        .clone()
        .map_or(now_utc, |t| super::from_timestamp(t.0));
    // The CRD's CEL rules first: API servers before 1.25 do not enforce them.
    let planned = export
        .validate_cel()
        .map_err(|e| ("InvalidSpec", format!("{e:?}")))
        .and_then(|()| due(export, created, now_utc).map_err(|e| (e.reason(), e.to_string())));
    let (job_name, next) = match planned {
        Ok(Due::Run { job_name, next }) => (job_name, next),
        Ok(Due::Wait { next }) => return Ok(requeue_at(next, now_utc)),
        Err((reason, message)) => {
            let ready = condition(
                &status.conditions,
                crate::crd::CONDITION_READY,
                false,
                reason,
                &message,
                generation,
                now(),
            );
            let invalid = MetricsExportStatus {
                phase: Some(Phase::Failed),
                errors: vec![message.clone()],
                conditions: vec![ready],
                observed_generation: generation,
                ..status.clone()
            };
            replace_status(ctx, export, &to_json(&status), &to_json(&invalid)).await?;
            return Err(ctx.reject(export, reason, message).await);
        }
    };
    let same_run = status.job_name.as_deref() == Some(job_name.as_str());
    let previous_phase = if same_run { status.phase } else { None };
    if same_run && previous_phase.is_some_and(Phase::is_finished) {
        return Ok(next.map_or_else(Action::await_change, |n| requeue_at(n, now_utc)));
    }
    let request = JobRequest {
        name: job_name,
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
        ],
        env: Vec::new(),
    };
    let run = ensure_run(ctx, export, CONTROLLER, request, same_run).await?;
    if let Some((kind, reason, note)) = run.event(previous_phase) {
        ctx.event(export, kind, &reason, "Export", note).await;
    }
    let current = to_json(&status);
    let previous = if same_run {
        status
    } else {
        MetricsExportStatus {
            conditions: status.conditions,
            ..MetricsExportStatus::default()
        }
    };
    let next_json = to_json(&next_status(&previous, &run, generation));
    replace_status(ctx, export, &current, &next_json).await?;
    Ok(next.map_or_else(Action::await_change, |n| requeue_at(n, now_utc)))
}

fn to_json(status: &MetricsExportStatus) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_default()
}

fn requeue_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Action {
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Action::requeue(wait + Duration::from_secs(1))
}

/// The status after `run`, from the one of the same run before.
pub fn next_status(
    previous: &MetricsExportStatus,
    run: &Run,
    generation: Option<i64>,
) -> MetricsExportStatus {
    let phase = run.phase();
    let observed = run.observed();
    let message = run.message().unwrap_or_default();
    let complete = condition(
        &previous.conditions,
        CONDITION_COMPLETE,
        phase == Phase::Succeeded,
        run.reason(),
        &message,
        generation,
        now(),
    );
    let ready = Condition {
        type_: crate::crd::CONDITION_READY.into(),
        ..complete.clone()
    };
    MetricsExportStatus {
        phase: Some(phase),
        job_name: Some(run.job_name().to_string()),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(schedule: Option<&str>) -> MetricsExport {
        let mut export: MetricsExport = serde_yaml::from_str(
            r#"
apiVersion: vctp.io/v1alpha1
kind: MetricsExport
metadata: {name: support-case-4711, namespace: monitoring, uid: 9d3c4f0a-2222-4e4e-9a9a-0c0c0c0c0c0c}
spec:
  source: {url: "http://vmselect:8481"}
  lookbackSeconds: 3600
  selectors: ['{job="vmagent"}']
"#,
        )
        .unwrap();
        export.spec.schedule = schedule.map(str::to_string);
        export
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_one_off_export_runs_once_under_a_fixed_name() {
        let due = due(
            &export(None),
            at("2026-03-10T14:00:00Z"),
            at("2026-03-10T14:00:01Z"),
        );
        assert_eq!(
            due.unwrap(),
            Due::Run {
                job_name: "support-case-4711-export".into(),
                next: None
            }
        );
    }

    #[test]
    fn a_scheduled_export_waits_for_its_first_tick_then_runs_the_latest_one() {
        let export = export(Some("0 2 * * *"));
        let created = at("2026-03-10T14:00:00Z");
        assert_eq!(
            due(&export, created, at("2026-03-10T15:00:00Z")).unwrap(),
            Due::Wait {
                next: at("2026-03-11T02:00:00Z")
            }
        );
        // Three ticks missed: only the latest runs.
        assert_eq!(
            due(&export, created, at("2026-03-13T09:00:00Z")).unwrap(),
            Due::Run {
                job_name: "support-case-4711-export-20260313t0200".into(),
                next: Some(at("2026-03-14T02:00:00Z"))
            }
        );
    }

    #[test]
    fn a_schedule_the_cron_parser_refuses_is_an_error_with_its_reason() {
        let err = due(
            &export(Some("0 2 * *")),
            at("2026-03-10T14:00:00Z"),
            Utc::now(),
        );
        assert_eq!(err.unwrap_err().reason(), "InvalidSchedule");
    }

    #[test]
    fn a_failed_run_lists_its_error_and_is_not_complete() {
        let run = Run::Observed {
            job_name: "support-case-4711-export".into(),
            observed: Box::new(super::super::workload::Observed {
                phase: Phase::Failed,
                start_time: None,
                completion_time: None,
                result: Some(crate::jobs::termination::JobResult::failed(
                    "NotYetSupported",
                    "MetricsExport is not supported by this vctp version yet".into(),
                )),
                message: None,
            }),
        };
        let status = next_status(&MetricsExportStatus::default(), &run, Some(1));
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.errors.len(), 1);
        assert!(status.errors[0].contains("not supported"));
        let complete = &status.conditions[0];
        assert_eq!(
            (complete.type_.as_str(), complete.status.as_str()),
            ("Complete", "False")
        );
        assert_eq!(complete.reason, "NotYetSupported");
        assert_eq!(status.observed_generation, Some(1));
    }
}
