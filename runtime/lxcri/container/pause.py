"""pause / resume: freeze or thaw the container's cgroup."""

from __future__ import annotations

from lxcri.cgroups import Cgroup
from lxcri.container.rundir import RunDir
from lxcri.container.status import status
from lxcri.errors import StateError


def set_paused(root: str, cid: str, paused: bool) -> None:
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if paused and not st.can_pause:
            raise StateError(f"cannot pause container {cid}: it is {st}, not running", cid=cid)
        if not paused and not st.can_resume:
            raise StateError(f"cannot resume container {cid}: it is {st}, not paused", cid=cid)
        Cgroup(rec.cgroup_dirs).freeze(paused)
