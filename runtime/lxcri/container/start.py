"""start: release the init helper waiting on the exec fifo, then run poststart hooks."""

from __future__ import annotations

import errno
import os

from lxcri import log
from lxcri.container import hooks
from lxcri.container.rundir import RunDir
from lxcri.container.status import oci_state, status
from lxcri.errors import LxcriError, StateError


def start(root: str, cid: str) -> None:
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if st == "stopped":
            raise StateError(f"cannot start a container that has stopped: {cid}")
        if st != "created":
            raise StateError(f"cannot start container {cid}: it is {st}, not created")
        try:
            fd = os.open(rd.file("exec.fifo"), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENXIO:
                raise StateError(f"cannot start container {cid}: its init is gone") from None
            raise LxcriError(f"cannot start container {cid}: exec fifo: {e.strerror}") from None
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        os.unlink(rd.file("exec.fifo"))
        post = rec.hooks.get("poststart")
        if post:
            try:
                hooks.run("poststart", post, oci_state(rec, "running"))
            except LxcriError as e:
                # OCI: a failing poststart hook is logged, the container keeps running
                log.warning(str(e))
