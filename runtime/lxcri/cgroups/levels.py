"""The levels of a container's cgroup path: which a create will make, and v1 cpuset set-up.

liblxc makes every missing level of lxc.cgroup.dir.container in every hierarchy, from
the root (see lxcconf/cgroups.py: placement). On a cgroup v1 cpuset hierarchy a new
cgroup has empty cpuset.cpus and cpuset.mems unless its parent has
cgroup.clone_children=1, and no task can enter an empty cpuset ("No space left on
device"). liblxc fills only the first level below its base; kubelet makes its pod
cgroups with clone_children=0, so the container's own cgroup below them stayed empty.
runc copies cpus and mems down from the nearest ancestor that has them, at every level;
lxcri does the same: it makes the missing levels above the container's cgroup in the
cpuset hierarchy itself and fills every empty level on the way, and gives the
container's cgroup (which liblxc must make: it refuses one that exists) its parent's
values as lxc.cgroup.cpuset.* items, which liblxc writes before the init enters.

What a create will make is recorded before it makes anything (container/teardown.py:
claims), so that a failed create and delete remove exactly that and never a cgroup that
existed before.
"""

from __future__ import annotations

import os

from lxcri.cgroups.fs import Hierarchy, hierarchies
from lxcri.errors import CgroupError

CPUSET_FILES = ("cpuset.cpus", "cpuset.mems")
# on a level above a container's cgroup that an lxcri create made: any container's teardown may
# remove it once empty (the one that made it may be gone first). trusted.*: only root sets it.
MADE = "trusted.lxcri.made"


def prefixes(path: str) -> list[str]:
    """/a/b/c -> [/a, /a/b, /a/b/c]."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise CgroupError(f"refusing cgroup path {path!r}: not a cgroup below the root")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def dir_of(h: Hierarchy, path: str) -> str:
    return os.path.join(h.mountpoint, path.lstrip("/"))


def missing(path: str) -> tuple[list[str], list[str]]:
    """(leaves, parents): the directories of `path` itself, and of the levels above it, that do
    not exist yet in the hierarchies mounted here; parents deepest first."""
    levels = prefixes(path)
    leaves: list[str] = []
    parents: list[str] = []
    for h in hierarchies():
        if not os.path.isdir(h.mountpoint):
            continue
        leaf = dir_of(h, levels[-1])
        if not os.path.exists(leaf):
            leaves.append(leaf)
        for level in reversed(levels[:-1]):
            d = dir_of(h, level)
            if os.path.exists(d):
                break  # and so do the levels above it
            parents.append(d)
    return leaves, parents


def _cpuset_v1() -> Hierarchy | None:
    return next((h for h in hierarchies() if h.version == 1 and "cpuset" in h.controllers), None)


def _read(d: str, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def fill_cpuset(d: str, parent: str) -> None:
    """Give d its parent's cpus and mems where it has none (as runc's cpuset copy-down)."""
    for name in CPUSET_FILES:
        if not _read(d, name):
            with open(os.path.join(d, name), "w") as f:
                f.write(_read(parent, name))


def prepare_cpuset(path: str) -> dict[str, str]:
    """On a v1 cpuset hierarchy: make the missing levels above `path` and give every level on
    the way cpus and mems; the values for `path` itself (its parent's), for liblxc to write
    when it makes it. Empty where there is no v1 cpuset hierarchy (v2 inherits by itself).

    Only levels that `missing()` listed are made, and the caller recorded them first. An
    existing level is written only when it has no cpus or mems, which also means no task
    can be in it: as runc, and nothing that works changes.
    """
    h = _cpuset_v1()
    if h is None:
        return {}
    parent = d = h.mountpoint
    try:
        for level in prefixes(path)[:-1]:
            d = dir_of(h, level)
            try:
                os.mkdir(d, 0o755)
            except FileExistsError:
                pass
            fill_cpuset(d, parent)
            parent = d
        return {name: _read(parent, name) for name in CPUSET_FILES}
    except OSError as e:
        raise CgroupError(f"cannot set up the cpuset cgroup {d}: {e.strerror}") from e


def mark_made(dirs: list[str]) -> None:
    """Mark the levels a create made (they exist once its init is in its cgroup)."""
    for d in dirs:
        try:
            os.setxattr(d, MADE, b"1")
        except OSError:
            pass  # gone already, or a filesystem without xattrs: only its maker removes it


def _made(d: str) -> bool:
    try:
        return os.getxattr(d, MADE) == b"1"
    except OSError:
        return False


def remove_made(path: str, recorded: list[str]) -> None:
    """rmdir the levels above the cgroup `path` that an lxcri create made (recorded by this
    container's, or marked by another's), deepest first, in every hierarchy; each only itself
    and once: a level that holds a cgroup (another container's) or a task stays, and so does
    everything above it. A level nobody recorded or marked existed before: it always stays."""
    ours = set(recorded)
    for h in hierarchies():
        for level in reversed(prefixes(path)[:-1]):
            d = dir_of(h, level)
            if d not in ours and not _made(d):
                break
            try:
                os.rmdir(d)
            except FileNotFoundError:
                continue
            except OSError:
                break


# The first level below the root, as it was before liblxc ran: liblxc "initialises" that level
# whether it existed or not, writing clone_children=1 and (when the root's clone_children is 0)
# the root's cpus and mems into it, which widens a cpuset someone narrowed (measured here).
FirstLevel = tuple[str, dict[str, str]]


def snapshot_first_level(path: str) -> FirstLevel | None:
    """The first level of `path` in the v1 cpuset hierarchy, if it exists: its dir and values."""
    h = _cpuset_v1()
    if h is None:
        return None
    d = dir_of(h, prefixes(path)[0])
    try:
        return d, {name: _read(d, name) for name in (*CPUSET_FILES, "cgroup.clone_children")}
    except OSError:
        return None


def restore_first_level(snap: FirstLevel | None) -> None:
    """Put back what liblxc changed on an existing first level, where the kernel lets us: once a
    child has taken the wider values (another create meanwhile), narrowing fails and they stay."""
    if snap is None:
        return
    d, values = snap
    for name, value in values.items():
        try:
            if _read(d, name) != value:
                with open(os.path.join(d, name), "w") as f:
                    f.write(value)
        except OSError:
            pass
