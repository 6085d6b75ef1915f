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

/// The sheet names of a workbook and all its shared strings (the Cover's text among them).
fn workbook_text(path: &std::path::Path) -> (String, String) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    (read("xl/workbook.xml"), read("xl/sharedStrings.xml"))
}

fn pricing(cards: &str) -> vctp::cost::Pricing {
    let cards: Vec<vctp::cost::RateCardSpec> = serde_yaml::from_str(cards).unwrap();
    vctp::cost::Pricing {
        cards: vctp::cost::RateCards::from_specs(&cards).unwrap(),
        rules: Default::default(),
    }
}

#[tokio::test]
async fn reports_carry_costs_and_a_focus_file_only_when_the_period_can_be_priced() {
    use vctp::aggregate::engine::{aggregate_daily, aggregate_monthly};
    use vctp::jobs::report::generate;
    let db = common::sqlite().await;
    let day = Day::parse("2026-01-10").unwrap();
    let inventory = vctp::synth::Inventory::new(20, 1, day, 2, 5);
    common::import(&db.store, common::synthetic_rows(&inventory, day, 2)).await;
    aggregate_daily(&db.store, day, Engine::Rust).await.unwrap();
    aggregate_monthly(&db.store, day.month(), Engine::Rust)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::from_url(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let pivots = PivotSpec::defaults();
    let priced = pricing("[{currency: EUR, effective_from: 2026-01-01, tiers: {none: 1}}]");
    let too_late = pricing("[{name: next year, currency: EUR, effective_from: 2027-01-01}]");
    let unpriced = vctp::cost::Pricing::default();
    let stores = |pricing| Stores {
        store: &db.store,
        objects: &objects,
        pivots: &pivots,
        pricing,
    };
    let xlsx = |key: &str| workbook_text(&dir.path().join(key));

    // Priced: the cost sheets, and the month's FOCUS file registered as kind `focus`.
    let written = generate(&stores(&priced), Period::Month(day.month()), None, None)
        .await
        .unwrap();
    let kinds: Vec<(&str, &str)> = written
        .iter()
        .map(|e| (e.kind.as_str(), e.object_key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("monthly", "reports/monthly/2026-01/all.xlsx"),
            ("monthly", "reports/monthly/2026-01/all.csv"),
            ("focus", "reports/focus/2026-01/all.csv"),
        ]
    );
    let (sheets, _) = xlsx("reports/monthly/2026-01/all.xlsx");
    assert!(
        sheets.contains(r#"name="Costs""#) && sheets.contains(r#"name="VM Costs""#),
        "{sheets}"
    );

    // A day before the first card: the report is written all the same, without costs, and
    // its cover says why.
    let written = generate(&stores(&too_late), Period::Day(day), None, None)
        .await
        .unwrap();
    assert_eq!(written.len(), 2);
    let (sheets, strings) = xlsx("reports/daily/2026-01-10/all.xlsx");
    assert!(!sheets.contains(r#"name="Costs""#), "{sheets}");
    assert!(
        strings.contains(
            "not priced: no rate card is in effect on 2026-01-10 (the earliest, `next year`, starts on 2027-01-01)"
        ),
        "{strings}"
    );

    // No card at all: no cost sheets, nothing about costs, no FOCUS file.
    let written = generate(&stores(&unpriced), Period::Month(day.month()), None, None)
        .await
        .unwrap();
    assert_eq!(written.len(), 2);
    let (sheets, strings) = xlsx("reports/monthly/2026-01/all.xlsx");
    assert!(!sheets.contains(r#"name="Costs""#), "{sheets}");
    assert!(!strings.contains("not priced"), "{strings}");
}
