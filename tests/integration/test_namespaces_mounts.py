"""Namespaces joined by path, time namespace offsets and mount propagation, seen from inside and on the host."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_testlib import leftovers, reap


def run_to_end(lxcri, b, tmp_path, name="pid"):
    """create + start; the container's exit status and what it printed."""
    cid = lxcri.new_id()
    pidf = tmp_path / name
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    status = os.WEXITSTATUS(reap(int(pidf.read_text())))
    out = (b.path / "out").read_text()
    lxcri("delete", cid, check=True)
    return status, out


def with_sys_admin(b):
    for key in ("bounding", "effective", "permitted"):
        b.config["process"]["capabilities"][key].append("CAP_SYS_ADMIN")


@pytest.fixture
def holder() -> Iterator[int]:
    """A host process in namespaces of its own, for a container to join by path (as a pod's sandbox is)."""
    p = subprocess.Popen(["unshare", "--net", "--uts", "--ipc", "sh", "-c", "hostname holder; exec sleep 60"])
    try:
        for _ in range(100):
            if os.readlink(f"/proc/{p.pid}/ns/uts") != os.readlink("/proc/self/ns/uts") and \
                    subprocess.run(["nsenter", "-t", str(p.pid), "-u", "hostname"], capture_output=True,
                                   text=True).stdout.strip() == "holder":
                break
            time.sleep(0.02)
        yield p.pid
    finally:
        p.kill()
        p.wait()


def set_ns_path(b, kind, path):
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == kind:
            ns["path"] = path


def test_namespaces_joined_by_path(lxcri, make_bundle, tmp_path, holder):
    b = make_bundle(["sh", "-c", "for n in net uts ipc; do readlink /proc/self/ns/$n; done; hostname"])
    for kind, name in (("network", "net"), ("uts", "uts"), ("ipc", "ipc")):
        set_ns_path(b, kind, f"/proc/{holder}/ns/{name}")
    b.config["hostname"] = "joined"
    b.save()
    status, out = run_to_end(lxcri, b, tmp_path)
    assert status == 0
    want = [os.readlink(f"/proc/{holder}/ns/{n}") for n in ("net", "uts", "ipc")]
    assert out.split() == [*want, "joined"]
    # as runc does, the hostname is set in the joined uts namespace: the holder sees it too
    seen = subprocess.run(["nsenter", "-t", str(holder), "-u", "hostname"], capture_output=True, text=True)
    assert seen.stdout.strip() == "joined"


@pytest.mark.parametrize("path, message", [
    ("/nonexistent/ns", "No such file or directory"),
    ("/etc/passwd", "is not a namespace"),
    ("ns/net", "must be an absolute path"),
    ("UTS", "is a uts namespace, not a network namespace"),
])
def test_bad_namespace_paths_are_refused(lxcri, make_bundle, holder, path, message):
    b = make_bundle(["true"])
    set_ns_path(b, "network", f"/proc/{holder}/ns/uts" if path == "UTS" else path)
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1
    assert "linux.namespaces[" in r.stderr and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert leftovers(cid, lxcri.root) == []


def test_time_namespace_offsets(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime"])
    b.config["linux"]["namespaces"].append({"type": "time"})
    b.config["linux"]["timeOffsets"] = {"boottime": {"secs": 864000}, "monotonic": {"nanosecs": 5000}}
    b.save()
    status, out = run_to_end(lxcri, b, tmp_path)
    assert status == 0
    lines = [ln.split() for ln in out.splitlines()]
    assert ["monotonic", "0", "5000"] in lines
    assert ["boottime", "864000", "0"] in lines
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert int(lines[-1][0]) >= 864000 + int(host_uptime) - 5  # the container's boot clock is ten days ahead


def test_time_offsets_errors(lxcri, make_bundle):
    cases = [
        ({"boottime": {"secs": 1}}, False, "needs a new time namespace"),
        ({"boottime": {"secs": 1, "nanosecs": 5}}, True, "not both"),
        ({"realtime": {"secs": 1}}, True, "unknown clock"),
        ({"monotonic": {"secs": "1"}}, True, "linux.timeOffsets[monotonic].secs: must be an integer"),
    ]
    for offsets, timens, message in cases:
        b = make_bundle(["true"])
        if timens:
            b.config["linux"]["namespaces"].append({"type": "time"})
        b.config["linux"]["timeOffsets"] = offsets
        b.save()
        cid = lxcri.new_id()
        r = lxcri.create(b, cid)
        assert r.returncode == 1 and message in r.stderr, (offsets, r.stderr)
        assert leftovers(cid, lxcri.root) == []


# What runtime-tools' runtimetest does for rootfsPropagation: bind the root elsewhere, make a
# mount, and see whether it shows through the bind (shared) or not (slave, private); an
# unbindable root cannot be bound at all.
PROPAGATION_PROBE = """
mkdir -p /target /mnt1 /test && touch /test/example
if ! mount --rbind / /target 2>/dev/null; then echo unbindable; exit 0; fi
mount --bind /test /mnt1
if [ -e /target/mnt1/example ]; then echo propagated; else echo isolated; fi
"""


@pytest.mark.parametrize("value, seen", [
    ("shared", "propagated"), ("rshared", "propagated"), ("slave", "isolated"),
    ("private", "isolated"), ("unbindable", "unbindable"),
])
def test_rootfs_propagation(lxcri, make_bundle, tmp_path, value, seen):
    b = make_bundle(["sh", "-c", PROPAGATION_PROBE])
    b.config["linux"]["rootfsPropagation"] = value
    with_sys_admin(b)
    b.save()
    status, out = run_to_end(lxcri, b, tmp_path)
    assert status == 0, out
    assert out.splitlines()[0] == seen, out


def test_bad_rootfs_propagation(lxcri, make_bundle):
    b = make_bundle(["true"])
    b.config["linux"]["rootfsPropagation"] = "sideways"
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "rootfsPropagation 'sideways'" in r.stderr
    assert leftovers(cid, lxcri.root) == []


@pytest.fixture
def shared_dirs(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Host directories that are shared mounts, as kubelet's volume dirs are."""
    dirs = {name: tmp_path / f"host-{name}" for name in ("default", "rslave", "private", "rshared")}
    for d in dirs.values():
        d.mkdir()
        subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
        subprocess.run(["mount", "--make-shared", str(d)], check=True)
    yield dirs
    for d in dirs.values():
        subprocess.run(["umount", "-R", "-l", str(d)], check=False)


def host_mounts() -> list[tuple[str, str]]:
    """(mount point, source) of each mount the host sees."""
    out = []
    for ln in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = ln.split()
        out.append((fields[4], fields[fields.index("-") + 2]))
    return out


def test_mount_propagation_between_host_and_container(lxcri, make_bundle, tmp_path, shared_dirs):
    """Kubernetes' three mount propagation modes, as CRI asks for them: None (rprivate),
    HostToContainer (rslave) and Bidirectional (rshared); and a mount without an option."""
    script = ("while [ ! -e /dev/shm/go ]; do sleep 0.05; done; "
              "for v in default rshared; do mkdir -p /v-$v/inner; mount -t tmpfs from-container-$v /v-$v/inner; done; "
              "for v in default rslave private rshared; do "
              "if grep -q \" /v-$v/from-host \" /proc/self/mountinfo; then echo $v:seen; else echo $v:unseen; fi; done")
    b = make_bundle(["sh", "-c", script])
    for name, d in shared_dirs.items():
        opts = ["rbind"] + ([name] if name != "default" else [])
        b.config["mounts"].append({"destination": f"/v-{name}", "type": "bind", "source": str(d), "options": opts})
    b.config["linux"]["rootfsPropagation"] = "rshared"  # what CRI sets when a volume is Bidirectional
    with_sys_admin(b)
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
    lxcri("start", cid, check=True)
    pid = int(pidf.read_text())
    for d in shared_dirs.values():
        (d / "from-host").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "from-host", str(d / "from-host")], check=True)
    subprocess.run(["nsenter", "-t", str(pid), "-m", "touch", "/dev/shm/go"], check=True)
    assert os.WEXITSTATUS(reap(pid)) == 0
    out = (b.path / "out").read_text().split()
    # the host's new mounts reach every volume but the private one
    assert out == ["default:seen", "rslave:seen", "private:unseen", "rshared:seen"]
    # and only the Bidirectional volume gives the container's mounts back to the host
    seen = host_mounts()
    assert (str(shared_dirs["rshared"] / "inner"), "from-container-rshared") in seen
    assert not any(src == "from-container-default" for _, src in seen)
    lxcri("delete", cid, check=True)


def test_bidirectional_volume_stays_read_only(lxcri, make_bundle, tmp_path, shared_dirs):
    b = make_bundle(["sh", "-c", "touch /vol/x 2>&1; grep ' /vol ' /proc/self/mountinfo | cut -d' ' -f6"])
    b.config["mounts"].append({"destination": "/vol", "type": "bind", "source": str(shared_dirs["rshared"]),
                               "options": ["rbind", "rshared", "ro", "nosuid"]})
    b.save()
    _, out = run_to_end(lxcri, b, tmp_path)
    assert "Read-only file system" in out
    # liblxc's bind, and lxcri's peer of the host's mount over it: both read-only
    flags = [ln for ln in out.splitlines() if ln.startswith(("ro", "rw"))]
    assert flags and all(f.split(",")[0] == "ro" and "nosuid" in f for f in flags), out


def test_a_namespace_path_that_is_no_namespace_is_never_opened(lxcri, make_bundle, tmp_path):
    """A config names any file as a namespace: lxcri, as root, must not open it for reading
    (a watchdog device starts counting when opened). inotify sees every real open of a file;
    the check looks at it without one."""
    import ctypes
    import select
    import struct

    target = tmp_path / "not-a-namespace"
    target.write_text("x")
    libc = ctypes.CDLL(None, use_errno=True)
    ino = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert ino >= 0
    try:
        IN_OPEN = 0x20
        assert libc.inotify_add_watch(ino, str(target).encode(), IN_OPEN) >= 0
        b = make_bundle(["true"])
        set_ns_path(b, "network", str(target))
        b.config["linux"]["namespaces"].append({"type": "user"})
        b.config["linux"]["uidMappings"] = b.config["linux"]["gidMappings"] = [
            {"containerID": 0, "hostID": 100000, "size": 65536}]
        b.save()
        cid = lxcri.new_id()
        r = lxcri.create(b, cid)
        assert r.returncode == 1 and "is not a namespace" in r.stderr, r.stderr
        opened = []
        if select.select([ino], [], [], 0.2)[0]:
            data = os.read(ino, 4096)
            opened = [struct.unpack_from("iIII", data, off)[1] for off in range(0, len(data), 16)]
        assert opened == [], "lxcri opened the file the config named as a namespace"
        assert leftovers(cid, lxcri.root) == []
    finally:
        os.close(ino)
