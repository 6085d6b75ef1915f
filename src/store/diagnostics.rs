//! Read-only checks of the derived tables against their sources: which days' daily summaries
//! are missing or stale (for `repair/all`), and what a day's summary holds (for diagnostics).

use super::{QueryContext, Result, Store, totals, with_pool};
use serde::Serialize;
use std::collections::BTreeMap;

const DAY: i64 = 86_400;

/// One vCenter's daily summary of one day, counted.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SummaryCount {
    pub vcenter: String,
    pub rows: i64,
    /// The snapshots the summary was computed from (its total_samples).
    pub total_samples: i64,
}

/// Why a day's daily summary needs to be computed again (ordered: the first is reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Staleness {
    /// A vCenter has snapshots that day but no summary rows.
    Missing,
    /// A vCenter's summary counts another number of snapshots than are registered that day
    /// (a snapshot was added or removed after the aggregation).
    SampleCountChanged,
    /// A snapshot of that day was stored after the start of the day's last successful
    /// aggregation recorded in aggregation_runs.
    NewerSnapshot,
}

/// A day whose daily summary is missing or stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StaleDay {
    pub day_start: i64,
    pub reason: Staleness,
}

/// The snapshots of one vCenter on one day, as the registry holds them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DaySnapshots {
    pub day_start: i64,
    pub vcenter: String,
    pub snapshots: i64,
    pub last_recorded: i64,
}

/// Days whose daily summary is missing or stale, oldest first, with the first reason found
/// (checked per vCenter in the order of [`Staleness`]). `summaries` maps (day, vCenter) to
/// the summary's total_samples; `last_aggregated` maps a day to the start of its last
/// successful recorded aggregation. Pure, so the rules are tested without a database.
pub fn stale_days(
    registered: &[DaySnapshots],
    summaries: &BTreeMap<(i64, String), i64>,
    last_aggregated: &BTreeMap<i64, i64>,
) -> Vec<StaleDay> {
    let mut stale: BTreeMap<i64, Staleness> = BTreeMap::new();
    for day in registered {
        let reason = match summaries.get(&(day.day_start, day.vcenter.clone())) {
            None => Some(Staleness::Missing),
            Some(samples) if *samples != day.snapshots => Some(Staleness::SampleCountChanged),
            Some(_) => last_aggregated
                .get(&day.day_start)
                .filter(|started| day.last_recorded > **started)
                .map(|_| Staleness::NewerSnapshot),
        };
        if let Some(reason) = reason {
            let entry = stale.entry(day.day_start).or_insert(reason);
            *entry = (*entry).min(reason);
        }
    }
    stale
        .into_iter()
        .map(|(day_start, reason)| StaleDay { day_start, reason })
        .collect()
}

impl Store {
    /// Each vCenter's daily summary of the day starting at `day_start`.
    pub async fn daily_summary_counts(&self, day_start: i64) -> Result<Vec<SummaryCount>> {
        const SQL: &str = "SELECT vcenter, COUNT(*) AS rows, MAX(total_samples) AS total_samples \
            FROM vm_daily_summary WHERE period_start = $1 GROUP BY vcenter ORDER BY vcenter";
        with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(day_start)
                .fetch_all(pool)
                .await
                .op("count a day's summaries")
        })
    }

    /// Days whose daily summary is missing or stale (see [`stale_days`]).
    pub async fn days_needing_repair(&self) -> Result<Vec<StaleDay>> {
        // Integer division: both databases truncate, and snapshot times are positive.
        const REGISTERED: &str = "SELECT snapshot_time / 86400 * 86400 AS day_start, vcenter, \
            COUNT(*) AS snapshots, MAX(recorded_at) AS last_recorded FROM snapshot_registry \
            GROUP BY snapshot_time / 86400 * 86400, vcenter ORDER BY day_start, vcenter";
        const SUMMARIES: &str = "SELECT period_start, vcenter, MAX(total_samples) \
            FROM vm_daily_summary GROUP BY period_start, vcenter";
        const AGGREGATED: &str = "SELECT period_start, MAX(started_at) FROM aggregation_runs \
            WHERE grain = 'daily' AND success GROUP BY period_start";
        let registered: Vec<DaySnapshots> = with_pool!(self, |pool| {
            sqlx::query_as(REGISTERED)
                .fetch_all(pool)
                .await
                .op("count registered snapshots per day")?
        });
        let summaries: Vec<(i64, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(SUMMARIES)
                .fetch_all(pool)
                .await
                .op("count daily summaries per day")?
        });
        let aggregated: Vec<(i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(AGGREGATED)
                .fetch_all(pool)
                .await
                .op("read the last daily aggregations")?
        });
        let summaries = summaries
            .into_iter()
            .map(|(day, vcenter, samples)| ((day, vcenter), samples))
            .collect();
        Ok(stale_days(
            &registered,
            &summaries,
            &aggregated.into_iter().collect(),
        ))
    }

    /// Recomputes the snapshot totals of every vCenter's snapshots in the day starting at
    /// `day_start` from the hourly rows, in one transaction.
    pub async fn rebuild_day_snapshot_totals(&self, day_start: i64) -> Result<usize> {
        let vcenters: Vec<String> = self
            .snapshot_counts(day_start, day_start + DAY)
            .await?
            .into_iter()
            .map(|(vcenter, _)| vcenter)
            .collect();
        let mut tx = self.begin().await?;
        for vcenter in &vcenters {
            totals::rebuild_snapshot_totals(&mut tx, vcenter, day_start, day_start + DAY).await?;
        }
        tx.commit().await?;
        Ok(vcenters.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(day_start: i64, vcenter: &str, snapshots: i64, last: i64) -> DaySnapshots {
        DaySnapshots {
            day_start,
            vcenter: vcenter.into(),
            snapshots,
            last_recorded: last,
        }
    }

    #[test]
    fn a_day_is_stale_when_a_summary_is_missing_counts_other_snapshots_or_predates_a_snapshot() {
        let days = [
            registered(0, "a", 24, 10),
            registered(DAY, "a", 24, 10),
            registered(DAY, "b", 24, 10),
            registered(2 * DAY, "a", 24, 10),
            registered(3 * DAY, "a", 24, 500),
            registered(4 * DAY, "a", 24, 500),
        ];
        let summaries: BTreeMap<(i64, String), i64> = [
            ((0, "a".to_string()), 24),
            ((DAY, "a".to_string()), 24),
            ((2 * DAY, "a".to_string()), 23),
            ((3 * DAY, "a".to_string()), 24),
            ((4 * DAY, "a".to_string()), 24),
        ]
        .into();
        // Day 3 was aggregated before its last snapshot arrived, day 4 after; day 0 has no
        // recorded run, so only the counts judge it.
        let aggregated: BTreeMap<i64, i64> = [(3 * DAY, 100), (4 * DAY, 500)].into();
        assert_eq!(
            stale_days(&days, &summaries, &aggregated),
            vec![
                StaleDay {
                    day_start: DAY,
                    reason: Staleness::Missing
                },
                StaleDay {
                    day_start: 2 * DAY,
                    reason: Staleness::SampleCountChanged
                },
                StaleDay {
                    day_start: 3 * DAY,
                    reason: Staleness::NewerSnapshot
                },
            ]
        );
    }
}
