//! The PostgreSQL side of the store's bulk reads and writes, through binary COPY
//! ([`super::pg_copy`]): the engines' scans, the summaries read back for reports, and the
//! summary and hourly row writes. COPY takes no bind parameters, so keys and times go into
//! the statement as literals ([`pg_copy::literal`] for text, integers as written by Rust).

use super::grain::{Grain, figure_columns, per_grain, summary_columns};
use super::pg_copy::{self, Column, Kind, Row};
use super::{QueryContext, Result};
use crate::aggregate::daily::{Sample, SampleClass};
use crate::aggregate::hourly::IntervalVm;
use crate::aggregate::{Figures, PlacementRef, VmSummary};
use crate::inventory::{HourlyRow, Tier, TierMapping};
use futures_util::TryStreamExt;
use sqlx::{PgConnection, PgPool};

use Kind::{Bool, Float8, Int8, Text};

const PLACEMENT: [Column; 6] = [
    ("vm_uuid", Text),
    ("name", Text),
    ("resource_pool", Text),
    ("datacenter", Text),
    ("cluster", Text),
    ("folder", Text),
];

/// The 20 figure columns, in [`Figures`] field order.
const FIGURES: [Column; 20] = [
    ("samples_present", Int8),
    ("total_samples", Int8),
    ("avg_is_present", Float8),
    ("avg_vcpu_count", Float8),
    ("avg_ram_gb", Float8),
    ("avg_provisioned_disk", Float8),
    ("pool_tin_pct", Float8),
    ("pool_bronze_pct", Float8),
    ("pool_silver_pct", Float8),
    ("pool_gold_pct", Float8),
    ("tin", Float8),
    ("bronze", Float8),
    ("silver", Float8),
    ("gold", Float8),
    ("creation_time", Int8),
    ("deletion_time", Int8),
    ("snapshot_time", Int8),
    ("samples_powered_on", Int8),
    ("samples_template", Int8),
    ("samples_placeholder", Int8),
];

/// `[a, b]` as one array, for column lists built from the shared parts above.
const fn join<const A: usize, const B: usize, const N: usize>(
    a: [Column; A],
    b: [Column; B],
) -> [Column; N] {
    let mut out = [("", Text); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const SAMPLE_COLUMNS: &[Column] = &[
    ("vm_id", Text),
    ("snapshot_time", Int8),
    ("vcpu_count", Int8),
    ("ram_gb", Float8),
    ("provisioned_disk_gb", Float8),
    ("tier", Int8),
    ("creation_time", Int8),
    ("deletion_time", Int8),
    ("is_template", Bool),
    ("srm_placeholder", Bool),
    ("powered_on", Bool),
];
const PLACEMENT_COLUMNS: &[Column] = &join::<1, 6, 7>([("vm_id", Text)], PLACEMENT);
const INTERVAL_COLUMNS: &[Column] = &[
    ("creation_time", Int8),
    ("deletion_time", Int8),
    ("vcpu_count", Int8),
    ("ram_gb", Float8),
    ("provisioned_disk_gb", Float8),
];
const DAILY_FIGURE_COLUMNS: &[Column] = &join::<3, 20, 23>(
    [("period_start", Int8), ("vcenter", Text), ("vm_id", Text)],
    FIGURES,
);
const SUMMARY_COLUMNS: &[Column] = &join::<9, 20, 29>(
    join::<3, 6, 9>(
        [("period_start", Int8), ("vcenter", Text), ("vm_id", Text)],
        PLACEMENT,
    ),
    FIGURES,
);

/// The SELECT of the rust engine's daily pass: also the benchmark's physical reference.
fn samples_select(vcenter: &str, from: i64, to: i64) -> String {
    format!(
        "COPY (SELECT vm_id, snapshot_time, vcpu_count, ram_gb, provisioned_disk_gb, tier, creation_time, deletion_time, is_template, srm_placeholder, powered_on \
         FROM vm_hourly WHERE vcenter = {} AND snapshot_time >= {from} AND snapshot_time < {to}) TO STDOUT (FORMAT binary)",
        pg_copy::literal(vcenter)
    )
}

fn placement<'a>(row: &Row<'a>, first: usize) -> Result<PlacementRef<'a>, pg_copy::Error> {
    Ok(PlacementRef {
        vm_uuid: row.text(first)?,
        name: row.text(first + 1)?,
        resource_pool: row.text(first + 2)?,
        datacenter: row.text(first + 3)?,
        cluster: row.text(first + 4)?,
        folder: row.text(first + 5)?,
    })
}

fn figures(row: &Row<'_>, first: usize) -> Result<Figures, pg_copy::Error> {
    let real = |i: usize| row.real(first + i);
    Ok(Figures {
        samples_present: row.int(first)?,
        total_samples: row.int(first + 1)?,
        avg_is_present: real(2)?,
        avg_vcpu_count: real(3)?,
        avg_ram_gb: real(4)?,
        avg_provisioned_disk: real(5)?,
        pool_tin_pct: real(6)?,
        pool_bronze_pct: real(7)?,
        pool_silver_pct: real(8)?,
        pool_gold_pct: real(9)?,
        tin: real(10)?,
        bronze: real(11)?,
        silver: real(12)?,
        gold: real(13)?,
        creation_time: row.int(first + 14)?,
        deletion_time: row.int(first + 15)?,
        snapshot_time: row.int(first + 16)?,
        samples_powered_on: row.int(first + 17)?,
        samples_template: row.int(first + 18)?,
        samples_placeholder: row.int(first + 19)?,
    })
}

/// A whole summary row (the summary columns, in their order), borrowed: period_start,
/// vcenter, vm_id, placement and figures.
fn summary_row<'a>(
    row: &Row<'a>,
) -> Result<(i64, &'a str, &'a str, PlacementRef<'a>, Figures), pg_copy::Error> {
    Ok((
        row.int(0)?,
        row.text(1)?,
        row.text(2)?,
        placement(row, 3)?,
        figures(row, 9)?,
    ))
}

/// Runs one COPY out on a connection of `pool`.
async fn copy_out(
    pool: &PgPool,
    op: &'static str,
    statement: &str,
    columns: &'static [Column],
    visit: impl FnMut(&Row<'_>) -> Result<(), pg_copy::Error>,
) -> Result<u64> {
    let mut conn = pool.acquire().await.op(op)?;
    pg_copy::copy_out(&mut conn, statement, columns, visit)
        .await
        .op(op)
}

pub(super) async fn scan_samples(
    pool: &PgPool,
    vcenter: &str,
    from: i64,
    to: i64,
    mut visit: impl FnMut(&str, &Sample),
) -> Result<u64> {
    let statement = samples_select(vcenter, from, to);
    copy_out(
        pool,
        "scan hourly samples",
        &statement,
        SAMPLE_COLUMNS,
        |row| {
            let sample = Sample {
                snapshot_time: row.int(1)?,
                vcpu_count: row.int(2)?,
                ram_gb: row.real(3)?,
                provisioned_disk_gb: row.real(4)?,
                tier: Tier::from_code(row.int(5)?),
                creation_time: row.int(6)?,
                deletion_time: row.int(7)?,
                class: SampleClass::of(row.flag(8)?, row.flag(9)?, row.flag(10)?),
            };
            visit(row.text(0)?, &sample);
            Ok(())
        },
    )
    .await
}

pub(super) async fn scan_placements(
    pool: &PgPool,
    vcenter: &str,
    snapshot_time: i64,
    visit: impl FnMut(&str, PlacementRef<'_>),
) -> Result<()> {
    let statement = format!(
        "COPY (SELECT vm_id, vm_uuid, name, resource_pool, datacenter, cluster, folder \
         FROM vm_hourly WHERE vcenter = {} AND snapshot_time = {snapshot_time}) TO STDOUT (FORMAT binary)",
        pg_copy::literal(vcenter)
    );
    copy_placements(pool, "read VM placements", &statement, visit).await
}

/// Streams `(vm_id, placement)` rows of a COPY that selects vm_id then the six placement
/// columns.
async fn copy_placements(
    pool: &PgPool,
    op: &'static str,
    statement: &str,
    mut visit: impl FnMut(&str, PlacementRef<'_>),
) -> Result<()> {
    copy_out(pool, op, statement, PLACEMENT_COLUMNS, |row| {
        visit(row.text(0)?, placement(row, 1)?);
        Ok(())
    })
    .await?;
    Ok(())
}

pub(super) async fn scan_interval_vms(
    pool: &PgPool,
    vcenter: &str,
    snapshot_time: i64,
    mut visit: impl FnMut(&IntervalVm),
) -> Result<()> {
    let statement = format!(
        "COPY (SELECT creation_time, deletion_time, vcpu_count, ram_gb, provisioned_disk_gb \
         FROM vm_hourly WHERE vcenter = {} AND snapshot_time = {snapshot_time}) TO STDOUT (FORMAT binary)",
        pg_copy::literal(vcenter)
    );
    copy_out(
        pool,
        "read snapshot VMs",
        &statement,
        INTERVAL_COLUMNS,
        |row| {
            visit(&IntervalVm {
                creation_time: row.int(0)?,
                deletion_time: row.int(1)?,
                vcpu_count: row.int(2)?,
                ram_gb: row.real(3)?,
                provisioned_disk_gb: row.real(4)?,
            });
            Ok(())
        },
    )
    .await?;
    Ok(())
}

pub(super) async fn scan_daily_figures(
    pool: &PgPool,
    from: i64,
    to: i64,
    mut visit: impl FnMut(&str, &str, i64, &Figures),
) -> Result<u64> {
    let statement = format!(
        concat!(
            "COPY (SELECT period_start, vcenter, vm_id, ",
            figure_columns!(),
            " FROM vm_daily_summary WHERE period_start >= {} AND period_start < {}) TO STDOUT (FORMAT binary)"
        ),
        from, to
    );
    copy_out(
        pool,
        "scan daily summaries",
        &statement,
        DAILY_FIGURE_COLUMNS,
        |row| {
            let figures = figures(row, 3)?;
            visit(row.text(1)?, row.text(2)?, row.int(0)?, &figures);
            Ok(())
        },
    )
    .await
}

pub(super) async fn scan_daily_placements(
    pool: &PgPool,
    period_start: i64,
    vcenter: &str,
    visit: impl FnMut(&str, PlacementRef<'_>),
) -> Result<()> {
    let statement = format!(
        "COPY (SELECT vm_id, vm_uuid, name, resource_pool, datacenter, cluster, folder \
         FROM vm_daily_summary WHERE period_start = {period_start} AND vcenter = {}) TO STDOUT (FORMAT binary)",
        pg_copy::literal(vcenter)
    );
    copy_placements(pool, "read daily placements", &statement, visit).await
}

pub(super) async fn summaries(
    pool: &PgPool,
    grain: Grain,
    period_start: i64,
) -> Result<Vec<VmSummary>> {
    let table = per_grain!(
        grain,
        ["COPY (SELECT ", summary_columns!(), " FROM "],
        [" WHERE period_start = "]
    );
    let statement =
        format!("{table}{period_start} ORDER BY vcenter, vm_id) TO STDOUT (FORMAT binary)");
    let mut summaries = Vec::new();
    copy_out(pool, "read summaries", &statement, SUMMARY_COLUMNS, |row| {
        let (_, vcenter, vm_id, placement, figures) = summary_row(row)?;
        let mut summary = VmSummary {
            vcenter: vcenter.to_string(),
            vm_id: vm_id.to_string(),
            figures,
            ..VmSummary::default()
        };
        summary.placement.assign(placement);
        summaries.push(summary);
        Ok(())
    })
    .await?;
    Ok(summaries)
}

/// `Store::scan_daily_rows` on PostgreSQL.
pub(super) async fn scan_daily_rows(
    pool: &PgPool,
    from: i64,
    to: i64,
    mut visit: impl FnMut(i64, &str, &str, PlacementRef<'_>, &Figures),
) -> Result<u64> {
    let statement = format!(
        concat!(
            "COPY (SELECT ",
            summary_columns!(),
            " FROM vm_daily_summary WHERE period_start >= {} AND period_start < {} ",
            "ORDER BY period_start, vcenter, vm_id) TO STDOUT (FORMAT binary)"
        ),
        from, to
    );
    copy_out(
        pool,
        "scan daily summary rows",
        &statement,
        SUMMARY_COLUMNS,
        |row| {
            let (period_start, vcenter, vm_id, placement, figures) = summary_row(row)?;
            visit(period_start, vcenter, vm_id, placement, &figures);
            Ok(())
        },
    )
    .await
}

/// Copies one period's summaries into the transaction of `conn`, after the period's DELETE.
pub(super) async fn insert_summaries(
    conn: &mut PgConnection,
    grain: Grain,
    period_start: i64,
    rows: &[VmSummary],
) -> Result<()> {
    let statement = per_grain!(
        grain,
        ["COPY "],
        [" (", summary_columns!(), ") FROM STDIN (FORMAT binary)"]
    );
    pg_copy::copy_in(conn, statement, rows, |e, row| {
        let p = &row.placement;
        let f = &row.figures;
        e.tuple(29)
            .int8(period_start)
            .text(&row.vcenter)
            .text(&row.vm_id)
            .text(&p.vm_uuid)
            .text(&p.name)
            .text(&p.resource_pool)
            .text(&p.datacenter)
            .text(&p.cluster)
            .text(&p.folder)
            .int8(f.samples_present)
            .int8(f.total_samples)
            .float8(f.avg_is_present)
            .float8(f.avg_vcpu_count)
            .float8(f.avg_ram_gb)
            .float8(f.avg_provisioned_disk)
            .float8(f.pool_tin_pct)
            .float8(f.pool_bronze_pct)
            .float8(f.pool_silver_pct)
            .float8(f.pool_gold_pct)
            .float8(f.tin)
            .float8(f.bronze)
            .float8(f.silver)
            .float8(f.gold)
            .int8(f.creation_time)
            .int8(f.deletion_time)
            .int8(f.snapshot_time)
            .int8(f.samples_powered_on)
            .int8(f.samples_template)
            .int8(f.samples_placeholder);
    })
    .await
    .op("insert summaries")?;
    Ok(())
}

/// Copies hourly rows into the snapshot writer's transaction.
pub(super) async fn insert_hourly(
    conn: &mut PgConnection,
    rows: &[HourlyRow],
    mapping: &TierMapping,
) -> Result<()> {
    const STATEMENT: &str = "COPY vm_hourly (vcenter, vm_id, vm_uuid, inventory_id, name, event_key, cloud_id, creation_time, deletion_time, snapshot_time, resource_pool, datacenter, cluster, folder, provisioned_disk_gb, vcpu_count, ram_gb, is_template, powered_on, srm_placeholder, tier) FROM STDIN (FORMAT binary)";
    pg_copy::copy_in(conn, STATEMENT, rows, |e, row| {
        e.tuple(21)
            .text(&row.vcenter)
            .text(&row.vm_id)
            .text(&row.vm_uuid)
            .text(&row.inventory_id)
            .text(&row.name)
            .text(&row.event_key)
            .text(&row.cloud_id)
            .int8(row.creation_time)
            .int8(row.deletion_time)
            .int8(row.snapshot_time)
            .text(&row.resource_pool)
            .text(&row.datacenter)
            .text(&row.cluster)
            .text(&row.folder)
            .float8(row.provisioned_disk_gb)
            .int8(row.vcpu_count)
            .float8(row.ram_gb)
            .bool(row.is_template)
            .bool(row.powered_on)
            .bool(row.srm_placeholder)
            .int8(mapping.code_of(&row.resource_pool));
    })
    .await
    .op("insert hourly rows")?;
    Ok(())
}

/// The physical reference of `vctp bench aggregations`: the bytes of the rust engine's daily
/// read of `vcenter` (the same COPY), counted and discarded without decoding.
pub(super) async fn daily_read_bytes(
    pool: &PgPool,
    vcenter: &str,
    from: i64,
    to: i64,
) -> Result<u64> {
    const OP: &str = "read the day's rows by COPY";
    let mut conn = pool.acquire().await.op(OP)?;
    let mut stream = conn
        .copy_out_raw(&samples_select(vcenter, from, to))
        .await
        .op(OP)?;
    let mut bytes = 0;
    while let Some(chunk) = stream.try_next().await.op(OP)? {
        bytes += chunk.len() as u64;
    }
    Ok(bytes)
}
