//! The collector against real SOAP peers: VMware's govmomi simulator (started by
//! `scripts/test.sh`, its URLs in `VCTP_TEST_VCSIM_*`) and vctp's own simulator (in-process).
//! Every capture goes through the real client into a real database, and what was stored is
//! compared with what the simulator says it holds.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vctp::config::VcenterTarget;
use vctp::inventory::HourlyRow;
use vctp::inventory::TierMapping;
use vctp::inventory::capture::Filters;
use vctp::inventory::collector::{Collector, Error as CaptureError};
use vctp::sim::{Clock, SimConfig, Simulator};
use vctp::store::Store;
use vctp::store::hourly::RowFilter;
use vctp::vsphere::{self, VmPage};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the govmomi simulator")
    })
}

struct Govmomi {
    url: String,
    control: String,
    ca: PathBuf,
    wrong_ca: PathBuf,
    user: String,
    password: String,
}

fn govmomi() -> Govmomi {
    Govmomi {
        url: env("VCTP_TEST_VCSIM_URL"),
        control: env("VCTP_TEST_VCSIM_CONTROL"),
        ca: env("VCTP_TEST_VCSIM_CA").into(),
        wrong_ca: env("VCTP_TEST_VCSIM_WRONG_CA").into(),
        user: env("VCTP_TEST_VCSIM_USER"),
        password: env("VCTP_TEST_VCSIM_PASSWORD"),
    }
}

fn collector(user: &str, password: &str, max_objects: u32) -> Collector {
    Collector {
        username: user.into(),
        password: password.into(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        max_objects,
        max_retries: 0,
        retry_interval: Duration::ZERO,
        mapping: TierMapping::default(),
        filters: Filters::default(),
    }
}

fn target(name: &str, url: &str, ca_file: Option<PathBuf>) -> VcenterTarget {
    VcenterTarget {
        name: name.into(),
        url: url.into(),
        insecure: false,
        ca_file,
        // The built-in simulator serves plain HTTP on loopback; vcsim's URL is https.
        allow_plain_http: url.starts_with("http://"),
    }
}

/// What both simulators and the stored rows are compared on.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    name: String,
    vcpu: i64,
    ram_mb: i64,
    pool: String,
    folder: String,
    cluster: String,
    datacenter: String,
    powered_on: bool,
    template: bool,
}

fn seen_in_rows(rows: &[HourlyRow]) -> BTreeMap<String, Seen> {
    rows.iter()
        .map(|r| {
            (
                r.vm_id.clone(),
                Seen {
                    name: r.name.clone(),
                    vcpu: r.vcpu_count,
                    ram_mb: (r.ram_gb * 1024.0).round() as i64,
                    pool: r.resource_pool.clone(),
                    folder: r.folder.clone(),
                    cluster: r.cluster.clone(),
                    datacenter: r.datacenter.clone(),
                    powered_on: r.powered_on,
                    template: r.is_template,
                },
            )
        })
        .collect()
}

async fn stored_rows(store: &Store, vcenter: &str, snapshot_time: i64) -> Vec<HourlyRow> {
    use futures_util::TryStreamExt;
    store
        .hourly_rows(RowFilter {
            vcenter: Some(vcenter.into()),
            from: Some(snapshot_time),
            to: Some(snapshot_time + 1),
        })
        .try_collect()
        .await
        .expect("read stored rows")
}

/// One VM of the govmomi harness's `GET /inventory`.
#[derive(Debug, Deserialize)]
struct GovmomiVm {
    moref: String,
    name: String,
    num_cpu: i64,
    memory_mb: i64,
    pool: Option<String>,
    folder: String,
    cluster: String,
    datacenter: String,
    power_state: String,
    template: bool,
}

async fn govmomi_inventory(control: &str) -> BTreeMap<String, Seen> {
    let body = reqwest::get(format!("{control}/inventory"))
        .await
        .expect("GET /inventory")
        .text()
        .await
        .expect("inventory body");
    let vms: Vec<GovmomiVm> = serde_json::from_str(&body).expect("inventory JSON");
    vms.into_iter()
        .map(|vm| {
            (
                vm.moref,
                Seen {
                    name: vm.name,
                    vcpu: vm.num_cpu,
                    ram_mb: vm.memory_mb,
                    pool: vm.pool.unwrap_or_default(),
                    folder: vm.folder,
                    cluster: vm.cluster,
                    datacenter: vm.datacenter,
                    powered_on: vm.power_state == "poweredOn",
                    template: vm.template,
                },
            )
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct Churn {
    created: Vec<String>,
    destroyed: Vec<String>,
    reconfigured: Vec<String>,
    moved: Vec<String>,
    powered_off: Vec<String>,
}

fn assert_same_inventory(stored: &BTreeMap<String, Seen>, expected: &BTreeMap<String, Seen>) {
    assert_eq!(stored.len(), expected.len(), "VM count");
    for (moref, want) in expected {
        assert_eq!(stored.get(moref), Some(want), "VM {moref}");
    }
}

#[tokio::test]
#[ignore = "needs the govmomi simulator: run scripts/test.sh"]
async fn the_collected_inventory_equals_the_govmomi_simulators_and_churn_shows_up() {
    let sim = govmomi();
    let db = common::sqlite().await;
    let collector = collector(&sim.user, &sim.password, 100);
    let vcenter = target("govmomi", &sim.url, Some(sim.ca.clone()));

    let first = collector
        .capture(&db.store, &vcenter, 1_000)
        .await
        .expect("first capture");
    let before = govmomi_inventory(&sim.control).await;
    let stored = seen_in_rows(&stored_rows(&db.store, "govmomi", 1_000).await);
    assert_eq!(first.rows, before.len());
    assert!(before.len() >= 50, "the harness starts with VMs");
    assert!(
        stored.values().any(|s| s.pool == "Gold") && stored.values().any(|s| s.pool == "Tin"),
        "VMs sit in the tier pools"
    );
    assert!(
        stored.values().any(|s| s.folder.matches('/').count() >= 4),
        "nested folders are resolved to paths"
    );
    assert_same_inventory(&stored, &before);

    let body = reqwest::Client::new()
        .post(format!("{}/churn", sim.control))
        .send()
        .await
        .expect("POST /churn")
        .text()
        .await
        .expect("churn body");
    let churn: Churn = serde_json::from_str(&body).expect("churn JSON");
    collector
        .capture(&db.store, &vcenter, 4_600)
        .await
        .expect("second capture");
    let after = govmomi_inventory(&sim.control).await;
    let stored_after = seen_in_rows(&stored_rows(&db.store, "govmomi", 4_600).await);
    assert_same_inventory(&stored_after, &after);
    for moref in &churn.created {
        assert!(
            stored_after.contains_key(moref) && !stored.contains_key(moref),
            "created {moref}"
        );
    }
    for moref in &churn.destroyed {
        assert!(
            stored.contains_key(moref) && !stored_after.contains_key(moref),
            "destroyed {moref}"
        );
    }
    for moref in &churn.reconfigured {
        let (a, b) = (&stored[moref], &stored_after[moref]);
        assert!(
            (a.vcpu, a.ram_mb) != (b.vcpu, b.ram_mb),
            "reconfigured {moref}"
        );
    }
    for moref in &churn.moved {
        assert_ne!(
            stored[moref].pool, stored_after[moref].pool,
            "moved {moref}"
        );
    }
    for moref in &churn.powered_off {
        assert!(!stored_after[moref].powered_on, "powered off {moref}");
    }
    let runs = db.store.snapshot_runs(Some("govmomi"), 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.success && r.error.is_empty()));
    assert_eq!(runs[0].row_count as usize, after.len());
}

/// Captures `vcenter` expecting a failure, and checks that only the failed run was stored.
/// Sets custom attribute `name` of VM `moref` in the govmomi simulator, over SOAP.
async fn set_attribute(control: &str, moref: &str, name: &str, value: &str) {
    let response = reqwest::Client::new()
        .post(format!("{control}/attribute"))
        .body(serde_json::json!({"moref": moref, "name": name, "value": value}).to_string())
        .send()
        .await
        .expect("POST /attribute");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST /attribute: {status} {body}");
}

/// Every attribute entry stored, as `(vm_id, valid_from)`.
async fn attribute_entries(store: &Store) -> Vec<(String, i64)> {
    let Store::Sqlite(pool) = store else {
        panic!("a SQLite store")
    };
    sqlx::query_as("SELECT vm_id, valid_from FROM vm_attributes ORDER BY vm_id, valid_from")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs the govmomi simulator: run scripts/test.sh"]
async fn custom_attributes_set_in_the_govmomi_simulator_are_stored_when_they_change() {
    let sim = govmomi();
    let db = common::sqlite().await;
    let collector = collector(&sim.user, &sim.password, 100);
    let vcenter = target("govmomi", &sim.url, Some(sim.ca.clone()));
    // A template: the churn of the other tests never touches one.
    let moref = govmomi_inventory(&sim.control)
        .await
        .into_iter()
        .find(|(_, vm)| vm.template)
        .map(|(moref, _)| moref)
        .expect("the harness has templates");
    // Unique per run, as the simulator outlives one test run.
    let cost_center = format!("cc-{}", std::process::id());
    set_attribute(&sim.control, &moref, "CostCenter", &cost_center).await;
    set_attribute(&sim.control, &moref, "Tenant", "acme").await;

    collector.capture(&db.store, &vcenter, 1_000).await.unwrap();
    collector.capture(&db.store, &vcenter, 4_600).await.unwrap();
    set_attribute(&sim.control, &moref, "Tenant", "beta").await;
    collector.capture(&db.store, &vcenter, 8_200).await.unwrap();

    assert_eq!(
        attribute_entries(&db.store).await,
        [(moref.clone(), 1_000), (moref.clone(), 8_200)],
        "an entry at the first capture and at the change; none for an unchanged capture or the VMs without attributes"
    );
    let history = db.store.vm_attributes(0, i64::MAX).await.unwrap();
    let tenant_and_cost_center = |t| {
        let attributes = history.as_of("govmomi", &moref, t);
        (
            attributes.get("Tenant").cloned(),
            attributes.get("CostCenter").cloned(),
        )
    };
    assert_eq!(
        tenant_and_cost_center(4_601),
        (Some("acme".to_string()), Some(cost_center.clone()))
    );
    assert_eq!(
        tenant_and_cost_center(8_201),
        (Some("beta".to_string()), Some(cost_center))
    );
}

async fn assert_fails_storing_nothing(collector: &Collector, vcenter: &VcenterTarget) -> String {
    let db = common::sqlite().await;
    let err = collector
        .capture(&db.store, vcenter, 1_000)
        .await
        .expect_err("the capture must fail");
    assert!(
        db.store
            .snapshot_times(i64::MIN, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stored_rows(&db.store, &vcenter.name, 1_000)
            .await
            .is_empty()
    );
    let runs = db.store.snapshot_runs(None, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].success);
    assert_eq!(runs[0].error, err.to_string());
    assert!(matches!(err, CaptureError::Collect { .. }), "{err}");
    err.to_string()
}

#[tokio::test]
#[ignore = "needs the govmomi simulator: run scripts/test.sh"]
async fn a_wrong_password_is_an_invalid_login_and_stores_nothing() {
    let sim = govmomi();
    let vcenter = target("govmomi", &sim.url, Some(sim.ca.clone()));
    let message =
        assert_fails_storing_nothing(&collector(&sim.user, "not-the-password", 100), &vcenter)
            .await;
    assert!(message.to_lowercase().contains("login"), "{message}");
    assert!(
        !message.contains("not-the-password"),
        "the password never appears: {message}"
    );
}

#[tokio::test]
#[ignore = "needs the govmomi simulator: run scripts/test.sh"]
async fn a_certificate_from_another_ca_is_a_tls_error() {
    let sim = govmomi();
    let vcenter = target("govmomi", &sim.url, Some(sim.wrong_ca.clone()));
    let message =
        assert_fails_storing_nothing(&collector(&sim.user, &sim.password, 100), &vcenter).await;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test]
async fn an_unreachable_vcenter_is_a_connection_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let vcenter = target("gone", &format!("http://127.0.0.1:{port}/sdk"), None);
    let message = assert_fails_storing_nothing(&collector("u", "password", 100), &vcenter).await;
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
}

/// Forwards connections to `upstream` until `limit` bytes have come back over all of them,
/// then closes them: a client that connects again gets nothing more.
async fn cutting_proxy(upstream: String, limit: usize) -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let upload = tokio::io::copy(&mut client_read, &mut server_write);
                let download = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let room = limit.saturating_sub(sent.load(Ordering::SeqCst));
                        if room == 0 {
                            break;
                        }
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n.min(room),
                        };
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent.fetch_add(n, Ordering::SeqCst);
                    }
                };
                tokio::select! { _ = upload => {}, () = download => {} }
            });
        }
    });
    addr.to_string()
}

#[tokio::test]
#[ignore = "needs the govmomi simulator: run scripts/test.sh"]
async fn a_connection_cut_in_the_middle_of_the_inventory_stores_nothing() {
    let sim = govmomi();
    let upstream = sim
        .url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // Login and the places take a few kB; the VM page of hundreds of VMs far more.
    let proxy = cutting_proxy(upstream.clone(), 48 * 1024).await;
    let url = sim.url.replacen(&upstream, &proxy, 1);
    let vcenter = target("govmomi", &url, Some(sim.ca.clone()));
    let message =
        assert_fails_storing_nothing(&collector(&sim.user, &sim.password, 100), &vcenter).await;
    assert!(
        message.contains("RetrievePropertiesEx response ended before the document was complete"),
        "{message}"
    );
}

fn sim_config(vms: usize, page_size: u32) -> SimConfig {
    SimConfig {
        vms,
        vcenters: 1,
        seed: 7,
        page_size,
        username: "tester".into(),
        password: "sim-password".into(),
    }
}

fn sim_inventory(sim: &Simulator, t: i64) -> BTreeMap<String, Seen> {
    sim.inventory_at(0, t)
        .into_iter()
        .map(|vm| {
            (
                vm.moref,
                Seen {
                    name: vm.name,
                    vcpu: vm.num_cpu,
                    ram_mb: vm.memory_mb,
                    pool: vm.pool_name.unwrap_or_default(),
                    folder: vm.folder_path,
                    cluster: vm.cluster.unwrap_or_default(),
                    datacenter: vm.datacenter,
                    powered_on: vm.power_state == vsphere::PowerState::PoweredOn,
                    template: vm.template,
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn small_pages_collect_every_vm_of_the_built_in_simulator_exactly_once() {
    let t = 1_767_225_600;
    let (sim, url) = common::sim::start(sim_config(1_000, 100), Clock::manual(t)).await;
    let db = common::sqlite().await;
    let captured = collector("tester", "sim-password", 37)
        .capture(&db.store, &target("sim", &url, None), t)
        .await
        .expect("capture");
    let stored = seen_in_rows(&stored_rows(&db.store, "sim", t).await);
    assert_eq!(captured.rows, stored.len());
    assert_same_inventory(&stored, &sim_inventory(&sim, t));
}

#[tokio::test]
async fn the_built_in_simulators_tenant_attributes_are_stored_as_it_shows_them() {
    let t = 1_767_225_600;
    let (sim, url) = common::sim::start(sim_config(1_000, 100), Clock::manual(t)).await;
    let db = common::sqlite().await;
    collector("tester", "sim-password", 100)
        .capture(&db.store, &target("sim", &url, None), t)
        .await
        .expect("capture");
    let history = db.store.vm_attributes(t, t + 1).await.unwrap();
    let vms = sim.inventory_at(0, t);
    let mut tagged = 0;
    for vm in &vms {
        let stored = history.as_of("sim", &vm.moref, t + 1);
        assert_eq!(
            stored.get("Tenant"),
            vm.tenant.as_ref(),
            "VM {} ({})",
            vm.moref,
            vm.name
        );
        assert!(stored.len() <= 1, "{stored:?}");
        if let Some(tenant) = &vm.tenant {
            assert!(vm.name.starts_with(tenant.as_str()), "{} {tenant}", vm.name);
            tagged += 1;
        }
    }
    assert!(
        tagged > vms.len() / 2 && tagged < vms.len(),
        "most VMs, not all, carry a Tenant: {tagged} of {}",
        vms.len()
    );
}

#[tokio::test]
async fn ten_thousand_vms_come_through_the_built_in_simulator() {
    let t = 1_767_225_600;
    let (sim, url) = common::sim::start(sim_config(10_000, 1_000), Clock::manual(t)).await;
    let db = common::sqlite().await;
    collector("tester", "sim-password", 1_000)
        .capture(&db.store, &target("sim", &url, None), t)
        .await
        .expect("capture");
    let stored = seen_in_rows(&stored_rows(&db.store, "sim", t).await);
    let expected = sim_inventory(&sim, t);
    assert!(expected.len() > 9_000, "about 10k VMs: {}", expected.len());
    assert_same_inventory(&stored, &expected);
}

#[tokio::test]
async fn hourly_snapshots_of_the_built_in_simulator_follow_its_churn() {
    let t = 1_767_225_600;
    let clock = Clock::manual(t);
    let (sim, url) = common::sim::start(sim_config(2_000, 500), clock.clone()).await;
    let db = common::sqlite().await;
    let collector = collector("tester", "sim-password", 500);
    let vcenter = target("sim", &url, None);
    let mut previous: Option<BTreeMap<String, Seen>> = None;
    let mut changed = 0;
    for hour in 0..6 {
        let now = t + hour * 3_600;
        clock.set(now);
        collector
            .capture(&db.store, &vcenter, now)
            .await
            .expect("capture");
        let stored = seen_in_rows(&stored_rows(&db.store, "sim", now).await);
        assert_same_inventory(&stored, &sim_inventory(&sim, now));
        if let Some(previous) = &previous {
            changed += stored
                .iter()
                .filter(|(k, v)| previous.get(*k) != Some(v))
                .count();
            changed += previous.keys().filter(|k| !stored.contains_key(*k)).count();
        }
        previous = Some(stored);
    }
    assert!(changed > 0, "five hours of churn change something");
    assert!(changed < 2_000, "but not everything: {changed} changes");
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_capture_succeeds() {
    let t = 1_767_225_600;
    let (sim, url) = common::sim::start(sim_config(300, 50), Clock::manual(t)).await;
    let mut client = vsphere::Client::login(
        &collector("tester", "sim-password", 50).endpoint(&target("sim", &url, None)),
    )
    .await
    .expect("login");
    sim.expire_sessions();
    let vms = client
        .virtual_machines(Some(50))
        .await
        .expect("re-login and read");
    assert_eq!(vms.len(), sim.inventory_at(0, t).len());
    client.logout().await.expect("logout");
}

#[tokio::test]
async fn vm_pages_are_handed_over_one_at_a_time_and_start_over_in_a_renewed_session() {
    let t = 1_767_225_600;
    let (sim, url) = common::sim::start(sim_config(300, 50), Clock::manual(t)).await;
    let mut client = vsphere::Client::login(
        &collector("tester", "sim-password", 50).endpoint(&target("sim", &url, None)),
    )
    .await
    .expect("login");
    let mut seen = Vec::new();
    client
        .virtual_machine_pages(Some(50), &mut |page| {
            // The session ends once two pages are in: the next page needs a new one.
            if seen.len() == 1 {
                sim.expire_sessions();
            }
            seen.push(page);
        })
        .await
        .expect("re-login and read");
    let sizes: Vec<Option<usize>> = seen
        .iter()
        .map(|page| match page {
            VmPage::Vms(vms) => Some(vms.len()),
            VmPage::Restart => None,
        })
        .collect();
    assert_eq!(&sizes[..3], &[Some(50), Some(50), None], "{sizes:?}");
    let again: usize = sizes[3..].iter().map(|size| size.unwrap()).sum();
    assert_eq!(again, sim.inventory_at(0, t).len(), "{sizes:?}");
    assert!(sizes[3..].iter().all(|size| *size <= Some(50)), "{sizes:?}");
    client.logout().await.expect("logout");
}

on_both_databases!(a_capture_cut_on_a_later_page_leaves_the_stored_snapshot_as_it_was);

/// The rows of the first pages are in the open transaction when a later page fails: none
/// of them is kept, and the snapshot stored before under the same key is still whole.
async fn a_capture_cut_on_a_later_page_leaves_the_stored_snapshot_as_it_was(db: common::TestDb) {
    let t = 1_767_225_600;
    let (_sim, url) = common::sim::start(sim_config(3_000, 1_000), Clock::manual(t)).await;
    let collector = collector("tester", "sim-password", 1_000);
    let vcenter = target("sim", &url, None);
    let first = collector
        .capture(&db.store, &vcenter, t)
        .await
        .expect("the first capture");
    let before = stored_rows(&db.store, "sim", t).await;
    assert_eq!(before.len(), first.rows);

    // Cut the connection in the third page of ~3: two pages of rows have been written.
    let mut client = vsphere::Client::login(&collector.endpoint(&vcenter))
        .await
        .expect("login");
    let vm_bytes = client
        .virtual_machines_discarding(Some(1_000))
        .await
        .expect("count the bytes of the VM pages");
    client.logout().await.expect("logout");
    let upstream = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let proxy = cutting_proxy(upstream.clone(), (vm_bytes * 5 / 6) as usize).await;
    let cut = target("sim", &url.replacen(&upstream, &proxy, 1), None);
    let error = collector
        .capture(&db.store, &cut, t)
        .await
        .expect_err("the cut capture fails");
    // A later page, whichever way the cut shows.
    assert!(
        error.to_string().contains("ContinueRetrievePropertiesEx"),
        "{error}"
    );
    assert_eq!(stored_rows(&db.store, "sim", t).await, before);
    let runs = db.store.snapshot_runs(None, 10).await.unwrap();
    let outcomes: Vec<bool> = runs.iter().map(|run| run.success).collect();
    assert_eq!(outcomes.iter().filter(|s| **s).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}
