"""Capability names as the OCI spec writes them, and their numbers."""

from __future__ import annotations

from lxcri.errors import SpecError

NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def mask(names: object, field: str) -> int:
    if not isinstance(names, list):
        raise SpecError(f"config.json: {field} must be a list of capability names")
    m = 0
    for n in names:
        key = n.upper() if isinstance(n, str) else ""
        if not key.startswith("CAP_"):
            key = "CAP_" + key
        if key not in NUMBERS:
            raise SpecError(f"config.json: {field}: unknown capability {n!r}")
        m |= 1 << NUMBERS[key]
    return m


def masks(caps: object, where: str = "process.capabilities") -> list[int] | None:
    """The five sets as bit masks, in the order the init helper takes them; None if unset."""
    if caps is None:
        return None
    if not isinstance(caps, dict):
        raise SpecError(f"config.json: {where} must be an object")
    return [mask(caps.get(s) or [], f"{where}.{s}") for s in SETS]
