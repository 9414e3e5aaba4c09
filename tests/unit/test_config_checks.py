"""The checks between config.json and liblxc's config: field shapes, control characters, the item gate."""

from __future__ import annotations

import pytest

from lxcri.errors import LxcriError
from lxcri.lxcconf import check_item, escape_fstab
from lxcri.lxcconf.mounts import _entry
from lxcri.oci.schema import check_config, check_process_shape


def _deep(n: int) -> object:
    v: object = []
    for _ in range(n):
        v = [v]
    return v


@pytest.mark.parametrize(("cfg", "want"), [
    ({"process": {"user": {"uid": 2**32}}}, "process.user.uid: must be an integer in 0..4294967295"),
    ({"process": {"user": {"umask": -1}}}, "process.user.umask: must be an integer in 0..4294967295"),
    ({"process": {"user": {"gid": True}}}, "process.user.gid: must be an integer"),
    ({"process": {"args": "sh"}}, "process.args: must be a list"),
    ({"process": {"env": ["A=\ud800"]}}, "process.env[0]: must be valid Unicode text"),
    ({"mounts": [7]}, "mounts[0]: must be an object"),
    ({"linux": {"resources": {"memory": "1g"}}}, "linux.resources.memory: must be an object"),
    ({"linux": {"sysctl": {"a.b": 1}}}, "linux.sysctl[a.b]: must be a string"),
    ({"annotations": {"x": {"deep": []}}}, "annotations[x]: must be a string"),
    ({"x-ext": _deep(70)},
     "nested deeper than 64 levels"),
])
def test_shape_errors_name_the_field(cfg, want):
    with pytest.raises(LxcriError, match=want.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        check_config(cfg)


def test_nulls_read_as_absent_and_extensions_kept():
    cfg = check_config({"ociVersion": "1.2.0", "hostname": None, "process": {"user": {"uid": None}},
                        "x-vendor": {"a": [1, "b"]}})
    assert cfg == {"ociVersion": "1.2.0", "process": {"user": {}}, "x-vendor": {"a": [1, "b"]}}
    assert check_process_shape({"args": ["sh"], "cwd": "/"}) == {"args": ["sh"], "cwd": "/"}


@pytest.mark.parametrize("ch", ["\r", "\n", "\0", "\t", "\x1b", "\x7f", "\ud800"])
def test_item_gate_refuses_control_characters(ch):
    with pytest.raises(LxcriError, match=r"linux\.cgroupsPath must not contain"):
        check_item("lxc.cgroup.dir.container", f"lxcri/x{ch}lxc.hook.pre-start = /tmp/x")
    with pytest.raises(LxcriError, match=r"the value for liblxc's lxc\.new\.key"):
        check_item("lxc.new.key", f"v{ch}")


def test_mount_entry_fields_escaped():
    key, line = _entry("/host dir", "/in\\here", "tmpfs", ["mode=755"])
    assert key == "lxc.mount.entry"
    assert line == "/host\\040dir in\\134here tmpfs mode=755 0 0"
    assert escape_fstab("a\tb") == "a\\011b"
    check_item(key, line)  # what the escaping makes passes the gate
