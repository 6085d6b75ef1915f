//! Our Kubernetes client (kube 5, k8s-openapi 0.29) against a real control plane:
//! etcd, kube-apiserver and kube-controller-manager v1.20.2, which `scripts/test.sh`
//! starts through `scripts/kube.sh` and points to with `VCTP_TEST_KUBECONFIG`.
//!
//! There is no kubelet and no scheduler: a Job's Pod stays Pending until a test
//! patches its status, as a kubelet would.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::kube::{TestNamespace, client, eventually};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// A fresh namespace for one test, and the client.
async fn namespace(tag: &str) -> Result<(TestNamespace, Client, String)> {
    let ns = TestNamespace::new(&format!("smoke-{tag}")).await?;
    let (client, name) = (ns.client.clone(), ns.name.clone());
    Ok((ns, client, name))
}

async fn namespace_names(client: &Client) -> Result<Vec<String>> {
    Ok(Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn the_admin_sees_a_v1_20_server_lists_namespaces_and_creates_a_config_map() -> Result<()> {
    let client = client().await?;
    let version = client.apiserver_version().await?;
    ensure!(
        version.git_version == "v1.20.2",
        "server version {}",
        version.git_version
    );

    let names = namespace_names(&client).await?;
    for wanted in ["default", "kube-system"] {
        ensure!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }

    let (_guard, client, ns) = namespace("configmap").await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "settings" },
        "data": { "rate": "0.25", "currency": "EUR" },
    }))?;
    maps.create(&PostParams::default(), &cm).await?;
    let read = maps.get("settings").await?;
    let data = read.data.unwrap_or_default();
    ensure!(
        data.get("rate").map(String::as_str) == Some("0.25"),
        "{data:?}"
    );
    ensure!(
        namespace_names(&client).await?.contains(&ns),
        "the new namespace {ns} is not listed"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_job_gets_a_pod_completes_when_the_pod_succeeds_and_the_pod_is_collected_after_a_background_delete()
-> Result<()> {
    let (_guard, client, ns) = namespace("job").await?;

    // Pods of a fresh namespace are refused until the controller manager has
    // made its `default` ServiceAccount and that account's token; the Job
    // controller would retry, but only after a 10 s back-off.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    eventually("the default ServiceAccount with its token", || async {
        Ok(accounts
            .get_opt("default")
            .await?
            .filter(|sa| sa.secrets.as_ref().is_some_and(|s| !s.is_empty())))
    })
    .await?;

    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job: Job = serde_json::from_value(json!({
        "metadata": { "name": "collect" },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "main", "image": "vctp:test", "args": ["collect"] }],
            }},
        },
    }))?;
    jobs.create(&PostParams::default(), &job).await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let by_job = ListParams::default().labels("job-name=collect");
    let pod = eventually("the Job controller's Pod", || async {
        Ok(pods.list(&by_job).await?.items.into_iter().next())
    })
    .await?;
    let pod_name = pod.metadata.name.clone().context("the Pod has no name")?;
    let owner = pod
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .find(|o| o.kind == "Job")
        .context("the Pod has no Job owner")?;
    ensure!(owner.name == "collect" && owner.controller == Some(true));
    ensure!(
        pod.status.and_then(|s| s.phase).as_deref() == Some("Pending"),
        "without a kubelet the Pod should stay Pending"
    );

    // What a kubelet would report for a container that exited 0.
    let finished = json!({ "status": {
        "phase": "Succeeded",
        "containerStatuses": [{
            "name": "main",
            "image": "vctp:test",
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "state": { "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "message": "collected 200 VMs",
            }},
        }],
    }});
    let patched = pods
        .patch_status(&pod_name, &PatchParams::default(), &Patch::Merge(&finished))
        .await?;
    let status = patched.status.context("the patched Pod has no status")?;
    ensure!(status.phase.as_deref() == Some("Succeeded"));
    let message = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find_map(|c| c.state?.terminated?.message);
    ensure!(
        message.as_deref() == Some("collected 200 VMs"),
        "{message:?}"
    );

    let done = eventually("the Job's Complete condition", || async {
        let job = jobs.get("collect").await?;
        let complete = job.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        });
        Ok(complete.then_some(job))
    })
    .await?;
    ensure!(done.status.and_then(|s| s.succeeded) == Some(1));

    jobs.delete("collect", &DeleteParams::background()).await?;
    eventually("the Job gone", || async {
        Ok(jobs.get_opt("collect").await?.is_none().then_some(()))
    })
    .await?;
    eventually("the Pod garbage-collected", || async {
        Ok(pods.get_opt(&pod_name).await?.is_none().then_some(()))
    })
    .await?;

    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn server_side_apply_creates_a_config_map_and_removes_the_fields_a_later_apply_drops()
-> Result<()> {
    let (_guard, client, ns) = namespace("apply").await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let params = PatchParams::apply("vctp-smoke").force();

    let first = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "applied", "labels": { "app.kubernetes.io/managed-by": "vctp" } },
        "data": { "a": "1", "b": "2" },
    });
    let created = maps
        .patch("applied", &params, &Patch::Apply(&first))
        .await?;
    ensure!(created.data.as_ref().map(|d| d.len()) == Some(2));
    let managers: Vec<(String, String)> = created
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| Some((m.manager?, m.operation?)))
        .collect();
    ensure!(
        managers.contains(&("vctp-smoke".to_string(), "Apply".to_string())),
        "{managers:?}"
    );

    let second = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "applied" },
        "data": { "a": "10" },
    });
    maps.patch("applied", &params, &Patch::Apply(&second))
        .await?;
    let read = maps.get("applied").await?;
    let data = read.data.unwrap_or_default();
    ensure!(
        data.len() == 1 && data.get("a").map(String::as_str) == Some("10"),
        "{data:?}"
    );
    ensure!(
        read.metadata.labels.unwrap_or_default().is_empty(),
        "the label the second apply dropped is still there"
    );

    Ok(())
}
