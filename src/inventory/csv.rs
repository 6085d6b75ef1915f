//! The CSV form of hourly rows: what `vctp snapshot import` reads and `vctp snapshot export`
//! writes. Times are Unix seconds, booleans `0`/`1`, floats at full precision, so the two
//! round-trip exactly.

use super::HourlyRow;
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

/// Reads hourly rows from CSV, validating every field; errors name the line and column.
pub struct HourlyCsvReader<R: Read> {
    reader: csv::Reader<R>,
    source_name: String,
    /// For each of [`HOURLY_COLUMNS`], its position in the file's header.
    positions: [usize; 20],
    record: csv::StringRecord,
}

impl<R: Read> HourlyCsvReader<R> {
    /// Checks the header; `source_name` (usually the path) prefixes every error.
    pub fn new(input: R, source_name: impl Into<String>) -> Result<Self, Error> {
        let source_name = source_name.into();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
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
                    column: column.to_string(),
                });
            };
            if positions[field] != usize::MAX {
                return Err(Error::DuplicateColumn {
                    source_name,
                    column: column.to_string(),
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

/// One record, read by field index in [`HOURLY_COLUMNS`] order.
struct Fields<'a> {
    record: &'a csv::StringRecord,
    positions: &'a [usize; 20],
    source_name: &'a str,
    line: u64,
}

impl Fields<'_> {
    fn raw(&self, field: usize) -> &str {
        self.record.get(self.positions[field]).unwrap_or("").trim()
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
        self.raw(field).to_string()
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
            Err(_) => Err(self.error(field, format!("{value:?} is not {what}"))),
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
            _ => Err(self.error(field, format!("{value:?} is not a finite number ≥ 0"))),
        }
    }

    fn flag(&self, field: usize) -> Result<bool, Error> {
        match self.raw(field) {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(self.error(field, format!("{other:?} is not a boolean; use 0 or 1"))),
        }
    }
}

/// Writes hourly rows in the form [`HourlyCsvReader`] reads.
pub struct HourlyCsvWriter<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> HourlyCsvWriter<W> {
    pub fn new(output: W) -> Result<Self, Error> {
        let mut writer = csv::Writer::from_writer(output);
        writer.write_record(HOURLY_COLUMNS)?;
        Ok(HourlyCsvWriter { writer })
    }

    pub fn write(&mut self, row: &HourlyRow) -> Result<(), Error> {
        let flag = |b: bool| if b { "1" } else { "0" };
        self.writer.write_record([
            row.vcenter.as_str(),
            &row.vm_id,
            &row.vm_uuid,
            &row.inventory_id,
            &row.name,
            &row.event_key,
            &row.cloud_id,
            &row.creation_time.to_string(),
            &row.deletion_time.to_string(),
            &row.snapshot_time.to_string(),
            &row.resource_pool,
            &row.datacenter,
            &row.cluster,
            &row.folder,
            &row.provisioned_disk_gb.to_string(),
            &row.vcpu_count.to_string(),
            &row.ram_gb.to_string(),
            flag(row.is_template),
            flag(row.powered_on),
            flag(row.srm_placeholder),
        ])?;
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
        let mut out = Vec::new();
        let mut writer = HourlyCsvWriter::new(&mut out).unwrap();
        writer.write(&sample_row()).unwrap();
        writer.finish().unwrap();
        let rows = read_all(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(rows, vec![sample_row()]);
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

    #[test]
    fn a_short_record_names_its_line() {
        let text = format!("{HEADER}\nvc1,vm-1,,,\n");
        let err = read_all(&text).unwrap_err().to_string();
        assert!(err.starts_with("test.csv, line 2:"), "{err}");
    }
}
