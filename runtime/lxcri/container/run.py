"""run: create, start, wait for the container in the foreground, delete it; exit with its status."""

from __future__ import annotations

import argparse
import os
import signal

from lxcri.container.create import CreateOptions, Creation
from lxcri.container.delete import delete
from lxcri.container.start import start
from lxcri.errors import LxcriError
from lxcri.settings import Settings


def run(s: Settings, a: argparse.Namespace) -> int:
    c = Creation(s, a.id, CreateOptions(bundle=a.bundle or os.getcwd(), pid_file=a.pid_file,
                                        console_socket=a.console_socket, preserve_fds=a.preserve_fds))
    c.run()
    assert c.monitor_pid and c.rd is not None
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

        try:
            kill(s.root, a.id, str(sig), False)
        except LxcriError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(c.monitor_pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    if not a.keep:
        delete(s, a.id, force=True)
    return code if code >= 0 else 128 - code
