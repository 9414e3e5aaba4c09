"""exec with a terminal but no console socket: CRI-O's streaming `kubectl exec -t`.

CRI-O runs `lxcri exec --process F ID` in the foreground with `"terminal": true` and a pty it
made as stdio, and it starts the runtime with setsid and that pty as the controlling terminal of
the runtime's session. That pty cannot serve the process: a terminal that controls one session
cannot become the controlling terminal of another (TIOCSCTTY: EPERM), and a pty of the host's
devpts names nothing under the container's /dev/pts. So, as runc does, the helper gives the
process a new pty in the container's devpts (made its controlling terminal there), sends us the
master, and we copy between it and our own stdio until the process is gone. Our side of the
caller's terminal is put in raw mode for that time, so that ^C, echo and line editing happen
once, on the container's pty; its window size is copied over, now and on every SIGWINCH.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import termios

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def copy_size(src: int, dst: int) -> None:
    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _raw(fd: int) -> list[Any] | None:
    """cfmakeraw on fd; the old attributes, or None when fd is no terminal."""
    try:
        old = termios.tcgetattr(fd)
    except termios.error:
        return None
    new = termios.tcgetattr(fd)
    new[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR | termios.IGNCR
                | termios.ICRNL | termios.IXON)
    new[1] &= ~termios.OPOST
    new[2] = (new[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    new[6][termios.VMIN], new[6][termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSANOW, new)
    return old


def _write_all(fd: int, data: bytes) -> bool:
    while data:
        try:
            n = os.write(fd, data)
        except OSError:
            return False
        data = data[n:]
    return True


def proxy(master: int, helper: int) -> int:
    """Copy stdin -> master and master -> stdout until the helper (which waits for the process)
    has exited and the pty has given what was left; the helper's wait status. Closes master."""
    saved = _raw(0)
    copy_size(0, master)
    signal.signal(signal.SIGWINCH, lambda _s, _f: copy_size(0, master))
    pidfd = os.pidfd_open(helper)
    readers = [0, master, pidfd]
    try:
        while True:
            ready = select.select(readers, [], [])[0]
            if pidfd in ready:
                _, status = os.waitpid(helper, 0)
                if master in readers:
                    _drain(master)
                return status
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the last user of the pty is gone
                    data = b""
                if not data or not _write_all(1, data):
                    readers.remove(master)
            if 0 in ready:
                try:
                    data = os.read(0, 65536)
                except OSError:
                    data = b""
                if not data or not _write_all(master, data):
                    readers.remove(0)
    finally:
        os.close(pidfd)
        os.close(master)
        if saved is not None:
            try:
                termios.tcsetattr(0, termios.TCSAFLUSH, saved)
            except termios.error:
                pass


def _drain(master: int) -> None:
    """What the process wrote just before it exited (a background process that keeps the pty
    open does not hold us: whatever is not there yet is not waited for)."""
    os.set_blocking(master, False)
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EAGAIN or EIO
            return
        if not data or not _write_all(1, data):
            return
