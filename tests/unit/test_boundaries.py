"""The runtime's typed boundaries: the state record, the status, errors, the two protocols' tags."""

from __future__ import annotations

import socket

import pytest

from lxcri.container import status
from lxcri.container.rundir import Record
from lxcri.errors import SpecError
from lxcri.libexec import protocol
from lxcri.oci.spec import check_text
from lxcri.warm import wire


def test_state_record_from_another_version():
    """Keys a newer lxcri wrote are ignored, keys an older one lacked take their defaults."""
    rec = Record.from_dict({"id": "c1", "bundle": "/b", "init_pid": 42, "from_the_future": {"x": 1}})
    assert (rec.id, rec.bundle, rec.init_pid, rec.rootfs, rec.ready, rec.cgroup_dirs) == ("c1", "/b", 42, "", True, {})
    assert Record.from_dict(vars(rec)).__dict__ == rec.__dict__
    with pytest.raises(ValueError):
        Record.from_dict(["not", "an", "object"])


def test_each_status_says_what_it_allows():
    allowed = {st.name: {op for op in ("can_start", "can_exec", "can_pause", "can_resume", "can_delete")
                         if getattr(st, op)}
               for st in (status.CREATING, status.CREATED, status.RUNNING, status.PAUSED, status.STOPPED)}
    assert allowed == {"creating": set(), "created": {"can_start", "can_exec", "can_delete"},
                       "running": {"can_exec", "can_pause"}, "paused": {"can_resume"}, "stopped": {"can_delete"}}
    assert f"it is {status.PAUSED}" == "it is paused"


def test_errors_carry_field_and_cause():
    with pytest.raises(SpecError) as err:
        check_text("a\nb", "hostname")
    assert err.value.field == "hostname" and "hostname" in str(err.value)
    try:
        try:
            raise OSError(2, "No such file")
        except OSError as e:
            raise SpecError("config.json: cannot read") from e
    except SpecError as e:
        assert isinstance(e.cause, OSError)


def test_helper_frames_round_trip():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(protocol.frame(protocol.ERROR + b"it failed"))
        body, _pid = protocol.read_frame(b)
        assert body[:1] == protocol.ERROR and body[1:] == b"it failed"
        a.close()
        with pytest.raises(EOFError):
            protocol.read_frame(b)


def test_the_two_protocols_name_their_r_apart():
    assert protocol.READY == wire.RETIRE == b"R"  # the same byte, two meanings: always by name
    call = b"".join(x + b"\0" for x in [b"LXZ3", b"22", b"2", b"state", b"c1", b"A=1"])
    decoded = wire.decode_call(call)
    assert (decoded.umask, decoded.argv, decoded.env) == (0o22, ["state", "c1"], [b"A=1"])
    assert wire.is_call(call, [0, 1, 2, 3]) and not wire.is_call(call, [0])
