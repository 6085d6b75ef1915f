//! The `SnapshotSchedule` reconcile against the real API server of `scripts/test.sh`
//! (v1.20.2, no kubelet: the test finishes a Job's Pod by writing its status, as a kubelet
//! would). It checks what a scripted API cannot: the generated CRDs accept the status the
//! controller applies, the Job controller's Pods carry the labels the controller finds them
//! by, and the controller's server-side apply of a target's snapshot fields leaves the fields
//! of the target's own controller alone.

mod kube_cluster;
mod mock_api;

use anyhow::{Context as _, Result, ensure};
use chrono::{Datelike, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use kube_cluster::{drop_namespace, eventually, namespace};
use serde_json::json;
use std::sync::Arc;
use vctp::crd::{SnapshotSchedule, VCenterTarget};
use vctp::operator::snapshot_schedule::{reconcile, run};

/// Creates vctp's CRDs (once per cluster; an existing one is kept) and waits until they
/// are served. Created, not applied: v1.20 does not know the CEL rules, and server-side
/// apply refuses unknown fields where a create drops them.
async fn install_crds(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in vctp::crd::all() {
        let name = crd.name_any();
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(e).with_context(|| format!("creating CRD {name}")),
        }
        eventually(&format!("CRD {name} established"), || async {
            let crd = crds.get(&name).await?;
            let established = crd
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Established" && c.status == "True");
            Ok(established.then_some(()))
        })
        .await?;
    }
    Ok(())
}

/// The ServiceAccount of the built-in Job template, with its token (Pods are refused
/// until the token controller made it).
async fn job_service_account(client: &Client, ns: &str) -> Result<()> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "vctp-job"}}))?,
        )
        .await?;
    for name in ["default", "vctp-job"] {
        eventually(&format!("the {name} ServiceAccount's token"), || async {
            Ok(accounts
                .get_opt(name)
                .await?
                .filter(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty())))
        })
        .await?;
    }
    Ok(())
}

/// VCenterTargets labelled `site: zurich`.
async fn create_targets(client: &Client, ns: &str, names: &[&str]) -> Result<()> {
    let targets: Api<VCenterTarget> = Api::namespaced(client.clone(), ns);
    for name in names {
        let target: VCenterTarget = serde_json::from_value(json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
            "metadata": {"name": name, "labels": {"site": "zurich"}},
            "spec": {"url": format!("https://{name}.example.com/sdk"), "credentialsSecretRef": {"name": format!("{name}-account")}},
        }))?;
        targets.create(&PostParams::default(), &target).await?;
    }
    Ok(())
}

/// The schedule `yearly` of the `site: zurich` targets, ticking on 1 January 00:00 UTC,
/// snapshots only. The server sets the creation time, so the last tick handled is set to
/// just before this year's tick: exactly that tick is due. Returns the year.
async fn create_schedule(client: &Client, ns: &str, concurrency: i32) -> Result<i32> {
    let year = Utc::now().year();
    let schedules: Api<SnapshotSchedule> = Api::namespaced(client.clone(), ns);
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

/// Reconciles the schedule as read from the API server, with a fresh context (as after a
/// restart of the operator).
async fn reconcile_now(client: &Client, ns: &str) -> Result<SnapshotSchedule> {
    let schedules: Api<SnapshotSchedule> = Api::namespaced(client.clone(), ns);
    let schedule = schedules.get("yearly").await?;
    reconcile(Arc::new(schedule), mock_api::context_for(client.clone()))
        .await
        .context("reconcile")?;
    Ok(schedules.get("yearly").await?)
}

async fn job_names(client: &Client, ns: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = Api::<Job>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .into_iter()
        .map(|j| j.name_any())
        .collect();
    names.sort();
    Ok(names)
}

/// Ends the Pod of Job `job` as a kubelet would: exit `code` with `message` as the
/// termination message; then waits for the Job controller to finish the Job.
async fn finish_pod(client: &Client, ns: &str, job: &str, code: i32, message: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let by_job = ListParams::default().labels(&format!("job-name={job}"));
    let pod = eventually(&format!("the Pod of {job}"), || async {
        Ok(pods.list(&by_job).await?.items.into_iter().next())
    })
    .await?;
    let status = json!({"status": {
        "phase": if code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": "vctp", "image": "ghcr.io/example/vctp:test", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "message": message}},
        }],
    }});
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    eventually(&format!("{job} finished"), || async {
        let finished = jobs
            .get(job)
            .await?
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
        Ok(finished.then_some(()))
    })
    .await
}

fn outcomes(schedule: &SnapshotSchedule) -> Vec<(String, String)> {
    let status = serde_json::to_value(&schedule.status).unwrap_or_default();
    status["lastTick"]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["target"].as_str().unwrap_or_default().to_string(),
                t["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pair(target: &str, outcome: &str) -> (String, String) {
    (target.to_string(), outcome.to_string())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_tick_snapshots_each_target_within_concurrency_and_records_the_outcomes() -> Result<()> {
    let (client, ns) = namespace("snapsched").await?;
    install_crds(&client).await?;
    job_service_account(&client, &ns).await?;

    create_targets(&client, &ns, &["vc01", "vc02"]).await?;
    let targets: Api<VCenterTarget> = Api::namespaced(client.clone(), &ns);
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
    let year = create_schedule(&client, &ns, 1).await?;

    let vc01 = format!("yearly-snap-{year}0101t0000-vc01");
    let vc02 = format!("yearly-snap-{year}0101t0000-vc02");

    // One slot: vc01 starts, vc02 waits.
    let first = reconcile_now(&client, &ns).await?;
    ensure!(
        job_names(&client, &ns).await? == [vc01.as_str()],
        "{:?}",
        job_names(&client, &ns).await?
    );
    ensure!(
        outcomes(&first) == [pair("vc01", "Running"), pair("vc02", "Pending")],
        "{:?}",
        outcomes(&first)
    );
    let job = Api::<Job>::namespaced(client.clone(), &ns)
        .get(&vc01)
        .await?;
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
    let again = reconcile_now(&client, &ns).await?;
    ensure!(job_names(&client, &ns).await? == [vc01.as_str()]);
    ensure!(outcomes(&again) == outcomes(&first));
    // vc01 succeeds: it is reported and vc02 takes the slot.
    let stored = r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1767225600,"rows":412,"inventorySize":415,"vcenterVersion":"8.0.3 build-24022515"}}"#;
    finish_pod(&client, &ns, &vc01, 0, stored).await?;
    let third = reconcile_now(&client, &ns).await?;
    ensure!(job_names(&client, &ns).await? == [vc01.as_str(), vc02.as_str()]);
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

    // vc02 fails after its retries: reported, and Ready says which target failed.
    let failed = r#"{"succeeded":false,"reason":"InvalidLogin","message":"failed to log in to vCenter vc02: wrong user name or password"}"#;
    finish_pod(&client, &ns, &vc02, 1, failed).await?;
    let fourth = reconcile_now(&client, &ns).await?;
    ensure!(
        outcomes(&fourth) == [pair("vc01", "Succeeded"), pair("vc02", "Failed")],
        "{:?}",
        outcomes(&fourth)
    );
    let status = fourth.status.clone().context("no status")?;
    ensure!(status.active.is_empty(), "{:?}", status.active);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .context("no Ready")?;
    ensure!(
        ready.status == "False" && ready.reason == "SnapshotFailed",
        "{ready:?}"
    );
    ensure!(
        ready
            .message
            .contains("vc02 (InvalidLogin: failed to log in"),
        "{}",
        ready.message
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

    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
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

    drop_namespace(&client, &ns).await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn the_running_controller_creates_a_ticks_job_and_reports_it_when_the_job_finishes()
-> Result<()> {
    let (client, ns) = namespace("snapsched-run").await?;
    install_crds(&client).await?;
    job_service_account(&client, &ns).await?;
    create_targets(&client, &ns, &["vc01"]).await?;
    let year = create_schedule(&client, &ns, 4).await?;
    let controller = tokio::spawn(run(mock_api::context_for(client.clone()), ns.clone()));

    let job = format!("yearly-snap-{year}0101t0000-vc01");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    eventually("the tick's Job", || async { Ok(jobs.get_opt(&job).await?) }).await?;
    let stored = r#"{"succeeded":true,"message":"stored 7 rows","snapshot":{"snapshotTime":1767225600,"rows":7,"inventorySize":7}}"#;
    finish_pod(&client, &ns, &job, 0, stored).await?;

    // The Job's change wakes the controller (it owns its Jobs): no wait for a requeue.
    let targets: Api<VCenterTarget> = Api::namespaced(client.clone(), &ns);
    eventually("vc01's snapshot fields", || async {
        let status = targets.get_status("vc01").await?.status;
        Ok(status.filter(|s| s.last_snapshot_rows == Some(7)))
    })
    .await?;
    let schedules: Api<SnapshotSchedule> = Api::namespaced(client.clone(), &ns);
    eventually("the tick's outcome in the schedule's status", || async {
        let schedule = schedules.get("yearly").await?;
        Ok((outcomes(&schedule) == [pair("vc01", "Succeeded")]).then_some(()))
    })
    .await?;

    controller.abort();
    drop_namespace(&client, &ns).await;
    Ok(())
}
