"""``lxcri-agent leave-cluster``: the chart's pre-delete hook, so that deleting the release leaves
no node dirty.

Deleting a release deletes the agents' RBAC in the same breath as their DaemonSet; kubelet
signals the agents only after that, when they can no longer take their report and the
operator's labels off their Node (they still clean the host: see run.py). So before Helm
deletes anything, this Job (with an identity of its own, made and removed by Helm around it)
deletes the agents' DaemonSet in the foreground and waits until its pods are gone: each agent
uninstalls from its node while the release's RBAC still exists. Then it takes the lxcri report
and the labels the operator recorded as its own off every Node that still has them (a node
whose agent could not, e.g. NotReady), and exits; Helm deletes the rest.
"""

from __future__ import annotations

import time
from typing import Any

from . import log

AGENT_SELECTOR = "app.kubernetes.io/name=lxcri,app.kubernetes.io/component=agent"


def leave_cluster(namespace: str, daemonset: str, prefix: str, timeout: float = 600.0,
                  core: Any = None, apps: Any = None) -> int:
    """0 when every agent is gone and no Node carries lxcri's marks; 1 otherwise (Helm then
    reports the hook as failed and deletes nothing: nothing is left half-removed)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from .kube.client import KubeNodeAPI
    from .report import withdraw

    lg = log.get("leave")
    if core is None or apps is None:
        nodes_api = KubeNodeAPI.from_environment()
        core = client.CoreV1Api()
        apps = client.AppsV1Api()
    else:
        nodes_api = KubeNodeAPI(core)
    try:
        apps.delete_namespaced_daemon_set(daemonset, namespace, propagation_policy="Foreground",
                                          _request_timeout=30)
        lg.info("deleting the agents' DaemonSet; each agent uninstalls from its node", daemonset=daemonset)
    except ApiException as err:
        if err.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while True:
        pods = core.list_namespaced_pod(namespace, label_selector=AGENT_SELECTOR, _request_timeout=30).items
        if not pods:
            break
        if time.monotonic() > deadline:
            lg.error("agents still terminating", pods=[p.metadata.name for p in pods], timeout_s=timeout)
            return 1
        time.sleep(2)
    lg.info("all agents gone")
    left = []
    nodes, _ = nodes_api.list_nodes()
    for node in nodes:
        meta = node.get("metadata") or {}
        marks = [k for k in {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
                 if k.startswith(prefix + "/")]
        if marks:
            withdraw(nodes_api, meta["name"], prefix)
            left.append(meta["name"])
    if left:
        lg.info("took lxcri's report and labels off nodes whose agent had not", nodes=left)
    return 0
