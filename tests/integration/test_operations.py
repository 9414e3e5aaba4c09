"""exec, update, events and resource limits, seen from inside the container and on the host."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from lxcri_testlib import LXCRI, leftovers, reap


def running(lxcri, make_bundle, **changes):
    b = make_bundle(["sleep", "100"], **changes)
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0
    lxcri("start", cid, check=True)
    return b, cid


def cgroup_file(lxcri, cid, controller, name):
    rec = json.loads((lxcri.root / cid / "state.json").read_text())
    d = next(p for k, p in rec["cgroup_dirs"].items() if controller in k.split(","))
    return Path(d, name).read_text().strip()


def test_exec_joins_the_container(lxcri, make_bundle):
    b, cid = running(lxcri, make_bundle)
    r = lxcri("exec", cid, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; id -u; exit 4")
    assert r.returncode == 4
    lines = r.stdout.splitlines()
    assert lines[0] == b.config["hostname"]
    assert lines[1].strip() == "sleep 100"  # the container's pid namespace: its pid 1
    assert lines[2] == "0"


def test_exec_flags_user_cwd_env(lxcri, make_bundle):
    _, cid = running(lxcri, make_bundle)
    r = lxcri("exec", "--user", "65534:65534", "--cwd", "/tmp", "-e", "FOO=bar", cid, "sh", "-c",
              "id -u; id -g; pwd; echo $FOO; grep CapEff /proc/self/status")
    assert r.returncode == 0, r.stderr
    uid, gid, cwd, foo, caps = r.stdout.splitlines()
    assert (uid, gid, cwd, foo) == ("65534", "65534", "/tmp", "bar")
    assert caps.split()[1] == "0000000000000000"  # a non-root user keeps no effective capabilities


def test_exec_process_file_detach_and_pid_file(lxcri, make_bundle, tmp_path):
    _, cid = running(lxcri, make_bundle)
    proc = {"args": ["sh", "-c", "sleep 0.3; exit 9"], "cwd": "/", "env": ["PATH=/bin:/usr/bin"],
            "user": {"uid": 0, "gid": 0}}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    pidf = tmp_path / "exec.pid"
    r = lxcri("exec", "--process", str(pf), "--detach", "--pid-file", str(pidf), cid)
    assert r.returncode == 0, r.stderr
    pid = int(pidf.read_text())
    # the caller is a subreaper: the detached process comes back to it with its own status
    status = reap(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 9
    ps = json.loads(lxcri("ps", "--format", "json", cid, check=True).stdout)
    assert pid not in ps


def test_exec_errors(lxcri, make_bundle):
    _, cid = running(lxcri, make_bundle)
    r = lxcri("exec", cid, "no-such-binary")
    assert r.returncode == 1 and 'exec: "no-such-binary": executable file not found' in r.stderr
    # labels are applied where the host has the LSM; this one has neither
    for flag, name in (("--apparmor", "AppArmor"), ("--process-label", "SELinux")):
        r = lxcri("exec", flag, "some_t", cid, "true")
        assert r.returncode == 1 and f"this host has no {name}" in r.stderr, r.stderr
    lxcri("kill", cid, "KILL", check=True)
    lxcri.wait_status(cid, "stopped")
    r = lxcri("exec", cid, "true")
    assert r.returncode == 1 and "container not running" in r.stderr


def test_exec_with_tty_over_console_socket(lxcri, make_bundle, tmp_path):
    from test_console import read_all, receive_master

    _, cid = running(lxcri, make_bundle)
    sock = tmp_path / "exec-console.sock"
    t, got = receive_master(sock)
    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "exec", "--tty", "--console-socket", str(sock),
                          cid, "sh", "-c", "test -t 0 && echo EXEC-TTY; exit 2"])
    t.join(10)
    out = read_all(got["fd"], b"EXEC-TTY")
    assert p.wait(timeout=30) == 2
    assert b"EXEC-TTY" in out
    os.close(got["fd"])


def test_resources_at_create_and_update(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    b.config["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 50},
        "blockIO": {"weight": 500},
    }
    b.save()
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0, (b.path / "out.err").read_text()
    lxcri("start", cid, check=True)
    assert cgroup_file(lxcri, cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_file(lxcri, cid, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert cgroup_file(lxcri, cid, "memory", "memory.swappiness") == "10"
    assert cgroup_file(lxcri, cid, "cpu", "cpu.shares") == "512"
    assert cgroup_file(lxcri, cid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cgroup_file(lxcri, cid, "pids", "pids.max") == "50"
    # CFQ's blkio.weight where the kernel still has it, else BFQ's (kernels since 5.0)
    rec = json.loads((lxcri.root / cid / "state.json").read_text())
    blkio = next(d for k, d in rec["cgroup_dirs"].items() if "blkio" in k.split(","))
    weight = "blkio.weight" if Path(blkio, "blkio.weight").exists() else "blkio.bfq.weight"
    assert cgroup_file(lxcri, cid, "blkio", weight).split()[-1] == "500"
    # runc's flags
    assert lxcri("update", "--memory", "128M", "--pids-limit", "20", "--cpu-shares", "256", cid).returncode == 0
    assert cgroup_file(lxcri, cid, "memory", "memory.limit_in_bytes") == str(128 << 20)
    assert cgroup_file(lxcri, cid, "pids", "pids.max") == "20"
    assert cgroup_file(lxcri, cid, "cpu", "cpu.shares") == "256"
    # CRI-O's form: OCI resources JSON on stdin
    r = lxcri("update", "--resources", "-", cid, input=json.dumps({"cpu": {"quota": 20000}, "pids": {"limit": -1}}))
    assert r.returncode == 0, r.stderr
    assert cgroup_file(lxcri, cid, "cpu", "cpu.cfs_quota_us") == "20000"
    assert cgroup_file(lxcri, cid, "pids", "pids.max") == "max"


def test_update_errors(lxcri, make_bundle):
    _, cid = running(lxcri, make_bundle)
    r = lxcri("update", cid)
    assert r.returncode == 1 and "--resources" in r.stderr
    r = lxcri("update", "--memory", "lots", cid)
    assert r.returncode == 1 and "not a size" in r.stderr
    r = lxcri("update", "-r", "-", cid, input="{broken")
    assert r.returncode == 1 and "--resources -" in r.stderr


def test_events_stats_and_oom(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    b.config["linux"]["resources"] = {"memory": {"limit": 16 << 20}}
    b.save()
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    st = json.loads(lxcri("events", "--stats", cid, check=True).stdout)
    assert st["type"] == "stats" and st["id"] == cid
    assert st["data"]["memory"]["usage"]["limit"] == 16 << 20
    assert st["data"]["pids"]["current"] == 1  # sleep; the monitor is not counted
    assert st["data"]["cpu"]["usage"]["total"] > 0
    ev = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "events", "--interval", "10s", cid],
                          stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        # a process that eats memory until the OOM killer takes it
        lxcri("exec", cid, "sh", "-c", "x=a; while true; do x=$x$x; done")
        deadline = time.time() + 20
        seen = []
        while time.time() < deadline:
            line = ev.stdout.readline() if ev.stdout else ""
            if not line:
                break
            seen.append(json.loads(line)["type"])
            if "oom" in seen:
                break
        assert seen[0] == "stats" and "oom" in seen
    finally:
        ev.kill()
        ev.wait()
    lxcri("delete", "-f", cid, check=True)
    assert leftovers(cid, lxcri.root) == []


def test_devices_domainname_personality(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "ls -ln /dev/fuse /dev/my/loop; cat /proc/sys/kernel/domainname; uname -m"])
    b.config["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 7, "gid": 8},
        {"path": "/dev/my/loop", "type": "b", "major": 7, "minor": 0},
    ]
    b.config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                                  {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                   "access": "rwm"}]}
    b.config["domainname"] = "example.test"
    b.config["process"]["personality"] = {"domain": "LINUX32"}
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0
    out = (b.path / "out").read_text().splitlines()
    fuse = next(ln for ln in out if ln.endswith("/dev/fuse"))
    assert fuse.startswith("crw-r-----") and " 7 " in fuse and " 8 " in fuse and "10," in fuse
    assert any(ln.startswith("brw-rw-rw-") and ln.endswith("/dev/my/loop") for ln in out)
    assert "example.test" in out
    assert out[-1] in ("i686", "i386")  # LINUX32


def test_lsm_settings_are_refused_on_a_host_without_them(lxcri, make_bundle):
    for field, value in (("apparmorProfile", "docker-default"), ("selinuxLabel", "system_u:system_r:x:s0")):
        b = make_bundle(["true"])
        b.config["process"][field] = value
        b.save()
        cid = lxcri.new_id()
        r = lxcri.create(b, cid)
        assert r.returncode == 1 and "this host has no" in r.stderr, r.stderr
        assert leftovers(cid, lxcri.root) == []


def test_mount_label_is_ignored_without_selinux(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "grep ' /dev/shm ' /proc/self/mountinfo"])
    b.config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    b.save()
    cid = lxcri.new_id()
    pidf, logf = tmp_path / "pid", tmp_path / "log"
    r = lxcri.create(b, cid, pid_file=pidf, env={**os.environ, "LXCRI_LOG": str(logf)})
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0
    assert "linux.mountLabel ignored: this host has no SELinux" in logf.read_text()


def test_intel_rdt_is_refused_without_resctrl(lxcri, make_bundle):
    b = make_bundle(["true"])
    b.config["linux"]["intelRdt"] = {"closID": "guaranteed", "l3CacheSchema": "L3:0=ff"}
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "linux.intelRdt: this host has no resctrl" in r.stderr, r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_user_namespace_mappings(make_bundle, tmp_path):
    # the container's root must be able to traverse to the runtime dir: pytest's tmp dirs are 0700
    import shutil
    import uuid

    from lxcri_testlib import Runtime

    lxcri = Runtime(Path(f"/run/lxcri-test-{uuid.uuid4().hex[:8]}"))
    try:
        _userns(lxcri, make_bundle, tmp_path)
    finally:
        for cid in lxcri.ids:
            lxcri("delete", "--force", cid)
        shutil.rmtree(lxcri.root, ignore_errors=True)


def test_user_namespace_mappings_with_newuidmap_installed(make_bundle, tmp_path):
    # nodes commonly have the uidmap package; with newuidmap on PATH liblxc maps through it even
    # as root, which needs an /etc/subuid range root does not have: lxcri writes the maps itself
    assert Path("/usr/bin/newuidmap").exists() and Path("/usr/bin/newgidmap").exists(), \
        "the uidmap package is missing (scripts/setup.sh installs it): this test is about it being there"
    test_user_namespace_mappings(make_bundle, tmp_path)


def _userns(lxcri, make_bundle, tmp_path):
    # and to the bundle: let it traverse (not list) pytest's directories above the bundle
    for d in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        d.chmod(0o711)
    b = make_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/owned"])
    subprocess.run(["chown", "-R", "100000:100000", str(b.path / "rootfs")], check=True)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    st = lxcri.state(cid)
    assert os.readlink(f"/proc/{st['pid']}/ns/user") != os.readlink("/proc/self/ns/user")
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0
    out = (b.path / "out").read_text().split()
    assert out[0] == "0" and out[1:4] == ["0", "100000", "65536"] and out[4:7] == ["0", "100000", "65536"]
    assert (b.path / "rootfs" / "tmp" / "owned").stat().st_uid == 100000  # root inside is 100000 outside


def test_mappings_without_user_namespace_are_refused(lxcri, make_bundle):
    b = make_bundle(["true"])
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1}]
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "needs a new user namespace" in r.stderr


def test_cgroup_mount_shows_the_containers_own_cgroups(lxcri, make_bundle, tmp_path):
    """As with runc: /sys/fs/cgroup/<controller> is the container's cgroup, read-only, with and
    without a cgroup namespace."""
    for cgroupns in (False, True):
        b = make_bundle(["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
                                     "cat /sys/fs/cgroup/pids/pids.max; touch /sys/fs/cgroup/pids/x"])
        b.config["linux"]["resources"] = {"memory": {"limit": 48 << 20}, "pids": {"limit": 33}}
        if cgroupns:
            b.config["linux"]["namespaces"].append({"type": "cgroup"})
        b.save()
        cid = lxcri.new_id()
        pidf = tmp_path / f"{cid}.pid"
        assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
        lxcri("start", cid, check=True)
        reap(int(pidf.read_text()))
        out = (b.path / "out").read_text().split()
        assert out[:2] == [str(48 << 20), "33"], (cgroupns, out)
        assert "Read-only file system" in (b.path / "out.err").read_text()


def test_exec_cap_additional_gids_and_preserve_fds(lxcri, make_bundle, tmp_path):
    _, cid = running(lxcri, make_bundle)
    r = lxcri("exec", "--cap", "CAP_SYS_ADMIN", "--additional-gids", "44", "-g", "45", "--user", "1000:1000", cid,
              "sh", "-c", "grep -E '^(CapBnd|CapPrm)' /proc/self/status; id -G")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    caps = {ln.split()[0]: int(ln.split()[1], 16) for ln in lines[:2]}
    assert caps["CapBnd:"] & (1 << 21) and caps["CapPrm:"] & (1 << 21)  # CAP_SYS_ADMIN added
    assert lines[2].split() == ["1000", "44", "45"]
    rfd, wfd = os.pipe()
    r = subprocess.run(["bash", "-c", f'exec "$0" "$@" 3>&{wfd}', str(LXCRI), "--root", str(lxcri.root), "exec",
                        "--preserve-fds", "1", cid, "sh", "-c", "echo via-fd3 >&3"],
                       pass_fds=(wfd,), capture_output=True, text=True, timeout=60)
    os.close(wfd)
    assert r.returncode == 0, r.stderr
    assert os.read(rfd, 100) == b"via-fd3\n"
    os.close(rfd)


def test_process_settings_seen_from_inside(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "ulimit -n; cat /proc/self/oom_score_adj; cat /proc/sys/net/ipv4/ip_forward; "
                                 "grep -E '^(NoNewPrivs|CapBnd|CapEff|CapInh|CapAmb)' /proc/self/status; umask; "
                                 "echo 0 > /proc/sys/net/ipv4/ip_forward"])
    p = b.config["process"]
    p["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
    p["oomScoreAdj"] = 123
    p["noNewPrivileges"] = True
    p["user"]["umask"] = 0o027
    caps = ["CAP_NET_ADMIN", "CAP_KILL"]
    p["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps,
                         "ambient": ["CAP_KILL"]}
    b.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 1  # the last write fails
    out = (b.path / "out").read_text().split("\n")
    assert out[0] == "321" and out[1] == "123" and out[2] == "1"
    status = {ln.split(":")[0]: ln.split()[1] for ln in out[3:8]}
    want = (1 << 12) | (1 << 5)  # CAP_NET_ADMIN | CAP_KILL
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapBnd"], 16) == want and int(status["CapEff"], 16) == want
    assert int(status["CapInh"], 16) == want and int(status["CapAmb"], 16) == 1 << 5
    assert out[8] == "0027"
    # the sysctl was set before readonlyPaths made /proc/sys read-only, as with runc
    assert "Read-only file system" in (b.path / "out.err").read_text()
