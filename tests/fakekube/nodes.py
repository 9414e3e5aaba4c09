"""An in-process stand-in for the API server's Node and Event endpoints.

It implements the semantics lxcri depends on — merge patches, ``resourceVersion``
preconditions (409), a bounded watch history that expires (410), deletions — and counts
every request by verb, so tests and the benchmark can assert how many requests a change
costs. Faults are injected per verb to exercise the error paths.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lxcri_agent.kube.api import JSON, ApiError, Conflict, Expired, NotFound, WatchEvent


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; returns a new value, inputs are left alone."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeNodeAPI:
    """A thread-safe fake of the Node/Event API with request counters and fault injection."""

    def __init__(self, history: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, JSON] = {}
        self._rv = 0
        self._history: deque[tuple[int, WatchEvent]] = deque(maxlen=history)
        self._faults: dict[str, deque[ApiError]] = {}
        self.requests: Counter[str] = Counter()
        self.events: list[JSON] = []
        self.before_patch: Callable[[str], None] | None = None
        """Called (outside the lock) at the start of each patch: lets a test race a writer."""

    # --- test controls (not part of NodeAPI) -------------------------------------------

    def fail(self, verb: str, error: ApiError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``verb`` (get, list, watch, patch, event) raise ``error``."""
        self._faults.setdefault(verb, deque()).extend([error] * times)

    def add_node(self, name: str, labels: Mapping[str, str] | None = None,
                 annotations: Mapping[str, str] | None = None) -> JSON:
        """Create a Node as a kubelet would register it (not counted as a request)."""
        with self._lock:
            node: JSON = {"apiVersion": "v1", "kind": "Node",
                          "metadata": {"name": name, "uid": f"uid-{name}",
                                       "labels": dict(labels or {}),
                                       "annotations": dict(annotations or {})}}
            return self._store("ADDED", node)

    def delete_node(self, name: str) -> None:
        """Remove a Node as ``kubectl delete node`` would (not counted as a request)."""
        with self._lock:
            node = self._nodes.pop(name)
            self._rv += 1
            self._history.append((self._rv, WatchEvent("DELETED", copy.deepcopy(node))))

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: older watches now get 410."""
        with self._lock:
            self._history.clear()

    def node(self, name: str) -> JSON:
        """Peek at a Node without counting a request."""
        with self._lock:
            return copy.deepcopy(self._nodes[name])

    @property
    def writes(self) -> int:
        """Requests that changed something (patches and events), the cost that matters at scale."""
        return self.requests["patch"] + self.requests["event"]

    # --- NodeAPI -----------------------------------------------------------------------

    def get_node(self, name: str) -> JSON:
        self._request("get")
        with self._lock:
            if name not in self._nodes:
                raise NotFound(f"nodes {name!r} not found")
            return copy.deepcopy(self._nodes[name])

    def list_nodes(self) -> tuple[list[JSON], str]:
        self._request("list")
        with self._lock:
            return [copy.deepcopy(n) for n in self._nodes.values()], str(self._rv)

    def watch_nodes(self, resource_version: str, timeout_seconds: int = 60) -> Iterator[WatchEvent]:
        """Yield what happened after ``resource_version``, then end as a server timeout would."""
        self._request("watch")
        yield from self.history_since(resource_version)

    def history_since(self, resource_version: str) -> list[WatchEvent]:
        """The watch events after ``resource_version`` (uncounted; raises Expired when compacted)."""
        since = int(resource_version)
        with self._lock:
            oldest = self._history[0][0] if self._history else self._rv + 1
            if since + 1 < oldest and since < self._rv:
                raise Expired()
            return [copy.deepcopy(ev) for rv, ev in self._history if rv > since]

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> JSON:
        if self.before_patch is not None:
            self.before_patch(name)
        self._request("patch")
        with self._lock:
            if name not in self._nodes:
                raise NotFound(f"nodes {name!r} not found")
            current = self._nodes[name]
            want = patch.get("metadata", {}).get("resourceVersion")
            if want is not None and want != current["metadata"]["resourceVersion"]:
                raise Conflict(f"nodes {name!r}: the object has been modified")
            updated = merge_patch(current, patch)
            if updated == merge_patch(current, {"metadata": {"resourceVersion": current["metadata"]
                                                             ["resourceVersion"]}}):
                return copy.deepcopy(current)  # a no-op patch does not bump the version
            return self._store("MODIFIED", updated)

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self._request("event")
        with self._lock:
            self.events.append({**copy.deepcopy(dict(event)), "namespace": namespace})

    # --- internals ---------------------------------------------------------------------

    def request(self, verb: str) -> None:
        """Count one request of ``verb`` and raise its injected fault, if any (the HTTP server
        in :mod:`.fakeserver` calls this for watches, which it serves itself)."""
        self._request(verb)

    def _request(self, verb: str) -> None:
        with self._lock:
            self.requests[verb] += 1
            queue = self._faults.get(verb)
            if queue:
                raise queue.popleft()

    def _store(self, kind: str, node: JSON) -> JSON:
        self._rv += 1
        node["metadata"]["resourceVersion"] = str(self._rv)
        self._nodes[node["metadata"]["name"]] = node
        self._history.append((self._rv, WatchEvent(kind, copy.deepcopy(node))))
        return copy.deepcopy(node)
