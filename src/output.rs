//! Printing summaries and totals as CSV or JSON. Floats are printed at full precision (the
//! shortest text that reads back to the same `f64`).

use crate::aggregate::VmSummary;
use crate::inventory::csv::spreadsheet_text;
use serde::Serialize;
use std::io::Write;

/// How rows are printed; also a `--format` value of the CLI.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Csv,
    Json,
}

/// The CSV columns of `vctp summary daily|monthly`.
pub const SUMMARY_COLUMNS: [&str; 28] = [
    "vcenter",
    "vm_id",
    "vm_uuid",
    "name",
    "resource_pool",
    "datacenter",
    "cluster",
    "folder",
    "samples_present",
    "total_samples",
    "avg_is_present",
    "avg_vcpu_count",
    "avg_ram_gb",
    "avg_provisioned_disk",
    "pool_tin_pct",
    "pool_bronze_pct",
    "pool_silver_pct",
    "pool_gold_pct",
    "tin",
    "bronze",
    "silver",
    "gold",
    "creation_time",
    "deletion_time",
    "snapshot_time",
    "samples_powered_on",
    "samples_template",
    "samples_placeholder",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write CSV output: {0}")]
    Csv(#[from] csv::Error),
    #[error("failed to write JSON output: {0}")]
    Json(#[from] serde_json::Error),
    #[error("failed to write output: {0}")]
    Io(#[from] std::io::Error),
}

pub fn write_summaries(
    out: impl Write,
    format: OutputFormat,
    rows: &[VmSummary],
) -> Result<(), Error> {
    match format {
        OutputFormat::Json => write_json(out, rows),
        OutputFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(SUMMARY_COLUMNS)?;
            for row in rows {
                let (p, f) = (&row.placement, &row.figures);
                let numbers = [
                    f.samples_present.to_string(),
                    f.total_samples.to_string(),
                    f.avg_is_present.to_string(),
                    f.avg_vcpu_count.to_string(),
                    f.avg_ram_gb.to_string(),
                    f.avg_provisioned_disk.to_string(),
                    f.pool_tin_pct.to_string(),
                    f.pool_bronze_pct.to_string(),
                    f.pool_silver_pct.to_string(),
                    f.pool_gold_pct.to_string(),
                    f.tin.to_string(),
                    f.bronze.to_string(),
                    f.silver.to_string(),
                    f.gold.to_string(),
                    f.creation_time.to_string(),
                    f.deletion_time.to_string(),
                    f.snapshot_time.to_string(),
                    f.samples_powered_on.to_string(),
                    f.samples_template.to_string(),
                    f.samples_placeholder.to_string(),
                ];
                // Read in spreadsheets, never imported: text that would run as a formula
                // is neutralised.
                let text = [
                    &row.vcenter,
                    &row.vm_id,
                    &p.vm_uuid,
                    &p.name,
                    &p.resource_pool,
                    &p.datacenter,
                    &p.cluster,
                    &p.folder,
                ]
                .map(|text| spreadsheet_text(text));
                let text = text.iter().map(|t| t.as_bytes());
                writer.write_record(text.chain(numbers.iter().map(|n| n.as_bytes())))?;
            }
            writer.flush()?;
            Ok(())
        }
    }
}

/// Writes flat rows (totals) as CSV with a header from the field names, or as JSON.
pub fn write_rows<T: Serialize>(
    out: impl Write,
    format: OutputFormat,
    rows: &[T],
) -> Result<(), Error> {
    match format {
        OutputFormat::Json => write_json(out, rows),
        OutputFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            for row in rows {
                writer.serialize(row)?;
            }
            writer.flush()?;
            Ok(())
        }
    }
}

fn write_json<T: Serialize>(mut out: impl Write, rows: &[T]) -> Result<(), Error> {
    serde_json::to_writer_pretty(&mut out, rows)?;
    writeln!(out)?;
    Ok(())
}
