"""kill: signal the container's init, or with --all every process of its cgroup."""

from __future__ import annotations

from lxcri import proc
from lxcri.cgroups import Cgroup
from lxcri.container.rundir import Record, RunDir
from lxcri.container.status import status
from lxcri.errors import StateError


def signal_all(rec: Record, sig: int) -> None:
    """Every process in the container's cgroup."""
    cg = Cgroup(rec.cgroup_dirs)
    frozen = cg.frozen()
    for pid in cg.pids():
        proc.kill(pid, sig)
    if frozen and sig == proc.SIGKILL:
        # frozen tasks only die once thawed (cgroup v1)
        cg.freeze(False)


def kill(root: str, cid: str, sig_name: str, all_: bool) -> None:
    sig = proc.signal_number(sig_name)
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if st == "stopped" or (st == "creating"):
            raise StateError(f"cannot kill container {cid}: container not running")
        if all_:
            signal_all(rec, sig)
            return
        if not proc.alive(rec.init_pid, rec.init_start) or not proc.kill(rec.init_pid, sig):
            raise StateError(f"cannot kill container {cid}: no such process")
