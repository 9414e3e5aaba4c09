"""The items every lxcri container has: rootfs, init helper, console, logging, hooks."""

from __future__ import annotations

from lxcri.lxcconf import INIT_IN_CONTAINER, Context, Items, escape_fstab
from lxcri.oci import spec as oci_spec


def base(config: dict[str, object], ctx: Context) -> Items:
    items: Items = [
        ("lxc.rootfs.path", f"dir:{ctx.rootfs}"),
        # a mount point of our own (liblxc's compiled-in one may not exist on a node), which
        # readonlyPaths bind from while liblxc sets the rootfs up
        ("lxc.rootfs.mount", ctx.rootfs_mount),
        # OCI requires /dev with the default devices; liblxc's autodev provides them
        ("lxc.autodev", "1"),
        # stdio is the caller's (or the console socket's pty): no liblxc console or ttys
        ("lxc.console.path", "none"),
        ("lxc.tty.max", "0"),
        ("lxc.pty.max", "0"),
        ("lxc.log.file", f"{ctx.runtime_dir}/lxc.log"),
        ("lxc.log.level", "TRACE" if ctx.debug else "ERROR"),
        # argv goes through the helper (lxc.init.cmd is split on spaces, unquoted)
        ("lxc.init.cmd", f"{INIT_IN_CONTAINER} {ctx.sync_fd} {ctx.fifo_fd}"),
    ]
    # root.readonly is applied by the init helper after pivot_root: liblxc's rootfs "ro"
    # would refuse to create the mount points the config needs in the rootfs
    return items


def init_mount(ctx: Context) -> Items:
    """The helper, bind-mounted read-only onto the /dev tmpfs: the rootfs stays untouched.

    It must come after every mount of the config (which may mount a fresh /dev).
    """
    return [("lxc.mount.entry",
             f"{escape_fstab(ctx.init_path)} {INIT_IN_CONTAINER.lstrip('/')} none bind,ro,create=file 0 0")]


def hooks(config: dict[str, object], ctx: Context) -> Items:
    """Route the OCI hook points that need liblxc's timing to lxcri's hook runner.

    All three creation points hang off liblxc's mount hook, which runs once the
    namespaces exist, in the container's mount namespace, before pivot_root. The
    runner there asks lxcri create (over the sync socket) to run prestart and
    createRuntime on the host, waits for them, then runs createContainer itself:
    the OCI order. (liblxc's start-host hook would come after the mounts, too late.)
    startContainer is run by the init helper, poststart by start, poststop by delete.
    """
    h = oci_spec.hooks(config)
    devices = oci_spec.linux(config).get("devices")
    if h.get("prestart") or h.get("createRuntime") or h.get("createContainer") or devices:
        return [("lxc.hook.mount", f"{ctx.hook_cmd} --sync-fd {ctx.sync_fd}")]
    return []
