//! Peers that fail under a running vctp: PostgreSQL stopped and started again under
//! `vctp serve` (scripts/postgres.sh), and object stores that refuse connections or never
//! answer (loopback ports of the test's own). Every answer must come in time, say what is
//! down, and be right again once the peer is back.
//!
//! The PostgreSQL test stops the shared test server: no other test of this binary uses it
//! (the object store tests keep their data in SQLite).
// Helpers fail the test by panicking; clippy only counts #[test] functions as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vctp::config::Settings;
use vctp::store::{DatabaseUrl, Store};

/// Scheduling and process start-up on a busy 2-core machine, on top of any bound.
const SLACK: Duration = Duration::from_millis(1500);

/// The routes read under load: each answers the same body while the data does not change.
const ROUTES: [&str; 3] = ["/api/vcenters", "/api/snapshots", "/api/reports"];

/// One answer, and how long it took.
#[derive(Debug)]
struct Seen {
    route: &'static str,
    at: Instant,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
    body: String,
}

async fn fetch(client: &reqwest::Client, base: &str, route: &'static str) -> Seen {
    let at = Instant::now();
    let response = client
        .get(format!("{base}{route}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {route}: {e}"));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.text().await.unwrap();
    Seen {
        route,
        at,
        took: at.elapsed(),
        status,
        retry_after,
        body,
    }
}

/// Asserts `seen` is the 503 of a peer that is down: the JSON body naming it, and a
/// `Retry-After` of whole seconds.
fn assert_unavailable(seen: &Seen, what: &str) {
    assert_eq!(seen.status, 503, "{seen:?}");
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, serde_json::json!({ "error": what }), "{seen:?}");
    let retry_after: u64 = seen
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("no Retry-After: {seen:?}"))
        .parse()
        .unwrap();
    assert!(retry_after > 0, "{seen:?}");
}

/// Kills `vctp serve` and starts PostgreSQL again however the test ends, so the rest of the
/// suite finds its server.
struct Cleanup {
    serve: std::process::Child,
    database_down: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
        if self.database_down {
            common::postgres_ctl("start");
        }
    }
}

/// A synthetic inventory's rows for one day: two vCenters, a few VMs.
fn one_day_of_rows() -> Vec<vctp::inventory::HourlyRow> {
    let day = vctp::aggregate::Day::parse("2026-03-01").unwrap();
    let inventory = vctp::synth::Inventory::new(20, 2, day, 1, 7);
    common::synthetic_rows(&inventory, day, 1)
}

async fn postgres_ctl(action: &'static str) {
    tokio::task::spawn_blocking(move || common::postgres_ctl(action))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops and starts the test PostgreSQL: run scripts/test.sh"]
async fn with_postgres_stopped_requests_answer_503_in_time_and_are_right_again_once_it_is_back() {
    let defaults = Settings::default();
    let deadline = defaults.request_timeout();
    let db = common::postgres().await;
    common::import(&db.store, one_day_of_rows()).await;
    db.store.close().await;
    let database_url = db.url.to_string();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vctp.yml");
    std::fs::write(
        &config,
        format!(
            "settings:\n  reports_dir: {}\n",
            dir.path().join("reports").display()
        ),
    )
    .unwrap();
    let (serve, base) = common::start_serve(&config, Path::new(&database_url), &[]);
    let mut cleanup = Cleanup {
        serve,
        database_down: false,
    };
    // Far above any bound: a request that hangs shows as slow rather than as a client error.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut expected = std::collections::HashMap::new();
    for route in ROUTES {
        let seen = fetch(&client, &base, route).await;
        assert_eq!(seen.status, 200, "{seen:?}");
        expected.insert(route, seen.body);
    }
    assert_ne!(expected["/api/vcenters"], "[]", "the vCenters were stored");

    // Clients that keep asking, all through the outage and the return.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut next = worker;
                while !stop.load(Ordering::SeqCst) {
                    seen.push(fetch(&client, &base, ROUTES[next % ROUTES.len()]).await);
                    next += 1;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    postgres_ctl("stop").await;
    cleanup.database_down = true;
    let stopped_at = Instant::now();
    let ready = fetch(&client, &base, "/readyz").await;
    assert_unavailable(&ready, "database unavailable");
    assert!(
        ready.took <= Duration::from_secs(2) + SLACK,
        "/readyz took {:?} with the database down",
        ready.took
    );
    // The pages say it too, in HTML.
    let page = fetch(&client, &base, "/vcenters").await;
    assert_eq!(page.status, 503, "{page:?}");
    assert!(page.retry_after.is_some(), "{page:?}");
    assert!(page.body.contains("database is unavailable"), "{page:?}");
    assert!(page.took <= deadline + SLACK, "{page:?}");
    // Long enough for every client to run into the outage more than once.
    tokio::time::sleep(deadline * 2).await;

    postgres_ctl("start").await;
    cleanup.database_down = false;
    let started_at = Instant::now();
    let recovered_at = loop {
        let seen = fetch(&client, &base, "/api/vcenters").await;
        if seen.status == 200 {
            assert_eq!(
                seen.body, expected["/api/vcenters"],
                "the same data after the return"
            );
            break seen.at;
        }
        assert!(
            started_at.elapsed() < Duration::from_secs(60),
            "still {seen:?} a minute after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready = fetch(&client, &base, "/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    // A little more load with the database back, then every answer is looked at.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for worker in workers {
        seen.extend(worker.await.unwrap());
    }

    for answer in &seen {
        assert!(
            answer.took <= deadline + SLACK,
            "{} took {:?}, more than the {deadline:?} deadline: {answer:?}",
            answer.route,
            answer.took
        );
        match answer.status {
            200 => assert_eq!(answer.body, expected[answer.route], "{answer:?}"),
            _ => assert_unavailable(answer, "database unavailable"),
        }
    }
    let down = seen.iter().filter(|a| a.status == 503).count();
    assert!(down > 0, "no request ran into the outage");
    assert!(
        seen.iter().any(|a| a.status == 200 && a.at >= recovered_at),
        "answers are right again after the return"
    );
    let recovery = recovered_at - started_at;
    assert!(
        recovery <= deadline,
        "right answers came back {recovery:?} after the database did"
    );
    eprintln!(
        "{} answers ({down} were 503) over an outage of {:?}; right again {recovery:?} after the database returned",
        seen.len(),
        started_at - stopped_at
    );
}

/// A loopback address where nothing listens: every connection is refused.
fn refusing_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A loopback server that accepts connections and never answers, for as long as the test
/// runs; its address.
async fn silent_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://127.0.0.1:{port}")
}

const STORE_URL: &str = "s3://vctp-test/faults";
const SECRET: &str = "faults-secret-key";

/// Settings with reports on the S3 endpoint `endpoint`, plus `extra` lines.
fn s3_settings(dir: &Path, endpoint: &str, extra: &str) -> std::path::PathBuf {
    let config = dir.join("vctp.yml");
    std::fs::write(
        &config,
        format!(
            "settings:\n  reports_url: {STORE_URL}\n  object_store_options:\n    aws_endpoint: {endpoint}\n    aws_region: us-east-1\n    aws_access_key_id: AKIDFAULTS\n    aws_secret_access_key: {SECRET}\n    aws_allow_http: \"true\"\n{extra}"
        ),
    )
    .unwrap();
    config
}

/// A SQLite database in `dir` holding one day of rows; its path and the first snapshot time.
async fn sqlite_with_rows(dir: &Path) -> (std::path::PathBuf, i64) {
    let path = dir.join("db.sqlite3");
    let store = Store::connect(&DatabaseUrl::Sqlite(path.clone()))
        .await
        .unwrap();
    let rows = one_day_of_rows();
    let first = rows[0].snapshot_time;
    common::import(&store, rows).await;
    store.close().await;
    (path, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_write_to_a_dead_object_store_fails_within_its_bound_naming_store_key_and_time() {
    let limit = Duration::from_secs(2);
    for (what, endpoint) in [
        ("refusing connections", refusing_endpoint()),
        ("never answering", silent_endpoint().await),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (db, first) = sqlite_with_rows(dir.path()).await;
        let config = s3_settings(
            dir.path(),
            &endpoint,
            &format!(
                "  object_store_retry_timeout_seconds: {}\n",
                limit.as_secs()
            ),
        );
        let started = Instant::now();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vctp"))
            .arg("--config")
            .arg(&config)
            .arg("--database-url")
            .arg(&db)
            .args(["report", "generate", "hourly", "--at", &first.to_string()])
            .output()
            .await
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            took <= limit + SLACK,
            "{what}: the write failed after {took:?}, its bound is {limit:?}: {stderr}"
        );
        assert!(
            stderr.contains(STORE_URL) && stderr.contains(" reports/hourly/"),
            "{what}: the error names the store and the key: {stderr}"
        );
        let reported: f64 = stderr
            .split_once(" after ")
            .and_then(|(_, rest)| rest.split_once(" s:"))
            .map(|(seconds, _)| seconds.parse().unwrap())
            .unwrap_or_else(|| panic!("{what}: the error says after how long: {stderr}"));
        assert!(
            reported <= (limit + SLACK).as_secs_f64() && reported <= took.as_secs_f64(),
            "{what}: reported {reported} s, took {took:?}: {stderr}"
        );
        assert!(!stderr.contains(SECRET), "{what}: {stderr}");
        // Nothing is registered for a report that was not stored.
        let store = Store::open(&DatabaseUrl::Sqlite(db)).await.unwrap();
        assert_eq!(store.reports(None).await.unwrap(), [], "{what}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_download_answers_503_in_time_while_the_object_store_is_down() {
    const KEY: &str = "reports/daily/2026-03-01/all.xlsx";
    const DOWNLOAD: &str = "/api/reports/download?key=reports/daily/2026-03-01/all.xlsx";
    let deadline = Settings::default().request_timeout();
    for (what, endpoint) in [
        ("refusing connections", refusing_endpoint()),
        ("never answering", silent_endpoint().await),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = sqlite_with_rows(dir.path()).await;
        let store = Store::open(&DatabaseUrl::Sqlite(db.clone())).await.unwrap();
        store
            .record_report(&vctp::store::reports::ReportEntry {
                object_key: KEY.to_string(),
                kind: "daily".to_string(),
                period: "2026-03-01".to_string(),
                period_start: 0,
                scope: "all".to_string(),
                format: "xlsx".to_string(),
                size: 1,
                sha256: "0".repeat(64),
                created_at: 0,
            })
            .await
            .unwrap();
        store.close().await;
        let config = s3_settings(dir.path(), &endpoint, "");
        let (serve, base) = common::start_serve(&config, &db, &[]);
        let _cleanup = Cleanup {
            serve,
            database_down: false,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let seen = fetch(&client, &base, DOWNLOAD).await;
        assert_unavailable(&seen, "object store unavailable");
        assert!(
            seen.took <= deadline + SLACK,
            "{what}: the download answered after {:?}, the deadline is {deadline:?}",
            seen.took
        );
    }
}
