"""run: create, start, wait for the container in the foreground, delete it; exit with its status."""

from __future__ import annotations

from lxcri.container import helper
from lxcri.container.create import CreateOptions, Creation
from lxcri.container.delete import delete
from lxcri.container.start import start
from lxcri.errors import LxcriError
from lxcri.settings import Settings


class RunOptions:
    """run's flags: create's, and whether to wait for the container and delete it afterwards."""

    __slots__ = ("create", "detach", "keep")

    def __init__(self, create: CreateOptions, detach: bool = False, keep: bool = False) -> None:
        self.create = create
        self.detach = detach
        self.keep = keep


def run(s: Settings, cid: str, o: RunOptions) -> int:
    import ctypes

    # the container's init is re-parented to the nearest subreaper once the monitor steps
    # aside (see create.py): in the foreground, that must be us, to wait for it
    if not o.detach:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    c = Creation(s, cid, o.create)
    rec = c.run()
    assert c.rd is not None
    c.rd.close()
    try:
        start(s.root, cid)
    except LxcriError:
        delete(s, cid, force=True)
        raise
    if o.detach:
        return 0

    def forward(sig: int) -> None:
        """What a user sends to `lxcri run` goes on to the container, as `lxcri kill` sends it."""
        from lxcri.container.kill import kill

        try:
            kill(s.root, cid, str(sig), False)
        except LxcriError:
            pass

    status = helper.wait_forwarding(rec.init_pid, forward)
    if not o.keep:
        delete(s, cid, force=True)
    return helper.exit_code(status)
