//! `vctp db import-sqlite`: copies every table of a vctp SQLite database into PostgreSQL,
//! replacing what the target tables held, one transaction per table.

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
/// positional `INSERT` line up column for column.
struct Table {
    name: &'static str,
    select: &'static str,
    delete: &'static str,
    insert: &'static str,
    columns: &'static [Column],
    /// Moves the target's id sequence past the copied ids.
    after: Option<&'static str>,
}

use Column::{Bool, Int, Real, Text};

const SUMMARY_COLUMNS: &[Column] = &[
    Int, Text, Text, Text, Text, Text, Text, Text, Text, Int, Int, Real, Real, Real, Real, Real,
    Real, Real, Real, Real, Real, Real, Real, Int, Int, Int,
];

const TABLES: &[Table] = &[
    Table {
        name: "snapshot_registry",
        select: "SELECT * FROM snapshot_registry",
        delete: "DELETE FROM snapshot_registry",
        insert: "INSERT INTO snapshot_registry ",
        columns: &[Text, Int, Text, Int],
        after: None,
    },
    Table {
        name: "snapshot_runs",
        select: "SELECT * FROM snapshot_runs",
        delete: "DELETE FROM snapshot_runs",
        insert: "INSERT INTO snapshot_runs ",
        columns: &[Int, Text, Int, Int, Int, Bool, Int, Text, Text],
        after: Some(
            "SELECT setval(pg_get_serial_sequence('snapshot_runs', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM snapshot_runs",
        ),
    },
    Table {
        name: "vm_hourly",
        select: "SELECT * FROM vm_hourly",
        delete: "DELETE FROM vm_hourly",
        insert: "INSERT INTO vm_hourly ",
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
        insert: "INSERT INTO vm_daily_summary ",
        columns: SUMMARY_COLUMNS,
        after: None,
    },
    Table {
        name: "vm_monthly_summary",
        select: "SELECT * FROM vm_monthly_summary",
        delete: "DELETE FROM vm_monthly_summary",
        insert: "INSERT INTO vm_monthly_summary ",
        columns: SUMMARY_COLUMNS,
        after: None,
    },
    Table {
        name: "vcenter_totals",
        select: "SELECT * FROM vcenter_totals",
        delete: "DELETE FROM vcenter_totals",
        insert: "INSERT INTO vcenter_totals ",
        columns: &[
            Text, Text, Int, Int, Real, Real, Real, Real, Real, Real, Real, Real,
        ],
        after: None,
    },
    Table {
        name: "aggregation_runs",
        select: "SELECT * FROM aggregation_runs",
        delete: "DELETE FROM aggregation_runs",
        insert: "INSERT INTO aggregation_runs ",
        columns: &[Int, Text, Int, Int, Int, Real, Bool, Int, Text, Text],
        after: Some(
            "SELECT setval(pg_get_serial_sequence('aggregation_runs', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM aggregation_runs",
        ),
    },
    Table {
        name: "cron_status",
        select: "SELECT * FROM cron_status",
        delete: "DELETE FROM cron_status",
        insert: "INSERT INTO cron_status ",
        columns: &[Text, Int, Int, Int, Bool, Text],
        after: None,
    },
    Table {
        name: "report_registry",
        select: "SELECT * FROM report_registry",
        delete: "DELETE FROM report_registry",
        insert: "INSERT INTO report_registry ",
        columns: &[Text, Text, Text, Int, Text, Text, Int, Text, Int],
        after: None,
    },
    Table {
        name: "vcenter_hosts",
        select: "SELECT * FROM vcenter_hosts",
        delete: "DELETE FROM vcenter_hosts",
        insert: "INSERT INTO vcenter_hosts ",
        columns: &[Text, Text, Int],
        after: None,
    },
    Table {
        name: "vm_names",
        select: "SELECT * FROM vm_names",
        delete: "DELETE FROM vm_names",
        insert: "INSERT INTO vm_names ",
        columns: &[Text, Text, Text, Int],
        after: None,
    },
];

/// Rows per INSERT: at most 26 columns × 1000 stays under PostgreSQL's parameter limit.
const BATCH: usize = 1_000;

enum Value {
    Text(String),
    Int(i64),
    Real(f64),
    Bool(bool),
}

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
            let mut rows = sqlx::query(table.select).fetch(&pool);
            let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
            let mut copied = 0u64;
            loop {
                let row = rows.try_next().await.op("read the source table")?;
                if let Some(row) = &row {
                    batch.push(decode(row, table.columns).op("decode a source row")?);
                }
                if !batch.is_empty() && (row.is_none() || batch.len() == BATCH) {
                    let mut insert = sqlx::QueryBuilder::new(table.insert);
                    insert.push_values(batch.drain(..), |mut values, row| {
                        for value in row {
                            match value {
                                Value::Text(v) => values.push_bind(v),
                                Value::Int(v) => values.push_bind(v),
                                Value::Real(v) => values.push_bind(v),
                                Value::Bool(v) => values.push_bind(v),
                            };
                        }
                    });
                    copied += insert
                        .build()
                        .execute(&mut *tx)
                        .await
                        .op("insert into the target table")?
                        .rows_affected();
                }
                if row.is_none() {
                    break;
                }
            }
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

fn decode(row: &sqlx::sqlite::SqliteRow, columns: &[Column]) -> Result<Vec<Value>, sqlx::Error> {
    columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column {
                Text => Value::Text(row.try_get(i)?),
                Int => Value::Int(row.try_get(i)?),
                Real => Value::Real(row.try_get(i)?),
                Bool => Value::Bool(row.try_get(i)?),
            })
        })
        .collect()
}
