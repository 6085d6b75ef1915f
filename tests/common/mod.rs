//! Test helpers: a fresh database per test on SQLite (temp file) or on the PostgreSQL server
//! that `scripts/test.sh` starts (its URL in `VCTP_TEST_POSTGRES_URL`); the Kubernetes API
//! server (`kube`), the built-in vCenter simulator (`sim`) and VictoriaMetrics nodes, vmauth
//! and the seed series (`vm`).
#![allow(dead_code)]
// Helpers fail the test by panicking; clippy only counts #[test] functions as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod kube;
pub mod metrics;
pub mod s3;
pub mod sim;
pub mod tls;
pub mod vm;

use sqlx::Connection;
use std::sync::atomic::{AtomicU32, Ordering};
use vctp::aggregate::VmSummary;
use vctp::inventory::{HourlyRow, TierMapping};
use vctp::store::{DatabaseUrl, Store};

pub struct TestDb {
    pub store: Store,
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let url = DatabaseUrl::Sqlite(dir.path().join("test.sqlite3"));
    let store = Store::connect(&url).await.expect("open SQLite");
    TestDb {
        store,
        url,
        _dir: Some(dir),
    }
}

/// The test server's URL; fails with the command to run when it is not set.
pub fn postgres_server_url() -> String {
    std::env::var("VCTP_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "VCTP_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh, which starts PostgreSQL"
        )
    })
}

/// A new, empty database on the test PostgreSQL server.
pub async fn postgres() -> TestDb {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = postgres_server_url();
    let name = format!(
        "vctp_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut admin)
    .await
    .expect("drop an old test database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let url = DatabaseUrl::parse(&format!("{base}/{name}")).expect("a PostgreSQL URL");
    let store = Store::connect(&url).await.expect("open PostgreSQL");
    TestDb {
        store,
        url,
        _dir: None,
    }
}

/// Runs each named `async fn(TestDb)` as two tests, `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case($crate::common::sqlite().await).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() { super::$case($crate::common::postgres().await).await } )*
        }
    };
}

/// Stores `rows` (grouped by snapshot) as one import.
pub async fn import(store: &Store, rows: impl IntoIterator<Item = HourlyRow>) {
    let mut writer = store
        .snapshot_writer(TierMapping::default(), "import")
        .await
        .expect("start a writer");
    for row in rows {
        writer.push(row).await.expect("store a row");
    }
    writer.commit().await.expect("commit");
}

/// Every hourly row of a synthetic inventory, snapshot by snapshot.
pub fn synthetic_rows(
    inventory: &vctp::synth::Inventory,
    first: vctp::aggregate::Day,
    days: u32,
) -> Vec<HourlyRow> {
    let mut rows = Vec::new();
    let mut day = first;
    for _ in 0..days {
        for v in 0..inventory.vcenters().len() {
            for t in inventory.snapshot_times(v, day) {
                rows.extend(inventory.rows_at(v, t));
            }
        }
        day = day.next();
    }
    rows
}

pub async fn all_rows(store: &Store) -> Vec<HourlyRow> {
    use futures_util::TryStreamExt;
    store
        .hourly_rows(Default::default())
        .try_collect()
        .await
        .expect("read hourly rows")
}

/// Asserts two sets of summaries are equal: text and integers exactly, floats to a relative
/// 1e-12 (the engines may add the same numbers in a different order).
pub fn assert_summaries_agree(left: &[VmSummary], right: &[VmSummary]) {
    assert_eq!(left.len(), right.len(), "row counts differ");
    for (a, b) in left.iter().zip(right) {
        assert_eq!((&a.vcenter, &a.vm_id), (&b.vcenter, &b.vm_id));
        assert_eq!(a.placement, b.placement, "placement of {}", a.vm_id);
        let (x, y) = (&a.figures, &b.figures);
        assert_eq!(
            (
                x.samples_present,
                x.total_samples,
                x.creation_time,
                x.deletion_time,
                x.snapshot_time,
                x.sample_classes()
            ),
            (
                y.samples_present,
                y.total_samples,
                y.creation_time,
                y.deletion_time,
                y.snapshot_time,
                y.sample_classes()
            ),
            "counts and times of {}",
            a.vm_id
        );
        let reals = |f: &vctp::aggregate::Figures| {
            let mut v = vec![
                f.avg_is_present,
                f.avg_vcpu_count,
                f.avg_ram_gb,
                f.avg_provisioned_disk,
            ];
            v.extend(f.pool_pct());
            v.extend(f.tier_days());
            v
        };
        for (p, q) in reals(x).into_iter().zip(reals(y)) {
            assert!(
                (p - q).abs() <= 1e-12 * p.abs().max(1.0),
                "{} {}: {p} != {q}",
                a.vcenter,
                a.vm_id
            );
        }
    }
}

/// Runs one statement directly on the test database.
pub async fn execute(store: &Store, sql: &'static str) {
    match store {
        Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .expect("run a statement");
}

/// One hourly row with all 20 fields set: a Gold VM with 2 vCPU, 4 GB RAM and 100 GB disk;
/// creation and deletion unknown (0). Tests override what they need.
pub fn hourly_row(vcenter: &str, vm_id: &str, snapshot_time: i64) -> HourlyRow {
    HourlyRow {
        vcenter: vcenter.to_string(),
        vm_id: vm_id.to_string(),
        vm_uuid: format!("uuid-{vm_id}"),
        inventory_id: format!("inv-{vm_id}"),
        name: format!("name-{vm_id}"),
        event_key: String::new(),
        cloud_id: String::new(),
        creation_time: 0,
        deletion_time: 0,
        snapshot_time,
        resource_pool: "Gold".to_string(),
        datacenter: "dc-1".to_string(),
        cluster: "cluster-1".to_string(),
        folder: "folder-1".to_string(),
        provisioned_disk_gb: 100.0,
        vcpu_count: 2,
        ram_gb: 4.0,
        is_template: false,
        powered_on: true,
        srm_placeholder: false,
    }
}

/// Starts the real `vctp serve` on a free loopback port over the settings file `config` and
/// the SQLite file `db`, with `env` set; the child and the URL it announced. It serves plain
/// HTTP unless `env` sets `VCTP_DISABLE_TLS` to `false` (then HTTPS, with the certificate the
/// settings name or a self-signed one beside `db`).
pub fn start_serve(
    config: &std::path::Path,
    db: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    start_serve_with(&[], config, db, env, std::process::Stdio::inherit())
}

/// [`start_serve`] run through `wrapper` (a command that runs the rest of its arguments, such
/// as `prlimit --nofile=1024 --`), with its log going to `stderr`.
pub fn start_serve_with(
    wrapper: &[&str],
    config: &std::path::Path,
    db: &std::path::Path,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, String) {
    let vctp = std::path::Path::new(env!("CARGO_BIN_EXE_vctp"));
    let (program, prefix) = match wrapper {
        [] => (vctp.as_os_str(), Vec::new()),
        [program, rest @ ..] => {
            let mut prefix: Vec<&std::ffi::OsStr> = rest.iter().map(std::ffi::OsStr::new).collect();
            prefix.push(vctp.as_os_str());
            (std::ffi::OsStr::new(*program), prefix)
        }
    };
    let mut serve = std::process::Command::new(program)
        .args(prefix)
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(db)
        .arg("serve")
        .env("VCTP_LISTEN", "127.0.0.1:0")
        .env("VCTP_DISABLE_TLS", "true")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start vctp serve");
    let url = printed_url(&mut serve, "vctp serve");
    (serve, url)
}

/// The first `http://…` or `https://…` word `child` prints on stdout (a server announcing its
/// address).
pub fn printed_url(child: &mut std::process::Child, what: &str) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .map(String::from)
        })
        .unwrap_or_else(|| panic!("{what} printed no http(s):// URL"))
}

/// The row every caller of the aggregation unit of work (`jobs::aggregate::run`) leaves for a
/// period it aggregated: one successful attempt from `source`, its rows being the summaries
/// stored, with no error and a measured duration.
pub async fn assert_recorded_aggregation(
    store: &Store,
    grain: vctp::store::grain::Grain,
    period_start: i64,
    source: &str,
) {
    let runs = store
        .aggregation_runs(grain.totals().as_str(), period_start)
        .await
        .unwrap();
    let stored = store.summaries(grain, period_start).await.unwrap().len();
    assert_eq!(runs.len(), 1, "one recorded attempt: {runs:?}");
    let run = &runs[0];
    assert_eq!(
        (run.source.as_str(), run.success, run.error.as_str()),
        (source, true, ""),
        "{run:?}"
    );
    assert!(stored > 0, "summaries were stored");
    assert_eq!(run.rows_written as usize, stored, "{run:?}");
    assert!(run.finished_at >= run.started_at && run.duration_seconds >= 0.0);
}

/// Stops (`"stop"`) or starts again (`"start"`) the test PostgreSQL server, same data and
/// port, through the script `scripts/postgres.sh` writes (`VCTP_TEST_POSTGRES_CTL`).
pub fn postgres_ctl(action: &str) {
    let ctl = std::env::var("VCTP_TEST_POSTGRES_CTL").unwrap_or_else(|_| {
        panic!(
            "VCTP_TEST_POSTGRES_CTL is not set: run the tests through scripts/test.sh, which starts PostgreSQL (scripts/postgres.sh)"
        )
    });
    let status = std::process::Command::new(&ctl)
        .arg(action)
        .status()
        .unwrap_or_else(|e| panic!("run {ctl} {action}: {e}"));
    assert!(status.success(), "{ctl} {action}: {status}");
}
