"""One line per runtime call, for the node agent's metrics: `COMMAND EXIT MICROSECONDS`.

The agent's /metrics has call counts and durations by command. They must cost the runtime's
hot path next to nothing, so a call appends one short line to a file the agent created
(O_APPEND: concurrent calls never interleave a line) and the agent does all the counting.
Without that file (no agent on the node) recording is a single failed open. The file is
never created here, and O_NOFOLLOW keeps a planted symlink from redirecting the write.
"""

from __future__ import annotations

import os

DEFAULT_PATH = "/run/lxcri/calls.log"
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


def record(path: str, command: str, exit_code: int, seconds: float) -> None:
    if not path or not command:
        return
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return
    try:
        os.write(fd, f"{command} {exit_code} {max(0, int(seconds * 1e6))}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)
