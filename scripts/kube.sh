# shellcheck shell=bash
#
# Private, throw-away Kubernetes control plane for the vctp test suite:
# etcd (Debian's etcd-server 3.4), kube-apiserver and kube-controller-manager
# v1.20.2, built from Debian bookworm's `kubernetes` *source* package (no
# binary of them exists in the registries). kube_start has no kubelet and no
# scheduler: Pods stay Pending, and a test finishes a Job's Pod by patching
# its status (the Job controller then marks the Job Complete).
#
# kube_node_start is the real thing: a one-node cluster (kubelet,
# kube-scheduler, kube-proxy from the same source package, containerd, a
# static pause image) in a network namespace of its own, with its own
# PostgreSQL, S3 server and vCenter simulator on the node's address, so that
# Pods run the vctp image for real. See "The one-node cluster" below; both
# can run at once (scripts/test.sh starts both).
#
# Usage (from bash):
#
#     source scripts/kube.sh
#     trap kube_stop EXIT
#     kube_start          # installs and builds when needed, exports the variables below
#     ...                 # run tests
#     kube_stop           # idempotent; also fine if kube_start never ran
#
#     trap kube_node_stop EXIT
#     kube_node_start     # as root; exports VCTP_TEST_NODE_* (below)
#     kube_node_stop      # idempotent
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
# kube-controller-manager, kubectl, kubelet, kube-scheduler, kube-proxy (one
# `go build`) and the static pause binary into $VCTP_KUBE_CACHE/bin, only when
# they are missing or were built from another recipe). Cold: 465 s measured
# on 2 cores shared with other builds (fetch 5 s, unpack 2 s, gen_openapi
# 22 s, go build of the six 436 s); warm: nothing to do.
#
# Node start times (measured with `time kube_node_start`, binaries cached):
# warm 25-32 s (control plane ~16 s, containerd + pause image <1 s, kubelet
# Ready ~12 s, peers ~2 s); cold = the build above + apt packages + the
# s3s-fs and vcsim builds of their own scripts + the warm start.
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
_KUBE_RECIPE=2
_KUBE_BINARIES=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)
VCTP_KUBE_DIR="${VCTP_KUBE_DIR:-}"
VCTP_KUBE_ETCD_DIR="${VCTP_KUBE_ETCD_DIR:-}"
VCTP_KUBE_ETCD_PID="${VCTP_KUBE_ETCD_PID:-}"
VCTP_KUBE_APISERVER_PID="${VCTP_KUBE_APISERVER_PID:-}"
VCTP_KUBE_CM_PID="${VCTP_KUBE_CM_PID:-}"
export -n VCTP_KUBE_DIR VCTP_KUBE_ETCD_DIR VCTP_KUBE_ETCD_PID VCTP_KUBE_APISERVER_PID VCTP_KUBE_CM_PID
_KUBE_ETCD_URL="${_KUBE_ETCD_URL:-}"
# Where the API server listens and which Service range it serves. kube_start keeps the
# defaults; the node's supervisor (kube_node_start) sets the node's address and ranges.
_KUBE_HOST=127.0.0.1
_KUBE_SERVICE_CIDR=10.0.0.0/24
_KUBE_SERVICE_IP=10.0.0.1
# Set by the node's supervisor: the node's name, for the kubelet's client certificate.
_KUBE_NODE_NAME=""

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
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
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
    for b in "${_KUBE_BINARIES[@]}" pause; do
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

# The node's sandbox ("pause") process: static, from the source package's C file, as upstream
# builds it (build/pause/Makefile).
_kube_build_pause() {
    local build="$1" src="$1/gopath/src/k8s.io/kubernetes/build/pause/linux/pause.c"
    if ! gcc -Os -Wall -Werror -static -DVERSION=v3.4.1 -o "$build/out/pause" "$src" >"$build/pause.log" 2>&1; then
        _kube_log "build: gcc -static pause.c failed:"
        tail -n 20 "$build/pause.log" >&2
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
    _kube_build_pause "$build" || return 1
    _kube_log "build: ${_KUBE_BINARIES[*]} pause done in $(_kube_since "$t") s"

    local b
    for b in "${_KUBE_BINARIES[@]}" pause; do
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

# A CA; the API server's serving certificate (SAN its address, the first
# Service address and the in-cluster names); client certificates for the admin
# (group system:masters) and for the controller manager (the user the built-in
# RBAC roles name); the service-account signing key pair. With a node: client
# certificates for the kubelet (Node authorizer: user system:node:NAME in
# system:nodes), kube-proxy, the scheduler, and the API server towards the kubelet.
_kube_make_certs() {
    local d="$1"
    local client='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
    {
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 \
            -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=vctp test kubernetes CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" &&
            _kube_sign_cert "$d" apiserver "/CN=kube-apiserver" \
                'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:'"$_KUBE_HOST"',IP:'"$_KUBE_SERVICE_IP"',DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' &&
            _kube_sign_cert "$d" admin "/O=system:masters/CN=vctp-admin" "$client" &&
            _kube_sign_cert "$d" controller-manager "/CN=system:kube-controller-manager" "$client" &&
            openssl genrsa -out "$d/sa.key" 2048 &&
            openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" &&
            if [ -n "$_KUBE_NODE_NAME" ]; then
                _kube_sign_cert "$d" kubelet "/O=system:nodes/CN=system:node:$_KUBE_NODE_NAME" "$client" &&
                    _kube_sign_cert "$d" kube-proxy "/CN=system:kube-proxy" "$client" &&
                    _kube_sign_cert "$d" scheduler "/CN=system:kube-scheduler" "$client" &&
                    _kube_sign_cert "$d" apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
            fi
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
        # error every 10 s. A node has a real address: its kubelet is
        # authorized by the Node authorizer, and the API server reaches the
        # kubelet (logs, exec) with its own client certificate.
        local mode_args=(--authorization-mode=RBAC --endpoint-reconciler-type=none)
        if [ -n "$_KUBE_NODE_NAME" ]; then
            mode_args=(
                "--authorization-mode=Node,RBAC" --enable-admission-plugins=NodeRestriction
                --kubelet-client-certificate="$d/apiserver-kubelet.crt"
                --kubelet-client-key="$d/apiserver-kubelet.key"
                --kubelet-preferred-address-types=InternalIP
            )
        fi
        "$(_kube_cache)/bin/kube-apiserver" \
            --etcd-servers="$_KUBE_ETCD_URL" \
            --bind-address="$_KUBE_HOST" --advertise-address="$_KUBE_HOST" \
            --secure-port="$port" --insecure-port=0 \
            --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
            --client-ca-file="$d/ca.crt" \
            --service-account-issuer=https://kubernetes.default.svc.cluster.local \
            --service-account-key-file="$d/sa.pub" \
            --service-account-signing-key-file="$d/sa.key" \
            "${mode_args[@]}" \
            --service-cluster-ip-range="$_KUBE_SERVICE_CIDR" \
            --allow-privileged=true \
            --profiling=false \
            >>"$d/apiserver.log" 2>&1 </dev/null &
        VCTP_KUBE_APISERVER_PID=$!
        export VCTP_TEST_KUBE_SERVER="https://$_KUBE_HOST:$port"
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
        --service-cluster-ip-range="$_KUBE_SERVICE_CIDR" \
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

# ---------------------------------------------------------------------------
# The one-node cluster (kube_node_start / kube_node_stop)
# ---------------------------------------------------------------------------
#
# A whole cluster in a network namespace this script creates: etcd, the API
# server (Node,RBAC), the controller manager, the scheduler, containerd (runc,
# bridge + host-local CNI), the kubelet, kube-proxy (iptables) and the peers
# Pods talk to (PostgreSQL, the S3 server, the vCenter simulator,
# VictoriaMetrics) run inside it,
# on the node's address. Layout of the private 10.N.0.0/22 (N picked so that no
# address or route of the host is in it):
#   10.N.0.1/24  the node (its end of a veth pair); everything listens here
#   10.N.0.2/24  the host's end of the pair: the test reaches the node through it
#   10.N.1.0/24  Pods (bridge vctpbr0, gateway 10.N.1.1)
#   10.N.2.0/24  Services (kube-proxy's iptables rules in the namespace; the host
#                routes 10.N.1.0/24 and 10.N.2.0/24 through the node)
# Nothing listens on, or sends to, any other address: the namespace has no
# default route.
#
# The components run under a supervisor (a bash process in the namespace, in
# a private mount namespace kept by a holder process) so that this shell's
# kube_start/pg_start/... state stays free for the API-server-only tests. The
# kubelet's and containerd's mounts (volumes, rootfs, Pod network namespaces)
# live in that mount namespace and vanish with it. Four kernel settings the
# kubelet insists on changing (vm.overcommit_memory, vm.panic_on_oom,
# kernel.panic, kernel.panic_on_oops: global ones) are shown to it with its
# expected values through bind mounts in that mount namespace, so the host's
# values stay as they are.
#
# Exported by kube_node_start (VCTP_TEST_NODE_ prefix so the API-server-only
# variables above stay untouched):
#   VCTP_TEST_NODE_KUBECONFIG   cluster admin kubeconfig (server https://10.N.0.1:PORT)
#   VCTP_TEST_NODE_KUBECTL      kubectl v1.20.2
#   VCTP_TEST_NODE_NAME         the Node's name
#   VCTP_TEST_NODE_IP           the node's address (10.N.0.1)
#   VCTP_TEST_NODE_POD_CIDR, VCTP_TEST_NODE_SERVICE_CIDR
#   VCTP_TEST_NODE_CTR          a ctr wrapper for the node's containerd (k8s.io
#                               namespace): `"$VCTP_TEST_NODE_CTR" images import FILE`
#   VCTP_TEST_NODE_POSTGRES_URL postgres://postgres@10.N.0.1:PORT/postgres (trusts the Pods)
#   VCTP_TEST_NODE_S3_ENDPOINT, _S3_BUCKET, _S3_ACCESS_KEY, _S3_SECRET_KEY, _S3_REGION
#   VCTP_TEST_NODE_VCSIM_URL, _VCSIM_CA, _VCSIM_USER, _VCSIM_PASSWORD, _VCSIM_VMS
#   VCTP_TEST_NODE_VM_URL       http://10.N.0.1:PORT, an empty VictoriaMetrics single node
#
# Knobs: VCTP_KUBE_CRDS_DIR (as for kube_start), KUBE_NODE_START_TIMEOUT
# (seconds for the whole node, default 300), VCSIM_VMS (default 20 here).
#
# Cleanup (kube_node_stop): the kubelet, kube-proxy and scheduler stop first,
# then every container is killed and deleted through containerd, then
# containerd, the control plane and the peers stop, then the holder (its mount
# namespace goes with it) and the network namespace (the veth pair, the
# bridge and every iptables rule the node made go with it). containerd and the
# CNI plugins still write /run/containerd, /var/lib/cni and /etc/cni/net.d
# whatever their configured directories, and the kubelet writes /var/log/pods
# and /var/log/containers: those that did not exist before are removed, as are
# the /run/netns/cni-* files of the Pods' network namespaces.
#
# Needs root (ip netns, mounts) and, on the first run, the packages containerd,
# runc, containernetworking-plugins, iptables, conntrack, socat and umoci.

_KUBE_NODE_PAUSE_IMAGE=localhost/vctp-pause:3.4.1
_KUBE_NODE_LEFTOVERS=(/run/containerd /var/lib/cni /etc/cni /var/log/pods /var/log/containers)
VCTP_KUBE_NODE_DIR="${VCTP_KUBE_NODE_DIR:-}"
VCTP_KUBE_NODE_NETNS="${VCTP_KUBE_NODE_NETNS:-}"
VCTP_KUBE_NODE_HOLDER_PID="${VCTP_KUBE_NODE_HOLDER_PID:-}"
VCTP_KUBE_NODE_SUPERVISOR_PID="${VCTP_KUBE_NODE_SUPERVISOR_PID:-}"
export -n VCTP_KUBE_NODE_DIR VCTP_KUBE_NODE_NETNS VCTP_KUBE_NODE_HOLDER_PID VCTP_KUBE_NODE_SUPERVISOR_PID
_KUBE_NODE_CREATED=()
_KUBE_NODE_NETNS_BEFORE=""
_KUBE_NODE_HOST_IF=""
_KUBE_NODE_ENV_NAMES=(
    VCTP_TEST_NODE_KUBECONFIG VCTP_TEST_NODE_KUBECTL VCTP_TEST_NODE_NAME VCTP_TEST_NODE_IP
    VCTP_TEST_NODE_POD_CIDR VCTP_TEST_NODE_SERVICE_CIDR VCTP_TEST_NODE_CTR
    VCTP_TEST_NODE_POSTGRES_URL VCTP_TEST_NODE_S3_ENDPOINT VCTP_TEST_NODE_S3_BUCKET
    VCTP_TEST_NODE_S3_ACCESS_KEY VCTP_TEST_NODE_S3_SECRET_KEY VCTP_TEST_NODE_S3_REGION
    VCTP_TEST_NODE_VCSIM_URL VCTP_TEST_NODE_VCSIM_CA VCTP_TEST_NODE_VCSIM_USER
    VCTP_TEST_NODE_VCSIM_PASSWORD VCTP_TEST_NODE_VCSIM_VMS VCTP_TEST_NODE_VM_URL
)

# The node's packages (only when missing), the control plane and node binaries,
# the peers' installs (the namespace has no way out, so nothing may be fetched
# from inside it) and the pause image.
kube_node_install() {
    local missing=()
    command -v containerd >/dev/null 2>&1 || missing+=(containerd)
    command -v runc >/dev/null 2>&1 || missing+=(runc)
    [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
    command -v socat >/dev/null 2>&1 || missing+=(socat)
    command -v umoci >/dev/null 2>&1 || missing+=(umoci)
    command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
    if [ "${#missing[@]}" -gt 0 ]; then
        _kube_log "installing ${missing[*]}"
        peer_apt_install kube.sh "${missing[@]}" || return 1
    fi
    kube_install || return 1
    _pg_ensure_installed || return 1
    s3_install || return 1
    vcsim_build || return 1
    vm_install || return 1
    _kube_node_pause_image
}

# An OCI archive of the pause binary (umoci, no daemon), for `ctr images import`;
# cached next to the binaries.
_kube_node_pause_image() {
    local bin out tmp
    bin="$(_kube_cache)/bin"
    out="$bin/pause-image.tar"
    if [ -f "$out" ] && [ "$out" -nt "$bin/pause" ]; then
        return 0
    fi
    tmp="$(mktemp -d /tmp/vctp-kube-pause.XXXX)" || return 1
    if ! {
        umoci init --layout "$tmp/oci" &&
            umoci new --image "$tmp/oci:3.4.1" &&
            umoci unpack --image "$tmp/oci:3.4.1" "$tmp/bundle" &&
            install -m 0755 "$bin/pause" "$tmp/bundle/rootfs/pause" &&
            umoci repack --image "$tmp/oci:3.4.1" "$tmp/bundle" &&
            umoci config --image "$tmp/oci:3.4.1" --config.entrypoint /pause --config.user 65535:65535 &&
            umoci gc --layout "$tmp/oci" &&
            tar -C "$tmp/oci" -cf "$out.part" . &&
            mv -f "$out.part" "$out"
    } >"$tmp/umoci.log" 2>&1; then
        _kube_log "building the pause image failed:"
        tail -n 20 "$tmp/umoci.log" >&2
        rm -rf -- "$tmp" "$out.part"
        return 1
    fi
    rm -rf -- "$tmp"
}

# Pick N for 10.N.0.0/22 with nothing of the host's addresses or routes in it.
_kube_node_pick_net() {
    local used n
    used="$(ip -4 -o addr show; ip -4 route show table all)"
    for _ in $(seq 1 50); do
        n=$((64 + RANDOM % 180))
        if ! grep -Eq "(^|[^0-9.])10\.$n\.[0-3]\." <<<"$used" &&
            ! grep -Eq "(^|[^0-9.])10\.$n\.0\.0/(8|9|1[0-9]|2[0-2])" <<<"$used" &&
            ! grep -Eq "(^|[^0-9.])10\.0\.0\.0/8" <<<"$used" &&
            ! [ -e "/run/netns/vctp-node-$n" ]; then
            printf '%s\n' "$n"
            return 0
        fi
    done
    _kube_log "no free 10.N.0.0/22 found among the host's addresses and routes"
    return 1
}

# Run a command in the node's network and mount namespaces (nsenter execs it).
_kube_node_exec() {
    nsenter --net="/proc/$VCTP_KUBE_NODE_HOLDER_PID/ns/net" \
        --mount="/proc/$VCTP_KUBE_NODE_HOLDER_PID/ns/mnt" -- "$@"
}

# The namespace, the veth pair, the host's routes and the holder of the private
# mount namespace; the namespace's own sysctls (they are per namespace).
_kube_node_network() {
    local n="$1" ns="vctp-node-$1" host_if="vctpn$1h" node_if="vctpn$1n"
    ip netns add "$ns" || return 1
    VCTP_KUBE_NODE_NETNS="$ns"
    _KUBE_NODE_HOST_IF="$host_if"
    ip link add "$host_if" type veth peer name "$node_if" netns "$ns" &&
        ip addr add "10.$n.0.2/24" dev "$host_if" &&
        ip link set "$host_if" up &&
        ip -n "$ns" link set lo up &&
        ip -n "$ns" addr add "10.$n.0.1/24" dev "$node_if" &&
        ip -n "$ns" link set "$node_if" up &&
        ip route add "10.$n.1.0/24" via "10.$n.0.1" dev "$host_if" &&
        ip route add "10.$n.2.0/24" via "10.$n.0.1" dev "$host_if" || return 1
    ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.all.route_localnet=1 || return 1
    # The bridge's packets through iptables (Service addresses of Pods on the same bridge).
    ip netns exec "$ns" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
        _kube_log "net.bridge.bridge-nf-call-iptables is not available in the namespace; Pod-to-Service traffic on the node may fail"
    # The holder: sleeps in the namespace, in a mount namespace of its own.
    nsenter --net="/run/netns/$ns" -- unshare --mount --propagation private -- sleep infinity </dev/null &
    VCTP_KUBE_NODE_HOLDER_PID=$!
    local i
    for i in $(seq 1 50); do
        if [ "$(readlink "/proc/$VCTP_KUBE_NODE_HOLDER_PID/ns/mnt" 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ] &&
            [ "$(readlink "/proc/$VCTP_KUBE_NODE_HOLDER_PID/exe" 2>/dev/null)" != "$(command -v unshare)" ]; then
            break
        fi
        sleep 0.1
    done
    peer_alive "$VCTP_KUBE_NODE_HOLDER_PID" || return 1
    # What the kubelet would otherwise write into the host's kernel settings.
    local d="$VCTP_KUBE_NODE_DIR/sysctl" k v
    mkdir -p "$d" || return 1
    for k in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1; do
        v="${k#*=}"
        k="${k%=*}"
        printf '%s\n' "$v" >"$d/${k//\//.}" &&
            _kube_node_exec mount --bind "$d/${k//\//.}" "/proc/sys/$k" || return 1
    done
}

# The names of the Pod network namespace files containerd made in /run/netns.
_kube_node_pod_netns() {
    find /run/netns -maxdepth 1 -name 'cni-*' -printf '%f\n' 2>/dev/null | sort
}

kube_node_start() {
    if [ -n "${VCTP_KUBE_NODE_DIR:-}" ] && [ -d "$VCTP_KUBE_NODE_DIR" ]; then
        _kube_log "node already started ($VCTP_KUBE_NODE_DIR)"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        _kube_log "the node needs root (network namespace, mounts)"
        return 1
    fi
    local timeout="${KUBE_NODE_START_TIMEOUT:-300}"
    peer_require_number kube.sh KUBE_NODE_START_TIMEOUT "$timeout" || return 1
    # shellcheck source=scripts/postgres.sh
    source "$_KUBE_ROOT/scripts/postgres.sh"
    # shellcheck source=scripts/s3.sh
    source "$_KUBE_ROOT/scripts/s3.sh"
    # shellcheck source=scripts/vcsim.sh
    source "$_KUBE_ROOT/scripts/vcsim.sh"
    # shellcheck source=scripts/victoriametrics.sh
    source "$_KUBE_ROOT/scripts/victoriametrics.sh"
    kube_node_install || return 1

    local t0 n
    t0="$(date +%s)"
    VCTP_KUBE_NODE_DIR="$(mktemp -d /tmp/vctp-node.XXXX)" || {
        VCTP_KUBE_NODE_DIR=""
        return 1
    }
    chmod 700 "$VCTP_KUBE_NODE_DIR"
    _KUBE_NODE_CREATED=()
    local p
    for p in "${_KUBE_NODE_LEFTOVERS[@]}"; do
        [ -e "$p" ] || _KUBE_NODE_CREATED+=("$p")
    done
    # containerd 1.6 mounts each Pod's network namespace on a file in /run/netns
    # (in the node's mount namespace; the host keeps an empty file).
    _KUBE_NODE_NETNS_BEFORE="$(_kube_node_pod_netns)"
    if ! n="$(_kube_node_pick_net)" || ! _kube_node_network "$n"; then
        _kube_log "setting up the node's network namespace failed"
        kube_node_stop
        return 1
    fi
    # nsenter --mount leaves the supervisor in /: a relative CRD directory
    # is the caller's.
    local crds="${VCTP_KUBE_CRDS_DIR:-}"
    if [ -n "$crds" ] && ! crds="$(cd "$crds" && pwd)"; then
        _kube_log "VCTP_KUBE_CRDS_DIR=$VCTP_KUBE_CRDS_DIR is not a directory"
        kube_node_stop
        return 1
    fi
    # The supervisor: everything else, inside the namespaces. It writes env
    # when the node is Ready and the peers are up, and tears all down on TERM.
    # A plain command, not _kube_node_exec: `$!` must be the supervisor's own pid.
    # shellcheck disable=SC2016 # expanded by the supervisor's bash
    nsenter --net="/proc/$VCTP_KUBE_NODE_HOLDER_PID/ns/net" \
        --mount="/proc/$VCTP_KUBE_NODE_HOLDER_PID/ns/mnt" -- env KUBE_START_TIMEOUT="${KUBE_START_TIMEOUT:-90}" VCSIM_VMS="${VCSIM_VMS:-20}" \
        VCTP_KUBE_CACHE="$(_kube_cache)" VCTP_KUBE_CRDS_DIR="$crds" \
        bash -c 'source "$1/scripts/kube.sh" && _kube_node_supervise "$2" "$3"' \
        kube-node-supervisor "$_KUBE_ROOT" "$VCTP_KUBE_NODE_DIR" "$n" \
        >"$VCTP_KUBE_NODE_DIR/supervisor.log" 2>&1 </dev/null &
    VCTP_KUBE_NODE_SUPERVISOR_PID=$!
    local waited=0
    while ! [ -f "$VCTP_KUBE_NODE_DIR/env" ]; do
        if ! peer_alive "$VCTP_KUBE_NODE_SUPERVISOR_PID" || [ "$waited" -ge "$((timeout * 10))" ]; then
            _kube_log "the node did not come up (timeout ${timeout}s); supervisor log:"
            tail -n 60 "$VCTP_KUBE_NODE_DIR/supervisor.log" >&2 || true
            kube_node_stop
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    set -a
    # shellcheck disable=SC1091
    source "$VCTP_KUBE_NODE_DIR/env"
    set +a
    _kube_log "one-node cluster up in $(_kube_since "$t0") s (netns $VCTP_KUBE_NODE_NETNS, node $VCTP_TEST_NODE_IP, dir $VCTP_KUBE_NODE_DIR)"
}

kube_node_stop() {
    local dir="${VCTP_KUBE_NODE_DIR:-}"
    if [ -n "${VCTP_KUBE_NODE_SUPERVISOR_PID:-}" ]; then
        if peer_alive "$VCTP_KUBE_NODE_SUPERVISOR_PID"; then
            kill -TERM "$VCTP_KUBE_NODE_SUPERVISOR_PID" 2>/dev/null || true
            # It stops containers, containerd, the control plane and the peers in turn.
            for _ in $(seq 1 1200); do
                peer_alive "$VCTP_KUBE_NODE_SUPERVISOR_PID" || break
                sleep 0.1
            done
        fi
        _kube_kill "$VCTP_KUBE_NODE_SUPERVISOR_PID" kube-node-supervisor
    fi
    VCTP_KUBE_NODE_SUPERVISOR_PID=""
    _kube_kill "${VCTP_KUBE_NODE_HOLDER_PID:-}" kube-node-holder
    VCTP_KUBE_NODE_HOLDER_PID=""
    if [ -n "${VCTP_KUBE_NODE_NETNS:-}" ]; then
        # Deleting the namespace deletes the veth pair (and the host's routes through it).
        ip netns delete "$VCTP_KUBE_NODE_NETNS" 2>/dev/null ||
            _kube_log "could not delete network namespace $VCTP_KUBE_NODE_NETNS"
        if [ -n "$_KUBE_NODE_HOST_IF" ] && ip link show "$_KUBE_NODE_HOST_IF" >/dev/null 2>&1; then
            ip link delete "$_KUBE_NODE_HOST_IF" 2>/dev/null || true
        fi
    fi
    VCTP_KUBE_NODE_NETNS=""
    _KUBE_NODE_HOST_IF=""
    local p
    for p in "${_KUBE_NODE_CREATED[@]}"; do
        rm -rf -- "$p" 2>/dev/null || _kube_log "could not remove $p"
    done
    _KUBE_NODE_CREATED=()
    for p in $(_kube_node_pod_netns); do
        grep -qxF "$p" <<<"$_KUBE_NODE_NETNS_BEFORE" || rm -f -- "/run/netns/$p"
    done
    _KUBE_NODE_NETNS_BEFORE=""
    peer_remove_dir kube.sh "$dir" /tmp/vctp-node.
    VCTP_KUBE_NODE_DIR=""
    unset "${_KUBE_NODE_ENV_NAMES[@]}"
    return 0
}

# --- inside the namespaces (the supervisor) ---------------------------------

_KUBE_NODE_CONTAINERD_PID=""
_KUBE_NODE_KUBELET_PID=""
_KUBE_NODE_PROXY_PID=""
_KUBE_NODE_SCHEDULER_PID=""
_KUBE_NODE_VM_PID=""
_KUBE_NODE_VM_PORT=""

# A VictoriaMetrics single node on the node's address (plain HTTP), for MetricsExports.
_kube_node_start_vm() {
    local d="$1" timeout="$2"
    _KUBE_NODE_VM_PORT="$(peer_free_port)" || return 1
    "$_VM_BIN" -httpListenAddr="$_KUBE_HOST:$_KUBE_NODE_VM_PORT" -storageDataPath="$d/vm" \
        -retentionPeriod=100y >>"$d/vm.log" 2>&1 </dev/null &
    _KUBE_NODE_VM_PID=$!
    _kube_wait "$_KUBE_NODE_VM_PID" victoria-metrics "$timeout" \
        curl -sf -m 2 "http://$_KUBE_HOST:$_KUBE_NODE_VM_PORT/health"
}

_kube_node_supervise() {
    local nd="$1" n="$2" timeout="${KUBE_START_TIMEOUT:-90}"
    # shellcheck source=scripts/postgres.sh
    source "$_KUBE_ROOT/scripts/postgres.sh"
    # shellcheck source=scripts/s3.sh
    source "$_KUBE_ROOT/scripts/s3.sh"
    # shellcheck source=scripts/vcsim.sh
    source "$_KUBE_ROOT/scripts/vcsim.sh"
    # shellcheck source=scripts/victoriametrics.sh
    source "$_KUBE_ROOT/scripts/victoriametrics.sh"
    _KUBE_HOST="10.$n.0.1"
    _KUBE_SERVICE_CIDR="10.$n.2.0/24"
    _KUBE_SERVICE_IP="10.$n.2.1"
    _KUBE_NODE_NAME=vctp-node
    export VCTP_PEER_HOST="$_KUBE_HOST"
    trap '_kube_node_down; exit 0' TERM INT
    trap '_kube_node_down' EXIT
    local t0 t
    t0="$(date +%s)"

    kube_start || return 1
    _kube_log "node: control plane up in $(_kube_since "$t0") s"

    local d="$VCTP_KUBE_DIR"
    t="$(date +%s)"
    _kube_node_start_containerd "$d" "$n" "$timeout" || return 1
    _kube_log "node: containerd up in $(_kube_since "$t") s"
    t="$(date +%s)"
    _kube_node_start_node_components "$d" "$n" "$timeout" || return 1
    _kube_log "node: kubelet Ready in $(_kube_since "$t") s"

    t="$(date +%s)"
    if ! pg_start || ! s3_start || ! vcsim_start || ! _kube_node_start_vm "$d" "$timeout"; then
        _kube_log "node: starting the peers failed"
        return 1
    fi
    _kube_log "node: peers up in $(_kube_since "$t") s"

    {
        printf 'VCTP_TEST_NODE_KUBECONFIG=%q\n' "$VCTP_TEST_KUBECONFIG"
        printf 'VCTP_TEST_NODE_KUBECTL=%q\n' "$VCTP_TEST_KUBECTL"
        printf 'VCTP_TEST_NODE_NAME=%q\n' "$_KUBE_NODE_NAME"
        printf 'VCTP_TEST_NODE_IP=%q\n' "$_KUBE_HOST"
        printf 'VCTP_TEST_NODE_POD_CIDR=%q\n' "10.$n.1.0/24"
        printf 'VCTP_TEST_NODE_SERVICE_CIDR=%q\n' "$_KUBE_SERVICE_CIDR"
        printf 'VCTP_TEST_NODE_CTR=%q\n' "$d/ctr"
        printf 'VCTP_TEST_NODE_POSTGRES_URL=%q\n' "$VCTP_TEST_POSTGRES_URL"
        printf 'VCTP_TEST_NODE_S3_ENDPOINT=%q\n' "$VCTP_TEST_S3_ENDPOINT"
        printf 'VCTP_TEST_NODE_S3_BUCKET=%q\n' "$VCTP_TEST_S3_BUCKET"
        printf 'VCTP_TEST_NODE_S3_ACCESS_KEY=%q\n' "$VCTP_TEST_S3_ACCESS_KEY"
        printf 'VCTP_TEST_NODE_S3_SECRET_KEY=%q\n' "$VCTP_TEST_S3_SECRET_KEY"
        printf 'VCTP_TEST_NODE_S3_REGION=%q\n' "$VCTP_TEST_S3_REGION"
        printf 'VCTP_TEST_NODE_VCSIM_URL=%q\n' "$VCTP_TEST_VCSIM_URL"
        printf 'VCTP_TEST_NODE_VCSIM_CA=%q\n' "$VCTP_TEST_VCSIM_CA"
        printf 'VCTP_TEST_NODE_VCSIM_USER=%q\n' "$VCTP_TEST_VCSIM_USER"
        printf 'VCTP_TEST_NODE_VCSIM_PASSWORD=%q\n' "$VCTP_TEST_VCSIM_PASSWORD"
        printf 'VCTP_TEST_NODE_VCSIM_VMS=%q\n' "$VCTP_TEST_VCSIM_VMS"
        printf 'VCTP_TEST_NODE_VM_URL=%q\n' "http://$_KUBE_HOST:$_KUBE_NODE_VM_PORT"
    } >"$nd/env.part" && mv -f "$nd/env.part" "$nd/env" || return 1
    _kube_log "node: all up in $(_kube_since "$t0") s"
    while :; do
        sleep 1 &
        wait $! || true
    done
}

# containerd with the cgroupfs driver, the local pause image as sandbox image,
# OOM score adjustments kept within what a root without CAP_SYS_RESOURCE may
# set, and a bridge + host-local CNI network on the Pod range; state under the
# node's directory. Writes $d/ctr, a ctr wrapper for it.
_kube_node_start_containerd() {
    local d="$1" n="$2" timeout="$3" c="$1/containerd"
    mkdir -p "$c/root" "$c/state" "$c/cni" "$c/ipam" || return 1
    cat >"$c/config.toml" <<TOML || return 1
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$c/sock"
[ttrpc]
  address = "$c/sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$_KUBE_NODE_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$c/cni"
TOML
    cat >"$c/cni/10-vctp-node.conflist" <<JSON || return 1
{
  "cniVersion": "0.4.0",
  "name": "vctp-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "vctpbr0",
      "isGateway": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.$n.1.0/24", "gateway": "10.$n.1.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$c/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
    printf '#!/bin/sh\nexec ctr --address %q --namespace k8s.io "$@"\n' "$c/sock" >"$d/ctr" &&
        chmod 755 "$d/ctr" || return 1
    containerd --config "$c/config.toml" >>"$d/containerd.log" 2>&1 </dev/null &
    _KUBE_NODE_CONTAINERD_PID=$!
    if ! _kube_wait "$_KUBE_NODE_CONTAINERD_PID" containerd "$timeout" "$d/ctr" version; then
        _kube_dump_log containerd
        return 1
    fi
    if ! "$d/ctr" images import --base-name "${_KUBE_NODE_PAUSE_IMAGE%:*}" \
        "$(_kube_cache)/bin/pause-image.tar" >>"$d/containerd.log" 2>&1; then
        _kube_log "importing the pause image failed"
        _kube_dump_log containerd
        return 1
    fi
}

# A kubeconfig for one of the node's users, and the kubelet, the scheduler and
# kube-proxy; waits until the Node is Ready.
_kube_node_start_node_components() {
    local d="$1" n="$2" timeout="$3" server="https://$_KUBE_HOST:${VCTP_TEST_KUBE_SERVER##*:}"
    local user
    for user in kubelet kube-proxy scheduler; do
        _kube_write_kubeconfig "$d" "$user" "$server" "$d/$user.kubeconfig" || return 1
    done
    mkdir -p "$d/kubelet" || return 1
    # Eviction thresholds near zero: the shared disk may well be fuller than the
    # defaults allow. cgroupsPerQOS off: the hugetlb hierarchy is not mounted.
    cat >"$d/kubelet.yaml" <<YAML || return 1
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $_KUBE_HOST
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $d/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
evictionHard: {memory.available: 1Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
volumePluginDir: $d/kubelet/volume-plugins
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
YAML
    "$(_kube_cache)/bin/kubelet" --config="$d/kubelet.yaml" --kubeconfig="$d/kubelet.kubeconfig" \
        --container-runtime=remote --container-runtime-endpoint="unix://$d/containerd/sock" \
        --node-ip="$_KUBE_HOST" --hostname-override="$_KUBE_NODE_NAME" \
        --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" \
        >>"$d/kubelet.log" 2>&1 </dev/null &
    _KUBE_NODE_KUBELET_PID=$!
    "$(_kube_cache)/bin/kube-scheduler" --kubeconfig="$d/scheduler.kubeconfig" \
        --leader-elect=false --port=0 --secure-port=0 --profiling=false \
        >>"$d/scheduler.log" 2>&1 </dev/null &
    _KUBE_NODE_SCHEDULER_PID=$!
    # conntrack limits of 0: kube-proxy leaves the kernel's (global) values alone.
    cat >"$d/kube-proxy.yaml" <<YAML || return 1
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.$n.1.0/24
bindAddress: $_KUBE_HOST
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
hostnameOverride: $_KUBE_NODE_NAME
oomScoreAdj: 0
clientConnection: {kubeconfig: $d/kube-proxy.kubeconfig}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
    "$(_kube_cache)/bin/kube-proxy" --config="$d/kube-proxy.yaml" \
        >>"$d/kube-proxy.log" 2>&1 </dev/null &
    _KUBE_NODE_PROXY_PID=$!
    if ! _kube_wait "$_KUBE_NODE_KUBELET_PID" kubelet "$timeout" _kube_node_ready; then
        _kube_dump_log kubelet
        return 1
    fi
    local pid
    for pid in "$_KUBE_NODE_SCHEDULER_PID:scheduler" "$_KUBE_NODE_PROXY_PID:kube-proxy"; do
        if ! peer_alive "${pid%%:*}"; then
            _kube_log "${pid#*:} exited"
            _kube_dump_log "${pid#*:}"
            return 1
        fi
    done
}

_kube_node_ready() {
    _kube_get "/api/v1/nodes/$_KUBE_NODE_NAME" | tr -d ' \n' |
        grep -q '"type":"Ready","status":"True"'
}

# Stop the node in reverse order (the supervisor's TERM and EXIT trap).
_kube_node_down() {
    trap - TERM INT EXIT
    local d="${VCTP_KUBE_DIR:-}"
    _kube_kill "$_KUBE_NODE_KUBELET_PID" kubelet
    _kube_kill "$_KUBE_NODE_PROXY_PID" kube-proxy
    _kube_kill "$_KUBE_NODE_SCHEDULER_PID" kube-scheduler
    if [ -n "$_KUBE_NODE_CONTAINERD_PID" ] && peer_alive "$_KUBE_NODE_CONTAINERD_PID"; then
        # Every container (and the shim holding it) goes before containerd does.
        local id
        for id in $("$d/ctr" tasks list -q 2>/dev/null); do
            "$d/ctr" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
        done
        for id in $("$d/ctr" tasks list -q 2>/dev/null); do
            for _ in $(seq 1 50); do
                "$d/ctr" tasks delete "$id" >/dev/null 2>&1 && break
                sleep 0.1
            done
        done
        for id in $("$d/ctr" containers list -q 2>/dev/null); do
            "$d/ctr" containers delete "$id" >/dev/null 2>&1 || true
        done
    fi
    _kube_kill "$_KUBE_NODE_CONTAINERD_PID" containerd
    # What the kubelet and containerd left mounted (volumes, sandbox shm, Pod
    # network namespaces), deepest first, so that the directories can go.
    if [ -n "$d" ]; then
        local m
        awk '{ print $5 }' /proc/self/mountinfo | grep -E "^($d|/run/containerd)/" | sort -r |
            while read -r m; do
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
            done
    fi
    _KUBE_NODE_KUBELET_PID=""
    _KUBE_NODE_PROXY_PID=""
    _KUBE_NODE_SCHEDULER_PID=""
    _KUBE_NODE_CONTAINERD_PID=""
    _kube_kill "$_KUBE_NODE_VM_PID" victoria-metrics
    _KUBE_NODE_VM_PID=""
    vcsim_stop
    s3_stop
    pg_stop
    kube_stop
}
