//! Times as Kubernetes writes them (`meta/v1` Time, a `jiff` timestamp) and as the rest of
//! vctp counts them (chrono), and a window of the status in those times.

use super::metrics_export::Span;
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Now, as Kubernetes writes times (whole seconds).
pub fn now() -> Time {
    let now = chrono::Utc::now();
    Time(to_timestamp(
        chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now),
    ))
}

/// k8s-openapi's times are `jiff` timestamps; the rest of vctp counts in chrono.
pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn from_timestamp(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The window `[start_ms, end_ms)` (Unix milliseconds) as the status shows it.
pub fn span_of_millis(start_ms: i64, end_ms: i64) -> Span {
    let time = |ms: i64| {
        Time(to_timestamp(
            DateTime::from_timestamp_millis(ms).unwrap_or_default(),
        ))
    };
    Span {
        start: time(start_ms),
        end: time(end_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_between_chrono_and_kubernetes() {
        let t = chrono::DateTime::from_timestamp(1_773_151_200, 123_456_789).unwrap();
        assert_eq!(from_timestamp(to_timestamp(t)), t);
    }
}
