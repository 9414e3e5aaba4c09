"""Host-side clones of shared bind mounts, for Kubernetes' Bidirectional volumes.

liblxc makes every mount it inherits a slave before it binds the config's mounts,
so a bind it makes can never pass the container's mounts back to the host. For a
bind with shared propagation, lxcri clones the source here, in the host's mount
namespace (open_tree: a clone of a shared mount joins its peer group), and hands
the clone's fd to the init helper, which moves it onto the destination inside the
container (move_mount). The container's mount is then a peer of the host's.
"""

from __future__ import annotations

import os

from lxcri.errors import SpecError
from lxcri.lxcconf import mounts

SYS_OPEN_TREE = 428  # the same number on every architecture (added in 5.2)
OPEN_TREE_CLONE = 1
AT_RECURSIVE = 0x8000
AT_FDCWD = -100


def clone(config: dict[str, object], every: bool = False) -> tuple[list[tuple[str, int]], list[int], dict[int, bool]]:
    """(destination, flags) for the helper and the clones' fds, in the same order; with
    every, all binds (a joined user namespace) and which of them liblxc makes a mount point for."""
    binds = mounts.host_binds(config, every)
    if not binds:
        return [], [], {}
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    out: list[tuple[str, int]] = []
    fds: list[int] = []
    try:
        for _i, source, dest, recursive, flags in binds:
            fd = libc.syscall(SYS_OPEN_TREE, AT_FDCWD, source.encode(),
                              OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0))
            if fd < 0:
                err = ctypes.get_errno()
                raise SpecError(f"config.json: mount {dest}: cannot clone {source}: {os.strerror(err)}")
            fds.append(fd)
            out.append((dest, flags))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return out, fds, (mounts.clone_points(binds) if every else {})
