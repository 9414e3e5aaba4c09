"""The container's cgroup as a set of directories, one per mounted hierarchy.

liblxc creates and fills the cgroups; lxcri needs them afterwards for facts and
operations: is it frozen, which processes are in it, move the monitor beside the
init, remove what is left at delete. The directories are taken from
/proc/<init>/cgroup at create and recorded, so later commands never guess.
"""

from __future__ import annotations

import errno
import os
import time

from lxcri.errors import CgroupError


def _read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read()


def _write(d: str, name: str, value: str) -> None:
    with open(os.path.join(d, name), "w") as f:
        f.write(value)

V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
    "perf_event", "hugetlb", "pids", "rdma", "misc",
})


class Hierarchy:
    __slots__ = ("controllers", "mountpoint", "version")

    def __init__(self, mountpoint: str, controllers: frozenset[str], version: int) -> None:
        self.mountpoint = mountpoint
        self.controllers = controllers  # v1: the controllers (and name=...), v2: empty
        self.version = version

    @property
    def key(self) -> str:
        """How a container's cgroup dirs are keyed: "unified", or the v1 controller list."""
        return "unified" if self.version == 2 else ",".join(sorted(self.controllers))


_HIERARCHIES: list[Hierarchy] = []


def hierarchies() -> list[Hierarchy]:
    """The mounted cgroup hierarchies (read once per process: every command is a new one)."""
    if _HIERARCHIES:
        return _HIERARCHIES
    out = _HIERARCHIES
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            fstype, _src, superopts = [*post.split(), "", "", ""][:3]
            if fstype == "cgroup2":
                out.append(Hierarchy(fields[4], frozenset(), 2))
            elif fstype == "cgroup":
                ctrls = frozenset(o for o in superopts.split(",") if o in V1_CONTROLLERS or o.startswith("name="))
                out.append(Hierarchy(fields[4], ctrls, 1))
    return out


def host_version() -> int:
    """2 on a pure cgroup v2 host, 1 on v1 and hybrid hosts."""
    for h in hierarchies():
        if h.version == 2 and h.mountpoint == "/sys/fs/cgroup":
            return 2
    return 1


def controllers() -> dict[str, int]:
    """Where each controller lives here: 1 (a v1 hierarchy) or 2 (cgroup2). A v1 hierarchy wins."""
    where: dict[str, int] = {}
    for h in hierarchies():
        if h.version == 2:
            try:
                with open(os.path.join(h.mountpoint, "cgroup.controllers")) as f:
                    for c in f.read().split():
                        where.setdefault(c, 2)
            except OSError:
                pass
    for h in hierarchies():
        if h.version == 1:
            for c in h.controllers:
                where[c] = 1
            if "blkio" in h.controllers and not os.path.exists(os.path.join(h.mountpoint, "blkio.weight")) \
                    and os.path.exists(os.path.join(h.mountpoint, "blkio.bfq.io_serviced")):
                # kernels since 5.0 have no CFQ: weights are BFQ's (blkio.bfq.weight), as runc writes them
                where["blkio.bfq"] = 1
            if "memory" in h.controllers and os.path.exists(os.path.join(h.mountpoint, "memory.memsw.limit_in_bytes")):
                where["memory.memsw"] = 1  # swap accounting is on (a kernel option)
    return where


def monitor_cgroup(cid: str) -> str:
    """Where liblxc first puts a container's monitor (lxc.cgroup.dir.monitor)."""
    return f"/lxcri.monitor/{cid}"


def pid_paths(pid: int) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy key: path}; v1 key is the controller list, v2 key is ''."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _id, ctrls, path = line.rstrip("\n").split(":", 2)
            paths[ctrls] = path
    return paths


class Cgroup:
    """The directories of one container's cgroup in every hierarchy."""

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs  # key: "unified" or the v1 controller list; value: absolute dir
        self._checked = False

    def _check(self) -> None:
        """Before anything that moves, kills or removes: never a root cgroup (it holds the host)."""
        if self._checked:
            return
        roots = {os.path.normpath(h.mountpoint) for h in hierarchies()}
        for d in self.dirs.values():
            if os.path.normpath(d) in roots or ".." in d.split("/"):
                raise CgroupError(f"refusing to manage {d}: it is a root cgroup, not a container's")
        self._checked = True

    @classmethod
    def at(cls, path: str) -> Cgroup:
        """The directories of an absolute cgroup path in every hierarchy (whether they exist or not).

        The path must name a cgroup strictly below the root: operations on the result may
        kill every process in it, and a root cgroup holds the whole host.
        """
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise CgroupError(f"refusing cgroup path {path!r}: not a cgroup below the root")
        dirs = {}
        for h in hierarchies():
            dirs[h.key] = os.path.join(h.mountpoint, path.lstrip("/"))
        return cls(dirs)

    @classmethod
    def of_pid(cls, pid: int) -> Cgroup:
        paths = pid_paths(pid)
        dirs: dict[str, str] = {}
        for h in hierarchies():
            for ctrls, path in paths.items():
                same = (h.version == 2 and ctrls == "") or (
                    h.version == 1 and ctrls and frozenset(ctrls.split(",")) == h.controllers)
                # a process in a root cgroup: nothing of the container's there
                if same and path.strip("/"):
                    dirs[h.key] = os.path.join(h.mountpoint, path.lstrip("/"))
        return cls(dirs)

    def _dir_with(self, controller: str) -> str | None:
        for key, d in self.dirs.items():
            if controller in key.split(","):
                return d
        return None

    def _main_dir(self) -> str | None:
        """The directory whose cgroup.procs lists the container's processes."""
        for c in ("pids", "freezer", "memory", "cpu"):
            d = self._dir_with(c)
            if d:
                return d
        return self.dirs.get("unified")

    def pids(self) -> list[int]:
        self._check()
        d = self._main_dir()
        if not d:
            return []
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def _freezer(self) -> tuple[str, int] | None:
        d = self._dir_with("freezer")
        if d:
            return d, 1
        u = self.dirs.get("unified")
        if u and os.path.exists(os.path.join(u, "cgroup.freeze")):
            return u, 2
        return None

    def frozen(self) -> bool:
        fz = self._freezer()
        if not fz:
            return False
        d, v = fz
        try:
            if v == 1:
                return _read(d, "freezer.state").strip() in ("FROZEN", "FREEZING")
            return _read(d, "cgroup.freeze").strip() == "1"
        except FileNotFoundError:
            return False

    def freeze(self, on: bool, timeout: float = 10.0) -> None:
        self._check()
        fz = self._freezer()
        if not fz:
            raise CgroupError("the host has no freezer cgroup: pause is not possible")
        d, v = fz
        try:
            if v == 1:
                want = "FROZEN" if on else "THAWED"
                end = time.monotonic() + timeout
                while True:
                    _write(d, "freezer.state", want)
                    if _read(d, "freezer.state").strip() == want:
                        return
                    if time.monotonic() > end:
                        raise CgroupError(f"cgroup {d} did not become {want.lower()}")
                    time.sleep(0.001)
            _write(d, "cgroup.freeze", "1" if on else "0")
            end = time.monotonic() + timeout
            while f"frozen {int(on)}" not in _read(d, "cgroup.events"):
                if time.monotonic() > end:
                    raise CgroupError(f"cgroup {d} did not {'freeze' if on else 'thaw'}")
                time.sleep(0.001)
        except FileNotFoundError as e:
            if on:
                raise CgroupError(f"cgroup {d} is gone: the container has stopped") from e
            # thawing let a killed container die, and liblxc removed its cgroup: thawed indeed
        except OSError as e:
            raise CgroupError(f"cgroup {d}: {e.strerror}") from e

    def enter(self, pid: int, skip: tuple[str, ...] = ()) -> None:
        """Move pid into every directory of this cgroup, except hierarchies holding a skipped controller."""
        self._check()
        for key, d in self.dirs.items():
            if any(s in key.split(",") for s in skip):
                continue
            try:
                _write(d, "cgroup.procs", str(pid))
            except OSError as e:
                raise CgroupError(f"cannot move process {pid} into {d}: {e.strerror}") from e

    def remove(self, timeout: float = 5.0) -> list[str]:
        """rmdir every directory, children first; returns what could not be removed."""
        self._check()
        left = []
        for d in self.dirs.values():
            if not os.path.isdir(d):
                continue
            subdirs = [os.path.join(dp, n) for dp, dn, _ in os.walk(d, topdown=False) for n in dn]
            for path in [*subdirs, d]:
                if not rmdir_while_busy(path, time.monotonic() + timeout):
                    left.append(path)
        return left


def rmdir_while_busy(path: str, end: float) -> bool:
    """rmdir a cgroup dir, retrying while the kernel says EBUSY (its last task is still exiting)
    until the monotonic time `end`; False if it stays."""
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > end:
                return False
            time.sleep(0.01)
