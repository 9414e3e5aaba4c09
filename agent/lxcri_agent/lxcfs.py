"""Is the node's lxcfs there and serving? One check, for the node report and for /metrics alike."""

from __future__ import annotations

import os
from pathlib import Path


def _answers(mountpoint: Path | str) -> bool:
    try:
        with open(os.path.join(mountpoint, "proc", "uptime")) as f:
            return bool(f.read(64))
    except OSError:
        return False


def lxcfs_answers(mountpoint: Path, host_path: str | None = None, proc: str = "/proc") -> bool:
    """An lxcfs is there and serves (a dead one leaves a mount whose reads fail).

    ``mountpoint`` is where the node's path is seen from here. The agent's pod does not mount the
    lxcfs path (a hostPath with mount propagation fails to start where the node's / is not a
    shared mount, and the agent must start everywhere): then the mount is looked for through the
    root of each running lxcfs process (``/proc/PID/root/<host_path>``, host PID namespace).
    """
    if _answers(mountpoint):
        return True
    if not host_path:
        return False
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/comm") as f:
                if f.read().strip() != "lxcfs":
                    continue
        except OSError:
            continue
        if _answers(f"{proc}/{pid}/root/{host_path.lstrip('/')}"):
            return True
    return False
