"""linux.devices: checked at create, made by the mount hook in the container's fresh /dev.

liblxc has no config item for arbitrary device nodes, so lxcri's mount hook (in the
container's mount namespace, before pivot_root, after the /dev tmpfs is mounted)
makes them with mknod. The default devices (null, zero, ...) come from liblxc's autodev.
"""

from __future__ import annotations

import os
import posixpath
import stat

from lxcri.errors import LxcriError, SpecError
from lxcri.oci import spec as oci_spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
DEFAULTS = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}


def check_devices(config: dict[str, Any]) -> list[dict[str, Any]]:
    devs = oci_spec.linux(config).get("devices") or []
    if not isinstance(devs, list):
        raise SpecError("config.json: linux.devices must be a list")
    out = []
    for i, d in enumerate(devs):
        where = f"linux.devices[{i}]"
        if not isinstance(d, dict):
            raise SpecError(f"config.json: {where} must be an object")
        path = d.get("path")
        if not isinstance(path, str) or not path.startswith("/dev/") or "\0" in path:
            raise SpecError(f"config.json: {where}.path must be a path under /dev")
        norm = posixpath.normpath(path)
        if not norm.startswith("/dev/") or ".." in norm.split("/"):
            raise SpecError(f"config.json: {where}.path {path!r} leaves /dev")
        if d.get("type") not in TYPES:
            raise SpecError(f"config.json: {where}.type must be c, b, u or p")
        for k in ("major", "minor"):
            v = d.get(k, 0)
            if d.get("type") != "p" and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise SpecError(f"config.json: {where}.{k} must be a non-negative integer")
        for k in ("fileMode", "uid", "gid"):
            v = d.get(k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise SpecError(f"config.json: {where}.{k} must be a non-negative integer")
        if norm not in DEFAULTS:
            out.append({**d, "path": norm})
    return out


def make_devices(rootfs_mount: str, devices: list[dict[str, Any]]) -> None:
    """mknod each device below rootfs_mount/dev, never through a symlink out of it."""
    if not rootfs_mount or not os.path.isdir(rootfs_mount):
        raise LxcriError("cannot make devices: liblxc gave no rootfs mount point")
    dev_root = os.path.realpath(os.path.join(rootfs_mount, "dev"))
    for d in devices:
        rel = d["path"][len("/dev/"):]
        target = os.path.join(dev_root, rel)
        parent = os.path.dirname(target)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        if os.path.realpath(parent) != os.path.normpath(parent) or not parent.startswith(dev_root):
            raise LxcriError(f"device {d['path']}: its directory is a symlink")
        perm: int = d["fileMode"] if d.get("fileMode") is not None else 0o666
        mode = TYPES[d["type"]] | perm
        try:
            if os.path.lexists(target):
                os.unlink(target)
            os.mknod(target, mode, os.makedev(d.get("major", 0), d.get("minor", 0)))
            os.chown(target, d.get("uid", 0), d.get("gid", 0), follow_symlinks=False)
            os.chmod(target, mode & 0o7777)
        except OSError as e:
            raise LxcriError(f"device {d['path']}: {e.strerror}") from e
