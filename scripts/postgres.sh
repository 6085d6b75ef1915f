# shellcheck shell=bash
#
# Private, throw-away PostgreSQL 15 server for the vctp test suite.
#
# Usage (from bash):
#
#     source scripts/postgres.sh
#     trap pg_stop EXIT
#     pg_start            # exports VCTP_TEST_POSTGRES_URL and VCTP_TEST_POSTGRES_CTL
#     ...                 # run tests
#     pg_stop             # idempotent; also fine if pg_start never ran
#
# The server listens only on 127.0.0.1 on a free port, keeps its data and its
# Unix socket in a fresh `mktemp -d /tmp/vctp-pg.XXXX` directory, trusts every
# connection, and runs with fsync off. It is meant for tests only.
#
# Tests that take the database away under a running vctp stop and start this same server
# (same data, same port) with `"$VCTP_TEST_POSTGRES_CTL" stop` and `... start`: a small
# script pg_start writes into its temp directory (pg_pause / pg_resume below).
#
# Environment knobs (all optional):
#   VCTP_PG_BIN   directory holding initdb/pg_ctl/postgres
#                 (default /usr/lib/postgresql/15/bin)
#   VCTP_PEER_HOST  address to listen on instead of 127.0.0.1 (peer-lib.sh); clients on
#                 the networks of the server's own interfaces (`samenet`) are trusted then
#
# State kept between pg_start and pg_stop (shell variable, not exported, so
# child processes never see it; do not set by hand):
#   VCTP_PG_DIR   the temp directory (data dir is $VCTP_PG_DIR/data)
#
# This file is meant to be sourced; it does not change the caller's shell
# options (set -e/-u/-o pipefail work either way).

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

: "${VCTP_PG_BIN:=/usr/lib/postgresql/15/bin}"
VCTP_PG_DIR="${VCTP_PG_DIR:-}"
export -n VCTP_PG_DIR

_pg_log() {
    printf 'postgres.sh: %s\n' "$*" >&2
}

# Run a command as the `postgres` user when we are root (initdb and postgres
# refuse to run as root); otherwise run it as ourselves. The command runs with
# the temp dir as cwd so the postgres user never trips over an unreadable cwd.
_pg_as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "${VCTP_PG_DIR:-/tmp}" && runuser -u postgres -- "$@")
    else
        (cd "${VCTP_PG_DIR:-/tmp}" && "$@")
    fi
}

# Install the PostgreSQL 15 server binaries if they are missing (idempotent).
_pg_ensure_installed() {
    if [ -x "$VCTP_PG_BIN/initdb" ] && [ -x "$VCTP_PG_BIN/pg_ctl" ] && [ -x "$VCTP_PG_BIN/postgres" ]; then
        return 0
    fi
    _pg_log "PostgreSQL server binaries not found in $VCTP_PG_BIN; installing postgresql-15"
    peer_apt_install postgres.sh postgresql-15 || return 1
    if ! [ -x "$VCTP_PG_BIN/initdb" ] || ! [ -x "$VCTP_PG_BIN/pg_ctl" ]; then
        _pg_log "postgresql-15 installed but $VCTP_PG_BIN/initdb or pg_ctl is still missing"
        return 1
    fi
}

# Pid of the running postmaster (first line of postmaster.pid), if any.
_pg_postmaster_pid() {
    local pidfile="${VCTP_PG_DIR:-}/data/postmaster.pid"
    [ -n "${VCTP_PG_DIR:-}" ] && [ -r "$pidfile" ] || return 1
    head -n 1 "$pidfile"
}

_pg_dump_log() {
    if [ -n "${VCTP_PG_DIR:-}" ] && [ -f "$VCTP_PG_DIR/log" ]; then
        _pg_log "----- server log ($VCTP_PG_DIR/log) -----"
        cat "$VCTP_PG_DIR/log" >&2 || true
        _pg_log "----- end of server log -----"
    fi
}

# Start the server of $VCTP_PG_DIR on PORT and wait until it accepts connections.
_pg_ctl_start() {
    _pg_as_postgres "$VCTP_PG_BIN/pg_ctl" -D "$VCTP_PG_DIR/data" -l "$VCTP_PG_DIR/log" -w start \
        -o "-c listen_addresses=$(peer_host) -p $1 -k $VCTP_PG_DIR -c fsync=off" >/dev/null
}

# Stop the running server, keeping its data: `fast` ends the open sessions (they get
# admin_shutdown, 57P01) as a real shutdown of the database does.
pg_pause() {
    if ! _pg_as_postgres "$VCTP_PG_BIN/pg_ctl" -D "$VCTP_PG_DIR/data" -m fast -w stop >/dev/null; then
        _pg_log "pg_ctl stop failed"
        return 1
    fi
}

# Start the server pg_pause stopped again, on its port PORT.
pg_resume() {
    if ! _pg_ctl_start "$1"; then
        _pg_log "PostgreSQL failed to start again on port $1"
        _pg_dump_log
        return 1
    fi
}

# Write $VCTP_PG_DIR/ctl, which runs pg_pause (stop) or pg_resume (start) on this server from
# any process: tests get its path in VCTP_TEST_POSTGRES_CTL.
_pg_write_ctl() {
    local port="$1" script
    script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/postgres.sh"
    cat >"$VCTP_PG_DIR/ctl" <<EOF
#!/usr/bin/env bash
# Written by scripts/postgres.sh: stop or start its test server (same data, port $port).
VCTP_PG_DIR='$VCTP_PG_DIR'
source '$script'
case "\${1:-}" in
    stop) pg_pause ;;
    start) pg_resume $port ;;
    *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
EOF
    chmod 700 "$VCTP_PG_DIR/ctl"
}

pg_start() {
    if [ -n "${VCTP_PG_DIR:-}" ] && [ -d "$VCTP_PG_DIR" ]; then
        _pg_log "already started ($VCTP_PG_DIR)"
        return 0
    fi

    _pg_ensure_installed || return 1

    VCTP_PG_DIR="$(mktemp -d /tmp/vctp-pg.XXXX)" || {
        _pg_log "mktemp failed"
        VCTP_PG_DIR=""
        return 1
    }
    chmod 700 "$VCTP_PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        if ! chown postgres:postgres "$VCTP_PG_DIR"; then
            _pg_log "chown postgres $VCTP_PG_DIR failed"
            pg_stop
            return 1
        fi
    fi

    if ! _pg_as_postgres "$VCTP_PG_BIN/initdb" -D "$VCTP_PG_DIR/data" -U postgres \
        --auth-local=trust --auth-host=trust -E UTF8 --no-sync \
        >"$VCTP_PG_DIR/initdb.log" 2>&1; then
        _pg_log "initdb failed:"
        cat "$VCTP_PG_DIR/initdb.log" >&2 || true
        pg_stop
        return 1
    fi
    # initdb trusts loopback only; on another address the clients are the node's Pods.
    if [ "$(peer_host)" != 127.0.0.1 ] &&
        ! printf 'host all all samenet trust\n' >>"$VCTP_PG_DIR/data/pg_hba.conf"; then
        _pg_log "could not extend pg_hba.conf"
        pg_stop
        return 1
    fi

    # The free port can be taken by someone else between probing and binding;
    # retry a few times with a new port.
    local port attempt started=0
    for attempt in 1 2 3 4 5; do
        if ! port="$(peer_free_port)" || [ -z "$port" ]; then
            _pg_log "could not find a free port"
            break
        fi
        if _pg_ctl_start "$port"; then
            started=1
            break
        fi
        _pg_log "start attempt $attempt on port $port failed"
        # If it came up half-way, make sure it is down before retrying.
        _pg_as_postgres "$VCTP_PG_BIN/pg_ctl" -D "$VCTP_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    done

    if [ "$started" -ne 1 ]; then
        _pg_log "PostgreSQL failed to start"
        _pg_dump_log
        pg_stop
        return 1
    fi

    if ! _pg_write_ctl "$port"; then
        _pg_log "could not write $VCTP_PG_DIR/ctl"
        pg_stop
        return 1
    fi
    local host
    host="$(peer_host)"
    export VCTP_TEST_POSTGRES_URL="postgres://postgres@$host:$port/postgres"
    export VCTP_TEST_POSTGRES_CTL="$VCTP_PG_DIR/ctl"
    _pg_log "PostgreSQL running (pid $(_pg_postmaster_pid || echo '?'), dir $VCTP_PG_DIR): $VCTP_TEST_POSTGRES_URL"
    return 0
}

pg_stop() {
    local dir="${VCTP_PG_DIR:-}"
    if [ -z "$dir" ]; then
        return 0
    fi

    if [ -f "$dir/data/postmaster.pid" ]; then
        local pid i
        pid="$(_pg_postmaster_pid || true)"
        if ! _pg_as_postgres "$VCTP_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1; then
            _pg_log "pg_ctl stop failed; signalling postmaster ${pid:-?}"
            if [ -n "$pid" ] && peer_alive "$pid"; then
                kill -QUIT "$pid" 2>/dev/null || true
                for i in $(seq 1 50); do
                    peer_alive "$pid" || break
                    sleep 0.1
                done
                if peer_alive "$pid"; then
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            fi
        fi
        # The postmaster was daemonized by pg_ctl, so it is reaped by init,
        # which may do so lazily. Wait (bounded) until the pid is really gone
        # so callers can rely on `kill -0` failing after pg_stop.
        if [ -n "$pid" ]; then
            for i in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    fi

    peer_remove_dir postgres.sh "$dir" /tmp/vctp-pg.

    VCTP_PG_DIR=""
    unset VCTP_TEST_POSTGRES_URL VCTP_TEST_POSTGRES_CTL
    return 0
}
