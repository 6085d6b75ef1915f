//! The Summary sheet: pivot-style tables of the VM summaries, one per `report_summary_pivots`
//! entry. rust_xlsxwriter writes no pivot tables, so the aggregation is done here and written
//! as plain cells, with a workbook name over each table so formulas can address it.
//!
//! Rows are resource pools: the tier pools (Tin, Bronze, Silver, Gold by the default
//! mapping, any case) first in tier order, then the other pools alphabetically, then VMs
//! without a pool as "(blank)"; a "Grand Total" row ends the table. Columns are the vCenters
//! alphabetically, then "Grand Total". A cell no VM contributes to is left blank, as in an
//! Excel pivot table.

use super::Error;
use super::sheet::{Style, Styles};
use crate::aggregate::VmSummary;
use crate::inventory::TierMapping;
use rust_xlsxwriter::utility::{cell_range_absolute, check_name, column_number_to_name};
use rust_xlsxwriter::{ColNum, RowNum, Workbook, XlsxError};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

pub(super) const SHEET: &str = "Summary";
const GRAND_TOTAL: &str = "Grand Total";
const ROW_LABEL: &str = "Resource pool";
const NO_POOL: &str = "(blank)";
/// Excel's sheet size.
const MAX_ROWS: u64 = 1_048_576;
const MAX_COLS: u64 = 16_384;

/// What a Summary table adds up per resource pool and vCenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PivotMetric {
    /// Σ avg_vcpu_count: time-weighted vCPUs.
    AvgVcpu,
    /// Σ avg_ram_gb: time-weighted RAM in GB.
    AvgRam,
    /// Σ avg_is_present: VMs counted by the share of the period they existed.
    ProratedVmCount,
    /// The number of distinct VM names (the Grand Totals count each name once too).
    VmNameCount,
}

impl PivotMetric {
    fn style(self) -> Style {
        match self {
            PivotMetric::AvgVcpu | PivotMetric::ProratedVmCount => Style::Average,
            PivotMetric::AvgRam => Style::Gigabytes,
            PivotMetric::VmNameCount => Style::Integer,
        }
    }
}

/// One Summary table, as configured by `settings.report_summary_pivots`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivotSpec {
    pub metric: PivotMetric,
    /// Shown in `title_cell`.
    pub title: String,
    /// A workbook-level defined name over the table's actual extent.
    pub pivot_name: String,
    /// Where the table goes: `Summary!A3:H40` or `A3:H40`; the table starts at its top-left
    /// cell and must fit inside it.
    pub pivot_range: String,
    /// Where the title goes; by default the cell above the range's top-left cell.
    pub title_cell: Option<String>,
}

impl PivotSpec {
    /// The four metrics side by side: titles in row 2, tables from row 3, each range 14
    /// columns wide (up to 12 vCenters) and 1,000 rows tall (up to 998 resource pools),
    /// with one blank column between tables.
    pub fn defaults() -> Vec<PivotSpec> {
        [
            (
                PivotMetric::AvgVcpu,
                "vCPUs (sum of avg_vcpu_count)",
                "PivotAvgVcpu",
                "Summary!A3:N1002",
            ),
            (
                PivotMetric::AvgRam,
                "RAM GB (sum of avg_ram_gb)",
                "PivotAvgRam",
                "Summary!P3:AC1002",
            ),
            (
                PivotMetric::ProratedVmCount,
                "Prorated VM count (sum of avg_is_present)",
                "PivotProratedVmCount",
                "Summary!AE3:AR1002",
            ),
            (
                PivotMetric::VmNameCount,
                "VM names (distinct count)",
                "PivotVmNameCount",
                "Summary!AT3:BG1002",
            ),
        ]
        .into_iter()
        .map(|(metric, title, name, range)| PivotSpec {
            metric,
            title: title.to_string(),
            pivot_name: name.to_string(),
            pivot_range: range.to_string(),
            title_cell: None,
        })
        .collect()
    }
}

/// A rectangle of cells, zero-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Area {
    pub first_row: RowNum,
    pub first_col: ColNum,
    pub last_row: RowNum,
    pub last_col: ColNum,
}

impl Area {
    fn rows(self) -> u64 {
        u64::from(self.last_row - self.first_row) + 1
    }

    fn cols(self) -> u64 {
        u64::from(self.last_col - self.first_col) + 1
    }

    fn contains(self, (row, col): (RowNum, ColNum)) -> bool {
        (self.first_row..=self.last_row).contains(&row)
            && (self.first_col..=self.last_col).contains(&col)
    }

    fn overlaps(self, other: Area) -> bool {
        self.first_row <= other.last_row
            && other.first_row <= self.last_row
            && self.first_col <= other.last_col
            && other.first_col <= self.last_col
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            cell_name((self.first_row, self.first_col)),
            cell_name((self.last_row, self.last_col))
        )
    }
}

fn cell_name((row, col): (RowNum, ColNum)) -> String {
    format!("{}{}", column_number_to_name(col), u64::from(row) + 1)
}

/// Removes an optional `Summary!` or `'Summary'!` prefix; another sheet is an error.
fn on_summary_sheet(text: &str) -> Result<&str, String> {
    let Some((sheet, reference)) = text.rsplit_once('!') else {
        return Ok(text);
    };
    let name = sheet
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(sheet);
    // Excel compares sheet names case-insensitively.
    if name.eq_ignore_ascii_case(SHEET) {
        Ok(reference)
    } else {
        Err(format!(
            "{text:?} is on sheet {name:?}; the tables go on the {SHEET} sheet"
        ))
    }
}

/// `B7` or `$B$7` → (row 6, column 1).
fn parse_cell(text: &str) -> Option<(RowNum, ColNum)> {
    let text = text.strip_prefix('$').unwrap_or(text);
    let letters = text.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (letters, rest) = text.split_at(letters);
    let digits = rest.strip_prefix('$').unwrap_or(rest);
    if letters.is_empty() || letters.len() > 3 || digits.is_empty() {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let col = letters.bytes().fold(0u64, |n, b| {
        n * 26 + u64::from(b.to_ascii_uppercase() - b'A') + 1
    });
    let row: u64 = digits.parse().ok()?;
    if !(1..=MAX_COLS).contains(&col) || !(1..=MAX_ROWS).contains(&row) {
        return None;
    }
    Some((
        RowNum::try_from(row - 1).ok()?,
        ColNum::try_from(col - 1).ok()?,
    ))
}

/// `A3:H40`, `$A$3:$H$40`, `Summary!A3:H40`; corners in any order.
pub(super) fn parse_range(text: &str) -> Result<Area, String> {
    let reference = on_summary_sheet(text.trim())?;
    let corners = reference
        .split_once(':')
        .and_then(|(a, b)| Some((parse_cell(a)?, parse_cell(b)?)));
    let Some(((row_a, col_a), (row_b, col_b))) = corners else {
        return Err(format!(
            "{text:?} is not a cell range like A3:H40 or {SHEET}!A3:H40"
        ));
    };
    Ok(Area {
        first_row: row_a.min(row_b),
        first_col: col_a.min(col_b),
        last_row: row_a.max(row_b),
        last_col: col_a.max(col_b),
    })
}

fn parse_title_cell(text: &str) -> Result<(RowNum, ColNum), String> {
    parse_cell(on_summary_sheet(text.trim())?)
        .ok_or_else(|| format!("{text:?} is not a cell like B2 or {SHEET}!B2"))
}

/// Where one spec's table and title go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placement {
    pub area: Area,
    pub title: (RowNum, ColNum),
}

/// Checks a list of specs (ranges parse, ranges on the Summary sheet, names are valid Excel
/// defined names and unique, no overlap); errors name the index and field, e.g.
/// "report_summary_pivots[2].pivot_range: …".
pub fn validate_pivots(specs: &[PivotSpec]) -> Result<(), Error> {
    place(specs).map(drop)
}

/// Validates `specs` and returns where each table and title go.
pub(super) fn place(specs: &[PivotSpec]) -> Result<Vec<Placement>, Error> {
    let mut placed: Vec<Placement> = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let invalid = |field, problem| Error::InvalidPivot {
            index,
            field,
            problem,
        };
        check_name(&spec.pivot_name).map_err(|e| {
            let problem = match e {
                XlsxError::NameError(name, reason) => {
                    format!("{name:?} is not a valid Excel name: {reason}")
                }
                other => other.to_string(),
            };
            invalid("pivot_name", problem)
        })?;
        if let Some(other) = specs[..index]
            .iter()
            .position(|s| s.pivot_name.eq_ignore_ascii_case(&spec.pivot_name))
        {
            return Err(invalid(
                "pivot_name",
                format!(
                    "{:?} is already the name of report_summary_pivots[{other}] (Excel names ignore case)",
                    spec.pivot_name
                ),
            ));
        }
        let area = parse_range(&spec.pivot_range).map_err(|p| invalid("pivot_range", p))?;
        if area.rows() < 2 || area.cols() < 2 {
            return Err(invalid(
                "pivot_range",
                format!(
                    "{area} is too small: a table needs at least 2 rows (header, Grand Total) and 2 columns (pools, Grand Total)"
                ),
            ));
        }
        let title = match &spec.title_cell {
            Some(cell) => parse_title_cell(cell).map_err(|p| invalid("title_cell", p))?,
            None => match area.first_row.checked_sub(1) {
                Some(row) => (row, area.first_col),
                None => {
                    return Err(invalid(
                        "title_cell",
                        format!(
                            "pivot_range {area} starts on row 1, so there is no cell above it for the title; set title_cell"
                        ),
                    ));
                }
            },
        };
        if area.contains(title) {
            return Err(invalid(
                "title_cell",
                format!(
                    "{} lies inside this table's pivot_range {area}",
                    cell_name(title)
                ),
            ));
        }
        for (other, earlier) in placed.iter().enumerate() {
            if area.overlaps(earlier.area) {
                return Err(invalid(
                    "pivot_range",
                    format!(
                        "{area} overlaps report_summary_pivots[{other}].pivot_range {}",
                        earlier.area
                    ),
                ));
            }
            if area.contains(earlier.title) {
                return Err(invalid(
                    "pivot_range",
                    format!(
                        "{area} covers {}, the title cell of report_summary_pivots[{other}]",
                        cell_name(earlier.title)
                    ),
                ));
            }
            if earlier.area.contains(title) || earlier.title == title {
                return Err(invalid(
                    "title_cell",
                    format!(
                        "{} is taken by report_summary_pivots[{other}]",
                        cell_name(title)
                    ),
                ));
            }
        }
        placed.push(Placement { area, title });
    }
    Ok(placed)
}

/// Sort key of a resource pool row: tier pools in tier order, then others by name, then
/// VMs without a pool.
fn pool_order<'a>(mapping: &TierMapping, pool: &'a str) -> (usize, &'a str) {
    match mapping.tier_of(pool) {
        Some(tier) => (tier.index(), pool),
        None if pool.is_empty() => (usize::MAX, pool),
        None => (usize::MAX - 1, pool),
    }
}

/// One metric aggregated by resource pool × vCenter, with grand totals.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pivot<'a> {
    pub pools: Vec<&'a str>,
    pub vcenters: Vec<&'a str>,
    /// `(pools + 1) × (vcenters + 1)` cells, row-major; the last row and column are the
    /// grand totals. `None`: no VM in that cell.
    cells: Vec<Option<f64>>,
}

impl<'a> Pivot<'a> {
    pub fn new(metric: PivotMetric, vms: &'a [VmSummary]) -> Pivot<'a> {
        let mapping = TierMapping::default();
        let distinct = |key: fn(&'a VmSummary) -> &'a str| {
            let mut values: Vec<&str> = vms
                .iter()
                .map(key)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            values.sort_unstable();
            values
        };
        let mut pools = distinct(|vm| &vm.placement.resource_pool);
        pools.sort_by_key(|pool| pool_order(&mapping, pool));
        let vcenters = distinct(|vm| &vm.vcenter);
        let index = |values: &[&'a str]| -> HashMap<&'a str, usize> {
            values.iter().enumerate().map(|(i, v)| (*v, i)).collect()
        };
        let (pool_index, vcenter_index) = (index(&pools), index(&vcenters));
        let (total_row, total_col) = (pools.len(), vcenters.len());
        let width = total_col + 1;
        let mut cells = vec![None; (total_row + 1) * width];
        // (row, column, name) already counted, for the distinct count.
        let mut counted: HashSet<(usize, usize, &str)> = HashSet::new();
        for vm in vms {
            let (Some(&row), Some(&col)) = (
                pool_index.get(vm.placement.resource_pool.as_str()),
                vcenter_index.get(vm.vcenter.as_str()),
            ) else {
                continue;
            };
            for (r, c) in [
                (row, col),
                (row, total_col),
                (total_row, col),
                (total_row, total_col),
            ] {
                let add = match metric {
                    PivotMetric::AvgVcpu => vm.figures.avg_vcpu_count,
                    PivotMetric::AvgRam => vm.figures.avg_ram_gb,
                    PivotMetric::ProratedVmCount => vm.figures.avg_is_present,
                    PivotMetric::VmNameCount => {
                        f64::from(u8::from(counted.insert((r, c, &vm.placement.name))))
                    }
                };
                let cell = &mut cells[r * width + c];
                *cell = Some(cell.unwrap_or(0.0) + add);
            }
        }
        Pivot {
            pools,
            vcenters,
            cells,
        }
    }

    /// Rows × columns the table takes on the sheet, labels and totals included.
    pub fn size(&self) -> (u64, u64) {
        (self.pools.len() as u64 + 2, self.vcenters.len() as u64 + 2)
    }

    /// The value for pool row `row` and vCenter column `col`; `pools.len()` and
    /// `vcenters.len()` address the grand totals.
    pub fn value(&self, row: usize, col: usize) -> Option<f64> {
        self.cells
            .get(row * (self.vcenters.len() + 1) + col)
            .copied()
            .flatten()
    }
}

/// One table of the Summary sheet, ready to write.
struct Table<'a> {
    spec: &'a PivotSpec,
    placement: Placement,
    /// The cells the table actually takes: what its workbook name refers to.
    extent: Area,
    pivot: Pivot<'a>,
}

/// The Summary sheet's tables: validated, aggregated and checked to fit their ranges, so a
/// workbook fails on a bad spec before any sheet is written.
pub(super) struct Summary<'a> {
    tables: Vec<Table<'a>>,
}

impl<'a> Summary<'a> {
    pub fn prepare(specs: &'a [PivotSpec], vms: &'a [VmSummary]) -> Result<Summary<'a>, Error> {
        let placements = place(specs)?;
        let mut tables = Vec::with_capacity(specs.len());
        for (index, (spec, placement)) in specs.iter().zip(placements).enumerate() {
            let pivot = Pivot::new(spec.metric, vms);
            let (rows, cols) = pivot.size();
            let area = placement.area;
            let fits = rows <= area.rows() && cols <= area.cols();
            // Inside the range, so the conversions cannot fail.
            let (Some(height), Some(width)) = (
                RowNum::try_from(rows - 1).ok().filter(|_| fits),
                ColNum::try_from(cols - 1).ok().filter(|_| fits),
            ) else {
                return Err(Error::PivotDoesNotFit {
                    index,
                    name: spec.pivot_name.clone(),
                    range: area.to_string(),
                    rows,
                    cols,
                    range_rows: area.rows(),
                    range_cols: area.cols(),
                });
            };
            let extent = Area {
                last_row: area.first_row + height,
                last_col: area.first_col + width,
                ..area
            };
            tables.push(Table {
                spec,
                placement,
                extent,
                pivot,
            });
        }
        Ok(Summary { tables })
    }

    /// Adds the Summary sheet with its tables and a workbook name over each; with no
    /// tables configured there is no Summary sheet.
    pub fn write(&self, workbook: &mut Workbook, styles: &Styles) -> Result<(), Error> {
        if self.tables.is_empty() {
            return Ok(());
        }
        let sheet_error = |source| Error::Sheet {
            sheet: SHEET,
            source,
        };
        let sheet = workbook.add_worksheet();
        sheet.set_name(SHEET).map_err(sheet_error)?;
        for table in &self.tables {
            write_pivot(sheet, styles, table).map_err(sheet_error)?;
        }
        for Table { spec, extent, .. } in &self.tables {
            let range = cell_range_absolute(
                extent.first_row,
                extent.first_col,
                extent.last_row,
                extent.last_col,
            );
            workbook
                .define_name(&spec.pivot_name, &format!("={SHEET}!{range}"))
                .map_err(sheet_error)?;
        }
        Ok(())
    }
}

fn write_pivot(
    sheet: &mut rust_xlsxwriter::Worksheet,
    styles: &Styles,
    table: &Table,
) -> Result<(), XlsxError> {
    let Table {
        spec,
        placement,
        pivot,
        ..
    } = table;
    let (top, left) = (placement.area.first_row, placement.area.first_col);
    let (title_row, title_col) = placement.title;
    sheet.write_string_with_format(title_row, title_col, &spec.title, &styles.bold)?;
    let number = styles.of(spec.metric.style());
    let total = styles.bold_of(spec.metric.style());
    let labels = pivot
        .vcenters
        .iter()
        .copied()
        .chain([GRAND_TOTAL])
        .enumerate();
    sheet.write_string_with_format(top, left, ROW_LABEL, &styles.bold)?;
    sheet.set_column_width(left, 24)?;
    for (c, label) in labels {
        let col = offset(left, c + 1)?;
        sheet.write_string_with_format(top, col, label, &styles.bold)?;
        sheet.set_column_width(col, 18)?;
    }
    let rows = pivot
        .pools
        .iter()
        .map(|pool| if pool.is_empty() { NO_POOL } else { pool })
        .chain([GRAND_TOTAL])
        .enumerate();
    for (r, label) in rows {
        let row = offset(top, r + 1)?;
        let is_total_row = r == pivot.pools.len();
        let label_format = if is_total_row {
            &styles.bold
        } else {
            styles.of(Style::Text)
        };
        sheet.write_string_with_format(row, left, label, label_format)?;
        for c in 0..=pivot.vcenters.len() {
            let col = offset(left, c + 1)?;
            let format = if is_total_row || c == pivot.vcenters.len() {
                &total
            } else {
                number
            };
            match pivot.value(r, c) {
                Some(x) => sheet.write_number_with_format(row, col, x, format)?,
                None => sheet.write_blank(row, col, format)?,
            };
        }
    }
    Ok(())
}

/// `base + i`: a row or column inside a table whose extent was checked to fit the sheet.
fn offset<T>(base: T, i: usize) -> Result<T, XlsxError>
where
    T: TryFrom<usize> + std::ops::Add<Output = T>,
{
    T::try_from(i)
        .map(|i| base + i)
        .map_err(|_| XlsxError::RowColumnLimitError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Figures, Placement as VmPlacement};

    fn vm(vcenter: &str, pool: &str, name: &str, vcpu: f64, ram: f64, present: f64) -> VmSummary {
        VmSummary {
            vcenter: vcenter.to_string(),
            vm_id: format!("vm-{name}"),
            placement: VmPlacement {
                name: name.to_string(),
                resource_pool: pool.to_string(),
                ..VmPlacement::default()
            },
            figures: Figures {
                avg_vcpu_count: vcpu,
                avg_ram_gb: ram,
                avg_is_present: present,
                ..Figures::default()
            },
        }
    }

    fn sample() -> Vec<VmSummary> {
        vec![
            vm("vc-b", "Dev", "web", 2.0, 4.0, 1.0),
            vm("vc-a", "Gold", "db", 4.0, 16.0, 0.5),
            vm("vc-a", "Gold", "db", 1.0, 2.0, 0.25),
            vm("vc-b", "tin", "db", 8.0, 32.0, 1.0),
            vm("vc-a", "Archive", "web", 0.5, 1.0, 0.125),
            vm("vc-b", "", "orphan", 1.0, 1.0, 1.0),
        ]
    }

    #[test]
    fn pools_list_tiers_first_then_others_alphabetically_then_blank() {
        let vms = sample();
        let pivot = Pivot::new(PivotMetric::AvgVcpu, &vms);
        assert_eq!(pivot.pools, ["tin", "Gold", "Archive", "Dev", ""]);
        assert_eq!(pivot.vcenters, ["vc-a", "vc-b"]);
        assert_eq!(pivot.size(), (7, 4));
    }

    #[test]
    fn sums_fill_cells_and_grand_totals_and_empty_cells_stay_blank() {
        let vms = sample();
        let vcpu = Pivot::new(PivotMetric::AvgVcpu, &vms);
        // Gold row: vc-a 4 + 1, vc-b nothing, total 5.
        assert_eq!(vcpu.value(1, 0), Some(5.0));
        assert_eq!(vcpu.value(1, 1), None);
        assert_eq!(vcpu.value(1, 2), Some(5.0));
        // Grand Total row: vc-a 5.5, vc-b 11, all 16.5.
        assert_eq!(vcpu.value(5, 0), Some(5.5));
        assert_eq!(vcpu.value(5, 1), Some(11.0));
        assert_eq!(vcpu.value(5, 2), Some(16.5));
        let present = Pivot::new(PivotMetric::ProratedVmCount, &vms);
        assert_eq!(present.value(1, 0), Some(0.75));
        assert_eq!(present.value(5, 2), Some(3.875));
        let ram = Pivot::new(PivotMetric::AvgRam, &vms);
        assert_eq!(ram.value(5, 2), Some(56.0));
    }

    #[test]
    fn name_counts_count_each_name_once_per_cell_and_per_total() {
        let vms = sample();
        let names = Pivot::new(PivotMetric::VmNameCount, &vms);
        // Two "db" VMs in Gold on vc-a: one name.
        assert_eq!(names.value(1, 0), Some(1.0));
        // vc-a has db and web; vc-b has web, db, orphan.
        assert_eq!(names.value(5, 0), Some(2.0));
        assert_eq!(names.value(5, 1), Some(3.0));
        // Overall: db, web, orphan.
        assert_eq!(names.value(5, 2), Some(3.0));
    }

    #[test]
    fn a_pivot_of_no_vms_is_just_labels_and_a_blank_total() {
        let pivot = Pivot::new(PivotMetric::VmNameCount, &[]);
        assert_eq!(pivot.size(), (2, 2));
        assert_eq!(pivot.value(0, 0), None);
    }

    #[test]
    fn ranges_parse_with_or_without_the_sheet_and_dollars_in_any_corner_order() {
        let area = Area {
            first_row: 2,
            first_col: 0,
            last_row: 39,
            last_col: 7,
        };
        for text in [
            "A3:H40",
            "Summary!A3:H40",
            "'Summary'!$A$3:$H$40",
            "summary!h40:a3",
        ] {
            assert_eq!(parse_range(text), Ok(area), "{text}");
        }
        assert_eq!(area.to_string(), "A3:H40");
        let wide = parse_range("XFD1048576:AA1").unwrap();
        assert_eq!(
            (wide.first_col, wide.last_col, wide.last_row),
            (26, 16_383, 1_048_575)
        );
    }

    #[test]
    fn malformed_ranges_and_other_sheets_are_rejected() {
        for text in [
            "A3",
            "A3:",
            "A0:B4",
            "3A:B4",
            "XFE1:XFE2",
            "A1:B1048577",
            "A3-H40",
            "A$$3:B4",
        ] {
            let err = parse_range(text).unwrap_err();
            assert!(err.contains("is not a cell range"), "{text}: {err}");
        }
        let err = parse_range("Totals!A3:H40").unwrap_err();
        assert!(err.contains("on sheet \"Totals\""), "{err}");
    }

    fn spec(metric: PivotMetric, name: &str, range: &str, title_cell: Option<&str>) -> PivotSpec {
        PivotSpec {
            metric,
            title: format!("{metric:?}"),
            pivot_name: name.to_string(),
            pivot_range: range.to_string(),
            title_cell: title_cell.map(str::to_string),
        }
    }

    fn error_of(specs: &[PivotSpec]) -> String {
        validate_pivots(specs).unwrap_err().to_string()
    }

    #[test]
    fn the_default_specs_are_valid_and_titled_above_their_tables() {
        let specs = PivotSpec::defaults();
        assert_eq!(specs.len(), 4);
        let placed = place(&specs).unwrap();
        assert_eq!(placed[0].title, (1, 0));
        assert_eq!(placed[3].area.to_string(), "AT3:BG1002");
    }

    #[test]
    fn validation_errors_name_the_index_and_field() {
        use PivotMetric::*;
        let ok = spec(AvgVcpu, "First", "A3:H40", None);
        let cases = [
            (
                vec![ok.clone(), spec(AvgRam, "Second", "Summary!A3-H40", None)],
                "report_summary_pivots[1].pivot_range: \"Summary!A3-H40\" is not a cell range like A3:H40 or Summary!A3:H40",
            ),
            (
                vec![spec(AvgRam, "1st", "A3:H40", None)],
                "report_summary_pivots[0].pivot_name: \"1st\" is not a valid Excel name",
            ),
            (
                vec![ok.clone(), spec(AvgRam, "first", "J3:P40", None)],
                "report_summary_pivots[1].pivot_name: \"first\" is already the name of report_summary_pivots[0]",
            ),
            (
                vec![ok.clone(), spec(AvgRam, "Second", "H40:K50", None)],
                "report_summary_pivots[1].pivot_range: H40:K50 overlaps report_summary_pivots[0].pivot_range A3:H40",
            ),
            (
                vec![ok.clone(), spec(AvgRam, "Second", "A2:A2", None)],
                "report_summary_pivots[1].pivot_range: A2:A2 is too small",
            ),
            (
                vec![spec(AvgRam, "Second", "A1:D9", None)],
                "report_summary_pivots[0].title_cell: pivot_range A1:D9 starts on row 1",
            ),
            (
                vec![spec(AvgRam, "Second", "A1:D9", Some("B2"))],
                "report_summary_pivots[0].title_cell: B2 lies inside this table's pivot_range A1:D9",
            ),
            (
                vec![ok.clone(), spec(AvgRam, "Second", "J3:P40", Some("A2"))],
                "report_summary_pivots[1].title_cell: A2 is taken by report_summary_pivots[0]",
            ),
            (
                vec![ok.clone(), spec(AvgRam, "Second", "A1:H2", Some("Z1"))],
                "report_summary_pivots[1].pivot_range: A1:H2 covers A2, the title cell of report_summary_pivots[0]",
            ),
            (
                vec![spec(AvgRam, "Second", "B3:D9", Some("Totals!A1"))],
                "report_summary_pivots[0].title_cell: \"Totals!A1\" is on sheet \"Totals\"",
            ),
        ];
        for (specs, expected) in cases {
            let err = error_of(&specs);
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
        }
    }

    #[test]
    fn specs_deserialize_from_settings_and_reject_unknown_fields() {
        let yaml = "- metric: prorated_vm_count\n  title: VMs\n  pivot_name: Vms\n  pivot_range: Summary!B4:F20\n  title_cell: B2\n";
        let specs: Vec<PivotSpec> = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(specs[0].metric, PivotMetric::ProratedVmCount);
        assert_eq!(specs[0].title_cell.as_deref(), Some("B2"));
        let unknown = "- metric: avg_vcpu\n  title: x\n  pivot_name: X\n  pivot_range: A3:B4\n  colour: red\n";
        assert!(serde_yaml::from_str::<Vec<PivotSpec>>(unknown).is_err());
    }

    #[test]
    fn a_table_larger_than_its_range_names_the_spec_and_the_size_it_needs() {
        let vms = sample();
        let specs = [spec(PivotMetric::AvgVcpu, "Small", "B3:D8", None)];
        let Err(err) = Summary::prepare(&specs, &vms) else {
            panic!("a 6 × 3 range cannot hold a 7 × 4 table");
        };
        assert_eq!(err.reason(), "PivotDoesNotFit");
        assert_eq!(
            err.to_string(),
            "report_summary_pivots[0] (Small): the table needs 7 rows × 4 columns but pivot_range B3:D8 holds 6 × 3; enlarge it"
        );
    }
}
