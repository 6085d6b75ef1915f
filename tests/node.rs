//! The end-to-end scenario on a real one-node cluster: `scripts/kube.sh`'s `kube_node_start`
//! (a kubelet, containerd, kube-proxy and the scheduler in a network namespace of their own,
//! with PostgreSQL, the S3 server and the vCenter simulator on the node's address). The test
//! builds the image from `target/debug/vctp` (stripped) with `scripts/image.sh`, loads it into
//! the node's containerd, renders the chart (`scripts/chart_render.py`, helm-python-sdk) and
//! installs it with kubectl, then follows issue 15's steps: Deployments Ready under the
//! restricted security context, the Lease held, `/metrics` through the Service; a
//! VCenterTarget Ready with the simulator's version; a SnapshotSchedule whose Jobs run in Pods
//! and write PostgreSQL and the S3 bucket; `/api/vcenters` through the API's Service equal to
//! the database; fail-over of the leader with each tick run once.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{Context as _, Result, bail, ensure};
use common::kube::eventually_within as eventually;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};
use sqlx::Connection as _;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vctp::crd::aggregation_job::ReportObject;
use vctp::crd::{AggregationJob, SnapshotSchedule, VCenterTarget};

const NAMESPACE: &str = "vctp-system";
const RELEASE: &str = "vctp";
const IMAGE_TAG: &str = "node-test";

/// One variable of the node; fails naming the script that exports it.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts the one-node cluster (scripts/kube.sh kube_node_start) and the chart tools (scripts/helm.sh)"
        )
    })
}

struct Node {
    kubeconfig: String,
    kubectl: String,
    ctr: String,
    postgres_url: String,
    s3_endpoint: String,
    s3_bucket: String,
    s3_access_key: String,
    s3_secret_key: String,
    s3_region: String,
    vcsim_url: String,
    vcsim_ca: String,
    vcsim_user: String,
    vcsim_password: String,
    helm_python: String,
    vm_url: String,
}

impl Node {
    fn from_env() -> Node {
        Node {
            kubeconfig: var("VCTP_TEST_NODE_KUBECONFIG"),
            kubectl: var("VCTP_TEST_NODE_KUBECTL"),
            ctr: var("VCTP_TEST_NODE_CTR"),
            postgres_url: var("VCTP_TEST_NODE_POSTGRES_URL"),
            s3_endpoint: var("VCTP_TEST_NODE_S3_ENDPOINT"),
            s3_bucket: var("VCTP_TEST_NODE_S3_BUCKET"),
            s3_access_key: var("VCTP_TEST_NODE_S3_ACCESS_KEY"),
            s3_secret_key: var("VCTP_TEST_NODE_S3_SECRET_KEY"),
            s3_region: var("VCTP_TEST_NODE_S3_REGION"),
            vcsim_url: var("VCTP_TEST_NODE_VCSIM_URL"),
            vcsim_ca: var("VCTP_TEST_NODE_VCSIM_CA"),
            vcsim_user: var("VCTP_TEST_NODE_VCSIM_USER"),
            vcsim_password: var("VCTP_TEST_NODE_VCSIM_PASSWORD"),
            helm_python: var("VCTP_TEST_HELM_PYTHON"),
            vm_url: var("VCTP_TEST_NODE_VM_URL"),
        }
    }

    async fn client(&self) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// kubectl against the node's cluster; its stdout, or its stderr as the error.
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut command = Command::new(&self.kubectl);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("starting kubectl")?;
        if let Some(text) = stdin {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The objects of the S3 bucket under `prefix`.
    fn objects(&self, prefix: &str) -> vctp::objstore::Objects {
        vctp::objstore::Objects::from_url(
            &format!("s3://{}/{prefix}", self.s3_bucket),
            &self.s3_options(),
        )
        .expect("open the node's bucket")
    }

    fn s3_options(&self) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", self.s3_endpoint.as_str()),
            ("aws_region", &self.s3_region),
            ("aws_access_key_id", &self.s3_access_key),
            ("aws_secret_access_key", &self.s3_secret_key),
            ("aws_allow_http", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn step(started: Instant, what: &str) {
    eprintln!("node: [{:>4} s] {what}", started.elapsed().as_secs());
}

/// The image from the test's own `vctp` (stripped: the debug binary is ~10x larger), built
/// by `scripts/image.sh` and imported into the node's containerd as `vctp:node-test`.
fn build_and_import_image(node: &Node, dir: &Path) -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let stripped = dir.join("vctp");
    run(
        "strip",
        &["-o", stripped.to_str().unwrap(), env!("CARGO_BIN_EXE_vctp")],
    )?;
    let archive = dir.join("vctp.oci.tar");
    run(
        root.join("scripts/image.sh").to_str().unwrap(),
        &[
            "--binary",
            stripped.to_str().unwrap(),
            "--tag",
            &format!("vctp:{IMAGE_TAG}"),
            "--output",
            archive.to_str().unwrap(),
        ],
    )?;
    run(&node.ctr, &["images", "import", archive.to_str().unwrap()])?;
    let images = run(&node.ctr, &["images", "list", "-q"])?;
    ensure!(
        images
            .lines()
            .any(|l| l == format!("docker.io/library/vctp:{IMAGE_TAG}")),
        "the imported image is not named docker.io/library/vctp:{IMAGE_TAG}: {images}"
    );
    Ok(())
}

/// The version `scripts/kube.sh` builds.
const NODE_KUBE_VERSION: &str = "v1.20.2";

/// The chart's values for the node; `jobs` replaces the Jobs' values (step 6).
fn values(node: &Node, jobs: Value) -> Value {
    json!({
        "image": {"repository": "vctp", "tag": IMAGE_TAG, "pullPolicy": "Never"},
        "database": {"existingSecret": "vctp-database"},
        "objectStore": {
            "url": format!("s3://{}/node", node.s3_bucket),
            "existingSecret": "vctp-object-store",
            "options": {"aws_endpoint": node.s3_endpoint, "aws_region": node.s3_region, "aws_allow_http": "true"},
        },
        // Step 6: a Pod waiting for an image it cannot get is given up (status + Event) after
        // this, not the default 300 s.
        "operator": {"extraEnv": [{"name": "VCTP_IMAGE_PULL_TIMEOUT_SECONDS", "value": "20"}]},
        "jobs": jobs,
    })
}

/// Renders the chart (`scripts/chart_render.py`) into `dir`: (CRDs, everything else).
fn render(node: &Node, dir: &Path, values: &Value) -> Result<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let values_file = dir.join("values.json");
    std::fs::write(&values_file, values.to_string())?;
    let crds = dir.join("crds.yaml");
    let manifests = dir.join("manifests.yaml");
    run(
        &node.helm_python,
        &[
            root.join("scripts/chart_render.py").to_str().unwrap(),
            "--release",
            RELEASE,
            "--namespace",
            NAMESPACE,
            "--values",
            values_file.to_str().unwrap(),
            // The PodDisruptionBudgets are policy/v1beta1 on the 1.20 node (policy/v1 is 1.21+).
            "--kube-version",
            NODE_KUBE_VERSION,
            "--crds",
            crds.to_str().unwrap(),
            "--out",
            manifests.to_str().unwrap(),
        ],
    )?;
    Ok((crds, manifests))
}

/// Renders the chart with the node's values and installs it: CRDs first (created, not
/// applied: kubectl 1.20 refuses the CEL rules client-side and the 1.20 API server drops
/// them, as any API server before 1.25), then everything else.
fn install_chart(node: &Node, dir: &Path) -> Result<()> {
    let (crds, manifests) = render(node, dir, &values(node, json!({})))?;
    node.kubectl(
        &["create", "--validate=false", "-f", crds.to_str().unwrap()],
        None,
    )?;
    node.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "customresourcedefinitions",
            "--all",
            "--timeout=60s",
        ],
        None,
    )?;
    node.kubectl(&["create", "namespace", NAMESPACE], None)?;
    let secrets = json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "vctp-database", "namespace": NAMESPACE},
             "stringData": {"VCTP_DATABASE_URL": node.postgres_url}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "vctp-object-store", "namespace": NAMESPACE},
             "stringData": {"AWS_ACCESS_KEY_ID": node.s3_access_key, "AWS_SECRET_ACCESS_KEY": node.s3_secret_key}},
        ],
    });
    node.kubectl(&["apply", "-f", "-"], Some(&secrets.to_string()))?;
    node.kubectl(&["apply", "-f", manifests.to_str().unwrap()], None)?;
    // The chart's PodDisruptionBudgets (the operator and the API run two replicas) were
    // rendered in the API version the node serves: kubectl apply took them.
    let budgets = node.kubectl(
        &["get", "poddisruptionbudgets", "-n", NAMESPACE, "-o", "name"],
        None,
    )?;
    ensure!(
        budgets.lines().count() == 2,
        "expected the operator's and the API's PodDisruptionBudgets, got: {budgets}"
    );
    Ok(())
}

/// What went wrong with a Deployment's Pods, for the failure message.
async fn pod_states(client: &Client) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return "(listing the Pods failed)".into();
    };
    list.items
        .iter()
        .map(|pod| {
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            let states: Vec<String> = statuses.iter().map(|c| format!("{:?}", c.state)).collect();
            format!(
                "{}: {:?} {}",
                pod.name_any(),
                pod.status.as_ref().and_then(|s| s.phase.clone()),
                states.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Step 1: both Deployments Ready, the Lease held by an operator Pod, `/metrics` served
/// through the metrics Service. Returns the holder.
async fn deployments_ready(client: &Client) -> Result<String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    for name in [format!("{RELEASE}-operator"), format!("{RELEASE}-api")] {
        let ready = eventually(
            &format!("Deployment {name} Ready"),
            Duration::from_secs(180),
            || async {
                let d = deployments.get(&name).await?;
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let ready = d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                Ok((ready == want).then_some(d))
            },
        )
        .await;
        if let Err(err) = ready {
            bail!("{err}\nPods:\n{}", pod_states(client).await);
        }
    }
    // Ready under the chart's restricted security context: the Pods run as 65532.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    for pod in pods.list(&ListParams::default()).await? {
        let spec = pod.spec.as_ref().unwrap();
        let ctx = spec.security_context.as_ref().unwrap();
        ensure!(
            ctx.run_as_user == Some(65532) && ctx.run_as_non_root == Some(true),
            "{}: {ctx:?}",
            pod.name_any()
        );
        for c in &spec.containers {
            let sc = c.security_context.as_ref().unwrap();
            ensure!(
                sc.read_only_root_filesystem == Some(true)
                    && sc.allow_privilege_escalation == Some(false),
                "{}/{}: {sc:?}",
                pod.name_any(),
                c.name
            );
        }
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let holder = eventually("the leader Lease held", Duration::from_secs(60), || async {
        let lease = leases.get_opt(&format!("{RELEASE}-leader")).await?;
        Ok(lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty()))
    })
    .await?;
    let operators = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=operator"))
        .await?;
    ensure!(
        operators
            .items
            .iter()
            .any(|p| holder.contains(&p.name_any())),
        "the Lease holder {holder} is none of the operator Pods"
    );
    let metrics = service_get(client, &format!("{RELEASE}-metrics"), "/metrics").await?;
    ensure!(
        metrics
            .lines()
            .any(|l| l.starts_with("vctp_operator_leader ")),
        "/metrics through the Service has no vctp_operator_leader:\n{metrics}"
    );
    Ok(holder)
}

/// GET `path` from a Service's ClusterIP (through kube-proxy's rules on the node).
async fn service_get(client: &Client, service: &str, path: &str) -> Result<String> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let svc = services.get(service).await?;
    let spec = svc.spec.unwrap();
    let ip = spec.cluster_ip.unwrap();
    let port = spec.ports.unwrap()[0].port;
    let url = format!("http://{ip}:{port}{path}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    eventually(&format!("GET {url}"), Duration::from_secs(60), || async {
        match http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => Ok(Some(resp.text().await?)),
            _ => Ok(None),
        }
    })
    .await
}

/// Step 2: the simulator as a VCenterTarget (account Secret, CA bundle Secret); Ready with
/// its version.
async fn target_ready(node: &Node, client: &Client) -> Result<String> {
    let ca = std::fs::read_to_string(&node.vcsim_ca)?;
    let objects = json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "vcsim-account", "namespace": NAMESPACE, "labels": {"vctp.io/credentials": "true"}},
             "stringData": {"username": node.vcsim_user, "password": node.vcsim_password}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "vcsim-ca", "namespace": NAMESPACE, "labels": {"vctp.io/credentials": "true"}},
             "stringData": {"ca.crt": ca}},
            {"apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
             "metadata": {"name": "vcsim", "namespace": NAMESPACE, "labels": {"site": "node"}},
             "spec": {
                 "url": node.vcsim_url,
                 "credentialsSecretRef": {"name": "vcsim-account"},
                 "tls": {"caBundleSecretRef": {"name": "vcsim-ca", "key": "ca.crt"}},
             }},
        ],
    });
    node.kubectl(&["apply", "-f", "-"], Some(&objects.to_string()))?;
    let targets: Api<VCenterTarget> = Api::namespaced(client.clone(), NAMESPACE);
    eventually(
        "VCenterTarget vcsim Ready with a version",
        Duration::from_secs(60),
        || async {
            let t = targets.get("vcsim").await?;
            let Some(status) = t.status else {
                return Ok(None);
            };
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok(status.vcenter_version.filter(|_| ready))
        },
    )
    .await
}

/// The schedule: every minute, hourly reports and a daily aggregation every minute (of the
/// previous day), no monthly one.
fn create_schedule(node: &Node) -> Result<()> {
    let schedule = json!({
        "apiVersion": "vctp.io/v1alpha1", "kind": "SnapshotSchedule",
        "metadata": {"name": "every-minute", "namespace": NAMESPACE},
        "spec": {
            "schedule": "* * * * *",
            "targetSelector": {"matchLabels": {"site": "node"}},
            "aggregation": {
                "hourlyReports": true,
                "daily": {"enabled": true, "schedule": "* * * * *"},
                "monthly": {"enabled": false},
            },
        },
    });
    node.kubectl(&["apply", "-f", "-"], Some(&schedule.to_string()))?;
    Ok(())
}

/// The snapshot Jobs that completed, by tick (`vctp.io/tick`).
async fn snapshot_jobs(client: &Client) -> Result<BTreeMap<String, Vec<Job>>> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    let mut by_tick: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for job in jobs
        .list(&ListParams::default().labels("app.kubernetes.io/component=snapshot"))
        .await?
    {
        let tick = job
            .labels()
            .get("vctp.io/tick")
            .cloned()
            .unwrap_or_default();
        by_tick.entry(tick).or_default().push(job);
    }
    Ok(by_tick)
}

fn succeeded(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.succeeded)
        .is_some_and(|n| n > 0)
}

/// Step 3: a snapshot Job's Pod ran `vctp job snapshot` in the image and wrote the database;
/// an hourly AggregationJob's Pod wrote XLSX + CSV (+ `.sha256`) to the bucket.
async fn schedule_runs(node: &Node, client: &Client) -> Result<()> {
    let job = eventually(
        "a snapshot Job of the schedule complete",
        Duration::from_secs(150),
        || async {
            Ok(snapshot_jobs(client)
                .await?
                .into_values()
                .flatten()
                .find(succeeded))
        },
    )
    .await;
    let job = match job {
        Ok(job) => job,
        Err(err) => bail!("{err}\nPods:\n{}", pod_states(client).await),
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let ran = pods
        .list(&ListParams::default().labels(&format!("job-name={}", job.name_any())))
        .await?;
    let pod = ran
        .items
        .iter()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
        .with_context(|| format!("no Succeeded Pod of Job {}", job.name_any()))?;
    let container = &pod.spec.as_ref().unwrap().containers[0];
    ensure!(
        container
            .args
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x == "snapshot"))
            || container
                .command
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x == "snapshot")),
        "the snapshot Pod ran {:?} {:?}",
        container.command,
        container.args
    );
    let image_id = pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .image
        .clone();
    ensure!(
        image_id.contains(&format!("vctp:{IMAGE_TAG}")),
        "the snapshot Pod ran image {image_id}"
    );
    let mut db = sqlx::PgConnection::connect(&node.postgres_url).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM vm_hourly")
        .fetch_one(&mut db)
        .await?;
    ensure!(rows > 0, "the snapshot Job wrote no vm_hourly rows");

    let aggregations: Api<AggregationJob> = Api::namespaced(client.clone(), NAMESPACE);
    let hourly = eventually(
        "an Hourly AggregationJob of the schedule Succeeded with its reports",
        Duration::from_secs(150),
        || async {
            for a in aggregations.list(&ListParams::default()).await? {
                let period = serde_json::to_value(a.spec.period)?;
                if period == "Hourly" && reports_of_success(&a)?.is_some() {
                    return Ok(Some(a));
                }
            }
            Ok(None)
        },
    )
    .await?;
    reports_in_bucket(node, &hourly).await?;
    // The schedule's daily cron ticks every minute, but the only complete day before its
    // ticks is one before the schedule existed: the tick is handled and no Daily job is
    // created for it (it could only fail with nothing to aggregate).
    let schedules: Api<SnapshotSchedule> = Api::namespaced(client.clone(), NAMESPACE);
    let schedule = eventually(
        "the schedule handled a daily tick",
        Duration::from_secs(150),
        || async {
            let s = schedules.get("every-minute").await?;
            let handled =
                (s.status.as_ref()).is_some_and(|st| st.last_daily_aggregation_time.is_some());
            Ok(handled.then_some(s))
        },
    )
    .await?;
    // The UTC date of its creation (RFC 3339 starts with it).
    let created: String = (schedule.metadata.creation_timestamp.as_ref())
        .context("no creationTimestamp")?
        .0
        .to_string()
        .chars()
        .take(10)
        .collect();
    for a in aggregations.list(&ListParams::default()).await? {
        if let Some(date) = a.spec.date.as_deref() {
            ensure!(
                date >= created.as_str(),
                "AggregationJob {} aggregates {date}, a day before the schedule existed ({created})",
                a.name_any()
            );
        }
    }
    create_aggregation(node, "today")?;
    let today = eventually(
        "the Daily AggregationJob of today Succeeded with its reports",
        Duration::from_secs(150),
        || async {
            let a = aggregations.get("today").await?;
            Ok(reports_of_success(&a)?.map(|_| a))
        },
    )
    .await?;
    reports_in_bucket(node, &today).await
}

/// The reports of a Succeeded AggregationJob; an error if it Failed.
fn reports_of_success(a: &AggregationJob) -> Result<Option<Vec<ReportObject>>> {
    let status = a.status.clone().unwrap_or_default();
    let phase = serde_json::to_value(status.phase)?;
    ensure!(
        phase != "Failed",
        "AggregationJob {} failed: {:?}",
        a.name_any(),
        status.message
    );
    Ok((phase == "Succeeded" && !status.reports.is_empty()).then_some(status.reports))
}

/// An AggregationJob's XLSX and CSV are in the bucket with the size its status says, and
/// each `.sha256` sidecar holds the digest its status says.
async fn reports_in_bucket(node: &Node, a: &AggregationJob) -> Result<()> {
    let reports = reports_of_success(a)?.context("no reports")?;
    let keys: BTreeSet<String> = reports.iter().map(|r| r.key.clone()).collect();
    ensure!(
        keys.iter().any(|k| k.ends_with(".xlsx")) && keys.iter().any(|k| k.ends_with(".csv")),
        "the reports of {} are {keys:?}",
        a.name_any()
    );
    let bucket = node.objects("node");
    for report in &reports {
        let bytes = bucket.get(&report.key).await?;
        ensure!(
            i64::try_from(bytes.len())? == report.size,
            "{}: {} bytes in the bucket, {} in status",
            report.key,
            bytes.len(),
            report.size
        );
        let sidecar = String::from_utf8(bucket.get(&format!("{}.sha256", report.key)).await?)?;
        ensure!(
            sidecar.contains(&report.sha256),
            "{}.sha256 is {sidecar:?}, status says {}",
            report.key,
            report.sha256
        );
    }
    Ok(())
}

/// Step 4: `/api/vcenters` through the API's Service equals the database's latest totals.
async fn api_matches_database(node: &Node, client: &Client) -> Result<()> {
    let body = service_get(client, &format!("{RELEASE}-api"), "/api/vcenters").await?;
    let listed: Vec<Value> = serde_json::from_str(&body)?;
    let mut db = sqlx::PgConnection::connect(&node.postgres_url).await?;
    let rows: Vec<(String, i64, f64, f64, f64, f64)> = sqlx::query_as(
        "SELECT vcenter, period_start, vm_count, vcpu_count, ram_gb, disk_gb FROM vcenter_latest_totals ORDER BY vcenter",
    )
    .fetch_all(&mut db)
    .await?;
    ensure!(!rows.is_empty(), "no totals in the database");
    // The API may have answered before a newer snapshot landed: compare at its snapshot time.
    for item in &listed {
        let vcenter = item["vcenter"].as_str().unwrap_or_default();
        let time = item["snapshot_time"].as_i64().unwrap_or_default();
        let (vm, vcpu, ram, disk): (f64, f64, f64, f64) = sqlx::query_as(
            "SELECT vm_count, vcpu_count, ram_gb, disk_gb FROM vcenter_totals WHERE grain = 'snapshot' AND vcenter = $1 AND period_start = $2",
        )
        .bind(vcenter)
        .bind(time)
        .fetch_one(&mut db)
        .await
        .with_context(|| format!("{vcenter} at {time} is not in the database"))?;
        ensure!(
            item["vm_count"].as_f64() == Some(vm)
                && item["vcpu_count"].as_f64() == Some(vcpu)
                && item["ram_gb"].as_f64() == Some(ram)
                && item["disk_gb"].as_f64() == Some(disk),
            "API {item} != database ({vm}, {vcpu}, {ram}, {disk})"
        );
    }
    let api: BTreeSet<&str> = listed
        .iter()
        .filter_map(|i| i["vcenter"].as_str())
        .collect();
    let database: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    ensure!(
        api == database,
        "vCenters: API {api:?}, database {database:?}"
    );
    Ok(())
}

/// Step 5: the leader Pod deleted, the other replica takes the Lease, and the ticks after
/// it each still get exactly one snapshot Job.
async fn fail_over(client: &Client, holder: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let leader = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=operator"))
        .await?
        .items
        .into_iter()
        .find(|p| holder.contains(&p.name_any()))
        .context("the leader Pod")?;
    let before: BTreeSet<String> = snapshot_jobs(client).await?.into_keys().collect();
    pods.delete(&leader.name_any(), &DeleteParams::default())
        .await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let (new_holder, acquired) = eventually(
        "another operator Pod holding the Lease",
        Duration::from_secs(120),
        || async {
            let spec = leases
                .get(&format!("{RELEASE}-leader"))
                .await?
                .spec
                .unwrap_or_default();
            Ok(spec
                .holder_identity
                .filter(|h| !h.is_empty() && !h.contains(&leader.name_any()))
                .zip(spec.acquire_time))
        },
    )
    .await?;
    eprintln!("node: the Lease moved from {holder} to {new_holder}");
    // A Job the new leader made: created after it took the Lease, for a tick not seen before.
    let after = eventually(
        "a tick after the fail-over with a complete snapshot Job",
        Duration::from_secs(150),
        || async {
            let jobs = snapshot_jobs(client).await?;
            Ok(jobs
                .iter()
                .any(|(tick, js)| {
                    !before.contains(tick)
                        && js.iter().any(|j| {
                            succeeded(j)
                                && j.metadata
                                    .creation_timestamp
                                    .as_ref()
                                    .is_some_and(|t| t.0 >= acquired.0)
                        })
                })
                .then_some(jobs))
        },
    )
    .await?;
    for (tick, jobs) in &after {
        ensure!(
            jobs.len() == 1,
            "tick {tick} has {} snapshot Jobs: {:?}",
            jobs.len(),
            jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// The chart upgraded with other Jobs' values (`kubectl apply`); waits for the operator's
/// rollout (the job template's checksum restarts it).
fn upgrade_jobs(node: &Node, dir: &Path, jobs: Value) -> Result<()> {
    let (_, manifests) = render(node, dir, &values(node, jobs))?;
    node.kubectl(&["apply", "-f", manifests.to_str().unwrap()], None)?;
    node.kubectl(
        &[
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            &format!("deployment/{RELEASE}-operator"),
            "--timeout=180s",
        ],
        None,
    )?;
    Ok(())
}

/// An AggregationJob of today, created now.
fn create_aggregation(node: &Node, name: &str) -> Result<()> {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let request = json!({
        "apiVersion": "vctp.io/v1alpha1", "kind": "AggregationJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"period": "Daily", "date": today},
    });
    node.kubectl(&["create", "-f", "-"], Some(&request.to_string()))?;
    Ok(())
}

/// The Pod of an AggregationJob's Job shows `reason` (as the kubelet reports it): the case is
/// real. Then the AggregationJob's status and its Events must name it too.
async fn reason_reported(client: &Client, name: &str, reasons: &[&str]) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let seen = eventually(
        &format!("the Pod of AggregationJob {name} in state {reasons:?}"),
        Duration::from_secs(120),
        || async {
            for pod in pods
                .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
                .await?
            {
                let text = serde_json::to_string(&pod.status)?;
                if let Some(reason) = reasons.iter().find(|r| text.contains(*r)) {
                    return Ok(Some(reason.to_string()));
                }
            }
            Ok(None)
        },
    )
    .await?;
    let aggregations: Api<AggregationJob> = Api::namespaced(client.clone(), NAMESPACE);
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), NAMESPACE);
    let shown = eventually(
        &format!("AggregationJob {name}'s status and Events naming {seen}"),
        Duration::from_secs(120),
        || async {
            let status = serde_json::to_string(&aggregations.get(name).await?.status)?;
            let named: Vec<String> = events
                .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                .await?
                .items
                .into_iter()
                .filter_map(|e| e.message)
                .collect();
            Ok((status.contains(&seen) && named.iter().any(|m| m.contains(&seen))).then_some(()))
        },
    )
    .await;
    if shown.is_err() {
        let status = serde_json::to_string(&aggregations.get(name).await?.status)?;
        let named: Vec<String> = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await?
            .items
            .into_iter()
            .map(|e| format!("{:?}: {:?}", e.reason, e.message))
            .collect();
        bail!(
            "the Pod is {seen}, but AggregationJob {name} shows status {status} and Events {named:?}"
        );
    }
    Ok(())
}

/// Step 7: a MetricsExport of series in the node's VictoriaMetrics runs in a Pod and writes
/// its bundle (`.zip` and `.zip.sha256`) to the bucket.
async fn metrics_export(node: &Node, client: &Client) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let start = now - now % 3_600 - 3_600;
    let lines: String = (0..60)
        .map(|i| {
            format!(
                "vctp_node_test{{instance=\"10.9.9.9:9100\",job=\"node\"}} {i} {}\n",
                (start + i * 60) * 1_000
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let import = http
        .post(format!("{}/api/v1/import/prometheus", node.vm_url))
        .body(lines)
        .send()
        .await?;
    ensure!(
        import.status().is_success(),
        "VictoriaMetrics import: {}",
        import.status()
    );
    let rfc3339 = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    let objects = json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "export-key", "namespace": NAMESPACE, "labels": {"vctp.io/credentials": "true"}},
             "stringData": {"key": "4f1c0d9e7a3b2c5d6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"}},
            {"apiVersion": "vctp.io/v1alpha1", "kind": "MetricsExport",
             "metadata": {"name": "node-export", "namespace": NAMESPACE},
             "spec": {
                 "source": {"url": node.vm_url},
                 "selectors": [r#"{__name__="vctp_node_test"}"#],
                 "timeRange": {"start": rfc3339(start), "end": rfc3339(start + 3_600)},
                 "batch": {"windowSeconds": 1800, "stepSeconds": 60},
                 "obfuscation": {"keySecretRef": {"name": "export-key", "key": "key"}},
                 "destination": {"prefix": "exports/node"},
             }},
        ],
    });
    node.kubectl(&["apply", "-f", "-"], Some(&objects.to_string()))?;
    let exports: Api<vctp::crd::MetricsExport> = Api::namespaced(client.clone(), NAMESPACE);
    let status = eventually(
        "MetricsExport node-export Succeeded",
        Duration::from_secs(150),
        || async {
            let status = exports.get("node-export").await?.status.unwrap_or_default();
            let phase = serde_json::to_value(status.phase)?;
            ensure!(phase != "Failed", "MetricsExport failed: {status:?}");
            Ok((phase == "Succeeded").then_some(status))
        },
    )
    .await?;
    let run = status.run_id.context("no runId in the status")?;
    let keys: BTreeSet<String> = node
        .objects("node")
        .list("exports/node")
        .await?
        .into_iter()
        .map(|l| l.key)
        .collect();
    for name in [format!("{run}.zip"), format!("{run}.zip.sha256")] {
        ensure!(
            keys.contains(&format!("exports/node/{name}")),
            "exports/node/{name} not in the bucket: {keys:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the one-node cluster (scripts/kube.sh kube_node_start) and the chart tools (scripts/helm.sh); scripts/test.sh starts them"]
async fn chart_installed_on_a_real_node_runs_the_schedule() -> Result<()> {
    let node = Node::from_env();
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    build_and_import_image(&node, dir.path())?;
    step(started, "image built and imported");
    install_chart(&node, dir.path())?;
    step(started, "chart installed");
    let client = node.client().await?;
    let holder = deployments_ready(&client).await?;
    step(
        started,
        &format!("1: Deployments Ready, Lease held by {holder}, /metrics through the Service"),
    );
    let version = target_ready(&node, &client).await?;
    step(
        started,
        &format!("2: VCenterTarget Ready, vCenter {version}"),
    );
    create_schedule(&node)?;
    schedule_runs(&node, &client).await?;
    step(
        started,
        "3: snapshot Job ran in a Pod, hourly and daily reports in S3",
    );
    api_matches_database(&node, &client).await?;
    step(started, "4: /api/vcenters through the Service = database");
    fail_over(&client, &holder).await?;
    step(started, "5: fail-over, one snapshot Job per tick");
    metrics_export(&node, &client).await?;
    step(
        started,
        "7: MetricsExport from VictoriaMetrics on the node, bundle in S3",
    );
    // 6: an image the node cannot pull (pullPolicy Never, a tag it does not have), then a
    // container that runs out of memory at start (no retries).
    upgrade_jobs(
        &node,
        dir.path(),
        json!({"image": {"tag": "not-on-the-node"}}),
    )?;
    create_aggregation(&node, "unpullable")?;
    reason_reported(&client, "unpullable", &["ErrImageNeverPull"]).await?;
    step(started, "6a: unpullable image reported");
    upgrade_jobs(
        &node,
        dir.path(),
        json!({"backoffLimit": 0, "resources": {"requests": {"memory": "4Mi"}, "limits": {"memory": "4Mi"}}}),
    )?;
    create_aggregation(&node, "out-of-memory")?;
    reason_reported(
        &client,
        "out-of-memory",
        &["OOMKilled", "StartError", "ContainerCannotRun"],
    )
    .await?;
    step(started, "6b: Pod that ran out of memory reported");
    Ok(())
}
