//! The vCenter totals caches in `vcenter_totals`: per snapshot (raw counts, kept by the
//! snapshot writer), per day and month (sums of the summaries, kept by aggregation), the
//! `vcenter_latest_totals` view, and the backfill that rebuilds them all.

use super::grain::{Grain, TotalsGrain, per_grain};
use super::{QueryContext, Result, Store, Tx, sqlite_native, with_pool, with_tx};
use serde::Serialize;

/// One row of the totals cache. For snapshots `vm_count` and the tier columns are counts;
/// for days and months they are prorated sums (VM-days, or the month's average VM count).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VcenterTotals {
    pub grain: String,
    pub vcenter: String,
    pub period_start: i64,
    pub total_samples: i64,
    pub vm_count: f64,
    pub vcpu_count: f64,
    pub ram_gb: f64,
    pub disk_gb: f64,
    pub tin: f64,
    pub bronze: f64,
    pub silver: f64,
    pub gold: f64,
}

/// What a backfill rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub vcenters: usize,
    pub days: usize,
    pub months: usize,
}

/// Recomputes the snapshot totals of `vcenter`'s registered snapshots in `[from, to)` from
/// its hourly rows; a snapshot without rows gets zero totals.
pub async fn rebuild_snapshot_totals(tx: &mut Tx, vcenter: &str, from: i64, to: i64) -> Result<()> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM vcenter_totals WHERE grain = 'snapshot' AND vcenter = $1 AND period_start >= $2 AND period_start < $3",
        )
        .bind(vcenter)
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await
        .op("clear snapshot totals")?;
        sqlx::query(
            "INSERT INTO vcenter_totals (grain, vcenter, period_start, total_samples, vm_count, vcpu_count, ram_gb, disk_gb, tin, bronze, silver, gold)
             SELECT 'snapshot', r.vcenter, r.snapshot_time, 1, COUNT(h.vm_id),
                 COALESCE(SUM(h.vcpu_count), 0), COALESCE(SUM(h.ram_gb), 0), COALESCE(SUM(h.provisioned_disk_gb), 0),
                 SUM(CASE WHEN h.tier = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN h.tier = 2 THEN 1 ELSE 0 END),
                 SUM(CASE WHEN h.tier = 3 THEN 1 ELSE 0 END), SUM(CASE WHEN h.tier = 4 THEN 1 ELSE 0 END)
             FROM snapshot_registry r
             LEFT JOIN vm_hourly h ON h.vcenter = r.vcenter AND h.snapshot_time = r.snapshot_time
             WHERE r.vcenter = $1 AND r.snapshot_time >= $2 AND r.snapshot_time < $3
             GROUP BY r.vcenter, r.snapshot_time",
        )
        .bind(vcenter)
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await
        .op("compute snapshot totals")?;
    });
    Ok(())
}

/// Recomputes the daily or monthly totals of one period from its summaries.
pub async fn rebuild_period_totals(tx: &mut Tx, grain: Grain, period_start: i64) -> Result<()> {
    let insert = per_grain!(
        grain,
        ["INSERT INTO vcenter_totals (grain, vcenter, period_start, total_samples, vm_count, vcpu_count, ram_gb, disk_gb, tin, bronze, silver, gold)
          SELECT $2, vcenter, period_start, MAX(total_samples), SUM(avg_is_present), SUM(avg_vcpu_count), SUM(avg_ram_gb),
              SUM(avg_provisioned_disk), SUM(tin), SUM(bronze), SUM(silver), SUM(gold) FROM "],
        [" WHERE period_start = $1 GROUP BY vcenter, period_start"]
    );
    with_tx!(tx, |conn| {
        sqlx::query("DELETE FROM vcenter_totals WHERE grain = $1 AND period_start = $2")
            .bind(grain.totals().as_str())
            .bind(period_start)
            .execute(&mut *conn)
            .await
            .op("clear period totals")?;
        sqlx::query(insert)
            .bind(period_start)
            .bind(grain.totals().as_str())
            .execute(&mut *conn)
            .await
            .op("compute period totals")?;
    });
    Ok(())
}

/// Rows of the totals cache at most per INSERT (12 binds each, under SQLite's 32,766).
const INSERT_BATCH: usize = 1_000;

/// Writes `rows` into the totals cache as they are (no rebuild from a source): for loading
/// precomputed totals, such as the API benchmark's.
pub async fn insert_totals(tx: &mut Tx, rows: &[VcenterTotals]) -> Result<()> {
    for batch in rows.chunks(INSERT_BATCH) {
        with_tx!(tx, |conn| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO vcenter_totals (grain, vcenter, period_start, total_samples, vm_count, vcpu_count, ram_gb, disk_gb, tin, bronze, silver, gold) ",
            );
            insert.push_values(batch, |mut values, row| {
                values
                    .push_bind(&row.grain)
                    .push_bind(&row.vcenter)
                    .push_bind(row.period_start)
                    .push_bind(row.total_samples)
                    .push_bind(row.vm_count)
                    .push_bind(row.vcpu_count)
                    .push_bind(row.ram_gb)
                    .push_bind(row.disk_gb)
                    .push_bind(row.tin)
                    .push_bind(row.bronze)
                    .push_bind(row.silver)
                    .push_bind(row.gold);
            });
            insert
                .build()
                .execute(&mut *conn)
                .await
                .op("insert vCenter totals")?;
        });
    }
    Ok(())
}

/// The columns of [`VcenterTotals`], for every read of the cache.
macro_rules! select_totals {
    () => {
        "SELECT grain, vcenter, period_start, total_samples, vm_count, vcpu_count, ram_gb, disk_gb, tin, bronze, silver, gold FROM "
    };
}

impl Store {
    /// Totals rows of `grain` with period_start in `[from, to)`, ordered by vcenter then time.
    pub async fn totals(
        &self,
        grain: TotalsGrain,
        from: i64,
        to: i64,
    ) -> Result<Vec<VcenterTotals>> {
        const SQL: &str = concat!(
            select_totals!(),
            "vcenter_totals WHERE grain = $1 AND period_start >= $2 AND period_start < $3 ORDER BY vcenter, period_start"
        );
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(grain.as_str())
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await
                .op("read vCenter totals")
        })
    }

    /// Totals rows of one vCenter and `grain` with period_start in `[from, to)`, in time
    /// order: one primary-key range, so a page about one vCenter never reads the others.
    pub async fn vcenter_totals_range(
        &self,
        grain: TotalsGrain,
        vcenter: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<VcenterTotals>> {
        const SQL: &str = concat!(
            select_totals!(),
            "vcenter_totals WHERE grain = $1 AND vcenter = $2 AND period_start >= $3 AND period_start < $4 ORDER BY period_start"
        );
        const OP: &str = "read one vCenter's totals";
        let pool = match self {
            Store::Sqlite(pool) => {
                let params = (grain.as_str(), vcenter, from, to);
                return sqlite_native::query_all(pool, OP, SQL, params, |row| {
                    Ok(VcenterTotals {
                        grain: row.get(0)?,
                        vcenter: row.get(1)?,
                        period_start: row.get(2)?,
                        total_samples: row.get(3)?,
                        vm_count: row.get(4)?,
                        vcpu_count: row.get(5)?,
                        ram_gb: row.get(6)?,
                        disk_gb: row.get(7)?,
                        tin: row.get(8)?,
                        bronze: row.get(9)?,
                        silver: row.get(10)?,
                        gold: row.get(11)?,
                    })
                })
                .await;
            }
            Store::Postgres(pool) => pool,
        };
        sqlx::query_as(SQL)
            .bind(grain.as_str())
            .bind(vcenter)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
            .op(OP)
    }

    /// Whether `vcenter` has any snapshot totals: one probe of the primary key.
    pub async fn has_snapshot_totals(&self, vcenter: &str) -> Result<bool> {
        const SQL: &str =
            "SELECT 1 FROM vcenter_totals WHERE grain = 'snapshot' AND vcenter = $1 LIMIT 1";
        let found: Option<i32> = with_pool!(self, |pool| {
            sqlx::query_scalar(SQL)
                .bind(vcenter)
                .fetch_optional(pool)
                .await
                .op("look up a vCenter's snapshot totals")?
        });
        Ok(found.is_some())
    }

    /// The newest snapshot totals of each vCenter.
    pub async fn latest_totals(&self) -> Result<Vec<VcenterTotals>> {
        const SQL: &str = concat!(select_totals!(), "vcenter_latest_totals ORDER BY vcenter");
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .fetch_all(pool)
                .await
                .op("read latest vCenter totals")
        })
    }

    /// Rebuilds every totals cache row that has a source (registered snapshots, daily and
    /// monthly summaries), in one transaction. Daily and monthly totals whose summaries
    /// retention has removed are kept: they are the long-range history.
    pub async fn backfill_totals(&self) -> Result<Backfilled> {
        let vcenters: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT DISTINCT vcenter FROM snapshot_registry ORDER BY vcenter")
                .fetch_all(pool)
                .await
                .op("list registered vCenters")?
        });
        let days = self.summary_periods(Grain::Daily).await?;
        let months = self.summary_periods(Grain::Monthly).await?;
        let mut tx = self.begin().await?;
        for vcenter in &vcenters {
            rebuild_snapshot_totals(&mut tx, vcenter, i64::MIN, i64::MAX).await?;
        }
        for day in &days {
            rebuild_period_totals(&mut tx, Grain::Daily, *day).await?;
        }
        for month in &months {
            rebuild_period_totals(&mut tx, Grain::Monthly, *month).await?;
        }
        tx.commit().await?;
        Ok(Backfilled {
            vcenters: vcenters.len(),
            days: days.len(),
            months: months.len(),
        })
    }
}
