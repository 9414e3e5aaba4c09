"""Faults that must leave the node clean: the create caller SIGKILLed anywhere, a create whose
--pid-file or --console-socket is unusable, the init SIGKILLed while its children live on.

Leaks are looked for everywhere lxcri could leave them: processes (by cgroup, argv, and as
orphans re-parented to us, a subreaper like conmon), cgroup dirs in every hierarchy, mounts in
/proc/self/mountinfo, the runtime dir (bench/kill_create.py's leak check).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lxcri_testlib import LXCRI, REPO, leftovers, reap, reap_any

sys.path.insert(0, str(REPO / "bench"))
import kill_create

# the issue asks for 200 cycles per mode; CI runs fewer (LXCRI_KILL_CYCLES=200 for the full run,
# or `python bench/kill_create.py --cycles 200`)
CYCLES = int(os.environ.get("LXCRI_KILL_CYCLES", "40"))


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "direct"])
def test_create_killed_at_random_points_leaves_nothing(make_bundle, tmp_path, warm):
    b = make_bundle(["sleep", "1000"])
    r = kill_create.run_cycles(CYCLES, seed=12, warm=warm, work=tmp_path, bundle=b.path, tag="faults")
    assert r["hangs"] == [], r
    assert r["leaked"] == {}, r


def _created(lxcri, make_bundle, **changes) -> tuple[str, dict]:
    b = make_bundle(["sleep", "1000"], **changes)
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 0, r.stderr
    st = lxcri.state(cid)
    return cid, st


def _as_left_by_a_killed_create(lxcri, cid: str) -> int:
    """The record as a create SIGKILLed after its init was ready leaves it: not ready, its creator
    gone. (The random cycles above reach this point only now and then; this reaches it always.)"""
    path = lxcri.root / cid / "state.json"
    rec = json.loads(path.read_text())
    dead = subprocess.Popen(["true"])
    dead.wait()
    rec["ready"] = False
    rec["creator_pid"], rec["creator_start"] = dead.pid, 1
    path.write_text(json.dumps(rec))
    return int(rec["init_pid"])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_delete_force_undoes_a_create_killed_after_the_init_was_ready(lxcri, make_bundle):
    cid, _ = _created(lxcri, make_bundle)
    init = _as_left_by_a_killed_create(lxcri, cid)
    assert alive(init)
    st = lxcri.state(cid)
    assert st["status"] == "stopped" and st["pid"] == 0
    assert lxcri("start", cid).returncode == 1  # a failed create cannot be started
    r = lxcri("delete", "--force", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    reap_any()
    assert not alive(init)
    assert leftovers(cid, lxcri.root) == []


def test_create_of_the_same_id_undoes_a_killed_create(lxcri, make_bundle):
    cid, _ = _created(lxcri, make_bundle)
    old = _as_left_by_a_killed_create(lxcri, cid)
    b = make_bundle(["sleep", "1000"])
    r = lxcri.create(b, cid)
    assert r.returncode == 0, r.stderr
    reap_any()
    assert not alive(old)
    st = lxcri.state(cid)
    assert st["status"] == "created" and st["pid"] != old
    # a create that is finished is not undone: the ID is taken
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert lxcri.state(cid)["status"] == "created"


def test_run_dir_of_a_create_killed_before_it_recorded_anything(lxcri, make_bundle):
    cid = lxcri.new_id()
    (lxcri.root / cid).mkdir(parents=True)  # all a create killed right after its mkdir leaves
    assert "does not exist" in lxcri("state", cid).stderr
    assert lxcri("delete", "--force", cid).returncode == 0
    assert not (lxcri.root / cid).exists()
    (lxcri.root / cid).mkdir()
    b = make_bundle(["true"])
    r = lxcri.create(b, cid)
    assert r.returncode == 0, r.stderr


def test_delete_force_kills_processes_in_sub_cgroups(lxcri, make_bundle):
    """What the container moved into a cgroup of its own below its cgroup dies and goes too."""
    cid, st = _created(lxcri, make_bundle)
    assert lxcri("start", cid).returncode == 0
    dirs = json.loads((lxcri.root / cid / "state.json").read_text())["cgroup_dirs"]
    pids_dir = Path(next(d for k, d in dirs.items() if "pids" in k.split(",")))
    r = lxcri("exec", "--detach", cid, "sleep", "999", capture_output=False, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    assert r.returncode == 0
    reap_any()
    child = next(p for p in map(int, (pids_dir / "cgroup.procs").read_text().split()) if p != st["pid"])
    (pids_dir / "sub").mkdir()
    (pids_dir / "sub" / "cgroup.procs").write_text(str(child))
    r = kill_create.run_reaping([str(LXCRI), "--root", str(lxcri.root), "delete", "--force", cid], 60)
    assert r is not None and r.returncode == 0, r
    reap_any()
    assert not alive(child)
    assert leftovers(cid, lxcri.root) == []


def test_failed_create_keeps_cgroups_that_existed_before(lxcri, make_bundle, tmp_path):
    """A create whose cgroupsPath names an existing cgroup fails (liblxc will not share it) and
    must not remove that cgroup, which is somebody else's."""
    name = f"faults-exist-{os.getpid()}"
    made = []
    for top in Path("/sys/fs/cgroup").iterdir():
        if (top / "cgroup.procs").exists() and top.name != "cpuset":
            (top / name).mkdir(exist_ok=True)
            made.append(top / name)
    try:
        b = make_bundle(["true"])
        b.config["linux"]["cgroupsPath"] = f"/{name}"
        b.save()
        cid = lxcri.new_id()
        r = lxcri.create(b, cid)
        assert r.returncode == 1
        assert all(d.is_dir() for d in made), [str(d) for d in made if not d.is_dir()]
        assert not (lxcri.root / cid).exists()
    finally:
        for d in made:
            d.rmdir()


# --pid-file and --console-socket: refused before anything exists, naming the flag


@pytest.mark.parametrize("where", ["missing-dir", "a-directory", "under-a-file"])
def test_unusable_pid_file(lxcri, make_bundle, tmp_path, where):
    b = make_bundle(["true"])
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    path = {"missing-dir": tmp_path / "nope" / "pid", "a-directory": tmp_path / "a-directory",
            "under-a-file": tmp_path / "a-file" / "pid"}[where]
    cid = lxcri.new_id()
    log = tmp_path / "log.json"
    r = lxcri("--log", str(log), "--log-format", "json", "create", "--bundle", str(b.path), "--pid-file",
              str(path), cid, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "--pid-file" in r.stderr and "internal error" not in r.stderr, r.stderr
    assert "--pid-file" in json.loads(log.read_text().splitlines()[-1])["msg"]
    assert leftovers(cid, lxcri.root) == []
    assert "does not exist" in lxcri("state", cid).stderr
    # the ID is free: a create with a usable pid file works
    r = lxcri.create(b, cid, pid_file=tmp_path / "ok.pid")
    assert r.returncode == 0, r.stderr
    assert int((tmp_path / "ok.pid").read_text()) == lxcri.state(cid)["pid"]


def test_console_socket_naming_a_regular_file(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["process"]["terminal"] = True
    b.save()
    (tmp_path / "plain").write_text("")
    cid = lxcri.new_id()
    r = lxcri("create", "--bundle", str(b.path), "--console-socket", str(tmp_path / "plain"), cid,
              stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "--console-socket" in r.stderr and "not a unix socket" in r.stderr, r.stderr
    assert leftovers(cid, lxcri.root) == []


# kill --all after the init died (issue 10: containerd's shim, nginx's workers)


def test_kill_all_reaches_children_of_a_dead_init(lxcri, make_bundle, tmp_path):
    """No pid namespace of its own: SIGKILL of the init leaves its children; `kill --all ID 9`
    (what containerd's shim runs next) kills them; delete succeeds and nothing is left."""
    b = make_bundle(["sh", "-c", "sh -c 'trap \"\" TERM; echo $$ > /tmp/child; exec sleep 1000' & wait"])
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    b.save()
    cid = lxcri.new_id()
    pid_file = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pid_file).returncode == 0
    assert lxcri("start", cid).returncode == 0
    rootfs_child = b.path / "rootfs" / "tmp" / "child"
    for _ in range(500):
        if rootfs_child.exists() and rootfs_child.read_text().strip():
            break
        time.sleep(0.01)
    child = int(rootfs_child.read_text())  # no pid namespace: the host's pid
    init = lxcri.state(cid)["pid"]
    assert lxcri("kill", cid, "9").returncode == 0
    assert os.WTERMSIG(reap(init)) == signal.SIGKILL
    assert lxcri.state(cid)["status"] == "stopped"
    assert alive(child)
    r = lxcri("kill", cid, "9")
    assert r.returncode == 1 and "container not running" in r.stderr  # runc's text, which CRI-O reads
    r = lxcri("kill", "--all", cid, "9")
    assert r.returncode == 0, r.stderr
    for _ in range(500):
        reap_any()
        if not alive(child):
            break
        time.sleep(0.01)
    assert not alive(child)
    r = lxcri("delete", cid)
    assert r.returncode == 0, r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_delete_kills_what_a_dead_init_left(lxcri, make_bundle):
    """Without kill --all first: delete of the stopped container still kills the orphans in its cgroup."""
    b = make_bundle(["sh", "-c", "sleep 1000 & wait"])
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    b.save()
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0
    assert lxcri("start", cid).returncode == 0
    init = lxcri.state(cid)["pid"]
    dirs = json.loads((lxcri.root / cid / "state.json").read_text())["cgroup_dirs"]
    pids_dir = Path(next(d for k, d in dirs.items() if "pids" in k.split(",")))
    for _ in range(500):
        procs = [int(p) for p in (pids_dir / "cgroup.procs").read_text().split()]
        if len(procs) >= 2:
            break
        time.sleep(0.01)
    os.kill(init, signal.SIGKILL)
    reap(init)
    assert lxcri.state(cid)["status"] == "stopped"
    assert lxcri("delete", cid).returncode == 0
    reap_any()
    assert leftovers(cid, lxcri.root) == []


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "direct"])
def test_failed_create_from_a_nested_caller_leaves_no_cgroup(lxcri, make_bundle, tmp_path, warm):
    """CRI-O's conmon sits in a cgroup of its own and passes an absolute cgroupsPath; a create that
    fails once liblxc has made the cgroups (the executable does not exist) removes every cgroup it
    made, the container's and its monitor's, wherever liblxc put them (issue 10: leaked crio-<id>
    and lxcri.monitor/<id> cgroups)."""
    name = f"faults-conmon-{os.getpid()}-{int(warm)}"
    callers = [Path("/sys/fs/cgroup") / h / name for h in ("pids", "memory", "unified")
               if (Path("/sys/fs/cgroup") / h / "cgroup.procs").exists()]
    for d in callers:
        d.mkdir()
    cid = lxcri.new_id("crio")
    b = make_bundle(["/no/such/program"])
    b.config["linux"]["cgroupsPath"] = f"/faults-crio-{os.getpid()}/crio-{cid}"
    b.save()
    enter = "; ".join(f"echo $$ > {d}/cgroup.procs" for d in callers)
    env = {**os.environ, "LXCRI_WARM_SERVER": "1" if warm else "0"}
    try:
        with open(tmp_path / "err", "w+") as err:
            cmd = f"{enter}; exec {LXCRI} --root {lxcri.root} create --bundle {b.path} {cid}"
            r = subprocess.run(["sh", "-c", cmd],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=60, env=env)
            err.seek(0)
            msg = err.read()
        assert r.returncode == 1 and "/no/such/program" in msg, msg
        assert leftovers(cid, lxcri.root) == []
    finally:
        for top in Path("/sys/fs/cgroup").iterdir():
            for parent in (top / f"faults-crio-{os.getpid()}", top / name / f"faults-crio-{os.getpid()}"):
                if parent.is_dir():
                    parent.rmdir()  # the parent liblxc made on the way, as runc leaves it too
        for d in callers:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def test_delete_force_is_bounded_and_can_be_retried(lxcri, make_bundle, tmp_path):
    """A cgroup that cannot be removed (here: something mounted on it) does not make delete --force
    loop: it fails within kill_timeout naming what is left, keeps the record, and the next
    delete --force, once the obstacle is gone, finishes the job."""
    cid, _ = _created(lxcri, make_bundle)
    dirs = json.loads((lxcri.root / cid / "state.json").read_text())["cgroup_dirs"]
    sub = Path(next(d for k, d in dirs.items() if "pids" in k.split(","))) / "stuck"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "faults-stuck", str(sub)], check=True)
    try:
        t = time.monotonic()
        r = lxcri("delete", "--force", cid, timeout=60, env={**os.environ, "LXCRI_KILL_TIMEOUT": "2"})
        took = time.monotonic() - t
        assert r.returncode == 1 and "cannot remove" in r.stderr and str(sub) in r.stderr, r.stderr
        assert took < 30, took  # bounded (2 s asked), not an endless EBUSY loop
        assert (lxcri.root / cid / "state.json").exists()
        assert lxcri.state(cid)["status"] == "stopped"
    finally:
        subprocess.run(["umount", str(sub)], check=True)
    r = lxcri("delete", "--force", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    reap_any()
    assert leftovers(cid, lxcri.root) == []


def test_delete_detaches_a_mount_left_in_the_runtime_dir(lxcri, make_bundle):
    """liblxc mounts the rootfs in the container's mount namespace; should one ever be left on the
    host (a crash at the wrong time), delete detaches it rather than failing or leaking it."""
    cid, _ = _created(lxcri, make_bundle)
    point = lxcri.root / cid / "rootfs"
    subprocess.run(["mount", "-t", "tmpfs", f"faults-{cid}", str(point)], check=True)
    r = lxcri("delete", "--force", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    reap_any()
    assert leftovers(cid, lxcri.root) == []
