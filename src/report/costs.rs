//! The Costs sheets of the daily and monthly workbooks, built from a [`Ledger`]: what the
//! period costs per tenant and per resource pool × vCenter (the "Costs" sheet, with a chart
//! by tenant in the monthly workbook) and per VM with the card that priced it ("VM Costs").
//!
//! Every amount is the sum of the ledger's rounded charges, so each table adds up on paper;
//! each currency closes with its total, the exact (unrounded) total and the difference.
//!
//! Money cells are numbers, not text, so finance can sum and chart them. A cell holds the
//! double nearest to the exact decimal, found by parsing the decimal's own digits (correctly
//! rounded, unlike a mantissa ÷ 10^scale division): an amount of up to 15 significant digits
//! reads back as exactly the digits written. The number format shows the currency's minor
//! digits (0.00 for EUR, 0 for JPY).

use super::charts::insert_stacked;
use super::sheet::Styles;
use super::{Error, on_sheet};
use crate::cost::price::{Charge, Component, Line, QUANTITY_DIGITS};
use crate::cost::{Currency, CurrencyTotal, GroupBy, Ledger, money};
use rust_decimal::Decimal;
use rust_xlsxwriter::{Chart, ChartType, ColNum, Format, RowNum, Workbook, Worksheet, XlsxError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The sheet of totals per tenant and per resource pool × vCenter.
pub const COSTS: &str = "Costs";
/// The sheet of one line per VM, tenant and card scope.
pub const VM_COSTS: &str = "VM Costs";

/// What a daily or monthly workbook says about money.
#[derive(Debug, Clone, Copy)]
pub enum Costs<'a> {
    /// No rate card is configured: no cost sheets and nothing about costs on the cover.
    Unpriced,
    /// The period's charges, already limited to the report's scope.
    Priced(&'a Ledger),
    /// Pricing failed: no cost sheets; the cover gives this reason in one line.
    Failed(&'a str),
}

impl Costs<'_> {
    /// The line the Cover shows about costs, if any.
    pub(super) fn cover_note(&self) -> Option<(&'static str, String)> {
        match self {
            Costs::Unpriced => None,
            Costs::Priced(ledger) => Some((
                "Costs",
                format!(
                    "on the {COSTS} and {VM_COSTS} sheets ({} charges)",
                    ledger.charges.len()
                ),
            )),
            Costs::Failed(reason) => Some(("Costs", format!("not priced: {reason}"))),
        }
    }

    /// The rows of the sheets, for the Cover's counts.
    pub(super) fn row_counts(&self) -> Vec<(&'static str, usize)> {
        match self {
            Costs::Priced(ledger) => vec![(VM_COSTS, vm_lines(ledger).len())],
            Costs::Unpriced | Costs::Failed(_) => Vec::new(),
        }
    }
}

/// How the cost sheets are made, for the Cover's arithmetic lines.
pub(super) const ARITHMETIC: [&str; 3] = [
    "Costs: each VM-day is priced at the rate card in effect that day (the most specific override of its vCenter and cluster); a charge is one VM × tenant × card scope × component (tier VM-days, vCPU-days, RAM GB-days, disk GB-days) over the period.",
    "Each charge is rounded once, half-even, to the currency's minor unit; every line and total is the sum of its rounded charges.",
    "Exact total = the unrounded charges summed, then rounded; Rounding = Total − Exact total.",
];

/// Number formats, made once per currency: money with the currency's minor digits, and
/// quantities with [`QUANTITY_DIGITS`].
struct Formats {
    quantity: Format,
    money: BTreeMap<Currency, Format>,
    bold_money: BTreeMap<Currency, Format>,
    bold: Format,
}

impl Formats {
    fn new(styles: &Styles, ledger: &Ledger) -> Formats {
        let mut money = BTreeMap::new();
        let mut bold_money = BTreeMap::new();
        for charge in &ledger.charges {
            let currency = charge.line.currency;
            money.entry(currency).or_insert_with(|| {
                let format = Format::new().set_num_format(money_format(currency));
                bold_money.insert(currency, format.clone().set_bold());
                format
            });
        }
        let digits = "0".repeat(QUANTITY_DIGITS as usize);
        Formats {
            quantity: Format::new().set_num_format(format!("0.{digits}")),
            money,
            bold_money,
            bold: styles.bold.clone(),
        }
    }

    fn money(&self, currency: Currency, bold: bool) -> &Format {
        let formats = if bold { &self.bold_money } else { &self.money };
        // Every currency of the ledger has its format; the fallback is never used.
        formats.get(&currency).unwrap_or(&self.quantity)
    }
}

/// `0.00` for a currency with two minor digits, `0` for none.
fn money_format(currency: Currency) -> String {
    match currency.minor_units() {
        0 => "0".to_string(),
        digits => format!("0.{}", "0".repeat(digits as usize)),
    }
}

/// The double nearest to `amount`: its digits parsed, which Rust rounds correctly.
fn number(amount: Decimal) -> f64 {
    amount.to_string().parse().unwrap_or(0.0)
}

/// The sums of one line of a table: VM-days, vCPU-days, RAM and disk GB-days, cost.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    vm_days: Decimal,
    vcpu_days: Decimal,
    ram_gb_days: Decimal,
    disk_gb_days: Decimal,
    cost: Decimal,
}

impl Sums {
    fn add(&mut self, charge: &Charge) {
        let slot = match charge.component {
            Component::Vcpu => &mut self.vcpu_days,
            Component::Ram => &mut self.ram_gb_days,
            Component::Disk => &mut self.disk_gb_days,
            _ => &mut self.vm_days,
        };
        *slot += charge.quantity;
        self.cost += charge.cost;
    }
}

/// One row of VM Costs: a ledger line (VM × tenant × card scope) and its charges summed.
struct VmLine<'l> {
    line: &'l Arc<Line>,
    sums: Sums,
}

/// The ledger's lines with their charges summed, in the ledger's order (the charges of a
/// line are adjacent: they are sorted by VM, first day, tenant and component).
fn vm_lines(ledger: &Ledger) -> Vec<VmLine<'_>> {
    let mut lines: Vec<VmLine<'_>> = Vec::new();
    for charge in &ledger.charges {
        match lines.last_mut() {
            Some(last) if Arc::ptr_eq(last.line, &charge.line) => last.sums.add(charge),
            _ => {
                let mut sums = Sums::default();
                sums.add(charge);
                lines.push(VmLine {
                    line: &charge.line,
                    sums,
                });
            }
        }
    }
    lines
}

/// Columns of the quantities and cost, after a table's key columns.
const AMOUNTS: [(&str, f64); 5] = [
    ("vm_days", 10.0),
    ("vcpu_days", 11.0),
    ("ram_gb_days", 13.0),
    ("disk_gb_days", 14.0),
    ("cost", 14.0),
];

/// Writes the cost sheets of `ledger` after the workbook's other sheets; `chart` adds a
/// column chart of the costs by tenant (one per currency).
pub(super) fn write_costs(
    workbook: &mut Workbook,
    styles: &Styles,
    ledger: &Ledger,
    chart: bool,
) -> Result<(), Error> {
    let formats = Formats::new(styles, ledger);
    let totals = ledger.totals();
    let sheet = workbook
        .add_worksheet()
        .set_name(COSTS)
        .map_err(on_sheet(COSTS))?;
    let blocks = write_summary(sheet, &formats, ledger, &totals).map_err(on_sheet(COSTS))?;
    if chart {
        let charts: Vec<Chart> = blocks
            .iter()
            .map(|(currency, first, last)| {
                let mut chart = Chart::new(ChartType::Column);
                chart
                    .title()
                    .set_name(&format!("Costs by tenant ({currency})"));
                chart
                    .add_series()
                    .set_name(&format!("cost ({currency})"))
                    .set_categories((COSTS, *first, 0, *last, 0))
                    .set_values((COSTS, *first, COST_COL, *last, COST_COL));
                chart
            })
            .collect();
        insert_stacked(sheet, CHARTS, &charts).map_err(on_sheet(COSTS))?;
    }
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .and_then(|sheet| sheet.set_name(VM_COSTS))
        .map_err(on_sheet(VM_COSTS))?;
    write_vm_lines(sheet, &formats, ledger, &totals).map_err(on_sheet(VM_COSTS))?;
    Ok(())
}

/// The cost column of the Costs sheet's tables: after two key columns (tenant, or vCenter
/// and pool), the currency and the four quantities.
const COST_COL: ColNum = 2 + AMOUNTS.len() as ColNum;
/// Where the charts go: right of the tables, after a blank column.
const CHARTS: ColNum = COST_COL + 2;

/// The tables by tenant and by resource pool × vCenter, one below the other. Returns the
/// rows of each currency's tenant lines, for the chart.
fn write_summary(
    sheet: &mut Worksheet,
    formats: &Formats,
    ledger: &Ledger,
    totals: &[CurrencyTotal],
) -> Result<Vec<(Currency, RowNum, RowNum)>, XlsxError> {
    for (col, width) in (0..).zip([24.0, 20.0, 9.0]) {
        sheet.set_column_width(col, width)?;
    }
    for (col, (_, width)) in (3..).zip(AMOUNTS) {
        sheet.set_column_width(col, width)?;
    }
    let mut row: RowNum = 0;
    sheet.write_string_with_format(row, 0, "Costs by tenant", &formats.bold)?;
    row += 1;
    header(sheet, formats, row, &["tenant", "", "currency"])?;
    let tenants = ledger.lines(GroupBy::Tenant);
    let mut blocks: Vec<(Currency, RowNum, RowNum)> = Vec::new();
    for line in &tenants {
        row += 1;
        let currency = Currency::parse(&line.currency);
        if let Some(currency) = currency {
            match blocks.last_mut() {
                Some((c, _, last)) if *c == currency => *last = row,
                _ => blocks.push((currency, row, row)),
            }
        }
        sheet.write_string(row, 0, line.tenant.as_deref().unwrap_or_default())?;
        let sums = Sums {
            vm_days: line.vm_days,
            vcpu_days: line.vcpu_days,
            ram_gb_days: line.ram_gb_days,
            disk_gb_days: line.disk_gb_days,
            cost: line.cost,
        };
        amounts_at(sheet, formats, row, 2, currency, &sums, false)?;
    }
    row = write_totals(sheet, formats, row, totals, 2)?;

    row += 2;
    sheet.write_string_with_format(row, 0, "Costs by resource pool and vCenter", &formats.bold)?;
    row += 1;
    header(
        sheet,
        formats,
        row,
        &["vcenter", "resource_pool", "currency"],
    )?;
    for line in ledger.lines(GroupBy::Pool) {
        row += 1;
        sheet.write_string(row, 0, line.vcenter.as_deref().unwrap_or_default())?;
        sheet.write_string(row, 1, line.resource_pool.as_deref().unwrap_or_default())?;
        let sums = Sums {
            vm_days: line.vm_days,
            vcpu_days: line.vcpu_days,
            ram_gb_days: line.ram_gb_days,
            disk_gb_days: line.disk_gb_days,
            cost: line.cost,
        };
        amounts_at(
            sheet,
            formats,
            row,
            2,
            Currency::parse(&line.currency),
            &sums,
            false,
        )?;
    }
    row = write_totals(sheet, formats, row, totals, 2)?;

    row += 2;
    sheet.write_string_with_format(row, 0, "Rate cards used", &formats.bold)?;
    row += 1;
    for (col, title) in (0..).zip(["card", "effective_from", "currency"]) {
        sheet.write_string_with_format(row, col, title, &formats.bold)?;
    }
    for card in &ledger.cards {
        row += 1;
        sheet.write_string(row, 0, &card.name)?;
        sheet.write_string(row, 1, card.effective_from.to_string())?;
        sheet.write_string(row, 2, card.currency.code())?;
    }
    Ok(blocks)
}

/// A table's header: its key columns, then the amounts.
fn header(
    sheet: &mut Worksheet,
    formats: &Formats,
    row: RowNum,
    keys: &[&str; 3],
) -> Result<(), XlsxError> {
    for (col, title) in (0..).zip(keys.iter().copied().chain(AMOUNTS.map(|(h, _)| h))) {
        if !title.is_empty() {
            sheet.write_string_with_format(row, col, title, &formats.bold)?;
        }
    }
    Ok(())
}

/// The currency (at `col`), quantities and cost of one table row.
fn amounts_at(
    sheet: &mut Worksheet,
    formats: &Formats,
    row: RowNum,
    col: ColNum,
    currency: Option<Currency>,
    sums: &Sums,
    bold: bool,
) -> Result<(), XlsxError> {
    let Some(currency) = currency else {
        return Ok(());
    };
    sheet.write_string(row, col, currency.code())?;
    let quantities = [
        sums.vm_days,
        sums.vcpu_days,
        sums.ram_gb_days,
        sums.disk_gb_days,
    ];
    for (c, q) in (col + 1..).zip(quantities) {
        let shown = money::shown(q, QUANTITY_DIGITS);
        sheet.write_number_with_format(row, c, number(shown), &formats.quantity)?;
    }
    sheet.write_number_with_format(
        row,
        col + 5,
        number(sums.cost),
        formats.money(currency, bold),
    )?;
    Ok(())
}

/// Per currency, three rows after `row`: the total (the sum of the rounded charges), the
/// exact total and the rounding, labelled in column 0, the currency in `currency_col` and
/// the amount under the cost column after it. Returns the last row.
fn write_totals(
    sheet: &mut Worksheet,
    formats: &Formats,
    mut row: RowNum,
    totals: &[CurrencyTotal],
    currency_col: ColNum,
) -> Result<RowNum, XlsxError> {
    for total in totals {
        let Some(currency) = Currency::parse(&total.currency) else {
            continue;
        };
        let cost_col = currency_col + AMOUNTS.len() as ColNum;
        for (label, amount) in [
            ("Total", total.cost),
            ("Exact total (unrounded charges summed)", total.unrounded),
            ("Rounding (Total − Exact total)", total.rounding),
        ] {
            row += 1;
            sheet.write_string_with_format(row, 0, label, &formats.bold)?;
            sheet.write_string(row, currency_col, currency.code())?;
            sheet.write_number_with_format(
                row,
                cost_col,
                number(amount),
                formats.money(currency, true),
            )?;
        }
    }
    Ok(row)
}

/// The columns of VM Costs: its keys, then the currency and the amounts.
const VM_KEYS: [(&str, f64); 11] = [
    ("vcenter", 24.0),
    ("vm_id", 12.0),
    ("name", 28.0),
    ("tenant", 18.0),
    ("resource_pool", 16.0),
    ("datacenter", 14.0),
    ("cluster", 14.0),
    ("card", 20.0),
    ("scope", 26.0),
    ("first_day", 11.0),
    ("last_day", 11.0),
];

/// One row per ledger line (VM × tenant × card scope), top to bottom as constant-memory
/// sheets require, then the totals per currency.
fn write_vm_lines(
    sheet: &mut Worksheet,
    formats: &Formats,
    ledger: &Ledger,
    totals: &[CurrencyTotal],
) -> Result<(), XlsxError> {
    let keys = VM_KEYS.len() as ColNum;
    for (col, (title, width)) in (0..).zip(VM_KEYS) {
        sheet.set_column_width(col, width)?;
        sheet.write_string_with_format(0, col, title, &formats.bold)?;
    }
    sheet.write_string_with_format(0, keys, "currency", &formats.bold)?;
    for (col, (title, width)) in (keys + 1..).zip(AMOUNTS) {
        sheet.set_column_width(col, width)?;
        sheet.write_string_with_format(0, col, title, &formats.bold)?;
    }
    let mut row: RowNum = 0;
    for VmLine { line, sums } in vm_lines(ledger) {
        row += 1;
        let p = &line.placement;
        let first = line.first_day.to_string();
        let last = line.last_day.to_string();
        let cells: [&str; 11] = [
            &line.vcenter,
            &line.vm_id,
            &p.name,
            &line.tenant,
            &p.resource_pool,
            &p.datacenter,
            &p.cluster,
            &line.card,
            &line.scope,
            &first,
            &last,
        ];
        for (col, text) in (0..).zip(cells) {
            sheet.write_string(row, col, text)?;
        }
        amounts_at(sheet, formats, row, keys, Some(line.currency), &sums, false)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, row, keys + AMOUNTS.len() as ColNum)?;
    write_totals(sheet, formats, row + 1, totals, keys)?;
    Ok(())
}
