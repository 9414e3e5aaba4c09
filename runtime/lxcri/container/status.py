"""The container's status, derived from facts on every call (never cached).

creating  create has not recorded the init yet
created   the init (lxcri's helper) is alive and the exec fifo is still there
running   the init is alive and start has consumed the fifo
paused    running, and the cgroup is frozen
stopped   the init is gone

Each status says which operations it allows, here and nowhere else; the commands ask it
(`st.can_start`) and word their refusals themselves (CRI-O matches some of those texts).
"""

from __future__ import annotations

import os

from lxcri import OCI_VERSION, proc
from lxcri.cgroups import Cgroup
from lxcri.container.rundir import Record, RunDir


class Status:
    """One of the five statuses, as a value that knows what it allows. Not an enum.Enum: that
    import costs about 4 ms, on every call of a runtime whose `state` is called constantly."""

    __slots__ = ("can_delete", "can_exec", "can_pause", "can_resume", "can_start", "has_process", "name")

    def __init__(self, name: str, *, has_process: bool, can_start: bool = False, can_exec: bool = False,
                 can_pause: bool = False, can_resume: bool = False, can_delete: bool = False) -> None:
        self.name = name  # the OCI status string
        self.has_process = has_process  # a live init: signals, updates and stats reach something
        self.can_start = can_start
        self.can_exec = can_exec
        self.can_pause = can_pause
        self.can_resume = can_resume
        self.can_delete = can_delete  # without --force

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Status({self.name})"


CREATING = Status("creating", has_process=False)
CREATED = Status("created", has_process=True, can_start=True, can_exec=True, can_delete=True)
RUNNING = Status("running", has_process=True, can_exec=True, can_pause=True)
PAUSED = Status("paused", has_process=True, can_resume=True)
STOPPED = Status("stopped", has_process=False, can_delete=True)


def status(rd: RunDir, rec: Record) -> Status:
    if rec.init_pid == 0 or not rec.ready:
        # create is still at work, or died before it finished: a failed create, whose
        # leftovers (perhaps a live init) only delete --force may act on
        return CREATING if proc.alive(rec.creator_pid, rec.creator_start) else STOPPED
    if not proc.alive(rec.init_pid, rec.init_start):
        return STOPPED
    if os.path.exists(rd.file("exec.fifo")):
        return CREATED
    if Cgroup(rec.cgroup_dirs).frozen():
        return PAUSED
    return RUNNING


def oci_state(rec: Record, st: Status) -> dict[str, object]:
    """The OCI state, with runc's extra fields (rootfs, created, owner) that callers read."""
    return {
        "ociVersion": OCI_VERSION,
        "id": rec.id,
        "status": st.name,
        "pid": rec.init_pid if st is not STOPPED else 0,
        "bundle": rec.bundle,
        "rootfs": rec.rootfs,
        "created": rec.created,
        "owner": "",
        "annotations": rec.annotations,
    }
