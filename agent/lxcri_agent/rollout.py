"""At SIGTERM: is this a rolling update (keep lxcri installed) or is the agent leaving the node?

The answer is whether the agent's DaemonSet still exists, is not being deleted, and would still
schedule a pod on this Node (node selector, required node affinity, taints). If so a new agent
pod is coming and uninstalling would only restart the CRI runtime twice for nothing.

The API access is two reads behind :class:`ClusterReader`, so the logic is tested against an
in-process fake and, when ``KUBECONFIG`` is set, against a real cluster with the same tests.
"""

from __future__ import annotations

from typing import Any, Protocol

JSON = dict[str, Any]

# Tolerations the DaemonSet controller adds to every DaemonSet pod (pkg/controller/daemon/util).
_AUTO_TOLERATED = {
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ("node.kubernetes.io/network-unavailable", "NoSchedule"),
}


class ClusterReader(Protocol):
    """The two reads the SIGTERM decision needs; None when the object does not exist."""

    def get_daemonset(self, namespace: str, name: str) -> JSON | None: ...

    def get_node(self, name: str) -> JSON | None: ...


def _expr_matches(expr: JSON, values: dict[str, str]) -> bool:
    key, op, vals = expr.get("key", ""), expr.get("operator", ""), list(expr.get("values") or [])
    have = values.get(key)
    if op == "In":
        return have is not None and have in vals
    if op == "NotIn":
        return have is None or have not in vals
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and vals:
        try:
            a, b = int(have), int(vals[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _term_matches(term: JSON, node: JSON) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    fields = {"metadata.name": node.get("metadata", {}).get("name", "")}
    exprs = term.get("matchExpressions") or []
    fexprs = term.get("matchFields") or []
    if not exprs and not fexprs:
        return False  # an empty term matches no objects (API semantics)
    return all(_expr_matches(e, labels) for e in exprs) and all(_expr_matches(e, fields) for e in fexprs)


def _tolerated(taint: JSON, tolerations: list[JSON]) -> bool:
    key, effect = taint.get("key", ""), taint.get("effect", "")
    if (key, effect) in _AUTO_TOLERATED:
        return True
    for t in tolerations:
        if t.get("effect") and t.get("effect") != effect:
            continue
        op = t.get("operator", "Equal")
        if not t.get("key") and op == "Exists":
            return True
        if t.get("key") == key and (op == "Exists" or t.get("value", "") == taint.get("value", "")):
            return True
    return False


def selects(daemonset: JSON, node: JSON) -> bool:
    """Would this DaemonSet run a pod on this Node?"""
    if daemonset.get("metadata", {}).get("deletionTimestamp"):
        return False
    spec = daemonset.get("spec", {}).get("template", {}).get("spec", {})
    labels = node.get("metadata", {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required and not any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or []):
        return False
    tolerations = spec.get("tolerations") or []
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(taint, tolerations):
            return False
    return True


def still_selected(api: ClusterReader, namespace: str, daemonset: str, node: str) -> bool:
    ds = api.get_daemonset(namespace, daemonset)
    if ds is None:
        return False
    n = api.get_node(node)
    if n is None:
        return False
    return selects(ds, n)


class KubeClusterReader:
    """The real reads, through the official client: in-cluster config in a pod, else KUBECONFIG."""

    def __init__(self, api_client: Any) -> None:
        self._client = api_client

    @classmethod
    def from_environment(cls) -> KubeClusterReader:
        from kubernetes import client

        from .kube.client import load_config

        load_config()
        return cls(client.ApiClient())

    def _read(self, call: Any, *args: str) -> JSON | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj = call(*args, _request_timeout=10)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        result: JSON = self._client.sanitize_for_serialization(obj)
        return result

    def get_daemonset(self, namespace: str, name: str) -> JSON | None:
        from kubernetes import client

        return self._read(client.AppsV1Api(self._client).read_namespaced_daemon_set, name, namespace)

    def get_node(self, name: str) -> JSON | None:
        from kubernetes import client

        return self._read(client.CoreV1Api(self._client).read_node, name)
