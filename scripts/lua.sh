# shellcheck shell=bash
#
# Lua 5.4 with dkjson for the vctp test suite: src/operator/argocd.rs runs the chart's Argo CD
# health checks (charts/vctp/argocd/*.lua) on status objects the operator built, decoded from
# JSON with dkjson, as Argo CD would.
#
# Usage (from bash):
#
#     source scripts/lua.sh
#     lua_start   # installs when needed, exports VCTP_TEST_LUA
#
# There is no server to stop: each test runs its own short-lived interpreter.
#
# Exported by lua_start:
#   VCTP_TEST_LUA   absolute path of the `lua5.4` program (with dkjson on its path)
#
# This file is meant to be sourced; it does not change the caller's shell options.

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_lua_log() {
    printf 'lua.sh: %s\n' "$*" >&2
}

# Install lua5.4 and lua-dkjson (Debian packages) when either is missing (idempotent).
lua_install() {
    if command -v lua5.4 >/dev/null 2>&1 && lua5.4 -e 'require("dkjson")' >/dev/null 2>&1; then
        return 0
    fi
    _lua_log "lua5.4 or dkjson not found; installing lua5.4 lua-dkjson"
    peer_apt_install lua.sh lua5.4 lua-dkjson || return 1
    if ! lua5.4 -e 'require("dkjson")' >/dev/null 2>&1; then
        _lua_log "lua5.4 and lua-dkjson installed but require(\"dkjson\") still fails"
        return 1
    fi
}

lua_start() {
    lua_install || return 1
    VCTP_TEST_LUA="$(command -v lua5.4)" || return 1
    export VCTP_TEST_LUA
    _lua_log "using $VCTP_TEST_LUA ($("$VCTP_TEST_LUA" -v 2>&1 | head -n 1))"
}
