//! The admin and diagnostics endpoints through `router(state).oneshot(request)`, on SQLite and
//! PostgreSQL, with data imported by the real store; every expected value is read back from
//! the store. The operator-mode trigger is tested against the real API server
//! (`#[ignore]`, started by scripts/test.sh).
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::app::{App, app};
use common::{TestDb, import, synthetic_rows};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vctp::aggregate::engine::{aggregate_daily, aggregate_monthly};
use vctp::aggregate::{Day, Engine, Month};
use vctp::api::{AppState, Trigger, router};
use vctp::credentials::{Key, decrypt};
use vctp::store::grain::{Grain, TotalsGrain};
use vctp::store::runs::SnapshotRun;
use vctp::store::totals::VcenterTotals;
use vctp::synth::Inventory;

on_both_databases!(
    aggregating_a_day_in_process_stores_its_summaries_reports_and_run_record,
    aggregating_a_month_in_process_stores_its_summaries_and_run_record,
    a_period_without_source_rows_is_422_recorded_as_a_failed_run_and_changes_nothing,
    bad_bodies_are_400_naming_the_field,
    metrics_count_the_recorded_aggregation_and_snapshot_runs,
    repairing_a_day_restores_its_deleted_daily_summary,
    repair_all_aggregates_missing_and_stale_days_and_then_nothing,
    a_cache_rebuild_equals_the_incrementally_maintained_caches,
    encrypt_answers_a_ciphertext_of_the_configured_key,
    legacy_endpoints_are_410_gone,
    daily_creation_diagnostics_describe_the_days_snapshots_summary_and_runs,
);

const FIRST: &str = "2026-03-10";

fn first() -> Day {
    Day::parse(FIRST).unwrap()
}

/// Two days of a two-vCenter inventory, imported but not aggregated.
async fn imported(db: TestDb) -> App {
    let inventory = Inventory::new(30, 2, first(), 2, 11);
    import(&db.store, synthetic_rows(&inventory, first(), 2)).await;
    app(db)
}

async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

async fn post(state: &AppState, uri: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        // A script's CSRF header: with auth disabled every unsafe request needs one.
        .header("x-csrf-token", "1")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, body) = call(state, request).await;
    (status, serde_json::from_slice(&body).unwrap())
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let (status, body) = call(state, Request::get(uri).body(Body::empty()).unwrap()).await;
    (status, serde_json::from_slice(&body).unwrap())
}

async fn ok(state: &AppState, uri: &str, body: Value) -> Value {
    let (status, answer) = post(state, uri, body).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
    answer
}

async fn aggregating_a_day_in_process_stores_its_summaries_reports_and_run_record(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    let answer = ok(
        &app.state,
        "/api/snapshots/aggregate",
        json!({"grain": "daily", "period": FIRST, "reports": true}),
    )
    .await;
    let summaries = store
        .summaries(Grain::Daily, first().start())
        .await
        .unwrap();
    assert!(!summaries.is_empty());
    assert_eq!(answer["grain"], "daily");
    assert_eq!(answer["period"], FIRST);
    assert_eq!(answer["rows_written"], summaries.len());
    let registered: Vec<String> = store
        .reports(Some("daily"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.object_key)
        .collect();
    let mut keys: Vec<String> = answer["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    let mut expected = registered.clone();
    expected.sort();
    assert!(!keys.is_empty());
    assert_eq!(keys, expected);
    common::assert_recorded_aggregation(store, Grain::Daily, first().start(), "api").await;
}

async fn aggregating_a_month_in_process_stores_its_summaries_and_run_record(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    for day in [first(), first().next()] {
        aggregate_daily(store, day, Engine::Rust).await.unwrap();
    }
    let answer = ok(
        &app.state,
        "/api/snapshots/aggregate",
        json!({"grain": "monthly", "period": "2026-03", "reports": false}),
    )
    .await;
    let month = Month::parse("2026-03").unwrap();
    let summaries = store
        .summaries(Grain::Monthly, month.start())
        .await
        .unwrap();
    assert!(!summaries.is_empty());
    assert_eq!(answer["rows_written"], summaries.len());
    assert_eq!(answer["reports"], json!([]));
    assert!(store.reports(None).await.unwrap().is_empty());
    let runs = store
        .aggregation_runs("monthly", month.start())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].success);
}

async fn a_period_without_source_rows_is_422_recorded_as_a_failed_run_and_changes_nothing(
    db: TestDb,
) {
    let app = imported(db).await;
    let store = &app.db.store;
    let empty = Day::parse("2026-04-01").unwrap();
    let (status, body) = post(
        &app.state,
        "/api/snapshots/aggregate",
        json!({"grain": "daily", "period": "2026-04-01"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no snapshots"),
        "{body}"
    );
    let runs = store
        .aggregation_runs("daily", empty.start())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].success);
    assert_eq!(runs[0].rows_written, 0);
    assert!(runs[0].error.contains("no snapshots"), "{}", runs[0].error);
    assert!(
        store
            .summary_periods(Grain::Daily)
            .await
            .unwrap()
            .is_empty()
    );
    // A month without daily summaries: same answer, nothing stored.
    let (status, _) = post(
        &app.state,
        "/api/snapshots/aggregate",
        json!({"grain": "monthly", "period": "2026-03"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        store
            .summary_periods(Grain::Monthly)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bad_bodies_are_400_naming_the_field(db: TestDb) {
    let app = imported(db).await;
    let cases = [
        (
            "/api/snapshots/aggregate",
            json!({"period": FIRST}),
            "grain",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "weekly", "period": FIRST}),
            "grain",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "daily"}),
            "period",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "daily", "period": "2026-02-30"}),
            "period",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "monthly", "period": FIRST}),
            "period",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "hourly", "period": i64::MIN.to_string()}),
            "period",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "hourly", "period": i64::MAX.to_string()}),
            "period",
        ),
        (
            "/api/snapshots/aggregate",
            json!({"grain": "daily", "period": FIRST, "reports": "yes"}),
            "body",
        ),
        ("/api/snapshots/repair", json!({}), "date"),
        (
            "/api/snapshots/repair",
            json!({"date": "10.03.2026"}),
            "date",
        ),
        ("/api/encrypt", json!({}), "plaintext"),
    ];
    for (uri, body, field) in cases {
        let (status, answer) = post(&app.state, uri, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid field {field}:")),
            "{uri} {body}: {message:?}"
        );
    }
    // Not JSON at all.
    let request = Request::post("/api/snapshots/repair")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", "1")
        .body(Body::from("date=2026-03-10"))
        .unwrap();
    let (status, body) = call(&app.state, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid field body:")
    );
    // Nothing was aggregated by any of them.
    assert!(
        app.db
            .store
            .summary_periods(Grain::Daily)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The value of the sample `name` (with its labels, as rendered) in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_count_the_recorded_aggregation_and_snapshot_runs(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    let aggregate =
        |grain: &str, period: &str| json!({"grain": grain, "period": period, "reports": false});
    for body in [
        aggregate("daily", FIRST),
        aggregate("daily", "2026-04-01"),
        aggregate("daily", "2026-03-11"),
        aggregate("monthly", "2026-03"),
    ] {
        post(&app.state, "/api/snapshots/aggregate", body).await;
    }
    let t = first().start();
    for (kind, success) in [
        ("connect", false),
        ("login", false),
        ("connect", false),
        ("", true),
    ] {
        let offset = store.snapshot_runs(Some("vc-x"), 100).await.unwrap().len() as i64;
        store
            .record_run(&SnapshotRun {
                vcenter: "vc-x".into(),
                snapshot_time: t + offset * 3600,
                started_at: t + offset * 3600,
                finished_at: t + offset * 3600 + 3 + offset,
                success,
                row_count: 0,
                error: if success { "" } else { "failed" }.into(),
                failure_kind: kind.into(),
            })
            .await
            .unwrap();
    }
    let (status, body) = call(
        &app.state,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(body).unwrap();

    let mut daily = Vec::new();
    for day in [first(), first().next(), Day::parse("2026-04-01").unwrap()] {
        daily.extend(store.aggregation_runs("daily", day.start()).await.unwrap());
    }
    let monthly = store
        .aggregation_runs("monthly", Month::parse("2026-03").unwrap().start())
        .await
        .unwrap();
    assert_eq!(daily.len(), 3);
    let failed = |runs: &[vctp::store::runs::AggregationRun]| {
        runs.iter().filter(|r| !r.success).count() as f64
    };
    assert_eq!(
        sample(&page, "vctp_daily_aggregations_total"),
        Some(daily.len() as f64)
    );
    assert_eq!(
        sample(&page, "vctp_daily_aggregations_failed_total"),
        Some(failed(&daily))
    );
    assert_eq!(failed(&daily), 1.0);
    assert_eq!(
        sample(&page, "vctp_monthly_aggregations_total"),
        Some(monthly.len() as f64)
    );
    assert_eq!(
        sample(&page, "vctp_monthly_aggregations_failed_total"),
        Some(failed(&monthly))
    );
    let newest = daily.iter().max_by_key(|r| r.started_at).unwrap();
    let duration = sample(&page, "vctp_daily_aggregation_duration_seconds").unwrap();
    // The newest of runs started within the same second is any of them.
    assert!(
        daily
            .iter()
            .filter(|r| r.started_at == newest.started_at)
            .any(|r| r.duration_seconds == duration),
        "{duration} is no newest run's duration"
    );
    assert_eq!(
        sample(&page, "vctp_monthly_aggregation_duration_seconds"),
        Some(monthly[0].duration_seconds)
    );

    let runs = store.snapshot_runs(Some("vc-x"), 100).await.unwrap();
    let connect = runs.iter().filter(|r| r.failure_kind == "connect").count();
    assert_eq!(connect, 2);
    assert_eq!(
        sample(
            &page,
            "vctp_vcenter_connect_failures_total{vcenter=\"vc-x\"}"
        ),
        Some(connect as f64)
    );
    assert_eq!(
        sample(
            &page,
            "vctp_vcenter_snapshot_duration_seconds{vcenter=\"vc-x\"}"
        ),
        Some((runs[0].finished_at - runs[0].started_at) as f64)
    );
}

async fn repairing_a_day_restores_its_deleted_daily_summary(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    aggregate_daily(store, first(), Engine::Rust).await.unwrap();
    let before = store
        .summaries(Grain::Daily, first().start())
        .await
        .unwrap();
    let totals_before = store
        .totals(TotalsGrain::Daily, i64::MIN, i64::MAX)
        .await
        .unwrap();
    let snapshot_totals = store
        .totals(TotalsGrain::Snapshot, i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert!(!before.is_empty());
    store.delete_daily_before(first().end()).await.unwrap();
    assert!(
        store
            .summaries(Grain::Daily, first().start())
            .await
            .unwrap()
            .is_empty()
    );

    let answer = ok(&app.state, "/api/snapshots/repair", json!({"date": FIRST})).await;
    let after = store
        .summaries(Grain::Daily, first().start())
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(answer["date"], FIRST);
    assert_eq!(answer["rows_written"], after.len());
    let vcenters = store
        .snapshot_counts(first().start(), first().end())
        .await
        .unwrap();
    assert_eq!(answer["vcenters"], vcenters.len());
    let daily_after = store
        .totals(TotalsGrain::Daily, i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_same_totals("daily", &daily_after, &totals_before);
    let snapshot_after = store
        .totals(TotalsGrain::Snapshot, i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_same_totals("snapshot", &snapshot_after, &snapshot_totals);
    let runs = store
        .aggregation_runs("daily", first().start())
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].source, "api");
}

async fn repair_all_aggregates_missing_and_stale_days_and_then_nothing(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    aggregate_daily(store, first(), Engine::Rust).await.unwrap();
    let first_rows = store
        .summaries(Grain::Daily, first().start())
        .await
        .unwrap();

    // The second day was never aggregated.
    let answer = ok(&app.state, "/api/snapshots/repair/all", json!({})).await;
    let second = first().next();
    let rows = store.summaries(Grain::Daily, second.start()).await.unwrap();
    assert!(!rows.is_empty());
    assert_eq!(
        answer,
        json!({
            "repaired": [{
                "date": second.to_string(),
                "rows_written": rows.len(),
                "vcenters": store.snapshot_counts(second.start(), second.end()).await.unwrap().len(),
                "reason": "missing",
            }],
            "failed": [],
        })
    );
    assert_eq!(
        store
            .summaries(Grain::Daily, first().start())
            .await
            .unwrap(),
        first_rows
    );

    // Everything is fresh now.
    let answer = ok(&app.state, "/api/snapshots/repair/all", json!({})).await;
    assert_eq!(answer, json!({"repaired": [], "failed": []}));

    // A snapshot added to the first day after its aggregation makes it stale.
    let vcenter = first_rows[0].vcenter.clone();
    let mut writer = store
        .snapshot_writer(vctp::inventory::TierMapping::default(), "import")
        .await
        .unwrap();
    writer
        .push_empty(&vcenter, first().start() + 1)
        .await
        .unwrap();
    writer.commit().await.unwrap();
    let answer = ok(&app.state, "/api/snapshots/repair/all", json!({})).await;
    assert_eq!(answer["repaired"][0]["date"], FIRST);
    assert_eq!(answer["repaired"][0]["reason"], "sample_count_changed");
    assert_eq!(answer["repaired"].as_array().unwrap().len(), 1);
    let counts = store.daily_summary_counts(first().start()).await.unwrap();
    let registered = store
        .snapshot_counts(first().start(), first().end())
        .await
        .unwrap();
    for count in counts {
        let (_, snapshots) = registered
            .iter()
            .find(|(v, _)| *v == count.vcenter)
            .unwrap();
        assert_eq!(count.total_samples, *snapshots);
    }
}

async fn a_cache_rebuild_equals_the_incrementally_maintained_caches(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    for day in [first(), first().next()] {
        aggregate_daily(store, day, Engine::Rust).await.unwrap();
    }
    aggregate_monthly(store, first().month(), Engine::Sql)
        .await
        .unwrap();
    let mut before = Vec::new();
    let grains = [
        TotalsGrain::Snapshot,
        TotalsGrain::Daily,
        TotalsGrain::Monthly,
    ];
    for grain in grains {
        before.push(store.totals(grain, i64::MIN, i64::MAX).await.unwrap());
    }
    assert!(before.iter().all(|rows| !rows.is_empty()));
    let answer = ok(&app.state, "/api/vcenters/cache/rebuild", json!({})).await;
    let vcenters = store.latest_totals().await.unwrap().len();
    assert_eq!(
        answer,
        json!({
            "vcenters": vcenters,
            "days": store.summary_periods(Grain::Daily).await.unwrap().len(),
            "months": store.summary_periods(Grain::Monthly).await.unwrap().len(),
        })
    );
    for (grain, rows) in grains.into_iter().zip(&before) {
        let after = store.totals(grain, i64::MIN, i64::MAX).await.unwrap();
        assert_same_totals(grain.as_str(), &after, rows);
    }
}

/// Totals rows equal up to the last bits of their sums (summed in another order).
fn assert_same_totals(what: &str, after: &[VcenterTotals], before: &[VcenterTotals]) {
    assert_eq!(after.len(), before.len(), "{what}");
    for (a, b) in after.iter().zip(before) {
        assert_eq!(
            (&a.grain, &a.vcenter, a.period_start, a.total_samples),
            (&b.grain, &b.vcenter, b.period_start, b.total_samples),
            "{what}"
        );
        for (x, y) in [
            (a.vm_count, b.vm_count),
            (a.vcpu_count, b.vcpu_count),
            (a.ram_gb, b.ram_gb),
            (a.disk_gb, b.disk_gb),
            (a.tin, b.tin),
            (a.bronze, b.bronze),
            (a.silver, b.silver),
            (a.gold, b.gold),
        ] {
            assert!(
                (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                "{what}: {x} != {y}"
            );
        }
    }
}

async fn encrypt_answers_a_ciphertext_of_the_configured_key(db: TestDb) {
    let app = imported(db).await;
    let (status, _) = post(&app.state, "/api/encrypt", json!({"plaintext": "s3cret!"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no key configured");
    let state = app
        .state
        .clone()
        .with_encryption_key(Key::from_setting("test key"));
    let answer = ok(&state, "/api/encrypt", json!({"plaintext": "s3cret!"})).await;
    let ciphertext = answer["ciphertext"].as_str().unwrap();
    assert!(ciphertext.starts_with("enc:v2:"), "{ciphertext}");
    let key = Key::from_setting("test key");
    assert_eq!(
        decrypt(&key, "vcenter_password", ciphertext).unwrap(),
        "s3cret!"
    );
    assert!(
        decrypt(
            &Key::from_setting("other key"),
            "vcenter_password",
            ciphertext
        )
        .is_err()
    );
    // A named setting gets a value only that setting accepts.
    let setting = "object_store_options.aws_secret_access_key";
    let answer = ok(
        &state,
        "/api/encrypt",
        json!({"plaintext": "s3cret!", "setting": setting}),
    )
    .await;
    let ciphertext = answer["ciphertext"].as_str().unwrap();
    assert_eq!(decrypt(&key, setting, ciphertext).unwrap(), "s3cret!");
    assert!(decrypt(&key, "vcenter_password", ciphertext).is_err());
    let body = json!({"plaintext": "s3cret!", "setting": "vcenter_username"});
    let (status, answer) = post(&state, "/api/encrypt", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = answer["error"].as_str().unwrap();
    assert!(message.starts_with("invalid field setting:"), "{message}");
    assert!(message.contains("vcenter_username"), "{message}");
    let (status, answer) = post(&state, "/api/encrypt", json!({"plaintext": "ab"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = answer["error"].as_str().unwrap();
    assert!(message.starts_with("invalid field plaintext:"), "{message}");
    assert!(
        !message.contains("ab\""),
        "the plaintext is not echoed: {message}"
    );
}

async fn legacy_endpoints_are_410_gone(db: TestDb) {
    let app = imported(db).await;
    for path in [
        "/api/event/vm/create",
        "/api/event/vm/modify",
        "/api/event/vm/move",
        "/api/event/vm/delete",
        "/api/cleanup/updates",
        "/api/cleanup/vcenter",
    ] {
        for request in [
            Request::post(path)
                .header("x-csrf-token", "1")
                .body(Body::empty())
                .unwrap(),
            Request::get(path).body(Body::empty()).unwrap(),
        ] {
            let (status, body) = call(&app.state, request).await;
            assert_eq!(status, StatusCode::GONE, "{path}");
            let answer: Value = serde_json::from_slice(&body).unwrap();
            let message = answer["error"].as_str().unwrap();
            assert!(
                message.contains(path) && message.contains("enable_legacy_api is not supported"),
                "{message}"
            );
        }
    }
}

async fn daily_creation_diagnostics_describe_the_days_snapshots_summary_and_runs(db: TestDb) {
    let app = imported(db).await;
    let store = &app.db.store;
    ok(
        &app.state,
        "/api/snapshots/aggregate",
        json!({"grain": "daily", "period": FIRST, "reports": false}),
    )
    .await;
    let (status, answer) = get(
        &app.state,
        &format!("/api/diagnostics/daily-creation?date={FIRST}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let times = store
        .snapshot_times(first().start(), first().end())
        .await
        .unwrap();
    let counts = store.daily_summary_counts(first().start()).await.unwrap();
    let summaries = store
        .summaries(Grain::Daily, first().start())
        .await
        .unwrap();
    assert_eq!(answer["summary_exists"], true);
    assert_eq!(answer["summary_rows"], summaries.len());
    let vcenters = answer["vcenters"].as_array().unwrap();
    assert_eq!(vcenters.len(), counts.len());
    for (entry, count) in vcenters.iter().zip(&counts) {
        assert_eq!(entry["vcenter"], count.vcenter);
        let own: Vec<i64> = times
            .iter()
            .filter(|(v, _)| *v == count.vcenter)
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(entry["snapshot_times"], json!(own));
        assert_eq!(entry["snapshots"], own.len());
        assert_eq!(entry["summary_rows"], count.rows);
        assert_eq!(entry["summary_samples"], count.total_samples);
        let missing: Vec<i64> = (0..24)
            .filter(|h| !own.iter().any(|t| (t - first().start()) / 3600 == *h))
            .collect();
        assert_eq!(entry["missing_hours"], json!(missing));
    }
    let runs = store
        .aggregation_runs("daily", first().start())
        .await
        .unwrap();
    assert_eq!(
        answer["aggregation_runs"],
        serde_json::to_value(&runs).unwrap()
    );
    assert_eq!(runs.len(), 1);

    let one = &counts[1].vcenter;
    let (_, answer) = get(
        &app.state,
        &format!("/api/diagnostics/daily-creation?date={FIRST}&vcenter={one}"),
    )
    .await;
    assert_eq!(answer["vcenters"].as_array().unwrap().len(), 1);
    assert_eq!(answer["vcenters"][0]["vcenter"], json!(one));

    // A day never aggregated: no summary, its snapshots still listed.
    let (_, answer) = get(
        &app.state,
        "/api/diagnostics/daily-creation?date=2026-03-11",
    )
    .await;
    assert_eq!(answer["summary_exists"], false);
    assert_eq!(answer["aggregation_runs"], json!([]));
    assert!(
        answer["vcenters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["summary_exists"] == false && v["snapshots"].as_u64().unwrap() > 0)
    );

    let (status, answer) = get(&app.state, "/api/diagnostics/daily-creation?date=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("parameter date"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes API server of scripts/test.sh (VCTP_TEST_KUBECONFIG)"]
async fn in_operator_mode_aggregating_creates_an_aggregation_job_and_answers_202() {
    use vctp::crd::AggregationJob;
    use vctp::crd::aggregation_job::AggregationPeriod;
    let ns = common::kube::TestNamespace::new("admin").await.unwrap();
    let app = imported(common::sqlite().await).await;
    let state = app.state.clone().with_trigger(Trigger::Operator {
        client: ns.client.clone(),
        namespace: ns.name.clone(),
    });
    let (status, answer) = post(
        &state,
        "/api/snapshots/aggregate",
        json!({"grain": "daily", "period": FIRST, "reports": false}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["namespace"], json!(ns.name));
    let name = answer["aggregation_job"].as_str().unwrap();
    assert!(name.starts_with(&format!("api-daily-{FIRST}-")), "{name}");
    let job = ns.api::<AggregationJob>().get(name).await.unwrap();
    assert_eq!(job.spec.period, AggregationPeriod::Daily);
    assert_eq!(job.spec.date.as_deref(), Some(FIRST));
    assert!(!job.spec.report.enabled);

    let (status, answer) = post(
        &state,
        "/api/snapshots/aggregate",
        json!({"grain": "hourly", "period": "2026-03-10T14"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = ns
        .api::<AggregationJob>()
        .get(answer["aggregation_job"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(job.spec.period, AggregationPeriod::Hourly);
    let at = job.spec.at.unwrap().0.as_second();
    assert_eq!(at, first().start() + 14 * 3600);
    assert!(job.spec.report.enabled);
    // Nothing ran here: the operator does the work.
    assert!(
        app.db
            .store
            .summary_periods(Grain::Daily)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.db
            .store
            .aggregation_runs("daily", first().start())
            .await
            .unwrap()
            .is_empty()
    );
}
