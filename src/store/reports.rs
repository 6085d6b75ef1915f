//! The report registry: which report objects exist in object storage, with their size and
//! SHA-256, so listing and downloading never have to walk the bucket.

use super::{QueryContext, Result, Store, with_pool};
use serde::Serialize;

/// One report object.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReportEntry {
    pub object_key: String,
    pub kind: String,
    pub period: String,
    pub period_start: i64,
    pub scope: String,
    pub format: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: i64,
}

impl Store {
    /// Adds or replaces (same key: a regenerated report) a registry row.
    pub async fn record_report(&self, entry: &ReportEntry) -> Result<()> {
        const SQL: &str = "INSERT INTO report_registry (object_key, kind, period, period_start, scope, format, size, sha256, created_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (object_key) DO UPDATE SET kind = excluded.kind, \
            period = excluded.period, period_start = excluded.period_start, scope = excluded.scope, format = excluded.format, \
            size = excluded.size, sha256 = excluded.sha256, created_at = excluded.created_at";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&entry.object_key)
                .bind(&entry.kind)
                .bind(&entry.period)
                .bind(entry.period_start)
                .bind(&entry.scope)
                .bind(&entry.format)
                .bind(entry.size)
                .bind(&entry.sha256)
                .bind(entry.created_at)
                .execute(pool)
                .await
                .op("record a report")?;
        });
        Ok(())
    }

    /// Reports, newest period first, optionally of one kind.
    pub async fn reports(&self, kind: Option<&str>) -> Result<Vec<ReportEntry>> {
        const SQL: &str = "SELECT object_key, kind, period, period_start, scope, format, size, sha256, created_at \
            FROM report_registry WHERE ($1 IS NULL OR kind = $1) ORDER BY period_start DESC, kind, object_key";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(kind)
                .fetch_all(pool)
                .await
                .op("list reports")
        })
    }

    pub async fn report(&self, object_key: &str) -> Result<Option<ReportEntry>> {
        const SQL: &str = "SELECT object_key, kind, period, period_start, scope, format, size, sha256, created_at \
            FROM report_registry WHERE object_key = $1";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(object_key)
                .fetch_optional(pool)
                .await
                .op("read a report entry")
        })
    }
}
