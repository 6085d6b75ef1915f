//! Printing summaries and totals as CSV or JSON. Floats are printed at full precision (the
//! shortest text that reads back to the same `f64`).

use crate::aggregate::VmSummary;
use crate::cost::price::{CostLine, CostReport};
use crate::inventory::csv::spreadsheet_text;
use serde::Serialize;
use std::io::Write;

/// How rows are printed; also a `--format` value of the CLI.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Csv,
    Json,
}

/// How `vctp costs` prints: an aligned table for a person, or CSV/JSON for a program.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CostFormat {
    Table,
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

/// The key columns of a cost line, by what the lines are grouped by.
fn cost_key_columns(report: &CostReport) -> Vec<&'static str> {
    use crate::cost::GroupBy;
    match report.group_by {
        GroupBy::Vm => vec!["tenant", "vcenter", "vm_id", "name"],
        GroupBy::Tenant => vec!["tenant"],
        GroupBy::Pool => vec!["vcenter", "resource_pool"],
        GroupBy::Vcenter => vec!["vcenter"],
        GroupBy::Cluster => vec!["vcenter", "cluster"],
    }
}

fn cost_key(line: &CostLine, column: &str) -> String {
    let value = match column {
        "tenant" => &line.tenant,
        "vcenter" => &line.vcenter,
        "vm_id" => &line.vm_id,
        "name" => &line.name,
        "resource_pool" => &line.resource_pool,
        _ => &line.cluster,
    };
    value.clone().unwrap_or_default()
}

const COST_FIGURES: [&str; 6] = [
    "currency",
    "vm_days",
    "vcpu_days",
    "ram_gb_days",
    "disk_gb_days",
    "cost",
];

fn cost_figures(line: &CostLine) -> [String; 6] {
    [
        line.currency.clone(),
        line.vm_days.to_string(),
        line.vcpu_days.to_string(),
        line.ram_gb_days.to_string(),
        line.disk_gb_days.to_string(),
        line.cost.to_string(),
    ]
}

/// Prints the costs of a period: every line, then (table only) the totals and the cards.
pub fn write_costs(
    mut out: impl Write,
    format: CostFormat,
    report: &CostReport,
) -> Result<(), Error> {
    let keys = cost_key_columns(report);
    let rows: Vec<Vec<String>> = report
        .lines
        .iter()
        .map(|line| {
            keys.iter()
                .map(|k| spreadsheet_text(&cost_key(line, k)).into_owned())
                .chain(cost_figures(line))
                .collect()
        })
        .collect();
    let header: Vec<&str> = keys.iter().copied().chain(COST_FIGURES).collect();
    match format {
        CostFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        CostFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(&header)?;
            for row in &rows {
                writer.write_record(row)?;
            }
            writer.flush()?;
        }
        CostFormat::Table => {
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let numeric_from = keys.len() + 1;
            let print = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
                let line: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (cell, w))| {
                        if i >= numeric_from {
                            format!("{cell:>w$}")
                        } else {
                            format!("{cell:<w$}")
                        }
                    })
                    .collect();
                writeln!(out, "{}", line.join("  ").trim_end())
            };
            writeln!(
                out,
                "costs of {} by {}",
                report.period,
                report.group_by.as_str()
            )?;
            print(&mut out, &header)?;
            for row in &rows {
                let cells: Vec<&str> = row.iter().map(String::as_str).collect();
                print(&mut out, &cells)?;
            }
            for total in &report.totals {
                writeln!(
                    out,
                    "total {} {} ({} charges, each rounded half-even; exact total {}, rounding {})",
                    total.currency, total.cost, total.charges, total.unrounded, total.rounding
                )?;
            }
            for card in &report.cards {
                writeln!(
                    out,
                    "rate card `{}` ({}) from {}",
                    card.name, card.currency, card.effective_from
                )?;
            }
        }
    }
    Ok(())
}
