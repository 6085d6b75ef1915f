//! Scenarios of the `SnapshotSchedule` controller: the real reconcile against a scripted API
//! server (tests/mock_api), one behaviour per test, each within a second.

mod mock_api;

use chrono::{Datelike, Utc};
use mock_api::ApiServer;
use serde_json::{Value, json};
use std::sync::Arc;
use vctp::crd::SnapshotSchedule;
use vctp::operator::snapshot_schedule::reconcile;

const TARGETS: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/vcentertargets";
const JOBS: &str = "/apis/batch/v1/namespaces/finance/jobs";
const PODS: &str = "/api/v1/namespaces/finance/pods";
const AGGREGATIONS: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/aggregationjobs";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/finance/events";
const STATUS: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/snapshotschedules/yearly/status";
const SNAPSHOT_SELECTOR: &str =
    "app.kubernetes.io/instance=yearly,app.kubernetes.io/component=snapshot";

fn year() -> i32 {
    Utc::now().year()
}

/// This year's tick as it appears in Job names.
fn stamp() -> String {
    format!("{}0101t0000", year())
}

/// A schedule ticking on 1 January at 00:00 UTC, created the day before this year's tick:
/// whatever the clock says, exactly one tick is due (this year's) and the next is a year
/// away. Only snapshots: no aggregation crons, no hourly reports.
fn schedule(status: Value) -> Value {
    json!({
        "apiVersion": "vctp.io/v1alpha1",
        "kind": "SnapshotSchedule",
        "metadata": {
            "name": "yearly",
            "namespace": "finance",
            "uid": "3b0c3f4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
            "generation": 1,
            "creationTimestamp": format!("{}-12-31T00:00:00Z", year() - 1),
        },
        "spec": {
            "schedule": "0 0 1 1 *",
            "aggregation": {
                "hourlyReports": false,
                "daily": {"enabled": false},
                "monthly": {"enabled": false},
            },
        },
        "status": status,
    })
}

fn target(name: &str) -> Value {
    json!({
        "apiVersion": "vctp.io/v1alpha1",
        "kind": "VCenterTarget",
        "metadata": {"name": name, "namespace": "finance", "uid": format!("uid-{name}"), "generation": 1},
        "spec": {"url": format!("https://{name}.example.com/sdk"), "credentialsSecretRef": {"name": format!("{name}-account")}},
    })
}

async fn reconcile_json(schedule: Value, ctx: Arc<vctp::operator::Context>) -> Result<(), String> {
    let schedule: SnapshotSchedule = serde_json::from_value(schedule).map_err(|e| e.to_string())?;
    reconcile(Arc::new(schedule), ctx)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Answers the status write (a merge patch) with the schedule carrying the patched status;
/// returns that status.
async fn status_written(api: &mut ApiServer, schedule: &Value) -> Value {
    let mut written = schedule.clone();
    let exchange = api
        .expect("PATCH", STATUS, |e| {
            mock_api::merge(&mut written, &e.body);
            written.clone()
        })
        .await;
    assert_eq!(exchange.param("fieldManager"), Some("vctp-operator"));
    let mut status = schedule["status"].clone();
    mock_api::merge(&mut status, &exchange.body["status"]);
    status
}

/// The reads every reconcile starts with; `jobs` and `pods` are what the cluster holds.
async fn reads(api: &mut ApiServer, jobs: Vec<Value>, pods: Vec<Value>) {
    api.list(TARGETS, vec![target("vc01"), target("vc02")])
        .await;
    let listed = api.list(JOBS, jobs).await;
    assert_eq!(listed.param("labelSelector"), Some(SNAPSHOT_SELECTOR));
    api.list(PODS, pods).await;
    api.list(AGGREGATIONS, vec![]).await;
}

/// `job` as the API server has it once its Pod started.
fn running(mut job: Value) -> Value {
    job["status"] = json!({"active": 1});
    job
}

#[tokio::test]
async fn a_ticks_jobs_are_created_once_and_a_reconcile_after_a_restart_creates_none() {
    // The first reconcile creates one Job per target, then writes the tick to the status.
    let (ctx, mut api) = mock_api::context();
    let fresh = schedule(Value::Null);
    let script_schedule = fresh.clone();
    let (result, (status, jobs)) =
        mock_api::scenario(reconcile_json(fresh.clone(), ctx.clone()), async move {
            reads(&mut api, vec![], vec![]).await;
            let mut jobs = Vec::new();
            for target in ["vc01", "vc02"] {
                let path = format!("{JOBS}/yearly-snap-{}-{target}", stamp());
                let created = api.apply(&path).await;
                assert_eq!(created.param("fieldManager"), Some("vctp-operator"));
                assert_eq!(
                    created.param("force"),
                    None,
                    "creating never takes over a Job"
                );
                jobs.push(created.body);
            }
            let status = status_written(&mut api, &script_schedule).await;
            (status, jobs)
        })
        .await;
    result.unwrap();
    assert_eq!(
        status["lastScheduleTime"],
        format!("{}-01-01T00:00:00Z", year())
    );
    assert_eq!(
        status["nextScheduleTime"],
        format!("{}-01-01T00:00:00Z", year() + 1)
    );
    let active: Vec<&str> = status["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        active,
        [
            format!("yearly-snap-{}-vc01", stamp()),
            format!("yearly-snap-{}-vc02", stamp())
        ]
    );
    assert_eq!(
        jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"][3],
        "finance/vc01"
    );
    assert!(
        ctx.metrics
            .render()
            .unwrap()
            .contains("vctp_operator_jobs_created_total{controller=\"SnapshotSchedule\"} 2")
    );

    // After a restart, with the status written: the Jobs are there, nothing is created and
    // the status, unchanged, is not written again.
    let running_jobs: Vec<Value> = jobs.into_iter().map(running).collect();
    let (ctx, mut api) = mock_api::context();
    let listed = running_jobs.clone();
    let (result, ()) =
        mock_api::scenario(reconcile_json(schedule(status.clone()), ctx), async move {
            reads(&mut api, listed, vec![]).await;
        })
        .await;
    result.unwrap();

    // After a restart that lost the status write: the same tick is planned again, its
    // Jobs are found by name and nothing is created.
    let (ctx, mut api) = mock_api::context();
    let script_schedule = fresh.clone();
    let (result, recovered) = mock_api::scenario(reconcile_json(fresh, ctx), async move {
        reads(&mut api, running_jobs, vec![]).await;
        status_written(&mut api, &script_schedule).await
    })
    .await;
    result.unwrap();
    assert_eq!(recovered["lastScheduleTime"], status["lastScheduleTime"]);
    assert_eq!(recovered["lastTick"], status["lastTick"]);
}

#[tokio::test]
async fn a_finished_snapshot_is_reported_on_the_schedule_and_its_target() {
    let tick = format!("{}-01-01T00:00:00Z", year());
    let vc01 = format!("yearly-snap-{}-vc01", stamp());
    let vc02 = format!("yearly-snap-{}-vc02", stamp());
    let status = json!({
        "lastScheduleTime": tick,
        "active": [{"name": vc01, "target": "vc01"}, {"name": vc02, "target": "vc02"}],
        "lastTick": {"time": tick, "targets": [
            {"target": "vc01", "job": vc01, "outcome": "Running"},
            {"target": "vc02", "job": vc02, "outcome": "Running"},
        ]},
    });
    let job = |name: &str, target: &str, status: Value| {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "finance", "labels": {"vctp.io/tick": "0", "vctp.io/target": target},
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

    let (ctx, mut api) = mock_api::context();
    let current = schedule(status);
    let script_schedule = current.clone();
    let (reconciled, (event, target_status, written)) =
        mock_api::scenario(reconcile_json(current, ctx.clone()), async move {
            reads(&mut api, jobs, vec![pod]).await;
            let event = api.expect("POST", EVENTS, |e| e.body.clone()).await.body;
            let target_status = api
                .expect("PATCH", &format!("{TARGETS}/vc01/status"), |e| {
                    let mut written = target("vc01");
                    written["status"] = e.body["status"].clone();
                    written
                })
                .await;
            assert_eq!(
                target_status.param("fieldManager"),
                Some("vctp-operator/snapshot")
            );
            let written = status_written(&mut api, &script_schedule).await;
            (event, target_status.body["status"].clone(), written)
        })
        .await;
    reconciled.unwrap();

    assert_eq!(event["reason"], "SnapshotSucceeded");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["note"], "vc01: stored 412 rows");
    assert_eq!(event["regarding"]["name"], "yearly");
    assert_eq!(target_status["lastSnapshotTime"], "2026-01-01T00:00:05Z");
    assert_eq!(target_status["lastSnapshotRows"], 412);
    assert_eq!(target_status["vcenterVersion"], "8.0.3 build-24022515");
    assert_eq!(target_status["conditions"][0]["type"], "LastSnapshot");
    let outcomes: Vec<&str> = written["lastTick"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["Succeeded", "Running"]);
    assert_eq!(written["active"], json!([{"name": vc02, "target": "vc02"}]));
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
    let (ctx, mut api) = mock_api::context();
    let script_schedule = invalid.clone();
    let (result, (status, event)) = mock_api::scenario(reconcile_json(invalid, ctx), async move {
        let status = status_written(&mut api, &script_schedule).await;
        let event = api.expect("POST", EVENTS, |e| e.body.clone()).await.body;
        (status, event)
    })
    .await;
    let error = result.unwrap_err();
    assert!(
        error.contains("unknown time zone \"Mars/Olympus\""),
        "{error}"
    );
    assert_eq!(status["conditions"][0]["reason"], "InvalidTimeZone");
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "InvalidTimeZone");
}
