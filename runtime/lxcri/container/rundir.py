"""ROOT/ID: the runtime dir of one container, its lock and its state record.

Files in ROOT/ID:
  state.json  what create learnt (pids with their start times, cgroup dirs, bundle),
              written atomically; the status itself is always derived from facts
  config      the liblxc config the monitor loads
  exec.fifo   present from create until start: its presence means "created"
  lxc.log     liblxc's own log, read back to explain a failed start
  spec.json   the config.json as create validated it: what later commands (exec) read,
              not the bundle's file, which may have changed since
Every command takes an exclusive flock on the directory so that concurrent calls
(CRI-O's state while the shim deletes) never see half a state.
"""

from __future__ import annotations

import fcntl
import os

from lxcri import jsonlite as json
from lxcri.errors import NotFoundError, StateError
from lxcri.ids import check_id

TYPE_CHECKING = False  # typing costs start-up time; mypy still reads the block below

if TYPE_CHECKING:
    from typing import Any

class Record:
    """What create recorded; never the status. (A plain class: dataclasses cost start-up time.)"""

    def __init__(self, id: str, bundle: str, rootfs: str, created: str, oci_version: str,
                 creator_pid: int = 0, creator_start: int = 0, monitor_pid: int = 0, monitor_start: int = 0,
                 init_pid: int = 0, init_start: int = 0, cgroup_path: str = "",
                 cgroup_dirs: dict[str, str] | None = None, monitor_cgroup_dirs: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None, hooks: dict[str, Any] | None = None,
                 devices: list[dict[str, Any]] | None = None, no_process: bool = False,
                 ready: bool = True, cgroup_claims: list[str] | None = None,
                 cgroup_parents: list[str] | None = None) -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.oci_version = oci_version
        self.creator_pid = creator_pid
        self.creator_start = creator_start
        self.monitor_pid = monitor_pid
        self.monitor_start = monitor_start
        self.init_pid = init_pid
        self.init_start = init_start
        self.cgroup_path = cgroup_path
        self.cgroup_dirs = cgroup_dirs or {}
        self.monitor_cgroup_dirs = monitor_cgroup_dirs or {}
        self.annotations = annotations or {}
        self.hooks = hooks or {}
        self.devices = devices or []  # linux.devices, made by the mount hook
        self.no_process = no_process  # config.json had no process: start must refuse
        # False until create has finished: a record left so by a dead create is a failed create
        # (status stopped) that delete --force, or a create of the same ID, undoes
        self.ready = ready
        # where liblxc would make the container's and its monitor's cgroups, and nothing was yet
        self.cgroup_claims = cgroup_claims or []
        # the levels above the container's cgroup that did not exist: removed (when empty) with it
        self.cgroup_parents = cgroup_parents or []

    @classmethod
    def from_dict(cls, data: object) -> Record:
        """A record as any version saved it: keys this one does not know are ignored, keys it
        misses take their defaults, so an upgrade never strands a container created before it."""
        if not isinstance(data, dict):
            raise ValueError("state.json: not an object")
        code = cls.__init__.__code__
        known = code.co_varnames[1:code.co_argcount]
        kw: dict[str, Any] = {"id": "", "bundle": "", "rootfs": "", "created": "", "oci_version": ""}
        kw.update((k, v) for k, v in data.items() if k in known)
        return cls(**kw)


class RunDir:
    """An open, locked runtime dir. Use as a context manager."""

    def __init__(self, root: str, cid: str) -> None:
        self.root = root
        self.id = check_id(cid)
        self.path = os.path.join(root, cid)
        self.fd = -1

    # -- opening -------------------------------------------------------------
    @classmethod
    def make(cls, root: str, cid: str) -> RunDir:
        """Create the dir; fails if the container exists."""
        rd = cls(root, cid)
        # 0711: a user-namespaced container's root must traverse to its rootfs mount point;
        # nothing here is listable, and every file is 0600 (or liblxc's own, not secret)
        os.makedirs(root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(rd.path, 0o711)
        except FileExistsError as e:
            raise StateError(f"container {cid} already exists", cid=cid) from e
        rd._lock()
        if os.fstat(rd.fd).st_nlink == 0:
            # a delete --force took it for a dead create's between our mkdir and our lock
            rd.close()
            raise StateError(f"container {cid} was deleted while being created", cid=cid)
        return rd

    @classmethod
    def open(cls, root: str, cid: str, incomplete: bool = False, wait: bool = True) -> RunDir:
        """The locked dir of an existing container. With `incomplete`, also a dir without a state
        record (a create killed right after making it: `stateless` is then True). Without `wait`,
        a dir someone else holds locked is StateError at once."""
        rd = cls(root, cid)
        try:
            rd._lock(wait)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise NotFoundError(f"container {cid} does not exist", cid=cid) from e
        except BlockingIOError as e:
            rd.close()
            raise StateError(f"container {cid} already exists", cid=cid) from e
        # the container may have been deleted while we waited for the lock
        if os.fstat(rd.fd).st_nlink == 0 or (
                not os.path.exists(os.path.join(rd.path, "state.json")) and not incomplete):
            rd.close()
            raise NotFoundError(f"container {cid} does not exist", cid=cid)
        return rd

    @property
    def stateless(self) -> bool:
        return not os.path.exists(self.file("state.json"))

    def _lock(self, wait: bool = True) -> None:
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        fcntl.flock(self.fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files ---------------------------------------------------------------
    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def write_atomic(self, name: str, data: bytes, mode: int = 0o600) -> None:
        tmp = self.file(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, self.file(name))

    def save(self, rec: Record) -> None:
        self.write_atomic("state.json", json.dumps(vars(rec)).encode())

    def load(self) -> Record:
        with open(self.file("state.json")) as f:
            return Record.from_dict(json.loads(f.read()))

    def save_spec(self, config_json: str) -> None:
        self.write_atomic("spec.json", config_json.encode())

    def load_spec(self, rec: Record) -> dict[str, Any]:
        """The container's config as create validated it; for a container created before lxcri
        kept it (no spec.json), the bundle's config.json, as that version read it."""
        try:
            with open(self.file("spec.json")) as f:
                cfg = json.loads(f.read())
        except FileNotFoundError:
            from lxcri.oci.spec import read_config

            cfg = read_config(rec.bundle)
        return cfg if isinstance(cfg, dict) else {}

    def remove(self) -> None:
        """Remove the dir and everything in it (all files lxcri wrote; no mounts live here)."""
        for name in os.listdir(self.path):
            path = os.path.join(self.path, name)
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)  # liblxc's rootfs mount point: empty, its mounts lived in the container
            else:
                os.unlink(path)
        os.rmdir(self.path)
