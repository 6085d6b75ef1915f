#!/usr/bin/env python3
"""The image's test: builds it with scripts/image.sh, reads it back and runs it.

Usage (as root, from any directory):

    python3 scripts/image_check.py --binary target/debug/vctp

1. scripts/image.sh builds the OCI archive from --binary into a scratch directory.
2. skopeo reads the archive (what `skopeo copy oci-archive:...` does to push it) and the index
   names the image for containerd's importer (`ctr -n k8s.io images import`).
3. umoci unpacks it; the config has USER 65532:65532, the entrypoint, cmd, working directory and
   the OCI labels (version from Cargo.toml, revision, created); the root file system has the
   binary, CA certificates, time-zone data, nonroot in /etc/passwd and /etc/group, /tmp 1777.
4. The unpacked binary runs `--version` under chroot as uid/gid 65532: every shared library it
   needs, and the loader, are in the image (nothing from the host).
5. The Dockerfile's final stage says the same: binary path, user, working directory,
   entrypoint, cmd, label keys and fixed label values; ARG VERSION is Cargo.toml's version.

Exits non-zero naming every check that failed. Debian's umoci, skopeo and jq are apt-installed
when missing (by image.sh, and here for skopeo).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NONROOT = 65532
# Only the Dockerfile has a base image to name.
DOCKERFILE_ONLY_LABELS = {"org.opencontainers.image.base.name"}
# Labels whose value is the same for every build (the others come from the build).
FIXED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.licenses",
)

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def run(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def cargo_version() -> str:
    match = re.search(r'^version = "([^"]+)"$', (ROOT / "Cargo.toml").read_text(), re.M)
    if not match:
        sys.exit("image_check: no version in Cargo.toml")
    return match.group(1)


def dockerfile_final_stage() -> dict:
    """USER, WORKDIR, ENTRYPOINT, CMD, LABELs, ARG defaults and COPY targets of the last stage."""
    text = (ROOT / "Dockerfile").read_text()
    # Join continuation lines, drop comments.
    lines = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    stage: dict = {"labels": {}, "args": {}, "copies": []}  # ARGs before the first FROM
    for line in lines.splitlines():
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            stage = {"labels": {}, "args": {}, "copies": []}
        elif word == "LABEL":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage["labels"][key] = value
        elif word == "ARG":
            key, _, value = rest.partition("=")
            stage["args"][key] = value
        elif word in ("ENTRYPOINT", "CMD"):
            stage[word.lower()] = json.loads(rest)
        elif word in ("USER", "WORKDIR"):
            stage[word.lower()] = rest
        elif word == "COPY":
            stage["copies"].append(rest.split()[-1])
    return stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the vctp binary to put in the image")
    args = parser.parse_args()
    binary = Path(args.binary).resolve()
    version = cargo_version()
    if os.geteuid() != 0:
        sys.exit("image_check: run as root (image.sh owns files as root and 65532; chroot)")
    if shutil.which("skopeo") is None:
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "skopeo",
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})

    with tempfile.TemporaryDirectory(prefix="vctp-image-check.") as tmp:
        work = Path(tmp)
        archive = work / "vctp.oci.tar"
        print(f"image_check: scripts/image.sh --binary {binary}")
        subprocess.run([str(ROOT / "scripts/image.sh"), "--binary", str(binary),
                        "--tag", "vctp-check:t1", "--output", str(archive)], check=True)

        print("image_check: the archive")
        index = json.loads(run("tar", "-xOf", str(archive), "index.json").stdout)
        annotations = index["manifests"][0].get("annotations", {})
        check(len(index["manifests"]) == 1, "the index has one manifest")
        check(annotations.get("io.containerd.image.name") == "docker.io/library/vctp-check:t1",
              "io.containerd.image.name is the fully qualified --tag (what ctr import names)")
        check(annotations.get("org.opencontainers.image.ref.name") == "t1",
              "org.opencontainers.image.ref.name is the tag")
        inspected = json.loads(run("skopeo", "inspect", "--config", f"oci-archive:{archive}").stdout)
        config = inspected["config"]
        check(inspected.get("os") == "linux" and inspected.get("architecture") == "amd64",
              "skopeo reads the archive: linux/amd64")

        print("image_check: the config")
        check(config.get("User") == f"{NONROOT}:{NONROOT}", f"User is {NONROOT}:{NONROOT}")
        check(config.get("Entrypoint") == ["/usr/local/bin/vctp"], "Entrypoint is /usr/local/bin/vctp")
        check(config.get("Cmd") == ["--help"], "Cmd is --help")
        check(config.get("WorkingDir") == "/home/nonroot", "WorkingDir is /home/nonroot")
        labels = config.get("Labels") or {}
        check(labels.get("org.opencontainers.image.version") == version,
              f"version label is Cargo.toml's {version}")
        head = run("git", "-C", str(ROOT), "rev-parse", "HEAD").stdout.strip()
        check(labels.get("org.opencontainers.image.revision", "").startswith(head),
              "revision label is the HEAD commit")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                           labels.get("org.opencontainers.image.created", "")) is not None,
              "created label is an RFC 3339 UTC time")

        print("image_check: the root file system")
        layout = work / "layout"
        layout.mkdir()
        run("tar", "-C", str(layout), "-xf", str(archive))
        bundle = work / "bundle"
        run("umoci", "unpack", "--image", f"{layout}:t1", str(bundle))
        rootfs = bundle / "rootfs"
        for path in ("usr/local/bin/vctp", "etc/ssl/certs/ca-certificates.crt",
                     "usr/share/zoneinfo/UTC", "usr/share/zoneinfo/Europe/Berlin",
                     "etc/nsswitch.conf"):
            check((rootfs / path).is_file(), f"/{path} is in the image")
        passwd = (rootfs / "etc/passwd").read_text()
        group = (rootfs / "etc/group").read_text()
        check(f"nonroot:x:{NONROOT}:{NONROOT}:" in passwd, f"/etc/passwd has nonroot {NONROOT}")
        check(f"nonroot:x:{NONROOT}:" in group, f"/etc/group has nonroot {NONROOT}")
        tmp_mode = (rootfs / "tmp").stat().st_mode
        check(stat.S_IMODE(tmp_mode) == 0o1777, "/tmp is 1777")
        home = (rootfs / "home/nonroot").stat()
        check(home.st_uid == NONROOT and home.st_gid == NONROOT, "/home/nonroot belongs to nonroot")
        host_version = run(str(binary), "--version").stdout
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        # An empty environment: nothing of the host's (LD_LIBRARY_PATH...) helps it run.
        ran = subprocess.run([chroot, f"--userspec={NONROOT}:{NONROOT}", str(rootfs),
                              "/usr/local/bin/vctp", "--version"],
                             text=True, capture_output=True, env={})
        check(ran.returncode == 0 and ran.stdout == host_version,
              f"vctp --version runs in the image as {NONROOT} (its libraries and loader are there)"
              + ("" if ran.returncode == 0 else f": {ran.stderr.strip()}"))

        print("image_check: the Dockerfile's final stage has the same layout")
        stage = dockerfile_final_stage()
        check("/usr/local/bin/vctp" in stage["copies"], "Dockerfile copies the binary to /usr/local/bin/vctp")
        check(stage.get("user") == config.get("User"), "Dockerfile USER matches")
        check(stage.get("workdir") == config.get("WorkingDir"), "Dockerfile WORKDIR matches")
        check(stage.get("entrypoint") == config.get("Entrypoint"), "Dockerfile ENTRYPOINT matches")
        check(stage.get("cmd") == config.get("Cmd"), "Dockerfile CMD matches")
        check(set(stage["labels"]) - DOCKERFILE_ONLY_LABELS == set(labels),
              "Dockerfile LABEL keys match image.sh's")
        for key in FIXED_LABELS:
            check(stage["labels"].get(key) == labels.get(key), f"Dockerfile {key} matches")
        check(stage["args"].get("VERSION") == version, f"Dockerfile ARG VERSION is Cargo.toml's {version}")

    if failures:
        print(f"image_check: {len(failures)} check(s) failed:", *failures, sep="\n  - ")
        return 1
    print("image_check: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
