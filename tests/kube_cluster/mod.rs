//! The test cluster of `scripts/test.sh` (`scripts/kube.sh`: etcd, kube-apiserver and
//! kube-controller-manager v1.20.2, no kubelet): a client from `VCTP_TEST_KUBECONFIG`, a
//! fresh namespace per test, and polling until the controllers have reacted.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

/// How long the controllers get to react (they usually need well under a second).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A client for the test cluster's admin; fails with the script to run when the
/// cluster's kubeconfig is not set.
pub async fn client() -> Result<Client> {
    let path = std::env::var("VCTP_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "VCTP_TEST_KUBECONFIG is not set: run the tests through scripts/test.sh, which starts the Kubernetes API server (scripts/kube.sh)"
        )
    });
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
