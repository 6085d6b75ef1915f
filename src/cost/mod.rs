//! Money (issue 17): effective-dated rate cards, tenant rules, and the pricing of stored daily
//! summaries into charges. Amounts are exact decimals; rounding happens once per charge.

pub mod card;
pub mod money;
pub mod price;
pub mod tenant;

pub use card::{RateCardSpec, RateCards};
pub use money::Currency;
pub use price::{
    Charge, CostLine, CurrencyTotal, DayUse, GroupBy, Ledger, Period, Pricer, Pricing, Usage,
};
pub use tenant::{TenantRuleSpec, TenantRules, UNASSIGNED};
