//! The store and both engines on SQLite and on a real PostgreSQL.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestDb, all_rows, assert_summaries_agree, import, synthetic_rows};
use vctp::aggregate::engine::{self, aggregate_daily, aggregate_monthly, hourly_totals};
use vctp::aggregate::{Day, Engine, Figures, Month, Placement, VmSummary};
use vctp::inventory::{HourlyRow, TierMapping};
use vctp::store::attributes::{AttributeEntry, AttributeHistory, Attributes};
use vctp::store::grain::{Grain, TotalsGrain};
use vctp::store::rename::{RenameError, Renamed};
use vctp::store::runs::SnapshotRun;
use vctp::store::{Error as StoreError, Store};
use vctp::synth::Inventory;

on_both_databases!(
    rows_stored_then_exported_are_identical,
    reimporting_a_snapshot_replaces_only_that_snapshot,
    a_failed_import_stores_nothing,
    both_engines_agree_on_generated_data_with_churn,
    aggregating_twice_gives_the_same_rows_and_totals,
    aggregating_a_period_without_data_keeps_what_was_stored,
    an_empty_snapshot_counts_in_total_samples,
    hourly_totals_prorate_vms_created_within_the_hour,
    cleanup_deletes_only_rows_past_their_retention,
    backfill_rebuilds_the_same_totals,
    one_target_name_in_two_namespaces_keeps_two_keys_with_the_host_shown_for_each,
    renaming_a_vcenter_moves_every_row_in_one_transaction,
    renaming_onto_a_key_that_holds_data_or_from_an_empty_one_changes_nothing,
    a_summary_write_that_fails_half_way_keeps_what_was_stored,
    keys_with_quotes_and_backslashes_are_read_and_aggregated_like_any_other,
    attributes_are_stored_only_when_they_change,
    the_attributes_of_a_period_are_its_entries_and_the_latest_before_it,
    retention_drops_attributes_superseded_before_the_daily_cutoff,
    both_engines_class_samples_template_then_placeholder_then_powered_on,
    migration_0008_takes_earlier_summaries_as_powered_on_whenever_present,
    scan_daily_rows_streams_the_days_in_range_in_key_order,
);

fn day(text: &str) -> Day {
    Day::parse(text).unwrap()
}

fn row(vcenter: &str, vm_id: &str, snapshot_time: i64) -> HourlyRow {
    common::hourly_row(vcenter, vm_id, snapshot_time)
}

async fn rows_stored_then_exported_are_identical(db: TestDb) {
    let first = day("2026-02-27");
    let inventory = Inventory::new(60, 2, first, 2, 3);
    let mut rows = synthetic_rows(&inventory, first, 2);
    import(&db.store, rows.clone()).await;
    rows.sort_by(|a, b| {
        (&a.vcenter, a.snapshot_time, &a.vm_id).cmp(&(&b.vcenter, b.snapshot_time, &b.vm_id))
    });
    assert_eq!(all_rows(&db.store).await, rows);
}

async fn reimporting_a_snapshot_replaces_only_that_snapshot(db: TestDb) {
    let t0 = day("2026-03-01").start() + 3600;
    let t1 = t0 + 3600;
    import(
        &db.store,
        [
            row("vc", "vm-1", t0),
            row("vc", "vm-2", t0),
            row("vc", "vm-1", t1),
        ],
    )
    .await;
    let mut changed = row("vc", "vm-3", t0);
    changed.vcpu_count = 8;
    import(&db.store, [changed.clone()]).await;

    let stored = all_rows(&db.store).await;
    assert_eq!(stored, vec![changed, row("vc", "vm-1", t1)]);
    let registry = db.store.snapshot_times(0, i64::MAX).await.unwrap();
    assert_eq!(
        registry,
        vec![("vc".to_string(), t0), ("vc".to_string(), t1)]
    );
    let totals = db
        .store
        .totals(TotalsGrain::Snapshot, t0, t0 + 1)
        .await
        .unwrap();
    assert_eq!((totals[0].vm_count, totals[0].vcpu_count), (1.0, 8.0));
}

async fn a_failed_import_stores_nothing(db: TestDb) {
    let t0 = day("2026-03-01").start();
    import(&db.store, [row("vc", "vm-1", t0)]).await;
    let before = all_rows(&db.store).await;

    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "import")
        .await
        .unwrap();
    // Replaces t0, adds t1, then fails on a duplicate: none of it may become visible.
    writer.push(row("vc", "vm-9", t0)).await.unwrap();
    writer.push(row("vc", "vm-5", t0 + 60)).await.unwrap();
    let err = writer.push(row("vc", "vm-5", t0 + 60)).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateVm { .. }), "{err}");
    drop(writer);

    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "import")
        .await
        .unwrap();
    writer.push(row("vc", "vm-5", t0 + 60)).await.unwrap();
    writer.push(row("vc", "vm-6", t0 + 120)).await.unwrap();
    let err = writer.push(row("vc", "vm-7", t0 + 60)).await.unwrap_err();
    assert!(matches!(err, StoreError::SnapshotSplit { .. }), "{err}");
    drop(writer);

    assert_eq!(all_rows(&db.store).await, before);
    assert_eq!(db.store.snapshot_times(0, i64::MAX).await.unwrap().len(), 1);
}

async fn both_engines_agree_on_generated_data_with_churn(db: TestDb) {
    let first = day("2026-01-30");
    let inventory = Inventory::new(400, 3, first, 3, 11);
    import(&db.store, synthetic_rows(&inventory, first, 3)).await;
    let mut d = first;
    for _ in 0..3 {
        aggregate_daily(&db.store, d, Engine::Sql).await.unwrap();
        let sql = db.store.summaries(Grain::Daily, d.start()).await.unwrap();
        aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();
        let rust = db.store.summaries(Grain::Daily, d.start()).await.unwrap();
        assert!(rust.len() > 300, "{} rows on {d}", rust.len());
        assert_summaries_agree(&rust, &sql);
        // The in-memory core over the same rows gives the same figures too.
        let counts = db.store.snapshot_counts(d.start(), d.end()).await.unwrap();
        let rows = synthetic_rows(&inventory, d, 1);
        let in_memory = vctp::aggregate::daily::summarize_day(
            &rows,
            &counts.into_iter().collect(),
            &TierMapping::default(),
        );
        assert_summaries_agree(&rust, &in_memory);
        d = d.next();
    }
    for month in [
        Month::parse("2026-01").unwrap(),
        Month::parse("2026-02").unwrap(),
    ] {
        aggregate_monthly(&db.store, month, Engine::Sql)
            .await
            .unwrap();
        let sql = db
            .store
            .summaries(Grain::Monthly, month.start())
            .await
            .unwrap();
        aggregate_monthly(&db.store, month, Engine::Rust)
            .await
            .unwrap();
        let rust = db
            .store
            .summaries(Grain::Monthly, month.start())
            .await
            .unwrap();
        assert!(!rust.is_empty());
        assert_summaries_agree(&rust, &sql);
    }
    // Churn really happened: some VMs were present for part of a day.
    let jan31 = db
        .store
        .summaries(Grain::Daily, day("2026-01-31").start())
        .await
        .unwrap();
    assert!(jan31.iter().any(|s| s.figures.avg_is_present < 1.0));
    // Every sample class occurs, so the engines' agreement covers each of them.
    let classes = |f: &Figures| f.sample_classes().map(|n| n > 0);
    assert!(jan31.iter().any(|s| classes(&s.figures)[0]));
    assert!(jan31.iter().any(|s| classes(&s.figures)[1]));
    assert!(jan31.iter().any(|s| classes(&s.figures)[2]));
    assert!(
        jan31
            .iter()
            .any(|s| s.figures.sample_classes().iter().sum::<i64>() < s.figures.samples_present)
    );
}

async fn aggregating_twice_gives_the_same_rows_and_totals(db: TestDb) {
    let first = day("2026-04-10");
    let inventory = Inventory::new(80, 2, first, 1, 5);
    import(&db.store, synthetic_rows(&inventory, first, 1)).await;
    let outcome = aggregate_daily(&db.store, first, Engine::Rust)
        .await
        .unwrap();
    let rows = db
        .store
        .summaries(Grain::Daily, first.start())
        .await
        .unwrap();
    let totals = db
        .store
        .totals(TotalsGrain::Daily, first.start(), first.end())
        .await
        .unwrap();
    assert_eq!(outcome.rows as usize, rows.len());
    assert_eq!(totals.len(), 2);
    let again = aggregate_daily(&db.store, first, Engine::Rust)
        .await
        .unwrap();
    assert_eq!(again, outcome);
    assert_eq!(
        db.store
            .summaries(Grain::Daily, first.start())
            .await
            .unwrap(),
        rows
    );
    assert_eq!(
        db.store
            .totals(TotalsGrain::Daily, first.start(), first.end())
            .await
            .unwrap(),
        totals
    );
    // The daily totals are the sums of the summaries.
    let vm_days: f64 = rows
        .iter()
        .filter(|r| r.vcenter == totals[0].vcenter)
        .map(|r| r.figures.avg_is_present)
        .sum();
    assert!((vm_days - totals[0].vm_count).abs() < 1e-9);
}

async fn aggregating_a_period_without_data_keeps_what_was_stored(db: TestDb) {
    let first = day("2026-05-01");
    import(&db.store, [row("vc", "vm-1", first.start() + 10)]).await;
    aggregate_daily(&db.store, first, Engine::Rust)
        .await
        .unwrap();
    let month = first.month();
    aggregate_monthly(&db.store, month, Engine::Rust)
        .await
        .unwrap();
    let stored = db
        .store
        .summaries(Grain::Monthly, month.start())
        .await
        .unwrap();

    for engine in [Engine::Rust, Engine::Sql] {
        let err = aggregate_daily(&db.store, day("2026-05-02"), engine)
            .await
            .unwrap_err();
        assert!(matches!(err, engine::Error::NoSnapshots(_)), "{err}");
        let err = aggregate_monthly(&db.store, Month::parse("2026-06").unwrap(), engine)
            .await
            .unwrap_err();
        assert!(matches!(err, engine::Error::NoDailySummaries(_)), "{err}");
    }
    assert_eq!(
        db.store
            .summaries(Grain::Monthly, month.start())
            .await
            .unwrap(),
        stored
    );
    assert_eq!(
        db.store
            .summaries(Grain::Daily, first.start())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_empty_snapshot_counts_in_total_samples(db: TestDb) {
    let d = day("2026-07-04");
    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "collector")
        .await
        .unwrap();
    writer
        .push(row("vc", "vm-1", d.start() + 3600))
        .await
        .unwrap();
    writer.push_empty("vc", d.start() + 7200).await.unwrap();
    writer.commit().await.unwrap();
    for engine in [Engine::Rust, Engine::Sql] {
        aggregate_daily(&db.store, d, engine).await.unwrap();
        let rows = db.store.summaries(Grain::Daily, d.start()).await.unwrap();
        assert_eq!(
            (
                rows[0].figures.samples_present,
                rows[0].figures.total_samples
            ),
            (1, 2)
        );
        assert_eq!(rows[0].figures.avg_is_present, 0.5);
        assert_eq!(rows[0].figures.gold, 0.5);
    }
    let totals = db
        .store
        .totals(TotalsGrain::Snapshot, d.start(), d.end())
        .await
        .unwrap();
    assert_eq!(totals[1].vm_count, 0.0);
}

async fn hourly_totals_prorate_vms_created_within_the_hour(db: TestDb) {
    let d = day("2026-08-01");
    let end_of_hour_0 = d.start() + 3600;
    let mut young = row("vc", "vm-2", end_of_hour_0 + 300);
    young.creation_time = d.start() + 1800; // half of hour 0
    young.vcpu_count = 4;
    let old = row("vc", "vm-1", end_of_hour_0 + 300);
    // The only snapshot of the day but one after midnight stands for the last hour.
    let after_midnight = row("vc", "vm-1", d.end() + 60);
    import(&db.store, [old, young]).await;
    import(&db.store, [after_midnight]).await;

    let totals = hourly_totals(&db.store, d).await.unwrap();
    assert_eq!(totals.len(), 24);
    assert_eq!(totals[0].snapshot_time, end_of_hour_0 + 300);
    assert_eq!(totals[0].vm_count, 1.5);
    assert_eq!(totals[0].vcpu_count, 2.0 + 0.5 * 4.0);
    assert_eq!(totals[1].snapshot_time, d.end() + 60);
    assert_eq!(totals[23].vm_count, 1.0);
}

async fn cleanup_deletes_only_rows_past_their_retention(db: TestDb) {
    let first = day("2026-01-01");
    let inventory = Inventory::new(30, 1, first, 2, 9);
    import(&db.store, synthetic_rows(&inventory, first, 2)).await;
    for d in [first, first.next()] {
        aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();
    }
    let second = first.next();
    let deleted = db.store.delete_hourly_before(second.start()).await.unwrap();
    assert!(deleted > 0);
    let left = all_rows(&db.store).await;
    assert!(left.iter().all(|r| r.snapshot_time >= second.start()));
    assert!(!left.is_empty());
    assert!(
        db.store
            .snapshot_counts(first.start(), first.end())
            .await
            .unwrap()
            .is_empty()
    );
    db.store.delete_daily_before(second.start()).await.unwrap();
    assert!(
        db.store
            .summaries(Grain::Daily, first.start())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !db.store
            .summaries(Grain::Daily, second.start())
            .await
            .unwrap()
            .is_empty()
    );
    // Daily totals are the long-range history: retention keeps them.
    assert_eq!(
        db.store
            .totals(TotalsGrain::Daily, first.start(), first.end())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn backfill_rebuilds_the_same_totals(db: TestDb) {
    let first = day("2026-09-29");
    let inventory = Inventory::new(50, 2, first, 2, 4);
    import(&db.store, synthetic_rows(&inventory, first, 2)).await;
    for d in [first, first.next()] {
        aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();
    }
    aggregate_monthly(&db.store, first.month(), Engine::Rust)
        .await
        .unwrap();
    let read_all = || async {
        let mut all = Vec::new();
        for grain in [
            TotalsGrain::Snapshot,
            TotalsGrain::Daily,
            TotalsGrain::Monthly,
        ] {
            all.extend(db.store.totals(grain, i64::MIN, i64::MAX).await.unwrap());
        }
        all
    };
    let before = read_all().await;
    assert!(before.len() > 90);
    common::execute(&db.store, "DELETE FROM vcenter_totals").await;
    assert!(read_all().await.is_empty());
    let done = db.store.backfill_totals().await.unwrap();
    assert_eq!((done.vcenters, done.days, done.months), (2, 2, 1));
    assert_eq!(read_all().await, before);
    assert_eq!(db.store.latest_totals().await.unwrap().len(), 2);
}

/// A summary write refused at its last row (a VM twice) leaves the period's stored
/// summaries and totals as they were, though every row before it was written.
async fn a_summary_write_that_fails_half_way_keeps_what_was_stored(db: TestDb) {
    let first = day("2026-03-10");
    let inventory = Inventory::new(1_500, 2, first, 1, 5);
    import(&db.store, synthetic_rows(&inventory, first, 1)).await;
    aggregate_daily(&db.store, first, Engine::Rust)
        .await
        .unwrap();
    let stored = db
        .store
        .summaries(Grain::Daily, first.start())
        .await
        .unwrap();
    let totals = db
        .store
        .totals(TotalsGrain::Daily, first.start(), first.start() + 1)
        .await
        .unwrap();
    let mut rows = stored.clone();
    for row in &mut rows {
        row.figures.avg_vcpu_count += 1.0;
    }
    rows.push(rows[0].clone());
    db.store
        .replace_summaries(Grain::Daily, first.start(), &rows)
        .await
        .unwrap_err();
    assert_eq!(
        db.store
            .summaries(Grain::Daily, first.start())
            .await
            .unwrap(),
        stored
    );
    assert_eq!(
        db.store
            .totals(TotalsGrain::Daily, first.start(), first.start() + 1)
            .await
            .unwrap(),
        totals
    );
    // The store is usable afterwards: no connection was left inside a COPY or a statement.
    db.store
        .replace_summaries(Grain::Daily, first.start(), &stored)
        .await
        .unwrap();
}

/// A value SQLite holds in a column of another type (SQLite does not enforce column types)
/// is refused with the column's name, on the engine's scan and on the summaries' read-back.
#[tokio::test]
async fn a_stored_value_of_the_wrong_type_is_refused_naming_its_column() {
    let db = common::sqlite().await;
    let first = day("2026-03-10");
    let inventory = Inventory::new(10, 1, first, 1, 3);
    import(&db.store, synthetic_rows(&inventory, first, 1)).await;
    aggregate_daily(&db.store, first, Engine::Rust)
        .await
        .unwrap();
    let vctp::store::Store::Sqlite(pool) = &db.store else {
        unreachable!("common::sqlite() is SQLite")
    };
    sqlx::query("UPDATE vm_daily_summary SET samples_present = 'many'")
        .execute(pool)
        .await
        .unwrap();
    let error = db
        .store
        .summaries(Grain::Daily, first.start())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("samples_present"), "{error}");
    sqlx::query("UPDATE vm_hourly SET vcpu_count = 'four'")
        .execute(pool)
        .await
        .unwrap();
    let error = aggregate_daily(&db.store, first, Engine::Rust)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("vcpu_count"), "{error}");
}

/// A whole-file import holds SQLite's write lock until it commits: another writer waits for
/// it (settings' busy timeout) instead of failing, even one whose transaction read first.
#[tokio::test]
async fn a_writer_waits_for_an_import_holding_the_sqlite_write_lock() {
    let db = common::sqlite().await;
    let first = day("2026-03-10");
    let inventory = Inventory::new(10, 1, first, 1, 3);
    import(&db.store, synthetic_rows(&inventory, first, 1)).await;
    let other = vctp::store::Store::open(&db.url).await.unwrap();
    let t = inventory.snapshot_times(0, first)[0];
    let mut importing = db
        .store
        .snapshot_writer(TierMapping::default(), "import")
        .await
        .unwrap();
    importing.push(row("vc-import", "vm-1", t)).await.unwrap();
    let waiting = tokio::spawn(async move {
        let result = aggregate_daily(&other, first, Engine::Rust).await;
        (result.map(|_| ()).map_err(|e| e.to_string()), other)
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the other writer waits for the import"
    );
    importing.commit().await.unwrap();
    let (result, other) = waiting.await.unwrap();
    result.unwrap();
    assert!(
        !other
            .summary_periods(Grain::Daily)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A writer that waited its whole busy timeout for an import's write lock says so, and to
/// retry, instead of SQLite's bare "database is locked".
#[tokio::test]
async fn a_writer_that_gives_up_on_the_lock_says_another_writer_holds_it() {
    let db = common::sqlite().await;
    let first = day("2026-03-10");
    let inventory = Inventory::new(10, 1, first, 1, 3);
    import(&db.store, synthetic_rows(&inventory, first, 1)).await;
    let vctp::store::DatabaseUrl::Sqlite(path) = &db.url else {
        unreachable!("common::sqlite() is SQLite")
    };
    // The same database with a short busy timeout, so giving up takes a moment.
    let impatient = vctp::store::Store::Sqlite(
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(std::time::Duration::from_millis(200)),
            )
            .await
            .unwrap(),
    );
    let t = inventory.snapshot_times(0, first)[0];
    let mut importing = db
        .store
        .snapshot_writer(TierMapping::default(), "import")
        .await
        .unwrap();
    importing.push(row("vc-import", "vm-1", t)).await.unwrap();
    let error = aggregate_daily(&impatient, first, Engine::Rust)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("locked by another writer"), "{error}");
    assert!(error.contains("snapshot import"), "{error}");
    assert!(error.contains("retry"), "{error}");
    importing.commit().await.unwrap();
    aggregate_daily(&impatient, first, Engine::Rust)
        .await
        .unwrap();
}

/// Stores `vms` VMs of `vcenter` (captured from `host`) at each of `times`, with a run
/// record per snapshot, as the collector does.
async fn capture(db: &TestDb, vcenter: &str, host: &str, vms: usize, times: &[i64]) {
    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "collector")
        .await
        .unwrap();
    writer.record_host(vcenter, host).await.unwrap();
    for &t in times {
        for vm in 0..vms {
            writer
                .push(row(vcenter, &format!("vm-{vm}"), t))
                .await
                .unwrap();
        }
        // A new value at every snapshot: one attribute entry each.
        let tenant = attributes(&[("Tenant", &format!("t-{t}"))]);
        writer
            .push_attributes(vcenter, "vm-0", t, &tenant)
            .await
            .unwrap();
        writer
            .record_run(&SnapshotRun {
                vcenter: vcenter.into(),
                snapshot_time: t,
                started_at: t,
                finished_at: t + 1,
                success: true,
                row_count: vms as i64,
                error: String::new(),
                failure_kind: String::new(),
            })
            .await
            .unwrap();
    }
    writer.commit().await.unwrap();
}

/// How many rows each table holds under `vcenter`.
async fn rows_per_table(db: &TestDb, vcenter: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in [
        "vm_hourly",
        "snapshot_registry",
        "snapshot_runs",
        "vm_daily_summary",
        "vm_monthly_summary",
        "vcenter_totals",
        "vcenter_hosts",
        "vm_names",
        "vm_attributes",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE vcenter = $1");
        let n: i64 = match &db.store {
            vctp::store::Store::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(vcenter)
                .fetch_one(pool)
                .await
                .unwrap(),
            vctp::store::Store::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(vcenter)
                .fetch_one(pool)
                .await
                .unwrap(),
        };
        counts.push((table, n));
    }
    counts
}

async fn one_target_name_in_two_namespaces_keeps_two_keys_with_the_host_shown_for_each(db: TestDb) {
    let d = day("2026-05-04");
    let times = [d.start() + 3600, d.start() + 7200];
    // Two VCenterTargets named vc01, in namespaces a and b, at the same vCenter host.
    capture(&db, "a/vc01", "vc01.example.com", 3, &times).await;
    capture(&db, "b/vc01", "vc01.example.com", 5, &times).await;
    aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();

    let latest = db.store.latest_totals().await.unwrap();
    let latest: Vec<(&str, f64)> = latest
        .iter()
        .map(|t| (t.vcenter.as_str(), t.vm_count))
        .collect();
    assert_eq!(latest, [("a/vc01", 3.0), ("b/vc01", 5.0)]);
    let daily = db
        .store
        .totals(TotalsGrain::Daily, d.start(), d.end())
        .await
        .unwrap();
    let daily: Vec<(&str, i64)> = daily
        .iter()
        .map(|t| (t.vcenter.as_str(), t.total_samples))
        .collect();
    assert_eq!(daily, [("a/vc01", 2), ("b/vc01", 2)]);
    let hosts = db.store.vcenter_hosts().await.unwrap();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        [
            ("a/vc01".to_string(), "vc01.example.com".to_string()),
            ("b/vc01".to_string(), "vc01.example.com".to_string())
        ]
    );
}

async fn renaming_a_vcenter_moves_every_row_in_one_transaction(db: TestDb) {
    let d = day("2026-05-04");
    capture(&db, "vc01", "vc01.example.com", 4, &[d.start() + 3600]).await;
    aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();
    aggregate_monthly(&db.store, d.month(), Engine::Rust)
        .await
        .unwrap();
    let before = rows_per_table(&db, "vc01").await;
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");
    let totals_before = db.store.latest_totals().await.unwrap();
    assert!(!db.store.has_vcenter("a/vc01").await.unwrap());

    let renamed = db.store.rename_vcenter("vc01", "a/vc01").await.unwrap();
    assert_eq!(
        renamed,
        Renamed {
            rows: before.iter().map(|(_, n)| *n as u64).sum()
        }
    );
    assert_eq!(rows_per_table(&db, "a/vc01").await, before);
    assert!(
        rows_per_table(&db, "vc01")
            .await
            .iter()
            .all(|(_, n)| *n == 0)
    );
    assert!(!db.store.has_vcenter("vc01").await.unwrap());
    assert!(db.store.has_vcenter("a/vc01").await.unwrap());
    let mut totals_after = db.store.latest_totals().await.unwrap();
    for t in &mut totals_after {
        t.vcenter = t.vcenter.replace("a/vc01", "vc01");
    }
    assert_eq!(totals_after, totals_before);
}

async fn renaming_onto_a_key_that_holds_data_or_from_an_empty_one_changes_nothing(db: TestDb) {
    let d = day("2026-05-04");
    capture(&db, "vc01", "vc01.example.com", 4, &[d.start() + 3600]).await;
    // Only a run record: a failed first snapshot of a/vc01 is data under that key too.
    db.store
        .record_run(&SnapshotRun {
            vcenter: "a/vc01".into(),
            snapshot_time: d.start() + 7200,
            started_at: d.start() + 7200,
            finished_at: d.start() + 7201,
            success: false,
            row_count: 0,
            error: "connect refused".into(),
            failure_kind: "connect".into(),
        })
        .await
        .unwrap();
    let (legacy, target) = (
        rows_per_table(&db, "vc01").await,
        rows_per_table(&db, "a/vc01").await,
    );

    let err = db.store.rename_vcenter("vc01", "a/vc01").await.unwrap_err();
    assert!(matches!(err, RenameError::TargetExists { .. }), "{err}");
    assert!(err.is_bad_input());
    assert_eq!(
        err.to_string(),
        "cannot rename vCenter vc01 to a/vc01: rows are already stored under a/vc01 (snapshot_runs); rename those first or pick another name"
    );
    let err = db.store.rename_vcenter("vc02", "b/vc02").await.unwrap_err();
    assert!(matches!(err, RenameError::NothingStored { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "cannot rename vCenter vc02 to b/vc02: nothing is stored under vc02"
    );
    let err = db.store.rename_vcenter("vc01", " ").await.unwrap_err();
    assert!(matches!(err, RenameError::InvalidName { .. }), "{err}");
    let err = db.store.rename_vcenter("vc01", "vc01").await.unwrap_err();
    assert!(matches!(err, RenameError::InvalidName { .. }), "{err}");

    assert_eq!(rows_per_table(&db, "vc01").await, legacy);
    assert_eq!(rows_per_table(&db, "a/vc01").await, target);
}

/// PostgreSQL reads by COPY, which takes the key as a literal in the statement.
async fn keys_with_quotes_and_backslashes_are_read_and_aggregated_like_any_other(db: TestDb) {
    let d = day("2026-09-01");
    let keys = [r"o'brien\vc", r"x\'; DROP TABLE vm_hourly; --", r"\\'"];
    for (i, key) in keys.iter().enumerate() {
        let mut rows: Vec<_> = (0..3)
            .map(|h| row(key, "vm-1", d.start() + 3600 * (h + 1)))
            .collect();
        rows.insert(2, row(key, &format!("vm-'\\{i}"), d.start() + 7200));
        import(&db.store, rows).await;
    }
    // A key that differs only by what escaping would eat must not be read with them.
    import(&db.store, [row("obrienvc", "vm-1", d.start() + 3600)]).await;

    let rust = {
        aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();
        db.store.summaries(Grain::Daily, d.start()).await.unwrap()
    };
    aggregate_daily(&db.store, d, Engine::Sql).await.unwrap();
    let sql = db.store.summaries(Grain::Daily, d.start()).await.unwrap();
    assert_summaries_agree(&rust, &sql);
    for key in keys {
        let mine: Vec<_> = rust.iter().filter(|s| s.vcenter == key).collect();
        assert_eq!(mine.len(), 2, "{key}: {rust:#?}");
        assert_eq!(mine[0].figures.samples_present, 1, "{key}");
        assert_eq!(mine[1].figures.samples_present, 3, "{key}");
        assert_eq!(mine[1].placement.name, "name-vm-1", "{key}");
    }
    aggregate_monthly(&db.store, d.month(), Engine::Rust)
        .await
        .unwrap();
    let monthly = db
        .store
        .summaries(Grain::Monthly, d.month().start())
        .await
        .unwrap();
    assert_summaries_agree(&monthly, &sql);
    let totals = hourly_totals(&db.store, d).await.unwrap();
    for key in keys {
        let first = totals.iter().find(|t| t.vcenter == key).unwrap();
        assert_eq!(first.vm_count, 1.0, "{key}");
    }
}

fn attributes(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Stores one capture of `vcenter` at `t`: each VM's row and its attributes, as the
/// collector does, committed together.
async fn capture_attributes(db: &TestDb, vcenter: &str, t: i64, vms: &[(&str, Attributes)]) {
    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "collector")
        .await
        .unwrap();
    for (vm, attributes) in vms {
        writer
            .push_attributes(vcenter, vm, t, attributes)
            .await
            .unwrap();
        writer.push(row(vcenter, vm, t)).await.unwrap();
    }
    writer.commit().await.unwrap();
}

/// Every stored entry as `(vm_id, valid_from, attributes as stored)`, by VM and time.
async fn stored_attribute_rows(db: &TestDb) -> Vec<(String, i64, String)> {
    const SQL: &str = "SELECT vm_id, valid_from, attributes FROM vm_attributes ORDER BY vcenter, vm_id, valid_from";
    match &db.store {
        vctp::store::Store::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await.unwrap(),
        vctp::store::Store::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await.unwrap(),
    }
}

fn entry(valid_from: i64, pairs: &[(&str, &str)]) -> AttributeEntry {
    AttributeEntry {
        valid_from,
        attributes: attributes(pairs),
    }
}

async fn attributes_are_stored_only_when_they_change(db: TestDb) {
    let t1 = day("2026-06-01").start() + 3600;
    let (t2, t3) = (t1 + 3600, t1 + 7200);
    let acme = attributes(&[("Tenant", "acme"), ("CostCenter", "4711")]);
    let beta = attributes(&[("Tenant", "beta"), ("CostCenter", "4711")]);
    let none = Attributes::new();
    capture_attributes(
        &db,
        "vc",
        t1,
        &[
            ("vm-a", acme.clone()),
            ("vm-b", none.clone()),
            ("vm-c", attributes(&[("Owner", "ops")])),
        ],
    )
    .await;
    // Unchanged: nothing. Emptied: an empty entry.
    capture_attributes(
        &db,
        "vc",
        t2,
        &[
            ("vm-a", acme.clone()),
            ("vm-b", none.clone()),
            ("vm-c", none.clone()),
        ],
    )
    .await;
    // Changed: a new entry. Still empty: nothing.
    capture_attributes(
        &db,
        "vc",
        t3,
        &[("vm-a", beta), ("vm-b", none.clone()), ("vm-c", none)],
    )
    .await;

    let json = |text: &str| text.to_string();
    assert_eq!(
        stored_attribute_rows(&db).await,
        [
            (
                "vm-a".into(),
                t1,
                json(r#"{"CostCenter":"4711","Tenant":"acme"}"#)
            ),
            (
                "vm-a".into(),
                t3,
                json(r#"{"CostCenter":"4711","Tenant":"beta"}"#)
            ),
            ("vm-c".into(), t1, json(r#"{"Owner":"ops"}"#)),
            ("vm-c".into(), t2, json("{}")),
        ],
        "canonical JSON, keys sorted; a VM never seen with attributes has no entry"
    );

    // A capture that fails before its commit leaves no attribute entry behind.
    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "collector")
        .await
        .unwrap();
    let t4 = t3 + 3600;
    writer
        .push_attributes("vc", "vm-b", t4, &attributes(&[("Tenant", "gamma")]))
        .await
        .unwrap();
    writer.push(row("vc", "vm-b", t4)).await.unwrap();
    writer.push(row("vc", "vm-b", t4)).await.unwrap_err();
    drop(writer);
    assert_eq!(stored_attribute_rows(&db).await.len(), 4);
}

async fn the_attributes_of_a_period_are_its_entries_and_the_latest_before_it(db: TestDb) {
    let (d1, d2, d3, d4) = (
        day("2026-06-01"),
        day("2026-06-02"),
        day("2026-06-03"),
        day("2026-06-04"),
    );
    let tenant = |name: &str| attributes(&[("Tenant", name)]);
    for (t, name) in [
        (d1.start() + 3600, "one"),
        (d2.start() + 3600, "two"),
        (d3.start(), "three"),
        (d3.start() + 7200, "three-b"),
        (d4.start() + 3600, "four"),
    ] {
        capture_attributes(&db, "vc", t, &[("vm-1", tenant(name))]).await;
    }
    // Before the period, only this VM's entry: it keeps it as its latest.
    capture_attributes(&db, "vc", d1.start(), &[("vm-2", tenant("old"))]).await;

    let history: AttributeHistory = db
        .store
        .vm_attributes(d3.start(), d4.start())
        .await
        .unwrap();
    assert_eq!(
        history.entries("vc", "vm-1"),
        [
            entry(d2.start() + 3600, &[("Tenant", "two")]),
            entry(d3.start(), &[("Tenant", "three")]),
            entry(d3.start() + 7200, &[("Tenant", "three-b")]),
        ],
        "the latest before the period and those within; none from its end on"
    );
    assert_eq!(
        history.entries("vc", "vm-2"),
        [entry(d1.start(), &[("Tenant", "old")])]
    );
    assert_eq!(
        history
            .as_of("vc", "vm-1", d3.end())
            .get("Tenant")
            .map(String::as_str),
        Some("three-b"),
        "a day's attributes are the last ones seen that day"
    );
    assert_eq!(
        history
            .as_of("vc", "vm-1", d3.start())
            .get("Tenant")
            .map(String::as_str),
        Some("two")
    );
    assert!(
        db.store
            .vm_attributes(d1.start(), d1.start())
            .await
            .unwrap()
            .entries("vc", "vm-1")
            .is_empty()
    );
}

async fn retention_drops_attributes_superseded_before_the_daily_cutoff(db: TestDb) {
    let (d1, d2, d3) = (day("2026-06-01"), day("2026-06-02"), day("2026-06-03"));
    let tenant = |name: &str| attributes(&[("Tenant", name)]);
    for (t, name) in [
        (d1.start() + 3600, "one"),
        (d1.start() + 7200, "one-b"),
        (d2.start() + 3600, "two"),
        (d3.start() + 3600, "three"),
    ] {
        capture_attributes(&db, "vc", t, &[("vm-1", tenant(name))]).await;
    }
    capture_attributes(&db, "vc", d1.start(), &[("vm-2", tenant("only"))]).await;

    db.store.delete_daily_before(d3.start()).await.unwrap();
    let kept: Vec<(String, i64)> = stored_attribute_rows(&db)
        .await
        .into_iter()
        .map(|(vm, t, _)| (vm, t))
        .collect();
    assert_eq!(
        kept,
        [
            ("vm-1".to_string(), d2.start() + 3600),
            ("vm-1".to_string(), d3.start() + 3600),
            ("vm-2".to_string(), d1.start()),
        ],
        "the latest before the cutoff stays, as do the later ones and a VM's only entry"
    );
}

fn postgres_pool(db: &TestDb) -> sqlx::PgPool {
    match &db.store {
        vctp::store::Store::Postgres(pool) => pool.clone(),
        vctp::store::Store::Sqlite(_) => panic!("a PostgreSQL test database"),
    }
}

async fn execute(db: &TestDb, sql: &'static str) {
    sqlx::query(sql).execute(&postgres_pool(db)).await.unwrap();
}

/// Rows go in by COPY on PostgreSQL: one the server refuses (a NUL byte in a text) fails the
/// whole write, and neither the replaced snapshot nor the new one changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_snapshot_write_refused_by_the_server_stores_nothing() {
    let db = common::postgres().await;
    let t0 = day("2026-03-01").start();
    import(&db.store, [row("vc", "vm-1", t0), row("vc", "vm-2", t0)]).await;
    let before = all_rows(&db.store).await;

    let mut writer = db
        .store
        .snapshot_writer(TierMapping::default(), "import")
        .await
        .unwrap();
    writer.push(row("vc", "vm-9", t0)).await.unwrap();
    writer.push(row("vc", "vm-5", t0 + 60)).await.unwrap();
    writer.push(row("vc", "vm-\0", t0 + 60)).await.unwrap();
    let err = match writer.push(row("vc", "vm-6", t0 + 120)).await {
        Err(err) => {
            drop(writer);
            err
        }
        Ok(()) => writer.commit().await.unwrap_err(),
    };
    assert!(err.to_string().contains("insert hourly rows"), "{err}");

    assert_eq!(all_rows(&db.store).await, before);
    assert_eq!(db.store.snapshot_times(0, i64::MAX).await.unwrap().len(), 1);
    // The pool's connections still work.
    import(&db.store, [row("vc", "vm-3", t0 + 60)]).await;
    assert_eq!(all_rows(&db.store).await.len(), 3);
}

/// COPY carries no types: a column whose type or nullability is not what the engine reads
/// is refused by name rather than misread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_column_of_another_type_or_a_null_is_refused_by_name() {
    let db = common::postgres().await;
    let d = day("2026-03-02");
    import(&db.store, [row("vc", "vm-1", d.start() + 60)]).await;

    execute(
        &db,
        "ALTER TABLE vm_hourly ALTER COLUMN vcpu_count TYPE integer",
    )
    .await;
    let err = aggregate_daily(&db.store, d, Engine::Rust)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column vcpu_count holds a 4-byte value, where bigint (8 bytes)"),
        "{err}"
    );

    execute(
        &db,
        "ALTER TABLE vm_hourly ALTER COLUMN vcpu_count TYPE bigint",
    )
    .await;
    execute(
        &db,
        "ALTER TABLE vm_hourly ALTER COLUMN ram_gb DROP NOT NULL",
    )
    .await;
    execute(&db, "UPDATE vm_hourly SET ram_gb = NULL").await;
    let err = aggregate_daily(&db.store, d, Engine::Rust)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("column ram_gb is NULL"), "{err}");
    assert!(
        db.store
            .summaries(Grain::Daily, d.start())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn postgres_import_sqlite_copies_the_attribute_history() {
    let source = common::sqlite().await;
    let t = day("2026-06-01").start() + 3600;
    capture_attributes(
        &source,
        "vc",
        t,
        &[("vm-1", attributes(&[("Tenant", "acme & \"co\"")]))],
    )
    .await;
    let target = common::postgres().await;
    let vctp::store::DatabaseUrl::Sqlite(path) = &source.url else {
        panic!("a SQLite source")
    };
    source.store.close().await;
    target.store.import_sqlite(path, |_, _| {}).await.unwrap();
    assert_eq!(
        stored_attribute_rows(&target).await,
        [(
            "vm-1".to_string(),
            t,
            r#"{"Tenant":"acme & \"co\""}"#.to_string()
        )]
    );
}

/// Stores one VM's day: a row per `(hour, is_template, srm_placeholder, powered_on)`.
async fn import_flagged(store: &Store, d: Day, samples: &[(i64, bool, bool, bool)]) {
    let rows = samples
        .iter()
        .map(|&(hour, template, placeholder, on)| HourlyRow {
            is_template: template,
            srm_placeholder: placeholder,
            powered_on: on,
            ..row("vc", "vm-1", d.start() + 3600 * hour)
        });
    import(store, rows).await;
}

/// `(samples_present, powered on, templates, placeholders)` of the one VM of a period.
async fn classes_of(store: &Store, grain: Grain, period_start: i64) -> (i64, [i64; 3]) {
    let rows = store.summaries(grain, period_start).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let f = &rows[0].figures;
    (f.samples_present, f.sample_classes())
}

async fn both_engines_class_samples_template_then_placeholder_then_powered_on(db: TestDb) {
    let (d1, d2) = (day("2026-10-01"), day("2026-10-02"));
    import_flagged(
        &db.store,
        d1,
        &[
            (0, true, false, false), // template
            (1, true, true, true),   // template: it wins over placeholder and power
            (2, false, true, false), // placeholder
            (3, false, true, true),  // placeholder: it wins over power
            (4, false, false, true), // powered on ×4
            (5, false, false, true),
            (6, false, false, true),
            (7, false, false, true),
            (8, false, false, false), // powered off ×2
            (9, false, false, false),
        ],
    )
    .await;
    import_flagged(
        &db.store,
        d2,
        &[
            (0, false, false, true),  // powered on
            (1, false, false, false), // powered off
            (2, false, true, false),  // placeholder
        ],
    )
    .await;
    for engine in [Engine::Rust, Engine::Sql] {
        aggregate_daily(&db.store, d1, engine).await.unwrap();
        aggregate_daily(&db.store, d2, engine).await.unwrap();
        // Day 1: 10 present = 4 on + 2 templates + 2 placeholders (+ 2 off).
        let first = classes_of(&db.store, Grain::Daily, d1.start()).await;
        assert_eq!(first, (10, [4, 2, 2]), "{engine:?}");
        // Day 2: 3 present = 1 on + 0 templates + 1 placeholder (+ 1 off).
        let second = classes_of(&db.store, Grain::Daily, d2.start()).await;
        assert_eq!(second, (3, [1, 0, 1]), "{engine:?}");
        aggregate_monthly(&db.store, d1.month(), engine)
            .await
            .unwrap();
        // The month: 13 present = 5 on + 2 templates + 3 placeholders (+ 3 off).
        let month = classes_of(&db.store, Grain::Monthly, d1.month().start()).await;
        assert_eq!(month, (13, [5, 2, 3]), "{engine:?}");
    }
}

/// Runs scripts of several statements, in order, on one connection of the test database.
async fn run_scripts(store: &Store, scripts: [&'static str; 2]) {
    match store {
        Store::Sqlite(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            for sql in scripts {
                sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
            }
        }
        Store::Postgres(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            for sql in scripts {
                sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
            }
        }
    }
}

async fn migration_0008_takes_earlier_summaries_as_powered_on_whenever_present(db: TestDb) {
    let migration = match &db.store {
        Store::Sqlite(_) => include_str!("../migrations/sqlite/0008_sample_classes.sql"),
        Store::Postgres(_) => include_str!("../migrations/postgres/0008_sample_classes.sql"),
    };
    // Back to the summary tables as migration 0007 left them, with one row in each; then 0008.
    let before = "ALTER TABLE vm_daily_summary DROP COLUMN samples_powered_on;
        ALTER TABLE vm_daily_summary DROP COLUMN samples_template;
        ALTER TABLE vm_daily_summary DROP COLUMN samples_placeholder;
        ALTER TABLE vm_monthly_summary DROP COLUMN samples_powered_on;
        ALTER TABLE vm_monthly_summary DROP COLUMN samples_template;
        ALTER TABLE vm_monthly_summary DROP COLUMN samples_placeholder;
        INSERT INTO vm_daily_summary VALUES (1790812800, 'vc', 'vm-1', 'u', 'n', 'p', 'dc', 'c', 'f',
            7, 24, 0.25, 1, 1, 1, 0, 0, 0, 100, 0, 0, 0, 0.25, 0, 0, 1790812800);
        INSERT INTO vm_monthly_summary VALUES (1790812800, 'vc', 'vm-1', 'u', 'n', 'p', 'dc', 'c', 'f',
            31, 720, 0.25, 1, 1, 1, 0, 0, 0, 100, 0, 0, 0, 0.25, 0, 0, 1790812800);";
    run_scripts(&db.store, [before, migration]).await;
    let daily = classes_of(&db.store, Grain::Daily, 1_790_812_800).await;
    assert_eq!(daily, (7, [7, 0, 0]));
    let monthly = classes_of(&db.store, Grain::Monthly, 1_790_812_800).await;
    assert_eq!(monthly, (31, [31, 0, 0]));
}

/// A daily summary of `vm_id` whose name and template count tell the rows apart.
fn stored_day(vcenter: &str, vm_id: &str, name: &str, templates: i64) -> VmSummary {
    VmSummary {
        vcenter: vcenter.to_string(),
        vm_id: vm_id.to_string(),
        placement: Placement {
            name: name.to_string(),
            resource_pool: format!("pool-{name}"),
            folder: format!("/DC0/vm/{name}"),
            ..Placement::default()
        },
        figures: Figures {
            samples_present: 24,
            total_samples: 24,
            avg_ram_gb: 0.5,
            samples_template: templates,
            ..Figures::default()
        },
    }
}

async fn scan_daily_rows_streams_the_days_in_range_in_key_order(db: TestDb) {
    let (d1, d2, d3) = (day("2026-11-01"), day("2026-11-02"), day("2026-11-03"));
    // Written out of key order; d3 is past the end of the range read.
    let days = [
        (d2, vec![stored_day("vc-a", "vm-2", "d2-a2", 4)]),
        (
            d1,
            vec![
                stored_day("vc-b", "vm-1", "d1-b1", 3),
                stored_day("vc-a", "vm-2", "d1-a2", 2),
                stored_day("vc-a", "vm-1", "d1-a1", 1),
            ],
        ),
        (d3, vec![stored_day("vc-a", "vm-1", "d3-a1", 5)]),
    ];
    for (d, rows) in &days {
        db.store
            .replace_summaries(Grain::Daily, d.start(), rows)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let count = db
        .store
        .scan_daily_rows(d1.start(), d3.start(), |period, vcenter, vm_id, p, f| {
            seen.push((
                period,
                vcenter.to_string(),
                vm_id.to_string(),
                p.name.to_string(),
                p.resource_pool.to_string(),
                p.folder.to_string(),
                f.samples_template,
                f.avg_ram_gb,
            ));
        })
        .await
        .unwrap();
    let expected = [
        (d1, "vc-a", "vm-1", "d1-a1", 1),
        (d1, "vc-a", "vm-2", "d1-a2", 2),
        (d1, "vc-b", "vm-1", "d1-b1", 3),
        (d2, "vc-a", "vm-2", "d2-a2", 4),
    ]
    .map(|(d, vcenter, vm_id, name, templates)| {
        (
            d.start(),
            vcenter.to_string(),
            vm_id.to_string(),
            name.to_string(),
            format!("pool-{name}"),
            format!("/DC0/vm/{name}"),
            templates,
            0.5,
        )
    });
    assert_eq!(seen, expected);
    assert_eq!(count, 4);
}
