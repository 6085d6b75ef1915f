//! `vctp job snapshot|aggregate|export` as the operator's Jobs run them: the real binary,
//! reading its custom resource through KUBECONFIG from the Kubernetes API server that
//! `scripts/test.sh` starts, snapshotting vctp's simulated vCenter (in-process, fixed clock)
//! into a temporary SQLite database; TLS trust against the govmomi simulator over HTTPS. The
//! outcome is read from the exit status, the termination message and the database.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{Context, Result, ensure};
use common::kube::{TestNamespace, kubeconfig_path};
use futures_util::TryStreamExt;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use vctp::aggregate::Day;
use vctp::crd::{AggregationJob, MetricsExport, VCenterTarget};
use vctp::jobs::termination::{JobResult, SnapshotResult};
use vctp::sim::{Clock, SimConfig, Simulator};
use vctp::store::grain::Grain;
use vctp::store::hourly::RowFilter;
use vctp::store::{DatabaseUrl, Store};

/// The tick every snapshot here stands for: 2026-01-01T00:00:00Z, also the simulator's time.
const T: i64 = 1_767_225_600;
const AT: &str = "2026-01-01T00:00:00Z";
const USERNAME: &str = "tester";
const PASSWORD: &str = "sim-password";
const TARGET: &str = "vc-sim";

/// Variables of the test's own environment that would change what the binary does.
const SCRUBBED_ENV: [&str; 9] = [
    "VCTP_CONFIG",
    "VCTP_DATABASE_URL",
    "VCTP_REPORTS_URL",
    "VCTP_VCENTER_USERNAME",
    "VCTP_VCENTER_PASSWORD",
    "VCTP_VCENTER_CA_BUNDLE",
    "VCTP_TERMINATION_LOG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
];

/// One test's world: a namespace with the CRDs installed, a simulated vCenter, a directory
/// for the database, the reports and the termination message.
struct World {
    /// Deleted with the world.
    _ns: TestNamespace,
    client: Client,
    namespace: String,
    sim: Simulator,
    sdk_url: String,
    dir: tempfile::TempDir,
    /// In `dir`, unless the world shares another one's database.
    database: PathBuf,
}

impl World {
    async fn new(tag: &str) -> Result<World> {
        World::with_vms(tag, 300).await
    }

    async fn with_vms(tag: &str, vms: usize) -> Result<World> {
        let ns = TestNamespace::new(tag).await?;
        let (client, namespace) = (ns.client.clone(), ns.name.clone());
        let config = SimConfig {
            vms,
            vcenters: 1,
            seed: 11,
            page_size: 100,
            username: USERNAME.into(),
            password: PASSWORD.into(),
        };
        let (sim, sdk_url) = common::sim::start(config, Clock::manual(T)).await;
        let dir = tempfile::tempdir()?;
        Ok(World {
            _ns: ns,
            client,
            namespace,
            sim,
            sdk_url,
            database: dir.path().join("vctp.sqlite3"),
            dir,
        })
    }

    /// The world with its Jobs writing to `other`'s database, as the operator's Jobs of
    /// every namespace share one.
    fn sharing_database_of(mut self, other: &World) -> World {
        self.database = other.database.clone();
        self
    }

    fn database(&self) -> PathBuf {
        self.database.clone()
    }

    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    fn resource(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    /// Creates a resource of kind `K` from its JSON (without `apiVersion` and `kind`).
    async fn create<K>(&self, name: &str, spec: Value) -> Result<()>
    where
        K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        let resource: K = serde_json::from_value(json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": { "name": name },
            "spec": spec,
        }))?;
        Api::<K>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &resource)
            .await
            .with_context(|| format!("creating {} {name}", K::kind(&())))?;
        Ok(())
    }

    async fn create_target(&self) -> Result<()> {
        self.create::<VCenterTarget>(
            TARGET,
            json!({
                "url": self.sdk_url,
                // The simulator serves plain HTTP on loopback.
                "allowPlainHttp": true,
                "credentialsSecretRef": { "name": "vc-sim-account" },
                "maxObjects": 70,
            }),
        )
        .await
    }

    /// Runs `vctp job ARGS…` as a Job would: KUBECONFIG for the API, the database and the
    /// termination log in the test's directory, plus `env`.
    async fn job(&self, args: &[&str], env: &[(&str, &str)]) -> Result<JobRun> {
        let termination = self.dir.path().join("termination-log");
        let _ = std::fs::remove_file(&termination);
        let mut command = Command::new(env!("CARGO_BIN_EXE_vctp"));
        command.arg("job").args(args);
        for name in SCRUBBED_ENV {
            command.env_remove(name);
        }
        command
            .env("KUBECONFIG", kubeconfig_path())
            .env("VCTP_DATABASE_URL", self.database())
            .env("VCTP_TERMINATION_LOG", &termination)
            .envs(env.iter().copied());
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || command.output()).await??;
        let message = std::fs::read_to_string(&termination).unwrap_or_default();
        Ok(JobRun {
            status: output.status.code(),
            result: JobResult::from_message(&message),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    async fn snapshot(&self, target: &str, env: &[(&str, &str)]) -> Result<JobRun> {
        self.job(
            &["snapshot", "--target", &self.resource(target), "--at", AT],
            env,
        )
        .await
    }

    async fn store(&self) -> Result<Store> {
        Ok(Store::connect(&DatabaseUrl::Sqlite(self.database())).await?)
    }
}

const CREDENTIALS: [(&str, &str); 2] = [
    ("VCTP_VCENTER_USERNAME", USERNAME),
    ("VCTP_VCENTER_PASSWORD", PASSWORD),
];

/// What one run of the binary left.
#[derive(Debug)]
struct JobRun {
    status: Option<i32>,
    result: Option<JobResult>,
    stderr: String,
    seconds: f64,
}

impl JobRun {
    /// The termination message, after checking the exit status.
    fn expect(self, status: i32) -> Result<JobResult> {
        ensure!(
            self.status == Some(status),
            "expected exit status {status}, got {:?}; stderr:\n{}",
            self.status,
            self.stderr
        );
        self.result
            .with_context(|| format!("no termination message; stderr:\n{}", self.stderr))
    }
}

/// The XML of one part of the workbook at `path`.
fn xlsx_part(path: &std::path::Path, part: &str) -> Result<String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let mut xml = String::new();
    archive.by_name(part)?.read_to_string(&mut xml)?;
    Ok(xml)
}

async fn stored_vm_ids(store: &Store, vcenter: &str) -> Result<Vec<String>> {
    let rows: Vec<_> = store
        .hourly_rows(RowFilter {
            vcenter: Some(vcenter.into()),
            from: None,
            to: None,
        })
        .try_collect()
        .await?;
    ensure!(
        rows.iter().all(|r| r.snapshot_time == T),
        "rows of another time"
    );
    let mut ids: Vec<String> = rows.into_iter().map(|r| r.vm_id).collect();
    ids.sort();
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_snapshot_job_stores_the_simulators_vms_and_an_aggregation_job_writes_verifiable_reports()
-> Result<()> {
    let world = World::new("snapshot").await?;
    world.create_target().await?;

    let result = world.snapshot(TARGET, &CREDENTIALS).await?.expect(0)?;
    let mut expected: Vec<String> = world
        .sim
        .inventory_at(0, T)
        .into_iter()
        .map(|vm| vm.moref)
        .collect();
    expected.sort();
    ensure!(expected.len() > 250, "about 300 VMs: {}", expected.len());
    ensure!(result.succeeded && result.reason.is_none(), "{result:?}");
    ensure!(
        result.snapshot
            == Some(SnapshotResult {
                snapshot_time: T,
                rows: expected.len() as i64,
                inventory_size: expected.len() as i64,
                // What the simulator's ServiceContent says it is.
                vcenter_version: Some("8.0.2 build-22385739".into()),
            }),
        "{result:?}"
    );
    let store = world.store().await?;
    ensure!(
        stored_vm_ids(&store, &world.resource(TARGET)).await? == expected,
        "the stored VMs differ from the simulator's"
    );
    let runs = store
        .snapshot_runs(Some(&world.resource(TARGET)), 10)
        .await?;
    ensure!(
        runs.len() == 1 && runs[0].success && runs[0].row_count == expected.len() as i64,
        "{runs:?}"
    );

    world
        .create::<AggregationJob>("daily", json!({ "period": "Daily", "date": "2026-01-01" }))
        .await?;
    world
        .create::<AggregationJob>(
            "hourly",
            // A bare name is the VCenterTarget of the AggregationJob's namespace.
            json!({ "period": "Hourly", "at": "2026-01-01T00:30:00Z", "vcenters": [TARGET] }),
        )
        .await?;
    let reports = world.reports();
    let reports_env = [("VCTP_REPORTS_URL", reports.to_str().context("utf-8 path")?)];
    let daily = world
        .job(
            &["aggregate", "--name", &world.resource("daily")],
            &reports_env,
        )
        .await?
        .expect(0)?;
    let hourly = world
        .job(
            &["aggregate", "--name", &world.resource("hourly")],
            &reports_env,
        )
        .await?
        .expect(0)?;

    let daily = daily.aggregation.context("no aggregation result")?;
    let summaries = store
        .summaries(Grain::Daily, Day::parse("2026-01-01")?.start())
        .await?;
    ensure!(
        daily.rows_written > 0 && daily.rows_written == summaries.len() as i64,
        "{} rows written, {} stored",
        daily.rows_written,
        summaries.len()
    );
    let hourly = hourly.aggregation.context("no aggregation result")?;
    ensure!(hourly.rows_written == 0, "an hour only writes its report");
    let keys: Vec<&str> = daily
        .reports
        .iter()
        .chain(&hourly.reports)
        .map(|r| r.key.as_str())
        .collect();
    let ns = &world.namespace;
    ensure!(
        keys == [
            "reports/daily/2026-01-01/all.xlsx".to_string(),
            "reports/daily/2026-01-01/all.csv".to_string(),
            format!("reports/hourly/2026-01-01T00/{ns}/vc-sim.xlsx"),
            format!("reports/hourly/2026-01-01T00/{ns}/vc-sim.csv"),
        ],
        "{keys:?}"
    );
    // The Cover names the host of each vCenter key in the report ("Host of …" is written
    // nowhere else; the workbook keeps its text in the shared strings, in order).
    let strings = xlsx_part(
        &reports.join(&hourly.reports[0].key),
        "xl/sharedStrings.xml",
    )?;
    let host = format!("<t>Host of {ns}/vc-sim</t></si><si><t>127.0.0.1</t>");
    ensure!(strings.contains(&host), "{strings}");
    for report in daily.reports.iter().chain(&hourly.reports) {
        let bytes = std::fs::read(reports.join(&report.key))
            .with_context(|| format!("reading {}", report.key))?;
        ensure!(bytes.len() as i64 == report.size, "size of {}", report.key);
        ensure!(
            format!("{:x}", Sha256::digest(&bytes)) == report.sha256,
            "SHA-256 of {}",
            report.key
        );
    }
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn the_same_target_name_in_two_namespaces_is_stored_under_two_keys() -> Result<()> {
    // Two VCenterTargets named vc-sim, in two namespaces, at two vCenters of different sizes,
    // snapshotted at the same tick into one database.
    let a = World::with_vms("same-name-a", 300).await?;
    let b = World::with_vms("same-name-b", 120)
        .await?
        .sharing_database_of(&a);
    a.create_target().await?;
    b.create_target().await?;
    a.snapshot(TARGET, &CREDENTIALS).await?.expect(0)?;
    b.snapshot(TARGET, &CREDENTIALS).await?.expect(0)?;

    let store = a.store().await?;
    let mut expected_latest = Vec::new();
    for world in [&a, &b] {
        let key = world.resource(TARGET);
        let mut expected: Vec<String> = world
            .sim
            .inventory_at(0, T)
            .into_iter()
            .map(|vm| vm.moref)
            .collect();
        expected.sort();
        ensure!(
            stored_vm_ids(&store, &key).await? == expected,
            "the VMs stored under {key} differ from its simulator's"
        );
        let runs = store.snapshot_runs(Some(&key), 10).await?;
        ensure!(runs.len() == 1 && runs[0].success, "{key}: {runs:?}");
        expected_latest.push((key, expected.len() as f64));
    }
    ensure!(
        expected_latest[0].1 != expected_latest[1].1,
        "the two vCenters must differ"
    );
    expected_latest.sort_by(|x, y| x.0.cmp(&y.0));
    let latest: Vec<(String, f64)> = store
        .latest_totals()
        .await?
        .into_iter()
        .map(|t| (t.vcenter, t.vm_count))
        .collect();
    ensure!(latest == expected_latest, "{latest:?}");
    let hosts = store.vcenter_hosts().await?;
    for (key, _) in &expected_latest {
        ensure!(
            hosts.get(key).map(String::as_str) == Some("127.0.0.1"),
            "the host of {key}: {hosts:?}"
        );
    }
    ensure!(
        !store.has_vcenter(TARGET).await?,
        "nothing under the bare name"
    );
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_snapshot_job_takes_over_rows_of_its_bare_name_only_as_the_one_target_of_that_name()
-> Result<()> {
    let world = World::new("legacy").await?;
    world.create_target().await?;
    let key = world.resource(TARGET);
    // What an operator before namespaced keys stored: rows under the bare name, a day earlier.
    let store = world.store().await?;
    let legacy = [
        common::hourly_row(TARGET, "vm-old-1", T - 86_400),
        common::hourly_row(TARGET, "vm-old-2", T - 86_400),
    ];
    common::import(&store, legacy.clone()).await;
    let legacy_rows = store.rows_under(TARGET).await?;
    ensure!(legacy_rows > 0, "legacy rows stored");
    let snapshot = |owners: String| {
        let key = key.clone();
        let world = &world;
        async move {
            world
                .job(
                    &[
                        "snapshot",
                        "--target",
                        &key,
                        "--at",
                        AT,
                        "--legacy-owners",
                        &owners,
                    ],
                    &CREDENTIALS,
                )
                .await
        }
    };

    // Another watched namespace has a VCenterTarget of that name: whose rows they are is
    // not known, so they stay, and the message says how to move them.
    let result = snapshot(format!("{key},other/{TARGET}")).await?.expect(0)?;
    let message = result.message.unwrap_or_default();
    ensure!(
        message.contains(&format!(
            "{legacy_rows} rows stored under the bare name {TARGET} were left there: 2 VCenterTargets share that name ({key}, other/{TARGET}); move them with `vctp db rename-vcenter --from {TARGET} --to NAMESPACE/{TARGET}`"
        )),
        "{message}"
    );
    ensure!(
        store.rows_under(TARGET).await? == legacy_rows,
        "legacy rows kept"
    );

    // The key has been captured now, and that first capture reported the legacy rows: later
    // ones do not probe (and re-report) again, and leave the rows where they are.
    let result = snapshot(key.clone()).await?.expect(0)?;
    let message = result.message.unwrap_or_default();
    ensure!(!message.contains("bare name"), "{message}");
    ensure!(
        store.rows_under(TARGET).await? == legacy_rows,
        "legacy rows kept"
    );
    store.close().await;

    // A fresh database with only the legacy rows: the first snapshot of the only target of
    // that name takes them over, with the rows of its own snapshot.
    let fresh = World::new("legacy-fresh").await?;
    fresh.create_target().await?;
    let fresh_key = fresh.resource(TARGET);
    let store = fresh.store().await?;
    common::import(&store, legacy.clone()).await;
    let legacy_rows = store.rows_under(TARGET).await?;
    let result = fresh
        .job(
            &[
                "snapshot",
                "--target",
                &fresh_key,
                "--at",
                AT,
                "--legacy-owners",
                &fresh_key,
            ],
            &CREDENTIALS,
        )
        .await?
        .expect(0)?;
    let message = result.message.unwrap_or_default();
    ensure!(
        message.contains(&format!(
            "moved {legacy_rows} rows stored under the bare name {TARGET} to {fresh_key}"
        )),
        "{message}"
    );
    ensure!(store.rows_under(TARGET).await? == 0, "{message}");
    let times: Vec<i64> = store
        .snapshot_times(0, i64::MAX)
        .await?
        .into_iter()
        .map(|(vcenter, t)| {
            assert_eq!(vcenter, fresh_key);
            t
        })
        .collect();
    ensure!(times == [T - 86_400, T], "{times:?}");
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_snapshot_with_the_schedules_retention_deletes_rows_past_their_age() -> Result<()> {
    let world = World::new("retention").await?;
    world.create_target().await?;
    // The tick is 2026-01-01 and retention counts from the wall clock: with 1 day of hourly
    // history kept, the rows just stored are already past their age.
    let result = world
        .job(
            &[
                "snapshot",
                "--target",
                &world.resource(TARGET),
                "--at",
                AT,
                "--hourly-max-age-days",
                "1",
                "--daily-max-age-months",
                "12",
            ],
            &CREDENTIALS,
        )
        .await?
        .expect(0)?;
    let rows = result.snapshot.as_ref().context("a snapshot result")?.rows;
    let message = result.message.clone().unwrap_or_default();
    ensure!(
        message.contains(&format!(
            "retention: deleted {rows} hourly rows older than 1 days"
        )),
        "{message}"
    );
    let store = world.store().await?;
    ensure!(
        stored_vm_ids(&store, &world.resource(TARGET))
            .await?
            .is_empty(),
        "rows left after retention"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_wrong_password_fails_at_once_with_its_reason_and_stores_only_the_failed_run()
-> Result<()> {
    let world = World::new("password").await?;
    world.create_target().await?;
    let run = world
        .job(
            &[
                "snapshot",
                "--target",
                &world.resource(TARGET),
                "--at",
                AT,
                "--max-retries",
                "3",
                "--retry-interval-seconds",
                "300",
            ],
            &[
                ("VCTP_VCENTER_USERNAME", USERNAME),
                ("VCTP_VCENTER_PASSWORD", "not-the-password"),
            ],
        )
        .await?;
    // A retry would have waited 300 s: a wrong password is not transient.
    let seconds = run.seconds;
    let result = run.expect(1)?;
    ensure!(seconds < 60.0, "took {seconds} s");
    ensure!(!result.succeeded && result.snapshot.is_none(), "{result:?}");
    ensure!(
        result.reason.as_deref() == Some("InvalidLogin"),
        "{result:?}"
    );
    let message = result.message.unwrap_or_default();
    ensure!(
        message.contains("invalid login for user \"tester\"") && message.contains("1 attempt"),
        "{message}"
    );

    let store = world.store().await?;
    ensure!(
        stored_vm_ids(&store, &world.resource(TARGET))
            .await?
            .is_empty(),
        "rows were stored"
    );
    let runs = store.snapshot_runs(None, 10).await?;
    ensure!(
        runs.len() == 1
            && runs[0].vcenter == world.resource(TARGET)
            && runs[0].snapshot_time == T
            && !runs[0].success
            && runs[0].error.contains("invalid login"),
        "{runs:?}"
    );
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn a_missing_resource_password_or_period_is_bad_input_and_touches_no_database() -> Result<()>
{
    let world = World::new("bad-input").await?;
    world.create_target().await?;

    let result = world.snapshot("absent", &CREDENTIALS).await?.expect(2)?;
    ensure!(result.reason.as_deref() == Some("NotFound"), "{result:?}");
    let expected = format!("VCenterTarget {}/absent not found", world.namespace);
    ensure!(
        result.message.as_deref() == Some(expected.as_str()),
        "{result:?}"
    );

    let result = world
        .snapshot(TARGET, &[("VCTP_VCENTER_USERNAME", USERNAME)])
        .await?
        .expect(2)?;
    ensure!(
        result.reason.as_deref() == Some("MissingEnvironment"),
        "{result:?}"
    );
    let message = result.message.unwrap_or_default();
    ensure!(
        message.starts_with("environment variable VCTP_VCENTER_PASSWORD is not set"),
        "{message}"
    );

    // The schema's CEL rule would refuse this, but v1.20 does not enforce CEL: the Job is
    // the last line of defence.
    world
        .create::<AggregationJob>("no-month", json!({ "period": "Monthly" }))
        .await?;
    let result = world
        .job(&["aggregate", "--name", &world.resource("no-month")], &[])
        .await?
        .expect(2)?;
    ensure!(
        result.message.as_deref()
            == Some("invalid AggregationJob spec: `spec.month`: period Monthly needs it (YYYY-MM)")
            && result.reason.as_deref() == Some("InvalidSpec"),
        "{result:?}"
    );

    ensure!(!world.database().exists(), "bad input opened the database");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server: run scripts/test.sh"]
async fn an_export_job_with_a_missing_resource_or_a_bad_run_is_bad_input() -> Result<()> {
    let world = World::new("export").await?;
    world
        .create::<MetricsExport>(
            "support-case",
            json!({
                "source": { "url": "http://127.0.0.1:9" },
                "lookbackSeconds": 3600,
                "selectors": ["{job=\"vmagent\"}"],
                "obfuscation": { "ips": false, "jobs": false },
            }),
        )
        .await?;
    let run = |name: &str, start: &str| {
        vec![
            "export".to_string(),
            "--name".to_string(),
            world.resource(name),
            "--run-id".to_string(),
            "20260101T000000Z".to_string(),
            "--start".to_string(),
            start.to_string(),
            "--end".to_string(),
            "2026-01-01T00:00:00Z".to_string(),
        ]
    };
    let args = run("absent", "2025-12-31T23:00:00Z");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = world.job(&args, &[]).await?.expect(2)?;
    ensure!(result.reason.as_deref() == Some("NotFound"), "{result:?}");

    let args = run("support-case", "2026-01-01 00:00");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = world.job(&args, &[]).await?.expect(2)?;
    ensure!(
        result.reason.as_deref() == Some("InvalidTime"),
        "{result:?}"
    );
    Ok(())
}

/// A variable of the govmomi simulator; fails with the script to run when it is not set.
fn vcsim_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the govmomi simulator (scripts/vcsim.sh)")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server and the govmomi simulator: run scripts/test.sh"]
async fn the_ca_bundle_from_the_environment_is_what_the_snapshot_trusts() -> Result<()> {
    let world = World::new("tls").await?;
    world
        .create::<VCenterTarget>(
            "govmomi",
            json!({
                "url": vcsim_env("VCTP_TEST_VCSIM_URL"),
                "credentialsSecretRef": { "name": "govmomi-account" },
                "tls": { "caBundleSecretRef": { "name": "govmomi-ca", "key": "ca.crt" } },
            }),
        )
        .await?;
    let (user, password) = (
        vcsim_env("VCTP_TEST_VCSIM_USER"),
        vcsim_env("VCTP_TEST_VCSIM_PASSWORD"),
    );
    let account = [
        ("VCTP_VCENTER_USERNAME", user.as_str()),
        ("VCTP_VCENTER_PASSWORD", password.as_str()),
    ];
    let ca = std::fs::read_to_string(vcsim_env("VCTP_TEST_VCSIM_CA"))?;
    let wrong_ca = std::fs::read_to_string(vcsim_env("VCTP_TEST_VCSIM_WRONG_CA"))?;
    let trusting = |pem| [account[0], account[1], ("VCTP_VCENTER_CA_BUNDLE", pem)];

    let result = world.snapshot("govmomi", &account).await?.expect(2)?;
    ensure!(
        result
            .message
            .unwrap_or_default()
            .contains("VCTP_VCENTER_CA_BUNDLE"),
        "a spec naming a CA bundle needs it in the environment"
    );

    let result = world
        .snapshot("govmomi", &trusting(&wrong_ca))
        .await?
        .expect(1)?;
    ensure!(
        result.reason.as_deref() == Some("TlsVerificationFailed"),
        "{result:?}"
    );
    let store = world.store().await?;
    ensure!(
        stored_vm_ids(&store, &world.resource("govmomi"))
            .await?
            .is_empty(),
        "rows were stored"
    );

    let result = world.snapshot("govmomi", &trusting(&ca)).await?.expect(0)?;
    let inventory = reqwest::get(format!(
        "{}/inventory",
        vcsim_env("VCTP_TEST_VCSIM_CONTROL")
    ))
    .await?
    .text()
    .await?;
    let vms = serde_json::from_str::<Vec<Value>>(&inventory)?.len() as i64;
    let snapshot = result.snapshot.context("no snapshot result")?;
    ensure!(
        vms > 0 && snapshot.rows == vms && snapshot.inventory_size == vms,
        "{snapshot:?}, govmomi holds {vms} VMs"
    );
    ensure!(
        stored_vm_ids(&store, &world.resource("govmomi"))
            .await?
            .len() as i64
            == vms,
        "stored rows differ"
    );
    ensure!(snapshot.vcenter_version.is_some(), "{snapshot:?}");
    store.close().await;
    Ok(())
}
