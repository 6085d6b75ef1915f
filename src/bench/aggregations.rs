//! `vctp bench aggregations`: synthetic rows with churn are loaded, then each phase is run
//! `--runs` times and timed: a bare scan of the day's rows, daily with both engines, monthly
//! with both engines, the physical reference (the database's own loop over the day's rows), and
//! the month's costs by tenant.

use super::{peak_rss_mb, reset_peak_rss, timed};
use crate::aggregate::engine::{aggregate_daily, aggregate_monthly};
use crate::aggregate::{Day, Engine};
use crate::cli::BenchArgs;
use crate::cost::{GroupBy, Period as CostPeriod};
use crate::inventory::TierMapping;
use crate::jobs::costs;
use crate::store::grain::Grain;
use crate::store::{DatabaseUrl, Store};
use crate::synth::Inventory;
use anyhow::{Context, Result};
use std::time::Instant;

pub async fn run(args: &BenchArgs, url: Option<DatabaseUrl>) -> Result<()> {
    anyhow::ensure!(
        (1..=31).contains(&args.days),
        "--days must be between 1 and 31 (the days of one month), not {}",
        args.days
    );
    anyhow::ensure!(args.vms > 0, "--vms must be at least 1");
    // Without --database-url the benchmark uses a scratch SQLite file, removed at the end.
    let scratch = tempfile::tempdir().context("failed to create a scratch directory")?;
    let url = url.unwrap_or_else(|| DatabaseUrl::Sqlite(scratch.path().join("bench.sqlite3")));
    let store = Store::connect(&url).await?;
    anyhow::ensure!(
        store.snapshot_counts(i64::MIN, i64::MAX).await?.is_empty()
            && store.summary_periods(Grain::Daily).await?.is_empty(),
        "{url} already holds data; the benchmark needs an empty database"
    );

    let first = Day::parse("2026-01-01")?;
    let month = first.month();
    let inventory = Inventory::new(args.vms, args.vcenters, first, args.days, 42);
    let mapping = TierMapping::default();
    let mut bench_day = first;
    for _ in 1..args.days {
        bench_day = bench_day.next();
    }
    println!(
        "vctp bench aggregations: {} VMs over {} vCenters, {} days, {} runs, database {url}",
        args.vms, args.vcenters, args.days, args.runs
    );

    // Load: daily summaries of the days before the benchmark day, hourly rows of that day.
    reset_peak_rss();
    let started = Instant::now();
    let mut day = first;
    while day < bench_day {
        let summaries = inventory.daily_summaries(day, &mapping);
        store
            .replace_summaries(Grain::Daily, day.start(), &summaries)
            .await?;
        day = day.next();
    }
    let mut writer = store.snapshot_writer(mapping.clone(), "import").await?;
    let mut hourly_rows = 0u64;
    for v in 0..inventory.vcenters().len() {
        for t in inventory.snapshot_times(v, bench_day) {
            for row in inventory.rows_at(v, t) {
                writer.push(row).await?;
                hourly_rows += 1;
            }
        }
    }
    writer.commit().await?;
    println!(
        "{:<14} {:>10} rows  {:.3} s (hourly rows of {bench_day}, daily summaries of {} earlier days)  peak RSS {:.1} MB",
        "load",
        hourly_rows,
        started.elapsed().as_secs_f64(),
        args.days - 1,
        peak_rss_mb()
    );

    let counts = store
        .snapshot_counts(bench_day.start(), bench_day.end())
        .await?;
    let scan = timed("bare scan", "rows", args.runs, || async {
        let mut rows = 0;
        for (vcenter, _) in &counts {
            rows += store
                .bare_scan(vcenter, bench_day.start(), bench_day.end())
                .await?;
        }
        Ok(rows)
    })
    .await?;
    // The physical reference: SQLite's own GROUP BY over the day, or PostgreSQL's binary
    // COPY of the day's rows (see `Store::reference_scan`).
    let (reference_name, reference_unit) = match store {
        Store::Sqlite(_) => ("reference", "VMs"),
        Store::Postgres(_) => ("COPY reference", "bytes"),
    };
    let reference = timed(reference_name, reference_unit, args.runs, || async {
        Ok(store
            .reference_scan(bench_day.start(), bench_day.end())
            .await?)
    })
    .await?;
    let daily = |engine| {
        let store = &store;
        move || async move { Ok(aggregate_daily(store, bench_day, engine).await?.rows) }
    };
    let daily_rust = timed("daily rust", "rows", args.runs, daily(Engine::Rust)).await?;
    let daily_sql = timed("daily sql", "rows", args.runs, daily(Engine::Sql)).await?;
    let monthly = |engine| {
        let store = &store;
        move || async move { Ok(aggregate_monthly(store, month, engine).await?.rows) }
    };
    let monthly_rust = timed("monthly rust", "rows", args.runs, monthly(Engine::Rust)).await?;
    let monthly_sql = timed("monthly sql", "rows", args.runs, monthly(Engine::Sql)).await?;
    // Money: the month's daily summaries priced with the sample cards and rules of
    // config/costs.yml, summed by tenant (what the finance page and `vctp costs` ask).
    let pricing = crate::config::sample_pricing()?;
    let costs = timed("monthly costs", "charges", args.runs, || async {
        let report =
            costs::report(&store, &pricing, CostPeriod::Month(month), GroupBy::Tenant).await?;
        Ok(report.totals.iter().map(|t| t.charges as u64).sum())
    })
    .await?;

    println!(
        "daily rust / {reference_name} = {:.2}x",
        daily_rust.median() / reference.median()
    );
    println!(
        "daily rust / bare scan = {:.2}x; sql / rust: daily {:.1}x, monthly {:.1}x; overall peak RSS {:.1} MB",
        daily_rust.median() / scan.median(),
        daily_sql.median() / daily_rust.median(),
        monthly_sql.median() / monthly_rust.median(),
        [
            &scan,
            &daily_rust,
            &daily_sql,
            &monthly_rust,
            &monthly_sql,
            &costs
        ]
        .iter()
        .map(|p| p.peak_rss_mb)
        .fold(0.0, f64::max)
    );
    store.close().await;
    Ok(())
}
