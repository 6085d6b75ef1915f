//! The XLSX reports finance opens, built purely from rows: daily and monthly workbooks of VM
//! summaries (VMs, pivot-style Summary tables, vCenter totals with charts) and hourly
//! workbooks of one snapshot (its rows and interval-based hour totals), plus their CSV twins.
//!
//! Every workbook starts with a Cover sheet. Large sheets are written in rust_xlsxwriter's
//! constant-memory mode, so a workbook's memory does not grow with its VM rows; cells hold
//! full-precision numbers and the number formats only round what is shown.

mod charts;
mod costs;
mod daily;
mod focus;
mod hourly;
mod monthly;
mod naming;
mod pivots;
mod sheet;
mod tables;

pub use costs::Costs;
pub use daily::daily_workbook;
pub use focus::{FOCUS_VERSION, focus_csv};
pub use hourly::hourly_workbook;
pub use monthly::monthly_workbook;
pub use naming::report_key;
pub use pivots::{PivotMetric, PivotSpec, validate_pivots};

use crate::aggregate::{Engine, VmSummary};
use crate::inventory::HourlyRow;
use crate::inventory::csv::HourlyCsvWriter;
use crate::output::OutputFormat;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, RowNum, Workbook, Worksheet, XlsxError};
use sheet::{Styles, write_cover};

/// What the Cover sheet says about a workbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    pub title: String,
    /// The period covered, as the caller names it (`2026-01-31`, `2026-01`, an hour…).
    pub period: String,
    /// Unix seconds; shown as a UTC ISO time and used as the file's creation date, so the
    /// same inputs give the same bytes.
    pub generated_at: i64,
    /// The engine that computed the summaries; `None` where none did (hourly rows).
    pub engine: Option<Engine>,
    /// A vCenter name, or "all".
    pub scope: String,
    /// `(vCenter key, host)` of the vCenters in the report whose host is known: a
    /// `VCenterTarget`'s key `NAMESPACE/NAME` does not say which vCenter it is.
    pub hosts: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("report_summary_pivots[{index}].{field}: {problem}")]
    InvalidPivot {
        index: usize,
        field: &'static str,
        problem: String,
    },
    #[error(
        "report_summary_pivots[{index}] ({name}): the table needs {rows} rows × {cols} columns but pivot_range {range} holds {range_rows} × {range_cols}; enlarge it"
    )]
    PivotDoesNotFit {
        index: usize,
        name: String,
        range: String,
        rows: u64,
        cols: u64,
        range_rows: u64,
        range_cols: u64,
    },
    #[error("failed to write the {sheet} sheet: {source}")]
    Sheet {
        sheet: &'static str,
        source: XlsxError,
    },
    #[error("failed to assemble the workbook: {0}")]
    Save(XlsxError),
    #[error("failed to write the summaries as CSV: {0}")]
    SummariesCsv(#[from] crate::output::Error),
    #[error("failed to write the hourly rows as CSV: {0}")]
    HourlyCsv(#[from] crate::inventory::csv::Error),
    #[error(transparent)]
    Focus(#[from] focus::Error),
}

impl Error {
    /// A stable short name, for metric labels and Kubernetes Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidPivot { .. } => "InvalidPivotSpec",
            Error::PivotDoesNotFit { .. } => "PivotDoesNotFit",
            Error::Sheet { .. } => "ReportSheetFailed",
            Error::Save(_) => "ReportSaveFailed",
            Error::SummariesCsv(_) | Error::HourlyCsv(_) | Error::Focus(_) => "ReportCsvFailed",
        }
    }
}

/// Wraps a rust_xlsxwriter error with the sheet being written.
fn on_sheet(sheet: &'static str) -> impl Fn(XlsxError) -> Error {
    move |source| Error::Sheet { sheet, source }
}

/// The sheets every workbook opens with: the Cover, then the VMs sheet, written by
/// `write_vms` in constant memory so that a large estate's rows never sit in memory at once.
/// The Cover counts the VMs and the rows of the totals sheet, `totals` (its name and count),
/// and says what `costs` are (the cost sheets themselves come last).
fn workbook_with_vms(
    cover: &Cover,
    styles: &Styles,
    arithmetic: &[&str],
    vms: usize,
    totals: (&str, usize),
    costs: Costs<'_>,
    write_vms: impl FnOnce(&mut Worksheet, &Styles) -> Result<RowNum, XlsxError>,
) -> Result<Workbook, Error> {
    let mut workbook = new_workbook(cover);
    let mut counts = vec![("VMs", vms), totals];
    counts.extend(costs.row_counts());
    let mut lines = arithmetic.to_vec();
    if let Costs::Priced(_) = costs {
        lines.extend(costs::ARITHMETIC);
    }
    let note = costs.cover_note();
    write_cover(
        workbook.add_worksheet(),
        styles,
        cover,
        note.as_slice(),
        &counts,
        &lines,
    )
    .map_err(on_sheet("Cover"))?;
    let vm_sheet = workbook
        .add_worksheet_with_constant_memory()
        .and_then(|sheet| sheet.set_name("VMs"))
        .map_err(on_sheet("VMs"))?;
    write_vms(vm_sheet, styles).map_err(on_sheet("VMs"))?;
    Ok(workbook)
}

/// Adds the sheet `name` to `workbook`, for the totals after the VMs (and any Summary).
fn add_sheet<'w>(
    workbook: &'w mut Workbook,
    name: &'static str,
) -> Result<&'w mut Worksheet, Error> {
    workbook
        .add_worksheet()
        .set_name(name)
        .map_err(on_sheet(name))
}

/// A workbook whose document properties carry the cover's title and time.
fn new_workbook(cover: &Cover) -> Workbook {
    let mut properties = DocProperties::new().set_title(&cover.title);
    // Out of Excel's range: rust_xlsxwriter then stamps the current time instead.
    if let Ok(created) = ExcelDateTime::from_timestamp(cover.generated_at) {
        properties = properties.set_creation_datetime(&created);
    }
    let mut workbook = Workbook::new();
    workbook.set_properties(&properties);
    workbook
}

fn save(mut workbook: Workbook) -> Result<Vec<u8>, Error> {
    workbook.save_to_buffer().map_err(Error::Save)
}

/// The summaries in the CSV form of `vctp summary daily|monthly --format csv`.
pub fn summaries_csv(vms: &[VmSummary]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    crate::output::write_summaries(&mut out, OutputFormat::Csv, vms)?;
    Ok(out)
}

/// The hourly rows in the columns of `vctp snapshot export`, text that a spreadsheet would
/// run as a formula neutralised.
pub fn hourly_csv(rows: &[HourlyRow]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut writer = HourlyCsvWriter::for_spreadsheets(&mut out)?;
    for row in rows {
        writer.write(row)?;
    }
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::csv::HourlyCsvReader;

    #[test]
    fn the_hourly_csv_twin_reads_back_as_the_same_rows() {
        let day = crate::aggregate::Day::parse("2026-01-05").unwrap();
        let inventory = crate::synth::Inventory::new(20, 2, day, 1, 7);
        let t = inventory.snapshot_times(0, day)[3];
        let rows: Vec<HourlyRow> = inventory.rows_at(0, t).collect();
        let csv = hourly_csv(&rows).unwrap();
        let mut reader = HourlyCsvReader::new(csv.as_slice(), "twin").unwrap();
        let mut back = Vec::new();
        while let Some((_, row)) = reader.next_row().unwrap() {
            back.push(row);
        }
        assert_eq!(back, rows);
    }

    /// What a spreadsheet would run as a formula, as a VM's name (or folder, pool …).
    const FORMULAS: [&str; 6] = [
        "=HYPERLINK(\"http://evil.example/\",\"click\")",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tcmd",
        "\rcmd",
    ];

    /// Every cell that holds `needle` (past its leading tab or CR), as written.
    fn cells_with(csv: &[u8], needle: &str) -> Vec<String> {
        let mut reader = csv::Reader::from_reader(csv);
        reader
            .records()
            .flat_map(|record| {
                record
                    .unwrap()
                    .iter()
                    .filter(|cell| cell.contains(needle.trim_start_matches(['\t', '\r'])))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn report_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        let day = crate::aggregate::Day::parse("2026-01-05").unwrap();
        let inventory = crate::synth::Inventory::new(10, 1, day, 1, 7);
        let t = inventory.snapshot_times(0, day)[3];
        for formula in FORMULAS {
            let mut rows: Vec<HourlyRow> = inventory.rows_at(0, t).collect();
            rows[0].name = formula.to_string();
            rows[0].folder = formula.to_string();
            let cells = cells_with(&hourly_csv(&rows).unwrap(), formula);
            assert_eq!(cells, [format!("'{formula}"), format!("'{formula}")]);
            let mut vms = inventory.daily_summaries(day, &Default::default());
            vms[0].placement.name = formula.to_string();
            let cells = cells_with(&summaries_csv(&vms).unwrap(), formula);
            assert_eq!(cells, [format!("'{formula}")]);
        }
        // Numbers keep their sign: only text columns are touched.
        let mut rows: Vec<HourlyRow> = inventory.rows_at(0, t).collect();
        rows[0].deletion_time = -1;
        let csv = String::from_utf8(hourly_csv(&rows).unwrap()).unwrap();
        assert!(csv.contains(",-1,"), "{csv}");
    }

    #[test]
    fn the_summaries_csv_twin_has_the_summary_command_columns() {
        let day = crate::aggregate::Day::parse("2026-01-05").unwrap();
        let inventory = crate::synth::Inventory::new(10, 1, day, 1, 7);
        let vms = inventory.daily_summaries(day, &Default::default());
        let csv = String::from_utf8(summaries_csv(&vms).unwrap()).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some(crate::output::SUMMARY_COLUMNS.join(",").as_str())
        );
        assert_eq!(lines.count(), vms.len());
    }
}
