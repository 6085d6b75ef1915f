//! The `vctp` binary as users run it: exit codes, messages, and what stays stored.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use vctp::store::Store;
use vctp::store::grain::Grain;

/// A working directory of the test process's own, so that what vctp writes relative to it
/// (the default `reports/` directory) never lands in the source tree.
fn workdir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("create a working directory"))
        .path()
}

fn vctp(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vctp"))
        .current_dir(workdir())
        .arg("--database-url")
        .arg(database_url)
        .args(args)
        .env_remove("VCTP_CONFIG")
        .output()
        .expect("run vctp")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "vctp failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The aggregation of `date` that `source` recorded in the database at `db`.
fn assert_recorded(db: &str, grain: Grain, date: &str, source: &str) {
    let url = vctp::store::DatabaseUrl::parse(db).unwrap();
    let start = vctp::aggregate::Day::parse(date).unwrap().start();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = vctp::store::Store::open(&url).await.unwrap();
        common::assert_recorded_aggregation(&store, grain, start, source).await;
    });
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a fixture");
    path.display().to_string()
}

fn generate(dir: &Path, days: &str) -> String {
    let csv = ok(vctp(
        "unused.sqlite3",
        &[
            "snapshot",
            "generate",
            "--vms",
            "40",
            "--vcenters",
            "2",
            "--days",
            days,
            "--start",
            "2026-01-31",
        ],
    ));
    write(dir, "generated.csv", &csv)
}

#[test]
fn export_prints_exactly_what_import_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let csv = generate(dir.path(), "1");
    ok(vctp(&db, &["snapshot", "import", "--csv", &csv]));
    let exported = ok(vctp(&db, &["snapshot", "export", "--format", "csv"]));
    let mut expected: Vec<&str> = std::fs::read_to_string(&csv)
        .unwrap()
        .leak()
        .lines()
        .collect();
    let mut got: Vec<&str> = exported.lines().collect();
    assert_eq!(got[0], expected[0], "same header");
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected);
}

#[test]
fn rename_vcenter_moves_a_bare_key_under_a_namespace_and_refuses_a_key_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let csv = generate(dir.path(), "1");
    ok(vctp(&db, &["snapshot", "import", "--csv", &csv]));
    ok(vctp(&db, &["aggregate", "daily", "--date", "2026-01-31"]));
    let before = ok(vctp(&db, &["snapshot", "export"]));
    let header = before.lines().next().unwrap();
    let column = header.split(',').position(|c| c == "vcenter").unwrap();
    let vcenter_of = |line: &str| line.split(',').nth(column).unwrap().to_string();
    let mut vcenters: Vec<String> = before.lines().skip(1).map(vcenter_of).collect();
    vcenters.sort();
    vcenters.dedup();
    assert_eq!(vcenters.len(), 2, "{vcenters:?}");
    let (legacy, other) = (&vcenters[0], &vcenters[1]);

    let out = ok(vctp(
        &db,
        &[
            "db",
            "rename-vcenter",
            "--from",
            legacy,
            "--to",
            "finance/vc01",
        ],
    ));
    assert!(
        out.starts_with("moved ")
            && out.contains(&format!(" rows of vCenter {legacy} to finance/vc01")),
        "{out}"
    );
    // The same rows, under the new key: and they export and import as CSV like any other.
    let renamed = ok(vctp(&db, &["snapshot", "export"]));
    let expected: Vec<String> = before
        .lines()
        .map(|line| {
            if line != header && vcenter_of(line) == *legacy {
                line.replacen(legacy.as_str(), "finance/vc01", 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    let mut got: Vec<&str> = renamed.lines().collect();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    let copy = dir.path().join("copy.sqlite3").display().to_string();
    let exported = write(dir.path(), "renamed.csv", &renamed);
    ok(vctp(&copy, &["snapshot", "import", "--csv", &exported]));
    assert_eq!(ok(vctp(&copy, &["snapshot", "export"])), renamed);

    // Onto a key that holds rows: refused as bad input, naming the key, nothing moved.
    let output = vctp(
        &db,
        &[
            "db",
            "rename-vcenter",
            "--from",
            other,
            "--to",
            "finance/vc01",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot rename vCenter {other} to finance/vc01: rows are already stored under finance/vc01"
        )),
        "{stderr}"
    );
    assert_eq!(ok(vctp(&db, &["snapshot", "export"])), renamed);
    // From a key with nothing stored: also bad input.
    let output = vctp(
        &db,
        &["db", "rename-vcenter", "--from", legacy, "--to", "x/vc01"],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("nothing is stored under {legacy}"))
    );
}

#[test]
fn a_bad_row_names_line_and_column_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let csv = generate(dir.path(), "1");
    ok(vctp(&db, &["snapshot", "import", "--csv", &csv]));
    let before = ok(vctp(&db, &["snapshot", "export"]));

    // A new snapshot that would replace nothing, with a bad value on line 4.
    let header = before.lines().next().unwrap();
    let bad = format!(
        "{header}\nvc9,vm-1,,,,,,0,0,1800000000,Gold,,,,10,2,4,0,1,0\nvc9,vm-2,,,,,,0,0,1800000000,Gold,,,,10,2,4,0,1,0\nvc9,vm-3,,,,,,0,0,1800000000,Gold,,,,10,2.5,4,0,1,0\n"
    );
    assert_rejected(
        &db,
        dir.path(),
        "bad.csv",
        &bad,
        "bad.csv, line 4, column `vcpu_count`: \"2.5\" is not a whole number",
        &before,
    );

    let duplicate = format!(
        "{header}\nvc9,vm-1,,,,,,0,0,1800000000,Gold,,,,10,2,4,0,1,0\nvc9,vm-1,,,,,,0,0,1800000000,Gold,,,,10,2,4,0,1,0\n"
    );
    assert_rejected(
        &db,
        dir.path(),
        "dup.csv",
        &duplicate,
        "dup.csv, line 3: VM vm-1 appears twice",
        &before,
    );
}

/// Importing `text` fails with exit status 2 and `message`, and the stored rows stay `before`.
fn assert_rejected(db: &str, dir: &Path, name: &str, text: &str, message: &str, before: &str) {
    let output = vctp(
        db,
        &["snapshot", "import", "--csv", &write(dir, name, text)],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(message), "{stderr}");
    assert_eq!(ok(vctp(db, &["snapshot", "export"])), before);
}

#[test]
fn summaries_print_the_documented_columns_sorted_at_full_precision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let header = "vcenter,vm_id,vm_uuid,inventory_id,name,event_key,cloud_id,creation_time,deletion_time,snapshot_time,resource_pool,datacenter,cluster,folder,provisioned_disk_gb,vcpu_count,ram_gb,is_template,powered_on,srm_placeholder";
    // Three snapshots; vm-b is in two of them, so its figures are thirds.
    let csv = format!(
        "{header}\nvc,vm-b,,,b,,,0,0,1767225600,Gold,,,,30,3,1,0,1,0\nvc,vm-a,,,a,,,0,0,1767225600,Tin,,,,10,1,1,0,1,0\nvc,vm-a,,,a,,,0,0,1767229200,Tin,,,,10,1,1,0,1,0\nvc,vm-b,,,b,,,0,0,1767229200,Silver,,,,30,3,1,0,1,0\nvc,vm-a,,,a,,,0,0,1767232800,Tin,,,,10,1,1,0,1,0\n"
    );
    ok(vctp(
        &db,
        &[
            "snapshot",
            "import",
            "--csv",
            &write(dir.path(), "s.csv", &csv),
        ],
    ));
    ok(vctp(&db, &["aggregate", "daily", "--date", "2026-01-01"]));
    let out = ok(vctp(
        &db,
        &[
            "summary",
            "daily",
            "--date",
            "2026-01-01",
            "--format",
            "csv",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "vcenter,vm_id,vm_uuid,name,resource_pool,datacenter,cluster,folder,samples_present,total_samples,avg_is_present,avg_vcpu_count,avg_ram_gb,avg_provisioned_disk,pool_tin_pct,pool_bronze_pct,pool_silver_pct,pool_gold_pct,tin,bronze,silver,gold,creation_time,deletion_time,snapshot_time,samples_powered_on,samples_template,samples_placeholder"
    );
    assert!(lines[1].starts_with("vc,vm-a,"), "{}", lines[1]);
    assert_eq!(
        lines[2],
        "vc,vm-b,,b,Silver,,,,2,3,0.6666666666666666,2,0.6666666666666666,20,0,0,50,50,0,0,0.3333333333333333,0.3333333333333333,0,0,1767229200,2,0,0"
    );
    let json = ok(vctp(
        &db,
        &[
            "summary",
            "daily",
            "--date",
            "2026-01-01",
            "--format",
            "json",
        ],
    ));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[1]["avg_is_present"], 2.0 / 3.0);
    assert_eq!(parsed[1]["pool_silver_pct"], 50.0);
}

#[test]
fn errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let config = write(
        dir.path(),
        "vctp.yml",
        "settings:\n  hourly_snapshot_max_age_days: 30\n  reports_dirr: /tmp\n",
    );
    let output = vctp(&db, &["--config", &config, "db", "migrate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("vctp.yml") && stderr.contains("unknown field `reports_dirr`"),
        "{stderr}"
    );

    let output = vctp(&db, &["aggregate", "daily", "--date", "2026-02-30"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid date \"2026-02-30\""));

    let output = vctp(&db, &["aggregate", "daily", "--date", "2026-02-03"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("no snapshots are registered for 2026-02-03")
    );

    let output = vctp("mysql://x@y/z", &["db", "migrate"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL"));
}

#[test]
fn cleanup_follows_the_configured_retention() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let csv = generate(dir.path(), "2"); // 2026-01-31 and 2026-02-01
    ok(vctp(&db, &["snapshot", "import", "--csv", &csv]));
    let config = write(
        dir.path(),
        "vctp.yml",
        "settings:\n  hourly_snapshot_max_age_days: 1\n",
    );
    // "now" is 2026-02-02 00:00: one day of retention keeps only 2026-02-01.
    let out = ok(vctp(
        &db,
        &["--config", &config, "db", "cleanup", "--now", "1769990400"],
    ));
    assert!(out.starts_with("deleted "), "{out}");
    let left = ok(vctp(&db, &["snapshot", "export"]));
    assert!(
        left.lines()
            .skip(1)
            .all(|l| l.split(',').nth(9).unwrap().parse::<i64>().unwrap() >= 1769904000)
    );
    assert!(left.lines().count() > 1);
}

#[tokio::test]
async fn import_sqlite_copies_everything_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("db.sqlite3").display().to_string();
    let csv = generate(dir.path(), "2");
    ok(vctp(&sqlite, &["snapshot", "import", "--csv", &csv]));
    ok(vctp(
        &sqlite,
        &["aggregate", "daily", "--date", "2026-01-31"],
    ));
    ok(vctp(
        &sqlite,
        &["aggregate", "monthly", "--month", "2026-01"],
    ));

    let target = common::postgres().await;
    let pg = target.url.to_string();
    // Something to be replaced.
    ok(vctp(
        &pg,
        &[
            "snapshot",
            "import",
            "--csv",
            &write(
                dir.path(),
                "old.csv",
                &ok(vctp(&sqlite, &["snapshot", "export", "--to", "1769817600"])),
            ),
        ],
    ));
    let indexes = || async {
        let Store::Postgres(pool) = &target.store else {
            panic!("a PostgreSQL target")
        };
        sqlx::query_as::<_, (String, String)>(
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    let indexes_before = indexes().await;
    let out = ok(vctp(&pg, &["db", "import-sqlite", "--from", &sqlite]));
    // The copy leaves the target's indexes as they were.
    assert_eq!(indexes().await, indexes_before);
    assert!(
        indexes_before
            .iter()
            .any(|(name, _)| name == "snapshot_runs_by_vcenter"),
        "{indexes_before:?}"
    );
    for table in [
        "snapshot_registry",
        "snapshot_runs",
        "vm_hourly",
        "vm_daily_summary",
        "vm_monthly_summary",
        "vcenter_totals",
        "aggregation_runs",
        "cron_status",
        "report_registry",
        "vcenter_hosts",
        "vm_names",
    ] {
        assert!(out.contains(&format!("copied {table}: ")), "{out}");
    }
    for args in [
        &["snapshot", "export"][..],
        &["summary", "daily", "--date", "2026-01-31"][..],
        &["summary", "monthly", "--month", "2026-01"][..],
        &[
            "totals",
            "daily",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
        ][..],
    ] {
        assert_eq!(ok(vctp(&pg, args)), ok(vctp(&sqlite, args)), "{args:?}");
    }
    // A SQLite target is refused with the reason.
    let output = vctp(&sqlite, &["db", "import-sqlite", "--from", &sqlite]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs a PostgreSQL target"));
}

/// sqlx's migrator re-creates its table "IF NOT EXISTS" on every start, and PostgreSQL's
/// notice about it was printed by every command.
#[tokio::test]
async fn a_postgres_command_with_nothing_to_migrate_prints_no_notice() {
    let target = common::postgres().await;
    let pg = target.url.to_string();
    for args in [&["db", "migrate"][..], &["snapshot", "export"][..]] {
        let output = vctp(&pg, args);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        ok(output);
        assert!(!stderr.contains("_sqlx_migrations"), "{args:?}: {stderr}");
        assert!(!stderr.contains("postgres::notice"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_demo_takes_a_history_through_the_simulator_and_aggregates_it() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let output = vctp(
        "unused.sqlite3",
        &[
            "demo",
            "--no-follow",
            "--days",
            "2",
            "--vms",
            "60",
            "--dir",
            demo_dir.to_str().unwrap(),
        ],
    );
    let stdout = ok(output);
    assert!(
        stdout.contains("snapshots through the SOAP client"),
        "{stdout}"
    );
    assert!(stdout.contains("aggregated 2 days"), "{stdout}");
    let db = demo_dir.join("vctp.sqlite3").display().to_string();
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    assert_recorded(&db, Grain::Daily, &yesterday.to_string(), "demo");
    let report = demo_dir.join(format!("reports/daily/{yesterday}/all.xlsx"));
    assert!(report.is_file(), "{}", report.display());
    let listed = ok(vctp(&db, &["report", "list"]));
    assert!(
        listed.contains("monthly") && listed.contains("hourly"),
        "{listed}"
    );
    let summaries = ok(vctp(
        &db,
        &["summary", "daily", "--date", &yesterday.to_string()],
    ));
    assert!(summaries.lines().count() > 50, "{summaries}");
    // A second run starts over rather than failing or mixing histories.
    ok(vctp(
        "unused.sqlite3",
        &[
            "demo",
            "--no-follow",
            "--days",
            "1",
            "--vms",
            "20",
            "--dir",
            demo_dir.to_str().unwrap(),
        ],
    ));
}

#[test]
fn the_following_demo_serves_the_ui_and_api_over_its_history_until_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_vctp"))
        .current_dir(dir.path())
        .args([
            "demo",
            "--days",
            "1",
            "--vms",
            "20",
            "--ui-listen",
            "127.0.0.1:0",
        ])
        .env_remove("VCTP_CONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start vctp demo");
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let ui = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.strip_prefix("UI and API: ")?;
            rest.split_whitespace()
                .next()
                .map(|url| url.trim_end_matches('/').to_string())
        })
        .expect("the demo printed its UI address");
    // Keep reading, so the demo never writes into a closed pipe.
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vcenters = runtime.block_on(async {
        let body = reqwest::get(format!("{ui}/api/vcenters"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    });
    assert_eq!(vcenters.as_array().map(Vec::len), Some(2), "{vcenters}");
    let status = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = demo.wait().unwrap();
    drain.join().unwrap();
    assert!(
        exit.success(),
        "SIGTERM ends the demo with success: {exit:?}"
    );
}

#[test]
fn snapshot_run_without_vcenters_or_with_a_short_password_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let output = vctp(&db, &["snapshot", "run"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("settings.vcenter_addresses"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = write(
        dir.path(),
        "vctp.yml",
        "settings:\n  vcenter_addresses: [\"http://127.0.0.1:9/sdk\"]\n  vcenter_allow_plain_http: true\n  vcenter_username: u\n  vcenter_password: ab\n  encryption_key: k\n",
    );
    let output = vctp(&db, &["--config", &config, "snapshot", "run"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("vcenter_password"), "{stderr}");
    assert!(
        !stderr.contains(": ab"),
        "the value is not echoed: {stderr}"
    );
}

#[test]
fn snapshot_run_records_a_failed_vcenter_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write(
        dir.path(),
        "vctp.yml",
        &format!(
            "settings:\n  vcenter_addresses: [\"http://127.0.0.1:{port}/sdk\"]\n  vcenter_allow_plain_http: true\n  vcenter_username: u\n  vcenter_password: secret\n  encryption_key: k\n  hourly_snapshot_max_retries: 1\n  hourly_snapshot_retry_seconds: 1\n"
        ),
    );
    let output = vctp(&db, &["--config", &config, "snapshot", "run"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("after 2 attempt(s)"), "{stderr}");
    assert!(stderr.contains("recorded in snapshot_runs"), "{stderr}");
    // Nothing listens on the port: the run is recorded as a connect failure.
    let runs = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = vctp::store::DatabaseUrl::parse(&db).unwrap();
        let store = vctp::store::Store::open(&url).await.unwrap();
        store.snapshot_runs(None, 10).await.unwrap()
    });
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].success);
    assert_eq!(runs[0].failure_kind, "connect", "{}", runs[0].error);
    let settings = std::fs::read_to_string(&config).unwrap();
    assert!(
        settings.contains("enc:v2:") && !settings.contains("secret"),
        "{settings}"
    );
}

/// `vctp encrypt --setting NAME`, the value on stdin, with the settings at `config`.
fn encrypt_for(config: &str, setting: &str, plaintext: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vctp"))
        .current_dir(workdir())
        .args(["--config", config, "encrypt", "--setting", setting])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vctp encrypt");
    writeln!(child.stdin.take().unwrap(), "{plaintext}").unwrap();
    ok(child.wait_with_output().unwrap()).trim().to_string()
}

/// An `enc:v1:` value of "ldap-bind-pass" under `encryption_key: test-key`, as vctp wrote
/// them before `enc:v2:` (SHA-256 of the key text, no associated data).
const LDAP_PASSWORD_V1: &str = "enc:v1:mo8+LCV3gpdZ99LzSoJVv6LEugdElJQNJbtG9s7yVUXEUb0sTAbFvD+f";

#[test]
fn every_secret_setting_is_encrypted_in_place_on_start_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let jwt_key = "c2lnbmluZy1rZXktb2YtYXQtbGVhc3QtMzItYnl0ZXMtbG9uZw==";
    let plaintexts = [
        ("vcenter_password", "vc-secret-1"),
        ("ldap_bind_password", "ldap-bind-pass"),
        ("auth_jwt_signing_key", jwt_key),
        ("object_store_options.aws_secret_access_key", "aws-secret-1"),
        ("object_store_options.azure_client_secret", "azure-secret-1"),
    ];
    let config = write(
        dir.path(),
        "vctp.yml",
        &format!(
            "settings:\n  encryption_key: test-key\n  vcenter_password: vc-secret-1\n  ldap_bind_password: {LDAP_PASSWORD_V1}   # written by an older vctp\n  auth_jwt_signing_key: {jwt_key}\n  object_store_options:\n    aws_access_key_id: AKIAEXAMPLE\n    aws_secret_access_key: aws-secret-1\n    azure_client_secret: 'azure-secret-1'\n"
        ),
    );
    let output = vctp(&db, &["--config", &config, "db", "migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    ok(output);
    let after = std::fs::read_to_string(&config).unwrap();
    for (setting, plaintext) in plaintexts {
        assert!(
            !after.contains(plaintext),
            "{setting} left on disk:\n{after}"
        );
        assert!(!stderr.contains(plaintext), "{setting} logged:\n{stderr}");
    }
    assert_eq!(
        after.matches("\"enc:v2:").count(),
        plaintexts.len(),
        "{after}"
    );
    assert!(
        !after.contains("enc:v1:"),
        "the v1 value is rewritten as v2:\n{after}"
    );
    assert!(
        after.contains("aws_access_key_id: AKIAEXAMPLE\n"),
        "{after}"
    );
    assert!(after.contains("# written by an older vctp"), "{after}");

    // A second start reads the v2 values and leaves the file as it is.
    ok(vctp(&db, &["--config", &config, "db", "migrate"]));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), after);

    // What the commands use is the plaintext of each.
    let settings = vctp::config::Settings::load(Path::new(&config)).unwrap();
    let settings = vctp::credentials::decrypt_settings(&settings, None).unwrap();
    assert_eq!(settings.vcenter_password, "vc-secret-1");
    assert_eq!(
        settings.ldap_bind_password.as_deref(),
        Some("ldap-bind-pass")
    );
    assert_eq!(settings.auth_jwt_signing_key.as_deref(), Some(jwt_key));
    assert_eq!(
        settings.object_store_options["aws_secret_access_key"],
        "aws-secret-1"
    );
    assert_eq!(
        settings.object_store_options["azure_client_secret"],
        "azure-secret-1"
    );
    assert_eq!(
        settings.object_store_options["aws_access_key_id"],
        "AKIAEXAMPLE"
    );
}

#[test]
fn a_value_encrypted_for_one_setting_is_refused_in_another_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let config = write(
        dir.path(),
        "vctp.yml",
        "settings:\n  encryption_key: test-key\n",
    );
    let value = encrypt_for(&config, "vcenter_password", "vc-secret-1");
    assert!(value.starts_with("enc:v2:"), "{value}");
    let moved = write(
        dir.path(),
        "moved.yml",
        &format!("settings:\n  encryption_key: test-key\n  ldap_bind_password: {value}\n"),
    );
    let output = vctp(&db, &["--config", &moved, "db", "migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("settings.ldap_bind_password"), "{stderr}");
    assert!(stderr.contains("another setting"), "{stderr}");
    let kept = write(
        dir.path(),
        "kept.yml",
        &format!("settings:\n  encryption_key: test-key\n  vcenter_password: {value}\n"),
    );
    ok(vctp(&db, &["--config", &kept, "db", "migrate"]));
}

#[test]
fn aggregating_writes_the_report_which_lists_and_downloads_with_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let reports = dir.path().join("reports");
    let config = write(
        dir.path(),
        "vctp.yml",
        &format!("settings:\n  reports_dir: {}\n", reports.display()),
    );
    let csv = generate(dir.path(), "2");
    ok(vctp(&db, &["snapshot", "import", "--csv", &csv]));
    let out = ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "aggregate",
            "daily",
            "--date",
            "2026-01-31",
        ],
    ));
    assert!(out.contains("reports/daily/2026-01-31/all.xlsx"), "{out}");
    assert_recorded(&db, Grain::Daily, "2026-01-31", "cli");
    for name in ["all.xlsx", "all.xlsx.sha256", "all.csv", "all.csv.sha256"] {
        assert!(
            reports
                .join("reports/daily/2026-01-31")
                .join(name)
                .is_file(),
            "{name}"
        );
    }
    let sidecar =
        std::fs::read_to_string(reports.join("reports/daily/2026-01-31/all.csv.sha256")).unwrap();
    assert!(
        sidecar.ends_with("  all.csv\n"),
        "sha256sum format: {sidecar:?}"
    );

    // The CSV twin holds exactly what `summary daily` prints.
    let twin = std::fs::read_to_string(reports.join("reports/daily/2026-01-31/all.csv")).unwrap();
    assert_eq!(
        twin,
        ok(vctp(&db, &["summary", "daily", "--date", "2026-01-31"]))
    );

    let listed = ok(vctp(&db, &["--config", &config, "report", "list"]));
    assert_eq!(listed.lines().count(), 3, "header, xlsx and csv: {listed}");
    let download = dir.path().join("copy.xlsx");
    let out = ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "get",
            "reports/daily/2026-01-31/all.xlsx",
            "-o",
            download.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("sha256"), "{out}");
    assert_eq!(
        std::fs::read(&download).unwrap(),
        std::fs::read(reports.join("reports/daily/2026-01-31/all.xlsx")).unwrap()
    );

    // Hourly and monthly reports, and one vCenter's own report.
    ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "generate",
            "hourly",
            "--at",
            "2026-01-31T05",
        ],
    ));
    ok(vctp(
        &db,
        &["aggregate", "daily", "--date", "2026-02-01", "--no-report"],
    ));
    ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "aggregate",
            "monthly",
            "--month",
            "2026-01",
        ],
    ));
    ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "generate",
            "daily",
            "--date",
            "2026-01-31",
            "--vcenter",
            "vc01.example.com",
        ],
    ));
    let listed = ok(vctp(
        &db,
        &["--config", &config, "report", "list", "--format", "json"],
    ));
    for key in [
        "reports/hourly/2026-01-31T05/all.xlsx",
        "reports/monthly/2026-01/all.xlsx",
        "reports/daily/2026-01-31/vc01.example.com.xlsx",
    ] {
        assert!(listed.contains(key), "{key} in {listed}");
    }
    assert!(!listed.contains("2026-02-01"), "--no-report wrote nothing");
}

#[test]
fn a_report_of_a_period_without_data_says_what_to_run_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let reports = dir.path().join("reports");
    let config = write(
        dir.path(),
        "vctp.yml",
        &format!("settings:\n  reports_dir: {}\n", reports.display()),
    );
    let output = vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "generate",
            "daily",
            "--date",
            "2026-01-31",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("vctp aggregate daily"), "{stderr}");
    let output = vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "url",
            "reports/daily/2026-01-31/all.csv",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot presign"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ok(vctp(&db, &["report", "list"])).lines().count() <= 1);
    assert!(!reports.join("reports").exists());

    let config = write(
        dir.path(),
        "bad.yml",
        "settings:\n  report_summary_pivots:\n    - metric: avg_cpu\n      title: x\n      pivot_name: x\n      pivot_range: A1:B2\n",
    );
    let output = vctp(&db, &["--config", &config, "report", "list"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("report_summary_pivots"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn s3_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts the S3 server"
        )
    })
}

#[test]
#[ignore = "needs the S3 server: run scripts/test.sh"]
fn reports_go_to_s3_and_come_back_with_their_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3").display().to_string();
    let prefix = format!("cli-{}", std::process::id());
    let settings_text = format!(
        "settings:\n  reports_url: s3://{}/{prefix}\n  object_store_options:\n    aws_endpoint: {}\n    aws_region: {}\n    aws_access_key_id: {}\n    aws_secret_access_key: {}\n    aws_allow_http: \"true\"\n",
        s3_env("VCTP_TEST_S3_BUCKET"),
        s3_env("VCTP_TEST_S3_ENDPOINT"),
        s3_env("VCTP_TEST_S3_REGION"),
        s3_env("VCTP_TEST_S3_ACCESS_KEY"),
        s3_env("VCTP_TEST_S3_SECRET_KEY"),
    );
    let config = write(dir.path(), "vctp.yml", &settings_text);
    let csv = generate(dir.path(), "1");
    ok(vctp(&db, &["snapshot", "import", "--csv", &csv]));
    let out = ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "aggregate",
            "daily",
            "--date",
            "2026-01-31",
        ],
    ));
    assert!(
        out.contains(&format!("/{prefix}/reports/daily/2026-01-31/all.xlsx")),
        "{out}"
    );
    let download = dir.path().join("from-s3.csv");
    ok(vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "get",
            "reports/daily/2026-01-31/all.csv",
            "-o",
            download.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(&download).unwrap(),
        ok(vctp(&db, &["summary", "daily", "--date", "2026-01-31"]))
    );
    // A short link on demand: it downloads the object, and stops working when it expires.
    let report_url = |expires: &str| {
        vctp(
            &db,
            &[
                "--config",
                &config,
                "report",
                "url",
                "reports/daily/2026-01-31/all.csv",
                "--expires",
                expires,
            ],
        )
    };
    let fetch = |url: &str| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let response = reqwest::get(url.trim()).await.unwrap();
            (response.status(), response.bytes().await.unwrap().to_vec())
        })
    };
    let url = ok(report_url("15m"));
    assert!(
        url.trim().starts_with("http://") && url.contains("X-Amz-Expires=900&"),
        "{url}"
    );
    let (status, bytes) = fetch(&url);
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(bytes, std::fs::read(&download).unwrap());
    let short = ok(report_url("1s"));
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let (status, _) = fetch(&short);
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "an expired link");
    let output = vctp(
        &db,
        &[
            "--config",
            &config,
            "report",
            "url",
            "reports/daily/2026-01-31/none.csv",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("reports/daily/2026-01-31/none.csv not found"),
        "{stderr}"
    );
    for too_long in ["2h", "0s", "soon"] {
        let output = report_url(too_long);
        assert_eq!(output.status.code(), Some(2), "--expires {too_long}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--expires"), "{stderr}");
    }

    // The secret was encrypted in place on the first start.
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(
        !stored.contains(&s3_env("VCTP_TEST_S3_SECRET_KEY"))
            && stored
                .lines()
                .any(|line| line.contains("aws_secret_access_key:") && line.contains("enc:v2:")),
        "{stored}"
    );

    // Wrong credentials: a clear error, and the registry keeps only what was written.
    let wrong = write(
        dir.path(),
        "wrong.yml",
        &settings_text.replace(&s3_env("VCTP_TEST_S3_SECRET_KEY"), "not-the-secret"),
    );
    let output = vctp(
        &db,
        &[
            "--config",
            &wrong,
            "report",
            "generate",
            "hourly",
            "--at",
            "2026-01-31T03",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("access denied"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
    let listed = ok(vctp(&db, &["report", "list"]));
    assert!(!listed.contains("hourly"), "{listed}");
}

#[test]
fn a_vctp_settings_file_with_every_seed_key_loads_and_each_ignored_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    // A copy: the plaintext vcenter_password is encrypted in place on start, as vCTP does.
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vctp-seed.yml");
    let seed = dir.path().join("vctp.yml");
    std::fs::copy(&original, &seed).unwrap();
    let output = vctp(
        db.to_str().unwrap(),
        &["--config", seed.to_str().unwrap(), "db", "migrate"],
    );
    let log = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{log}");
    let settings = vctp::config::Settings::load(&seed).unwrap();
    let ignored = settings.ignored_keys();
    assert!(!ignored.is_empty());
    for (key, why) in ignored {
        let line = log
            .lines()
            .find(|line| line.contains(key))
            .unwrap_or_else(|| panic!("no warning names {key}:\n{log}"));
        assert!(line.contains("WARN") && line.contains("ignored"), "{line}");
        assert!(line.contains(why), "{line}");
    }
    // An unknown key next to them is still an error that names it.
    let text = std::fs::read_to_string(&seed).unwrap() + "  bind_prot: 443\n";
    let misspelt = write(dir.path(), "misspelt.yml", &text);
    let output = vctp(
        db.to_str().unwrap(),
        &["--config", &misspelt, "db", "migrate"],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `bind_prot`"), "{stderr}");
    let stored = std::fs::read_to_string(&seed).unwrap();
    assert!(
        stored
            .lines()
            .any(|line| line.contains("vcenter_password:") && line.contains("enc:v2:")),
        "{stored}"
    );
}
