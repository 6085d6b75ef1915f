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
     only, namespaced Roles only, every right the operator and the Jobs need and no more;
     standard labels on every object; Services, ServiceMonitor, PDB and ConfigMap/
     ServiceAccount references that resolve; CRD templates that carry
     helm.sh/resource-policy: keep and match crds/*.yaml;
  5. promtool check + unit tests of the PrometheusRule alerts;
  6. the settings file loads in `vctp db migrate` (with --vctp);
and once: values.schema.json rejects bad values, its `settings` keys match src/config.rs,
README.md documents every value, appVersion matches Cargo.toml.

Exits 1 with one line per problem, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import copy
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

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "vctp"
# A release name without "vctp" in it, so object names take the "<release>-vctp" form.
RELEASE = "finance"
NAMESPACE = "vctp-system"
KUBE_VERSION = "1.31"
# The default values, then each CI values file (relative to the chart).
CASES = [
    ("default", None),
    ("minimal", "ci/minimal-values.yaml"),
    ("all-features", "ci/all-features-values.yaml"),
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
    "vcenter_ca_file",  # VCenterTarget resources
    "vcenter_event_polling_seconds",
    "vcenter_inventory_polling_seconds",  # deprecated, ignored
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


def load_values(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return helm.values_from_yaml((CHART / path).read_text())


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


def check_rbac(
    report: Report,
    case: str,
    objects: list[Obj],
    values: dict[str, Any],
    plurals: set[str],
    watched: list[str],
    fullname: str,
) -> None:
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        for obj in find(objects, kind):
            report.check(
                False,
                f"{case}: {obj}",
                "cluster-wide RBAC: every right vctp needs is namespaced (README.md, RBAC)",
            )
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
                report.check(
                    set(rule.get("apiGroups") or []) == {"vctp.io"},
                    f"{case}: {role}",
                    f"the Jobs need vctp.io resources only, not {rule.get('apiGroups')} {rule.get('resources')}",
                )
                # A Job only reads its resource: its outcome goes back through the termination
                # message, which the operator copies into status.
                write = set(rule.get("verbs") or []) - {"get"}
                report.check(
                    not write,
                    f"{case}: {role}",
                    f"the Jobs only read their resource, not {sorted(write)} {rule.get('resources')}",
                )
            for plural in ("vcentertargets", "aggregationjobs", "metricsexports"):
                if plural in plurals:
                    report.check(
                        "get" in granted(role, "vctp.io", plural), f"{case}: {role}", f"cannot get {plural}"
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


def check_wiring(
    report: Report,
    case: str,
    objects: list[Obj],
    job: Obj | None,
    values: dict[str, Any],
    watched: list[str],
    fullname: str,
) -> None:
    deployments = find(objects, "Deployment")
    if not report.check(len(deployments) == 1, case, f"{len(deployments)} Deployments, want the operator's"):
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

    services = find(objects, "Service")
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
        for monitor in find(objects, "ServiceMonitor"):
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
        bool(find(objects, "ServiceMonitor")) == values["metrics"]["serviceMonitor"]["enabled"],
        case,
        "ServiceMonitor rendered ≠ metrics.serviceMonitor.enabled",
    )
    report.check(
        bool(find(objects, "PrometheusRule")) == values["prometheusRule"]["enabled"],
        case,
        "PrometheusRule rendered ≠ prometheusRule.enabled",
    )
    pdbs = find(objects, "PodDisruptionBudget")
    want_pdb = values["operator"]["podDisruptionBudget"]["enabled"] and values["operator"]["replicas"] > 1
    report.check(bool(pdbs) == want_pdb, case, f"{len(pdbs)} PodDisruptionBudgets, want {int(want_pdb)}")
    for pdb in pdbs:
        report.check(
            is_subset(pdb.data["spec"]["selector"]["matchLabels"], pod_labels),
            f"{case}: {pdb}",
            "selects no operator pod",
        )

    # ConfigMaps and ServiceAccounts that the operator's pods and the Jobs' pods name.
    def configmaps_of(pod_spec: dict[str, Any]) -> list[str]:
        names = []
        for volume in pod_spec.get("volumes") or []:
            if "configMap" in volume:
                names.append(volume["configMap"]["name"])
            for source in (volume.get("projected") or {}).get("sources") or []:
                if "configMap" in source:
                    names.append(source["configMap"]["name"])
        return names

    def check_pod_refs(where: str, pod_spec: dict[str, Any], ns: str, sa_created: bool) -> None:
        for name in configmaps_of(pod_spec):
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
        report.check(
            pod_spec.get("automountServiceAccountToken") is True, where, "does not mount its API token"
        )

    check_pod_refs(f"{case}: {deployment}", pod, NAMESPACE, values["operator"]["serviceAccount"]["create"])
    if report.check(job is not None, case, "no Job template ConfigMap"):
        assert job is not None
        _, job_pod = pod_specs(job)[0]
        for ns in watched:
            check_pod_refs(
                f"{case}: {job.source} in {ns}", job_pod, ns, values["jobs"]["serviceAccount"]["create"]
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
        unknown = set(settings) - fields
        report.check(not unknown, f"{case}: settings file", f"keys vctp does not know: {sorted(unknown)}")
        url = values["objectStore"]["url"]
        report.check(
            settings.get("reports_url") == (url or None),
            f"{case}: settings file",
            "reports_url is not objectStore.url",
        )
        path = out / "vctp.yml"
        path.write_text(text)
        if vctp is not None:
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


def check_job_template(report: Report, case: str, objects: list[Obj], out: Path, vctp: Path | None) -> None:
    """The operator reads the rendered Job template and builds its Jobs from it
    (`vctp operator --job-template FILE --check` prints the Job of an example AggregationJob)."""
    texts = [
        (cm.data.get("data") or {}).get("job-template.yaml")
        for cm in find(objects, "ConfigMap")
        if (cm.data.get("data") or {}).get("job-template.yaml")
    ]
    if vctp is None or not report.check(len(texts) == 1, case, "one job-template.yaml ConfigMap"):
        return
    path = out / "job-template.yaml"
    path.write_text(texts[0])
    result = subprocess.run(
        [str(vctp), "operator", "--job-template", str(path), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
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


def check_notes(
    report: Report, case: str, notes: str, values: dict[str, Any], crds: dict[str, dict[str, Any]]
) -> None:
    report.check("kubectl get vctp" in notes, f"{case}: NOTES.txt", "does not say how to see the resources")
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


def alert_tests(selector: dict[str, str], stale_seconds: int) -> list[dict[str, Any]]:
    """promtool unit tests of every alert, for the series the operator's pods export."""

    def series(metric: str, values: str, **labels: str) -> dict[str, str]:
        all_labels = {**selector, **labels}
        body = ",".join(f'{k}="{v}"' for k, v in all_labels.items())
        return {"series": f"{metric}{{{body}}}", "values": values}

    leader = {"pod": "operator-a", "instance": "10.0.0.1:8080"}
    follower = {"pod": "operator-b", "instance": "10.0.0.2:8080"}
    minutes = 60 * 24 + 120
    fires_at = (stale_seconds + 60) // 60 + 10 + 2  # past the threshold, then `for: 10m`
    return [
        {
            "name": "operator down: fires only after 10 minutes with no replica up",
            "interval": "1m",
            "input_series": [
                series("up", f"1x30 0x{minutes}", **leader),
                series("up", f"1x30 0x{minutes}", **follower),
            ],
            "alert_rule_test": [
                {"eval_time": "25m", "alertname": "VctpOperatorDown", "exp_alerts": []},
                {"eval_time": "35m", "alertname": "VctpOperatorDown", "exp_alerts": []},
                {
                    "eval_time": "45m",
                    "alertname": "VctpOperatorDown",
                    # absent() has no labels of its own: the rule adds the namespace.
                    "exp_alerts": [
                        {"exp_labels": {"namespace": selector["namespace"], "severity": "critical"}}
                    ],
                },
            ],
        },
        {
            "name": "one replica up is enough",
            "interval": "1m",
            "input_series": [
                series("up", f"1x{minutes}", **leader),
                series("up", f"0x{minutes}", **follower),
            ],
            "alert_rule_test": [{"eval_time": "60m", "alertname": "VctpOperatorDown", "exp_alerts": []}],
        },
        {
            "name": "no leader: fires when the replicas are up but none leads for 10 minutes",
            "interval": "1m",
            "input_series": [
                series("vctp_operator_leader", f"1x20 0x{minutes}", **leader),
                series("vctp_operator_leader", f"0x{minutes}", **follower),
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "VctpNoLeader", "exp_alerts": []},
                {"eval_time": "28m", "alertname": "VctpNoLeader", "exp_alerts": []},
                {
                    "eval_time": "35m",
                    "alertname": "VctpNoLeader",
                    "exp_alerts": [{"exp_labels": {**selector, "severity": "critical"}}],
                },
            ],
        },
        {
            "name": "stale snapshots: the leader's gauge counts, the follower's zero does not",
            "interval": "1m",
            "input_series": [
                # The last snapshot at t=60s, never again.
                series("vctp_hourly_snapshot_last_unix", f"60x{minutes}", **leader),
                series("vctp_hourly_snapshot_last_unix", f"0x{minutes}", **follower),
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
                    "exp_alerts": [{"exp_labels": {**selector, "severity": "warning"}}],
                },
            ],
        },
        {
            "name": "no stale alert from a follower alone (no snapshot yet)",
            "interval": "1m",
            "input_series": [series("vctp_hourly_snapshot_last_unix", f"0x{minutes}", **follower)],
            "alert_rule_test": [
                {"eval_time": f"{fires_at + 60}m", "alertname": "VctpSnapshotsStale", "exp_alerts": []}
            ],
        },
        {
            "name": "failed snapshots and aggregations fire, quiet counters do not",
            "interval": "1m",
            "input_series": [
                series("vctp_hourly_snapshots_failed_total", f"0x60 1x{minutes}", **leader),
                series("vctp_hourly_snapshots_failed_total", f"0x{minutes}", **follower),
                series("vctp_daily_aggregations_failed_total", f"0x60 1x{minutes}", **leader),
                series("vctp_monthly_aggregations_failed_total", f"0x{minutes}", **leader),
                series(
                    "vctp_operator_reconcile_errors_total",
                    f"0+1x{minutes}",
                    controller="aggregationjob",
                    **leader,
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "50m", "alertname": "VctpSnapshotsFailed", "exp_alerts": []},
                {
                    "eval_time": "90m",
                    "alertname": "VctpSnapshotsFailed",
                    "exp_alerts": [{"exp_labels": {**selector, **leader, "severity": "warning"}}],
                },
                {
                    "eval_time": "90m",
                    "alertname": "VctpDailyAggregationFailed",
                    "exp_alerts": [{"exp_labels": {**selector, **leader, "severity": "warning"}}],
                },
                {"eval_time": "90m", "alertname": "VctpMonthlyAggregationFailed", "exp_alerts": []},
                {
                    "eval_time": "40m",
                    "alertname": "VctpReconcileErrors",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "namespace": selector["namespace"],
                                "controller": "aggregationjob",
                                "severity": "warning",
                            }
                        }
                    ],
                },
            ],
        },
    ]


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
    want = {
        *(["VctpNoLeader"] if values["operator"]["leaderElection"]["enabled"] else []),
        "VctpOperatorDown",
        "VctpReconcileErrors",
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
    selector = {"job": f"{fullname}-metrics", "namespace": NAMESPACE}
    tests_file = out / "prometheus-rules.test.yaml"
    tests_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [bare_file.name],
                "evaluation_interval": "1m",
                "tests": alert_tests(selector, values["prometheusRule"]["staleSnapshotSeconds"]),
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
        elif m := re.match(r"\s*pub ([a-z_][a-z0-9_]*):", line):
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
    report.check(
        in_schema | SETTINGS_NOT_IN_VALUES == fields and not (in_schema & SETTINGS_NOT_IN_VALUES),
        "values.schema.json settings",
        f"out of step with src/config.rs: missing {sorted(fields - in_schema - SETTINGS_NOT_IN_VALUES)}, "
        f"unknown {sorted(in_schema - fields)}, should not be there {sorted(in_schema & SETTINGS_NOT_IN_VALUES)}",
    )
    for values, fragment in BAD_VALUES:
        where = f"values.schema.json / templates reject {json.dumps(values)}"
        try:
            render(chart, values)
        except HelmError as exc:
            report.check(fragment in str(exc), where, f"the message does not name {fragment!r}: {exc}")
        else:
            report.check(False, where, "rendered without complaint")
    # Every value is documented in README.md.
    readme = (CHART / "README.md").read_text() if (CHART / "README.md").exists() else ""

    def keys(values: Any, prefix: str = "") -> list[str]:
        if (
            isinstance(values, dict)
            and values
            and prefix not in {"settings", "podSecurityContext", "securityContext"}
            and not prefix.endswith("resources")
        ):
            return [
                k for key, value in values.items() for k in keys(value, f"{prefix}.{key}" if prefix else key)
            ]
        return [prefix]

    for key in keys(chart.values):
        report.check(
            f"`{key}`" in readme, "charts/vctp/README.md", f"value `{key}` is not in the values table"
        )


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
            check_settings(report, case, objects, values, out, args.vctp, fields)
            check_job_template(report, case, objects, out, args.vctp)
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
