//! End to end: the real `vctp operator` binary against a real kube-apiserver, etcd and
//! kube-controller-manager v1.20.2 (`scripts/kube.sh`, started by `scripts/test.sh` with our
//! CRDs installed). The test plays the kubelet: it finishes a Job's Pod by patching its status
//! with the termination message a `vctp job …` container leaves.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{Context, Result, ensure};
use common::kube::{
    OperatorProcess, TestNamespace, create, events, eventually, eventually_within, finish_pod,
    job_pods, pod_finished,
};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use std::time::Duration;
use vctp::crd::{AggregationJob, MetricsExport, Phase, VCenterTarget};

/// The reasons of the Events about `name`, oldest first.
async fn event_reasons(ns: &TestNamespace, name: &str) -> Result<Vec<String>> {
    Ok(events(ns, name)
        .await?
        .into_iter()
        .map(|(reason, _)| reason)
        .collect())
}

/// Waits until AggregationJob `name` is in `phase`; returns its status.
async fn phase_reached(
    ns: &TestNamespace,
    name: &str,
    phase: Phase,
    operator: &OperatorProcess,
) -> Result<vctp::crd::AggregationJobStatus> {
    let requests = ns.api::<AggregationJob>();
    eventually(
        &format!("AggregationJob {name} in phase {phase:?}"),
        || async {
            let status = requests.get(name).await?.status.unwrap_or_default();
            Ok((status.phase == Some(phase)).then_some(status))
        },
    )
    .await
    .with_context(|| operator.log())
}

async fn the_job(ns: &TestNamespace, name: &str) -> Result<Job> {
    let jobs = ns.api::<Job>();
    eventually(&format!("Job {name}"), || async {
        Ok(jobs.get_opt(name).await?)
    })
    .await
}

/// The newest Pod of `job` whose container has not terminated yet.
async fn running_pod(ns: &TestNamespace, job: &str) -> Result<String> {
    eventually(&format!("a new Pod of Job {job}"), || async {
        Ok(job_pods(ns, job)
            .await?
            .into_iter()
            .find_map(|p| (!pod_finished(&p)).then(|| p.metadata.name.unwrap_or_default())))
    })
    .await
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn an_aggregation_job_becomes_a_job_whose_result_reaches_status_and_events() -> Result<()> {
    let ns = TestNamespace::new("agg").await?;
    let operator = OperatorProcess::start(&ns.name, &[])?;
    let request: AggregationJob = create(
        &ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
            "metadata": { "name": "daily-2026-03-10" },
            "spec": { "period": "Daily", "date": "2026-03-10" },
        }),
    )
    .await?;

    let job = the_job(&ns, "daily-2026-03-10-aggregate").await?;
    let owner = job.metadata.owner_references.clone().unwrap_or_default();
    ensure!(
        owner.len() == 1
            && owner[0].kind == "AggregationJob"
            && owner[0].uid == request.metadata.uid.clone().unwrap_or_default()
            && owner[0].controller == Some(true),
        "owner references {owner:?}"
    );
    let container = &job
        .spec
        .as_ref()
        .context("spec")?
        .template
        .spec
        .as_ref()
        .context("pod")?
        .containers[0];
    ensure!(
        container.args.clone().unwrap_or_default()
            == [
                "job",
                "aggregate",
                "--name",
                &format!("{}/daily-2026-03-10", ns.name)
            ],
        "args {:?}",
        container.args
    );
    let requests = ns.api::<AggregationJob>();
    // Pending until the Job controller made the Pod, then Running (no kubelet runs it).
    eventually(
        "status naming the Job, phase Pending or Running",
        || async {
            let status = requests
                .get("daily-2026-03-10")
                .await?
                .status
                .unwrap_or_default();
            Ok(
                (status.job_name.as_deref() == Some("daily-2026-03-10-aggregate")
                    && matches!(status.phase, Some(Phase::Pending | Phase::Running)))
                .then_some(()),
            )
        },
    )
    .await?;

    let pod = running_pod(&ns, "daily-2026-03-10-aggregate").await?;
    let result = json!({
        "succeeded": true,
        "aggregation": { "rowsWritten": 412, "reports": [
            { "key": "reports/daily/2026-03-10/all.xlsx", "size": 52311, "sha256": "ab".repeat(32) },
        ]},
    });
    finish_pod(&ns, &pod, "vctp", 0, &result.to_string()).await?;

    let status = phase_reached(&ns, "daily-2026-03-10", Phase::Succeeded, &operator).await?;
    ensure!(status.rows_written == Some(412), "{status:?}");
    ensure!(status.reports.len() == 1 && status.reports[0].key.ends_with("all.xlsx"));
    ensure!(
        status.completion_time.is_some() && status.start_time.is_some(),
        "{status:?}"
    );
    let complete = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .context("Complete")?;
    ensure!(complete.status == "True", "{complete:?}");

    let reasons = eventually("JobCreated and Succeeded Events", || async {
        let reasons = event_reasons(&ns, "daily-2026-03-10").await?;
        Ok((reasons.contains(&"JobCreated".to_string())
            && reasons.contains(&"Succeeded".to_string()))
        .then_some(reasons))
    })
    .await?;
    ensure!(reasons.len() == 2, "one Event per turn, got {reasons:?}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_failing_job_is_retried_then_reported_failed_with_a_warning_event() -> Result<()> {
    let ns = TestNamespace::new("aggfail").await?;
    let operator = OperatorProcess::start(&ns.name, &["--job-backoff-limit", "1"])?;
    create::<AggregationJob>(
        &ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
            "metadata": { "name": "monthly-2026-02" },
            "spec": { "period": "Monthly", "month": "2026-02" },
        }),
    )
    .await?;
    let job = "monthly-2026-02-aggregate";
    the_job(&ns, job).await?;
    let failure = json!({
        "succeeded": false, "reason": "NoDailySummaries",
        "message": "failed to aggregate 2026-02: no daily summaries stored for 2026-02",
    })
    .to_string();
    let first = running_pod(&ns, job).await?;
    finish_pod(&ns, &first, "vctp", 1, &failure).await?;
    // The Job controller starts the retry after its 10 s back-off.
    let second = eventually_within("the retry Pod", Duration::from_secs(60), || async {
        Ok(job_pods(&ns, job)
            .await?
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .find(|name| *name != first))
    })
    .await?;
    finish_pod(&ns, &second, "vctp", 1, &failure).await?;

    let status = phase_reached(&ns, "monthly-2026-02", Phase::Failed, &operator).await?;
    ensure!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("no daily summaries")),
        "{status:?}"
    );
    let complete = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .context("Complete")?;
    ensure!(
        complete.status == "False" && complete.reason == "NoDailySummaries",
        "{complete:?}"
    );
    eventually("a NoDailySummaries Warning Event", || async {
        Ok(event_reasons(&ns, "monthly-2026-02")
            .await?
            .contains(&"NoDailySummaries".to_string())
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn deleting_an_aggregation_job_deletes_its_job() -> Result<()> {
    let ns = TestNamespace::new("aggdel").await?;
    let _operator = OperatorProcess::start(&ns.name, &[])?;
    create::<AggregationJob>(
        &ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
            "metadata": { "name": "hour" },
            "spec": { "period": "Hourly", "at": "2026-03-10T14:05:00Z" },
        }),
    )
    .await?;
    the_job(&ns, "hour-aggregate").await?;
    ns.api::<AggregationJob>()
        .delete("hour", &DeleteParams::background())
        .await?;
    let jobs = ns.api::<Job>();
    eventually_within(
        "the Job collected with its owner",
        Duration::from_secs(60),
        || async {
            Ok(jobs
                .get_opt("hour-aggregate")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await
}

/// A simulated vCenter (vctp's own SOAP simulator, in-process) accepting `user`/`password`.
#[tokio::test]
#[ignore = "needs a Kubernetes API server: scripts/kube.sh (VCTP_TEST_KUBECONFIG)"]
async fn a_watched_namespace_that_does_not_exist_yet_is_named_and_picked_up_once_created()
-> Result<()> {
    let name = TestNamespace::unused_name("late");
    let operator = OperatorProcess::start(&name, &["--recheck-seconds", "2"])?;
    let missing = format!("watched namespace {name} does not exist");
    eventually("the operator to say the namespace is missing", || async {
        Ok(operator.log().contains(&missing).then_some(()))
    })
    .await
    .with_context(|| operator.log())?;

    // Created later: its resources are reconciled without a restart.
    let ns = TestNamespace::create(name).await?;
    create::<VCenterTarget>(
        &ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
            "metadata": { "name": "vc0" },
            "spec": { "url": "https://vc0.example.com/sdk", "credentialsSecretRef": { "name": "vc0-account" } },
        }),
    )
    .await?;
    eventually("the target in the new namespace reconciled", || async {
        ready_of(&ns, "VCenterTarget", "vc0").await
    })
    .await
    .with_context(|| operator.log())?;
    Ok(())
}

async fn simulated_vcenter(user: &str, password: &str) -> Result<String> {
    use vctp::sim::{Clock, SimConfig};
    let config = SimConfig {
        vms: 20,
        username: user.into(),
        password: password.into(),
        ..SimConfig::default()
    };
    Ok(common::sim::start(config, Clock::real()).await.1)
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_vcenter_target_waits_for_its_secret_then_is_ready_after_a_login() -> Result<()> {
    let sdk_url = simulated_vcenter("vctp", "secret-password").await?;
    let ns = TestNamespace::new("target").await?;
    let operator = OperatorProcess::start(&ns.name, &["--recheck-seconds", "10"])?;
    create::<VCenterTarget>(
        &ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
            "metadata": { "name": "vc0" },
            // The simulator serves plain HTTP on loopback.
            "spec": { "url": sdk_url, "allowPlainHttp": true, "credentialsSecretRef": { "name": "vc0-account" } },
        }),
    )
    .await?;
    let targets = ns.api::<VCenterTarget>();
    let ready = |status: &vctp::crd::VCenterTargetStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    eventually("Ready=False SecretNotFound", || async {
        let status = targets.get("vc0").await?.status.unwrap_or_default();
        Ok((ready(&status) == Some(("False".into(), "SecretNotFound".into()))).then_some(()))
    })
    .await
    .with_context(|| operator.log())?;

    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        // Opted in: the operator reads only Secrets with this label.
        "metadata": { "name": "vc0-account", "labels": { "vctp.io/credentials": "true" } },
        "stringData": { "username": "vctp", "password": "secret-password" },
    }))?;
    ns.api().create(&PostParams::default(), &secret).await?;
    let status = eventually_within(
        "Ready=True after the recheck",
        Duration::from_secs(90),
        || async {
            let status = targets.get("vc0").await?.status.unwrap_or_default();
            Ok((ready(&status).is_some_and(|(s, _)| s == "True")).then_some(status))
        },
    )
    .await
    .with_context(|| operator.log())?;
    ensure!(
        status
            .vcenter_version
            .as_deref()
            .is_some_and(|v| v.starts_with("8.0")),
        "{status:?}"
    );
    ensure!(
        status.last_error.is_none(),
        "the stale error stayed: {status:?}"
    );
    let reachable = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Reachable")
        .context("Reachable")?;
    ensure!(reachable.status == "True", "{reachable:?}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn of_two_replicas_only_the_lease_holder_acts_and_the_other_takes_over_when_it_stops()
-> Result<()> {
    use k8s_openapi::api::coordination::v1::Lease;
    let ns = TestNamespace::new("leader").await?;
    let election = |pod: &str| {
        vec![
            "--leader-election".to_string(),
            "true".into(),
            "--pod-namespace".into(),
            ns.name.clone(),
            "--pod-name".into(),
            pod.to_string(),
            "--lease-name".into(),
            "vctp-leader".into(),
        ]
    };
    let args_a = election("operator-a");
    let args_b = election("operator-b");
    let mut a = OperatorProcess::start(
        &ns.name,
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let leases = ns.api::<Lease>();
    let holder = eventually("operator-a holding the Lease", || async {
        Ok(leases
            .get_opt("vctp-leader")
            .await?
            .and_then(|l| l.spec?.holder_identity))
    })
    .await?;
    ensure!(holder.starts_with("operator-a_"), "holder {holder}");
    let b = OperatorProcess::start(
        &ns.name,
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;

    let aggregate = |name: &str| {
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
            "metadata": { "name": name },
            "spec": { "period": "Monthly", "month": "2026-02" },
        })
    };
    create::<AggregationJob>(&ns, aggregate("first")).await?;
    the_job(&ns, "first-aggregate").await?;
    ensure!(
        b.log().contains("operator starting") && !b.log().contains("became the leader"),
        "operator-b should wait: {}",
        b.log()
    );

    ensure!(
        a.terminate()?.success(),
        "operator-a did not stop cleanly: {}",
        a.log()
    );
    // operator-a gave the Lease up as it stopped, so operator-b takes over at its next try
    // (every 5 s) instead of when the Lease would have run out (15 s).
    let holder = leases
        .get("vctp-leader")
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    ensure!(
        !holder.starts_with("operator-a_"),
        "operator-a still holds the Lease"
    );
    create::<AggregationJob>(&ns, aggregate("second")).await?;
    let jobs = ns.api::<Job>();
    eventually_within(
        "operator-b taking over",
        Duration::from_secs(45),
        || async { Ok(jobs.get_opt("second-aggregate").await?) },
    )
    .await
    .with_context(|| b.log())?;
    let holder = leases
        .get("vctp-leader")
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    ensure!(holder.starts_with("operator-b_"), "holder {holder}");
    Ok(())
}

/// The API of vctp kind `kind` in the test's namespace, untyped.
fn dynamic_api(ns: &TestNamespace, kind: &str) -> Result<kube::Api<kube::api::DynamicObject>> {
    use kube::api::ApiResource;
    let resource = match kind {
        "VCenterTarget" => ApiResource::erase::<VCenterTarget>(&()),
        "SnapshotSchedule" => ApiResource::erase::<vctp::crd::SnapshotSchedule>(&()),
        "AggregationJob" => ApiResource::erase::<AggregationJob>(&()),
        "MetricsExport" => ApiResource::erase::<MetricsExport>(&()),
        other => anyhow::bail!("not a vctp kind: {other:?}"),
    };
    Ok(kube::Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &resource,
    ))
}

/// Creates the resource `manifest` describes in the test's namespace, whatever its kind.
async fn create_manifest(
    ns: &TestNamespace,
    mut manifest: serde_json::Value,
) -> Result<Result<(), kube::Error>> {
    manifest["metadata"]["namespace"] = json!(ns.name);
    let api = dynamic_api(ns, manifest["kind"].as_str().unwrap_or_default())?;
    let object: kube::api::DynamicObject = serde_json::from_value(manifest)?;
    Ok(api
        .create(&PostParams::default(), &object)
        .await
        .map(|_| ()))
}

/// The `Ready` condition of the resource `kind`/`name`, as (status, reason).
async fn ready_of(ns: &TestNamespace, kind: &str, name: &str) -> Result<Option<(String, String)>> {
    let object = dynamic_api(ns, kind)?.get(name).await?;
    let conditions: Vec<vctp::crd::Condition> = object
        .data
        .pointer("/status/conditions")
        .map(|c| serde_json::from_value(c.clone()))
        .transpose()?
        .unwrap_or_default();
    Ok(conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status, c.reason)))
}

fn examples(dir: &str) -> Result<Vec<(String, String)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            files.push((name, std::fs::read_to_string(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn the_examples_apply_and_each_invalid_one_is_refused_by_the_server_or_the_operator()
-> Result<()> {
    let ns = TestNamespace::new("examples").await?;
    let operator = OperatorProcess::start(&ns.name, &["--recheck-seconds", "10"])?;
    for (file, text) in examples("examples")? {
        let manifest: serde_json::Value = serde_yaml::from_str(&text)?;
        create_manifest(&ns, manifest)
            .await?
            .with_context(|| format!("applying {file}"))?;
    }
    // The valid ones do what they say: a Job for the aggregation, a target and an export
    // waiting for their Secrets, a schedule waiting for its first tick.
    the_job(&ns, "daily-2026-03-10-aggregate").await?;
    for (kind, name) in [
        ("VCenterTarget", "vc01"),
        ("MetricsExport", "support-case-4711"),
    ] {
        eventually(
            &format!("{name} not Ready for want of its Secret"),
            || async {
                Ok((ready_of(&ns, kind, name).await?
                    == Some(("False".into(), "SecretNotFound".into())))
                .then_some(()))
            },
        )
        .await
        .with_context(|| operator.log())?;
    }
    let schedules = ns.api::<vctp::crd::SnapshotSchedule>();
    eventually("the schedule's next tick in status", || async {
        Ok(schedules
            .get("hourly")
            .await?
            .status
            .and_then(|s| s.next_schedule_time))
    })
    .await
    .with_context(|| operator.log())?;

    for (file, text) in examples("examples/invalid")? {
        let manifest: serde_json::Value = serde_yaml::from_str(&text)?;
        let kind = manifest["kind"].as_str().unwrap_or_default().to_string();
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let created = create_manifest(&ns, manifest).await?;
        if text.contains("# rejected-by: schema") && !text.contains("Additional properties") {
            match created {
                Err(kube::Error::Api(status)) if status.code == 422 => {}
                other => anyhow::bail!("{file}: the API server should refuse it, got {other:?}"),
            }
        } else if text.contains("# rejected-by: cel") {
            // v1.20 drops CEL rules (1.25+): it takes the resource, and the operator, which
            // evaluates the same rules, refuses to act on it.
            created.with_context(|| format!("{file}: v1.20 has no CEL and should take it"))?;
            eventually(
                &format!("{file}: Ready=False from the operator"),
                || async {
                    Ok(ready_of(&ns, &kind, &name)
                        .await?
                        .filter(|(status, reason)| {
                            status == "False" && reason.starts_with("Invalid")
                        })
                        .map(|_| ()))
                },
            )
            .await
            .with_context(|| operator.log())?;
        } else {
            // Unknown fields: v1.20 has no strict field validation (1.25+) and prunes them.
            created.with_context(|| format!("{file}: v1.20 prunes unknown fields"))?;
        }
    }
    Ok(())
}

/// The columns `kubectl get` shows for the objects of `plural` (a `vctp.io` kind), read from
/// the API server's Table view: `(column, cell)` per object.
async fn printed_columns(ns: &TestNamespace, plural: &str) -> Result<Vec<Vec<(String, String)>>> {
    let request = http::Request::get(format!(
        "/apis/vctp.io/v1alpha1/namespaces/{}/{plural}",
        ns.name
    ))
    .header(
        http::header::ACCEPT,
        "application/json;as=Table;g=meta.k8s.io;v=v1",
    )
    .body(Vec::new())?;
    let table: serde_json::Value = serde_json::from_str(&ns.client.request_text(request).await?)?;
    let names: Vec<String> = table["columnDefinitions"]
        .as_array()
        .context("columnDefinitions")?
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    Ok(table["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .map(|row| {
            let cells = row["cells"].as_array().cloned().unwrap_or_default();
            names
                .iter()
                .cloned()
                .zip(cells.iter().map(|c| match c {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }))
                .collect()
        })
        .collect())
}

fn cell<'a>(row: &'a [(String, String)], column: &str) -> Option<&'a str> {
    row.iter()
        .find(|(name, _)| name == column)
        .map(|(_, value)| value.as_str())
}

/// The message of `object`'s Ready condition.
fn ready_message(object: &serde_json::Value) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["message"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn kubectl_get_shows_each_aggregation_jobs_period_and_the_ready_message_of_jobs_and_exports()
-> Result<()> {
    let ns = TestNamespace::new("columns").await?;
    let operator = OperatorProcess::start(&ns.name, &[])?;
    for (name, spec) in [
        (
            "hour",
            json!({ "period": "Hourly", "at": "2026-03-10T14:05:00+01:00" }),
        ),
        ("day", json!({ "period": "Daily", "date": "2026-03-10" })),
        ("month", json!({ "period": "Monthly", "month": "2026-03" })),
    ] {
        create::<AggregationJob>(
            &ns,
            json!({
                "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
                "metadata": { "name": name }, "spec": spec,
            }),
        )
        .await?;
    }
    create::<MetricsExport>(
        &ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "MetricsExport",
            "metadata": { "name": "case" },
            "spec": { "source": { "url": "http://127.0.0.1:9" }, "lookbackSeconds": 3600,
                      "selectors": ["{job=\"vmagent\"}"] },
        }),
    )
    .await?;

    let requests = ns.api::<AggregationJob>();
    let exports = ns.api::<MetricsExport>();
    let expected = [
        ("day", "2026-03-10"),
        ("hour", "2026-03-10T13"),
        ("month", "2026-03"),
    ];
    eventually("every row with its period and Ready message", || async {
        let rows = printed_columns(&ns, "aggregationjobs").await?;
        for (name, period) in expected {
            let object = serde_json::to_value(requests.get(name).await?)?;
            let Some(message) = ready_message(&object) else {
                return Ok(None);
            };
            let Some(row) = rows.iter().find(|r| cell(r, "Name") == Some(name)) else {
                return Ok(None);
            };
            if cell(row, "Period") != Some(period) || cell(row, "Message") != Some(&message) {
                return Ok(None);
            }
        }
        let export = serde_json::to_value(exports.get("case").await?)?;
        let Some(message) = ready_message(&export) else {
            return Ok(None);
        };
        let rows = printed_columns(&ns, "metricsexports").await?;
        Ok(rows
            .first()
            .is_some_and(|row| cell(row, "Message") == Some(&message))
            .then_some(()))
    })
    .await
    .with_context(|| operator.log())?;
    let rows = printed_columns(&ns, "aggregationjobs").await?;
    let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    ensure!(
        !columns.contains(&"Date") && !columns.contains(&"Month"),
        "the period is one column: {columns:?}"
    );
    Ok(())
}

/// Plays the kubelet: the Pod's container `vctp` is in `state` (e.g. `{"waiting": …}` or
/// `{"terminated": …}`), the Pod in `phase`.
async fn set_container_state(
    ns: &TestNamespace,
    pod: &str,
    phase: &str,
    state: serde_json::Value,
) -> Result<()> {
    let status = json!({ "status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "vctp", "image": "vctp:test", "imageID": "", "ready": false,
            "restartCount": 0, "state": state,
        }],
    }});
    ns.api::<k8s_openapi::api::core::v1::Pod>()
        .patch_status(
            pod,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await
        .with_context(|| format!("setting the container state of Pod {pod}"))?;
    Ok(())
}

/// The Events about `name` with `reason`, their notes.
async fn event_notes(ns: &TestNamespace, name: &str, reason: &str) -> Result<Vec<String>> {
    Ok(events(ns, name)
        .await?
        .into_iter()
        .filter(|(r, _)| r == reason)
        .map(|(_, note)| note)
        .collect())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_job_whose_image_cannot_be_pulled_or_whose_pod_is_oom_killed_fails_with_that_reason()
-> Result<()> {
    let ns = TestNamespace::new("jobfail").await?;
    let operator = OperatorProcess::start(
        &ns.name,
        &[
            "--job-backoff-limit",
            "0",
            "--image-pull-timeout-seconds",
            "3",
        ],
    )?;
    for (name, date) in [("pull", "2026-03-10"), ("oom", "2026-03-11")] {
        create::<AggregationJob>(
            &ns,
            json!({
                "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
                "metadata": { "name": name }, "spec": { "period": "Daily", "date": date },
            }),
        )
        .await?;
    }

    // Waiting for an image never ends a Job: the operator gives the run up and says why.
    let pull = running_pod(&ns, "pull-aggregate").await?;
    set_container_state(
        &ns,
        &pull,
        "Pending",
        json!({ "waiting": { "reason": "ErrImageNeverPull",
                "message": "Container image \"vctp:test\" is not present with pull policy of Never" }}),
    )
    .await?;
    let status = phase_reached(&ns, "pull", Phase::Failed, &operator).await?;
    let complete = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .context("Complete")?;
    ensure!(
        complete.reason == "ErrImageNeverPull"
            && complete.message.contains("vctp:test")
            && complete.message.contains("--image-pull-timeout-seconds 3"),
        "{complete:?}"
    );
    let notes = eventually("an ErrImageNeverPull Warning Event", || async {
        let notes = event_notes(&ns, "pull", "ErrImageNeverPull").await?;
        Ok((!notes.is_empty()).then_some(notes))
    })
    .await?;
    ensure!(notes[0].contains("is not present"), "{notes:?}");
    let jobs = ns.api::<Job>();
    eventually("the given-up Job deleted", || async {
        Ok(jobs
            .get_opt("pull-aggregate")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;

    // An OOM-killed Pod leaves no result: the kubelet's reason is the run's.
    let oom = running_pod(&ns, "oom-aggregate").await?;
    set_container_state(
        &ns,
        &oom,
        "Failed",
        json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled" }}),
    )
    .await?;
    let status = phase_reached(&ns, "oom", Phase::Failed, &operator).await?;
    let complete = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Complete")
        .context("Complete")?;
    ensure!(
        complete.reason == "OOMKilled" && complete.message.contains("exit code 137"),
        "{complete:?}"
    );
    eventually("an OOMKilled Warning Event", || async {
        Ok((!event_notes(&ns, "oom", "OOMKilled").await?.is_empty()).then_some(()))
    })
    .await?;
    Ok(())
}
