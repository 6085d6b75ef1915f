//! The `AggregationJob` controller: validate the period (pure) → build the Job running
//! `vctp job aggregate --name NS/NAME` (pure) → create it once (server-side apply) → copy the
//! Job's phase, times, rows and report objects into status, with an Event at each turn.

use super::workload::{JobRequest, Run, ensure_run};
use super::{Context, Error, apply_status, condition, error_policy, instrumented, now};
use crate::crd::aggregation_job::{AggregationPeriod, CONDITION_COMPLETE, ReportObject};
use crate::crd::{AggregationJob, AggregationJobStatus, Condition, Phase};
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::sync::Arc;

pub const CONTROLLER: &str = "AggregationJob";

/// Reconciles the `AggregationJob`s of `namespace` until the stream ends.
pub async fn run(ctx: Arc<Context>, namespace: String) {
    let requests = Api::<AggregationJob>::namespaced(ctx.client.clone(), &namespace);
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &namespace);
    let results = Controller::new(requests, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .run(reconcile, error_policy, ctx);
    super::drain(CONTROLLER, &namespace, results).await;
}

async fn reconcile(request: Arc<AggregationJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    instrumented(CONTROLLER, request.as_ref(), &ctx, apply(&request, &ctx)).await
}

async fn apply(request: &AggregationJob, ctx: &Context) -> Result<Action, Error> {
    let status = request.status.clone().unwrap_or_default();
    if status.phase.is_some_and(Phase::is_finished) {
        return Ok(Action::await_change());
    }
    if let Err((reason, message)) = validate(request) {
        let failed = invalid_status(&status, reason, &message, request.meta().generation);
        apply_status(
            ctx,
            request,
            super::MANAGER,
            serde_json::to_value(failed).unwrap_or_default(),
        )
        .await?;
        ctx.event(
            request,
            EventType::Warning,
            reason,
            "Validate",
            message.clone(),
        )
        .await;
        return Err(Error::InvalidSpec {
            kind: CONTROLLER,
            namespace: request.namespace().unwrap_or_default(),
            name: request.name_any(),
            reason,
            message,
        });
    }
    let run = ensure_run(
        ctx,
        request,
        CONTROLLER,
        job_request(request),
        status.job_name.is_some(),
    )
    .await?;
    let next = next_status(&status, &run, request.meta().generation);
    if let Some((kind, reason, note)) = run.event(status.phase) {
        ctx.event(request, kind, &reason, "Aggregate", note).await;
    }
    if next.phase.is_some_and(Phase::is_finished) && status.phase != next.phase {
        ctx.metrics.aggregation_finished(
            period_label(request.spec.period),
            next.phase == Some(Phase::Succeeded),
        );
    }
    apply_status(
        ctx,
        request,
        super::MANAGER,
        serde_json::to_value(next).unwrap_or_default(),
    )
    .await?;
    Ok(Action::await_change())
}

/// What the schema cannot check on API servers without CEL: the period's field is there and
/// names a real day or month.
pub fn validate(request: &AggregationJob) -> Result<(), (&'static str, String)> {
    use crate::aggregate::{Day, Month};
    request
        .validate_cel()
        .map_err(|e| ("InvalidSpec", format!("{e:?}")))?;
    let spec = &request.spec;
    let invalid = |message: String| ("InvalidPeriod", message);
    match spec.period {
        AggregationPeriod::Hourly if spec.at.is_none() => {
            Err(invalid("period Hourly needs `at`".into()))
        }
        AggregationPeriod::Daily => match &spec.date {
            Some(date) => Day::parse(date)
                .map(|_| ())
                .map_err(|e| invalid(e.to_string())),
            None => Err(invalid("period Daily needs `date` (YYYY-MM-DD)".into())),
        },
        AggregationPeriod::Monthly => match &spec.month {
            Some(month) => Month::parse(month)
                .map(|_| ())
                .map_err(|e| invalid(e.to_string())),
            None => Err(invalid("period Monthly needs `month` (YYYY-MM)".into())),
        },
        AggregationPeriod::Hourly => Ok(()),
    }
}

fn period_label(period: AggregationPeriod) -> &'static str {
    match period {
        AggregationPeriod::Hourly => "hourly",
        AggregationPeriod::Daily => "daily",
        AggregationPeriod::Monthly => "monthly",
    }
}

/// The Job of `request`: `vctp job aggregate --name NS/NAME`, named after the request.
pub fn job_request(request: &AggregationJob) -> JobRequest {
    let name = request.name_any();
    JobRequest {
        name: super::job::job_name(&[&name, "aggregate"]),
        component: "aggregate",
        args: vec![
            "job".into(),
            "aggregate".into(),
            "--name".into(),
            format!("{}/{name}", request.namespace().unwrap_or_default()),
        ],
        env: Vec::new(),
    }
}

/// The status after `run`, from the one before.
pub fn next_status(
    previous: &AggregationJobStatus,
    run: &Run,
    generation: Option<i64>,
) -> AggregationJobStatus {
    let phase = run.phase();
    let observed = run.observed();
    let aggregation = observed
        .and_then(|o| o.result.as_ref())
        .and_then(|r| r.aggregation.clone());
    let message = match (&aggregation, run.message()) {
        (Some(a), None) if phase == Phase::Succeeded => Some(format!(
            "{} summary rows, {} report object(s)",
            a.rows_written,
            a.reports.len() + a.reports_omitted
        )),
        (_, message) => message,
    };
    let ok = phase == Phase::Succeeded;
    let complete = condition(
        &previous.conditions,
        CONDITION_COMPLETE,
        ok,
        run.reason(),
        message.clone().unwrap_or_default(),
        generation,
        now(),
    );
    let ready = Condition {
        type_: crate::crd::CONDITION_READY.into(),
        ..complete.clone()
    };
    AggregationJobStatus {
        phase: Some(phase),
        job_name: Some(run.job_name().to_string()),
        start_time: observed
            .and_then(|o| o.start_time.clone())
            .or_else(|| previous.start_time.clone()),
        completion_time: observed.and_then(|o| o.completion_time.clone()),
        rows_written: aggregation.as_ref().map(|a| a.rows_written),
        reports: aggregation
            .map(|a| {
                a.reports
                    .into_iter()
                    .map(|r| ReportObject {
                        key: r.key,
                        size: r.size,
                        sha256: r.sha256,
                        url: r.url,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        message,
        conditions: vec![complete, ready],
        observed_generation: generation,
    }
}

fn invalid_status(
    previous: &AggregationJobStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> AggregationJobStatus {
    let ready = condition(
        &previous.conditions,
        crate::crd::CONDITION_READY,
        false,
        reason,
        message,
        generation,
        now(),
    );
    AggregationJobStatus {
        phase: Some(Phase::Failed),
        message: Some(message.to_string()),
        conditions: vec![ready],
        observed_generation: generation,
        ..previous.clone()
    }
}
