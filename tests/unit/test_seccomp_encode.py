"""linux.seccomp -> the rules the init helper hands to libseccomp (oci/seccomp.py's encoding)."""

from __future__ import annotations

import struct
from typing import Any

from lxcri.oci import seccomp

EQ, MASKED_EQ = 4, 7


def decode(blob: bytes) -> tuple[int, list[tuple[str, int, list[tuple[int, int, int, int]]]]]:
    """The default action and the rules (name, action, [(index, op, value, valueTwo)])."""
    pos = 0

    def u32() -> int:
        nonlocal pos
        (v,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        return int(v)

    def s() -> str:
        nonlocal pos
        n = u32()
        pos += n
        return blob[pos - n:pos].decode()

    assert u32() == 1
    default, _flags = u32(), u32()
    for _ in range(u32()):
        s()
    rules = []
    for _ in range(u32()):
        name, action, nargs = s(), u32(), u32()
        args = []
        for _ in range(nargs):
            idx, op, a, b = struct.unpack_from("<IIQQ", blob, pos)
            pos += 24
            args.append((idx, op, a, b))
        rules.append((name, action, args))
    assert pos == len(blob)
    return default, rules


def profile(*syscalls: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": list(syscalls), **top}


CLONE_NS_FLAGS = [0x20000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000, 0x2000000]


def test_conditions_on_one_argument_become_one_rule_each():
    # CRI-O's clone rule: any namespace flag denies
    rule = {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": f, "valueTwo": f, "op": "SCMP_CMP_MASKED_EQ"} for f in CLONE_NS_FLAGS]}
    _, rules = decode(seccomp.encode(profile(rule)))
    assert [r[2] for r in rules] == [[(0, MASKED_EQ, f, f)] for f in CLONE_NS_FLAGS]
    assert {r[0] for r in rules} == {"clone"}
    assert {r[1] for r in rules} == {0x00050000 | 1}  # EPERM: the rule has no errnoRet


def test_a_repeated_argument_splits_every_condition_as_runc_does():
    rule = {"names": ["socket", "socketpair"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                     {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]}
    _, rules = decode(seccomp.encode(profile(rule)))
    assert [(r[0], r[2]) for r in rules] == [
        ("socket", [(0, EQ, 1, 0)]), ("socketpair", [(0, EQ, 1, 0)]),
        ("socket", [(0, EQ, 2, 0)]), ("socketpair", [(0, EQ, 2, 0)]),
        ("socket", [(2, EQ, 9, 0)]), ("socketpair", [(2, EQ, 9, 0)])]


def test_distinct_arguments_stay_one_rule():
    # CRI-O's audit socket rule: family AND protocol must both match
    rule = {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
            "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]}
    _, rules = decode(seccomp.encode(profile(rule)))
    assert rules == [("socket", 0x00050000 | 22, [(0, EQ, 16, 0), (2, EQ, 9, 0)])]


def test_errno_defaults_to_eperm_per_rule_and_defaultErrnoRet_for_the_default_action():
    default, rules = decode(seccomp.encode(profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"})))
    assert default == 0x00050000 | 38
    assert rules == [("mkdir", 0x00050000 | 1, [])]
