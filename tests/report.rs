//! The XLSX reports read back by a real spreadsheet engine. LibreOffice (`soffice`, path in
//! `VCTP_TEST_SOFFICE`, exported by `scripts/test.sh`) converts the daily, monthly and
//! hourly workbooks, built from synthetic snapshots aggregated in SQLite, to one CSV per
//! sheet, and to flat ODS for the workbook names and filters. The tests compare what the
//! engine read with the rows the workbooks were built from, and the Summary tables with
//! sums computed here.
//!
//! CSV export uses LibreOffice's raw values ("save cell contents as shown" off), which it
//! writes with 15 significant digits whatever the number format: numbers are checked to be
//! the input rounded to 15 significant digits. Date-time cells are exported in their
//! `yyyy-mm-dd hh:mm:ss` format and compared to the second.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use vctp::aggregate::engine::{aggregate_daily, aggregate_monthly, hourly_totals};
use vctp::aggregate::hourly::HourTotals;
use vctp::aggregate::{Day, Engine, VmSummary};
use vctp::inventory::HourlyRow;
use vctp::inventory::csv::HOURLY_COLUMNS;
use vctp::output::SUMMARY_COLUMNS;
use vctp::report::{
    self, Costs, Cover, PivotMetric, PivotSpec, daily_workbook, hourly_workbook, monthly_workbook,
};
use vctp::store::grain::{Grain, TotalsGrain};
use vctp::store::totals::VcenterTotals;
use vctp::synth::Inventory;

/// One `soffice` conversion takes 2–5 s here; this only stops a hung one.
const SOFFICE_TIMEOUT: Duration = Duration::from_secs(120);
/// LibreOffice's CSV filter: comma, double quote, UTF-8, from line 1, raw values (not as
/// shown), no formulas, every sheet to its own `NAME-Sheet.csv` (the trailing -1).
const CSV_FILTER: &str =
    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1";

/// A sheet as LibreOffice exported it: rows of cells.
type Grid = Vec<Vec<String>>;

/// The inputs of the three workbooks and what LibreOffice read back from them.
struct Fixture {
    day: Day,
    daily_vms: Vec<VmSummary>,
    daily_totals: Vec<VcenterTotals>,
    monthly_vms: Vec<VmSummary>,
    month_days: Vec<VcenterTotals>,
    monthly_pivots: Vec<PivotSpec>,
    hourly_rows: Vec<HourlyRow>,
    hours: Vec<HourTotals>,
    /// `(workbook, sheet)` → grid, e.g. `("daily", "VMs")`.
    sheets: HashMap<(String, String), Grid>,
    /// The daily workbook as flat ODS (content.xml and settings in one file).
    daily_fods: String,
}

impl Fixture {
    fn sheet(&self, workbook: &str, sheet: &str) -> &Grid {
        self.sheets
            .get(&(workbook.to_string(), sheet.to_string()))
            .unwrap_or_else(|| panic!("LibreOffice exported no sheet {sheet:?} of {workbook}.xlsx"))
    }
}

fn soffice() -> PathBuf {
    std::env::var_os("VCTP_TEST_SOFFICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "VCTP_TEST_SOFFICE is not set: run the tests through scripts/test.sh, which installs LibreOffice and exports it"
            )
        })
}

/// The 2026-01-31 Cover of a workbook kind.
fn cover(kind: &str, period: &str, engine: Option<Engine>) -> Cover {
    Cover {
        title: format!("vCTP {kind} report"),
        period: period.to_string(),
        generated_at: GENERATED_AT,
        engine,
        scope: "all".to_string(),
        hosts: Vec::new(),
    }
}

/// 2026-02-01T06:07:08Z.
const GENERATED_AT: i64 = 1_769_926_028;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let soffice = soffice();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let first = Day::parse("2026-01-29").unwrap();
    let day = Day::parse("2026-01-31").unwrap();
    let month = day.month();
    // Four days: the first snapshot of 2026-02-01 stands for the last hour of 2026-01-31.
    let inventory = Inventory::new(120, 3, first, 4, 41);
    let (daily_vms, daily_totals, monthly_vms, month_days, hours) = runtime.block_on(async {
        let db = common::sqlite().await;
        common::import(&db.store, common::synthetic_rows(&inventory, first, 4)).await;
        for d in [first, first.next(), day] {
            aggregate_daily(&db.store, d, Engine::Rust).await.unwrap();
        }
        aggregate_monthly(&db.store, month, Engine::Rust)
            .await
            .unwrap();
        let store = &db.store;
        (
            store.summaries(Grain::Daily, day.start()).await.unwrap(),
            store
                .totals(TotalsGrain::Daily, day.start(), day.end())
                .await
                .unwrap(),
            store
                .summaries(Grain::Monthly, month.start())
                .await
                .unwrap(),
            store
                .totals(TotalsGrain::Daily, month.start(), month.end())
                .await
                .unwrap(),
            hourly_totals(store, day).await.unwrap(),
        )
    });
    assert_eq!(month_days.len(), 9, "3 vCenters × 3 days of daily totals");
    // The noon tick: each vCenter's first snapshot at or after 12:00.
    let noon = day.start() + 12 * 3_600;
    let hourly_rows: Vec<HourlyRow> = (0..inventory.vcenters().len())
        .flat_map(|v| {
            let t = inventory
                .snapshot_times(v, day)
                .into_iter()
                .find(|t| *t >= noon)
                .expect("a snapshot after noon");
            inventory.rows_at(v, t).collect::<Vec<_>>()
        })
        .collect();

    // Stacked rather than side by side, with explicit title cells.
    let monthly_pivots = vec![
        PivotSpec {
            metric: PivotMetric::VmNameCount,
            title: "Distinct VM names".into(),
            pivot_name: "MonthNames".into(),
            pivot_range: "B4:G15".into(),
            title_cell: Some("Summary!A1".into()),
        },
        PivotSpec {
            metric: PivotMetric::AvgRam,
            title: "RAM GB".into(),
            pivot_name: "MonthRam".into(),
            pivot_range: "Summary!$B$20:$H$40".into(),
            title_cell: Some("B18".into()),
        },
    ];

    // Removed when this function returns: a static fixture is never dropped.
    let dir = tempfile::tempdir().expect("a temp dir");
    let workbooks = [
        (
            "daily",
            daily_workbook(
                &cover("daily", "2026-01-31", Some(Engine::Rust)),
                &daily_vms,
                &daily_totals,
                &PivotSpec::defaults(),
                Costs::Unpriced,
            ),
        ),
        (
            "monthly",
            monthly_workbook(
                &cover("monthly", "2026-01", Some(Engine::Rust)),
                &monthly_vms,
                &month_days,
                &monthly_pivots,
                Costs::Unpriced,
            ),
        ),
        (
            "hourly",
            hourly_workbook(
                &cover("hourly", "2026-01-31 12:00", None),
                &hourly_rows,
                &hours,
            ),
        ),
    ];
    let mut files = Vec::new();
    for (name, bytes) in workbooks {
        let bytes = bytes.unwrap_or_else(|e| panic!("building the {name} workbook: {e}"));
        let path = dir.path().join(format!("{name}.xlsx"));
        std::fs::write(&path, bytes).expect("write a workbook");
        files.push(path);
    }
    let csv_dir = dir.path().join("csv");
    convert(&soffice, dir.path(), CSV_FILTER, &csv_dir, &files);
    let fods_dir = dir.path().join("fods");
    convert(&soffice, dir.path(), "fods", &fods_dir, &files[..1]);

    let mut sheets = HashMap::new();
    for entry in std::fs::read_dir(&csv_dir).expect("read the CSV directory") {
        let path = entry.expect("a CSV file").path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (workbook, sheet) = stem.split_once('-').expect("NAME-Sheet.csv");
        sheets.insert((workbook.to_string(), sheet.to_string()), read_grid(&path));
    }
    let daily_fods =
        std::fs::read_to_string(fods_dir.join("daily.fods")).expect("LibreOffice wrote daily.fods");
    Fixture {
        day,
        daily_vms,
        daily_totals,
        monthly_vms,
        month_days,
        monthly_pivots,
        hourly_rows,
        hours,
        sheets,
        daily_fods,
    }
}

/// Runs one headless `soffice --convert-to` over `files` with a private profile (so
/// parallel runs never share one), failing on a non-zero exit or after the timeout.
fn convert(soffice: &Path, work: &Path, filter: &str, out_dir: &Path, files: &[PathBuf]) {
    let profile = tempfile::tempdir_in(work).expect("a profile dir");
    let started = Instant::now();
    let mut child = Command::new(soffice)
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.path().display()
        ))
        .args([
            "--headless",
            "--norestore",
            "--convert-to",
            filter,
            "--outdir",
        ])
        .arg(out_dir)
        .args(files)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", soffice.display()));
    loop {
        if child.try_wait().expect("wait for soffice").is_some() {
            break;
        }
        if started.elapsed() > SOFFICE_TIMEOUT {
            child.kill().ok();
            panic!("soffice --convert-to {filter} took over {SOFFICE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("soffice output");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "soffice failed: {log}");
    eprintln!(
        "soffice --convert-to {} of {} file(s): {:.1} s",
        filter.split(':').next().unwrap_or(filter),
        files.len(),
        started.elapsed().as_secs_f64()
    );
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy();
        assert!(
            log.contains(&format!("{stem}.xlsx")),
            "soffice did not convert {stem}.xlsx: {log}"
        );
    }
}

fn read_grid(path: &Path) -> Grid {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// The cell at zero-based `(row, col)`, empty past the exported area.
fn cell(grid: &Grid, row: usize, col: usize) -> &str {
    grid.get(row)
        .and_then(|r| r.get(col))
        .map_or("", String::as_str)
}

/// Whether `shown` is `x` rounded to 15 significant digits, as LibreOffice writes raw
/// values. It rounds a 17-digit rendering of the double, so a value a hair below a half can
/// round up: hence one unit of the 17th digit on top of the half unit of the 15th, and two
/// ulps for the subtraction here.
fn shows(x: f64, shown: &str) -> bool {
    let Ok(y) = shown.parse::<f64>() else {
        return false;
    };
    if x == 0.0 {
        return y == 0.0;
    }
    let unit = 10f64.powi(x.abs().log10().floor() as i32 - 14);
    let ulp = x.abs().next_up() - x.abs();
    (y - x).abs() <= 0.5 * unit + unit / 100.0 + 2.0 * ulp
}

fn utc_seconds(shown: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(shown, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|dt| dt.and_utc().timestamp())
}

fn utc_date(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// Checks one row of a sheet against a serialized input row: each header names the field.
/// Times (`*_time`, `hour_start`) are date-times, blank when 0; booleans are 0/1; other
/// numbers are raw values. `skip` lists headers checked by the caller.
fn assert_row(what: &str, header: &[String], row: &[String], expected: &Value, skip: &[&str]) {
    let fields: &Map<String, Value> = expected.as_object().expect("a serialized struct");
    for (column, shown) in header.iter().zip(row) {
        if skip.contains(&column.as_str()) {
            continue;
        }
        let value = fields
            .get(column)
            .unwrap_or_else(|| panic!("{what}: no input field for column {column:?}"));
        let is_time = column.ends_with("_time") || column == "hour_start";
        let ok = match value {
            Value::String(s) => s == shown,
            Value::Bool(b) => shown == if *b { "1" } else { "0" },
            Value::Number(n) if is_time => match n.as_i64() {
                Some(0) => shown.is_empty(),
                t => utc_seconds(shown) == t,
            },
            Value::Number(n) => shows(n.as_f64().unwrap(), shown),
            other => panic!("{what}: unexpected input value {other}"),
        };
        assert!(
            ok,
            "{what}, column {column}: input {value}, LibreOffice read {shown:?}"
        );
    }
}

/// Checks a data sheet: its header, then each row against the input row of the same index.
fn assert_sheet<T: serde::Serialize>(
    what: &str,
    grid: &Grid,
    columns: &[&str],
    rows: &[T],
    skip: &[&str],
) {
    assert_eq!(grid[0], columns, "{what}: header");
    assert_eq!(grid.len() - 1, rows.len(), "{what}: data rows");
    for (i, (shown, row)) in grid[1..].iter().zip(rows).enumerate() {
        let value = serde_json::to_value(row).unwrap();
        assert_row(
            &format!("{what} row {}", i + 2),
            &grid[0],
            shown,
            &value,
            skip,
        );
    }
}

/// The Cover says what the workbook is, for which period, and how many rows it holds.
fn assert_cover(grid: &Grid, title: &str, period: &str, counts: &[(&str, usize)]) {
    assert_eq!(cell(grid, 0, 0), title);
    let facts: HashMap<&str, &str> = grid
        .iter()
        .filter(|row| row.len() >= 2 && !row[1].is_empty())
        .map(|row| (row[0].as_str(), row[1].as_str()))
        .collect();
    assert_eq!(facts.get("Period"), Some(&period), "{facts:?}");
    assert_eq!(facts.get("Scope"), Some(&"all"));
    assert_eq!(
        facts.get("Generated at (UTC)"),
        Some(&"2026-02-01T06:07:08Z")
    );
    for (sheet, count) in counts {
        assert_eq!(
            facts.get(format!("Rows on {sheet}").as_str()),
            Some(&count.to_string().as_str()),
            "row count of {sheet}"
        );
    }
    assert!(
        grid.iter()
            .any(|row| row[0].contains("time-weighted") || row[0].contains("fraction of the hour")),
        "the Cover explains the arithmetic: {grid:?}"
    );
}

/// Rows sorted as the totals sheets are: by vCenter, then time.
fn sorted_totals(totals: &[VcenterTotals]) -> Vec<&VcenterTotals> {
    let mut sorted: Vec<&VcenterTotals> = totals.iter().collect();
    sorted.sort_by(|a, b| (&a.vcenter, a.period_start).cmp(&(&b.vcenter, b.period_start)));
    sorted
}

/// Checks a sheet of per-day vCenter totals, labels included.
fn assert_day_totals(what: &str, grid: &Grid, totals: &[VcenterTotals]) {
    let columns = [
        "vcenter",
        "interval",
        "day",
        "total_samples",
        "vm_count",
        "vcpu_count",
        "ram_gb",
        "disk_gb",
        "tin",
        "bronze",
        "silver",
        "gold",
    ];
    let sorted = sorted_totals(totals);
    assert_sheet(what, grid, &columns, &sorted, &["interval", "day"]);
    for (row, t) in grid[1..].iter().zip(&sorted) {
        let day = utc_date(t.period_start);
        let next = utc_date(t.period_start + 86_400);
        assert_eq!(row[1], format!("{day} to {next}"), "{what}: interval label");
        assert_eq!(row[2], day, "{what}: day");
    }
}

/// Zero-based (row, column) of an A1 cell, with an optional sheet and `$`s.
fn a1(text: &str) -> (usize, usize) {
    let text = text.rsplit('!').next().unwrap().replace('$', "");
    let letters: String = text.chars().take_while(char::is_ascii_alphabetic).collect();
    let col = letters.bytes().fold(0, |n, b| {
        n * 26 + usize::from(b.to_ascii_uppercase() - b'A') + 1
    });
    let row: usize = text[letters.len()..].parse().unwrap();
    (row - 1, col - 1)
}

/// The tier pools first (by tier, then name), then the rest by name, then no pool.
fn expected_pools(vms: &[VmSummary]) -> Vec<String> {
    let tiers = ["tin", "bronze", "silver", "gold"];
    let mut pools: Vec<String> = vms
        .iter()
        .map(|vm| vm.placement.resource_pool.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    pools.sort_by_key(|pool| {
        let rank = match tiers.iter().position(|t| pool.eq_ignore_ascii_case(t)) {
            Some(i) => i,
            None if pool.is_empty() => 9,
            None => 5,
        };
        (rank, pool.clone())
    });
    pools
}

/// Checks one Summary table at its spec's place against sums computed here from `vms`.
/// Returns the table's extent: (first row, first col, last row, last col).
fn assert_pivot(grid: &Grid, spec: &PivotSpec, vms: &[VmSummary]) -> (usize, usize, usize, usize) {
    let what = &spec.pivot_name;
    let (top, left) = a1(spec.pivot_range.split(':').next().unwrap());
    let title = spec.title_cell.as_deref().map_or((top - 1, left), a1);
    assert_eq!(cell(grid, title.0, title.1), spec.title, "{what}: title");

    let vcenters: Vec<&str> = vms
        .iter()
        .map(|vm| vm.vcenter.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let pools = expected_pools(vms);
    let mut header = vec!["Resource pool"];
    header.extend(&vcenters);
    header.push("Grand Total");
    for (i, label) in header.iter().enumerate() {
        assert_eq!(cell(grid, top, left + i), *label, "{what}: header");
    }

    // Independent sums: filter the VMs of each cell.
    let value = |pool: Option<&str>, vcenter: Option<&str>| -> Option<f64> {
        let members: Vec<&VmSummary> = vms
            .iter()
            .filter(|vm| pool.is_none_or(|p| vm.placement.resource_pool == p))
            .filter(|vm| vcenter.is_none_or(|v| vm.vcenter == v))
            .collect();
        if members.is_empty() {
            return None;
        }
        Some(match spec.metric {
            PivotMetric::AvgVcpu => members.iter().map(|vm| vm.figures.avg_vcpu_count).sum(),
            PivotMetric::AvgRam => members.iter().map(|vm| vm.figures.avg_ram_gb).sum(),
            PivotMetric::ProratedVmCount => {
                members.iter().map(|vm| vm.figures.avg_is_present).sum()
            }
            PivotMetric::VmNameCount => members
                .iter()
                .map(|vm| vm.placement.name.as_str())
                .collect::<HashSet<_>>()
                .len() as f64,
        })
    };
    let row_keys = pools.iter().map(|p| Some(p.as_str())).chain([None]);
    for (r, pool) in row_keys.enumerate() {
        let row = top + 1 + r;
        let label = match pool {
            None => "Grand Total",
            Some("") => "(blank)",
            Some(p) => p,
        };
        assert_eq!(cell(grid, row, left), label, "{what}: row label");
        let col_keys = vcenters.iter().map(|v| Some(*v)).chain([None]);
        for (c, vcenter) in col_keys.enumerate() {
            let shown = cell(grid, row, left + 1 + c);
            match value(pool, vcenter) {
                None => assert_eq!(shown, "", "{what} {label}/{vcenter:?}: no VMs"),
                Some(x) => assert!(
                    shows(x, shown),
                    "{what} {label}/{vcenter:?}: expected {x}, LibreOffice read {shown:?}"
                ),
            }
        }
    }
    (top, left, top + pools.len() + 1, left + vcenters.len() + 1)
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn the_daily_vms_sheet_reads_back_as_the_daily_summaries() {
    let f = fixture();
    assert!(f.daily_vms.len() > 100);
    assert_sheet(
        "daily VMs",
        f.sheet("daily", "VMs"),
        &SUMMARY_COLUMNS,
        &f.daily_vms,
        &[],
    );
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn the_daily_summary_tables_equal_sums_of_the_vms_by_pool_and_vcenter() {
    let f = fixture();
    let grid = f.sheet("daily", "Summary");
    for spec in PivotSpec::defaults() {
        assert_pivot(grid, &spec, &f.daily_vms);
    }
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn the_daily_totals_sheet_has_each_vcenters_totals_of_the_day() {
    let f = fixture();
    assert_eq!(f.daily_totals.len(), 3);
    assert_day_totals("daily Totals", f.sheet("daily", "Totals"), &f.daily_totals);
    // The store's daily totals are the sums of the VMs sheet.
    for t in &f.daily_totals {
        let present: f64 = f
            .daily_vms
            .iter()
            .filter(|vm| vm.vcenter == t.vcenter)
            .map(|vm| vm.figures.avg_is_present)
            .sum();
        assert!((present - t.vm_count).abs() < 1e-9, "{}", t.vcenter);
    }
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn every_cover_names_its_period_and_row_counts() {
    let f = fixture();
    assert_cover(
        f.sheet("daily", "Cover"),
        "vCTP daily report",
        "2026-01-31",
        &[("VMs", f.daily_vms.len()), ("Totals", f.daily_totals.len())],
    );
    assert_cover(
        f.sheet("monthly", "Cover"),
        "vCTP monthly report",
        "2026-01",
        &[
            ("VMs", f.monthly_vms.len()),
            ("Daily Totals", f.month_days.len()),
        ],
    );
    assert_cover(
        f.sheet("hourly", "Cover"),
        "vCTP hourly report",
        "2026-01-31 12:00",
        &[
            ("VMs", f.hourly_rows.len()),
            ("Hourly Totals", f.hours.len()),
        ],
    );
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn the_monthly_workbook_reads_back_with_its_vms_custom_tables_and_daily_totals() {
    let f = fixture();
    assert_sheet(
        "monthly VMs",
        f.sheet("monthly", "VMs"),
        &SUMMARY_COLUMNS,
        &f.monthly_vms,
        &[],
    );
    // Three days of 24 hourly snapshots (a few missed): month totals add up the days.
    assert!(f.monthly_vms.iter().all(|vm| vm.figures.total_samples > 60));
    let grid = f.sheet("monthly", "Summary");
    for spec in &f.monthly_pivots {
        assert_pivot(grid, spec, &f.monthly_vms);
    }
    assert_day_totals(
        "monthly Daily Totals",
        f.sheet("monthly", "Daily Totals"),
        &f.month_days,
    );
    let labels: BTreeSet<&str> = f.sheet("monthly", "Daily Totals")[1..]
        .iter()
        .map(|row| row[1].as_str())
        .collect();
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        [
            "2026-01-29 to 2026-01-30",
            "2026-01-30 to 2026-01-31",
            "2026-01-31 to 2026-02-01"
        ]
    );
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn the_hourly_workbook_reads_back_with_its_rows_and_interval_totals() {
    let f = fixture();
    assert_sheet(
        "hourly VMs",
        f.sheet("hourly", "VMs"),
        &HOURLY_COLUMNS,
        &f.hourly_rows,
        &[],
    );
    let grid = f.sheet("hourly", "Hourly Totals");
    let columns = [
        "vcenter",
        "hour",
        "hour_start",
        "snapshot_time",
        "vm_count",
        "vcpu_count",
        "ram_gb",
        "disk_gb",
    ];
    let mut hours: Vec<&HourTotals> = f.hours.iter().collect();
    hours.sort_by(|a, b| (&a.vcenter, a.hour_start).cmp(&(&b.vcenter, b.hour_start)));
    assert_eq!(hours.len(), 3 * 24);
    assert_sheet("Hourly Totals", grid, &columns, &hours, &["hour"]);
    let day = f.day.start();
    let expected = (0..3 * 24).map(|i| {
        let start = day + (i % 24) * 3_600;
        let at = |t| {
            DateTime::from_timestamp(t, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M")
                .to_string()
        };
        format!("{} to {}", at(start), at(start + 3_600))
    });
    for (row, label) in grid[1..].iter().zip(expected) {
        assert_eq!(row[1], label);
    }
    assert_eq!(
        grid[24][1], "2026-01-31 23:00 to 2026-02-01 00:00",
        "the last hour of the day"
    );
    assert!(
        utc_seconds(&grid[24][3]).unwrap() >= day + 86_400,
        "the last hour uses a snapshot after midnight"
    );
}

/// `$Summary.$A$3:.$E$11` (LibreOffice's form) for a zero-based extent.
fn ods_range(sheet: &str, (top, left, bottom, right): (usize, usize, usize, usize)) -> String {
    let col = |mut c: usize| {
        let mut name = String::new();
        c += 1;
        while c > 0 {
            name.insert(0, char::from(b'A' + ((c - 1) % 26) as u8));
            c = (c - 1) / 26;
        }
        name
    };
    format!(
        "${sheet}.${}${}:.${}${}",
        col(left),
        top + 1,
        col(right),
        bottom + 1
    )
}

#[test]
#[ignore = "needs LibreOffice: run scripts/test.sh"]
fn pivot_names_cover_each_tables_extent_and_data_sheets_have_filters_and_charts() {
    let f = fixture();
    let grid = f.sheet("daily", "Summary");
    for spec in PivotSpec::defaults() {
        let extent = assert_pivot(grid, &spec, &f.daily_vms);
        let name = format!("table:name=\"{}\"", spec.pivot_name);
        let range = format!(
            "table:cell-range-address=\"{}\"",
            ods_range("Summary", extent)
        );
        let named = f
            .daily_fods
            .split("<table:named-range ")
            .find(|xml| xml.contains(&name))
            .unwrap_or_else(|| panic!("no named range {name} in the ODS"));
        assert!(
            named.contains(&range),
            "{name}: expected {range} in {named:.200}"
        );
    }
    let rows = f.daily_totals.len() + 1;
    for col in ["E", "F", "I", "J", "K", "L"] {
        let series =
            format!("chart:values-cell-range-address=\"Totals.{col}2:Totals.{col}{rows}\"");
        assert!(
            f.daily_fods.contains(&series),
            "no chart series {series} in the ODS"
        );
    }
    for (sheet, rows, last_col) in [
        ("VMs", f.daily_vms.len(), "AB"),
        ("Totals", f.daily_totals.len(), "L"),
    ] {
        let range = format!(
            "table:target-range-address=\"{sheet}.A1:{sheet}.{last_col}{}\"",
            rows + 1
        );
        let filtered = f
            .daily_fods
            .split("<table:database-range ")
            .any(|range_xml| {
                range_xml.contains(&range)
                    && range_xml.contains("table:display-filter-buttons=\"true\"")
            });
        assert!(filtered, "no autofilter {range} in the ODS");
    }
}

#[test]
fn a_bad_pivot_spec_fails_the_workbook_and_an_empty_estate_still_builds_one() {
    let mut specs = PivotSpec::defaults();
    specs[2].pivot_range = "Totals!A1:B2".into();
    let err = daily_workbook(
        &cover("daily", "2026-01-31", None),
        &[],
        &[],
        &specs,
        Costs::Unpriced,
    )
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidPivotSpec");
    assert!(
        err.to_string()
            .starts_with("report_summary_pivots[2].pivot_range: "),
        "{err}"
    );
    // And an empty estate still makes a valid workbook.
    let bytes = daily_workbook(
        &cover("daily", "2026-01-31", None),
        &[],
        &[],
        &PivotSpec::defaults(),
        Costs::Unpriced,
    )
    .unwrap();
    assert_eq!(&bytes[..2], b"PK");
    assert!(report::validate_pivots(&specs).is_err());
}
