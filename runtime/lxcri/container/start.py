"""start: release the init helper waiting on the exec fifo, then run poststart hooks."""

from __future__ import annotations

import errno
import os
import time

from lxcri import log, proc
from lxcri.container import hooks
from lxcri.container.rundir import RunDir
from lxcri.container.status import RUNNING, STOPPED, oci_state, status
from lxcri.errors import LxcriError, StateError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from lxcri.container.helper import Spawner

EXEC_WAIT_SECONDS = 10.0


def _wait_for_exec(fd: int) -> None:
    """Return once the process runs, as runc's start does in effect: a signal sent to the
    container's pid 1 while lxcri's helper still prepares the exec would be dropped (pid 1 gets
    only signals it handles). startContainer hooks run in that time; a longer wait is not ours."""
    import select

    p = select.poll()
    p.register(fd, 0)  # POLLHUP is reported whatever is asked
    end = time.monotonic() + EXEC_WAIT_SECONDS
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        for _, ev in p.poll(left * 1000):
            if ev & (select.POLLHUP | select.POLLERR):
                return


def start(root: str, cid: str, spawner: Spawner | None = None) -> None:
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if st is STOPPED:
            raise StateError(f"cannot start a container that has stopped: {cid}", cid=cid)
        if not st.can_start:
            raise StateError(f"cannot start container {cid}: it is {st}, not created", cid=cid)
        if rec.no_process:
            # OCI: start of a container whose config has no process is an error; it stops here
            proc.kill(rec.init_pid, proc.SIGKILL)
            proc.wait_gone(rec.init_pid, rec.init_start, 10.0)
            raise StateError(f"cannot start container {cid}: its config.json has no process", cid=cid)
        try:
            fd = os.open(rd.file("exec.fifo"), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENXIO:
                raise StateError(f"cannot start container {cid}: its init is gone", cid=cid) from e
            raise LxcriError(f"cannot start container {cid}: exec fifo: {e.strerror}", cid=cid) from e
        # a reader of our own: it sees the fifo hang up once the init helper, the last writer
        # left, has exec'd the process (its fd is close-on-exec) or died
        watch = os.open(rd.file("exec.fifo"), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
            os.unlink(rd.file("exec.fifo"))
            _wait_for_exec(watch)
        finally:
            os.close(watch)
        post = rec.hooks.get("poststart")
        if post:
            try:
                hooks.run("poststart", post, oci_state(rec, RUNNING), spawner)
            except LxcriError as e:
                # OCI: a failing poststart hook is logged, the container keeps running
                log.warning(str(e))
