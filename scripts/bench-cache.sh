#!/usr/bin/env bash
#
# What the answer cache of `vctp serve` costs in memory when a client chooses the keys:
# `vctp bench api` seeds one vCenter × DAYS days of hourly totals (default 45, the hourly
# view's reach: ~300 KB per answer), then REQUESTS (default 4095) GETs of
# /api/vcenters/vc-01/totals/hourly each differ by a parameter, and the server's resident
# memory (VmRSS) is printed before and after each round:
#   unknown   `&n=$i`: an unknown parameter (answered 400 since the cache hardening)
#   valid     `until=$t`: distinct valid values, each a 200 answer the cache may keep
# The server runs with a long answer cache (VCTP_API_CACHE_SECONDS, default 600) so nothing
# expires during the rounds.
#
# Usage: scripts/bench-cache.sh [VCTP_BINARY…]   (default target/release/vctp; several
#        binaries are measured one after the other, e.g. /tmp/vctp-main /tmp/vctp-limits)
#   env: DAYS (45), REQUESTS (4095), ROUNDS ("unknown valid"), VCTP_API_CACHE_SECONDS (600)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DAYS="${DAYS:-45}"
REQUESTS="${REQUESTS:-4095}"
ROUNDS="${ROUNDS:-unknown valid}"
export VCTP_API_CACHE_SECONDS="${VCTP_API_CACHE_SECONDS:-600}"
if [ "$#" -gt 0 ]; then
    BINARIES=("$@")
else
    BINARIES=("$ROOT/target/release/vctp")
fi

SCRATCH="$(mktemp -d /tmp/vctp-bench-cache.XXXX)"
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
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

rss_mib() {
    awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVE_PID/status"
}

# GETs $1 with `{i}` replaced by 1..REQUESTS (and `{t}` by now + i seconds) over one
# keep-alive connection; prints how many answers had each status.
hammer() {
    python3 - "$1" "$REQUESTS" <<'PY'
import collections, http.client, sys, time, urllib.parse
template, count = sys.argv[1], int(sys.argv[2])
now = int(time.time())
url = urllib.parse.urlsplit(template)
connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
statuses = collections.Counter()
for i in range(1, count + 1):
    target = urllib.parse.urlsplit(template.replace("{i}", str(i)).replace("{t}", str(now + i)))
    connection.request("GET", f"{target.path}?{target.query}")
    answer = connection.getresponse()
    answer.read()
    statuses[answer.status] += 1
print(" ".join(f"{status}×{n}" for status, n in sorted(statuses.items())))
PY
}

for vctp in "${BINARIES[@]}"; do
    db="$SCRATCH/cache.sqlite3"
    rm -f "$db"*
    RUST_LOG=error "$vctp" --database-url "$db" bench api --vcenters 1 --days "$DAYS" >/dev/null
    RUST_LOG=error "$vctp" --database-url "$db" serve --listen 127.0.0.1:0 >"$SCRATCH/serve.log" 2>&1 &
    SERVE_PID=$!
    addr=""
    for _ in $(seq 100); do
        addr="$(sed -n 's|^vctp serve listening on http://||p' "$SCRATCH/serve.log")"
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { cat "$SCRATCH/serve.log" >&2; echo "bench-cache.sh: vctp serve did not start" >&2; exit 1; }
    base="http://$addr/api/vcenters/vc-01/totals/hourly"
    size="$(curl -s "$base" | wc -c)"
    printf '\n==> %s (answer %s bytes, cache %ss)\n' "$vctp" "$size" "$VCTP_API_CACHE_SECONDS"
    printf '%-8s %10s %10s  %s\n' round "RSS before" "RSS after" statuses
    for round in $ROUNDS; do
        case "$round" in
        unknown) template="$base?since=0&n={i}" ;;
        # Each `until` a second apart: a distinct valid key per request, the same rows.
        valid) template="$base?until={t}" ;;
        *) echo "bench-cache.sh: unknown round $round (unknown or valid)" >&2; exit 2 ;;
        esac
        before="$(rss_mib)"
        statuses="$(hammer "$template")"
        printf '%-8s %7s MiB %7s MiB  %s\n' "$round" "$before" "$(rss_mib)" "$statuses"
    done
    stop_serve
done
