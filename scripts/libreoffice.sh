# shellcheck shell=bash
#
# LibreOffice Calc (headless) for the vctp test suite: tests/report.rs converts
# the XLSX reports to CSV with `soffice --headless --convert-to` and checks the
# numbers a real spreadsheet engine reads from them.
#
# Usage (from bash):
#
#     source scripts/libreoffice.sh
#     libreoffice_start   # installs when needed, exports VCTP_TEST_SOFFICE
#
# Unlike the other peers there is no server to stop: each test runs its own
# short-lived `soffice` with a private profile directory.
#
# Exported by libreoffice_start:
#   VCTP_TEST_SOFFICE   absolute path of the `soffice` program
#
# Other functions: libreoffice_install (apt package, only when `soffice` is
# missing; libreoffice-calc-nogui 7.4 on bookworm, ~1 GB installed).
#
# This file is meant to be sourced; it does not change the caller's shell
# options (set -e/-u/-o pipefail work either way).

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_libreoffice_log() {
    printf 'libreoffice.sh: %s\n' "$*" >&2
}

# Install LibreOffice Calc without its GUI if `soffice` is missing (idempotent).
libreoffice_install() {
    if command -v soffice >/dev/null 2>&1; then
        return 0
    fi
    _libreoffice_log "soffice not found; installing libreoffice-calc-nogui"
    peer_apt_install libreoffice.sh libreoffice-calc-nogui || return 1
    if ! command -v soffice >/dev/null 2>&1; then
        _libreoffice_log "libreoffice-calc-nogui installed but soffice is still missing"
        return 1
    fi
}

libreoffice_start() {
    libreoffice_install || return 1
    VCTP_TEST_SOFFICE="$(command -v soffice)" || return 1
    export VCTP_TEST_SOFFICE
    _libreoffice_log "using $VCTP_TEST_SOFFICE ($("$VCTP_TEST_SOFFICE" --version 2>/dev/null | head -n 1 || echo 'version unknown'))"
}
