"""Which cgroups a teardown may empty by killing: only the container's own, never its creator's."""

from __future__ import annotations

from lxcri.container.rundir import Record
from lxcri.container.teardown import _own_dirs, container_dirs, is_cgroup


def record(**kw: object) -> Record:
    return Record(id="c1", bundle="/b", rootfs="/b/rootfs", created="", oci_version="1.0.2",
                  cgroup_path="/kubepods/pod1/c1", **kw)  # type: ignore[arg-type]


def test_only_dirs_named_as_the_containers_cgroup_are_its_own():
    rec = record(cgroup_dirs={
        "pids": "/sys/fs/cgroup/pids/kubepods/pod1/c1",
        "memory": "/sys/fs/cgroup/memory/conmon-scope/kubepods/pod1/c1",  # below a relative base
        "name=systemd": "/sys/fs/cgroup/systemd/system.slice/crio.service",  # the creator's: liblxc made none
        "unified": "/sys/fs/cgroup/unified/kubepods/pod1/c10",  # another container's
    })
    assert container_dirs(rec) == {"pids": "/sys/fs/cgroup/pids/kubepods/pod1/c1",
                                   "memory": "/sys/fs/cgroup/memory/conmon-scope/kubepods/pod1/c1"}


def test_monitor_dirs_and_claims():
    rec = record(monitor_cgroup_dirs={"pids": "/sys/fs/cgroup/pids/lxcri.monitor/c1-2",
                                      "memory": "/sys/fs/cgroup/memory/crio"},
                 cgroup_claims=["/sys/fs/cgroup/pids/kubepods/pod1/c1", "/sys/fs/cgroup/cpu/lxcri.monitor/c1"])
    # the container's claimed leaf is removed if empty, never emptied: a cgroupsPath is the bundle's
    assert _own_dirs(rec) == ["/sys/fs/cgroup/pids/lxcri.monitor/c1-2", "/sys/fs/cgroup/cpu/lxcri.monitor/c1"]


def test_is_cgroup():
    assert is_cgroup("/sys/fs/cgroup/pids/a/b", "/a/b")
    assert is_cgroup("/sys/fs/cgroup/pids/x/a/b-3", "a/b")
    assert not is_cgroup("/sys/fs/cgroup/pids/a/bc", "/a/b")
    assert not is_cgroup("/sys/fs/cgroup/pids/a/b-x", "/a/b")
