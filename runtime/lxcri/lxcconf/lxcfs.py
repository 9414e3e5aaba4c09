"""lxcfs views over /proc and /sys files: a container sees its own limits, not the node's.

Programs size heaps and thread pools from /proc/meminfo, /proc/cpuinfo, /proc/stat and
/sys/devices/system/cpu/online; in a container those show the node. lxcfs (a FUSE
filesystem) serves per-cgroup versions of them, answering each read for the cgroup of
the process that reads. A container asks for them with the annotation ANNOTATION (or the
node turns them on for all with the `lxcfs` setting); each file is then bound over the
container's own, after the config's /proc and /sys mounts.

The binds are not optional: should lxcfs die later, reads of these files fail (ENOTCONN)
instead of quietly showing the host's numbers again.
"""

from __future__ import annotations

from lxcri.errors import TranslateError
from lxcri.lxcconf import Items, escape_fstab
from lxcri.oci import spec as oci_spec

ANNOTATION = "lxcri.linuxcontainers.org/lxcfs"

# what lxcfs 5 serves, relative to its mount point and to the container's root
FILES = (
    "proc/meminfo", "proc/cpuinfo", "proc/stat", "proc/uptime", "proc/loadavg", "proc/diskstats",
    "proc/swaps", "sys/devices/system/cpu/online",
)

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def wanted(config: dict[str, object], node_default: bool) -> bool:
    """The annotation decides when present; otherwise the node's setting."""
    raw = oci_spec.section(config, "annotations").get(ANNOTATION)
    if raw is None:
        return node_default
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise TranslateError(f"config.json: annotations[{ANNOTATION!r}] must be \"true\" or \"false\", not {raw!r}")


def mounted_at(path: str, mountinfo: str) -> bool:
    """Whether an lxcfs is mounted exactly at path (one line of /proc/self/mountinfo per mount:
    field 5 is the mount point, the type follows the ` - ` separator)."""
    want = escape_fstab(path.rstrip("/") or "/")  # mountinfo escapes blanks and backslashes the same way
    for line in mountinfo.splitlines():
        pre, sep, post = line.partition(" - ")
        fields = pre.split()
        if sep and len(fields) >= 5 and fields[4] == want and post.split()[:1] == ["fuse.lxcfs"]:
            return True
    return False


def mounts(path: str, mountinfo: str, present: set[str] | frozenset[str]) -> Items:
    """Bind entries for every lxcfs file, or an error that says lxcfs is not there.

    `present` names the FILES that exist under path (the caller looks: this module does no I/O).
    """
    if not mounted_at(path, mountinfo):
        raise TranslateError(
            f"lxcfs was asked for (annotation {ANNOTATION} or the lxcfs setting) but no lxcfs is mounted "
            f"at {path} (start it with `lxcfs --enable-cfs {path}`, or set lxcfs_path)")
    items: Items = []
    for rel in FILES:
        if rel not in present:
            continue  # an older lxcfs without this view: the container keeps its own file
        items.append(("lxc.mount.entry", f"{escape_fstab(path.rstrip('/') + '/' + rel)} {rel} none bind 0 0"))
    if not items:
        raise TranslateError(f"lxcfs at {path} serves none of {', '.join(FILES)}")
    return items
