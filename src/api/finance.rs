//! The costs a server keeps at hand: the last twelve months by tenant and the month-to-date
//! gauges of `/metrics`, computed by `jobs::costs` off the request path (at start, then every
//! [`REFRESH_EVERY`]) so that neither a scrape nor the finance page waits for a year of
//! pricing. At 100k VMs a month prices in about a second, so a refresh is ~13 s of one core
//! every ten minutes; a page or scrape reads the last result in microseconds.

use crate::aggregate::{Day, Month};
use crate::cost::price::{CostLine, CurrencyTotal};
use crate::cost::{GroupBy, Period, Pricing};
use crate::jobs::costs::{self, Error};
use crate::store::Store;
use crate::store::grain::Grain;
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts, Registry};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// How often the kept costs are computed again: summaries change once a day, so ten minutes
/// keeps the page and the gauges current without pricing the year over and over.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);

/// Months the trend covers, the current one included.
pub const TREND_MONTHS: u32 = 12;

/// The pricing settings, and the costs last computed with them.
pub struct Finance {
    pub pricing: Pricing,
    /// Per-VM gauges for the this many most costly VMs of each currency (0: none).
    pub vm_limit: usize,
    /// `settings.cost_metrics_public`: the cost gauges are on `/metrics` even under
    /// `auth_mode: required`.
    pub public_gauges: bool,
    kept: RwLock<Option<Arc<Snapshot>>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

/// The costs of the months that have daily summaries, as of `computed_at`.
pub struct Snapshot {
    /// Unix seconds.
    pub computed_at: i64,
    /// Newest first; months without summaries are left out.
    pub months: Vec<MonthCosts>,
    pub to_date: Option<ToDate>,
    families: Vec<MetricFamily>,
}

pub struct MonthCosts {
    pub month: Month,
    /// By tenant, or why the month cannot be priced (no card on one of its days).
    pub costs: Result<MonthFigures, String>,
}

pub struct MonthFigures {
    pub tenants: Vec<CostLine>,
    pub totals: Vec<CurrencyTotal>,
}

/// This month up to its newest summarised day, and last month up to the same day of month.
pub struct ToDate {
    pub through: Day,
    pub tenants: Vec<CostLine>,
    pub previous_through: Day,
    pub previous: Vec<CostLine>,
}

impl Finance {
    pub fn new(pricing: Pricing, vm_limit: usize, public_gauges: bool) -> Finance {
        Finance {
            pricing,
            vm_limit,
            public_gauges,
            kept: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The last computed costs; `None` before the first refresh (or without rate cards).
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.kept
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The gauges of the last refresh, for `/metrics`.
    pub fn families(&self) -> Vec<MetricFamily> {
        self.snapshot()
            .map(|s| s.families.clone())
            .unwrap_or_default()
    }

    /// Computes the kept costs as of `today` (UTC). A store failure keeps the last result.
    pub async fn refresh(&self, store: &Store, today: Day) -> Result<(), Error> {
        if self.pricing.cards.is_empty() {
            return Ok(());
        }
        let _one = self.refreshing.lock().await;
        let snapshot = compute(store, &self.pricing, self.vm_limit, today).await?;
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
        Ok(())
    }

    /// Refreshes now and then every [`REFRESH_EVERY`], until the task is aborted.
    pub async fn refresh_every(self: Arc<Finance>, store: Store) {
        if self.pricing.cards.is_empty() {
            return;
        }
        let mut interval = tokio::time::interval(REFRESH_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = chrono::Utc::now().timestamp();
            let Ok(today) = Day::containing(now) else {
                continue;
            };
            let started = std::time::Instant::now();
            match self.refresh(&store, today).await {
                Ok(()) => tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "costs of the last {TREND_MONTHS} months computed"
                ),
                Err(e) => tracing::warn!(error = %e, "costs not computed; the last ones are kept"),
            }
        }
    }
}

async fn compute(
    store: &Store,
    pricing: &Pricing,
    vm_limit: usize,
    today: Day,
) -> Result<Snapshot, Error> {
    let current = today.month();
    let oldest = today
        .months_before(TREND_MONTHS - 1)
        .map_or(current, Day::month);
    let summarised: BTreeSet<Day> = store
        .summary_periods(Grain::Daily)
        .await?
        .into_iter()
        .filter_map(|start| Day::containing(start).ok())
        .filter(|day| day.month() >= oldest && day.month() <= current)
        .collect();
    let months: BTreeSet<Month> = summarised.iter().map(|d| d.month()).collect();
    let mut kept = Vec::new();
    let mut current_ledger = None;
    for &month in months.iter().rev() {
        let costs = match costs::ledger(store, pricing, Period::Month(month)).await {
            Ok(ledger) => {
                let figures = MonthFigures {
                    tenants: ledger.lines(GroupBy::Tenant),
                    totals: ledger.totals(),
                };
                if month == current {
                    current_ledger = Some(ledger);
                }
                Ok(figures)
            }
            Err(Error::Price(e)) => Err(e.to_string()),
            // Deleted between the listing and the read (retention): nothing to show.
            Err(Error::NoSummaries { .. }) => continue,
            Err(e) => return Err(e),
        };
        kept.push(MonthCosts { month, costs });
    }
    let through = summarised.iter().rev().find(|d| d.month() == current);
    let this_month = kept.iter().find(|m| m.month == current);
    let to_date = match (through, this_month) {
        (Some(&through), Some(MonthCosts { costs: Ok(now), .. })) => {
            let previous_through = through.months_before(1).unwrap_or(through);
            let previous_month = previous_through.month();
            let previous = match costs::ledger_through(
                store,
                pricing,
                Period::Month(previous_month),
                previous_through.next(),
            )
            .await
            {
                Ok(ledger) => ledger.lines(GroupBy::Tenant),
                Err(Error::NoSummaries { .. } | Error::Price(_)) => Vec::new(),
                Err(e) => return Err(e),
            };
            Some(ToDate {
                through,
                tenants: now.tenants.clone(),
                previous_through,
                previous,
            })
        }
        _ => None,
    };
    let top_vms = match (&current_ledger, vm_limit) {
        (Some(ledger), 1..) => top_lines(ledger.lines(GroupBy::Vm), vm_limit),
        _ => Vec::new(),
    };
    let families = gauges(to_date.as_ref(), &top_vms).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cost gauges not built");
        Vec::new()
    });
    Ok(Snapshot {
        computed_at: chrono::Utc::now().timestamp(),
        months: kept,
        to_date,
        families,
    })
}

/// The `limit` most costly lines of each currency (`lines` is ordered by currency, then by
/// cost, highest first).
fn top_lines(lines: Vec<CostLine>, limit: usize) -> Vec<CostLine> {
    let mut kept: Vec<CostLine> = Vec::new();
    let mut in_currency = 0;
    for line in lines {
        if kept.last().is_none_or(|l| l.currency != line.currency) {
            in_currency = 0;
        }
        if in_currency < limit {
            in_currency += 1;
            kept.push(line);
        }
    }
    kept
}

fn gauges(
    to_date: Option<&ToDate>,
    top_vms: &[CostLine],
) -> Result<Vec<MetricFamily>, prometheus::Error> {
    let registry = Registry::new();
    let Some(to_date) = to_date else {
        return Ok(Vec::new());
    };
    let per_tenant = |name: &str, help: String, lines: &[CostLine]| {
        let gauge = GaugeVec::new(Opts::new(name, help), &["tenant", "currency"])?;
        for line in lines {
            let tenant = line.tenant.as_deref().unwrap_or_default();
            gauge
                .with_label_values(&[tenant, line.currency.as_str()])
                .set(amount(line.cost));
        }
        registry.register(Box::new(gauge))
    };
    per_tenant(
        "vctp_tenant_cost_month_to_date",
        format!(
            "Cost of the current month per tenant and currency, through its newest summarised day ({})",
            to_date.through
        ),
        &to_date.tenants,
    )?;
    per_tenant(
        "vctp_tenant_cost_previous_month_to_date",
        "Cost of the previous month per tenant and currency, through the same day of month as vctp_tenant_cost_month_to_date".to_string(),
        &to_date.previous,
    )?;
    if !top_vms.is_empty() {
        let gauge = GaugeVec::new(
            Opts::new(
                "vctp_vm_cost_month_to_date",
                "Cost of the current month of the most costly VMs of each currency (settings.cost_metrics_vm_limit)",
            ),
            &["tenant", "vcenter", "vm_id", "currency"],
        )?;
        for line in top_vms {
            gauge
                .with_label_values(&[
                    line.tenant.as_deref().unwrap_or_default(),
                    line.vcenter.as_deref().unwrap_or_default(),
                    line.vm_id.as_deref().unwrap_or_default(),
                    line.currency.as_str(),
                ])
                .set(amount(line.cost));
        }
        registry.register(Box::new(gauge))?;
    }
    Ok(registry.gather())
}

/// A rounded amount as a gauge value: the float nearest to it (a gauge is a float).
fn amount(cost: Decimal) -> f64 {
    cost.to_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(currency: &str, vm: &str, cost: &str) -> CostLine {
        CostLine {
            tenant: None,
            vcenter: None,
            cluster: None,
            resource_pool: None,
            vm_id: Some(vm.into()),
            name: None,
            currency: currency.into(),
            vm_days: Decimal::ZERO,
            vcpu_days: Decimal::ZERO,
            ram_gb_days: Decimal::ZERO,
            disk_gb_days: Decimal::ZERO,
            cost: cost.parse().unwrap(),
        }
    }

    #[test]
    fn the_top_vms_are_counted_per_currency() {
        let lines = vec![
            line("EUR", "a", "9"),
            line("EUR", "b", "5"),
            line("EUR", "c", "1"),
            line("USD", "d", "3"),
        ];
        let kept: Vec<String> = top_lines(lines, 2)
            .into_iter()
            .filter_map(|l| l.vm_id)
            .collect();
        assert_eq!(kept, ["a", "b", "d"]);
    }
}
