"""The agent's pod as a place to run containers, and what uninstall leaves in /run/lxc.

The end-to-end proof is tests/e2e/test_agent_cluster.py; these pin the decisions on their own.
"""

from __future__ import annotations

from pathlib import Path

from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import plan
from lxcri_agent.install.settings import Settings
from lxcri_agent.podenv import needs_unified


def test_hybrid_host_seen_from_a_v1_container() -> None:
    cg = "12:memory:/kubepods/pod1/c1\n0::/kubepods/pod1/c1\n"
    v1_only = "30 20 0:25 /kubepods/pod1/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert needs_unified(cg, v1_only)
    with_unified = v1_only + "31 20 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    assert not needs_unified(cg, with_unified)
    assert not needs_unified("0::/\n", "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")  # v2 host


def test_uninstall_removes_liblxc_locks_of_the_runtime_root_only(tmp_path: Path) -> None:
    host = HostRoot(tmp_path)
    ours = tmp_path / "run/lxc/lock/run/lxcri"
    (ours / "probe").mkdir(parents=True)
    (ours / ".c1").write_text("")
    other = tmp_path / "run/lxc/lock/var/lib/lxc/.other"
    other.parent.mkdir(parents=True)
    other.write_text("")
    plan._remove_lxc_locks(host, Settings())
    assert not (tmp_path / "run/lxc/lock/run").exists()
    assert other.exists(), "another liblxc user's lock was removed"
    other.unlink()
    other.parent.rmdir()
    (tmp_path / "run/lxc/lock/var/lib").rmdir()
    (tmp_path / "run/lxc/lock/var").rmdir()
    (ours / "x").mkdir(parents=True)
    plan._remove_lxc_locks(host, Settings())
    assert list((tmp_path / "run/lxc").iterdir()) == []
