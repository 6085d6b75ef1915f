//! Everything stored under one vCenter key, as a whole: whether a key holds anything, and
//! `vctp db rename-vcenter` (also the snapshot Job's takeover of rows an older operator
//! stored under a target's bare name), which moves a key's rows in one transaction.

use super::{Error, QueryContext, Result, Store, with_tx};

/// A table keyed (in part) by the vCenter, with the statements run on it. Reports keep
/// their object keys: a report already written stays where it is.
struct Keyed {
    table: &'static str,
    exists: &'static str,
    count: &'static str,
    rename: &'static str,
}

macro_rules! keyed {
    ($($table:literal),+ $(,)?) => {
        &[$(Keyed {
            table: $table,
            exists: concat!("SELECT 1 FROM ", $table, " WHERE vcenter = $1 LIMIT 1"),
            count: concat!("SELECT COUNT(*) FROM ", $table, " WHERE vcenter = $1"),
            rename: concat!("UPDATE ", $table, " SET vcenter = $2 WHERE vcenter = $1"),
        }),+]
    };
}

const KEYED: &[Keyed] = keyed!(
    "vm_hourly",
    "snapshot_registry",
    "snapshot_runs",
    "vm_daily_summary",
    "vm_monthly_summary",
    "vcenter_totals",
    "vcenter_hosts",
    "vm_names",
    "vm_attributes",
);

/// Why a rename was refused (nothing was changed) or failed (rolled back).
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    #[error("cannot rename vCenter {from} to {to}: {problem}")]
    InvalidName {
        from: String,
        to: String,
        problem: &'static str,
    },
    #[error(
        "cannot rename vCenter {from} to {to}: rows are already stored under {to} ({tables}); rename those first or pick another name"
    )]
    TargetExists {
        from: String,
        to: String,
        /// The tables holding rows under `to`.
        tables: String,
    },
    #[error("cannot rename vCenter {from} to {to}: nothing is stored under {from}")]
    NothingStored { from: String, to: String },
    #[error(transparent)]
    Store(#[from] Error),
}

impl RenameError {
    /// Whether the names asked for are the problem, rather than the database.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, RenameError::Store(_))
    }
}

/// What a rename moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renamed {
    /// Rows in all tables.
    pub rows: u64,
}

impl Store {
    /// Whether any table holds a row under `vcenter`: one short probe per table.
    pub async fn has_vcenter(&self, vcenter: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        Ok(!tables_holding(&mut tx, vcenter).await?.is_empty())
    }

    /// Rows stored under `vcenter`, in all tables.
    pub async fn rows_under(&self, vcenter: &str) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut rows = 0;
        for keyed in KEYED {
            let count: i64 = with_tx!(&mut tx, |conn| {
                sqlx::query_scalar(keyed.count)
                    .bind(vcenter)
                    .fetch_one(&mut *conn)
                    .await
                    .op("count a vCenter's rows")?
            });
            rows += u64::try_from(count).unwrap_or_default();
        }
        Ok(rows)
    }

    /// Moves every row stored under `from` to `to`, in one transaction: refused when `to`
    /// already holds rows (two histories would mix, and keys would collide) or `from` holds
    /// none; on any failure nothing is changed.
    pub async fn rename_vcenter(&self, from: &str, to: &str) -> Result<Renamed, RenameError> {
        let invalid = |problem| RenameError::InvalidName {
            from: from.to_string(),
            to: to.to_string(),
            problem,
        };
        if from.trim().is_empty() || to.trim().is_empty() {
            return Err(invalid("a vCenter name cannot be empty"));
        }
        if from == to {
            return Err(invalid("the names are the same"));
        }
        if to.trim() != to || to.chars().any(char::is_control) {
            return Err(invalid(
                "the new name has leading or trailing spaces or control characters",
            ));
        }
        let mut tx = self.begin().await?;
        let taken = tables_holding(&mut tx, to).await?;
        if !taken.is_empty() {
            return Err(RenameError::TargetExists {
                from: from.to_string(),
                to: to.to_string(),
                tables: taken.join(", "),
            });
        }
        let mut rows = 0;
        for keyed in KEYED {
            let moved = with_tx!(&mut tx, |conn| {
                sqlx::query(keyed.rename)
                    .bind(from)
                    .bind(to)
                    .execute(&mut *conn)
                    .await
                    .op("rename a vCenter")?
                    .rows_affected()
            });
            rows += moved;
        }
        if rows == 0 {
            return Err(RenameError::NothingStored {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        tx.commit().await?;
        Ok(Renamed { rows })
    }
}

/// The tables holding a row under `vcenter`.
async fn tables_holding(tx: &mut super::Tx, vcenter: &str) -> Result<Vec<&'static str>> {
    let mut tables = Vec::new();
    for keyed in KEYED {
        let found: Option<i32> = with_tx!(&mut *tx, |conn| {
            sqlx::query_scalar(keyed.exists)
                .bind(vcenter)
                .fetch_optional(&mut *conn)
                .await
                .op("look up a vCenter's rows")?
        });
        if found.is_some() {
            tables.push(keyed.table);
        }
    }
    Ok(tables)
}
