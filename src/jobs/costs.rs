//! Costs of a day or a month: the stored daily summaries priced at each day's rate card and
//! assigned to tenants by the rules. Computed on every ask, never stored, so a corrected card
//! or rule reprices history at once. The CLI, the API, the reports, the UI and `/metrics` all
//! come through here.

use crate::aggregate::{Day, PlacementRef};
use crate::cost::price::{self, CostReport};
use crate::cost::{DayUse, GroupBy, Ledger, Period, Pricer, Pricing, Usage};
use crate::store::Store;
use crate::store::grain::Grain;
use std::collections::BTreeMap;

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
}

impl Error {
    /// Whether the settings or the request are what is wrong (no card for a day, no data).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Store(_))
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
    let no_attributes = BTreeMap::new();
    let mut rows = 0usize;
    let mut day = period.first_day();
    while day < period.end_day().min(end) {
        for vm in store.summaries(Grain::Daily, day.start()).await? {
            rows += 1;
            let p = &vm.placement;
            pricer.add(&DayUse {
                day,
                vcenter: &vm.vcenter,
                vm_id: &vm.vm_id,
                placement: PlacementRef {
                    vm_uuid: &p.vm_uuid,
                    name: &p.name,
                    resource_pool: &p.resource_pool,
                    datacenter: &p.datacenter,
                    cluster: &p.cluster,
                    folder: &p.folder,
                },
                usage: Usage::of(&vm.figures),
                attributes: &no_attributes,
            });
        }
        day = day.next();
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
