"""kill: signal the container's init, or with --all every process of its cgroup.

`kill --all` acts on the cgroup whatever the init's state, as runc's does: containerd's
shim SIGKILLs the init and then runs `kill --all ID 9` for the init's children, which
live on when the container has no pid namespace of its own (nginx's workers); refusing
because the init is dead would leave them running. Without --all a stopped container is
"container not running", the text CRI-O and the shims match.
"""

from __future__ import annotations

from lxcri import proc
from lxcri.container.rundir import RunDir
from lxcri.container.status import status
from lxcri.container.teardown import signal_all
from lxcri.errors import StateError
from lxcri.lxcconf import system

SIGTERM = 15


def kill(root: str, cid: str, sig_name: str, all_: bool) -> None:
    sig = proc.signal_number(sig_name)
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        if sig == SIGTERM and not all_ and system.recorded(rec.annotations):
            sig = system.SHUTDOWN_SIGNAL  # stop means shut down, which systemd does on SIGRTMIN+3
        if all_:
            # nothing recorded yet (a create still at work, or killed before its init reported):
            # no process of the container can be told apart, and none outlives such a create
            signal_all(rec, sig)
            return
        st = status(rd, rec)
        if not st.has_process:
            raise StateError(f"cannot kill container {cid}: container not running", cid=cid)
        if not proc.alive(rec.init_pid, rec.init_start) or not proc.kill(rec.init_pid, sig):
            raise StateError(f"cannot kill container {cid}: no such process", cid=cid)
