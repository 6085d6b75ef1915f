# shellcheck shell=bash
#
# An independent check of the OpenAPI document vctp serves at /swagger.json: a private venv
# with PyPI's openapi-spec-validator (the validator generated clients' tooling trusts), so the
# document is judged by something other than the utoipa code that wrote it.
#
# Usage (from bash):
#
#     source scripts/openapi.sh
#     openapi_start       # installs what is missing, exports VCTP_TEST_OPENAPI_PYTHON
#     "$VCTP_TEST_OPENAPI_PYTHON" -m openapi_spec_validator swagger.json
#
# Like scripts/helm.sh there is no server, so nothing to stop.
#
# Exported by openapi_start:
#   VCTP_TEST_OPENAPI_PYTHON   the venv's python (it has openapi_spec_validator)
#
# Other function: openapi_install (creates the venv and installs the pinned version, only
# when missing or another version; ~5 s, ~20 MB).
#
# Environment knobs (all optional):
#   VCTP_OPENAPI_VENV   the venv (default $ROOT/target/openapi-venv)
#   VCTP_PYTHON         interpreter that creates the venv (default python3)
#
# This file is meant to be sourced; it does not change the caller's shell options.

_OPENAPI_VALIDATOR_VERSION=0.9.0
_OPENAPI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_openapi_log() {
    printf 'openapi.sh: %s\n' "$*" >&2
}

_openapi_venv() {
    printf '%s\n' "${VCTP_OPENAPI_VENV:-$_OPENAPI_ROOT/target/openapi-venv}"
}

# True when the venv has exactly the pinned version.
_openapi_venv_ok() {
    local py
    py="$(_openapi_venv)/bin/python"
    [ -x "$py" ] || return 1
    "$py" - "$_OPENAPI_VALIDATOR_VERSION" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import openapi_spec_validator  # noqa: F401 - the import is the check
assert version("openapi-spec-validator") == sys.argv[1], version("openapi-spec-validator")
PY
}

openapi_install() {
    local venv
    venv="$(_openapi_venv)"
    _openapi_venv_ok && return 0
    if ! [ -x "$venv/bin/python" ]; then
        _openapi_log "creating venv $venv"
        mkdir -p "$(dirname "$venv")"
        if ! "${VCTP_PYTHON:-python3}" -m venv "$venv"; then
            _openapi_log "could not create the venv $venv"
            return 1
        fi
    fi
    _openapi_log "installing openapi-spec-validator $_OPENAPI_VALIDATOR_VERSION into $venv"
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "openapi-spec-validator==$_OPENAPI_VALIDATOR_VERSION"; then
        _openapi_log "pip install failed"
        return 1
    fi
    if ! _openapi_venv_ok; then
        _openapi_log "the venv $venv still lacks openapi_spec_validator"
        return 1
    fi
}

openapi_start() {
    openapi_install || return 1
    VCTP_TEST_OPENAPI_PYTHON="$(_openapi_venv)/bin/python"
    export VCTP_TEST_OPENAPI_PYTHON
    _openapi_log "using $VCTP_TEST_OPENAPI_PYTHON (openapi-spec-validator $_OPENAPI_VALIDATOR_VERSION)"
}
