# shellcheck shell=bash
#
# Private, throw-away Kubernetes control plane for the vctp test suite:
# etcd (Debian's etcd-server 3.4), kube-apiserver and kube-controller-manager
# v1.20.2, built from Debian bookworm's `kubernetes` *source* package (no
# binary of them exists in the registries). There is no kubelet and no
# scheduler: Pods stay Pending, and a test finishes a Job's Pod by patching
# its status (the Job controller then marks the Job Complete).
#
# Usage (from bash):
#
#     source scripts/kube.sh
#     trap kube_stop EXIT
#     kube_start          # installs and builds when needed, exports the variables below
#     ...                 # run tests
#     kube_stop           # idempotent; also fine if kube_start never ran
#
# Exported by kube_start:
#   VCTP_TEST_KUBECONFIG    path of a kubeconfig for a cluster admin (client
#                           certificate in system:masters, CA and key inlined)
#   VCTP_TEST_KUBE_SERVER   the API server's URL, https://127.0.0.1:PORT
#   VCTP_TEST_KUBECTL       the kubectl v1.20.2 built alongside (handy for
#                           debugging and `kubectl kustomize`)
#
# Other function: kube_install (apt packages, only when missing; fetches the
# source with a private apt configuration and builds kube-apiserver,
# kube-controller-manager and kubectl into $VCTP_KUBE_CACHE/bin, only when
# they are missing or were built from another recipe). Cold: ~5-8 min on 2
# shared cores; warm: nothing to do.
#
# Custom resource definitions and garbage collection: the controller
# manager's garbage collector re-reads the API's resource list only every
# 30 s, so for a CRD created after it started, owner-reference GC (and
# `propagationPolicy: Foreground/Background` deletes) of the custom objects
# starts working only up to ~30 s later. Tests that need GC of custom
# resources should have their CRDs installed before the controller manager
# starts: set VCTP_KUBE_CRDS_DIR to a directory of CRD manifests (*.yaml,
# *.yml, *.json) and kube_start applies them (kubectl apply --server-side)
# and waits until they are Established before it starts the controller
# manager. Tests that only create CRDs themselves can ignore this.
#
# Environment knobs (all optional):
#   VCTP_KUBE_CACHE          build cache (default $ROOT/target/kube; binaries in bin/)
#   VCTP_KUBE_KEEP_BUILD=1   keep the source tree and Go build cache (~3 GB) in
#                            $VCTP_KUBE_CACHE/build after a successful build
#   VCTP_KUBE_CRDS_DIR       CRD manifests to apply before the controller manager starts
#   KUBE_START_TIMEOUT       seconds to wait for each component (default 90)
#
# State kept between kube_start and kube_stop (shell variables, not exported;
# do not set by hand):
#   VCTP_KUBE_DIR            the temp directory (certs, kubeconfigs, logs)
#   VCTP_KUBE_ETCD_DIR       etcd's data directory: a second temp directory,
#                            on the /dev/shm tmpfs when there is one
#   VCTP_KUBE_ETCD_PID, VCTP_KUBE_APISERVER_PID, VCTP_KUBE_CM_PID
#
# This file is meant to be sourced; it does not change the caller's shell
# options (set -e/-u/-o pipefail work either way). It never uses pkill or
# killall: it stops exactly the processes it started.

# shellcheck source=scripts/peer-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peer-lib.sh"

_KUBE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The upstream release inside Debian's source package
# (kubernetes 1.20.5+really1.20.2-1.1+deb12u1 in bookworm).
_KUBE_UPSTREAM=v1.20.2
_KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
# Bump when the build steps change, so cached binaries are rebuilt.
_KUBE_RECIPE=1
_KUBE_BINARIES=(kube-apiserver kube-controller-manager kubectl)
VCTP_KUBE_DIR="${VCTP_KUBE_DIR:-}"
VCTP_KUBE_ETCD_DIR="${VCTP_KUBE_ETCD_DIR:-}"
VCTP_KUBE_ETCD_PID="${VCTP_KUBE_ETCD_PID:-}"
VCTP_KUBE_APISERVER_PID="${VCTP_KUBE_APISERVER_PID:-}"
VCTP_KUBE_CM_PID="${VCTP_KUBE_CM_PID:-}"
export -n VCTP_KUBE_DIR VCTP_KUBE_ETCD_DIR VCTP_KUBE_ETCD_PID VCTP_KUBE_APISERVER_PID VCTP_KUBE_CM_PID
_KUBE_ETCD_URL="${_KUBE_ETCD_URL:-}"

_kube_log() {
    printf 'kube.sh: %s\n' "$*" >&2
}

_kube_cache() {
    printf '%s\n' "${VCTP_KUBE_CACHE:-$_KUBE_ROOT/target/kube}"
}

# ---------------------------------------------------------------------------
# Installing and building
# ---------------------------------------------------------------------------

# Install the Debian packages the build and the control plane need, if any
# is missing (idempotent).
_kube_apt_install() {
    local missing=()
    command -v go >/dev/null 2>&1 || missing+=(golang-go)
    command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
    command -v rsync >/dev/null 2>&1 || missing+=(rsync)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    _kube_log "installing ${missing[*]}"
    peer_apt_install kube.sh "${missing[@]}" || return 1
    local tool
    for tool in go etcd rsync openssl make curl; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            _kube_log "packages installed but $tool is still missing"
            return 1
        fi
    done
}

# What the cached binaries were built from. Deliberately offline: a warm
# start must not need the package registry.
_kube_fingerprint() {
    printf 'kubernetes %s recipe %s %s\n' "$_KUBE_UPSTREAM" "$_KUBE_RECIPE" "$(go version)"
}

# True when every binary is in the cache and was built by this recipe.
_kube_cached() {
    local bin stamp b
    bin="$(_kube_cache)/bin"
    stamp="$bin/build.stamp"
    [ -f "$stamp" ] || return 1
    for b in "${_KUBE_BINARIES[@]}"; do
        [ -x "$bin/$b" ] || return 1
    done
    [ "$(head -n 1 "$stamp")" = "$(_kube_fingerprint)" ]
}

# deb and deb-src lines for this release's suites (bookworm, bookworm-updates,
# bookworm-security) from the machine's own apt sources, one-line format.
_kube_apt_sources() {
    local codename=""
    if [ -r /etc/os-release ]; then
        codename="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')"
    fi
    [ -n "$codename" ] || codename=bookworm
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v cn="$codename" '
            /^[[:space:]]*deb[[:space:]]/ {
                line = $0
                sub(/^[[:space:]]*deb[[:space:]]+/, "", line)
                opts = ""
                if (line ~ /^\[/) {
                    opts = substr(line, 1, index(line, "]")) " "
                    line = substr(line, index(line, "]") + 1)
                }
                n = split(line, w, /[[:space:]]+/)
                k = (w[1] == "") ? 2 : 1
                suite = w[k + 1]
                if (suite == cn || index(suite, cn "-") == 1) {
                    rest = ""
                    for (i = k + 2; i <= n; i++) rest = rest " " w[i]
                    print "deb " opts w[k] " " suite rest
                    print "deb-src " opts w[k] " " suite rest
                }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v cn="$codename" '
            function flush(   n, m, i, j, U, S, opt) {
                if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && tolower(enabled) != "no") {
                    n = split(uris, U, /[[:space:]]+/)
                    m = split(suites, S, /[[:space:]]+/)
                    opt = (signed != "") ? "[signed-by=" signed "] " : ""
                    for (i = 1; i <= n; i++)
                        for (j = 1; j <= m; j++)
                            if (U[i] != "" && (S[j] == cn || index(S[j], cn "-") == 1)) {
                                print "deb " opt U[i] " " S[j] " " comps
                                print "deb-src " opt U[i] " " S[j] " " comps
                            }
                }
                types = uris = suites = comps = signed = enabled = ""
            }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            /^[A-Za-z-]+:/ {
                key = tolower(substr($0, 1, index($0, ":") - 1))
                val = substr($0, index($0, ":") + 1)
                gsub(/^[[:space:]]+|[[:space:]]+$/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "components") comps = val
                else if (key == "signed-by") signed = val
                else if (key == "enabled") enabled = val
            }
            END { flush() }' "$f"
    done
}

# Fetch Debian's kubernetes source package and the two Go libraries that
# replace its vendored copies, with a private apt configuration (own source
# list, lists and cache under $build/apt): the machine's sources stay untouched.
_kube_fetch() {
    local build="$1" apt="$1/apt" dl="$1/dl"
    if [ -f "$dl/.done" ]; then
        _kube_log "fetch: already downloaded ($dl)"
        return 0
    fi
    rm -rf -- "$apt" "$dl"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dl" || return 1
    _kube_apt_sources >"$apt/sources.list"
    if ! [ -s "$apt/sources.list" ]; then
        _kube_log "fetch: no bookworm entries in /etc/apt/sources.list{,.d/*}; using deb.debian.org"
        local k=/usr/share/keyrings/debian-archive-keyring.gpg
        printf '%s\n' \
            "deb [signed-by=$k] http://deb.debian.org/debian bookworm main" \
            "deb-src [signed-by=$k] http://deb.debian.org/debian bookworm main" \
            "deb [signed-by=$k] http://deb.debian.org/debian bookworm-updates main" \
            "deb-src [signed-by=$k] http://deb.debian.org/debian bookworm-updates main" \
            "deb [signed-by=$k] http://deb.debian.org/debian-security bookworm-security main" \
            "deb-src [signed-by=$k] http://deb.debian.org/debian-security bookworm-security main" \
            >"$apt/sources.list"
    fi
    local opts=(
        -o "Dir::Etc::SourceList=$apt/sources.list"
        -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists"
        -o "Dir::Cache=$apt/cache"
        -o APT::Sandbox::User=root
    )
    if ! apt-get "${opts[@]}" update -qq >"$build/apt.log" 2>&1; then
        _kube_log "fetch: private apt-get update failed:"
        tail -n 20 "$build/apt.log" >&2
        return 1
    fi
    if ! (cd "$dl" && apt-get "${opts[@]}" source --download-only kubernetes) >>"$build/apt.log" 2>&1; then
        _kube_log "fetch: apt-get source --download-only kubernetes failed:"
        tail -n 20 "$build/apt.log" >&2
        return 1
    fi
    if ! (cd "$dl" && apt-get "${opts[@]}" download \
        golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev) >>"$build/apt.log" 2>&1; then
        _kube_log "fetch: apt-get download of reflect2/json-iterator failed:"
        tail -n 20 "$build/apt.log" >&2
        return 1
    fi
    : >"$dl/.done"
}

# Unpack the upstream tarball into a private GOPATH and swap the vendored
# reflect2 v1.0.1 (crashes with Go >= 1.18 on the first JSON map, e.g. a CRD
# create) and json-iterator for Debian's reflect2 1.0.2 and json-iterator
# 1.1.12, as upstream did later.
_kube_unpack() {
    local build="$1" dl="$1/dl" tree="$1/gopath/src/k8s.io/kubernetes"
    if [ -f "$tree/.vctp-unpacked" ]; then
        _kube_log "unpack: already unpacked ($tree)"
        return 0
    fi
    local orig
    orig="$(find "$dl" -maxdepth 1 -name 'kubernetes_*.orig.tar.*' | head -n 1)"
    if [ -z "$orig" ]; then
        _kube_log "unpack: no kubernetes_*.orig.tar.* in $dl"
        return 1
    fi
    rm -rf -- "$tree" "$build/debs"
    mkdir -p "$tree" "$build/debs" || return 1
    if ! tar -xf "$orig" -C "$tree" --strip-components=1; then
        _kube_log "unpack: tar -xf $orig failed"
        return 1
    fi
    if ! [ -f "$tree/cmd/kube-apiserver/apiserver.go" ]; then
        _kube_log "unpack: $orig does not look like the Kubernetes tree"
        return 1
    fi
    local deb
    for deb in "$dl"/golang-github-modern-go-reflect2-dev_*.deb "$dl"/golang-github-json-iterator-go-dev_*.deb; do
        if ! [ -f "$deb" ] || ! dpkg -x "$deb" "$build/debs"; then
            _kube_log "unpack: dpkg -x $deb failed"
            return 1
        fi
    done
    local pkg src
    for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
        src="$build/debs/usr/share/gocode/src/$pkg"
        if ! [ -d "$src" ]; then
            _kube_log "unpack: $src missing from the Debian package"
            return 1
        fi
        rm -rf -- "$tree/vendor/$pkg"
        # -L: Debian's -dev packages may hold symlinks into /usr/share.
        if ! cp -RL "$src" "$tree/vendor/$pkg"; then
            _kube_log "unpack: copying $pkg into vendor/ failed"
            return 1
        fi
    done
    : >"$tree/.vctp-unpacked"
}

# Environment for every Go step: GOPATH mode (module mode with -mod=vendor
# fails on this tree), no proxy, static binaries, a private build cache.
_kube_go_env() {
    local build="$1"
    printf '%s\n' \
        "GOPATH=$build/gopath" \
        "GOCACHE=$build/gocache" \
        GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
        "KUBE_GIT_VERSION=$_KUBE_UPSTREAM" \
        "KUBE_GIT_COMMIT=$_KUBE_GIT_COMMIT" \
        KUBE_GIT_TREE_STATE=clean
}

# pkg/generated/openapi/zz_generated.openapi.go is not in the tarball; without
# it the build ends in "undefined: openapi.GetOpenAPIDefinitions".
_kube_gen_openapi() {
    local build="$1" tree="$1/gopath/src/k8s.io/kubernetes"
    if [ -f "$tree/pkg/generated/openapi/zz_generated.openapi.go" ]; then
        _kube_log "gen_openapi: already generated"
        return 0
    fi
    local env_args=()
    mapfile -t env_args < <(_kube_go_env "$build")
    if ! (cd "$tree" && env "${env_args[@]}" make gen_openapi) >"$build/gen_openapi.log" 2>&1; then
        _kube_log "gen_openapi: make gen_openapi failed:"
        tail -n 40 "$build/gen_openapi.log" >&2
        return 1
    fi
    if ! [ -f "$tree/pkg/generated/openapi/zz_generated.openapi.go" ]; then
        _kube_log "gen_openapi: make gen_openapi did not write zz_generated.openapi.go"
        tail -n 40 "$build/gen_openapi.log" >&2
        return 1
    fi
}

_kube_go_build() {
    local build="$1" tree="$1/gopath/src/k8s.io/kubernetes" out="$1/out"
    local env_args=()
    mapfile -t env_args < <(_kube_go_env "$build")
    local v=k8s.io/kubernetes/vendor/k8s.io
    local ldflags="-s -w" pkg
    for pkg in "$v/component-base/version" "$v/client-go/pkg/version"; do
        ldflags+=" -X $pkg.gitVersion=$_KUBE_UPSTREAM"
        ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
        ldflags+=" -X $pkg.gitCommit=$_KUBE_GIT_COMMIT -X $pkg.gitTreeState=clean"
        ldflags+=" -X $pkg.buildDate=2021-01-13T13:20:00Z"
    done
    rm -rf -- "$out"
    mkdir -p "$out" || return 1
    local targets=() b
    for b in "${_KUBE_BINARIES[@]}"; do
        targets+=("./cmd/$b")
    done
    # One `go build` for all three: they share most packages.
    if ! (cd "$tree" && env "${env_args[@]}" go build -ldflags "$ldflags" -o "$out/" "${targets[@]}") \
        >"$build/go-build.log" 2>&1; then
        _kube_log "build: go build failed:"
        tail -n 40 "$build/go-build.log" >&2
        return 1
    fi
}

# Seconds since $1 (a `date +%s`), for the phase timings.
_kube_since() {
    printf '%s' "$(($(date +%s) - $1))"
}

kube_install() {
    _kube_apt_install || return 1
    if _kube_cached; then
        return 0
    fi
    local cache build t0 t
    cache="$(_kube_cache)"
    build="$cache/build"
    mkdir -p "$build" "$cache/bin" || return 1
    t0="$(date +%s)"
    _kube_log "building Kubernetes $_KUBE_UPSTREAM from Debian's source package into $cache/bin (~5-8 min on 2 cores)"

    t="$(date +%s)"
    _kube_fetch "$build" || return 1
    _kube_log "fetch: done in $(_kube_since "$t") s"

    t="$(date +%s)"
    _kube_unpack "$build" || return 1
    _kube_log "unpack: done in $(_kube_since "$t") s"

    t="$(date +%s)"
    _kube_gen_openapi "$build" || return 1
    _kube_log "gen_openapi: done in $(_kube_since "$t") s"

    t="$(date +%s)"
    _kube_go_build "$build" || return 1
    _kube_log "build: ${_KUBE_BINARIES[*]} done in $(_kube_since "$t") s"

    local b
    for b in "${_KUBE_BINARIES[@]}"; do
        mv -f "$build/out/$b" "$cache/bin/$b" || return 1
    done
    {
        _kube_fingerprint
        printf 'from %s\n' "$(cd "$build/dl" && ls kubernetes_*.dsc 2>/dev/null)"
    } >"$cache/bin/build.stamp"
    if [ "${VCTP_KUBE_KEEP_BUILD:-0}" != 1 ]; then
        rm -rf -- "$build"
    fi
    _kube_log "installed ${_KUBE_BINARIES[*]} in $cache/bin; whole build took $(_kube_since "$t0") s"
}

# ---------------------------------------------------------------------------
# Starting and stopping
# ---------------------------------------------------------------------------

# Last lines of one component's log ($1: etcd, apiserver, controller-manager).
_kube_dump_log() {
    local f="${VCTP_KUBE_DIR:-}/$1.log"
    if [ -n "${VCTP_KUBE_DIR:-}" ] && [ -f "$f" ]; then
        _kube_log "----- last lines of the $1 log ($f) -----"
        tail -n 40 "$f" >&2 || true
        _kube_log "----- end of $1 log -----"
    fi
}

# Stop one process (TERM, then KILL after 10 s) and wait until it is gone.
_kube_kill() {
    local pid="$1" name="$2"
    [ -n "$pid" ] || return 0
    if peer_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            peer_alive "$pid" || break
            sleep 0.1
        done
        if peer_alive "$pid"; then
            _kube_log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # Reap it (it is our child when started from this shell) so that
    # `kill -0` fails once we return.
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
}

# A CA; the API server's serving certificate (SAN 127.0.0.1 and the
# in-cluster names); client certificates for the admin (group
# system:masters) and for the controller manager (the user the built-in RBAC
# roles name); the service-account signing key pair.
_kube_make_certs() {
    local d="$1"
    local client='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
    {
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 \
            -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=vctp test kubernetes CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" &&
            _kube_sign_cert "$d" apiserver "/CN=kube-apiserver" \
                'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' &&
            _kube_sign_cert "$d" admin "/O=system:masters/CN=vctp-admin" "$client" &&
            _kube_sign_cert "$d" controller-manager "/CN=system:kube-controller-manager" "$client" &&
            openssl genrsa -out "$d/sa.key" 2048 &&
            openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub"
    } >"$d/openssl.log" 2>&1
}

# A key and a certificate signed by the test CA: dir, name, subject, extensions.
_kube_sign_cert() {
    local d="$1" name="$2"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$d/$name.key" -out "$d/$name.csr" -subj "$3" &&
        printf '%b' "$4" >"$d/$name.ext" &&
        openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -CAcreateserial -days 7 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt"
}

# Write a kubeconfig for one client certificate, everything inlined.
_kube_write_kubeconfig() {
    local d="$1" user="$2" server="$3" out="$4"
    local ca crt key
    ca="$(base64 -w0 <"$d/ca.crt")" &&
        crt="$(base64 -w0 <"$d/$user.crt")" &&
        key="$(base64 -w0 <"$d/$user.key")" || return 1
    cat >"$out" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: vctp-test
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: $user
  user:
    client-certificate-data: $crt
    client-key-data: $key
contexts:
- name: vctp-test
  context:
    cluster: vctp-test
    user: $user
    namespace: default
current-context: vctp-test
KUBECONFIG
    chmod 600 "$out"
}

# GET a path from the API server as the admin; prints the body.
_kube_get() {
    curl -sS -f -m 5 --cacert "$VCTP_KUBE_DIR/ca.crt" \
        --cert "$VCTP_KUBE_DIR/admin.crt" --key "$VCTP_KUBE_DIR/admin.key" \
        "$VCTP_TEST_KUBE_SERVER$1" 2>/dev/null
}

# Poll a check (a command) until it succeeds, the process dies or time runs out.
_kube_wait() {
    local pid="$1" name="$2" timeout="$3"
    shift 3
    local waited=0 deadline=$((timeout * 10))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ! peer_alive "$pid"; then
            _kube_log "$name exited before it was ready"
            return 2
        fi
        if [ "$waited" -ge "$deadline" ]; then
            _kube_log "$name was not ready after ${timeout}s (raise KUBE_START_TIMEOUT?)"
            return 1
        fi
        sleep 0.2
        waited=$((waited + 2))
    done
}

_kube_etcd_healthy() {
    curl -sS -f -m 2 "http://127.0.0.1:$1/health" 2>/dev/null | grep -q '"health":"true"'
}

_kube_apiserver_ready() {
    [ "$(_kube_get /readyz)" = ok ]
}

# The controller manager's service-account controller creates the `default`
# ServiceAccount of every namespace: once it exists, the controllers run.
_kube_controllers_running() {
    _kube_get /api/v1/namespaces/default/serviceaccounts/default | grep -q '"name": *"default"'
}

_kube_start_etcd() {
    local timeout="$1" attempt client peer rc
    for attempt in 1 2 3 4 5; do
        if ! client="$(peer_free_port)" || ! peer="$(peer_free_port)"; then
            _kube_log "could not find free ports"
            return 1
        fi
        if [ -z "$client" ] || [ -z "$peer" ] || [ "$client" = "$peer" ]; then
            continue
        fi
        rm -rf -- "${VCTP_KUBE_ETCD_DIR:?}/data"
        etcd --name vctp-test --data-dir "$VCTP_KUBE_ETCD_DIR/data" \
            --listen-client-urls "http://127.0.0.1:$client" \
            --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$peer" \
            --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
            --initial-cluster "vctp-test=http://127.0.0.1:$peer" \
            --logger zap --log-outputs stderr \
            >>"$VCTP_KUBE_DIR/etcd.log" 2>&1 </dev/null &
        VCTP_KUBE_ETCD_PID=$!
        rc=0
        _kube_wait "$VCTP_KUBE_ETCD_PID" etcd "$timeout" _kube_etcd_healthy "$client" || rc=$?
        if [ "$rc" -eq 0 ]; then
            _KUBE_ETCD_URL="http://127.0.0.1:$client"
            return 0
        fi
        [ "$rc" -eq 2 ] || return 1
        _kube_log "etcd start attempt $attempt (ports $client/$peer) failed"
        _kube_kill "$VCTP_KUBE_ETCD_PID" etcd
        VCTP_KUBE_ETCD_PID=""
    done
    return 1
}

_kube_start_apiserver() {
    local timeout="$1" attempt port rc d="$VCTP_KUBE_DIR"
    for attempt in 1 2 3 4 5; do
        if ! port="$(peer_free_port)" || [ -z "$port" ]; then
            _kube_log "could not find a free port"
            return 1
        fi
        # --insecure-port=0: 1.20 otherwise also serves plain HTTP on 127.0.0.1:8080.
        # --endpoint-reconciler-type=none: the `kubernetes` Service's Endpoints
        # may not hold a loopback address, and the reconciler would log that
        # error every 10 s.
        "$(_kube_cache)/bin/kube-apiserver" \
            --etcd-servers="$_KUBE_ETCD_URL" \
            --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
            --secure-port="$port" --insecure-port=0 \
            --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
            --client-ca-file="$d/ca.crt" \
            --service-account-issuer=https://kubernetes.default.svc.cluster.local \
            --service-account-key-file="$d/sa.pub" \
            --service-account-signing-key-file="$d/sa.key" \
            --authorization-mode=RBAC \
            --service-cluster-ip-range=10.0.0.0/24 \
            --endpoint-reconciler-type=none \
            --allow-privileged=true \
            --profiling=false \
            >>"$d/apiserver.log" 2>&1 </dev/null &
        VCTP_KUBE_APISERVER_PID=$!
        export VCTP_TEST_KUBE_SERVER="https://127.0.0.1:$port"
        rc=0
        _kube_wait "$VCTP_KUBE_APISERVER_PID" kube-apiserver "$timeout" _kube_apiserver_ready || rc=$?
        [ "$rc" -eq 0 ] && return 0
        [ "$rc" -eq 2 ] || return 1
        _kube_log "kube-apiserver start attempt $attempt (port $port) failed"
        _kube_kill "$VCTP_KUBE_APISERVER_PID" kube-apiserver
        VCTP_KUBE_APISERVER_PID=""
        # Port in use? Try another one; anything else would fail again.
        grep -q 'address already in use' "$d/apiserver.log" || return 1
    done
    return 1
}

# Apply the CRD manifests of VCTP_KUBE_CRDS_DIR and wait until they are
# Established (before the controller manager starts: see the header).
_kube_apply_crds() {
    local dir="$1" timeout="$2" kubectl
    kubectl="$(_kube_cache)/bin/kubectl"
    if ! [ -d "$dir" ]; then
        _kube_log "VCTP_KUBE_CRDS_DIR=$dir is not a directory"
        return 1
    fi
    local files=()
    mapfile -t files < <(find "$dir" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort)
    if [ "${#files[@]}" -eq 0 ]; then
        _kube_log "no CRD manifests (*.yaml, *.yml, *.json) in $dir; nothing to apply"
        return 0
    fi
    local f
    for f in "${files[@]}"; do
        # create, not apply: the cluster is fresh, client-side apply stores
        # the whole object in an annotation (which large CRDs overflow), and
        # server-side apply on 1.20 refuses fields it does not know, such as
        # x-kubernetes-validations (CEL, 1.25+), which a plain create drops
        # silently as every API server before 1.25 does. --validate=false:
        # kubectl 1.20's client-side schema refuses that field too.
        if ! "$kubectl" --kubeconfig "$VCTP_TEST_KUBECONFIG" create \
            --validate=false -f "$f" >>"$VCTP_KUBE_DIR/crds.log" 2>&1; then
            _kube_log "applying $f failed:"
            tail -n 20 "$VCTP_KUBE_DIR/crds.log" >&2
            return 1
        fi
    done
    if ! "$kubectl" --kubeconfig "$VCTP_TEST_KUBECONFIG" wait --for=condition=Established \
        customresourcedefinitions --all --timeout="${timeout}s" >>"$VCTP_KUBE_DIR/crds.log" 2>&1; then
        _kube_log "the CRDs of $dir did not become Established:"
        tail -n 20 "$VCTP_KUBE_DIR/crds.log" >&2
        return 1
    fi
    _kube_log "applied ${#files[@]} CRD manifest(s) from $dir"
}

_kube_start_controller_manager() {
    local timeout="$1" d="$VCTP_KUBE_DIR" rc=0
    # --port=0 --secure-port=0: no health endpoints to collide with other
    # runs (1.20 would serve plain HTTP on 10252); readiness is seen through
    # the API. No leader election: there is only one.
    "$(_kube_cache)/bin/kube-controller-manager" \
        --kubeconfig="$d/controller-manager.kubeconfig" \
        --controllers='*' \
        --use-service-account-credentials=true \
        --service-account-private-key-file="$d/sa.key" \
        --root-ca-file="$d/ca.crt" \
        --cluster-signing-cert-file="$d/ca.crt" --cluster-signing-key-file="$d/ca.key" \
        --service-cluster-ip-range=10.0.0.0/24 \
        --leader-elect=false \
        --port=0 --secure-port=0 \
        --profiling=false \
        >>"$d/controller-manager.log" 2>&1 </dev/null &
    VCTP_KUBE_CM_PID=$!
    _kube_wait "$VCTP_KUBE_CM_PID" kube-controller-manager "$timeout" _kube_controllers_running || rc=$?
    return "$rc"
}

kube_start() {
    if [ -n "${VCTP_KUBE_DIR:-}" ] && [ -d "$VCTP_KUBE_DIR" ]; then
        _kube_log "already started ($VCTP_KUBE_DIR)"
        return 0
    fi
    local timeout="${KUBE_START_TIMEOUT:-90}"
    peer_require_number kube.sh KUBE_START_TIMEOUT "$timeout" || return 1

    kube_install || return 1

    local t0 t
    t0="$(date +%s)"
    VCTP_KUBE_DIR="$(mktemp -d /tmp/vctp-kube.XXXX)" || {
        _kube_log "mktemp failed"
        VCTP_KUBE_DIR=""
        return 1
    }
    chmod 700 "$VCTP_KUBE_DIR"
    # etcd syncs its WAL on every write; on tmpfs that costs nothing.
    local etcd_parent=/tmp
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        etcd_parent=/dev/shm
    fi
    VCTP_KUBE_ETCD_DIR="$(mktemp -d "$etcd_parent/vctp-kube-etcd.XXXX")" || {
        _kube_log "mktemp in $etcd_parent failed"
        VCTP_KUBE_ETCD_DIR=""
        kube_stop
        return 1
    }
    chmod 700 "$VCTP_KUBE_ETCD_DIR"
    if ! _kube_make_certs "$VCTP_KUBE_DIR"; then
        _kube_log "openssl failed:"
        cat "$VCTP_KUBE_DIR/openssl.log" >&2 || true
        kube_stop
        return 1
    fi

    t="$(date +%s)"
    if ! _kube_start_etcd "$timeout"; then
        _kube_log "etcd failed to start"
        _kube_dump_log etcd
        kube_stop
        return 1
    fi
    _kube_log "etcd up in $(_kube_since "$t") s ($_KUBE_ETCD_URL, pid $VCTP_KUBE_ETCD_PID)"

    t="$(date +%s)"
    if ! _kube_start_apiserver "$timeout"; then
        _kube_log "kube-apiserver failed to start"
        _kube_dump_log apiserver
        kube_stop
        return 1
    fi
    _kube_log "kube-apiserver ready in $(_kube_since "$t") s ($VCTP_TEST_KUBE_SERVER, pid $VCTP_KUBE_APISERVER_PID)"

    local kubeconfig="$VCTP_KUBE_DIR/kubeconfig"
    if ! _kube_write_kubeconfig "$VCTP_KUBE_DIR" admin "$VCTP_TEST_KUBE_SERVER" "$kubeconfig" ||
        ! _kube_write_kubeconfig "$VCTP_KUBE_DIR" controller-manager "$VCTP_TEST_KUBE_SERVER" \
            "$VCTP_KUBE_DIR/controller-manager.kubeconfig"; then
        _kube_log "writing the kubeconfigs failed"
        kube_stop
        return 1
    fi
    export VCTP_TEST_KUBECONFIG="$kubeconfig"

    if [ -n "${VCTP_KUBE_CRDS_DIR:-}" ]; then
        if ! _kube_apply_crds "$VCTP_KUBE_CRDS_DIR" "$timeout"; then
            kube_stop
            return 1
        fi
    fi

    t="$(date +%s)"
    if ! _kube_start_controller_manager "$timeout"; then
        _kube_log "kube-controller-manager failed to start"
        _kube_dump_log controller-manager
        kube_stop
        return 1
    fi
    _kube_log "kube-controller-manager running in $(_kube_since "$t") s (pid $VCTP_KUBE_CM_PID)"

    VCTP_TEST_KUBECTL="$(_kube_cache)/bin/kubectl"
    export VCTP_TEST_KUBECTL
    _kube_log "Kubernetes $_KUBE_UPSTREAM control plane up in $(_kube_since "$t0") s (dir $VCTP_KUBE_DIR): $VCTP_TEST_KUBE_SERVER, kubeconfig $VCTP_TEST_KUBECONFIG"
    return 0
}

kube_stop() {
    local dir="${VCTP_KUBE_DIR:-}" etcd_dir="${VCTP_KUBE_ETCD_DIR:-}"
    # Controllers first, then the API server, then its storage.
    _kube_kill "${VCTP_KUBE_CM_PID:-}" kube-controller-manager
    VCTP_KUBE_CM_PID=""
    _kube_kill "${VCTP_KUBE_APISERVER_PID:-}" kube-apiserver
    VCTP_KUBE_APISERVER_PID=""
    _kube_kill "${VCTP_KUBE_ETCD_PID:-}" etcd
    VCTP_KUBE_ETCD_PID=""

    peer_remove_dir kube.sh "$dir" /tmp/vctp-kube.
    peer_remove_dir kube.sh "$etcd_dir" /dev/shm/vctp-kube-etcd. /tmp/vctp-kube-etcd.

    VCTP_KUBE_DIR=""
    VCTP_KUBE_ETCD_DIR=""
    _KUBE_ETCD_URL=""
    unset VCTP_TEST_KUBECONFIG VCTP_TEST_KUBE_SERVER VCTP_TEST_KUBECTL
    return 0
}
