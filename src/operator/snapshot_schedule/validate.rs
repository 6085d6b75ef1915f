//! Validate (pure): what the schema cannot check in a `SnapshotSchedule` spec.

use crate::crd::{CONDITION_READY, SnapshotSchedule, SnapshotScheduleSpec, SnapshotScheduleStatus};
use crate::operator::{Error, condition};
use crate::schedule::CronSchedule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::core::Selector;

/// The spec, checked: the crons parsed in the time zone, the selector as a string.
#[derive(Debug, Clone)]
pub struct Validated {
    pub snapshots: CronSchedule,
    /// The daily aggregation cron, when enabled.
    pub daily: Option<CronSchedule>,
    /// The monthly aggregation cron, when enabled.
    pub monthly: Option<CronSchedule>,
    /// `targetSelector` as the label selector of a list request (empty: every target).
    pub target_selector: String,
}

/// What is wrong with a spec: a stable reason and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

impl Invalid {
    /// The controller error for `schedule`, which waits for the spec to change.
    pub fn into_error(self, schedule: &SnapshotSchedule) -> Error {
        Error::invalid_spec(schedule, self.reason, self.message)
    }
}

/// Checks what the schema cannot: the cron expressions and time zone, and the operators of
/// the target selector.
pub fn validate(spec: &SnapshotScheduleSpec) -> Result<Validated, Invalid> {
    let cron = |field: &str, expression: &str| {
        CronSchedule::parse(expression, &spec.time_zone).map_err(|e| Invalid {
            reason: e.reason(),
            message: format!("{field}: {e}"),
        })
    };
    let aggregation = &spec.aggregation;
    Ok(Validated {
        snapshots: cron("schedule", &spec.schedule)?,
        daily: aggregation
            .daily
            .enabled
            .then(|| cron("aggregation.daily.schedule", &aggregation.daily.schedule))
            .transpose()?,
        monthly: aggregation
            .monthly
            .enabled
            .then(|| {
                cron(
                    "aggregation.monthly.schedule",
                    &aggregation.monthly.schedule,
                )
            })
            .transpose()?,
        target_selector: selector_string(spec.target_selector.as_ref()).map_err(|message| {
            Invalid {
                reason: "InvalidTargetSelector",
                message: format!("targetSelector: {message}"),
            }
        })?,
    })
}

/// `selector` as the label selector string of a list request: `matchLabels` as `key=value`,
/// `matchExpressions` as `key in (a,b)`, `key notin (a)`, `key`, `!key`; empty for none
/// (every object). The error says which requirement is wrong.
pub fn selector_string(selector: Option<&LabelSelector>) -> Result<String, String> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_ref().map_or(0, Vec::len);
        let key = &requirement.key;
        match (requirement.operator.as_str(), values) {
            ("In" | "NotIn", 0) => {
                return Err(format!(
                    "operator {} of key {key:?} needs at least one value",
                    requirement.operator
                ));
            }
            ("Exists" | "DoesNotExist", 1..) => {
                return Err(format!(
                    "operator {} of key {key:?} takes no values",
                    requirement.operator
                ));
            }
            ("In" | "NotIn" | "Exists" | "DoesNotExist", _) => {}
            (other, _) => {
                return Err(format!(
                    "unknown operator {other:?} of key {key:?} (In, NotIn, Exists or DoesNotExist)"
                ));
            }
        }
    }
    Selector::try_from(selector.clone())
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
}

/// The status written for an invalid spec: what the schedule had, with `Ready` false for
/// the reason and the generation that is invalid (`LastTickSucceeded`, about a tick that
/// ran, stays).
pub(super) fn invalid_status(
    schedule: &SnapshotSchedule,
    invalid: &Error,
    now: Time,
) -> SnapshotScheduleStatus {
    let mut status = schedule.status.clone().unwrap_or_default();
    let generation = schedule.metadata.generation;
    let ready = condition(
        &status.conditions,
        CONDITION_READY,
        false,
        invalid.reason(),
        invalid.to_string(),
        generation,
        now,
    );
    status.conditions.retain(|c| c.type_ != CONDITION_READY);
    status.conditions.insert(0, ready);
    status.observed_generation = generation;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::snapshot_schedule::CONDITION_LAST_TICK_SUCCEEDED;
    use crate::operator::snapshot_schedule::fixtures::*;
    use crate::operator::snapshot_schedule::plan::k8s_time;

    #[test]
    fn target_selectors_become_label_selector_strings() {
        let selector: LabelSelector = serde_yaml::from_str(
            r#"
matchLabels: {site: zurich, tier: prod}
matchExpressions:
  - {key: env, operator: In, values: [prod, staging]}
  - {key: legacy, operator: NotIn, values: ["true"]}
  - {key: owner, operator: Exists}
  - {key: retired, operator: DoesNotExist}
"#,
        )
        .unwrap();
        assert_eq!(
            selector_string(Some(&selector)).unwrap(),
            "site=zurich,tier=prod,env in (prod,staging),legacy notin (true),owner,!retired"
        );
        assert_eq!(selector_string(None).unwrap(), "");
        assert_eq!(
            selector_string(Some(&LabelSelector::default())).unwrap(),
            ""
        );

        for (expression, expected) in [
            (
                "{key: env, operator: In, values: []}",
                "operator In of key \"env\" needs at least one value",
            ),
            (
                "{key: env, operator: NotIn}",
                "operator NotIn of key \"env\" needs at least one value",
            ),
            (
                "{key: env, operator: Exists, values: [x]}",
                "operator Exists of key \"env\" takes no values",
            ),
            (
                "{key: env, operator: Equals, values: [x]}",
                "unknown operator \"Equals\" of key \"env\"",
            ),
        ] {
            let selector: LabelSelector =
                serde_yaml::from_str(&format!("matchExpressions: [{expression}]")).unwrap();
            let err = selector_string(Some(&selector)).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn invalid_crons_time_zones_and_selectors_are_named_in_the_error() {
        let cases = [
            (
                "  schedule: \"0 * * *\"\n",
                "InvalidSchedule",
                "schedule: invalid schedule",
            ),
            (
                "  timeZone: Mars/Olympus\n",
                "InvalidTimeZone",
                "schedule: unknown time zone",
            ),
            (
                "  aggregation:\n    daily: {schedule: \"99 0 * * *\"}\n",
                "InvalidSchedule",
                "aggregation.daily.schedule:",
            ),
            (
                "  aggregation:\n    monthly: {schedule: \"0 1 1 * * *\"}\n",
                "InvalidSchedule",
                "aggregation.monthly.schedule:",
            ),
            (
                "  targetSelector:\n    matchExpressions: [{key: a, operator: Has}]\n",
                "InvalidTargetSelector",
                "targetSelector: unknown operator",
            ),
        ];
        for (spec, reason, message) in cases {
            let schedule = schedule(spec);
            let invalid = validate(&schedule.spec).unwrap_err();
            assert_eq!(invalid.reason, reason, "{spec}");
            assert!(invalid.message.starts_with(message), "{}", invalid.message);
            let error = invalid.into_error(&schedule);
            assert_eq!(error.reason(), reason);
            assert!(error.waits_for_change());
            assert!(
                error
                    .to_string()
                    .starts_with("SnapshotSchedule finance/hourly is invalid: ")
            );
        }
        // A disabled cron is not looked at.
        let disabled =
            schedule("  aggregation:\n    daily: {enabled: false, schedule: \"nonsense\"}\n");
        assert!(validate(&disabled.spec).is_ok());
    }

    #[test]
    fn an_invalid_spec_sets_ready_false_and_keeps_the_rest_of_the_status() {
        let mut schedule = schedule("");
        let then = k8s_time(at("2026-03-10T10:05:00Z"));
        let was = |type_: &str, reason: &str| {
            condition(&[], type_, true, reason, "", Some(2), then.clone())
        };
        schedule.status = Some(SnapshotScheduleStatus {
            conditions: vec![
                was(CONDITION_READY, "Scheduling"),
                was(CONDITION_LAST_TICK_SUCCEEDED, "Succeeded"),
            ],
            last_schedule_time: Some(k8s_time(at("2026-03-10T10:00:00Z"))),
            last_daily_aggregation_time: Some(k8s_time(at("2026-03-10T00:30:00Z"))),
            ..SnapshotScheduleStatus::default()
        });
        let invalid = Invalid {
            reason: "InvalidSchedule",
            message: "schedule: bad".into(),
        }
        .into_error(&schedule);
        let now = k8s_time(at("2026-03-10T10:10:00Z"));
        let status = invalid_status(&schedule, &invalid, now);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions.len(), 2);
        assert_eq!(status.conditions[0].reason, "InvalidSchedule");
        assert_eq!(status.conditions[0].status, "False");
        // The last tick's verdict is about a tick that ran: it stays.
        assert_eq!(
            status.conditions[1],
            schedule.status.as_ref().unwrap().conditions[1]
        );
        assert_eq!(
            status.last_schedule_time,
            schedule.status.as_ref().unwrap().last_schedule_time
        );
        assert!(status.last_daily_aggregation_time.is_some());
    }
}
