//! Build (pure): the snapshot Jobs, `AggregationJob`s and `VCenterTarget` status fields the
//! plan calls for.

use super::plan::{AggregationRun, Finished, NewAggregation, NewSnapshot, k8s_time, rfc3339};
use super::read::{AGGREGATION, SNAPSHOT, TARGET_LABEL, TICK_LABEL};
use crate::crd::aggregation_job::{AggregationPeriod, ReportOptions};
use crate::crd::{AggregationJob, AggregationJobSpec, Phase, SnapshotSchedule, VCenterTarget};
use crate::jobs::env;
use crate::operator::condition;
use crate::operator::job::{self, JobTemplate, label_value};
use chrono::DateTime;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// The condition this controller sets on a `VCenterTarget`: how its last snapshot went.
pub const CONDITION_LAST_SNAPSHOT: &str = "LastSnapshot";

/// The snapshot Job of `new.target` (pure): `vctp job snapshot --target NS/NAME --at TICK
/// --max-retries N --retry-interval-seconds S --hourly-max-age-days D --daily-max-age-months
/// M` (the schedule's retry policy and retention) `--legacy-owners NS/NAME,…` (`owners`: every
/// watched `VCenterTarget` of that name) with the target's account (and CA bundle) as env,
/// owned by the schedule (controller) and by the target, labelled with the tick and the
/// target.
pub fn snapshot_job(
    schedule: &SnapshotSchedule,
    target: &VCenterTarget,
    new: &NewSnapshot,
    owners: &[String],
    template: &JobTemplate,
) -> Result<Job, job::Error> {
    let (retry, retention) = (&schedule.spec.retry, &schedule.spec.retention);
    let mut args = [
        "job",
        "snapshot",
        "--target",
        &format!("{}/{}", target.namespace().unwrap_or_default(), new.target),
        "--at",
        &rfc3339(new.tick),
        "--max-retries",
        &retry.max_retries.to_string(),
        "--retry-interval-seconds",
        &retry.interval_seconds.to_string(),
        "--hourly-max-age-days",
        &retention.hourly_max_age_days.to_string(),
        "--daily-max-age-months",
        &retention.daily_max_age_months.to_string(),
    ]
    .map(String::from)
    .to_vec();
    if !owners.is_empty() {
        args.extend(["--legacy-owners".to_string(), owners.join(",")]);
    }
    let mut job = job::build_job(
        schedule,
        &new.job,
        SNAPSHOT,
        args,
        target_env(target),
        template,
    )?;
    let labels = job.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(TICK_LABEL.into(), new.tick.timestamp().to_string());
    labels.insert(TARGET_LABEL.into(), label_value(&new.target));
    // Not a controller reference: it ties the Job to its target for tools and lets the
    // garbage collector delete it once the schedule is gone too. (The collector keeps a
    // dependent while any owner exists, so the controller itself cancels the Jobs of a
    // target that is gone.)
    if let Some(owner) = target.owner_ref(&()) {
        job.metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(owner);
    }
    Ok(job)
}

/// The env of a snapshot Job from its target: the account from its Secret, the CA bundle
/// from its Secret or ConfigMap.
fn target_env(target: &VCenterTarget) -> Vec<EnvVar> {
    let credentials = &target.spec.credentials_secret_ref;
    let mut env = vec![
        job::secret_env(env::VCENTER_USERNAME, &credentials.username()),
        job::secret_env(env::VCENTER_PASSWORD, &credentials.password()),
    ];
    if let Some(tls) = &target.spec.tls {
        if let Some(secret) = &tls.ca_bundle_secret_ref {
            env.push(job::secret_env(env::VCENTER_CA_BUNDLE, secret));
        } else if let Some(config_map) = &tls.ca_bundle_config_map_ref {
            env.push(job::config_map_env(env::VCENTER_CA_BUNDLE, config_map));
        }
    }
    env
}

/// The `AggregationJob` of `new` (pure), owned by the schedule (controller) and labelled as
/// its `aggregation` component. Objects read from the API server always have the uid the
/// owner reference needs.
pub fn aggregation_job(schedule: &SnapshotSchedule, new: &NewAggregation) -> AggregationJob {
    let (period, at, date, month) = match new.run {
        AggregationRun::Hourly(tick) => {
            (AggregationPeriod::Hourly, Some(k8s_time(tick)), None, None)
        }
        AggregationRun::Daily(day) => (
            AggregationPeriod::Daily,
            None,
            Some(day.format("%Y-%m-%d").to_string()),
            None,
        ),
        AggregationRun::Monthly { year, month } => (
            AggregationPeriod::Monthly,
            None,
            None,
            Some(format!("{year:04}-{month:02}")),
        ),
    };
    let mut aggregation = AggregationJob::new(
        &new.name,
        AggregationJobSpec {
            period,
            date,
            month,
            at,
            vcenters: Vec::new(),
            engine: schedule.spec.aggregation.engine,
            report: ReportOptions::default(),
        },
    );
    aggregation.metadata.namespace = schedule.namespace();
    aggregation.metadata.labels = Some(job::labels(&schedule.name_any(), AGGREGATION));
    aggregation.metadata.owner_references = schedule.controller_owner_ref(&()).map(|mut r| {
        r.block_owner_deletion = Some(true);
        vec![r]
    });
    aggregation
}

/// The `VCenterTarget` status fields this controller owns after `finished` (pure): the
/// snapshot time, rows, inventory size and vCenter version of the last success (kept from
/// the target's status on a failure: server-side apply drops owned fields left out) and
/// the `LastSnapshot` condition.
pub fn target_snapshot_status(
    target: &VCenterTarget,
    finished: &Finished,
    now: Time,
) -> serde_json::Value {
    let current = target.status.clone().unwrap_or_default();
    let succeeded = finished.observed.phase == Phase::Succeeded;
    let mut last_time = current.last_snapshot_time;
    let mut rows = current.last_snapshot_rows;
    let mut inventory_size = current.inventory_size;
    let mut version = current.vcenter_version;
    if succeeded {
        let snapshot = finished
            .observed
            .result
            .as_ref()
            .and_then(|r| r.snapshot.as_ref());
        last_time = snapshot
            .and_then(|s| DateTime::from_timestamp(s.snapshot_time, 0))
            .or(finished.tick)
            .map(k8s_time)
            .or(finished.observed.completion_time.clone())
            .or(last_time);
        if let Some(snapshot) = snapshot {
            rows = Some(snapshot.rows);
            inventory_size = Some(snapshot.inventory_size);
            version = snapshot.vcenter_version.clone().or(version);
        }
    }
    let (reason, message) = if succeeded {
        let message = finished.observed.summary().unwrap_or_else(|| match rows {
            Some(rows) => format!("stored {rows} rows"),
            None => "the snapshot is stored".into(),
        });
        ("Succeeded".to_string(), message)
    } else {
        let message = finished
            .observed
            .summary()
            .unwrap_or_else(|| "the snapshot Job failed".into());
        (finished.observed.reason().to_string(), message)
    };
    let last_snapshot = condition(
        &current.conditions,
        CONDITION_LAST_SNAPSHOT,
        succeeded,
        &reason,
        format!("{message} (Job {})", finished.job),
        target.metadata.generation,
        now,
    );
    let mut status = serde_json::Map::new();
    let mut set = |key: &str, value: serde_json::Value| {
        if !value.is_null() {
            status.insert(key.to_string(), value);
        }
    };
    set("lastSnapshotTime", serde_json::json!(last_time));
    set("lastSnapshotRows", serde_json::json!(rows));
    set("inventorySize", serde_json::json!(inventory_size));
    set("vcenterVersion", serde_json::json!(version));
    set("conditions", serde_json::json!([last_snapshot]));
    serde_json::Value::Object(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::termination::JobResult;
    use crate::operator::snapshot_schedule::fixtures::*;
    use crate::operator::snapshot_schedule::plan::{new_aggregation, snapshot_job_name};
    use crate::operator::snapshot_schedule::read::{SnapshotJob, controlled_by};
    use chrono::NaiveDate;

    #[test]
    fn the_snapshot_job_runs_the_snapshot_of_its_target_at_its_tick() {
        let schedule = schedule("  retry: {intervalSeconds: 120, maxRetries: 5}\n");
        let mut target: VCenterTarget = target("vc01");
        target.spec.tls =
            Some(serde_yaml::from_str("caBundleConfigMapRef: {name: vc-ca, key: ca.crt}").unwrap());
        let new = NewSnapshot {
            target: "vc01".into(),
            job: snapshot_job_name("hourly", at("2026-03-10T10:00:00Z"), "vc01"),
            tick: at("2026-03-10T10:00:00Z"),
        };
        let template = JobTemplate::restricted(&job::Defaults {
            image: "vctp:test".into(),
            image_pull_policy: None,
            service_account: "vctp-job".into(),
            database_url_secret: crate::crd::SecretKeyRef {
                name: "db".into(),
                key: "url".into(),
            },
            reports_url: "file:///tmp/reports".into(),
            backoff_limit: 0,
            ttl_seconds_after_finished: 86_400,
        });
        let owners = ["audit/vc01".to_string(), "finance/vc01".to_string()];
        let built = snapshot_job(&schedule, &target, &new, &owners, &template).unwrap();
        let json = serde_json::to_value(&built).unwrap();
        let expected: serde_json::Value = serde_yaml::from_str(&format!(
            r#"
name: hourly-snap-20260310t1000-vc01
namespace: finance
labels:
  app.kubernetes.io/name: vctp
  app.kubernetes.io/instance: hourly
  app.kubernetes.io/component: snapshot
  app.kubernetes.io/managed-by: vctp-operator
  app.kubernetes.io/part-of: vctp
  vctp.io/tick: "1773136800"
  vctp.io/target: vc01
ownerReferences:
  - {{apiVersion: vctp.io/v1alpha1, kind: SnapshotSchedule, name: hourly, uid: {UID}, controller: true, blockOwnerDeletion: true}}
  - {{apiVersion: vctp.io/v1alpha1, kind: VCenterTarget, name: vc01, uid: 0000-vc01}}
"#
        ))
        .unwrap();
        assert_eq!(json["metadata"], expected);
        let container = &json["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["args"],
            serde_json::json!([
                "job",
                "snapshot",
                "--target",
                "finance/vc01",
                "--at",
                "2026-03-10T10:00:00Z",
                "--max-retries",
                "5",
                "--retry-interval-seconds",
                "120",
                "--hourly-max-age-days",
                "60",
                "--daily-max-age-months",
                "12",
                "--legacy-owners",
                "audit/vc01,finance/vc01"
            ])
        );
        let env: Vec<&serde_json::Value> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"].as_str().unwrap().starts_with("VCTP_VCENTER_"))
            .collect();
        assert_eq!(
            env,
            [
                &serde_json::json!({"name": "VCTP_VCENTER_USERNAME", "valueFrom": {"secretKeyRef": {"name": "vc01-account", "key": "username", "optional": false}}}),
                &serde_json::json!({"name": "VCTP_VCENTER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "vc01-account", "key": "password", "optional": false}}}),
                &serde_json::json!({"name": "VCTP_VCENTER_CA_BUNDLE", "valueFrom": {"configMapKeyRef": {"name": "vc-ca", "key": "ca.crt", "optional": false}}}),
            ]
        );

        // Read back, the Job is recognised as the target's Job of that tick.
        let seen = SnapshotJob::new(
            &built,
            &[],
            &crate::operator::snapshot_schedule::fixtures::patience(),
        );
        assert_eq!(seen.tick, Some(new.tick));
        assert_eq!(seen.target_label.as_deref(), Some("vc01"));
        assert_eq!(seen.observed.phase, Phase::Pending);
    }

    #[test]
    fn aggregation_jobs_are_owned_labelled_and_valid() {
        let schedule = schedule("  aggregation: {engine: sql}\n");
        for run in [
            AggregationRun::Hourly(at("2026-03-10T10:00:00Z")),
            AggregationRun::Daily(NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()),
            AggregationRun::Monthly {
                year: 2026,
                month: 2,
            },
        ] {
            let new = new_aggregation("hourly", run);
            let made = aggregation_job(&schedule, &new);
            made.validate_cel().unwrap();
            assert_eq!(made.metadata.namespace.as_deref(), Some("finance"));
            assert_eq!(made.labels()["app.kubernetes.io/component"], "aggregation");
            assert_eq!(made.labels()["app.kubernetes.io/instance"], "hourly");
            assert!(controlled_by(&made.metadata, &schedule));
            assert_eq!(made.spec.engine, crate::crd::Engine::Sql);
            assert!(made.spec.vcenters.is_empty());
        }
        let daily = aggregation_job(
            &schedule,
            &new_aggregation(
                "hourly",
                AggregationRun::Daily(NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()),
            ),
        );
        assert_eq!(daily.name_any(), "hourly-daily-2026-03-09");
        assert_eq!(daily.spec.date.as_deref(), Some("2026-03-09"));
        let monthly = aggregation_job(
            &schedule,
            &new_aggregation(
                "hourly",
                AggregationRun::Monthly {
                    year: 2026,
                    month: 2,
                },
            ),
        );
        assert_eq!(monthly.spec.month.as_deref(), Some("2026-02"));
    }

    #[test]
    fn a_success_writes_the_targets_snapshot_fields_and_a_failure_keeps_them() {
        let mut target = target("vc01");
        target.status = Some(serde_yaml::from_str(
            r#"
lastSnapshotTime: "2026-03-10T09:00:00Z"
lastSnapshotRows: 400
inventorySize: 402
vcenterVersion: 8.0.2 build-22617221
lastError: owned by the VCenterTarget controller
conditions:
  - {type: Reachable, status: "True", reason: LoggedIn, message: ok, lastTransitionTime: "2026-03-10T08:00:00Z"}
"#,
        )
        .unwrap());
        let now = k8s_time(at("2026-03-10T10:03:00Z"));
        let mut succeeded = Finished {
            target: "vc01".into(),
            job: "hourly-snap-20260310t1000-vc01".into(),
            tick: Some(at("2026-03-10T10:00:00Z")),
            observed: observed(Phase::Succeeded),
        };
        succeeded.observed.result = JobResult::from_message(
            r#"{"succeeded":true,"message":"stored 412 rows","snapshot":{"snapshotTime":1773136805,"rows":412,"inventorySize":415,"vcenterVersion":"8.0.3 build-24022515"}}"#,
        );
        let status = target_snapshot_status(&target, &succeeded, now.clone());
        assert_eq!(status["lastSnapshotTime"], "2026-03-10T10:00:05Z");
        assert_eq!(status["lastSnapshotRows"], 412);
        assert_eq!(status["inventorySize"], 415);
        assert_eq!(status["vcenterVersion"], "8.0.3 build-24022515");
        let conditions = status["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1, "only LastSnapshot is ours");
        assert_eq!(conditions[0]["type"], "LastSnapshot");
        assert_eq!(conditions[0]["status"], "True");
        assert_eq!(
            conditions[0]["message"],
            "stored 412 rows (Job hourly-snap-20260310t1000-vc01)"
        );
        assert!(status.get("lastError").is_none() && status.get("lastCheckTime").is_none());

        let mut failed = succeeded.clone();
        failed.observed = observed(Phase::Failed);
        failed.observed.result = JobResult::from_message(
            r#"{"succeeded":false,"reason":"InvalidLogin","message":"wrong user name or password"}"#,
        );
        let status = target_snapshot_status(&target, &failed, now);
        assert_eq!(status["lastSnapshotTime"], "2026-03-10T09:00:00Z");
        assert_eq!(status["lastSnapshotRows"], 400);
        assert_eq!(status["inventorySize"], 402);
        assert_eq!(status["vcenterVersion"], "8.0.2 build-22617221");
        assert_eq!(status["conditions"][0]["status"], "False");
        assert_eq!(status["conditions"][0]["reason"], "InvalidLogin");

        // A first failure owns nothing but the condition.
        let status = target_snapshot_status(
            &self::target("vc02"),
            &failed,
            k8s_time(at("2026-03-10T10:03:00Z")),
        );
        let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["conditions"]);
    }
}
