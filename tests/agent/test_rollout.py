"""The SIGTERM decision: does the agent's DaemonSet still select this node?

Runs against the in-process fake; with KUBECONFIG set, the same cases run against a real
cluster (a throw-away namespace with DaemonSets whose pods are pinned to no real node's
pool: they select by the first node's hostname label or by a label no node has).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lxcri_agent.rollout import ClusterReader, selects, still_selected

from .fake_cluster import FakeCluster, daemonset, node

NS = "lxcri-agent-test"


def test_node_selector() -> None:
    n = node("n1", {"lxcri": "yes"})
    assert selects(daemonset("a", {"lxcri": "yes"}), n)
    assert not selects(daemonset("a", {"lxcri": "no"}), n)
    assert selects(daemonset("a"), n)


def test_deleting_daemonset_selects_nothing() -> None:
    assert not selects(daemonset("a", deleting=True), node("n1"))


@pytest.mark.parametrize(
    ("op", "values", "expected"),
    [
        ("In", ["a", "b"], True),
        ("In", ["c"], False),
        ("NotIn", ["c"], True),
        ("NotIn", ["a"], False),
        ("Exists", [], True),
        ("DoesNotExist", [], False),
        ("Gt", ["0"], False),
        ("Lt", ["9"], False),
    ],
)
def test_required_node_affinity(op: str, values: list[str], expected: bool) -> None:
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": op, "values": values}]}]
            }
        }
    }
    assert selects(daemonset("a", affinity=aff), node("n1", {"pool": "a"})) is expected


def test_affinity_terms_are_ored_and_fields_match_names() -> None:
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["x"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
                ]
            }
        }
    }
    assert selects(daemonset("a", affinity=aff), node("n1"))
    assert not selects(daemonset("a", affinity=aff), node("n2"))


def test_taints() -> None:
    tainted = node("n1", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    assert not selects(daemonset("a"), tainted)
    assert selects(daemonset("a", tolerations=[{"key": "gpu", "operator": "Exists"}]), tainted)
    assert selects(daemonset("a", tolerations=[{"operator": "Exists"}]), tainted)
    assert selects(daemonset("a"), node("n1", taints=[{"key": "x", "effect": "PreferNoSchedule"}]))
    # the DaemonSet controller tolerates these on its own
    assert selects(
        daemonset("a"),
        node("n1", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
    )


# -- the same decision through the ClusterReader, fake or real ---------------------------------


class Cluster:
    """Seeds DaemonSets and answers with a ClusterReader; a real cluster when KUBECONFIG is set."""

    def __init__(self) -> None:
        self.real = bool(os.environ.get("KUBECONFIG"))
        if self.real:
            from kubernetes import client, config

            config.load_kube_config()  # type: ignore[no-untyped-call]
            self.api = client.ApiClient()
            self.apps = client.AppsV1Api(self.api)
            self.core = client.CoreV1Api(self.api)
            self.ns = f"{NS}-{uuid.uuid4().hex[:6]}"
            self.core.create_namespace({"metadata": {"name": self.ns}})  # type: ignore[arg-type]
            self.node_name: str = str(self.core.list_node().items[0].metadata.name)  # type: ignore[union-attr]
        else:
            self.fake = FakeCluster()
            self.ns = NS
            self.node_name = "node-1"
            self.fake.nodes[self.node_name] = node(self.node_name, {"pool": "general"})

    def reader(self) -> ClusterReader:
        if self.real:
            from lxcri_agent.rollout import KubeClusterReader

            return KubeClusterReader(self.api)
        return self.fake

    def add(self, ds: dict[str, Any]) -> None:
        if self.real:
            self.apps.create_namespaced_daemon_set(self.ns, ds)  # type: ignore[arg-type]
        else:
            self.fake.daemonsets[(self.ns, ds["metadata"]["name"])] = ds

    def delete(self, name: str) -> None:
        if self.real:
            from kubernetes import client

            self.apps.delete_namespaced_daemon_set(
                name, self.ns, body=client.V1DeleteOptions(propagation_policy="Foreground")
            )
        else:
            del self.fake.daemonsets[(self.ns, name)]

    def close(self) -> None:
        if self.real:
            self.core.delete_namespace(self.ns)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        yield c
    finally:
        c.close()


def test_rolling_update_keeps_install(cluster: Cluster) -> None:
    cluster.add(daemonset("lxcri-agent", {"kubernetes.io/hostname": cluster.node_name}))
    assert still_selected(cluster.reader(), cluster.ns, "lxcri-agent", cluster.node_name)


def test_node_no_longer_selected(cluster: Cluster) -> None:
    cluster.add(daemonset("lxcri-agent", {"lxcri.linuxcontainers.org/no-such-label": "x"}))
    assert not still_selected(cluster.reader(), cluster.ns, "lxcri-agent", cluster.node_name)


def test_daemonset_gone(cluster: Cluster) -> None:
    cluster.add(daemonset("lxcri-agent", {"kubernetes.io/hostname": cluster.node_name}))
    cluster.delete("lxcri-agent")
    assert not still_selected(cluster.reader(), cluster.ns, "lxcri-agent", cluster.node_name)


def test_node_gone(cluster: Cluster) -> None:
    cluster.add(daemonset("lxcri-agent"))
    assert not still_selected(cluster.reader(), cluster.ns, "lxcri-agent", "no-such-node-" + uuid.uuid4().hex[:6])
