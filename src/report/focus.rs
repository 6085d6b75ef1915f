//! The month's charges as a FinOps FOCUS 1.2 cost and usage CSV.
//!
//! FOCUS 1.2 is the newest version whose column definitions were available to us: the
//! FinOps Foundation's FOCUS_Spec repository at tag `v1.2` (`specification/columns/*.md`,
//! with the Date/Time, Numeric, Unit and Key-Value formats in `specification/attributes/`).
//!
//! One row per charge: one VM × tenant × card scope × component over the days of the month
//! it covers. Every Mandatory column is present, with the Conditional and Recommended ones
//! that apply to priced VM usage. Types as the spec writes them:
//! - Decimal: plain decimal text (`12.34`, never an exponent or a thousands separator);
//!   costs carry the currency's minor digits, prices and quantities their exact digits;
//! - Date/Time: `YYYY-MM-DDTHH:mm:ssZ` in UTC; charge and billing periods are inclusive
//!   starts and exclusive ends;
//! - Key-Value (Tags): a JSON object of strings;
//! - null: an empty field (the spec forbids placeholders for null).
//!
//! There is no discount in vctp: BilledCost = EffectiveCost = ContractedCost = the rounded
//! charge, ListUnitPrice = ContractedUnitPrice = the card's price, and ListCost =
//! ListUnitPrice × PricingQuantity rounded half-even to the minor unit.
//!
//! Text is written as is, without the leading `'` the spreadsheet CSV twins put before a
//! would-be formula: FOCUS files feed FinOps tools, and the spec forbids altering values.

use crate::cost::price::{Charge, Component};
use crate::cost::{Ledger, Period};
use rust_decimal::Decimal;

/// The FOCUS version the CSV follows.
pub const FOCUS_VERSION: &str = "1.2";

/// Who provides, publishes and invoices the charges: the vSphere estate vctp prices.
const PROVIDER: &str = "vSphere";
const PUBLISHER: &str = "VMware";
const INVOICE_ISSUER: &str = "vctp";
const BILLING_ACCOUNT_ID: &str = "vctp";
const BILLING_ACCOUNT_NAME: &str = "vctp chargeback";
const SERVICE: &str = "vSphere virtual machines";
/// Prefix of the provider-defined tag keys (the spec wants one per provider tag scheme).
const TAG_PREFIX: &str = "vctp/";

/// The columns, in the spec's (alphabetical) order.
pub const COLUMNS: [&str; 39] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the FOCUS CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("failed to serialize the FOCUS tags: {0}")]
    Tags(#[from] serde_json::Error),
}

/// A unit in the spec's Unit Format: `<singular-unit>-<plural-time-units>`.
fn focus_unit(unit: &str) -> &'static str {
    match unit {
        "VM-day" => "VM-Days",
        "vCPU-day" => "vCPU-Days",
        "GB-month" => "GB-Months",
        _ => "GB-Days",
    }
}

/// `2026-11-01T00:00:00Z`.
fn datetime(day: crate::aggregate::Day) -> String {
    format!("{day}T00:00:00Z")
}

/// A decimal as plain text without trailing zeros: `0.5`, `12`, never `1E-7`.
fn plain(value: Decimal) -> String {
    value.normalize().to_string()
}

/// The FOCUS rows of `ledger`, the charges of `period`, as CSV bytes with a header row.
pub fn focus_csv(ledger: &Ledger, period: Period) -> Result<Vec<u8>, super::Error> {
    Ok(write(ledger, period)?)
}

fn write(ledger: &Ledger, period: Period) -> Result<Vec<u8>, Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS)?;
    let billing_start = datetime(period.month().first_day());
    let billing_end = datetime(period.month().end_day());
    for charge in &ledger.charges {
        out.write_record(row(charge, &billing_start, &billing_end)?)?;
    }
    out.into_inner()
        .map_err(|e| Error::Csv(csv::Error::from(e.into_error())))
}

fn row(charge: &Charge, billing_start: &str, billing_end: &str) -> Result<[String; 39], Error> {
    let line = &*charge.line;
    let p = &line.placement;
    let currency = line.currency;
    let component = charge.component;
    let list_cost = currency.round(charge.unit_price * charge.pricing_quantity);
    let cost = charge.cost.to_string();
    let price = plain(charge.unit_price);
    let what = match component {
        Component::Vcpu => "vCPU-days",
        Component::Ram => "RAM GB-days",
        Component::Disk => "provisioned disk GB-days",
        tier => tier.as_str(),
    };
    let what = if component.is_vm_days() {
        format!("{what} VM-days")
    } else {
        what.to_string()
    };
    let description = format!(
        "{what} of VM {} ({}) at {} {}",
        line.vm_id, p.name, line.card, line.scope
    );
    let tags: serde_json::Map<String, serde_json::Value> = [
        ("vcenter", &*line.vcenter),
        ("datacenter", &p.datacenter),
        ("cluster", &p.cluster),
        ("resource_pool", &p.resource_pool),
        ("folder", &p.folder),
        ("tenant", &*line.tenant),
        ("card", &*line.card),
        ("scope", &*line.scope),
    ]
    .into_iter()
    .map(|(key, value)| (format!("{TAG_PREFIX}{key}"), value.into()))
    .collect();
    Ok([
        cost.clone(),
        BILLING_ACCOUNT_ID.to_string(),
        BILLING_ACCOUNT_NAME.to_string(),
        currency.code().to_string(),
        billing_end.to_string(),
        billing_start.to_string(),
        "Usage".to_string(),
        String::new(),
        description,
        "Usage-Based".to_string(),
        datetime(line.last_day.next()),
        datetime(line.first_day),
        plain(charge.quantity),
        focus_unit(component.unit()).to_string(),
        cost.clone(),
        price.clone(),
        cost,
        INVOICE_ISSUER.to_string(),
        list_cost.to_string(),
        price,
        "Standard".to_string(),
        plain(charge.pricing_quantity),
        focus_unit(charge.pricing_unit).to_string(),
        PROVIDER.to_string(),
        PUBLISHER.to_string(),
        line.vcenter.to_string(),
        p.datacenter.clone(),
        format!("{}/{}", line.vcenter, line.vm_id),
        p.name.clone(),
        "Virtual Machine".to_string(),
        "Compute".to_string(),
        SERVICE.to_string(),
        "Virtual Machines".to_string(),
        format!("vm-{}", component.as_str()),
        format!("{}/{}/{}", line.card, line.scope, component.as_str()),
        line.tenant.to_string(),
        line.tenant.to_string(),
        "Tenant".to_string(),
        serde_json::to_string(&tags)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Day, Month, PlacementRef};
    use crate::cost::card::RateCardSpec;
    use crate::cost::tenant::TenantRuleSpec;
    use crate::cost::{DayUse, Pricer, Pricing, RateCards, TenantRules, Usage};
    use std::collections::{BTreeMap, HashMap};

    /// VM vm-1 of tenant acme, gold all day with 2 vCPUs and 50 GB of disk, on 2026-11-14
    /// (card A) and 2026-11-15 (card B, twice the gold and vCPU prices).
    fn ledger() -> Ledger {
        let cards: Vec<RateCardSpec> = serde_yaml::from_str(
            r#"
- {name: A, currency: EUR, effective_from: 2026-01-01, tiers: {gold: 1}, vcpu_day: "0.10", disk_gb_month: 3}
- {name: B, currency: EUR, effective_from: 2026-11-15, tiers: {gold: 2}, vcpu_day: "0.20", disk_gb_month: 3}
"#,
        )
        .unwrap();
        let rules: Vec<TenantRuleSpec> =
            serde_yaml::from_str("[{tenant: acme, folder_prefix: /DC1/vm/acme}]").unwrap();
        let pricing = Pricing {
            cards: RateCards::from_specs(&cards).unwrap(),
            rules: TenantRules::from_specs(&rules).unwrap(),
        };
        let month = Month::parse("2026-11").unwrap();
        let mut pricer = Pricer::new(&pricing, Period::Month(month)).unwrap();
        let none = BTreeMap::new();
        for day in ["2026-11-14", "2026-11-15"] {
            pricer.add(&DayUse {
                day: Day::parse(day).unwrap(),
                vcenter: "vc-a",
                vm_id: "vm-1",
                placement: PlacementRef {
                    vm_uuid: "u-1",
                    name: "web-01",
                    resource_pool: "Gold",
                    datacenter: "DC1",
                    cluster: "C1",
                    folder: "/DC1/vm/acme",
                },
                usage: Usage {
                    samples_present: 24,
                    total_samples: 24,
                    samples_powered_on: 24,
                    samples_template: 0,
                    samples_placeholder: 0,
                    avg_vcpu_count: 2.0,
                    avg_ram_gb: 0.0,
                    avg_provisioned_disk: 50.0,
                    tier_days: [0.0, 0.0, 0.0, 1.0],
                },
                attributes: &none,
            });
        }
        pricer.finish().unwrap()
    }

    fn rows() -> Vec<HashMap<String, String>> {
        let period = Period::Month(Month::parse("2026-11").unwrap());
        let bytes = focus_csv(&ledger(), period).unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, COLUMNS);
        reader
            .records()
            .map(|r| {
                header
                    .iter()
                    .cloned()
                    .zip(r.unwrap().iter().map(String::from))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn each_charge_is_one_row_with_its_period_prices_and_placement() {
        let rows = rows();
        // Per card: gold, vCPU and disk (no RAM was used).
        let seen: Vec<(&str, &str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["SkuId"].as_str(),
                    r["BilledCost"].as_str(),
                    r["PricingQuantity"].as_str(),
                    r["ChargePeriodStart"].as_str(),
                )
            })
            .collect();
        // A: 1 gold VM-day × 1 = 1.00; 2 vCPU-days × 0.10 = 0.20; 50 GB-days = 50/30
        // GB-months × 3 = 5.00. B: 1 × 2 = 2.00; 2 × 0.20 = 0.40; disk 5.00 again.
        assert_eq!(
            seen,
            [
                ("vm-gold", "1.00", "1", "2026-11-14T00:00:00Z"),
                ("vm-vcpu", "0.20", "2", "2026-11-14T00:00:00Z"),
                (
                    "vm-disk",
                    "5.00",
                    "1.6666666666666666666666666667",
                    "2026-11-14T00:00:00Z"
                ),
                ("vm-gold", "2.00", "1", "2026-11-15T00:00:00Z"),
                ("vm-vcpu", "0.40", "2", "2026-11-15T00:00:00Z"),
                (
                    "vm-disk",
                    "5.00",
                    "1.6666666666666666666666666667",
                    "2026-11-15T00:00:00Z"
                ),
            ]
        );
        let disk = &rows[2];
        for (column, value) in [
            ("BilledCost", "5.00"),
            ("EffectiveCost", "5.00"),
            ("ContractedCost", "5.00"),
            // 3 × 1.6666666666666666666666666667 = 5.0000000000000000000000000001 → 5.00
            ("ListCost", "5.00"),
            ("ListUnitPrice", "3"),
            ("ContractedUnitPrice", "3"),
            ("PricingUnit", "GB-Months"),
            ("ConsumedQuantity", "50"),
            ("ConsumedUnit", "GB-Days"),
            ("BillingCurrency", "EUR"),
            ("BillingPeriodStart", "2026-11-01T00:00:00Z"),
            ("BillingPeriodEnd", "2026-12-01T00:00:00Z"),
            ("ChargePeriodEnd", "2026-11-15T00:00:00Z"),
            ("ChargeCategory", "Usage"),
            ("ChargeClass", ""),
            ("ResourceId", "vc-a/vm-1"),
            ("ResourceName", "web-01"),
            ("RegionId", "vc-a"),
            ("RegionName", "DC1"),
            ("SubAccountId", "acme"),
            ("SubAccountName", "acme"),
            ("SkuPriceId", "A/card/disk"),
        ] {
            assert_eq!(disk[column], value, "{column}");
        }
        assert_eq!(
            disk["Tags"],
            r#"{"vctp/card":"A","vctp/cluster":"C1","vctp/datacenter":"DC1","vctp/folder":"/DC1/vm/acme","vctp/resource_pool":"Gold","vctp/scope":"card","vctp/tenant":"acme","vctp/vcenter":"vc-a"}"#
        );
        assert_eq!(rows[3]["PricingUnit"], "VM-Days");
        assert_eq!(rows[4]["PricingUnit"], "vCPU-Days");
    }
}
