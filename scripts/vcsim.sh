# shellcheck shell=bash
#
# Private, throw-away vCenter for the vctp test suite: VMware's govmomi
# simulator (govmomi 0.24.2 from Debian) wrapped by tests/vcsim/main.go, which
# builds a deterministic inventory (1 datacenter, 2 clusters x 2 hosts, pools
# Tin/Bronze/Silver/Gold/Dev, a tenant folder tree, N VMs) and adds a JSON
# control server (GET /inventory, POST /churn, POST /attribute).
#
# Usage (from bash):
#
#     source scripts/vcsim.sh
#     trap vcsim_stop EXIT
#     vcsim_start         # installs and builds when needed, exports the variables below
#     ...                 # run tests
#     vcsim_stop          # idempotent; also fine if vcsim_start never ran
#
# Exported by vcsim_start:
#   VCTP_TEST_VCSIM_URL       https SDK URL, e.g. https://127.0.0.1:PORT/sdk
#   VCTP_TEST_VCSIM_CONTROL   control server, e.g. http://127.0.0.1:PORT
#   VCTP_TEST_VCSIM_CA        PEM of the test CA that signed the simulator's 2048-bit
#                             server certificate (SAN IP:127.0.0.1): trust this
#   VCTP_TEST_VCSIM_WRONG_CA  PEM of an unrelated CA: for "TLS mismatch" tests
#   VCTP_TEST_VCSIM_USER      the only user name the simulator accepts
#   VCTP_TEST_VCSIM_PASSWORD  its password (random per start); anything else
#                             gets an InvalidLogin fault
#   VCTP_TEST_VCSIM_VMS       how many VMs the simulator started with
#
# Other functions: vcsim_install (apt packages, only when missing) and
# vcsim_build (compiles into $ROOT/target/vcsim/, only when main.go, Go or
# govmomi changed).
#
# Environment knobs (all optional):
#   VCSIM_VMS             VMs to create at start (default 200; 10000 take ~7 s, ~280 MB)
#   VCSIM_START_TIMEOUT   seconds to wait for the ready lines (default 180)
#   VCTP_VCSIM_CACHE      build cache directory (default $ROOT/target/vcsim)
#   VCTP_PEER_HOST        address to listen on (and name in the certificate) instead of
#                         127.0.0.1 (peer-lib.sh)
#
# State kept between vcsim_start and vcsim_stop (shell variables, not
# exported; do not set by hand):
#   VCTP_VCSIM_DIR   the temp directory (certs, stdout, log)
#   VCTP_VCSIM_DS    the simulator's TMPDIR, where it keeps its datastore
#                    (5 small files per VM): a second temp directory, on the
#                    /dev/shm tmpfs when there is one
#   VCTP_VCSIM_PID   the simulator's pid
#
# This file is meant to be sourced; it does not change the caller's shell
# options (set -e/-u/-o pipefail work either way). It never uses pkill or
# killall: it stops exactly the process it started.

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_VCSIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_VCSIM_GOPATH=/usr/share/gocode
_VCSIM_GOVMOMI="$_VCSIM_GOPATH/src/github.com/vmware/govmomi/simulator"
VCTP_VCSIM_DIR="${VCTP_VCSIM_DIR:-}"
VCTP_VCSIM_DS="${VCTP_VCSIM_DS:-}"
VCTP_VCSIM_PID="${VCTP_VCSIM_PID:-}"
export -n VCTP_VCSIM_DIR VCTP_VCSIM_DS VCTP_VCSIM_PID

_vcsim_log() {
    printf 'vcsim.sh: %s\n' "$*" >&2
}

# Install Go, govmomi's sources and openssl if any is missing (idempotent).
vcsim_install() {
    local missing=()
    command -v go >/dev/null 2>&1 || missing+=(golang-go)
    [ -d "$_VCSIM_GOVMOMI" ] || missing+=(golang-github-vmware-govmomi-dev)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    _vcsim_log "installing ${missing[*]}"
    # Install all three together: the package list is short and apt skips
    # what is already there.
    peer_apt_install vcsim.sh golang-go golang-github-vmware-govmomi-dev openssl || return 1
    if ! command -v go >/dev/null 2>&1 || ! [ -d "$_VCSIM_GOVMOMI" ]; then
        _vcsim_log "packages installed but go or $_VCSIM_GOVMOMI is still missing"
        return 1
    fi
}

_vcsim_cache() {
    printf '%s\n' "${VCTP_VCSIM_CACHE:-$_VCSIM_ROOT/target/vcsim}"
}

# What the binary depends on: our source, the Go toolchain, govmomi's version.
_vcsim_fingerprint() {
    {
        cat "$_VCSIM_ROOT/tests/vcsim/main.go"
        go version
        dpkg-query -W -f='${Version}\n' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown
    } | sha256sum | cut -d' ' -f1
}

# Build the simulator into $(_vcsim_cache)/vcsim unless the stamp says the
# binary is current (cold build ~20 s).
vcsim_build() {
    vcsim_install || return 1
    local cache bin stamp want
    cache="$(_vcsim_cache)"
    bin="$cache/vcsim"
    stamp="$cache/vcsim.stamp"
    want="$(_vcsim_fingerprint)" || return 1
    if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    mkdir -p "$cache" || return 1
    _vcsim_log "building $bin"
    # GOPATH mode: Debian ships govmomi as sources under /usr/share/gocode
    # and there is no module proxy to fetch from.
    if ! (cd "$_VCSIM_ROOT/tests/vcsim" &&
        GO111MODULE=off GOPATH="$_VCSIM_GOPATH" GOFLAGS='' GOPROXY=off \
            go build -o "$bin.tmp" .); then
        rm -f "$bin.tmp"
        _vcsim_log "go build failed"
        return 1
    fi
    mv -f "$bin.tmp" "$bin" && printf '%s\n' "$want" >"$stamp"
}

_vcsim_dump_log() {
    if [ -n "${VCTP_VCSIM_DIR:-}" ]; then
        peer_dump_log vcsim.sh "simulator log" "$VCTP_VCSIM_DIR/log"
    fi
}

# A self-signed cert for the server, plus an unrelated CA that must not be
# accepted in its place.
_vcsim_make_certs() {
    local d="$1"
    # A CA and a server certificate it signs: rustls (webpki) refuses a CA certificate
    # presented as the server's own, which is what a bare `req -x509` makes.
    {
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 \
            -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=vctp test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" &&
            openssl req -newkey rsa:2048 -nodes -sha256 \
                -keyout "$d/key.pem" -out "$d/server.csr" -subj "/CN=$(peer_host)" &&
            printf 'subjectAltName=IP:%s\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' "$(peer_host)" >"$d/server.ext" &&
            openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
                -CAcreateserial -days 7 -sha256 -extfile "$d/server.ext" -out "$d/cert.pem" &&
            openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 \
                -keyout "$d/wrong-ca.key" -out "$d/wrong-ca.pem" -subj "/CN=vctp test unrelated CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign"
    } >"$d/openssl.log" 2>&1
}

vcsim_start() {
    if [ -n "${VCTP_VCSIM_DIR:-}" ] && [ -d "$VCTP_VCSIM_DIR" ]; then
        _vcsim_log "already started ($VCTP_VCSIM_DIR)"
        return 0
    fi
    local vms="${VCSIM_VMS:-200}"
    peer_require_number vcsim.sh VCSIM_VMS "$vms" || return 1
    local timeout="${VCSIM_START_TIMEOUT:-180}"

    vcsim_build || return 1

    VCTP_VCSIM_DIR="$(mktemp -d /tmp/vctp-vcsim.XXXX)" || {
        _vcsim_log "mktemp failed"
        VCTP_VCSIM_DIR=""
        return 1
    }
    chmod 700 "$VCTP_VCSIM_DIR"
    # The simulator writes a directory and 5 files per VM and reads them
    # back. On this machine's ext4 (mounted with discard) that costs 20+ s of
    # system time for 10,000 VMs, against ~1 s on tmpfs (~40 MB there).
    local ds_parent=/tmp
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        ds_parent=/dev/shm
    fi
    VCTP_VCSIM_DS="$(mktemp -d "$ds_parent/vctp-vcsim-ds.XXXX")" || {
        _vcsim_log "mktemp in $ds_parent failed"
        VCTP_VCSIM_DS=""
        vcsim_stop
        return 1
    }
    if ! _vcsim_make_certs "$VCTP_VCSIM_DIR"; then
        _vcsim_log "openssl failed:"
        cat "$VCTP_VCSIM_DIR/openssl.log" >&2 || true
        vcsim_stop
        return 1
    fi

    local user=vctp password
    password="vcsim-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"

    # Create the output files first so the ready-line polling below never
    # reads a file the background process has not opened yet.
    : >"$VCTP_VCSIM_DIR/stdout"
    : >"$VCTP_VCSIM_DIR/log"
    # TMPDIR: the simulator keeps its datastore there, so vcsim_stop can
    # remove it even if the process had to be killed.
    TMPDIR="$VCTP_VCSIM_DS" "$(_vcsim_cache)/vcsim" \
        -listen "$(peer_host):0" -control "$(peer_host):0" \
        -cert "$VCTP_VCSIM_DIR/cert.pem" -key "$VCTP_VCSIM_DIR/key.pem" \
        -vms "$vms" -username "$user" -password "$password" \
        >"$VCTP_VCSIM_DIR/stdout" 2>"$VCTP_VCSIM_DIR/log" </dev/null &
    VCTP_VCSIM_PID=$!

    local url="" control="" waited=0 deadline=$((timeout * 10))
    while :; do
        # `|| true`: a failing read must not end a `set -e` caller.
        url="$(sed -n 's/^VCSIM_URL=//p' "$VCTP_VCSIM_DIR/stdout" 2>/dev/null || true)"
        control="$(sed -n 's/^VCSIM_CONTROL=//p' "$VCTP_VCSIM_DIR/stdout" 2>/dev/null || true)"
        if [ -n "$url" ] && [ -n "$control" ]; then
            break
        fi
        if ! peer_alive "$VCTP_VCSIM_PID"; then
            _vcsim_log "the simulator exited before it was ready"
            _vcsim_dump_log
            vcsim_stop
            return 1
        fi
        if [ "$waited" -ge "$deadline" ]; then
            _vcsim_log "the simulator was not ready after ${timeout}s (VCSIM_VMS=$vms; raise VCSIM_START_TIMEOUT?)"
            _vcsim_dump_log
            vcsim_stop
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    case "$url" in
        "https://$(peer_host):"*/sdk) ;;
        *)
            _vcsim_log "unexpected SDK URL '$url'"
            _vcsim_dump_log
            vcsim_stop
            return 1
            ;;
    esac

    export VCTP_TEST_VCSIM_URL="$url"
    export VCTP_TEST_VCSIM_CONTROL="$control"
    export VCTP_TEST_VCSIM_CA="$VCTP_VCSIM_DIR/ca.pem"
    export VCTP_TEST_VCSIM_WRONG_CA="$VCTP_VCSIM_DIR/wrong-ca.pem"
    export VCTP_TEST_VCSIM_USER="$user"
    export VCTP_TEST_VCSIM_PASSWORD="$password"
    export VCTP_TEST_VCSIM_VMS="$vms"
    _vcsim_log "govmomi simulator running (pid $VCTP_VCSIM_PID, $vms VMs, dir $VCTP_VCSIM_DIR): $url, control $control"
    return 0
}

vcsim_stop() {
    local dir="${VCTP_VCSIM_DIR:-}" ds="${VCTP_VCSIM_DS:-}" pid="${VCTP_VCSIM_PID:-}"
    if [ -n "$pid" ]; then
        peer_stop_pid vcsim.sh "$pid"
        # Reap it (it is our child when started from this shell) so that
        # `kill -0` fails once we return.
        wait "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi

    peer_remove_dir vcsim.sh "$dir" /tmp/vctp-vcsim.

    peer_remove_dir vcsim.sh "$ds" /dev/shm/vctp-vcsim-ds. /tmp/vctp-vcsim-ds.

    VCTP_VCSIM_DIR=""
    VCTP_VCSIM_DS=""
    VCTP_VCSIM_PID=""
    unset VCTP_TEST_VCSIM_URL VCTP_TEST_VCSIM_CONTROL VCTP_TEST_VCSIM_CA \
        VCTP_TEST_VCSIM_WRONG_CA VCTP_TEST_VCSIM_USER VCTP_TEST_VCSIM_PASSWORD \
        VCTP_TEST_VCSIM_VMS
    return 0
}
