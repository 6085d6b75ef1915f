#!/usr/bin/env bash
#
# The collector benchmark of the README: vctp's collector, the bare SOAP exchange and a
# pyvmomi script doing the same property retrieval, side by side, against
#   1. VMware's govmomi simulator with VMS VMs (default 10000),
#   2. `vctp sim` with VMS VMs,
# then the peak RSS of collecting BIG_VMS VMs (default 100000) from `vctp sim`, and the
# capture write of those rows on SQLite and on PostgreSQL.
#
# Usage: scripts/bench-collect.sh        (env: VMS, BIG_VMS, RUNS)
#
# It installs what is missing (Go + govmomi sources, pyvmomi in a venv, PostgreSQL) like
# scripts/test.sh does, and stops every server it started on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

VMS="${VMS:-10000}"
BIG_VMS="${BIG_VMS:-100000}"
RUNS="${RUNS:-3}"
VCTP="$ROOT/target/release/vctp"

# shellcheck source=scripts/vcsim.sh
source "$ROOT/scripts/vcsim.sh"
# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"

SIM_PID=""
cleanup() {
    if [ -n "$SIM_PID" ]; then
        kill "$SIM_PID" 2>/dev/null || true
        while kill -0 "$SIM_PID" 2>/dev/null; do sleep 0.1; done
    fi
    vcsim_stop
    pg_stop
}
trap cleanup EXIT

banner() { printf '\n==> %s\n' "$*"; }

banner "building vctp (release)"
cargo build --release --quiet

banner "govmomi simulator, $VMS VMs"
VCSIM_VMS="$VMS" vcsim_start
govmomi=(--url "$VCTP_TEST_VCSIM_URL" --password "$VCTP_TEST_VCSIM_PASSWORD")
"$VCTP" bench collect "${govmomi[@]}" --username "$VCTP_TEST_VCSIM_USER" \
    --ca-file "$VCTP_TEST_VCSIM_CA" --runs "$RUNS"
for _ in $(seq "$RUNS"); do
    scripts/pyvmomi.sh "${govmomi[@]}" --user "$VCTP_TEST_VCSIM_USER" --insecure
done
vcsim_stop

banner "vctp sim, $VMS VMs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VCTP" sim --listen "127.0.0.1:$port" --vms "$VMS" --username vctp --password vctp-sim >/dev/null &
SIM_PID=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.2; done
sim=(--url "http://127.0.0.1:$port/vc1/sdk" --password vctp-sim)
"$VCTP" bench collect "${sim[@]}" --username vctp --runs "$RUNS"
for _ in $(seq "$RUNS"); do
    scripts/pyvmomi.sh "${sim[@]}" --user vctp
done
kill "$SIM_PID"
wait "$SIM_PID" 2>/dev/null || true
SIM_PID=""

banner "vctp sim, $BIG_VMS VMs: peak RSS, capture write on SQLite"
"$VCTP" bench collect --vms "$BIG_VMS" --runs 1

banner "vctp sim, $BIG_VMS VMs: capture write on PostgreSQL"
pg_start
"$VCTP" --database-url "$VCTP_TEST_POSTGRES_URL" bench collect --vms "$BIG_VMS" --runs 1
