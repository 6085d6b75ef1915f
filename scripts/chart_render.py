#!/usr/bin/env python3
"""Render the vctp chart for `kubectl apply` without a helm binary (`helm template`).

Run it with the venv python of scripts/helm.sh:

    source scripts/helm.sh && helm_start
    "$VCTP_TEST_HELM_PYTHON" scripts/chart_render.py --release vctp --namespace vctp-system \\
        --kube-version "$(kubectl version -o json | jq -r .serverVersion.gitVersion)" \\
        --set image.repository=vctp --set image.pullPolicy=Never --set crds.install=false \\
        | kubectl apply -f -

--kube-version matters below 1.21 (the PodDisruptionBudgets are policy/v1beta1 there) and is
checked against Chart.yaml's kubeVersion; without it Helm's built-in version is assumed.
--values FILE and --set KEY=VALUE (VALUE read as YAML: true, 3, [a, b]) layer like helm's.
--crds FILE and --out FILE split the output: the CustomResourceDefinitions (install them first)
and everything else, in the order Helm installs kinds; without them all goes to stdout.
NOTES.txt goes to stderr. Exits 1 with Helm's message when the chart refuses the values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import yaml
    from helm_python import Chart, HelmError
    from helm_python import _native as helm_native
    from helm_python.config import Config
except ImportError as exc:  # pragma: no cover - a usage error
    sys.exit(f"chart_render: {exc}; run it with the venv python of scripts/helm.sh")

CHART = Path(__file__).resolve().parent.parent / "charts" / "vctp"

# Helm's install order (pkg/release/util/kind_sorter.go), the kinds this chart renders.
ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
    "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "Ingress", "APIService",
]


def render_for_cluster(
    chart: Chart,
    values: dict[str, Any] | None,
    release: str,
    namespace: str,
    kube_version: str | None,
    api_versions: list[str],
) -> dict[str, str]:
    """`helm template --kube-version V --api-versions A…` (.Capabilities). Chart.render does not
    take them, but the native call it wraps reads them from its options (helm-python-sdk 0.2.2:
    kube_version, api_versions)."""
    options: dict[str, Any] = {"name": release, "namespace": namespace, "is_install": True}
    if kube_version:
        options["kube_version"] = kube_version
    if api_versions:
        options["api_versions"] = api_versions
    rendered = helm_native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(options))
    return json.loads(rendered)


def install_dry_run(chart: Chart, values: dict[str, Any], release: str, namespace: str, kube_version: str) -> str:
    """`helm install --dry-run=client --kube-version V`: unlike a render it checks Chart.yaml's
    kubeVersion (the native install reads kube_version from its options; Config.install does
    not pass it). Returns the manifest."""
    with Config(namespace=namespace, storage_driver="memory") as config:
        payload = helm_native.call_string(
            "helm_install",
            config._raw(),
            config._context_arg(None),
            chart._raw(),
            None,
            release,
            json.dumps(values),
            json.dumps({"namespace": namespace, "dry_run": "client", "kube_version": kube_version}),
        )
    return str(json.loads(payload).get("manifest", ""))


def set_value(values: dict[str, Any], assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise SystemExit(f"chart_render: --set {assignment!r} is not KEY=VALUE")
    *parents, last = key.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SystemExit(f"chart_render: --set {key}: {part} is not a mapping")
    node[last] = yaml.safe_load(raw) if raw else ""


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def write_split(rendered: dict[str, str], crds_file: Path, out_file: Path) -> None:
    crds: list[Any] = []
    rest: list[Any] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            print(text, file=sys.stderr)
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                (crds if doc.get("kind") == "CustomResourceDefinition" else rest).append(doc)
    rest.sort(key=lambda d: ORDER.index(d["kind"]) if d["kind"] in ORDER else len(ORDER))
    crds_file.write_text(yaml.safe_dump_all(crds, sort_keys=False))
    out_file.write_text(yaml.safe_dump_all(rest, sort_keys=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="vctp", help="release name (default vctp)")
    parser.add_argument("--namespace", default="vctp-system", help="release namespace (default vctp-system)")
    parser.add_argument("--values", action="append", default=[], type=Path, help="a values file (repeatable)")
    parser.add_argument("--set", action="append", default=[], dest="sets", help="KEY=VALUE (repeatable)")
    parser.add_argument("--kube-version", help="the cluster's version, e.g. v1.20.2")
    parser.add_argument("--api-versions", action="append", default=[], help="an API version the cluster serves")
    parser.add_argument("--chart", type=Path, default=CHART, help="the chart directory (default charts/vctp)")
    parser.add_argument("--crds", type=Path, help="write the CustomResourceDefinitions here (with --out)")
    parser.add_argument("--out", type=Path, help="write everything else here, in Helm's install order")
    args = parser.parse_args()
    if (args.crds is None) != (args.out is None):
        parser.error("--crds and --out go together")
    values: dict[str, Any] = {}
    for path in args.values:
        merge(values, yaml.safe_load(path.read_text()) or {})
    for assignment in args.sets:
        set_value(values, assignment)
    try:
        with Chart.load(str(args.chart)) as chart:
            if args.kube_version:
                # Refused below Chart.yaml's kubeVersion, as `helm install` would.
                install_dry_run(chart, values, args.release, args.namespace, args.kube_version)
            rendered = render_for_cluster(
                chart, values, args.release, args.namespace, args.kube_version, args.api_versions
            )
    except HelmError as exc:
        print(f"chart_render: {exc}", file=sys.stderr)
        return 1
    if args.out is not None:
        write_split(rendered, args.crds, args.out)
        return 0
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            print(text, file=sys.stderr)
        elif text.strip():
            print(f"---\n# Source: {path}\n{text.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
