//! MetricsExport end to end: the real `vctp operator` against the real kube-apiserver
//! (`scripts/kube.sh`), real VictoriaMetrics nodes and vmauth (`scripts/victoriametrics.sh`)
//! and the S3 server (`scripts/s3.sh`). There is no kubelet: the test plays it, running each
//! Job's container command here with the env it would get (Secrets read from the API), and
//! finishing its Pod with the termination message the process left. A finalizer on the Pod
//! keeps it until "its container" has stopped, as a kubelet would.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{Context, Result, ensure};
use common::kube::{
    OperatorProcess, TestNamespace, container_command, create, events, eventually,
    eventually_within, finish_pod, job_pods, kubeconfig_path, pod_finished,
};
use common::metrics::{ALL, Bucket, Fault, KEY, Proxy, Watched, entry, seeded};
use common::vm::{self, AuthUser, VmAuth};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vctp::crd::MetricsExport;
use vctp::crd::metrics_export::ExportPhase;
use vctp::export::metadata::{Manifest, Metadata};
use vctp::jobs::termination::JobResult;

/// The finalizer the test puts on a Pod while "its container" runs.
const KUBELET: &str = "test.vctp.io/kubelet";

async fn secret(ns: &TestNamespace, name: &str, data: &[(&str, &str)]) -> Result<()> {
    let string_data: BTreeMap<&str, &str> = data.iter().copied().collect();
    create::<Secret>(
        ns,
        json!({ "apiVersion": "v1", "kind": "Secret",
                "metadata": { "name": name, "labels": { "vctp.io/credentials": "true" } },
                "stringData": string_data }),
    )
    .await?;
    Ok(())
}

/// The Secrets every export here needs: the obfuscation key, and the database URL the
/// built-in Job template passes to every Job (an export does not use it).
async fn common_secrets(ns: &TestNamespace) -> Result<()> {
    secret(ns, "export-key", &[("key", KEY)]).await?;
    secret(
        ns,
        "vctp-database",
        &[("VCTP_DATABASE_URL", "/nonexistent/unused.sqlite3")],
    )
    .await
}

/// A MetricsExport of the seed from `source`, obfuscated with the `export-key` Secret.
async fn export(
    ns: &TestNamespace,
    name: &str,
    seed: &vm::Seed,
    source: Value,
    destination: Value,
) -> Result<MetricsExport> {
    let rfc3339 = |ms| vctp::export::metadata::rfc3339_ms(ms);
    create::<MetricsExport>(
        ns,
        json!({
            "apiVersion": "vctp.io/v1alpha1", "kind": "MetricsExport",
            "metadata": { "name": name },
            "spec": {
                "source": source,
                "selectors": [ALL],
                "timeRange": { "start": rfc3339(seed.start_ms), "end": rfc3339(seed.end_ms) },
                "batch": { "windowSeconds": 1800, "stepSeconds": 15 },
                "obfuscation": { "keySecretRef": { "name": "export-key", "key": "key" } },
                "destination": destination,
            },
        }),
    )
    .await
}

/// "Its container": the Job's command running here, and the Pod it stands for.
struct Container {
    process: Watched,
    pod: String,
    termination: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts the container of Job `job` as a kubelet would (its args and env, KUBECONFIG for the
/// API server, a termination log), with a fast progress interval.
async fn start_container(ns: &TestNamespace, job: &str) -> Result<Container> {
    let job: Job = eventually(&format!("Job {job}"), || async {
        Ok(ns.api::<Job>().get_opt(job).await?)
    })
    .await?;
    let name = job.metadata.name.clone().unwrap_or_default();
    let pod = eventually(&format!("a Pod of {name}"), || unfinished_pod(ns, &name)).await?;
    let finalizer = json!({ "metadata": { "finalizers": [KUBELET] } });
    ns.api::<Pod>()
        .patch(&pod, &PatchParams::default(), &Patch::Merge(&finalizer))
        .await?;
    let (mut args, mut env) = container_command(ns, &job).await?;
    args.extend(["--status-interval-seconds".to_string(), "0.2".to_string()]);
    let dir = tempfile::tempdir()?;
    let termination = dir.path().join("termination-log");
    env.push(("KUBECONFIG".into(), kubeconfig_path()));
    env.push((
        "VCTP_TERMINATION_LOG".into(),
        termination.display().to_string(),
    ));
    env.push(("HOSTNAME".into(), pod.clone()));
    Ok(Container {
        process: Watched::start_with(&args, &env)?,
        pod,
        termination,
        _dir: dir,
    })
}

/// A Pod of `job` that is neither finished nor being deleted.
async fn unfinished_pod(ns: &TestNamespace, job: &str) -> Result<Option<String>> {
    Ok(job_pods(ns, job).await?.into_iter().find_map(|p| {
        (!pod_finished(&p) && p.metadata.deletion_timestamp.is_none())
            .then(|| p.metadata.name.unwrap_or_default())
    }))
}

impl Container {
    /// Waits for the process to end, releases its Pod and, unless the Pod is being deleted,
    /// finishes it with the termination message. Returns the exit status, the result and
    /// what the process printed.
    async fn stop(self, ns: &TestNamespace) -> Result<(i32, Option<JobResult>, String)> {
        let (code, output) = self.process.finish().await?;
        let message = std::fs::read_to_string(&self.termination).unwrap_or_default();
        let pods = ns.api::<Pod>();
        let release = json!({ "metadata": { "finalizers": null } });
        let pod = pods.get_opt(&self.pod).await?;
        if pod
            .as_ref()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        {
            finish_pod(ns, &self.pod, "vctp", code, &message).await?;
        }
        if pod.is_some() {
            pods.patch(&self.pod, &PatchParams::default(), &Patch::Merge(&release))
                .await?;
        }
        Ok((code, JobResult::from_message(&message), output))
    }
}

/// Every status the MetricsExport `name` takes, as a watch sees them.
struct StatusLog {
    seen: Arc<Mutex<Vec<vctp::crd::MetricsExportStatus>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl StatusLog {
    fn start(ns: &TestNamespace, name: &str) -> StatusLog {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let api = ns.api::<MetricsExport>();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, config).boxed();
            while let Ok(Some(event)) = stream.try_next().await {
                if let watcher::Event::Apply(export) | watcher::Event::InitApply(export) = event
                    && let (Some(status), Ok(mut log)) = (export.status, log.lock())
                {
                    log.push(status);
                }
            }
        });
        StatusLog { seen, _task: task }
    }

    fn phases(&self) -> Vec<ExportPhase> {
        let mut phases: Vec<ExportPhase> = Vec::new();
        for status in self.seen.lock().map(|s| s.clone()).unwrap_or_default() {
            if let Some(phase) = status.phase
                && phases.last() != Some(&phase)
            {
                phases.push(phase);
            }
        }
        phases
    }

    /// The distinct batch counts seen while the export ran.
    fn batches(&self) -> Vec<i64> {
        let mut batches: Vec<i64> = Vec::new();
        for status in self.seen.lock().map(|s| s.clone()).unwrap_or_default() {
            if status.phase == Some(ExportPhase::Running)
                && let Some(done) = status.progress.map(|p| p.batches_done)
                && batches.last() != Some(&done)
            {
                batches.push(done);
            }
        }
        batches
    }
}

async fn status_where(
    ns: &TestNamespace,
    name: &str,
    what: &str,
    operator: &OperatorProcess,
    check: impl Fn(&vctp::crd::MetricsExportStatus) -> bool,
) -> Result<vctp::crd::MetricsExportStatus> {
    let api = ns.api::<MetricsExport>();
    eventually_within(what, Duration::from_secs(60), || async {
        let status = api.get(name).await?.status.unwrap_or_default();
        Ok(check(&status).then_some(status))
    })
    .await
    .with_context(|| operator.log())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kubernetes, VictoriaMetrics and the S3 server: run scripts/test.sh"]
async fn an_export_goes_from_pending_through_live_progress_to_its_bundle() -> Result<()> {
    let ns = TestNamespace::new("mexp").await?;
    let operator = OperatorProcess::start(&ns.name, &[])?;
    let (node, seed) = seeded().await?;
    // 0.15 s per request: a dozen windows take a few seconds, long enough to watch.
    let source = Proxy::start(node.base(), Fault::Delay(Duration::from_millis(150))).await?;
    let bucket = Bucket::new("operator");
    common_secrets(&ns).await?;
    let options = bucket.server.good_options();
    let credentials: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    secret(&ns, "bucket", &credentials).await?;
    let log = StatusLog::start(&ns, "support-case");
    export(
        &ns,
        "support-case",
        &seed,
        json!({ "url": source.url }),
        json!({ "storeUrl": bucket.url(), "credentialsSecretRef": { "name": "bucket" },
                "prefix": "exports/case" }),
    )
    .await?;
    let pending = status_where(&ns, "support-case", "a run", &operator, |s| {
        s.job_name.is_some()
    })
    .await?;
    let run_id = pending.run_id.clone().context("run id")?;
    let job = pending.job_name.clone().context("job")?;
    let container = start_container(&ns, &job).await?;
    let (code, result, output) = container.stop(&ns).await?;
    ensure!(code == 0, "exit {code}: {output}");
    let result = result
        .context("no result")?
        .export
        .context("no export result")?;
    let done = status_where(&ns, "support-case", "phase Succeeded", &operator, |s| {
        s.phase == Some(ExportPhase::Succeeded)
    })
    .await?;

    let phases = log.phases();
    ensure!(
        phases.starts_with(&[ExportPhase::Pending, ExportPhase::Running])
            && phases.last() == Some(&ExportPhase::Succeeded),
        "{phases:?}"
    );
    let batches = log.batches();
    ensure!(batches.len() >= 2, "live progress seen {batches:?}");
    let archive = done.archive.clone().context("archive")?;
    ensure!(
        archive.key == format!("exports/case/{run_id}.zip"),
        "{archive:?}"
    );
    let sidecar = bucket
        .objects()
        .get(&format!("{}.sha256", archive.key))
        .await?;
    ensure!(
        String::from_utf8(sidecar)?.starts_with(&archive.sha256),
        "{archive:?}"
    );
    let manifest: Manifest = bucket
        .json(archive.manifest_key.as_deref().context("manifest")?)
        .await?;
    ensure!(manifest.sha256 == archive.sha256 && manifest.samples == 288_000);
    ensure!(
        (done.series_exported, done.samples_exported) == (Some(200), Some(288_000)),
        "{done:?}"
    );
    ensure!(result.bundle.sha256 == archive.sha256);
    let progress = done.progress.context("progress")?;
    ensure!(
        (progress.batches_done, progress.batches_total) == (12, 12),
        "{progress:?}"
    );
    let reasons: Vec<String> = events(&ns, "support-case")
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect();
    ensure!(
        reasons.contains(&"JobCreated".to_string()) && reasons.contains(&"Succeeded".to_string()),
        "{reasons:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kubernetes and VictoriaMetrics: run scripts/test.sh"]
async fn suspend_stops_the_job_resume_continues_the_same_run_and_deletion_cleans_up() -> Result<()>
{
    let ns = TestNamespace::new("mexp-suspend").await?;
    let store = tempfile::tempdir()?;
    let store_url = format!("file://{}", store.path().display());
    let operator = OperatorProcess::start(&ns.name, &["--reports-url", &store_url])?;
    let (node, seed) = seeded().await?;
    let source = Proxy::start(node.base(), Fault::Delay(Duration::from_millis(300))).await?;
    common_secrets(&ns).await?;
    let exports = ns.api::<MetricsExport>();
    export(
        &ns,
        "paused",
        &seed,
        json!({ "url": source.url }),
        json!({}),
    )
    .await?;
    let first = status_where(&ns, "paused", "a run", &operator, |s| s.job_name.is_some()).await?;
    let (run_id, job) = (first.run_id.clone(), first.job_name.clone().context("job")?);

    let container = start_container(&ns, &job).await?;
    status_where(&ns, "paused", "3 batches", &operator, |s| {
        s.progress.as_ref().is_some_and(|p| p.batches_done >= 3)
    })
    .await?;
    let suspend = |on: bool| json!({ "spec": { "suspend": on } });
    exports
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(&suspend(true)),
        )
        .await?;
    // The operator deletes the Job; the kubelet stops its container.
    eventually("the Job deleted", || async {
        Ok(ns.api::<Job>().get_opt(&job).await?.is_none().then_some(()))
    })
    .await
    .with_context(|| operator.log())?;
    container.process.signal("-TERM")?;
    let (code, result, _) = container.stop(&ns).await?;
    ensure!(code == 143, "exit {code}");
    ensure!(result.and_then(|r| r.reason).as_deref() == Some("Cancelled"));
    let suspended = status_where(&ns, "paused", "phase Suspended", &operator, |s| {
        s.phase == Some(ExportPhase::Suspended)
    })
    .await?;
    let kept = suspended.progress.as_ref().map_or(0, |p| p.batches_done);
    ensure!(
        kept >= 3 && suspended.run_id == run_id && suspended.job_name.is_none(),
        "{suspended:?}"
    );

    exports
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(&suspend(false)),
        )
        .await?;
    let again = status_where(&ns, "paused", "the run again", &operator, |s| {
        s.job_name.is_some() && s.phase != Some(ExportPhase::Suspended)
    })
    .await?;
    ensure!(again.run_id == run_id, "{again:?}");
    let container = start_container(&ns, &job).await?;
    let (code, result, output) = container.stop(&ns).await?;
    ensure!(code == 0, "exit {code}: {output}");
    let result = result.and_then(|r| r.export).context("export result")?;
    ensure!(
        result.resumed >= 3 && result.samples == 288_000,
        "{result:?}"
    );
    status_where(&ns, "paused", "phase Succeeded", &operator, |s| {
        s.phase == Some(ExportPhase::Succeeded)
    })
    .await?;
    let reasons: Vec<String> = events(&ns, "paused")
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect();
    ensure!(
        reasons.contains(&"Suspended".into()) && reasons.contains(&"Resumed".into()),
        "{reasons:?}"
    );

    // Deleting an export in the middle of a run: its Job goes, its parts go, the bundle of
    // the earlier resource stays (deleteOnResourceDeletion is off by default).
    export(
        &ns,
        "deleted",
        &seed,
        json!({ "url": source.url }),
        json!({}),
    )
    .await?;
    let status = status_where(&ns, "deleted", "a run", &operator, |s| s.job_name.is_some()).await?;
    let container = start_container(&ns, status.job_name.as_deref().context("job")?).await?;
    status_where(&ns, "deleted", "2 batches", &operator, |s| {
        s.progress.as_ref().is_some_and(|p| p.batches_done >= 2)
    })
    .await?;
    exports.delete("deleted", &DeleteParams::default()).await?;
    container.process.signal("-TERM")?;
    container.stop(&ns).await?;
    eventually("the MetricsExport gone", || async {
        Ok(exports.get_opt("deleted").await?.is_none().then_some(()))
    })
    .await
    .with_context(|| operator.log())?;
    let left: Vec<String> = common::metrics::files(store.path())?
        .into_iter()
        .filter(|f| f.contains(&format!("exports/{}/deleted/", ns.name)))
        .collect();
    ensure!(left.is_empty(), "left behind: {left:?}");
    let kept = format!(
        "exports/{}/paused/{}.zip",
        ns.name,
        run_id.unwrap_or_default()
    );
    ensure!(store.path().join(&kept).exists(), "{kept} is gone");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kubernetes and VictoriaMetrics: run scripts/test.sh"]
async fn a_query_only_source_falls_back_with_an_event_and_a_wrong_password_shows_nowhere()
-> Result<()> {
    let ns = TestNamespace::new("mexp-auth").await?;
    let store = tempfile::tempdir()?;
    let store_url = format!("file://{}", store.path().display());
    let operator = OperatorProcess::start(&ns.name, &["--reports-url", &store_url])?;
    let (node, seed) = seeded().await?;
    let password = "reader-pass-9";
    let wrong = "not-the-password-7";
    let auth = VmAuth::start(
        &node.url,
        &[AuthUser::QueryOnly {
            username: "support".into(),
            password: password.into(),
        }],
    )
    .await?;
    common_secrets(&ns).await?;
    secret(
        &ns,
        "reader",
        &[("username", "support"), ("password", password)],
    )
    .await?;
    secret(
        &ns,
        "wrong",
        &[("username", "support"), ("password", wrong)],
    )
    .await?;
    let source = |secret: &str| {
        json!({ "url": auth.url, "kind": "VMAuth",
                "authSecretRef": { "name": secret, "usernameKey": "username", "passwordKey": "password" } })
    };

    export(&ns, "fallback", &seed, source("reader"), json!({})).await?;
    let status = status_where(&ns, "fallback", "a run", &operator, |s| {
        s.job_name.is_some()
    })
    .await?;
    let container = start_container(&ns, status.job_name.as_deref().context("job")?).await?;
    let (code, _, output) = container.stop(&ns).await?;
    ensure!(code == 0, "exit {code}: {output}");
    let done = status_where(&ns, "fallback", "phase Succeeded", &operator, |s| {
        s.phase == Some(ExportPhase::Succeeded)
    })
    .await?;
    ensure!(
        done.progress.as_ref().and_then(|p| p.method.as_deref()) == Some("QueryRange"),
        "{done:?}"
    );
    let notes = events(&ns, "fallback").await?;
    ensure!(
        notes
            .iter()
            .any(|(reason, note)| reason == "ExportUnavailable" && note.contains("missing route")),
        "{notes:?}"
    );
    let zip = store.path().join(&done.archive.context("archive")?.key);
    let metadata: Metadata = serde_json::from_slice(&entry(&zip, "metadata.json")?)?;
    ensure!(metadata.method == vctp::export::checkpoint::Method::QueryRange);

    export(&ns, "refused", &seed, source("wrong"), json!({})).await?;
    let status = status_where(&ns, "refused", "a run", &operator, |s| s.job_name.is_some()).await?;
    let job = status.job_name.clone().context("job")?;
    // The built-in template retries a failed Pod twice: every attempt is refused alike.
    let mut outputs = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = exports_status(&ns, "refused").await?;
        if status.phase == Some(ExportPhase::Failed) {
            break status;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "not Failed: {status:?}\n{}",
            operator.log()
        );
        if unfinished_pod(&ns, &job).await?.is_none() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let (code, result, output) = start_container(&ns, &job).await?.stop(&ns).await?;
        ensure!(code == 2, "exit {code}: {output}");
        ensure!(result.and_then(|r| r.reason).as_deref() == Some("Unauthorized"));
        outputs.push_str(&output);
    };
    ensure!(
        status.conditions.iter().any(|c| c.reason == "Unauthorized"),
        "{status:?}"
    );
    let shown = format!(
        "{}\n{}\n{:?}\n{outputs}",
        serde_json::to_string(&status)?,
        operator.log(),
        events(&ns, "refused").await?
    );
    for secret in [wrong.to_string(), base64_of(&format!("support:{wrong}"))] {
        ensure!(!shown.contains(&secret), "{secret} shown in:\n{shown}");
    }
    ensure!(shown.contains("refused the credentials"), "{shown}");
    Ok(())
}

async fn exports_status(ns: &TestNamespace, name: &str) -> Result<vctp::crd::MetricsExportStatus> {
    Ok(ns
        .api::<MetricsExport>()
        .get(name)
        .await?
        .status
        .unwrap_or_default())
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
