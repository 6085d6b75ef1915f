//! The Secrets the operator may use: only those opted in with the label
//! `vctp.io/credentials: "true"`. The operator's RBAC has to allow `get` on every Secret of
//! a watched namespace (RBAC cannot select by label), and whoever writes a `VCenterTarget` or
//! `MetricsExport` chooses both the Secret and the URL its values are sent to; the label lets
//! only Secrets their owner marked for vctp be read, or mounted into a Job, by the operator.

use super::{Context, Error};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::Api;

/// The label a Secret needs before the operator reads or mounts it.
pub const CREDENTIALS_LABEL: &str = "vctp.io/credentials";
/// The condition and Event reason of a resource naming a Secret without the label.
pub const NOT_OPTED_IN: &str = "SecretNotOptedIn";
/// The condition and Event reason of a resource naming a Secret that does not exist.
pub const NOT_FOUND: &str = "SecretNotFound";

/// Why a Secret a resource names cannot be used: a condition reason and its message.
pub type Refusal = (&'static str, String);

/// Whether `secret` carries `vctp.io/credentials: "true"`.
pub fn opted_in(secret: &Secret) -> bool {
    secret
        .labels()
        .get(CREDENTIALS_LABEL)
        .is_some_and(|value| value == "true")
}

/// The message of a Secret without the label: which Secret, named where, and the command
/// that opts it in.
pub fn not_opted_in(namespace: &str, name: &str, field: &str) -> String {
    format!(
        "Secret {namespace}/{name} ({field}) is not labelled {CREDENTIALS_LABEL}=\"true\"; the operator reads and mounts only Secrets opted in for vctp: kubectl label secret -n {namespace} {name} {CREDENTIALS_LABEL}=true"
    )
}

/// Gets the Secret `name` that `field` of a resource names: `Ok(Err(refusal))` when it does
/// not exist or is not opted in (the status says so and the check is retried), `Err` when
/// the API fails (backoff).
pub async fn get(
    ctx: &Context,
    namespace: &str,
    name: &str,
    field: &str,
) -> Result<Result<Secret, Refusal>, Error> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| Error::api("read", "Secret", namespace, name, source))?;
    Ok(match secret {
        None => Err((
            NOT_FOUND,
            format!("Secret {namespace}/{name} ({field}) does not exist"),
        )),
        Some(secret) if !opted_in(&secret) => {
            Err((NOT_OPTED_IN, not_opted_in(namespace, name, field)))
        }
        Some(secret) => Ok(secret),
    })
}

/// Checks every Secret of `refs` (field, name), in order: the first refusal, if any. For
/// the Secrets a Job mounts (`secretKeyRef`), which the operator itself does not read.
pub async fn check_all(
    ctx: &Context,
    namespace: &str,
    refs: &[(String, String)],
) -> Result<Result<(), Refusal>, Error> {
    for (field, name) in refs {
        if let Err(refusal) = get(ctx, namespace, name, field).await? {
            return Ok(Err(refusal));
        }
    }
    Ok(Ok(()))
}

/// The condition and Event reason of a ConfigMap the Jobs need that does not exist.
pub const CONFIG_MAP_NOT_FOUND: &str = "ConfigMapNotFound";

/// The first Secret or ConfigMap of the Job template that `namespace` lacks, if any: a Job
/// created without it would only sit in `CreateContainerConfigError`. Only existence is
/// checked (these are the chart's objects, mounted by every Job, not a user's choice).
pub async fn missing_prerequisite(
    ctx: &Context,
    namespace: &str,
) -> Result<Option<Refusal>, Error> {
    for needed in ctx.template.prerequisites() {
        let (found, reason) = match needed.kind {
            "Secret" => (
                exists::<Secret>(ctx, namespace, &needed.name).await?,
                NOT_FOUND,
            ),
            _ => (
                exists::<ConfigMap>(ctx, namespace, &needed.name).await?,
                CONFIG_MAP_NOT_FOUND,
            ),
        };
        if !found {
            return Ok(Some((
                reason,
                format!(
                    "{} {namespace}/{} ({} of the Job template) does not exist; every watched namespace needs it before Jobs can run there",
                    needed.kind, needed.name, needed.used_as
                ),
            )));
        }
    }
    Ok(None)
}

async fn exists<K>(ctx: &Context, namespace: &str, name: &str) -> Result<bool, Error>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(ctx.client.clone(), namespace)
        .get_metadata_opt(name)
        .await
        .map(|found| found.is_some())
        .map_err(|source| Error::api("read", &K::kind(&()), namespace, name, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(labels: serde_json::Value) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "vc01-account", "namespace": "finance", "labels": labels},
        }))
        .unwrap()
    }

    #[test]
    fn only_a_secret_labelled_true_is_opted_in() {
        assert!(opted_in(&secret(
            serde_json::json!({CREDENTIALS_LABEL: "true"})
        )));
        for labels in [
            serde_json::json!({}),
            serde_json::json!({CREDENTIALS_LABEL: "false"}),
            serde_json::json!({CREDENTIALS_LABEL: "yes"}),
            serde_json::json!({"vctp.io/other": "true"}),
        ] {
            assert!(!opted_in(&secret(labels.clone())), "{labels}");
        }
    }

    #[test]
    fn the_refusal_names_the_secret_the_field_and_the_label_to_add() {
        let message = not_opted_in("finance", "vc01-account", "spec.credentialsSecretRef");
        for part in [
            "finance/vc01-account",
            "spec.credentialsSecretRef",
            "kubectl label secret -n finance vc01-account vctp.io/credentials=true",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }
}
