"""events: container statistics from its cgroups (one-shot with --stats) and a stream of
stats and OOM events, in runc's JSON shapes, one object a line."""

from __future__ import annotations

import os
import sys
import time

from lxcri import jsonlite
from lxcri.container.rundir import Record, RunDir
from lxcri.container.status import STOPPED, Status, status
from lxcri.errors import StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _read(d: str | None, name: str) -> str | None:
    if not d:
        return None
    try:
        with open(os.path.join(d, name)) as f:
            return f.read()
    except OSError:
        return None


def _num(text: str | None) -> int:
    if not text:
        return 0
    t = text.strip()
    if t == "max":
        return 2**64 - 1
    try:
        return int(t)
    except ValueError:
        return 0


def _kv(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _dir(rec: Record, ctrl: str) -> str | None:
    for key, d in rec.cgroup_dirs.items():
        if ctrl in key.split(","):
            return d
    u = rec.cgroup_dirs.get("unified")
    if u and os.path.exists(os.path.join(u, f"{ctrl}.stat" if ctrl != "pids" else "pids.current")):
        return u
    return None


def stats(rec: Record) -> dict[str, Any]:
    data: dict[str, Any] = {}
    tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    acct = _dir(rec, "cpuacct")
    cpu = _dir(rec, "cpu")
    if acct and acct != rec.cgroup_dirs.get("unified"):  # v1
        st = _kv(_read(acct, "cpuacct.stat"))
        thr = _kv(_read(cpu, "cpu.stat"))
        data["cpu"] = {
            "usage": {"total": _num(_read(acct, "cpuacct.usage")),
                      "percpu": [int(x) for x in (_read(acct, "cpuacct.usage_percpu") or "").split()],
                      "kernel": st.get("system", 0) * tick_ns, "user": st.get("user", 0) * tick_ns},
            "throttling": {"periods": thr.get("nr_periods", 0), "throttledPeriods": thr.get("nr_throttled", 0),
                           "throttledTime": thr.get("throttled_time", 0)}}
    elif cpu:  # v2
        st = _kv(_read(cpu, "cpu.stat"))
        data["cpu"] = {
            "usage": {"total": st.get("usage_usec", 0) * 1000, "kernel": st.get("system_usec", 0) * 1000,
                      "user": st.get("user_usec", 0) * 1000},
            "throttling": {"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
                           "throttledTime": st.get("throttled_usec", 0) * 1000}}
    mem = _dir(rec, "memory")
    if mem and mem != rec.cgroup_dirs.get("unified"):
        data["memory"] = {
            "usage": {"usage": _num(_read(mem, "memory.usage_in_bytes")),
                      "max": _num(_read(mem, "memory.max_usage_in_bytes")),
                      "limit": _num(_read(mem, "memory.limit_in_bytes")),
                      "failcnt": _num(_read(mem, "memory.failcnt"))},
            "swap": {"usage": _num(_read(mem, "memory.memsw.usage_in_bytes")),
                     "max": _num(_read(mem, "memory.memsw.max_usage_in_bytes")),
                     "limit": _num(_read(mem, "memory.memsw.limit_in_bytes")),
                     "failcnt": _num(_read(mem, "memory.memsw.failcnt"))},
            "raw": _kv(_read(mem, "memory.stat"))}
        data["memory"]["cache"] = data["memory"]["raw"].get("cache", 0)
    elif mem:
        data["memory"] = {
            "usage": {"usage": _num(_read(mem, "memory.current")), "max": _num(_read(mem, "memory.peak")),
                      "limit": _num(_read(mem, "memory.max")),
                      "failcnt": _kv(_read(mem, "memory.events")).get("max", 0)},
            "swap": {"usage": _num(_read(mem, "memory.swap.current")), "limit": _num(_read(mem, "memory.swap.max"))},
            "raw": _kv(_read(mem, "memory.stat"))}
    pids = _dir(rec, "pids")
    if pids:
        data["pids"] = {"current": _num(_read(pids, "pids.current")), "limit": _num(_read(pids, "pids.max"))}
    blk = _dir(rec, "blkio")
    if blk and blk != rec.cgroup_dirs.get("unified"):
        entries = []
        for line in (_read(blk, "blkio.throttle.io_service_bytes_recursive") or "").splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, minor = parts[0].split(":")
                entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
        data["blkio"] = {"ioServiceBytesRecursive": entries}
    hug = _dir(rec, "hugetlb") or rec.cgroup_dirs.get("unified")
    sizes: dict[str, Any] = {}
    if hug:
        for name in sorted(os.listdir(hug)) if os.path.isdir(hug) else []:
            if name.startswith("hugetlb.") and name.endswith((".current", ".usage_in_bytes")):
                size = name.split(".")[1]
                v2 = name.endswith(".current")
                sizes[size] = {"usage": _num(_read(hug, name)),
                               "max": _num(_read(hug, f"hugetlb.{size}.max" if v2 else
                                                 f"hugetlb.{size}.max_usage_in_bytes")),
                               "failcnt": _kv(_read(hug, f"hugetlb.{size}.events")).get("max", 0) if v2 else
                               _num(_read(hug, f"hugetlb.{size}.failcnt"))}
    data["hugetlb"] = sizes
    return {"type": "stats", "id": rec.id, "data": data}


def oom_kills(rec: Record) -> int:
    mem = _dir(rec, "memory")
    if mem and mem != rec.cgroup_dirs.get("unified"):
        return _kv(_read(mem, "memory.oom_control")).get("oom_kill", 0)
    return _kv(_read(mem, "memory.events")).get("oom_kill", 0)


def _load(root: str, cid: str) -> tuple[Record, Status]:
    with RunDir.open(root, cid) as rd:
        rec = rd.load()
        return rec, status(rd, rec)


def events(root: str, cid: str, one_shot: bool, interval: float) -> None:
    rec, st = _load(root, cid)
    if not st.has_process:
        raise StateError(f"container {cid}: container not running", cid=cid)
    if one_shot:
        print(jsonlite.dumps(stats(rec)))
        return
    ooms = oom_kills(rec)
    next_stats = time.monotonic()
    while True:
        if time.monotonic() >= next_stats:
            print(jsonlite.dumps(stats(rec)), flush=True)
            next_stats = time.monotonic() + interval
        n = oom_kills(rec)
        if n > ooms:
            print(jsonlite.dumps({"type": "oom", "id": cid, "data": {}}), flush=True)
            ooms = n
        try:
            rec, st = _load(root, cid)
        except Exception:
            return  # deleted
        if st is STOPPED:
            return
        time.sleep(min(0.2, interval))
        sys.stdout.flush()
