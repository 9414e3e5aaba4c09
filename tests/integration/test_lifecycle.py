"""The lifecycle as conmon and containerd's shim drive it: the caller is a subreaper and
learns the container's exit by reaping the --pid-file process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from lxcri_testlib import LXCRI, leftovers, reap


def test_exit_code_stdout_and_cleanup(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "echo hello-from-lxcri; echo to-stderr >&2; exit 3"])
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    pid = int(pidf.read_text())
    st = lxcri.state(cid)
    assert st["status"] == "created"
    assert st["pid"] > 0 and st["id"] == cid and st["bundle"] == str(b.path)
    assert lxcri("start", cid).returncode == 0
    status = reap(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    assert "hello-from-lxcri" in (b.path / "out").read_text()
    assert "to-stderr" in (b.path / "out.err").read_text()
    assert lxcri.wait_status(cid, "stopped")["status"] == "stopped"
    assert lxcri("delete", cid).returncode == 0
    assert leftovers(cid, lxcri.root) == []


def test_kill_signal_reaches_caller_and_state_pid_enters_container(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
    pid = int(pidf.read_text())
    lxcri("start", cid, check=True)
    st = lxcri.state(cid)
    assert st["status"] == "running"
    # state.pid is the container process as the host sees it: nsenter reaches the container
    assert os.readlink(f"/proc/{st['pid']}/ns/pid") != os.readlink("/proc/self/ns/pid")
    out = subprocess.run(["nsenter", "-t", str(st["pid"]), "-u", "hostname"], capture_output=True, text=True)
    assert out.stdout.strip() == b.config["hostname"]
    assert lxcri("kill", cid, "KILL").returncode == 0
    status = reap(pid)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    lxcri.wait_status(cid, "stopped")
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []


def test_signal_by_number_and_name_with_a_trap(lxcri, make_bundle, tmp_path):
    # pid 1 ignores signals it has no handler for, so the process traps TERM and exits 42
    b = make_bundle(["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done"])
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    lxcri.create(b, cid, pid_file=pidf)
    lxcri("start", cid, check=True)
    time.sleep(0.3)
    assert lxcri("kill", cid, "15").returncode == 0  # CRI-O sends the stop signal as a number
    status = reap(int(pidf.read_text()))
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 42


def test_kill_all_reaches_every_process(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    lxcri.create(b, cid, pid_file=pidf)
    lxcri("start", cid, check=True)
    time.sleep(0.3)
    pids = json.loads(lxcri("ps", "--format", "json", cid, check=True).stdout)
    assert len(pids) == 3
    assert lxcri("kill", "-a", cid, "9").returncode == 0
    status = reap(int(pidf.read_text()))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    for p in pids:
        assert not Path(f"/proc/{p}").exists() or ") Z " in Path(f"/proc/{p}/stat").read_text()


def test_delete_force_of_running_container_leaves_nothing(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    r = lxcri("delete", cid)
    assert r.returncode == 1 and "not stopped" in r.stderr
    assert lxcri("delete", "--force", cid).returncode == 0
    assert leftovers(cid, lxcri.root) == []
    # the containerd shim deletes twice: the second --force must succeed quietly
    r = lxcri("delete", "--force", cid)
    assert r.returncode == 0 and r.stderr == ""


def test_delete_of_created_container(lxcri, make_bundle):
    b = make_bundle(["true"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    assert lxcri("delete", cid).returncode == 0  # runc deletes a created container without --force
    assert leftovers(cid, lxcri.root) == []


def test_run_returns_exit_code_and_cleans_up(lxcri, make_bundle):
    b = make_bundle(["sh", "-c", "echo ran; exit 7"])
    cid = lxcri.new_id()
    r = lxcri("run", "--bundle", str(b.path), cid, stdin=subprocess.DEVNULL)
    assert r.returncode == 7
    assert "ran" in r.stdout
    assert leftovers(cid, lxcri.root) == []


def test_run_detach(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    with open(b.path / "out", "wb") as o:
        r = subprocess.run([str(LXCRI), "--root", str(lxcri.root), "run", "-d", "--bundle", str(b.path), cid],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=o, timeout=60)
    assert r.returncode == 0
    assert lxcri.state(cid)["status"] == "running"


def test_preserve_fds(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "echo through-fd3 >&3; ls /proc/self/fd"])
    cid = lxcri.new_id()
    rfd, wfd = os.pipe()
    leak = os.open("/dev/null", os.O_RDONLY)  # inherited by create but not preserved: must not reach the container
    pidf = tmp_path / "pid"
    with open(b.path / "out", "wb") as o:
        # the caller puts the fd to pass at 3, as conmon does for socket activation
        r = subprocess.run(["bash", "-c", f'exec "$0" "$@" 3>&{wfd}', str(LXCRI), "--root", str(lxcri.root),
                            "create", "--bundle", str(b.path), "--pid-file", str(pidf), "--preserve-fds", "1", cid],
                           pass_fds=(wfd, leak), stdin=subprocess.DEVNULL, stdout=o, stderr=o, timeout=60)
    os.close(wfd)
    os.close(leak)
    assert r.returncode == 0, (b.path / "out").read_text()
    lxcri("start", cid, check=True)
    reap(int(pidf.read_text()))
    assert os.read(rfd, 100) == b"through-fd3\n"
    os.close(rfd)
    fds = sorted(int(x) for x in (b.path / "out").read_text().split() if x.isdigit())
    # 0-2, 3 (preserved) and the fd ls opened to read the directory: nothing else leaked
    assert fds[:4] == [0, 1, 2, 3] and len(fds) == 5, fds


def test_concurrent_commands_are_serialised(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    procs = [subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "state", cid],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    procs.append(subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "delete", "-f", cid],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=60)
        if p.args[-2] == "state":  # each state either saw the container whole or found it gone
            assert (p.returncode == 0 and json.loads(out)["id"] == cid) or "does not exist" in err
        else:
            assert p.returncode == 0, err
    assert leftovers(cid, lxcri.root) == []



def test_config_without_process_creates_but_does_not_start(lxcri, make_bundle):
    """OCI: process is needed by start, not by create."""
    b = make_bundle(["true"])
    del b.config["process"]
    b.save()
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0, (b.path / "out.err").read_text()
    assert lxcri.state(cid)["status"] == "created"
    r = lxcri("start", cid)
    assert r.returncode == 1 and "has no process" in r.stderr
    assert lxcri.wait_status(cid, "stopped")["status"] == "stopped"
    assert lxcri("delete", cid).returncode == 0
    assert leftovers(cid, lxcri.root) == []
