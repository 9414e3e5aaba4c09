"""The warm server: a started, imported lxcri that forks one worker per call.

Every runtime call is a new process, and CRI-O and the containerd shim call
`state` many times per container; most of a short command's cost is the Python
interpreter starting (8-15 ms here, against about 5 ms for the whole of runc's
call). The `lxcri` command callers run is a small C client (libexec/src/client.c)
that hands its call to this server over a unix socket: argv, umask, environment,
its stdin/stdout/stderr and its working directory as fds. The server forks; the worker takes the client's stdio,
cwd and environment, runs the command exactly as the Python entry point would,
and returns the exit status. Nothing about a container lives in the server:
each call reads the facts afresh, as a direct call does.

Commands whose processes must descend from the caller (create, run and exec: the
caller is the subreaper that reaps the container's process) and the streaming
`events` are answered "run it yourself": the client then execs the Python entry
point, which also starts a server when the client found none (`spawn`).

Safety: one server per installation (the socket name is a hash of the entry
point's path), the socket directory is root's alone, peers must have the
server's uid, namespaces, root, capabilities, no_new_privs, seccomp and LSM
label (_same_context), a worker runs no code that changed on disk after the
server started, the client binary included (the server then answers "retire" and
exits), and the server moves itself out of the cgroup of whoever started it (a
pod's, or conmon's), so that it is neither charged to nor killed with a container.
A worker takes the caller's rlimits, and its cgroups before it runs hooks: what a
hook sees is what it would see under a direct call.

Bounds: the server reads a call whole, with a deadline and a size cap, before it
forks a worker for it, and holds at most MAX_PENDING such reads and MAX_WORKERS
workers; whatever a client sends that is not a call of this protocol (garbage, a
huge length, silence, another tag) ends that connection with "run it yourself",
never the server.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from lxcri.cli.args import Parsed
    from lxcri.settings import Settings

SOCK_DIR = "/run/lxcri-zygote"
IDLE_SECONDS = 60.0  # a node's runtime is called every few seconds; an idle one frees its memory
CGROUP = "/lxcri.warm"
CLIENT: socket.socket | None = None  # in a worker: the connection to the caller's client
CLIENT_PID = 0  # in a worker: the client's pid (the caller's process, whose context the call takes)
SERVER_PIDFD = -1  # in a worker: the server, which it may tell to retire
# commands a worker may run: their processes need no particular ancestry, or (create, exec --detach)
# the client starts them (spawn_in_client)
# Bounds: what a client may make the server hold. A call is read whole before a worker is forked
# for it, within HANDSHAKE_SECONDS and MAX_CALL bytes (argv and environment; a bigger call runs
# directly); at most MAX_PENDING calls are being read and MAX_WORKERS run at once. A client
# over any bound is answered "run it yourself": it is slower, never refused.
MAX_CALL = 1 << 20
HANDSHAKE_SECONDS = 2.0
MAX_PENDING = 64
MAX_WORKERS = 64
SPAWN_SECONDS = 30.0  # the client starts a helper in about a millisecond
WARM = frozenset({"", "create", "exec", "state", "start", "kill", "delete", "list", "ps", "pause", "resume", "update",
                  "features", "spec"})


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def entry_point() -> str:
    """The executable a client falls back to (lxcri-py): the installation's identity."""
    if getattr(sys, "frozen", False):
        return os.path.realpath(sys.executable)
    return os.path.realpath(sys.argv[0])


def socket_path(entry: str) -> str:
    return f"{SOCK_DIR}/{_fnv1a(entry.encode()):016x}.sock"


def _dir_is_ours(st: os.stat_result) -> bool:
    """The socket directory may be served from: a directory of our uid that nobody else may enter."""
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def spawn() -> None:
    """Start a server for this installation in the background (the client found none)."""
    entry = entry_point()
    if os.path.basename(entry) != "lxcri-py" and not getattr(sys, "frozen", False):
        return  # not started through the client: nothing would connect
    try:
        usable = _dir_is_ours(os.lstat(SOCK_DIR))
    except FileNotFoundError:
        usable = os.access(os.path.dirname(SOCK_DIR), os.W_OK)
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


def _leave_callers_cgroup() -> None:
    """Into /lxcri.warm in every hierarchy, one by one: a hierarchy that refuses keeps the server."""
    from lxcri.cgroups import Cgroup, levels
    from lxcri.errors import LxcriError

    try:
        dirs = Cgroup.at(CGROUP).dirs
    except LxcriError:
        return
    for key, d in dirs.items():
        try:
            os.makedirs(d, exist_ok=True)
            if "cpuset" in key.split(","):
                levels.fill_cpuset(d, os.path.dirname(d))  # a new v1 cpuset is empty until given them
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            continue


def _preload() -> None:
    """Import what the warm commands use, once, so that workers start with it (create's modules
    and the liblxc binding alone cost a direct create about 15 ms of imports)."""
    import resource  # noqa: F401  (a worker takes its caller's limits)

    import _lxc  # noqa: F401
    import yaml  # noqa: F401  (read with /etc/lxcri/lxcri.yaml on every call where that file exists)

    import lxcri.cli.main
    import lxcri.container.create
    import lxcri.container.delete
    import lxcri.container.exec
    import lxcri.container.kill
    import lxcri.container.listing
    import lxcri.container.pause
    import lxcri.container.ps
    import lxcri.container.start
    import lxcri.container.update
    import lxcri.settings  # noqa: F401


def _file_id(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ino, st.st_dev, st.st_size


def _code_snapshot() -> dict[str, tuple[int, int, int, int] | None]:
    """What a worker runs, as it was on disk when the server started: lxcri's modules, the liblxc
    binding, and liblxc itself as loaded (an upgrade of the lxc package must not go on being
    served from the old library). None: already replaced while we loaded it."""
    out: dict[str, tuple[int, int, int, int] | None] = {}
    try:
        with open("/proc/self/maps") as maps:
            fields = [ln.rstrip("\n").split(maxsplit=5) for ln in maps if "liblxc" in ln]
        libs = {f[5].removesuffix(" (deleted)") for f in fields if len(f) == 6 and f[5].startswith("/")}
    except OSError:
        libs = set()
    for lib in libs:
        try:
            out[lib] = _file_id(lib)
        except OSError:
            out[lib] = None
    client = os.path.join(os.path.dirname(entry_point()), "lxcri")
    try:
        out[client] = _file_id(client)  # a client of a newer build speaks another protocol
    except OSError:
        pass
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and (mod.__name__.startswith("lxcri") or mod.__name__ == "_lxc"):
            try:
                out[f] = _file_id(f)
            except OSError:
                pass  # frozen (PyInstaller's archive): a tree never changes in place
    return out


def _stale(snapshot: dict[str, tuple[int, int, int, int] | None]) -> bool:
    for f, seen in snapshot.items():
        try:
            if _file_id(f) != seen:
                return True
        except OSError:
            return True
    return False


def serve() -> int:
    import fcntl
    import select
    import socket

    entry = entry_point()
    path = socket_path(entry)
    os.makedirs(SOCK_DIR, mode=0o700, exist_ok=True)
    if not _dir_is_ours(os.lstat(SOCK_DIR)):
        return 1  # not a directory of ours alone: do not serve from it
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, named = os.fstat(lock), os.stat(path + ".lock")
    except OSError:
        return 0  # another server for this installation is running
    if (held.st_ino, held.st_dev) != (named.st_ino, named.st_dev):
        return 0  # a lock an exiting server had just removed: its successor takes the new one
    _leave_callers_cgroup()
    _preload()
    snapshot = _code_snapshot()
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
    global SERVER_PIDFD
    SERVER_PIDFD = os.pidfd_open(os.getpid())  # how a worker reaches us, even re-parented
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())  # who serves, once ready: for operators and tests
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
                        _dispatch(call, workers, srv, lock)
                    continue
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                peer, uid, _ = struct.unpack("3i", creds)
                if uid != os.getuid() or not _same_context(peer) or len(pending) >= MAX_PENDING:
                    # the client runs the call itself, with its own rights (nor does a call that
                    # is not served count as use: a server nobody may use goes idle)
                    _answer(conn, b"D")
                    continue
                last_use = now
                if _stale(snapshot):
                    _answer(conn, b"R")  # new code on disk: this call runs directly and starts a new server
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


def _context(pid: int | str) -> tuple[object, ...]:
    """What a process may do: its namespaces, its root, its capabilities, no_new_privs, seccomp."""
    base = f"/proc/{pid}"
    names = sorted(n for n in os.listdir(f"{base}/ns") if not n.endswith("_for_children"))
    ns = tuple(os.readlink(f"{base}/ns/{n}") for n in names)
    root = os.stat(f"{base}/root")
    with open(f"{base}/status") as f:
        status = tuple(ln for ln in f.read().splitlines()
                       if ln.startswith(("CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:", "NoNewPrivs:",
                                         "Seccomp:")))
    try:
        with open(f"{base}/attr/current", "rb") as f:
            label = f.read()
    except OSError:
        label = b""  # no LSM
    return (*ns, root.st_dev, root.st_ino, *status, label)


def _same_context(peer: int) -> bool:
    """Serve only callers that could do what a worker does: the same namespaces, root, capabilities,
    no_new_privs and seccomp as the server. A worker acts with the server's rights and in its
    namespaces (the hooks it runs above all): a root process in a pod given the host's /run, or
    a caller with fewer capabilities, runs its call itself instead."""
    global _OWN_CONTEXT
    try:
        if _OWN_CONTEXT is None:
            _OWN_CONTEXT = _context("self")  # the server's does not change
        # two seccomp filters read alike ("Seccomp: 2"): only callers without one are served
        return "Seccomp:\t0" in _OWN_CONTEXT and _context(peer) == _OWN_CONTEXT
    except OSError:
        return False


_OWN_CONTEXT: tuple[object, ...] | None = None


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


def _answer(conn: socket.socket, tag: bytes) -> None:
    try:
        conn.send(tag)
    except OSError:
        pass
    conn.close()


class _Pending:
    """A call being read, before any worker exists for it: bounded in time and size."""

    __slots__ = ("conn", "data", "deadline", "fds", "peer")

    def __init__(self, conn: socket.socket, peer: int, deadline: float) -> None:
        self.conn = conn
        self.peer = peer
        self.deadline = deadline
        self.data = b""
        self.fds: list[int] = []

    def drop(self, tag: bytes = b"D") -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        _answer(self.conn, tag)

    def read(self) -> bool:
        """Take what has arrived; True once the call is complete, or refused (then closed)."""
        import socket

        try:
            data, anc, flags, _ = self.conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
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
        if len(self.data) < 4:
            return False
        size: int = struct.unpack("<I", self.data[:4])[0]
        if size > MAX_CALL or len(self.data) > 4 + size:
            self.drop()  # too big, or more than it announced: run it yourself
            return True
        return len(self.data) == 4 + size


def _dispatch(call: _Pending, workers: set[int], srv: socket.socket, lock: int) -> None:
    """A complete call: a worker for it, unless it is not ours to serve or too many run."""
    if call.conn.fileno() < 0:
        return  # refused while being read
    body, fds = call.data[4:], call.fds
    if not body.startswith(b"LXZ3\0") or len(fds) != 4 or len(workers) >= MAX_WORKERS:
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
            rc = _worker(call.conn, body, fds, call.peer)
        except BaseException:  # main() reports its own errors: this is the last resort
            pass
        finally:
            os._exit(rc)
    workers.add(pid)
    for fd in fds:
        os.close(fd)
    call.conn.close()


def _take_callers_limits(peer: int) -> bool:
    """The caller's resource limits, as a direct call (and the hooks it runs) would have them.
    False if one cannot be taken (a hard limit above ours needs CAP_SYS_RESOURCE): run directly."""
    import resource

    try:
        limits = [(r, resource.prlimit(peer, r)) for r in range(16)]  # RLIMIT_CPU .. RLIMIT_RTTIME
        for r, lim in limits:
            if resource.getrlimit(r) != lim:
                resource.setrlimit(r, lim)
    except (OSError, ValueError):
        return False
    return True


def join_callers_cgroups() -> None:
    """Move this worker into the caller's cgroups, in every hierarchy, as a direct call runs
    there; before it runs OCI hooks, which runc users expect as the runtime's children in the
    caller's cgroup. (Lazily: moving costs about 1 ms, which most calls need not pay.)"""
    global CLIENT_PID
    if not CLIENT_PID:
        return
    from lxcri.cgroups.fs import hierarchies, pid_paths

    try:
        paths = pid_paths(CLIENT_PID)
    except OSError:
        return
    CLIENT_PID = 0  # once
    for h in hierarchies():
        for ctrls, path in paths.items():
            if (h.version == 2 and ctrls == "") or (
                    h.version == 1 and ctrls and frozenset(ctrls.split(",")) == h.controllers):
                try:
                    with open(os.path.join(h.mountpoint, path.lstrip("/"), "cgroup.procs"), "w") as f:
                        f.write(str(os.getpid()))
                except OSError:
                    pass  # gone meanwhile, or not ours to enter: as much as the kernel allows


def _worker(conn: socket.socket, body: bytes, fds: list[int], peer: int) -> int:
    """One call, in a fresh fork: decide, take the client's stdio/cwd/env/limits, run main(), send the status."""
    try:
        parts = body.split(b"\0")
        mask = int(parts[1], 8)
        argc = int(parts[2])
        argv = [os.fsdecode(a) for a in parts[3:3 + argc]]
        env = [p for p in parts[3 + argc:] if p]
    except (IndexError, ValueError):
        conn.sendall(b"D")
        return 1
    os.environ.clear()
    for item in env:
        k, sep, v = item.partition(b"=")
        if sep and k and k not in os.environb:  # the first of duplicates wins, as getenv finds it
            os.environb[k] = v
    loaded = _prepare(argv)
    if not isinstance(loaded, tuple) or not _take_callers_limits(peer):
        conn.sendall(b"D")
        if loaded == "retire":
            _retire_server()
        return 0
    conn.sendall(b"W" + struct.pack("<i", os.getpid()))
    _die_with_client(conn)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
        os.close(fd)
    os.fchdir(fds[3])
    os.close(fds[3])
    # as at a direct start: stdout line-buffered on a terminal (stderr always is)
    if sys.stdout is not None and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
    os.umask(mask)  # the files the call makes (state, pid file, spec) as the caller's would be
    sys.argv = [entry_point(), *argv]  # what the runtime names itself as (liblxc's hook command)
    global CLIENT, CLIENT_PID
    CLIENT, CLIENT_PID = conn, peer
    from lxcri.cli.main import main

    code = 1
    try:
        code = main(argv, loaded)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall(b"X" + struct.pack("<I", code & 0xFF))
        except OSError:
            pass
    return 0


def _retire_server() -> None:
    """Tell our server to exit. Through its pidfd: if it is gone already, we have been re-parented
    and our parent is somebody else's process."""
    try:
        signal.pidfd_send_signal(SERVER_PIDFD, signal.SIGTERM)
    except OSError:
        pass


def _die_with_client(conn: socket.socket) -> None:
    """A call whose caller is killed ends like a direct one: at once, wherever it was."""
    import _thread
    import select

    def watch() -> None:
        p = select.poll()
        p.register(conn.fileno(), select.POLLRDHUP)
        while True:
            for _, ev in p.poll():
                if ev & select.POLLNVAL:
                    return  # the connection is closed: nothing left to watch
                if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                    os.kill(os.getpid(), 9)

    _thread.start_new_thread(watch, ())


def spawn_in_client(path: str, args: list[str], keep: tuple[int, ...]) -> int:
    """Have the caller's client start a helper (create's monitor) with exactly the fds in `keep`,
    at the same numbers, in a new session: the helper and the container's init then descend from
    the caller, whose subreaper reaps the init, as when the entry point runs create itself."""
    import socket

    assert CLIENT is not None
    from lxcri.errors import LxcriError

    body = b"".join(f + b"\0" for f in [os.fsencode(path), str(len(args)).encode(), *(os.fsencode(a) for a in args),
                                           *(str(fd).encode() for fd in keep)])
    fds = struct.pack(f"{len(keep)}i", *keep)
    CLIENT.settimeout(SPAWN_SECONDS)  # a client that does not answer must not hold this worker
    try:
        CLIENT.sendmsg([b"S" + struct.pack("<I", len(body)) + body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        tag = CLIENT.recv(1)
        raw = b""
        while len(raw) < 4:
            chunk = CLIENT.recv(4 - len(raw))
            if not chunk:
                raise LxcriError("the lxcri client went away while starting the container")
            raw += chunk
    except OSError as e:
        raise LxcriError(f"the lxcri client did not start {path}: {e}") from None
    finally:
        CLIENT.settimeout(None)
    (value,) = struct.unpack("<i", raw)
    if tag != b"P" or value <= 0:
        raise LxcriError(f"cannot start {path}: {os.strerror(-value) if tag == b'E' else 'no answer'}")
    return int(value)


def _prepare(argv: list[str]) -> tuple[Settings, Parsed] | str | None:
    """This call's settings (its environment, the config file) and parsed argv, loaded once for
    the worker and main(); "retire" when warm_server is off; None when the entry point must run
    the call: settings that do not load or an argv that does not parse (it reports them), the
    frozen entry's interpreter mode, or a command that needs the caller's process tree."""
    from lxcri import settings
    from lxcri.cli.args import parse
    from lxcri.cli.main import COMMANDS, GLOBAL_FLAGS
    from lxcri.errors import LxcriError

    try:
        s = settings.load()
    except LxcriError:
        return None
    if not s.warm_server:
        return "retire"
    try:
        args = parse(argv, GLOBAL_FLAGS, COMMANDS)
    except LxcriError:
        return None
    if _command(args) not in WARM:
        return None
    return s, args


def _command(args: Parsed) -> str | None:
    """The command as the worker sees it: "" for help and version, None for what runs directly."""
    if args.version or args.help:
        return ""
    if args.command in ("create", "exec") and args.preserve_fds:
        return None  # the caller's extra fds are the client's: the entry point passes them on
    if args.command == "exec" and not args.detach:
        return None  # it waits for the process, whose parent is the caller's own lxcri
    return args.command
