"""One call, in a fork of the server: classify it, take the caller's context, run the CLI's
main(), send back the exit status.

What makes a call warm (WARM, classify()): its processes need no particular ancestry
(state, kill, delete, ...), or the client starts them for the worker (create's monitor, the
helper of exec --detach: the Spawner here). Everything else is answered RUN_DIRECT: `run` and
foreground `exec` wait for a process whose parent must be the caller's own lxcri, `events`
streams, --preserve-fds passes the client's own fds, and an argv that does not parse, or
settings that do not load, are reported by the entry point as a direct call reports them.
"""

from __future__ import annotations

import os
import signal
import sys

from lxcri.container.helper import Spawner
from lxcri.warm import wire

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from lxcri.cli.args import Parsed
    from lxcri.settings import Settings

SPAWN_SECONDS = 30.0  # the client starts a helper in about a millisecond
WARM = frozenset({"", "create", "exec", "state", "start", "kill", "delete", "list", "ps", "pause", "resume", "update",
                  "features", "spec"})


class ClientSpawner(Spawner):
    """A worker's way to start helpers and run hooks: the caller's client starts helpers, so that
    they and the container's init descend from the caller, whose subreaper reaps the init, as
    when the entry point runs create itself; hooks run in the caller's cgroups."""

    __slots__ = ("client", "peer")

    def __init__(self, client: socket.socket, peer: int) -> None:
        self.client = client  # the connection to the caller's client
        self.peer = peer  # the client's pid: the caller's process, whose context the call takes

    def spawn(self, path: str, args: list[str], keep: tuple[int, ...]) -> int:
        """Have the client start the helper with exactly the fds in `keep`, at the same numbers,
        in a new session."""
        import _socket

        from lxcri.errors import LxcriError

        data, fds = wire.start_request(path, args, keep)
        self.client.settimeout(SPAWN_SECONDS)  # a client that does not answer must not hold this worker
        try:
            self.client.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            tag, value = wire.read_started(self.client)
        except EOFError as e:
            raise LxcriError("the lxcri client went away while starting the container") from e
        except OSError as e:
            raise LxcriError(f"the lxcri client did not start {path}: {e}") from e
        finally:
            self.client.settimeout(None)
        if tag != wire.STARTED or value <= 0:
            why = os.strerror(-value) if tag == wire.START_FAILED else "no answer"
            raise LxcriError(f"cannot start {path}: {why}")
        return value

    def before_hooks(self) -> None:
        """Move this worker into the caller's cgroups, in every hierarchy, as a direct call runs
        there; before it runs OCI hooks, which runc users expect as the runtime's children in the
        caller's cgroup. (Lazily: moving costs about 1 ms, which most calls need not pay.)"""
        if not self.peer:
            return
        from lxcri.cgroups.fs import hierarchies, pid_paths

        try:
            paths = pid_paths(self.peer)
        except OSError:
            return
        self.peer = 0  # once
        for h in hierarchies():
            for ctrls, path in paths.items():
                if (h.version == 2 and ctrls == "") or (
                        h.version == 1 and ctrls and frozenset(ctrls.split(",")) == h.controllers):
                    try:
                        with open(os.path.join(h.mountpoint, path.lstrip("/"), "cgroup.procs"), "w") as f:
                            f.write(str(os.getpid()))
                    except OSError:
                        pass  # gone meanwhile, or not ours to enter: as much as the kernel allows


def classify(args: Parsed) -> str | None:
    """The command as the worker sees it: "" for help and version, None for what runs directly."""
    if args.flag("version") or args.flag("help"):
        return ""
    if args.command in ("create", "exec") and args.number("preserve_fds"):
        return None  # the caller's extra fds are the client's: the entry point passes them on
    if args.command == "exec" and not args.flag("detach"):
        return None  # it waits for the process, whose parent is the caller's own lxcri
    return args.command


RETIRE = "retire"


def prepare(argv: list[str]) -> tuple[Settings, Parsed] | str | None:
    """This call's settings (its environment, the config file) and parsed argv, loaded once for
    the worker and main(); RETIRE when warm_server is off; None when the entry point must run
    the call: settings that do not load or an argv that does not parse (it reports them), or
    a command that needs the caller's process tree."""
    from lxcri import settings
    from lxcri.cli.args import parse
    from lxcri.cli.commands import COMMANDS, GLOBAL_FLAGS
    from lxcri.errors import LxcriError

    try:
        s = settings.load()
    except LxcriError:
        return None
    if not s.warm_server:
        return RETIRE
    try:
        args = parse(argv, GLOBAL_FLAGS, COMMANDS)
    except LxcriError:
        return None
    if classify(args) not in WARM:
        return None
    return s, args


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


def run_call(conn: socket.socket, body: bytes, fds: list[int], peer: int, server_pidfd: int) -> int:
    """One call, in a fresh fork: decide, take the client's stdio/cwd/env/limits, run main(), send the status."""
    try:
        call = wire.decode_call(body)
    except (IndexError, ValueError):
        conn.sendall(wire.RUN_DIRECT)
        return 1
    os.environ.clear()
    for item in call.env:
        k, sep, v = item.partition(b"=")
        if sep and k and k not in os.environb:  # the first of duplicates wins, as getenv finds it
            os.environb[k] = v
    loaded = prepare(call.argv)
    if not isinstance(loaded, tuple) or not _take_callers_limits(peer):
        conn.sendall(wire.RUN_DIRECT)
        if loaded == RETIRE:
            # tell our server to exit; through its pidfd: if it is gone already, we have been
            # re-parented and our parent is somebody else's process
            try:
                signal.pidfd_send_signal(server_pidfd, signal.SIGTERM)
            except OSError:
                pass
        return 0
    conn.sendall(wire.worker(os.getpid()))
    _die_with_client(conn)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
        os.close(fd)
    os.fchdir(fds[3])
    os.close(fds[3])
    # as at a direct start: stdout line-buffered on a terminal (stderr always is)
    if sys.stdout is not None and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
    os.umask(call.umask)  # the files the call makes (state, pid file, spec) as the caller's would be
    sys.argv = [wire.entry_point(), *call.argv]  # what the runtime names itself as (liblxc's hook command)
    from lxcri.cli.main import main

    code = 1
    try:
        code = main(call.argv, loaded, ClientSpawner(conn, peer))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall(wire.exit_status(code))
        except OSError:
            pass
    return 0
