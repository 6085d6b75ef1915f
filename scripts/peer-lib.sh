# shellcheck shell=bash
#
# Helpers shared by the peer scripts (postgres.sh, vcsim.sh, s3.sh, ldap.sh, kube.sh,
# victoriametrics.sh, chromium.sh, libreoffice.sh, helm.sh); each of them sources this file. Meant to be sourced; it does not change
# the caller's shell options.

# The address the peers listen on and put in their URLs and certificates: 127.0.0.1 unless
# VCTP_PEER_HOST says otherwise (kube.sh's node starts its peers inside its network namespace
# on the node's address, so that Pods reach them).
peer_host() {
    printf '%s\n' "${VCTP_PEER_HOST:-127.0.0.1}"
}

# Print a currently free TCP port on 127.0.0.1.
peer_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    # Fallback without python3: probe random high ports with bash's /dev/tcp.
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# True if pid is a live process (a zombie awaiting reaping counts as dead).
peer_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        local state
        state="$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
        [ "$state" != "Z" ] || return 1
    fi
    return 0
}

# Print the last lines of a peer's log file to stderr, if it exists: peer_dump_log SCRIPT WHAT FILE.
peer_dump_log() {
    local script="$1" what="$2" file="$3"
    [ -f "$file" ] || return 0
    printf '%s: ----- last lines of the %s (%s) -----\n' "$script" "$what" "$file" >&2
    tail -n 40 "$file" >&2 || true
    printf '%s: ----- end of %s -----\n' "$script" "$what" >&2
}

# Fail, saying so, unless VALUE is a whole number: peer_require_number SCRIPT NAME VALUE.
peer_require_number() {
    case "$3" in
        '' | *[!0-9]*)
            printf "%s: %s must be a number, got '%s'\n" "$1" "$2" "$3" >&2
            return 1
            ;;
    esac
}

# SIGTERM a live pid, wait up to 10 s for it to go, then SIGKILL it: peer_stop_pid SCRIPT PID.
peer_stop_pid() {
    local script="$1" pid="$2"
    peer_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        peer_alive "$pid" || return 0
        sleep 0.1
    done
    printf '%s: pid %s ignored SIGTERM for 10 s; sending SIGKILL\n' "$script" "$pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

# Remove a peer's scratch directory, but only one whose path starts with one of PREFIXes (a
# stray variable must never delete anything else): peer_remove_dir SCRIPT DIR PREFIX...
peer_remove_dir() {
    local script="$1" dir="$2" prefix
    shift 2
    [ -n "$dir" ] || return 0
    for prefix in "$@"; do
        if [ "${dir#"$prefix"}" != "$dir" ]; then
            rm -rf -- "$dir" || printf '%s: could not remove %s\n' "$script" "$dir" >&2
            return 0
        fi
    done
    printf '%s: refusing to remove unexpected directory %s\n' "$script" "$dir" >&2
}

# A test CA and a server certificate for 127.0.0.1 and localhost signed by it, in DIR:
# ca.pem (trust it), server.pem and server.key; openssl's messages go to LOG.
# peer_test_certs DIR "CA NAME" LOG
peer_test_certs() {
    local dir="$1" name="$2" log="$3"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$name" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>>"$log" &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$dir/server.key" -out "$dir/server.csr" 2>>"$log" &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext" &&
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>>"$log"
}

# Stop a child PID (peer_stop_pid), reap it and wait until `kill -0` fails:
# peer_stop_child SCRIPT PID.
peer_stop_child() {
    local script="$1" pid="$2"
    [ -n "$pid" ] || return 0
    peer_stop_pid "$script" "$pid"
    # Reap it (it is our child when started from this shell) so that `kill -0` fails once we
    # return.
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
}

# Whether this shell has refreshed apt's package lists already (one `apt-get update` serves
# every peer script sourced into it).
_PEER_APT_UPDATED="${_PEER_APT_UPDATED:-0}"

# Install Debian packages, as root or through sudo: peer_apt_install SCRIPT PACKAGE...
peer_apt_install() {
    local script="$1"
    shift
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            printf '%s: not root and no sudo: cannot install %s\n' "$script" "$*" >&2
            return 1
        fi
    fi
    if [ "$_PEER_APT_UPDATED" != 1 ]; then
        if ! "${sudo[@]}" apt-get update -qq; then
            printf '%s: apt-get update failed\n' "$script" >&2
            return 1
        fi
        _PEER_APT_UPDATED=1
    fi
    # noninteractive through env, not the caller's environment: sudo may not pass it on, and
    # some packages (slapd) would otherwise stop to ask questions.
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@"; then
        printf '%s: apt-get install %s failed\n' "$script" "$*" >&2
        return 1
    fi
}
