"""Deleting the whole release (``helm uninstall``, ``kubectl delete -f manifests/``) uninstalls cleanly.

Both delete the agent's RBAC and ServiceAccount together with its DaemonSet. Without those
an agent at SIGTERM could not read its DaemonSet nor take the labels off its Node, and its
token stops working. So the agent's ServiceAccount, ClusterRole(Binding) and Role(Binding)
carry a finalizer (:data:`FINALIZER`): deleted, they stay in force until the agents are done.
The last agent to finish takes the finalizer off them; "last" means that no other agent pod
is left on a Ready node that still carries an lxcri report. An agent that cannot finish
(its node is down) does not hold the others up, and the finalizers never outlive the
agents: nothing waits on a node that will not answer.

This works the same for Helm and for plain manifests, which have no hooks; it needs no extra
workload, and a rolling update never sees it (the objects are not being deleted then).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from . import log

FINALIZER = "lxcri.linuxcontainers.org/agent-cleanup"
JSON = dict[str, Any]


def _ready(node: JSON) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def others_busy(pods: list[JSON], nodes: dict[str, JSON], me: str, report_key: str) -> list[str]:
    """Agent pods (other than ``me``) that still have work: on a Ready node carrying a report."""
    busy = []
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "")
        node = nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if name == me or node is None or not _ready(node):
            continue
        if report_key in ((node.get("metadata") or {}).get("annotations") or {}):
            busy.append(name)
    return busy


class KubeRelease:
    """The reads and patches, through the official client (in-cluster config)."""

    def __init__(self, namespace: str, names: dict[str, str]) -> None:
        from kubernetes import client, config

        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        self.api = client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.ns = namespace
        self.names = names

    def _objects(self) -> list[tuple[str, Callable[..., Any], Callable[..., Any], tuple[str, ...]]]:
        ns, n = self.ns, self.names
        return [
            ("ServiceAccount", self.core.read_namespaced_service_account,
             self.core.patch_namespaced_service_account, (n["serviceAccount"], ns)),
            ("Role", self.rbac.read_namespaced_role, self.rbac.patch_namespaced_role, (n["role"], ns)),
            ("RoleBinding", self.rbac.read_namespaced_role_binding,
             self.rbac.patch_namespaced_role_binding, (n["role"], ns)),
            ("ClusterRole", self.rbac.read_cluster_role, self.rbac.patch_cluster_role, (n["clusterRole"],)),
            ("ClusterRoleBinding", self.rbac.read_cluster_role_binding,
             self.rbac.patch_cluster_role_binding, (n["clusterRole"],)),
        ]

    def deleting(self) -> bool:
        """Is any of the agent's RBAC objects being deleted (the release is going)?"""
        from kubernetes.client.exceptions import ApiException

        for _kind, read, _patch, args in self._objects():
            try:
                obj = read(*args, _request_timeout=10)
            except ApiException as err:
                if err.status == 404:
                    return True
                raise
            if obj.metadata.deletion_timestamp is not None:
                return True
        return False

    def pods_and_nodes(self, selector: str) -> tuple[list[JSON], dict[str, JSON]]:
        plain = self.api.sanitize_for_serialization
        pods: list[JSON] = plain(  # type: ignore[no-untyped-call]
            self.core.list_namespaced_pod(self.ns, label_selector=selector, _request_timeout=10))["items"]
        nodes: list[JSON] = plain(self.core.list_node(_request_timeout=10))["items"]  # type: ignore[no-untyped-call]
        return pods, {n["metadata"]["name"]: n for n in nodes}

    def release(self) -> list[str]:
        """Take our finalizer off each object that has it; returns the kinds changed."""
        from kubernetes.client.exceptions import ApiException

        done = []
        for kind, read, patch, args in self._objects():
            try:
                obj = read(*args, _request_timeout=10)
            except ApiException as err:
                if err.status == 404:
                    continue
                raise
            have = list(obj.metadata.finalizers or [])
            if FINALIZER not in have:
                continue
            keep = [f for f in have if f != FINALIZER]
            body = [{"op": "test", "path": "/metadata/finalizers", "value": have},
                    {"op": "replace", "path": "/metadata/finalizers", "value": keep}]
            patch(*args, body, _request_timeout=10)
            done.append(kind)
        return done


def finish(namespace: str, names: dict[str, str], selector: str, me: str, report_key: str,
           wait: float = 20.0, api: KubeRelease | None = None) -> None:
    """After this agent withdrew its report: when the release is being deleted and no other
    agent still has work, let the RBAC objects go. Never raises (logged): the node's own
    uninstall must go on whatever the API says."""
    lg = log.get("release")
    try:
        api = api or KubeRelease(namespace, names)
        if not api.deleting():
            return
        deadline = time.monotonic() + wait
        while True:
            pods, nodes = api.pods_and_nodes(selector)
            busy = others_busy(pods, nodes, me, report_key)
            if not busy:
                break
            if time.monotonic() > deadline:
                lg.info("other agents are still cleaning up; the last one releases the RBAC", busy=busy)
                return
            time.sleep(2)
        lg.info("the release is being deleted and every agent is done: releasing the agent's RBAC",
                released=api.release())
    except Exception as err:
        lg.warning("could not release the agent's RBAC finalizers", error=str(err))
