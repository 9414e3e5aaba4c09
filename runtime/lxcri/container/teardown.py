"""Tear a container down to nothing, whatever state a create left it in: delete, and create's undo.

A create can die anywhere (conmon or the shim SIGKILLed, OOM-killed), and what it
made must still go: the monitor, the init (which outlives the monitor once it has
cleared liblxc's parent-death signal), any process the container started, the
cgroup directories liblxc made in every hierarchy, and the runtime dir. Everything
here is bounded in time: a teardown that cannot finish says what is left and keeps
the record, so that the next `delete --force` can try again; it never loops forever.

Which cgroups are the container's, and so whose processes may be killed: only the
directories its init was found in (recorded by create as soon as the init reports;
liblxc refuses to start in a cgroup that already exists, so these are fresh), and
the monitor's. The cgroups create merely expected (`cgroup_claims`: where liblxc
would put them, and that did not exist before) are removed when empty, never
emptied by killing: a hostile cgroupsPath may name someone else's cgroup.
"""

from __future__ import annotations

import errno
import os
import time

from lxcri import proc
from lxcri.cgroups import levels
from lxcri.cgroups.fs import Cgroup, monitor_cgroup, rmdir_while_busy
from lxcri.container.rundir import Record, RunDir
from lxcri.errors import LxcriError


def claims(cgroup_path: str, cid: str) -> tuple[list[str], list[str]]:
    """What a create may make, in every hierarchy, and that does not exist yet: (the leaf dirs of
    the container's and its monitor's cgroups, the levels above the container's). liblxc places
    both from the cgroup root (lxcconf/cgroups.py: placement), and lxcri makes the cpuset levels
    (cgroups/levels.py). Recorded before the monitor starts, so that whatever a failed or killed
    create leaves is found, and nothing that existed before is ever taken for the container's.
    (lxcri.monitor, the monitor cgroups' parent, is lxcri's own and stays, as lxcri.warm.)"""
    leaves, parents = levels.missing(cgroup_path)
    monitor_leaves, _ = levels.missing(monitor_cgroup(cid))
    return [*leaves, *monitor_leaves], parents


def _tree(d: str) -> list[str]:
    """d and every cgroup below it, children first."""
    try:
        below = [os.path.join(dp, n) for dp, dn, _ in os.walk(d, topdown=False) for n in dn]
    except OSError:
        below = []
    return [*below, d]


def _procs(d: str) -> list[int]:
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def is_cgroup(d: str, leaf: str) -> bool:
    """d is a directory of the cgroup `leaf` (below whatever base liblxc started from); liblxc
    names a monitor cgroup that exists already LEAF-1, LEAF-2..."""
    d, leaf = os.path.normpath(d), os.path.normpath("/" + leaf.strip("/"))
    if d.endswith(leaf):
        return True
    head, sep, n = d.rpartition("-")
    return bool(sep) and n.isdigit() and head.endswith(leaf)


def container_dirs(rec: Record) -> dict[str, str]:
    """The recorded dirs of the container's cgroup that are its own: where its init was found,
    and named as its cgroup. (In a hierarchy where liblxc made none, the init stays in its
    creator's cgroup, which must never be taken for the container's.)"""
    return {k: d for k, d in rec.cgroup_dirs.items() if rec.cgroup_path and is_cgroup(d, rec.cgroup_path)}


def _own_dirs(rec: Record) -> list[str]:
    """The cgroups whose processes are the container's (or its monitor's) and may all be killed."""
    mon = monitor_cgroup(rec.id)
    dirs = [*container_dirs(rec).values(), *(d for d in rec.monitor_cgroup_dirs.values() if is_cgroup(d, mon))]
    dirs += [d for d in rec.cgroup_claims if is_cgroup(d, mon)]  # lxcri's own namespace: only its monitor
    Cgroup({str(i): d for i, d in enumerate(dirs)})._check()  # never a root cgroup
    return dirs


def members(dirs: list[str]) -> set[int]:
    """Every process in these cgroups and their children, in every hierarchy they are in."""
    pids: set[int] = set()
    for d in dirs:
        for sub in _tree(d):
            pids.update(_procs(sub))
    return pids


def signal_all(rec: Record, sig: int) -> int:
    """Signal every process in the container's cgroups, whatever state its init is in (runc's
    `kill --all`). SIGKILL freezes first, so that nothing forks away from it. How many were signalled."""
    own = container_dirs(rec)
    dirs = list(own.values())
    if not dirs:
        return 0
    cg = Cgroup(own)
    cg._check()
    if not members(dirs):
        return 0  # (the common case at delete: no freezing for nothing)
    kill = sig == proc.SIGKILL
    if kill and not cg.frozen():
        try:
            cg.freeze(True, timeout=0.5)
        except LxcriError:
            pass  # no freezer, or a task that would not freeze: kill anyway (delete tries again)
    n = 0
    for pid in members(dirs):
        if proc.kill(pid, sig):
            n += 1
    if kill:
        try:
            cg.freeze(False, timeout=1.0)  # frozen (or freezing) tasks die only once thawed
        except LxcriError:
            pass
    return n


def _living(pid: int, start: int) -> bool:
    """Alive and not already exiting. A pid namespace's init that was killed stays in exit until its
    caller (a subreaper) has reaped the namespace's other processes: it has left its cgroups and
    nothing more can be done to it."""
    if not proc.alive(pid, start):
        return False
    f = proc.stat_fields(pid)
    return f is not None and not int(f[6]) & 0x4  # PF_EXITING




def _rmdir_all(dirs: list[str], end: float) -> list[str]:
    """rmdir each directory and its children; retry while busy until `end`; what stays."""
    left: list[str] = []
    for d in dirs:
        for path in _tree(d):
            if not rmdir_while_busy(path, end):
                left.append(path)
    return left


def remove_parents(parents: list[str]) -> None:
    """rmdir the levels above the container's cgroup that its create made, deepest first, each
    once and only itself: one that still holds a cgroup (another container's, made since) or a
    task stays, which is the kernel's own check; nothing below a parent is ever removed."""
    for d in sorted(parents, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _unmount_under(path: str) -> list[str]:
    """Detach any mount at or below path in our mount namespace (none is made there normally:
    liblxc mounts in the container's namespace; a crash must not leave one on the host either)."""
    prefix = path.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            points = [ln.split()[4] for ln in f]
    except OSError:
        return []
    points = [p.replace("\\040", " ") for p in points if p == path or p.startswith(prefix)]
    if not points:
        return []
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    left = []
    for p in sorted(points, key=len, reverse=True):
        if libc.umount2(os.fsencode(p), 2) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            left.append(p)  # 2: MNT_DETACH
    return left


def destroy(rd: RunDir, rec: Record, timeout: float) -> None:
    """Kill everything of the container and remove its cgroups, mounts and runtime dir, within
    about `timeout` seconds. On failure the record stays and LxcriError says what is left."""
    end = time.monotonic() + timeout
    own = _own_dirs(rec)
    # the monitor first: while it runs it may still start the init or a hook
    for pid, start in ((rec.monitor_pid, rec.monitor_start), (rec.init_pid, rec.init_start)):
        if proc.alive(pid, start):
            proc.kill(pid, proc.SIGKILL)
    if rec.monitor_pid and not rec.init_pid:
        # a create that died before its init reported: liblxc's init dies with the monitor
        proc.wait_gone(rec.monitor_pid, rec.monitor_start, max(0.0, end - time.monotonic()))
    while True:
        signal_all(rec, proc.SIGKILL)
        left_pids = members(own)
        for pid in left_pids:
            proc.kill(pid, proc.SIGKILL)
        alive = [p for p in left_pids if _living(p, 0)]
        if _living(rec.init_pid, rec.init_start):
            alive.append(rec.init_pid)
        if not alive or time.monotonic() > end:
            break
        time.sleep(0.005)
    if alive:
        raise LxcriError(f"container {rec.id}: processes {', '.join(map(str, sorted(alive)[:10]))} "
                         f"did not die within {timeout:.0f}s")
    # children first across the board: a claim may be the parent of a recorded dir
    dirs = sorted({*own, *rec.cgroup_claims}, key=len, reverse=True)
    left = _rmdir_all(dirs, end)
    if not left:
        remove_parents(rec.cgroup_parents)
    left += _unmount_under(rd.path)
    if left:
        raise LxcriError(f"container {rec.id}: cannot remove {', '.join(left[:5])}"
                         f"{' and more' if len(left) > 5 else ''} within {timeout:.0f}s")
