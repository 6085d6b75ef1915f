#!/usr/bin/env bash
#
# The project's single test command: formatting, lints and the full test
# suite (including #[ignore]d tests) against a private PostgreSQL 15 server.
#
# Usage: scripts/test.sh   (from any directory)
#
# Every step runs even if an earlier one failed, so one run reports all
# problems; the script exits non-zero if any step failed. PostgreSQL is
# always stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export PATH="$HOME/.cargo/bin:$PATH"

banner() {
    printf '\n==> %s\n' "$*"
}

failed=()
step() {
    local name="$1"
    shift
    banner "$name"
    if "$@"; then
        printf '==> %s: ok\n' "$name"
    else
        local rc=$?
        printf '==> %s: FAILED (exit %s)\n' "$name" "$rc"
        failed+=("$name")
    fi
}

banner "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found on PATH ($PATH); install Rust via rustup" >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "installing rustfmt/clippy components"
    rustup component add rustfmt clippy
fi
cargo --version
cargo fmt --version
cargo clippy --version

# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"
trap pg_stop EXIT

banner "starting PostgreSQL"
pg_start
echo "VCTP_TEST_POSTGRES_URL=$VCTP_TEST_POSTGRES_URL"

step "cargo fmt --check" cargo fmt --check
step "cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets -- -D warnings
step "cargo test --all-targets -- --include-ignored" cargo test --all-targets -- --include-ignored

echo
if [ "${#failed[@]}" -ne 0 ]; then
    echo "==> FAILED steps:"
    printf '    - %s\n' "${failed[@]}"
    exit 1
fi
echo "==> all steps passed"
