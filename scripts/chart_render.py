#!/usr/bin/env python3
"""Render the Helm chart charts/vctp into plain manifests for `kubectl`, without a helm binary
(helm-python-sdk, as scripts/chart_check.py). Run it with the venv that scripts/helm.sh makes:

    "$VCTP_TEST_HELM_PYTHON" scripts/chart_render.py --release vctp --namespace vctp-system \\
        --values my-values.yaml --crds crds.yaml --out manifests.yaml

--crds gets the CustomResourceDefinitions (install them first, then --out); --out everything
else, in the order Helm installs kinds. NOTES.txt goes to stderr. Exits 1 when the chart
refuses the values (its message on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import helm_python as helm
    import yaml
    from helm_python import Chart, HelmError
except ImportError as exc:  # pragma: no cover - a usage error
    sys.exit(f"chart_render.py: {exc}; run it with the venv of scripts/helm.sh ($VCTP_TEST_HELM_PYTHON)")

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--values", help="a values file (YAML)")
    parser.add_argument("--crds", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    values = helm.values_from_yaml(Path(args.values).read_text()) if args.values else None
    try:
        with Chart.load(str(CHART)) as chart:
            rendered = chart.render(values, name=args.release, namespace=args.namespace, is_install=True)
    except HelmError as exc:
        print(f"chart_render.py: the chart refused the values: {exc}", file=sys.stderr)
        return 1
    crds, rest = [], []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            print(text, file=sys.stderr)
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                (crds if doc.get("kind") == "CustomResourceDefinition" else rest).append(doc)
    rest.sort(key=lambda d: ORDER.index(d["kind"]) if d["kind"] in ORDER else len(ORDER))
    args.crds.write_text(yaml.safe_dump_all(crds, sort_keys=False))
    args.out.write_text(yaml.safe_dump_all(rest, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
