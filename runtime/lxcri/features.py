"""`lxcri features`: the OCI features document, for this build on this host.

Only what lxcri actually translates is listed; host facts (cgroup layout, LSMs)
are read at call time, so the document is truthful on every node.
"""

from __future__ import annotations

import os

from lxcri import OCI_VERSION, __version__
from lxcri.cgroups.fs import hierarchies
from lxcri.container.hooks import POINTS
from lxcri.lxcconf.namespaces import NAMES
from lxcri.oci.capabilities import NAMES as CAPS
from lxcri.oci.seccomp import ACTIONS, ARCHES, FLAGS, OPERATORS

MOUNT_OPTIONS = [
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
    "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
    "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount",
    "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "unbindable",
    # recursive attributes, with mount_setattr (lxcconf/mounts.py)
    "rdev", "rdiratime", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnosuid", "rnosymfollow",
    "rrelatime", "rro", "rrw", "rstrictatime", "rsuid", "rsymfollow",
]


def _lsm(name: str) -> bool:
    try:
        with open("/sys/kernel/security/lsm") as f:
            return name in f.read().split(",")
    except OSError:
        return False


def _seccomp_host() -> bool:
    try:
        with open("/proc/self/status") as f:
            return "Seccomp:" in f.read()
    except OSError:
        return False


def _idmapped_mounts() -> bool:
    """mount_setattr(MOUNT_ATTR_IDMAP) came with Linux 5.12."""
    release = os.uname().release.split(".")
    try:
        return (int(release[0]), int(release[1].split("-")[0])) >= (5, 12)
    except (IndexError, ValueError):
        return False


def _lxcfs(path: str) -> str:
    """Whether an lxcfs serves at path now (what a container that asks for it would get)."""
    from lxcri.lxcconf.lxcfs import mounted_at

    try:
        with open("/proc/self/mountinfo") as f:
            return str(mounted_at(path, f.read())).lower()
    except OSError:
        return "false"


def features(lxcfs_path: str = "/var/lib/lxcfs") -> dict[str, object]:
    from lxcri.lxcconf.lxcfs import ANNOTATION
    from lxcri.lxcconf.system import ANNOTATION as SYSTEM

    hs = hierarchies()
    import _lxc

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(POINTS),
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": sorted(NAMES),
            "capabilities": CAPS,
            "cgroup": {
                "v1": any(h.version == 1 for h in hs),
                "v2": any(h.version == 2 for h in hs),
                "systemd": False,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": {
                "enabled": _seccomp_host(),
                "actions": sorted(ACTIONS),
                "operators": sorted(OPERATORS),
                "archs": ARCHES,
                "knownFlags": sorted(FLAGS),
                "supportedFlags": sorted(FLAGS),
            },
            "apparmor": {"enabled": _lsm("apparmor")},
            "selinux": {"enabled": _lsm("selinux")},
            "intelRdt": {"enabled": False},
            # idmap/ridmap binds with the container's own mapping, through liblxc's idmap=container
            "mountExtensions": {"idmap": {"enabled": _idmapped_mounts()}},
        },
        "annotations": {
            "org.linuxcontainers.lxcri.version": __version__,
            "org.linuxcontainers.lxc.version": _lxc.get_version(),
            "org.linuxcontainers.lxcri.host.apparmor": str(_lsm("apparmor")).lower(),
            "org.linuxcontainers.lxcri.host.selinux": str(_lsm("selinux")).lower(),
            # the per-container switch, and whether this node's lxcfs is there to serve it
            "org.linuxcontainers.lxcri.annotations": f"{ANNOTATION},{SYSTEM}",
            "org.linuxcontainers.lxcri.system-containers": "true",
            "org.linuxcontainers.lxcri.lxcfs.path": lxcfs_path,
            "org.linuxcontainers.lxcri.lxcfs.mounted": _lxcfs(lxcfs_path),
        },
    }
