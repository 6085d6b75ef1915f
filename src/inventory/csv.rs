//! The CSV form of hourly rows: what `vctp snapshot import` reads and `vctp snapshot export`
//! writes. Times are Unix seconds, booleans `0`/`1`, floats at full precision, so the two
//! round-trip exactly.

use super::HourlyRow;
use std::borrow::Cow;
use std::io::{Read, Write};

/// The header of the hourly CSV form, in the order `snapshot export` writes it.
pub const HOURLY_COLUMNS: [&str; 20] = [
    "vcenter",
    "vm_id",
    "vm_uuid",
    "inventory_id",
    "name",
    "event_key",
    "cloud_id",
    "creation_time",
    "deletion_time",
    "snapshot_time",
    "resource_pool",
    "datacenter",
    "cluster",
    "folder",
    "provisioned_disk_gb",
    "vcpu_count",
    "ram_gb",
    "is_template",
    "powered_on",
    "srm_placeholder",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{source_name}: the file is empty; the first line must be the header: {}", HOURLY_COLUMNS.join(","))]
    MissingHeader { source_name: String },
    #[error("{source_name}, line 1: unknown column `{column}` in the header (expected: {})", HOURLY_COLUMNS.join(","))]
    UnknownColumn { source_name: String, column: String },
    #[error("{source_name}, line 1: the header is longer than {MAX_HEADER_BYTES} bytes; the first line must be the header: {}", HOURLY_COLUMNS.join(","))]
    HeaderTooLong { source_name: String },
    #[error("{source_name}, line 1: {source}")]
    ReadHeader {
        source_name: String,
        source: std::io::Error,
    },
    #[error("{source_name}, line 1: the header lacks column `{column}`")]
    MissingColumn {
        source_name: String,
        column: &'static str,
    },
    #[error("{source_name}, line 1: the header names column `{column}` twice")]
    DuplicateColumn { source_name: String, column: String },
    #[error("{source_name}, line {line}, column `{column}`: {problem}")]
    Field {
        source_name: String,
        line: u64,
        column: &'static str,
        problem: String,
    },
    #[error("{source_name}, line {line}: {source}")]
    Read {
        source_name: String,
        line: u64,
        source: csv::Error,
    },
    #[error("failed to write CSV: {0}")]
    Write(#[from] csv::Error),
}

/// The longest header line read: twenty column names take a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How much of a header name an error quotes: enough to recognise it, never the file.
const MAX_ECHOED_CHARS: usize = 64;

/// The header's bytes (and whatever followed them in the same reads) put back before the
/// rest of the input.
type Rejoined<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// Reads hourly rows from CSV, validating every field; errors name the line and column.
pub struct HourlyCsvReader<R: Read> {
    reader: csv::Reader<Rejoined<R>>,
    source_name: String,
    /// For each of [`HOURLY_COLUMNS`], its position in the file's header.
    positions: [usize; 20],
    record: csv::StringRecord,
}

impl<R: Read> HourlyCsvReader<R> {
    /// Checks the header; `source_name` (usually the path) prefixes every error.
    /// A header longer than [`MAX_HEADER_BYTES`] is refused before more is read, so a file
    /// without line ends is not taken whole into memory.
    pub fn new(mut input: R, source_name: impl Into<String>) -> Result<Self, Error> {
        let source_name = source_name.into();
        let mut start = Vec::with_capacity(8 * 1024);
        let mut chunk = [0; 8 * 1024];
        while !start.contains(&b'\n') {
            if start.len() > MAX_HEADER_BYTES {
                return Err(Error::HeaderTooLong { source_name });
            }
            let n = match input.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::ReadHeader {
                        source_name,
                        source,
                    });
                }
            };
            start.extend_from_slice(&chunk[..n]);
        }
        if start
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(start.len())
            > MAX_HEADER_BYTES
        {
            return Err(Error::HeaderTooLong { source_name });
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(std::io::Cursor::new(start).chain(input));
        let header = reader
            .headers()
            .map_err(|source| Error::Read {
                source_name: source_name.clone(),
                line: 1,
                source,
            })?
            .clone();
        if header.is_empty() || header.iter().all(str::is_empty) {
            return Err(Error::MissingHeader { source_name });
        }
        let mut positions = [usize::MAX; 20];
        for (position, column) in header.iter().enumerate() {
            let column = column.trim();
            let Some(field) = HOURLY_COLUMNS.iter().position(|c| *c == column) else {
                return Err(Error::UnknownColumn {
                    source_name,
                    column: crate::vsphere::excerpt(column, MAX_ECHOED_CHARS),
                });
            };
            if positions[field] != usize::MAX {
                return Err(Error::DuplicateColumn {
                    source_name,
                    column: crate::vsphere::excerpt(column, MAX_ECHOED_CHARS),
                });
            }
            positions[field] = position;
        }
        if let Some(missing) = positions.iter().position(|p| *p == usize::MAX) {
            return Err(Error::MissingColumn {
                source_name,
                column: HOURLY_COLUMNS[missing],
            });
        }
        Ok(HourlyCsvReader {
            reader,
            source_name,
            positions,
            record: csv::StringRecord::new(),
        })
    }

    /// The next row and its line number, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<(u64, HourlyRow)>, Error> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|source| Error::Read {
                source_name: self.source_name.clone(),
                line: source.position().map_or(0, csv::Position::line),
                source,
            })?;
        if !more {
            return Ok(None);
        }
        let line = self.record.position().map_or(0, csv::Position::line);
        let fields = Fields {
            record: &self.record,
            positions: &self.positions,
            source_name: &self.source_name,
            line,
        };
        let row = HourlyRow {
            vcenter: fields.required_text(0)?,
            vm_id: fields.required_text(1)?,
            vm_uuid: fields.text(2),
            inventory_id: fields.text(3),
            name: fields.text(4),
            event_key: fields.text(5),
            cloud_id: fields.text(6),
            creation_time: fields.time(7)?,
            deletion_time: fields.time(8)?,
            snapshot_time: fields.snapshot_time(9)?,
            resource_pool: fields.text(10),
            datacenter: fields.text(11),
            cluster: fields.text(12),
            folder: fields.text(13),
            provisioned_disk_gb: fields.quantity(14)?,
            vcpu_count: fields.count(15)?,
            ram_gb: fields.quantity(16)?,
            is_template: fields.flag(17)?,
            powered_on: fields.flag(18)?,
            srm_placeholder: fields.flag(19)?,
        };
        Ok(Some((line, row)))
    }
}

/// A value as an error quotes it: in quotes, cut short.
fn echoed(value: &str) -> String {
    format!("{:?}", crate::vsphere::excerpt(value, MAX_ECHOED_CHARS))
}

/// One record, read by field index in [`HOURLY_COLUMNS`] order.
struct Fields<'a> {
    record: &'a csv::StringRecord,
    positions: &'a [usize; 20],
    source_name: &'a str,
    line: u64,
}

impl Fields<'_> {
    /// The field as written: free text keeps its spaces, so an export round-trips.
    fn exact(&self, field: usize) -> &str {
        self.record.get(self.positions[field]).unwrap_or("")
    }

    /// The field without surrounding whitespace: identifiers, numbers and flags.
    fn raw(&self, field: usize) -> &str {
        self.exact(field).trim()
    }

    fn error(&self, field: usize, problem: impl Into<String>) -> Error {
        Error::Field {
            source_name: self.source_name.to_string(),
            line: self.line,
            column: HOURLY_COLUMNS[field],
            problem: problem.into(),
        }
    }

    fn text(&self, field: usize) -> String {
        self.exact(field).to_string()
    }

    fn required_text(&self, field: usize) -> Result<String, Error> {
        match self.raw(field) {
            "" => Err(self.error(field, "must not be empty")),
            value => Ok(value.to_string()),
        }
    }

    fn integer(&self, field: usize, what: &str) -> Result<i64, Error> {
        let value = self.raw(field);
        match value.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            Ok(n) => Err(self.error(field, format!("{n} is negative; expected {what}"))),
            Err(_) => Err(self.error(field, format!("{} is not {what}", echoed(value)))),
        }
    }

    fn time(&self, field: usize) -> Result<i64, Error> {
        self.integer(field, "Unix seconds (0 = unknown)")
    }

    fn snapshot_time(&self, field: usize) -> Result<i64, Error> {
        match self.time(field)? {
            0 => Err(self.error(field, "must be a Unix time after 0")),
            t => Ok(t),
        }
    }

    fn count(&self, field: usize) -> Result<i64, Error> {
        self.integer(field, "a whole number ≥ 0")
    }

    fn quantity(&self, field: usize) -> Result<f64, Error> {
        let value = self.raw(field);
        match value.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(self.error(
                field,
                format!("{} is not a finite number ≥ 0", echoed(value)),
            )),
        }
    }

    fn flag(&self, field: usize) -> Result<bool, Error> {
        match self.raw(field) {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(self.error(
                field,
                format!("{} is not a boolean; use 0 or 1", echoed(other)),
            )),
        }
    }
}

/// `text` as a spreadsheet shows it rather than runs it. Excel and LibreOffice take a cell
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return for a formula (a VM named
/// `=HYPERLINK(…)` would become a link), so such a cell gets a leading `'`, as OWASP
/// advises against CSV injection. Only report CSVs are written so: the import/export CSV
/// keeps every text exact, to round-trip.
pub fn spreadsheet_text(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Writes hourly rows in the form [`HourlyCsvReader`] reads.
pub struct HourlyCsvWriter<W: Write> {
    writer: csv::Writer<W>,
    /// Text cells go through [`spreadsheet_text`] (report CSVs, which are not read back).
    for_spreadsheets: bool,
}

impl<W: Write> HourlyCsvWriter<W> {
    /// Every text exactly as it is, for `snapshot export` and `snapshot import`.
    pub fn new(output: W) -> Result<Self, Error> {
        Self::with(output, false)
    }

    /// Text that a spreadsheet would run as a formula is neutralised ([`spreadsheet_text`]).
    pub fn for_spreadsheets(output: W) -> Result<Self, Error> {
        Self::with(output, true)
    }

    fn with(output: W, for_spreadsheets: bool) -> Result<Self, Error> {
        let mut writer = csv::Writer::from_writer(output);
        writer.write_record(HOURLY_COLUMNS)?;
        Ok(HourlyCsvWriter {
            writer,
            for_spreadsheets,
        })
    }

    pub fn write(&mut self, row: &HourlyRow) -> Result<(), Error> {
        let flag = |b: bool| if b { "1" } else { "0" };
        let spreadsheets = self.for_spreadsheets;
        fn text(spreadsheets: bool, text: &str) -> Cow<'_, str> {
            if spreadsheets {
                spreadsheet_text(text)
            } else {
                Cow::Borrowed(text)
            }
        }
        let cells: [Cow<'_, str>; 20] = [
            text(spreadsheets, &row.vcenter),
            text(spreadsheets, &row.vm_id),
            text(spreadsheets, &row.vm_uuid),
            text(spreadsheets, &row.inventory_id),
            text(spreadsheets, &row.name),
            text(spreadsheets, &row.event_key),
            text(spreadsheets, &row.cloud_id),
            row.creation_time.to_string().into(),
            row.deletion_time.to_string().into(),
            row.snapshot_time.to_string().into(),
            text(spreadsheets, &row.resource_pool),
            text(spreadsheets, &row.datacenter),
            text(spreadsheets, &row.cluster),
            text(spreadsheets, &row.folder),
            row.provisioned_disk_gb.to_string().into(),
            row.vcpu_count.to_string().into(),
            row.ram_gb.to_string().into(),
            flag(row.is_template).into(),
            flag(row.powered_on).into(),
            flag(row.srm_placeholder).into(),
        ];
        self.writer
            .write_record(cells.iter().map(|cell| cell.as_bytes()))?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), Error> {
        self.writer.flush().map_err(csv::Error::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "vcenter,vm_id,vm_uuid,inventory_id,name,event_key,cloud_id,creation_time,deletion_time,snapshot_time,resource_pool,datacenter,cluster,folder,provisioned_disk_gb,vcpu_count,ram_gb,is_template,powered_on,srm_placeholder";

    fn read_all(text: &str) -> Result<Vec<HourlyRow>, Error> {
        let mut reader = HourlyCsvReader::new(text.as_bytes(), "test.csv")?;
        let mut rows = Vec::new();
        while let Some((_, row)) = reader.next_row()? {
            rows.push(row);
        }
        Ok(rows)
    }

    fn sample_row() -> HourlyRow {
        HourlyRow {
            vcenter: "vc1".into(),
            vm_id: "vm-1".into(),
            vm_uuid: "u-1".into(),
            inventory_id: "i-1".into(),
            name: "web, \"primary\"".into(),
            event_key: String::new(),
            cloud_id: "c".into(),
            creation_time: 0,
            deletion_time: 0,
            snapshot_time: 1_700_000_000,
            resource_pool: "Gold".into(),
            datacenter: "dc".into(),
            cluster: "cl".into(),
            folder: "/vm/a".into(),
            provisioned_disk_gb: 0.1 + 0.2,
            vcpu_count: 4,
            ram_gb: 1.0 / 3.0,
            is_template: false,
            powered_on: true,
            srm_placeholder: false,
        }
    }

    #[test]
    fn rows_written_then_read_are_identical_to_the_bit() {
        assert_eq!(written_and_read(&sample_row()), vec![sample_row()]);
    }

    /// `row` written by the export's writer, then read back by the importer.
    fn written_and_read(row: &HourlyRow) -> Vec<HourlyRow> {
        let mut out = Vec::new();
        let mut writer = HourlyCsvWriter::new(&mut out).unwrap();
        writer.write(row).unwrap();
        writer.finish().unwrap();
        read_all(std::str::from_utf8(&out).unwrap()).unwrap()
    }

    #[test]
    fn text_that_looks_like_a_formula_round_trips_unchanged() {
        let mut row = sample_row();
        row.name = "=HYPERLINK(\"http://x\",\"y\")".into();
        row.folder = "-folder".into();
        row.cluster = "@cluster".into();
        assert_eq!(written_and_read(&row), [row]);
    }

    /// Found by tests/fuzz.rs: a name of one no-break space came back empty.
    #[test]
    fn text_with_surrounding_whitespace_round_trips_unchanged() {
        let mut row = sample_row();
        row.name = "\u{a0}".into();
        row.folder = " /DC1/vm/ spaced ".into();
        row.cluster = "\tcluster\n".into();
        assert_eq!(written_and_read(&row), [row]);
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let text = "vm_id,vcenter,vm_uuid,inventory_id,name,event_key,cloud_id,creation_time,deletion_time,snapshot_time,resource_pool,datacenter,cluster,folder,provisioned_disk_gb,vcpu_count,ram_gb,is_template,powered_on,srm_placeholder\nvm-9,vc2,,,,,,0,0,100,Tin,,,,1,2,3,0,1,0\n";
        let rows = read_all(text).unwrap();
        assert_eq!(rows[0].vm_id, "vm-9");
        assert_eq!(rows[0].vcenter, "vc2");
    }

    #[test]
    fn a_bad_value_names_its_line_and_column() {
        let text = format!(
            "{HEADER}\nvc1,vm-1,,,,,,0,0,100,Tin,,,,1,2,3,0,1,0\nvc1,vm-2,,,,,,0,0,100,Tin,,,,1,two,3,0,1,0\n"
        );
        let err = read_all(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "test.csv, line 3, column `vcpu_count`: \"two\" is not a whole number ≥ 0"
        );
    }

    #[test]
    fn booleans_must_be_zero_or_one() {
        let text = format!("{HEADER}\nvc1,vm-1,,,,,,0,0,100,Tin,,,,1,2,3,true,1,0\n");
        let err = read_all(&text).unwrap_err().to_string();
        assert!(err.contains("line 2, column `is_template`"), "{err}");
    }

    #[test]
    fn negative_sizes_missing_ids_and_zero_snapshot_times_are_rejected() {
        for (row, column) in [
            (
                "vc1,vm-1,,,,,,0,0,100,Tin,,,,-1,2,3,0,1,0",
                "provisioned_disk_gb",
            ),
            (
                "vc1,vm-1,,,,,,0,0,100,Tin,,,,NaN,2,3,0,1,0",
                "provisioned_disk_gb",
            ),
            ("vc1,,,,,,,0,0,100,Tin,,,,1,2,3,0,1,0", "vm_id"),
            ("vc1,vm-1,,,,,,0,0,0,Tin,,,,1,2,3,0,1,0", "snapshot_time"),
            ("vc1,vm-1,,,,,,-5,0,100,Tin,,,,1,2,3,0,1,0", "creation_time"),
        ] {
            let err = read_all(&format!("{HEADER}\n{row}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("column `{column}`")), "{err}");
        }
    }

    #[test]
    fn header_problems_name_the_column() {
        let unknown = HEADER.replace("cloud_id", "tenant");
        let err = read_all(&format!("{unknown}\n")).unwrap_err().to_string();
        assert!(err.contains("unknown column `tenant`"), "{err}");

        let missing = HEADER.replace(",srm_placeholder", "");
        let err = read_all(&format!("{missing}\n")).unwrap_err().to_string();
        assert!(err.contains("lacks column `srm_placeholder`"), "{err}");

        let twice = HEADER.replace("cloud_id", "vm_id");
        let err = read_all(&format!("{twice}\n")).unwrap_err().to_string();
        assert!(err.contains("names column `vm_id` twice"), "{err}");

        let err = read_all("").unwrap_err().to_string();
        assert!(err.contains("the file is empty"), "{err}");
    }

    /// Counts what the importer takes from its input.
    struct Counted<R> {
        inner: R,
        taken: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken.set(self.taken.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn a_long_unknown_column_is_echoed_cut_short() {
        let long = "x".repeat(10_000);
        let err = read_all(&format!("{},{long}\n", HEADER))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("unknown column `{}…`", &long[..64])),
            "{}",
            &err[..200]
        );
        assert!(err.len() < 1_000, "{} bytes echoed", err.len());
    }

    #[test]
    fn a_header_line_without_an_end_is_refused_without_reading_the_file() {
        let taken = std::rc::Rc::new(std::cell::Cell::new(0));
        let input = Counted {
            inner: std::io::repeat(b'a').take(8 * 1024 * 1024),
            taken: taken.clone(),
        };
        let err = HourlyCsvReader::new(input, "huge.csv")
            .err()
            .unwrap()
            .to_string();
        assert!(err.len() < 1_000, "{} bytes echoed", err.len());
        assert!(err.starts_with("huge.csv, line 1:"), "{}", &err[..200]);
        assert!(
            taken.get() <= 2 * MAX_HEADER_BYTES,
            "read {} bytes looking for the header",
            taken.get()
        );
    }

    #[test]
    fn a_short_record_names_its_line() {
        let text = format!("{HEADER}\nvc1,vm-1,,,\n");
        let err = read_all(&text).unwrap_err().to_string();
        assert!(err.starts_with("test.csv, line 2:"), "{err}");
    }
}
