//! Costs over HTTP: `/api/costs/daily|monthly` against `vctp costs … --format json`, their
//! error answers, the month-to-date cost gauges of `/metrics`, and the finance page, on SQLite
//! and PostgreSQL, over a few hand-made days whose every cost is worked out below by hand.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::app::{App, app};
use common::{TestDb, hourly_row, import};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::Path;
use tower::ServiceExt;
use vctp::aggregate::engine::aggregate_daily;
use vctp::aggregate::{Day, Engine};
use vctp::api::router;
use vctp::config::Settings;
use vctp::store::DatabaseUrl;
use vctp::store::reports::ReportEntry;

on_both_databases!(
    the_cost_api_answers_what_vctp_costs_prints_as_json,
    cost_errors_are_400_404_and_409_naming_what_is_wrong,
    the_gauges_hold_this_month_and_last_month_to_the_same_day_after_a_refresh,
    the_finance_page_shows_tenants_the_trend_the_drill_down_and_the_downloads,
);

/// One EUR card; acme and beta by folder.
const PRICING: &str = r#"
  rate_cards:
    - name: list
      currency: EUR
      effective_from: 2026-01-01
      tiers: {gold: "1.00", silver: "0.50", none: "0.25"}
      vcpu_day: "0.10"
      ram_gb_day: "0.05"
      disk_gb_day: "0.002"
  tenant_rules:
    - {tenant: acme, folder_prefix: /DC0/vm/acme}
    - {tenant: beta, folder_prefix: /DC0/vm/beta}
"#;

fn settings(extra: &str) -> Settings {
    Settings::parse(&format!("settings:{extra}"), Path::new("finance-test.yml")).unwrap()
}

/// vm-1 (acme: Gold, 2 vCPU, 4 GB, 100 GB) is present all day on 2026-10-01, 10-03, 11-01
/// and 11-02; vm-2 (beta: Silver, 4 vCPU, 8 GB, 50 GB) the first 12 of 24 snapshots of
/// 2026-11-01. Each day has 24 hourly snapshots of vc-a.
///
/// At the card, a whole day of vm-1 is gold 1 × 1.00 + vCPU 2 × 0.10 + RAM 4 × 0.05 + disk
/// 100 × 0.002 = 1.00 + 0.20 + 0.20 + 0.20 = 1.60; vm-2's half day is silver 0.5 × 0.50 +
/// vCPU 2 × 0.10 + RAM 4 × 0.05 + disk 25 × 0.002 = 0.25 + 0.20 + 0.20 + 0.05 = 0.70.
async fn seed(db: &TestDb) {
    let days = ["2026-10-01", "2026-10-03", "2026-11-01", "2026-11-02"];
    let mut rows = Vec::new();
    for day in days {
        let start = Day::parse(day).unwrap().start();
        for hour in 0..24 {
            let t = start + hour * 3_600;
            let mut web = hourly_row("vc-a", "vm-1", t);
            web.folder = "/DC0/vm/acme/web".into();
            rows.push(web);
            if day == "2026-11-01" && hour < 12 {
                let mut db = hourly_row("vc-a", "vm-2", t);
                db.folder = "/DC0/vm/beta".into();
                db.resource_pool = "Silver".into();
                db.vcpu_count = 4;
                db.ram_gb = 8.0;
                db.provisioned_disk_gb = 50.0;
                rows.push(db);
            }
        }
    }
    import(&db.store, rows).await;
    for day in days {
        aggregate_daily(&db.store, Day::parse(day).unwrap(), Engine::Rust)
            .await
            .unwrap();
    }
}

async fn priced(db: TestDb, extra: &str) -> App {
    seed(&db).await;
    let settings = settings(&format!("{PRICING}{extra}"));
    let mut app = app(db);
    app.state = app.state.clone().with_pricing(
        settings.pricing.clone(),
        settings.cost_metrics_vm_limit,
        settings.cost_metrics_public,
    );
    app
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

async fn get_json(app: &App, uri: &str) -> (StatusCode, Value) {
    let (status, headers, body) = get(app, uri).await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{uri}");
    (status, serde_json::from_str(&body).unwrap())
}

/// `vctp costs ARGS --format json` over the app's database, with the pricing settings.
fn cli_json(app: &App, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vctp.yml");
    std::fs::write(&config, format!("settings:{PRICING}")).unwrap();
    let url = match &app.db.url {
        DatabaseUrl::Sqlite(path) => path.display().to_string(),
        DatabaseUrl::Postgres(url) => url.clone(),
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vctp"))
        .arg("--config")
        .arg(&config)
        .arg("--database-url")
        .arg(url)
        .arg("costs")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "vctp costs {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn the_cost_api_answers_what_vctp_costs_prints_as_json(db: TestDb) {
    let app = priced(db, "").await;
    let (status, november) = get_json(&app, "/api/costs/monthly?month=2026-11").await;
    assert_eq!(status, StatusCode::OK, "{november}");
    // acme: two days of vm-1, 2 × 1.60; beta: vm-2's half day, 0.70. Tenant is the default.
    let lines: Vec<(&str, &str)> = november["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["tenant"].as_str().unwrap(), l["cost"].as_str().unwrap()))
        .collect();
    assert_eq!(lines, [("acme", "3.20"), ("beta", "0.70")]);
    assert_eq!(
        november["totals"],
        json!([{"currency": "EUR", "cost": "3.90", "unrounded": "3.90", "rounding": "0.00", "charges": 8}])
    );
    assert_eq!(november["group_by"], "tenant");
    for by in ["vm", "tenant", "pool", "vcenter", "cluster"] {
        let (status, api) = get_json(
            &app,
            &format!("/api/costs/monthly?month=2026-11&group_by={by}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{by}: {api}");
        let cli = cli_json(&app, &["monthly", "--month", "2026-11", "--group-by", by]);
        assert_eq!(api, cli, "monthly by {by}");
        let (status, api) = get_json(
            &app,
            &format!("/api/costs/daily?date=2026-11-01&group_by={by}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{by}: {api}");
        let cli = cli_json(&app, &["daily", "--date", "2026-11-01", "--group-by", by]);
        assert_eq!(api, cli, "daily by {by}");
    }
    let (_, by_vm) = get_json(&app, "/api/costs/daily?date=2026-11-02&group_by=vm").await;
    assert_eq!(by_vm["lines"][0]["name"], "name-vm-1");
    assert_eq!(by_vm["lines"][0]["cost"], "1.60");
    assert_eq!(by_vm["lines"].as_array().unwrap().len(), 1);
}

async fn cost_errors_are_400_404_and_409_naming_what_is_wrong(db: TestDb) {
    let app = priced(db, "").await;
    for (uri, parameter) in [
        ("/api/costs/daily", "date"),
        ("/api/costs/daily?date=2026-13-01", "date"),
        ("/api/costs/monthly", "month"),
        ("/api/costs/monthly?month=November", "month"),
        (
            "/api/costs/monthly?month=2026-11&group_by=owner",
            "group_by",
        ),
        ("/api/costs/daily?date=2026-11-01&n=1", "`n`"),
    ] {
        let (status, body) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(parameter), "{uri}: {message}");
    }
    let (status, body) = get_json(&app, "/api/costs/monthly?month=2026-12").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("2026-12"),
        "{body}"
    );

    // Settings that cannot price: no card at all, and a card that starts after a summarised day.
    let mut unpriced = app
        .state
        .clone()
        .with_pricing(settings("").pricing, 0, false);
    let answer = |state: vctp::api::AppState, uri: &'static str| async move {
        let response = router(state)
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    };
    let (status, body) = answer(unpriced.clone(), "/api/costs/daily?date=2026-11-01").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"],
        "no rate card is configured (settings.rate_cards), so there is nothing to price with"
    );
    let late = settings(
        "\n  rate_cards:\n    - {name: late, currency: EUR, effective_from: 2026-11-02, vcpu_day: 1}\n",
    );
    unpriced = unpriced.with_pricing(late.pricing, 0, false);
    let (status, body) = answer(unpriced, "/api/costs/monthly?month=2026-11").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("no rate card is in effect on 2026-11-01"),
        "{body}"
    );
}

/// The cost lines of a Prometheus text exposition, sorted.
fn cost_samples(metrics: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("_cost_") && !l.starts_with('#'))
        .collect();
    lines.sort();
    lines
}

async fn the_gauges_hold_this_month_and_last_month_to_the_same_day_after_a_refresh(db: TestDb) {
    let app = priced(db, "\n  cost_metrics_vm_limit: 1\n").await;
    let (status, _, before) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cost_samples(&before),
        Vec::<&str>::new(),
        "nothing before the first refresh"
    );
    let finance = app.state.finance.clone();
    finance
        .refresh(&app.db.store, Day::parse("2026-11-15").unwrap())
        .await
        .unwrap();
    let (_, _, after) = get(&app, "/metrics").await;
    // November through its newest summarised day (11-02): acme 3.20, beta 0.70. October
    // through 10-02: only 10-01 of vm-1, 1.60 (10-03 is past the same day of month); beta had
    // nothing. The most costly VM is vm-1.
    assert_eq!(
        cost_samples(&after),
        [
            r#"vctp_tenant_cost_month_to_date{currency="EUR",tenant="acme"} 3.2"#,
            r#"vctp_tenant_cost_month_to_date{currency="EUR",tenant="beta"} 0.7"#,
            r#"vctp_tenant_cost_previous_month_to_date{currency="EUR",tenant="acme"} 1.6"#,
            r#"vctp_vm_cost_month_to_date{currency="EUR",tenant="acme",vcenter="vc-a",vm_id="vm-1"} 3.2"#,
        ]
    );
    assert!(after.contains("through its newest summarised day (2026-11-02)"));
}

async fn the_finance_page_shows_tenants_the_trend_the_drill_down_and_the_downloads(db: TestDb) {
    let app = priced(db, "").await;
    let page = |uri: &'static str| {
        let app = &app;
        async move {
            let (status, headers, body) = get(app, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            body
        }
    };
    let waiting = page("/finance").await;
    assert!(waiting.contains("being computed"), "{waiting}");
    for (kind, format) in [("monthly", "xlsx"), ("focus", "csv")] {
        let key = format!("reports/{kind}/2026-10/all.{format}");
        app.db
            .store
            .record_report(&ReportEntry {
                object_key: key,
                kind: kind.into(),
                period: "2026-10".into(),
                period_start: Day::parse("2026-10-01").unwrap().start(),
                scope: "all".into(),
                format: format.into(),
                size: 1,
                sha256: "0".repeat(64),
                created_at: 1,
            })
            .await
            .unwrap();
    }
    app.state
        .finance
        .refresh(&app.db.store, Day::parse("2026-11-15").unwrap())
        .await
        .unwrap();
    let overview = page("/finance").await;
    assert!(
        overview.contains(r#"<a href="/finance">Finance</a>"#),
        "in the navigation"
    );
    assert!(overview.contains("This month so far: 2026-11, through 2026-11-02"));
    // acme: 3.20 so far against 1.60 last month through 10-02, +100%; beta is new.
    let acme = r#"<a href="/finance?month=2026-11&#38;tenant=acme">acme</a></td><td>EUR</td><td class="num">3.20</td><td class="num">1.60</td><td class="num">+100.0%</td>"#;
    assert!(overview.contains(acme), "{overview}");
    assert!(overview.contains(r#"tenant=beta">beta</a></td><td>EUR</td><td class="num">0.70</td><td class="num">–</td><td class="num">new</td>"#));
    assert!(overview.contains("Last month: 2026-10"));
    assert!(overview.contains(
        "Total EUR 3.20: the sum of 4 rounded charges (exact total 3.20, rounding 0.00)"
    ));
    assert!(overview.contains(r#"<a href="/api/reports/download?key=reports%2Fmonthly%2F2026-10%2Fall.xlsx">Workbook (XLSX)</a>"#), "{overview}");
    assert!(overview.contains(
        r#"<a href="/api/reports/download?key=reports%2Ffocus%2F2026-10%2Fall.csv">FOCUS (CSV)</a>"#
    ));
    assert!(
        overview.contains("vctp report generate monthly --month 2026-11"),
        "November has no files yet"
    );
    assert!(overview.contains("<polyline"), "the trend chart");
    assert!(
        overview.contains(r#"<a href="/finance?month=2026-10">2026-10</a>"#),
        "the trend table"
    );

    let month = page("/finance?month=2026-11").await;
    assert!(month.contains("2026-11 by tenant"));
    assert!(month.contains("Total EUR 3.90: the sum of 8 rounded charges"));
    let vms = page("/finance?month=2026-11&tenant=beta").await;
    assert!(vms.contains("1 VMs of beta in 2026-11"), "{vms}");
    assert!(vms.contains(">name-vm-2</a>") && !vms.contains("name-vm-1"));
    assert!(vms.contains("beta: EUR 0.70"));
    assert!(vms.contains(r#"<a href="/finance">Overview</a>"#));

    for (uri, status, needle) in [
        ("/finance?month=2026-13", StatusCode::BAD_REQUEST, "month"),
        ("/finance?tenant=acme", StatusCode::BAD_REQUEST, "month"),
        ("/finance?month=2026-12", StatusCode::NOT_FOUND, "2026-12"),
    ] {
        let (answer, _, body) = get(&app, uri).await;
        assert_eq!(answer, status, "{uri}: {body}");
        assert!(body.contains(needle), "{uri}: {body}");
    }

    let mut bare = common::app::app(common::sqlite().await);
    bare.state = bare
        .state
        .clone()
        .with_pricing(settings("").pricing, 0, false);
    let (status, _, unconfigured) = get(&bare, "/finance").await;
    assert_eq!(status, StatusCode::OK);
    assert!(unconfigured.contains("No rate card is configured"));
    assert!(unconfigured.contains("rate_cards:") && unconfigured.contains("effective_from:"));
}

const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[tokio::test]
async fn under_auth_required_the_cost_routes_and_the_finance_page_need_a_login() {
    let mut app = priced(common::sqlite().await, "").await;
    let auth = settings(&format!(
        "\n  auth_enabled: true\n  auth_mode: required\n  ldap_bind_address: \"ldap://127.0.0.1:1\"\n  ldap_base_dn: \"dc=example,dc=com\"\n  auth_jwt_signing_key: \"{KEY_B64}\"\n  auth_group_role_mappings:\n    \"cn=viewers,dc=example,dc=com\": viewer\n"
    ));
    app.state = app
        .state
        .clone()
        .with_auth(vctp::auth::Auth::from_settings(&auth).unwrap());
    for uri in [
        "/api/costs/daily?date=2026-11-01",
        "/api/costs/monthly?month=2026-11&group_by=vm",
    ] {
        let (status, body) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
    }
    // What tenants cost is data: the public /metrics leaves it out unless the settings
    // say whoever can scrape may see it.
    app.state
        .finance
        .refresh(&app.db.store, Day::parse("2026-11-15").unwrap())
        .await
        .unwrap();
    let (status, _, metrics) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!metrics.contains("vctp_tenant_cost"), "{metrics}");
    let public = settings("\n  cost_metrics_public: true\n");
    let pricing = app.state.finance.pricing.clone();
    app.state = app
        .state
        .clone()
        .with_pricing(pricing, 0, public.cost_metrics_public);
    app.state
        .finance
        .refresh(&app.db.store, Day::parse("2026-11-15").unwrap())
        .await
        .unwrap();
    let (_, _, metrics) = get(&app, "/metrics").await;
    assert!(
        metrics.contains("vctp_tenant_cost_month_to_date{"),
        "{metrics}"
    );
    let (status, headers, _) = get(&app, "/finance?month=2026-11").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a browser is sent to log in");
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "{headers:?}"
    );
}

#[tokio::test]
async fn the_openapi_document_has_the_cost_routes() {
    let app = app(common::sqlite().await);
    let (_, document) = get_json(&app, "/swagger.json").await;
    for (path, id) in [
        ("/api/costs/daily", "daily_costs"),
        ("/api/costs/monthly", "monthly_costs"),
    ] {
        let get = &document["paths"][path]["get"];
        assert_eq!(get["operationId"], id);
        assert_eq!(get["tags"], json!(["costs"]));
        let statuses: Vec<&str> = get["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(statuses, ["200", "400", "404", "409", "503"]);
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CostReport"
        );
    }
}

#[tokio::test]
async fn cost_answers_are_kept_by_the_answer_cache_for_its_seconds() {
    let mut app = priced(common::sqlite().await, "").await;
    app.state = app
        .state
        .clone()
        .with_response_cache(std::time::Duration::from_secs(60));
    let uri = "/api/costs/monthly?month=2026-11";
    let (_, before) = get_json(&app, uri).await;
    assert_eq!(before["totals"][0]["cost"], "3.90");
    let (_, _, page) = get(&app, "/finance?month=2026-11").await;
    assert!(page.contains("Total EUR 3.90"));
    // Another day of vm-1 is aggregated: 1.60 more, once the kept answer has expired.
    let start = Day::parse("2026-11-03").unwrap().start();
    import(
        &app.db.store,
        (0..24).map(|hour| {
            let mut web = hourly_row("vc-a", "vm-1", start + hour * 3_600);
            web.folder = "/DC0/vm/acme/web".into();
            web
        }),
    )
    .await;
    aggregate_daily(
        &app.db.store,
        Day::parse("2026-11-03").unwrap(),
        Engine::Rust,
    )
    .await
    .unwrap();
    assert_eq!(get_json(&app, uri).await.1, before, "served from the cache");
    assert_eq!(
        get(&app, "/finance?month=2026-11").await.2,
        page,
        "kept too"
    );
    app.state = app
        .state
        .clone()
        .with_response_cache(std::time::Duration::ZERO);
    let (_, fresh) = get_json(&app, uri).await;
    assert_eq!(
        fresh["totals"][0]["cost"], "5.50",
        "3.90 + 1.60, priced afresh"
    );
}
