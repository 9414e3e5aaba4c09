"""The terminal proxy of a foreground `exec --tty` without --console-socket, as runc has one.

CRI-O runs `lxcri exec --process F ID` in the foreground for a streaming exec with a tty
(`kubectl exec -t`, critest's "exec with tty=true"), with a pty it made as our stdin, stdout and
stderr. That pty is the controlling terminal of our session, so the process cannot make it its
own, and it is not from the container's devpts. So, like runc, the process gets a new pty from
the container's devpts (the helper sends the master), ours goes into raw mode (the inner pty
does echo and line editing), and bytes are copied both ways until the process is gone, window
size changes passed on.
"""

from __future__ import annotations

import os
import select
import signal

from lxcri import proc

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _copy_winsize(src: int, dst: int) -> None:
    import fcntl
    import termios

    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> bool:
    """False when the other side is gone."""
    while data:
        try:
            n = os.write(fd, data)
        except InterruptedError:
            continue
        except OSError:
            return False
        data = data[n:]
    return True


def proxy(master: int, helper: int) -> int:
    """Copy between our stdio and the pty master until the helper (which waits for the process and
    exits as it did) is gone and the output is drained; returns the helper's wait status."""
    import termios
    import tty

    saved = None
    if os.isatty(0):
        try:
            saved = termios.tcgetattr(0)
            tty.setraw(0, termios.TCSANOW)
        except termios.error:
            saved = None
        _copy_winsize(0, master)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wakes the select through wake_w
    signal.signal(signal.SIGWINCH, lambda _s, _f: _copy_winsize(0, master))
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: proc.kill(helper, s))
    readers = [master, 0, wake_r]
    status: int | None = None
    try:
        while True:
            if status is None:
                pid, st = os.waitpid(helper, os.WNOHANG)
                if pid == helper:
                    status = st
            if status is not None and master not in readers:
                return status
            try:
                ready, _, _ = select.select(readers, [], [], None if status is None else 0)
            except InterruptedError:
                continue
            if status is not None and not ready:
                return status  # exited, nothing left to read (a background process may keep the pty)
            if wake_r in ready:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""  # EIO: no process holds the other side any more
                if not data or not _write_all(1, data):
                    readers.remove(master)
                    if status is None:
                        status = os.waitpid(helper, 0)[1]
            if 0 in ready:
                try:
                    data = os.read(0, 65536)
                except OSError:
                    data = b""
                if not data or not _write_all(master, data):
                    readers.remove(0)  # the caller closed stdin: the process keeps its terminal
    finally:
        if saved is not None:
            try:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            except termios.error:
                pass
        signal.set_wakeup_fd(old_wakeup)
        os.close(wake_r)
        os.close(wake_w)
        os.close(master)
