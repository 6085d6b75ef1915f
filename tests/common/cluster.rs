//! The Kubernetes API server `scripts/test.sh` starts (`scripts/kube.sh`), its admin
//! kubeconfig in `VCTP_TEST_KUBECONFIG`: a client, a fresh namespace per test, polling, and
//! vctp's CustomResourceDefinitions installed.

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long the API server and its controllers get to react (usually well under a second).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Path of the cluster admin's kubeconfig; fails with the script to run when it is not set.
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

/// Polls `check` until it returns `Some`, failing with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if start.elapsed() > PATIENCE {
            bail!("{what}: not seen within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh namespace for one test, and the client.
pub async fn namespace(tag: &str) -> Result<(Client, String)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let client = client().await?;
    let name = format!(
        "vctp-test-{}-{}-{tag}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok((client, name))
}

/// Deletes a test's namespace (best effort: the cluster is thrown away anyway).
pub async fn drop_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await;
}

/// Creates the CRDs of `vctp::crd::all()` unless they exist (another test of the run, or
/// `scripts/kube.sh`'s `VCTP_KUBE_CRDS_DIR`), and waits until each is served. A create, not a
/// server-side apply: v1.20 refuses to apply the CEL rules (`x-kubernetes-validations`) it
/// does not know, but a create drops them.
pub async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in vctp::crd::all() {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(e) => return Err(e).with_context(|| format!("creating CRD {name}")),
        }
        eventually(&format!("CRD {name} Established"), || async {
            let crd = api.get(&name).await?;
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
