//! Runs the arithmetic over the store. The `rust` engine streams the period's rows once
//! (only the numeric columns), then reads identity and placement only for each VM's latest
//! sample; the `sql` engine does the same in one `INSERT … SELECT`. Either way the period is
//! replaced in one transaction, so a re-run is idempotent and a failure changes nothing.
//! The `*_recorded` entry points also record each attempt in `aggregation_runs`.

use super::daily::DailyAccumulator;
use super::hourly::{HOUR, HourTotals, snapshot_for_hour};
use super::monthly::MonthlyAccumulator;
use super::{Day, Month, Placement, PlacementRef, VmSummary};
use crate::store::{self, Store, grain::Grain, grain::TotalsGrain};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which aggregation core computes the summaries; both give the same numbers.
///
/// The one engine type: the CLI's `--engine`, the settings' `scheduled_aggregation_engine`
/// (where vCTP's `go` names the streaming core) and an `AggregationJob`'s `spec.engine`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Stream the rows once and aggregate in memory.
    #[default]
    #[serde(alias = "go")]
    Rust,
    /// GROUP BY inside the database.
    Sql,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no snapshots are registered for {0}; import or collect hourly snapshots first (any stored summary of that day is kept)"
    )]
    NoSnapshots(Day),
    #[error(
        "no daily summaries exist for {0}; run `vctp aggregate daily` for its days first (any stored summary of that month is kept)"
    )]
    NoDailySummaries(Month),
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl Error {
    /// A stable short name, for exit codes, metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NoSnapshots(_) => "NoSnapshots",
            Error::NoDailySummaries(_) => "NoDailySummaries",
            Error::Store(e) => e.reason(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What one aggregation run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Summary rows written.
    pub rows: u64,
    pub vcenters: usize,
}

/// Computes and stores the daily summaries of `day`, replacing any stored ones.
pub async fn aggregate_daily(store: &Store, day: Day, engine: Engine) -> Result<Outcome> {
    let counts = store.snapshot_counts(day.start(), day.end()).await?;
    if counts.is_empty() {
        return Err(Error::NoSnapshots(day));
    }
    let rows = match engine {
        Engine::Rust => {
            let summaries = summarize_stored_day(store, day, &counts).await?;
            store
                .replace_summaries(Grain::Daily, day.start(), &summaries)
                .await?;
            summaries.len() as u64
        }
        Engine::Sql => {
            store
                .aggregate_in_database(Grain::Daily, day.start(), day.end())
                .await?
        }
    };
    Ok(Outcome {
        rows,
        vcenters: counts.len(),
    })
}

/// Computes and stores the monthly summaries of `month` from its daily summaries.
pub async fn aggregate_monthly(store: &Store, month: Month, engine: Engine) -> Result<Outcome> {
    // Checked first: an empty result would otherwise replace a stored month with nothing.
    if !store
        .has_summaries(Grain::Daily, month.start(), month.end())
        .await?
    {
        return Err(Error::NoDailySummaries(month));
    }
    let outcome = match engine {
        Engine::Rust => {
            let summaries = summarize_stored_month(store, month).await?;
            store
                .replace_summaries(Grain::Monthly, month.start(), &summaries)
                .await?;
            let vcenters = summaries.chunk_by(|a, b| a.vcenter == b.vcenter).count();
            Outcome {
                rows: summaries.len() as u64,
                vcenters,
            }
        }
        Engine::Sql => {
            let rows = store
                .aggregate_in_database(Grain::Monthly, month.start(), month.end())
                .await?;
            let vcenters = store
                .totals(TotalsGrain::Monthly, month.start(), month.start() + 1)
                .await?
                .len();
            Outcome { rows, vcenters }
        }
    };
    Ok(outcome)
}

/// Who asked for an aggregation, as `aggregation_runs.source` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Kubernetes Job of an `AggregationJob`.
    Job,
    /// `vctp standalone`'s schedule.
    Standalone,
    /// `vctp aggregate`.
    Cli,
    /// The admin API of `vctp serve`.
    Api,
    /// `vctp demo`'s history.
    Demo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Job => "job",
            Source::Standalone => "standalone",
            Source::Cli => "cli",
            Source::Api => "api",
            Source::Demo => "demo",
        }
    }
}

/// [`aggregate_daily`], with the attempt recorded in `aggregation_runs`.
pub async fn aggregate_daily_recorded(
    store: &Store,
    day: Day,
    engine: Engine,
    source: Source,
) -> Result<Outcome> {
    let work = aggregate_daily(store, day, engine);
    recorded(store, Grain::Daily, day.start(), source, work).await
}

/// [`aggregate_monthly`], with the attempt recorded in `aggregation_runs`.
pub async fn aggregate_monthly_recorded(
    store: &Store,
    month: Month,
    engine: Engine,
    source: Source,
) -> Result<Outcome> {
    let work = aggregate_monthly(store, month, engine);
    recorded(store, Grain::Monthly, month.start(), source, work).await
}

/// Runs `work` and records how it went. The record is written after the aggregation's
/// transaction ended, on its own, so a failure is recorded rather than rolled back with it. A
/// record that cannot be written is logged: it must not turn stored summaries into an error.
async fn recorded(
    store: &Store,
    grain: Grain,
    period_start: i64,
    source: Source,
    work: impl Future<Output = Result<Outcome>>,
) -> Result<Outcome> {
    let started_at = chrono::Utc::now().timestamp();
    let started = std::time::Instant::now();
    let result = work.await;
    let (success, rows_written, error) = match &result {
        Ok(outcome) => (true, outcome.rows, String::new()),
        Err(e) => (false, 0, e.to_string()),
    };
    let run = store::runs::AggregationRun {
        grain: grain.totals().as_str().to_string(),
        period_start,
        started_at,
        finished_at: chrono::Utc::now().timestamp(),
        duration_seconds: started.elapsed().as_secs_f64(),
        success,
        rows_written: i64::try_from(rows_written).unwrap_or(i64::MAX),
        source: source.as_str().to_string(),
        error,
    };
    if let Err(e) = store.record_aggregation_run(&run).await {
        tracing::error!(grain = run.grain, period_start, reason = e.reason(), error = %e, "failed to record an aggregation run");
    }
    result
}

/// The VMs of one vCenter's period, indexed once: one hash of the vm_id finds a VM's slot in
/// flat tables (no allocation once it is known), and slots are numbered in the order VMs were
/// first read, which is vm_id order within a snapshot or a day: the next snapshot's rows walk
/// the accumulators nearly in sequence.
struct VmTable<A> {
    slots: FxHashMap<Box<str>, u32>,
    accumulators: Vec<A>,
    /// The identity and placement of each VM's latest row, read only for that row.
    placements: Vec<Placement>,
}

impl<A: Default> VmTable<A> {
    fn new() -> Self {
        VmTable {
            slots: FxHashMap::default(),
            accumulators: Vec::new(),
            placements: Vec::new(),
        }
    }

    /// The accumulator of `vm_id`, started for a VM not seen before.
    fn accumulator(&mut self, vm_id: &str) -> &mut A {
        let slot = match self.slots.get(vm_id) {
            Some(slot) => *slot as usize,
            None => {
                let slot = self.accumulators.len();
                // u32 slots keep the index small; no period holds 4 billion VMs.
                self.slots.insert(vm_id.into(), slot as u32);
                self.accumulators.push(A::default());
                self.placements.push(Placement::default());
                slot
            }
        };
        &mut self.accumulators[slot]
    }

    /// Copies a placement row into a VM whose latest row is the one being read.
    fn place(&mut self, vm_id: &str, placement: PlacementRef<'_>, is_latest: impl Fn(&A) -> bool) {
        if let Some(&slot) = self.slots.get(vm_id)
            && is_latest(&self.accumulators[slot as usize])
        {
            self.placements[slot as usize].assign(placement);
        }
    }

    /// The distinct values of `key` over the VMs, sorted: the snapshots or days whose
    /// placements are to be read.
    fn distinct(&self, key: impl Fn(&A) -> i64) -> Vec<i64> {
        let mut keys: Vec<i64> = self.accumulators.iter().map(key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Turns the table into summary rows sorted by vm_id.
    fn finish(
        self,
        vcenter: &str,
        figures: impl Fn(&A) -> super::Figures,
        out: &mut Vec<VmSummary>,
    ) {
        let mut vms: Vec<(Box<str>, u32)> = self.slots.into_iter().collect();
        vms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut placements = self.placements;
        out.extend(vms.into_iter().map(|(vm_id, slot)| {
            let slot = slot as usize;
            VmSummary {
                vcenter: vcenter.to_string(),
                vm_id: vm_id.into_string(),
                placement: std::mem::take(&mut placements[slot]),
                figures: figures(&self.accumulators[slot]),
            }
        }));
    }
}

/// The rust engine's daily pass. `counts` holds each vCenter's number of snapshots that day
/// (its total_samples), sorted by vCenter.
pub async fn summarize_stored_day(
    store: &Store,
    day: Day,
    counts: &[(String, i64)],
) -> Result<Vec<VmSummary>> {
    let mut summaries = Vec::new();
    for (vcenter, total_samples) in counts {
        let mut vms: VmTable<DailyAccumulator> = VmTable::new();
        store
            .scan_samples(vcenter, day.start(), day.end(), |vm_id, sample| {
                vms.accumulator(vm_id).add(sample);
            })
            .await?;
        // Most VMs' latest sample is the day's last snapshot, so this is a handful of reads.
        for time in vms.distinct(DailyAccumulator::latest_time) {
            store
                .scan_placements(vcenter, time, |vm_id, placement| {
                    vms.place(vm_id, placement, |acc| acc.latest_time() == time);
                })
                .await?;
        }
        vms.finish(vcenter, |acc| acc.figures(*total_samples), &mut summaries);
    }
    Ok(summaries)
}

/// One vCenter's month while streaming its daily summaries.
struct MonthOfVcenter {
    name: String,
    /// Each day's total_samples (the same on every row of that day).
    day_totals: BTreeMap<i64, i64>,
    /// Each VM's running figures and the day of its latest daily summary.
    vms: VmTable<(MonthlyAccumulator, i64)>,
}

/// The rust engine's monthly pass over the month's daily summaries, sorted by vcenter then
/// vm_id.
pub async fn summarize_stored_month(store: &Store, month: Month) -> Result<Vec<VmSummary>> {
    let mut vcenters: Vec<MonthOfVcenter> = Vec::new();
    // Rows come by day then vCenter: the previous row's vCenter is nearly always this one's.
    let mut current: Option<usize> = None;
    store
        .scan_daily_figures(
            month.start(),
            month.end(),
            |vcenter, vm_id, day, figures| {
                let index = match current {
                    Some(index) if vcenters[index].name == vcenter => index,
                    _ => match vcenters.iter().position(|v| v.name == vcenter) {
                        Some(index) => index,
                        None => {
                            vcenters.push(MonthOfVcenter {
                                name: vcenter.to_string(),
                                day_totals: BTreeMap::new(),
                                vms: VmTable::new(),
                            });
                            vcenters.len() - 1
                        }
                    },
                };
                current = Some(index);
                let month_of = &mut vcenters[index];
                let total = month_of.day_totals.entry(day).or_default();
                *total = (*total).max(figures.total_samples);
                let (acc, last_day) = month_of.vms.accumulator(vm_id);
                if acc.add(figures) {
                    *last_day = day;
                }
            },
        )
        .await?;
    vcenters.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut summaries = Vec::new();
    for MonthOfVcenter {
        name,
        day_totals,
        mut vms,
    } in vcenters
    {
        let monthly_total: i64 = day_totals.values().sum();
        for day in vms.distinct(|(_, last_day)| *last_day) {
            store
                .scan_daily_placements(day, &name, |vm_id, placement| {
                    vms.place(vm_id, placement, |(_, last_day)| *last_day == day);
                })
                .await?;
        }
        vms.finish(&name, |(acc, _)| acc.figures(monthly_total), &mut summaries);
    }
    Ok(summaries)
}

/// How far past a day's end a snapshot may still stand for its last hours.
const LOOKAHEAD: i64 = 86_400;

/// The interval-based hourly totals of every vCenter over `day`, sorted by vcenter then
/// hour. An hour with no snapshot at or after its end (within a day) has no row.
pub async fn hourly_totals(store: &Store, day: Day) -> Result<Vec<HourTotals>> {
    let times = store
        .snapshot_times(day.start() + HOUR, day.end() + LOOKAHEAD)
        .await?;
    let mut out = Vec::new();
    for group in times.chunk_by(|a, b| a.0 == b.0) {
        let vcenter = &group[0].0;
        let sorted_times: Vec<i64> = group.iter().map(|(_, t)| *t).collect();
        let first = out.len();
        // snapshot → the hours it stands for
        let mut hours_of: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for hour in 0..24 {
            let hour_start = day.start() + hour * HOUR;
            if let Some(t) = snapshot_for_hour(&sorted_times, hour_start + HOUR) {
                hours_of.entry(t).or_default().push(out.len());
                out.push(HourTotals::new(vcenter, hour_start, t));
            }
        }
        for (time, hours) in hours_of {
            let rows = &mut out[first..];
            store
                .scan_interval_vms(vcenter, time, |vm| {
                    for i in &hours {
                        rows[i - first].add_vm(vm);
                    }
                })
                .await?;
        }
    }
    Ok(out)
}
