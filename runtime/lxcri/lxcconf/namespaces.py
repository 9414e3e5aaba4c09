"""linux.namespaces -> lxc.namespace.clone / lxc.namespace.share.*.

A namespace with a path is joined (liblxc opens the path in the monitor); one
without is created; one not listed is shared with the host, but for the mount
namespace. liblxc sets the rootfs up inside the container's mount namespace and
pivot_roots there: a joined one becomes the container's, as with runc (whose
processes there see the container's root from then on); one not listed is
created all the same, because liblxc has no chroot mode like runc's and would
otherwise pivot the host's root (README, "What the runtime covers today").
"""

from __future__ import annotations

from lxcri.errors import TranslateError
from lxcri.lxcconf import Context, Items
from lxcri.oci import spec as oci_spec
from lxcri.oci.spec import check_text

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

# OCI name -> liblxc name
NAMES = {
    "mount": "mnt",
    "pid": "pid",
    "uts": "uts",
    "ipc": "ipc",
    "network": "net",
    "cgroup": "cgroup",
    "user": "user",
    "time": "time",
}


def idmaps(config: dict[str, Any], new_userns: bool) -> Items:
    """uidMappings/gidMappings -> lxc.idmap; they belong with a new user namespace."""
    linux = oci_spec.linux(config)
    items: Items = []
    for key, kind in (("uidMappings", "u"), ("gidMappings", "g")):
        maps = linux.get(key) or []
        if maps and not new_userns:
            raise TranslateError(f"config.json: linux.{key} needs a new user namespace")
        for i, m in enumerate(maps):
            vals = [m.get(k) if isinstance(m, dict) else None for k in ("containerID", "hostID", "size")]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in vals) or vals[2] == 0:
                raise TranslateError(f"config.json: linux.{key}[{i}] needs containerID, hostID and a size > 0")
            items.append(("lxc.idmap", f"{kind} {vals[0]} {vals[1]} {vals[2]}"))
        if maps and not any(m["containerID"] == 0 for m in maps):
            # liblxc chowns the container's dir, ttys and cgroups to the container's root (and
            # refuses to start without one): runc does not need it, liblxc does
            raise TranslateError(f"config.json: linux.{key} must map the container's id 0 (liblxc needs a root "
                                 "in the user namespace)")
    if new_userns and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise TranslateError("config.json: a new user namespace needs linux.uidMappings and linux.gidMappings")
    return items


def time_offsets(linux: dict[str, Any], new_timens: bool) -> Items:
    """linux.timeOffsets -> lxc.time.offset.*: the clocks a new time namespace starts at.

    liblxc writes them to /proc/PID/timens_offsets before the init runs.
    """
    offsets = linux.get("timeOffsets")
    if not offsets:
        return []
    if not isinstance(offsets, dict):
        raise TranslateError("config.json: linux.timeOffsets must be an object")
    if not new_timens:
        raise TranslateError("config.json: linux.timeOffsets needs a new time namespace")
    items: Items = []
    for clock, key in (("boottime", "boot"), ("monotonic", "monotonic")):
        off = offsets.get(clock)
        if off is None:
            continue
        secs = off.get("secs", 0) if isinstance(off, dict) else None
        nsecs = off.get("nanosecs", 0) if isinstance(off, dict) else None
        if not (isinstance(secs, int) and isinstance(nsecs, int) and not isinstance(secs, bool)
                and not isinstance(nsecs, bool) and 0 <= nsecs < 10**9):
            raise TranslateError(f"config.json: linux.timeOffsets.{clock} needs integer secs and nanosecs "
                                 "(0 <= nanosecs < 1e9)")
        # liblxc holds one value per clock, in seconds or in nanoseconds, and the kernel
        # takes nanoseconds only below one second: whole seconds or a fraction, not both
        if secs and nsecs:
            raise TranslateError(f"config.json: linux.timeOffsets.{clock}: liblxc can set whole seconds "
                                 "or nanoseconds below one second, not both")
        items.append((f"lxc.time.offset.{key}", f"{nsecs}ns" if nsecs else f"{secs}s"))
    unknown = set(offsets) - {"boottime", "monotonic"}
    if unknown:
        raise TranslateError(f"config.json: linux.timeOffsets: unknown clock {sorted(unknown)[0]!r}")
    return items


def created_namespaces(config: dict[str, Any]) -> set[str]:
    """The OCI types of the namespaces the container gets new (listed without a path)."""
    return {str(ns.get("type")) for ns in oci_spec.linux(config).get("namespaces") or []
            if isinstance(ns, dict) and not ns.get("path")}


def namespaces(config: dict[str, Any], ctx: Context) -> Items:
    linux = oci_spec.linux(config)
    spec = linux.get("namespaces") or []
    if not isinstance(spec, list):
        raise TranslateError("config.json: linux.namespaces must be a list")
    clone: list[str] = []
    share: Items = []
    seen: set[str] = set()
    for i, ns in enumerate(spec):
        if not isinstance(ns, dict) or not isinstance(ns.get("type"), str):
            raise TranslateError(f"config.json: linux.namespaces[{i}] needs a type")
        kind = ns["type"]
        if kind not in NAMES:
            raise TranslateError(f"config.json: unknown namespace type {kind!r}")
        if kind in seen:
            raise TranslateError(f"config.json: namespace {kind!r} listed twice")
        seen.add(kind)
        name = NAMES[kind]
        path = ns.get("path")
        if path:
            path = check_text(path, f"linux.namespaces[{i}].path")
            share.append((f"lxc.namespace.share.{name}", path))
        else:
            clone.append(name)
    if "mnt" not in clone and "mount" not in seen:
        clone.insert(0, "mnt")
    items: Items = [("lxc.namespace.clone", " ".join(clone))]
    items.extend(share)
    if "net" in clone:
        # a new network namespace with only a loopback device, as runc gives
        items.append(("lxc.net.0.type", "empty"))
    elif "network" not in seen:
        # no network namespace requested: the container shares the host's
        items.append(("lxc.net.0.type", "none"))
    # a user namespace joined by path (CRI-O pins one for a hostUsers: false pod) comes with its
    # mappings already written; they still tell liblxc which ids root and the files map to
    items += idmaps(config, "user" in seen)
    items += time_offsets(linux, "time" in clone)
    # as runc: a hostname needs a uts namespace of the container's own, new or joined
    if config.get("domainname") and "uts" not in seen:
        raise TranslateError("config.json: domainname is set but the container has no uts namespace of its own")
    hostname = config.get("hostname")
    if hostname:
        if "uts" not in seen:
            raise TranslateError("config.json: hostname is set but the container has no uts namespace of its own")
        items.append(("lxc.uts.name", hostname))
    return items
