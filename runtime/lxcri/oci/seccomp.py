"""linux.seccomp: validated and encoded for the init helper, which loads it with libseccomp.

The filter is loaded by lxcri's static helper right before the user's process
(runc does the same), not by liblxc: liblxc's profile format has no per-rule
errno values, no SCMP_ACT_LOG or KILL_PROCESS, and no filter flags.

With SCMP_ACT_NOTIFY rules the helper loads the filter before it reports ready and
passes the listener fd back; lxcri sends it to linux.seccomp.listenerPath with the
container's state (see send_to_listener).
"""

from __future__ import annotations

import struct

from lxcri.errors import SpecError
from lxcri.oci import spec as oci_spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry a 16-bit value
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
          "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
          "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"]
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
EPERM = 1


def _action(name: object, errno_ret: object, where: str, default_errno: int = EPERM) -> int:
    if name not in ACTIONS:
        raise SpecError(f"config.json: {where}: unknown seccomp action {name!r}")
    base = ACTIONS[str(name)]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        val = default_errno if errno_ret is None else errno_ret
        if not isinstance(val, int) or isinstance(val, bool) or not 0 <= val <= 0xFFFF:
            raise SpecError(f"config.json: {where}: errnoRet must be between 0 and 65535")
        return base | val
    return base


def _s(v: str) -> bytes:
    b = v.encode()
    return struct.pack("<I", len(b)) + b


def _split(args: list[tuple[int, bytes]]) -> list[list[bytes]]:
    """The libseccomp rules one config.json rule becomes, as runc makes them.

    libseccomp ANDs a rule's comparisons and takes at most one per argument. Profiles
    nevertheless list several for one argument to mean "any of these" (CRI-O's default
    has seven masks on clone's flags, each denying one namespace type): when any
    argument repeats, every comparison becomes a rule of its own, so the action applies
    when any one of them matches. Otherwise the comparisons stay together (all must match).
    """
    indexes = [idx for idx, _ in args]
    if len(set(indexes)) == len(indexes):
        return [[enc for _, enc in args]]
    return [[enc] for _, enc in args]


def encode(seccomp: dict[str, Any] | None) -> bytes:
    """The helper's encoding: u32 present; default action; flags; arches; rules with their args."""
    if not seccomp:
        return struct.pack("<I", 0)
    if not isinstance(seccomp, dict):
        raise SpecError("config.json: linux.seccomp must be an object")
    default_errno = seccomp.get("defaultErrnoRet", EPERM)
    default = _action(seccomp.get("defaultAction"), default_errno, "linux.seccomp.defaultAction")
    flags = 0
    for f in seccomp.get("flags") or []:
        if f not in FLAGS:
            raise SpecError(f"config.json: linux.seccomp.flags: {f!r} is not supported here")
        flags |= FLAGS[f]
    if seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY":
        # every syscall of the helper itself would wait for a listener it has not yet reached
        raise SpecError("config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    listener = seccomp.get("listenerPath")
    if listener is not None and (not isinstance(listener, str) or not listener.startswith("/")):
        raise SpecError("config.json: linux.seccomp.listenerPath must be an absolute path")
    if not isinstance(seccomp.get("listenerMetadata", ""), str):
        raise SpecError("config.json: linux.seccomp.listenerMetadata must be a string")
    arches = seccomp.get("architectures") or []
    for a in arches:
        if a not in ARCHES:
            raise SpecError(f"config.json: linux.seccomp.architectures: unknown {a!r}")
    out = [struct.pack("<III", 1, default, flags), struct.pack("<I", len(arches))]
    out += [_s(a[len("SCMP_ARCH_"):].lower()) for a in arches]
    rules: list[bytes] = []
    for i, sc in enumerate(seccomp.get("syscalls") or []):
        where = f"linux.seccomp.syscalls[{i}]"
        names = sc.get("names") or ([sc["name"]] if sc.get("name") else [])
        if not names or not all(isinstance(n, str) and n and n.isascii() for n in names):
            raise SpecError(f"config.json: {where}.names must be a list of syscall names")
        # a rule without errnoRet returns EPERM (runtime-spec, and runc), not defaultErrnoRet
        action = _action(sc.get("action"), sc.get("errnoRet"), where)
        if sc.get("action") == "SCMP_ACT_NOTIFY":
            if not listener:
                raise SpecError(f"config.json: {where}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
            # the helper writes and sends on the sync socket after loading the filter (runc refuses write too)
            for n in names:
                if n in ("write", "sendmsg"):
                    raise SpecError(f"config.json: {where}: SCMP_ACT_NOTIFY cannot be used for {n}")
        args = sc.get("args") or []
        enc_args: list[tuple[int, bytes]] = []
        for j, a in enumerate(args):
            idx, op = a.get("index"), a.get("op")
            if not isinstance(idx, int) or not 0 <= idx <= 5:
                raise SpecError(f"config.json: {where}.args[{j}].index must be 0..5")
            if op not in OPERATORS:
                raise SpecError(f"config.json: {where}.args[{j}].op {op!r} is unknown")
            value, value2 = a.get("value", 0), a.get("valueTwo", 0)
            for v in (value, value2):
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
                    raise SpecError(f"config.json: {where}.args[{j}] values must be unsigned 64-bit integers")
            enc_args.append((idx, struct.pack("<IIQQ", idx, OPERATORS[op], value, value2)))
        for group in _split(enc_args):
            for n in names:
                rules.append(_s(n) + struct.pack("<II", action, len(group)) + b"".join(group))
    out.append(struct.pack("<I", len(rules)))
    out += rules
    return b"".join(out)


def send_to_listener(config: dict[str, Any], fd: int, pid: int, state: dict[str, Any]) -> None:
    """The runtime-spec's ContainerProcessState, with the listener fd, over config.json's
    linux.seccomp.listenerPath (SCM_RIGHTS)."""
    import socket

    from lxcri import OCI_VERSION, jsonlite
    from lxcri.errors import LxcriError

    seccomp = oci_spec.linux(config).get("seccomp") or {}
    path = seccomp["listenerPath"]
    msg = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
           "metadata": seccomp.get("listenerMetadata") or "", "state": state}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendmsg([jsonlite.dumps(msg).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
    except OSError as e:
        raise LxcriError(f"seccomp listener {path}: {e.strerror or e}") from e
    finally:
        s.close()
