# shellcheck shell=bash
#
# Headless Chromium for the vctp test suite: tests/ui.rs loads every UI page
# served by `vctp serve` in `chromium --headless`, checks the rendered DOM and
# that no request leaves 127.0.0.1 (from Chromium's net log), and saves one
# screenshot per page under target/ui-screenshots/. tests/auth.rs drives a real
# browser session through chromedriver (WebDriver): log in through the form,
# see the pages, log out.
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
#   VCTP_TEST_CHROMIUM       absolute path of the `chromium` program
#   VCTP_TEST_CHROMEDRIVER   absolute path of `chromedriver` (same version)
#
# Other functions: chromium_install (Debian's `chromium` and `chromium-driver`
# packages, only when missing from PATH).
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
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return 0
    fi
    _chromium_log "chromium or chromedriver not found; installing chromium and chromium-driver"
    peer_apt_install chromium.sh chromium chromium-driver || return 1
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        _chromium_log "chromium and chromium-driver installed but still not on PATH"
        return 1
    fi
}

chromium_start() {
    chromium_install || return 1
    VCTP_TEST_CHROMIUM="$(command -v chromium)" || return 1
    export VCTP_TEST_CHROMIUM
    VCTP_TEST_CHROMEDRIVER="$(command -v chromedriver)" || return 1
    export VCTP_TEST_CHROMEDRIVER
    _chromium_log "using $VCTP_TEST_CHROMIUM ($("$VCTP_TEST_CHROMIUM" --version 2>/dev/null | head -n 1 || echo 'version unknown'))"
}
