"""OCI linux.resources -> cgroup file writes, for cgroup v1 and v2 (and hybrid hosts).

One table serves both create (the writes become lxc.cgroup.* / lxc.cgroup2.* items
that liblxc applies) and update (lxcri writes the files itself). Pure: the caller
says where each controller lives on the host (1 = a v1 hierarchy, 2 = the unified
one), which on a hybrid host differs per controller (hugetlb only in cgroup2 here).
"""

from __future__ import annotations

from lxcri.errors import CgroupError
from lxcri.text import control_char

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Write = tuple[str, int, str, str]  # controller, cgroup version, file, value
MAX = "max"


def _int(v: object, field: str, minimum: int | None = None) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise CgroupError(f"linux.resources.{field} must be an integer")
    if minimum is not None and v < minimum:
        raise CgroupError(f"linux.resources.{field} must be at least {minimum}")
    return v


def _set(section: dict[str, Any], key: str, field: str, minimum: int | None = None) -> int | None:
    """A numeric resource, or None when unset: absent, null, or 0, which is how CRI-O and the
    other callers write "unset" and how runc reads it (cpu shares/quota/period/realtime, memory
    limit/reservation/swap/kernel, pids limit, blkio weights, net_cls classid). A value given
    must otherwise be at least `minimum` (0 itself always passes: it means unset)."""
    raw = section.get(key)
    if raw is None:
        return None
    value = _int(raw, field)
    if value == 0:
        return None
    if minimum is not None and value < minimum:
        raise CgroupError(f"linux.resources.{field} must be at least {minimum} (or 0 for unset)")
    return value


# unified keys that are no limit: liblxc turns devices.* into the device policy (bypassing
# linux.resources.devices), and the others move or kill processes
_NOT_LIMITS = ("devices.", "cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.subtree_control")


def _unified_entry(key: object, val: object) -> None:
    """One linux.resources.unified entry: a cgroup v2 file and a value, each of them text that
    may become a line of liblxc's config (which ends lines at \\r too): no control character."""
    if (not isinstance(key, str) or "/" in key or key.startswith(".") or "." not in key
            or not all(c.isalnum() or c in "._-" for c in key) or not key.isascii()):
        raise CgroupError(f"linux.resources.unified: {key!r} is not a cgroup v2 file name")
    if key.startswith(_NOT_LIMITS):
        raise CgroupError(f"linux.resources.unified: {key!r} is not a resource limit lxcri sets")
    if not isinstance(val, str) or control_char(val) is not None:
        raise CgroupError(f"linux.resources.unified[{key}] must be a one-line string without control characters")


def _dev(d: dict[str, Any], field: str) -> str:
    return f"{_int(d.get('major'), field + '.major', 0)}:{_int(d.get('minor'), field + '.minor', 0)}"


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), as runc and crun convert."""
    if shares == 0:
        return 100
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) to io.weight (1..10000)."""
    return 1 + ((weight - 10) * 9999) // 990


def writes(res: dict[str, Any], where: dict[str, int]) -> list[Write]:
    """The writes for `res`; `where[controller]` is 1 or 2; a missing controller is an error."""
    out: list[Write] = []

    def at(ctrl: str, field: str) -> int:
        v = where.get(ctrl)
        if v is None:
            raise CgroupError(f"linux.resources.{field}: this host has no {ctrl} cgroup controller")
        return v

    mem = res.get("memory") or {}
    if mem:
        v = at("memory", "memory")
        limit = _set(mem, "limit", "memory.limit")
        swap = _set(mem, "swap", "memory.swap")
        if limit == -1 and swap is None:
            # as runc: an unlimited memory with swap unset lifts the swap limit too (else the
            # kernel refuses a memory limit above the old memory+swap one)
            swap = -1 if v == 2 or where.get("memory.memsw") else None
        if swap is not None and v == 1:
            # memory+swap first: lifting both in the other order is refused by the kernel
            out.append(("memory", 1, "memory.memsw.limit_in_bytes", str(swap)))
        if limit is not None:
            out.append(("memory", v, "memory.limit_in_bytes" if v == 1 else "memory.max",
                        str(limit) if limit >= 0 or v == 1 else MAX))
        r = _set(mem, "reservation", "memory.reservation")
        if r is not None:
            out.append(("memory", v, "memory.soft_limit_in_bytes" if v == 1 else "memory.low",
                        str(r) if r >= 0 or v == 1 else MAX))
        if swap is not None and v == 2:  # OCI swap is memory+swap; v2 limits swap alone
            if swap < 0:
                out.append(("memory", 2, "memory.swap.max", MAX))
            elif limit is None or limit < 0:
                raise CgroupError("linux.resources.memory.swap needs memory.limit on cgroup v2")
            elif swap < limit:
                raise CgroupError("linux.resources.memory.swap must not be below memory.limit")
            else:
                out.append(("memory", 2, "memory.swap.max", str(swap - limit)))
        kernel = _set(mem, "kernel", "memory.kernel")
        if kernel is not None:
            if v == 2:
                raise CgroupError("linux.resources.memory.kernel: cgroup v2 has no kernel memory limit")
            out.append(("memory", 1, "memory.kmem.limit_in_bytes", str(kernel)))
        tcp = _set(mem, "kernelTCP", "memory.kernelTCP")
        if tcp is not None:
            if v == 2:
                raise CgroupError("linux.resources.memory.kernelTCP: cgroup v2 has no kernel TCP memory limit")
            out.append(("memory", 1, "memory.kmem.tcp.limit_in_bytes", str(tcp)))
        if mem.get("swappiness") is not None:
            sw = _int(mem["swappiness"], "memory.swappiness", 0)
            if sw > 100:
                raise CgroupError("linux.resources.memory.swappiness must be between 0 and 100")
            if v == 2:
                raise CgroupError("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness")
            out.append(("memory", 1, "memory.swappiness", str(sw)))
        if mem.get("disableOOMKiller"):
            if v == 2:
                raise CgroupError("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer")
            out.append(("memory", 1, "memory.oom_control", "1"))

    cpu = res.get("cpu") or {}
    if cpu:
        sh = _set(cpu, "shares", "cpu.shares", 0)
        if sh is not None:
            v = at("cpu", "cpu.shares")
            weight = sh if v == 1 else shares_to_weight(sh)
            out.append(("cpu", v, "cpu.shares" if v == 1 else "cpu.weight", str(weight)))
        quota, period = _set(cpu, "quota", "cpu.quota"), _set(cpu, "period", "cpu.period", 0)
        if quota is not None or period is not None:
            v = at("cpu", "cpu.quota")
            if v == 1:
                if period is not None:
                    out.append(("cpu", 1, "cpu.cfs_period_us", str(period)))
                if quota is not None:
                    out.append(("cpu", 1, "cpu.cfs_quota_us", str(quota)))
            else:  # "QUOTA [PERIOD]": without a period the kernel keeps the current one
                q = MAX if quota is None or quota < 0 else str(quota)
                out.append(("cpu", 2, "cpu.max", q if period is None else f"{q} {period}"))
        for key, f1 in (("realtimePeriod", "cpu.rt_period_us"), ("realtimeRuntime", "cpu.rt_runtime_us")):
            rt = _set(cpu, key, f"cpu.{key}")
            if rt is not None:
                if at("cpu", f"cpu.{key}") == 2:
                    raise CgroupError(f"linux.resources.cpu.{key}: cgroup v2 has no realtime budget")
                out.append(("cpu", 1, f1, str(rt)))
        if cpu.get("idle") is not None:
            out.append(("cpu", at("cpu", "cpu.idle"), "cpu.idle", str(_int(cpu["idle"], "cpu.idle", 0))))
        for key in ("cpus", "mems"):
            if cpu.get(key):
                val = cpu[key]
                if not isinstance(val, str) or not val.replace(",", "").replace("-", "").isdigit():
                    raise CgroupError(f"linux.resources.cpu.{key} must be a list like 0-3,5")
                out.append(("cpuset", at("cpuset", f"cpu.{key}"), f"cpuset.{key}", val))

    pids = res.get("pids") or {}
    lim = _set(pids, "limit", "pids.limit")
    if lim is not None:
        out.append(("pids", at("pids", "pids.limit"), "pids.max", str(lim) if lim > 0 else MAX))

    blk = res.get("blockIO") or {}
    if blk:
        v = at("blkio" if "blkio" in where else "io", "blockIO")
        ctrl = "blkio" if v == 1 else "io"
        bfq = "blkio.bfq." if v == 1 and where.get("blkio.bfq") else "blkio."  # see fs.controllers()
        w = _set(blk, "weight", "blockIO.weight", 10)
        if w is not None:
            out.append((ctrl, v, bfq + "weight" if v == 1 else "io.weight",
                        str(w) if v == 1 else f"default {blkio_to_io_weight(w)}"))
        leaf = _set(blk, "leafWeight", "blockIO.leafWeight", 10)
        if leaf is not None and v == 1:
            out.append((ctrl, 1, "blkio.leaf_weight", str(leaf)))
        for i, d in enumerate(blk.get("weightDevice") or []):
            w = _set(d, "weight", f"blockIO.weightDevice[{i}].weight", 10)
            if w is not None:
                dev = _dev(d, f"blockIO.weightDevice[{i}]")
                out.append((ctrl, v, bfq + "weight_device" if v == 1 else "io.weight",
                            f"{dev} {w if v == 1 else blkio_to_io_weight(w)}"))
        throttles = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
                     ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
                     ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
                     ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"))
        for key, f1, k2 in throttles:
            for i, d in enumerate(blk.get(key) or []):
                rate = _int(d.get("rate"), f"blockIO.{key}[{i}].rate", 0)
                dev = _dev(d, f"blockIO.{key}[{i}]")
                out.append((ctrl, v, f1 if v == 1 else "io.max", f"{dev} {rate}" if v == 1 else f"{dev} {k2}={rate}"))

    for i, h in enumerate(res.get("hugepageLimits") or []):
        size = h.get("pageSize")
        if not isinstance(size, str) or not size[:-2].isdigit() or size[-2:] not in ("KB", "MB", "GB"):
            raise CgroupError(f"linux.resources.hugepageLimits[{i}].pageSize must look like 2MB")
        v = at("hugetlb", "hugepageLimits")
        lim = _int(h.get("limit"), f"hugepageLimits[{i}].limit", 0)
        out.append(("hugetlb", v, f"hugetlb.{size}.limit_in_bytes" if v == 1 else f"hugetlb.{size}.max", str(lim)))

    net = res.get("network") or {}
    cls = _set(net, "classID", "network.classID", 0)
    if cls is not None:
        out.append(("net_cls", at("net_cls", "network.classID"), "net_cls.classid", str(cls)))
    for i, p in enumerate(net.get("priorities") or []):
        name = p.get("name")
        if not isinstance(name, str) or not name or any(c.isspace() or c == "/" for c in name):
            raise CgroupError(f"linux.resources.network.priorities[{i}].name must be an interface name")
        out.append(("net_prio", at("net_prio", "network.priorities"), "net_prio.ifpriomap",
                    f"{name} {_int(p.get('priority'), f'network.priorities[{i}].priority', 0)}"))

    for key, val in (res.get("unified") or {}).items():
        _unified_entry(key, val)
        ctrl = key.split(".", 1)[0]
        if where.get(ctrl, 2 if ctrl == "cgroup" else 0) != 2:
            raise CgroupError(f"linux.resources.unified[{key}]: the {ctrl} controller is not on cgroup v2 here")
        out.append((ctrl, 2, key, val))
    return out
