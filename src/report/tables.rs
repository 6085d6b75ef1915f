//! The data tables of the workbooks: VM summaries, hourly rows, vCenter totals per day and
//! interval-based hour totals. Headers are the field names of the CSV forms, so a sheet and
//! its CSV twin read the same.

use super::sheet::{Cell, Column, Style, Styles, day_label, hour_label, write_table};
use crate::aggregate::VmSummary;
use crate::aggregate::hourly::HourTotals;
use crate::inventory::HourlyRow;
use crate::inventory::csv::HOURLY_COLUMNS;
use crate::output::SUMMARY_COLUMNS;
use crate::store::totals::VcenterTotals;
use rust_xlsxwriter::{ColNum, RowNum, Worksheet, XlsxError};

/// Styles and widths of [`SUMMARY_COLUMNS`], in that order.
const SUMMARY_LAYOUT: [(Style, f64); 28] = [
    (Style::Text, 24.0), // vcenter
    (Style::Text, 12.0), // vm_id
    (Style::Text, 38.0), // vm_uuid
    (Style::Text, 28.0), // name
    (Style::Text, 16.0), // resource_pool
    (Style::Text, 14.0), // datacenter
    (Style::Text, 14.0), // cluster
    (Style::Text, 28.0), // folder
    (Style::Integer, 16.0),
    (Style::Integer, 14.0),
    (Style::Average, 15.0),
    (Style::Average, 15.0),
    (Style::Average, 13.0),
    (Style::Average, 20.0),
    (Style::Percent, 13.0),
    (Style::Percent, 15.0),
    (Style::Percent, 15.0),
    (Style::Percent, 13.0),
    (Style::Average, 9.0), // tin…gold: VM-days
    (Style::Average, 9.0),
    (Style::Average, 9.0),
    (Style::Average, 9.0),
    (Style::Time, 20.0),
    (Style::Time, 20.0),
    (Style::Time, 20.0),
    (Style::Integer, 19.0), // samples_powered_on, _template, _placeholder
    (Style::Integer, 17.0),
    (Style::Integer, 20.0),
];

/// Styles and widths of [`HOURLY_COLUMNS`], in that order.
const HOURLY_LAYOUT: [(Style, f64); 20] = [
    (Style::Text, 24.0), // vcenter
    (Style::Text, 12.0), // vm_id
    (Style::Text, 38.0), // vm_uuid
    (Style::Text, 14.0), // inventory_id
    (Style::Text, 28.0), // name
    (Style::Text, 12.0), // event_key
    (Style::Text, 14.0), // cloud_id
    (Style::Time, 20.0),
    (Style::Time, 20.0),
    (Style::Time, 20.0),
    (Style::Text, 16.0), // resource_pool
    (Style::Text, 14.0), // datacenter
    (Style::Text, 14.0), // cluster
    (Style::Text, 28.0), // folder
    (Style::Gigabytes, 20.0),
    (Style::Integer, 11.0),
    (Style::Gigabytes, 10.0),
    // Flags as 0/1, as in the CSV form, so SUM counts them.
    (Style::Integer, 12.0),
    (Style::Integer, 11.0),
    (Style::Integer, 16.0),
];

fn columns<const N: usize>(headers: [&'static str; N], layout: [(Style, f64); N]) -> [Column; N] {
    std::array::from_fn(|i| Column {
        header: headers[i],
        style: layout[i].0,
        width: layout[i].1,
    })
}

/// The VMs sheet of a daily or monthly workbook: every summary field.
pub(super) fn write_summaries(
    sheet: &mut Worksheet,
    styles: &Styles,
    vms: &[VmSummary],
) -> Result<RowNum, XlsxError> {
    let rows = vms.iter().map(|vm| {
        let (p, f) = (&vm.placement, &vm.figures);
        [
            Cell::text(&vm.vcenter),
            Cell::text(&vm.vm_id),
            Cell::text(&p.vm_uuid),
            Cell::text(&p.name),
            Cell::text(&p.resource_pool),
            Cell::text(&p.datacenter),
            Cell::text(&p.cluster),
            Cell::text(&p.folder),
            Cell::int(f.samples_present),
            Cell::int(f.total_samples),
            Cell::Number(f.avg_is_present),
            Cell::Number(f.avg_vcpu_count),
            Cell::Number(f.avg_ram_gb),
            Cell::Number(f.avg_provisioned_disk),
            Cell::Number(f.pool_tin_pct),
            Cell::Number(f.pool_bronze_pct),
            Cell::Number(f.pool_silver_pct),
            Cell::Number(f.pool_gold_pct),
            Cell::Number(f.tin),
            Cell::Number(f.bronze),
            Cell::Number(f.silver),
            Cell::Number(f.gold),
            Cell::Time(f.creation_time),
            Cell::Time(f.deletion_time),
            Cell::Time(f.snapshot_time),
            Cell::int(f.samples_powered_on),
            Cell::int(f.samples_template),
            Cell::int(f.samples_placeholder),
        ]
    });
    write_table(
        sheet,
        styles,
        &columns(SUMMARY_COLUMNS, SUMMARY_LAYOUT),
        rows,
    )
}

/// The VMs sheet of an hourly workbook: every hourly field.
pub(super) fn write_hourly_rows(
    sheet: &mut Worksheet,
    styles: &Styles,
    rows: &[HourlyRow],
) -> Result<RowNum, XlsxError> {
    let cells = rows.iter().map(|row| {
        [
            Cell::text(&row.vcenter),
            Cell::text(&row.vm_id),
            Cell::text(&row.vm_uuid),
            Cell::text(&row.inventory_id),
            Cell::text(&row.name),
            Cell::text(&row.event_key),
            Cell::text(&row.cloud_id),
            Cell::Time(row.creation_time),
            Cell::Time(row.deletion_time),
            Cell::Time(row.snapshot_time),
            Cell::text(&row.resource_pool),
            Cell::text(&row.datacenter),
            Cell::text(&row.cluster),
            Cell::text(&row.folder),
            Cell::Number(row.provisioned_disk_gb),
            Cell::int(row.vcpu_count),
            Cell::Number(row.ram_gb),
            Cell::int(i64::from(row.is_template)),
            Cell::int(i64::from(row.powered_on)),
            Cell::int(i64::from(row.srm_placeholder)),
        ]
    });
    write_table(
        sheet,
        styles,
        &columns(HOURLY_COLUMNS, HOURLY_LAYOUT),
        cells,
    )
}

const fn column(header: &'static str, style: Style, width: f64) -> Column {
    Column {
        header,
        style,
        width,
    }
}

/// Where the column headed `header` is; a header that is not there fails the build, so a
/// chart's column follows its header when the columns change.
const fn position(columns: &[Column], header: &str) -> ColNum {
    let mut i = 0;
    while i < columns.len() {
        if same(columns[i].header.as_bytes(), header.as_bytes()) {
            return i as ColNum;
        }
        i += 1;
    }
    panic!("no column has this header")
}

/// `a == b`, which a const fn cannot write for strings yet.
const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The columns of [`write_day_totals`].
const DAY_TOTALS: [Column; 12] = [
    column("vcenter", Style::Text, 24.0),
    column("interval", Style::Text, 25.0),
    column("day", Style::Date, 12.0),
    column("total_samples", Style::Integer, 14.0),
    column("vm_count", Style::Average, 11.0),
    column("vcpu_count", Style::Average, 12.0),
    column("ram_gb", Style::Gigabytes, 12.0),
    column("disk_gb", Style::Gigabytes, 14.0),
    column("tin", Style::Average, 9.0),
    column("bronze", Style::Average, 9.0),
    column("silver", Style::Average, 9.0),
    column("gold", Style::Average, 9.0),
];

/// Columns of [`write_day_totals`] that charts address, found by their headers.
pub(super) mod day_totals {
    use super::{DAY_TOTALS, position};
    use rust_xlsxwriter::ColNum;
    pub const VCENTER: ColNum = position(&DAY_TOTALS, "vcenter");
    pub const DAY: ColNum = position(&DAY_TOTALS, "day");
    pub const VM_COUNT: ColNum = position(&DAY_TOTALS, "vm_count");
    pub const VCPU_COUNT: ColNum = position(&DAY_TOTALS, "vcpu_count");
    pub const RAM_GB: ColNum = position(&DAY_TOTALS, "ram_gb");
    pub const TIN: ColNum = position(&DAY_TOTALS, "tin");
    pub const BRONZE: ColNum = position(&DAY_TOTALS, "bronze");
    pub const SILVER: ColNum = position(&DAY_TOTALS, "silver");
    pub const GOLD: ColNum = position(&DAY_TOTALS, "gold");
    /// Where charts go: right of the columns, after a blank one.
    pub const CHARTS: ColNum = DAY_TOTALS.len() as ColNum + 1;
}

/// Per-vCenter per-day prorated totals, sorted by vCenter then day so that each vCenter's
/// days are one block of rows (a chart series). Returns the blocks.
pub(super) fn write_day_totals<'a>(
    sheet: &mut Worksheet,
    styles: &Styles,
    totals: &'a [VcenterTotals],
) -> Result<Vec<Block<'a>>, XlsxError> {
    let mut sorted: Vec<&VcenterTotals> = totals.iter().collect();
    sorted.sort_by(|a, b| (&a.vcenter, a.period_start).cmp(&(&b.vcenter, b.period_start)));
    let rows = sorted.iter().map(|t| {
        [
            Cell::text(&t.vcenter),
            Cell::Text(day_label(t.period_start).into()),
            Cell::Time(t.period_start),
            Cell::int(t.total_samples),
            Cell::Number(t.vm_count),
            Cell::Number(t.vcpu_count),
            Cell::Number(t.ram_gb),
            Cell::Number(t.disk_gb),
            Cell::Number(t.tin),
            Cell::Number(t.bronze),
            Cell::Number(t.silver),
            Cell::Number(t.gold),
        ]
    });
    write_table(sheet, styles, &DAY_TOTALS, rows)?;
    Ok(blocks(sorted.iter().map(|t| t.vcenter.as_str())))
}

/// The columns of [`write_hour_totals`].
const HOUR_TOTALS: [Column; 8] = [
    column("vcenter", Style::Text, 24.0),
    column("hour", Style::Text, 36.0),
    column("hour_start", Style::Time, 20.0),
    column("snapshot_time", Style::Time, 20.0),
    column("vm_count", Style::Average, 11.0),
    column("vcpu_count", Style::Average, 12.0),
    column("ram_gb", Style::Gigabytes, 12.0),
    column("disk_gb", Style::Gigabytes, 14.0),
];

/// Columns of [`write_hour_totals`] that charts address, found by their headers.
pub(super) mod hour_totals {
    use super::{HOUR_TOTALS, position};
    use rust_xlsxwriter::ColNum;
    pub const HOUR_START: ColNum = position(&HOUR_TOTALS, "hour_start");
    pub const VM_COUNT: ColNum = position(&HOUR_TOTALS, "vm_count");
    /// Where charts go: right of the columns, after a blank one.
    pub const CHARTS: ColNum = HOUR_TOTALS.len() as ColNum + 1;
}

/// Interval-based hour totals, sorted by vCenter then hour. Returns the vCenter blocks.
pub(super) fn write_hour_totals<'a>(
    sheet: &mut Worksheet,
    styles: &Styles,
    hours: &'a [HourTotals],
) -> Result<Vec<Block<'a>>, XlsxError> {
    let mut sorted: Vec<&HourTotals> = hours.iter().collect();
    sorted.sort_by(|a, b| (&a.vcenter, a.hour_start).cmp(&(&b.vcenter, b.hour_start)));
    let rows = sorted.iter().map(|h| {
        [
            Cell::text(&h.vcenter),
            Cell::Text(hour_label(h.hour_start, h.hour_end).into()),
            Cell::Time(h.hour_start),
            Cell::Time(h.snapshot_time),
            Cell::Number(h.vm_count),
            Cell::Number(h.vcpu_count),
            Cell::Number(h.ram_gb),
            Cell::Number(h.disk_gb),
        ]
    });
    write_table(sheet, styles, &HOUR_TOTALS, rows)?;
    Ok(blocks(sorted.iter().map(|h| h.vcenter.as_str())))
}

/// The rows `first..=last` (sheet rows, after the header) of one vCenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Block<'a> {
    pub vcenter: &'a str,
    pub first: RowNum,
    pub last: RowNum,
}

/// Runs of equal vCenter names in written order, as sheet rows.
fn blocks<'a>(vcenters: impl Iterator<Item = &'a str>) -> Vec<Block<'a>> {
    let mut out: Vec<Block<'a>> = Vec::new();
    for (row, vcenter) in (1..).zip(vcenters) {
        match out.last_mut() {
            Some(block) if block.vcenter == vcenter => block.last = row,
            _ => out.push(Block {
                vcenter,
                first: row,
                last: row,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_the_runs_of_one_vcenter_after_the_header_row() {
        let got = blocks(["a", "a", "b", "c", "c", "c"].into_iter());
        let block = |vcenter, first, last| Block {
            vcenter,
            first,
            last,
        };
        assert_eq!(
            got,
            vec![block("a", 1, 2), block("b", 3, 3), block("c", 4, 6)]
        );
        assert!(blocks(std::iter::empty()).is_empty());
    }

    #[test]
    fn the_chart_columns_stay_where_their_headers_are() {
        let header = |columns: &[Column], col: ColNum| columns[usize::from(col)].header;
        let day = [
            (day_totals::VCENTER, 0, "vcenter"),
            (day_totals::DAY, 2, "day"),
            (day_totals::VM_COUNT, 4, "vm_count"),
            (day_totals::VCPU_COUNT, 5, "vcpu_count"),
            (day_totals::RAM_GB, 6, "ram_gb"),
            (day_totals::TIN, 8, "tin"),
            (day_totals::BRONZE, 9, "bronze"),
            (day_totals::SILVER, 10, "silver"),
            (day_totals::GOLD, 11, "gold"),
        ];
        for (col, at, name) in day {
            assert_eq!((col, header(&DAY_TOTALS, col)), (at, name));
        }
        assert_eq!(day_totals::CHARTS, 13);
        let hour = [
            (hour_totals::HOUR_START, 2, "hour_start"),
            (hour_totals::VM_COUNT, 4, "vm_count"),
        ];
        for (col, at, name) in hour {
            assert_eq!((col, header(&HOUR_TOTALS, col)), (at, name));
        }
        assert_eq!(hour_totals::CHARTS, 9);
    }
}
