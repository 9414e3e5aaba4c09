"""Config injection: every config.json string that reaches a line of liblxc's config, with a
line end (\\r, \\n), a NUL or a tab and an `lxc.hook.pre-start` after it (liblxc would run that
hook as host root). Each create must fail naming the field, leave nothing behind, and the hook
must never run."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lxcri_testlib import leftovers, reap

Setter = Callable[[dict[str, Any], str], None]


def _mount(i: int, key: str) -> Setter:
    def put(cfg: dict[str, Any], v: str) -> None:
        m = {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
        m[key] = [v] if key == "options" else v
        cfg["mounts"].insert(i, m)
    return put


def _ns_path(cfg: dict[str, Any], v: str) -> None:
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "uts":
            ns["path"] = "/proc/1/ns/uts" + v


def _lsm(key: str) -> Setter:
    def put(cfg: dict[str, Any], v: str) -> None:
        cfg["process"][key] = "unconfined" + v
    return put


# field named in the error -> how config.json carries the payload there
FIELDS: dict[str, Setter] = {
    "linux.cgroupsPath": lambda c, v: c["linux"].__setitem__("cgroupsPath", "/lxcri-escape/x" + v),
    "hostname": lambda c, v: c.__setitem__("hostname", "h" + v),
    "domainname": lambda c, v: c.__setitem__("domainname", "d" + v),
    "root.path": lambda c, v: c["root"].__setitem__("path", "rootfs" + v),
    "process.cwd": lambda c, v: c["process"].__setitem__("cwd", "/" + v),
    "mounts[0].source": _mount(0, "source"),
    "mounts[0].destination": _mount(0, "destination"),
    "mounts[0].type": _mount(0, "type"),
    "mounts[0].options[0]": _mount(0, "options"),
    "linux.sysctl key": lambda c, v: c["linux"].__setitem__("sysctl", {"kernel.msgmax" + v: "8192"}),
    "linux.sysctl[kernel.msgmax]": lambda c, v: c["linux"].__setitem__("sysctl", {"kernel.msgmax": "8192" + v}),
    "linux.namespaces[": _ns_path,
    "linux.resources.unified: ": lambda c, v: c["linux"].setdefault("resources", {}).__setitem__(
        "unified", {"pids.max" + v: "10"}),
    "linux.resources.unified[pids.max]": lambda c, v: c["linux"].setdefault("resources", {}).__setitem__(
        "unified", {"pids.max": "10" + v}),
    "linux.maskedPaths[0]": lambda c, v: c["linux"].__setitem__("maskedPaths", ["/proc/kcore" + v]),
    "linux.readonlyPaths[0]": lambda c, v: c["linux"].__setitem__("readonlyPaths", ["/proc/sys" + v]),
    "process.apparmorProfile": _lsm("apparmorProfile"),
    "process.selinuxLabel": _lsm("selinuxLabel"),
    "linux.mountLabel": lambda c, v: c["linux"].__setitem__("mountLabel", "system_u:object_r:x:s0" + v),
}
CONTROLS = {"CR": "\r", "LF": "\n", "NUL": "\0", "TAB": "\t"}


@pytest.fixture(scope="module")
def injected_hook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A host script that the injected lxc.hook.pre-start would run, and the file it makes."""
    d = tmp_path_factory.mktemp("injection")
    marker = d / f"hook-ran-{uuid.uuid4().hex[:8]}"
    hook = d / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    return hook, marker


@pytest.mark.parametrize("ctrl", list(CONTROLS))
@pytest.mark.parametrize("field", list(FIELDS))
def test_control_characters_refused(lxcri, make_bundle, injected_hook, field, ctrl):
    hook, marker = injected_hook
    b = make_bundle(["true"])
    FIELDS[field](b.config, f"{CONTROLS[ctrl]}lxc.hook.pre-start = {hook}")
    b.save()
    cid = lxcri.new_id("escape-inj")
    r = lxcri.create(b, cid)
    assert r.returncode == 1, (field, ctrl, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and field in lines[0], (field, ctrl, r.stderr)
    assert "internal error" not in r.stderr
    assert not marker.exists(), f"{field} with {ctrl}: the injected liblxc hook ran as host root"
    assert leftovers(cid, lxcri.root) == []


@pytest.mark.parametrize(("opts", "fstype", "want"), [
    (["size=1m mode=777"], "tmpfs", "mounts[0].options[0] 'size=1m mode=777' contains whitespace"),
    (["nosuid"], "tmpfs nosuid", "mounts[0].type 'tmpfs nosuid' is not a filesystem type name"),
    (["nosuid"], "", "mounts[0].type"),
])
def test_mount_fields_that_would_shift(lxcri, make_bundle, opts, fstype, want):
    b = make_bundle(["true"])
    b.config["mounts"].insert(0, {"destination": "/mnt", "type": fstype, "source": "tmpfs", "options": opts})
    if not fstype:
        b.config["mounts"][0]["type"] = 7
    b.save()
    cid = lxcri.new_id("escape-inj")
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and want in r.stderr, r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_unified_device_rules_refused(lxcri, make_bundle):
    """linux.resources.unified must not become liblxc's device policy (lxc.cgroup2.devices.*)."""
    b = make_bundle(["true"])
    b.config["linux"].setdefault("resources", {})["unified"] = {"devices.allow": "a"}
    b.save()
    cid = lxcri.new_id("escape-inj")
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "'devices.allow' is not a resource limit" in r.stderr, r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_blanks_in_bind_paths_are_escaped(lxcri, make_bundle, tmp_path):
    """Blanks are legal in paths: a bind from a host directory with a space to a destination
    with one works, its fields escaped in the mount entry, not shifted."""
    src = tmp_path / "host dir"
    src.mkdir()
    (src / "f").write_text("through-the-blank\n")
    b = make_bundle(["cat", "/mnt/in here/f"])
    b.config["mounts"].append({"destination": "/mnt/in here", "type": "bind", "source": str(src),
                               "options": ["rbind", "ro"]})
    b.save()
    cid = lxcri.new_id("escape-inj")
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    reap(int(pidf.read_text()))
    assert "through-the-blank" in (b.path / "out").read_text()
    lxcri("delete", "--force", cid, check=True)


def test_bundle_path_with_a_line_end(lxcri, make_bundle, injected_hook, tmp_path):
    """The bundle path reaches lxc.rootfs.path: the gate every item passes refuses it too.
    (A file name holds no '/', so the injected hook is a command on the host's PATH.)"""
    _, marker = injected_hook
    b = make_bundle(["true"])
    odd = tmp_path / "b\rlxc.hook.pre-start = touch"
    subprocess.run(["cp", "-a", str(b.path), str(odd)], check=True)
    cid = lxcri.new_id("escape-inj")
    r = lxcri("create", "--bundle", str(odd), cid, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "control characters" in r.stderr, r.stderr
    assert "internal error" not in r.stderr
    assert "root.path (or the bundle path)" in r.stderr, r.stderr
    assert not marker.exists()
    assert leftovers(cid, lxcri.root) == []
