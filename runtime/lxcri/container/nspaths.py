"""Namespace paths in config.json, checked before liblxc is asked to join them.

liblxc joins a path with setns(fd, 0), which accepts a namespace of any type: a
network entry that names a UTS namespace would silently join the wrong one. Each
path is opened here and asked its type (NS_GET_NSTYPE), so a wrong or missing
path is one clear error before anything is made.
"""

from __future__ import annotations

import os

from lxcri.errors import TranslateError
from lxcri.oci import spec as oci_spec

NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
CLONE_FLAGS = {
    "mount": 0x00020000, "cgroup": 0x02000000, "uts": 0x04000000, "ipc": 0x08000000,
    "user": 0x10000000, "pid": 0x20000000, "network": 0x40000000, "time": 0x00000080,
}


class NotANamespace(OSError):
    pass


def open_namespace(path: str) -> int:
    """A readable fd of the namespace file at path, and of nothing else. The path is the
    config's: opening what it names for reading could start a device (a watchdog) or block
    on a FIFO, so it is first opened O_PATH (no effect on what it names), checked to be a
    namespace file (nsfs: the filesystem of /proc/self/ns/*), and only then reopened."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_dev != os.stat("/proc/self/ns/net").st_dev:
            raise NotANamespace(f"{path} is not a namespace file")
        return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    finally:
        os.close(fd)


def check(config: dict[str, object]) -> None:
    for i, ns in enumerate(oci_spec.linux(config).get("namespaces") or []):
        if not isinstance(ns, dict) or not ns.get("path") or ns.get("type") not in CLONE_FLAGS:
            continue  # created, or refused with its own message by the translation
        path, kind = ns["path"], ns["type"]
        field = f"linux.namespaces[{i}].path"
        if not isinstance(path, str) or not path.startswith("/"):
            raise TranslateError(f"config.json: {field} must be an absolute path")
        try:
            fd = open_namespace(path)
        except NotANamespace as e:
            raise TranslateError(f"config.json: {field} {path} is not a namespace") from e
        except OSError as e:
            raise TranslateError(f"config.json: {field} {path}: {e.strerror}") from e
        try:
            import fcntl

            got = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError as e:
            raise TranslateError(f"config.json: {field} {path} is not a namespace") from e
        finally:
            os.close(fd)
        if kind == "mount":
            _not_the_hosts_mount_namespace(path, field)
        if got != CLONE_FLAGS[kind]:
            names = {v: k for k, v in CLONE_FLAGS.items()}
            raise TranslateError(f"config.json: {field} {path} is a {names.get(got, 'different')} namespace, "
                                 f"not a {kind} namespace")


def _not_the_hosts_mount_namespace(path: str, field: str) -> None:
    """liblxc sets the rootfs up in a joined mount namespace and pivot_roots there, which
    moves the root of every process in it: never lxcri's own namespace, nor pid 1's."""
    target = os.stat(path)
    for own in ("/proc/self/ns/mnt", "/proc/1/ns/mnt"):
        try:
            st = os.stat(own)
        except OSError:
            continue  # pid 1's may be hidden from us (another pid namespace, or EACCES)
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            raise TranslateError(f"config.json: {field} {path} is the host's mount namespace: the container's "
                                 "root would replace the host's there")


NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace that owns a namespace


def sysfs_needs_host_view(config: dict[str, object]) -> bool:
    """True when the container has a user namespace but its network namespace is owned by
    another one (the host's, or a pod's made outside the pod's user namespace): the kernel
    then refuses a fresh sysfs, and the container gets a read-only view of the host's /sys
    instead, as runc and crun do (see lxcconf.mounts.sysfs_as_bind)."""
    nss = [ns for ns in oci_spec.linux(config).get("namespaces") or [] if isinstance(ns, dict)]
    user = next((ns for ns in nss if ns.get("type") == "user"), None)
    net = next((ns for ns in nss if ns.get("type") == "network"), None)
    if user is None or (net is not None and not net.get("path")):
        return False  # no user namespace, or a new network namespace made inside it
    if net is None or not user.get("path"):
        return True  # the host's network namespace, or a user namespace newer than the joined one
    import fcntl

    try:
        fd = open_namespace(str(net["path"]))
    except OSError:
        return True  # check() names the path
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
    except OSError:
        return True  # owned by a user namespace above ours: certainly not the container's
    finally:
        os.close(fd)
    try:
        a, b = os.fstat(owner), os.stat(str(user["path"]))
    except OSError:
        return True
    finally:
        os.close(owner)
    return (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)


def joins_user_namespace(config: dict[str, object]) -> bool:
    """A user namespace given by path (CRI-O's for a hostUsers: false pod)."""
    return any(isinstance(ns, dict) and ns.get("type") == "user" and ns.get("path")
               for ns in oci_spec.linux(config).get("namespaces") or [])
