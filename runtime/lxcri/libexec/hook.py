"""What liblxc runs at its mount hook: `lxcri --root ROOT hook --sync-fd N ID lxc mount`.

It runs in the container's mount namespace before pivot_root, once all namespaces
exist. prestart and createRuntime belong on the host: the runner asks lxcri
create over the sync socket (frame "M") to run them and waits for the answer;
then it runs createContainer here. A non-zero exit makes liblxc abort the start.
"""

from __future__ import annotations

import os
import struct
import sys

from lxcri import jsonlite, proc
from lxcri.container import hooks
from lxcri.container.rundir import Record, RunDir
from lxcri.container.status import oci_state
from lxcri.errors import LxcriError
from lxcri.oci.devices import make_devices


def parent_pid(pid: int) -> int:
    """The parent of pid as /proc here shows it (before pivot_root, the host's /proc)."""
    fields = proc.stat_fields(pid)
    if fields is None:
        raise LxcriError(f"process {pid} is gone")
    return int(fields[1])


def _frame(fd: int, payload: bytes) -> None:
    os.write(fd, struct.pack("<I", len(payload)) + payload)


def _read_frame(fd: int) -> bytes:
    def read(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    (n,) = struct.unpack("<I", read(4))
    return read(n)


def run_point(root: str, cid: str, kind: str, sync_fd: int) -> int:
    if kind != "mount":
        print(f"lxcri: unexpected hook type {kind!r}", file=sys.stderr)
        return 1
    rd = RunDir(root, cid)  # not locked: create holds the lock while liblxc runs us
    with open(rd.file("state.json")) as f:
        rec = Record(**jsonlite.loads(f.read()))
    if rec.devices:
        try:
            make_devices(os.environ.get("LXC_ROOTFS_MOUNT", ""), rec.devices)
        except LxcriError as e:
            rd.write_atomic("hook-error", str(e).encode())
            print(f"lxcri: {e}", file=sys.stderr)
            return 1
    if rec.hooks.get("prestart") or rec.hooks.get("createRuntime"):
        try:
            _frame(sync_fd, b"M")  # create learns our pid from the socket's credentials
            answer = _read_frame(sync_fd)
        except (OSError, EOFError) as e:
            print(f"lxcri: cannot reach lxcri create for the host hooks: {e}", file=sys.stderr)
            return 1
        if answer != b"K":
            return 1  # create reports the hook's error itself
    # "created", as crun gives it (runc says "creating"): the runtime-tools suite expects it
    state = oci_state(rec, "created")
    # /proc is still the host's here: our parent, as the host sees it, is the container's init
    state["pid"] = parent_pid(int(os.readlink("/proc/self")))
    try:
        hooks.run("createContainer", rec.hooks.get("createContainer", []), state)
    except LxcriError as e:
        rd.write_atomic("hook-error", str(e).encode())
        print(f"lxcri: {e}", file=sys.stderr)
        return 1
    return 0
