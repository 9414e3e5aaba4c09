"""delete: stop what still runs (with --force), remove everything made, run poststop hooks.

Also the undo of a create that died: its record says not ready, and `delete --force`
tears down whatever it left (see teardown.py). Bounded: it never waits forever.
"""

from __future__ import annotations

from lxcri import log
from lxcri.container import hooks
from lxcri.container.rundir import RunDir
from lxcri.container.status import oci_state, status
from lxcri.container.teardown import destroy
from lxcri.errors import LxcriError, NotFoundError, StateError
from lxcri.settings import Settings


def delete(settings: Settings, cid: str, force: bool) -> None:
    try:
        rd = RunDir.open(settings.root, cid, incomplete=force)
    except NotFoundError:
        if force:
            return  # already gone: the shim deletes twice, and that must be quiet
        raise
    with rd:
        if rd.stateless:
            rd.remove()  # a create killed before it recorded anything: it made nothing else
            return
        rec = rd.load()
        st = status(rd, rec)
        if st in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {st}")
        if st == "creating" and not force:
            raise StateError(f"cannot delete container {cid}: it is still being created")
        destroy(rd, rec, settings.kill_timeout)
        post = rec.hooks.get("poststop")
        if post:
            try:
                hooks.run("poststop", post, oci_state(rec, "stopped"))
            except LxcriError as e:
                log.warning(str(e))  # OCI: poststop failures are logged, delete goes on
        rd.remove()
