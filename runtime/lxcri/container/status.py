"""The container's status, derived from facts on every call (never cached).

creating  create has not recorded the init yet
created   the init (lxcri's helper) is alive and the exec fifo is still there
running   the init is alive and start has consumed the fifo
paused    running, and the cgroup is frozen
stopped   the init is gone
"""

from __future__ import annotations

import os

from lxcri import OCI_VERSION, proc
from lxcri.cgroups import Cgroup
from lxcri.container.rundir import Record, RunDir

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def status(rd: RunDir, rec: Record) -> str:
    if rec.init_pid == 0 or not rec.ready:
        # create is still at work, or died before it finished: a failed create, whose
        # leftovers (perhaps a live init) only delete --force may act on
        return "creating" if proc.alive(rec.creator_pid, rec.creator_start) else "stopped"
    if not proc.alive(rec.init_pid, rec.init_start):
        return "stopped"
    if os.path.exists(rd.file("exec.fifo")):
        return "created"
    if Cgroup(rec.cgroup_dirs).frozen():
        return "paused"
    return "running"


def oci_state(rec: Record, st: str) -> dict[str, Any]:
    """The OCI state, with runc's extra fields (rootfs, created, owner) that callers read."""
    return {
        "ociVersion": OCI_VERSION,
        "id": rec.id,
        "status": st,
        "pid": rec.init_pid if st not in ("stopped",) else 0,
        "bundle": rec.bundle,
        "rootfs": rec.rootfs,
        "created": rec.created,
        "owner": "",
        "annotations": rec.annotations,
    }
