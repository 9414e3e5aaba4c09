"""update: change a running container's cgroup limits (`--resources FILE|-` or runc's flags)."""

from __future__ import annotations

import errno
import os

from lxcri.cgroups.fs import controllers
from lxcri.cgroups.resources import Write, writes
from lxcri.container.rundir import RunDir
from lxcri.container.status import status
from lxcri.errors import CgroupError, SpecError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def size(text: str, flag: str) -> int:
    """runc's byte sizes: 1048576, 512k, 100M, 1g; -1 for unlimited."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b") if text.strip() not in ("-1",) else "-1"
    if t == "-1":
        return -1
    num, unit = t.rstrip("ktmg"), t[len(t.rstrip("ktmg")):]
    try:
        return int(float(num) * _UNITS[unit])
    except (ValueError, KeyError) as e:
        raise SpecError(f"{flag}: {text!r} is not a size") from e


def from_flags(flags: dict[str, str]) -> dict[str, Any]:
    """runc update's flags as OCI linux.resources."""
    res: dict[str, Any] = {}

    def num(flag: str) -> int:
        try:
            return int(flags[flag])
        except ValueError as e:
            raise SpecError(f"--{flag}: {flags[flag]!r} is not a number") from e

    mem = {k: size(flags[f], "--" + f) for f, k in (("memory", "limit"), ("memory-swap", "swap"),
                                                    ("memory-reservation", "reservation"),
                                                    ("kernel-memory", "kernel")) if flags.get(f)}
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {k: num(f) for f, k in (("cpu-shares", "shares"), ("cpu-quota", "quota"),
                                                  ("cpu-period", "period"), ("cpu-rt-period", "realtimePeriod"),
                                                  ("cpu-rt-runtime", "realtimeRuntime")) if flags.get(f)}
    cpu.update({k: flags[f] for f, k in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")) if flags.get(f)})
    if cpu:
        res["cpu"] = cpu
    if flags.get("pids-limit"):
        res["pids"] = {"limit": num("pids-limit")}
    if flags.get("blkio-weight"):
        res["blockIO"] = {"weight": num("blkio-weight")}
    return res


def read_resources(path: str) -> dict[str, Any]:
    import json
    import sys

    try:
        data = sys.stdin.read() if path == "-" else open(path).read()  # noqa: SIM115
        res = json.loads(data)
    except (OSError, ValueError) as e:
        raise SpecError(f"--resources {path}: {e}") from e
    if not isinstance(res, dict):
        raise SpecError(f"--resources {path}: expected a JSON object (OCI linux.resources)")
    return res


def _dir_for(dirs: dict[str, str], ctrl: str, version: int) -> str:
    unified = dirs.get("unified")
    d = unified if version == 2 else next((p for key, p in dirs.items() if ctrl in key.split(",")), None)
    if not d:
        raise CgroupError(f"the container has no {ctrl} cgroup")
    return d


def _write_all(dirs: dict[str, str], todo: list[Write]) -> list[tuple[Write, OSError]]:
    failed = []
    for w in todo:
        ctrl, version, name, value = w
        try:
            with open(os.path.join(_dir_for(dirs, ctrl, version), name), "w") as f:
                f.write(value)
        except OSError as err:
            failed.append((w, err))
    return failed


def apply(dirs: dict[str, str], todo: list[Write]) -> None:
    # memory limits must stay ordered (memory+swap >= memory): what the kernel refused for
    # that reason is retried once the rest is written
    failed = _write_all(dirs, todo)
    retry = [w for w, err in failed if err.errno in (errno.EINVAL, errno.EBUSY)]
    if retry and len(retry) == len(failed):
        failed = _write_all(dirs, retry)
    if failed:
        (_ctrl, _v, name, value), err = failed[0]
        raise CgroupError(f"cannot set {name} to {value!r}: {err.strerror}")


def update(root: str, cid: str, resources: dict[str, Any]) -> None:
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if not st.has_process:
            raise StateError(f"cannot update container {cid}: container not running", cid=cid)
        apply(rec.cgroup_dirs, writes(resources, controllers()))
