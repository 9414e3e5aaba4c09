"""Helper-process plumbing shared by create, exec and run: starting lxcri's C helpers, the
sync socket to them, the fds and pty masters they pass back, pid files, reaping, and waiting
for a process while passing on the signals the caller sends.

A helper (create's monitor, exec's helper) must descend from the caller: the caller is the
subreaper that reaps the container's processes. A call run directly starts it itself; a call
run by the warm server's worker has the caller's client start it. Which of the two is the
Spawner a command is given (warm/worker.py has the other): never a module global.
"""

from __future__ import annotations

import _socket as socket
import fcntl
import os
import struct
import time

from lxcri import proc
from lxcri.errors import LxcriError
from lxcri.libexec import protocol

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lxcri.container.rundir import RunDir

# the signals a user sends to a foreground `lxcri run` or `lxcri exec`, passed on to the container
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


class Spawner:
    """How this call starts processes that must descend from the caller: directly, here."""

    def spawn(self, path: str, args: list[str], keep: tuple[int, ...]) -> int:
        """posix_spawn a helper in a new session with our stdio and exactly the fds in `keep`."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        return os.posix_spawn(path, [path, *args], env, setsid=True)

    def before_hooks(self) -> None:
        """About to run OCI hooks: a direct call already is where a hook expects to be."""


DIRECT = Spawner()


def spawn(spawner: Spawner, path: str, args: list[str], keep: tuple[int, ...]) -> int:
    """Start a helper with exactly the fds in `keep`. Every other fd this process holds is made
    close-on-exec first, so nothing the caller leaked to us reaches the helper, and from there
    the container."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
    for fd in keep:
        os.set_inheritable(fd, True)
    return spawner.spawn(path, args, keep)


def high_fd(fd: int, lowest: int) -> int:
    """A copy of fd at lowest or above, so it cannot clash with --preserve-fds."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return new


def sync_socket(lowest: int) -> tuple[socket.socket, int]:
    """The socketpair to a helper: our end (it learns senders' pids), and the helper's as an fd
    at `lowest` or above."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    child_fd = high_fd(child.detach(), lowest)
    child.close()
    return parent, child_fd


def console_size(size: object) -> tuple[int, int]:
    """process.consoleSize as (rows, columns)."""
    if not isinstance(size, dict):
        return 0, 0
    return int(size.get("height") or 0), int(size.get("width") or 0)


def send_console(path: str, master: int) -> None:
    """Hand the pty master to the caller, as runc does: SCM_RIGHTS over a unix socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", master))])
    except OSError as e:
        raise LxcriError(f"console socket {path}: {e.strerror or e}", field="--console-socket") from e
    finally:
        s.close()


def forward_console(path: str, master: int, size: object) -> None:
    """The pty master the helper made in the container, to the caller's console socket."""
    try:
        rows, cols = console_size(size)
        if size:
            import termios

            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        send_console(path, master)
    finally:
        os.close(master)


def await_reply(sock: socket.socket, console_socket: str, size: object,
                on_listener_fd: Callable[[int, int], None] | None = None,
                on_master: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    """The helper's answer to the spec (READY or ERROR), forwarding on the way a pty master (PTY:
    to the console socket, or to `on_master`, which then owns it) and a seccomp listener fd
    (SECCOMP_LISTENER: given to `on_listener_fd` with the sender's pid)."""
    while True:
        fds: list[int] = []
        reply, pid = protocol.read_frame(sock, fds)
        if reply not in (protocol.PTY, protocol.SECCOMP_LISTENER):
            for fd in fds:
                os.close(fd)
            return reply, pid
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise LxcriError("the container's init sent a frame without its fd")
        if reply == protocol.PTY and on_master is not None:
            on_master(fds[0])
            continue
        if reply == protocol.PTY:
            forward_console(console_socket, fds[0], size)  # closes it
            continue
        try:
            if on_listener_fd is None:
                raise LxcriError("the container's init sent a seccomp listener fd nobody asked for")
            on_listener_fd(fds[0], pid)
        finally:
            os.close(fds[0])


def liblxc_error(rd: RunDir) -> str:
    """The first error liblxc logged: usually the cause; the rest is the cascade."""
    try:
        with open(rd.file("lxc.log"), errors="replace") as f:
            lines = [ln.strip() for ln in f if " ERROR " in ln]
    except OSError:
        return ""
    if not lines:
        return ""
    # "lxc ID TIMESTAMP ERROR module - file:func:line - message"
    return lines[0].split(" - ", 2)[-1]


def reap_helper(pid: int, timeout: float) -> None:
    """Wait for a helper we started to die, at most timeout seconds: reaped if it is our child,
    else (a warm worker's helpers are the client's children, and the client reaps them) until
    it is a zombie, by which time its children have been re-parented."""
    end = time.monotonic() + timeout
    delay = 0.0001  # a SIGKILLed helper is gone within a fraction of a millisecond
    while True:
        try:
            got, _ = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return
        except ChildProcessError:
            if not proc.alive(pid, 0):
                return
        if time.monotonic() > end:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def check_outputs(pid_file: str, console_socket: str) -> None:
    """--pid-file and --console-socket, checked before anything is made: a clear error naming
    the flag, not a failure once the container exists."""
    import stat

    if pid_file:
        path = os.path.abspath(pid_file)
        parent = os.path.dirname(path)
        try:
            st = os.stat(parent)
        except OSError as e:
            raise LxcriError(f"--pid-file {pid_file}: directory {parent}: {e.strerror}",
                             field="--pid-file") from e
        if not stat.S_ISDIR(st.st_mode):
            raise LxcriError(f"--pid-file {pid_file}: {parent} is not a directory", field="--pid-file")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise LxcriError(f"--pid-file {pid_file}: {e.strerror}", field="--pid-file") from e
        else:
            if stat.S_ISDIR(st.st_mode):
                raise LxcriError(f"--pid-file {pid_file}: is a directory", field="--pid-file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LxcriError(f"--pid-file {pid_file}: directory {parent} is not writable",
                             field="--pid-file")
    if console_socket:
        try:
            st = os.stat(console_socket)
        except OSError as e:
            raise LxcriError(f"--console-socket {console_socket}: {e.strerror}",
                             field="--console-socket") from e
        if not stat.S_ISSOCK(st.st_mode):
            raise LxcriError(f"--console-socket {console_socket}: not a unix socket",
                             field="--console-socket")


def write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the killing signal."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def wait_forwarding(pid: int, forward: Callable[[int], object], signals: Iterable[str] = FORWARDED) -> int:
    """Wait for our child pid, passing each of `signals` (by name) we get on through `forward`;
    its wait status."""
    import signal

    def handler(sig: int, _frame: object) -> None:
        forward(sig)

    for name in signals:
        signal.signal(getattr(signal, name), handler)
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
