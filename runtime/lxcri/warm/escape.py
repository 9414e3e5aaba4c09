"""What the server does about where it runs and what it runs: it leaves the cgroups of whoever
started it, loads the code its workers will run once, and notices when that code changed on disk.

Its starter is whatever call found no server: a pod's process, conmon, a shim. Left in that
cgroup, the server would be charged to it and killed with it; so it moves to CGROUP in every
hierarchy. And a worker must never run code older than what is on disk (an upgrade of lxcri,
of the lxc package, of the client binary): the snapshot taken after loading is compared on
every call, and a stale server retires.
"""

from __future__ import annotations

import os
import sys

from lxcri.warm.wire import entry_point

CGROUP = "/lxcri.warm"

Snapshot = dict[str, tuple[int, int, int, int] | None]


def leave_callers_cgroup() -> None:
    """Into /lxcri.warm in every hierarchy, one by one: a hierarchy that refuses keeps the server."""
    from lxcri.cgroups import Cgroup, levels
    from lxcri.errors import LxcriError

    try:
        dirs = Cgroup.at(CGROUP).dirs
    except LxcriError:
        return
    for key, d in dirs.items():
        try:
            os.makedirs(d, exist_ok=True)
            if "cpuset" in key.split(","):
                levels.fill_cpuset(d, os.path.dirname(d))  # a new v1 cpuset is empty until given them
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            continue


def preload() -> None:
    """Import what the warm commands use, once, so that workers start with it (create's modules
    and the liblxc binding alone cost a direct create about 15 ms of imports)."""
    import resource  # noqa: F401  (a worker takes its caller's limits)

    import _lxc  # noqa: F401
    import yaml  # noqa: F401  (read with /etc/lxcri/lxcri.yaml on every call where that file exists)

    import lxcri.calllog
    import lxcri.cli.main
    import lxcri.container.create
    import lxcri.container.delete
    import lxcri.container.exec
    import lxcri.container.kill
    import lxcri.container.listing
    import lxcri.container.pause
    import lxcri.container.ps
    import lxcri.container.start
    import lxcri.container.update
    import lxcri.settings  # noqa: F401


def _file_id(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ino, st.st_dev, st.st_size


def code_snapshot() -> Snapshot:
    """What a worker runs, as it was on disk when the server started: lxcri's modules, the liblxc
    binding, and liblxc itself as loaded (an upgrade of the lxc package must not go on being
    served from the old library). None: already replaced while we loaded it."""
    out: Snapshot = {}
    try:
        with open("/proc/self/maps") as maps:
            fields = [ln.rstrip("\n").split(maxsplit=5) for ln in maps if "liblxc" in ln]
        libs = {f[5].removesuffix(" (deleted)") for f in fields if len(f) == 6 and f[5].startswith("/")}
    except OSError:
        libs = set()
    for lib in libs:
        try:
            out[lib] = _file_id(lib)
        except OSError:
            out[lib] = None
    client = os.path.join(os.path.dirname(entry_point()), "lxcri")
    try:
        out[client] = _file_id(client)  # a client of a newer build speaks another protocol
    except OSError:
        pass
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and (mod.__name__.startswith("lxcri") or mod.__name__ == "_lxc"):
            try:
                out[f] = _file_id(f)
            except OSError:
                pass  # frozen (PyInstaller's archive): a tree never changes in place
    return out


def stale(snapshot: Snapshot) -> bool:
    for f, seen in snapshot.items():
        try:
            if _file_id(f) != seen:
                return True
        except OSError:
            return True
    return False
