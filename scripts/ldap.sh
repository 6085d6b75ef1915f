# shellcheck shell=bash
#
# Private, throw-away OpenLDAP server (slapd) for the vctp auth tests: plain LDAP with
# StartTLS and LDAPS on free ports of 127.0.0.1, a self-signed CA, the memberof and refint
# overlays, and a small directory of users and groups added online (memberOf is only computed
# for entries added through the server, not by slapadd).
#
# Usage (from bash):
#
#     source scripts/ldap.sh
#     trap ldap_stop EXIT
#     ldap_start          # installs slapd/ldap-utils when missing, exports the variables below
#     ...                 # run tests
#     ldap_stop           # idempotent; also fine if ldap_start never ran
#
# Exported by ldap_start:
#   VCTP_TEST_LDAP_URL          ldap://127.0.0.1:PORT (StartTLS offered)
#   VCTP_TEST_LDAPS_URL         ldaps://127.0.0.1:TLSPORT
#   VCTP_TEST_LDAP_CA           the CA certificate (PEM) both present chains up to
#   VCTP_TEST_LDAP_BASE_DN      dc=example,dc=com
#   VCTP_TEST_LDAP_USER_BASE_DN ou=Users,dc=example,dc=com
#   VCTP_TEST_LDAP_GROUP_BASE_DN ou=Groups,dc=example,dc=com
#   VCTP_TEST_LDAP_BIND_DN      a read-only service account (cn=reader,dc=example,dc=com)
#   VCTP_TEST_LDAP_BIND_PASSWORD its password
#   VCTP_TEST_LDAP_PASSWORD     the password of every seeded user
#
# Seeded users (uid under ou=Users) and their groups (cn under ou=Groups, groupOfNames):
#   alice                 vctp-admins
#   victor                vctp-viewers
#   olga                  unmapped
#   paula                 platform-operators
#   o'neil (ops), jr      vctp-viewers     (a uid needing DN and filter escaping)
#   gus                   unique-viewers   (groupOfUniqueNames: no memberOf, found by search)
#
# Environment knobs (all optional):
#   LDAP_START_TIMEOUT  seconds to wait for slapd to answer (default 30)
#
# State kept between ldap_start and ldap_stop (shell variables, not exported):
#   VCTP_LDAP_DIR   the temp directory (slapd.conf, data/, certificates, pid file, log)
#
# This file is meant to be sourced; it does not change the caller's shell options. It never
# uses pkill or killall: it stops exactly the slapd whose pid file it wrote.

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

VCTP_LDAP_DIR="${VCTP_LDAP_DIR:-}"
export -n VCTP_LDAP_DIR VCTP_LDAP_ROOT_PASSWORD

_ldap_log() {
    printf 'ldap.sh: %s\n' "$*" >&2
}

_ldap_slapd() {
    if command -v slapd >/dev/null 2>&1; then
        command -v slapd
    elif [ -x /usr/sbin/slapd ]; then
        echo /usr/sbin/slapd
    else
        return 1
    fi
}

# Install slapd and the client tools when missing (Debian/Ubuntu; needs root or sudo).
ldap_install() {
    if _ldap_slapd >/dev/null && command -v ldapadd >/dev/null 2>&1 &&
        command -v openssl >/dev/null 2>&1; then
        return 0
    fi
    _ldap_log "installing slapd, ldap-utils and openssl"
    peer_apt_install ldap.sh slapd ldap-utils openssl
}

_ldap_pid() {
    [ -n "${VCTP_LDAP_DIR:-}" ] && [ -s "$VCTP_LDAP_DIR/slapd.pid" ] && cat "$VCTP_LDAP_DIR/slapd.pid"
}

_ldap_dump_log() {
    if [ -n "${VCTP_LDAP_DIR:-}" ]; then
        peer_dump_log ldap.sh "slapd log" "$VCTP_LDAP_DIR/log"
    fi
}

_ldap_conf() {
    local dir="$1"
    cat >"$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
TLSCACertificateFile $dir/ca.pem
TLSCertificateFile $dir/server.pem
TLSCertificateKeyFile $dir/server.key

database mdb
maxsize 33554432
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw $VCTP_LDAP_ROOT_PASSWORD
directory $dir/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member
EOF
}

_ldap_seed() {
    local password="$1" bind_password="$2"
    local base="dc=example,dc=com" users="ou=Users,dc=example,dc=com" groups="ou=Groups,dc=example,dc=com"
    local special="uid=o'neil (ops)\\, jr,$users"
    {
        printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' "$base"
        printf 'dn: ou=Users,%s\nobjectClass: organizationalUnit\nou: Users\n\n' "$base"
        printf 'dn: ou=Groups,%s\nobjectClass: organizationalUnit\nou: Groups\n\n' "$base"
        printf 'dn: cn=reader,%s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: %s\n\n' "$base" "$bind_password"
        local uid
        for uid in alice victor olga paula gus; do
            printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n' \
                "$uid" "$users" "$uid" "$uid" "$uid" "$password"
        done
        printf "dn: %s\nobjectClass: inetOrgPerson\nuid: o'neil (ops), jr\ncn: O'Neil\nsn: O'Neil\nuserPassword: %s\n\n" "$special" "$password"
        printf 'dn: cn=vctp-admins,%s\nobjectClass: groupOfNames\ncn: vctp-admins\nmember: uid=alice,%s\n\n' "$groups" "$users"
        printf 'dn: cn=vctp-viewers,%s\nobjectClass: groupOfNames\ncn: vctp-viewers\nmember: uid=victor,%s\nmember: %s\n\n' "$groups" "$users" "$special"
        printf 'dn: cn=unmapped,%s\nobjectClass: groupOfNames\ncn: unmapped\nmember: uid=olga,%s\n\n' "$groups" "$users"
        printf 'dn: cn=unique-viewers,%s\nobjectClass: groupOfUniqueNames\ncn: unique-viewers\nuniqueMember: uid=gus,%s\n\n' "$groups" "$users"
        printf 'dn: cn=platform-operators,%s\nobjectClass: groupOfNames\ncn: platform-operators\nmember: uid=paula,%s\n\n' "$groups" "$users"
    } | ldapadd -x -H "$VCTP_TEST_LDAP_URL" -D "cn=admin,$base" -w "$VCTP_LDAP_ROOT_PASSWORD" \
        >>"$VCTP_LDAP_DIR/log" 2>&1
}

ldap_start() {
    if [ -n "${VCTP_LDAP_DIR:-}" ] && [ -d "$VCTP_LDAP_DIR" ]; then
        _ldap_log "already started ($VCTP_LDAP_DIR)"
        return 0
    fi
    local timeout="${LDAP_START_TIMEOUT:-30}"
    peer_require_number ldap.sh LDAP_START_TIMEOUT "$timeout" || return 1
    ldap_install || return 1
    local slapd
    slapd="$(_ldap_slapd)" || {
        _ldap_log "slapd not found after installing"
        return 1
    }

    VCTP_LDAP_DIR="$(mktemp -d /tmp/vctp-ldap.XXXX)" || {
        _ldap_log "mktemp failed"
        VCTP_LDAP_DIR=""
        return 1
    }
    chmod 700 "$VCTP_LDAP_DIR"
    mkdir -p "$VCTP_LDAP_DIR/data"
    VCTP_LDAP_ROOT_PASSWORD="root-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
    if ! peer_test_certs "$VCTP_LDAP_DIR" "vctp test LDAP CA" "$VCTP_LDAP_DIR/log"; then
        _ldap_log "could not make the test certificates"
        _ldap_dump_log
        ldap_stop
        return 1
    fi
    _ldap_conf "$VCTP_LDAP_DIR"

    # The free ports can be taken between probing and binding; retry with new ones.
    local port="" tls_port="" attempt ready=0 waited deadline=$((timeout * 10))
    for attempt in 1 2 3 4 5; do
        if ! port="$(peer_free_port)" || ! tls_port="$(peer_free_port)"; then
            _ldap_log "could not find free ports"
            break
        fi
        [ "$port" != "$tls_port" ] || continue
        # slapd daemonizes and writes its pid file; -d 0 would keep it in the foreground.
        "$slapd" -f "$VCTP_LDAP_DIR/slapd.conf" \
            -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tls_port/" >>"$VCTP_LDAP_DIR/log" 2>&1
        waited=0
        while [ "$waited" -lt "$deadline" ]; do
            if ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base >/dev/null 2>&1; then
                ready=1
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        [ "$ready" -eq 1 ] && break
        _ldap_log "start attempt $attempt on ports $port/$tls_port failed"
        _ldap_kill
    done
    if [ "$ready" -ne 1 ]; then
        _ldap_log "slapd failed to start"
        _ldap_dump_log
        ldap_stop
        return 1
    fi

    export VCTP_TEST_LDAP_URL="ldap://127.0.0.1:$port"
    export VCTP_TEST_LDAPS_URL="ldaps://127.0.0.1:$tls_port"
    export VCTP_TEST_LDAP_CA="$VCTP_LDAP_DIR/ca.pem"
    export VCTP_TEST_LDAP_BASE_DN="dc=example,dc=com"
    export VCTP_TEST_LDAP_USER_BASE_DN="ou=Users,dc=example,dc=com"
    export VCTP_TEST_LDAP_GROUP_BASE_DN="ou=Groups,dc=example,dc=com"
    export VCTP_TEST_LDAP_BIND_DN="cn=reader,dc=example,dc=com"
    VCTP_TEST_LDAP_BIND_PASSWORD="reader-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
    VCTP_TEST_LDAP_PASSWORD="pw-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
    export VCTP_TEST_LDAP_BIND_PASSWORD VCTP_TEST_LDAP_PASSWORD
    if ! _ldap_seed "$VCTP_TEST_LDAP_PASSWORD" "$VCTP_TEST_LDAP_BIND_PASSWORD"; then
        _ldap_log "seeding the directory with ldapadd failed"
        _ldap_dump_log
        ldap_stop
        return 1
    fi
    # The seed really works: a user binds over StartTLS and LDAPS, and memberOf is computed.
    if ! LDAPTLS_CACERT="$VCTP_TEST_LDAP_CA" ldapwhoami -x -ZZ -H "$VCTP_TEST_LDAP_URL" \
        -D "uid=alice,$VCTP_TEST_LDAP_USER_BASE_DN" -w "$VCTP_TEST_LDAP_PASSWORD" >/dev/null 2>>"$VCTP_LDAP_DIR/log" ||
        ! LDAPTLS_CACERT="$VCTP_TEST_LDAP_CA" ldapwhoami -x -H "$VCTP_TEST_LDAPS_URL" \
            -D "uid=victor,$VCTP_TEST_LDAP_USER_BASE_DN" -w "$VCTP_TEST_LDAP_PASSWORD" >/dev/null 2>>"$VCTP_LDAP_DIR/log" ||
        ! ldapsearch -x -LLL -H "$VCTP_TEST_LDAP_URL" -b "$VCTP_TEST_LDAP_USER_BASE_DN" "(uid=alice)" memberOf 2>/dev/null |
            grep -qi "^memberOf: cn=vctp-admins"; then
        _ldap_log "the seeded directory does not answer as expected (bind over TLS or memberOf)"
        _ldap_dump_log
        ldap_stop
        return 1
    fi
    _ldap_log "slapd running (pid $(_ldap_pid), dir $VCTP_LDAP_DIR): $VCTP_TEST_LDAP_URL, $VCTP_TEST_LDAPS_URL"
    return 0
}

# Stop the slapd of our pid file, if any, and wait until it is gone.
_ldap_kill() {
    local pid
    pid="$(_ldap_pid)" || return 0
    [ -n "$pid" ] || return 0
    peer_stop_pid ldap.sh "$pid"
    rm -f "$VCTP_LDAP_DIR/slapd.pid"
}

ldap_stop() {
    local dir="${VCTP_LDAP_DIR:-}"
    _ldap_kill
    peer_remove_dir ldap.sh "$dir" /tmp/vctp-ldap.
    VCTP_LDAP_DIR=""
    unset VCTP_TEST_LDAP_URL VCTP_TEST_LDAPS_URL VCTP_TEST_LDAP_CA VCTP_TEST_LDAP_BASE_DN \
        VCTP_TEST_LDAP_USER_BASE_DN VCTP_TEST_LDAP_GROUP_BASE_DN VCTP_TEST_LDAP_BIND_DN \
        VCTP_TEST_LDAP_BIND_PASSWORD VCTP_TEST_LDAP_PASSWORD
    return 0
}
