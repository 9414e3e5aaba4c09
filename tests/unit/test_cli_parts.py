"""The CLI's own pieces: runc's flag shapes, signals, the helper protocol, JSON on the hot path."""

from __future__ import annotations

import json
import struct

import pytest

from lxcri import jsonlite
from lxcri.cli import options
from lxcri.cli.args import parse
from lxcri.cli.commands import COMMANDS, GLOBAL_FLAGS
from lxcri.cli.options import Globals
from lxcri.errors import UsageError
from lxcri.ids import check_id
from lxcri.libexec.protocol import InitSpec, encode
from lxcri.proc import signal_number


def p(*argv: str):
    return parse(list(argv), GLOBAL_FLAGS, COMMANDS)


def test_global_flags_both_forms_and_short_flags():
    a = p("--root=/r", "--log", "/l", "--log-format", "json", "kill", "-a", "c1", "9")
    k = options.Kill(a)
    assert {k: Globals(a).overrides[k] for k in ("root", "log", "log_format")} == {"root": "/r", "log": "/l",
                                                                               "log_format": "json"}
    assert (a.command, k.all, k.id, k.signal) == ("kill", True, "c1", "9")
    assert options.Kill(p("kill", "c1")).signal == "SIGTERM"
    assert options.Delete(p("delete", "--force", "c1")).force is True


def test_exec_stops_reading_flags_after_the_id():
    o = options.exec_(p("exec", "-e", "A=1", "--env=B=2", "-t", "c1", "ls", "-la", "--color"))
    assert o.env == ["A=1", "B=2"] and o.tty is True and o.args == ["ls", "-la", "--color"]


@pytest.mark.parametrize("argv,msg", [
    (("frob",), "unknown command"), (("create", "--nope", "x"), "unknown flag --nope"),
    (("create",), "missing id"), (("create", "--preserve-fds", "x", "c"), "not a number"),
    (("--nope",), "unknown global flag"), (("state", "a", "b"), "unexpected argument"),
])
def test_usage_errors(argv, msg):
    with pytest.raises(UsageError, match=msg):
        p(*argv)


def test_signals():
    assert [signal_number(s) for s in ("9", "KILL", "SIGKILL", "term", "SIGRTMIN+1")] == [9, 9, 9, 15, 35]
    for bad in ("0", "65", "NOPE", "SIG_DFL", ""):
        with pytest.raises(UsageError):
            signal_number(bad)


@pytest.mark.parametrize("cid", ["../x", "a/b", ".x", "", "a b", "x" * 1025])
def test_bad_ids(cid):
    with pytest.raises(UsageError):
        check_id(cid)


def test_protocol_frame_layout():
    body = encode(InitSpec(args=["sh", "-c", "echo é"], env=["A=1"], terminal=True, umask=0o22, caps=[1, 2, 3, 4, 5]))
    (n,) = struct.unpack("<I", body[:4])
    assert n == len(body) - 4
    magic, flags, umask = struct.unpack("<III", body[4:16])
    assert magic == 0x3153584C and flags == 3 and umask == 0o22
    assert "echo é".encode() in body


def test_jsonlite_matches_json():
    doc = {"a": [1, 2.5, None, True, False, "x\"\n\u00e9\U0001f600"], "b": {}, "c": []}
    for indent in (0, 2):
        assert json.loads(jsonlite.dumps(doc, indent)) == doc
    assert jsonlite.loads(json.dumps(doc)) == doc
    with pytest.raises(ValueError):
        jsonlite.loads("{broken")
    with pytest.raises(ValueError):
        jsonlite.loads('{"a": 1} trailing')
