//! Units of work as a Kubernetes Job runs them: aggregation requests with their reports.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use vctp::aggregate::engine::Source;
use vctp::aggregate::{Day, Engine};
use vctp::jobs::Stores;
use vctp::jobs::aggregate::{Request, WhenEmpty, run};
use vctp::jobs::report::Period;
use vctp::objstore::Objects;
use vctp::report::PivotSpec;
use vctp::store::grain::Grain;

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
        &Stores {
            store: &db.store,
            objects: &objects,
            pivots: &pivots,
            pricing: &Default::default(),
        },
        &Request {
            period: Period::Day(day),
            vcenters: Vec::new(),
            engine: Engine::Rust,
            report: true,
        },
        Source::Job,
        WhenEmpty::Fail,
    )
    .await
    .expect("daily request");
    common::assert_recorded_aggregation(&db.store, Grain::Daily, day.start(), "job").await;
    assert!(all.rows_written > 50 && all.vcenters == 2, "{all:?}");
    let keys: Vec<&str> = all.reports.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "reports/daily/2026-01-10/all.xlsx",
            "reports/daily/2026-01-10/all.csv"
        ]
    );
    assert!(all.reports.iter().all(|r| r.sha256.len() == 64));

    let per_vcenter = run(
        &Stores {
            store: &db.store,
            objects: &objects,
            pivots: &pivots,
            pricing: &Default::default(),
        },
        &Request {
            period: Period::hour("2026-01-10T05").unwrap(),
            vcenters: inventory.vcenters().to_vec(),
            engine: Engine::Rust,
            report: true,
        },
        Source::Job,
        WhenEmpty::Fail,
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
        &Stores {
            store: &db.store,
            objects: &objects,
            pivots: &PivotSpec::defaults(),
            pricing: &Default::default(),
        },
        &Request {
            period: Period::Day(Day::parse("2026-01-10").unwrap()),
            vcenters: Vec::new(),
            engine: Engine::Sql,
            report: true,
        },
        Source::Job,
        WhenEmpty::Fail,
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

#[tokio::test]
async fn a_caller_that_skips_empty_periods_gets_a_skipped_outcome_and_no_report() {
    let db = common::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::from_url(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let day = Day::parse("2026-01-10").unwrap();
    let outcome = run(
        &Stores {
            store: &db.store,
            objects: &objects,
            pivots: &PivotSpec::defaults(),
            pricing: &Default::default(),
        },
        &Request {
            period: Period::Day(day),
            vcenters: Vec::new(),
            engine: Engine::Rust,
            report: true,
        },
        Source::Standalone,
        WhenEmpty::Skip,
    )
    .await
    .expect("an empty day is skipped, not an error");
    assert!(outcome.skipped && outcome.reports.is_empty(), "{outcome:?}");
    assert!(db.store.reports(None).await.unwrap().is_empty());
    let recorded = db
        .store
        .aggregation_runs("daily", day.start())
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1, "the attempt is recorded all the same");
    assert!(!recorded[0].success && recorded[0].source == "standalone");
}

#[tokio::test]
#[ignore = "needs the S3 server: run scripts/test.sh"]
async fn an_aggregation_on_s3_leaves_keys_and_checksums_but_no_download_link_for_status() {
    let db = common::sqlite().await;
    let day = Day::parse("2026-01-10").unwrap();
    let inventory = vctp::synth::Inventory::new(20, 1, day, 1, 5);
    common::import(&db.store, common::synthetic_rows(&inventory, day, 1)).await;
    let objects = common::s3::s3_server().objects(&format!("jobs-{}", std::process::id()));
    let outcome = run(
        &Stores {
            store: &db.store,
            objects: &objects,
            pivots: &PivotSpec::defaults(),
            pricing: &Default::default(),
        },
        &Request {
            period: Period::Day(day),
            vcenters: Vec::new(),
            engine: Engine::Rust,
            report: true,
        },
        Source::Job,
        WhenEmpty::Fail,
    )
    .await
    .expect("daily request on S3");
    assert_eq!(outcome.reports.len(), 2, "{outcome:?}");
    // What the Job leaves for the operator is what the AggregationJob's status shows: anyone
    // who can read the resource would hold a working link to the finance data.
    let mut result = vctp::jobs::termination::JobResult::succeeded("aggregated".into());
    result.aggregation = Some(outcome.into());
    let message = result.to_message();
    let status: serde_json::Value = serde_json::from_str(&message).unwrap();
    for report in status["aggregation"]["reports"].as_array().unwrap() {
        let mut fields: Vec<&str> = report
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, ["key", "sha256", "size"], "{report}");
    }
    assert!(!message.contains("X-Amz-"), "{message}");
}
