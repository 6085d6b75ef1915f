//! Currencies and the one rounding rule: half-even to the currency's minor unit (ISO 4217).

use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// Active ISO 4217 codes and their minor units (digits after the decimal point).
#[rustfmt::skip]
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2), ("BRL", 2),
    ("BSD", 2), ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2),
    ("CHE", 2), ("CHF", 2), ("CHW", 2), ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2),
    ("COU", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2),
    ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2),
    ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0),
    ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2),
    ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3),
    ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0),
    ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2),
    ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2),
    ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2),
    ("MXV", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2),
    ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2),
    ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2),
    ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2),
    ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2),
    ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2),
    ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2),
    ("USN", 2), ("UYI", 0), ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VED", 2), ("VES", 2),
    ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0),
    ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

impl Currency {
    /// The currency of an ISO 4217 code (upper case, as the standard writes it).
    pub fn parse(code: &str) -> Option<Currency> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, minor_units)| Currency { code, minor_units })
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point of the currency's minor unit (2 for EUR, 0 for JPY).
    pub fn minor_units(self) -> u32 {
        self.minor_units
    }

    /// `amount` rounded half-even to the minor unit: the only rounding money ever gets.
    pub fn round(self, amount: Decimal) -> Decimal {
        let mut rounded =
            amount.round_dp_with_strategy(self.minor_units, RoundingStrategy::MidpointNearestEven);
        // Always carry exactly the minor digits, so 3 EUR prints as 3.00.
        rounded.rescale(self.minor_units);
        rounded
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// A stored figure (an `f64` in the database) as the shortest decimal that reads back as the
/// same float, e.g. `0.1` rather than the float's exact binary expansion.
pub fn figure(value: f64) -> Decimal {
    if !value.is_finite() || value == 0.0 {
        return Decimal::ZERO;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value);
    let parsed = if text.contains('e') {
        Decimal::from_scientific(text)
    } else {
        text.parse::<Decimal>()
    };
    // Beyond Decimal's 28 digits (|x| < 1e-28 or > 7.9e28) no VM figure goes; such a value is
    // read as its nearest representable decimal.
    parsed
        .ok()
        .or_else(|| Decimal::from_f64_retain(value))
        .unwrap_or(Decimal::ZERO)
        .normalize()
}

/// `amount` with exactly `digits` decimals, half-even: how quantities are shown to a person.
pub fn shown(amount: Decimal, digits: u32) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(digits, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(digits);
    rounded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::parse("EUR").unwrap().minor_units(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert!(Currency::parse("eur").is_none());
        assert!(Currency::parse("XYZ").is_none());
    }

    #[test]
    fn rounding_is_half_even_at_the_minor_unit_and_keeps_its_digits() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(eur.round(dec("0.125")).to_string(), "0.12");
        assert_eq!(eur.round(dec("0.135")).to_string(), "0.14");
        assert_eq!(eur.round(dec("0.1251")).to_string(), "0.13");
        assert_eq!(eur.round(dec("-0.125")).to_string(), "-0.12");
        assert_eq!(eur.round(dec("3")).to_string(), "3.00");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.round(dec("2.5")).to_string(), "2");
        assert_eq!(jpy.round(dec("3.5")).to_string(), "4");
    }

    #[test]
    fn figures_read_as_their_shortest_round_trip_digits() {
        assert_eq!(figure(0.1).to_string(), "0.1");
        assert_eq!(figure(1.0 / 3.0).to_string(), "0.3333333333333333");
        assert_eq!(figure(4096.0 / 1024.0).to_string(), "4");
        assert_eq!(figure(1e-7).to_string(), "0.0000001");
        assert_eq!(figure(f64::NAN), Decimal::ZERO);
        assert_eq!(shown(dec("1.23456"), 4).to_string(), "1.2346");
        assert_eq!(shown(dec("2"), 4).to_string(), "2.0000");
    }
}
