# shellcheck shell=bash
#
# Headless Chromium for the vctp test suite: tests/ui.rs loads every UI page
# served by `vctp serve` in `chromium --headless`, checks the rendered DOM and
# that no request leaves 127.0.0.1 (from Chromium's net log), and saves one
# screenshot per page under target/ui-screenshots/.
#
# Usage (from bash):
#
#     source scripts/chromium.sh
#     chromium_start   # installs when needed, exports VCTP_TEST_CHROMIUM
#
# Like LibreOffice there is no server to stop: each test run starts its own
# short-lived Chromium with a private profile directory.
#
# Exported by chromium_start:
#   VCTP_TEST_CHROMIUM   absolute path of the `chromium` program
#
# Other functions: chromium_install (Debian's `chromium` package, only when
# no chromium is on PATH).
#
# This file is meant to be sourced; it does not change the caller's shell
# options (set -e/-u/-o pipefail work either way).

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_chromium_log() {
    printf 'chromium.sh: %s\n' "$*" >&2
}

# Install Chromium if it is missing (idempotent).
chromium_install() {
    if command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    _chromium_log "chromium not found; installing the chromium package"
    peer_apt_install chromium.sh chromium || return 1
    if ! command -v chromium >/dev/null 2>&1; then
        _chromium_log "chromium installed but still not on PATH"
        return 1
    fi
}

chromium_start() {
    chromium_install || return 1
    VCTP_TEST_CHROMIUM="$(command -v chromium)" || return 1
    export VCTP_TEST_CHROMIUM
    _chromium_log "using $VCTP_TEST_CHROMIUM ($("$VCTP_TEST_CHROMIUM" --version 2>/dev/null | head -n 1 || echo 'version unknown'))"
}
