"""Entry point liblxc runs at its hook points: `python -m lxcri.libexec.hook ROOT ID lxc TYPE`.

start-host: on the host once the container's namespaces exist -> prestart, createRuntime.
mount:      in the container's mount namespace before pivot_root -> createContainer.
A failure is written to ROOT/ID/hook-error for create to report, and the non-zero exit
makes liblxc abort the start.
"""

from __future__ import annotations

import os
import sys

from lxcri import jsonlite
from lxcri.container import hooks
from lxcri.container.rundir import Record, RunDir
from lxcri.container.status import oci_state
from lxcri.errors import LxcriError


def container_pid(kind: str) -> int:
    if kind == "start-host":
        return int(os.environ.get("LXC_PID", "0"))
    # mount hooks run inside the new pid namespace, but /proc is still the host's:
    # our parent, as the host sees it, is the container's init
    me = int(os.readlink("/proc/self"))
    with open(f"/proc/{me}/stat", "rb") as f:
        raw = f.read()
    return int(raw[raw.rfind(b")") + 2:].split()[1])


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print("usage: python -m lxcri.libexec.hook ROOT ID lxc TYPE", file=sys.stderr)
        return 2
    root, cid, kind = argv[0], argv[1], argv[-1]
    rd = RunDir(root, cid)  # not locked: create holds the lock while liblxc runs us
    with open(rd.file("state.json")) as f:
        rec = Record(**jsonlite.loads(f.read()))
    state = oci_state(rec, "creating")
    state["pid"] = container_pid(kind)
    points = ("prestart", "createRuntime") if kind == "start-host" else ("createContainer",)
    try:
        for point in points:
            hooks.run(point, rec.hooks.get(point, []), state)
    except LxcriError as e:
        rd.write_atomic("hook-error", str(e).encode())
        print(f"lxcri: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
