#!/usr/bin/env python3
"""Lint, render and validate the Helm chart charts/vctp; scripts/test.sh runs it.

There is no helm binary here: helm-python-sdk (Helm 4 as a library) lints and renders, the
kubernetes-validate package checks every object of a built-in kind against the Kubernetes
1.31 OpenAPI schemas, promtool checks and unit-tests the alert rules, and the vctp binary
itself loads the rendered settings file. Run it with the venv that scripts/helm.sh makes:

    source scripts/helm.sh && helm_start
    "$VCTP_TEST_HELM_PYTHON" scripts/chart_check.py --vctp target/debug/vctp

What it does, for the default values and each charts/vctp/ci/*-values.yaml file:
  1. `helm lint --strict` (any warning or error fails);
  2. renders the chart (`helm template`) and writes every manifest to --out/<case>/;
  3. kubernetes-validate -k 1.31 --strict on all built-in kinds, including the Job template
     the operator reads from its ConfigMap; ServiceMonitor/PrometheusRule and vctp.io objects
     are listed as skipped;
  4. asserts: restricted security context on every pod spec; RBAC with no `*`, Secrets `get`
     only, namespaced Roles only (besides the aggregated view/edit ClusterRoles), every right the operator and the Jobs need and no more, and
     exactly create/get/list on aggregationjobs for the API server; the API server's
     Deployment (command, env, probes, auth Secrets as secretKeyRef only), Service, Ingress,
     ServiceMonitor and PDB, none of them when api.enabled is false; the NetworkPolicies of
     the API and operator pods (on by default) and their peers and ports;
     standard labels on every object; Services, ServiceMonitor, PDB and ConfigMap/
     ServiceAccount references that resolve; CRD templates that carry
     helm.sh/resource-policy: keep and match crds/*.yaml;
  5. promtool check + unit tests of the PrometheusRule alerts (operator and/or API scraped);
  6. the settings file loads in `vctp db migrate` (with --vctp), auth keys only with
     api.auth.enabled and no secret in any ConfigMap;
  7. the operator (with --vctp) builds a Job from the rendered template with the Deployment's
     VCTP_INSTANCE, and NOTES.txt's `kubectl get jobs -l …` selects it and its Pod;
     extraVolumes/extraVolumeMounts reach the operator, API and Job pods; the only
     ClusterRoles are the aggregated view/edit ones;
and once: values.schema.json and the templates reject bad values (an API Ingress with auth
off unless api.auth.allowUnauthenticatedIngress, which then renders; no image.repository), its
`settings` keys match src/config.rs, README.md documents every value, appVersion matches
Cargo.toml; the PodDisruptionBudgets' apiVersion follows the cluster (renders for 1.20, 1.24
and 1.31 with their API versions) and a dry-run install for 1.19 fails on kubeVersion.

Exits 1 with one line per problem, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import helm_python as helm
    import jsonschema
    import yaml
    from helm_python import Chart, HelmError
except ImportError as exc:  # pragma: no cover - a usage error, not a check failure
    sys.exit(
        f"chart_check: {exc}; run it with the venv python of scripts/helm.sh "
        '(source scripts/helm.sh && helm_start && "$VCTP_TEST_HELM_PYTHON" scripts/chart_check.py)'
    )

# Beside this file: renders for a given Kubernetes version, as `helm template`/`install` would.
from chart_render import install_dry_run, render_for_cluster  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "vctp"
# A release name without "vctp" in it, so object names take the "<release>-vctp" form.
RELEASE = "finance"
NAMESPACE = "vctp-system"
KUBE_VERSION = "1.31"
# No image is published for vctp, so the chart requires image.repository: every render here
# gives one (a case's values file may set its own), except the check that the chart refuses
# to render without it.
IMAGE = {"image": {"repository": "registry.example.com/platform/vctp"}}
# The default values, then each CI values file (relative to the chart).
CASES = [
    ("default", None),
    ("minimal", "ci/minimal-values.yaml"),
    ("all-features", "ci/all-features-values.yaml"),
    ("api-auth", "ci/api-auth-values.yaml"),
]
CUSTOM_GROUPS = {"monitoring.coreos.com", "vctp.io"}
CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"}
# The kinds, when crds/ has no generated files yet to read them from.
FALLBACK_PLURALS = {"vcentertargets", "snapshotschedules", "aggregationjobs", "metricsexports"}
# Keys of the settings file that the chart sets from other values or that belong in Secrets or
# VCenterTarget resources; values.schema.json rejects them under `settings`.
SETTINGS_NOT_IN_VALUES = {
    "database_url",
    "vcenter_password",
    "encryption_key",  # Secrets
    "reports_url",
    "reports_dir",
    "object_store_options",  # objectStore.*
    "vcenter_addresses",
    "vcenters",
    "vcenter_username",
    "vcenter_insecure",
    "vcenter_allow_plain_http",
    "vcenter_ca_file",  # VCenterTarget resources
    "metrics_exports",  # MetricsExport resources
    "rate_cards",
    "tenant_rules",  # rateCards, tenantRules
    "bind_ip",
    "bind_port",  # VCTP_LISTEN
    "bind_disable_tls",
    "tls_cert_filename",
    "tls_key_filename",  # VCTP_DISABLE_TLS: TLS ends at the Ingress
    "vcenter_event_polling_seconds",
    "vcenter_inventory_polling_seconds",
    "enable_legacy_api",
    "vcenter_inventory_aggregate_seconds",
    "hourly_index_max_age_days",
    "capture_write_batch_size",
    "snapshot_table_compat_mode",
    "async_report_generation",
    "postgres_vm_hourly_partitioning_enabled",  # vCTP keys vctp ignores
}
# Keys of the settings file the chart renders from api.auth.* (only with api.auth.enabled);
# values.schema.json rejects them under `settings`.
SETTINGS_FROM_API_AUTH = {
    "auth_enabled",
    "auth_mode",
    "auth_group_role_mappings",
    "auth_token_lifespan_minutes",
    "auth_jwt_issuer",
    "auth_jwt_audience",
    "auth_clock_skew_seconds",
    "enable_pprof",
    "ldap_bind_address",
    "ldap_base_dn",
    "ldap_user_base_dn",
    "ldap_user_attribute",
    "ldap_groups",
    "ldap_trust_cert_file",
    "ldap_disable_validation",
    "ldap_insecure",
}
# Settings keys that hold secrets: never in a ConfigMap, never under `settings` (the API gets
# them as env vars from Secrets: VCTP_AUTH_JWT_SIGNING_KEY, VCTP_LDAP_BIND_DN/PASSWORD).
SECRET_SETTINGS = {
    "database_url",
    "vcenter_password",
    "encryption_key",
    "auth_jwt_signing_key",
    "ldap_bind_dn",
    "ldap_bind_password",
}
# Env vars that carry secrets: only ever from a Secret (secretKeyRef).
SECRET_ENV = {
    "VCTP_DATABASE_URL",
    "VCTP_AUTH_JWT_SIGNING_KEY",
    "VCTP_LDAP_BIND_DN",
    "VCTP_LDAP_BIND_PASSWORD",
}
# Where the API pod finds the LDAP CA bundle (templates/_helpers.tpl, vctp.api.ldapCaFile).
LDAP_CA_FILE = "/etc/vctp-ldap/ca.crt"
# Settings keys of the LDAP server options and the login rate limit that need no value from the
# chart (vctp's defaults).
SETTINGS_NOT_RENDERED = {
    "ldap_timeout_seconds",
    "auth_login_max_attempts_per_address",
    "auth_login_max_attempts_per_username",
    "auth_login_window_seconds",
}
# Everything a Job may do (and must be able to do): read the resource it works for; an export
# Job also patches its MetricsExport's progress and publishes Events.
JOB_MAY = {
    ("vctp.io", "vcentertargets"): {"get"},
    ("vctp.io", "aggregationjobs"): {"get"},
    ("vctp.io", "metricsexports"): {"get"},
    ("vctp.io", "metricsexports/status"): {"patch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}

# What the operator must be able to do (README.md, "RBAC"); resources are checked per CRD plural.
OPERATOR_NEEDS = [
    ("batch", "jobs", {"get", "list", "watch", "create", "delete", "patch"}),
    ("", "pods", {"get", "list", "watch"}),
    ("", "events", {"create", "patch"}),
    ("events.k8s.io", "events", {"create", "patch"}),
    ("", "secrets", {"get"}),
    ("", "configmaps", {"get"}),
]
# The aggregated ClusterRoles: the four kinds in the built-in view, and in edit and admin.
AGGREGATE_VIEW_LABELS = ("rbac.authorization.k8s.io/aggregate-to-view",)
AGGREGATE_EDIT_LABELS = ("rbac.authorization.k8s.io/aggregate-to-edit", "rbac.authorization.k8s.io/aggregate-to-admin")
VIEW_VERBS = {"get", "list", "watch"}
EDIT_VERBS = VIEW_VERBS | {"create", "update", "patch", "delete"}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "deletecollection", "*"}
FORBIDDEN_RESOURCES = {
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/log",
    "serviceaccounts/token",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "*",
}
# Values that must make the chart refuse to render, and a piece of the message it must give.
BAD_VALUES = [
    ({"image": {"repository": ""}}, "image.repository is required"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"watchNamespaces": ["*"]}, "watchNamespaces"),
    ({"watchNamespaces": "finance"}, "watchNamespaces"),
    ({"operator": {"replicas": "two"}}, "replicas"),
    ({"operator": {"leaderElection": {"enabled": False}}}, "leaderElection"),
    ({"settings": {"log_output": "xml"}}, "log_output"),
    ({"settings": {"scheduled_aggregation_engine": "python"}}, "scheduled_aggregation_engine"),
    ({"settings": {"database_url": "postgres://u:p@db/vctp"}}, "database_url"),
    ({"settings": {"hourly_snapshot_max_age_days": 0}}, "hourly_snapshot_max_age_days"),
    ({"settings": {"pool_tiers": {"Prod": "platinum"}}}, "pool_tiers"),
    ({"objectStore": {"url": "minio.example.com/bucket"}}, "url"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "interval"),
    ({"jobs": {"backoffLimit": -1}}, "backoffLimit"),
    ({"operatr": {"replicas": 1}}, "operatr"),
    ({"api": {"auth": {"enabled": True, "groupRoleMappings": {"cn=a": "admin"}}}}, "jwtSigningKeySecret"),
    ({"api": {"auth": {"enabled": True, "jwtSigningKeySecret": "jwt"}}}, "groupRoleMappings"),
    (
        {
            "api": {
                "auth": {"enabled": True, "jwtSigningKeySecret": "jwt", "groupRoleMappings": {"cn=a": "root"}}
            }
        },
        "groupRoleMappings",
    ),
    ({"api": {"auth": {"mode": "sometimes"}}}, "mode"),
    ({"api": {"aggregationNamespace": "elsewhere"}}, "aggregationNamespace"),
    ({"api": {"replicas": -1}}, "replicas"),
    ({"api": {"service": {"type": "Ingress"}}}, "type"),
    (
        {
            "api": {
                "ingress": {"hosts": [{"host": "a.example.com", "paths": [{"path": "/", "pathType": "Any"}]}]}
            }
        },
        "pathType",
    ),
    ({"api": {"auth": {"ldap": {"caSecret": "ca", "caConfigMap": "ca"}}}}, "caSecret"),
    ({"api": {"auth": {"ldap": {"bindAddress": "dc01.example.com"}}}}, "bindAddress"),
    ({"api": {"auth": {"jwtSigningKey": "c2VjcmV0"}}}, "jwtSigningKey"),
    ({"settings": {"auth_enabled": True}}, "auth_enabled"),
    # An Ingress to the API with auth off, unacknowledged.
    ({"api": {"ingress": {"enabled": True}}}, "allowUnauthenticatedIngress"),
    ({"networkPolicy": {"prometheus": {"podSelector": "prometheus"}}}, "podSelector"),
    ({"settings": {"auth_jwt_signing_key": "c2VjcmV0"}}, "auth_jwt_signing_key"),
    ({"settings": {"ldap_bind_password": "secret"}}, "ldap_bind_password"),
]


@dataclass
class Obj:
    """One rendered object and the template it came from."""

    data: dict[str, Any]
    source: str

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def group(self) -> str:
        api = str(self.data.get("apiVersion", ""))
        return api.split("/", 1)[0] if "/" in api else ""

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.data.get("metadata") or {}).get("namespace", ""))

    @property
    def labels(self) -> dict[str, str]:
        return (self.data.get("metadata") or {}).get("labels") or {}

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({self.source})"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    checks: int = 0

    def check(self, ok: bool, where: str, message: str) -> bool:
        self.checks += 1
        if not ok:
            self.problems.append(f"{where}: {message}")
            print(f"  FAIL {where}: {message}")
        return ok


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Lint and render


def with_image(values: dict[str, Any] | None) -> dict[str, Any]:
    """`values` over IMAGE: the chart renders only with an image."""
    merged = copy.deepcopy(IMAGE)
    for key, value in (values or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_values(path: str | None) -> dict[str, Any]:
    if path is None:
        return with_image(None)
    return with_image(helm.values_from_yaml((CHART / path).read_text()))


def lint(report: Report, case: str, values: dict[str, Any] | None) -> None:
    result = helm.chart.lint(
        str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0"
    )
    for message in result.get("messages") or []:
        severity = message.get("severity", 0)
        text = f"[{message.get('path')}] {message.get('error')}"
        if severity >= 2:
            report.check(False, f"{case}: helm lint --strict", text)
        else:
            log(f"  lint info: {text}")
    for error in result.get("errors") or []:
        report.check(False, f"{case}: helm lint --strict", str(error))
    report.check(result.get("total_charts_linted") == 1, f"{case}: helm lint", "linted no chart")


def render(chart: Chart, values: dict[str, Any] | None) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def parse_manifests(rendered: dict[str, str]) -> tuple[list[Obj], str]:
    objects: list[Obj] = []
    notes = ""
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(Obj(doc, path))
    return objects, notes


def write_manifests(out: Path, rendered: dict[str, str]) -> None:
    if out.exists():
        shutil.rmtree(out)
    for path, text in rendered.items():
        target = out / path.split("/", 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


# ---------------------------------------------------------------------------------------------
# Helpers over the rendered objects


def find(objects: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> list[Obj]:
    return [
        o
        for o in objects
        if o.kind == kind
        and (name is None or o.name == name)
        and (namespace is None or o.namespace == namespace)
    ]


def pod_specs(obj: Obj) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod metadata, pod spec) of every pod an object describes."""
    spec = obj.data.get("spec") or {}
    if obj.kind == "Pod":
        return [(obj.data.get("metadata") or {}, spec)]
    if obj.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if obj.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"} and template:
        return [(template.get("metadata") or {}, template.get("spec") or {})]
    return []


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


def env_value(container: dict[str, Any], name: str) -> str | None:
    for env in container.get("env") or []:
        if env.get("name") == name:
            return env.get("value")
    return None


def is_subset(small: dict[str, Any], big: dict[str, Any]) -> bool:
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def job_template(objects: list[Obj]) -> Obj | None:
    """The Job the operator creates from its ConfigMap, as an object of its own."""
    for cm in find(objects, "ConfigMap"):
        text = (cm.data.get("data") or {}).get("job-template.yaml")
        if text:
            job = yaml.safe_load(text)
            job.setdefault("metadata", {})
            # The operator names the Job and puts it beside its resource.
            job["metadata"]["name"] = "job-template-check"
            return Obj(job, f"job-template.yaml of ConfigMap {cm.name}")
    return None


# ---------------------------------------------------------------------------------------------
# Checks of one rendered case


def check_labels(report: Report, case: str, objects: list[Obj], chart_version: str) -> None:
    expected = {
        "app.kubernetes.io/name": "vctp",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": f"vctp-{chart_version}",
    }
    for obj in objects:
        if obj.kind == "CustomResourceDefinition" and "/templates/crds/" in obj.source:
            # Generated by the CRD work, not by these templates: reported, not enforced.
            if not is_subset(expected, obj.labels):
                log(f"  note: {obj} lacks the standard labels")
            continue
        labels = obj.labels
        for key, value in expected.items():
            report.check(
                labels.get(key) == value,
                f"{case}: {obj}",
                f"label {key} is {labels.get(key)!r}, want {value!r}",
            )
        report.check(
            bool(labels.get("app.kubernetes.io/version")),
            f"{case}: {obj}",
            "label app.kubernetes.io/version is missing",
        )
        report.check(
            bool(labels.get("app.kubernetes.io/component")),
            f"{case}: {obj}",
            "label app.kubernetes.io/component is missing",
        )
        for meta, _ in pod_specs(obj):
            pod_labels = meta.get("labels") or {}
            for key, value in expected.items():
                report.check(
                    pod_labels.get(key) == value,
                    f"{case}: pods of {obj}",
                    f"label {key} is {pod_labels.get(key)!r}, want {value!r}",
                )


def check_namespaces(report: Report, case: str, objects: list[Obj]) -> None:
    seen: dict[tuple[str, str, str, str], Obj] = {}
    for obj in objects:
        if obj.kind in CLUSTER_SCOPED:
            report.check(not obj.namespace, f"{case}: {obj}", "a cluster-scoped object has a namespace")
        else:
            # Explicit namespaces keep `helm template | kubectl apply` honest and put the
            # per-namespace RBAC where it belongs.
            report.check(bool(obj.namespace), f"{case}: {obj}", "metadata.namespace is not set")
        key = (obj.data.get("apiVersion", ""), obj.kind, obj.namespace, obj.name)
        report.check(key not in seen, f"{case}: {obj}", f"rendered twice (also by {seen.get(key)})")
        seen[key] = obj


def check_security(report: Report, case: str, obj: Obj) -> None:
    for _, pod in pod_specs(obj):
        where = f"{case}: pod spec of {obj}"
        psc = pod.get("securityContext") or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            report.check(not pod.get(key), where, f"{key} is set")
        for volume in pod.get("volumes") or []:
            report.check("hostPath" not in volume, where, f"volume {volume.get('name')} is a hostPath")
        report.check(
            psc.get("runAsUser") != 0 and psc.get("runAsGroup") != 0,
            where,
            "runs as root (runAsUser/runAsGroup 0)",
        )
        tmp_volumes = {v.get("name") for v in pod.get("volumes") or [] if "emptyDir" in v}
        for c in containers(pod):
            cwhere = f"{where}, container {c.get('name')}"
            sc = c.get("securityContext") or {}
            report.check(
                sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, cwhere, "runAsNonRoot is not true"
            )
            report.check(sc.get("runAsUser", psc.get("runAsUser")) != 0, cwhere, "runAsUser is 0")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            report.check(
                seccomp in {"RuntimeDefault", "Localhost"},
                cwhere,
                f"seccompProfile.type is {seccomp!r}, want RuntimeDefault",
            )
            report.check(
                sc.get("allowPrivilegeEscalation") is False, cwhere, "allowPrivilegeEscalation is not false"
            )
            report.check(not sc.get("privileged"), cwhere, "privileged")
            caps = sc.get("capabilities") or {}
            report.check("ALL" in (caps.get("drop") or []), cwhere, "capabilities.drop lacks ALL")
            report.check(not caps.get("add"), cwhere, f"adds capabilities {caps.get('add')}")
            report.check(
                sc.get("readOnlyRootFilesystem") is True, cwhere, "readOnlyRootFilesystem is not true"
            )
            mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
            report.check(
                mounts.get("/tmp") in tmp_volumes,
                cwhere,
                "/tmp is not an emptyDir (the root filesystem is read-only)",
            )
            limits = (c.get("resources") or {}).get("limits") or {}
            requests = (c.get("resources") or {}).get("requests") or {}
            report.check("memory" in limits and "memory" in requests, cwhere, "no memory request and limit")
            image = str(c.get("image", ""))
            pinned = "@sha256:" in image or (
                ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            )
            report.check(
                pinned,
                cwhere,
                f"image {image!r} has no fixed tag or digest",
            )


def check_aggregated_roles(
    report: Report, case: str, objects: list[Obj], values: dict[str, Any], plurals: set[str], fullname: str
) -> None:
    """The only cluster-wide RBAC: two ClusterRoles that add the four kinds to the built-in
    view and edit/admin roles (rbac.aggregateClusterRoles). They bind nobody; every right vctp
    itself needs is namespaced."""
    for obj in find(objects, "ClusterRoleBinding"):
        report.check(False, f"{case}: {obj}", "cluster-wide binding: every right vctp needs is namespaced (README.md, RBAC)")
    rbac = values["rbac"]
    report.check("aggregateClusterRoles" in rbac, case, "values.yaml has no rbac.aggregateClusterRoles")
    want = {}
    if rbac["create"] and rbac.get("aggregateClusterRoles"):
        want = {
            f"{fullname}-view": (AGGREGATE_VIEW_LABELS, VIEW_VERBS),
            f"{fullname}-edit": (AGGREGATE_EDIT_LABELS, EDIT_VERBS),
        }
    roles = {o.name: o for o in find(objects, "ClusterRole")}
    report.check(
        sorted(roles) == sorted(want),
        case,
        f"ClusterRoles {sorted(roles)}, want {sorted(want)} (only the aggregated view/edit roles)",
    )
    for name, (labels, verbs) in want.items():
        role = roles.get(name)
        if role is None:
            continue
        where = f"{case}: {role}"
        for key in labels:
            report.check(role.labels.get(key) == "true", where, f"label {key} is not \"true\"")
        report.check("aggregationRule" not in role.data, where, "aggregates others instead of being aggregated")
        covered: set[str] = set()
        for i, rule in enumerate(role.data.get("rules") or []):
            report.check(rule.get("apiGroups") == ["vctp.io"], f"{where} rule {i}", f"apiGroups {rule.get('apiGroups')}, want [vctp.io]")
            report.check(set(rule.get("verbs") or []) == verbs, f"{where} rule {i}", f"verbs {rule.get('verbs')}, want {sorted(verbs)}")
            covered |= set(rule.get("resources") or [])
        report.check(covered == plurals, where, f"covers {sorted(covered)}, want {sorted(plurals)}")


def check_rbac(
    report: Report,
    case: str,
    objects: list[Obj],
    values: dict[str, Any],
    plurals: set[str],
    watched: list[str],
    fullname: str,
) -> None:
    check_aggregated_roles(report, case, objects, values, plurals, fullname)
    roles = find(objects, "Role")
    for role in roles:
        for i, rule in enumerate(role.data.get("rules") or []):
            where = f"{case}: {role} rule {i}"
            groups = rule.get("apiGroups") or []
            resources = rule.get("resources") or []
            verbs = rule.get("verbs") or []
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                report.check("*" not in (rule.get(key) or []), where, f"{key} contains '*'")
            report.check(
                not (set(verbs) & FORBIDDEN_VERBS), where, f"grants {sorted(set(verbs) & FORBIDDEN_VERBS)}"
            )
            report.check(
                not (set(resources) & FORBIDDEN_RESOURCES),
                where,
                f"grants {sorted(set(resources) & FORBIDDEN_RESOURCES)}",
            )
            if "secrets" in resources and "" in groups:
                report.check(sorted(verbs) == ["get"], where, f"Secrets access must be get only, is {verbs}")
            if "vctp.io" in groups:
                for resource in resources:
                    report.check(
                        resource.split("/")[0] in plurals,
                        where,
                        f"{resource} is not a vctp.io kind ({sorted(plurals)})",
                    )

    def granted(role: Obj, group: str, resource: str, named: bool = False) -> set[str]:
        verbs: set[str] = set()
        for rule in role.data.get("rules") or []:
            if (
                group in (rule.get("apiGroups") or [])
                and resource in (rule.get("resources") or [])
                and (named or not rule.get("resourceNames"))
            ):
                verbs |= set(rule.get("verbs") or [])
        return verbs

    if not values["rbac"]["create"]:
        report.check(
            not roles and not find(objects, "RoleBinding"), case, "rbac.create=false still renders RBAC"
        )
        return
    operator_sa = values["operator"]["serviceAccount"]["name"] or f"{fullname}-operator"
    job_sa = values["jobs"]["serviceAccount"]["name"] or f"{fullname}-job"
    for ns in watched:
        operator_roles = find(objects, "Role", f"{fullname}-operator", ns)
        if report.check(len(operator_roles) == 1, f"{case}: namespace {ns}", "no operator Role"):
            role = operator_roles[0]
            for plural in sorted(plurals):
                need = {"get", "list", "watch", "patch", "update"}
                have = granted(role, "vctp.io", plural)
                report.check(need <= have, f"{case}: {role}", f"{plural}: lacks {sorted(need - have)}")
                need = {"get", "patch", "update"}
                have = granted(role, "vctp.io", f"{plural}/status")
                report.check(need <= have, f"{case}: {role}", f"{plural}/status: lacks {sorted(need - have)}")
            have = granted(role, "vctp.io", "aggregationjobs")
            report.check(
                {"create", "delete"} <= have,
                f"{case}: {role}",
                "a SnapshotSchedule cannot create/delete AggregationJobs",
            )
            for group, resource, need in OPERATOR_NEEDS:
                have = granted(role, group, resource)
                report.check(
                    need <= have,
                    f"{case}: {role}",
                    f"{group or 'core'}/{resource}: lacks {sorted(need - have)}",
                )
        job_roles = find(objects, "Role", f"{fullname}-job", ns)
        if report.check(len(job_roles) == 1, f"{case}: namespace {ns}", "no Job Role"):
            role = job_roles[0]
            for rule in role.data.get("rules") or []:
                # A Job reads its resource; an export Job also patches its live progress and
                # publishes Events. Its outcome goes back through the termination message.
                for group in rule.get("apiGroups") or []:
                    for resource in rule.get("resources") or []:
                        allowed = JOB_MAY.get((group, resource))
                        extra = set(rule.get("verbs") or []) - (allowed or set())
                        report.check(
                            allowed is not None and not extra,
                            f"{case}: {role}",
                            f"the Jobs need no {sorted(extra) or rule.get('verbs')} on {group or 'core'}/{resource}",
                        )
            for (group, resource), need in JOB_MAY.items():
                report.check(
                    need <= granted(role, group, resource),
                    f"{case}: {role}",
                    f"the Jobs lack {sorted(need)} on {group or 'core'}/{resource}",
                )
        for binding_name, sa in ((f"{fullname}-operator", operator_sa), (f"{fullname}-job", job_sa)):
            bindings = find(objects, "RoleBinding", binding_name, ns)
            if report.check(len(bindings) == 1, f"{case}: namespace {ns}", f"no RoleBinding {binding_name}"):
                subjects = bindings[0].data.get("subjects") or []
                report.check(
                    [(s.get("kind"), s.get("name")) for s in subjects] == [("ServiceAccount", sa)],
                    f"{case}: {bindings[0]}",
                    f"binds {subjects}, want ServiceAccount {sa}",
                )
    for binding in find(objects, "RoleBinding"):
        ref = binding.data.get("roleRef") or {}
        report.check(
            ref.get("kind") == "Role" and bool(find(objects, "Role", ref.get("name"), binding.namespace)),
            f"{case}: {binding}",
            f"roleRef {ref} is not a Role rendered in {binding.namespace}",
        )
    # Namespaces with an operator Role are exactly the watched ones.
    role_namespaces = {r.namespace for r in find(objects, "Role", f"{fullname}-operator")}
    report.check(
        role_namespaces == set(watched),
        case,
        f"operator Roles in {sorted(role_namespaces)}, watched {sorted(watched)}",
    )
    lease_roles = find(objects, "Role", f"{fullname}-leader-election")
    if values["operator"]["leaderElection"]["enabled"]:
        if report.check(len(lease_roles) == 1, case, "leader election is on but there is no Lease Role"):
            role = lease_roles[0]
            lease = values["operator"]["leaderElection"]["leaseName"] or f"{fullname}-leader"
            report.check(role.namespace == NAMESPACE, f"{case}: {role}", "not in the release namespace")
            report.check(
                "create" in granted(role, "coordination.k8s.io", "leases"),
                f"{case}: {role}",
                "cannot create the Lease",
            )
            named = [
                r
                for r in role.data.get("rules") or []
                if "leases" in (r.get("resources") or []) and r.get("resourceNames")
            ]
            report.check(
                any(
                    r["resourceNames"] == [lease] and {"get", "update"} <= set(r.get("verbs") or [])
                    for r in named
                ),
                f"{case}: {role}",
                f"get/update not limited to Lease {lease}",
            )
    else:
        report.check(not lease_roles, case, "leader election is off but a Lease Role is rendered")


def configmaps_of(pod_spec: dict[str, Any]) -> list[str]:
    """The ConfigMaps a pod mounts (plain and projected volumes)."""
    names = []
    for volume in pod_spec.get("volumes") or []:
        if "configMap" in volume:
            names.append(volume["configMap"]["name"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                names.append(source["configMap"]["name"])
    return names


def user_configmaps(values: dict[str, Any]) -> frozenset[str]:
    """The ConfigMaps the user names in extraVolumes (a CA bundle): theirs to create."""
    return frozenset(v["configMap"]["name"] for v in values.get("extraVolumes") or [] if "configMap" in v)


def check_pod_refs(
    report: Report,
    objects: list[Obj],
    where: str,
    pod_spec: dict[str, Any],
    ns: str,
    sa_created: bool,
    users: frozenset[str] = frozenset(),
) -> None:
    """The ConfigMaps and the ServiceAccount a pod names are rendered in its namespace, except
    the ConfigMaps in `users` (the user's, named by a value: the LDAP CA bundle, extraVolumes)."""
    for name in configmaps_of(pod_spec):
        if name not in users:
            report.check(
                bool(find(objects, "ConfigMap", name, ns)), where, f"ConfigMap {name} is not rendered in {ns}"
            )
    sa = pod_spec.get("serviceAccountName")
    report.check(bool(sa), where, "no serviceAccountName")
    if sa_created:
        report.check(
            bool(find(objects, "ServiceAccount", sa, ns)),
            where,
            f"ServiceAccount {sa} is not rendered in {ns}",
        )
    report.check(pod_spec.get("automountServiceAccountToken") is True, where, "does not mount its API token")


def check_wiring(
    report: Report,
    case: str,
    objects: list[Obj],
    job: Obj | None,
    values: dict[str, Any],
    watched: list[str],
    fullname: str,
) -> None:
    api_on = values["api"]["enabled"]
    deployments = find(objects, "Deployment")
    report.check(
        len(deployments) == 1 + api_on,
        case,
        f"{len(deployments)} Deployments, want {1 + api_on} (operator{', API' if api_on else ''})",
    )
    deployments = find(objects, "Deployment", f"{fullname}-operator")
    if not report.check(len(deployments) == 1, case, "no operator Deployment"):
        return
    deployment = deployments[0]
    spec = deployment.data["spec"]
    pod_meta, pod = pod_specs(deployment)[0]
    pod_labels = pod_meta.get("labels") or {}
    report.check(
        spec.get("replicas") == values["operator"]["replicas"],
        f"{case}: {deployment}",
        "replicas differ from operator.replicas",
    )
    report.check(
        is_subset(spec["selector"]["matchLabels"], pod_labels),
        f"{case}: {deployment}",
        "selector does not match its pods",
    )
    operator = pod["containers"][0]
    report.check(
        operator.get("args") == ["operator"],
        f"{case}: {deployment}",
        f"args {operator.get('args')}, want ['operator']",
    )
    ports = {p.get("name"): p.get("containerPort") for p in operator.get("ports") or []}
    report.check(
        ports.get("metrics") == values["metrics"]["port"], f"{case}: {deployment}", f"metrics port {ports}"
    )
    for probe in ("livenessProbe", "readinessProbe"):
        http = (operator.get(probe) or {}).get("httpGet") or {}
        report.check(
            http.get("path") == "/healthz" and http.get("port") in ports,
            f"{case}: {deployment}",
            f"{probe} is not /healthz on a named port",
        )
    report.check(
        env_value(operator, "VCTP_WATCH_NAMESPACES") == ",".join(watched),
        f"{case}: {deployment}",
        f"VCTP_WATCH_NAMESPACES={env_value(operator, 'VCTP_WATCH_NAMESPACES')!r}, want {','.join(watched)!r}",
    )
    db_refs = [
        (e.get("valueFrom") or {}).get("secretKeyRef")
        for e in operator.get("env") or []
        if e.get("name") == "VCTP_DATABASE_URL"
    ]
    want_db = {
        "name": values["database"]["existingSecret"] or f"{fullname}-database",
        "key": values["database"]["key"],
    }
    report.check(
        db_refs == [want_db], f"{case}: {deployment}", f"VCTP_DATABASE_URL from {db_refs}, want {want_db}"
    )

    services = find(objects, "Service", f"{fullname}-metrics")
    if report.check(len(services) == 1, case, "no metrics Service"):
        service = services[0]
        report.check(
            is_subset(service.data["spec"].get("selector") or {}, pod_labels),
            f"{case}: {service}",
            "selects no operator pod",
        )
        service_ports = {p.get("name"): p for p in service.data["spec"].get("ports") or []}
        report.check(
            service_ports.get("metrics", {}).get("targetPort") in ports,
            f"{case}: {service}",
            "port metrics does not target a container port",
        )
        for monitor in find(objects, "ServiceMonitor", f"{fullname}-operator"):
            selector = ((monitor.data.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            report.check(is_subset(selector, service.labels), f"{case}: {monitor}", "selects no Service")
            for endpoint in monitor.data["spec"].get("endpoints") or []:
                report.check(
                    endpoint.get("port") in service_ports,
                    f"{case}: {monitor}",
                    f"endpoint port {endpoint.get('port')} is not a Service port",
                )
                report.check(
                    endpoint.get("path") == "/metrics", f"{case}: {monitor}", "endpoint path is not /metrics"
                )
            names = ((monitor.data["spec"].get("namespaceSelector") or {}).get("matchNames")) or []
            report.check(
                service.namespace in names,
                f"{case}: {monitor}",
                "namespaceSelector misses the Service's namespace",
            )
    report.check(
        bool(find(objects, "ServiceMonitor", f"{fullname}-operator"))
        == values["metrics"]["serviceMonitor"]["enabled"],
        case,
        "ServiceMonitor rendered ≠ metrics.serviceMonitor.enabled",
    )
    report.check(
        bool(find(objects, "PrometheusRule")) == values["prometheusRule"]["enabled"],
        case,
        "PrometheusRule rendered ≠ prometheusRule.enabled",
    )
    pdbs = find(objects, "PodDisruptionBudget", f"{fullname}-operator")
    want_pdb = values["operator"]["podDisruptionBudget"]["enabled"] and values["operator"]["replicas"] > 1
    report.check(bool(pdbs) == want_pdb, case, f"{len(pdbs)} PodDisruptionBudgets, want {int(want_pdb)}")
    for pdb in pdbs:
        report.check(
            is_subset(pdb.data["spec"]["selector"]["matchLabels"], pod_labels),
            f"{case}: {pdb}",
            "selects no operator pod",
        )

    check_pod_refs(
        report,
        objects,
        f"{case}: {deployment}",
        pod,
        NAMESPACE,
        values["operator"]["serviceAccount"]["create"],
        user_configmaps(values),
    )
    if report.check(job is not None, case, "no Job template ConfigMap"):
        assert job is not None
        _, job_pod = pod_specs(job)[0]
        for ns in watched:
            check_pod_refs(
                report,
                objects,
                f"{case}: {job.source} in {ns}",
                job_pod,
                ns,
                values["jobs"]["serviceAccount"]["create"],
                user_configmaps(values),
            )
        job_spec = job.data["spec"]
        report.check(
            job_spec.get("backoffLimit") == values["jobs"]["backoffLimit"],
            f"{case}: {job.source}",
            "backoffLimit differs from jobs.backoffLimit",
        )
        report.check(
            job_spec.get("ttlSecondsAfterFinished") == values["jobs"]["ttlSecondsAfterFinished"],
            f"{case}: {job.source}",
            "ttlSecondsAfterFinished differs from jobs.ttlSecondsAfterFinished",
        )
        report.check(
            job_pod.get("restartPolicy") == "Never", f"{case}: {job.source}", "restartPolicy is not Never"
        )
        job_container = job_pod["containers"][0]
        report.check(
            job_container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
            f"{case}: {job.source}",
            "no FallbackToLogsOnError: the operator would need pods/log to say why a Job failed",
        )
        store_secret = values["objectStore"]["existingSecret"]
        env_from = [(e.get("secretRef") or {}).get("name") for e in job_container.get("envFrom") or []]
        report.check(
            env_from == ([store_secret] if store_secret else []),
            f"{case}: {job.source}",
            f"envFrom {env_from}, want the objectStore Secret",
        )


def api_objects(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o.labels.get("app.kubernetes.io/component") == "api"]


def check_api(
    report: Report,
    case: str,
    objects: list[Obj],
    values: dict[str, Any],
    watched: list[str],
    fullname: str,
) -> None:
    """The API server (`vctp serve`): its Deployment, Service, RBAC, PDB, Ingress and
    ServiceMonitor say what the values say, and nothing of it exists with api.enabled false."""
    api = values["api"]
    name = f"{fullname}-api"
    if not api["enabled"]:
        report.check(
            not api_objects(objects),
            case,
            f"api.enabled=false still renders {[str(o) for o in api_objects(objects)]}",
        )
        return
    deployments = find(objects, "Deployment", name, NAMESPACE)
    if not report.check(len(deployments) == 1, case, f"no Deployment {name}"):
        return
    deployment = deployments[0]
    where = f"{case}: {deployment}"
    spec = deployment.data["spec"]
    pod_meta, pod = pod_specs(deployment)[0]
    pod_labels = pod_meta.get("labels") or {}
    selector = spec["selector"]["matchLabels"]
    report.check(spec.get("replicas") == api["replicas"], where, "replicas differ from api.replicas")
    report.check(is_subset(selector, pod_labels), where, "selector does not match its pods")
    report.check(pod_labels.get("app.kubernetes.io/component") == "api", where, "pods are not component api")
    # Distinct selectors: neither the operator's Deployment, Service nor PDB takes the API
    # pods, and the other way round.
    for other in find(objects, "Deployment", f"{fullname}-operator"):
        other_meta, _ = pod_specs(other)[0]
        report.check(
            not is_subset(other.data["spec"]["selector"]["matchLabels"], pod_labels)
            and not is_subset(selector, other_meta.get("labels") or {}),
            where,
            f"its selector overlaps with {other}",
        )
    annotations = pod_meta.get("annotations") or {}
    settings_texts = [
        cm.data["data"]["vctp.yml"]
        for cm in find(objects, "ConfigMap", f"{fullname}-settings", NAMESPACE)
        if "vctp.yml" in (cm.data.get("data") or {})
    ]
    report.check(
        bool(settings_texts)
        and annotations.get("checksum/settings")
        in {
            hashlib.sha256(t.encode()).hexdigest()
            for t in (settings_texts[0], settings_texts[0].rstrip("\n"))
        },
        where,
        "checksum/settings is not the settings file's SHA-256 (a settings change would not roll the pods)",
    )
    for key, value in (api["podAnnotations"] or {}).items():
        report.check(annotations.get(key) == value, where, f"pod annotation {key} missing")
    for key, value in (api["podLabels"] or {}).items():
        report.check(pod_labels.get(key) == value, where, f"pod label {key} missing")
    report.check(
        pod.get("terminationGracePeriodSeconds") == api["terminationGracePeriodSeconds"],
        where,
        "terminationGracePeriodSeconds differs from api.terminationGracePeriodSeconds",
    )
    report.check(
        pod.get("securityContext") == values["podSecurityContext"],
        where,
        "pod securityContext is not podSecurityContext",
    )
    affinity = pod.get("affinity") or {}
    if api["affinity"]:
        report.check(affinity == api["affinity"], where, "affinity is not api.affinity")
    else:
        terms = (affinity.get("podAntiAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution"
        ) or []
        report.check(
            any(
                (t.get("podAffinityTerm") or {}).get("labelSelector", {}).get("matchLabels") == selector
                for t in terms
            ),
            where,
            "no default preferred anti-affinity over the API pods",
        )
    for key in ("nodeSelector", "tolerations", "topologySpreadConstraints", "priorityClassName"):
        want = api[key] or None
        report.check(pod.get(key) == want, where, f"{key} {pod.get(key)!r}, want api.{key} {want!r}")
    check_pod_refs(
        report,
        objects,
        where,
        pod,
        NAMESPACE,
        api["serviceAccount"]["create"],
        frozenset({api["auth"]["ldap"]["caConfigMap"]} - {""}) | user_configmaps(values),
    )
    report.check(
        pod.get("serviceAccountName") == (api["serviceAccount"]["name"] or name),
        where,
        f"serviceAccountName {pod.get('serviceAccountName')}, want {api['serviceAccount']['name'] or name}",
    )

    [container] = pod["containers"]
    cwhere = f"{where}, container {container.get('name')}"
    report.check(container.get("args") == ["serve"], cwhere, f"args {container.get('args')}, want ['serve']")
    report.check(
        container.get("securityContext") == values["securityContext"],
        cwhere,
        "securityContext is not the chart's securityContext",
    )
    report.check(
        container.get("resources") == api["resources"], cwhere, "resources differ from api.resources"
    )
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    report.check(ports == {"http": api["port"]}, cwhere, f"ports {ports}, want http: {api['port']}")
    env = {e.get("name"): e for e in container.get("env") or []}
    aggregation_ns = api["aggregationNamespace"] or NAMESPACE
    want_values = {
        "VCTP_LISTEN": f"0.0.0.0:{api['port']}",
        "VCTP_DISABLE_TLS": "true",
        "VCTP_CONFIG": "/etc/vctp/vctp.yml",
        "VCTP_KUBE_NAMESPACE": aggregation_ns,
        "TMPDIR": "/tmp",
    }
    # Session cookies are Secure when browsers come in over the Ingress's TLS.
    ingress = api["ingress"]
    want_values["VCTP_SECURE_COOKIES"] = "true" if ingress["enabled"] and ingress["tls"] else None
    for key, value in want_values.items():
        report.check(
            env_value(container, key) == value, cwhere, f"{key}={env_value(container, key)!r}, want {value!r}"
        )
    report.check(aggregation_ns in watched, cwhere, f"VCTP_KUBE_NAMESPACE {aggregation_ns} is not watched")

    def secret_ref(var: str) -> dict[str, Any] | None:
        return ((env.get(var) or {}).get("valueFrom") or {}).get("secretKeyRef")

    want_db = {
        "name": values["database"]["existingSecret"] or f"{fullname}-database",
        "key": values["database"]["key"],
    }
    report.check(secret_ref("VCTP_DATABASE_URL") == want_db, cwhere, f"VCTP_DATABASE_URL not from {want_db}")
    auth = api["auth"]
    ldap = auth["ldap"]
    want_jwt = (
        {"name": auth["jwtSigningKeySecret"], "key": auth["jwtSigningKeySecretKey"]}
        if auth["enabled"]
        else None
    )
    report.check(
        secret_ref("VCTP_AUTH_JWT_SIGNING_KEY") == want_jwt,
        cwhere,
        f"VCTP_AUTH_JWT_SIGNING_KEY from {secret_ref('VCTP_AUTH_JWT_SIGNING_KEY')}, want {want_jwt}",
    )
    bind = auth["enabled"] and ldap["bindSecret"]
    for var, key in (("VCTP_LDAP_BIND_DN", "bindDnKey"), ("VCTP_LDAP_BIND_PASSWORD", "bindPasswordKey")):
        want = {"name": ldap["bindSecret"], "key": ldap[key]} if bind else None
        report.check(secret_ref(var) == want, cwhere, f"{var} from {secret_ref(var)}, want {want}")
    for extra in api["extraEnv"]:
        report.check(env.get(extra["name"]) == extra, cwhere, f"extraEnv {extra['name']} missing")
    store_secret = values["objectStore"]["existingSecret"]
    env_from = [(e.get("secretRef") or {}).get("name") for e in container.get("envFrom") or []]
    report.check(
        env_from == ([store_secret] if store_secret else []),
        cwhere,
        f"envFrom {env_from}, want the objectStore Secret",
    )
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = (container.get(probe) or {}).get("httpGet") or {}
        report.check(
            http.get("path") == path and http.get("port") == "http",
            cwhere,
            f"{probe} is {http}, want {path} on port http",
        )
    startup = container.get("startupProbe")
    if api["startupProbe"]["enabled"]:
        report.check(
            bool(startup)
            and startup.get("httpGet") == {"path": "/healthz", "port": "http"}
            and startup.get("failureThreshold") == api["startupProbe"]["failureThreshold"]
            and startup.get("periodSeconds") == api["startupProbe"]["periodSeconds"],
            cwhere,
            f"startupProbe {startup} is not api.startupProbe on /healthz",
        )
    else:
        report.check(startup is None, cwhere, "a startupProbe without api.startupProbe.enabled")
    mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    report.check(
        (volumes.get(mounts.get("/etc/vctp")) or {}).get("configMap", {}).get("name")
        == f"{fullname}-settings",
        cwhere,
        "the settings ConfigMap is not mounted at /etc/vctp",
    )
    report.check(
        (volumes.get(mounts.get("/tmp")) or {}).get("emptyDir", {}).get("sizeLimit") == api["tmpSizeLimit"],
        cwhere,
        "/tmp is not an emptyDir of api.tmpSizeLimit",
    )
    ca_dir, ca_file = LDAP_CA_FILE.rsplit("/", 1)
    ca_volume = volumes.get(mounts.get(ca_dir)) if ca_dir in mounts else None
    if auth["enabled"] and (ldap["caSecret"] or ldap["caConfigMap"]):
        source = (ca_volume or {}).get("secret") or (ca_volume or {}).get("configMap") or {}
        source_name = source.get("secretName") or source.get("name")
        report.check(
            source_name == (ldap["caSecret"] or ldap["caConfigMap"])
            and source.get("items") == [{"key": ldap["caKey"], "path": ca_file}],
            cwhere,
            f"the LDAP CA is not {ldap['caKey']} of {ldap['caSecret'] or ldap['caConfigMap']} at {LDAP_CA_FILE}",
        )
    else:
        report.check(
            ca_volume is None, cwhere, "an LDAP CA volume without api.auth.ldap.caSecret/caConfigMap"
        )

    # Service
    services = find(objects, "Service", name, NAMESPACE)
    service_ports: dict[str, Any] = {}
    if report.check(len(services) == 1, case, f"no Service {name}"):
        service = services[0]
        sspec = service.data["spec"]
        swhere = f"{case}: {service}"
        report.check(is_subset(sspec.get("selector") or {}, pod_labels), swhere, "selects no API pod")
        for other in find(objects, "Deployment", f"{fullname}-operator"):
            other_meta, _ = pod_specs(other)[0]
            report.check(
                not is_subset(sspec.get("selector") or {}, other_meta.get("labels") or {}),
                swhere,
                "also selects the operator pods",
            )
        service_ports = {p.get("name"): p for p in sspec.get("ports") or []}
        http = service_ports.get("http") or {}
        report.check(
            list(service_ports) == ["http"]
            and http.get("port") == api["service"]["port"]
            and http.get("targetPort") == "http",
            swhere,
            f"ports {sspec.get('ports')}, want http {api['service']['port']} → http",
        )
        report.check(
            sspec.get("type") == api["service"]["type"], swhere, "type differs from api.service.type"
        )
        want_node_port = api["service"]["nodePort"] if api["service"]["type"] != "ClusterIP" else None
        report.check(
            http.get("nodePort") == want_node_port,
            swhere,
            f"nodePort {http.get('nodePort')}, want {want_node_port}",
        )
        for monitor in find(objects, "ServiceMonitor", f"{fullname}-operator"):
            sel = ((monitor.data.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            report.check(
                not is_subset(sel, service.labels), f"{case}: {monitor}", "also scrapes the API Service"
            )

    # RBAC: exactly create/get/list on aggregationjobs, in the aggregation namespace only.
    roles = find(objects, "Role", name)
    bindings = find(objects, "RoleBinding", name)
    sa = api["serviceAccount"]["name"] or name
    if values["rbac"]["create"]:
        if report.check(
            [r.namespace for r in roles] == [aggregation_ns],
            case,
            f"API Roles in {[r.namespace for r in roles]}, want one in {aggregation_ns}",
        ):
            rules = roles[0].data.get("rules") or []
            report.check(
                len(rules) == 1
                and rules[0].get("apiGroups") == ["vctp.io"]
                and rules[0].get("resources") == ["aggregationjobs"]
                and sorted(rules[0].get("verbs") or []) == ["create", "get", "list"]
                and not rules[0].get("resourceNames"),
                f"{case}: {roles[0]}",
                f"rules {rules}, want exactly create/get/list on vctp.io aggregationjobs",
            )
        if report.check(
            [b.namespace for b in bindings] == [aggregation_ns],
            case,
            f"no API RoleBinding in {aggregation_ns}",
        ):
            subjects = bindings[0].data.get("subjects") or []
            report.check(
                [(x.get("kind"), x.get("name"), x.get("namespace")) for x in subjects]
                == [("ServiceAccount", sa, NAMESPACE)],
                f"{case}: {bindings[0]}",
                f"binds {subjects}, want ServiceAccount {NAMESPACE}/{sa}",
            )
        # No other binding gives the API's ServiceAccount more.
        for binding in find(objects, "RoleBinding"):
            if binding.name != name:
                report.check(
                    not any(
                        x.get("name") == sa and x.get("namespace", binding.namespace) == NAMESPACE
                        for x in binding.data.get("subjects") or []
                    ),
                    f"{case}: {binding}",
                    f"also binds the API's ServiceAccount {sa}",
                )

    # PodDisruptionBudget
    pdbs = find(objects, "PodDisruptionBudget", name)
    want_pdb = api["podDisruptionBudget"]["enabled"] and api["replicas"] > 1
    report.check(bool(pdbs) == want_pdb, case, f"{len(pdbs)} API PodDisruptionBudgets, want {int(want_pdb)}")
    for pdb in pdbs:
        report.check(
            pdb.data["spec"]["selector"]["matchLabels"] == selector
            and pdb.data["spec"].get("maxUnavailable") == api["podDisruptionBudget"]["maxUnavailable"],
            f"{case}: {pdb}",
            "does not select the API pods with api.podDisruptionBudget.maxUnavailable",
        )

    # Ingress
    ingresses = find(objects, "Ingress")
    ingress_cfg = api["ingress"]
    report.check(
        [i.name for i in ingresses] == ([name] if ingress_cfg["enabled"] else []),
        case,
        f"Ingresses {[i.name for i in ingresses]}, want {'[' + name + ']' if ingress_cfg['enabled'] else 'none'}",
    )
    for ingress in ingresses:
        ispec = ingress.data["spec"]
        iwhere = f"{case}: {ingress}"
        report.check(
            ispec.get("ingressClassName") == (ingress_cfg["className"] or None),
            iwhere,
            "ingressClassName differs from api.ingress.className",
        )
        report.check(
            ispec.get("tls") == (ingress_cfg["tls"] or None), iwhere, "tls differs from api.ingress.tls"
        )
        got = [
            (rule.get("host"), p.get("path"), p.get("pathType"))
            for rule in ispec.get("rules") or []
            for p in (rule.get("http") or {}).get("paths") or []
        ]
        want = [(h["host"], p["path"], p["pathType"]) for h in ingress_cfg["hosts"] for p in h["paths"]]
        report.check(got == want, iwhere, f"rules {got}, want {want}")
        for rule in ispec.get("rules") or []:
            for p in (rule.get("http") or {}).get("paths") or []:
                backend = (p.get("backend") or {}).get("service") or {}
                report.check(
                    backend.get("name") == name and (backend.get("port") or {}).get("name") in service_ports,
                    iwhere,
                    f"backend {backend} is not a port of Service {name}",
                )

    # ServiceMonitor of the API's /metrics
    monitors = find(objects, "ServiceMonitor", name)
    monitor_cfg = api["serviceMonitor"]
    report.check(
        bool(monitors) == monitor_cfg["enabled"],
        case,
        "API ServiceMonitor rendered ≠ api.serviceMonitor.enabled",
    )
    for monitor in monitors:
        mspec = monitor.data["spec"]
        mwhere = f"{case}: {monitor}"
        sel = (mspec.get("selector") or {}).get("matchLabels") or {}
        matched = [svc.name for svc in find(objects, "Service") if is_subset(sel, svc.labels)]
        report.check(matched == [name], mwhere, f"selects Services {matched}, want [{name}]")
        report.check(
            NAMESPACE in ((mspec.get("namespaceSelector") or {}).get("matchNames") or []),
            mwhere,
            "namespaceSelector misses the release namespace",
        )
        endpoints = mspec.get("endpoints") or []
        report.check(
            [(e.get("port"), e.get("path"), e.get("interval"), e.get("scrapeTimeout")) for e in endpoints]
            == [("http", "/metrics", monitor_cfg["interval"], monitor_cfg["scrapeTimeout"])],
            mwhere,
            f"endpoints {endpoints}, want http /metrics every api.serviceMonitor.interval",
        )
        for key, value in (monitor_cfg["additionalLabels"] or {}).items():
            report.check(monitor.labels.get(key) == value, mwhere, f"label {key} missing")


def check_settings(
    report: Report,
    case: str,
    objects: list[Obj],
    values: dict[str, Any],
    out: Path,
    vctp: Path | None,
    fields: set[str],
) -> None:
    config_maps = [cm for cm in find(objects, "ConfigMap") if "vctp.yml" in (cm.data.get("data") or {})]
    report.check(bool(config_maps), case, "no settings ConfigMap")
    texts = {cm.data["data"]["vctp.yml"] for cm in config_maps}
    report.check(len(texts) == 1, case, "the settings ConfigMaps of the namespaces differ")
    for text in texts:
        parsed = yaml.safe_load(text) or {}
        report.check(
            list(parsed) == ["settings"],
            f"{case}: settings file",
            f"top-level keys {list(parsed)}, want ['settings']",
        )
        settings = parsed.get("settings") or {}
        # Auth keys src/config.rs does not know yet (the auth work is not merged): expected,
        # and the file is then not loaded below.
        pending = (set(settings) - fields) & SETTINGS_FROM_API_AUTH
        unknown = set(settings) - fields - pending
        report.check(not unknown, f"{case}: settings file", f"keys vctp does not know: {sorted(unknown)}")
        report.check(
            not (set(settings) & SECRET_SETTINGS),
            f"{case}: settings file",
            f"holds secrets {sorted(set(settings) & SECRET_SETTINGS)}: they belong in Secrets",
        )
        check_auth_settings(report, case, settings, values)
        url = values["objectStore"]["url"]
        report.check(
            settings.get("reports_url") == (url or None),
            f"{case}: settings file",
            "reports_url is not objectStore.url",
        )
        path = out / "vctp.yml"
        path.write_text(text)
        if vctp is not None and pending:
            # EXPECTED TO BE SKIPPED until the auth work is merged into src/config.rs: the
            # binary would refuse the unknown keys. Once it knows them, `pending` is empty and
            # the file is loaded like every other case.
            log(
                f"  note: {case}: settings file not loaded by vctp: src/config.rs does not know "
                f"{sorted(pending)} yet (the auth work)"
            )
        elif vctp is not None:
            with tempfile.TemporaryDirectory(prefix="vctp-chart-check.") as tmp:
                result = subprocess.run(
                    [
                        str(vctp),
                        "--config",
                        str(path),
                        "--database-url",
                        f"sqlite://{tmp}/db.sqlite3",
                        "db",
                        "migrate",
                    ],
                    check=False,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            report.check(
                result.returncode == 0,
                f"{case}: settings file",
                f"`vctp --config {path} db migrate` failed ({result.returncode}): {result.stderr.strip()}",
            )


def check_auth_settings(report: Report, case: str, settings: dict[str, Any], values: dict[str, Any]) -> None:
    """The auth keys are in the settings file exactly when the API runs with auth, and say
    what api.auth.* says."""
    where = f"{case}: settings file"
    auth = values["api"]["auth"]
    on = values["api"]["enabled"] and auth["enabled"]
    rendered = set(settings) & SETTINGS_FROM_API_AUTH
    if not on:
        report.check(
            not rendered, where, f"auth keys {sorted(rendered)} without api.enabled and api.auth.enabled"
        )
        return
    ldap = auth["ldap"]
    want: dict[str, Any] = {
        "auth_enabled": True,
        "auth_mode": auth["mode"],
        "auth_group_role_mappings": auth["groupRoleMappings"],
        "auth_token_lifespan_minutes": auth["tokenLifespanMinutes"],
        "auth_jwt_issuer": auth["jwtIssuer"],
        "auth_jwt_audience": auth["jwtAudience"],
        "auth_clock_skew_seconds": auth["clockSkewSeconds"],
        "enable_pprof": auth["enablePprof"],
        "ldap_bind_address": ldap["bindAddress"] or None,
        "ldap_base_dn": ldap["baseDn"] or None,
        "ldap_user_base_dn": ldap["userBaseDn"] or None,
        "ldap_user_attribute": ldap["userAttribute"] or None,
        "ldap_groups": ldap["groups"] or None,
        "ldap_trust_cert_file": LDAP_CA_FILE if (ldap["caSecret"] or ldap["caConfigMap"]) else None,
        "ldap_disable_validation": ldap["disableValidation"],
        "ldap_insecure": ldap["insecure"],
    }
    for key, value in want.items():
        report.check(settings.get(key) == value, where, f"{key} is {settings.get(key)!r}, want {value!r}")
    roles = set((settings.get("auth_group_role_mappings") or {}).values())
    report.check(
        bool(roles) and roles <= {"viewer", "admin"}, where, f"auth_group_role_mappings roles {sorted(roles)}"
    )


def check_network_policies(
    report: Report, case: str, objects: list[Obj], values: dict[str, Any], fullname: str
) -> None:
    """networkPolicy.enabled: the API pods admit only the ingress controller, Prometheus and
    networkPolicy.api.extraFrom on api.port; the operator pods only Prometheus on metrics.port."""
    policy = values.get("networkPolicy")
    if not report.check(isinstance(policy, dict), case, "values.yaml has no networkPolicy"):
        return
    policies = find(objects, "NetworkPolicy")
    wanted = []
    if policy["enabled"]:
        wanted = ([f"{fullname}-api"] if values["api"]["enabled"] else []) + [f"{fullname}-operator"]
    report.check(
        sorted(p.name for p in policies) == sorted(wanted),
        case,
        f"NetworkPolicies {[p.name for p in policies]}, want {wanted}",
    )

    def peer(which: dict[str, Any]) -> dict[str, Any]:
        return {"namespaceSelector": which["namespaceSelector"], "podSelector": which["podSelector"]}

    for component, port, peers in (
        (
            "api",
            values["api"]["port"],
            [peer(policy["ingressController"]), peer(policy["prometheus"]), *policy["api"]["extraFrom"]],
        ),
        ("operator", values["metrics"]["port"], [peer(policy["prometheus"])]),
    ):
        for obj in find(objects, "NetworkPolicy", f"{fullname}-{component}", NAMESPACE):
            where = f"{case}: {obj}"
            spec = obj.data["spec"]
            deployments = find(objects, "Deployment", f"{fullname}-{component}", NAMESPACE)
            selects = [d for d in deployments if spec["podSelector"].get("matchLabels") == d.data["spec"]["selector"]["matchLabels"]]
            report.check(bool(selects), where, f"does not select the {component} pods")
            report.check(spec.get("policyTypes") == ["Ingress"], where, "policyTypes is not [Ingress]")
            rules = spec.get("ingress") or []
            report.check(
                len(rules) == 1 and rules[0].get("from") == peers,
                where,
                f"admits {[r.get('from') for r in rules]}, want {peers}",
            )
            report.check(
                len(rules) == 1 and rules[0].get("ports") == [{"port": port, "protocol": "TCP"}],
                where,
                f"ports {[r.get('ports') for r in rules]}, want [{port}/TCP]",
            )


def check_extra_volumes(
    report: Report, case: str, objects: list[Obj], job: Obj | None, values: dict[str, Any], fullname: str
) -> None:
    """extraVolumes and extraVolumeMounts (e.g. an internal CA for PostgreSQL or S3) reach the
    operator, the API and the Job pods alike: all three talk to the database and the store."""
    volumes, mounts = values.get("extraVolumes"), values.get("extraVolumeMounts")
    if not report.check(
        isinstance(volumes, list) and isinstance(mounts, list), case, "values.yaml has no extraVolumes/extraVolumeMounts"
    ):
        return
    pods = find(objects, "Deployment", f"{fullname}-operator", NAMESPACE) + find(
        objects, "Deployment", f"{fullname}-api", NAMESPACE
    )
    pods += [job] if job else []
    report.check(len(pods) == 2 + values["api"]["enabled"], case, f"extra volumes checked on {[str(p) for p in pods]}")
    for obj in pods:
        for _, pod in pod_specs(obj):
            where = f"{case}: {obj}"
            have = pod.get("volumes") or []
            for volume in volumes:
                report.check(volume in have, where, f"lacks extra volume {volume}")
            names = [v.get("name") for v in have]
            report.check(len(names) == len(set(names)), where, f"volume names {names} are not unique")
            for container in pod.get("containers") or []:
                for mount in mounts:
                    report.check(
                        mount in (container.get("volumeMounts") or []),
                        where,
                        f"container {container.get('name')} lacks extra mount {mount}",
                    )


def check_no_secrets_in_configmaps(report: Report, case: str, objects: list[Obj]) -> None:
    """No ConfigMap (settings, Job template) carries a secret settings key or a literal value
    for a secret env var: those come from Secrets."""
    secret_key = re.compile(r"^\s*(" + "|".join(sorted(SECRET_SETTINGS)) + r")\s*:", re.MULTILINE)
    for cm in find(objects, "ConfigMap"):
        for name, text in (cm.data.get("data") or {}).items():
            found = secret_key.findall(str(text))
            report.check(not found, f"{case}: {cm} {name}", f"holds secret keys {sorted(set(found))}")
    for obj in objects:
        for _, pod in pod_specs(obj):
            for c in containers(pod):
                for env in c.get("env") or []:
                    if env.get("name") in SECRET_ENV:
                        report.check(
                            "value" not in env and "secretKeyRef" in (env.get("valueFrom") or {}),
                            f"{case}: {obj}, container {c.get('name')}",
                            f"{env.get('name')} is not taken from a Secret",
                        )


def notes_job_selector(report: Report, case: str, notes: str) -> dict[str, str]:
    """The label selector of NOTES.txt's `kubectl get jobs … -l SELECTOR`."""
    match = re.search(r"kubectl get jobs .*?-l (\S+)", notes)
    if not report.check(match is not None, f"{case}: NOTES.txt", "does not say how to list the Jobs"):
        return {}
    assert match is not None
    return dict(pair.split("=", 1) for pair in match.group(1).split(","))


def check_job_template(
    report: Report, case: str, objects: list[Obj], notes: str, out: Path, vctp: Path | None
) -> None:
    """The operator reads the rendered Job template and builds its Jobs from it
    (`vctp operator --job-template FILE --check` prints the Job of an example AggregationJob),
    with the environment the chart gives the operator; NOTES.txt's `kubectl get jobs -l …`
    selects that Job and its Pod."""
    selector = notes_job_selector(report, case, notes)
    report.check(
        selector.get("vctp.io/instance") == RELEASE,
        f"{case}: NOTES.txt",
        f"lists the Jobs by {selector}, not by the release's vctp.io/instance={RELEASE}",
    )
    operators = [
        c
        for d in find(objects, "Deployment")
        for _, pod in pod_specs(d)
        for c in containers(pod)
        if c.get("args") == ["operator"]
    ]
    instance = env_value(operators[0], "VCTP_INSTANCE") if operators else None
    report.check(
        instance == RELEASE, f"{case}: operator Deployment", f"VCTP_INSTANCE is {instance!r}, want the release name"
    )
    texts = [
        (cm.data.get("data") or {}).get("job-template.yaml")
        for cm in find(objects, "ConfigMap")
        if (cm.data.get("data") or {}).get("job-template.yaml")
    ]
    if vctp is None or not report.check(len(texts) == 1, case, "one job-template.yaml ConfigMap"):
        return
    path = out / "job-template.yaml"
    path.write_text(texts[0])
    environment = {"PATH": "/usr/bin:/bin", **({"VCTP_INSTANCE": instance} if instance else {})}
    result = subprocess.run(
        [str(vctp), "operator", "--job-template", str(path), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    if not report.check(
        result.returncode == 0,
        f"{case}: job template",
        f"`vctp operator --job-template {path} --check` failed ({result.returncode}): {result.stderr.strip()}",
    ):
        return
    built = yaml.safe_load(result.stdout)
    template = yaml.safe_load(texts[0])
    pod, template_pod = built["spec"]["template"]["spec"], template["spec"]["template"]["spec"]
    container = pod["containers"][0]
    report.check(
        container.get("args", [])[:2] == ["job", "aggregate"],
        f"{case}: job template",
        f"the operator's Job runs {container.get('args')}, not `vctp job aggregate`",
    )
    report.check(
        pod.get("serviceAccountName") == template_pod.get("serviceAccountName")
        and container.get("image") == template_pod["containers"][0].get("image"),
        f"{case}: job template",
        "the operator's Job lost the template's ServiceAccount or image",
    )
    report.check(
        any(e.get("name") == "VCTP_DATABASE_URL" for e in container.get("env") or []),
        f"{case}: job template",
        "the operator's Job lost VCTP_DATABASE_URL",
    )
    for what, labels in (
        ("Job", built["metadata"].get("labels") or {}),
        ("Pod", built["spec"]["template"]["metadata"].get("labels") or {}),
    ):
        report.check(
            is_subset(selector, labels),
            f"{case}: job template",
            f"NOTES.txt's `kubectl get jobs -l` selector {selector} does not select the operator's {what} (labels {labels})",
        )


def check_crds(
    report: Report,
    case: str,
    objects: list[Obj],
    values: dict[str, Any],
    generated: dict[str, dict[str, Any]],
) -> None:
    crds = find(objects, "CustomResourceDefinition")
    if not values["crds"]["install"]:
        report.check(not crds, case, "crds.install=false still renders CustomResourceDefinitions")
        return
    if not crds and not generated:
        log(
            f"  note: {case}: no CRDs yet (crds/*.yaml and charts/vctp/templates/crds/ come with the CRD work)"
        )
        return
    for crd in crds:
        annotations = (crd.data.get("metadata") or {}).get("annotations") or {}
        report.check(
            annotations.get("helm.sh/resource-policy") == "keep",
            f"{case}: {crd}",
            "lacks the annotation helm.sh/resource-policy: keep",
        )
        spec = crd.data.get("spec") or {}
        report.check(spec.get("group") == "vctp.io", f"{case}: {crd}", f"group {spec.get('group')!r}")
        report.check(
            "vctp" in ((spec.get("names") or {}).get("categories") or []),
            f"{case}: {crd}",
            "not in category vctp: `kubectl get vctp` (NOTES.txt) would not list it",
        )
    rendered = {crd.name: crd for crd in crds}
    for name, data in sorted(generated.items()):
        if report.check(
            name in rendered, case, f"CRD {name} of crds/ is not in the chart (charts/vctp/templates/crds/)"
        ):
            report.check(
                rendered[name].data.get("spec") == data.get("spec"),
                f"{case}: {rendered[name]}",
                f"spec differs from crds/ ({name}): regenerate the chart's copy",
            )
    for name in sorted(set(rendered) - set(generated)):
        report.check(not generated, case, f"CRD {name} of the chart is not in crds/")


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the API server would silently prune: not in the structural schema."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                found += unknown_fields(item, schema["properties"][key], f"{path}.{key}")
            elif path != "" or key not in {"apiVersion", "kind", "metadata"}:
                found.append(f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            found += unknown_fields(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def check_api_notes(report: Report, case: str, notes: str, values: dict[str, Any]) -> None:
    """How to reach the UI and swagger (port-forward, else the Ingress URL) and how to log in."""
    where = f"{case}: NOTES.txt"
    api = values["api"]
    fullname = (values.get("fullnameOverride") or f"{RELEASE}-vctp")[:48].rstrip("-")
    if not api["enabled"]:
        report.check(f"{fullname}-api" not in notes, where, "mentions the API with api.enabled=false")
        return
    ingress = api["ingress"]
    if ingress["enabled"]:
        scheme = "https" if ingress["tls"] else "http"
        url = f"{scheme}://{ingress['hosts'][0]['host']}"
        report.check(f"{url}/swagger" in notes, where, f"does not give the UI at {url} and {url}/swagger")
    else:
        report.check(
            f"port-forward svc/{fullname}-api 8080:{api['service']['port']}" in notes and "/swagger" in notes,
            where,
            "does not say how to port-forward to the UI and swagger",
        )
    auth = api["auth"]
    if auth["enabled"]:
        report.check(
            "/api/auth/login" in notes and f"create secret generic {auth['jwtSigningKeySecret']}" in notes,
            where,
            "does not say how to log in and create the signing key Secret",
        )
    else:
        report.check("No login" in notes, where, "does not warn that the API has no login")


def check_notes(
    report: Report, case: str, notes: str, values: dict[str, Any], crds: dict[str, dict[str, Any]]
) -> None:
    report.check("kubectl get vctp" in notes, f"{case}: NOTES.txt", "does not say how to see the resources")
    check_api_notes(report, case, notes, values)
    url = values["objectStore"]["url"]
    report.check(
        (url.rstrip("/") in notes) if url else ("LOST" in notes),
        f"{case}: NOTES.txt",
        "does not say where reports go",
    )
    # The VCenterTarget it shows must be one the CRD accepts, field names included.
    match = re.search(r"<<'YAML'\n(.*?)\n\s*YAML\n", notes, re.DOTALL)
    if not report.check(match is not None, f"{case}: NOTES.txt", "shows no VCenterTarget manifest"):
        return
    assert match is not None
    example = yaml.safe_load(textwrap.dedent(match.group(1)))
    report.check(
        example.get("kind") == "VCenterTarget", f"{case}: NOTES.txt", "the example is no VCenterTarget"
    )
    crd = crds.get("vcentertargets.vctp.io")
    if crd is None:
        return
    group_version = f"{crd['spec']['group']}/"
    versions = {group_version + v["name"]: v for v in crd["spec"]["versions"]}
    version = versions.get(example.get("apiVersion"))
    if not report.check(
        version is not None, f"{case}: NOTES.txt", f"apiVersion {example.get('apiVersion')} is not served"
    ):
        return
    assert version is not None
    schema = version["schema"]["openAPIV3Schema"]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(example), key=str)
    report.check(
        not errors,
        f"{case}: NOTES.txt",
        "the VCenterTarget example does not validate: " + "; ".join(e.message for e in errors[:3]),
    )
    pruned = unknown_fields(example, schema, "")
    report.check(
        not pruned, f"{case}: NOTES.txt", f"the VCenterTarget example has fields the CRD lacks: {pruned}"
    )


# ---------------------------------------------------------------------------------------------
# Alert rules: promtool check and unit tests


def alert_tests(
    operator_job: str, api_job: str, stale_seconds: int, growth_percent: float
) -> list[dict[str, Any]]:
    """promtool unit tests of every alert, for the series the operator's and the API's pods
    export (the caller drops the tests of alerts a case does not render)."""
    ns = {"namespace": NAMESPACE}

    def series(metric: str, values: str, job: str, **labels: str) -> dict[str, str]:
        all_labels = {"job": job, **ns, **labels}
        body = ",".join(f'{k}="{v}"' for k, v in all_labels.items())
        return {"series": f"{metric}{{{body}}}", "values": values}

    leader = {"pod": "operator-a", "instance": "10.0.0.1:8080"}
    follower = {"pod": "operator-b", "instance": "10.0.0.2:8080"}
    api_a = {"pod": "api-a", "instance": "10.0.1.1:8080"}
    api_b = {"pod": "api-b", "instance": "10.0.1.2:8080"}
    vc1 = {"vcenter": "vc1.example.com"}
    vc2 = {"vcenter": "vc2.example.com"}
    op = operator_job
    minutes = 60 * 24 + 120
    fires_at = (stale_seconds + 60) // 60 + 10 + 2  # past the threshold, then `for: 10m`
    return [
        {
            "name": "operator down: fires only after 10 minutes with no replica up",
            "interval": "1m",
            "input_series": [
                series("up", f"1x30 0x{minutes}", op, **leader),
                series("up", f"1x30 0x{minutes}", op, **follower),
                # An API that is up does not hide a down operator.
                series("up", f"1x{minutes}", api_job, **api_a),
            ],
            "alert_rule_test": [
                {"eval_time": "25m", "alertname": "VctpOperatorDown", "exp_alerts": []},
                {"eval_time": "35m", "alertname": "VctpOperatorDown", "exp_alerts": []},
                {
                    "eval_time": "45m",
                    "alertname": "VctpOperatorDown",
                    # absent() has no labels of its own: the rule adds the namespace.
                    "exp_alerts": [{"exp_labels": {**ns, "severity": "critical"}}],
                },
            ],
        },
        {
            "name": "one replica up is enough",
            "interval": "1m",
            "input_series": [
                series("up", f"1x{minutes}", op, **leader),
                series("up", f"0x{minutes}", op, **follower),
                series("up", f"1x{minutes}", api_job, **api_a),
                series("up", f"0x{minutes}", api_job, **api_b),
            ],
            "alert_rule_test": [
                {"eval_time": "60m", "alertname": "VctpOperatorDown", "exp_alerts": []},
                {"eval_time": "60m", "alertname": "VctpApiDown", "exp_alerts": []},
            ],
        },
        {
            "name": "API down: fires only after 10 minutes with no API replica up",
            "interval": "1m",
            "input_series": [
                series("up", f"1x30 0x{minutes}", api_job, **api_a),
                series("up", f"1x30 0x{minutes}", api_job, **api_b),
                # An operator that is up does not hide a down API.
                series("up", f"1x{minutes}", op, **leader),
            ],
            "alert_rule_test": [
                {"eval_time": "35m", "alertname": "VctpApiDown", "exp_alerts": []},
                {
                    "eval_time": "45m",
                    "alertname": "VctpApiDown",
                    "exp_alerts": [{"exp_labels": {**ns, "severity": "critical"}}],
                },
            ],
        },
        {
            "name": "no leader: fires when the replicas are up but none leads for 10 minutes",
            "interval": "1m",
            "input_series": [
                series("vctp_operator_leader", f"1x20 0x{minutes}", op, **leader),
                series("vctp_operator_leader", f"0x{minutes}", op, **follower),
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "VctpNoLeader", "exp_alerts": []},
                {"eval_time": "28m", "alertname": "VctpNoLeader", "exp_alerts": []},
                {
                    "eval_time": "35m",
                    "alertname": "VctpNoLeader",
                    "exp_alerts": [{"exp_labels": {"job": op, **ns, "severity": "critical"}}],
                },
            ],
        },
        {
            "name": "stale snapshots: the leader's gauge counts, the follower's zero does not",
            "interval": "1m",
            "input_series": [
                # The last snapshot at t=60s, never again.
                series("vctp_hourly_snapshot_last_unix", f"60x{minutes}", op, **leader, **vc1),
                series("vctp_hourly_snapshot_last_unix", f"0x{minutes}", op, **follower, **vc1),
            ],
            "alert_rule_test": [
                {
                    "eval_time": f"{stale_seconds // 60 - 5}m",
                    "alertname": "VctpSnapshotsStale",
                    "exp_alerts": [],
                },
                {
                    "eval_time": f"{fires_at}m",
                    "alertname": "VctpSnapshotsStale",
                    "exp_alerts": [{"exp_labels": {**ns, **vc1, "severity": "warning"}}],
                },
            ],
        },
        {
            "name": "stale snapshots from the API's database figures: one alert per vCenter, "
            "however many pods report it, and the newest snapshot wins",
            "interval": "1m",
            "input_series": [
                series("vctp_hourly_snapshot_last_unix", f"60x{minutes}", api_job, **api_a, **vc1),
                series("vctp_hourly_snapshot_last_unix", f"60x{minutes}", api_job, **api_b, **vc1),
                series("vctp_hourly_snapshot_last_unix", f"60x{minutes}", op, **leader, **vc1),
                # vc2 is stale for the operator (restarted, nothing new yet) but the database
                # has a recent one: not stale.
                series("vctp_hourly_snapshot_last_unix", f"60x{minutes}", op, **leader, **vc2),
                series("vctp_hourly_snapshot_last_unix", f"60+60x{minutes}", api_job, **api_a, **vc2),
            ],
            "alert_rule_test": [
                {
                    "eval_time": f"{fires_at}m",
                    "alertname": "VctpSnapshotsStale",
                    "exp_alerts": [{"exp_labels": {**ns, **vc1, "severity": "warning"}}],
                },
            ],
        },
        {
            "name": "no stale alert from a follower alone (no snapshot yet)",
            "interval": "1m",
            "input_series": [series("vctp_hourly_snapshot_last_unix", f"0x{minutes}", op, **follower, **vc1)],
            "alert_rule_test": [
                {"eval_time": f"{fires_at + 60}m", "alertname": "VctpSnapshotsStale", "exp_alerts": []}
            ],
        },
        {
            "name": "failed snapshots and aggregations fire, quiet counters do not",
            "interval": "1m",
            "input_series": [
                series("vctp_hourly_snapshots_failed_total", f"0x60 1x{minutes}", op, **leader, **vc1),
                series("vctp_hourly_snapshots_failed_total", f"0x{minutes}", op, **follower, **vc1),
                series("vctp_daily_aggregations_failed_total", f"0x60 1x{minutes}", op, **leader),
                series("vctp_monthly_aggregations_failed_total", f"0x{minutes}", op, **leader),
                series(
                    "vctp_operator_reconcile_errors_total",
                    f"0+1x{minutes}",
                    op,
                    controller="aggregationjob",
                    **leader,
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "50m", "alertname": "VctpSnapshotsFailed", "exp_alerts": []},
                {
                    "eval_time": "90m",
                    "alertname": "VctpSnapshotsFailed",
                    "exp_alerts": [{"exp_labels": {**ns, **vc1, "severity": "warning"}}],
                },
                {
                    "eval_time": "90m",
                    "alertname": "VctpDailyAggregationFailed",
                    "exp_alerts": [{"exp_labels": {**ns, "severity": "warning"}}],
                },
                {"eval_time": "90m", "alertname": "VctpMonthlyAggregationFailed", "exp_alerts": []},
                {
                    "eval_time": "40m",
                    "alertname": "VctpReconcileErrors",
                    "exp_alerts": [
                        {"exp_labels": {**ns, "controller": "aggregationjob", "severity": "warning"}}
                    ],
                },
            ],
        },
        {
            "name": "a failure both the operator and two API replicas count is one alert; "
            "a restarted API replica's recounted total is no failure",
            "interval": "1m",
            "input_series": [
                series("vctp_hourly_snapshots_failed_total", f"0x60 1x{minutes}", op, **leader, **vc1),
                # The API recounts the database's runs: 4 old failures, then the new one.
                series("vctp_hourly_snapshots_failed_total", f"4x60 5x{minutes}", api_job, **api_a, **vc1),
                series("vctp_hourly_snapshots_failed_total", f"4x60 5x{minutes}", api_job, **api_b, **vc1),
                # api-c starts at minute 30 with the old total: nothing new failed.
                series(
                    "vctp_hourly_snapshots_failed_total",
                    f"_x30 4x30 5x{minutes}",
                    api_job,
                    pod="api-c",
                    instance="10.0.1.3:8080",
                    **vc1,
                ),
                series("vctp_hourly_snapshots_failed_total", f"2x{minutes}", api_job, **api_a, **vc2),
                series("vctp_daily_aggregations_failed_total", f"0x60 1x{minutes}", op, **leader),
                series("vctp_daily_aggregations_failed_total", f"0x60 1x{minutes}", api_job, **api_a),
            ],
            "alert_rule_test": [
                {"eval_time": "50m", "alertname": "VctpSnapshotsFailed", "exp_alerts": []},
                {
                    "eval_time": "90m",
                    "alertname": "VctpSnapshotsFailed",
                    "exp_alerts": [{"exp_labels": {**ns, **vc1, "severity": "warning"}}],
                },
                {
                    "eval_time": "90m",
                    "alertname": "VctpDailyAggregationFailed",
                    "exp_alerts": [{"exp_labels": {**ns, "severity": "warning"}}],
                },
            ],
        },
        {
            "name": "a tenant's month to date above last month's to the same day by more than the "
            "threshold fires once, however many API replicas report it; below it, or without "
            "last month, it does not",
            "interval": "1m",
            "input_series": [
                *(
                    series("vctp_tenant_cost_month_to_date", f"{100 + growth_percent + 1}x{minutes}", api_job, **pod, tenant="acme", currency="EUR")
                    for pod in (api_a, api_b)
                ),
                series("vctp_tenant_cost_previous_month_to_date", f"100x{minutes}", api_job, **api_a, tenant="acme", currency="EUR"),
                series("vctp_tenant_cost_month_to_date", f"{100 + growth_percent - 1}x{minutes}", api_job, **api_a, tenant="beta", currency="EUR"),
                series("vctp_tenant_cost_previous_month_to_date", f"100x{minutes}", api_job, **api_a, tenant="beta", currency="EUR"),
                series("vctp_tenant_cost_month_to_date", f"500x{minutes}", api_job, **api_a, tenant="gamma", currency="EUR"),
            ],
            "alert_rule_test": [
                {"eval_time": "30m", "alertname": "VctpTenantCostGrowth", "exp_alerts": []},
                {
                    "eval_time": "90m",
                    "alertname": "VctpTenantCostGrowth",
                    "exp_alerts": [
                        {"exp_labels": {**ns, "tenant": "acme", "currency": "EUR", "severity": "warning"}}
                    ],
                },
            ],
        },
        {
            "name": "API replicas alone: a failure fires once",
            "interval": "1m",
            "input_series": [
                series("vctp_hourly_snapshots_failed_total", f"0x60 1x{minutes}", api_job, **api_a, **vc2),
                series("vctp_hourly_snapshots_failed_total", f"0x60 1x{minutes}", api_job, **api_b, **vc2),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "90m",
                    "alertname": "VctpSnapshotsFailed",
                    "exp_alerts": [{"exp_labels": {**ns, **vc2, "severity": "warning"}}],
                },
            ],
        },
    ]


def rendered_alert_tests(tests: list[dict[str, Any]], alerts: set[str]) -> list[dict[str, Any]]:
    """The tests of the alerts a case renders (promtool fails on an expected alert of a rule that
    does not exist)."""
    kept = []
    for test in tests:
        cases = [t for t in test["alert_rule_test"] if t["alertname"] in alerts]
        if cases:
            kept.append({**test, "alert_rule_test": cases})
    return kept


def check_alerts(
    report: Report,
    case: str,
    objects: list[Obj],
    values: dict[str, Any],
    fullname: str,
    out: Path,
    promtool: str | None,
) -> None:
    rules = find(objects, "PrometheusRule")
    if not rules:
        return
    if not report.check(
        promtool is not None,
        case,
        "promtool not found: install Debian's prometheus package (scripts/helm.sh helm_install)",
    ):
        return
    assert promtool is not None
    rule = rules[0]
    alerts = [r for g in rule.data["spec"]["groups"] for r in g.get("rules") or [] if "alert" in r]
    names = {a["alert"] for a in alerts}
    api_scraped = values["api"]["enabled"] and values["api"]["serviceMonitor"]["enabled"]
    # The operator's own alerts would fire forever when only the API is scraped.
    operator_alerts = values["metrics"]["serviceMonitor"]["enabled"] or not api_scraped
    want = {
        *(["VctpNoLeader"] if operator_alerts and values["operator"]["leaderElection"]["enabled"] else []),
        *(["VctpOperatorDown", "VctpReconcileErrors"] if operator_alerts else []),
        *(["VctpApiDown"] if api_scraped else []),
        *(["VctpTenantCostGrowth"] if api_scraped and values.get("rateCards") else []),
        "VctpSnapshotsFailed",
        "VctpSnapshotsStale",
        "VctpDailyAggregationFailed",
        "VctpMonthlyAggregationFailed",
    }
    report.check(names == want, f"{case}: {rule}", f"alerts {sorted(names)}, want {sorted(want)}")
    for alert in alerts:
        report.check(
            (alert.get("labels") or {}).get("severity") in {"warning", "critical"},
            f"{case}: {rule}",
            f"{alert['alert']} has no severity",
        )
        report.check(
            bool((alert.get("annotations") or {}).get("summary")),
            f"{case}: {rule}",
            f"{alert['alert']} has no summary",
        )
    rules_file = out / "prometheus-rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule.data["spec"], sort_keys=False))
    # The unit tests check when alerts fire and with which labels; promtool would also compare
    # the annotations, whose text is checked above, so they test a copy without them.
    bare = copy.deepcopy(rule.data["spec"])
    for group in bare["groups"]:
        for r in group.get("rules") or []:
            r.pop("annotations", None)
    bare_file = out / "prometheus-rules.bare.yaml"
    bare_file.write_text(yaml.safe_dump(bare, sort_keys=False))
    tests = alert_tests(
        f"{fullname}-metrics",
        f"{fullname}-api",
        values["prometheusRule"]["staleSnapshotSeconds"],
        values["prometheusRule"]["tenantCostGrowthPercent"],
    )
    tests_file = out / "prometheus-rules.test.yaml"
    tests_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [bare_file.name],
                "evaluation_interval": "1m",
                "tests": rendered_alert_tests(tests, names),
            },
            sort_keys=False,
        )
    )
    for command in (["check", "rules", rules_file.name], ["test", "rules", tests_file.name]):
        result = subprocess.run(
            [promtool, *command], check=False, cwd=out, capture_output=True, text=True, timeout=120
        )
        report.check(
            result.returncode == 0,
            f"{case}: promtool {' '.join(command)}",
            (result.stdout + result.stderr).strip().replace("\n", "\n    "),
        )


# ---------------------------------------------------------------------------------------------
# kubernetes-validate over every case at once (one process: the schemas load once)


def kubernetes_validate(report: Report, files: dict[str, Path]) -> None:
    tool = Path(sys.executable).parent / "kubernetes-validate"
    if not report.check(
        tool.exists(), "kubernetes-validate", f"{tool} is missing (scripts/helm.sh helm_install)"
    ):
        return
    command = [str(tool), "-k", KUBE_VERSION, "--strict", *[str(f) for f in files.values()]]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    passed = 0
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("INFO ") and " passed for resource " in line:
            passed += 1
        elif line.strip():
            # A warning means a kind without a schema (a typo'd apiVersion): fail it too.
            report.check(False, "kubernetes-validate", line)
    report.check(result.returncode == 0, "kubernetes-validate", f"exit status {result.returncode}")
    report.check(passed > 0, "kubernetes-validate", "validated nothing")
    log(f"  {passed} objects valid")


# ---------------------------------------------------------------------------------------------
# Checks that do not depend on a rendered case


def settings_fields() -> set[str]:
    """The keys of `settings:` that src/config.rs accepts (field names, serde renames applied)."""
    source = (ROOT / "src" / "config.rs").read_text()
    match = re.search(r"pub struct Settings \{(.*?)\n\}", source, re.DOTALL)
    if match is None:
        raise SystemExit("chart_check: struct Settings not found in src/config.rs")
    fields: set[str] = set()
    rename: str | None = None
    for line in match.group(1).splitlines():
        if m := re.search(r'#\[serde\(rename = "([a-z_]+)"\)\]', line):
            rename = m.group(1)
        elif re.search(r"#\[serde\(skip\)\]", line):
            # Computed from other keys (e.g. `pricing`), never read from the file.
            rename = ""
        elif m := re.match(r"\s*pub ([a-z_][a-z0-9_]*):", line):
            if rename != "":
                fields.add(rename or m.group(1))
            rename = None
    return fields


def check_static(report: Report, chart: Chart, fields: set[str]) -> None:
    cargo = (ROOT / "Cargo.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', cargo, re.MULTILINE)
    app_version = chart.metadata.get("appVersion")
    report.check(
        bool(version) and app_version == version.group(1),
        "Chart.yaml",
        f"appVersion {app_version!r} ≠ Cargo.toml's version",
    )
    schema = chart.schema or {}
    report.check(bool(schema), "values.schema.json", "missing")
    in_schema = set(schema.get("properties", {}).get("settings", {}).get("properties", {}))
    # The auth keys come from api.auth.* (or Secrets), so they are not under `settings`; those
    # src/config.rs does not know yet (the auth work) are only expected once it does.
    elsewhere = SETTINGS_NOT_IN_VALUES | SETTINGS_FROM_API_AUTH | SECRET_SETTINGS | SETTINGS_NOT_RENDERED
    expected = in_schema | SETTINGS_NOT_IN_VALUES | (fields & elsewhere)
    report.check(
        expected == fields and not (in_schema & elsewhere),
        "values.schema.json settings",
        f"out of step with src/config.rs: missing {sorted(fields - expected)}, "
        f"unknown {sorted(expected - fields)}, should not be there {sorted(in_schema & elsewhere)}",
    )
    pending = SETTINGS_FROM_API_AUTH - fields
    if pending:
        log(
            f"  note: keys the chart renders from api.auth.* that src/config.rs does not know yet: {sorted(pending)}"
        )
    for values, fragment in BAD_VALUES:
        where = f"values.schema.json / templates reject {json.dumps(values)}"
        try:
            render(chart, with_image(values))
        except HelmError as exc:
            report.check(fragment in str(exc), where, f"the message does not name {fragment!r}: {exc}")
        else:
            report.check(False, where, "rendered without complaint")
    # Acknowledged, the Ingress without auth renders.
    # No image is published: without one the chart says so instead of pointing at docker.io.
    where = "the chart's own values (no image configured)"
    try:
        objects, _ = parse_manifests(render(chart, None))
    except HelmError as exc:
        report.check("image.repository is required" in str(exc), where, f"the message does not name image.repository: {exc}")
    else:
        images = sorted({c.get("image") for o in objects for _, pod in pod_specs(o) for c in containers(pod)})
        report.check(False, where, f"rendered without complaint, with images {images}")
    acknowledged = {"api": {"ingress": {"enabled": True}, "auth": {"allowUnauthenticatedIngress": True}}}
    where = f"templates render {json.dumps(acknowledged)}"
    try:
        objects, _ = parse_manifests(render(chart, with_image(acknowledged)))
        report.check(len(find(objects, "Ingress")) == 1, where, "no Ingress rendered")
    except HelmError as exc:
        report.check(False, where, str(exc))
    # Every value is documented in README.md.
    readme = (CHART / "README.md").read_text() if (CHART / "README.md").exists() else ""

    def keys(values: Any, prefix: str = "") -> list[str]:
        if (
            isinstance(values, dict)
            and values
            and prefix not in {"settings", "podSecurityContext", "securityContext"}
            and not prefix.endswith(("resources", "Selector"))
        ):
            return [
                k for key, value in values.items() for k in keys(value, f"{prefix}.{key}" if prefix else key)
            ]
        return [prefix]

    for key in keys(chart.values):
        report.check(
            f"`{key}`" in readme, "charts/vctp/README.md", f"value `{key}` is not in the values table"
        )


# What the chart is rendered for, the Kubernetes version and API versions it is told of
# (.Capabilities), and the PodDisruptionBudget apiVersion it must then give: a cluster's own
# answer wins; without one (`helm template`), the Kubernetes version decides (policy/v1 since 1.21).
CLUSTERS = [
    ("a 1.20 cluster", "v1.20.2", ["policy/v1beta1", "policy/v1beta1/PodDisruptionBudget"], "policy/v1beta1"),
    ("helm template --kube-version 1.20.2", "v1.20.2", [], "policy/v1beta1"),
    ("a 1.24 cluster", "v1.24.0", ["policy/v1", "policy/v1/PodDisruptionBudget", "policy/v1beta1/PodDisruptionBudget"], "policy/v1"),
    ("a 1.31 cluster", "v1.31.0", ["policy/v1", "policy/v1/PodDisruptionBudget"], "policy/v1"),
    ("helm template (Helm's default Kubernetes version)", None, [], "policy/v1"),
]
# Below Chart.yaml's kubeVersion the chart refuses to render.
TOO_OLD = "v1.19.16"


def check_kube_versions(report: Report, chart: Chart) -> None:
    """The PodDisruptionBudgets follow the cluster's API versions, and Chart.yaml's kubeVersion
    keeps the chart off clusters it was never meant for."""
    values = load_values("ci/all-features-values.yaml")
    for where, kube_version, api_versions, want in CLUSTERS:
        where = f"rendered for {where}"
        try:
            if kube_version is None:
                rendered = render(chart, values)
            else:
                rendered = render_for_cluster(chart, values, RELEASE, NAMESPACE, kube_version, api_versions)
        except HelmError as exc:
            report.check(False, where, str(exc))
            continue
        objects, _ = parse_manifests(rendered)
        pdbs = find(objects, "PodDisruptionBudget")
        report.check(len(pdbs) == 2, where, f"{len(pdbs)} PodDisruptionBudgets, want the operator's and the API's")
        for pdb in pdbs:
            got = pdb.data.get("apiVersion")
            report.check(got == want, f"{where}: {pdb}", f"apiVersion {got}, want {want}")
    constraint = chart.metadata.get("kubeVersion")
    report.check(bool(constraint), "Chart.yaml", "declares no kubeVersion")
    try:
        install_dry_run(chart, values, RELEASE, NAMESPACE, TOO_OLD)
    except HelmError as exc:
        report.check("kubeVersion" in str(exc), f"rendered for Kubernetes {TOO_OLD}", f"the message does not name kubeVersion: {exc}")
    else:
        report.check(False, f"rendered for Kubernetes {TOO_OLD}", f"rendered, though kubeVersion is {constraint!r}")


# ---------------------------------------------------------------------------------------------


def generated_crds(directory: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                found[doc["metadata"]["name"]] = doc
    return found


def main() -> int:
    global CHART
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "target" / "chart-check", help="where the rendered manifests go"
    )
    parser.add_argument(
        "--vctp", type=Path, help="a built vctp binary: the rendered settings files must load in it"
    )
    parser.add_argument("--promtool", default=shutil.which("promtool"), help="promtool (default: from PATH)")
    parser.add_argument("--chart", type=Path, help="the chart directory (default charts/vctp)")
    parser.add_argument("--crds", type=Path, default=ROOT / "crds", help="the generated CRDs (default crds/)")
    args = parser.parse_args()
    if args.chart is not None:
        CHART = args.chart.resolve()
    if args.vctp is not None and not args.vctp.is_file():
        print(f"chart_check: --vctp {args.vctp} does not exist (cargo build first)", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = Report()
    fields = settings_fields()
    crds = generated_crds(args.crds)
    plurals = {d["spec"]["names"]["plural"] for d in crds.values()} or FALLBACK_PLURALS
    log(
        f"chart_check: helm SDK {helm.helm_sdk_version()}, chart {CHART}, release {RELEASE!r} in {NAMESPACE!r}"
    )
    log(
        f"  vctp.io kinds: {sorted(plurals)} ({'from crds/' if crds else 'crds/ has none yet: the expected four'})"
    )
    validate_files: dict[str, Path] = {}
    with Chart.load(str(CHART)) as chart:
        chart_version = chart.version
        for case, values_file in CASES:
            case_started = time.monotonic()
            log(f"- {case} ({values_file or 'values.yaml'})")
            user_values = load_values(values_file)
            lint(report, case, user_values)
            try:
                rendered = render(chart, user_values)
            except HelmError as exc:
                report.check(False, f"{case}: render", str(exc))
                continue
            out = args.out / case
            write_manifests(out, rendered)
            objects, notes = parse_manifests(rendered)
            values = chart.merge_values(user_values)
            fullname = (values.get("fullnameOverride") or f"{RELEASE}-vctp")[:48].rstrip("-")
            watched = list(dict.fromkeys(values["watchNamespaces"])) or [NAMESPACE]
            job = job_template(objects)
            if job is not None:
                job.data["metadata"]["namespace"] = watched[0]
            all_objects = objects + ([job] if job else [])
            check_namespaces(report, case, objects)
            check_labels(report, case, all_objects, chart_version)
            for obj in all_objects:
                check_security(report, case, obj)
            check_rbac(report, case, objects, values, plurals, watched, fullname)
            check_wiring(report, case, objects, job, values, watched, fullname)
            check_api(report, case, objects, values, watched, fullname)
            check_network_policies(report, case, objects, values, fullname)
            check_extra_volumes(report, case, objects, job, values, fullname)
            check_no_secrets_in_configmaps(report, case, all_objects)
            check_settings(report, case, objects, values, out, args.vctp, fields)
            check_job_template(report, case, objects, notes, out, args.vctp)
            check_crds(report, case, objects, values, crds)
            check_notes(report, case, notes, values, crds)
            check_alerts(report, case, objects, values, fullname, out, args.promtool)
            builtin = [o for o in all_objects if o.group not in CUSTOM_GROUPS]
            skipped = [o for o in all_objects if o.group in CUSTOM_GROUPS]
            path = out / "builtin-kinds.yaml"
            path.write_text(yaml.safe_dump_all([o.data for o in builtin], sort_keys=False))
            validate_files[case] = path
            kinds: dict[str, int] = {}
            for o in builtin:
                kinds[o.kind] = kinds.get(o.kind, 0) + 1
            log(
                f"  {len(objects)} objects + the Job template; built-in kinds: "
                + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
            )
            if skipped:
                log(
                    "  not schema-validated (custom resources): "
                    + ", ".join(f"{o.kind} {o.name}" for o in skipped)
                )
            log(
                f"  written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({time.monotonic() - case_started:.1f} s)"
            )
        log(
            f"- kubernetes-validate -k {KUBE_VERSION} --strict: "
            + ", ".join(str(p.relative_to(args.out)) for p in validate_files.values())
        )
        validate_started = time.monotonic()
        kubernetes_validate(report, validate_files)
        log(f"  ({time.monotonic() - validate_started:.1f} s)")
        log("- schema, settings keys, README, appVersion")
        check_static(report, chart, fields)
        log("- Kubernetes versions: PodDisruptionBudget apiVersion, kubeVersion")
        check_kube_versions(report, chart)
    if args.vctp is None:
        log("  note: no --vctp: the settings files were not loaded by vctp")
    elapsed = time.monotonic() - started
    if report.problems:
        log(f"\nchart_check: {len(report.problems)} problem(s) in {report.checks} checks ({elapsed:.1f} s):")
        for problem in report.problems:
            log(f"  - {problem}")
        return 1
    log(f"\nchart_check: all {report.checks} checks passed ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
