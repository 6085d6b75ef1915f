//! Hourly snapshot rows and the snapshot registry: writing whole snapshots atomically,
//! exporting rows, and the narrow scans the aggregation engines read.

use super::attributes::{self, Attributes};
use super::{
    Error, QueryContext, Result, Store, Tx, postgres, sqlite_native, totals, with_pool, with_tx,
};
use crate::aggregate::PlacementRef;
use crate::aggregate::daily::Sample;
use crate::aggregate::hourly::IntervalVm;
use crate::inventory::{HourlyRow, TierMapping};
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use rustc_hash::FxHashSet;
use sqlx::Row;

/// Rows gathered before one in-thread write on SQLite (each call locks sqlx's connection once).
const INSERT_BATCH: usize = 1_000;

/// Rows per COPY on PostgreSQL (a few MB of rows held at a time).
const COPY_BATCH: usize = 10_000;

/// One hourly row, prepared once and run for each row on SQLite.
const INSERT_HOURLY_ROW: &str = "INSERT INTO vm_hourly (vcenter, vm_id, vm_uuid, inventory_id, name, event_key, cloud_id, creation_time, deletion_time, snapshot_time, resource_pool, datacenter, cluster, folder, provisioned_disk_gb, vcpu_count, ram_gb, is_template, powered_on, srm_placeholder, tier) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

/// A snapshot stored by a [`SnapshotWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub vcenter: String,
    pub snapshot_time: i64,
    pub rows: u64,
}

/// Writes whole snapshots in one transaction: each snapshot (vcenter + snapshot_time)
/// replaces any stored one with the same key, is registered, and gets its totals cache row.
/// Nothing is visible until [`SnapshotWriter::commit`]; dropping the writer rolls back.
pub struct SnapshotWriter {
    tx: Tx,
    mapping: TierMapping,
    source: &'static str,
    batch: Vec<HourlyRow>,
    /// The snapshot being written and the VMs seen in it so far.
    current: Option<StoredSnapshot>,
    current_vms: FxHashSet<String>,
    done: Vec<StoredSnapshot>,
    /// `(vcenter, snapshot_time)` of `done`, so a split snapshot is found in one lookup.
    done_keys: FxHashSet<(String, i64)>,
    /// Custom attribute entries to add with the snapshots.
    attributes: attributes::Pending,
}

impl Store {
    /// The host each vCenter key was last captured from, by key (keys never captured since
    /// hosts were recorded have none).
    pub async fn vcenter_hosts(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT vcenter, host FROM vcenter_hosts ORDER BY vcenter")
                .fetch_all(pool)
                .await
                .op("read the vCenter hosts")?
        });
        Ok(rows.into_iter().collect())
    }

    /// Starts writing snapshots; `source` is recorded in the registry (`import`, `collector`).
    pub async fn snapshot_writer(
        &self,
        mapping: TierMapping,
        source: &'static str,
    ) -> Result<SnapshotWriter> {
        Ok(SnapshotWriter {
            tx: self.begin().await?,
            mapping,
            source,
            batch: Vec::with_capacity(INSERT_BATCH),
            current: None,
            current_vms: FxHashSet::default(),
            done: Vec::new(),
            done_keys: FxHashSet::default(),
            attributes: attributes::Pending::default(),
        })
    }
}

impl SnapshotWriter {
    /// Adds one row. Rows of one snapshot must come together; a VM may appear once per
    /// snapshot.
    pub async fn push(&mut self, row: HourlyRow) -> Result<()> {
        let same_snapshot = self
            .current
            .as_ref()
            .is_some_and(|s| s.snapshot_time == row.snapshot_time && s.vcenter == row.vcenter);
        if !same_snapshot {
            self.finish_snapshot().await?;
            self.start_snapshot(&row.vcenter, row.snapshot_time).await?;
        }
        if !self.current_vms.insert(row.vm_id.clone()) {
            return Err(Error::DuplicateVm {
                vcenter: row.vcenter,
                snapshot_time: row.snapshot_time,
                vm_id: row.vm_id,
            });
        }
        if let Some(current) = &mut self.current {
            current.rows += 1;
        }
        self.batch.push(row);
        if self.batch.len() == self.batch_limit() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Records the custom attributes VM `vm_id` of `vcenter` has at `snapshot_time`: an
    /// entry is added, committed with the snapshot, only when they differ from its latest
    /// stored entry (also when they become empty). The vCenter's latest entries are read
    /// once per vCenter and snapshot time.
    pub async fn push_attributes(
        &mut self,
        vcenter: &str,
        vm_id: &str,
        snapshot_time: i64,
        attributes: &Attributes,
    ) -> Result<()> {
        self.attributes
            .note(&mut self.tx, vcenter, vm_id, snapshot_time, attributes)
            .await
    }

    /// Records a snapshot in which no VM was seen: it still counts in total_samples.
    pub async fn push_empty(&mut self, vcenter: &str, snapshot_time: i64) -> Result<()> {
        self.finish_snapshot().await?;
        self.start_snapshot(vcenter, snapshot_time).await
    }

    /// Records `host` as where `vcenter`'s snapshots come from (shown beside the key); it is
    /// committed with them.
    pub async fn record_host(&mut self, vcenter: &str, host: &str) -> Result<()> {
        let recorded_at = chrono::Utc::now().timestamp();
        with_tx!(&mut self.tx, |conn| {
            sqlx::query(
                "INSERT INTO vcenter_hosts (vcenter, host, recorded_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (vcenter) DO UPDATE SET host = excluded.host, recorded_at = excluded.recorded_at",
            )
            .bind(vcenter)
            .bind(host)
            .bind(recorded_at)
            .execute(&mut *conn)
            .await
            .op("record a vCenter's host")?;
        });
        Ok(())
    }

    /// Adds the run record of the collector attempt that produced these snapshots; it is
    /// committed with them.
    pub async fn record_run(&mut self, run: &super::runs::SnapshotRun) -> Result<()> {
        super::runs::record_run_in(&mut self.tx, run).await
    }

    /// Commits everything written and returns the snapshots stored.
    pub async fn commit(mut self) -> Result<Vec<StoredSnapshot>> {
        self.finish_snapshot().await?;
        self.attributes.flush(&mut self.tx).await?;
        self.tx.commit().await?;
        Ok(self.done)
    }

    async fn start_snapshot(&mut self, vcenter: &str, snapshot_time: i64) -> Result<()> {
        if self
            .done_keys
            .contains(&(vcenter.to_string(), snapshot_time))
        {
            return Err(Error::SnapshotSplit {
                vcenter: vcenter.to_string(),
                snapshot_time,
            });
        }
        let recorded_at = chrono::Utc::now().timestamp();
        with_tx!(&mut self.tx, |conn| {
            sqlx::query("DELETE FROM vm_hourly WHERE vcenter = $1 AND snapshot_time = $2")
                .bind(vcenter)
                .bind(snapshot_time)
                .execute(&mut *conn)
                .await
                .op("replace a stored snapshot")?;
            sqlx::query(
                "INSERT INTO snapshot_registry (vcenter, snapshot_time, source, recorded_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (snapshot_time, vcenter) DO UPDATE SET source = excluded.source, recorded_at = excluded.recorded_at",
            )
            .bind(vcenter)
            .bind(snapshot_time)
            .bind(self.source)
            .bind(recorded_at)
            .execute(&mut *conn)
            .await
            .op("register a snapshot")?;
        });
        self.current = Some(StoredSnapshot {
            vcenter: vcenter.to_string(),
            snapshot_time,
            rows: 0,
        });
        self.current_vms.clear();
        Ok(())
    }

    async fn finish_snapshot(&mut self) -> Result<()> {
        self.flush().await?;
        if let Some(snapshot) = self.current.take() {
            totals::rebuild_snapshot_totals(
                &mut self.tx,
                &snapshot.vcenter,
                snapshot.snapshot_time,
                snapshot.snapshot_time + 1,
            )
            .await?;
            self.done_keys
                .insert((snapshot.vcenter.clone(), snapshot.snapshot_time));
            self.done.push(snapshot);
        }
        Ok(())
    }

    /// Rows gathered before they are written: one COPY costs three round trips, so
    /// PostgreSQL takes bigger batches than SQLite's in-thread writes need.
    fn batch_limit(&self) -> usize {
        match self.tx {
            Tx::Sqlite(_) => INSERT_BATCH,
            Tx::Postgres(_) => COPY_BATCH,
        }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mapping = &self.mapping;
        let batch = &self.batch;
        match &mut self.tx {
            Tx::Sqlite(tx) => {
                sqlite_native::insert_hourly(tx, INSERT_HOURLY_ROW, mapping, batch).await?;
            }
            Tx::Postgres(tx) => postgres::insert_hourly(tx, batch, mapping).await?,
        }
        self.batch.clear();
        Ok(())
    }
}

/// Which hourly rows to export.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    pub vcenter: Option<String>,
    /// Inclusive lower bound on snapshot_time.
    pub from: Option<i64>,
    /// Exclusive upper bound on snapshot_time.
    pub to: Option<i64>,
}

impl Store {
    /// Hourly rows matching `filter`, ordered by vcenter, snapshot_time, vm_id.
    pub fn hourly_rows(&self, filter: RowFilter) -> BoxStream<'_, Result<HourlyRow>> {
        const SQL: &str = "SELECT vcenter, vm_id, vm_uuid, inventory_id, name, event_key, cloud_id, creation_time, deletion_time, snapshot_time, resource_pool, datacenter, cluster, folder, provisioned_disk_gb, vcpu_count, ram_gb, is_template, powered_on, srm_placeholder \
            FROM vm_hourly WHERE ($1 IS NULL OR vcenter = $1) AND snapshot_time >= $2 AND snapshot_time < $3 \
            ORDER BY vcenter, snapshot_time, vm_id";
        let from = filter.from.unwrap_or(i64::MIN);
        let to = filter.to.unwrap_or(i64::MAX);
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(filter.vcenter)
                .bind(from)
                .bind(to)
                .fetch(pool)
                .map(|row| {
                    let row = row.op("read hourly rows")?;
                    decode_hourly(&row).op("decode an hourly row")
                })
                .boxed()
        })
    }

    /// `(vcenter, snapshot_time)` of every registered snapshot in `[from, to)`, ordered by
    /// vcenter then time.
    pub async fn snapshot_times(&self, from: i64, to: i64) -> Result<Vec<(String, i64)>> {
        const SQL: &str = "SELECT vcenter, snapshot_time FROM snapshot_registry \
            WHERE snapshot_time >= $1 AND snapshot_time < $2 ORDER BY vcenter, snapshot_time";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await
                .op("list registered snapshots")
        })
    }

    /// The number of registered snapshots of each vCenter in `[from, to)`: the daily
    /// `total_samples`.
    pub async fn snapshot_counts(&self, from: i64, to: i64) -> Result<Vec<(String, i64)>> {
        const SQL: &str = "SELECT vcenter, COUNT(*) FROM snapshot_registry \
            WHERE snapshot_time >= $1 AND snapshot_time < $2 GROUP BY vcenter ORDER BY vcenter";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await
                .op("count registered snapshots")
        })
    }

    /// Streams the numeric part of every sample of `vcenter` in `[from, to)` to `visit`,
    /// with the VM id borrowed from the row: the rust engine's one pass over the day.
    pub async fn scan_samples(
        &self,
        vcenter: &str,
        from: i64,
        to: i64,
        visit: impl FnMut(&str, &Sample),
    ) -> Result<u64> {
        const SQL: &str = "SELECT vm_id, snapshot_time, vcpu_count, ram_gb, provisioned_disk_gb, tier, creation_time, deletion_time, is_template, srm_placeholder, powered_on \
            FROM vm_hourly WHERE vcenter = $1 AND snapshot_time >= $2 AND snapshot_time < $3";
        match self {
            Store::Sqlite(pool) => {
                sqlite_native::scan_samples(pool, SQL, vcenter, from, to, visit).await
            }
            Store::Postgres(pool) => postgres::scan_samples(pool, vcenter, from, to, visit).await,
        }
    }

    /// Streams identity and placement of every VM in one snapshot to `visit`.
    pub async fn scan_placements(
        &self,
        vcenter: &str,
        snapshot_time: i64,
        visit: impl FnMut(&str, PlacementRef<'_>),
    ) -> Result<()> {
        const SQL: &str = "SELECT vm_id, vm_uuid, name, resource_pool, datacenter, cluster, folder \
            FROM vm_hourly WHERE vcenter = $1 AND snapshot_time = $2";
        match self {
            Store::Sqlite(pool) => {
                let key = (vcenter, snapshot_time);
                sqlite_native::scan_placements(pool, "read VM placements", SQL, key, visit).await
            }
            Store::Postgres(pool) => {
                postgres::scan_placements(pool, vcenter, snapshot_time, visit).await
            }
        }
    }

    /// Streams what the interval-based hourly totals need of each VM in one snapshot.
    pub async fn scan_interval_vms(
        &self,
        vcenter: &str,
        snapshot_time: i64,
        visit: impl FnMut(&IntervalVm),
    ) -> Result<()> {
        const SQL: &str = "SELECT creation_time, deletion_time, vcpu_count, ram_gb, provisioned_disk_gb \
            FROM vm_hourly WHERE vcenter = $1 AND snapshot_time = $2";
        match self {
            Store::Sqlite(pool) => {
                sqlite_native::scan_interval_vms(pool, SQL, vcenter, snapshot_time, visit).await
            }
            Store::Postgres(pool) => {
                postgres::scan_interval_vms(pool, vcenter, snapshot_time, visit).await
            }
        }
    }

    /// Streams every column of the hourly rows of `vcenter` in `[from, to)` and counts them,
    /// doing nothing else: the benchmark's baseline for reading a day.
    pub async fn bare_scan(&self, vcenter: &str, from: i64, to: i64) -> Result<u64> {
        const SQL: &str = "SELECT * FROM vm_hourly WHERE vcenter = $1 AND snapshot_time >= $2 AND snapshot_time < $3";
        with_pool!(self, |pool| {
            let mut rows = sqlx::query(SQL)
                .bind(vcenter)
                .bind(from)
                .bind(to)
                .fetch(pool);
            let mut count = 0;
            while rows.try_next().await.op("scan hourly rows")?.is_some() {
                count += 1;
            }
            Ok(count)
        })
    }

    /// The physical reference for reading a day, with nothing decoded by a driver: on SQLite
    /// its own loop producing per VM the counts, sums and tier sums the daily summary needs
    /// (returns the VMs); on PostgreSQL the day's rows as the rust engine reads them, by
    /// binary COPY, counted and discarded (returns the bytes).
    pub async fn reference_scan(&self, from: i64, to: i64) -> Result<u64> {
        match self {
            Store::Sqlite(pool) => sqlite_native::reference_scan(pool, from, to).await,
            Store::Postgres(pool) => {
                let mut bytes = 0;
                for (vcenter, _) in self.snapshot_counts(from, to).await? {
                    bytes += postgres::daily_read_bytes(pool, &vcenter, from, to).await?;
                }
                Ok(bytes)
            }
        }
    }

    /// Deletes hourly rows, their registry entries and snapshot totals older than `cutoff`.
    pub async fn delete_hourly_before(&self, cutoff: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let deleted = with_tx!(&mut tx, |conn| {
            // The IN list lets both databases walk the (vcenter, snapshot_time) key.
            let deleted = sqlx::query(
                "DELETE FROM vm_hourly WHERE vcenter IN (SELECT DISTINCT vcenter FROM snapshot_registry) AND snapshot_time < $1",
            )
            .bind(cutoff)
            .execute(&mut *conn)
            .await
            .op("delete old hourly rows")?
            .rows_affected();
            sqlx::query("DELETE FROM snapshot_registry WHERE snapshot_time < $1")
                .bind(cutoff)
                .execute(&mut *conn)
                .await
                .op("delete old registry entries")?;
            sqlx::query(
                "DELETE FROM vcenter_totals WHERE grain = 'snapshot' AND period_start < $1",
            )
            .bind(cutoff)
            .execute(&mut *conn)
            .await
            .op("delete old snapshot totals")?;
            deleted
        });
        tx.commit().await?;
        Ok(deleted)
    }
}

fn decode_hourly<R: Row>(row: &R) -> std::result::Result<HourlyRow, sqlx::Error>
where
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(HourlyRow {
        vcenter: row.try_get(0)?,
        vm_id: row.try_get(1)?,
        vm_uuid: row.try_get(2)?,
        inventory_id: row.try_get(3)?,
        name: row.try_get(4)?,
        event_key: row.try_get(5)?,
        cloud_id: row.try_get(6)?,
        creation_time: row.try_get(7)?,
        deletion_time: row.try_get(8)?,
        snapshot_time: row.try_get(9)?,
        resource_pool: row.try_get(10)?,
        datacenter: row.try_get(11)?,
        cluster: row.try_get(12)?,
        folder: row.try_get(13)?,
        provisioned_disk_gb: row.try_get(14)?,
        vcpu_count: row.try_get(15)?,
        ram_gb: row.try_get(16)?,
        is_template: row.try_get(17)?,
        powered_on: row.try_get(18)?,
        srm_placeholder: row.try_get(19)?,
    })
}
