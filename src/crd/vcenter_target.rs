//! `VCenterTarget` (short `vct`): one vCenter to snapshot — its SDK URL, the Secret with the
//! account, how to trust its certificate, the snapshot filters and the pool → tier mapping.

use super::{ConfigMapKeyRef, DATA_KEY_PATTERN, SecretKeyRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Condition type: the vCenter answered a login with the configured account.
pub const CONDITION_REACHABLE: &str = "Reachable";

/// The key a `VCenterTarget`'s snapshot data is stored under: `NAMESPACE/NAME`, so targets
/// of one name in two namespaces never share rows. (The vCenter host is kept beside it for
/// display; settings `vcenters[]` keep their names as keys.)
pub fn data_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// A vCenter whose virtual machines are snapshotted every hour.
// clippy takes the repeated `type_`/`priority` keys of the `printcolumn(…)` lists for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vctp.io",
    version = "v1alpha1",
    kind = "VCenterTarget",
    plural = "vcentertargets",
    shortname = "vct",
    category = "vctp",
    namespaced,
    status = "VCenterTargetStatus",
    derive = "PartialEq",
    cel,
    doc = "A vCenter whose virtual machines vctp snapshots every hour: SDK URL, account Secret, TLS trust, snapshot filters and the resource pool to tier mapping.",
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".spec.url",
        description = "SDK URL of the vCenter"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the last snapshot succeeded"
    ),
    printcolumn(
        name = "Reachable",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Reachable\")].status",
        description = "Whether the vCenter answered a login",
        priority = 1
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.vcenterVersion",
        description = "vCenter version"
    ),
    printcolumn(
        name = "VMs",
        type_ = "integer",
        json_path = ".status.inventorySize",
        description = "Virtual machines in the inventory"
    ),
    printcolumn(
        name = "Last Snapshot",
        type_ = "date",
        json_path = ".status.lastSnapshotTime",
        description = "When the last successful snapshot was taken"
    ),
    printcolumn(
        name = "Error",
        type_ = "string",
        json_path = ".status.lastError",
        description = "The last error",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("!self.url.startsWith('http://') || (has(self.allowPlainHttp) && self.allowPlainHttp)")
        .message("an http:// url sends the vCenter password in clear: use https://, or set allowPlainHttp: true if plain HTTP is really meant")
)]
#[serde(rename_all = "camelCase")]
pub struct VCenterTargetSpec {
    /// SDK URL of the vCenter, e.g. `https://vcenter01.example.com/sdk`. The snapshot rows
    /// of this vCenter are stored under the name of this resource.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^https?://[^\s/?#]+(/[^\s]*)?$")
    )]
    pub url: String,
    /// Allow an `http://` url. Plain HTTP sends the password in clear, so such a url is
    /// refused unless this is true; every login over it logs a warning.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// The Secret holding the account that reads the inventory (a read-only role is enough).
    pub credentials_secret_ref: CredentialsSecretRef,
    /// How the vCenter's certificate is verified [default: against the system trust store].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Virtual machines left out of the snapshots, or marked in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<SnapshotFilters>,
    /// Resource pool name → chargeback tier (`Tin`, `Bronze`, `Silver` or `Gold`), besides the
    /// pools named after a tier (matched case-insensitively). Pools in neither have no tier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pool_tiers: BTreeMap<String, PoolTier>,
    /// Objects per `RetrievePropertiesEx` page.
    #[serde(default = "default_max_objects")]
    #[schemars(range(min = 1, max = 100_000))]
    pub max_objects: i32,
    /// Seconds allowed to open the connection to the vCenter.
    #[serde(default = "default_connect_timeout_seconds")]
    #[schemars(range(min = 1, max = 600))]
    pub connect_timeout_seconds: i32,
    /// Seconds of silence allowed in the middle of a response.
    #[serde(default = "default_read_timeout_seconds")]
    #[schemars(range(min = 1, max = 3_600))]
    pub read_timeout_seconds: i32,
}

fn default_max_objects() -> i32 {
    1_000
}

fn default_connect_timeout_seconds() -> i32 {
    10
}

fn default_read_timeout_seconds() -> i32 {
    120
}

impl VCenterTargetSpec {
    /// How to reach and log in to this vCenter with the account read from its Secret;
    /// `ca_file` holds the CA bundle (the client reads PEM from a file).
    pub fn endpoint(
        &self,
        username: String,
        password: String,
        ca_file: Option<std::path::PathBuf>,
    ) -> crate::vsphere::Endpoint {
        let insecure = self.tls.as_ref().is_some_and(|t| t.insecure);
        crate::vsphere::Endpoint {
            url: self.url.clone(),
            username,
            password,
            tls: if insecure {
                crate::vsphere::Tls::Insecure
            } else {
                crate::vsphere::Tls::Verify { ca_file }
            },
            allow_plain_http: self.allow_plain_http,
            connect_timeout: seconds(self.connect_timeout_seconds),
            read_timeout: seconds(self.read_timeout_seconds),
            limits: crate::vsphere::Limits::default(),
        }
    }
}

fn seconds(n: i32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(n).unwrap_or(1).max(1))
}

/// The Secret with the vCenter account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret, in the namespace of this resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the user name in the Secret.
    #[serde(default = "default_username_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub username_key: String,
    /// Key of the password in the Secret.
    #[serde(default = "default_password_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DATA_KEY_PATTERN))]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

impl CredentialsSecretRef {
    /// The Secret key holding the user name.
    pub fn username(&self) -> SecretKeyRef {
        SecretKeyRef {
            name: self.name.clone(),
            key: self.username_key.clone(),
        }
    }

    /// The Secret key holding the password.
    pub fn password(&self) -> SecretKeyRef {
        SecretKeyRef {
            name: self.name.clone(),
            key: self.password_key.clone(),
        }
    }
}

/// Certificate verification: a CA bundle to trust (from a Secret or a ConfigMap), or an
/// explicit `insecure: true`; at most one of the three.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("!(has(self.caBundleSecretRef) && has(self.caBundleConfigMapRef))")
        .message("set at most one of caBundleSecretRef and caBundleConfigMapRef"),
    validation = Rule::new("!(has(self.insecure) && self.insecure && (has(self.caBundleSecretRef) || has(self.caBundleConfigMapRef)))")
        .message("caBundle and insecure are mutually exclusive: trust a CA bundle or skip verification, not both")
)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// PEM CA certificates to trust, from a Secret key (e.g. `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyRef>,
    /// PEM CA certificates to trust, from a ConfigMap key (e.g. `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_config_map_ref: Option<ConfigMapKeyRef>,
    /// Skip certificate verification (lab vCenters with self-signed certificates only).
    #[serde(default)]
    pub insecure: bool,
}

/// Which virtual machines a snapshot leaves out or marks. Patterns use `*` and `?` and match
/// any case.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotFilters {
    /// Resource pool or folder names whose virtual machines are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 256)))]
    pub tenants_to_filter: Vec<String>,
    /// Clusters charged per node: their virtual machines are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 256)))]
    pub node_charge_clusters: Vec<String>,
    /// Names of virtual machines replicated active/active by SRM: the powered-off copy is
    /// marked as an SRM placeholder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 256)))]
    pub srm_active_active_vms: Vec<String>,
}

/// A chargeback tier.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PoolTier {
    Tin,
    Bronze,
    Silver,
    Gold,
}

impl From<PoolTier> for crate::inventory::Tier {
    fn from(tier: PoolTier) -> Self {
        match tier {
            PoolTier::Tin => crate::inventory::Tier::Tin,
            PoolTier::Bronze => crate::inventory::Tier::Bronze,
            PoolTier::Silver => crate::inventory::Tier::Silver,
            PoolTier::Gold => crate::inventory::Tier::Gold,
        }
    }
}

/// What the operator last saw of the vCenter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VCenterTargetStatus {
    /// `Ready` (the spec is valid, the Secret and CA bundle are there and the vCenter
    /// accepted the account), `Reachable` (the vCenter answered a login) and `LastSnapshot`
    /// (the last snapshot's outcome, set by the `SnapshotSchedule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The vCenter's version and build, e.g. `8.0.2 build-22617221`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcenter_version: Option<String>,
    /// Snapshot time of the last successful snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot_time: Option<Time>,
    /// Rows stored by the last successful snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot_rows: Option<i64>,
    /// Virtual machines (templates included) in the inventory at the last snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_size: Option<i64>,
    /// The last error, cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the operator last checked the vCenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
}
