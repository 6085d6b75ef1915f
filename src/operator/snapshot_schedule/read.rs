//! Read: the selected `VCenterTarget`s and what the schedule created (its snapshot Jobs with
//! their Pods, its `AggregationJob`s), found by the labels [`build`](super::build) puts on them.

use super::validate::Validated;
use crate::crd::{AggregationJob, SnapshotSchedule, VCenterTarget};
use crate::operator::job::label_value;
use crate::operator::secrets::{self, Refusal};
use crate::operator::workload::{self, Observed};
use crate::operator::{Context, Error};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use std::collections::HashMap;

/// Label of a snapshot Job: its tick, in Unix seconds.
pub const TICK_LABEL: &str = "vctp.io/tick";
/// Label of a snapshot Job: its `VCenterTarget` (shortened like `app.kubernetes.io/instance`
/// when longer than a label value may be).
pub const TARGET_LABEL: &str = "vctp.io/target";
/// `app.kubernetes.io/component` of the snapshot Jobs.
pub const SNAPSHOT: &str = "snapshot";
/// `app.kubernetes.io/component` of the `AggregationJob`s the schedule creates.
pub const AGGREGATION: &str = "aggregation";

/// A snapshot Job of the schedule, as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotJob {
    pub name: String,
    /// The tick it snapshots (its [`TICK_LABEL`]).
    pub tick: Option<DateTime<Utc>>,
    /// Its [`TARGET_LABEL`].
    pub target_label: Option<String>,
    pub observed: Observed,
}

impl SnapshotJob {
    /// `job` (with its Pods) as the plan sees it.
    pub fn new(job: &Job, pods: &[Pod], patience: &workload::Patience) -> SnapshotJob {
        let label = |key: &str| job.labels().get(key).cloned();
        SnapshotJob {
            name: job.name_any(),
            tick: label(TICK_LABEL)
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|t| DateTime::from_timestamp(t, 0)),
            target_label: label(TARGET_LABEL),
            observed: workload::observe(job, pods, patience),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.observed.phase.is_finished()
    }
}

/// What the schedule finds in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The selected `VCenterTarget`s.
    pub targets: Vec<VCenterTarget>,
    /// The schedule's snapshot Jobs.
    pub jobs: Vec<SnapshotJob>,
    /// The `AggregationJob`s the schedule created.
    pub aggregations: Vec<AggregationJob>,
    /// A Secret or ConfigMap the Job template needs that the namespace lacks.
    pub missing: Option<Refusal>,
}

pub(super) async fn read(
    ctx: &Context,
    schedule: &SnapshotSchedule,
    validated: &Validated,
) -> Result<Found, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let targets = list::<VCenterTarget>(ctx, &namespace, &validated.target_selector).await?;
    let snapshots = instance_selector(schedule, SNAPSHOT);
    let jobs = list::<Job>(ctx, &namespace, &snapshots).await?;
    let pods = list::<Pod>(ctx, &namespace, &snapshots).await?;
    let mut pods_by_job: HashMap<String, Vec<Pod>> = HashMap::new();
    for pod in pods {
        if let Some(job) = pod.labels().get("job-name").cloned() {
            pods_by_job.entry(job).or_default().push(pod);
        }
    }
    let patience = ctx.patience();
    let jobs = jobs
        .iter()
        .filter(|j| controlled_by(&j.metadata, schedule))
        .map(|j| {
            let pods: &[Pod] = pods_by_job.get(&j.name_any()).map_or(&[], Vec::as_slice);
            SnapshotJob::new(j, pods, &patience)
        })
        .collect();
    let aggregations =
        list::<AggregationJob>(ctx, &namespace, &instance_selector(schedule, AGGREGATION))
            .await?
            .into_iter()
            .filter(|a| controlled_by(&a.metadata, schedule))
            .collect();
    Ok(Found {
        targets,
        jobs,
        aggregations,
        missing: secrets::missing_prerequisite(ctx, &namespace).await?,
    })
}

/// The label selector of what the schedule created of `component`.
fn instance_selector(schedule: &SnapshotSchedule, component: &str) -> String {
    format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component={component}",
        label_value(&schedule.name_any())
    )
}

/// Whether `meta`'s controller is `schedule` (labels alone could match a hand-made object).
pub(super) fn controlled_by(meta: &ObjectMeta, schedule: &SnapshotSchedule) -> bool {
    let uid = schedule.meta().uid.as_deref();
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
}

async fn list<K>(ctx: &Context, namespace: &str, selector: &str) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|list| list.items)
        .map_err(|source| {
            Error::api(
                "list",
                &K::kind(&()),
                namespace,
                &format!("[{selector}]"),
                source,
            )
        })
}
