"""Mount destinations resolved inside the container's root, as runc's securejoin does.

Images have symlinks on the way to where a pod mounts things: Debian's and Ubuntu's /var/run
points to /run, and Kubernetes mounts the service-account token at /var/run/secrets/.... liblxc
refuses any symlink in a mount target (rightly: followed on the host it could lead out of the
rootfs), so lxcri resolves each destination first, component by component, against the rootfs
as its root: an absolute link starts again at the rootfs, `..` never climbs above it, and what
does not exist yet is kept as written (liblxc creates it). liblxc still refuses a symlink
should one appear in between.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections import deque

from lxcri.errors import TranslateError

MAX_LINKS = 40  # as the kernel's own path walk


def resolve(rootfs: str, dest: str, field: str = "mounts[].destination") -> str:
    parts = deque(p for p in dest.split("/") if p)
    cur = "/"
    links = 0
    while parts:
        c = parts.popleft()
        if c == ".":
            continue
        if c == "..":
            cur = posixpath.dirname(cur) or "/"
            continue
        nxt = posixpath.join(cur, c)
        try:
            st = os.lstat(rootfs.rstrip("/") + nxt)
        except OSError:
            return posixpath.join(nxt, *parts) if parts else nxt  # not there yet: liblxc makes it
        if not stat.S_ISLNK(st.st_mode):
            cur = nxt
            continue
        links += 1
        if links > MAX_LINKS:
            raise TranslateError(f"config.json: {field} {dest!r}: too many symbolic links in the rootfs")
        target = os.readlink(rootfs.rstrip("/") + nxt)
        if target.startswith("/"):
            cur = "/"
        parts.extendleft(reversed([p for p in target.split("/") if p]))
    return cur


def resolve_mounts(config: dict[str, object], rootfs: str) -> None:
    """Rewrite every mount destination that crosses a symlink in the rootfs to where it leads."""
    mounts = config.get("mounts")
    if not isinstance(mounts, list):
        return
    for i, m in enumerate(mounts):
        if isinstance(m, dict) and isinstance(m.get("destination"), str) and m["destination"].startswith("/"):
            m["destination"] = resolve(rootfs, m["destination"], f"mounts[{i}].destination")
