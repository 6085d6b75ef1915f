//! The `SnapshotSchedule` controller against the real API server of `scripts/test.sh` (v1.20.2
//! with our CRDs, no kubelet: the test finishes a Job's Pod by writing its status, as a
//! kubelet would). It checks what a scripted API cannot: the CRD accepts the status the
//! controller writes, the Job controller's Pods carry the labels the controller finds them by,
//! the controller's server-side apply of a target's snapshot fields leaves the fields of the
//! target's own controller alone, and `vctp operator` runs the controller.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{Context as _, Result, ensure};
use chrono::{Datelike, Utc};
use common::kube::{OperatorProcess, TestNamespace, create, eventually, finish_pod, job_pods};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use vctp::crd::{SnapshotSchedule, VCenterTarget};
use vctp::operator::Context;
use vctp::operator::job::{Defaults, JobTemplate};
use vctp::operator::metrics::Metrics;
use vctp::operator::run::default_defaults;
use vctp::operator::snapshot_schedule::reconcile;

/// VCenterTargets labelled `site: zurich`, each with its account Secret, opted in for vctp.
async fn create_targets(ns: &TestNamespace, names: &[&str]) -> Result<()> {
    for name in names {
        create::<Secret>(
            ns,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{name}-account"), "labels": {"vctp.io/credentials": "true"}},
                "stringData": {"username": "u", "password": "secret-password"},
            }),
        )
        .await?;
        let target: VCenterTarget = serde_json::from_value(json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
            "metadata": {"name": name, "labels": {"site": "zurich"}},
            "spec": {"url": format!("https://{name}.example.com/sdk"), "credentialsSecretRef": {"name": format!("{name}-account")}},
        }))?;
        ns.api::<VCenterTarget>()
            .create(&PostParams::default(), &target)
            .await?;
    }
    Ok(())
}

/// The Secret the built-in Job template mounts (`vctp-database`): without it the schedule
/// creates no Job.
async fn create_database_secret(ns: &TestNamespace) -> Result<()> {
    create::<Secret>(
        ns,
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vctp-database"},
            "stringData": {"VCTP_DATABASE_URL": "postgres://vctp@db.invalid/vctp"},
        }),
    )
    .await?;
    Ok(())
}

/// The schedule `yearly` of the `site: zurich` targets, ticking on 1 January 00:00 UTC,
/// snapshots only. The server sets the creation time, so the last tick handled is set to
/// just before this year's tick: exactly that tick is due. Returns the year.
async fn create_schedule(ns: &TestNamespace, concurrency: i32) -> Result<i32> {
    let year = Utc::now().year();
    let schedules = ns.api::<SnapshotSchedule>();
    let schedule: SnapshotSchedule = serde_json::from_value(json!({
        "apiVersion": "vctp.io/v1alpha1", "kind": "SnapshotSchedule",
        "metadata": {"name": "yearly"},
        "spec": {
            "schedule": "0 0 1 1 *",
            "targetSelector": {"matchExpressions": [{"key": "site", "operator": "In", "values": ["zurich"]}]},
            "concurrency": concurrency,
            "aggregation": {"hourlyReports": false, "daily": {"enabled": false}, "monthly": {"enabled": false}},
        },
    }))?;
    schedules.create(&PostParams::default(), &schedule).await?;
    let before = json!({"status": {"lastScheduleTime": format!("{}-12-31T00:00:00Z", year - 1)}});
    schedules
        .patch_status("yearly", &PatchParams::default(), &Patch::Merge(&before))
        .await?;
    Ok(year)
}

/// Reconciles the schedule with a fresh context (as after a restart of the operator): the
/// built-in Job template, a failed Pod not retried.
async fn reconcile_now(ns: &TestNamespace) -> Result<SnapshotSchedule> {
    reconcile_watching(ns, &[&ns.name]).await
}

/// [`reconcile_now`] by an operator watching `watched`.
async fn reconcile_watching(ns: &TestNamespace, watched: &[&str]) -> Result<SnapshotSchedule> {
    reconcile_with(ns, watched, vctp::operator::DEFAULT_IMAGE_PULL_TIMEOUT).await
}

/// [`reconcile_now`] giving a Pod `timeout` to get its image.
async fn reconcile_with_image_pull_timeout(
    ns: &TestNamespace,
    timeout: Duration,
) -> Result<SnapshotSchedule> {
    reconcile_with(ns, &[&ns.name], timeout).await
}

async fn reconcile_with(
    ns: &TestNamespace,
    watched: &[&str],
    timeout: Duration,
) -> Result<SnapshotSchedule> {
    let template = JobTemplate::restricted(&Defaults {
        backoff_limit: 0,
        ..default_defaults("vctp:test".into())
    });
    let ctx = Context::new(
        ns.client.clone(),
        template,
        Arc::new(Metrics::new()?),
        None,
        Duration::from_secs(300),
    )
    .watching(watched.iter().map(|n| n.to_string()).collect())
    .with_image_pull_timeout(timeout);
    let schedules = ns.api::<SnapshotSchedule>();
    let schedule = schedules.get("yearly").await?;
    reconcile(Arc::new(schedule), Arc::new(ctx))
        .await
        .context("reconcile")?;
    Ok(schedules.get("yearly").await?)
}

async fn job_names(ns: &TestNamespace) -> Result<Vec<String>> {
    let mut names: Vec<String> = ns
        .api::<Job>()
        .list(&ListParams::default())
        .await?
        .into_iter()
        .map(|j| j.name_any())
        .collect();
    names.sort();
    Ok(names)
}

/// Ends the Pod of Job `job` as a kubelet would (exit `code`, `message` as termination
/// message) and waits until the Job controller has finished the Job.
async fn finish_job(ns: &TestNamespace, job: &str, code: i32, message: &str) -> Result<()> {
    let pod = eventually(&format!("the Pod of {job}"), || async {
        Ok(job_pods(ns, job).await?.into_iter().next())
    })
    .await?;
    finish_pod(ns, &pod.name_any(), "vctp", code, message).await?;
    let jobs = ns.api::<Job>();
    eventually(&format!("{job} finished"), || async {
        let job = jobs.get(job).await?;
        let finished = job
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
        Ok(finished.then_some(()))
    })
    .await
}

/// `(target, outcome)` of the schedule's last tick.
fn outcomes(schedule: &SnapshotSchedule) -> Vec<(String, String)> {
    let status = serde_json::to_value(&schedule.status).unwrap_or_default();
    status["lastTick"]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let field = |key: &str| t[key].as_str().unwrap_or_default().to_string();
            (field("target"), field("outcome"))
        })
        .collect()
}

fn pair(target: &str, outcome: &str) -> (String, String) {
    (target.to_string(), outcome.to_string())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn no_job_mounts_a_secret_without_the_opt_in_label() -> Result<()> {
    let ns = TestNamespace::new("snapsched").await?;
    create_targets(&ns, &["vc01", "vc02"]).await?;
    create_database_secret(&ns).await?;
    let unlabel = json!({"metadata": {"labels": {"vctp.io/credentials": null}}});
    ns.api::<Secret>()
        .patch(
            "vc02-account",
            &PatchParams::default(),
            &Patch::Merge(&unlabel),
        )
        .await?;
    let year = create_schedule(&ns, 2).await?;
    let schedule = reconcile_now(&ns).await?;
    let names = job_names(&ns).await?;
    ensure!(
        names == [format!("yearly-snap-{year}0101t0000-vc01")],
        "{names:?}"
    );
    ensure!(
        outcomes(&schedule) == [pair("vc01", "Running"), pair("vc02", "Failed")],
        "{:?}",
        outcomes(&schedule)
    );
    let events = common::kube::events(&ns, "yearly").await?;
    ensure!(
        events
            .iter()
            .any(|(reason, note)| reason == "SecretNotOptedIn"
                && note.contains("vc02-account")
                && note.contains("vctp.io/credentials=true")),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_snapshot_job_stores_under_namespace_and_name_and_knows_every_target_of_its_name()
-> Result<()> {
    let (a, b) = (
        TestNamespace::new("samename").await?,
        TestNamespace::new("samename").await?,
    );
    create_targets(&a, &["vc01", "vc02"]).await?;
    create_targets(&b, &["vc01"]).await?;
    create_database_secret(&a).await?;
    let year = create_schedule(&a, 2).await?;
    // A watched namespace that does not exist holds no target of any name.
    let missing = format!("{}-gone", a.name);
    reconcile_watching(&a, &[&a.name, &b.name, &missing]).await?;
    let args = |target: &str| {
        let name = format!("yearly-snap-{year}0101t0000-{target}");
        let jobs = a.api::<Job>();
        async move {
            let job = jobs.get(&name).await?;
            let container = job
                .spec
                .and_then(|s| s.template.spec)
                .map(|s| s.containers)
                .unwrap_or_default();
            Ok::<_, anyhow::Error>(
                container
                    .into_iter()
                    .next()
                    .and_then(|c| c.args)
                    .unwrap_or_default(),
            )
        }
    };
    let flag = |args: &[String], flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let vc01 = args("vc01").await?;
    ensure!(
        flag(&vc01, "--target") == Some(format!("{}/vc01", a.name)),
        "{vc01:?}"
    );
    // The rows an operator stored under the bare name vc01 could be either target's.
    let mut owners = [format!("{}/vc01", a.name), format!("{}/vc01", b.name)];
    owners.sort();
    ensure!(
        flag(&vc01, "--legacy-owners") == Some(owners.join(",")),
        "{vc01:?}"
    );
    let vc02 = args("vc02").await?;
    ensure!(
        flag(&vc02, "--legacy-owners") == Some(format!("{}/vc02", a.name)),
        "{vc02:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_tick_snapshots_each_target_within_concurrency_and_records_the_outcomes() -> Result<()> {
    let ns = TestNamespace::new("snapsched").await?;
    create_targets(&ns, &["vc01", "vc02"]).await?;
    create_database_secret(&ns).await?;
    let targets = ns.api::<VCenterTarget>();
    // What the VCenterTarget controller owns of vc01's status.
    let checked = json!({
        "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
        "status": {
            "lastError": "certificate expires in 3 days",
            "lastCheckTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Reachable", "status": "True", "reason": "LoggedIn", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    });
    targets
        .patch_status(
            "vc01",
            &PatchParams::apply("vctp-operator").force(),
            &Patch::Apply(&checked),
        )
        .await?;
    let year = create_schedule(&ns, 1).await?;
    let vc01 = format!("yearly-snap-{year}0101t0000-vc01");
    let vc02 = format!("yearly-snap-{year}0101t0000-vc02");

    // One slot: vc01 starts, vc02 waits.
    let first = reconcile_now(&ns).await?;
    let names = job_names(&ns).await?;
    ensure!(names == [vc01.as_str()], "{names:?}");
    ensure!(
        outcomes(&first) == [pair("vc01", "Running"), pair("vc02", "Pending")],
        "{:?}",
        outcomes(&first)
    );
    let job = ns.api::<Job>().get(&vc01).await?;
    let owners: Vec<(String, Option<bool>)> = job
        .owner_references()
        .iter()
        .map(|o| (o.kind.clone(), o.controller))
        .collect();
    ensure!(
        owners
            == [
                ("SnapshotSchedule".to_string(), Some(true)),
                ("VCenterTarget".to_string(), None)
            ],
        "{owners:?}"
    );

    // A restarted operator finds the Job and creates nothing.
    let again = reconcile_now(&ns).await?;
    ensure!(job_names(&ns).await? == [vc01.as_str()]);
    ensure!(outcomes(&again) == outcomes(&first));

    // vc01 succeeds: it is reported and vc02 takes the slot.
    let stored = r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1767225600,"rows":412,"inventorySize":415,"vcenterVersion":"8.0.3 build-24022515"}}"#;
    finish_job(&ns, &vc01, 0, stored).await?;
    let third = reconcile_now(&ns).await?;
    ensure!(job_names(&ns).await? == [vc01.as_str(), vc02.as_str()]);
    ensure!(
        outcomes(&third) == [pair("vc01", "Succeeded"), pair("vc02", "Running")],
        "{:?}",
        outcomes(&third)
    );
    let target = serde_json::to_value(targets.get_status("vc01").await?.status)?;
    ensure!(
        target["lastSnapshotRows"] == 412 && target["inventorySize"] == 415,
        "{target}"
    );
    ensure!(
        target["lastSnapshotTime"] == "2026-01-01T00:00:00Z",
        "{target}"
    );
    ensure!(
        target["vcenterVersion"] == "8.0.3 build-24022515",
        "{target}"
    );
    ensure!(
        target["lastError"] == "certificate expires in 3 days",
        "the other controller's field is kept: {target}"
    );
    let types: Vec<&str> = target["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    ensure!(
        types.contains(&"Reachable") && types.contains(&"LastSnapshot"),
        "{types:?}"
    );

    // vc02 fails after its retries: reported, and LastTickSucceeded says which target failed
    // while Ready (valid and scheduling) stays true.
    let failed = r#"{"succeeded":false,"reason":"InvalidLogin","message":"failed to log in to vCenter vc02: wrong user name or password"}"#;
    finish_job(&ns, &vc02, 1, failed).await?;
    let fourth = reconcile_now(&ns).await?;
    ensure!(
        outcomes(&fourth) == [pair("vc01", "Succeeded"), pair("vc02", "Failed")],
        "{:?}",
        outcomes(&fourth)
    );
    let status = fourth.status.clone().context("no status")?;
    ensure!(status.active.is_empty(), "{:?}", status.active);
    let condition = |type_: &str| {
        (status.conditions.iter())
            .find(|c| c.type_ == type_)
            .with_context(|| format!("no {type_}"))
    };
    let ready = condition("Ready")?;
    ensure!(
        ready.status == "True" && ready.reason == "Scheduling",
        "{ready:?}"
    );
    let last_tick = condition("LastTickSucceeded")?;
    ensure!(
        last_tick.status == "False" && last_tick.reason == "SnapshotFailed",
        "{last_tick:?}"
    );
    ensure!(
        last_tick
            .message
            .contains("vc02 (InvalidLogin: failed to log in"),
        "{}",
        last_tick.message
    );
    let vc02_status = serde_json::to_value(targets.get_status("vc02").await?.status)?;
    ensure!(
        vc02_status["conditions"][0]["reason"] == "InvalidLogin",
        "{vc02_status}"
    );
    ensure!(
        vc02_status.get("lastSnapshotTime").is_none(),
        "{vc02_status}"
    );

    let events = ns.api::<Event>().list(&ListParams::default()).await?;
    let mut reasons: Vec<String> = events
        .items
        .iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("SnapshotSchedule")
        })
        .filter_map(|e| e.reason.clone())
        .collect();
    reasons.sort();
    ensure!(
        reasons == ["SnapshotFailed", "SnapshotSucceeded"],
        "{reasons:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn vctp_operator_creates_a_ticks_job_and_reports_it_when_the_job_finishes() -> Result<()> {
    let ns = TestNamespace::new("snapsched-run").await?;
    create_targets(&ns, &["vc01"]).await?;
    create_database_secret(&ns).await?;
    let year = create_schedule(&ns, 4).await?;
    let operator = OperatorProcess::start(&ns.name, &[])?;

    let job = format!("yearly-snap-{year}0101t0000-vc01");
    let jobs = ns.api::<Job>();
    let created = eventually("the tick's Job", || async { Ok(jobs.get_opt(&job).await?) }).await;
    ensure!(created.is_ok(), "{created:?}\n{}", operator.log());
    let stored = r#"{"succeeded":true,"message":"stored 7 rows","snapshot":{"snapshotTime":1767225600,"rows":7,"inventorySize":7}}"#;
    finish_job(&ns, &job, 0, stored).await?;

    // The Job's change wakes the controller (it owns its Jobs): no wait for a requeue.
    let targets = ns.api::<VCenterTarget>();
    eventually("vc01's snapshot fields", || async {
        let status = targets.get_status("vc01").await?.status;
        Ok(status.filter(|s| s.last_snapshot_rows == Some(7)))
    })
    .await
    .with_context(|| operator.log())?;
    let schedules = ns.api::<SnapshotSchedule>();
    eventually("the tick's outcome in the schedule's status", || async {
        let schedule = schedules.get("yearly").await?;
        Ok((outcomes(&schedule) == [pair("vc01", "Succeeded")]).then_some(()))
    })
    .await
    .with_context(|| operator.log())?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_snapshot_job_whose_image_cannot_be_pulled_fails_its_target_with_the_reason_and_goes()
-> Result<()> {
    let ns = TestNamespace::new("snapsched").await?;
    create_targets(&ns, &["vc01"]).await?;
    create_database_secret(&ns).await?;
    let year = create_schedule(&ns, 1).await?;
    let job = format!("yearly-snap-{year}0101t0000-vc01");
    reconcile_now(&ns).await?;
    let pod = eventually(&format!("the Pod of {job}"), || async {
        Ok(job_pods(&ns, &job).await?.into_iter().next())
    })
    .await?;
    // Plays the kubelet: the image is not there and may not be pulled.
    let waiting = json!({ "status": { "phase": "Pending", "containerStatuses": [{
        "name": "vctp", "image": "vctp:test", "imageID": "", "ready": false, "restartCount": 0,
        "state": { "waiting": { "reason": "ErrImageNeverPull",
            "message": "Container image \"vctp:test\" is not present with pull policy of Never" }},
    }]}});
    ns.api::<k8s_openapi::api::core::v1::Pod>()
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&waiting),
        )
        .await?;

    // Still within its time: the tick waits and says why.
    let waited = reconcile_now(&ns).await?;
    ensure!(
        outcomes(&waited) == [pair("vc01", "Running")],
        "{:?}",
        outcomes(&waited)
    );
    let status = serde_json::to_value(&waited.status)?;
    ensure!(
        status["lastTick"]["targets"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("ErrImageNeverPull: ")),
        "{status}"
    );

    let given_up = reconcile_with_image_pull_timeout(&ns, Duration::ZERO).await?;
    ensure!(
        outcomes(&given_up) == [pair("vc01", "Failed")],
        "{:?}",
        outcomes(&given_up)
    );
    let status = serde_json::to_value(&given_up.status)?;
    let message = status["lastTick"]["targets"][0]["message"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        message.starts_with("ErrImageNeverPull: ") && message.contains("gave the run up"),
        "{message}"
    );
    let events = common::kube::events(&ns, "yearly").await?;
    ensure!(
        events
            .iter()
            .any(|(reason, note)| reason == "SnapshotFailed"
                && note.starts_with("vc01: ErrImageNeverPull: ")
                && note.contains("is not present")),
        "{events:?}"
    );
    let jobs = ns.api::<Job>();
    eventually("the given-up Job deleted", || async {
        Ok(jobs.get_opt(&job).await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn without_the_secret_the_jobs_mount_no_job_is_created_and_ready_names_it() -> Result<()> {
    let ns = TestNamespace::new("snapsched-prereq").await?;
    create_targets(&ns, &["vc01"]).await?;
    create_schedule(&ns, 4).await?;
    let blocked = reconcile_now(&ns).await?;
    ensure!(
        job_names(&ns).await?.is_empty(),
        "{:?}",
        job_names(&ns).await?
    );
    let status = blocked.status.context("no status")?;
    let ready = (status.conditions.iter())
        .find(|c| c.type_ == "Ready")
        .context("no Ready")?;
    ensure!(
        ready.status == "False" && ready.reason == "SecretNotFound",
        "{ready:?}"
    );
    let named = format!("Secret {}/vctp-database (env VCTP_DATABASE_URL", ns.name);
    ensure!(ready.message.starts_with(&named), "{}", ready.message);
    let events = ns.api::<Event>().list(&ListParams::default()).await?;
    ensure!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("SecretNotFound")),
        "{:?}",
        events.items
    );

    // Once the Secret is there, the waiting target gets its Job.
    create_database_secret(&ns).await?;
    reconcile_now(&ns).await?;
    ensure!(
        job_names(&ns).await?.len() == 1,
        "{:?}",
        job_names(&ns).await?
    );
    Ok(())
}
