"""delete: stop what still runs (with --force), wait for the monitor, remove everything made."""

from __future__ import annotations

from lxcri import log, proc
from lxcri.cgroups import Cgroup
from lxcri.container import hooks
from lxcri.container.kill import signal_all
from lxcri.container.rundir import RunDir
from lxcri.container.status import oci_state, status
from lxcri.errors import LxcriError, NotFoundError, StateError
from lxcri.settings import Settings


def delete(settings: Settings, cid: str, force: bool) -> None:
    try:
        rd = RunDir.open(settings.root, cid)
    except NotFoundError:
        if force:
            return  # already gone: the shim deletes twice, and that must be quiet
        raise
    with rd:
        rec = rd.load()
        st = status(rd, rec)
        if st in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {st}")
        if st == "creating" and not force:
            raise StateError(f"cannot delete container {cid}: it is still being created")
        if st != "stopped":
            if rec.cgroup_dirs:
                signal_all(rec, proc.SIGKILL)
            proc.kill(rec.init_pid, proc.SIGKILL)
            if not proc.wait_gone(rec.init_pid, rec.init_start, settings.kill_timeout):
                raise LxcriError(f"container {cid} did not die within {settings.kill_timeout:.0f}s")
        # the monitor cleans up after the init; give it its time, then make sure
        if rec.monitor_pid and not proc.wait_gone(rec.monitor_pid, rec.monitor_start, settings.kill_timeout):
            proc.kill(rec.monitor_pid, proc.SIGKILL)
            proc.wait_gone(rec.monitor_pid, rec.monitor_start, settings.kill_timeout)
        left = Cgroup(rec.cgroup_dirs).remove() + Cgroup(rec.monitor_cgroup_dirs).remove()
        if left:
            log.warning(f"cgroups of {cid} could not be removed", cgroups=",".join(left))
        post = rec.hooks.get("poststop")
        if post:
            try:
                hooks.run("poststop", post, oci_state(rec, "stopped"))
            except LxcriError as e:
                log.warning(str(e))  # OCI: poststop failures are logged, delete goes on
        rd.remove()
