"""Namespace cases of runtime-tools' validation programs, laid out as those programs lay them out.

linux_ns_nopath: every namespace new, with a user namespace whose mapping root has no
/etc/subuid range for (newuidmap installed, as scripts/setup.sh does), the bundle directory
itself the rootfs (`root.path` "."). linux_ns_itype: no namespace listed; lxcri, like crun,
inherits every one but the mount namespace (README: liblxc always pivot_roots in the
container's mount namespace). Elsewhere: linux_uid_mappings in test_operations.py
(test_user_namespace_mappings_with_newuidmap_installed), linux_ns_path's mount namespace in
test_mount_namespace.py. bench/runtime_tools.py runs the programs themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_testlib import Bundle, Runtime, default_config, leftovers

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
SPEC_NAME = {"mnt": "mount", "net": "network"}


@pytest.fixture
def rt_lxcri() -> Iterator[Runtime]:
    """lxcri with its --root under /run: a mapped root must traverse to it (pytest's tmp dirs are 0700)."""
    rt = Runtime(Path(f"/run/lxcri-test-{uuid.uuid4().hex[:8]}"))
    yield rt
    for cid in rt.ids:
        rt("delete", "--force", cid)
    shutil.rmtree(rt.root, ignore_errors=True)


@pytest.fixture
def ocitest_bundle(rootfs_template: Path) -> Iterator[Bundle]:
    """As runtime-tools' PrepareBundle makes one: a temp dir under /tmp holding the rootfs itself."""
    d = Path(tempfile.mkdtemp(prefix="ocitest"))
    try:
        subprocess.run(["cp", "-a", f"{rootfs_template}/.", str(d)], check=True)
        d.chmod(0o755)  # the rootfs tarball's "." entry gives it that mode
        cfg = default_config(["sleep", "60"])
        cfg["root"] = {"path": "."}
        yield Bundle(d, cfg)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def created(rt: Runtime, b: Bundle, stem: str) -> tuple[str, int]:
    b.save()
    cid = rt.new_id(stem)
    r = rt.create(b, cid)  # its stdio on files in the bundle, as runtime-tools keeps them
    assert r.returncode == 0, r.stderr
    return cid, int(rt.state(cid)["pid"])


def new_namespaces(pid: int) -> list[str]:
    return [ns for ns in NAMESPACES if os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")]


def test_every_namespace_new_with_a_mapping_root_has_no_subuid_range_for(rt_lxcri, ocitest_bundle):
    assert Path("/usr/bin/newuidmap").exists(), \
        "the uidmap package is missing (scripts/setup.sh installs it): liblxc would use newuidmap"
    b = ocitest_bundle
    b.config["linux"]["namespaces"] = [{"type": SPEC_NAME.get(ns, ns)} for ns in NAMESPACES]
    b.config["linux"]["uidMappings"] = [{"hostID": 1000, "containerID": 0, "size": 1000}]
    b.config["linux"]["gidMappings"] = [{"hostID": 1000, "containerID": 0, "size": 1000}]
    cid, pid = created(rt_lxcri, b, "rtools-nopath")
    assert new_namespaces(pid) == list(NAMESPACES)
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "1000", "1000"]
    assert Path(f"/proc/{pid}/gid_map").read_text().split() == ["0", "1000", "1000"]
    rt_lxcri("delete", "--force", cid, check=True)
    assert leftovers(cid, rt_lxcri.root) == []


def test_no_namespace_listed_inherits_all_but_the_mount_namespace(rt_lxcri, ocitest_bundle):
    b = ocitest_bundle
    b.config["linux"]["namespaces"] = []
    b.config.pop("hostname", None)  # a hostname needs a uts namespace of its own
    host_root = os.stat("/")
    cid, pid = created(rt_lxcri, b, "rtools-itype")
    assert new_namespaces(pid) == ["mnt"]
    # the container's root is its rootfs, and the host's root stayed where it was
    assert os.stat(f"/proc/{pid}/root/bin/busybox").st_ino == (b.path / "bin" / "busybox").stat().st_ino
    assert (os.stat("/").st_dev, os.stat("/").st_ino) == (host_root.st_dev, host_root.st_ino)
    rt_lxcri("delete", "--force", cid, check=True)
    assert leftovers(cid, rt_lxcri.root) == []
