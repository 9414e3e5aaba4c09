"""Publish a node's report on its own Node object, and withdraw it on uninstall.

The agent writes one annotation on one Node — its own — and only when the report's text
changed, so a healthy cluster of any size costs no writes. RBAC cannot say "only your own
Node"; the node name comes from the downward API and nothing here takes another name.
"""

from __future__ import annotations

import logging

from ..kube.api import NodeAPI, NotFound
from .model import DEFAULT_PREFIX, Report, owned_annotation, owned_labels, report_annotation

log = logging.getLogger(__name__)


class Publisher:
    """Remembers what the Node carries, so an unchanged report is not written again."""

    def __init__(self, api: NodeAPI, node_name: str, prefix: str = DEFAULT_PREFIX,
                 reread_every: int = 12) -> None:
        self.api = api
        self.node_name = node_name
        self.key = report_annotation(prefix)
        self.reread_every = reread_every
        self._published: str | None = None
        self._calls = 0

    def publish(self, report: Report) -> bool:
        """Write the report if it differs from the Node's; returns True when it wrote.

        The Node is read on the first call (the agent may have restarted with the same
        report in place) and then every ``reread_every`` calls — once an hour at the default
        5-minute interval — so that a report someone removed by hand comes back, at the
        cost of one GET per node per hour; in between, memory is trusted. Raises ApiError
        (nothing is remembered then); the caller retries.
        """
        text = report.to_json()
        if self._calls % self.reread_every == 0:
            node = self.api.get_node(self.node_name)
            self._published = (node.get("metadata", {}).get("annotations") or {}).get(self.key)
        self._calls += 1
        if text == self._published:
            return False
        self.api.patch_node(self.node_name, {"metadata": {"annotations": {self.key: text}}})
        self._published = text
        log.info("published lxcri report for node %s: %s", self.node_name, text)
        return True


def withdraw(api: NodeAPI, node_name: str, prefix: str = DEFAULT_PREFIX) -> None:
    """Remove the report and the operator's labels from this Node (uninstall).

    The labels go too because the operator may be uninstalled at the same moment (one
    ``helm uninstall``) and would then never see the report disappear: the RuntimeClass
    must stop selecting this node before the runtime is removed from it.
    """
    try:
        node = api.get_node(node_name)
    except NotFound:
        return
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    drop = {key: None for key in owned_labels(annotations, prefix) if key in labels}
    notes = {key: None for key in (report_annotation(prefix), owned_annotation(prefix)) if key in annotations}
    if drop or notes:
        api.patch_node(node_name, {"metadata": {"labels": drop, "annotations": notes}})
