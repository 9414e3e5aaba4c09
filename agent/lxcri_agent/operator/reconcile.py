"""Apply label plans to Nodes through the NodeAPI, with retries that stay O(1) per change.

kopf delivers every watch event of every Node to :meth:`Reconciler.on_event`. A converged
Node costs nothing (the plan is empty). A changed Node costs one PATCH, plus one Event when
its readiness changed. A 409 means the Node moved under us: re-read that one Node and plan
again. Any other failure parks the Node in a retry set that :meth:`retry_pending` works
off later, because kopf's event handlers are fire-and-forget: without it a failed write
would wait for the Node's next change, which in steady state never comes.
"""

from __future__ import annotations

import datetime
import logging
import socket
import threading
from collections.abc import Mapping
from typing import Any

from ..kube.api import ApiError, Conflict, NodeAPI, NotFound
from .labels import NOT_READY, READY, Plan, plan

log = logging.getLogger(__name__)

COMPONENT = "lxcri-operator"
EVENT_NAMESPACE = "default"  # where kubelet puts Node events too, so `kubectl describe node` shows them
MAX_CONFLICTS = 5


def readiness_event(node: Mapping[str, Any], p: Plan, now: datetime.datetime,
                    instance: str = "") -> dict[str, Any]:
    """A core/v1 Event on the Node that tells a human why pods may (not) land there."""
    meta = node.get("metadata") or {}
    name = str(meta.get("name"))
    if p.now == READY:
        reason, kind, message = "LxcriReady", "Normal", "lxcri runtime is ready on this node"
    elif p.now == NOT_READY:
        reason, kind = "LxcriNotReady", "Warning"
        message = f"lxcri runtime is not ready on this node: {p.reason or 'no reason given'}"
    else:
        reason, kind, message = "LxcriRemoved", "Normal", "lxcri no longer reports on this node"
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{name}.lxcri."},
        "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": name, "uid": meta.get("uid", "")},
        "reason": reason, "message": message[:1024], "type": kind,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT, "reportingInstance": instance,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


class Reconciler:
    """Turns Node bodies into at most one PATCH (and maybe one Event) each."""

    def __init__(self, api: NodeAPI, prefix: str, instance: str | None = None) -> None:
        self.api = api
        self.prefix = prefix  # of the label and annotation keys (the settings' label_prefix)
        # names the replica in Events (reportingInstance): the pod name from the downward API
        self.instance = instance or socket.gethostname()
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    @property
    def pending(self) -> frozenset[str]:
        """Nodes whose last write failed and will be retried."""
        with self._lock:
            return frozenset(self._pending)

    def on_event(self, event_type: str | None, node: Mapping[str, Any]) -> bool:
        """Handle one watch event; returns True when it wrote to the Node."""
        name = str((node.get("metadata") or {}).get("name"))
        if event_type == "DELETED":
            with self._lock:
                self._pending.discard(name)
            return False
        return self.reconcile(node)

    def reconcile(self, node: Mapping[str, Any]) -> bool:
        """Bring one Node's labels in line with its report; never raises on API errors."""
        name = str((node.get("metadata") or {}).get("name"))
        current: Mapping[str, Any] = node
        try:
            for _ in range(MAX_CONFLICTS):
                p = plan(current, self.prefix)
                if p is None:
                    self._done(name)
                    return False
                try:
                    self.api.patch_node(name, p.patch)
                except Conflict:
                    log.info("node %s changed while labelling it; re-reading", name)
                    current = self.api.get_node(name)
                    continue
                self._done(name)
                if p.readiness_changed:
                    self._post_event(current, p)
                log.info("labelled node %s: runtime %s -> %s", name, p.was, p.now)
                return True
            raise Conflict(f"gave up after {MAX_CONFLICTS} conflicts")
        except NotFound:
            self._done(name)  # deleted meanwhile: nothing left to label
            return False
        except ApiError as exc:
            log.warning("labelling node %s failed (%s); will retry", name, exc)
            with self._lock:
                self._pending.add(name)
            return False

    def retry_pending(self) -> int:
        """Re-read and reconcile every Node whose write failed; returns how many converged."""
        done = 0
        for name in sorted(self.pending):
            try:
                node = self.api.get_node(name)
            except NotFound:
                self._done(name)
                continue
            except ApiError as exc:
                log.warning("re-reading node %s failed (%s); will retry", name, exc)
                continue
            self.reconcile(node)
            done += name not in self.pending
        return done

    def _done(self, name: str) -> None:
        with self._lock:
            self._pending.discard(name)

    def _post_event(self, node: Mapping[str, Any], p: Plan) -> None:
        """Events are for humans and best effort: a failure is logged, never retried."""
        now = datetime.datetime.now(datetime.UTC)
        event = readiness_event(node, p, now, self.instance)
        try:
            self.api.create_event(EVENT_NAMESPACE, event)
        except ApiError as exc:
            name = event["involvedObject"]["name"]
            log.warning("could not post readiness event for node %s: %s", name, exc)
