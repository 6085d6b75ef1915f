//! Schedule math for `SnapshotSchedule`, `MetricsExport` and `vctp standalone`'s exports:
//! five-field cron expressions in an IANA time zone, and what to do at a given moment given
//! the last tick handled (run, skip missed ticks, or wait). Pure: the caller passes the clock
//! in.
//!
//! Daylight saving time: a tick whose local time falls into a spring-forward gap runs at the
//! first instant after the gap (a daily 02:30 job still runs that day, at 03:00); a tick in
//! a fall-back overlap runs once, at its first occurrence.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid schedule {expression:?}: {message} (five fields: minute hour day-of-month month day-of-week)"
    )]
    Cron { expression: String, message: String },
    #[error("unknown time zone {0:?}: use an IANA name such as UTC or Europe/Berlin")]
    TimeZone(String),
}

impl Error {
    /// A stable short name for Events and status conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Cron { .. } => "InvalidSchedule",
            Error::TimeZone(_) => "InvalidTimeZone",
        }
    }
}

/// A cron schedule in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    schedule: cron::Schedule,
    zone: Tz,
}

/// How far a single search may walk before giving up (an expression like `0 0 30 2 *`
/// never fires).
const SEARCH_LIMIT: usize = 1_000;

impl CronSchedule {
    /// Parses a standard five-field expression (`30 2 * * *`) and an IANA zone name.
    pub fn parse(expression: &str, time_zone: &str) -> Result<CronSchedule, Error> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(Error::Cron {
                expression: expression.to_string(),
                message: format!("has {fields} fields"),
            });
        }
        // The cron crate wants seconds first.
        let schedule = format!("0 {expression}")
            .parse::<cron::Schedule>()
            .map_err(|e| Error::Cron {
                expression: expression.to_string(),
                message: e.to_string(),
            })?;
        let zone = time_zone
            .parse::<Tz>()
            .map_err(|_| Error::TimeZone(time_zone.to_string()))?;
        Ok(CronSchedule { schedule, zone })
    }

    /// The local wall-clock time `naive` as an instant: a time in a DST gap moves to the end
    /// of the gap, an ambiguous one takes its first occurrence.
    fn instant(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut probe = naive;
        // Gaps are at most a few hours; step minute by minute to the first valid time.
        for _ in 0..=24 * 60 {
            match self.zone.from_local_datetime(&probe) {
                LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
                LocalResult::None => probe += Duration::minutes(1),
            }
        }
        None
    }

    /// Ticks strictly after `after`, in order.
    pub fn ticks_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        // Walk local wall-clock times as if they were UTC (so the crate never skips a gap),
        // starting a little before `after` so ticks inside a DST overlap are not missed.
        let local = after.with_timezone(&self.zone).naive_local() - Duration::hours(3);
        let start = Utc.from_utc_datetime(&local);
        let mut last = after;
        self.schedule
            .after_owned(start)
            .take(SEARCH_LIMIT)
            .filter_map(move |wall| self.instant(wall.naive_utc()))
            .filter(move |t| {
                let keep = *t > last;
                if keep {
                    last = *t;
                }
                keep
            })
    }

    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.ticks_after(after).next()
    }

    /// The latest tick in `(after, until]`.
    pub fn latest_in(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.ticks_after(after).take_while(|t| *t <= until).last()
    }

    /// The latest tick in `(after, until]`, looked for in widening spans before `until` (an
    /// hour, a day, then all of it): the forward walk is bounded, so a schedule ticking every
    /// minute over a month would otherwise stop short of the latest tick.
    pub fn latest_before(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        for span in [Duration::hours(1), Duration::days(1)] {
            let from = (until - span).max(after);
            if let Some(tick) = self.latest_in(from, until) {
                return Some(tick);
            }
            if from == after {
                return None;
            }
        }
        self.latest_in(after, until)
    }
}

/// What to do with ticks that were missed (the operator was down, or the schedule was
/// suspended) by more than the starting deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickPolicy {
    /// Do not run them; wait for the next tick.
    #[default]
    Skip,
    /// Run the latest of them once.
    RunOnce,
}

/// The decision at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The tick to run now, if any. Job names derive from it, so running a tick twice
    /// (after a restart) finds the Jobs already there.
    pub run: Option<DateTime<Utc>>,
    /// The latest tick that is now handled (run or skipped): the next decision starts after it.
    pub handled: Option<DateTime<Utc>>,
    /// Ticks passed over without running.
    pub skipped: usize,
    /// When to decide again.
    pub next: Option<DateTime<Utc>>,
}

/// Decides what to do at `now`. `last_handled` is the last tick run or skipped (None: the
/// schedule is new, count from `created`); a tick older than `starting_deadline` is missed.
pub fn decide(
    schedule: &CronSchedule,
    last_handled: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    starting_deadline: Option<Duration>,
    policy: MissedTickPolicy,
    suspended: bool,
) -> Decision {
    let from = last_handled.unwrap_or(created);
    let next = schedule.next_after(now);
    let due: Vec<DateTime<Utc>> = schedule
        .ticks_after(from)
        .take_while(|t| *t <= now)
        .collect();
    let Some(&latest) = due.last() else {
        return Decision {
            run: None,
            handled: last_handled,
            skipped: 0,
            next,
        };
    };
    let missed = starting_deadline.is_some_and(|deadline| now - latest > deadline);
    let run = (!suspended && (!missed || policy == MissedTickPolicy::RunOnce)).then_some(latest);
    Decision {
        run,
        handled: Some(latest),
        skipped: due.len() - usize::from(run.is_some()),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_tick_of_a_frequent_schedule_is_found_over_a_long_horizon() {
        let every_minute = CronSchedule::parse("* * * * *", "UTC").unwrap();
        let until: DateTime<Utc> = "2026-03-31T10:15:30Z".parse().unwrap();
        let after = until - Duration::days(31);
        assert_eq!(
            every_minute.latest_before(after, until),
            Some("2026-03-31T10:15:00Z".parse().unwrap())
        );
        let daily = CronSchedule::parse("0 3 * * *", "UTC").unwrap();
        assert_eq!(
            daily.latest_before(after, until),
            Some("2026-03-31T03:00:00Z".parse().unwrap())
        );
        let yearly = CronSchedule::parse("0 0 1 1 *", "UTC").unwrap();
        assert_eq!(yearly.latest_before(after, until), None);
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn expressions_need_five_valid_fields_and_a_known_zone() {
        assert!(CronSchedule::parse("0 * * * *", "UTC").is_ok());
        let err = CronSchedule::parse("0 0 * * * *", "UTC").unwrap_err();
        assert_eq!(err.reason(), "InvalidSchedule");
        assert!(err.to_string().contains("has 6 fields"), "{err}");
        assert!(CronSchedule::parse("61 * * * *", "UTC").is_err());
        let err = CronSchedule::parse("0 * * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(err.reason(), "InvalidTimeZone");
    }

    #[test]
    fn ticks_follow_the_time_zone() {
        let daily = CronSchedule::parse("30 0 * * *", "Europe/Berlin").unwrap();
        // 00:30 in Berlin in winter is 23:30 UTC the day before.
        assert_eq!(
            daily.next_after(at("2026-01-10T12:00:00Z")),
            Some(at("2026-01-10T23:30:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-07-10T12:00:00Z")),
            Some(at("2026-07-10T22:30:00Z"))
        );
        let hourly = CronSchedule::parse("5 * * * *", "UTC").unwrap();
        assert_eq!(
            hourly.next_after(at("2026-01-10T12:05:00Z")),
            Some(at("2026-01-10T13:05:00Z"))
        );
    }

    #[test]
    fn a_tick_in_the_spring_forward_gap_runs_at_the_end_of_the_gap() {
        // Europe/Berlin skips 02:00–03:00 local on 2026-03-29 (01:00 UTC).
        let daily = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            daily.next_after(at("2026-03-28T12:00:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-03-29T01:00:00Z")),
            Some(at("2026-03-30T00:30:00Z"))
        );
    }

    #[test]
    fn a_tick_in_the_fall_back_overlap_runs_once() {
        // Europe/Berlin repeats 02:00–03:00 local on 2026-10-25.
        let daily = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let ticks: Vec<_> = daily
            .ticks_after(at("2026-10-24T12:00:00Z"))
            .take(2)
            .collect();
        assert_eq!(
            ticks,
            [at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")]
        );
        let hourly = CronSchedule::parse("0 * * * *", "Europe/Berlin").unwrap();
        let day: Vec<_> = hourly
            .ticks_after(at("2026-10-24T22:00:00Z"))
            .take_while(|t| *t < at("2026-10-25T23:00:00Z"))
            .collect();
        // Local 01:00 to 23:00 of a 25-hour day: 23 ticks, 02:00 at its first occurrence
        // (00:00 UTC) and not again at 01:00 UTC.
        assert_eq!(day.len(), 23, "{day:?}");
        assert!(day.contains(&at("2026-10-25T00:00:00Z")));
        assert!(!day.contains(&at("2026-10-25T01:00:00Z")));
    }

    #[test]
    fn a_due_tick_runs_once_and_the_next_decision_waits() {
        let hourly = CronSchedule::parse("0 * * * *", "UTC").unwrap();
        let created = at("2026-01-10T11:20:00Z");
        let now = at("2026-01-10T12:00:10Z");
        let plan = decide(
            &hourly,
            None,
            created,
            now,
            None,
            MissedTickPolicy::Skip,
            false,
        );
        assert_eq!(plan.run, Some(at("2026-01-10T12:00:00Z")));
        assert_eq!(plan.next, Some(at("2026-01-10T13:00:00Z")));
        let again = decide(
            &hourly,
            plan.handled,
            created,
            now,
            None,
            MissedTickPolicy::Skip,
            false,
        );
        assert_eq!(again.run, None, "a tick is never run twice");
    }

    #[test]
    fn missed_ticks_past_the_deadline_are_skipped_or_run_once_by_policy() {
        let hourly = CronSchedule::parse("0 * * * *", "UTC").unwrap();
        let created = at("2026-01-10T00:00:00Z");
        let last = Some(at("2026-01-10T03:00:00Z"));
        let now = at("2026-01-10T09:30:00Z");
        let deadline = Some(Duration::minutes(10));
        let skip = decide(
            &hourly,
            last,
            created,
            now,
            deadline,
            MissedTickPolicy::Skip,
            false,
        );
        assert_eq!((skip.run, skip.skipped), (None, 6));
        assert_eq!(skip.handled, Some(at("2026-01-10T09:00:00Z")));
        let once = decide(
            &hourly,
            last,
            created,
            now,
            deadline,
            MissedTickPolicy::RunOnce,
            false,
        );
        assert_eq!(
            (once.run, once.skipped),
            (Some(at("2026-01-10T09:00:00Z")), 5)
        );
        // Within the deadline the latest tick runs whatever the policy.
        let fresh = decide(
            &hourly,
            last,
            created,
            at("2026-01-10T09:05:00Z"),
            deadline,
            MissedTickPolicy::Skip,
            false,
        );
        assert_eq!(fresh.run, Some(at("2026-01-10T09:00:00Z")));
    }

    #[test]
    fn a_suspended_schedule_runs_nothing_but_moves_past_its_ticks() {
        let hourly = CronSchedule::parse("0 * * * *", "UTC").unwrap();
        let plan = decide(
            &hourly,
            Some(at("2026-01-10T03:00:00Z")),
            at("2026-01-10T00:00:00Z"),
            at("2026-01-10T05:10:00Z"),
            None,
            MissedTickPolicy::RunOnce,
            true,
        );
        assert_eq!((plan.run, plan.skipped), (None, 2));
        assert_eq!(plan.handled, Some(at("2026-01-10T05:00:00Z")));
    }
}
