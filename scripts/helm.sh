# shellcheck shell=bash
#
# The tools that check the Helm chart (scripts/chart_check.py) without a helm binary or a
# cluster: a private venv with helm-python-sdk (Helm 4 as a library: lint, template) and
# kubernetes-validate (the Kubernetes OpenAPI schemas), and promtool from Debian's
# prometheus package (checks and unit-tests the alert rules).
#
# Usage (from bash):
#
#     source scripts/helm.sh
#     helm_start          # installs what is missing, exports VCTP_TEST_HELM_PYTHON
#     "$VCTP_TEST_HELM_PYTHON" scripts/chart_check.py --vctp target/debug/vctp
#
# Like scripts/libreoffice.sh there is no server, so nothing to stop.
#
# Exported by helm_start:
#   VCTP_TEST_HELM_PYTHON   the venv's python (it has helm_python, kubernetes_validate, yaml;
#                           kubernetes-validate is beside it in bin/)
#
# Other function: helm_install (creates the venv and installs the pinned packages, and
# apt-installs prometheus for promtool, each only when missing or another version; ~10 s for
# the venv, ~20 s for the apt package, ~350 MB in the venv).
#
# Environment knobs (all optional):
#   VCTP_HELM_VENV   the venv (default $ROOT/target/helm-venv)
#   VCTP_PYTHON      interpreter that creates the venv (default python3)
#
# The venv's own bin/python is what runs, never the `python3` on PATH: here that is a pyenv
# shim. This file is meant to be sourced; it does not change the caller's shell options.

_HELM_SDK_VERSION=0.2.2
_HELM_VALIDATE_VERSION=1.37.0
_HELM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_helm_log() {
    printf 'helm.sh: %s\n' "$*" >&2
}

_helm_venv() {
    printf '%s\n' "${VCTP_HELM_VENV:-$_HELM_ROOT/target/helm-venv}"
}

# True when the venv has exactly the pinned versions.
_helm_venv_ok() {
    local py
    py="$(_helm_venv)/bin/python"
    [ -x "$py" ] || return 1
    "$py" - "$_HELM_SDK_VERSION" "$_HELM_VALIDATE_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
import helm_python, kubernetes_validate, yaml  # noqa: F401 - the imports are the check
assert version("helm-python-sdk") == sys.argv[1], version("helm-python-sdk")
assert version("kubernetes-validate") == sys.argv[2], version("kubernetes-validate")
EOF
}

helm_install() {
    local venv
    venv="$(_helm_venv)"
    if ! _helm_venv_ok; then
        if ! [ -x "$venv/bin/python" ]; then
            _helm_log "creating venv $venv"
            mkdir -p "$(dirname "$venv")"
            if ! "${VCTP_PYTHON:-python3}" -m venv "$venv"; then
                _helm_log "could not create the venv $venv"
                return 1
            fi
        fi
        _helm_log "installing helm-python-sdk $_HELM_SDK_VERSION and kubernetes-validate $_HELM_VALIDATE_VERSION into $venv"
        if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "helm-python-sdk==$_HELM_SDK_VERSION" "kubernetes-validate==$_HELM_VALIDATE_VERSION"; then
            _helm_log "pip install failed"
            return 1
        fi
        if ! _helm_venv_ok; then
            _helm_log "the venv $venv still lacks helm_python or kubernetes_validate"
            return 1
        fi
    fi
    if ! command -v promtool >/dev/null 2>&1; then
        _helm_log "promtool not found; installing Debian's prometheus package (only promtool is used)"
        peer_apt_install helm.sh prometheus >/dev/null || return 1
        if ! command -v promtool >/dev/null 2>&1; then
            _helm_log "prometheus installed but promtool is still missing"
            return 1
        fi
    fi
}

helm_start() {
    helm_install || return 1
    VCTP_TEST_HELM_PYTHON="$(_helm_venv)/bin/python"
    export VCTP_TEST_HELM_PYTHON
    _helm_log "using $VCTP_TEST_HELM_PYTHON (helm-python-sdk $_HELM_SDK_VERSION, kubernetes-validate $_HELM_VALIDATE_VERSION), $(command -v promtool)"
}
