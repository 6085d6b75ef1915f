# shellcheck shell=bash
#
# VictoriaMetrics for the vctp MetricsExport tests: Debian bookworm's victoria-metrics package
# (1.79.5; the single-node server and vmauth). Unlike the other peers nothing long-lived runs
# here: every test starts its own nodes with fresh, isolated data (tests/common/vm.rs). vm_start
# installs the package when missing, checks that both binaries run, makes a test CA and a server
# certificate for 127.0.0.1, and starts one throw-away node (HTTPS, with that certificate) to
# prove it answers /health on this machine, then stops it: a broken install fails here, not in
# twenty tests.
#
# Usage (from bash):
#
#     source scripts/victoriametrics.sh
#     trap vm_stop EXIT
#     vm_start            # installs when missing, exports the variables below
#     ...                 # run tests
#     vm_stop             # idempotent; also fine if vm_start never ran
#
# Exported by vm_start:
#   VCTP_TEST_VM_BIN       the victoria-metrics program (/usr/bin/victoria-metrics)
#   VCTP_TEST_VMAUTH_BIN   the vmauth program (/usr/bin/vmauth)
#   VCTP_TEST_VM_TLS_CERT  PEM server certificate for 127.0.0.1 (SAN IP:127.0.0.1,
#                          DNS:localhost; RSA 2048): a node's -tlsCertFile
#   VCTP_TEST_VM_TLS_KEY   its private key: a node's -tlsKeyFile
#   VCTP_TEST_VM_TLS_CA    PEM of the test CA that signed it: what clients trust
#
# Other function: vm_install (apt package victoria-metrics, plus openssl and curl, only when
# missing).
#
# Environment knobs (all optional):
#   VM_START_TIMEOUT   seconds to wait for the smoke node's /health (default 30; it usually
#                      answers within 0.3 s)
#
# State kept between vm_start and vm_stop (shell variables, not exported; do not set by hand):
#   VCTP_VM_DIR   the temp directory (certificates, openssl.log, the smoke node's data and log)
#   VCTP_VM_PID   the smoke node's pid while it runs
#
# This file is meant to be sourced; it does not change the caller's shell options (set -e/-u/-o
# pipefail work either way). It never uses pkill or killall: it stops exactly the process it
# started.

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_VM_BIN=/usr/bin/victoria-metrics
_VMAUTH_BIN=/usr/bin/vmauth
VCTP_VM_DIR="${VCTP_VM_DIR:-}"
VCTP_VM_PID="${VCTP_VM_PID:-}"
export -n VCTP_VM_DIR VCTP_VM_PID

_vm_log() {
    printf 'victoriametrics.sh: %s\n' "$*" >&2
}

# Install VictoriaMetrics (and openssl, curl) if any is missing (idempotent).
vm_install() {
    local missing=()
    if ! [ -x "$_VM_BIN" ] || ! [ -x "$_VMAUTH_BIN" ]; then
        missing+=(victoria-metrics)
    fi
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    _vm_log "installing ${missing[*]}"
    peer_apt_install victoriametrics.sh "${missing[@]}" || return 1
    if ! [ -x "$_VM_BIN" ] || ! [ -x "$_VMAUTH_BIN" ]; then
        _vm_log "victoria-metrics installed but $_VM_BIN or $_VMAUTH_BIN is still missing"
        return 1
    fi
}

_vm_dump_log() {
    if [ -n "${VCTP_VM_DIR:-}" ]; then
        peer_dump_log victoriametrics.sh "smoke node's log" "$VCTP_VM_DIR/log"
    fi
}

# Stop the smoke node, if it runs, and wait until it is gone.
_vm_kill() {
    peer_stop_child victoriametrics.sh "${VCTP_VM_PID:-}"
    VCTP_VM_PID=""
}

# One node on a free port over HTTPS with the test certificate, until /health answers OK
# through the test CA; then stopped. Proves the binary, the flags the tests use and the
# certificate all work here.
_vm_smoke() {
    local dir="$1" timeout="$2"
    local port="" attempt ready=0 waited deadline=$((timeout * 10)) body
    for attempt in 1 2 3 4 5; do
        if ! port="$(peer_free_port)" || [ -z "$port" ]; then
            _vm_log "could not find a free port"
            break
        fi
        rm -rf "$dir/smoke"
        "$_VM_BIN" -httpListenAddr="127.0.0.1:$port" -storageDataPath="$dir/smoke" \
            -retentionPeriod=100y -search.latencyOffset=0s -search.disableCache \
            -tls -tlsCertFile="$dir/server.pem" -tlsKeyFile="$dir/server.key" \
            >>"$dir/log" 2>&1 </dev/null &
        VCTP_VM_PID=$!
        waited=0
        while peer_alive "$VCTP_VM_PID" && [ "$waited" -lt "$deadline" ]; do
            body="$(curl -s -m 2 --cacert "$dir/ca.pem" "https://127.0.0.1:$port/health" 2>/dev/null || true)"
            if [ "$body" = OK ]; then
                ready=1
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        [ "$ready" -eq 1 ] && break
        if peer_alive "$VCTP_VM_PID"; then
            _vm_log "the smoke node did not answer https://127.0.0.1:$port/health within ${timeout}s"
            break
        fi
        # It exited: most likely the port was taken between probing and binding.
        _vm_log "smoke node attempt $attempt on port $port failed"
        _vm_kill
    done
    _vm_kill
    rm -rf "$dir/smoke"
    [ "$ready" -eq 1 ]
}

vm_start() {
    if [ -n "${VCTP_VM_DIR:-}" ] && [ -d "$VCTP_VM_DIR" ]; then
        _vm_log "already started ($VCTP_VM_DIR)"
        return 0
    fi
    local timeout="${VM_START_TIMEOUT:-30}"
    peer_require_number victoriametrics.sh VM_START_TIMEOUT "$timeout" || return 1

    vm_install || return 1
    # Debian's build prints an empty version line (no version was linked in); exit 0 is what
    # tells us the binary runs on this machine.
    local bin
    for bin in "$_VM_BIN" "$_VMAUTH_BIN"; do
        if ! "$bin" -version >/dev/null 2>&1; then
            _vm_log "$bin -version failed: the binary does not run here"
            return 1
        fi
    done

    VCTP_VM_DIR="$(mktemp -d /tmp/vctp-vm.XXXX)" || {
        _vm_log "mktemp failed"
        VCTP_VM_DIR=""
        return 1
    }
    chmod 700 "$VCTP_VM_DIR"
    if ! peer_test_certs "$VCTP_VM_DIR" "vctp test VictoriaMetrics CA" "$VCTP_VM_DIR/openssl.log"; then
        _vm_log "could not make the test certificates"
        peer_dump_log victoriametrics.sh "openssl output" "$VCTP_VM_DIR/openssl.log"
        vm_stop
        return 1
    fi
    # The private keys stay readable only by us, like the directory.
    chmod 600 "$VCTP_VM_DIR/ca.key" "$VCTP_VM_DIR/server.key"

    local started elapsed
    started="$(date +%s%N)"
    if ! _vm_smoke "$VCTP_VM_DIR" "$timeout"; then
        _vm_log "victoria-metrics failed its smoke start"
        _vm_dump_log
        vm_stop
        return 1
    fi
    elapsed=$((($(date +%s%N) - started) / 1000000))

    export VCTP_TEST_VM_BIN="$_VM_BIN"
    export VCTP_TEST_VMAUTH_BIN="$_VMAUTH_BIN"
    export VCTP_TEST_VM_TLS_CERT="$VCTP_VM_DIR/server.pem"
    export VCTP_TEST_VM_TLS_KEY="$VCTP_VM_DIR/server.key"
    export VCTP_TEST_VM_TLS_CA="$VCTP_VM_DIR/ca.pem"
    _vm_log "victoria-metrics and vmauth ready (dir $VCTP_VM_DIR; smoke node answered over HTTPS and stopped in ${elapsed} ms)"
    return 0
}

vm_stop() {
    local dir="${VCTP_VM_DIR:-}"
    _vm_kill
    peer_remove_dir victoriametrics.sh "$dir" /tmp/vctp-vm.
    VCTP_VM_DIR=""
    unset VCTP_TEST_VM_BIN VCTP_TEST_VMAUTH_BIN VCTP_TEST_VM_TLS_CERT VCTP_TEST_VM_TLS_KEY \
        VCTP_TEST_VM_TLS_CA
    return 0
}
