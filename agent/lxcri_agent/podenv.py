"""Make the agent's own pod a place where liblxc can run a container (the smoke test, the probe).

The smoke container runs in the pod's mount namespace, which the CRI runtime built for an
ordinary container, not for a container runtime. Two things are missing there on real nodes:

- ``/run/lxc``: liblxc keeps its container locks under ``/run/lxc/lock``, and the pod's root
  filesystem is read-only. The chart mounts an emptyDir there, so the locks of throw-away
  containers stay in the pod and vanish with it (never on the host).
- the cgroup2 mount of a hybrid host: runc and CRI-O give a cgroup v1 container only the v1
  controllers under ``/sys/fs/cgroup``, while ``/proc/self/cgroup`` still lists the unified
  hierarchy (``0::``). liblxc then fails with "Failed to create monitor cgroup". The agent
  mounts cgroup2 at ``/sys/fs/cgroup/unified`` in its own mount namespace (it is privileged
  whenever it runs containers); the host's mounts are not touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from . import log


def needs_unified(proc_cgroup: str, mountinfo: str, cgroup_fs: str = "/sys/fs/cgroup") -> bool:
    """A hybrid host seen from a v1 container: v1 controllers and a ``0::`` line, but no cgroup2
    mount at ``<cgroup_fs>/unified`` (nor a v2 ``<cgroup_fs>``)."""
    lines = [line for line in proc_cgroup.splitlines() if line.strip()]
    has_v2_line = any(line.startswith("0::") for line in lines)
    has_v1 = any(not line.startswith("0::") for line in lines)
    if not (has_v2_line and has_v1):
        return False
    for line in mountinfo.splitlines():
        fields, sep, fs = line.partition(" - ")
        parts = fields.split()
        if sep and len(parts) > 4 and fs.split(" ", 1)[0] == "cgroup2" and parts[4] in (
            cgroup_fs,
            f"{cgroup_fs}/unified",
        ):
            return False
    return True


def _mount(source: str, target: str, fstype: str, flags: int = 0) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def prepare(cgroup_fs: str = "/sys/fs/cgroup") -> None:
    """Idempotent; logs and carries on when it cannot help (the smoke test then says what failed)."""
    lg = log.get("podenv")
    try:
        Path("/run/lxc").mkdir(exist_ok=True)
    except OSError as err:
        lg.warning("no writable /run/lxc: liblxc cannot take its locks here", error=str(err))
    try:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return
    if not needs_unified(proc_cgroup, mountinfo, cgroup_fs):
        return
    target = f"{cgroup_fs}/unified"
    try:
        if not os.path.isdir(target):
            os.mkdir(target, 0o555)
        _mount("cgroup2", target, "cgroup2", 0x2 | 0x4 | 0x8)  # nosuid, nodev, noexec
        lg.info("mounted the hybrid host's cgroup2 hierarchy in the agent's pod", at=target)
    except OSError as err:
        lg.warning("cannot mount cgroup2 in the pod: liblxc will fail on this hybrid host", error=str(err))
