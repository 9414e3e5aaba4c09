"""mounts, maskedPaths and readonlyPaths -> lxc.mount.entry / lxc.mount.auto.

Destinations are relative to the rootfs; liblxc resolves them without leaving
it (it refuses symlinks that point outside), and lxcri refuses `..` outright.
The kind of a path (file or directory) decides how a bind or a mask is made; the
caller supplies `kind_of`, which looks at the host source or inside the rootfs.
"""

from __future__ import annotations

import posixpath

from lxcri.errors import TranslateError
from lxcri.lxcconf import Context, Items, escape_fstab
from lxcri.lxcconf.namespaces import created_namespaces
from lxcri.oci import spec as oci_spec
from lxcri.oci.spec import check_text

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    KindOf = Callable[[str], str | None]  # path -> "dir" | "file" | None (missing)


# OCI options that are not mount(2) flags liblxc understands, or are handled here
_DROP = {"rbind", "bind", "tmpcopyup", "idmap", "ridmap", "copy-symlink", "src-nofollow", "dest-nofollow"}

# Recursive mount attributes (runtime-spec's r* options, e.g. "rro" for Kubernetes'
# recursiveReadOnly volumes): (MOUNT_ATTR_* to set, to clear). The init helper applies them
# with mount_setattr(AT_RECURSIVE) once liblxc has made every mount, as runc and crun do;
# mount(2) has no recursive read-only. An atime mode replaces the others (MOUNT_ATTR__ATIME).
_RDONLY, _NOSUID, _NODEV, _NOEXEC, _ATIME, _NOATIME, _STRICTATIME, _NODIRATIME, _NOSYMFOLLOW = (
    0x1, 0x2, 0x4, 0x8, 0x70, 0x10, 0x20, 0x80, 0x200000)
RECURSIVE_ATTRS = {
    "rro": (_RDONLY, 0), "rrw": (0, _RDONLY), "rnosuid": (_NOSUID, 0), "rsuid": (0, _NOSUID),
    "rnodev": (_NODEV, 0), "rdev": (0, _NODEV), "rnoexec": (_NOEXEC, 0), "rexec": (0, _NOEXEC),
    "rnodiratime": (_NODIRATIME, 0), "rdiratime": (0, _NODIRATIME), "rnosymfollow": (_NOSYMFOLLOW, 0),
    "rsymfollow": (0, _NOSYMFOLLOW), "rrelatime": (0, _ATIME), "rnoatime": (_NOATIME, _ATIME),
    "rstrictatime": (_STRICTATIME, _ATIME),
}
# the flat option each one undoes, for a mount nested below one that has it (see recursive_attrs)
_FLAT = {_RDONLY: "ro", _NOSUID: "nosuid", _NODEV: "nodev", _NOEXEC: "noexec", _NODIRATIME: "nodiratime",
         _NOSYMFOLLOW: "nosymfollow"}


def container_path(dest: object, field: str) -> str:
    """A destination inside the rootfs, normalised, relative, never above it."""
    d = check_text(dest, field)
    if not d.startswith("/"):
        d = "/" + d  # runc accepts relative destinations as relative to /
    norm = posixpath.normpath(d)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if ".." in norm.split("/"):
        raise TranslateError(f"config.json: {field} {dest!r} leaves the rootfs")
    return norm


def sysfs_as_bind(config: dict[str, Any]) -> None:
    """Each sysfs mount becomes a recursive bind of the host's /sys, read-only all the way
    down when the config asks for ro (runc and crun fall back the same way where the kernel
    refuses a fresh sysfs: a user namespace that does not own the network namespace)."""
    for m in config.get("mounts") or []:
        if not isinstance(m, dict) or m.get("type") != "sysfs":
            continue
        options = [o for o in m.get("options") or [] if isinstance(o, str)]
        ro = "ro" in options
        kept = [o for o in options if o in ("nosuid", "nodev", "noexec")]
        m.update(type="bind", source="/sys", options=["rbind", *kept, *(["ro", "rro"] if ro else [])])


def is_bind(fstype: object, options: list[str]) -> bool:
    return fstype == "bind" or "bind" in options or "rbind" in options


def _entry(source: str, dest: str, fstype: str, options: list[str]) -> tuple[str, str]:
    # every field escaped: liblxc reads the entry as an fstab line (getmntent), whose fields
    # are separated by blanks and whose \\040-style escapes it decodes in each of them
    opts = ",".join(options) if options else "defaults"
    return ("lxc.mount.entry",
            f"{escape_fstab(source)} {escape_fstab(dest.lstrip('/'))} {escape_fstab(fstype)} "
            f"{escape_fstab(opts)} 0 0")


def check_fstype(value: object, field: str) -> str:
    """A filesystem type as mount(2) takes it (`tmpfs`, `fuse.sshfs`): nothing that could shift
    the fields of an fstab line or name a second type."""
    t = check_text(value, field)
    if not t or not all(c.isalnum() or c in "._+-" for c in t) or not t.isascii():
        raise TranslateError(f"config.json: {field} {t!r} is not a filesystem type name")
    return t


def check_option(value: object, field: str) -> str:
    """One mount option: no blank (a field separator of the entry), no control character."""
    o = check_text(value, field)
    if any(c.isspace() for c in o):
        raise TranslateError(f"config.json: {field} {o!r} contains whitespace")
    return o


def mounts(config: dict[str, Any], ctx: Context, kind_of: KindOf) -> Items:
    items: Items = []
    for i, m in enumerate(config.get("mounts") or []):
        field = f"mounts[{i}]"
        if not isinstance(m, dict):
            raise TranslateError(f"config.json: {field} must be an object")
        dest = container_path(m.get("destination"), f"{field}.destination")
        fstype = check_fstype(m.get("type") or "none", f"{field}.type")
        source = m.get("source") or fstype
        check_text(source, f"{field}.source")
        options = m.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise TranslateError(f"config.json: {field}.options must be a list of strings")
        for j, o in enumerate(options):
            check_option(o, f"{field}.options[{j}]")
        # devpts is mounted like any other mount, in the config's order (liblxc's own, with
        # lxc.pty.max, would come after all of them); the init helper then makes /dev/ptmx
        # the symlink to pts/ptmx that the runtime-spec asks for
        if fstype == "cgroup" or fstype == "cgroup2":
            items += cgroup_mounts(dest, "ro" in options, config, ctx)
            continue
        for o in options:
            if o in ("ratime", "rnorelatime", "rnostrictatime"):
                raise TranslateError(f"config.json: {field}.options: {o!r} is not supported (see `lxcri features`)")
        kept = [o for o in options if o not in _DROP and o not in RECURSIVE_ATTRS and "," not in o]
        if is_bind(fstype, options):
            if not source.startswith("/"):
                raise TranslateError(f"config.json: {field}.source of a bind mount must be absolute")
            kind = kind_of(source)
            if kind is None:
                raise TranslateError(f"config.json: {field}: bind source {source} does not exist")
            if i in ctx.cloned:
                if ctx.cloned[i]:  # the mount point only: the helper moves the host's clone over it
                    holder, create = ((ctx.placeholder_dir, "create=dir") if kind == "dir"
                                      else (ctx.placeholder_file, "create=file"))
                    items.append(_entry(holder, dest, "none", ["bind", "ro", create]))
                continue
            flag = "rbind" if "rbind" in options else "bind"
            create = "create=dir" if kind == "dir" else "create=file"
            if "idmap" in options or "ridmap" in options:
                kept.append(idmap_option(m, config, field))
            items.append(_entry(source, dest, "none", [flag, *kept, create]))
        else:
            label = oci_spec.linux(config).get("mountLabel")
            if label and fstype in ("tmpfs", "mqueue", "devpts", "shm"):
                # SELinux: the files of a fresh filesystem get the container's label (runc's set)
                kept.append(f'context="{label}"')
            items.append(_entry(source, dest, fstype, [*kept, "create=dir"]))
    return items


def _norm_maps(maps: object) -> list[str]:
    if not isinstance(maps, list):
        return []
    return sorted(f'{m.get("containerID")}:{m.get("hostID")}:{m.get("size")}' for m in maps if isinstance(m, dict))


def idmap_option(m: dict[str, Any], config: dict[str, Any], field: str) -> str:
    """An idmapped bind (`idmap`/`ridmap`, as CRI-O asks for a user-namespaced pod's volumes):
    liblxc's `idmap=container` mounts it with the container's own mapping, so that files the
    host's ids own appear with the container's ids inside. A mount may name its own mapping;
    one equal to the container's is the same thing, another one liblxc cannot make here."""
    if "user" not in created_namespaces(config):
        raise TranslateError(f"config.json: {field}: an idmap mount needs a new user namespace")
    linux = oci_spec.linux(config)
    for key in ("uidMappings", "gidMappings"):
        own = m.get(key)
        if own is not None and _norm_maps(own) != _norm_maps(linux.get(key)):
            raise TranslateError(f"config.json: {field}.{key}: an idmap mount with a mapping other than the "
                                 f"container's (linux.{key}) is not supported")
    return "idmap=container"


def devpts_guard(config: dict[str, Any]) -> Items:
    """A throwaway mount over the config's devpts, for liblxc to take away.

    Once the config's mounts are made, liblxc unmounts whatever is at /dev/pts (it would
    mount its own devpts there if lxc.pty.max asked for one), so the config's devpts is
    covered by this tmpfs, the last of the mounts, and liblxc's unmount removes the cover.
    The init helper removes the cover itself should a liblxc not do it. The config's
    devpts thus keeps its place in the mount order, which the runtime-spec asks for.
    """
    for m in config.get("mounts") or []:
        if isinstance(m, dict) and m.get("type") == "devpts" and m.get("destination") in ("/dev/pts", "/dev/pts/"):
            return [_entry("lxcri-devpts-guard", "/dev/pts", "tmpfs", ["size=4k", "mode=000", "optional"])]
    return []


def cgroup_mounts(dest: str, ro: bool, config: dict[str, Any], ctx: Context) -> Items:
    """A `cgroup` mount: where the process finds its own cgroups, as runc lays them out.

    With a cgroup namespace the hierarchies themselves show the container's cgroup as
    their root, and liblxc mounts them. Without one, a tmpfs at the destination gets
    each hierarchy's directory of this container bound in, so that /sys/fs/cgroup/memory
    holds the container's memory.limit_in_bytes (liblxc's own layout would repeat the
    host path below it).
    """
    if "cgroup" in created_namespaces(config) or not ctx.hierarchies:
        return [("lxc.mount.auto", f"cgroup:{'ro' if ro else 'rw'}:force")]
    flags = ["nosuid", "nodev", "noexec"]
    items = [_entry("tmpfs", dest, "tmpfs", [*flags, "mode=755", "size=64k", "create=dir"])]
    for name, mountpoint in ctx.hierarchies:
        src = mountpoint.rstrip("/") + ctx.cgroup_path
        items.append(_entry(src, f"{dest}/{name}", "none", ["bind", *(["ro"] if ro else []), *flags, "create=dir"]))
    return items


MS_REC, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 0x4000, 0x20000, 0x40000, 0x80000, 0x100000
PROPAGATION = {
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}


def propagation(config: dict[str, Any]) -> list[tuple[str, int]]:
    """Mount propagation the init helper applies after pivot_root: the root first, then each mount's.

    liblxc turns the container's mounts into shared ones of its own while it sets them
    up, whatever lxc.rootfs.options or a mount entry asked for, so the helper sets them
    once liblxc is done, in runc's order. Without linux.rootfsPropagation the root is
    made rslave, as runc does: the container sees the host's mounts come and go, never
    the other way round.
    """
    linux = oci_spec.linux(config)
    root = linux.get("rootfsPropagation") or "rslave"
    if not isinstance(root, str) or root not in PROPAGATION:
        raise TranslateError(f"config.json: linux.rootfsPropagation {root!r} is not one of "
                             f"{', '.join(sorted(PROPAGATION))}")
    out = [("/", PROPAGATION[root] | MS_REC)]
    for i, m in enumerate(config.get("mounts") or []):
        opts = [o for o in (m.get("options") or []) if o in PROPAGATION]
        if len(opts) > 1:
            raise TranslateError(f"config.json: mounts[{i}] has more than one propagation option: {', '.join(opts)}")
        if opts and m.get("type") not in ("cgroup", "cgroup2"):
            out.append((container_path(m.get("destination"), f"mounts[{i}].destination"), PROPAGATION[opts[0]]))
    return out


_REMOUNT_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8}  # MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC


def host_binds(config: dict[str, Any], every: bool) -> list[tuple[int, str, str, bool, int]]:
    """Bind mounts lxcri clones on the host (index, host source, container destination,
    recursive, mount flags to keep): those with shared propagation, or every one.

    Shared ones, as Kubernetes' Bidirectional volumes are: liblxc turns every inherited mount
    into a slave before it binds, so what it binds can receive the host's mounts but never
    give its own back. For these, lxcri clones the source on the host (open_tree: the clone
    is a peer of a shared source) and the init helper moves the clone onto the destination,
    as a peer of the host's mount.

    Every one, for a container that joins a user namespace (a hostUsers: false pod): liblxc
    binds from inside that namespace, whose root cannot even look up a source below the
    kubelet's and the CRI's private directories; a clone made by the host's root can be
    moved in, as runc does for such pods.
    """
    out = []
    for i, m in enumerate(config.get("mounts") or []):
        opts = m.get("options") or []
        if is_bind(m.get("type"), opts) and (every or "shared" in opts or "rshared" in opts):
            flags = 0
            for o in opts:
                flags |= _REMOUNT_FLAGS.get(o, 0)
            out.append((i, str(m.get("source")), container_path(m.get("destination"), f"mounts[{i}].destination"),
                        "rbind" in opts, flags))
    return out


def clone_points(binds: list[tuple[int, str, str, bool, int]]) -> dict[int, bool]:
    """For binds that only clones make: index -> True where liblxc makes the mount point (a
    bind of an empty placeholder there, in the config's order), False where the destination
    lies below an earlier clone's, in a volume that only the helper sees: it makes those."""
    points: dict[int, bool] = {}
    before: list[str] = []
    for i, _src, dest, _rec, _flags in binds:
        points[i] = not any(dest.startswith(d.rstrip("/") + "/") for d in before)
        before.append(dest)
    return points


def _linux_paths(config: dict[str, Any], key: str) -> list[str]:
    linux = oci_spec.linux(config)
    return [container_path(p, f"linux.{key}[{i}]") for i, p in enumerate(linux.get(key) or [])]


def readonly_paths(config: dict[str, Any]) -> list[str]:
    """linux.readonlyPaths, normalised: the init helper makes them read-only after liblxc's sysctls."""
    return _linux_paths(config, "readonlyPaths")


def masked_path_list(config: dict[str, Any]) -> list[str]:
    """linux.maskedPaths, normalised, for the init helper: it masks the FIFOs and sockets among
    them (liblxc opens a mount target, which blocks on a FIFO), after pivot_root."""
    return _linux_paths(config, "maskedPaths")


def masked_paths(config: dict[str, Any], kind_of: KindOf) -> Items:
    """maskedPaths hide a path (a file under /dev/null, a dir under an empty read-only tmpfs),
    skipping paths the container lacks. (readonlyPaths are the init helper's, see readonly_paths.)"""
    items: Items = []
    for dest in masked_path_list(config):
        kind = kind_of(dest)
        if kind == "dir":
            items.append(_entry("tmpfs", dest, "tmpfs", ["ro", "nosuid", "nodev", "noexec", "size=0", "optional"]))
        elif kind == "file":
            items.append(_entry("/dev/null", dest, "none", ["bind", "optional"]))
    return items


def recursive_attrs(config: dict[str, Any]) -> list[tuple[str, int, int, bool]]:
    """The recursive mount attributes the init helper applies, in order:
    (destination, MOUNT_ATTR_* to set, to clear, recursive).

    runc sets a mount's attributes right after making it, so mounts the config makes
    later below it keep their own; the helper comes after all of them, so each such
    nested mount, unless it asked for the flag itself, gets it cleared again (on that
    mount alone) right after the recursive change.
    """
    dests: list[tuple[str, list[str]]] = []
    for i, m in enumerate(config.get("mounts") or []):
        if isinstance(m, dict):
            dests.append((container_path(m.get("destination"), f"mounts[{i}].destination"),
                          [o for o in (m.get("options") or []) if isinstance(o, str)]))
    out: list[tuple[str, int, int, bool]] = []
    for i, (dest, opts) in enumerate(dests):
        set_, clr = 0, 0
        for o in opts:
            if o in RECURSIVE_ATTRS:
                a, c = RECURSIVE_ATTRS[o]
                if c & _ATIME:  # an atime mode replaces the one before
                    set_ &= ~_ATIME
                set_, clr = (set_ & ~c) | a, (clr & ~a) | c
        if not set_ and not clr:
            continue
        out.append((dest, set_, clr, True))
        prefix = dest.rstrip("/") + "/"
        for later, later_opts in dests[i + 1:]:
            if not later.startswith(prefix):
                continue
            undo = 0
            for bit, flat in _FLAT.items():
                if set_ & bit and flat not in later_opts and "r" + flat not in later_opts:
                    undo |= bit
            if undo:
                out.append((later, 0, undo, False))
    return out
