"""The server's loop: accept, check the peer, read the call whole within bounds, fork a worker.

Bounds: what a client may make the server hold. A call is read whole before a worker is forked
for it, within HANDSHAKE_SECONDS and MAX_CALL bytes (argv and environment; a bigger call runs
directly); at most MAX_PENDING calls are being read and MAX_WORKERS run at once. A client
over any bound, or that sends garbage or another protocol's tag, is answered RUN_DIRECT: it is
slower, never refused, and the server goes on serving.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time

from lxcri.warm import escape, wire
from lxcri.warm.peers import Peers

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

IDLE_SECONDS = 60.0  # a node's runtime is called every few seconds; an idle one frees its memory
MAX_CALL = 1 << 20
HANDSHAKE_SECONDS = 2.0
MAX_PENDING = 64
MAX_WORKERS = 64


def _dir_is_ours(st: os.stat_result) -> bool:
    """The socket directory may be served from: a directory of our uid that nobody else may enter."""
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def start_in_background() -> None:
    """Start a server for this installation in the background (the client found none)."""
    entry = wire.entry_point()
    if os.path.basename(entry) != "lxcri-py" and not getattr(sys, "frozen", False):
        return  # not started through the client: nothing would connect
    try:
        usable = _dir_is_ours(os.lstat(wire.SOCK_DIR))
    except FileNotFoundError:
        usable = os.access(os.path.dirname(wire.SOCK_DIR), os.W_OK)
    if not usable:
        return  # a server could not serve from there: do not pay for starting one on every call
    if getattr(sys, "frozen", False):
        cmd = [entry, "--warm-server"]
    else:
        cmd = [sys.executable, "-I", "-S", entry, "--warm-server"]
    import subprocess

    try:
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         close_fds=True, start_new_session=True, cwd="/", env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except OSError:
        pass  # the call itself is done; the next one runs directly again


class _Pending:
    """A call being read, before any worker exists for it: bounded in time and size."""

    __slots__ = ("conn", "data", "deadline", "fds", "peer")

    def __init__(self, conn: socket.socket, peer: int, deadline: float) -> None:
        self.conn = conn
        self.peer = peer
        self.deadline = deadline
        self.data = b""
        self.fds: list[int] = []

    def drop(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        wire.answer(self.conn, wire.RUN_DIRECT)

    def read(self) -> bool:
        """Take what has arrived; True once the call is complete, or refused (then closed)."""
        import socket

        try:
            data, anc, flags, _ = self.conn.recvmsg(65536, socket.CMSG_SPACE(4 * wire.CALL_FDS))
        except BlockingIOError:
            return False
        except OSError:
            data, anc, flags = b"", [], 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self.fds += struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4])
        self.data += data
        if not data or flags & socket.MSG_CTRUNC:
            self.drop()  # gone before it said everything, or sent more fds than a call has
            return True
        size = wire.call_size(self.data)
        if size is None:
            return False
        if size > MAX_CALL or len(self.data) > 4 + size:
            self.drop()  # too big, or more than it announced: run it yourself
            return True
        return len(self.data) == 4 + size


def _reap() -> set[int]:
    """Reap every finished worker; their pids."""
    done: set[int] = set()
    try:
        while True:
            pid = os.waitpid(-1, os.WNOHANG)[0]
            if pid <= 0:
                return done
            done.add(pid)
    except ChildProcessError:
        return done


def _dispatch(call: _Pending, workers: set[int], srv: socket.socket, lock: int, pidfd: int) -> None:
    """A complete call: a worker for it, unless it is not ours to serve or too many run."""
    if call.conn.fileno() < 0:
        return  # refused while being read
    body, fds = call.data[4:], call.fds
    if not wire.is_call(body, fds) or len(workers) >= MAX_WORKERS:
        # not our protocol (a client of another build is caught by the snapshot: its binary
        # changed on disk), or busy: that call runs directly; the server goes on serving
        call.drop()
        return
    pid = os.fork()
    if pid == 0:
        # the worker: never back into the server's loop, whatever happens in the call
        rc = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            srv.close()
            os.close(lock)  # the lock is the server's: a new one may start while a call runs
            call.conn.setblocking(True)
            from lxcri.warm.worker import run_call

            rc = run_call(call.conn, body, fds, call.peer, pidfd)
        except BaseException:  # main() reports its own errors: this is the last resort
            pass
        finally:
            os._exit(rc)
    workers.add(pid)
    for fd in fds:
        os.close(fd)
    call.conn.close()


def serve() -> int:
    import fcntl
    import select
    import socket

    entry = wire.entry_point()
    path = wire.socket_path(entry)
    os.makedirs(wire.SOCK_DIR, mode=0o700, exist_ok=True)
    if not _dir_is_ours(os.lstat(wire.SOCK_DIR)):
        return 1  # not a directory of ours alone: do not serve from it
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, named = os.fstat(lock), os.stat(path + ".lock")
    except OSError:
        return 0  # another server for this installation is running
    if (held.st_ino, held.st_dev) != (named.st_ino, named.st_dev):
        return 0  # a lock an exiting server had just removed: its successor takes the new one
    escape.leave_callers_cgroup()
    escape.preload()
    import lxcri.warm.worker  # noqa: F401  (what every worker runs)

    snapshot = escape.code_snapshot()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o077)
    srv.bind(path)
    os.umask(old)
    bound = os.stat(path)
    sock_id, lock_id = (bound.st_ino, bound.st_dev), (held.st_ino, held.st_dev)
    srv.listen(128)

    def stop(_sig: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)  # an operator's kill: still clean up the socket and lock
    # workers take these from us: as a direct lxcri has them, not as the first caller left them
    # (what a caller ignores, its client does not forward)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    pidfd = os.pidfd_open(os.getpid())  # how a worker reaches us, even re-parented
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())  # who serves, once ready: for operators and tests
    peers = Peers()
    poller = select.poll()
    poller.register(srv, select.POLLIN)
    pending: dict[int, _Pending] = {}
    workers: set[int] = set()
    last_use = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            wait = min([5.0, *(p.deadline - now for p in pending.values())])
            events = poller.poll(max(0, int(wait * 1000)) + 1)
            workers -= _reap()
            now = time.monotonic()
            for fd, _ev in events:
                if fd != srv.fileno():
                    call = pending.get(fd)
                    if call is not None and call.read():
                        poller.unregister(fd)
                        del pending[fd]
                        _dispatch(call, workers, srv, lock, pidfd)
                    continue
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                peer, uid, _ = struct.unpack("3i", creds)
                if uid != os.getuid() or not peers.same_context(peer) or len(pending) >= MAX_PENDING:
                    # the client runs the call itself, with its own rights (nor does a call that
                    # is not served count as use: a server nobody may use goes idle)
                    wire.answer(conn, wire.RUN_DIRECT)
                    continue
                last_use = now
                if escape.stale(snapshot):
                    wire.answer(conn, wire.RETIRE)  # new code on disk: this call runs directly and starts a new server
                    return 0
                conn.setblocking(False)
                pending[conn.fileno()] = _Pending(conn, peer, now + HANDSHAKE_SECONDS)
                poller.register(conn, select.POLLIN)
            for fd, call in list(pending.items()):
                if call.deadline <= now:  # a client that does not send its call in time
                    poller.unregister(fd)
                    del pending[fd]
                    call.drop()
            # idle long enough, or the installation is gone (an upgrade removed its tree)
            if not pending and (now - last_use >= IDLE_SECONDS or not os.path.exists(entry)):
                return 0
    finally:
        for name, ident in ((path, sock_id), (path + ".lock", lock_id)):
            try:
                st = os.stat(name)
                if (st.st_ino, st.st_dev) == ident:  # only what is still ours: a newer server's stays
                    os.unlink(name)
            except OSError:
                pass
        srv.close()
