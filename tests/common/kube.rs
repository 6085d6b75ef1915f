//! Helpers for tests against the real Kubernetes control plane (etcd, kube-apiserver and
//! kube-controller-manager v1.20.2) that `scripts/test.sh` starts through `scripts/kube.sh`
//! and points to with `VCTP_TEST_KUBECONFIG`. There is no kubelet: a test plays its part by
//! patching a Pod's status.

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for the controllers (they usually need well under a second).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The test cluster's kubeconfig; fails with the script to run when it is not set.
pub fn kubeconfig_path() -> String {
    std::env::var("VCTP_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "VCTP_TEST_KUBECONFIG is not set: run the tests through scripts/test.sh, which starts the Kubernetes API server (scripts/kube.sh)"
        )
    })
}

/// A client for the test cluster's admin.
pub async fn client() -> Result<Client> {
    let path = kubeconfig_path();
    let kubeconfig =
        Kubeconfig::read_from(&path).with_context(|| format!("reading kubeconfig {path}"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {path}"))?;
    Client::try_from(config).context("building the client")
}

/// Polls `check` until it returns `Some`, failing with `what` after `patience`.
pub async fn eventually_within<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if start.elapsed() > patience {
            bail!("{what}: not seen within {patience:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`eventually_within`] the usual [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    eventually_within(what, PATIENCE, check).await
}

/// A fresh namespace for one test, deleted (in the background) when dropped.
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

impl TestNamespace {
    /// Creates `vctp-<tag>-<pid>-<n>` and waits for its `default` ServiceAccount token: Pods
    /// of a fresh namespace are refused until the controller manager made it, and the Job
    /// controller would only retry after a 10 s back-off.
    pub async fn new(tag: &str) -> Result<TestNamespace> {
        TestNamespace::create(Self::unused_name(tag)).await
    }

    /// A name `vctp-<tag>-<pid>-<n>` no namespace of this run has, for a namespace to create
    /// later with [`TestNamespace::create`].
    pub fn unused_name(tag: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "vctp-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Creates the namespace `name` (see [`TestNamespace::new`]).
    pub async fn create(name: String) -> Result<TestNamespace> {
        let client = client().await?;
        let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        eventually("the default ServiceAccount with its token", || async {
            Ok(accounts
                .get_opt("default")
                .await?
                .filter(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty())))
        })
        .await?;
        Ok(TestNamespace { client, name })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.name.clone();
        // Best effort: the cluster is thrown away after the suite anyway.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::background())
                    .await;
            });
        }
    }
}

/// Creates `manifest` (a whole resource of kind `K`) in the test namespace.
pub async fn create<K>(ns: &TestNamespace, manifest: serde_json::Value) -> Result<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(manifest)?;
    Ok(ns
        .api::<K>()
        .create(&PostParams::default(), &object)
        .await?)
}

/// The arguments and environment of `job`'s one container as the kubelet would give them:
/// `secretKeyRef` and `configMapKeyRef` values read from the API (`fieldRef`s are left out).
pub async fn container_command(
    ns: &TestNamespace,
    job: &k8s_openapi::api::batch::v1::Job,
) -> Result<(Vec<String>, Vec<(String, String)>)> {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let container = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .context("the Job has no container")?;
    let mut env = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => {
                if let Some(key) = &from.secret_key_ref {
                    let secret = ns.api::<Secret>().get(&key.name).await?;
                    let bytes = secret
                        .data
                        .and_then(|d| d.get(&key.key).cloned())
                        .with_context(|| format!("Secret {} has no {}", key.name, key.key))?;
                    String::from_utf8(bytes.0)?
                } else if let Some(key) = &from.config_map_key_ref {
                    let map = ns.api::<ConfigMap>().get(&key.name).await?;
                    map.data
                        .and_then(|d| d.get(&key.key).cloned())
                        .with_context(|| format!("ConfigMap {} has no {}", key.name, key.key))?
                } else {
                    continue;
                }
            }
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    Ok((container.args.clone().unwrap_or_default(), env))
}

/// The Events about `name` as (reason, note), oldest first.
pub async fn events(ns: &TestNamespace, name: &str) -> Result<Vec<(String, String)>> {
    let mut events: Vec<k8s_openapi::api::events::v1::Event> = ns
        .api::<k8s_openapi::api::events::v1::Event>()
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    events.sort_by_key(|e| e.metadata.creation_timestamp.clone());
    Ok(events
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect())
}

/// The Pods of Job `job` (label `job-name`).
pub async fn job_pods(ns: &TestNamespace, job: &str) -> Result<Vec<Pod>> {
    Ok(ns
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await?
        .items)
}

/// Whether the kubelet (here: the test) has finished `pod`, whichever way it ended.
pub fn pod_finished(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed")
}

/// Plays the kubelet: the Pod's one container `container` terminated with `exit_code` and
/// left `message` as its termination message.
pub async fn finish_pod(
    ns: &TestNamespace,
    pod: &str,
    container: &str,
    exit_code: i32,
    message: &str,
) -> Result<()> {
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let status = json!({ "status": {
        "phase": phase,
        "containerStatuses": [{
            "name": container,
            "image": "vctp:test",
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "state": { "terminated": {
                "exitCode": exit_code,
                "reason": if exit_code == 0 { "Completed" } else { "Error" },
                "message": message,
            }},
        }],
    }});
    ns.api::<Pod>()
        .patch_status(pod, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .with_context(|| format!("finishing Pod {pod}"))?;
    Ok(())
}

/// A `vctp operator` process watching one namespace, killed when dropped; its log is kept
/// in a temp file and printed by [`OperatorProcess::log`].
pub struct OperatorProcess {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl OperatorProcess {
    /// Starts the operator on `namespace` with the built-in Job template and `extra` args.
    pub fn start(namespace: &str, extra: &[&str]) -> Result<OperatorProcess> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("operator.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_vctp"))
            .args([
                "operator",
                "--namespaces",
                namespace,
                "--job-image",
                "vctp:test",
            ])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .env("KUBECONFIG", kubeconfig_path())
            .env("RUST_LOG", "info,kube=warn")
            .env_remove("VCTP_JOB_TEMPLATE")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .context("starting vctp operator")?;
        Ok(OperatorProcess {
            child,
            log,
            _dir: dir,
        })
    }

    /// What the operator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the operator as Kubernetes would (SIGTERM) and returns its exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("vctp operator did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
