"""Bad input, as a user (or a hostile bundle) gives it: a clear one-line error on stderr and
in the --log file, exit status 1, and nothing left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lxcri_testlib import LXCRI, leftovers


def assert_clean_failure(r: subprocess.CompletedProcess[str], want: str, log: Path | None = None) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert want in lines[0], lines[0]
    if log is not None:
        entries = [json.loads(ln) for ln in log.read_text().splitlines()]
        assert entries[-1]["level"] == "error" and want in entries[-1]["msg"] and entries[-1]["time"]


def create_logged(lxcri, tmp_path, bundle_dir, cid, *extra):
    log = tmp_path / "log.json"
    r = lxcri("--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle_dir), *extra, cid,
              stdin=subprocess.DEVNULL)
    return r, log


def test_no_config_json(lxcri, tmp_path):
    cid = lxcri.new_id()
    (tmp_path / "empty").mkdir()
    r, log = create_logged(lxcri, tmp_path, tmp_path / "empty", cid)
    assert_clean_failure(r, "no config.json", log)
    assert leftovers(cid, lxcri.root) == []


def test_invalid_json(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    (b.path / "config.json").write_text("{not json")
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "invalid JSON", log)
    assert leftovers(cid, lxcri.root) == []


def test_missing_rootfs(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["root"]["path"] = "nowhere"
    b.save()
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "no such directory", log)
    assert leftovers(cid, lxcri.root) == []


@pytest.mark.parametrize("args", [[], [""]])
def test_empty_args(lxcri, make_bundle, tmp_path, args):
    b = make_bundle(args)
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "process.args is empty", log)
    assert leftovers(cid, lxcri.root) == []


def test_executable_not_found(lxcri, make_bundle, tmp_path):
    b = make_bundle(["no-such-program", "x"])
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, 'exec: "no-such-program": executable file not found in $PATH', log)
    assert leftovers(cid, lxcri.root) == []


def test_existing_id(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sleep", "10"])
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "already exists", log)
    assert lxcri.state(cid)["status"] == "created"  # the first one is untouched


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".hidden", "x y", ""])
def test_bad_ids(lxcri, make_bundle, tmp_path, bad):
    b = make_bundle(["true"])
    r, log = create_logged(lxcri, tmp_path, b.path, bad)
    assert_clean_failure(r, "invalid container ID", log)
    assert not any(lxcri.root.parent.glob("x*")) and not (lxcri.root.parent / "x").exists()
    assert not lxcri.root.exists() or list(lxcri.root.iterdir()) == []


def test_unknown_command_and_flag(lxcri, tmp_path):
    log = tmp_path / "log"
    assert_clean_failure(lxcri("--log", str(log), "frobnicate"), "unknown command")
    assert "unknown command" in log.read_text()
    assert_clean_failure(lxcri("create", "--frob", "x"), "unknown flag --frob")
    assert_clean_failure(lxcri("--frob", "state", "x"), "unknown global flag --frob")


def test_state_of_unknown_container(lxcri):
    assert_clean_failure(lxcri("state", "nope"), "container nope does not exist")


def test_start_twice_and_kill_stopped_and_delete_twice(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    assert_clean_failure(lxcri("start", cid), "not created")
    lxcri("kill", cid, "KILL", check=True)
    lxcri.wait_status(cid, "stopped")
    # CRI-O recognises a gone container by this text
    assert_clean_failure(lxcri("kill", cid, "KILL"), "container not running")
    assert_clean_failure(lxcri("start", cid), "has stopped")
    lxcri("delete", cid, check=True)
    assert_clean_failure(lxcri("delete", cid), "does not exist")


def test_bad_signal(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    assert_clean_failure(lxcri("kill", cid, "SIGNOPE"), "invalid signal")


def test_dotdot_mount_destination_stays_inside_rootfs(lxcri, make_bundle, tmp_path):
    """`..` cannot climb above the rootfs: /../../etc/evil is the container's /etc/evil, as with runc."""
    b = make_bundle(["sh", "-c", "grep ' /etc/evil ' /proc/self/mountinfo"])
    b.config["mounts"].append({"destination": "/../../etc/evil", "type": "tmpfs", "source": "tmpfs"})
    b.save()
    cid = lxcri.new_id()
    assert lxcri.create(b, cid, pid_file=tmp_path / "pid").returncode == 0
    lxcri("start", cid, check=True)
    from lxcri_testlib import reap

    assert reap(int((tmp_path / "pid").read_text())) == 0
    assert " /etc/evil " in (b.path / "out").read_text()
    assert not Path("/etc/evil").exists()
    assert (b.path / "rootfs" / "etc" / "evil").is_dir()


def test_symlink_mount_destination_stays_inside(lxcri, make_bundle, tmp_path):
    """A rootfs symlink pointing at the host's / must not redirect a mount onto the host."""
    b = make_bundle(["true"])
    target = tmp_path / "host-target"
    target.mkdir()
    (b.path / "rootfs" / "evil").symlink_to(target)
    b.config["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"})
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    if r.returncode == 0:
        lxcri("delete", "-f", cid, check=True)
    # whether liblxc refused or mounted inside the container, the host path was never touched
    assert not any(ln.split()[4] == str(target) for ln in Path("/proc/self/mountinfo").read_text().splitlines())
    assert list(target.iterdir()) == []
    assert leftovers(cid, lxcri.root) == []


def test_newline_injection_into_liblxc_config(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["hostname"] = "x\nlxc.rootfs.path = dir:/"
    b.save()
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "must not contain newlines", log)
    assert leftovers(cid, lxcri.root) == []


def test_failing_liblxc_start_is_reported(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path),
                               "options": ["bind", "nosuchoption=1"]})
    b.config["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "none"})
    b.save()
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "container failed to start", log)
    assert leftovers(cid, lxcri.root) == []


def test_console_socket_that_does_not_answer(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["process"]["terminal"] = True
    b.save()
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid, "--console-socket", str(tmp_path / "nobody-listens"))
    assert_clean_failure(r, "--console-socket", log)
    assert leftovers(cid, lxcri.root) == []
    # a socket file nobody listens on: found only once the container exists, which is then undone
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "closed.sock"))
    s.close()
    r, log = create_logged(lxcri, tmp_path, b.path, cid, "--console-socket", str(tmp_path / "closed.sock"))
    assert_clean_failure(r, "console socket", log)
    assert leftovers(cid, lxcri.root) == []
    assert "does not exist" in lxcri("state", cid).stderr


def test_terminal_without_console_socket(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["process"]["terminal"] = True
    b.save()
    cid = lxcri.new_id()
    r, log = create_logged(lxcri, tmp_path, b.path, cid)
    assert_clean_failure(r, "no --console-socket", log)


def test_systemd_cgroup_without_systemd(lxcri, make_bundle, tmp_path):
    if Path("/run/systemd/system").is_dir():
        pytest.fail("this host runs systemd: the test expects a host without it, like the CI machine")
    b = make_bundle(["true"])
    cid = lxcri.new_id()
    r = lxcri("--systemd-cgroup", "create", "--bundle", str(b.path), cid)
    assert_clean_failure(r, "does not run systemd")
    assert leftovers(cid, lxcri.root) == []


def test_caller_dies_mid_create(lxcri, make_bundle, tmp_path):
    """create killed before it finishes: the container is reported stopped and delete cleans up."""
    b = make_bundle(["true"])
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"]}]}
    b.save()
    cid = lxcri.new_id()
    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "create", "--bundle", str(b.path), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time

    for _ in range(200):
        if (lxcri.root / cid / "state.json").exists():
            break
        time.sleep(0.02)
    time.sleep(0.3)
    p.kill()
    p.wait()
    assert lxcri.state(cid)["status"] == "stopped"
    assert lxcri("delete", "--force", cid).returncode == 0
    assert leftovers(cid, lxcri.root) == []
