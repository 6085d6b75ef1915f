//! UTC days and months as half-open ranges of Unix seconds.

use chrono::{Datelike, Months, NaiveDate};
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    Date(String),
    #[error("invalid month {0:?}: expected YYYY-MM")]
    Month(String),
    #[error("{0} is outside the supported range of dates (1970-01-01 to 9999-12-31 UTC)")]
    OutOfRange(String),
}

/// The first second vctp accepts from input: 1970-01-01T00:00:00Z. vSphere has nothing
/// older, and every time computed from an accepted one (a day's end, 45 days back, an
/// hour's start) then stays far from `i64`'s ends, so that arithmetic cannot overflow.
pub const EARLIEST: i64 = 0;
/// The last second vctp accepts from input: 9999-12-31T23:59:59Z, the last four-digit year.
pub const LATEST: i64 = 253_402_300_799;

/// `t` when it lies in [`EARLIEST`]..=[`LATEST`].
pub fn check_time(t: i64) -> Result<i64, Error> {
    if (EARLIEST..=LATEST).contains(&t) {
        Ok(t)
    } else {
        Err(Error::OutOfRange(t.to_string()))
    }
}

/// One UTC day, `[00:00, 24:00)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

impl Day {
    pub fn parse(text: &str) -> Result<Day, Error> {
        let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(Day)
            .map_err(|_| Error::Date(text.to_string()))?;
        check_time(day.start())?;
        Ok(day)
    }

    /// The day containing Unix time `t`.
    pub fn containing(t: i64) -> Result<Day, Error> {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|dt| Day(dt.date_naive()))
            .ok_or_else(|| Error::OutOfRange(t.to_string()))
    }

    pub fn start(self) -> i64 {
        self.0
            .and_hms_opt(0, 0, 0)
            .map_or(0, |dt| dt.and_utc().timestamp())
    }

    pub fn end(self) -> i64 {
        self.start() + 86_400
    }

    pub fn next(self) -> Day {
        Day(self.0.succ_opt().unwrap_or(self.0))
    }

    /// The same day of the month `months` months earlier (clamped to the month's end).
    pub fn months_before(self, months: u32) -> Result<Day, Error> {
        self.0
            .checked_sub_months(Months::new(months))
            .map(Day)
            .ok_or_else(|| Error::OutOfRange(format!("{self} minus {months} months")))
    }

    pub fn month(self) -> Month {
        Month(self.0.with_day(1).unwrap_or(self.0))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// One UTC calendar month, held as its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(NaiveDate);

impl Month {
    pub fn parse(text: &str) -> Result<Month, Error> {
        let month = NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
            .map(Month)
            .map_err(|_| Error::Month(text.to_string()))?;
        check_time(month.start())?;
        Ok(month)
    }

    pub fn first_day(self) -> Day {
        Day(self.0)
    }

    /// The first day of the next month.
    pub fn end_day(self) -> Day {
        Day(self.0.checked_add_months(Months::new(1)).unwrap_or(self.0))
    }

    pub fn start(self) -> i64 {
        self.first_day().start()
    }

    pub fn end(self) -> i64 {
        self.end_day().start()
    }

    pub fn days(self) -> impl Iterator<Item = Day> {
        let end = self.end_day();
        std::iter::successors(Some(self.first_day()), |d| Some(d.next()))
            .take_while(move |d| *d < end)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_86400_seconds_from_utc_midnight() {
        let day = Day::parse("2026-03-29").unwrap();
        assert_eq!(day.start(), 1_774_742_400);
        assert_eq!(day.end() - day.start(), 86_400);
        assert_eq!(Day::containing(day.end() - 1).unwrap(), day);
        assert_eq!(Day::containing(day.end()).unwrap(), day.next());
        assert_eq!(
            day.months_before(12).unwrap(),
            Day::parse("2025-03-29").unwrap()
        );
        let end_of_march = Day::parse("2026-03-31").unwrap();
        assert_eq!(
            end_of_march.months_before(1).unwrap(),
            Day::parse("2026-02-28").unwrap()
        );
    }

    #[test]
    fn months_know_their_length_including_leap_februaries() {
        assert_eq!(Month::parse("2024-02").unwrap().days().count(), 29);
        assert_eq!(Month::parse("2025-02").unwrap().days().count(), 28);
        let december = Month::parse("2025-12").unwrap();
        assert_eq!(december.days().count(), 31);
        assert_eq!(december.end(), Day::parse("2026-01-01").unwrap().start());
        assert_eq!(december.to_string(), "2025-12");
    }

    #[test]
    fn malformed_dates_and_months_are_rejected_with_the_expected_form() {
        assert_eq!(
            Day::parse("2025-13-01").unwrap_err().to_string(),
            "invalid date \"2025-13-01\": expected YYYY-MM-DD"
        );
        assert!(Month::parse("2025-1-x").is_err());
        assert!(Month::parse("2025-00").is_err());
    }

    #[test]
    fn days_and_months_outside_1970_to_9999_are_out_of_range() {
        for text in ["1969-12-31", "+10000-01-01", "-0001-01-01"] {
            let error = Day::parse(text).unwrap_err();
            assert!(
                matches!(error, Error::OutOfRange(_) | Error::Date(_)),
                "{text}: {error}"
            );
        }
        assert!(matches!(
            Day::parse("1969-12-31"),
            Err(Error::OutOfRange(_))
        ));
        assert!(matches!(Month::parse("1969-12"), Err(Error::OutOfRange(_))));
        assert_eq!(Day::parse("9999-12-31").unwrap().end() - 1, LATEST);
        assert_eq!(Day::parse("1970-01-01").unwrap().start(), EARLIEST);
        assert!(check_time(LATEST + 1).is_err() && check_time(EARLIEST - 1).is_err());
    }
}
