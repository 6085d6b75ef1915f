//! The monthly workbook: Cover, VMs (every monthly summary field), Summary (pivot-style
//! tables) and Daily Totals (per vCenter and day of the month, with line charts).

use super::charts::{insert_stacked, lines_per_vcenter};
use super::costs::write_costs;
use super::pivots::Summary;
use super::sheet::Styles;
use super::tables::{day_totals, write_day_totals, write_summaries};
use super::{Costs, Cover, Error, PivotSpec, add_sheet, on_sheet, save, workbook_with_vms};
use crate::aggregate::VmSummary;
use crate::store::totals::VcenterTotals;

const ARITHMETIC: [&str; 7] = [
    "total_samples = the sum of the vCenter's daily snapshot counts over the month; samples_present = the sum of the daily samples_present.",
    "avg_is_present, avg_vcpu_count, avg_ram_gb, avg_provisioned_disk are time-weighted over every snapshot of the month: Σ (daily average × daily total_samples) / total_samples.",
    "pool_<tier>_pct = the VM's time in that tier as a share of its lifetime in the month × 100.",
    "tin, bronze, silver, gold = the sum of the daily values: VM-days in the tier over the month.",
    "samples_powered_on, samples_template, samples_placeholder = the sums of the daily ones.",
    "Summary: the VMs sheet summed (or VM names counted) by resource pool and vCenter.",
    "Daily Totals: per vCenter and full day [00:00, 24:00) UTC, that day's daily summaries summed (vm_count = Σ avg_is_present, …); the charts draw one line per vCenter.",
];

/// Builds the monthly workbook of `vms` (the month's summaries) and `daily_totals` (the
/// per-vCenter totals of each day of the month), with one Summary table per `pivots` entry
/// (none: no Summary sheet).
pub fn monthly_workbook(
    cover: &Cover,
    vms: &[VmSummary],
    daily_totals: &[VcenterTotals],
    pivots: &[PivotSpec],
    costs: Costs<'_>,
) -> Result<Vec<u8>, Error> {
    let summary = Summary::prepare(pivots, vms)?;
    let styles = Styles::new();
    const DAILY_TOTALS: &str = "Daily Totals";
    let mut workbook = workbook_with_vms(
        cover,
        &styles,
        &ARITHMETIC,
        vms.len(),
        (DAILY_TOTALS, daily_totals.len()),
        costs,
        |sheet, styles| write_summaries(sheet, styles, vms),
    )?;
    summary.write(&mut workbook, &styles)?;
    let sheet = add_sheet(&mut workbook, DAILY_TOTALS)?;
    let blocks = write_day_totals(sheet, &styles, daily_totals).map_err(on_sheet(DAILY_TOTALS))?;
    if !blocks.is_empty() {
        let line = |title, col| {
            lines_per_vcenter(
                DAILY_TOTALS,
                title,
                &blocks,
                day_totals::DAY,
                "yyyy-mm-dd",
                col,
            )
        };
        let charts = [
            line("Prorated VM count per day", day_totals::VM_COUNT),
            line("vCPUs per day", day_totals::VCPU_COUNT),
            line("RAM GB per day", day_totals::RAM_GB),
        ];
        insert_stacked(sheet, day_totals::CHARTS, &charts).map_err(on_sheet(DAILY_TOTALS))?;
    }
    if let Costs::Priced(ledger) = costs {
        write_costs(&mut workbook, &styles, ledger, true)?;
    }
    save(workbook)
}
