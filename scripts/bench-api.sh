#!/usr/bin/env bash
#
# The API benchmark of the README: `vctp bench api` seeds VCENTERS vCenters × DAYS days of
# hourly totals (default 50 × 45), `vctp serve` serves them on loopback, and wrk loads each URL
# template with CONNECTIONS connections (default 100) for DURATION, the vCenter rotating per
# request (scripts/bench-api.lua), printing p50, p99 and requests/s. A template answering 404
# (a page not in this build) is reported as "skipped: 404".
#
# Usage: scripts/bench-api.sh [TEMPLATE…]
#   TEMPLATE: a path with {vc} for the vCenter name; default
#             /api/vcenters/{vc}/totals/hourly and /vcenters/totals/hourly?vcenter={vc}
#   env: DATABASES ("sqlite postgres"), VCENTERS, DAYS, CONNECTIONS, THREADS (2), DURATION (20s),
#        WARMUP (0s: none; e.g. 5s loads each template that long, unmeasured, before measuring),
#        VCTP_API_CACHE_SECONDS (the server's answer cache, default 10; 0 = off),
#        ENCODING (sent as Accept-Encoding, e.g. gzip or br; bytes_per_request is then what
#        crossed the wire compressed),
#        NO_BUILD=1 to use $VCTP (default target/release/vctp) as it is
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
VCTP="${VCTP:-$ROOT/target/release/vctp}"
DATABASES="${DATABASES:-sqlite postgres}"
VCENTERS="${VCENTERS:-50}"
DAYS="${DAYS:-45}"
CONNECTIONS="${CONNECTIONS:-100}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-0s}"
if [ "$#" -gt 0 ]; then
    TEMPLATES=("$@")
else
    TEMPLATES=("/api/vcenters/{vc}/totals/hourly" "/vcenters/totals/hourly?vcenter={vc}")
fi

# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"
SCRATCH="$(mktemp -d /tmp/vctp-bench-api.XXXX)"
SERVE_PID=""
stop_serve() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
        SERVE_PID=""
    fi
}
cleanup() {
    stop_serve
    pg_stop
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
    printf '\n==> installing wrk\n'
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y wrk
fi
if [ -z "${NO_BUILD:-}" ]; then
    printf '\n==> building vctp (release)\n'
    cargo build --release --quiet
fi

# Starts `vctp serve` on a free loopback port of database $1; sets ADDR.
start_serve() {
    RUST_LOG=error "$VCTP" --database-url "$1" serve --listen 127.0.0.1:0 --disable-tls >"$SCRATCH/serve.log" 2>&1 &
    SERVE_PID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR="$(sed -n 's|^vctp serve listening on http://||p' "$SCRATCH/serve.log")"
        [ -n "$ADDR" ] && return 0
        sleep 0.1
    done
    cat "$SCRATCH/serve.log" >&2
    echo "bench-api.sh: vctp serve did not start" >&2
    exit 1
}

# Loads every template against the server of database $1 (named $2 in the output).
load() {
    local url="$1" name="$2" template first status result
    printf '\n==> %s: seeding %s vCenters × %s days\n' "$name" "$VCENTERS" "$DAYS"
    RUST_LOG=error "$VCTP" --database-url "$url" bench api --vcenters "$VCENTERS" --days "$DAYS"
    start_serve "$url"
    for template in "${TEMPLATES[@]}"; do
        first="http://$ADDR${template//\{vc\}/vc-01}"
        status="$(curl -s -o "$SCRATCH/first" -w '%{http_code}' -H "Accept-Encoding: ${ENCODING:-identity}" "$first")"
        if [ "$status" = 404 ]; then
            printf '%-9s %-45s skipped: 404\n' "$name" "$template"
            continue
        fi
        [ "$status" = 200 ] || { echo "bench-api.sh: $first answered $status" >&2; exit 1; }
        if [ "$WARMUP" != 0s ]; then
            VCTP_BENCH_TEMPLATE="$template" VCTP_BENCH_VCENTERS="$VCENTERS" VCTP_BENCH_ENCODING="${ENCODING:-}" \
                wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout 10s -s "$ROOT/scripts/bench-api.lua" \
                "http://$ADDR" >/dev/null
        fi
        result="$(VCTP_BENCH_TEMPLATE="$template" VCTP_BENCH_VCENTERS="$VCENTERS" VCTP_BENCH_ENCODING="${ENCODING:-}" \
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency -s "$ROOT/scripts/bench-api.lua" \
            "http://$ADDR" | sed -n 's/^RESULT //p')"
        printf '%-9s %-45s %s (first answer %s bytes)\n' "$name" "$template" "$result" \
            "$(wc -c <"$SCRATCH/first")"
        case "$result" in
        *" non_2xx=0 socket_errors=0 "*) ;;
        *) echo "bench-api.sh: WARNING: errors under load (non_2xx, socket_errors above)" >&2 ;;
        esac
    done
    stop_serve
}

printf '\nmachine: %s cores, %s; wrk %s; answer cache %ss; warm-up %s\n' "$(nproc)" "$(uname -sr)" \
    "$(wrk -v 2>&1 | head -1 || true)" "${VCTP_API_CACHE_SECONDS:-10}" "$WARMUP"
for database in $DATABASES; do
    case "$database" in
    sqlite) load "$SCRATCH/bench.sqlite3" sqlite ;;
    postgres)
        pg_start
        load "$VCTP_TEST_POSTGRES_URL" postgres
        pg_stop
        ;;
    *) echo "bench-api.sh: unknown database $database (sqlite or postgres)" >&2; exit 2 ;;
    esac
done
