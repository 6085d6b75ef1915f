//! Costs of a day or a month: the stored daily summaries priced at each day's rate card and
//! assigned to tenants by the rules. Computed on every ask, never stored, so a corrected card
//! or rule reprices history at once. The CLI, the API, the reports, the UI and `/metrics` all
//! come through here.

use crate::aggregate::Day;
use crate::cost::price::{self, CostReport};
use crate::cost::{DayUse, GroupBy, Ledger, Period, Pricer, Pricing, Usage};
use crate::store::Store;
use crate::store::attributes::AttributeHistory;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Price(#[from] price::Error),
    #[error(
        "no daily summaries are stored for {period}; run `vctp aggregate daily --date D` for its days first"
    )]
    NoSummaries { period: Period },
    #[error("a stored daily summary has a period_start that is not a day: {0}")]
    Period(#[from] crate::aggregate::period::Error),
}

impl Error {
    /// Whether the settings are what is wrong (no card at all, or none for a day). A period
    /// with no summaries is a failure of the work (exit 1), as `vctp summary` and reports say.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Price(_))
    }
}

/// Every charge of `period`.
pub async fn ledger(store: &Store, pricing: &Pricing, period: Period) -> Result<Ledger, Error> {
    ledger_through(store, pricing, period, period.end_day()).await
}

/// The charges of `period`'s days before `end` (a month to a given day, priced and rounded as
/// the month is: disk per GB-month by the days of the whole month).
pub async fn ledger_through(
    store: &Store,
    pricing: &Pricing,
    period: Period,
    end: Day,
) -> Result<Ledger, Error> {
    let mut pricer = Pricer::new(pricing, period)?;
    let (from, to) = (
        period.first_day().start(),
        period.end_day().min(end).start(),
    );
    // Custom attributes are read only when a rule looks at them.
    let history = if pricing.rules.reads_attributes() {
        store.vm_attributes(from, to).await?
    } else {
        AttributeHistory::default()
    };
    // Rows come day by day; the day is worked out once per day, not per row.
    let mut day: Option<(i64, Day)> = None;
    let mut bad_day = None;
    let rows = store
        .scan_daily_rows(
            from,
            to,
            |period_start, vcenter, vm_id, placement, figures| {
                let current = match day {
                    Some((start, d)) if start == period_start => d,
                    _ => match Day::containing(period_start) {
                        Ok(d) => {
                            day = Some((period_start, d));
                            d
                        }
                        Err(e) => {
                            bad_day.get_or_insert(e);
                            return;
                        }
                    },
                };
                pricer.add(&DayUse {
                    day: current,
                    vcenter,
                    vm_id,
                    placement,
                    usage: Usage::of(figures),
                    attributes: history.as_of(vcenter, vm_id, current.end()),
                });
            },
        )
        .await?;
    if let Some(e) = bad_day {
        return Err(e.into());
    }
    if rows == 0 {
        return Err(Error::NoSummaries { period });
    }
    Ok(pricer.finish()?)
}

/// The costs of `period` summed by `by`, with a total per currency.
pub async fn report(
    store: &Store,
    pricing: &Pricing,
    period: Period,
    by: GroupBy,
) -> Result<CostReport, Error> {
    let ledger = ledger(store, pricing, period).await?;
    Ok(ledger.report(period, by))
}
