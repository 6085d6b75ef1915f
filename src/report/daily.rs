//! The daily workbook: Cover, VMs (every daily summary field), Summary (pivot-style tables)
//! and Totals (per-vCenter prorated totals of the day, with charts).

use super::charts::{columns_by_row, insert_stacked};
use super::costs::write_costs;
use super::pivots::Summary;
use super::sheet::Styles;
use super::tables::{day_totals, write_day_totals, write_summaries};
use super::{Costs, Cover, Error, PivotSpec, add_sheet, on_sheet, save, workbook_with_vms};
use crate::aggregate::VmSummary;
use crate::store::totals::VcenterTotals;
use rust_xlsxwriter::ChartType;

const ARITHMETIC: [&str; 7] = [
    "The day is [00:00, 24:00) UTC. total_samples = the vCenter's snapshots that day; samples_present = those the VM appears in.",
    "avg_is_present, avg_vcpu_count, avg_ram_gb, avg_provisioned_disk are time-weighted: the sum over the VM's snapshots / total_samples, so a VM that existed half the day counts half.",
    "pool_<tier>_pct = the VM's snapshots in that tier / samples_present × 100 (its lifetime only).",
    "tin, bronze, silver, gold = the VM's snapshots in that tier / total_samples: VM-days in the tier.",
    "samples_powered_on, samples_template, samples_placeholder = the VM's snapshots as a template, else as an SRM placeholder, else powered on; the rest of samples_present were powered off.",
    "Summary: the VMs sheet summed (or VM names counted) by resource pool and vCenter.",
    "Totals: the VMs sheet summed per vCenter (vm_count = Σ avg_is_present, vcpu_count = Σ avg_vcpu_count, …).",
];

/// Builds the daily workbook of `vms` (one day's summaries) and `totals` (that day's
/// per-vCenter totals), with one Summary table per `pivots` entry (none: no Summary sheet).
pub fn daily_workbook(
    cover: &Cover,
    vms: &[VmSummary],
    totals: &[VcenterTotals],
    pivots: &[PivotSpec],
    costs: Costs<'_>,
) -> Result<Vec<u8>, Error> {
    let summary = Summary::prepare(pivots, vms)?;
    let styles = Styles::new();
    const TOTALS: &str = "Totals";
    let mut workbook = workbook_with_vms(
        cover,
        &styles,
        &ARITHMETIC,
        vms.len(),
        (TOTALS, totals.len()),
        costs,
        |sheet, styles| write_summaries(sheet, styles, vms),
    )?;
    summary.write(&mut workbook, &styles)?;
    let sheet = add_sheet(&mut workbook, TOTALS)?;
    let blocks = write_day_totals(sheet, &styles, totals).map_err(on_sheet(TOTALS))?;
    if let Some(rows) = blocks.last().map(|block| block.last) {
        use day_totals::{BRONZE, GOLD, SILVER, TIN, VCENTER, VCPU_COUNT, VM_COUNT};
        let tiers = [
            ("tin", TIN),
            ("bronze", BRONZE),
            ("silver", SILVER),
            ("gold", GOLD),
        ];
        let charts = [
            columns_by_row(
                ChartType::Column,
                TOTALS,
                "Prorated VMs and vCPUs per vCenter",
                rows,
                VCENTER,
                &[("vm_count", VM_COUNT), ("vcpu_count", VCPU_COUNT)],
            ),
            columns_by_row(
                ChartType::ColumnStacked,
                TOTALS,
                "VM-days per tier",
                rows,
                VCENTER,
                &tiers,
            ),
        ];
        insert_stacked(sheet, day_totals::CHARTS, &charts).map_err(on_sheet(TOTALS))?;
    }
    if let Costs::Priced(ledger) = costs {
        write_costs(&mut workbook, &styles, ledger, false)?;
    }
    save(workbook)
}
