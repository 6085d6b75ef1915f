//! The standalone scheduler against vctp's simulator: jobs run on their ticks, each run is
//! recorded, a restart makes up a missed snapshot once, and SIGTERM stops the process cleanly.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;
use vctp::aggregate::Engine;
use vctp::config::Settings;
use vctp::inventory::collector::Collector;
use vctp::objstore::Objects;
use vctp::sim::{Clock, SimConfig, Simulator};
use vctp::standalone::{Job, Scheduler, Timetable};
use vctp::store::Store;
use vctp::store::grain::Grain;
use vctp::store::runs::JobRun;

async fn scheduler(store: Store, snapshot_every: u64, reports: &std::path::Path) -> Scheduler {
    let sim = Simulator::new(
        SimConfig {
            vms: 200,
            vcenters: 2,
            seed: 3,
            page_size: 100,
            username: "sched".into(),
            password: "sched-password".into(),
        },
        Clock::real(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let targets = sim.targets(&base);
    let settings = Settings {
        vcenter_username: "sched".into(),
        vcenter_inventory_snapshot_seconds: snapshot_every,
        ..Settings::default()
    };
    Scheduler {
        reports: Objects::from_url(reports.to_str().unwrap(), &Default::default()).unwrap(),
        plan: Timetable::from_settings(&settings).unwrap(),
        engine: Engine::Rust,
        collector: Collector::from_settings(&settings, "sched-password".into()),
        store,
        settings,
        targets,
    }
}

#[tokio::test]
async fn the_scheduler_snapshots_every_vcenter_on_its_ticks_and_records_each_job() {
    let db = common::sqlite().await;
    let reports = tempfile::tempdir().unwrap();
    let scheduler = scheduler(db.store.clone(), 2, reports.path()).await;
    scheduler
        .run(tokio::time::sleep(Duration::from_millis(4_500)))
        .await
        .expect("scheduler");
    let snapshots = db.store.snapshot_times(i64::MIN, i64::MAX).await.unwrap();
    let per_vcenter = |name: &str| snapshots.iter().filter(|(v, _)| v == name).count();
    for target in &scheduler.targets {
        let n = per_vcenter(&target.name);
        assert!(
            (2..=4).contains(&n),
            "{}: {n} snapshots in 4.5 s at one per 2 s",
            target.name
        );
    }
    for job in Job::ALL {
        let run = db.store.job_run(job.name()).await.unwrap();
        let run = run.unwrap_or_else(|| panic!("{} never ran", job.name()));
        assert!(run.success, "{}: {}", job.name(), run.error);
    }
    let runs = db.store.snapshot_runs(None, 100).await.unwrap();
    assert_eq!(
        runs.len(),
        snapshots.len(),
        "one run record per stored snapshot"
    );
}

#[tokio::test]
async fn the_daily_tick_aggregates_through_the_shared_path_and_an_empty_day_is_skipped() {
    let db = common::sqlite().await;
    let reports = tempfile::tempdir().unwrap();
    let scheduler = scheduler(db.store.clone(), 3_600, reports.path()).await;
    let day = vctp::aggregate::Day::parse("2026-01-10").unwrap();
    let inventory = vctp::synth::Inventory::new(40, 2, day, 1, 9);
    common::import(&db.store, common::synthetic_rows(&inventory, day, 1)).await;

    let done = scheduler.run_job(Job::Daily, day.start()).await.unwrap();
    assert!(
        done.starts_with("daily 2026-01-10: ") && done.contains("; report reports/daily/"),
        "{done}"
    );
    common::assert_recorded_aggregation(&db.store, Grain::Daily, day.start(), "standalone").await;

    let empty = scheduler.run_job(Job::Daily, day.next().start()).await;
    assert_eq!(empty.unwrap(), "daily 2026-01-11: nothing to aggregate");
}

#[tokio::test]
async fn a_restart_after_missed_hours_takes_one_snapshot_not_one_per_missed_hour() {
    let db = common::sqlite().await;
    let reports = tempfile::tempdir().unwrap();
    let scheduler = scheduler(db.store.clone(), 3_600, reports.path()).await;
    let now = chrono::Utc::now().timestamp();
    db.store
        .record_job_run(&JobRun {
            job: Job::Snapshot.name().into(),
            last_tick: now - 10 * 3_600,
            started_at: now - 10 * 3_600,
            finished_at: now - 10 * 3_600,
            success: true,
            error: String::new(),
        })
        .await
        .unwrap();
    scheduler
        .run(tokio::time::sleep(Duration::from_millis(1_500)))
        .await
        .expect("scheduler");
    let snapshots = db.store.snapshot_times(i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(
        snapshots.len(),
        scheduler.targets.len(),
        "one snapshot per vCenter"
    );
    let tick = db
        .store
        .job_run("snapshot")
        .await
        .unwrap()
        .unwrap()
        .last_tick;
    assert_eq!(
        tick,
        now.div_euclid(3_600) * 3_600,
        "the missed ticks collapse into the latest"
    );
}

#[test]
fn sigterm_stops_vctp_standalone_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let vctp = env!("CARGO_BIN_EXE_vctp");
    let mut sim = Command::new(vctp)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--vms",
            "300",
            "--username",
            "u1",
            "--password",
            "secret-1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start vctp sim");
    let url = common::printed_url(&mut sim, "the simulator");
    let config = dir.path().join("vctp.yml");
    std::fs::write(
        &config,
        format!(
            "settings:\n  vcenter_addresses: [\"{url}\"]\n  vcenter_allow_plain_http: true\n  vcenter_username: u1\n  vcenter_password: secret-1\n  encryption_key: test-key\n  vcenter_inventory_snapshot_seconds: 3600\n  reports_dir: {}\n",
            dir.path().join("reports").display()
        ),
    )
    .unwrap();
    let db = dir.path().join("db.sqlite3");
    let mut standalone = Command::new(vctp)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            db.to_str().unwrap(),
            "standalone",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start vctp standalone");
    let ui = common::printed_url(&mut standalone, "vctp standalone");
    // Wait for the first snapshot's run record, then ask it to stop.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stored = runtime.block_on(async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(store) = Store::open(&vctp::store::DatabaseUrl::Sqlite(db.clone())).await
                && let Ok(Some(_)) = store.job_run("cleanup").await
            {
                return true;
            }
        }
        false
    });
    assert!(stored, "vctp standalone ran its jobs within 10 s");
    // HTTPS by default, with a self-signed certificate kept beside the database, which a
    // client that trusts that file accepts.
    assert!(ui.starts_with("https://127.0.0.1:"), "{ui}");
    let pem =
        std::fs::read(dir.path().join("vctp-tls.crt")).expect("a certificate beside the database");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    // The UI and API answer from the same process, over the store it writes.
    let (page, vcenters) = runtime.block_on(async {
        let page = client.get(format!("{ui}/healthz")).send().await.unwrap();
        let vcenters = client
            .get(format!("{ui}/api/vcenters"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let vcenters: serde_json::Value = serde_json::from_slice(&vcenters).unwrap();
        (page.status(), vcenters)
    });
    assert!(page.is_success(), "{page}");
    assert_eq!(vcenters.as_array().map(Vec::len), Some(1), "{vcenters}");
    let status = Command::new("kill")
        .args(["-TERM", &standalone.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = standalone.wait().unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(
        exit.success(),
        "SIGTERM ends vctp standalone with success: {exit:?}"
    );
    let settings = std::fs::read_to_string(&config).unwrap();
    assert!(
        settings.contains("vcenter_password: \"enc:v2:"),
        "the plaintext password was encrypted in place:\n{settings}"
    );
}
