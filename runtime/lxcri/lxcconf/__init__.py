"""Pure translation: one OCI config section -> liblxc config items. No I/O here.

Each module takes the parsed config.json (and a small context of host facts the
caller gathered) and returns `(key, value)` pairs in the order liblxc must see
them. Keeping this free of side effects keeps it testable without root.
"""

from __future__ import annotations

from lxcri.errors import TranslateError
from lxcri.text import control_char

Items = list[tuple[str, str]]


class Context:
    """Host facts and runtime choices the translation needs (plain class: no dataclass import cost)."""

    def __init__(self, container_id: str, runtime_dir: str, rootfs: str, init_path: str, hook_cmd: str,
                 sync_fd: int, fifo_fd: int, cgroup_path: str, cgroup_version: int, debug: bool = False,
                 controllers: dict[str, int] | None = None,
                 hierarchies: list[tuple[str, str]] | None = None, cpuset: dict[str, str] | None = None) -> None:
        self.container_id = container_id
        self.runtime_dir = runtime_dir
        self.rootfs = rootfs
        self.init_path = init_path  # the static helper on the host
        self.hook_cmd = hook_cmd  # command line liblxc runs for lxcri's hook points
        self.sync_fd = sync_fd
        self.fifo_fd = fifo_fd
        self.cgroup_path = cgroup_path  # absolute, e.g. /lxcri/ID
        self.cgroup_version = cgroup_version  # 1 (v1 or hybrid) or 2
        self.debug = debug
        self.controllers = controllers or {}  # controller -> 1 (v1 hierarchy) or 2 (cgroup2), on this host
        self.hierarchies = hierarchies or []  # (name under /sys/fs/cgroup, host mount point)
        # v1 cpuset: what the container's new cgroup needs (its parent's cpus and mems: cgroups/levels.py)
        self.cpuset = cpuset or {}
        self.rootfs_mount = f"{runtime_dir}/rootfs"  # where liblxc mounts the rootfs during setup
        # binds made only from host clones (mounts.host_binds): index -> liblxc makes the mount point
        self.cloned: dict[int, bool] = {}
        self.placeholder_dir = f"{runtime_dir}/bindpoint.d"  # empty, read-only: mount points for them
        self.placeholder_file = f"{runtime_dir}/bindpoint.f"


INIT_IN_CONTAINER = "/dev/.lxcri-init"


# where the values of liblxc's keys come from, for an error in the user's terms
_FIELDS = (
    ("lxc.rootfs.path", "root.path (or the bundle path)"), ("lxc.mount.entry", "mounts"),
    ("lxc.cgroup.dir.", "linux.cgroupsPath"), ("lxc.sysctl.", "linux.sysctl"),
    ("lxc.cgroup2.", "linux.resources"), ("lxc.cgroup.", "linux.resources"), ("lxc.uts.name", "hostname"),
    ("lxc.namespace.share.", "linux.namespaces[].path"), ("lxc.idmap", "linux.uidMappings/gidMappings"),
    ("lxc.log.file", "--root"), ("lxc.rootfs.mount", "--root"),
)


def check_item(key: str, value: str) -> None:
    """The one gate every item passes on its way to liblxc (container/create.py sets them).

    liblxc's config is `key = value` lines, and its parser ends a line at \\r as well as
    \\n: a control character in any value would let config.json add lines of its own,
    such as an lxc.hook.pre-start that liblxc runs as host root. Each field is checked
    where it is read, with its name; this catches whatever a future field forgets.
    """
    bad = control_char(key) or control_char(value)
    if bad is not None:
        field = next((f for prefix, f in _FIELDS if key.startswith(prefix)), f"the value for liblxc's {key}")
        raise TranslateError(f"config.json: {field} must not contain newlines or other control characters "
                             f"(found {bad!r} in {key})")


def escape_fstab(path: str) -> str:
    """fstab-style escaping for lxc.mount.entry fields (liblxc decodes \\040 and friends)."""
    out = []
    for ch in path:
        if ch in " \t\n\\" or ord(ch) < 32:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return "".join(out)
