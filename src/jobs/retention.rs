//! Retention as a unit of work: delete hourly rows and daily summaries past their age. Run
//! by `vctp db cleanup`, the standalone scheduler's cleanup tick and a snapshot Job after its
//! snapshot; each delete is one statement, so a failure leaves the store as it was.

use crate::aggregate::Day;
use crate::config::Settings;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("retention cannot count back from {now}: {source}")]
    Period {
        now: i64,
        source: crate::aggregate::period::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl Error {
    /// A stable short name for metrics labels and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Period { .. } => "InvalidPeriod",
            Error::Store(e) => e.reason(),
        }
    }
}

/// How old rows may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub hourly_max_age_days: u32,
    pub daily_max_age_months: u32,
}

impl Policy {
    /// `hourly_snapshot_max_age_days` and `daily_snapshot_max_age_months`.
    pub fn from_settings(settings: &Settings) -> Policy {
        Policy {
            hourly_max_age_days: settings.hourly_snapshot_max_age_days,
            daily_max_age_months: settings.daily_snapshot_max_age_months,
        }
    }
}

/// What retention deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub hourly_rows: u64,
    pub daily_rows: u64,
    pub policy: Policy,
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deleted {} hourly rows older than {} days and {} daily summary rows older than {} months",
            self.hourly_rows,
            self.policy.hourly_max_age_days,
            self.daily_rows,
            self.policy.daily_max_age_months
        )
    }
}

/// Deletes hourly rows older than the policy's days and daily summaries older than its
/// months, counted back from `now` (Unix seconds).
pub async fn run(store: &Store, policy: Policy, now: i64) -> Result<Retention, Error> {
    let hourly_cutoff = now - i64::from(policy.hourly_max_age_days) * 86_400;
    let daily_cutoff = Day::containing(now)
        .and_then(|today| today.months_before(policy.daily_max_age_months))
        .map_err(|source| Error::Period { now, source })?
        .start();
    Ok(Retention {
        hourly_rows: store.delete_hourly_before(hourly_cutoff).await?,
        daily_rows: store.delete_daily_before(daily_cutoff).await?,
        policy,
    })
}
