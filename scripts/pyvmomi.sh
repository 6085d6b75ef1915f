#!/usr/bin/env bash
#
# Runs benches/pyvmomi_collect.py (the pyvmomi side of the collector
# benchmark) in a private venv, creating the venv and installing pyvmomi
# from PyPI only when missing. Arguments are passed through:
#
#     scripts/pyvmomi.sh --url "$VCTP_TEST_VCSIM_URL" --user "$VCTP_TEST_VCSIM_USER" \
#         --password "$VCTP_TEST_VCSIM_PASSWORD" --ca-file "$VCTP_TEST_VCSIM_CA"
#     scripts/pyvmomi.sh --url http://127.0.0.1:PORT/vc1/sdk --user U --password P
#
# Prints one JSON line: {"tool":"pyvmomi","pyvmomi_version":...,"vms":N,
# "places":M,"seconds":...,"peak_rss_mb":...}
#
# Environment knobs (all optional):
#   VCTP_PYVMOMI_VENV   the venv (default $ROOT/target/pyvmomi-venv)
#   VCTP_PYTHON         interpreter that creates the venv (default python3)
#
# The script runs the venv's own bin/python, never the `python3` on PATH:
# here that is a pyenv shim, whose pid and environment are not the
# interpreter's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VCTP_PYVMOMI_VENV:-$ROOT/target/pyvmomi-venv}"
PY="$VENV/bin/python"

log() {
    printf 'pyvmomi.sh: %s\n' "$*" >&2
}

if ! [ -x "$PY" ]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "${VCTP_PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$PY" -c 'import pyVmomi' >/dev/null 2>&1; then
    log "installing pyvmomi into $VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check pyvmomi
fi

exec "$PY" "$ROOT/benches/pyvmomi_collect.py" "$@"
