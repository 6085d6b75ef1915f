#!/usr/bin/env python3
"""The pyvmomi side of the collector benchmark: list every VM the way a
Python vCenter collector does, and report time and peak memory.

What it does, between login and logout (the timed part):
  1. a recursive ContainerView over VirtualMachine, RetrievePropertiesEx with
     maxObjects, then ContinueRetrievePropertiesEx while the server returns a
     token (the govmomi simulator ignores maxObjects and never does; a real
     vCenter pages);
  2. a second ContainerView over the inventory "places" (folders,
     datacenters, clusters, compute resources, hosts, pools) with name and
     parent, which is what folder paths and cluster names are built from;
  3. one Python dict per VM and per place, as a real collector would build;
  4. both views destroyed, then logout.

Prints ONE JSON line on stdout:
  {"tool":"pyvmomi","pyvmomi_version":...,"vms":N,"places":M,"seconds":...,"peak_rss_mb":...}

Run it through scripts/pyvmomi.sh, which provides a venv with pyvmomi.
"""

import argparse
import json
import resource
import ssl
import sys
import time
from importlib import metadata
from urllib.parse import urlsplit

from pyVim import connect
from pyVmomi import vim, vmodl

VM_PATHS = [
    "name",
    "config.uuid",
    "config.instanceUuid",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "summary.storage.committed",
    "summary.storage.uncommitted",
    "config.template",
    "runtime.powerState",
    "config.createDate",
    "config.managedBy",
    "resourcePool",
    "parent",
    "runtime.host",
]

PLACE_TYPES = [
    vim.Folder,
    vim.Datacenter,
    vim.ClusterComputeResource,
    vim.ComputeResource,
    vim.HostSystem,
    vim.ResourcePool,
]
PLACE_PATHS = ["name", "parent"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True,
                   help="SDK URL, e.g. https://127.0.0.1:PORT/sdk or http://127.0.0.1:PORT/vc1/sdk")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--insecure", action="store_true",
                   help="do not verify the server's TLS certificate")
    p.add_argument("--ca-file",
                   help="PEM file of CA(s) to trust for https (default: the system's)")
    p.add_argument("--max-objects", type=int, default=1000,
                   help="RetrievePropertiesEx page size (default 1000)")
    args = p.parse_args(argv)
    if args.max_objects < 1:
        p.error("--max-objects must be >= 1")
    return args


def connect_to(args):
    u = urlsplit(args.url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise SystemExit(f"pyvmomi_collect: --url must be http(s)://HOST[:PORT]/PATH, got {args.url!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    path = u.path or "/sdk"
    ssl_context = None
    if u.scheme == "https":
        if args.insecure:
            ssl_context = ssl._create_unverified_context()  # noqa: SLF001 - what --insecure asks for
        else:
            # An explicit verifying context: without one pyVim silently skips
            # verification for 127.0.0.1/localhost.
            ssl_context = ssl.create_default_context(cafile=args.ca_file)
    kwargs = dict(host=u.hostname, port=port, user=args.user, pwd=args.password, path=path,
                  sslContext=ssl_context, disableSslCertValidation=args.insecure)
    try:
        # SmartConnect negotiates the API version from PATH/vimServiceVersions.xml;
        # protocol="http" makes it pass a negative port, pyVim's signal for plain HTTP.
        return connect.SmartConnect(protocol=u.scheme, **kwargs)
    except Exception as e:  # pyVim raises a bare Exception when it finds no version file
        if "is not a VIM server" not in str(e):
            raise
        # A server without vimServiceVersions.xml: connect with a fixed vim25 version.
        if u.scheme == "http":
            kwargs["port"] = -port
        return connect.Connect(version="vim.version.version9", **kwargs)


def moid(ref):
    return ref._moId if ref is not None else None


def retrieve_all(pc, view, obj_types, paths, max_objects):
    """RetrievePropertiesEx over a view, following continuation tokens."""
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(
            obj=view, skip=True,
            selectSet=[vmodl.query.PropertyCollector.TraversalSpec(
                name="traverseView", path="view", skip=False, type=vim.view.ContainerView)])],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=paths, all=False)
                 for t in obj_types])
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=max_objects)
    result = pc.RetrievePropertiesEx(specSet=[spec], options=options)
    while result is not None:
        yield from result.objects
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(token=result.token)


def vm_record(oc):
    props = {p.name: p.val for p in oc.propSet}
    created = props.get("config.createDate")
    managed_by = props.get("config.managedBy")
    return {
        "moref": oc.obj._moId,
        "name": props.get("name"),
        "uuid": props.get("config.uuid"),
        "instance_uuid": props.get("config.instanceUuid"),
        "num_cpu": props.get("config.hardware.numCPU"),
        "memory_mb": props.get("config.hardware.memoryMB"),
        "committed": props.get("summary.storage.committed"),
        "uncommitted": props.get("summary.storage.uncommitted"),
        "template": bool(props.get("config.template", False)),
        "power_state": str(props.get("runtime.powerState", "")),
        "create_date": created.timestamp() if created is not None else None,
        "managed_by": managed_by.extensionKey if managed_by is not None else None,
        "pool": moid(props.get("resourcePool")),
        "parent": moid(props.get("parent")),
        "host": moid(props.get("runtime.host")),
    }


def place_record(oc):
    props = {p.name: p.val for p in oc.propSet}
    return {
        "moref": oc.obj._moId,
        "type": oc.obj.__class__.__name__,
        "name": props.get("name"),
        "parent": moid(props.get("parent")),
    }


def collect(si, max_objects):
    content = si.RetrieveContent()
    pc = content.propertyCollector
    views = []
    try:
        vm_view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        views.append(vm_view)
        vms = {r["moref"]: r for r in map(vm_record, retrieve_all(
            pc, vm_view, [vim.VirtualMachine], VM_PATHS, max_objects))}
        place_view = content.viewManager.CreateContainerView(content.rootFolder, PLACE_TYPES, True)
        views.append(place_view)
        places = {r["moref"]: r for r in map(place_record, retrieve_all(
            pc, place_view, PLACE_TYPES, PLACE_PATHS, max_objects))}
    finally:
        for v in views:
            v.DestroyView()
    return vms, places


def main(argv):
    args = parse_args(argv)
    start = time.perf_counter()
    si = connect_to(args)
    try:
        vms, places = collect(si, args.max_objects)
    finally:
        connect.Disconnect(si)
    seconds = time.perf_counter() - start
    # ru_maxrss is in KiB on Linux.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "tool": "pyvmomi",
        "pyvmomi_version": metadata.version("pyvmomi"),
        "vms": len(vms),
        "places": len(places),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except vim.fault.InvalidLogin:
        print("pyvmomi_collect: login failed (InvalidLogin): check --user/--password", file=sys.stderr)
        sys.exit(1)
    except ssl.SSLError as e:
        print(f"pyvmomi_collect: TLS error: {e} (use --ca-file or --insecure)", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"pyvmomi_collect: cannot reach the server: {e}", file=sys.stderr)
        sys.exit(1)
