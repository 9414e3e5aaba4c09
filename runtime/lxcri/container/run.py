"""run: create, start, wait for the container in the foreground, delete it; exit with its status."""

from __future__ import annotations

import contextlib
import os
import signal

from lxcri.cli.args import Parsed
from lxcri.container.create import CreateOptions, Creation
from lxcri.container.delete import delete
from lxcri.container.start import start
from lxcri.errors import LxcriError
from lxcri.settings import Settings


def run(s: Settings, a: Parsed) -> int:
    import ctypes

    # the container's init is re-parented to the nearest subreaper once the monitor steps
    # aside (see create.py): in the foreground, that must be us, to wait for it
    if not a.detach:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    c = Creation(s, a.id, CreateOptions(bundle=a.bundle or os.getcwd(), pid_file=a.pid_file,
                                        console_socket=a.console_socket, preserve_fds=a.preserve_fds))
    rec = c.run()
    assert c.rd is not None
    c.rd.close()
    try:
        start(s.root, a.id)
    except LxcriError:
        delete(s, a.id, force=True)
        raise
    if a.detach:
        return 0
    # the monitor is our child: forward the signals a user sends to `lxcri run` to the container
    def forward(sig: int, _frame: object) -> None:
        from lxcri.container.kill import kill

        with contextlib.suppress(LxcriError):
            kill(s.root, a.id, str(sig), False)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(rec.init_pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    if not a.keep:
        delete(s, a.id, force=True)
    return code if code >= 0 else 128 - code
