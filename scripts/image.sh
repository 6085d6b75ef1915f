#!/usr/bin/env bash
#
# Builds the vctp OCI image without Docker, a daemon or a registry, with Debian's umoci (and jq),
# apt-installed when missing. The image has the same layout as the Dockerfile's (checked by
# scripts/image_check.py): the stripped binary at /usr/local/bin/vctp, exactly the shared
# libraries it links (read with ldd) and the dynamic loader, CA certificates, time-zone data,
# /etc/passwd and /etc/group with uid/gid 65532 "nonroot", a writable /tmp (1777) and
# /home/nonroot, USER 65532:65532, ENTRYPOINT ["/usr/local/bin/vctp"], CMD ["--help"] and the
# OCI labels (title, description, version, revision, created, licenses).
#
# Usage (from any directory):
#
#     scripts/image.sh [--binary PATH] [--tag NAME] [--output FILE]
#
#   --binary PATH   the vctp binary (default target/release/vctp, built with
#                   `cargo build --release --locked --bin vctp` when missing)
#   --tag NAME      the image's name (default vctp:<version of Cargo.toml>); a name without a
#                   tag gets :<version>
#   --output FILE   the OCI archive to write (default target/image/vctp-<version>.oci.tar)
#
# The archive is an OCI image layout in a tar (skopeo's oci-archive): load it into a node's
# containerd with `ctr -n k8s.io images import FILE`, or push it with
# `skopeo copy oci-archive:FILE docker://registry.example.com/vctp:0.1.0`. Its index names the
# image twice: io.containerd.image.name (the full name, e.g. docker.io/library/vctp:0.1.0, which
# is how a kubelet spells `vctp:0.1.0`) and org.opencontainers.image.ref.name (the tag).
#
# Environment knobs (optional): SOURCE_DATE_EPOCH fixes the created label and every file's
# mtime (default: the time of the HEAD commit), so two builds of one commit and binary give
# the same layer. Needs root (the files are owned by root and nonroot, as in the image).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() {
    printf 'image.sh: %s\n' "$*" >&2
}
die() {
    log "$*"
    exit 1
}

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
[ -n "$version" ] || die "no version = \"...\" line in $ROOT/Cargo.toml"

binary=""
tag=""
output=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary | --tag | --output)
            [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
            case "$1" in
                --binary) binary="$2" ;;
                --tag) tag="$2" ;;
                --output) output="$2" ;;
            esac
            shift 2
            ;;
        -h | --help)
            sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$1' (usage: scripts/image.sh [--binary PATH] [--tag NAME] [--output FILE])" ;;
    esac
done

[ "$(id -u)" = 0 ] || die "run as root: the image's files are owned by root and by uid 65532"

if [ -z "$binary" ]; then
    binary="$ROOT/target/release/vctp"
    if [ ! -x "$binary" ]; then
        log "no $binary: building it (cargo build --release --locked --bin vctp)"
        (cd "$ROOT" && cargo build --release --locked --bin vctp)
    fi
fi
[ -x "$binary" ] || die "--binary $binary is not an executable file"

# name:tag; the last ':' is a tag separator only when no '/' follows it (registry:port/name).
tag="${tag:-vctp:$version}"
case "${tag##*/}" in
    *:*) ;;
    *) tag="$tag:$version" ;;
esac
case "$tag" in
    *@*) die "--tag $tag: a digest cannot be chosen, it is computed" ;;
esac
name="${tag%:*}"
ref="${tag##*:}"
[[ "$ref" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || die "--tag $tag: '$ref' is not a valid tag"
[[ "$name" =~ ^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$ ]] || die "--tag $tag: '$name' is not a valid image name (lower case, digits, . _ - /)"
# The fully qualified name, as containerd stores what a kubelet asks for (docker.io/library/…).
first="${name%%/*}"
if [ "$first" = "$name" ]; then
    full="docker.io/library/$name:$ref"
elif [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then
    full="$name:$ref"
else
    full="docker.io/$name:$ref"
fi

output="${output:-$ROOT/target/image/vctp-$version.oci.tar}"
mkdir -p "$(dirname "$output")"

for tool in umoci jq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "installing Debian's umoci and jq"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends umoci jq >/dev/null
        break
    fi
done
[ -s /etc/ssl/certs/ca-certificates.crt ] && [ -d /usr/share/zoneinfo ] || {
    log "installing Debian's ca-certificates and tzdata"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates tzdata >/dev/null
}

revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    revision="$revision-dirty"
fi
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

work="$(mktemp -d "${TMPDIR:-/tmp}/vctp-image.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{usr/local/bin,etc/ssl/certs,usr/share,home/nonroot,tmp}

# The binary, without its symbols (the debug build is ~0.5 GB with them).
strip --strip-all -o "$rootfs/usr/local/bin/vctp" "$binary"
chmod 0755 "$rootfs/usr/local/bin/vctp"

# Exactly the libraries the binary links, at the paths the loader looks for them, and the
# loader itself; ldd resolves them (the host built the binary, so it has them).
libs="$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')"
[ -n "$libs" ] || die "ldd found no shared library in $binary (a static binary needs no image of this kind)"
for lib in $libs; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done

cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
cp -a /usr/share/zoneinfo "$rootfs/usr/share/zoneinfo"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
# glibc's lookups: /etc/hosts (the kubelet's) before DNS.
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"

chmod 1777 "$rootfs/tmp"
chown 65532:65532 "$rootfs/home/nonroot"
chmod 0700 "$rootfs/home/nonroot"
find "$rootfs" -exec touch -h -d "@$epoch" {} +

layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:$ref"
umoci insert --image "$layout:$ref" --history.created "$created" --history.created_by "scripts/image.sh" \
    "$rootfs" /
umoci config --image "$layout:$ref" \
    --created "$created" --history.created "$created" --history.created_by "scripts/image.sh" \
    --os linux --architecture amd64 \
    --config.user 65532:65532 \
    --config.workingdir /home/nonroot \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.entrypoint /usr/local/bin/vctp \
    --config.cmd --help \
    --config.label org.opencontainers.image.title=vctp \
    --config.label "org.opencontainers.image.description=vSphere chargeback: hourly VM inventory snapshots, daily and monthly summaries, XLSX reports; Kubernetes operator" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.revision=$revision" \
    --config.label "org.opencontainers.image.created=$created" \
    --config.label org.opencontainers.image.licenses=Apache-2.0
umoci gc --layout "$layout"

# The index entry gets the name containerd's importer reads (ctr has no flag for it).
jq --arg full "$full" --arg ref "$ref" \
    '.manifests |= map(.annotations = {"io.containerd.image.name": $full, "org.opencontainers.image.ref.name": $ref})' \
    "$layout/index.json" >"$work/index.json"
mv "$work/index.json" "$layout/index.json"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$layout" -cf "$output.partial" oci-layout index.json blobs
mv "$output.partial" "$output"

size="$(du -h "$output" | cut -f1)"
log "wrote $output ($size): $full"
log "load it on a node: ctr -n k8s.io images import $output"
log "push it: skopeo copy oci-archive:$output docker://$tag"
