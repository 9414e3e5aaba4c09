"""From a validated bundle to what the container is made of: liblxc config items (through the
pure lxcconf/ modules, given the host facts they need) and the init helper's spec.

The one place that knows which OCI section goes where; docs/architecture.md has the table.
Host facts are read here (what a path is on the host or in the rootfs, what lxcfs serves),
so that lxcconf/ stays free of I/O.
"""

from __future__ import annotations

import os
import sys

from lxcri import lxcconf
from lxcri.container import nspaths
from lxcri.errors import LxcriError
from lxcri.libexec.protocol import Hook, InitSpec
from lxcri.lxcconf import base, cgroups, mounts, namespaces
from lxcri.lxcconf import process as lxcprocess
from lxcri.oci import capabilities, seccomp, spec

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def _kind_of_host(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat

    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def _kind_in_container(rootfs: str) -> mounts.KindOf:
    """What a container path is, for masks: /proc and /sys are the kernel's, the rest the rootfs's."""

    def kind(path: str) -> str | None:
        if path == "/proc" or path.startswith(("/proc/", "/sys/")) or path == "/sys":
            return _kind_of_host(path)
        try:
            st = os.lstat(os.path.join(rootfs, path.lstrip("/")))
        except OSError:
            return None
        import stat

        if stat.S_ISLNK(st.st_mode):
            return None  # never follow a rootfs symlink from the host
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            return "fifo"  # liblxc would block opening it: the init helper masks these
        return "dir" if stat.S_ISDIR(st.st_mode) else "file"

    return kind


def _lxcfs_mounts(path: str) -> lxcconf.Items:
    """lxcfs's binds, after a look at what is mounted at path and which views it serves."""
    from lxcri.lxcconf import lxcfs

    try:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    except OSError:
        mountinfo = ""
    present = {rel for rel in lxcfs.FILES if os.path.isfile(os.path.join(path, rel))}
    return lxcfs.mounts(path, mountinfo, present)


def translate(bundle: spec.Bundle, ctx: lxcconf.Context, systemd: bool, lxcfs_default: bool = False,
              lxcfs_path: str = "/var/lib/lxcfs") -> lxcconf.Items:
    from lxcri.lxcconf import lxcfs

    cfg = bundle.config
    kind_of = _kind_in_container(bundle.rootfs)
    items: lxcconf.Items = []
    items += base.base(cfg, ctx)
    items += namespaces.namespaces(cfg, ctx)
    nspaths.check(cfg)
    items += cgroups.placement(ctx)
    items += cgroups.devices(cfg, ctx)
    items += cgroups.resources(cfg, ctx)
    items += lxcprocess.process(cfg)
    items += mounts.mounts(cfg, ctx, _kind_of_host)
    if lxcfs.wanted(cfg, lxcfs_default):
        items += _lxcfs_mounts(lxcfs_path)  # over the config's /proc and /sys, so after them
    items += mounts.masked_paths(cfg, kind_of)
    items += base.init_mount(ctx)
    items += mounts.devpts_guard(cfg)
    items += base.hooks(cfg, ctx)
    return items


def process_spec(p: dict[str, Any], cfg: dict[str, Any], preserve_fds: int) -> InitSpec:
    """What the helper needs of an OCI process to run it, for the container's init and for an
    exec alike; the seccomp filter is the container's (linux.seccomp) in both."""
    user = spec.user(p)
    return InitSpec(
        args=p["args"], env=p.get("env") or [], terminal=bool(p.get("terminal")),
        umask=user.get("umask"), preserve_fds=preserve_fds,
        uid=user.get("uid", 0), gid=user.get("gid", 0), gids=list(user.get("additionalGids") or []),
        caps=capabilities.masks(p.get("capabilities")),
        no_new_privs=bool(p.get("noNewPrivileges")), cwd=p.get("cwd") or "/",
        seccomp=seccomp.encode(spec.linux(cfg).get("seccomp")), personality=spec.personality(p),
    )


def init_spec(cfg: dict[str, Any], preserve_fds: int) -> InitSpec:
    """What the init helper is told; its `state` (for startContainer hooks) is set once the init is known."""
    out = process_spec(cfg["process"], cfg, preserve_fds)
    out.hooks = [Hook(path=h["path"], args=h.get("args") or [h["path"]], env=h.get("env") or [],
                      timeout=h.get("timeout") or 0)
                 for h in spec.hooks(cfg).get("startContainer", [])]
    out.domainname = spec.check_text(cfg.get("domainname") or "", "domainname")
    out.readonly_root = bool(spec.root(cfg).get("readonly"))
    out.readonly_paths = mounts.readonly_paths(cfg)
    out.masked_paths = mounts.masked_path_list(cfg)
    out.mount_attrs = mounts.recursive_attrs(cfg)
    out.propagation = mounts.propagation(cfg)
    out.hostname = spec.check_text(cfg.get("hostname") or "", "hostname")
    return out


def hook_command(root: str) -> str:
    """What liblxc runs at its hook points: this very lxcri, `--root ROOT hook`.

    liblxc appends `ID lxc TYPE` and splits the command on spaces without any
    quoting, so neither path may contain whitespace.
    """
    me = os.path.realpath(sys.argv[0])
    if not os.access(me, os.X_OK):
        raise LxcriError(f"cannot find lxcri's own executable ({sys.argv[0]}) to run OCI hooks")
    for part in (me, root):
        if any(c.isspace() for c in part):
            raise LxcriError(f"{part!r} contains whitespace: liblxc cannot run hooks from there")
    return f"{me} --root {root} hook"
