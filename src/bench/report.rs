//! `vctp bench report`: the daily report of a synthetic day of `--vms` VM summaries, phase
//! by phase: the workbook alone (pure: rows → XLSX bytes), and the whole job (summaries and
//! totals read from the database, XLSX and CSV built, written with their sidecars to object
//! storage, registered).

use super::timed;
use crate::aggregate::{Day, Engine};
use crate::cli::BenchReportArgs;
use crate::cost::Pricing;
use crate::inventory::TierMapping;
use crate::jobs::Stores;
use crate::jobs::report::{self as report_job, Period};
use crate::objstore::Objects;
use crate::report::{self, Costs, Cover, PivotSpec};
use crate::store::grain::{Grain, TotalsGrain};
use crate::store::{DatabaseUrl, Store};
use crate::synth::Inventory;
use anyhow::{Context, Result};

pub async fn run(args: &BenchReportArgs, url: Option<DatabaseUrl>) -> Result<()> {
    anyhow::ensure!(args.vms > 0, "--vms must be at least 1");
    let scratch = tempfile::tempdir().context("failed to create a scratch directory")?;
    let url = url.unwrap_or_else(|| DatabaseUrl::Sqlite(scratch.path().join("bench.sqlite3")));
    let reports_url = args
        .reports_url
        .clone()
        .unwrap_or_else(|| scratch.path().join("reports").display().to_string());
    let store = Store::connect(&url).await?;
    let objects = Objects::from_url(&reports_url, &Default::default())?;
    let day = Day::parse("2026-01-01")?;
    let summaries = Inventory::new(args.vms, args.vcenters, day, 1, 42)
        .daily_summaries(day, &TierMapping::default());
    store
        .replace_summaries(Grain::Daily, day.start(), &summaries)
        .await?;
    let totals = store
        .totals(TotalsGrain::Daily, day.start(), day.end())
        .await?;
    println!(
        "vctp bench report: daily report of {} VM rows over {} vCenters, database {url}, objects {}",
        summaries.len(),
        args.vcenters,
        objects.url()
    );
    let pivots = PivotSpec::defaults();
    let cover = Cover {
        title: "vctp bench".into(),
        period: day.to_string(),
        generated_at: 0,
        engine: Some(Engine::Rust),
        scope: "all".into(),
        hosts: Vec::new(),
    };
    let build = timed("build xlsx", "rows", args.runs, || async {
        report::daily_workbook(&cover, &summaries, &totals, &pivots, Costs::Unpriced)?;
        Ok(summaries.len() as u64)
    })
    .await?;
    let stores = Stores {
        store: &store,
        objects: &objects,
        pivots: &pivots,
        pricing: &Pricing::default(),
    };
    let job = timed("read+build+put", "rows", args.runs, || async {
        let written =
            report_job::generate(&stores, Period::Day(day), None, Some(Engine::Rust)).await?;
        anyhow::ensure!(written.len() == 2, "expected the XLSX and the CSV");
        Ok(summaries.len() as u64)
    })
    .await?;
    println!(
        "{}",
        serde_json::json!({
            "vms": summaries.len(),
            "build_seconds": build.median(),
            "build_peak_rss_mb": build.peak_rss_mb,
            "job_seconds": job.median(),
            "job_peak_rss_mb": job.peak_rss_mb,
            "objects": objects.url(),
        })
    );
    store.close().await;
    Ok(())
}
