//! What the unit tests of the steps share: a schedule, its targets, times and Job states.

use crate::crd::{Phase, SnapshotSchedule, VCenterTarget};
use crate::operator::workload::{Observed, Patience};
use chrono::{DateTime, Utc};

pub const UID: &str = "6f1c2a52-0d7e-4b8a-9a51-3c3f1e0b7a10";

/// The schedule `hourly` in `finance`, created at 09:20 on 2026-03-10, with `spec` (YAML
/// lines indented by two) added to the spec; the snapshots run hourly unless `spec`
/// starts with another `schedule`.
pub fn schedule(spec: &str) -> SnapshotSchedule {
    let default = if spec.starts_with("  schedule:") {
        ""
    } else {
        "  schedule: \"0 * * * *\"\n"
    };
    serde_yaml::from_str(&format!(
        r#"
apiVersion: vctp.io/v1alpha1
kind: SnapshotSchedule
metadata:
  name: hourly
  namespace: finance
  uid: {UID}
  generation: 3
  creationTimestamp: "2026-03-10T09:20:00Z"
spec:
{default}{spec}
"#
    ))
    .unwrap()
}

pub fn target(name: &str) -> VCenterTarget {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: vctp.io/v1alpha1
kind: VCenterTarget
metadata:
  name: {name}
  namespace: finance
  uid: 0000-{name}
  generation: 1
spec:
  url: https://{name}.example.com/sdk
  credentialsSecretRef: {{name: {name}-account}}
"#
    ))
    .unwrap()
}

pub fn targets(names: &[&str]) -> Vec<VCenterTarget> {
    names.iter().map(|n| target(n)).collect()
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The clock of a reconcile at 14:05 on 2026-03-10, with the default image-pull timeout.
pub fn patience() -> Patience {
    Patience {
        now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(crate::operator::to_timestamp(
            at("2026-03-10T14:05:00Z"),
        )),
        image_pull_timeout: crate::operator::DEFAULT_IMAGE_PULL_TIMEOUT,
    }
}

pub fn observed(phase: Phase) -> Observed {
    Observed {
        phase,
        start_time: None,
        completion_time: None,
        result: None,
        message: None,
        failure: None,
        abandoned: false,
    }
}
