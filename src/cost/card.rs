//! Rate cards (`settings.rate_cards`): effective-dated prices, checked whole before any cost is
//! computed with them.

use super::money::{self, Currency};
use crate::aggregate::{Day, Month};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A rate card as written in the settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCardSpec {
    /// Shown wherever the card is named; default `<currency> from <effective_from>`.
    pub name: Option<String>,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// The UTC day from which the card applies, until the next card's `effective_from`.
    pub effective_from: String,
    /// Price per VM-day by tier: `tin`, `bronze`, `silver`, `gold` and `none` (no tier).
    #[serde(default)]
    pub tiers: BTreeMap<String, PriceText>,
    pub vcpu_day: Option<PriceText>,
    pub ram_gb_day: Option<PriceText>,
    pub disk_gb_day: Option<PriceText>,
    /// Per GB of provisioned disk for a whole month; a day costs this divided by the days of
    /// its month.
    pub disk_gb_month: Option<PriceText>,
    #[serde(default)]
    pub templates: Charging,
    #[serde(default)]
    pub srm_placeholders: Charging,
    #[serde(default)]
    pub powered_off: PoweredOff,
    /// Prices for a vCenter, a cluster, or a cluster of one vCenter.
    #[serde(default)]
    pub overrides: Vec<OverrideSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSpec {
    pub vcenter: Option<String>,
    pub cluster: Option<String>,
    #[serde(default)]
    pub tiers: BTreeMap<String, PriceText>,
    pub vcpu_day: Option<PriceText>,
    pub ram_gb_day: Option<PriceText>,
    pub disk_gb_day: Option<PriceText>,
    pub disk_gb_month: Option<PriceText>,
}

/// The prices a card or an override writes, borrowed for checking.
struct PricesSpec<'a> {
    tiers: &'a BTreeMap<String, PriceText>,
    vcpu_day: &'a Option<PriceText>,
    ram_gb_day: &'a Option<PriceText>,
    disk_gb_day: &'a Option<PriceText>,
    disk_gb_month: &'a Option<PriceText>,
}

/// Whether templates (or SRM placeholders) cost anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Charging {
    #[default]
    Free,
    /// Billed like a powered-off VM.
    Priced,
}

/// What the time a VM spends powered off is charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoweredOff {
    /// Only its provisioned disk.
    #[default]
    DiskOnly,
    /// Like a powered-on VM.
    Full,
}

/// A price as written: a quoted decimal, or a YAML number (which YAML hands over as f64).
#[derive(Debug, Clone, PartialEq)]
pub enum PriceText {
    Written(String),
    Number(f64),
}

impl<'de> Deserialize<'de> for PriceText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PriceText, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PriceText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price: a decimal number such as 0.40 or \"0.40\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PriceText, E> {
                Ok(PriceText::Written(v.trim().to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PriceText, E> {
                Ok(PriceText::Written(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PriceText, E> {
                Ok(PriceText::Written(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<PriceText, E> {
                Ok(PriceText::Number(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl PriceText {
    /// The price: a non-negative decimal. A YAML number is read as the shortest digits that
    /// round-trip its float, which are the digits written when there are at most 15 of them;
    /// a longer one may not be, so it must be quoted.
    fn price(&self) -> Result<Decimal, String> {
        let (text, price) = match self {
            PriceText::Written(text) => (text.clone(), text.parse::<Decimal>().ok()),
            PriceText::Number(value) => (format!("{value}"), Some(money::figure(*value))),
        };
        let price = price.ok_or_else(|| format!("`{text}` is not a decimal number"))?;
        if price.is_sign_negative() && !price.is_zero() {
            return Err(format!("`{text}` is negative; prices are 0 or more"));
        }
        let price = price.normalize();
        if matches!(self, PriceText::Number(_)) && price.mantissa().unsigned_abs() >= 10u128.pow(15)
        {
            return Err(format!(
                "`{text}` has more significant digits than a YAML number keeps exactly; quote it"
            ));
        }
        Ok(price)
    }
}

/// The tiers a card prices, in the order of the tier columns, then VM-days with no tier.
pub const TIER_NAMES: [&str; 5] = ["tin", "bronze", "silver", "gold", "none"];

/// What a GB of disk costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskPrice {
    PerDay(Decimal),
    PerMonth(Decimal),
}

impl DiskPrice {
    /// The price of one GB-day on a day of `month`.
    pub fn per_day(self, month: Month) -> Decimal {
        match self {
            DiskPrice::PerDay(price) => price,
            DiskPrice::PerMonth(price) => price / Decimal::from(days_in(month)),
        }
    }
}

/// The number of days of `month`.
pub fn days_in(month: Month) -> i64 {
    (month.end() - month.start()) / 86_400
}

/// The full price list of one scope of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    /// Per VM-day, in [`TIER_NAMES`] order.
    pub tiers: [Decimal; 5],
    pub vcpu_day: Decimal,
    pub ram_gb_day: Decimal,
    pub disk: DiskPrice,
}

/// The prices an override gives; the rest fall through to a less specific scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PartialPrices {
    tiers: [Option<Decimal>; 5],
    vcpu_day: Option<Decimal>,
    ram_gb_day: Option<Decimal>,
    disk: Option<DiskPrice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    vcenter: Option<String>,
    cluster: Option<String>,
    prices: PartialPrices,
}

impl Override {
    /// 3 for a cluster of one vCenter, 2 for a cluster anywhere, 1 for a vCenter; 0 = no match.
    fn specificity(&self, vcenter: &str, cluster: &str) -> u8 {
        let vc = self.vcenter.as_deref().map(|v| v == vcenter);
        let cl = self
            .cluster
            .as_deref()
            .map(|c| c.eq_ignore_ascii_case(cluster));
        match (vc, cl) {
            (Some(true), Some(true)) => 3,
            (None, Some(true)) => 2,
            (Some(true), None) => 1,
            _ => 0,
        }
    }

    fn scope(&self) -> String {
        match (&self.vcenter, &self.cluster) {
            (Some(v), Some(c)) => format!("vCenter {v}, cluster {c}"),
            (None, Some(c)) => format!("cluster {c}"),
            (Some(v), None) => format!("vCenter {v}"),
            (None, None) => String::new(),
        }
    }
}

/// A checked rate card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCard {
    pub name: String,
    pub currency: Currency,
    pub effective_from: Day,
    pub templates: Charging,
    pub srm_placeholders: Charging,
    pub powered_off: PoweredOff,
    base: Prices,
    overrides: Vec<Override>,
}

/// The prices that apply to one VM-day: the card, the scope within it and the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// Index of the card in [`RateCards::cards`].
    pub card: usize,
    /// `card` for the card's own prices, else the most specific override that matched, e.g.
    /// `cluster gpu`.
    pub scope: String,
    pub prices: Prices,
}

impl RateCard {
    /// The prices for a VM in `cluster` of `vcenter`: per price, the most specific override
    /// that gives it (a cluster of that vCenter, then that cluster name in any vCenter, then
    /// the vCenter), else the card's own.
    pub fn prices_for(&self, vcenter: &str, cluster: &str) -> (String, Prices) {
        let mut matching: Vec<(u8, &Override)> = self
            .overrides
            .iter()
            .map(|o| (o.specificity(vcenter, cluster), o))
            .filter(|(s, _)| *s > 0)
            .collect();
        if matching.is_empty() {
            return ("card".to_string(), self.base);
        }
        matching.sort_by_key(|m| std::cmp::Reverse(m.0));
        let pick = |get: &dyn Fn(&PartialPrices) -> Option<Decimal>, base: Decimal| {
            matching
                .iter()
                .find_map(|(_, o)| get(&o.prices))
                .unwrap_or(base)
        };
        let mut prices = self.base;
        for (i, tier) in prices.tiers.iter_mut().enumerate() {
            *tier = pick(&|p| p.tiers[i], *tier);
        }
        prices.vcpu_day = pick(&|p| p.vcpu_day, prices.vcpu_day);
        prices.ram_gb_day = pick(&|p| p.ram_gb_day, prices.ram_gb_day);
        prices.disk = matching
            .iter()
            .find_map(|(_, o)| o.prices.disk)
            .unwrap_or(prices.disk);
        (matching[0].1.scope(), prices)
    }

    /// Whether any override could change a price.
    pub fn has_overrides(&self) -> bool {
        !self.overrides.is_empty()
    }
}

/// Every rate card of the settings, ordered by `effective_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateCards {
    cards: Vec<RateCard>,
}

/// A rate card that cannot be used, named by its position and name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate_cards[{index}] ({card}): `{field}`: {message}")]
pub struct CardError {
    pub index: usize,
    pub card: String,
    pub field: String,
    pub message: String,
}

impl RateCards {
    /// Checks every card; the first problem found is returned and no card is kept.
    pub fn from_specs(specs: &[RateCardSpec]) -> Result<RateCards, CardError> {
        let mut cards = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            cards.push(check_card(index, spec)?);
        }
        let mut order: Vec<usize> = (0..cards.len()).collect();
        order.sort_by_key(|&i| cards[i].effective_from);
        for pair in order.windows(2) {
            let (a, b) = (&cards[pair[0]], &cards[pair[1]]);
            if a.effective_from == b.effective_from {
                return Err(CardError {
                    index: pair[1].max(pair[0]),
                    card: b.name.clone(),
                    field: "effective_from".into(),
                    message: format!(
                        "{} is also the effective_from of rate card `{}`; two cards cannot start on the same day",
                        b.effective_from, a.name
                    ),
                });
            }
        }
        cards.sort_by_key(|c| c.effective_from);
        Ok(RateCards { cards })
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    pub fn cards(&self) -> &[RateCard] {
        &self.cards
    }

    /// Index of the card in effect on `day`, if any card has started by then.
    pub fn card_on(&self, day: Day) -> Option<usize> {
        let started = self.cards.partition_point(|c| c.effective_from <= day);
        started.checked_sub(1)
    }

    /// The card and prices for a VM on `day` in `cluster` of `vcenter`.
    pub fn priced(&self, day: Day, vcenter: &str, cluster: &str) -> Option<Priced> {
        let card = self.card_on(day)?;
        let (scope, prices) = self.cards[card].prices_for(vcenter, cluster);
        Some(Priced {
            card,
            scope,
            prices,
        })
    }
}

fn check_card(index: usize, spec: &RateCardSpec) -> Result<RateCard, CardError> {
    let provisional = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{} from {}", spec.currency, spec.effective_from));
    let fail = |field: &str, message: String| CardError {
        index,
        card: provisional.clone(),
        field: field.to_string(),
        message,
    };
    if spec.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(fail("name", "must not be empty when given".into()));
    }
    let currency = Currency::parse(spec.currency.trim()).ok_or_else(|| {
        fail(
            "currency",
            format!(
                "`{}` is not an ISO 4217 currency code (three capital letters, e.g. EUR, USD, JPY)",
                spec.currency
            ),
        )
    })?;
    let effective_from = Day::parse(&spec.effective_from).map_err(|_| {
        fail(
            "effective_from",
            format!("`{}` is not a day written YYYY-MM-DD", spec.effective_from),
        )
    })?;
    let partial = |field_prefix: &str,
                   prices: PricesSpec<'_>|
     -> Result<PartialPrices, CardError> {
        let price =
            |field: String, text: &PriceText| text.price().map_err(|message| fail(&field, message));
        let mut out = PartialPrices::default();
        for (name, text) in prices.tiers {
            let slot = TIER_NAMES
                .iter()
                .position(|t| t.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    fail(
                        &format!("{field_prefix}tiers.{name}"),
                        format!(
                            "unknown tier `{name}`; the tiers are {}",
                            TIER_NAMES.join(", ")
                        ),
                    )
                })?;
            out.tiers[slot] = Some(price(format!("{field_prefix}tiers.{name}"), text)?);
        }
        let optional = |field: &str, text: &Option<PriceText>| {
            text.as_ref()
                .map(|t| price(format!("{field_prefix}{field}"), t))
                .transpose()
        };
        out.vcpu_day = optional("vcpu_day", prices.vcpu_day)?;
        out.ram_gb_day = optional("ram_gb_day", prices.ram_gb_day)?;
        out.disk = match (
            optional("disk_gb_day", prices.disk_gb_day)?,
            optional("disk_gb_month", prices.disk_gb_month)?,
        ) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    &format!("{field_prefix}disk_gb_month"),
                    "give disk_gb_day or disk_gb_month, not both".into(),
                ));
            }
            (Some(day), None) => Some(DiskPrice::PerDay(day)),
            (None, Some(month)) => Some(DiskPrice::PerMonth(month)),
            (None, None) => None,
        };
        Ok(out)
    };
    let own = partial(
        "",
        PricesSpec {
            tiers: &spec.tiers,
            vcpu_day: &spec.vcpu_day,
            ram_gb_day: &spec.ram_gb_day,
            disk_gb_day: &spec.disk_gb_day,
            disk_gb_month: &spec.disk_gb_month,
        },
    )?;
    let base = Prices {
        tiers: own.tiers.map(|t| t.unwrap_or(Decimal::ZERO)),
        vcpu_day: own.vcpu_day.unwrap_or(Decimal::ZERO),
        ram_gb_day: own.ram_gb_day.unwrap_or(Decimal::ZERO),
        disk: own.disk.unwrap_or(DiskPrice::PerDay(Decimal::ZERO)),
    };
    let mut overrides: Vec<Override> = Vec::with_capacity(spec.overrides.len());
    for (i, o) in spec.overrides.iter().enumerate() {
        let prefix = format!("overrides[{i}].");
        let clean = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (vcenter, cluster) = (clean(&o.vcenter), clean(&o.cluster));
        if vcenter.is_none() && cluster.is_none() {
            return Err(fail(
                &format!("overrides[{i}]"),
                "an override names a vcenter, a cluster, or both".into(),
            ));
        }
        let prices = partial(
            &prefix,
            PricesSpec {
                tiers: &o.tiers,
                vcpu_day: &o.vcpu_day,
                ram_gb_day: &o.ram_gb_day,
                disk_gb_day: &o.disk_gb_day,
                disk_gb_month: &o.disk_gb_month,
            },
        )?;
        let candidate = Override {
            vcenter,
            cluster,
            prices,
        };
        if let Some(j) = overrides.iter().position(|e| {
            e.vcenter == candidate.vcenter
                && e.cluster.as_deref().map(str::to_lowercase)
                    == candidate.cluster.as_deref().map(str::to_lowercase)
        }) {
            return Err(fail(
                &format!("overrides[{i}]"),
                format!(
                    "names the same scope as overrides[{j}] ({})",
                    candidate.scope()
                ),
            ));
        }
        overrides.push(candidate);
    }
    Ok(RateCard {
        name: provisional.clone(),
        currency,
        effective_from,
        templates: spec.templates,
        srm_placeholders: spec.srm_placeholders,
        powered_off: spec.powered_off,
        base,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(yaml: &str) -> Result<RateCards, CardError> {
        let specs: Vec<RateCardSpec> = serde_yaml::from_str(yaml).unwrap();
        RateCards::from_specs(&specs)
    }

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn prices_are_read_by_their_written_digits_quoted_or_not() {
        let c = cards(
            "- {currency: EUR, effective_from: 2026-01-01, vcpu_day: 0.1, ram_gb_day: \"0.05\", disk_gb_month: 3, tiers: {Gold: 4.20}}",
        )
        .unwrap();
        let card = &c.cards()[0];
        assert_eq!(card.name, "EUR from 2026-01-01");
        let (scope, p) = card.prices_for("vc", "cl");
        assert_eq!(scope, "card");
        assert_eq!(p.vcpu_day, dec("0.1"));
        assert_eq!(p.ram_gb_day, dec("0.05"));
        assert_eq!(
            p.tiers,
            [dec("0"), dec("0"), dec("0"), dec("4.2"), dec("0")]
        );
        assert_eq!(p.disk, DiskPrice::PerMonth(dec("3")));
        // November has 30 days: 3 / 30 per GB-day.
        assert_eq!(p.disk.per_day(Month::parse("2026-11").unwrap()), dec("0.1"));
    }

    #[test]
    fn a_card_applies_from_its_day_until_the_next_one_starts() {
        let c = cards(
            "- {name: new, currency: EUR, effective_from: 2026-11-15, vcpu_day: 2}\n- {name: old, currency: EUR, effective_from: 2026-01-01, vcpu_day: 1}",
        )
        .unwrap();
        let day = |d: &str| Day::parse(d).unwrap();
        assert_eq!(c.card_on(day("2025-12-31")), None);
        assert_eq!(c.cards()[c.card_on(day("2026-01-01")).unwrap()].name, "old");
        assert_eq!(c.cards()[c.card_on(day("2026-11-14")).unwrap()].name, "old");
        assert_eq!(c.cards()[c.card_on(day("2026-11-15")).unwrap()].name, "new");
        assert_eq!(c.cards()[c.card_on(day("2030-01-01")).unwrap()].name, "new");
    }

    #[test]
    fn the_most_specific_override_wins_price_by_price() {
        let c = cards(
            r#"- name: list
  currency: USD
  effective_from: 2026-01-01
  vcpu_day: 1
  ram_gb_day: 0.1
  tiers: {gold: 5}
  overrides:
    - {vcenter: vc-a, vcpu_day: 2, ram_gb_day: 0.2}
    - {cluster: gpu, vcpu_day: 3}
    - {vcenter: vc-a, cluster: gpu, tiers: {gold: 9}}
"#,
        )
        .unwrap();
        let card = &c.cards()[0];
        let (scope, p) = card.prices_for("vc-b", "other");
        assert_eq!(
            (scope.as_str(), p.vcpu_day, p.ram_gb_day),
            ("card", dec("1"), dec("0.1"))
        );
        let (scope, p) = card.prices_for("vc-a", "other");
        assert_eq!(
            (scope.as_str(), p.vcpu_day, p.ram_gb_day),
            ("vCenter vc-a", dec("2"), dec("0.2"))
        );
        let (scope, p) = card.prices_for("vc-b", "GPU");
        assert_eq!(
            (scope.as_str(), p.vcpu_day, p.ram_gb_day),
            ("cluster gpu", dec("3"), dec("0.1"))
        );
        // vc-a/gpu: gold from the cluster-of-vCenter override, vCPU from the cluster one,
        // RAM from the vCenter one.
        let (scope, p) = card.prices_for("vc-a", "gpu");
        assert_eq!(scope, "vCenter vc-a, cluster gpu");
        assert_eq!(
            (p.tiers[3], p.vcpu_day, p.ram_gb_day),
            (dec("9"), dec("3"), dec("0.2"))
        );
    }

    #[test]
    fn a_bad_card_is_refused_naming_the_card_and_the_field() {
        let err = |yaml: &str| cards(yaml).unwrap_err().to_string();
        assert_eq!(
            err("- {name: list, currency: EUR, effective_from: 2026-01-01, tiers: {platinum: 1}}"),
            "rate_cards[0] (list): `tiers.platinum`: unknown tier `platinum`; the tiers are tin, bronze, silver, gold, none"
        );
        assert!(
            err("- {currency: EURO, effective_from: 2026-01-01}")
                .contains("`currency`: `EURO` is not an ISO 4217")
        );
        assert!(err("- {currency: EUR, effective_from: 2026-13-01}").contains("`effective_from`"));
        assert!(
            err("- {currency: EUR, effective_from: 2026-01-01, vcpu_day: -1}")
                .contains("`vcpu_day`: `-1` is negative")
        );
        assert!(
            err("- {currency: EUR, effective_from: 2026-01-01, vcpu_day: abc}")
                .contains("`vcpu_day`: `abc` is not a decimal")
        );
        assert!(
            err("- {currency: EUR, effective_from: 2026-01-01, disk_gb_day: 1, disk_gb_month: 2}")
                .contains("not both")
        );
        assert!(
            err("- {currency: EUR, effective_from: 2026-01-01, overrides: [{vcpu_day: 1}]}")
                .contains("`overrides[0]`: an override names")
        );
        assert!(err("- {currency: EUR, effective_from: 2026-01-01, overrides: [{cluster: a, vcpu_day: 1}, {cluster: A}]}").contains("same scope as overrides[0]"));
        assert!(err("- {currency: EUR, effective_from: 2026-01-01, overrides: [{cluster: a, tiers: {iron: 1}}]}").contains("`overrides[0].tiers.iron`"));
        assert_eq!(
            err(
                "- {name: a, currency: EUR, effective_from: 2026-01-01}\n- {name: b, currency: USD, effective_from: 2026-01-01}"
            ),
            "rate_cards[1] (b): `effective_from`: 2026-01-01 is also the effective_from of rate card `a`; two cards cannot start on the same day"
        );
        let unknown: Result<Vec<RateCardSpec>, _> =
            serde_yaml::from_str("- {currency: EUR, effective_from: 2026-01-01, cpu_day: 1}");
        assert!(unknown.unwrap_err().to_string().contains("cpu_day"));
    }
}
