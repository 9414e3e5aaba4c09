"""The other commands: list, ps, pause/resume, features, spec, --version, --log formats."""

from __future__ import annotations

import json
import subprocess

from lxcri_testlib import LXCRI


def test_list_json_and_table(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    ids = [lxcri.new_id("ls") for _ in range(2)]
    for cid in ids:
        lxcri.create(b, cid)
    lxcri("start", ids[0], check=True)
    listed = {s["id"]: s for s in json.loads(lxcri("list", "--format", "json", check=True).stdout)}
    assert listed[ids[0]]["status"] == "running" and listed[ids[1]]["status"] == "created"
    assert set(lxcri("list", "-q", check=True).stdout.split()) == set(ids)
    table = lxcri("list", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"] and len(table) == 3


def test_pause_resume(lxcri, make_bundle):
    b = make_bundle(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    assert lxcri("pause", cid).returncode == 0
    assert lxcri.state(cid)["status"] == "paused"
    tick = b.path / "rootfs" / "tmp" / "tick"
    before = tick.read_text()
    import time

    time.sleep(0.3)
    assert tick.read_text() == before  # nothing runs while paused
    r = lxcri("pause", cid)
    assert r.returncode == 1 and "not running" in r.stderr
    assert lxcri("resume", cid).returncode == 0
    assert lxcri.state(cid)["status"] == "running"
    time.sleep(0.3)
    assert tick.read_text() != before
    assert lxcri("resume", cid).returncode == 1


def test_delete_force_of_paused_container(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    lxcri("pause", cid, check=True)
    assert lxcri("delete", "-f", cid).returncode == 0
    from lxcri_testlib import leftovers

    assert leftovers(cid, lxcri.root) == []


def test_ps_table(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    out = lxcri("ps", cid, check=True).stdout.splitlines()
    assert "PID" in out[0] and any("sleep 100" in ln for ln in out[1:])
    assert not any("lxcri-monitor" in ln for ln in out)


def test_features_is_truthful_json(lxcri):
    f = json.loads(lxcri("features", check=True).stdout)
    assert f["ociVersionMin"] == "1.0.0" and f["ociVersionMax"].startswith("1.")
    assert set(f["hooks"]) == {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                               "poststop"}
    assert "pid" in f["linux"]["namespaces"] and "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["cgroup"]["v1"] is True  # this host: cgroup v1 with a cgroup2 mount
    assert f["linux"]["apparmor"]["enabled"] is False  # no AppArmor here


def test_spec_writes_a_config_lxcri_can_run(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    (b.path / "config.json").unlink()
    lxcri("spec", "--bundle", str(b.path), check=True)
    cfg = json.loads((b.path / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"] and cfg["root"]["path"] == "rootfs"
    r = lxcri("spec", "--bundle", str(b.path))
    assert r.returncode == 1 and "already exists" in r.stderr
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "exit 5"]
    (b.path / "config.json").write_text(json.dumps(cfg))
    cid = lxcri.new_id()
    r = subprocess.run([str(LXCRI), "--root", str(lxcri.root), "run", "-b", str(b.path), cid],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert r.returncode == 5


def test_version_and_help(lxcri):
    v = lxcri("--version", check=True).stdout
    assert v.startswith("lxcri version ") and "liblxc: " in v and "spec: 1." in v
    h = lxcri("--help", check=True).stdout
    assert "create" in h and "--root" in h
    assert "--bundle" in lxcri("create", "--help", check=True).stdout


def test_root_flag_forms(lxcri, make_bundle):
    b = make_bundle(["true"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    r = subprocess.run([str(LXCRI), f"--root={lxcri.root}", "state", cid], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "created"


def test_text_log_format(lxcri, tmp_path):
    log = tmp_path / "log.txt"
    r = lxcri("--log", str(log), "state", "missing")
    assert r.returncode == 1
    line = log.read_text().strip()
    assert line.startswith('time="') and "level=error" in line and "missing does not exist" in line


def test_settings_from_environment(lxcri, tmp_path, make_bundle):
    """LXCRI_ROOT overrides the default root when --root is not given (env only overrides)."""
    b = make_bundle(["true"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    import os

    env = dict(os.environ, LXCRI_ROOT=str(lxcri.root))
    r = subprocess.run([str(LXCRI), "state", cid], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
