//! The Kubernetes operator: one controller per custom resource (DESIGN.md §2), each a pipeline
//! validate (pure) → build (pure) → apply → update status. The pure Job builder all kinds
//! share lives in [`job`]; [`schedule`] is the cron math, [`leader`] the Lease election,
//! [`metrics`] the operator's own `/metrics` and `/healthz`.

pub mod job;
pub mod leader;
pub mod metrics;
pub mod schedule;

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

/// k8s-openapi's times are `jiff` timestamps; the rest of vctp counts in chrono.
pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn from_timestamp(t: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_round_trip_between_chrono_and_kubernetes() {
        let t = chrono::DateTime::from_timestamp(1_773_151_200, 123_456_789).unwrap();
        assert_eq!(super::from_timestamp(super::to_timestamp(t)), t);
    }
}
