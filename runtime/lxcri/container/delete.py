"""delete: stop what still runs (with --force), remove everything made, run poststop hooks.

Also the undo of a create that died: its record says not ready, and `delete --force`
tears down whatever it left (see teardown.py). Bounded: it never waits forever.
"""

from __future__ import annotations

from lxcri import log
from lxcri.container import hooks
from lxcri.container.rundir import RunDir
from lxcri.container.status import CREATING, STOPPED, oci_state, status
from lxcri.container.teardown import destroy
from lxcri.errors import LxcriError, NotFoundError, StateError
from lxcri.settings import Settings

TYPE_CHECKING = False

if TYPE_CHECKING:
    from lxcri.container.helper import Spawner


def delete(settings: Settings, cid: str, force: bool, spawner: Spawner | None = None) -> None:
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
        if st is CREATING and not force:
            raise StateError(f"cannot delete container {cid}: it is still being created", cid=cid)
        if not st.can_delete and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {st}", cid=cid)
        destroy(rd, rec, settings.kill_timeout)
        post = rec.hooks.get("poststop")
        if post:
            try:
                hooks.run("poststop", post, oci_state(rec, STOPPED), spawner)
            except LxcriError as e:
                log.warning(str(e))  # OCI: poststop failures are logged, delete goes on
        rd.remove()
