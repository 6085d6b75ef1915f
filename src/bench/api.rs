//! `vctp bench api`: seeds an empty database with `--days` of hourly snapshot totals, their
//! daily totals and one successful run record per snapshot for `--vcenters` vCenters named
//! `vc-01`, `vc-02`, …, ending at the current hour, so that `vctp serve` answers the
//! default (last 45 days) hourly view in full; scripts/bench-api.sh then loads it with wrk.

use crate::cli::BenchApiArgs;
use crate::store::runs::{SnapshotRun, record_run_in};
use crate::store::totals::{VcenterTotals, insert_totals};
use crate::store::{DatabaseUrl, Store};
use anyhow::{Context, Result};
use std::time::Instant;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

pub async fn run(args: &BenchApiArgs, url: Option<DatabaseUrl>) -> Result<()> {
    let url = url.context(
        "vctp bench api needs --database-url: the database it seeds is the one `vctp serve` reads",
    )?;
    anyhow::ensure!(args.vcenters > 0, "--vcenters must be at least 1");
    anyhow::ensure!(args.days > 0, "--days must be at least 1");
    let store = Store::connect(&url).await?;
    anyhow::ensure!(
        store.latest_totals().await?.is_empty(),
        "database {url} already holds vCenter totals; vctp bench api seeds an empty database"
    );
    let last_hour = chrono::Utc::now().timestamp() / HOUR * HOUR;
    let hours: Vec<i64> = (0..i64::from(args.days) * 24)
        .rev()
        .map(|ago| last_hour - ago * HOUR)
        .collect();
    let started = Instant::now();
    let mut snapshots = Vec::with_capacity(args.vcenters * hours.len());
    let mut days = Vec::new();
    let mut runs = Vec::with_capacity(args.vcenters * hours.len());
    for index in 0..args.vcenters {
        let vcenter = format!("vc-{:02}", index + 1);
        let first = snapshots.len();
        for (hour, &time) in hours.iter().enumerate() {
            let totals = snapshot_totals(&vcenter, index, hour, time);
            runs.push(SnapshotRun {
                vcenter: vcenter.clone(),
                snapshot_time: time,
                started_at: time,
                finished_at: time + 4,
                success: true,
                row_count: totals.vm_count as i64,
                error: String::new(),
                failure_kind: String::new(),
            });
            snapshots.push(totals);
        }
        days.extend(daily_totals(&snapshots[first..]));
    }
    let mut tx = store.begin().await?;
    insert_totals(&mut tx, &snapshots).await?;
    insert_totals(&mut tx, &days).await?;
    for run in &runs {
        record_run_in(&mut tx, run).await?;
    }
    tx.commit().await?;
    println!(
        "vctp bench api: seeded {url} with {} snapshot totals, {} daily totals and {} runs of {} vCenters (vc-01…) in {:.2} s",
        snapshots.len(),
        days.len(),
        runs.len(),
        args.vcenters,
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

/// The counts of one snapshot: a size per vCenter, a daily swing, and fractional disk sizes
/// so the JSON carries realistic floats.
fn snapshot_totals(vcenter: &str, index: usize, hour: usize, time: i64) -> VcenterTotals {
    let size = 200 + (index * 37) % 1_800;
    let vms = (size + hour % 24 + hour / 24 % 7) as f64;
    VcenterTotals {
        grain: "snapshot".into(),
        vcenter: vcenter.to_string(),
        period_start: time,
        total_samples: 1,
        vm_count: vms,
        vcpu_count: vms * 4.0,
        ram_gb: vms * 16.0,
        disk_gb: vms * 87.3 + hour as f64 * 0.137,
        tin: (vms * 0.4).floor(),
        bronze: (vms * 0.3).floor(),
        silver: (vms * 0.2).floor(),
        gold: vms - (vms * 0.4).floor() - (vms * 0.3).floor() - (vms * 0.2).floor(),
    }
}

/// One vCenter's daily totals from its snapshot totals (in time order): the sum of each
/// UTC day's snapshots divided by the day's snapshots, as VM-days.
fn daily_totals(snapshots: &[VcenterTotals]) -> Vec<VcenterTotals> {
    snapshots
        .chunk_by(|a, b| a.period_start.div_euclid(DAY) == b.period_start.div_euclid(DAY))
        .map(|day| {
            let n = day.len() as f64;
            let average = |field: fn(&VcenterTotals) -> f64| day.iter().map(field).sum::<f64>() / n;
            VcenterTotals {
                grain: "daily".into(),
                vcenter: day[0].vcenter.clone(),
                period_start: day[0].period_start.div_euclid(DAY) * DAY,
                total_samples: day.len() as i64,
                vm_count: average(|t| t.vm_count),
                vcpu_count: average(|t| t.vcpu_count),
                ram_gb: average(|t| t.ram_gb),
                disk_gb: average(|t| t.disk_gb),
                tin: average(|t| t.tin),
                bronze: average(|t| t.bronze),
                silver: average(|t| t.silver),
                gold: average(|t| t.gold),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_totals_average_each_utc_day_of_snapshots() {
        let snapshots: Vec<_> = (0..30)
            .map(|hour| snapshot_totals("vc-01", 0, hour, 20 * DAY + 6 * HOUR + hour as i64 * HOUR))
            .collect();
        let days = daily_totals(&snapshots);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].period_start, 20 * DAY);
        assert_eq!(days[0].total_samples, 18);
        assert_eq!(days[1].period_start, 21 * DAY);
        assert_eq!(days[1].total_samples, 12);
        let first_day: f64 = snapshots[..18].iter().map(|t| t.vm_count).sum();
        assert_eq!(days[0].vm_count, first_day / 18.0);
    }

    #[test]
    fn snapshot_tiers_add_up_to_the_vm_count() {
        for hour in 0..48 {
            let t = snapshot_totals("vc-07", 6, hour, 0);
            assert_eq!(t.tin + t.bronze + t.silver + t.gold, t.vm_count);
        }
    }
}
