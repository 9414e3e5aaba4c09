"""The host's file system as seen from the agent's pod: path mapping, the host-wide lock, safe writes.

Everything the agent changes on a node goes through here so that three promises hold in one
place: a file is replaced atomically (a crash leaves the old or the new content, never half),
the replaced file keeps its owner and mode, and errors name the host path the admin knows
(``/etc/containerd/config.toml``), not the pod's mount point.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .errors import AgentError

STATE_DIR = "/var/lib/lxcri-agent"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _explain(err: OSError) -> str:
    if err.errno == errno.EROFS:
        return "read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if err.errno == errno.ENOENT:
        return "no such file or directory"
    if err.errno == errno.ENOSPC:
        return "no space left on device"
    return err.strerror or str(err)


class HostRoot:
    """Maps host-absolute paths (``/etc/crio``) to where they are mounted in the pod (``ROOT/etc/crio``)."""

    def __init__(self, root: Path, state_dir: str = STATE_DIR) -> None:
        self.root = Path(root)
        self.state_dir = state_dir  # host path of the agent's manifest, backups and lock

    def check(self) -> None:
        """Fail early and clearly when the host root is not mounted (a wrong hostPath in the DaemonSet)."""
        if not self.root.is_dir():
            raise AgentError(f"host root {self.root} does not exist or is not a directory")

    def _raw(self, host_path: str | PurePosixPath) -> Path:
        p = PurePosixPath(host_path)
        if not p.is_absolute():
            raise ValueError(f"host path must be absolute: {host_path}")
        rel = PurePosixPath(*[part for part in p.parts[1:] if part not in ("", ".")])
        if ".." in rel.parts:
            raise ValueError(f"host path must not contain '..': {host_path}")
        return self.root / rel

    def path(self, host_path: str | PurePosixPath) -> Path:
        """Where a host path is in the pod: directories resolved as the host resolves them, the
        last component as is (like lstat), so that a symlink we own is removed, not its target."""
        p = PurePosixPath(host_path)
        if p.parent == p:
            return self._raw(p)
        return self._raw(PurePosixPath(self.resolve(str(p.parent))) / p.name)

    def real(self, host_path: str) -> Path:
        """Where a host path is in the pod with every symlink followed as on the host."""
        return self._raw(self.resolve(host_path))

    def host_name(self, local: Path) -> str:
        """The host-absolute name of a path under the root, for messages and the manifest."""
        return "/" + str(Path(local).relative_to(self.root)).lstrip(".").lstrip("/")

    def error(self, action: str, local: Path, err: OSError) -> AgentError:
        try:
            name = self.host_name(local)
        except ValueError:
            name = str(local)
        return AgentError(f"cannot {action} {name} (host root {self.root}): {_explain(err)}")

    # -- reading -----------------------------------------------------------------------------------

    def read(self, host_path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist (symlinks followed as on the host)."""
        local = self.path(self.resolve(host_path))
        try:
            return local.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise self.error("read", local, err) from err

    # -- writing -----------------------------------------------------------------------------------

    def makedirs(self, host_path: str, mode: int = 0o755) -> None:
        local = self.path(host_path)
        try:
            local.mkdir(parents=True, exist_ok=True, mode=mode)
        except OSError as err:
            raise self.error("create directory", local, err) from err

    def resolve(self, host_path: str, depth: int = 40) -> str:
        """Follow symlinks the way the host would (absolute targets are host paths, in any
        component), so that a config that links into, say, a config-management checkout is edited
        there and stays a link, instead of being resolved against the pod's own file system."""
        parts = list(PurePosixPath(host_path).parts[1:])
        done = PurePosixPath("/")
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                done = done.parent
                continue
            nxt = done / part
            local = self._raw(str(nxt))
            if local.is_symlink():
                hops += 1
                if hops > depth:
                    raise AgentError(f"too many levels of symbolic links at {host_path} (host root {self.root})")
                target = PurePosixPath(os.readlink(local))
                parts = list((target if target.is_absolute() else done / target).parts[1:]) + parts
                done = PurePosixPath("/")
                continue
            done = nxt
        return os.path.normpath(str(done))

    def write_atomic(self, host_path: str, data: bytes, mode: int = 0o644) -> None:
        """Replace the file in one rename; an existing file keeps its mode and owner; a symlink
        stays a symlink (its target is replaced)."""
        local = self.path(self.resolve(host_path))
        try:
            st: os.stat_result | None = local.stat()
        except FileNotFoundError:
            st = None
        except OSError as err:
            raise self.error("inspect", local, err) from err
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".lxcri-tmp", dir=local.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if st is not None:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
                with contextlib.suppress(PermissionError):
                    os.chown(tmp, st.st_uid, st.st_gid)
            else:
                os.chmod(tmp, mode)
            os.replace(tmp, local)
            tmp = None
            _fsync_dir(local.parent)
        except OSError as err:
            raise self.error("write", local, err) from err
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def remove(self, host_path: str) -> bool:
        """Remove a file or symlink; True if something was removed. A missing file is not an error."""
        local = self.path(host_path)
        try:
            local.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise self.error("remove", local, err) from err
        _fsync_dir(local.parent)
        return True

    @contextlib.contextmanager
    def lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Host-wide lock: two agents (an old pod terminating, a new one starting) never interleave.

        The holder writes its pid into the lock file, so that the one waiting can say whom it
        waits for; after ``timeout`` seconds it gives up with that in the message.
        """
        import fcntl
        import time

        missing = [
            str(p)
            for p in [PurePosixPath(self.state_dir), *PurePosixPath(self.state_dir).parents]
            if str(p) != "/" and not self.path(str(p)).exists()
        ]
        self.makedirs(self.state_dir, 0o700)
        parents = [p for p in missing if p != self.state_dir]
        if parents:  # remembered so that a full uninstall leaves no empty /var/lib behind either
            self.write_atomic(f"{self.state_dir}/created-parents", "\n".join(parents).encode() + b"\n", 0o600)
        local = self.path(f"{self.state_dir}/lock")
        try:
            fd = os.open(local, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise self.error("open lock", local, err) from err
        try:
            deadline = time.monotonic() + timeout
            told = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    if time.monotonic() > deadline:
                        raise AgentError(
                            f"another lxcri-agent (pid {holder} in its namespace) holds {self.state_dir}/lock "
                            f"on host root {self.root} for more than {timeout:.0f}s"
                        ) from None
                    if not told:
                        from . import log

                        log.get("lock").info("waiting for another lxcri-agent", holder_pid=holder)
                        told = True
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
