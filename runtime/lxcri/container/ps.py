"""ps: the host pids of the container's processes."""

from __future__ import annotations

from lxcri.cgroups import Cgroup
from lxcri.container.rundir import RunDir


def pids(root: str, cid: str) -> list[int]:
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        return Cgroup(rec.cgroup_dirs).pids()
