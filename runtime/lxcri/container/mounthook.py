"""What liblxc runs at its mount hook: `lxcri --root ROOT hook --sync-fd N ID lxc mount`.

It runs in the container's mount namespace before pivot_root, once all namespaces
exist. prestart and createRuntime belong on the host: the runner asks lxcri
create over the sync socket (HOST_HOOKS, libexec/protocol.py) to run them and waits
for the answer; then it runs createContainer here. A non-zero exit makes liblxc abort
the start.
"""

from __future__ import annotations

import _socket as socket
import os
import sys

from lxcri import proc
from lxcri.container import hooks
from lxcri.container.rundir import RunDir
from lxcri.container.status import CREATED, oci_state
from lxcri.errors import LxcriError
from lxcri.libexec import protocol
from lxcri.oci.devices import make_devices


def _ask_create(sync_fd: int) -> bytes:
    """HOST_HOOKS to create (which learns our pid from the socket's credentials); its answer."""
    sock = socket.socket(fileno=sync_fd)
    try:
        sock.sendall(protocol.frame(protocol.HOST_HOOKS))
        return protocol.read_frame(sock)[0]
    finally:
        sock.detach()  # liblxc's fd, not ours to close


def run_point(root: str, cid: str, kind: str, sync_fd: int) -> int:
    if kind != "mount":
        print(f"lxcri: unexpected hook type {kind!r}", file=sys.stderr)
        return 1
    rd = RunDir(root, cid)  # not locked: create holds the lock while liblxc runs us
    rec = rd.load()
    if rec.devices:
        try:
            make_devices(os.environ.get("LXC_ROOTFS_MOUNT", ""), rec.devices)
        except LxcriError as e:
            rd.write_atomic("hook-error", str(e).encode())
            print(f"lxcri: {e}", file=sys.stderr)
            return 1
    if rec.hooks.get("prestart") or rec.hooks.get("createRuntime"):
        try:
            answer = _ask_create(sync_fd)
        except (OSError, EOFError) as e:
            print(f"lxcri: cannot reach lxcri create for the host hooks: {e}", file=sys.stderr)
            return 1
        if answer != protocol.HOOKS_DONE:
            return 1  # create reports the hook's error itself
    # "created", as crun gives it (runc says "creating"): the runtime-tools suite expects it
    state = oci_state(rec, CREATED)
    # /proc is still the host's here: our parent, as the host sees it, is the container's init
    state["pid"] = proc.parent_pid(int(os.readlink("/proc/self")))
    try:
        hooks.run("createContainer", rec.hooks.get("createContainer", []), state)
    except LxcriError as e:
        rd.write_atomic("hook-error", str(e).encode())
        print(f"lxcri: {e}", file=sys.stderr)
        return 1
    return 0
