"""Every OCI hook point runs at its spec-defined moment, with the state JSON on stdin."""

from __future__ import annotations

import json
import subprocess

from lxcri_testlib import leftovers, reap

POINTS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def recording_hook(tmp_path, point):
    """A hook that records its stdin and where it ran; startContainer runs inside the container."""
    if point == "startContainer":
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > /tmp/{point}.json; hostname > /tmp/{point}.where"]}
    log = tmp_path / "hooks"
    return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {log}/{point}.json; "
                                               f"readlink /proc/self/ns/mnt > {log}/{point}.mnt; "
                                               f"echo {point} >> {log}/order"],
            "env": ["HOOKVAR=1"], "timeout": 10}


def test_all_hook_points(lxcri, make_bundle, tmp_path):
    (tmp_path / "hooks").mkdir()
    b = make_bundle(["sh", "-c", "cat /tmp/startContainer.where; cat /tmp/startContainer.json"])
    b.config["hooks"] = {p: [recording_hook(tmp_path, p)] for p in POINTS}
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    hooks = tmp_path / "hooks"
    assert (hooks / "order").read_text().split() == ["prestart", "createRuntime", "createContainer"]
    st = lxcri.state(cid)
    for p in ("prestart", "createRuntime", "createContainer"):
        got = json.loads((hooks / f"{p}.json").read_text())
        assert got["id"] == cid and got["pid"] == st["pid"] and got["bundle"] == str(b.path)
        assert got["status"] == "created"  # as crun gives it and the runtime-tools suite expects
    host_mnt = subprocess.run(["readlink", "/proc/self/ns/mnt"], capture_output=True, text=True).stdout.strip()
    assert (hooks / "prestart.mnt").read_text().strip() == host_mnt
    assert (hooks / "createRuntime.mnt").read_text().strip() == host_mnt
    # createContainer runs in the container's mount namespace
    assert (hooks / "createContainer.mnt").read_text().strip() != host_mnt
    lxcri("start", cid, check=True)
    assert reap(int(pidf.read_text())) == 0
    out = (b.path / "out").read_text().splitlines()
    assert out[0] == b.config["hostname"]  # startContainer ran inside the container
    assert json.loads(out[1])["status"] == "created"
    assert (hooks / "order").read_text().split()[3:] == ["poststart"]
    assert json.loads((hooks / "poststart.json").read_text())["status"] == "running"
    lxcri.wait_status(cid, "stopped")
    lxcri("delete", cid, check=True)
    assert (hooks / "order").read_text().split()[4:] == ["poststop"]
    assert json.loads((hooks / "poststop.json").read_text())["status"] == "stopped"
    assert leftovers(cid, lxcri.root) == []


def test_failing_create_runtime_hook_fails_create_cleanly(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]}
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1
    assert "createRuntime hook 0 (/bin/sh) failed with status 3: nope" in r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_hook_timeout(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]}
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1
    assert "prestart hook 0 (/bin/sleep) timed out after 1s" in r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_failing_poststart_only_warns(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sleep", "100"])
    b.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    b.save()
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    log = tmp_path / "log"
    r = lxcri("--log", str(log), "--log-format", "json", "start", cid)
    assert r.returncode == 0
    assert json.loads(log.read_text().splitlines()[-1])["level"] == "warning"
    assert lxcri.state(cid)["status"] == "running"


def test_bad_hook_spec(lxcri, make_bundle):
    b = make_bundle(["true"])
    b.config["hooks"] = {"prestart": [{"path": "relative/hook"}]}
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "hooks.prestart[0].path must be an absolute path" in r.stderr
    assert leftovers(cid, lxcri.root) == []
