//! The HTML pages and `/api/vm/trace` through `router(state).oneshot(request)` on SQLite and
//! PostgreSQL, over three recent days of a synthetic inventory imported and aggregated by the
//! real store and engine; and every page loaded by headless Chromium from `vctp serve`.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::app::{App, app};
use common::{TestDb, import, synthetic_rows};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use vctp::aggregate::engine::aggregate_daily;
use vctp::aggregate::{Day, Engine};
use vctp::api::router;
use vctp::store::grain::TotalsGrain;
use vctp::store::trace::{TraceView, VmRef};
use vctp::store::{DatabaseUrl, Store};
use vctp::synth::Inventory;

on_both_databases!(
    every_page_answers_with_the_stored_data_and_svg_charts,
    a_vm_name_with_markup_is_escaped_on_every_page,
    a_name_shared_by_several_vms_lists_them_with_links,
    the_trace_api_answers_what_the_store_traces,
    bad_parameters_are_400_pages_naming_the_parameter,
    unknown_vcenters_and_vms_are_404,
    an_empty_store_says_there_are_no_snapshots_yet,
    the_hourly_page_of_one_of_fifty_vcenters_reads_only_its_rows,
    names_are_found_in_the_newest_snapshot_before_any_summary,
    a_vm_is_found_by_a_name_it_had_on_an_earlier_day_after_a_rename,
    names_are_pruned_with_the_days_they_were_last_seen_on,
);

const SCRIPT_NAME: &str = "<script>alert(1)</script>";
const DAYS: u32 = 3;

fn first_day() -> Day {
    Day::containing(chrono::Utc::now().timestamp() - i64::from(DAYS) * 86_400).unwrap()
}

/// The last three full days of a two-vCenter inventory with vm-1000 renamed to markup and
/// vm-1001 and vm-1003 both named "twin", imported and aggregated per day.
async fn seed(store: &Store) -> Inventory {
    let first = first_day();
    let inventory = Inventory::new(30, 2, first, DAYS, 11);
    let rows = synthetic_rows(&inventory, first, DAYS)
        .into_iter()
        .map(|mut row| {
            match row.vm_id.as_str() {
                "vm-1000" => row.name = SCRIPT_NAME.to_string(),
                "vm-1001" | "vm-1003" => row.name = "twin".to_string(),
                _ => {}
            }
            row
        });
    import(store, rows).await;
    let mut day = first;
    for _ in 0..DAYS {
        aggregate_daily(store, day, Engine::Rust).await.unwrap();
        day = day.next();
    }
    inventory
}

async fn seeded(db: TestDb) -> (App, Inventory) {
    let inventory = seed(&db.store).await;
    (app(db), inventory)
}

async fn get(app: &App, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = router(app.state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// The page at `uri`, asserted to be a 200 HTML page.
async fn page(app: &App, uri: &str) -> String {
    let (status, headers, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8",
        "{uri}"
    );
    assert!(body.contains(r#"<meta charset="utf-8">"#), "{uri}");
    body
}

/// The number of points of each polyline of an HTML page.
fn polylines(html: &str) -> Vec<usize> {
    html.split("<polyline")
        .skip(1)
        .map(|rest| {
            let points = rest.split("points=\"").nth(1).unwrap();
            let points = points.split('"').next().unwrap();
            points.split(' ').filter(|p| !p.is_empty()).count()
        })
        .collect()
}

fn trace_uri(vm: &str, vcenter: &str, view: &str) -> String {
    format!("/vm/trace?vm={vm}&vcenter={vcenter}&view={view}")
}

async fn every_page_answers_with_the_stored_data_and_svg_charts(db: TestDb) {
    let (app, inventory) = seeded(db).await;
    let store = &app.db.store;
    let vcenter = &inventory.vcenters()[1];
    let latest = store.latest_totals().await.unwrap();
    assert_eq!(latest.len(), 2);

    let dashboard = page(&app, "/").await;
    for t in &latest {
        assert!(dashboard.contains(&t.vcenter));
        assert!(dashboard.contains(&format!(">{}</td>", t.vm_count)));
    }
    let sparks = polylines(&dashboard);
    assert_eq!(sparks.len(), 2, "one trend per vCenter");
    assert!(sparks.iter().all(|n| *n > 24), "{sparks:?}");

    let vcenters = page(&app, "/vcenters").await;
    assert!(vcenters.contains(&format!("/vcenters/totals/daily?vcenter={vcenter}")));

    let until = chrono::Utc::now().timestamp() + 1;
    let hourly_rows = store
        .vcenter_totals_range(TotalsGrain::Snapshot, vcenter, until - 45 * 86_400, until)
        .await
        .unwrap();
    assert!(hourly_rows.len() > 60, "three days of hourly snapshots");
    let hourly = page(&app, &format!("/vcenters/totals/hourly?vcenter={vcenter}")).await;
    assert_eq!(polylines(&hourly), vec![hourly_rows.len(); 4]);
    assert_eq!(
        hourly.matches("<tr><td>").count(),
        hourly_rows.len(),
        "one table row per snapshot"
    );

    let daily_rows = store
        .vcenter_totals_range(TotalsGrain::Daily, vcenter, i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(daily_rows.len(), DAYS as usize);
    let daily = page(&app, &format!("/vcenters/totals/daily?vcenter={vcenter}")).await;
    assert_eq!(polylines(&daily), vec![DAYS as usize; 4]);
    let second = first_day().next();
    let one_day = page(
        &app,
        &format!("/vcenters/totals/daily?vcenter={vcenter}&from={second}&to={second}"),
    )
    .await;
    assert_eq!(polylines(&one_day), vec![1; 4]);

    let snapshots = page(&app, "/snapshots/hourly").await;
    assert!(snapshots.contains("stored snapshots") && snapshots.contains(vcenter));
    let days = page(&app, "/snapshots/daily").await;
    assert!(days.contains(&format!("/api/summaries/daily?date={second}")));
    let one = page(&app, &format!("/snapshots/daily?vcenter={vcenter}")).await;
    assert!(one.contains(&format!(
        "/api/summaries/daily?date={second}&#38;vcenter={vcenter}"
    )));
    page(&app, "/snapshots/monthly").await;

    for view in ["hourly", "daily"] {
        let trace = page(&app, &trace_uri("vm-1005", "", view)).await;
        assert!(trace.contains("vm-1005"));
        let charts = polylines(&trace);
        assert!(
            charts.len() >= 4 && charts.iter().all(|n| *n >= 1),
            "{charts:?}"
        );
    }
    let reports = page(&app, "/reports").await;
    assert!(reports.contains("No reports yet"));
}

async fn a_vm_name_with_markup_is_escaped_on_every_page(db: TestDb) {
    let (app, inventory) = seeded(db).await;
    let vcenter = &inventory.vcenters()[0];
    // askama escapes markup as numeric character references.
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    for view in ["hourly", "daily"] {
        let trace = page(&app, &trace_uri("vm-1000", vcenter, view)).await;
        assert!(!trace.contains(SCRIPT_NAME), "{view}");
        assert!(trace.contains(escaped), "{view}");
        assert!(!trace.contains("<script"), "no script element at all");
    }
    // Looked up by the name itself, percent-encoded in the query.
    let by_name = page(&app, "/vm/trace?vm=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert!(by_name.contains(escaped) && !by_name.contains("<script"));
}

async fn a_name_shared_by_several_vms_lists_them_with_links(db: TestDb) {
    let (app, _) = seeded(db).await;
    let list = page(&app, "/vm/trace?vm=twin&view=daily").await;
    assert!(list.contains("2 VMs match twin"));
    for vm in ["vm-1001", "vm-1003"] {
        assert!(
            list.contains(&format!("/vm/trace?vm={vm}&#38;vcenter=")),
            "{vm}"
        );
    }
    assert!(list.contains("view=daily"));
}

async fn the_trace_api_answers_what_the_store_traces(db: TestDb) {
    let (app, inventory) = seeded(db).await;
    let store = &app.db.store;
    let vm = VmRef {
        vcenter: inventory.vcenters()[1].clone(),
        vm_id: "vm-1005".to_string(),
        name: String::new(),
    };
    for (view, name) in [(TraceView::Hourly, "hourly"), (TraceView::Daily, "daily")] {
        let expected = store.vm_trace(view, &vm).await.unwrap();
        let (status, headers, body) =
            get(&app, &format!("/api/vm/trace?vm=vm-1005&view={name}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::to_value(vec![&expected]).unwrap());
        let times: Vec<i64> = expected.points.iter().map(|p| p.time).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
        assert_eq!(expected.lifecycle.first_seen, times[0]);
    }
    let daily = store.vm_trace(TraceView::Daily, &vm).await.unwrap();
    assert_eq!(
        daily.points.len(),
        DAYS as usize,
        "one point per summarised day"
    );
    let hourly = store.vm_trace(TraceView::Hourly, &vm).await.unwrap();
    let summaries = store
        .summaries(vctp::store::grain::Grain::Daily, first_day().start())
        .await
        .unwrap();
    let first = summaries
        .iter()
        .find(|s| s.vm_id == "vm-1005")
        .expect("vm-1005 is summarised on the first day");
    let first_day_samples = hourly
        .points
        .iter()
        .filter(|p| p.time < first_day().end())
        .count();
    assert_eq!(first.figures.samples_present as usize, first_day_samples);
    assert_eq!(daily.points[0].vcpu_count, first.figures.avg_vcpu_count);

    let (status, _, body) = get(&app, "/api/vm/trace?vm=twin").await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["vm_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"vm-1001") && ids.contains(&"vm-1003"));
}

async fn assert_error(app: &App, uri: &str, status: StatusCode, needle: &str) {
    let (got, headers, body) = get(app, uri).await;
    assert_eq!(got, status, "{uri}: {body}");
    assert!(body.contains(needle), "{uri}: {body}");
    let html = uri.starts_with("/api/").then_some("application/json");
    let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert_eq!(
        content_type,
        html.unwrap_or("text/html; charset=utf-8"),
        "{uri}"
    );
}

async fn bad_parameters_are_400_pages_naming_the_parameter(db: TestDb) {
    let (app, inventory) = seeded(db).await;
    let vcenter = &inventory.vcenters()[0];
    let bad = StatusCode::BAD_REQUEST;
    assert_error(&app, "/vcenters/totals/daily", bad, "parameter vcenter").await;
    assert_error(
        &app,
        "/vcenters/totals/hourly?vcenter=",
        bad,
        "parameter vcenter",
    )
    .await;
    let uri = format!("/vcenters/totals/daily?vcenter={vcenter}&from=March");
    assert_error(&app, &uri, bad, "parameter from").await;
    let uri = format!("/vcenters/totals/daily?vcenter={vcenter}&from=2026-03-02&to=2026-03-01");
    assert_error(&app, &uri, bad, "parameter from").await;
    assert_error(&app, "/snapshots/weekly", bad, "parameter grain").await;
    assert_error(
        &app,
        "/vm/trace?vm=vm-1000&view=weekly",
        bad,
        "parameter view",
    )
    .await;
    assert_error(&app, "/api/vm/trace", bad, "parameter vm").await;
    assert_error(
        &app,
        "/api/vm/trace?vm=vm-1000&view=x",
        bad,
        "parameter view",
    )
    .await;
}

async fn unknown_vcenters_and_vms_are_404(db: TestDb) {
    let (app, inventory) = seeded(db).await;
    let missing = StatusCode::NOT_FOUND;
    let unknown = "unknown vCenter &#34;vc-nope&#34;";
    assert_error(
        &app,
        "/vcenters/totals/hourly?vcenter=vc-nope",
        missing,
        unknown,
    )
    .await;
    assert_error(
        &app,
        "/vcenters/totals/daily?vcenter=vc-nope",
        missing,
        unknown,
    )
    .await;
    assert_error(&app, "/snapshots/hourly?vcenter=vc-nope", missing, unknown).await;
    assert_error(&app, "/vm/trace?vm=vm-9999", missing, "vm-9999").await;
    let uri = format!("/vm/trace?vm=vm-1000&vcenter={}", inventory.vcenters()[1]);
    assert_error(&app, &uri, missing, "vm-1000").await;
    assert_error(&app, "/api/vm/trace?vm=vm-9999", missing, "vm-9999").await;
}

async fn an_empty_store_says_there_are_no_snapshots_yet(db: TestDb) {
    let app = app(db);
    for uri in ["/", "/vcenters", "/snapshots/hourly", "/snapshots/daily"] {
        assert!(page(&app, uri).await.contains("No snapshots yet"), "{uri}");
    }
    assert!(page(&app, "/reports").await.contains("No reports yet"));
    assert!(
        page(&app, "/vm/trace")
            .await
            .contains("VM id or exact name")
    );
}

/// 50 vCenters × 45 days × 24 snapshots in the totals cache, written straight by SQL.
async fn fill_totals(store: &Store, since: i64) {
    const SQL: &str = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 53999) \
        INSERT INTO vcenter_totals (grain, vcenter, period_start, total_samples, vm_count, vcpu_count, ram_gb, disk_gb, tin, bronze, silver, gold) \
        SELECT 'snapshot', 'vc-' || CAST(i % 50 AS TEXT), $1 + (i / 50) * 3600, 1, CAST(1000 + i % 37 AS DOUBLE PRECISION), \
            CAST(4000 + i % 11 AS DOUBLE PRECISION), CAST(8000 + i % 13 AS DOUBLE PRECISION), CAST(90000 + i % 17 AS DOUBLE PRECISION), 0, 0, 0, 0 FROM n";
    match store {
        Store::Sqlite(pool) => sqlx::query(SQL).bind(since).execute(pool).await.map(drop),
        Store::Postgres(pool) => sqlx::query(SQL).bind(since).execute(pool).await.map(drop),
    }
    .expect("fill the totals cache");
}

async fn the_hourly_page_of_one_of_fifty_vcenters_reads_only_its_rows(db: TestDb) {
    let app = app(db);
    let since = chrono::Utc::now().timestamp() - 45 * 86_400 + 3_600;
    fill_totals(&app.db.store, since).await;
    let started = std::time::Instant::now();
    let body = page(&app, "/vcenters/totals/hourly?vcenter=vc-7").await;
    let elapsed = started.elapsed();
    assert_eq!(polylines(&body), vec![1_080; 4]);
    assert!(!body.contains("vc-8"));
    println!(
        "hourly page of 1 of 50 vCenters: {elapsed:?}, {} bytes",
        body.len()
    );
    assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
    let dashboard = page(&app, "/").await;
    assert_eq!(polylines(&dashboard).len(), 50);
}

#[tokio::test]
async fn assets_are_immutable_at_their_versioned_url_and_revalidated_by_etag() {
    let app = app(common::sqlite().await);
    let home = page(&app, "/").await;
    for path in ["/assets/vctp.css?v=", "/favicon.svg?v="] {
        let start = home.find(path).unwrap_or_else(|| panic!("{path} linked"));
        let url = &home[start..start + home[start..].find('"').unwrap()];
        let (status, headers, body) = get(&app, url).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(!body.is_empty());
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        let bare = url.split('?').next().unwrap();
        let (_, headers, _) = get(&app, bare).await;
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let response = router(app.state.clone())
            .oneshot(
                Request::get(bare)
                    .header(header::IF_NONE_MATCH, &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{url}");
    }
    let (_, headers, css) = get(&app, "/assets/vctp.css").await;
    assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(
        !css.contains("http"),
        "the stylesheet loads nothing from elsewhere"
    );
}

/// The URLs of every request the page made, from a Chromium net log: those whose initiator
/// or network isolation key is the page's origin, plus the navigation itself. Chromium's
/// own background requests (update checks, sign-in) have neither; the host resolver rules
/// keep them from leaving the machine.
fn page_requests(log: &str) -> Vec<String> {
    let log: Value = serde_json::from_str(log).expect("Chromium wrote a complete net log");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    let from_page = |p: &Value| {
        let initiator = p["initiator"].as_str().unwrap_or("");
        let key = p["network_isolation_key"].as_str().unwrap_or("");
        p["request_type"] == "main frame"
            || initiator.starts_with("http://127.0.0.1")
            || key.starts_with("http://127.0.0.1")
    };
    log["events"]
        .as_array()
        .expect("net log events")
        .iter()
        .filter(|e| e["type"] == start_job && from_page(&e["params"]))
        .filter_map(|e| e["params"]["url"].as_str().map(String::from))
        .collect()
}

#[test]
#[ignore = "needs headless Chromium: run through scripts/test.sh"]
fn every_page_renders_in_headless_chromium_from_the_server_alone() {
    use std::process::Command;
    let chromium = std::env::var("VCTP_TEST_CHROMIUM").unwrap_or_else(|_| {
        panic!("VCTP_TEST_CHROMIUM is not set: run the tests through scripts/test.sh, which finds Chromium")
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let inventory = runtime.block_on(async {
        let store = Store::connect(&DatabaseUrl::Sqlite(db.clone()))
            .await
            .unwrap();
        let inventory = seed(&store).await;
        store.close().await;
        inventory
    });
    let config = dir.path().join("vctp.yml");
    let reports = dir.path().join("reports");
    std::fs::write(
        &config,
        format!(
            "settings:\n  reports_dir: {}\n  rate_cards:\n    - {{currency: EUR, effective_from: 2020-01-01, vcpu_day: \"0.40\"}}\n",
            reports.display()
        ),
    )
    .unwrap();
    let (mut serve, base) = common::start_serve(&config, &db, &[]);
    let vcenter = &inventory.vcenters()[0];
    let pages = [
        ("dashboard", "/".to_string()),
        ("vcenters", "/vcenters".to_string()),
        (
            "daily-totals",
            format!("/vcenters/totals/daily?vcenter={vcenter}"),
        ),
        (
            "hourly-totals",
            format!("/vcenters/totals/hourly?vcenter={vcenter}"),
        ),
        ("snapshots-hourly", "/snapshots/hourly".to_string()),
        ("snapshots-daily", "/snapshots/daily".to_string()),
        ("snapshots-monthly", "/snapshots/monthly".to_string()),
        (
            "trace-hourly",
            "/vm/trace?vm=vm-1000&view=hourly".to_string(),
        ),
        ("trace-daily", "/vm/trace?vm=vm-1000&view=daily".to_string()),
        ("trace-list", "/vm/trace?vm=twin".to_string()),
        ("reports", "/reports".to_string()),
        ("finance", "/finance".to_string()),
    ];
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut failures = Vec::new();
    for (name, path) in &pages {
        let url = format!("{base}{path}");
        let profile = tempfile::tempdir().unwrap();
        let net_log = profile.path().join("net-log.json");
        let screenshot = shots.join(format!("{name}.png"));
        let run = |extra: &[String]| {
            let output = Command::new(&chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,900",
                    // Chromium's own update, sign-in and autofill requests must not leave
                    // the machine, and autofill must not query a server about our forms.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    "--disable-features=AutofillServerCommunication",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(format!("--log-net-log={}", net_log.display()))
                .args(extra)
                .arg(&url)
                .output()
                .expect("run chromium");
            assert!(output.status.success(), "{name}: {output:?}");
            (
                String::from_utf8_lossy(&output.stdout).into_owned(),
                std::fs::read_to_string(&net_log).unwrap_or_default(),
            )
        };
        let (dom, log_dom) = run(&["--dump-dom".to_string()]);
        let (_, log_shot) = run(&[format!("--screenshot={}", screenshot.display())]);
        assert!(
            std::fs::metadata(&screenshot).unwrap().len() > 1_000,
            "{name}: screenshot"
        );
        if !dom.contains("<h1>") || !dom.contains("vctp") {
            failures.push(format!("{name}: not rendered: {dom:.300}"));
        }
        let wants_chart = !matches!(
            *name,
            "vcenters"
                | "snapshots-hourly"
                | "snapshots-daily"
                | "snapshots-monthly"
                | "trace-list"
                | "reports"
                // Its trend is computed beside the server's start, maybe after the page loads.
                | "finance"
        );
        if wants_chart && !dom.contains("<polyline") {
            failures.push(format!("{name}: no chart"));
        }
        let urls: Vec<String> = page_requests(&log_dom)
            .into_iter()
            .chain(page_requests(&log_shot))
            .collect();
        if !urls.iter().any(|u| u.starts_with(&base)) {
            failures.push(format!("{name}: the net log shows no request to {base}"));
        }
        for u in urls.iter().filter(|u| !u.starts_with(&format!("{base}/"))) {
            failures.push(format!("{name}: the page requested {u}"));
        }
        for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
            if dom.contains(attr) {
                failures.push(format!("{name}: the DOM refers elsewhere ({attr})"));
            }
        }
        if *name == "dashboard" && !urls.iter().any(|u| u.contains("/assets/vctp.css?v=")) {
            failures.push("dashboard: the stylesheet was not loaded".to_string());
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// vm_hourly has no name index: a name is found in vm_names (the daily summaries' names) and
/// in each vCenter's newest snapshot, so a VM created today is found before its first summary, while a VM seen
/// only in an older, never-summarised snapshot is found by its id alone.
async fn names_are_found_in_the_newest_snapshot_before_any_summary(db: TestDb) {
    let store = &db.store;
    let first = Day::parse("2026-03-10").unwrap().start();
    let mut gone = common::hourly_row("vc-a", "vm-gone", first);
    gone.name = "gone-vm".into();
    let mut fresh = common::hourly_row("vc-a", "vm-fresh", first + 3_600);
    fresh.name = "fresh-vm".into();
    import(store, [gone]).await;
    import(store, [fresh]).await;
    let found = store.vm_matches("fresh-vm", None).await.unwrap();
    assert_eq!(
        found.iter().map(|m| m.vm_id.as_str()).collect::<Vec<_>>(),
        ["vm-fresh"]
    );
    assert!(store.vm_matches("gone-vm", None).await.unwrap().is_empty());
    assert_eq!(store.vm_matches("vm-gone", None).await.unwrap().len(), 1);
}

/// One VM renamed each day: "first-name" on day 1 (summarised by the rust engine),
/// "second-name" on day 2 (by the sql engine), "third-name" on day 3 (not summarised).
async fn renamed_every_day(store: &Store) -> [Day; 3] {
    let d1 = Day::parse("2026-03-10").unwrap();
    let days = [d1, d1.next(), d1.next().next()];
    for (day, name) in days.iter().zip(["first-name", "second-name", "third-name"]) {
        let mut row = common::hourly_row("vc-a", "vm-1", day.start() + 3_600);
        row.name = name.into();
        import(store, [row]).await;
    }
    aggregate_daily(store, days[0], Engine::Rust).await.unwrap();
    aggregate_daily(store, days[1], Engine::Sql).await.unwrap();
    days
}

fn found(matches: &[VmRef]) -> Vec<(&str, &str)> {
    matches
        .iter()
        .map(|m| (m.vcenter.as_str(), m.vm_id.as_str()))
        .collect()
}

/// Names of earlier days are in vm_names, written with each day's summaries by both engines.
async fn a_vm_is_found_by_a_name_it_had_on_an_earlier_day_after_a_rename(db: TestDb) {
    let store = &db.store;
    renamed_every_day(store).await;
    for name in ["first-name", "second-name", "third-name", "vm-1"] {
        let matches = store.vm_matches(name, None).await.unwrap();
        assert_eq!(found(&matches), [("vc-a", "vm-1")], "{name}");
        let matches = store.vm_matches(name, Some("vc-a")).await.unwrap();
        assert_eq!(found(&matches), [("vc-a", "vm-1")], "{name} in vc-a");
        assert!(
            store
                .vm_matches(name, Some("vc-b"))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// Retention drops the names last seen on the days it removes, and keeps the others.
async fn names_are_pruned_with_the_days_they_were_last_seen_on(db: TestDb) {
    let store = &db.store;
    let days = renamed_every_day(store).await;
    store.delete_daily_before(days[1].start()).await.unwrap();
    assert!(
        store
            .vm_matches("first-name", None)
            .await
            .unwrap()
            .is_empty()
    );
    for name in ["second-name", "third-name"] {
        let matches = store.vm_matches(name, None).await.unwrap();
        assert_eq!(found(&matches), [("vc-a", "vm-1")], "{name}");
    }
}
