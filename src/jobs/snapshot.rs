//! A snapshot round as a unit of work: every vCenter captured at one time, at most so many at
//! once, transient failures retried in-process, then the hour's report when asked for
//! ([`round`]). `vctp snapshot run`, the standalone scheduler and the demo run it over the
//! configured vCenters; a `SnapshotSchedule`'s Job runs it for one `VCenterTarget` ([`run`]):
//! spec + credentials → collector and target ([`plan`], pure) → the round → the
//! [`SnapshotResult`] for the operator.

use super::report::{self, Period};
use super::termination::SnapshotResult;
use super::{Stores, env};
use crate::config::VcenterTarget;
use crate::crd::VCenterTargetSpec;
use crate::inventory::TierMapping;
use crate::inventory::capture::Filters;
use crate::inventory::collector::{self, Captured, Collector, RoundOutcome};
use crate::inventory::pattern::Pattern;
use crate::store::Store;
use crate::store::rename::RenameError;
use crate::store::reports::ReportEntry;
use std::fmt;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("environment variable {name} is not set or empty: {purpose}")]
    MissingEnv {
        name: &'static str,
        purpose: &'static str,
    },
    #[error("invalid VCenterTarget spec: `{field}`: {message}")]
    Spec { field: String, message: String },
    #[error("failed to write the CA bundle of vCenter {vcenter} to a temporary file: {source}")]
    WriteCaBundle {
        vcenter: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Capture(#[from] collector::Error),
    #[error(
        "{failed} of {total} vCenters failed (each run is recorded in snapshot_runs): {details}"
    )]
    Failed {
        failed: usize,
        total: usize,
        details: String,
        /// The first failure's reason, for metrics and Events.
        reason: &'static str,
    },
    #[error("the snapshots are stored, but the hour's report failed: {0}")]
    Report(Box<report::Error>),
}

impl Error {
    /// A stable short name for metrics labels and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingEnv { .. } => "MissingEnvironment",
            Error::Spec { .. } => "InvalidSpec",
            Error::WriteCaBundle { .. } => "CaBundleUnwritable",
            Error::Capture(e) => e.reason(),
            Error::Failed { reason, .. } => reason,
            Error::Report(e) => e.reason(),
        }
    }

    /// Whether the input is wrong (nothing succeeds until it changes), rather than the work.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::MissingEnv { .. } | Error::Spec { .. })
    }
}

/// The vCenter account and the CA bundle to trust, from the Job's environment: the operator
/// fills it from the target's Secrets, so the Job needs no right to read Secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// PEM certificates.
    pub ca_bundle: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("ca_bundle", &self.ca_bundle.as_ref().map(|_| "<PEM>"))
            .finish()
    }
}

impl Credentials {
    /// Reads [`env::VCENTER_USERNAME`] and [`env::VCENTER_PASSWORD`] (both required) and
    /// [`env::VCENTER_CA_BUNDLE`] through `lookup` (the process environment in a Job).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Credentials, Error> {
        let required = |name: &'static str, purpose: &'static str| {
            lookup(name)
                .filter(|value| !value.is_empty())
                .ok_or(Error::MissingEnv { name, purpose })
        };
        Ok(Credentials {
            username: required(
                env::VCENTER_USERNAME,
                "the vCenter user name, from the Secret of spec.credentialsSecretRef",
            )?,
            password: required(
                env::VCENTER_PASSWORD,
                "the vCenter password, from the Secret of spec.credentialsSecretRef",
            )?,
            ca_bundle: lookup(env::VCENTER_CA_BUNDLE).filter(|pem| !pem.trim().is_empty()),
        })
    }
}

/// How transient failures (unreachable, timeout, HTTP 5xx) are retried within the Job: the
/// `SnapshotSchedule`'s retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first one.
    pub max_retries: u32,
    pub interval: Duration,
}

/// Everything a snapshot needs besides the store.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    pub collector: Collector,
    /// Named after the resource; `ca_file` is set by [`run`] once `ca_bundle` is on disk.
    pub target: VcenterTarget,
    /// PEM certificates to trust instead of the system roots.
    pub ca_bundle: Option<String>,
}

/// The snapshot of the `VCenterTarget` named `name`: its rows are stored under that name.
/// Pure; errors name the spec field or the environment variable that is wrong.
pub fn plan(
    name: &str,
    spec: &VCenterTargetSpec,
    credentials: &Credentials,
    retry: Retry,
) -> Result<TargetPlan, Error> {
    let at_least_one = |field: &str, value: i32| {
        u32::try_from(value)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| Error::Spec {
                field: format!("spec.{field}"),
                message: format!("must be at least 1, got {value}"),
            })
    };
    let max_objects = at_least_one("maxObjects", spec.max_objects)?;
    let connect_timeout = at_least_one("connectTimeoutSeconds", spec.connect_timeout_seconds)?;
    let read_timeout = at_least_one("readTimeoutSeconds", spec.read_timeout_seconds)?;

    let filters = spec.filters.clone().unwrap_or_default();
    let patterns = |field: &str, texts: &[String]| -> Result<Vec<Pattern>, Error> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                if text.trim().is_empty() {
                    Err(Error::Spec {
                        field: format!("spec.filters.{field}[{i}]"),
                        message: "an empty pattern would match nothing useful; remove it".into(),
                    })
                } else {
                    Ok(Pattern::new(text))
                }
            })
            .collect()
    };
    let filters = Filters {
        tenants: patterns("tenantsToFilter", &filters.tenants_to_filter)?,
        node_charge_clusters: patterns("nodeChargeClusters", &filters.node_charge_clusters)?,
        srm_activeactive_vms: patterns("srmActiveActiveVms", &filters.srm_active_active_vms)?,
    };
    let pools = spec
        .pool_tiers
        .iter()
        .map(|(pool, tier)| (pool.clone(), (*tier).into()))
        .collect();

    let tls = spec.tls.clone().unwrap_or_default();
    let has_ca_ref = tls.ca_bundle_secret_ref.is_some() || tls.ca_bundle_config_map_ref.is_some();
    if has_ca_ref && !tls.insecure && credentials.ca_bundle.is_none() {
        return Err(Error::MissingEnv {
            name: env::VCENTER_CA_BUNDLE,
            purpose: "spec.tls names a CA bundle, which the operator passes in this variable",
        });
    }
    let ca_bundle = if tls.insecure {
        None
    } else {
        credentials.ca_bundle.clone()
    };

    Ok(TargetPlan {
        collector: Collector {
            username: credentials.username.clone(),
            password: credentials.password.clone(),
            connect_timeout: Duration::from_secs(connect_timeout.into()),
            read_timeout: Duration::from_secs(read_timeout.into()),
            max_objects,
            max_retries: retry.max_retries,
            retry_interval: retry.interval,
            mapping: TierMapping::new(&pools),
            filters,
        },
        target: VcenterTarget {
            name: name.to_string(),
            url: spec.url.trim().to_string(),
            insecure: tls.insecure,
            ca_file: None,
            allow_plain_http: spec.allow_plain_http,
        },
        ca_bundle,
    })
}

/// How a round runs.
#[derive(Clone, Copy)]
pub struct RoundPolicy<'a> {
    /// vCenters captured at once; 0 = all at once.
    pub concurrency: usize,
    /// Where the hour's report goes after a round in which every vCenter was stored; None
    /// writes no report.
    pub hourly_report: Option<Stores<'a>>,
}

/// What a round did.
#[must_use = "a round may have failed vCenters: see `Round::check`"]
pub struct Round {
    pub snapshot_time: i64,
    /// One per target, in target order.
    pub outcomes: Vec<RoundOutcome>,
    /// The hour's report, when the policy asked for one and every vCenter was stored.
    pub reports: Vec<ReportEntry>,
}

impl Round {
    /// VM rows stored in all.
    pub fn rows(&self) -> usize {
        self.stored().map(|(_, c)| c.rows).sum()
    }

    /// The vCenters stored and what each capture did.
    pub fn stored(&self) -> impl Iterator<Item = (&VcenterTarget, &Captured)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok().map(|c| (&o.target, c)))
    }

    /// The round, or an error if any vCenter failed, saying how many of how many and why.
    pub fn check(self) -> Result<Round, Error> {
        let errors: Vec<(&str, &collector::Error)> = self
            .outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (o.target.name.as_str(), e)))
            .collect();
        let Some((_, first)) = errors.first() else {
            return Ok(self);
        };
        Err(Error::Failed {
            failed: errors.len(),
            total: self.outcomes.len(),
            details: errors
                .iter()
                .map(|(name, e)| format!("{name}: {e}"))
                .collect::<Vec<_>>()
                .join("; "),
            reason: first.reason(),
        })
    }
}

/// Captures every target at `snapshot_time` (Unix seconds). One vCenter failing does not stop
/// the others; each run is recorded in `snapshot_runs`, and [`Round::check`] tells whether any
/// failed. The hour's report is written only when none did.
pub async fn round(
    store: &Store,
    collector: &Collector,
    targets: &[VcenterTarget],
    snapshot_time: i64,
    policy: RoundPolicy<'_>,
) -> Result<Round, Error> {
    let outcomes = collector
        .capture_round(store, targets, snapshot_time, policy.concurrency)
        .await;
    let all_stored = outcomes.iter().all(|o| o.result.is_ok());
    let reports = match policy.hourly_report {
        Some(stores) if all_stored => {
            report::generate(&stores, Period::hour_containing(snapshot_time), None, None)
                .await
                .map_err(|e| Error::Report(Box::new(e)))?
        }
        _ => Vec::new(),
    };
    Ok(Round {
        snapshot_time,
        outcomes,
        reports,
    })
}

/// Takes the snapshot of one `VCenterTarget` at `snapshot_time` (the schedule's tick) as a
/// round of one, and stores it. On failure only the failed run is recorded.
pub async fn run(
    store: &Store,
    plan: TargetPlan,
    snapshot_time: i64,
) -> Result<SnapshotResult, Error> {
    let TargetPlan {
        collector,
        mut target,
        ca_bundle,
    } = plan;
    // Kept until the capture is over: every login attempt reads the file.
    let _ca_file = match ca_bundle {
        Some(pem) => {
            let file = write_ca_bundle(&pem).map_err(|source| Error::WriteCaBundle {
                vcenter: target.name.clone(),
                source,
            })?;
            target.ca_file = Some(file.path().to_path_buf());
            Some(file)
        }
        None => None,
    };
    let policy = RoundPolicy {
        concurrency: 1,
        hourly_report: None,
    };
    let round = round(store, &collector, &[target], snapshot_time, policy).await?;
    // A round of one: the target's own error says more than "1 of 1 vCenters failed".
    let captured = match round.outcomes.into_iter().next() {
        Some(outcome) => outcome.result?,
        None => {
            return Err(Error::Spec {
                field: "spec.url".into(),
                message: "no target to snapshot".into(),
            });
        }
    };
    Ok(SnapshotResult {
        snapshot_time,
        rows: i64::try_from(captured.rows).unwrap_or(i64::MAX),
        inventory_size: i64::try_from(captured.inventory_size).unwrap_or(i64::MAX),
        vcenter_version: captured.about.version_and_build(),
    })
}

/// What became of rows stored under a `VCenterTarget`'s bare name (`vc01`) by an operator
/// from before keys included the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy {
    /// Nothing is stored under the bare name.
    None,
    /// They now are the target's own (`NAMESPACE/NAME`).
    Moved {
        rows: u64,
        bare: String,
        key: String,
    },
    /// They were left where they are, and why.
    Left {
        rows: u64,
        bare: String,
        why: String,
    },
}

impl fmt::Display for Legacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Legacy::None => Ok(()),
            Legacy::Moved { rows, bare, key } => write!(
                f,
                "moved {rows} rows stored under the bare name {bare} to {key}"
            ),
            Legacy::Left { rows, bare, why } => write!(
                f,
                "{rows} rows stored under the bare name {bare} were left there: {why}"
            ),
        }
    }
}

/// Takes over the rows stored under the bare `name` for the target keyed `key`, in one
/// transaction, when `owners` (the `NAMESPACE/NAME` of every `VCenterTarget` called `name`
/// in the operator's watched namespaces; `None` when not told) is exactly this target: SQL
/// cannot know which namespace they were meant for, the operator can. Otherwise, or when
/// rows are stored under `key` already (two histories would mix), they are left as they are
/// and [`Legacy::Left`] says why and how to move them by hand — reported by the key's first
/// capture only.
pub async fn adopt_legacy(
    store: &Store,
    name: &str,
    key: &str,
    owners: Option<&[String]>,
) -> Result<Legacy, crate::store::Error> {
    if name == key {
        return Ok(Legacy::None);
    }
    // A key with a recorded host has been captured since hosts were recorded, and its first
    // capture already looked for legacy rows: skip the per-table probes, some of which scan
    // (no index leads with the vCenter on the summary tables) — every hour, per target.
    if store.vcenter_hosts().await?.contains_key(key) || !store.has_vcenter(name).await? {
        return Ok(Legacy::None);
    }
    let rows = store.rows_under(name).await?;
    let left = |why: String| Legacy::Left {
        rows,
        bare: name.to_string(),
        why,
    };
    let by_hand =
        format!("move them with `vctp db rename-vcenter --from {name} --to NAMESPACE/{name}`");
    match owners {
        Some([only]) if only == key => match store.rename_vcenter(name, key).await {
            Ok(renamed) => Ok(Legacy::Moved {
                rows: renamed.rows,
                bare: name.to_string(),
                key: key.to_string(),
            }),
            Err(RenameError::Store(e)) => Err(e),
            Err(refused) => Ok(left(refused.to_string())),
        },
        Some(owners) if owners.len() > 1 => Ok(left(format!(
            "{} VCenterTargets share that name ({}); {by_hand}",
            owners.len(),
            owners.join(", ")
        ))),
        _ => Ok(left(format!(
            "the operator did not name {key} as the only VCenterTarget of that name (--legacy-owners); {by_hand}"
        ))),
    }
}

/// The vSphere client trusts CA bundles from files; the file is removed when dropped.
pub fn write_ca_bundle(pem: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("vctp-vcenter-ca-")
        .suffix(".pem")
        .tempfile()?;
    file.write_all(pem.as_bytes())?;
    file.flush()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Tier;
    use std::collections::BTreeMap;

    fn spec(yaml: &str) -> VCenterTargetSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    const MINIMAL: &str =
        "url: https://vc01.example.com/sdk\ncredentialsSecretRef: {name: vc01-account}\n";

    fn credentials(ca_bundle: Option<&str>) -> Credentials {
        Credentials {
            username: "svc-vctp@vsphere.local".into(),
            password: "s3cret".into(),
            ca_bundle: ca_bundle.map(str::to_string),
        }
    }

    const RETRY: Retry = Retry {
        max_retries: 2,
        interval: Duration::from_secs(45),
    };

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn a_full_spec_becomes_the_collector_and_the_target_named_after_the_resource() {
        let spec = spec(
            "url: ' https://vc01.example.com/sdk '\ncredentialsSecretRef: {name: vc01-account}\nfilters:\n  tenantsToFilter: ['Decommissioned*', 'Lab-?']\n  nodeChargeClusters: ['SAP-HANA-*']\n  srmActiveActiveVms: ['dc-*']\npoolTiers:\n  Prod-Critical: Gold\n  Dev: Tin\nmaxObjects: 250\nconnectTimeoutSeconds: 7\nreadTimeoutSeconds: 90\n",
        );
        let plan = plan("vc01", &spec, &credentials(None), RETRY).unwrap();
        let c = &plan.collector;
        assert_eq!(c.username, "svc-vctp@vsphere.local");
        assert_eq!(c.password, "s3cret");
        assert_eq!(c.max_objects, 250);
        assert_eq!(c.connect_timeout, Duration::from_secs(7));
        assert_eq!(c.read_timeout, Duration::from_secs(90));
        assert_eq!(c.max_retries, 2);
        assert_eq!(c.retry_interval, Duration::from_secs(45));
        assert!(c.filters.tenants[0].matches("decommissioned-2019"));
        assert!(c.filters.tenants[1].matches("Lab-7"));
        assert!(!c.filters.tenants[1].matches("Lab-77"));
        assert!(c.filters.node_charge_clusters[0].matches("sap-hana-prod"));
        assert!(c.filters.srm_activeactive_vms[0].matches("DC-01"));
        assert_eq!(c.mapping.tier_of("prod-critical"), Some(Tier::Gold));
        assert_eq!(c.mapping.tier_of("Dev"), Some(Tier::Tin));
        // The default mapping still applies on top.
        assert_eq!(c.mapping.tier_of("Bronze"), Some(Tier::Bronze));
        assert_eq!(c.mapping.tier_of("Prod"), None);
        assert_eq!(
            plan.target,
            VcenterTarget {
                name: "vc01".into(),
                url: "https://vc01.example.com/sdk".into(),
                insecure: false,
                ca_file: None,
                allow_plain_http: false,
            }
        );
        assert_eq!(plan.ca_bundle, None);
    }

    #[test]
    fn omitted_fields_take_the_crd_defaults() {
        let plan = plan("vc01", &spec(MINIMAL), &credentials(None), RETRY).unwrap();
        assert_eq!(plan.collector.max_objects, 1_000);
        assert_eq!(plan.collector.connect_timeout, Duration::from_secs(10));
        assert_eq!(plan.collector.read_timeout, Duration::from_secs(120));
        assert!(plan.collector.filters.tenants.is_empty());
        assert_eq!(plan.collector.mapping.tier_of("gold"), Some(Tier::Gold));
    }

    #[test]
    fn insecure_skips_verification_and_ignores_a_ca_bundle() {
        let spec = spec(&format!("{MINIMAL}tls: {{insecure: true}}\n"));
        let plan = plan("lab", &spec, &credentials(Some("PEM")), RETRY).unwrap();
        assert!(plan.target.insecure);
        assert_eq!(plan.ca_bundle, None);
    }

    #[test]
    fn a_ca_bundle_from_the_environment_is_trusted() {
        let spec = spec(&format!(
            "{MINIMAL}tls:\n  caBundleConfigMapRef: {{name: corporate-ca, key: ca.crt}}\n"
        ));
        let pem = "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n";
        let plan = plan("vc01", &spec, &credentials(Some(pem)), RETRY).unwrap();
        assert!(!plan.target.insecure);
        assert_eq!(plan.ca_bundle.as_deref(), Some(pem));
    }

    #[test]
    fn a_ca_bundle_named_in_the_spec_but_missing_from_the_environment_is_named() {
        let spec = spec(&format!(
            "{MINIMAL}tls:\n  caBundleSecretRef: {{name: vc-ca, key: ca.crt}}\n"
        ));
        let err = plan("vc01", &spec, &credentials(None), RETRY).unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().contains("VCTP_VCENTER_CA_BUNDLE"), "{err}");
    }

    #[test]
    fn out_of_range_numbers_and_blank_patterns_name_their_field() {
        let err = plan(
            "vc01",
            &spec(&format!("{MINIMAL}maxObjects: 0\n")),
            &credentials(None),
            RETRY,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid VCenterTarget spec: `spec.maxObjects`: must be at least 1, got 0"
        );
        let err = plan(
            "vc01",
            &spec(&format!("{MINIMAL}readTimeoutSeconds: -5\n")),
            &credentials(None),
            RETRY,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`spec.readTimeoutSeconds`"),
            "{err}"
        );
        let err = plan(
            "vc01",
            &spec(&format!(
                "{MINIMAL}filters:\n  nodeChargeClusters: ['SAP*', '  ']\n"
            )),
            &credentials(None),
            RETRY,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`spec.filters.nodeChargeClusters[1]`"),
            "{err}"
        );
        assert_eq!(err.reason(), "InvalidSpec");
    }

    #[test]
    fn credentials_come_from_the_environment() {
        let creds = Credentials::from_env(env_of(&[
            ("VCTP_VCENTER_USERNAME", "reader"),
            ("VCTP_VCENTER_PASSWORD", "pw"),
            ("VCTP_VCENTER_CA_BUNDLE", "PEM"),
        ]))
        .unwrap();
        assert_eq!(creds, {
            let mut c = credentials(Some("PEM"));
            c.username = "reader".into();
            c.password = "pw".into();
            c
        });
        assert!(!format!("{creds:?}").contains("\"pw\""), "{creds:?}");
        let creds = Credentials::from_env(env_of(&[
            ("VCTP_VCENTER_USERNAME", "reader"),
            ("VCTP_VCENTER_PASSWORD", "pw"),
            ("VCTP_VCENTER_CA_BUNDLE", "\n"),
        ]))
        .unwrap();
        assert_eq!(creds.ca_bundle, None);
    }

    #[test]
    fn a_missing_or_empty_credential_variable_is_named() {
        let err = Credentials::from_env(env_of(&[("VCTP_VCENTER_PASSWORD", "pw")])).unwrap_err();
        assert!(err.is_bad_input());
        assert_eq!(err.reason(), "MissingEnvironment");
        assert!(
            err.to_string()
                .starts_with("environment variable VCTP_VCENTER_USERNAME is not set or empty"),
            "{err}"
        );
        let err = Credentials::from_env(env_of(&[
            ("VCTP_VCENTER_USERNAME", "reader"),
            ("VCTP_VCENTER_PASSWORD", ""),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("VCTP_VCENTER_PASSWORD"), "{err}");
    }
}
