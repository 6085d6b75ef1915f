#!/usr/bin/env bash
#
# The project's single test command: formatting, lints and the full test
# suite (including #[ignore]d tests) against a private PostgreSQL 15 server,
# a private vCenter (VMware's govmomi simulator, scripts/vcsim.sh), an
# S3-compatible server (scripts/s3.sh), OpenLDAP (scripts/ldap.sh), VictoriaMetrics
# (scripts/victoriametrics.sh: the binaries and a test certificate; each test starts its own
# nodes) and a Kubernetes v1.20.2 control plane
# (etcd, kube-apiserver, kube-controller-manager: scripts/kube.sh; its first
# run builds them from Debian's source package, ~5-8 min) and a one-node cluster in a network
# namespace of its own (scripts/kube.sh kube_node_start: kubelet, containerd, kube-proxy, the
# scheduler, and its own PostgreSQL, S3 server and simulator on the node's address; tests/node.rs
# installs the chart there), PyPI's openapi-spec-validator
# (scripts/openapi.sh; it judges the served /swagger.json), Lua 5.4 with dkjson
# (scripts/lua.sh; it runs the chart's Argo CD health checks), then the Helm chart's check
# (scripts/chart_check.py with scripts/helm.sh's tools) and the OCI image's check
# (scripts/image_check.py: scripts/image.sh with Debian's umoci, read back with skopeo).
#
# Usage: scripts/test.sh   (from any directory)
#
# Every step runs even if an earlier one failed, so one run reports all
# problems; the script exits non-zero if any step failed. Every peer is always
# stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export PATH="$HOME/.cargo/bin:$PATH"

banner() {
    printf '\n==> %s\n' "$*"
}

failed=()
step() {
    local name="$1"
    shift
    banner "$name"
    if "$@"; then
        printf '==> %s: ok\n' "$name"
    else
        local rc=$?
        printf '==> %s: FAILED (exit %s)\n' "$name" "$rc"
        failed+=("$name")
    fi
}

banner "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found on PATH ($PATH); install Rust via rustup" >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "installing rustfmt/clippy components"
    rustup component add rustfmt clippy
fi
cargo --version
cargo fmt --version
cargo clippy --version

# shellcheck source=scripts/libreoffice.sh
source "$ROOT/scripts/libreoffice.sh"
# shellcheck source=scripts/lua.sh
source "$ROOT/scripts/lua.sh"
# shellcheck source=scripts/chromium.sh
source "$ROOT/scripts/chromium.sh"
# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"
# shellcheck source=scripts/vcsim.sh
source "$ROOT/scripts/vcsim.sh"
# shellcheck source=scripts/s3.sh
source "$ROOT/scripts/s3.sh"
# shellcheck source=scripts/helm.sh
source "$ROOT/scripts/helm.sh"
# shellcheck source=scripts/openapi.sh
source "$ROOT/scripts/openapi.sh"
# shellcheck source=scripts/kube.sh
source "$ROOT/scripts/kube.sh"
# shellcheck source=scripts/ldap.sh
source "$ROOT/scripts/ldap.sh"
# shellcheck source=scripts/victoriametrics.sh
source "$ROOT/scripts/victoriametrics.sh"

# Stop every peer, whatever happened; each stop is idempotent.
stop_peers() {
    vm_stop || true
    ldap_stop || true
    kube_node_stop || true
    kube_stop || true
    s3_stop || true
    vcsim_stop || true
    pg_stop || true
}
trap stop_peers EXIT

banner "LibreOffice (reads the XLSX reports back; nothing to stop)"
libreoffice_start

banner "Lua 5.4 + dkjson (runs the chart's Argo CD health checks; nothing to stop)"
lua_start

banner "Chromium (headless, loads the UI pages; nothing to stop)"
chromium_start

banner "Helm chart tools (helm-python-sdk, kubernetes-validate, promtool; nothing to stop)"
helm_start

banner "OpenAPI validator (openapi-spec-validator; nothing to stop)"
openapi_start
echo "VCTP_TEST_OPENAPI_PYTHON=$VCTP_TEST_OPENAPI_PYTHON"

banner "starting PostgreSQL"
pg_start
echo "VCTP_TEST_POSTGRES_URL=$VCTP_TEST_POSTGRES_URL"

banner "starting the govmomi vCenter simulator"
vcsim_start
echo "VCTP_TEST_VCSIM_URL=$VCTP_TEST_VCSIM_URL"
echo "VCTP_TEST_VCSIM_CONTROL=$VCTP_TEST_VCSIM_CONTROL"

banner "starting the S3-compatible server (s3s-fs)"
s3_start
echo "VCTP_TEST_S3_ENDPOINT=$VCTP_TEST_S3_ENDPOINT"

banner "starting OpenLDAP (slapd: StartTLS, LDAPS, memberof)"
ldap_start
echo "VCTP_TEST_LDAP_URL=$VCTP_TEST_LDAP_URL"
echo "VCTP_TEST_LDAPS_URL=$VCTP_TEST_LDAPS_URL"

banner "VictoriaMetrics (victoria-metrics, vmauth, a test certificate; each test starts its own nodes)"
vm_start
echo "VCTP_TEST_VM_BIN=$VCTP_TEST_VM_BIN"
echo "VCTP_TEST_VMAUTH_BIN=$VCTP_TEST_VMAUTH_BIN"
echo "VCTP_TEST_VM_TLS_CERT=$VCTP_TEST_VM_TLS_CERT"
echo "VCTP_TEST_VM_TLS_KEY=$VCTP_TEST_VM_TLS_KEY"
echo "VCTP_TEST_VM_TLS_CA=$VCTP_TEST_VM_TLS_CA"

banner "starting Kubernetes (etcd, kube-apiserver, kube-controller-manager v1.20.2)"
# Our CRDs go in before the controller manager starts, so owner-reference garbage collection
# of custom resources (deleting an AggregationJob deletes its Job) works from the first test.
VCTP_KUBE_CRDS_DIR="$ROOT/crds" kube_start
echo "VCTP_TEST_KUBE_SERVER=$VCTP_TEST_KUBE_SERVER"
echo "VCTP_TEST_KUBECONFIG=$VCTP_TEST_KUBECONFIG"

banner "starting the one-node cluster (kubelet, containerd, kube-proxy, scheduler; its peers inside its network namespace)"
# No CRDs here: tests/node.rs installs the chart's own.
kube_node_start
echo "VCTP_TEST_NODE_KUBECONFIG=$VCTP_TEST_NODE_KUBECONFIG"
echo "VCTP_TEST_NODE_IP=$VCTP_TEST_NODE_IP"

step "cargo fmt --check" cargo fmt --check
step "cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets -- -D warnings
step "cargo test --all-targets -- --include-ignored" cargo test --all-targets -- --include-ignored
# After the tests: it loads the rendered settings files with the vctp binary they built.
step "helm chart: lint, render, validate" "$VCTP_TEST_HELM_PYTHON" scripts/chart_check.py --vctp target/debug/vctp
# After the tests too: it packs the binary they built into the OCI image and runs it there.
step "OCI image: scripts/image.sh builds it, it runs as 65532, it matches the Dockerfile" \
    python3 scripts/image_check.py --binary target/debug/vctp

echo
if [ "${#failed[@]}" -ne 0 ]; then
    echo "==> FAILED steps:"
    printf '    - %s\n' "${failed[@]}"
    exit 1
fi
echo "==> all steps passed"
