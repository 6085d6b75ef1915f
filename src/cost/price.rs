//! From stored daily summaries to charges: each VM-day priced at that day's card, summed into
//! charges (one VM × tenant × card scope × component over the period), each rounded once.

use super::card::{Charging, DiskPrice, PoweredOff, Priced, RateCard, RateCards, days_in};
use super::money::{self, Currency};
use super::tenant::{Subject, TenantRules};
use crate::aggregate::{Day, Figures, Month, Placement, PlacementRef};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

/// The period costs are asked for: one UTC day or one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day(Day),
    Month(Month),
}

impl Period {
    pub fn first_day(self) -> Day {
        match self {
            Period::Day(day) => day,
            Period::Month(month) => month.first_day(),
        }
    }

    /// The day after the period.
    pub fn end_day(self) -> Day {
        match self {
            Period::Day(day) => day.next(),
            Period::Month(month) => month.end_day(),
        }
    }

    pub fn month(self) -> Month {
        self.first_day().month()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day(day) => day.fmt(f),
            Period::Month(month) => month.fmt(f),
        }
    }
}

/// What is charged, in the order quantities are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Tin,
    Bronze,
    Silver,
    Gold,
    NoTier,
    Vcpu,
    Ram,
    Disk,
}

impl Component {
    pub const ALL: [Component; 8] = [
        Component::Tin,
        Component::Bronze,
        Component::Silver,
        Component::Gold,
        Component::NoTier,
        Component::Vcpu,
        Component::Ram,
        Component::Disk,
    ];

    /// A short stable name, used as the SKU in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Tin => "tin",
            Component::Bronze => "bronze",
            Component::Silver => "silver",
            Component::Gold => "gold",
            Component::NoTier => "none",
            Component::Vcpu => "vcpu",
            Component::Ram => "ram",
            Component::Disk => "disk",
        }
    }

    /// The unit of the quantity consumed.
    pub fn unit(self) -> &'static str {
        match self {
            Component::Vcpu => "vCPU-day",
            Component::Ram | Component::Disk => "GB-day",
            _ => "VM-day",
        }
    }

    pub fn is_vm_days(self) -> bool {
        (self as usize) < 5
    }
}

/// The figures of one stored daily summary that pricing reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub samples_present: i64,
    pub total_samples: i64,
    pub samples_powered_on: i64,
    pub samples_template: i64,
    pub samples_placeholder: i64,
    pub avg_vcpu_count: f64,
    pub avg_ram_gb: f64,
    pub avg_provisioned_disk: f64,
    /// VM-days in tin, bronze, silver, gold.
    pub tier_days: [f64; 4],
}

impl Usage {
    pub fn of(figures: &Figures) -> Usage {
        Usage {
            samples_present: figures.samples_present,
            total_samples: figures.total_samples,
            samples_powered_on: figures.samples_powered_on,
            samples_template: figures.samples_template,
            samples_placeholder: figures.samples_placeholder,
            avg_vcpu_count: figures.avg_vcpu_count,
            avg_ram_gb: figures.avg_ram_gb,
            avg_provisioned_disk: figures.avg_provisioned_disk,
            tier_days: figures.tier_days(),
        }
    }

    /// The quantities this VM-day is charged for under `card`, in [`Component::ALL`] order;
    /// `None` when it was not present at all.
    ///
    /// Counts come back as exact integers (a tier column is hits / total_samples), so a VM
    /// present 8 of 24 snapshots is 1/3 VM-day to 28 digits, not the float's 16. Templates and
    /// SRM placeholders that are priced are billed as powered off.
    pub fn quantities(&self, card: &RateCard) -> Option<[Decimal; 8]> {
        let (present, total) = (self.samples_present, self.total_samples);
        if present <= 0 || total <= 0 {
            return None;
        }
        let on = self.samples_powered_on.clamp(0, present);
        let template = self.samples_template.clamp(0, present - on);
        let placeholder = self.samples_placeholder.clamp(0, present - on - template);
        let off = present - on - template - placeholder;
        let priced = |n: i64, charging: Charging| match charging {
            Charging::Free => 0,
            Charging::Priced => n,
        };
        let billed_off =
            off + priced(template, card.templates) + priced(placeholder, card.srm_placeholders);
        let disk_samples = on + billed_off;
        let compute_samples = match card.powered_off {
            PoweredOff::DiskOnly => on,
            PoweredOff::Full => disk_samples,
        };
        let recover = |figure: f64| (figure * total as f64).round().max(0.0) as i64;
        let hits = self.tier_days.map(recover);
        let no_tier = (present - hits.iter().sum::<i64>()).max(0);
        let vcpu = recover(self.avg_vcpu_count);
        // count / total × samples / present, with one division.
        let counted = |count: i64, samples: i64| {
            if count == 0 || samples == 0 {
                Decimal::ZERO
            } else if samples == present {
                Decimal::from(count) / Decimal::from(total)
            } else {
                Decimal::from(i128::from(count) * i128::from(samples))
                    / Decimal::from(i128::from(total) * i128::from(present))
            }
        };
        let measured = |figure: f64, samples: i64| {
            if samples == 0 || figure == 0.0 {
                Decimal::ZERO
            } else if samples == present {
                money::figure(figure)
            } else {
                money::figure(figure) * Decimal::from(samples) / Decimal::from(present)
            }
        };
        Some([
            counted(hits[0], compute_samples),
            counted(hits[1], compute_samples),
            counted(hits[2], compute_samples),
            counted(hits[3], compute_samples),
            counted(no_tier, compute_samples),
            counted(vcpu, compute_samples),
            measured(self.avg_ram_gb, compute_samples),
            measured(self.avg_provisioned_disk, disk_samples),
        ])
    }
}

/// One stored daily summary as pricing sees it.
#[derive(Debug, Clone, Copy)]
pub struct DayUse<'a> {
    pub day: Day,
    pub vcenter: &'a str,
    pub vm_id: &'a str,
    pub placement: PlacementRef<'a>,
    pub usage: Usage,
    /// The VM's custom attributes on that day.
    pub attributes: &'a BTreeMap<String, String>,
}

/// The settings that turn usage into money.
#[derive(Debug, Clone, Default)]
pub struct Pricing {
    pub cards: RateCards,
    pub rules: TenantRules,
}

/// Why a period cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no rate card is configured (settings.rate_cards), so there is nothing to price with")]
    NoCards,
    #[error(
        "no rate card is in effect on {day} (the earliest, `{first}`, starts on {first_day}); add a card whose effective_from is on or before it"
    )]
    NoCardOn {
        day: Day,
        first: String,
        first_day: Day,
    },
}

/// One charge's VM, tenant and card, shared by the charges of its components.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub vcenter: Arc<str>,
    pub vm_id: Arc<str>,
    /// Identity and placement on the last day the line covers.
    pub placement: Placement,
    pub tenant: Arc<str>,
    pub card: Arc<str>,
    /// `card`, or the override that priced it (e.g. `cluster gpu`).
    pub scope: Arc<str>,
    pub currency: Currency,
    pub first_day: Day,
    pub last_day: Day,
}

/// The finest line a person sees: one component of one [`Line`] over the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub line: Arc<Line>,
    pub component: Component,
    /// In the component's unit (VM-days, vCPU-days, GB-days).
    pub quantity: Decimal,
    /// The unit the price is given in: the component's, or `GB-month` for disk priced monthly.
    pub pricing_unit: &'static str,
    pub pricing_quantity: Decimal,
    pub unit_price: Decimal,
    pub unrounded: Decimal,
    /// `unrounded` rounded half-even to the currency's minor unit: the only rounding.
    pub cost: Decimal,
}

/// Every charge of a period.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub charges: Vec<Charge>,
    /// The cards that priced at least one day, in `effective_from` order.
    pub cards: Vec<RateCard>,
}

struct Open {
    line: Line,
    quantities: [Decimal; 8],
    priced: usize,
}

/// What the ledger remembers of a VM between its days: its names and the tenant and prices
/// its last placement resolved to, so an unchanged placement is not resolved again.
struct VmState {
    vcenter: Arc<str>,
    vm_id: Arc<str>,
    placement: Placement,
    attributes: BTreeMap<String, String>,
    tenant: Option<usize>,
    priced: Option<(usize, usize)>,
}

/// Prices VM-days one at a time; [`Pricer::finish`] turns them into charges.
pub struct Pricer<'p> {
    pricing: &'p Pricing,
    period: Period,
    /// `vcenter` + U+001F + `vm_id` → index in `states`.
    vms: HashMap<String, usize>,
    key: String,
    states: Vec<VmState>,
    tenants: Vec<Arc<str>>,
    tenant_ids: HashMap<String, usize>,
    priced: Vec<(Priced, Arc<str>, Arc<str>)>,
    priced_ids: HashMap<(usize, String, String), usize>,
    open: Vec<Open>,
    open_ids: HashMap<(usize, usize, usize), usize>,
    unpriced: BTreeSet<Day>,
}

impl<'p> Pricer<'p> {
    pub fn new(pricing: &'p Pricing, period: Period) -> Result<Pricer<'p>, Error> {
        if pricing.cards.is_empty() {
            return Err(Error::NoCards);
        }
        Ok(Pricer {
            pricing,
            period,
            vms: HashMap::new(),
            key: String::new(),
            states: Vec::new(),
            tenants: Vec::new(),
            tenant_ids: HashMap::new(),
            priced: Vec::new(),
            priced_ids: HashMap::new(),
            open: Vec::new(),
            open_ids: HashMap::new(),
            unpriced: BTreeSet::new(),
        })
    }

    /// Adds one VM-day.
    pub fn add(&mut self, day: &DayUse<'_>) {
        let Some(card) = self.pricing.cards.card_on(day.day) else {
            self.unpriced.insert(day.day);
            return;
        };
        let Some(quantities) = day.usage.quantities(&self.pricing.cards.cards()[card]) else {
            return;
        };
        let vm = self.vm(day);
        // Prices first: `price` compares the day's cluster with the VM's last placement,
        // which `tenant` then moves on to this day's.
        let priced = self.price(vm, card, day);
        let tenant = self.tenant(vm, day);
        let key = (vm, tenant, priced);
        let index = match self.open_ids.get(&key) {
            Some(&index) => index,
            None => {
                let state = &self.states[vm];
                let (priced_entry, card_name, scope) = &self.priced[priced];
                let card = &self.pricing.cards.cards()[priced_entry.card];
                self.open.push(Open {
                    line: Line {
                        vcenter: state.vcenter.clone(),
                        vm_id: state.vm_id.clone(),
                        placement: state.placement.clone(),
                        tenant: self.tenants[tenant].clone(),
                        card: card_name.clone(),
                        scope: scope.clone(),
                        currency: card.currency,
                        first_day: day.day,
                        last_day: day.day,
                    },
                    quantities: [Decimal::ZERO; 8],
                    priced,
                });
                self.open_ids.insert(key, self.open.len() - 1);
                self.open.len() - 1
            }
        };
        let open = &mut self.open[index];
        for (sum, q) in open.quantities.iter_mut().zip(quantities) {
            if !q.is_zero() {
                *sum += q;
            }
        }
        let line = &mut open.line;
        line.first_day = line.first_day.min(day.day);
        if day.day >= line.last_day {
            line.last_day = day.day;
            let (now, then) = (&day.placement, &line.placement);
            if then.name != now.name
                || then.resource_pool != now.resource_pool
                || then.folder != now.folder
                || then.cluster != now.cluster
                || then.datacenter != now.datacenter
                || then.vm_uuid != now.vm_uuid
            {
                line.placement.assign(day.placement);
            }
        }
    }

    fn vm(&mut self, day: &DayUse<'_>) -> usize {
        // The key is built in a reused buffer: most VM-days belong to a VM seen before.
        self.key.clear();
        self.key.push_str(day.vcenter);
        self.key.push('\u{1f}');
        self.key.push_str(day.vm_id);
        if let Some(&index) = self.vms.get(self.key.as_str()) {
            return index;
        }
        let index = self.states.len();
        self.states.push(VmState {
            vcenter: Arc::from(day.vcenter),
            vm_id: Arc::from(day.vm_id),
            placement: Placement::default(),
            attributes: BTreeMap::new(),
            tenant: None,
            priced: None,
        });
        self.vms.insert(self.key.clone(), index);
        index
    }

    fn tenant(&mut self, vm: usize, day: &DayUse<'_>) -> usize {
        let state = &mut self.states[vm];
        let p = &day.placement;
        let same = state.tenant.is_some()
            && state.placement.name == p.name
            && state.placement.resource_pool == p.resource_pool
            && state.placement.folder == p.folder
            && state.placement.cluster == p.cluster
            && state.placement.datacenter == p.datacenter
            && state.attributes == *day.attributes;
        if let (true, Some(tenant)) = (same, state.tenant) {
            return tenant;
        }
        state.placement.assign(*p);
        state.attributes.clone_from(day.attributes);
        let name = self.pricing.rules.tenant_of(&Subject {
            vcenter: day.vcenter,
            placement: *p,
            attributes: day.attributes,
        });
        let tenant = match self.tenant_ids.get(&name) {
            Some(&id) => id,
            None => {
                self.tenants.push(Arc::from(name.as_str()));
                self.tenant_ids.insert(name, self.tenants.len() - 1);
                self.tenants.len() - 1
            }
        };
        self.states[vm].tenant = Some(tenant);
        tenant
    }

    fn price(&mut self, vm: usize, card: usize, day: &DayUse<'_>) -> usize {
        let state = &self.states[vm];
        if let Some((c, priced)) = state.priced
            && c == card
            && state.placement.cluster == day.placement.cluster
        {
            return priced;
        }
        let cards = &self.pricing.cards;
        let key = if cards.cards()[card].has_overrides() {
            (
                card,
                day.vcenter.to_string(),
                day.placement.cluster.to_string(),
            )
        } else {
            (card, String::new(), String::new())
        };
        let priced = match self.priced_ids.get(&key) {
            Some(&id) => id,
            None => {
                let entry = cards
                    .priced(day.day, day.vcenter, day.placement.cluster)
                    .filter(|p| p.card == card)
                    .unwrap_or_else(|| {
                        let (scope, prices) =
                            cards.cards()[card].prices_for(day.vcenter, day.placement.cluster);
                        Priced {
                            card,
                            scope,
                            prices,
                        }
                    });
                let name = Arc::from(cards.cards()[card].name.as_str());
                let scope = Arc::from(entry.scope.as_str());
                self.priced.push((entry, name, scope));
                self.priced_ids.insert(key, self.priced.len() - 1);
                self.priced.len() - 1
            }
        };
        self.states[vm].priced = Some((card, priced));
        priced
    }

    /// The period's charges, each rounded once; an error when a day had no card.
    pub fn finish(self) -> Result<Ledger, Error> {
        if let Some(&day) = self.unpriced.iter().next() {
            let first = &self.pricing.cards.cards()[0];
            return Err(Error::NoCardOn {
                day,
                first: first.name.clone(),
                first_day: first.effective_from,
            });
        }
        let month = self.period.month();
        let days = Decimal::from(days_in(month));
        let mut used = BTreeSet::new();
        let mut charges = Vec::with_capacity(self.open.len() * 4);
        for open in self.open {
            let (priced, _, _) = &self.priced[open.priced];
            used.insert(priced.card);
            let prices = &priced.prices;
            let currency = open.line.currency;
            let line = Arc::new(open.line);
            for (component, quantity) in Component::ALL.into_iter().zip(open.quantities) {
                if quantity.is_zero() {
                    continue;
                }
                let (pricing_unit, pricing_quantity, unit_price, unrounded) = match component {
                    Component::Vcpu => (
                        "vCPU-day",
                        quantity,
                        prices.vcpu_day,
                        quantity * prices.vcpu_day,
                    ),
                    Component::Ram => (
                        "GB-day",
                        quantity,
                        prices.ram_gb_day,
                        quantity * prices.ram_gb_day,
                    ),
                    Component::Disk => match prices.disk {
                        DiskPrice::PerDay(price) => ("GB-day", quantity, price, quantity * price),
                        // Multiply before dividing, so only the division by the days of the
                        // month is carried to 28 digits.
                        DiskPrice::PerMonth(price) => {
                            ("GB-month", quantity / days, price, quantity * price / days)
                        }
                    },
                    tier => {
                        let price = prices.tiers[tier as usize];
                        ("VM-day", quantity, price, quantity * price)
                    }
                };
                charges.push(Charge {
                    line: line.clone(),
                    component,
                    quantity,
                    pricing_unit,
                    pricing_quantity,
                    unit_price,
                    unrounded,
                    cost: currency.round(unrounded),
                });
            }
        }
        charges.sort_by(|a, b| {
            (
                &a.line.vcenter,
                &a.line.vm_id,
                a.line.first_day,
                &a.line.tenant,
                a.component,
            )
                .cmp(&(
                    &b.line.vcenter,
                    &b.line.vm_id,
                    b.line.first_day,
                    &b.line.tenant,
                    b.component,
                ))
        });
        let cards = used
            .into_iter()
            .map(|i| self.pricing.cards.cards()[i].clone())
            .collect();
        Ok(Ledger { charges, cards })
    }
}

/// How the charges of a period are summed for a person.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One line per VM and tenant (a VM moved between tenants has one line for each).
    Vm,
    Tenant,
    /// One line per resource pool of each vCenter.
    Pool,
    Vcenter,
    /// One line per cluster of each vCenter.
    Cluster,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Vm => "vm",
            GroupBy::Tenant => "tenant",
            GroupBy::Pool => "pool",
            GroupBy::Vcenter => "vcenter",
            GroupBy::Cluster => "cluster",
        }
    }
}

/// One line of costs: the sum of the rounded charges of a group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CostLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcenter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub currency: String,
    /// VM-days charged (all tiers and none), 4 decimals.
    #[schema(value_type = String)]
    pub vm_days: Decimal,
    #[schema(value_type = String)]
    pub vcpu_days: Decimal,
    #[schema(value_type = String)]
    pub ram_gb_days: Decimal,
    #[schema(value_type = String)]
    pub disk_gb_days: Decimal,
    /// The sum of the group's rounded charges.
    #[schema(value_type = String)]
    pub cost: Decimal,
}

/// A currency's total: the sum of its rounded charges, the exact total, and the difference.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    #[schema(value_type = String)]
    pub cost: Decimal,
    /// The exact sum of the unrounded charges, rounded only here.
    #[schema(value_type = String)]
    pub unrounded: Decimal,
    /// `cost` − `unrounded`: what rounding each charge added up to.
    #[schema(value_type = String)]
    pub rounding: Decimal,
    pub charges: usize,
}

/// A card that priced at least one day of the period.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CardUsed {
    pub name: String,
    pub currency: String,
    /// YYYY-MM-DD
    pub effective_from: String,
}

/// The costs of a period as a person reads them: lines, totals, and the cards behind them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CostReport {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    pub group_by: GroupBy,
    pub lines: Vec<CostLine>,
    pub totals: Vec<CurrencyTotal>,
    pub cards: Vec<CardUsed>,
}

/// Digits quantities are shown with.
pub const QUANTITY_DIGITS: u32 = 4;

impl Ledger {
    /// The charges summed by `by`, ordered by currency, then by cost (highest first), then key.
    pub fn lines(&self, by: GroupBy) -> Vec<CostLine> {
        let mut groups: BTreeMap<(Currency, [Option<&str>; 6]), [Decimal; 5]> = BTreeMap::new();
        for charge in &self.charges {
            let l = &*charge.line;
            let p = &l.placement;
            let key: [Option<&str>; 6] = match by {
                GroupBy::Vm => [
                    Some(&l.tenant),
                    Some(&l.vcenter),
                    None,
                    None,
                    Some(&l.vm_id),
                    None,
                ],
                GroupBy::Tenant => [Some(&l.tenant), None, None, None, None, None],
                GroupBy::Pool => [
                    None,
                    Some(&l.vcenter),
                    None,
                    Some(&p.resource_pool),
                    None,
                    None,
                ],
                GroupBy::Vcenter => [None, Some(&l.vcenter), None, None, None, None],
                GroupBy::Cluster => [None, Some(&l.vcenter), Some(&p.cluster), None, None, None],
            };
            let sums = groups.entry((l.currency, key)).or_default();
            let slot = match charge.component {
                Component::Vcpu => 1,
                Component::Ram => 2,
                Component::Disk => 3,
                _ => 0,
            };
            sums[slot] += charge.quantity;
            sums[4] += charge.cost;
        }
        let names: HashMap<(&str, &str), &str> = match by {
            GroupBy::Vm => self
                .charges
                .iter()
                .map(|c| {
                    (
                        (&*c.line.vcenter, &*c.line.vm_id),
                        c.line.placement.name.as_str(),
                    )
                })
                .collect(),
            _ => HashMap::new(),
        };
        let mut lines: Vec<CostLine> = groups
            .into_iter()
            .map(|((currency, key), sums)| {
                let text = |i: usize| key[i].map(str::to_string);
                let name = match (key[1], key[4]) {
                    (Some(vc), Some(vm)) => names.get(&(vc, vm)).map(|n| n.to_string()),
                    _ => None,
                };
                CostLine {
                    tenant: text(0),
                    vcenter: text(1),
                    cluster: text(2),
                    resource_pool: text(3),
                    vm_id: text(4),
                    name,
                    currency: currency.code().to_string(),
                    vm_days: money::shown(sums[0], QUANTITY_DIGITS),
                    vcpu_days: money::shown(sums[1], QUANTITY_DIGITS),
                    ram_gb_days: money::shown(sums[2], QUANTITY_DIGITS),
                    disk_gb_days: money::shown(sums[3], QUANTITY_DIGITS),
                    cost: sums[4],
                }
            })
            .collect();
        lines.sort_by(|a, b| {
            a.currency
                .cmp(&b.currency)
                .then(b.cost.cmp(&a.cost))
                .then_with(|| {
                    (
                        &a.tenant,
                        &a.vcenter,
                        &a.cluster,
                        &a.resource_pool,
                        &a.vm_id,
                    )
                        .cmp(&(
                            &b.tenant,
                            &b.vcenter,
                            &b.cluster,
                            &b.resource_pool,
                            &b.vm_id,
                        ))
                })
        });
        lines
    }

    pub fn report(&self, period: Period, by: GroupBy) -> CostReport {
        CostReport {
            period: period.to_string(),
            group_by: by,
            lines: self.lines(by),
            totals: self.totals(),
            cards: self
                .cards
                .iter()
                .map(|c| CardUsed {
                    name: c.name.clone(),
                    currency: c.currency.code().to_string(),
                    effective_from: c.effective_from.to_string(),
                })
                .collect(),
        }
    }

    /// One total per currency.
    pub fn totals(&self) -> Vec<CurrencyTotal> {
        let mut sums: BTreeMap<Currency, (Decimal, Decimal, usize)> = BTreeMap::new();
        for charge in &self.charges {
            let entry = sums.entry(charge.line.currency).or_default();
            entry.0 += charge.cost;
            entry.1 += charge.unrounded;
            entry.2 += 1;
        }
        sums.into_iter()
            .map(|(currency, (cost, unrounded, charges))| {
                let unrounded = currency.round(unrounded);
                CurrencyTotal {
                    currency: currency.code().to_string(),
                    cost,
                    unrounded,
                    rounding: cost - unrounded,
                    charges,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::card::RateCardSpec;
    use crate::cost::tenant::TenantRuleSpec;

    fn pricing(cards: &str, rules: &str) -> Pricing {
        let cards: Vec<RateCardSpec> = serde_yaml::from_str(cards).unwrap();
        let rules: Vec<TenantRuleSpec> = serde_yaml::from_str(rules).unwrap();
        Pricing {
            cards: RateCards::from_specs(&cards).unwrap(),
            rules: TenantRules::from_specs(&rules).unwrap(),
        }
    }

    /// A VM present `present` of 24 snapshots, all powered on, in one tier (or none).
    fn usage(present: i64, tier: Option<usize>, vcpu: i64, ram: f64, disk: f64) -> Usage {
        let mut tier_days = [0.0; 4];
        if let Some(t) = tier {
            tier_days[t] = present as f64 / 24.0;
        }
        Usage {
            samples_present: present,
            total_samples: 24,
            samples_powered_on: present,
            samples_template: 0,
            samples_placeholder: 0,
            avg_vcpu_count: (vcpu * present) as f64 / 24.0,
            avg_ram_gb: ram * present as f64 / 24.0,
            avg_provisioned_disk: disk * present as f64 / 24.0,
            tier_days,
        }
    }

    struct Vm {
        id: &'static str,
        placement: Placement,
    }

    fn vm(id: &'static str, folder: &str, cluster: &str) -> Vm {
        Vm {
            id,
            placement: Placement {
                name: format!("{id}-name"),
                folder: folder.into(),
                cluster: cluster.into(),
                resource_pool: "Gold".into(),
                ..Placement::default()
            },
        }
    }

    fn add(pricer: &mut Pricer<'_>, vm: &Vm, day: &str, usage: Usage) {
        let p = &vm.placement;
        let none = BTreeMap::new();
        pricer.add(&DayUse {
            day: Day::parse(day).unwrap(),
            vcenter: "vc-a",
            vm_id: vm.id,
            placement: PlacementRef {
                vm_uuid: &p.vm_uuid,
                name: &p.name,
                resource_pool: &p.resource_pool,
                datacenter: &p.datacenter,
                cluster: &p.cluster,
                folder: &p.folder,
            },
            usage,
            attributes: &none,
        });
    }

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn november() -> Period {
        Period::Month(Month::parse("2026-11").unwrap())
    }

    fn days(from: u32, to: u32) -> impl Iterator<Item = String> {
        (from..=to).map(|d| format!("2026-11-{d:02}"))
    }

    fn costs(ledger: &Ledger) -> Vec<(String, &'static str, String, String)> {
        ledger
            .charges
            .iter()
            .map(|c| {
                (
                    c.line.card.to_string(),
                    c.component.as_str(),
                    c.quantity.normalize().to_string(),
                    c.cost.to_string(),
                )
            })
            .collect()
    }

    const TWO_CARDS: &str = r#"
- {name: A, currency: EUR, effective_from: 2026-01-01, tiers: {gold: 1}, vcpu_day: 0.10, ram_gb_day: 0.05, disk_gb_month: 3}
- {name: B, currency: EUR, effective_from: 2026-11-15, tiers: {gold: 2}, vcpu_day: 0.20, ram_gb_day: 0.05, disk_gb_month: 3}
"#;

    #[test]
    fn a_price_change_on_the_15th_splits_the_month_exactly() {
        let pricing = pricing(TWO_CARDS, "[]");
        let mut pricer = Pricer::new(&pricing, november()).unwrap();
        let web = vm("vm-1", "/DC1/vm", "C1");
        for day in days(1, 30) {
            add(&mut pricer, &web, &day, usage(24, Some(3), 2, 4.0, 50.0));
        }
        let ledger = pricer.finish().unwrap();
        // Card A, Nov 1–14: 14 gold VM-days × 1 = 14; 28 vCPU-days × 0.10 = 2.80;
        // 56 GB-days × 0.05 = 2.80; 700 GB-days × 3 / 30 = 70.
        // Card B, Nov 15–30: 16 × 2 = 32; 32 × 0.20 = 6.40; 64 × 0.05 = 3.20; 800 × 0.1 = 80.
        assert_eq!(
            costs(&ledger),
            [
                ("A", "gold", "14", "14.00"),
                ("A", "vcpu", "28", "2.80"),
                ("A", "ram", "56", "2.80"),
                ("A", "disk", "700", "70.00"),
                ("B", "gold", "16", "32.00"),
                ("B", "vcpu", "32", "6.40"),
                ("B", "ram", "64", "3.20"),
                ("B", "disk", "800", "80.00"),
            ]
            .map(|(a, b, c, d)| (a.to_string(), b, c.to_string(), d.to_string()))
        );
        let disk = &ledger.charges[3];
        assert_eq!((disk.pricing_unit, disk.unit_price), ("GB-month", dec("3")));
        assert_eq!(
            disk.pricing_quantity.normalize().to_string(),
            "23.333333333333333333333333333"
        );
        let totals = ledger.totals();
        assert_eq!(totals[0].cost, dec("211.20"));
        assert_eq!(totals[0].rounding, Decimal::ZERO);
        assert_eq!(ledger.cards.len(), 2);
    }

    #[test]
    fn a_vm_moved_between_tenants_is_charged_to_each_for_its_days() {
        let pricing = pricing(
            "[{currency: EUR, effective_from: 2026-01-01, tiers: {none: 1.5}}]",
            "[{tenant: acme, folder_prefix: /DC1/vm/acme}, {tenant: beta, folder_prefix: /DC1/vm/beta}]",
        );
        let mut pricer = Pricer::new(&pricing, november()).unwrap();
        let before = vm("vm-1", "/DC1/vm/acme", "C1");
        let after = vm("vm-1", "/DC1/vm/beta/web", "C1");
        for day in days(1, 10) {
            add(&mut pricer, &before, &day, usage(24, None, 1, 1.0, 0.0));
        }
        for day in days(11, 30) {
            add(&mut pricer, &after, &day, usage(24, None, 1, 1.0, 0.0));
        }
        let ledger = pricer.finish().unwrap();
        let by_tenant: Vec<(Option<String>, Decimal)> = ledger
            .lines(GroupBy::Tenant)
            .into_iter()
            .map(|l| (l.tenant, l.cost))
            .collect();
        // 10 × 1.5 = 15 for acme, 20 × 1.5 = 30 for beta, highest first.
        assert_eq!(
            by_tenant,
            [
                (Some("beta".into()), dec("30.00")),
                (Some("acme".into()), dec("15.00"))
            ]
        );
        let acme = ledger
            .charges
            .iter()
            .find(|c| &*c.line.tenant == "acme")
            .unwrap();
        assert_eq!(
            (
                acme.line.first_day.to_string(),
                acme.line.last_day.to_string()
            ),
            ("2026-11-01".into(), "2026-11-10".into())
        );
        let vms = ledger.lines(GroupBy::Vm);
        assert_eq!(vms.len(), 2, "one line per VM and tenant");
    }

    const POLICY: &str = "[{currency: EUR, effective_from: 2026-01-01, tiers: {none: 1}, vcpu_day: 1, ram_gb_day: 1, disk_gb_day: 1, templates: TEMPLATES, srm_placeholders: TEMPLATES, powered_off: OFF}]";

    fn one_day(
        templates: &str,
        off: &str,
        usage: Usage,
    ) -> Vec<(String, &'static str, String, String)> {
        let cards = POLICY.replace("TEMPLATES", templates).replace("OFF", off);
        let pricing = pricing(&cards, "[]");
        let mut pricer =
            Pricer::new(&pricing, Period::Day(Day::parse("2026-11-02").unwrap())).unwrap();
        add(&mut pricer, &vm("vm-1", "/", "C1"), "2026-11-02", usage);
        costs(&pricer.finish().unwrap())
            .into_iter()
            .map(|(_, c, q, cost)| (String::new(), c, q, cost))
            .collect()
    }

    fn row(c: &'static str, q: &str, cost: &str) -> (String, &'static str, String, String) {
        (String::new(), c, q.into(), cost.into())
    }

    #[test]
    fn templates_are_free_or_billed_as_powered_off_vms() {
        // A template all day: 2 vCPU, 4 GB, 10 GB disk, every price 1 per unit-day.
        let template = Usage {
            samples_powered_on: 0,
            samples_template: 24,
            ..usage(24, None, 2, 4.0, 10.0)
        };
        assert_eq!(one_day("free", "disk_only", template), []);
        assert_eq!(
            one_day("priced", "disk_only", template),
            [row("disk", "10", "10.00")]
        );
        assert_eq!(
            one_day("priced", "full", template),
            [
                row("none", "1", "1.00"),
                row("vcpu", "2", "2.00"),
                row("ram", "4", "4.00"),
                row("disk", "10", "10.00")
            ]
        );
        // An SRM placeholder follows its own policy the same way.
        let placeholder = Usage {
            samples_powered_on: 0,
            samples_placeholder: 24,
            ..usage(24, None, 2, 4.0, 10.0)
        };
        assert_eq!(one_day("free", "full", placeholder), []);
        assert_eq!(
            one_day("priced", "disk_only", placeholder),
            [row("disk", "10", "10.00")]
        );
    }

    #[test]
    fn a_powered_off_vm_pays_disk_only_or_in_full() {
        // On for 6 of its 24 samples: compute is a quarter, disk the whole day.
        let half_off = Usage {
            samples_powered_on: 6,
            ..usage(24, None, 2, 4.0, 10.0)
        };
        assert_eq!(
            one_day("free", "disk_only", half_off),
            [
                row("none", "0.25", "0.25"),
                row("vcpu", "0.5", "0.50"),
                row("ram", "1", "1.00"),
                row("disk", "10", "10.00")
            ]
        );
        assert_eq!(
            one_day("free", "full", half_off),
            [
                row("none", "1", "1.00"),
                row("vcpu", "2", "2.00"),
                row("ram", "4", "4.00"),
                row("disk", "10", "10.00")
            ]
        );
    }

    #[test]
    fn a_partial_day_is_prorated_by_the_snapshots_present() {
        // Present in 8 of 24 snapshots: a third of a VM-day, to 28 digits; 3 vCPU → 1 vCPU-day.
        let rows = one_day("free", "disk_only", usage(8, None, 3, 6.0, 30.0));
        assert_eq!(
            rows,
            [
                row("none", "0.3333333333333333333333333333", "0.33"),
                row("vcpu", "1", "1.00"),
                row("ram", "2", "2.00"),
                row("disk", "10", "10.00"),
            ]
        );
    }

    #[test]
    fn overrides_price_the_vms_of_their_scope() {
        let pricing = pricing(
            "[{currency: USD, effective_from: 2026-01-01, vcpu_day: 1, overrides: [{vcenter: vc-a, vcpu_day: 2}, {cluster: gpu, vcpu_day: 5}, {vcenter: vc-a, cluster: gpu, vcpu_day: 7}]}]",
            "[]",
        );
        let mut pricer = Pricer::new(&pricing, november()).unwrap();
        add(
            &mut pricer,
            &vm("vm-1", "/", "C1"),
            "2026-11-01",
            usage(24, None, 1, 0.0, 0.0),
        );
        add(
            &mut pricer,
            &vm("vm-2", "/", "gpu"),
            "2026-11-01",
            usage(24, None, 1, 0.0, 0.0),
        );
        let ledger = pricer.finish().unwrap();
        let scopes: Vec<(&str, String)> = ledger
            .charges
            .iter()
            .filter(|c| c.component == Component::Vcpu)
            .map(|c| (&*c.line.scope, c.cost.to_string()))
            .collect();
        assert_eq!(
            scopes,
            [
                ("vCenter vc-a", "2.00".into()),
                ("vCenter vc-a, cluster gpu", "7.00".into())
            ]
        );
    }

    #[test]
    fn a_vm_moved_to_another_cluster_is_priced_there_from_that_day() {
        let pricing = pricing(
            "[{currency: USD, effective_from: 2026-01-01, vcpu_day: 1, overrides: [{cluster: gpu, vcpu_day: 5}]}]",
            "[]",
        );
        let mut pricer = Pricer::new(&pricing, november()).unwrap();
        for (d, cluster) in [
            ("2026-11-01", "C1"),
            ("2026-11-02", "C1"),
            ("2026-11-03", "gpu"),
        ] {
            add(
                &mut pricer,
                &vm("vm-1", "/", cluster),
                d,
                usage(24, None, 1, 0.0, 0.0),
            );
        }
        let ledger = pricer.finish().unwrap();
        let scopes: Vec<(&str, String)> = ledger
            .charges
            .iter()
            .filter(|c| c.component == Component::Vcpu)
            .map(|c| (&*c.line.scope, c.cost.to_string()))
            .collect();
        // Two days at the card's 1, one at the gpu cluster's 5.
        assert_eq!(
            scopes,
            [("card", "2.00".into()), ("cluster gpu", "5.00".into())]
        );
    }

    #[test]
    fn a_total_is_the_sum_of_its_rounded_charges_and_says_by_how_much_it_differs() {
        // Three VMs of 1 VM-day at 0.335: each charge rounds half-even to 0.34, so the total
        // is 1.02, while the exact 1.005 rounds to 1.00: rounding +0.02.
        let pricing = pricing(
            "[{currency: EUR, effective_from: 2026-01-01, tiers: {none: \"0.335\"}}]",
            "[]",
        );
        let mut pricer = Pricer::new(&pricing, november()).unwrap();
        for id in ["vm-1", "vm-2", "vm-3"] {
            add(
                &mut pricer,
                &vm(id, "/", "C1"),
                "2026-11-03",
                usage(24, None, 0, 0.0, 0.0),
            );
        }
        let ledger = pricer.finish().unwrap();
        assert!(ledger.charges.iter().all(|c| c.cost == dec("0.34")));
        let total = &ledger.totals()[0];
        assert_eq!(
            (total.cost, total.unrounded, total.rounding),
            (dec("1.02"), dec("1.00"), dec("0.02"))
        );
        let tenant = &ledger.lines(GroupBy::Tenant)[0];
        assert_eq!(
            (tenant.tenant.as_deref(), tenant.cost),
            (Some(crate::cost::UNASSIGNED), dec("1.02"))
        );
    }

    #[test]
    fn a_day_before_the_first_card_is_an_error_naming_it() {
        let pricing = pricing(
            "[{name: first, currency: EUR, effective_from: 2026-11-02}]",
            "[]",
        );
        let mut pricer = Pricer::new(&pricing, november()).unwrap();
        add(
            &mut pricer,
            &vm("vm-1", "/", "C1"),
            "2026-11-01",
            usage(24, None, 1, 0.0, 0.0),
        );
        assert_eq!(
            pricer.finish().unwrap_err().to_string(),
            "no rate card is in effect on 2026-11-01 (the earliest, `first`, starts on 2026-11-02); add a card whose effective_from is on or before it"
        );
        assert_eq!(
            Pricer::new(&Pricing::default(), november()).err(),
            Some(Error::NoCards)
        );
    }

    #[test]
    fn the_readme_example_adds_up_as_written() {
        // README "Costs": web-01 present 18 of 24 snapshots, powered on in 12 of them, Gold,
        // 4 vCPU, 16 GB, 100 GB, on a November day, card of config/costs.yml 2026.
        let pricing = pricing(
            "[{currency: EUR, effective_from: 2026-01-01, tiers: {gold: \"2.20\"}, vcpu_day: \"0.32\", ram_gb_day: \"0.04\", disk_gb_month: \"0.09\"}]",
            "[]",
        );
        let mut pricer =
            Pricer::new(&pricing, Period::Day(Day::parse("2026-11-20").unwrap())).unwrap();
        let on_for_12 = Usage {
            samples_powered_on: 12,
            ..usage(18, Some(3), 4, 16.0, 100.0)
        };
        add(
            &mut pricer,
            &vm("web-01", "/", "C1"),
            "2026-11-20",
            on_for_12,
        );
        let ledger = pricer.finish().unwrap();
        assert_eq!(
            costs(&ledger)
                .into_iter()
                .map(|(_, c, q, cost)| (c, q, cost))
                .collect::<Vec<_>>(),
            [
                ("gold", "0.5".into(), "1.10".into()),
                ("vcpu", "2".into(), "0.64".into()),
                ("ram", "8".into(), "0.32".into()),
                ("disk", "75".into(), "0.22".into()),
            ]
        );
        let total = &ledger.totals()[0];
        assert_eq!((total.cost, total.unrounded), (dec("2.28"), dec("2.28")));
        assert_eq!(ledger.charges[3].unrounded, dec("0.225"));
    }
}
