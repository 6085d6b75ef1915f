//! The `AggregationJob` controller: [`validate`] the period (pure) → [`build`] the Job running
//! `vctp job aggregate --name NS/NAME` (pure) → apply: create it once (server-side apply) →
//! [`status`]: the Job's phase, times, rows and report objects (pure), written with an Event
//! at each turn.

use super::workload::{JobRequest, Run, ensure_run};
use super::{Context, Error, condition, condition_of, error_policy, now, replace_status};
use crate::crd::aggregation_job::{AggregationPeriod, CONDITION_COMPLETE, ReportObject};
use crate::crd::{AggregationJob, AggregationJobStatus, Condition, Phase};
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
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
    super::reconcile_fresh(CONTROLLER, request.as_ref(), &ctx, reconcile_request).await
}

async fn reconcile_request(request: &AggregationJob, ctx: &Context) -> Result<Action, Error> {
    let previous = request.status.clone().unwrap_or_default();
    if previous.phase.is_some_and(Phase::is_finished) {
        return Ok(Action::await_change());
    }
    let period = match validate(request) {
        Ok(valid) => valid.period.label(),
        Err((reason, message)) => {
            let failed = invalid_status(&previous, reason, &message, request.meta().generation);
            replace_status(ctx, request, &to_json(&previous), &to_json(&failed)).await?;
            return Err(ctx.reject(request, reason, message).await);
        }
    };
    let run = ensure_run(
        ctx,
        request,
        CONTROLLER,
        build(request),
        previous.job_name.is_some(),
    )
    .await?;
    let next = status(&previous, &run, period, request.meta().generation);
    if let Some((kind, reason, note)) = run.event(previous.phase) {
        ctx.event(request, kind, &reason, "Aggregate", note).await;
    }
    if next.phase.is_some_and(Phase::is_finished) && previous.phase != next.phase {
        ctx.metrics.aggregation_finished(
            period_label(request.spec.period),
            next.phase == Some(Phase::Succeeded),
        );
    }
    replace_status(ctx, request, &to_json(&previous), &to_json(&next)).await?;
    run.stop_if_abandoned(ctx, &request.namespace().unwrap_or_default())
        .await?;
    if next.phase.is_some_and(Phase::is_finished) {
        Ok(Action::await_change())
    } else {
        Ok(ctx.until_unfinished_checked())
    }
}

fn to_json(status: &AggregationJobStatus) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_default()
}

/// What the schema cannot check on API servers without CEL: the period's field is there and
/// names a real day or month. Gives the request the Job will run.
pub fn validate(
    request: &AggregationJob,
) -> Result<crate::jobs::aggregate::Request, (&'static str, String)> {
    request
        .validate_cel()
        .map_err(|e| ("InvalidSpec", format!("{e:?}")))?;
    crate::jobs::aggregate::Request::from_spec(&request.spec)
        .map_err(|e| ("InvalidPeriod", e.to_string()))
}

fn period_label(period: AggregationPeriod) -> &'static str {
    match period {
        AggregationPeriod::Hourly => "hourly",
        AggregationPeriod::Daily => "daily",
        AggregationPeriod::Monthly => "monthly",
    }
}

/// The Job of `request`: `vctp job aggregate --name NS/NAME`, named after the request.
pub fn build(request: &AggregationJob) -> JobRequest {
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

/// The status after `run` of the request for `period` (its label, e.g. `2026-03-10T14`),
/// from the one before.
pub fn status(
    previous: &AggregationJobStatus,
    run: &Run,
    period: String,
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
    let complete = condition_of(
        &previous.conditions,
        CONDITION_COMPLETE,
        run.verdict(),
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
        period: Some(period),
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

#[cfg(test)]
mod tests {
    use super::super::scenario::{self, expect, not_found};
    use super::*;
    use serde_json::{Value, json};
    use std::time::Duration;

    fn request(status: Value) -> Arc<AggregationJob> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
                "metadata": {
                    "name": "daily-2026-03-10", "namespace": "finance",
                    "uid": "0b7f7c58-1111-4d6e-8f0e-2a4a7c3f9e10", "generation": 1,
                },
                "spec": { "period": "Daily", "date": "2026-03-10" },
                "status": status,
            }))
            .unwrap(),
        )
    }

    const JOB: &str = "/apis/batch/v1/namespaces/finance/jobs/daily-2026-03-10-aggregate";
    const PODS: &str = "/api/v1/namespaces/finance/pods";
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/finance/events";
    const OBJECT: &str =
        "/apis/vctp.io/v1alpha1/namespaces/finance/aggregationjobs/daily-2026-03-10";
    const STATUS: &str =
        "/apis/vctp.io/v1alpha1/namespaces/finance/aggregationjobs/daily-2026-03-10/status";

    fn finished_job(condition: &str) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "daily-2026-03-10-aggregate", "namespace": "finance" },
            "status": {
                "startTime": "2026-03-11T00:30:02Z",
                "conditions": [{ "type": condition, "status": "True", "reason": "BackoffLimitExceeded",
                                 "message": "Job has reached the specified backoff limit",
                                 "lastTransitionTime": "2026-03-11T00:31:00Z" }],
            },
        })
    }

    fn pods_with_result(result: Value) -> Value {
        json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
            "metadata": { "name": "p", "namespace": "finance", "creationTimestamp": "2026-03-11T00:30:02Z" },
            "status": { "containerStatuses": [{
                "name": "vctp", "image": "vctp:test", "imageID": "", "ready": false, "restartCount": 0,
                "state": { "terminated": { "exitCode": 0, "message": result.to_string() } },
            }]},
        }]})
    }

    #[test]
    #[ignore = "needs Lua: source scripts/lua.sh; lua_start (VCTP_TEST_LUA)"]
    fn argo_cd_health_is_progressing_while_the_run_runs_then_healthy_or_degraded() {
        use crate::operator::workload::Observed;
        let resource = request(Value::Null);
        let health = |run: Run| {
            let mut object = (*resource).clone();
            object.status = Some(status(
                &AggregationJobStatus::default(),
                &run,
                "2026-03-10".into(),
                Some(1),
            ));
            crate::operator::argocd::health("AggregationJob", &object)
        };
        let job_name = "daily-2026-03-10-aggregate".to_string();
        let observed = |phase: Phase, message: Option<&str>| Run::Observed {
            job_name: job_name.clone(),
            observed: Box::new(Observed {
                phase,
                start_time: None,
                completion_time: None,
                result: None,
                message: message.map(str::to_string),
                failure: None,
                abandoned: false,
            }),
        };
        assert_eq!(
            crate::operator::argocd::health("AggregationJob", &*resource).0,
            "Progressing"
        );
        let created = health(Run::Created {
            job_name: job_name.clone(),
        });
        assert_eq!(created.0, "Progressing", "{created:?}");
        assert_eq!(health(observed(Phase::Running, None)).0, "Progressing");
        assert_eq!(health(observed(Phase::Succeeded, None)).0, "Healthy");
        let failed = health(observed(
            Phase::Failed,
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        ));
        assert_eq!(
            failed,
            (
                "Degraded".into(),
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        // An invalid period fails at once.
        let mut invalid = (*resource).clone();
        invalid.status = Some(invalid_status(
            &AggregationJobStatus::default(),
            "InvalidPeriod",
            "date: 2026-02-30 is not a day",
            Some(1),
        ));
        let (state, message) = crate::operator::argocd::health("AggregationJob", &invalid);
        assert_eq!(
            (state.as_str(), message.as_str()),
            ("Degraded", "date: 2026-02-30 is not a day")
        );
    }

    #[tokio::test]
    async fn a_new_request_gets_one_owned_job_and_a_pending_status_naming_it() {
        let (ctx, mut api) = scenario::context();
        let resource = request(Value::Null);
        let object = serde_json::to_value(&*resource).unwrap();
        let result = scenario::run(reconcile(resource, ctx.clone()), async move {
            expect(&mut api, "GET", OBJECT, 200, object.clone()).await;
            expect(&mut api, "GET", JOB, 404, not_found()).await;
            let job = expect(&mut api, "PATCH", JOB, 200, Value::Null).await;
            assert_eq!(
                job["metadata"]["ownerReferences"][0]["kind"],
                "AggregationJob"
            );
            assert_eq!(job["metadata"]["ownerReferences"][0]["controller"], true);
            assert_eq!(
                job["spec"]["template"]["spec"]["containers"][0]["args"],
                json!(["job", "aggregate", "--name", "finance/daily-2026-03-10"])
            );
            let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
            assert_eq!(event["reason"], "JobCreated");
            let status = expect(&mut api, "PATCH", STATUS, 200, object.clone()).await;
            assert_eq!(status["status"]["phase"], "Pending");
            assert_eq!(status["status"]["jobName"], "daily-2026-03-10-aggregate");
            // No verdict before the run ends: Complete and Ready are Unknown, not False.
            let conditions = status["status"]["conditions"].as_array().unwrap();
            let states: Vec<(&str, &str)> = (conditions.iter())
                .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
                .collect();
            assert_eq!(states, [("Complete", "Unknown"), ("Ready", "Unknown")]);
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_completed_job_makes_the_request_succeeded_with_its_rows_and_reports() {
        let (ctx, mut api) = scenario::context();
        let pending = json!({ "phase": "Pending", "jobName": "daily-2026-03-10-aggregate" });
        let resource = request(pending);
        let object = serde_json::to_value(&*resource).unwrap();
        let result = scenario::run(reconcile(resource, ctx.clone()), async move {
            expect(&mut api, "GET", OBJECT, 200, object.clone()).await;
            expect(&mut api, "GET", JOB, 200, finished_job("Complete")).await;
            let result = json!({ "succeeded": true, "aggregation": { "rowsWritten": 412, "reports": [
                { "key": "reports/daily/2026-03-10/all.xlsx", "size": 52311, "sha256": "ab" }]}});
            expect(&mut api, "GET", PODS, 200, pods_with_result(result)).await;
            let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
            assert_eq!((event["type"].as_str(), event["reason"].as_str()), (Some("Normal"), Some("Succeeded")));
            let status = expect(&mut api, "PATCH", STATUS, 200, object.clone()).await;
            assert_eq!(status["status"]["phase"], "Succeeded");
            assert_eq!(status["status"]["rowsWritten"], 412);
            assert_eq!(status["status"]["reports"][0]["key"], "reports/daily/2026-03-10/all.xlsx");
            assert_eq!(status["status"]["conditions"][0]["status"], "True");
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        let text = ctx.metrics.render().unwrap();
        assert!(text.contains("vctp_daily_aggregations_total 1"), "{text}");
    }

    #[tokio::test]
    async fn a_job_that_failed_its_retries_makes_the_request_failed_with_a_warning() {
        let (ctx, mut api) = scenario::context();
        let running = json!({ "phase": "Running", "jobName": "daily-2026-03-10-aggregate" });
        let resource = request(running);
        let object = serde_json::to_value(&*resource).unwrap();
        let result = scenario::run(reconcile(resource, ctx.clone()), async move {
            expect(&mut api, "GET", OBJECT, 200, object.clone()).await;
            expect(&mut api, "GET", JOB, 200, finished_job("Failed")).await;
            let result = json!({ "succeeded": false, "reason": "NoHourlyRows",
                                 "message": "no hourly snapshots stored for 2026-03-10" });
            expect(&mut api, "GET", PODS, 200, pods_with_result(result)).await;
            let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
            assert_eq!(
                (event["type"].as_str(), event["reason"].as_str()),
                (Some("Warning"), Some("NoHourlyRows"))
            );
            let status = expect(&mut api, "PATCH", STATUS, 200, object.clone()).await;
            assert_eq!(status["status"]["phase"], "Failed");
            assert_eq!(
                status["status"]["message"],
                "no hourly snapshots stored for 2026-03-10"
            );
            assert_eq!(status["status"]["conditions"][0]["reason"], "NoHourlyRows");
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
        let text = ctx.metrics.render().unwrap();
        assert!(
            text.contains("vctp_daily_aggregations_failed_total 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_job_deleted_before_it_finished_is_reported_and_never_recreated() {
        let (ctx, mut api) = scenario::context();
        let running = json!({ "phase": "Running", "jobName": "daily-2026-03-10-aggregate" });
        let resource = request(running);
        let object = serde_json::to_value(&*resource).unwrap();
        let result = scenario::run(reconcile(resource, ctx.clone()), async move {
            expect(&mut api, "GET", OBJECT, 200, object.clone()).await;
            expect(&mut api, "GET", JOB, 404, not_found()).await;
            let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
            assert_eq!(event["reason"], "JobDeleted");
            let status = expect(&mut api, "PATCH", STATUS, 200, object.clone()).await;
            assert_eq!(status["status"]["phase"], "Failed");
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_finished_request_makes_no_change() {
        let (ctx, mut api) = scenario::context();
        let done = json!({ "phase": "Succeeded", "jobName": "daily-2026-03-10-aggregate" });
        let resource = request(done);
        let object = serde_json::to_value(&*resource).unwrap();
        let result = scenario::run(reconcile(resource, ctx), async move {
            expect(&mut api, "GET", OBJECT, 200, object).await;
            // Nothing else comes, or the client is dropped with the finished reconcile.
            let next = tokio::time::timeout(Duration::from_millis(100), api.next_request()).await;
            assert!(matches!(next, Err(_) | Ok(None)), "no request expected");
        })
        .await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn an_api_error_is_retried_with_backoff_and_counted_by_reason() {
        let (ctx, mut api) = scenario::context();
        let request = request(Value::Null);
        let object = serde_json::to_value(&*request).unwrap();
        let result = scenario::run(reconcile(request.clone(), ctx.clone()), async move {
            expect(&mut api, "GET", OBJECT, 200, object.clone()).await;
            expect(
                &mut api,
                "GET",
                JOB,
                500,
                json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "InternalError", "code": 500, "message": "etcd is down"}),
            )
            .await;
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.reason(), "ApiUnavailable");
        assert_eq!(
            error_policy(request.clone(), &error, ctx.clone()),
            Action::requeue(Duration::from_secs(2))
        );
        assert_eq!(
            error_policy(request, &error, ctx.clone()),
            Action::requeue(Duration::from_secs(4))
        );
        let text = ctx.metrics.render().unwrap();
        assert!(text.contains(r#"vctp_operator_reconcile_errors_total{controller="AggregationJob",reason="ApiUnavailable"} 1"#), "{text}");
    }

    #[tokio::test]
    async fn an_impossible_date_fails_the_request_and_waits_for_a_change() {
        let (ctx, mut api) = scenario::context();
        let mut bad = (*request(Value::Null)).clone();
        bad.spec.date = Some("2026-02-30".into());
        let bad = Arc::new(bad);
        let object = serde_json::to_value(&*bad).unwrap();
        let result = scenario::run(reconcile(bad.clone(), ctx.clone()), async move {
            expect(&mut api, "GET", OBJECT, 200, object.clone()).await;
            let status = expect(&mut api, "PATCH", STATUS, 200, object.clone()).await;
            assert_eq!(status["status"]["phase"], "Failed");
            assert_eq!(status["status"]["conditions"][0]["reason"], "InvalidPeriod");
            let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
            assert_eq!(event["type"], "Warning");
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.reason(), "InvalidPeriod");
        assert_eq!(error_policy(bad, &error, ctx), Action::await_change());
    }
}
