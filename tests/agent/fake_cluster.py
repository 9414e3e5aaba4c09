"""An in-process stand-in for the two API reads of :class:`lxcri_agent.rollout.ClusterReader`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


class Refused(Exception):
    """What the kubernetes client raises for an HTTP error: the status is in ``.status``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"({status}) Unauthorized")
        self.status = status


@dataclass
class FakeCluster:
    daemonsets: dict[tuple[str, str], JSON] = field(default_factory=dict)
    nodes: dict[str, JSON] = field(default_factory=dict)
    broken: bool = False  # the API server cannot be reached
    refuses: int | None = None  # the API answers this status (401: the ServiceAccount is gone)
    reads: int = 0

    def get_daemonset(self, namespace: str, name: str) -> JSON | None:
        self.reads += 1
        if self.broken:
            raise ConnectionError("connection refused")
        if self.refuses:
            raise Refused(self.refuses)
        ds = self.daemonsets.get((namespace, name))
        return copy.deepcopy(ds) if ds is not None else None

    def get_node(self, name: str) -> JSON | None:
        self.reads += 1
        if self.broken:
            raise ConnectionError("connection refused")
        if self.refuses:
            raise Refused(self.refuses)
        n = self.nodes.get(name)
        return copy.deepcopy(n) if n is not None else None


def daemonset(
    name: str,
    node_selector: dict[str, str] | None = None,
    affinity: JSON | None = None,
    tolerations: list[JSON] | None = None,
    deleting: bool = False,
) -> JSON:
    spec: JSON = {"containers": [{"name": "agent", "image": "registry.k8s.io/pause:3.9"}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = tolerations
    meta: JSON = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def node(name: str, labels: dict[str, str] | None = None, taints: list[JSON] | None = None) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
    }
