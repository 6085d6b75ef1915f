//! Daily and monthly summaries: written whole per period (replace in one transaction), read
//! back sorted, and computed inside the database by the `sql` engine.

use super::grain::{Grain, figure_columns, per_grain, summary_columns};
use super::{
    QueryContext, Result, Store, Tx, postgres, sqlite_native, totals, trace, with_pool, with_tx,
};
use crate::aggregate::{Figures, PlacementRef, VmSummary};

/// The `sql` engine's daily aggregation: the arithmetic of `aggregate::daily`, with the
/// same order of operations so both engines round alike. `$1`/`$2` bound the day.
const DAILY_SQL: &str = concat!(
    "INSERT INTO vm_daily_summary (",
    summary_columns!(),
    ") SELECT $1, a.vcenter, a.vm_id, l.vm_uuid, l.name, l.resource_pool, l.datacenter, l.cluster, l.folder,
        a.samples_present, r.total_samples,
        CAST(a.samples_present AS DOUBLE PRECISION) / r.total_samples,
        a.vcpu_sum / r.total_samples, a.ram_sum / r.total_samples, a.disk_sum / r.total_samples,
        a.tin_hits / a.samples_present * 100.0, a.bronze_hits / a.samples_present * 100.0,
        a.silver_hits / a.samples_present * 100.0, a.gold_hits / a.samples_present * 100.0,
        a.tin_hits / r.total_samples, a.bronze_hits / r.total_samples,
        a.silver_hits / r.total_samples, a.gold_hits / r.total_samples,
        a.creation_time, a.deletion_time, a.snapshot_time,
        a.samples_powered_on, a.samples_template, a.samples_placeholder
    FROM (
        SELECT vcenter, vm_id, COUNT(*) AS samples_present,
            CAST(SUM(vcpu_count) AS DOUBLE PRECISION) AS vcpu_sum,
            SUM(ram_gb) AS ram_sum, SUM(provisioned_disk_gb) AS disk_sum,
            CAST(SUM(CASE WHEN tier = 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS tin_hits,
            CAST(SUM(CASE WHEN tier = 2 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS bronze_hits,
            CAST(SUM(CASE WHEN tier = 3 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS silver_hits,
            CAST(SUM(CASE WHEN tier = 4 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) AS gold_hits,
            COALESCE(MIN(CASE WHEN creation_time > 0 THEN creation_time END), 0) AS creation_time,
            MAX(deletion_time) AS deletion_time, MAX(snapshot_time) AS snapshot_time,
            SUM(CASE WHEN is_template THEN 0 WHEN srm_placeholder THEN 0 WHEN powered_on THEN 1 ELSE 0 END) AS samples_powered_on,
            SUM(CASE WHEN is_template THEN 1 ELSE 0 END) AS samples_template,
            SUM(CASE WHEN is_template THEN 0 WHEN srm_placeholder THEN 1 ELSE 0 END) AS samples_placeholder
        FROM vm_hourly
        WHERE vcenter IN (SELECT vcenter FROM snapshot_registry WHERE snapshot_time >= $1 AND snapshot_time < $2)
          AND snapshot_time >= $1 AND snapshot_time < $2
        GROUP BY vcenter, vm_id
    ) a
    JOIN (
        SELECT vcenter, COUNT(*) AS total_samples FROM snapshot_registry
        WHERE snapshot_time >= $1 AND snapshot_time < $2 GROUP BY vcenter
    ) r ON r.vcenter = a.vcenter
    JOIN vm_hourly l ON l.vcenter = a.vcenter AND l.snapshot_time = a.snapshot_time AND l.vm_id = a.vm_id"
);

/// The `sql` engine's monthly aggregation over the daily summaries in `[$1, $2)`: the
/// arithmetic of `aggregate::monthly`, in the same order of operations. Identity comes from
/// the VM's last day in the month, which holds its latest snapshot.
const MONTHLY_SQL: &str = concat!(
    "INSERT INTO vm_monthly_summary (",
    summary_columns!(),
    ") SELECT $1, a.vcenter, a.vm_id, l.vm_uuid, l.name, l.resource_pool, l.datacenter, l.cluster, l.folder,
        a.samples_present, m.total_samples,
        CAST(a.samples_present AS DOUBLE PRECISION) / m.total_samples,
        a.vcpu_weighted / m.total_samples, a.ram_weighted / m.total_samples, a.disk_weighted / m.total_samples,
        a.tin_share / m.total_samples * 100.0, a.bronze_share / m.total_samples * 100.0,
        a.silver_share / m.total_samples * 100.0, a.gold_share / m.total_samples * 100.0,
        a.tin, a.bronze, a.silver, a.gold,
        a.creation_time, a.deletion_time, a.snapshot_time,
        a.samples_powered_on, a.samples_template, a.samples_placeholder
    FROM (
        SELECT vcenter, vm_id, SUM(samples_present) AS samples_present,
            SUM(avg_vcpu_count * total_samples) AS vcpu_weighted,
            SUM(avg_ram_gb * total_samples) AS ram_weighted,
            SUM(avg_provisioned_disk * total_samples) AS disk_weighted,
            SUM(pool_tin_pct / 100.0 * total_samples) AS tin_share,
            SUM(pool_bronze_pct / 100.0 * total_samples) AS bronze_share,
            SUM(pool_silver_pct / 100.0 * total_samples) AS silver_share,
            SUM(pool_gold_pct / 100.0 * total_samples) AS gold_share,
            SUM(tin) AS tin, SUM(bronze) AS bronze, SUM(silver) AS silver, SUM(gold) AS gold,
            COALESCE(MIN(CASE WHEN creation_time > 0 THEN creation_time END), 0) AS creation_time,
            MAX(deletion_time) AS deletion_time, MAX(snapshot_time) AS snapshot_time,
            MAX(period_start) AS last_day,
            SUM(samples_powered_on) AS samples_powered_on, SUM(samples_template) AS samples_template,
            SUM(samples_placeholder) AS samples_placeholder
        FROM vm_daily_summary WHERE period_start >= $1 AND period_start < $2
        GROUP BY vcenter, vm_id
    ) a
    JOIN (
        SELECT vcenter, SUM(day_total) AS total_samples FROM (
            SELECT period_start, vcenter, MAX(total_samples) AS day_total FROM vm_daily_summary
            WHERE period_start >= $1 AND period_start < $2 GROUP BY period_start, vcenter
        ) d GROUP BY vcenter
    ) m ON m.vcenter = a.vcenter
    JOIN vm_daily_summary l ON l.period_start = a.last_day AND l.vcenter = a.vcenter AND l.vm_id = a.vm_id"
);

impl Store {
    /// Replaces the summaries of one period with `rows` and rebuilds its totals, in one
    /// transaction.
    pub async fn replace_summaries(
        &self,
        grain: Grain,
        period_start: i64,
        rows: &[VmSummary],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_period(&mut tx, grain, period_start).await?;
        match &mut tx {
            Tx::Sqlite(conn) => {
                let insert = per_grain!(
                    grain,
                    ["INSERT INTO "],
                    [
                        " (",
                        summary_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
                    ]
                );
                sqlite_native::insert_summaries(conn, insert, period_start, rows).await?;
            }
            Tx::Postgres(pg) => postgres::insert_summaries(pg, grain, period_start, rows).await?,
        }
        derive_from_period(&mut tx, grain, period_start).await?;
        tx.commit().await
    }

    /// The `sql` engine: replaces the summaries of `[period_start, period_end)` with what the
    /// database computes, and rebuilds the period's totals, in one transaction.
    pub async fn aggregate_in_database(
        &self,
        grain: Grain,
        period_start: i64,
        period_end: i64,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        delete_period(&mut tx, grain, period_start).await?;
        let sql = match grain {
            Grain::Daily => DAILY_SQL,
            Grain::Monthly => MONTHLY_SQL,
        };
        let written = with_tx!(&mut tx, |conn| {
            sqlx::query(sql)
                .bind(period_start)
                .bind(period_end)
                .execute(&mut *conn)
                .await
                .op("aggregate in the database")?
                .rows_affected()
        });
        derive_from_period(&mut tx, grain, period_start).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// The summaries of one period, sorted by vcenter then vm_id.
    pub async fn summaries(&self, grain: Grain, period_start: i64) -> Result<Vec<VmSummary>> {
        let sql = per_grain!(
            grain,
            ["SELECT ", summary_columns!(), " FROM "],
            [" WHERE period_start = $1 ORDER BY vcenter, vm_id"]
        );
        match self {
            Store::Sqlite(pool) => sqlite_native::summaries(pool, sql, period_start).await,
            Store::Postgres(pool) => postgres::summaries(pool, grain, period_start).await,
        }
    }

    /// Streams the figures of every daily summary in `[from, to)` to `visit` with
    /// `(vcenter, vm_id, period_start)`, in no particular order: the rust engine's one pass
    /// over a month, which needs neither placements nor an order (see [`Self::scan_daily_rows`]).
    pub async fn scan_daily_figures(
        &self,
        from: i64,
        to: i64,
        visit: impl FnMut(&str, &str, i64, &Figures),
    ) -> Result<u64> {
        const SQL: &str = concat!(
            "SELECT period_start, vcenter, vm_id, ",
            figure_columns!(),
            " FROM vm_daily_summary WHERE period_start >= $1 AND period_start < $2"
        );
        match self {
            Store::Sqlite(pool) => {
                sqlite_native::scan_daily_figures(pool, SQL, from, to, visit).await
            }
            Store::Postgres(pool) => postgres::scan_daily_figures(pool, from, to, visit).await,
        }
    }

    /// Streams every daily summary with its period_start in `[from, to)` to `visit` as
    /// `(period_start, vcenter, vm_id, placement, figures)`, borrowed from the row, ordered
    /// by period_start, vcenter, vm_id (the primary key's order): what pricing reads.
    /// Returns the number of rows.
    pub async fn scan_daily_rows(
        &self,
        from: i64,
        to: i64,
        visit: impl FnMut(i64, &str, &str, PlacementRef<'_>, &Figures),
    ) -> Result<u64> {
        const SQL: &str = concat!(
            "SELECT ",
            summary_columns!(),
            " FROM vm_daily_summary WHERE period_start >= $1 AND period_start < $2 ",
            "ORDER BY period_start, vcenter, vm_id"
        );
        match self {
            Store::Sqlite(pool) => sqlite_native::scan_daily_rows(pool, SQL, from, to, visit).await,
            Store::Postgres(pool) => postgres::scan_daily_rows(pool, from, to, visit).await,
        }
    }

    /// Streams identity and placement of each VM of one vCenter's daily summary to `visit`.
    pub async fn scan_daily_placements(
        &self,
        period_start: i64,
        vcenter: &str,
        visit: impl FnMut(&str, PlacementRef<'_>),
    ) -> Result<()> {
        const SQL: &str = "SELECT vm_id, vm_uuid, name, resource_pool, datacenter, cluster, folder \
            FROM vm_daily_summary WHERE period_start = $1 AND vcenter = $2";
        match self {
            Store::Sqlite(pool) => {
                let key = (period_start, vcenter);
                sqlite_native::scan_placements(pool, "read daily placements", SQL, key, visit).await
            }
            Store::Postgres(pool) => {
                postgres::scan_daily_placements(pool, period_start, vcenter, visit).await
            }
        }
    }

    /// Deletes daily summaries of days before `cutoff`, the names last seen on them, and the
    /// VM attribute entries superseded before it.
    pub async fn delete_daily_before(&self, cutoff: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let deleted = with_tx!(&mut tx, |conn| {
            sqlx::query("DELETE FROM vm_names WHERE last_period < $1")
                .bind(cutoff)
                .execute(&mut *conn)
                .await
                .op("delete old VM names")?;
            sqlx::query("DELETE FROM vm_daily_summary WHERE period_start < $1")
                .bind(cutoff)
                .execute(&mut *conn)
                .await
                .op("delete old daily summaries")?
                .rows_affected()
        });
        // The attributes no remaining day can be priced with go in the same transaction.
        super::attributes::delete_superseded_before(&mut tx, cutoff).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Whether any summary of `grain` has its period_start in `[from, to)`.
    pub async fn has_summaries(&self, grain: Grain, from: i64, to: i64) -> Result<bool> {
        let sql = per_grain!(
            grain,
            ["SELECT 1 FROM "],
            [" WHERE period_start >= $1 AND period_start < $2 LIMIT 1"]
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(from)
                .bind(to)
                .fetch_optional(pool)
                .await
                .op("look for summaries")
                .map(|row| row.is_some())
        })
    }

    /// The period starts that have summaries of `grain`.
    pub async fn summary_periods(&self, grain: Grain) -> Result<Vec<i64>> {
        let sql = per_grain!(
            grain,
            ["SELECT DISTINCT period_start FROM "],
            [" ORDER BY period_start"]
        );
        with_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .fetch_all(pool)
                .await
                .op("list summary periods")
        })
    }
}

/// What is kept beside a period's summaries, rebuilt in the transaction that wrote them by
/// either engine: the period's vCenter totals and, for days, the VM names the trace finds.
async fn derive_from_period(tx: &mut Tx, grain: Grain, period_start: i64) -> Result<()> {
    totals::rebuild_period_totals(tx, grain, period_start).await?;
    trace::record_names(tx, grain, period_start).await
}

async fn delete_period(tx: &mut Tx, grain: Grain, period_start: i64) -> Result<()> {
    let sql = per_grain!(grain, ["DELETE FROM "], [" WHERE period_start = $1"]);
    with_tx!(tx, |conn| {
        sqlx::query(sql)
            .bind(period_start)
            .execute(&mut *conn)
            .await
            .op("delete the period's summaries")?;
    });
    Ok(())
}
