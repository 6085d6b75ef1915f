//! `vctp db import-sqlite`: copies every table of a vctp SQLite database into PostgreSQL,
//! replacing what the target tables held, one transaction per table. Rows go in by binary
//! COPY, encoded straight from the SQLite rows.

use super::pg_copy::{CopyIn, Encoder};
use super::{DatabaseUrl, Error, QueryContext, Result, Store};
use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

#[derive(Clone, Copy)]
enum Column {
    Text,
    Int,
    Real,
    Bool,
}

/// One table to copy. Both schemas come from the same migrations, so `SELECT *` and a
/// `COPY` without a column list line up column for column.
struct Table {
    name: &'static str,
    select: &'static str,
    delete: &'static str,
    copy: &'static str,
    columns: &'static [Column],
    /// Moves the target's id sequence past the copied ids.
    after: Option<&'static str>,
}

use Column::{Bool, Int, Real, Text};

const SUMMARY_COLUMNS: &[Column] = &[
    Int, Text, Text, Text, Text, Text, Text, Text, Text, Int, Int, Real, Real, Real, Real, Real,
    Real, Real, Real, Real, Real, Real, Real, Int, Int, Int, Int, Int, Int,
];

const TABLES: &[Table] = &[
    Table {
        name: "snapshot_registry",
        select: "SELECT * FROM snapshot_registry",
        delete: "DELETE FROM snapshot_registry",
        copy: "COPY snapshot_registry FROM STDIN (FORMAT binary)",
        columns: &[Text, Int, Text, Int],
        after: None,
    },
    Table {
        name: "snapshot_runs",
        select: "SELECT * FROM snapshot_runs",
        delete: "DELETE FROM snapshot_runs",
        copy: "COPY snapshot_runs FROM STDIN (FORMAT binary)",
        columns: &[Int, Text, Int, Int, Int, Bool, Int, Text, Text],
        after: Some(
            "SELECT setval(pg_get_serial_sequence('snapshot_runs', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM snapshot_runs",
        ),
    },
    Table {
        name: "vm_hourly",
        select: "SELECT * FROM vm_hourly",
        delete: "DELETE FROM vm_hourly",
        copy: "COPY vm_hourly FROM STDIN (FORMAT binary)",
        columns: &[
            Text, Text, Text, Text, Text, Text, Text, Int, Int, Int, Text, Text, Text, Text, Real,
            Int, Real, Bool, Bool, Bool, Int,
        ],
        after: None,
    },
    Table {
        name: "vm_daily_summary",
        select: "SELECT * FROM vm_daily_summary",
        delete: "DELETE FROM vm_daily_summary",
        copy: "COPY vm_daily_summary FROM STDIN (FORMAT binary)",
        columns: SUMMARY_COLUMNS,
        after: None,
    },
    Table {
        name: "vm_monthly_summary",
        select: "SELECT * FROM vm_monthly_summary",
        delete: "DELETE FROM vm_monthly_summary",
        copy: "COPY vm_monthly_summary FROM STDIN (FORMAT binary)",
        columns: SUMMARY_COLUMNS,
        after: None,
    },
    Table {
        name: "vcenter_totals",
        select: "SELECT * FROM vcenter_totals",
        delete: "DELETE FROM vcenter_totals",
        copy: "COPY vcenter_totals FROM STDIN (FORMAT binary)",
        columns: &[
            Text, Text, Int, Int, Real, Real, Real, Real, Real, Real, Real, Real,
        ],
        after: None,
    },
    Table {
        name: "aggregation_runs",
        select: "SELECT * FROM aggregation_runs",
        delete: "DELETE FROM aggregation_runs",
        copy: "COPY aggregation_runs FROM STDIN (FORMAT binary)",
        columns: &[Int, Text, Int, Int, Int, Real, Bool, Int, Text, Text],
        after: Some(
            "SELECT setval(pg_get_serial_sequence('aggregation_runs', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM aggregation_runs",
        ),
    },
    Table {
        name: "cron_status",
        select: "SELECT * FROM cron_status",
        delete: "DELETE FROM cron_status",
        copy: "COPY cron_status FROM STDIN (FORMAT binary)",
        columns: &[Text, Int, Int, Int, Bool, Text],
        after: None,
    },
    Table {
        name: "report_registry",
        select: "SELECT * FROM report_registry",
        delete: "DELETE FROM report_registry",
        copy: "COPY report_registry FROM STDIN (FORMAT binary)",
        columns: &[Text, Text, Text, Int, Text, Text, Int, Text, Int],
        after: None,
    },
    Table {
        name: "vcenter_hosts",
        select: "SELECT * FROM vcenter_hosts",
        delete: "DELETE FROM vcenter_hosts",
        copy: "COPY vcenter_hosts FROM STDIN (FORMAT binary)",
        columns: &[Text, Text, Int],
        after: None,
    },
    Table {
        name: "vm_names",
        select: "SELECT * FROM vm_names",
        delete: "DELETE FROM vm_names",
        copy: "COPY vm_names FROM STDIN (FORMAT binary)",
        columns: &[Text, Text, Text, Int],
        after: None,
    },
    Table {
        name: "vm_attributes",
        select: "SELECT * FROM vm_attributes",
        delete: "DELETE FROM vm_attributes",
        copy: "COPY vm_attributes FROM STDIN (FORMAT binary)",
        columns: &[Text, Text, Int, Text],
        after: None,
    },
];

impl Store {
    /// Copies the SQLite database at `source` into this PostgreSQL store, calling
    /// `progress(table, rows)` after each table commits.
    pub async fn import_sqlite(
        &self,
        source: &std::path::Path,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<()> {
        let source_url = DatabaseUrl::Sqlite(source.to_path_buf());
        let Store::Postgres(target) = self else {
            return Err(Error::ImportTargetNotPostgres(source_url.to_string()));
        };
        let options = SqliteConnectOptions::new().filename(source).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect {
                url: source_url.to_string(),
                source,
            })?;
        let source_store = Store::Sqlite(pool.clone());
        source_store.check_schema(&source_url).await?;
        for table in TABLES {
            let mut tx = target.begin().await.op("begin a transaction")?;
            sqlx::query(table.delete)
                .execute(&mut *tx)
                .await
                .op("clear a target table")?;
            let mut copy = CopyIn::begin(&mut tx, table.copy)
                .await
                .op("copy into the target table")?;
            if let Err(error) = copy_rows(&pool, table, &mut copy).await {
                // The abort's own outcome adds nothing; the transaction rolls back anyway.
                let _ = copy.abort().await;
                return Err(error);
            }
            let copied = copy.finish().await.op("copy into the target table")?;
            if let Some(after) = table.after {
                sqlx::query(after)
                    .execute(&mut *tx)
                    .await
                    .op("advance the id sequence")?;
            }
            tx.commit().await.op("commit a table copy")?;
            progress(table.name, copied);
        }
        pool.close().await;
        Ok(())
    }
}

/// Reads every row of `table` from the source and encodes it into `copy`.
async fn copy_rows(pool: &sqlx::SqlitePool, table: &Table, copy: &mut CopyIn<'_>) -> Result<()> {
    let mut rows = sqlx::query(table.select).fetch(pool);
    while let Some(row) = rows.try_next().await.op("read the source table")? {
        encode(&row, table.columns, copy.encoder()).op("decode a source row")?;
        copy.tuple_done().await.op("copy into the target table")?;
    }
    Ok(())
}

fn encode(
    row: &sqlx::sqlite::SqliteRow,
    columns: &[Column],
    encoder: &mut Encoder,
) -> Result<(), sqlx::Error> {
    // At most 29 columns: the summaries.
    encoder.tuple(columns.len() as i16);
    for (i, column) in columns.iter().enumerate() {
        match column {
            Text => encoder.text(row.try_get::<&str, _>(i)?),
            Int => encoder.int8(row.try_get(i)?),
            Real => encoder.float8(row.try_get(i)?),
            Bool => encoder.bool(row.try_get(i)?),
        };
    }
    Ok(())
}
