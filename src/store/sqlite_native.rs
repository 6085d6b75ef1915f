//! SQLite's hot paths, run in-thread on the very connection sqlx holds.
//!
//! sqlx's SQLite driver runs each statement on its worker thread and sends every row back
//! over a channel, copying each value (≈10 µs a row, where SQLite's own loop needs ≈1 µs).
//! Here the worker's connection is locked (`lock_handle`) and borrowed as a
//! `rusqlite::Connection` for the length of one piece of work: a read sees the caller's
//! transaction, and a write lands in the transaction the store opened (`Tx::Sqlite`), so
//! nothing half-written is ever visible and a failure still rolls everything back.

use super::{Error, QueryContext, Result};
use crate::aggregate::daily::{Sample, SampleClass};
use crate::aggregate::hourly::IntervalVm;
use crate::aggregate::{Figures, PlacementRef, VmSummary};
use crate::inventory::{HourlyRow, Tier, TierMapping};
use rusqlite::{Connection, Row, params};
use sqlx::sqlite::{LockedSqliteHandle, SqliteConnection, SqlitePool};
use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` on `conn`'s SQLite handle, in this thread.
pub(super) async fn run<T>(
    conn: &mut SqliteConnection,
    op: &'static str,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    let mut handle = conn.lock_handle().await.op(op)?;
    in_place(|| with_borrowed(&mut handle, work)).map_err(|source| error(op, source))
}

/// [`run`] on a connection of `pool`, outside any transaction.
async fn run_pooled<T>(
    pool: &SqlitePool,
    op: &'static str,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    let mut conn = pool.acquire().await.op(op)?;
    run(&mut conn, op, work).await
}

/// Lends `work` a `rusqlite::Connection` on the handle `locked` holds.
fn with_borrowed<T>(
    locked: &mut LockedSqliteHandle<'_>,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    // SAFETY: `as_raw_handle` is the open sqlite3 handle sqlx's connection owns, and the
    // guard `locked` keeps sqlx's worker thread off it until this function returns, so this
    // thread is its only user. `from_handle` does not take ownership (dropping the borrowed
    // `Connection` never closes the handle), and `work` only gets a reference: the
    // `Connection` and every statement it prepared are dropped (finalized) here, before the
    // guard is released to sqlx.
    let borrowed = unsafe { Connection::from_handle(locked.as_raw_handle().as_ptr()) }?;
    work(&borrowed)
}

/// Runs CPU-bound `work` (a scan or a write of up to seconds) without starving the other
/// tasks of a multi-thread runtime; a current-thread runtime has no other worker to hand
/// them to, so there it simply runs.
fn in_place<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A rusqlite error as the store reports it: SQLITE_BUSY (another writer holds the lock
/// past the busy timeout) is [`Error::Locked`], as on the sqlx path.
fn error(op: &'static str, source: rusqlite::Error) -> Error {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) => Error::Locked { op },
        _ => Error::Sqlite { op, source },
    }
}

/// The text of column `i`, borrowed from the row; any other type is refused with the
/// column's name, as rusqlite does for the other types.
fn text<'r>(row: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    let value = row.get_ref(i)?;
    value.as_str().map_err(|_| {
        let name = row.as_ref().column_name(i).unwrap_or("?").to_string();
        rusqlite::Error::InvalidColumnType(i, name, value.data_type())
    })
}

/// The six placement columns (vm_uuid, name, resource_pool, datacenter, cluster, folder)
/// starting at column `first`.
fn placement<'r>(row: &'r Row<'_>, first: usize) -> rusqlite::Result<PlacementRef<'r>> {
    Ok(PlacementRef {
        vm_uuid: text(row, first)?,
        name: text(row, first + 1)?,
        resource_pool: text(row, first + 2)?,
        datacenter: text(row, first + 3)?,
        cluster: text(row, first + 4)?,
        folder: text(row, first + 5)?,
    })
}

/// The 20 figure columns starting at column `first`, in [`Figures`] field order.
fn figures(row: &Row<'_>, first: usize) -> rusqlite::Result<Figures> {
    Ok(Figures {
        samples_present: row.get(first)?,
        total_samples: row.get(first + 1)?,
        avg_is_present: row.get(first + 2)?,
        avg_vcpu_count: row.get(first + 3)?,
        avg_ram_gb: row.get(first + 4)?,
        avg_provisioned_disk: row.get(first + 5)?,
        pool_tin_pct: row.get(first + 6)?,
        pool_bronze_pct: row.get(first + 7)?,
        pool_silver_pct: row.get(first + 8)?,
        pool_gold_pct: row.get(first + 9)?,
        tin: row.get(first + 10)?,
        bronze: row.get(first + 11)?,
        silver: row.get(first + 12)?,
        gold: row.get(first + 13)?,
        creation_time: row.get(first + 14)?,
        deletion_time: row.get(first + 15)?,
        snapshot_time: row.get(first + 16)?,
        samples_powered_on: row.get(first + 17)?,
        samples_template: row.get(first + 18)?,
        samples_placeholder: row.get(first + 19)?,
    })
}

/// A whole summary row (the summary columns, in their order), borrowed: period_start,
/// vcenter, vm_id, placement and figures.
fn summary_row<'r>(
    row: &'r Row<'_>,
) -> rusqlite::Result<(i64, &'r str, &'r str, PlacementRef<'r>, Figures)> {
    Ok((
        row.get(0)?,
        text(row, 1)?,
        text(row, 2)?,
        placement(row, 3)?,
        figures(row, 9)?,
    ))
}

/// Runs `sql` with `params` on a connection of `pool` and hands each row to `visit`, in
/// SQLite's own loop; returns the number of rows.
async fn scan(
    pool: &SqlitePool,
    op: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
    mut visit: impl FnMut(&Row<'_>) -> rusqlite::Result<()>,
) -> Result<u64> {
    run_pooled(pool, op, |db| {
        let mut statement = db.prepare(sql)?;
        let mut rows = statement.query(params)?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            visit(row)?;
            count += 1;
        }
        Ok(count)
    })
    .await
}

/// `Store::scan_samples` on SQLite: `sql` selects vm_id, snapshot_time, vcpu_count, ram_gb,
/// provisioned_disk_gb, tier, creation_time, deletion_time, is_template, srm_placeholder,
/// powered_on.
pub(super) async fn scan_samples(
    pool: &SqlitePool,
    sql: &str,
    vcenter: &str,
    from: i64,
    to: i64,
    mut visit: impl FnMut(&str, &Sample),
) -> Result<u64> {
    scan(
        pool,
        "scan hourly samples",
        sql,
        (vcenter, from, to),
        |row| {
            let sample = Sample {
                snapshot_time: row.get(1)?,
                vcpu_count: row.get(2)?,
                ram_gb: row.get(3)?,
                provisioned_disk_gb: row.get(4)?,
                tier: Tier::from_code(row.get(5)?),
                creation_time: row.get(6)?,
                deletion_time: row.get(7)?,
                class: SampleClass::of(row.get(8)?, row.get(9)?, row.get(10)?),
            };
            visit(text(row, 0)?, &sample);
            Ok(())
        },
    )
    .await
}

/// `Store::scan_placements` (hourly rows of one snapshot) and `Store::scan_daily_placements`
/// (one vCenter's daily summaries): `sql` selects vm_id then the six placement columns.
pub(super) async fn scan_placements(
    pool: &SqlitePool,
    op: &'static str,
    sql: &str,
    key: impl rusqlite::Params,
    mut visit: impl FnMut(&str, PlacementRef<'_>),
) -> Result<()> {
    run_pooled(pool, op, |db| {
        let mut statement = db.prepare(sql)?;
        let mut rows = statement.query(key)?;
        while let Some(row) = rows.next()? {
            visit(text(row, 0)?, placement(row, 1)?);
        }
        Ok(())
    })
    .await
}

/// `Store::scan_interval_vms` on SQLite: `sql` selects creation_time, deletion_time,
/// vcpu_count, ram_gb, provisioned_disk_gb.
pub(super) async fn scan_interval_vms(
    pool: &SqlitePool,
    sql: &str,
    vcenter: &str,
    snapshot_time: i64,
    mut visit: impl FnMut(&IntervalVm),
) -> Result<()> {
    run_pooled(pool, "read snapshot VMs", |db| {
        let mut statement = db.prepare(sql)?;
        let mut rows = statement.query(params![vcenter, snapshot_time])?;
        while let Some(row) = rows.next()? {
            visit(&IntervalVm {
                creation_time: row.get(0)?,
                deletion_time: row.get(1)?,
                vcpu_count: row.get(2)?,
                ram_gb: row.get(3)?,
                provisioned_disk_gb: row.get(4)?,
            });
        }
        Ok(())
    })
    .await
}

/// `Store::scan_daily_figures` on SQLite: `sql` selects period_start, vcenter, vm_id, then
/// the figures.
pub(super) async fn scan_daily_figures(
    pool: &SqlitePool,
    sql: &str,
    from: i64,
    to: i64,
    mut visit: impl FnMut(&str, &str, i64, &Figures),
) -> Result<u64> {
    scan(pool, "scan daily summaries", sql, (from, to), |row| {
        let figures = figures(row, 3)?;
        visit(text(row, 1)?, text(row, 2)?, row.get(0)?, &figures);
        Ok(())
    })
    .await
}

/// `Store::scan_daily_rows` on SQLite: `sql` selects the summary columns.
pub(super) async fn scan_daily_rows(
    pool: &SqlitePool,
    sql: &str,
    from: i64,
    to: i64,
    mut visit: impl FnMut(i64, &str, &str, PlacementRef<'_>, &Figures),
) -> Result<u64> {
    scan(pool, "scan daily summary rows", sql, (from, to), |row| {
        let (period_start, vcenter, vm_id, placement, figures) = summary_row(row)?;
        visit(period_start, vcenter, vm_id, placement, &figures);
        Ok(())
    })
    .await
}

/// `Store::summaries` on SQLite: `sql` selects the summary columns of one period.
pub(super) async fn summaries(
    pool: &SqlitePool,
    sql: &str,
    period_start: i64,
) -> Result<Vec<VmSummary>> {
    query_all(pool, "read summaries", sql, (period_start,), |row| {
        let (_, vcenter, vm_id, placement, figures) = summary_row(row)?;
        let mut summary = VmSummary {
            vcenter: vcenter.to_string(),
            vm_id: vm_id.to_string(),
            figures,
            ..VmSummary::default()
        };
        summary.placement.assign(placement);
        Ok(summary)
    })
    .await
}

/// Writes `rows` of one period through one prepared `insert` (the summary columns, 29
/// parameters) into the transaction open on `conn`.
pub(super) async fn insert_summaries(
    conn: &mut SqliteConnection,
    insert: &str,
    period_start: i64,
    rows: &[VmSummary],
) -> Result<()> {
    run(conn, "insert summaries", |db| {
        let mut statement = db.prepare(insert)?;
        for row in rows {
            let (p, f) = (&row.placement, &row.figures);
            statement.execute(params![
                period_start,
                row.vcenter,
                row.vm_id,
                p.vm_uuid,
                p.name,
                p.resource_pool,
                p.datacenter,
                p.cluster,
                p.folder,
                f.samples_present,
                f.total_samples,
                f.avg_is_present,
                f.avg_vcpu_count,
                f.avg_ram_gb,
                f.avg_provisioned_disk,
                f.pool_tin_pct,
                f.pool_bronze_pct,
                f.pool_silver_pct,
                f.pool_gold_pct,
                f.tin,
                f.bronze,
                f.silver,
                f.gold,
                f.creation_time,
                f.deletion_time,
                f.snapshot_time,
                f.samples_powered_on,
                f.samples_template,
                f.samples_placeholder,
            ])?;
        }
        Ok(())
    })
    .await
}

/// Writes hourly `rows` through one prepared `insert` (the 21 hourly columns) into the
/// transaction open on `conn`.
pub(super) async fn insert_hourly(
    conn: &mut SqliteConnection,
    insert: &str,
    mapping: &TierMapping,
    rows: &[HourlyRow],
) -> Result<()> {
    run(conn, "insert hourly rows", |db| {
        let mut statement = db.prepare(insert)?;
        for row in rows {
            statement.execute(params![
                row.vcenter,
                row.vm_id,
                row.vm_uuid,
                row.inventory_id,
                row.name,
                row.event_key,
                row.cloud_id,
                row.creation_time,
                row.deletion_time,
                row.snapshot_time,
                row.resource_pool,
                row.datacenter,
                row.cluster,
                row.folder,
                row.provisioned_disk_gb,
                row.vcpu_count,
                row.ram_gb,
                row.is_template,
                row.powered_on,
                row.srm_placeholder,
                mapping.code_of(&row.resource_pool),
            ])?;
        }
        Ok(())
    })
    .await
}

/// `Store::reference_scan` on SQLite: one aggregate `SELECT … GROUP BY vcenter, vm_id` over
/// the day, run by SQLite's own loop, as the `sqlite3` shell would.
pub(super) async fn reference_scan(pool: &SqlitePool, from: i64, to: i64) -> Result<u64> {
    const SQL: &str = "SELECT vcenter, vm_id, COUNT(*), SUM(vcpu_count), SUM(ram_gb), SUM(provisioned_disk_gb),
            SUM(tier = 1), SUM(tier = 2), SUM(tier = 3), SUM(tier = 4),
            SUM(NOT is_template AND NOT srm_placeholder AND powered_on), SUM(is_template),
            SUM(NOT is_template AND srm_placeholder),
            MIN(CASE WHEN creation_time > 0 THEN creation_time END), MAX(deletion_time), MAX(snapshot_time)
        FROM vm_hourly
        WHERE vcenter IN (SELECT vcenter FROM snapshot_registry WHERE snapshot_time >= ?1 AND snapshot_time < ?2)
          AND snapshot_time >= ?1 AND snapshot_time < ?2
        GROUP BY vcenter, vm_id";
    run_pooled(pool, "run the reference scan", |db| {
        let mut statement = db.prepare(SQL)?;
        let mut rows = statement.query(params![from, to])?;
        let mut vms = 0;
        while rows.next()?.is_some() {
            vms += 1;
        }
        Ok(vms)
    })
    .await
}

/// Every row of `sql` on a connection of `pool`, each turned into a `T` by `map`: small
/// reads served often, such as one vCenter's totals for the API (about a thousand rows an
/// answer, read per request when the answer cache is off).
pub(super) async fn query_all<T>(
    pool: &SqlitePool,
    op: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
    mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    scan(pool, op, sql, params, |row| {
        out.push(map(row)?);
        Ok(())
    })
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DatabaseUrl, Store};

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("native.sqlite3"));
        let Store::Sqlite(pool) = Store::connect(&url).await.unwrap() else {
            unreachable!("a file path is SQLite")
        };
        (dir, pool)
    }

    const INSERT: &str =
        "INSERT INTO vcenter_hosts (vcenter, host, recorded_at) VALUES ('vc', 'h', 1)";

    fn hosts(db: &Connection) -> rusqlite::Result<i64> {
        db.query_row("SELECT COUNT(*) FROM vcenter_hosts", [], |row| row.get(0))
    }

    /// What is written through the borrowed handle belongs to the transaction sqlx opened:
    /// sqlx's own reads in it see it, nobody else does, and dropping it rolls it back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_through_the_borrowed_handle_is_rolled_back_with_the_transaction() {
        let (_dir, pool) = pool().await;
        let mut tx = pool.begin().await.unwrap();
        run(&mut tx, "write a host", |db| db.execute(INSERT, []))
            .await
            .unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vcenter_hosts")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(run_pooled(&pool, "count hosts", hosts).await.unwrap(), 0);
        drop(tx);
        assert_eq!(run_pooled(&pool, "count hosts", hosts).await.unwrap(), 0);
    }

    /// A read through the borrowed handle sees the rows of the transaction open on it (on a
    /// current-thread runtime, where the work runs in place).
    #[tokio::test]
    async fn a_read_through_the_borrowed_handle_sees_the_open_transaction() {
        let (_dir, pool) = pool().await;
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(INSERT).execute(&mut *tx).await.unwrap();
        assert_eq!(run(&mut tx, "count hosts", hosts).await.unwrap(), 1);
        assert_eq!(run_pooled(&pool, "count hosts", hosts).await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(run_pooled(&pool, "count hosts", hosts).await.unwrap(), 1);
    }
}
