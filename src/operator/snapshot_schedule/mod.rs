//! The `SnapshotSchedule` controller, one file per step: `validate` the crons and the target
//! selector (pure) → `read` the selected `VCenterTarget`s and the schedule's Jobs, Pods and
//! `AggregationJob`s → `plan` (pure: which snapshot Jobs and `AggregationJob`s to create, what
//! finished, what to delete, the new status) → `build` them (pure) → `apply` (create-if-absent
//! server-side apply, Events, metrics, the targets' snapshot fields by server-side apply under
//! their own field manager) → status (a merge patch, written only when it changed) → cancel
//! and prune.
//!
//! Each tick of `spec.schedule` gets one Job per selected target, named from the schedule,
//! the tick and the target, so planning a tick again (after a restart) finds the Jobs it
//! created instead of making more. A tick's state lives in `status.lastTick`; Jobs beyond
//! `concurrency` wait there as `Pending` and are created as running Jobs finish. A Job is
//! reported (Event, metrics, the target's `LastSnapshot` condition) when it is seen finished
//! after the last status listed it as unfinished; the report comes before the status write
//! that records it, so a failure in between repeats the report rather than losing it.

mod apply;
mod build;
#[cfg(test)]
mod fixtures;
mod plan;
mod read;
mod validate;

use self::apply::{CONTROLLER, apply, write_status};
use self::plan::plan;
use self::read::{SNAPSHOT, read};
use self::validate::{invalid_status, validate};
use super::{Context, Error, MANAGER, from_timestamp};
use crate::crd::{AggregationJob, SnapshotSchedule, VCenterTarget};
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use std::sync::Arc;

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

/// Scenarios: the real reconcile against a scripted API server (`scenario`), one
/// behaviour per test, each within a second.
#[cfg(test)]
mod scenarios {
    use super::{Action, Context, Error, SnapshotSchedule, reconcile};
    use crate::operator::scenario::{self, Handle, expect};
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
    /// The Secret the built-in Job template mounts, checked before Jobs are created.
    const DATABASE_SECRET: &str = "/api/v1/namespaces/finance/secrets/vctp-database";

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
    /// their Pods, the AggregationJobs, the Secret the Jobs mount.
    async fn reads(api: &mut Handle, schedule: &Value, jobs: Vec<Value>, pods: Vec<Value>) {
        expect(api, "GET", SCHEDULE, 200, schedule.clone()).await;
        let targets = list(vec![target("vc01"), target("vc02")]);
        expect(api, "GET", TARGETS, 200, targets).await;
        expect(api, "GET", JOBS, 200, list(jobs)).await;
        expect(api, "GET", PODS, 200, list(pods)).await;
        expect(api, "GET", AGGREGATIONS, 200, list(vec![])).await;
        let database = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "vctp-database", "namespace": "finance"}});
        expect(api, "GET", DATABASE_SECRET, 200, database).await;
    }

    /// The account Secret of `target` is read before its Job is created; it carries the
    /// opt-in label when `labelled`.
    async fn opted_in_secret(api: &mut Handle, target: &str, labelled: bool) {
        let labels = if labelled {
            json!({"vctp.io/credentials": "true"})
        } else {
            json!({})
        };
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{target}-account"), "namespace": "finance", "labels": labels},
        });
        let path = format!("/api/v1/namespaces/finance/secrets/{target}-account");
        expect(api, "GET", &path, 200, secret).await;
    }

    /// Before its Job is created, every watched namespace (here only the schedule's) is
    /// asked for a `VCenterTarget` of the target's name.
    async fn same_named(api: &mut Handle, target: &str) {
        let path = format!("/apis/vctp.io/v1alpha1/namespaces/finance/vcentertargets/{target}");
        expect(api, "GET", &path, 200, self::target(target)).await;
    }

    #[tokio::test]
    async fn no_job_mounts_a_secret_that_is_not_opted_in_and_its_target_fails_saying_why() {
        let (ctx, mut api) = scenario::context();
        let fresh = schedule(Value::Null);
        let script_schedule = fresh.clone();
        let result = scenario::run(reconcile_json(fresh, ctx), async move {
            reads(&mut api, &script_schedule, vec![], vec![]).await;
            opted_in_secret(&mut api, "vc01", false).await;
            let event = expect(&mut api, "POST", EVENTS, 201, Value::Null).await;
            assert_eq!(event["reason"], "SecretNotOptedIn", "{event}");
            opted_in_secret(&mut api, "vc02", true).await;
            same_named(&mut api, "vc02").await;
            let path = format!("{JOBS}/yearly-snap-{}-vc02", stamp());
            expect(&mut api, "PATCH", &path, 200, Value::Null).await;
            let status = expect(&mut api, "PATCH", STATUS, 200, script_schedule).await;
            let status = &status["status"];
            assert_eq!(
                status["active"],
                json!([{"name": format!("yearly-snap-{}-vc02", stamp()), "target": "vc02"}])
            );
            let vc01 = &status["lastTick"]["targets"][0];
            assert_eq!(
                (&vc01["target"], &vc01["outcome"]),
                (&json!("vc01"), &json!("Failed"))
            );
            assert!(vc01.get("job").is_none(), "{vc01}");
            let message = vc01["message"].as_str().unwrap();
            assert!(message.contains("finance/vc01-account"), "{message}");
            assert!(message.contains("vctp.io/credentials=true"), "{message}");
        })
        .await;
        assert!(result.is_ok(), "{result:?}");
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
                opted_in_secret(&mut api, target, true).await;
                same_named(&mut api, target).await;
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
        let args = &jobs[1]["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[3], "finance/vc02");
        let args = args.as_array().unwrap();
        assert_eq!(
            args[args.len() - 2..],
            [json!("--legacy-owners"), json!("finance/vc02")]
        );
        let metrics = ctx.metrics.render().unwrap();
        assert!(
            metrics.contains("vctp_operator_jobs_created_total{controller=\"SnapshotSchedule\"} 2")
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
