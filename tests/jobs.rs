//! Units of work as a Kubernetes Job runs them: aggregation requests with their reports.

mod common;

use vctp::aggregate::engine::Source;
use vctp::aggregate::{Day, Engine};
use vctp::jobs::aggregate::{Request, run};
use vctp::jobs::report::Period;
use vctp::objstore::Objects;
use vctp::report::PivotSpec;

#[tokio::test]
async fn an_aggregation_request_stores_summaries_and_reports_each_requested_vcenter() {
    let db = common::sqlite().await;
    let day = Day::parse("2026-01-10").unwrap();
    let inventory = vctp::synth::Inventory::new(60, 2, day, 1, 5);
    common::import(&db.store, common::synthetic_rows(&inventory, day, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::from_url(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let pivots = PivotSpec::defaults();

    let all = run(
        &db.store,
        &objects,
        &pivots,
        &Request {
            period: Period::Day(day),
            vcenters: Vec::new(),
            engine: Engine::Rust,
            report: true,
        },
        Source::Job,
    )
    .await
    .expect("daily request");
    let recorded = db
        .store
        .aggregation_runs("daily", day.start())
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1, "one recorded attempt");
    assert!(recorded[0].success && recorded[0].source == "job");
    assert_eq!(recorded[0].rows_written as u64, all.rows_written);
    assert!(all.rows_written > 50, "{all:?}");
    let keys: Vec<&str> = all.reports.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "reports/daily/2026-01-10/all.xlsx",
            "reports/daily/2026-01-10/all.csv"
        ]
    );
    assert!(
        all.reports
            .iter()
            .all(|r| r.url.is_none() && r.sha256.len() == 64)
    );

    let per_vcenter = run(
        &db.store,
        &objects,
        &pivots,
        &Request {
            period: Period::hour("2026-01-10T05").unwrap(),
            vcenters: inventory.vcenters().to_vec(),
            engine: Engine::Rust,
            report: true,
        },
        Source::Job,
    )
    .await
    .expect("hourly request");
    assert_eq!(
        per_vcenter.rows_written, 0,
        "an hourly request only reports"
    );
    assert_eq!(per_vcenter.reports.len(), 4, "XLSX and CSV of each vCenter");
    let json = serde_json::to_string(&per_vcenter).unwrap();
    assert!(
        json.contains("\"rowsWritten\":0") && json.contains("vc02.example.com.xlsx"),
        "{json}"
    );
}

#[tokio::test]
async fn a_request_for_a_period_without_snapshots_fails_naming_it() {
    let db = common::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::from_url(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let err = run(
        &db.store,
        &objects,
        &PivotSpec::defaults(),
        &Request {
            period: Period::Day(Day::parse("2026-01-10").unwrap()),
            vcenters: Vec::new(),
            engine: Engine::Sql,
            report: true,
        },
        Source::Job,
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "NoSnapshots");
    let day = Day::parse("2026-01-10").unwrap();
    let recorded = db
        .store
        .aggregation_runs("daily", day.start())
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1, "the failed attempt is recorded");
    assert!(!recorded[0].success && !recorded[0].error.is_empty());
    assert!(err.to_string().ends_with(&recorded[0].error), "{err}");
    assert!(err.to_string().contains("2026-01-10"), "{err}");
}
