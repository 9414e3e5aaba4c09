"""A mount namespace joined by path (runtime-tools' linux_ns_path "mnt"): the container runs in it,
as with runc; the host's own mount namespace is refused (its root would be replaced)."""

from __future__ import annotations

import os
import subprocess
import time

from lxcri_testlib import leftovers, reap


def with_mount_ns_path(b, path):
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "mount":
            ns["path"] = path
    return b.save()


def test_join_a_mount_namespace_by_path(lxcri, make_bundle, tmp_path):
    # a mount namespace of its own, kept alive by a process in it (as runtime-tools makes one)
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "120"])
    try:
        ns = f"/proc/{holder.pid}/ns/mnt"
        end = time.time() + 10
        while os.readlink(ns) == os.readlink("/proc/self/ns/mnt") and time.time() < end:
            time.sleep(0.02)  # until unshare has made it
        want = os.readlink(ns)
        assert want != os.readlink("/proc/self/ns/mnt")
        b = with_mount_ns_path(make_bundle(["sh", "-c", "readlink /proc/self/ns/mnt; ls /bin/busybox"]), ns)
        cid = lxcri.new_id("seccomp-mntns")
        pidf = tmp_path / "pid"
        r = lxcri.create(b, cid, pid_file=pidf)
        assert r.returncode == 0, r.stderr
        assert os.readlink(f"/proc/{lxcri.state(cid)['pid']}/ns/mnt") == want
        lxcri("start", cid, check=True)
        assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0
        assert (b.path / "out").read_text().split() == [want, "/bin/busybox"]  # its own rootfs
        lxcri("delete", cid, check=True)
        assert leftovers(cid, lxcri.root) == []
    finally:
        holder.kill()
        holder.wait()


def test_the_hosts_mount_namespace_is_refused(lxcri, make_bundle):
    for path in ("/proc/self/ns/mnt", f"/proc/{os.getpid()}/ns/mnt"):
        b = with_mount_ns_path(make_bundle(["true"]), path)
        cid = lxcri.new_id("seccomp-mntns")
        r = lxcri.create(b, cid)
        assert r.returncode == 1 and "linux.namespaces[" in r.stderr and "host's mount namespace" in r.stderr, \
            r.stderr
        assert leftovers(cid, lxcri.root) == []
