# shellcheck shell=bash
#
# Private, throw-away S3-compatible server for the vctp test suite: s3s-fs
# from crates.io. It checks SigV4 signatures (so wrong credentials are really
# refused), supports multipart uploads, presigned URLs and ranges, and keeps
# each bucket as a directory under its root.
#
# Usage (from bash):
#
#     source scripts/s3.sh
#     trap s3_stop EXIT
#     s3_start            # installs s3s-fs when missing, exports the variables below
#     ...                 # run tests
#     s3_stop             # idempotent; also fine if s3_start never ran
#
# Exported by s3_start:
#   VCTP_TEST_S3_ENDPOINT    http://127.0.0.1:PORT (plain HTTP: clients need
#                            object_store's aws_allow_http=true, path-style requests)
#   VCTP_TEST_S3_BUCKET      an empty bucket, the server's only one (object_store
#                            never creates buckets)
#   VCTP_TEST_S3_ACCESS_KEY  the only access key the server accepts
#   VCTP_TEST_S3_SECRET_KEY  its secret key (random per start)
#   VCTP_TEST_S3_REGION      the region to sign for
#   VCTP_TEST_S3_DATA_DIR    the server's root directory: an unfinished multipart upload
#                            leaves `.bucket-…object-<key>.upload-<id>.metadata.json` there
#                            until it is completed or aborted (tests look for them)
#
# Other function: s3_install (cargo install into the cache, only when the
# binary is missing or another version; ~156 s cold on 2 cores).
#
# Environment knobs (all optional):
#   VCTP_S3_CACHE       install root (default $ROOT/target/s3s-fs; binary in bin/)
#   S3_START_TIMEOUT    seconds to wait for the server to answer (default 30)
#   VCTP_PEER_HOST      address to listen on instead of 127.0.0.1 (peer-lib.sh)
#
# State kept between s3_start and s3_stop (shell variables, not exported; do
# not set by hand):
#   VCTP_S3_DIR   the temp directory (data/ is the server's root, log)
#   VCTP_S3_PID   the server's pid
#
# This file is meant to be sourced; it does not change the caller's shell
# options (set -e/-u/-o pipefail work either way). It never uses pkill or
# killall: it stops exactly the process it started.

# 0.14.1 is the newest s3s-fs that builds with our rustc (1.95); 0.17 needs a newer one.
# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_S3_VERSION=0.14.1
_S3_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VCTP_S3_DIR="${VCTP_S3_DIR:-}"
VCTP_S3_PID="${VCTP_S3_PID:-}"
export -n VCTP_S3_DIR VCTP_S3_PID

_s3_log() {
    printf 's3.sh: %s\n' "$*" >&2
}

_s3_bin() {
    printf '%s/bin/s3s-fs\n' "${VCTP_S3_CACHE:-$_S3_ROOT/target/s3s-fs}"
}

# Install s3s-fs into the cache unless the binary there is already this version.
s3_install() {
    local bin
    bin="$(_s3_bin)"
    if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "s3s-fs $_S3_VERSION" ]; then
        return 0
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        _s3_log "cargo not found on PATH; cannot install s3s-fs"
        return 1
    fi
    _s3_log "installing s3s-fs $_S3_VERSION into ${bin%/bin/s3s-fs} (about 156 s on 2 cores)"
    # --locked: the crate's own Cargo.lock, so a newer dependency cannot break the build.
    if ! cargo install --locked "s3s-fs@$_S3_VERSION" --features binary \
        --root "${bin%/bin/s3s-fs}" --force; then
        _s3_log "cargo install s3s-fs@$_S3_VERSION failed"
        return 1
    fi
}

# True once the server answers HTTP (any status: an unsigned request gets 403).
_s3_answers() {
    local code
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(peer_host):$1/" 2>/dev/null || true)"
    [ -n "$code" ] && [ "$code" != 000 ]
}

_s3_dump_log() {
    if [ -n "${VCTP_S3_DIR:-}" ]; then
        peer_dump_log s3.sh "server log" "$VCTP_S3_DIR/log"
    fi
}

# Stop the server process, if any, and wait until it is gone.
_s3_kill() {
    peer_stop_child s3.sh "${VCTP_S3_PID:-}"
    VCTP_S3_PID=""
}

s3_start() {
    if [ -n "${VCTP_S3_DIR:-}" ] && [ -d "$VCTP_S3_DIR" ]; then
        _s3_log "already started ($VCTP_S3_DIR)"
        return 0
    fi
    local timeout="${S3_START_TIMEOUT:-30}"
    peer_require_number s3.sh S3_START_TIMEOUT "$timeout" || return 1
    if ! command -v curl >/dev/null 2>&1; then
        _s3_log "curl is needed to see when the server answers"
        return 1
    fi

    s3_install || return 1

    VCTP_S3_DIR="$(mktemp -d /tmp/vctp-s3.XXXX)" || {
        _s3_log "mktemp failed"
        VCTP_S3_DIR=""
        return 1
    }
    chmod 700 "$VCTP_S3_DIR"
    local bucket=vctp-test access=vctp-test secret region=us-east-1
    secret="s3-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    # A top-level directory of the root is a bucket; object_store cannot create one.
    if ! mkdir -p "$VCTP_S3_DIR/data/$bucket"; then
        _s3_log "could not create the bucket directory"
        s3_stop
        return 1
    fi

    # The free port can be taken by someone else between probing and binding;
    # retry a few times with a new port.
    local port="" attempt ready=0 waited deadline=$((timeout * 10))
    for attempt in 1 2 3 4 5; do
        if ! port="$(peer_free_port)" || [ -z "$port" ]; then
            _s3_log "could not find a free port"
            break
        fi
        "$(_s3_bin)" --host "$(peer_host)" --port "$port" \
            --access-key "$access" --secret-key "$secret" \
            "$VCTP_S3_DIR/data" >>"$VCTP_S3_DIR/log" 2>&1 </dev/null &
        VCTP_S3_PID=$!
        waited=0
        while peer_alive "$VCTP_S3_PID" && [ "$waited" -lt "$deadline" ]; do
            if _s3_answers "$port"; then
                ready=1
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        [ "$ready" -eq 1 ] && break
        if peer_alive "$VCTP_S3_PID"; then
            _s3_log "the server did not answer on port $port within ${timeout}s"
            break
        fi
        _s3_log "start attempt $attempt on port $port failed"
        _s3_kill
    done

    if [ "$ready" -ne 1 ]; then
        _s3_log "s3s-fs failed to start"
        _s3_dump_log
        s3_stop
        return 1
    fi

    local host
    host="$(peer_host)"
    export VCTP_TEST_S3_ENDPOINT="http://$host:$port"
    export VCTP_TEST_S3_BUCKET="$bucket"
    export VCTP_TEST_S3_ACCESS_KEY="$access"
    export VCTP_TEST_S3_SECRET_KEY="$secret"
    export VCTP_TEST_S3_REGION="$region"
    export VCTP_TEST_S3_DATA_DIR="$VCTP_S3_DIR/data"
    _s3_log "s3s-fs $_S3_VERSION running (pid $VCTP_S3_PID, dir $VCTP_S3_DIR): $VCTP_TEST_S3_ENDPOINT, bucket $bucket"
    return 0
}

s3_stop() {
    local dir="${VCTP_S3_DIR:-}"
    _s3_kill
    peer_remove_dir s3.sh "$dir" /tmp/vctp-s3.
    VCTP_S3_DIR=""
    unset VCTP_TEST_S3_ENDPOINT VCTP_TEST_S3_BUCKET VCTP_TEST_S3_ACCESS_KEY \
        VCTP_TEST_S3_SECRET_KEY VCTP_TEST_S3_REGION VCTP_TEST_S3_DATA_DIR
    return 0
}
