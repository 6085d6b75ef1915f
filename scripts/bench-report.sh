#!/usr/bin/env bash
#
# The report benchmark of the README: `vctp bench report` builds and uploads the daily report
# of 10,000 and 100,000 synthetic VM summaries, to a local directory and to a real S3 server
# (s3s-fs, started here like scripts/test.sh does), printing time and peak RSS per phase.
#
# Usage: scripts/bench-report.sh        (env: RUNS, default 3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
RUNS="${RUNS:-3}"
VCTP="$ROOT/target/release/vctp"

# shellcheck source=scripts/s3.sh
source "$ROOT/scripts/s3.sh"
trap s3_stop EXIT

printf '\n==> building vctp (release)\n'
cargo build --release --quiet

for vms in 10000 100000; do
    printf '\n==> %s VMs, local directory\n' "$vms"
    RUST_LOG=error "$VCTP" bench report --vms "$vms" --runs "$RUNS"
done

s3_start
export AWS_ENDPOINT="$VCTP_TEST_S3_ENDPOINT" AWS_REGION="$VCTP_TEST_S3_REGION" \
    AWS_ACCESS_KEY_ID="$VCTP_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$VCTP_TEST_S3_SECRET_KEY" \
    AWS_ALLOW_HTTP=true
for vms in 10000 100000; do
    printf '\n==> %s VMs, S3 (s3s-fs)\n' "$vms"
    RUST_LOG=error "$VCTP" bench report --vms "$vms" --runs "$RUNS" \
        --reports-url "s3://$VCTP_TEST_S3_BUCKET/bench-$vms"
done
