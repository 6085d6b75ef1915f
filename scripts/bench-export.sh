#!/usr/bin/env bash
#
# The MetricsExport benchmark of the README. `vctp bench export-data` makes SERIES series × HOURS
# hours × 15 s (default 1,000 × 24 h = 5.76 M samples) and a 4× larger set, loaded into two
# private VictoriaMetrics nodes (scripts/victoriametrics.sh) and read once before timing (warm).
# Then, RUNS times each, alternating with its baseline so both see the same machine:
#
#   export → bundle   vctp export-metrics --out file://… (default obfuscation, keyed)
#   export → stdout   vctp export-metrics --stdout > /dev/null
#   baseline          curl, gzip, one /api/v1/export over the whole range, to a file
#   import            vctp import-metrics BUNDLE --verify none into a third node
#   baseline          curl --data-binary @metrics.jsonl to /api/v1/import (the same lines)
#
# and once: the import with --verify exact, peak RSS of the bundle export on both sets, the
# /api/v1/export requests of a 7-day export with default windows (the node's own request
# counter), and a run stopped by SIGTERM half way, then resumed. Prints the medians and the
# median of the per-pair ratios; the whole-process times come from GNU time (/usr/bin/time).
#
# Usage: scripts/bench-export.sh
#   env: SERIES (1000), HOURS (24), RUNS (5), NO_BUILD=1 to use $VCTP (default
#        target/release/vctp) as it is
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
VCTP="${VCTP:-$ROOT/target/release/vctp}"
SERIES="${SERIES:-1000}"
HOURS="${HOURS:-24}"
RUNS="${RUNS:-5}"
START="2026-11-01T00:00:00Z"

# shellcheck source=scripts/victoriametrics.sh
source "$ROOT/scripts/victoriametrics.sh"
SCRATCH="$(mktemp -d /tmp/vctp-bench-export.XXXX)"
NODE_PIDS=()
cleanup() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

if [ ! -x /usr/bin/time ]; then
    printf '\n==> installing GNU time\n'
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y time
fi
vm_install
if [ -z "${NO_BUILD:-}" ]; then
    printf '\n==> building vctp (release)\n'
    cargo build --release --quiet
fi

# start_node NAME [FLAG…]: a node on a free port; sets NODE_URL.
start_node() {
    local name="$1" port
    shift
    port="$(peer_free_port)"
    mkdir -p "$SCRATCH/$name"
    /usr/bin/victoria-metrics "-httpListenAddr=127.0.0.1:$port" "-storageDataPath=$SCRATCH/$name/data" \
        -retentionPeriod=100y -search.latencyOffset=0s -search.disableCache "$@" \
        >"$SCRATCH/$name/log" 2>&1 &
    NODE_PIDS+=("$!")
    NODE_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        curl -sf "$NODE_URL/health" >/dev/null && return 0
        sleep 0.1
    done
    echo "bench-export.sh: $name did not start" >&2
    return 1
}

# load URL SERIES: generates and imports a data set.
load() {
    "$VCTP" bench export-data --series "$2" --hours "$HOURS" --start "$START" >"$SCRATCH/data.jsonl"
    curl -sf --data-binary "@$SCRATCH/data.jsonl" "$1/api/v1/import"
    curl -sf "$1/internal/force_flush"
    rm -f "$SCRATCH/data.jsonl"
}

# timed FILE CMD…: runs CMD (a function below, or a program), appending "<seconds> <peak KiB>"
# to FILE; the peak is the largest process's (GNU time reports the children's).
timed() {
    local file="$1"
    shift
    /usr/bin/time -o "$SCRATCH/time" -f "%e %M" bash -c '"$@"' timed "$@"
    cat "$SCRATCH/time" >>"$file"
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

start_s="$(date -d "$START" +%s)"
end_s=$((start_s + HOURS * 3600))
printf '\n==> loading %s and %s series × %s h × 15 s\n' "$SERIES" "$((SERIES * 4))" "$HOURS"
start_node source
SOURCE="$NODE_URL"
load "$SOURCE" "$SERIES"
start_node large
LARGE="$NODE_URL"
load "$LARGE" "$((SERIES * 4))"
start_node target -dedup.minScrapeInterval=1ms
TARGET="$NODE_URL"
openssl rand -hex 32 >"$SCRATCH/key"
# The selector's quotes are part of it (a PromQL string), not shell quoting.
# shellcheck disable=SC2089
ALL='{__name__=~".+"}'

baseline() {
    curl -s -H 'Accept-Encoding: gzip' --data-urlencode "match[]=$ALL" -d "start=$start_s" \
        -d "end=$((end_s - 1)).999" "$SOURCE/api/v1/export" -o "$SCRATCH/baseline.gz"
}
export_bundle() {
    "$VCTP" export-metrics --source-url "$1" --match "$ALL" --start "$start_s" --end "$end_s" \
        --obfuscation-key-file "$SCRATCH/key" --out "file://$SCRATCH/store" --run-id "$2" \
        >/dev/null 2>"$SCRATCH/export.log"
}
export_stdout() {
    "$VCTP" export-metrics --source-url "$SOURCE" --match "$ALL" --start "$start_s" --end "$end_s" \
        --obfuscation-key-file "$SCRATCH/key" --stdout >/dev/null 2>"$SCRATCH/export.log"
}
import_bundle() {
    "$VCTP" import-metrics "$SCRATCH/store/exports/run.zip" --target-url "$TARGET" --verify "$1" \
        --state-file "$SCRATCH/import-state.json" >/dev/null 2>"$SCRATCH/import.log"
}
import_baseline() {
    curl -sf --data-binary "@$SCRATCH/metrics.jsonl" "$TARGET/api/v1/import"
}

# shellcheck disable=SC2090
export VCTP SCRATCH SOURCE TARGET ALL start_s end_s
export -f baseline export_bundle export_stdout import_bundle import_baseline

printf '\n==> warming up\n'
baseline
export_bundle "$SOURCE" run
unzip -p "$SCRATCH/store/exports/run.zip" metrics.jsonl >"$SCRATCH/metrics.jsonl"
export_bundle "$LARGE" large

printf '\n==> %s runs of each, paired with its baseline\n' "$RUNS"
for run in $(seq 1 "$RUNS"); do
    timed "$SCRATCH/t.baseline" baseline
    timed "$SCRATCH/t.bundle" export_bundle "$SOURCE" run
    timed "$SCRATCH/t.baseline2" baseline
    timed "$SCRATCH/t.stdout" export_stdout
    timed "$SCRATCH/t.curlimport" import_baseline
    timed "$SCRATCH/t.import" import_bundle none
    timed "$SCRATCH/t.large" export_bundle "$LARGE" large
    printf '  run %s done\n' "$run"
done
timed "$SCRATCH/t.verify" import_bundle exact

# The /api/v1/export requests of one 7-day export with default windows (from the node's own
# counter, which /metrics renders at most about once a second: each read waits for a fresh one).
counter() {
    sleep 2
    curl -s "$SOURCE/metrics" | awk '/^vm_http_requests_total\{path="\/api\/v1\/export"\}/ { print $2 }'
}
before="$(counter)"
"$VCTP" export-metrics --source-url "$SOURCE" --match "$ALL" --start "$start_s" \
    --end "$((start_s + 7 * 86400))" --no-obfuscation --stdout >/dev/null 2>&1
requests=$(($(counter) - before))

# A run stopped by SIGTERM half way (after half its windows), then resumed.
windows="$(grep -c 'windows after' "$SCRATCH/export.log" || true)"
half=$((windows / 2))
"$VCTP" export-metrics --source-url "$SOURCE" --match "$ALL" --start "$start_s" --end "$end_s" \
    --obfuscation-key-file "$SCRATCH/key" --out "file://$SCRATCH/store" --run-id resumed \
    >/dev/null 2>"$SCRATCH/resume.log" &
pid=$!
for _ in $(seq 1 600); do
    grep -q "^export: $half/$windows windows" "$SCRATCH/resume.log" && break
    sleep 0.01
done
kill -TERM "$pid"
wait "$pid" || true
timed "$SCRATCH/t.resume" "$VCTP" export-metrics --source-url "$SOURCE" --match "$ALL" \
    --start "$start_s" --end "$end_s" --obfuscation-key-file "$SCRATCH/key" \
    --out "file://$SCRATCH/store" --run-id resumed --resume >/dev/null 2>"$SCRATCH/resume.log"
resumed_after="$(sed -n 's/^note: resuming after \([0-9]*\) windows.*/\1/p' "$SCRATCH/resume.log")"

# ratio A B: the median of the per-run ratios of two time files.
ratio() {
    paste -d' ' <(cut -d' ' -f1 "$1") <(cut -d' ' -f1 "$2") | awk '{ print $1 / $2 }' | median
}
col() { cut -d' ' -f"$2" "$1" | median; }

bundle_mib="$(awk '{ printf "%.1f", $1 / 1048576 }' <<<"$(stat -c %s "$SCRATCH/store/exports/run.zip")")"
full="$(col "$SCRATCH/t.bundle" 1)"
printf '\n==> %s series × %s h × 15 s (%s samples), %s runs; medians (seconds)\n\n' \
    "$SERIES" "$HOURS" "$((SERIES * HOURS * 240))" "$RUNS"
printf '| what | median | vs baseline (median of pairs) | target |\n|---|---|---|---|\n'
printf '| baseline: curl, gzip, one /api/v1/export | %s s | 1 | |\n' "$(col "$SCRATCH/t.baseline" 1)"
printf '| export-metrics --out file:// (keyed obfuscation; bundle %s MiB) | %s s | %.2f× | ≤ 2.0× |\n' \
    "$bundle_mib" "$full" "$(ratio "$SCRATCH/t.bundle" "$SCRATCH/t.baseline")"
printf '| export-metrics --stdout | %s s | %.2f× | ≤ 1.3× |\n' \
    "$(col "$SCRATCH/t.stdout" 1)" "$(ratio "$SCRATCH/t.stdout" "$SCRATCH/t.baseline2")"
printf '| baseline: curl --data-binary metrics.jsonl to /api/v1/import | %s s | 1 | |\n' \
    "$(col "$SCRATCH/t.curlimport" 1)"
printf '| import-metrics --verify none | %s s | %.2f× | ≤ 1.5× |\n' \
    "$(col "$SCRATCH/t.import" 1)" "$(ratio "$SCRATCH/t.import" "$SCRATCH/t.curlimport")"
printf '| import-metrics --verify exact (once; verification included) | %s s | | |\n' \
    "$(col "$SCRATCH/t.verify" 1)"
printf '\n| what | figure | target |\n|---|---|---|\n'
printf '| peak RSS, export to a bundle, %s series | %.1f MiB | ≤ 128 MiB |\n' \
    "$SERIES" "$(col "$SCRATCH/t.bundle" 2 | awk '{ print $1 / 1024 }')"
small_kib="$(col "$SCRATCH/t.bundle" 2)"
large_kib="$(col "$SCRATCH/t.large" 2)"
printf '| peak RSS, export to a bundle, %s series (4×) | %.1f MiB (%+.1f MiB) | ≤ +16 MiB |\n' \
    "$((SERIES * 4))" "$(awk -v l="$large_kib" 'BEGIN { print l / 1024 }')" \
    "$(awk -v l="$large_kib" -v s="$small_kib" 'BEGIN { print (l - s) / 1024 }')"
printf '| export to a bundle, %s series (4×) | %s s | |\n' "$((SERIES * 4))" "$(col "$SCRATCH/t.large" 1)"
printf '| /api/v1/export requests of a 7-day export (default windows, probe included) | %s | ≤ 30 |\n' "$requests"
printf '| resume after SIGTERM at %s of %s windows | %s s (full run %s s; 0.6 × full + 5 s = %.2f s) | ≤ 0.6 × full + 5 s |\n' \
    "${resumed_after:-?}" "$windows" "$(col "$SCRATCH/t.resume" 1)" "$full" "$(awk -v f="$full" 'BEGIN { print 0.6 * f + 5 }')"
