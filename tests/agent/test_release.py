"""Deleting the whole release: which agent lets the RBAC go, and what uninstall leaves in /run/lxc.

The end-to-end proof (finalizers on a real API server, `kubectl delete -f`) is in
tests/e2e/test_agent_cluster.py; these pin the decisions on their own.
"""

from __future__ import annotations

from pathlib import Path

from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import plan
from lxcri_agent.install.settings import Settings
from lxcri_agent.podenv import needs_unified
from lxcri_agent.release import others_busy

KEY = "lxcri.linuxcontainers.org/report"


def node(name: str, ready: bool = True, report: bool = True) -> dict[str, object]:
    return {"metadata": {"name": name, "annotations": {KEY: "{}"} if report else {}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(name: str, node_name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name}}


def test_the_last_agent_with_work_releases() -> None:
    nodes = {"a": node("a", report=False), "b": node("b"), "c": node("c", ready=False)}
    pods = [pod("agent-a", "a"), pod("agent-b", "b"), pod("agent-c", "c")]
    # b still has its report: a must not let the RBAC go yet; c's node is down and holds nobody up
    assert others_busy(pods, nodes, "agent-a", KEY) == ["agent-b"]
    nodes["b"] = node("b", report=False)
    assert others_busy(pods, nodes, "agent-a", KEY) == []
    assert others_busy(pods, nodes, "agent-b", KEY) == []


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


class FakeRelease:
    """The five RBAC objects and the cluster's pods and nodes, as release.finish sees them."""

    def __init__(self, deleting: bool, pods: list[dict[str, object]], nodes: dict[str, dict[str, object]]) -> None:
        self._deleting, self.pods, self.nodes = deleting, pods, nodes
        self.released = 0

    def deleting(self) -> bool:
        return self._deleting

    def pods_and_nodes(self, selector: str) -> tuple[list[dict[str, object]], dict[str, dict[str, object]]]:
        return self.pods, self.nodes

    def release(self) -> list[str]:
        self.released += 1
        return ["ServiceAccount"]


def finish_with(api: FakeRelease, me: str = "agent-a") -> int:
    from lxcri_agent.release import finish

    finish("ns", {}, "sel", me, KEY, wait=0.1, api=api)  # type: ignore[arg-type]
    return api.released


def test_finish_releases_only_when_the_release_is_deleted_and_all_are_done() -> None:
    done = {"a": node("a", report=False)}
    assert finish_with(FakeRelease(False, [pod("agent-a", "a")], done)) == 0  # a DaemonSet change, not a deletion
    assert finish_with(FakeRelease(True, [pod("agent-a", "a")], done)) == 1
    busy = {"a": node("a", report=False), "b": node("b")}
    assert finish_with(FakeRelease(True, [pod("agent-a", "a"), pod("agent-b", "b")], busy)) == 0  # b releases
