"""Facts about host processes, robust against pid reuse: a pid counts only with its start time."""

from __future__ import annotations

import os
import time

SIGKILL = 9  # a constant rather than the signal module, whose enums cost start-up time


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rfind(b")") + 2:].decode().split()


def start_time(pid: int) -> int:
    f = stat_fields(pid)
    return int(f[19]) if f else 0


def alive(pid: int, start: int) -> bool:
    """The same process is still there and not a zombie."""
    if pid <= 0:
        return False
    f = stat_fields(pid)
    if not f or f[0] in ("Z", "X"):
        return False
    return start == 0 or int(f[19]) == start


def wait_gone(pid: int, start: int, timeout: float) -> bool:
    """Poll until the process is gone (a zombie counts: its reaper is the caller's business)."""
    end = time.monotonic() + timeout
    delay = 0.0005
    while alive(pid, start):
        if time.monotonic() > end:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True


def signal_number(sig: str) -> int:
    """runc accepts 9, KILL and SIGKILL. (_signal: the signal module's enums cost start-up time.)"""
    import _signal as signal  # type: ignore[import-not-found]

    s = sig.strip().upper()
    if s.isdigit():
        n = int(s)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = s if s.startswith("SIG") else "SIG" + s
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            base = signal.SIGRTMIN if name.startswith("SIGRTMIN") else signal.SIGRTMAX
            rest = name[8:]
            try:
                return int(base) + (int(rest) if rest else 0)
            except ValueError:
                pass
        found: object = getattr(signal, name, None) if name.isalnum() else None
        if isinstance(found, int) and 0 < found < signal.NSIG:
            return found
    from lxcri.errors import UsageError

    raise UsageError(f"invalid signal {sig!r}")


def kill(pid: int, sig: int) -> bool:
    """Signal one process. Never pid <= 0: kill(0) or kill(-1) would hit our own group or everyone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def parent_pid(pid: int) -> int:
    """The parent of pid as /proc here shows it (in liblxc's mount hook, before pivot_root: the host's)."""
    from lxcri.errors import LxcriError

    fields = stat_fields(pid)
    if fields is None:
        raise LxcriError(f"process {pid} is gone")
    return int(fields[1])
