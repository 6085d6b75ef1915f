//! What every sheet shares: number formats, the data-table writer (bold frozen header,
//! autofilter, explicit widths), times as Excel serials, labels, and the Cover sheet.

use super::Cover;
use crate::aggregate::Engine;
use chrono::DateTime;
use rust_xlsxwriter::{ColNum, Format, RowNum, Worksheet, XlsxError};
use std::borrow::Cow;

/// How a column's numbers are shown. The cell always holds the full-precision value; the
/// format only rounds what is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Text,
    Integer,
    /// Time-weighted averages, prorated counts and VM-days.
    Average,
    /// Percentages stored as 0–100 (not Excel's ×100 percent format).
    Percent,
    Gigabytes,
    /// UTC date and time.
    Time,
    /// UTC date, for day-grain rows.
    Date,
}

impl Style {
    const ALL: [Style; 7] = [
        Style::Text,
        Style::Integer,
        Style::Average,
        Style::Percent,
        Style::Gigabytes,
        Style::Time,
        Style::Date,
    ];

    fn num_format(self) -> &'static str {
        match self {
            Style::Text => "General",
            Style::Integer => "0",
            Style::Average => "0.000",
            Style::Percent | Style::Gigabytes => "0.00",
            Style::Time => "yyyy-mm-dd hh:mm:ss",
            Style::Date => "yyyy-mm-dd",
        }
    }
}

/// The workbook's formats, made once: rust_xlsxwriter dedupes formats by value, but
/// building one per cell would cost time on 100k-row sheets.
pub(super) struct Styles {
    pub bold: Format,
    pub heading: Format,
    numbers: [Format; Style::ALL.len()],
}

impl Styles {
    pub fn new() -> Styles {
        Styles {
            bold: Format::new().set_bold(),
            heading: Format::new().set_bold().set_font_size(14),
            numbers: Style::ALL.map(|style| Format::new().set_num_format(style.num_format())),
        }
    }

    pub fn of(&self, style: Style) -> &Format {
        &self.numbers[style as usize]
    }

    pub fn bold_of(&self, style: Style) -> Format {
        self.of(style).clone().set_bold()
    }
}

/// One column of a data table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    pub header: &'static str,
    pub style: Style,
    /// In Excel character units; set explicitly because constant-memory sheets cannot autofit.
    pub width: f64,
}

/// One cell value; its column's [`Style`] decides the format.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell<'a> {
    Text(Cow<'a, str>),
    Number(f64),
    /// Unix seconds; 0 (unknown) is left blank.
    Time(i64),
}

impl<'a> Cell<'a> {
    pub fn text(text: &'a str) -> Cell<'a> {
        Cell::Text(Cow::Borrowed(text))
    }

    pub fn int(n: i64) -> Cell<'a> {
        // Counts and Unix times stay far below 2^53, so the conversion is exact.
        Cell::Number(n as f64)
    }
}

/// Writes a header row and `rows` strictly top to bottom (as constant-memory sheets
/// require), freezes the header, and puts an autofilter over the data. Returns the number
/// of data rows (they occupy rows `1..=n`).
pub(super) fn write_table<'a, const N: usize>(
    sheet: &mut Worksheet,
    styles: &Styles,
    columns: &[Column; N],
    rows: impl IntoIterator<Item = [Cell<'a>; N]>,
) -> Result<RowNum, XlsxError> {
    for (col, column) in (0..).zip(columns) {
        sheet.set_column_width(col, column.width)?;
        sheet.write_string_with_format(0, col, column.header, &styles.bold)?;
    }
    let mut row: RowNum = 0;
    for cells in rows {
        row += 1;
        for ((col, column), cell) in (0..).zip(columns).zip(cells) {
            write_cell(sheet, styles, row, col, column.style, &cell)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    let last_col =
        ColNum::try_from(N.saturating_sub(1)).map_err(|_| XlsxError::RowColumnLimitError)?;
    sheet.autofilter(0, 0, row, last_col)?;
    Ok(row)
}

pub(super) fn write_cell(
    sheet: &mut Worksheet,
    styles: &Styles,
    row: RowNum,
    col: ColNum,
    style: Style,
    cell: &Cell<'_>,
) -> Result<(), XlsxError> {
    match cell {
        Cell::Text(text) => sheet.write_string(row, col, text.as_ref())?,
        Cell::Number(x) => sheet.write_number_with_format(row, col, *x, styles.of(style))?,
        Cell::Time(t) => match excel_serial(*t) {
            Some(serial) => sheet.write_number_with_format(row, col, serial, styles.of(style))?,
            None => sheet.write_blank(row, col, styles.of(style))?,
        },
    };
    Ok(())
}

/// 1970-01-01 as an Excel serial (days since 1899-12-30 in the 1900 date system).
const UNIX_EPOCH_SERIAL: i64 = 25_569;
/// 1900-03-01T00:00:00Z: before it Excel's serials are off by its fictional 1900-02-29.
const FIRST_EXCEL_TIME: i64 = -2_203_891_200;
/// 10000-01-01T00:00:00Z: Excel shows no later dates.
const END_OF_EXCEL_TIME: i64 = 253_402_300_800;

/// Unix seconds as an Excel date-time serial, or `None` for 0 ("unknown") and times Excel
/// cannot show, which are left blank.
///
/// The serial is the exact value when a double holds it (midnights, noons: dates stay
/// whole numbers) and otherwise the nearest double *above* it: spreadsheet engines differ
/// in how they show seconds (Excel rounds, LibreOffice truncates), and a serial a hair
/// below `hh:mm:ss` would show one second early in the truncating ones. One ulp (0.3 µs
/// in this century) above it shows the same second in both.
pub(super) fn excel_serial(t: i64) -> Option<f64> {
    if t == 0 || !(FIRST_EXCEL_TIME..END_OF_EXCEL_TIME).contains(&t) {
        return None;
    }
    let days = (t.div_euclid(86_400) + UNIX_EPOCH_SERIAL) as f64;
    let seconds = t.rem_euclid(86_400) as f64;
    let serial = days + seconds / 86_400.0;
    // `serial - days` is exact (a double between two whole numbers it is close to), and the
    // fused multiply-add rounds only once, so its sign is the sign of the rounding error.
    let below = (serial - days).mul_add(86_400.0, -seconds) < 0.0;
    Some(if below { serial.next_up() } else { serial })
}

/// `2026-01-02T03:04:05Z`; a time chrono cannot represent is shown as its number.
pub(super) fn iso_utc(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(
        || format!("{t} (Unix seconds)"),
        |dt| dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// The full-day interval label of the day starting at `start`: `2026-01-01 to 2026-01-02`.
pub(super) fn day_label(start: i64) -> String {
    interval_label(start, start + 86_400, "%Y-%m-%d")
}

/// The label of the hour `[start, end)`: `2026-01-01 23:00 to 2026-01-02 00:00`.
pub(super) fn hour_label(start: i64, end: i64) -> String {
    interval_label(start, end, "%Y-%m-%d %H:%M")
}

fn interval_label(start: i64, end: i64, format: &str) -> String {
    match (
        DateTime::from_timestamp(start, 0),
        DateTime::from_timestamp(end, 0),
    ) {
        (Some(from), Some(to)) => format!("{} to {}", from.format(format), to.format(format)),
        _ => format!("{start} to {end} (Unix seconds)"),
    }
}

/// Writes the Cover sheet: what the workbook is (with the `notes` after its facts), the row
/// count of each data sheet, and how its numbers are computed (one line per entry of
/// `arithmetic`).
pub(super) fn write_cover(
    sheet: &mut Worksheet,
    styles: &Styles,
    cover: &Cover,
    notes: &[(&str, String)],
    row_counts: &[(&str, usize)],
    arithmetic: &[&str],
) -> Result<(), XlsxError> {
    sheet.set_name("Cover")?;
    sheet.set_column_width(0, 24)?;
    sheet.set_column_width(1, 60)?;
    sheet.write_string_with_format(0, 0, &cover.title, &styles.heading)?;
    let engine = match cover.engine {
        Some(Engine::Rust) => "rust",
        Some(Engine::Sql) => "sql",
        None => "n/a",
    };
    let facts = [
        ("Period".to_string(), cover.period.clone()),
        ("Scope".to_string(), cover.scope.clone()),
        (
            "Generated at (UTC)".to_string(),
            iso_utc(cover.generated_at),
        ),
        ("Aggregation engine".to_string(), engine.to_string()),
    ];
    let hosts = cover
        .hosts
        .iter()
        .map(|(vcenter, host)| (format!("Host of {vcenter}"), host.clone()));
    let mut row = 2;
    let notes = notes
        .iter()
        .map(|(label, value)| (label.to_string(), value.clone()));
    for (label, value) in facts.into_iter().chain(hosts).chain(notes) {
        sheet.write_string_with_format(row, 0, label, &styles.bold)?;
        sheet.write_string(row, 1, value)?;
        row += 1;
    }
    for (sheet_name, count) in row_counts {
        sheet.write_string_with_format(row, 0, format!("Rows on {sheet_name}"), &styles.bold)?;
        sheet.write_number_with_format(row, 1, *count as f64, styles.of(Style::Integer))?;
        row += 1;
    }
    row += 1;
    sheet.write_string_with_format(row, 0, "How the numbers are made", &styles.bold)?;
    for line in arithmetic {
        row += 1;
        sheet.write_string(row, 0, *line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_become_excel_serials_counted_from_1899_12_30() {
        let serial = |t| excel_serial(t).unwrap();
        assert!((serial(86_400) - 25_570.0).abs() < 1e-9);
        // 2026-01-01T12:00:00Z
        assert!((serial(1_767_268_800) - 46_023.5).abs() < 1e-9);
        // 1900-03-01, the first day after Excel's fictional 1900-02-29
        assert!((serial(FIRST_EXCEL_TIME) - 61.0).abs() < 1e-9);
        // before the epoch
        assert!((serial(-43_200) - 25_568.5).abs() < 1e-9);
    }

    #[test]
    fn serials_never_fall_below_the_second_they_stand_for() {
        let this_century = (1_767_225_600..1_767_225_600 + 3 * 86_400).step_by(7);
        for t in [1, 59, 86_399, 1_234_567_891]
            .into_iter()
            .chain(this_century)
        {
            let serial = excel_serial(t).unwrap();
            let days = t.div_euclid(86_400) + UNIX_EPOCH_SERIAL;
            // The subtraction is exact (same binade); what a truncating engine shows:
            let seconds = (serial - days as f64) * 86_400.0;
            assert_eq!(seconds.floor() as i64, t.rem_euclid(86_400), "t = {t}");
            assert!(seconds - (t.rem_euclid(86_400) as f64) < 1e-5, "t = {t}");
        }
    }

    #[test]
    fn midnights_and_other_exact_times_keep_their_exact_serial() {
        // 2026-01-31T00:00:00Z and 12:00, 06:00, 18:00 of that day.
        let day = 1_769_817_600;
        assert_eq!(excel_serial(day), Some(46_053.0));
        assert_eq!(excel_serial(day + 43_200), Some(46_053.5));
        assert_eq!(excel_serial(day + 21_600), Some(46_053.25));
        assert_eq!(excel_serial(day + 64_800), Some(46_053.75));
    }

    #[test]
    fn unknown_and_unshowable_times_have_no_serial() {
        assert_eq!(excel_serial(0), None);
        assert_eq!(excel_serial(FIRST_EXCEL_TIME - 1), None);
        assert_eq!(excel_serial(END_OF_EXCEL_TIME), None);
        assert!(excel_serial(END_OF_EXCEL_TIME - 1).is_some());
    }

    #[test]
    fn labels_name_full_days_and_hours_in_utc() {
        // 2026-01-31T00:00:00Z
        let day = 1_769_817_600;
        assert_eq!(day_label(day), "2026-01-31 to 2026-02-01");
        assert_eq!(
            hour_label(day + 23 * 3_600, day + 24 * 3_600),
            "2026-01-31 23:00 to 2026-02-01 00:00"
        );
        assert_eq!(iso_utc(day + 3_723), "2026-01-31T01:02:03Z");
        assert_eq!(iso_utc(i64::MAX), format!("{} (Unix seconds)", i64::MAX));
    }

    #[test]
    fn every_style_has_its_own_format_slot() {
        for (i, style) in Style::ALL.into_iter().enumerate() {
            assert_eq!(style as usize, i);
        }
    }
}
