//! The `VCenterTarget` controller: [`validate`] the spec (pure, the CRD's CEL rules
//! client-side) → `read` the account Secret and the CA bundle → log in and out of the
//! vCenter → [`status`] `Ready`/`Reachable`, version and last error (pure), written with an
//! Event when `Ready` turns, checked again every `recheck_every`.
//!
//! The snapshot fields of the status (`lastSnapshotTime`, rows, inventory size, the
//! `LastSnapshot` condition) belong to the `SnapshotSchedule` controller, which writes them
//! under its own field manager; this one never sends them.

use super::secrets;
use super::{Context, Error, condition, error_policy, now, replace_status};
use crate::crd::vcenter_target::{CONDITION_REACHABLE, TlsConfig};
use crate::crd::{CONDITION_READY, Condition, VCenterTarget, VCenterTargetStatus};
use crate::vsphere;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER: &str = "VCenterTarget";
/// How soon a target whose Secret or CA is missing is looked at again, at most (Secrets are
/// not watched: the operator may only `get` them).
const MISSING_INPUT_RECHECK: Duration = Duration::from_secs(60);

/// Reconciles the `VCenterTarget`s of `namespace` until the stream ends.
pub async fn run(ctx: Arc<Context>, namespace: String) {
    let targets = Api::<VCenterTarget>::namespaced(ctx.client.clone(), &namespace);
    let results =
        Controller::new(targets, watcher::Config::default()).run(reconcile, error_policy, ctx);
    super::drain(CONTROLLER, &namespace, results).await;
}

async fn reconcile(target: Arc<VCenterTarget>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::reconcile_fresh(CONTROLLER, target.as_ref(), &ctx, reconcile_target).await
}

/// This controller's part of the status (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcenter_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub last_check_time: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The spec is invalid; nothing was tried.
    Invalid {
        reason: &'static str,
        message: String,
    },
    /// The Secret or CA bundle is missing or incomplete; the vCenter was not tried.
    MissingInput {
        reason: &'static str,
        message: String,
    },
    /// The vCenter answered a login.
    Reachable { version: String },
    /// The login failed.
    Unreachable {
        reason: &'static str,
        message: String,
    },
}

/// The status a check leads to, from the previous conditions.
pub fn status(previous: &[Condition], check: &Check, generation: Option<i64>) -> CheckStatus {
    let at = now();
    let (ready, reachable, version, error) = match check {
        Check::Reachable { version } => (
            (
                true,
                "Reachable",
                format!("vCenter {version} accepted the account"),
            ),
            Some((
                true,
                "LoginSucceeded",
                format!("logged in and out as the account of the Secret ({version})"),
            )),
            Some(version.clone()),
            None,
        ),
        Check::Unreachable { reason, message } => (
            (false, *reason, message.clone()),
            Some((false, *reason, message.clone())),
            None,
            Some(message.clone()),
        ),
        Check::Invalid { reason, message } | Check::MissingInput { reason, message } => (
            (false, *reason, message.clone()),
            None,
            None,
            Some(message.clone()),
        ),
    };
    let mut conditions = vec![condition(
        previous,
        CONDITION_READY,
        ready.0,
        ready.1,
        ready.2,
        generation,
        at.clone(),
    )];
    if let Some((ok, reason, message)) = reachable {
        conditions.push(condition(
            previous,
            CONDITION_REACHABLE,
            ok,
            reason,
            message,
            generation,
            at.clone(),
        ));
    }
    CheckStatus {
        conditions,
        vcenter_version: version,
        last_error: error,
        last_check_time: at,
        observed_generation: generation,
    }
}

async fn reconcile_target(target: &VCenterTarget, ctx: &Context) -> Result<Action, Error> {
    let previous = target.status.clone().unwrap_or_default();
    let generation = target.meta().generation;
    let check = match validate(target) {
        Err((reason, message)) => Check::Invalid { reason, message },
        Ok(()) => match read(ctx, target).await? {
            Err((reason, message)) => Check::MissingInput { reason, message },
            Ok(inputs) => login(target, &inputs).await,
        },
    };
    let next = status(&previous.conditions, &check, generation);
    let was_ready = previous
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)
        .map(|c| c.status == "True");
    let ready = next.conditions[0].clone();
    if was_ready != Some(ready.status == "True") {
        let kind = if ready.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.event(target, kind, &ready.reason, "Check", ready.message.clone())
            .await;
    }
    let (current, wanted) = status_patch_sides(&previous, &next);
    replace_status(ctx, target, &current, &wanted).await?;
    match check {
        Check::Invalid { reason, message } => Err(Error::invalid_spec(target, reason, message)),
        Check::MissingInput { .. } => Ok(Action::requeue(
            MISSING_INPUT_RECHECK.min(ctx.recheck_every),
        )),
        _ => Ok(Action::requeue(ctx.recheck_every)),
    }
}

/// The two sides of this controller's status write: the fields it owns as they are now, and
/// as they should be. Conditions of other types (the schedule's `LastSnapshot`) are carried
/// over, and the schedule's snapshot fields are left out of both, so the merge patch between
/// them never touches what the `SnapshotSchedule` controller writes.
fn status_patch_sides(
    status: &VCenterTargetStatus,
    next: &CheckStatus,
) -> (serde_json::Value, serde_json::Value) {
    const OWNED: [&str; 5] = [
        "conditions",
        "vcenterVersion",
        "lastError",
        "lastCheckTime",
        "observedGeneration",
    ];
    let owned_of = |value: serde_json::Value| -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => map
                .into_iter()
                .filter(|(key, _)| OWNED.contains(&key.as_str()))
                .collect(),
            other => other,
        }
    };
    let mut wanted = next.clone();
    let mine: Vec<String> = wanted.conditions.iter().map(|c| c.type_.clone()).collect();
    wanted.conditions.extend(
        status
            .conditions
            .iter()
            .filter(|c| c.type_ != CONDITION_REACHABLE && !mine.contains(&c.type_))
            .cloned(),
    );
    (
        owned_of(serde_json::to_value(status).unwrap_or_default()),
        owned_of(serde_json::to_value(&wanted).unwrap_or_default()),
    )
}

/// The CRD's CEL rules, for API servers that do not enforce them.
pub fn validate(target: &VCenterTarget) -> Result<(), (&'static str, String)> {
    target
        .validate_cel()
        .map_err(|e| ("InvalidSpec", format!("{e:?}")))
}

/// The account and the CA bundle, read from the Secret/ConfigMap the spec names.
pub struct Inputs {
    pub username: String,
    pub password: String,
    pub ca_bundle: Option<String>,
}

type Missing = (&'static str, String);

/// Reads the inputs. A missing Secret, ConfigMap or key, or a Secret not opted in
/// ([`secrets`]), is `Ok(Err(missing))` (the status says so and the check is retried); an
/// API failure is an `Err` (backoff).
async fn read(ctx: &Context, target: &VCenterTarget) -> Result<Result<Inputs, Missing>, Error> {
    let namespace = target.namespace().unwrap_or_default();
    let refs = &target.spec.credentials_secret_ref;
    let secret =
        match secrets::get(ctx, &namespace, &refs.name, "spec.credentialsSecretRef").await? {
            Ok(secret) => secret,
            Err(refused) => return Ok(Err(refused)),
        };
    let secret_value = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| {
                String::from_utf8_lossy(&v.0)
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            })
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                (
                    "SecretKeyMissing",
                    format!(
                        "Secret {namespace}/{} has no non-empty key {key:?}",
                        refs.name
                    ),
                )
            })
    };
    let username = match secret_value(&refs.username_key) {
        Ok(v) => v,
        Err(missing) => return Ok(Err(missing)),
    };
    let password = match secret_value(&refs.password_key) {
        Ok(v) => v,
        Err(missing) => return Ok(Err(missing)),
    };
    let ca_bundle = match &target.spec.tls {
        Some(TlsConfig {
            ca_bundle_secret_ref: Some(r),
            ..
        }) => {
            let secret =
                match secrets::get(ctx, &namespace, &r.name, "spec.tls.caBundleSecretRef").await? {
                    Ok(secret) => Some(secret),
                    Err((secrets::NOT_OPTED_IN, message)) => {
                        return Ok(Err((secrets::NOT_OPTED_IN, message)));
                    }
                    Err(_) => None,
                };
            let value = secret.and_then(|s| {
                s.data?
                    .get(&r.key)
                    .map(|v| String::from_utf8_lossy(&v.0).to_string())
            });
            match value {
                Some(pem) => Some(pem),
                None => {
                    return Ok(Err((
                        "CaBundleNotFound",
                        format!(
                            "Secret {namespace}/{} has no key {:?} (spec.tls.caBundleSecretRef)",
                            r.name, r.key
                        ),
                    )));
                }
            }
        }
        Some(TlsConfig {
            ca_bundle_config_map_ref: Some(r),
            ..
        }) => {
            let config_map = Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(&r.name)
                .await
                .map_err(|source| Error::api("read", "ConfigMap", &namespace, &r.name, source))?;
            match config_map.and_then(|c| c.data?.get(&r.key).cloned()) {
                Some(pem) => Some(pem),
                None => {
                    return Ok(Err((
                        "CaBundleNotFound",
                        format!(
                            "ConfigMap {namespace}/{} has no key {:?} (spec.tls.caBundleConfigMapRef)",
                            r.name, r.key
                        ),
                    )));
                }
            }
        }
        _ => None,
    };
    if let Some(pem) = &ca_bundle
        && !pem.contains("-----BEGIN CERTIFICATE-----")
    {
        return Ok(Err((
            "InvalidCaBundle",
            "the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        )));
    }
    Ok(Ok(Inputs {
        username,
        password,
        ca_bundle,
    }))
}

/// Logs in and out; the CA bundle goes through a temporary file, as the client reads one.
async fn login(target: &VCenterTarget, inputs: &Inputs) -> Check {
    let ca_file = match &inputs.ca_bundle {
        Some(pem) => match crate::jobs::snapshot::write_ca_bundle(pem) {
            Ok(file) => Some(file),
            Err(e) => {
                return Check::Unreachable {
                    reason: "CaBundleUnwritable",
                    message: format!("failed to write the CA bundle to a temporary file: {e}"),
                };
            }
        },
        None => None,
    };
    let endpoint = target.spec.endpoint(
        inputs.username.clone(),
        inputs.password.clone(),
        ca_file.as_ref().map(|f| f.path().to_path_buf()),
    );
    match vsphere::Client::login(&endpoint).await {
        Ok(client) => {
            let about = client.about();
            let version = format!("{} build-{}", about.version, about.build);
            if let Err(e) = client.logout().await {
                tracing::warn!(target = %target.name_any(), error = %e, "logout after the check failed");
            }
            Check::Reachable { version }
        }
        Err(e) => Check::Unreachable {
            reason: e.reason(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(tls: &str) -> VCenterTarget {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: vctp.io/v1alpha1
kind: VCenterTarget
metadata: {{name: vc01, namespace: finance, generation: 3}}
spec:
  url: https://vc01.example.com/sdk
  credentialsSecretRef: {{name: vc01-account}}
{tls}
"#
        ))
        .unwrap()
    }

    #[test]
    fn a_ca_bundle_together_with_insecure_is_refused_before_any_connection() {
        let both =
            target("  tls:\n    insecure: true\n    caBundleSecretRef: {name: ca, key: ca.crt}");
        let (reason, message) = validate(&both).unwrap_err();
        assert_eq!(reason, "InvalidSpec");
        assert!(message.contains("mutually exclusive"), "{message}");
        assert!(validate(&target("  tls: {insecure: true}")).is_ok());
    }

    #[test]
    fn a_plain_http_url_is_refused_unless_allow_plain_http() {
        let plain = |extra: &str| {
            let mut target = target(extra);
            target.spec.url = "http://vc01.example.com/sdk".into();
            target
        };
        let (reason, message) = validate(&plain("")).unwrap_err();
        assert_eq!(reason, "InvalidSpec");
        assert!(
            message.contains("in clear") && message.contains("allowPlainHttp: true"),
            "{message}"
        );
        assert!(validate(&plain("  allowPlainHttp: true")).is_ok());
        assert!(validate(&target("")).is_ok());
    }

    #[test]
    fn a_reachable_vcenter_is_ready_with_its_version() {
        let status = status(
            &[],
            &Check::Reachable {
                version: "8.0.2 build-22617221".into(),
            },
            Some(3),
        );
        let types: Vec<(&str, &str)> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(types, [("Ready", "True"), ("Reachable", "True")]);
        assert_eq!(
            status.vcenter_version.as_deref(),
            Some("8.0.2 build-22617221")
        );
        assert_eq!(status.last_error, None);
        assert_eq!(status.observed_generation, Some(3));
    }

    #[test]
    fn a_failed_login_is_neither_ready_nor_reachable_and_keeps_the_error() {
        let status = status(
            &[],
            &Check::Unreachable {
                reason: "InvalidLogin",
                message: "failed to log in: wrong user name or password".into(),
            },
            Some(3),
        );
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.status == "False" && c.reason == "InvalidLogin")
        );
        assert!(status.last_error.unwrap().contains("wrong user name"));
        // Left out, so server-side apply removes it: a vCenter that refuses the login has
        // no version this check can vouch for.
        assert_eq!(status.vcenter_version, None);
    }

    #[test]
    fn the_status_write_keeps_the_schedules_condition_and_fields_and_clears_a_stale_error() {
        let previous: VCenterTargetStatus = serde_json::from_value(serde_json::json!({
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "InvalidLogin", "message": "no",
                 "lastTransitionTime": "2026-03-10T14:00:00Z"},
                {"type": "LastSnapshot", "status": "True", "reason": "Succeeded", "message": "412 rows",
                 "lastTransitionTime": "2026-03-10T14:00:00Z"},
            ],
            "lastError": "failed to log in",
            "lastSnapshotRows": 412,
        }))
        .unwrap();
        let next = status(
            &previous.conditions,
            &Check::Reachable {
                version: "8.0.2 build-1".into(),
            },
            Some(3),
        );
        let (current, wanted) = status_patch_sides(&previous, &next);
        assert!(
            current.get("lastSnapshotRows").is_none() && wanted.get("lastSnapshotRows").is_none()
        );
        let patch = super::super::merge_patch(&current, &wanted).unwrap();
        assert_eq!(patch["lastError"], serde_json::Value::Null);
        let types: Vec<&str> = patch["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Ready", "Reachable", "LastSnapshot"]);
    }

    /// The real reconcile against a scripted API server: the Secret has the account but not
    /// the opt-in label, so no login is tried and the target says which label to add.
    #[tokio::test]
    async fn a_secret_without_the_opt_in_label_is_not_used_and_the_status_says_which_label_to_add()
    {
        use crate::operator::scenario::{self, expect};
        const TARGET: &str = "/apis/vctp.io/v1alpha1/namespaces/finance/vcentertargets/vc01";
        let (ctx, mut api) = scenario::context();
        let target = target("");
        let json = serde_json::to_value(&target).unwrap();
        let secret = |labels: serde_json::Value| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "vc01-account", "namespace": "finance", "labels": labels},
                "data": {"username": "dXNlcg==", "password": "c2VjcmV0LXBhc3N3b3Jk"},
            })
        };
        let result = scenario::run(reconcile(Arc::new(target), ctx), async move {
            expect(&mut api, "GET", TARGET, 200, json.clone()).await;
            let unlabelled = secret(serde_json::json!({"app": "vctp"}));
            let path = "/api/v1/namespaces/finance/secrets/vc01-account";
            expect(&mut api, "GET", path, 200, unlabelled).await;
            let event = expect(
                &mut api,
                "POST",
                "/apis/events.k8s.io/v1/namespaces/finance/events",
                201,
                serde_json::Value::Null,
            )
            .await;
            assert_eq!(event["reason"], "SecretNotOptedIn", "{event}");
            let status = expect(&mut api, "PATCH", &format!("{TARGET}/status"), 200, json).await;
            let ready = &status["status"]["conditions"][0];
            assert_eq!(
                (&ready["type"], &ready["status"]),
                (&"Ready".into(), &"False".into())
            );
            assert_eq!(ready["reason"], "SecretNotOptedIn");
            let message = ready["message"].as_str().unwrap();
            assert!(message.contains("finance/vc01-account"), "{message}");
            assert!(message.contains("vctp.io/credentials=true"), "{message}");
        })
        .await;
        // No login was tried (no request to the vCenter URL); the target is looked at again.
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn a_missing_secret_makes_the_target_not_ready_without_judging_reachability() {
        let status = status(
            &[],
            &Check::MissingInput {
                reason: "SecretNotFound",
                message: "Secret finance/vc01-account (spec.credentialsSecretRef) does not exist"
                    .into(),
            },
            Some(3),
        );
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].type_, "Ready");
        assert_eq!(status.conditions[0].reason, "SecretNotFound");
    }
}
