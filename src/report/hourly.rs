//! The hourly workbook of one snapshot tick: Cover, VMs (the tick's hourly rows, every
//! field) and Hourly Totals (interval-based totals per vCenter and hour, with a chart).

use super::charts::{insert_stacked, lines_per_vcenter};
use super::sheet::Styles;
use super::tables::{hour_totals, write_hour_totals, write_hourly_rows};
use super::{Costs, Cover, Error, add_sheet, on_sheet, save, workbook_with_vms};
use crate::aggregate::hourly::HourTotals;
use crate::inventory::HourlyRow;

const ARITHMETIC: [&str; 3] = [
    "VMs: the rows of the snapshot as collected from vCenter; all times are UTC.",
    "Hourly Totals: the row for [HH:00, HH+1:00) uses each vCenter's first snapshot at or after HH+1:00 (also across midnight) and counts each VM in it by the fraction of the hour it existed.",
    "That fraction is the overlap of [creation_time, deletion_time) with the hour; an unknown creation time counts as the whole hour.",
];

/// Builds the hourly workbook of `rows` (one snapshot tick) and `hours` (interval-based
/// totals per vCenter and hour).
pub fn hourly_workbook(
    cover: &Cover,
    rows: &[HourlyRow],
    hours: &[HourTotals],
) -> Result<Vec<u8>, Error> {
    let styles = Styles::new();
    const HOURLY_TOTALS: &str = "Hourly Totals";
    let mut workbook = workbook_with_vms(
        cover,
        &styles,
        &ARITHMETIC,
        rows.len(),
        (HOURLY_TOTALS, hours.len()),
        Costs::Unpriced,
        |sheet, styles| write_hourly_rows(sheet, styles, rows),
    )?;
    let sheet = add_sheet(&mut workbook, HOURLY_TOTALS)?;
    let blocks = write_hour_totals(sheet, &styles, hours).map_err(on_sheet(HOURLY_TOTALS))?;
    if !blocks.is_empty() {
        let chart = lines_per_vcenter(
            HOURLY_TOTALS,
            "Prorated VM count per hour",
            &blocks,
            hour_totals::HOUR_START,
            "hh:mm",
            hour_totals::VM_COUNT,
        );
        insert_stacked(sheet, hour_totals::CHARTS, &[chart]).map_err(on_sheet(HOURLY_TOTALS))?;
    }
    save(workbook)
}
