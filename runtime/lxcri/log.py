"""The runtime's --log file, in runc's two formats.

Callers read it: containerd's shim and conmon take the last `error` line of the
JSON format and show it to the user. runc writes one object per line with
`level`, `msg` and `time`; so does this. A dozen lines rather than structlog,
because every runtime command is a new process and structlog costs ~70 ms of
imports on each error path (CRI-O asks `state` of gone containers often).
"""

from __future__ import annotations

from lxcri import jsonlite as json
import os
import sys
import time

_target: str = ""
_format: str = "text"
_debug: bool = False


def setup(path: str, fmt: str, debug: bool) -> None:
    global _target, _format, _debug
    _target, _format, _debug = path, fmt, debug


def _stamp() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def write(level: str, msg: str, **fields: object) -> None:
    if level == "debug" and not _debug:
        return
    if not _target:
        if _debug and level != "error":
            print(f"lxcri {level}: {msg}", file=sys.stderr)
        return
    if _format == "json":
        line = json.dumps({"level": level, "msg": msg, "time": _stamp(), **fields})
    else:
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        line = f'time="{_stamp()}" level={level} msg="{msg}"{extra}'
    try:
        fd = os.open(_target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        print(f"lxcri: cannot open log file {_target}: {e.strerror}", file=sys.stderr)
        return
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def debug(msg: str, **fields: object) -> None:
    write("debug", msg, **fields)


def warning(msg: str, **fields: object) -> None:
    write("warning", msg, **fields)


def error(msg: str, **fields: object) -> None:
    write("error", msg, **fields)
