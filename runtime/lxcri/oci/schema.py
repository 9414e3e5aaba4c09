"""The shape of config.json: every field lxcri reads, with its type and range, checked once up front.

The translation reads config.json with `.get()` and trusts what it finds; a number where an
object belongs, a uid past 2^32 or a list nested ten thousand deep would otherwise surface as
a Python exception deep inside it ("internal error: AttributeError"). Here each field is
checked against the runtime-spec's type before anything else runs, and a mismatch names the
field in the user's terms: `process.user.uid: must be an integer in 0..4294967295`.

A null is taken as an absent field, as Go runtimes read it (a nil pointer). Unknown keys
are allowed: the spec lets configs carry extensions.
"""

from __future__ import annotations

from lxcri.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 64  # no field of the runtime-spec is nested half as deep


class Int:
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi


class Obj:
    def __init__(self, fields: dict[str, object], values: Any = None) -> None:
        self.fields = fields  # known keys -> their shape
        self.values = values  # a map (annotations, sysctl): the shape of every value


class List:
    def __init__(self, elem: Any) -> None:
        self.elem = elem


U16 = Int(0, 2**16 - 1)
U32 = Int(0, 2**32 - 1)
I64 = Int(-(2**63), 2**63 - 1)
U64 = Int(0, 2**64 - 1)
STRS = List(str)

_ID_MAP = List(Obj({"containerID": U32, "hostID": U32, "size": U32}))
_HOOK = List(Obj({"path": str, "args": STRS, "env": STRS, "timeout": Int(1, 2**31 - 1)}))
_THROTTLE = List(Obj({"major": I64, "minor": I64, "rate": U64}))

PROCESS = Obj({
    "terminal": bool,
    "consoleSize": Obj({"height": U32, "width": U32}),
    "user": Obj({"uid": U32, "gid": U32, "umask": U32, "additionalGids": List(U32), "username": str}),
    "args": STRS,
    "commandLine": str,
    "env": STRS,
    "cwd": str,
    "capabilities": Obj({k: STRS for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}),
    "rlimits": List(Obj({"type": str, "soft": U64, "hard": U64})),
    "noNewPrivileges": bool,
    "apparmorProfile": str,
    "oomScoreAdj": Int(-1000, 1000),
    "selinuxLabel": str,
    "ioPriority": Obj({"class": str, "priority": Int(0, 7)}),
    "scheduler": Obj({"policy": str, "nice": Int(-20, 19), "priority": Int(-(2**31), 2**31 - 1), "flags": STRS,
                      "runtime": U64, "deadline": U64, "period": U64}),
    "personality": Obj({"domain": str, "flags": STRS}),
    "execCPUAffinity": Obj({"initial": str, "final": str}),
})

RESOURCES = Obj({
    "devices": List(Obj({"allow": bool, "type": str, "major": I64, "minor": I64, "access": str})),
    "memory": Obj({"limit": I64, "reservation": I64, "swap": I64, "kernel": I64, "kernelTCP": I64,
                   "swappiness": U64, "disableOOMKiller": bool, "useHierarchy": bool, "checkBeforeUpdate": bool}),
    "cpu": Obj({"shares": U64, "quota": I64, "burst": U64, "period": U64, "realtimeRuntime": I64,
                "realtimePeriod": U64, "cpus": str, "mems": str, "idle": I64}),
    "pids": Obj({"limit": I64}),
    "blockIO": Obj({"weight": U16, "leafWeight": U16,
                    "weightDevice": List(Obj({"major": I64, "minor": I64, "weight": U16, "leafWeight": U16})),
                    "throttleReadBpsDevice": _THROTTLE, "throttleWriteBpsDevice": _THROTTLE,
                    "throttleReadIOPSDevice": _THROTTLE, "throttleWriteIOPSDevice": _THROTTLE}),
    "hugepageLimits": List(Obj({"pageSize": str, "limit": U64})),
    "network": Obj({"classID": U32, "priorities": List(Obj({"name": str, "priority": U32}))}),
    "rdma": Obj({}, Obj({"hcaHandles": U32, "hcaObjects": U32})),
    "unified": Obj({}, str),
})

SECCOMP = Obj({
    "defaultAction": str, "defaultErrnoRet": U32, "architectures": STRS, "flags": STRS,
    "listenerPath": str, "listenerMetadata": str,
    "syscalls": List(Obj({"names": STRS, "action": str, "errnoRet": U32,
                          "args": List(Obj({"index": U32, "value": U64, "valueTwo": U64, "op": str}))})),
})

CONFIG = Obj({
    "ociVersion": str,
    "root": Obj({"path": str, "readonly": bool}),
    "process": PROCESS,
    "hostname": str,
    "domainname": str,
    "mounts": List(Obj({"destination": str, "type": str, "source": str, "options": STRS,
                        "uidMappings": _ID_MAP, "gidMappings": _ID_MAP})),
    "hooks": Obj({p: _HOOK for p in ("prestart", "createRuntime", "createContainer", "startContainer",
                                      "poststart", "poststop")}),
    "annotations": Obj({}, str),
    "linux": Obj({
        "namespaces": List(Obj({"type": str, "path": str})),
        "uidMappings": _ID_MAP,
        "gidMappings": _ID_MAP,
        "timeOffsets": Obj({}, Obj({"secs": I64, "nanosecs": U32})),
        "devices": List(Obj({"type": str, "path": str, "major": I64, "minor": I64, "fileMode": U32,
                             "uid": U32, "gid": U32})),
        "cgroupsPath": str,
        "resources": RESOURCES,
        "rootfsPropagation": str,
        "seccomp": SECCOMP,
        "sysctl": Obj({}, str),
        "maskedPaths": STRS,
        "readonlyPaths": STRS,
        "mountLabel": str,
        "intelRdt": Obj({"closID": str, "l3CacheSchema": str, "memBwSchema": str}),
        "personality": Obj({"domain": str, "flags": STRS}),
    }),
})

_NAMES = {str: "a string", bool: "a boolean"}


def _fail(where: str, msg: str) -> None:
    raise SpecError(f"config.json: {where}: {msg}")


def _surrogate(s: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in s)


def _check(value: Any, shape: Any, where: str) -> Any:
    """value checked against shape; returns it with the nulls of its objects dropped."""
    if isinstance(shape, Int):
        if not isinstance(value, int) or isinstance(value, bool) or not shape.lo <= value <= shape.hi:
            _fail(where, f"must be an integer in {shape.lo}..{shape.hi}")
        return value
    if shape is str:
        if not isinstance(value, str):
            _fail(where, "must be a string")
        if _surrogate(value):
            _fail(where, "must be valid Unicode text (it holds a lone surrogate)")
        return value
    if shape is bool:
        if not isinstance(value, bool):
            _fail(where, "must be a boolean")
        return value
    if isinstance(shape, List):
        if not isinstance(value, list):
            _fail(where, "must be a list")
        return [_check(v, shape.elem, f"{where}[{i}]") for i, v in enumerate(value)]
    assert isinstance(shape, Obj)
    if not isinstance(value, dict):
        _fail(where, "must be an object")
    out = {}
    for k, v in value.items():
        if _surrogate(k):
            _fail(where, f"key {k!r} must be valid Unicode text")
        if v is None:
            continue  # absent, as for a Go runtime
        sub = shape.fields.get(k, shape.values)
        name = f"{where}.{k}" if where else k
        if sub is None:
            out[k] = _unknown(v, name)
        elif shape.values is not None and k not in shape.fields:
            out[k] = _check(v, sub, f"{where}[{k}]")
        else:
            out[k] = _check(v, sub, name)
    return out


def _unknown(value: Any, where: str) -> Any:
    """An extension lxcri does not read: only bounded in depth and valid Unicode (it may be stored)."""
    stack = [(value, where, 0)]
    while stack:
        v, at, depth = stack.pop()
        if depth > MAX_DEPTH:
            _fail(at, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, str) and _surrogate(v):
            _fail(at, "must be valid Unicode text (it holds a lone surrogate)")
        elif isinstance(v, dict):
            for k, x in v.items():
                if _surrogate(k):
                    _fail(at, f"key {k!r} must be valid Unicode text")
                stack.append((x, f"{at}.{k}", depth + 1))
        elif isinstance(v, list):
            stack.extend((x, f"{at}[{i}]", depth + 1) for i, x in enumerate(v))
    return value


def check_config(config: dict[str, object]) -> dict[str, object]:
    """The whole config.json against the runtime-spec's types; nulls dropped (see the module doc)."""
    out: dict[str, object] = _check(config, CONFIG, "")
    return out


def check_process_shape(process: Any, where: str = "process") -> dict[str, object]:
    """An exec's process (--process FILE, or the container's with the flags applied)."""
    out: dict[str, object] = _check(process, PROCESS, where)
    return out
