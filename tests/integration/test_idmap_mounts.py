"""idmapped binds in a user-namespaced container (what CRI-O asks for a `hostUsers: false` pod's
volumes): host files appear with the container's ids, and what the container writes lands with
the host's ids."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from lxcri_testlib import LXCRI, leftovers, reap

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns_bundle(make_bundle, tmp_path, script, options, mount_maps=None):
    for d in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        d.chmod(0o711)
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "host-file").write_text("x")
    os.chown(vol / "host-file", 0, 0)
    b = make_bundle(["sh", "-c", script])
    subprocess.run(["chown", "-R", "100000:100000", str(b.path / "rootfs")], check=True)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = MAP
    b.config["linux"]["gidMappings"] = MAP
    m = {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind", "rw", *options]}
    if mount_maps is not None:
        m["uidMappings"] = m["gidMappings"] = mount_maps
    b.config["mounts"].append(m)
    return b.save(), vol


def run(lxcri, b, tmp_path):
    cid = lxcri.new_id("idmap")
    pidf = tmp_path / f"{cid}.pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    if r.returncode != 0:
        return cid, r
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0, (b.path / "out.err").read_text()
    lxcri("delete", cid, check=True)
    return cid, r


SCRIPT = "stat -c %u /vol/host-file; touch /vol/made-inside"


def test_idmap_bind_shows_host_root_as_container_root(lxcri, make_bundle, tmp_path):
    b, vol = userns_bundle(make_bundle, tmp_path, SCRIPT, ["idmap"])
    cid, _ = run(lxcri, b, tmp_path)
    assert (b.path / "out").read_text().split()[0] == "0"
    assert (vol / "made-inside").stat().st_uid == 0  # container root writes as host root through the map
    assert leftovers(cid, lxcri.root) == []


def test_a_mount_mapping_equal_to_the_containers_is_accepted(lxcri, make_bundle, tmp_path):
    b, _ = userns_bundle(make_bundle, tmp_path, SCRIPT, ["idmap"], mount_maps=MAP)
    run(lxcri, b, tmp_path)
    assert (b.path / "out").read_text().split()[0] == "0"


def test_plain_bind_shows_the_overflow_id(lxcri, make_bundle, tmp_path):
    b, _ = userns_bundle(make_bundle, tmp_path, "stat -c %u /vol/host-file", [])
    run(lxcri, b, tmp_path)
    assert (b.path / "out").read_text().split()[0] == "65534"


def test_another_mapping_is_refused_naming_the_field(lxcri, make_bundle, tmp_path):
    other = [{"containerID": 0, "hostID": 200000, "size": 1000}]
    b, _ = userns_bundle(make_bundle, tmp_path, SCRIPT, ["idmap"], mount_maps=other)
    cid, r = run(lxcri, b, tmp_path)
    assert r.returncode != 0 and "uidMappings" in r.stderr and "mounts[" in r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_joining_a_user_namespace_by_path_with_its_mappings(lxcri, make_bundle, tmp_path):
    """CRI-O pins a hostUsers: false pod's user namespace and hands it over by path, together
    with the mappings it has: the container joins it, root inside is 100000 outside."""
    holder = subprocess.Popen(["unshare", "--user", "sleep", "600"])
    try:
        time.sleep(0.2)
        for f in ("uid_map", "gid_map"):
            Path(f"/proc/{holder.pid}/{f}").write_text("0 100000 65536\n")
        b, _ = userns_bundle(make_bundle, tmp_path, "cat /proc/self/uid_map; touch /tmp/made", [])
        b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "user"]
        b.config["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{holder.pid}/ns/user"})
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/vol"]
        b.save()
        cid, r = run(lxcri, b, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (b.path / "out").read_text().split() == ["0", "100000", "65536"]
        assert (b.path / "rootfs/tmp/made").stat().st_uid == 100000
        assert leftovers(cid, lxcri.root) == []
    finally:
        holder.kill()
        holder.wait()


def test_user_namespace_where_the_nodes_proc_has_covered_files(lxcri, make_bundle, tmp_path):
    """Nodes cover files in /proc and /sys (lxcfs on the host over /proc/meminfo, a sandbox's
    fixed sysctls over /proc/sys/...); the kernel then refuses a fresh proc or sysfs in a user namespace
    unless the runtime mounts it from a view without the covers. The container gets its own
    proc, and the caller's covers stay where they were."""
    cover = tmp_path / "panic"
    cover.write_text("4242\n")
    b, _ = userns_bundle(make_bundle, tmp_path, "cat /proc/sys/kernel/panic; cat /proc/self/uid_map; "
                         "ls /sys/kernel/mm | grep -c .", [])
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/vol"]
    b.save()
    cid = lxcri.new_id("covered")
    pidf = tmp_path / "pid"
    script = (f"mount --bind {cover} /proc/sys/kernel/panic && mount -t tmpfs cover /sys/kernel/mm && "
              f"{LXCRI} --root {lxcri.root} create --bundle {b.path} --pid-file {pidf} {cid} "
              f"</dev/null >{b.path}/out 2>{b.path}/out.err && cat /proc/sys/kernel/panic")
    # a private mount namespace stands for the node; create runs there itself (no warm server)
    r = subprocess.run(["unshare", "-m", "--propagation", "slave", "sh", "-c", script], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "LXCRI_WARM_SERVER": "0"})
    assert r.returncode == 0, (b.path / "out.err").read_text() + r.stderr
    assert r.stdout.strip() == "4242"  # the caller's cover is still in place after create
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0, (b.path / "out.err").read_text()
    out = (b.path / "out").read_text().split()
    assert out[0] != "4242" and out[1:4] == ["0", "100000", "65536"] and int(out[4]) > 0, out
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []


def test_user_namespace_in_a_network_namespace_it_does_not_own(lxcri, make_bundle, tmp_path):
    """A new user namespace in a network namespace made before it (podman's --userns with
    another container's network): the kernel refuses a fresh sysfs there, and the container
    gets the host's /sys read-only, all the way down (runc and crun fall back the same way)."""
    netns = subprocess.Popen(["unshare", "--net", "sleep", "600"])
    try:
        time.sleep(0.2)
        script = ("ls /sys/kernel >/dev/null && echo listed; touch /sys/kernel/x 2>/dev/null || echo ro; "
                  "grep -c ' /sys/fs/cgroup/[^ ]* ro,' /proc/self/mountinfo; "
                  "grep -c ' /sys/fs/cgroup/[^ ]* rw,' /proc/self/mountinfo; true")
        b, _ = userns_bundle(make_bundle, tmp_path, script, [])
        nss = [n for n in b.config["linux"]["namespaces"] if n["type"] != "network"]
        b.config["linux"]["namespaces"] = [*nss, {"type": "network", "path": f"/proc/{netns.pid}/ns/net"}]
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/vol"]
        b.save()
        cid, r = run(lxcri, b, tmp_path)
        assert r.returncode == 0, r.stderr
        out = (b.path / "out").read_text().split()
        assert out[:2] == ["listed", "ro"] and int(out[2]) > 0 and out[3] == "0", out
        assert leftovers(cid, lxcri.root) == []
    finally:
        netns.kill()
        netns.wait()


def test_joined_user_namespace_binds_from_private_directories(lxcri, make_bundle, tmp_path):
    """The kubelet's pod directories and CRI-O's container data are 0750/0700 root: root in a
    hostUsers: false pod's user namespace cannot look a source up there. Its binds come from
    clones the host's root made: a volume, a file read-only, a volume inside a volume."""
    holder = subprocess.Popen(["unshare", "--user", "sleep", "600"])
    private = tmp_path / "private"
    try:
        time.sleep(0.2)
        for f in ("uid_map", "gid_map"):
            Path(f"/proc/{holder.pid}/{f}").write_text("0 100000 65536\n")
        (private / "vol" / "inner").mkdir(parents=True)
        (private / "other").mkdir()
        (private / "other" / "o").write_text("other\n")
        (private / "hosts").write_text("127.0.0.1 x\n")
        os.chown(private / "vol", 100000, 100000)
        private.chmod(0o700)
        script = ("cat /etc/hosts; echo w > /vol/f && echo wrote; echo z >> /etc/hosts 2>/dev/null || echo ro; "
                  "cat /vol/inner/o")
        b, _ = userns_bundle(make_bundle, tmp_path, script, [])
        b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "user"]
        b.config["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{holder.pid}/ns/user"})
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/vol"] + [
            {"destination": "/vol", "type": "bind", "source": str(private / "vol"), "options": ["rbind", "rw"]},
            {"destination": "/etc/hosts", "type": "bind", "source": str(private / "hosts"), "options": ["bind", "ro"]},
            {"destination": "/vol/inner", "type": "bind", "source": str(private / "other"), "options": ["rbind", "ro"]},
        ]
        b.save()
        cid, r = run(lxcri, b, tmp_path)
        assert r.returncode == 0, r.stderr
        assert (b.path / "out").read_text().split() == ["127.0.0.1", "x", "wrote", "ro", "other"]
        assert (private / "vol" / "f").stat().st_uid == 100000
        assert leftovers(cid, lxcri.root) == []
    finally:
        holder.kill()
        holder.wait()
