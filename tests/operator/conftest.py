"""One harness, two backends: the in-process fake by default, a real cluster with KUBECONFIG.

Every test that talks to "the API" takes the ``cluster`` fixture. Without KUBECONFIG it is
backed by :class:`FakeNodeAPI`; with KUBECONFIG it creates throw-away Node objects in that
cluster (names and label prefix unique to the run, so real Nodes are never touched) and
deletes them afterwards. Faults (409 races, 5xx, 410 on watch) are injected by a wrapper
that sits in front of either backend, so the error-path tests run against both.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from fakekube.nodes import FakeNodeAPI
from lxcri_agent.kube.api import JSON, ApiError, NodeAPI, WatchEvent

REAL = bool(os.environ.get("KUBECONFIG"))


class Faulty:
    """A NodeAPI in front of another one that counts requests and injects failures."""

    def __init__(self, inner: NodeAPI) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()
        self._faults: dict[str, deque[ApiError]] = {}
        self.events: list[JSON] = []
        self.before_patch: Callable[[str], None] | None = None

    def fail(self, verb: str, error: ApiError, times: int = 1) -> None:
        self._faults.setdefault(verb, deque()).extend([error] * times)

    @property
    def writes(self) -> int:
        return self.requests["patch"] + self.requests["event"]

    def _request(self, verb: str) -> None:
        self.requests[verb] += 1
        queue = self._faults.get(verb)
        if queue:
            raise queue.popleft()

    def get_node(self, name: str) -> JSON:
        self._request("get")
        return self.inner.get_node(name)

    def list_nodes(self) -> tuple[list[JSON], str]:
        self._request("list")
        return self.inner.list_nodes()

    def watch_nodes(self, resource_version: str, timeout_seconds: int = 60) -> Iterator[WatchEvent]:
        self._request("watch")
        return self.inner.watch_nodes(resource_version, timeout_seconds)

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> JSON:
        if self.before_patch is not None:
            hook, self.before_patch = self.before_patch, None  # race once
            hook(name)
        self._request("patch")
        return self.inner.patch_node(name, patch)

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self._request("event")
        self.events.append(dict(event))
        self.inner.create_event(namespace, event)


class Cluster:
    """The backend plus what tests need to set a scene: create and delete Nodes."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        # a prefix of this run's own: a real cluster's Nodes carry none of its labels
        self.prefix = f"t{self.run_id}.lxcri.linuxcontainers.org" if REAL else "lxcri.linuxcontainers.org"
        self.created: list[str] = []
        if REAL:
            from kubernetes import client, config

            from lxcri_agent.kube.client import KubeNodeAPI

            config.load_kube_config()
            self._core: Any = client.CoreV1Api()
            backend: NodeAPI = KubeNodeAPI(self._core)
            self.fake: FakeNodeAPI | None = None
        else:
            self.fake = FakeNodeAPI()
            backend = self.fake
        self.api = Faulty(backend)
        # seconds a watch waits for events before the test driver moves on
        self.timeout = int(os.environ.get("LXCRI_TEST_WATCH_TIMEOUT", "3")) if REAL else 0

    def name(self, short: str) -> str:
        return f"lxcri-test-{self.run_id}-{short}"

    def add_node(self, short: str, labels: Mapping[str, str] | None = None,
                 annotations: Mapping[str, str] | None = None) -> str:
        name = self.name(short)
        if self.fake is not None:
            self.fake.add_node(name, labels, annotations)
        else:
            self._core.create_node({"apiVersion": "v1", "kind": "Node",
                                    "metadata": {"name": name, "labels": dict(labels or {}),
                                                 "annotations": dict(annotations or {})}})
        self.created.append(name)
        return name

    def delete_node(self, name: str) -> None:
        if self.fake is not None:
            self.fake.delete_node(name)
        else:
            self._core.delete_node(name)
        self.created.remove(name)

    def node(self, name: str) -> JSON:
        """Read a Node without counting it as the code under test's request."""
        return self.api.inner.get_node(name)

    def labels(self, name: str) -> dict[str, str]:
        return dict(self.node(name)["metadata"].get("labels") or {})

    def annotations(self, name: str) -> dict[str, str]:
        return dict(self.node(name)["metadata"].get("annotations") or {})

    def set_annotation(self, name: str, key: str, value: str | None) -> None:
        """Write as another actor would (the agent, an admin): not counted."""
        self.api.inner.patch_node(name, {"metadata": {"annotations": {key: value}}})

    def set_label(self, name: str, key: str, value: str | None) -> None:
        self.api.inner.patch_node(name, {"metadata": {"labels": {key: value}}})

    def cleanup(self) -> None:
        for name in list(self.created):
            # best effort: the run must not leave Nodes behind, but one failure must not stop it
            with contextlib.suppress(Exception):
                self.delete_node(name)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        yield c
    finally:
        c.cleanup()


def pytest_report_header() -> str:
    return f"lxcri operator tests against: {'the cluster in KUBECONFIG' if REAL else 'the in-process fake'}"


class Delivery:
    """Delivers watch events to the reconciler the way kopf does: list, then watch from the
    list's resourceVersion, and on 410 relist and replay every Node (a watch restart)."""

    def __init__(self, cluster: Cluster, handle: Callable[[str | None, JSON], Any]) -> None:
        self.cluster = cluster
        self.handle = handle
        self.rv: str | None = None
        self.relists = 0

    def _relist(self) -> None:
        items, self.rv = self.cluster.api.list_nodes()
        self.relists += 1
        for node in items:
            self.handle(None, node)  # kopf's type for objects seen by the initial listing

    def pump(self) -> None:
        """Deliver what happened since the last pump (or everything, the first time)."""
        from lxcri_agent.kube.api import Expired

        if self.rv is None:
            self._relist()
            return
        try:
            for ev in self.cluster.api.watch_nodes(self.rv, timeout_seconds=self.cluster.timeout or 1):
                self.rv = ev.node["metadata"]["resourceVersion"]
                self.handle(ev.type, ev.node)
        except Expired:
            self._relist()

    def settle(self, rounds: int = 5) -> None:
        """Pump until the operator's own writes have come back as events and caused nothing."""
        for _ in range(rounds):
            before = self.cluster.api.writes
            self.pump()
            if self.cluster.api.writes == before:
                return
        raise AssertionError("labels did not settle")


@pytest.fixture
def setup(cluster: Cluster) -> tuple[Cluster, Any, Delivery]:
    """A cluster, a Reconciler on it, and the kopf-like delivery of its watch events."""
    from lxcri_agent.operator.reconcile import Reconciler

    rec = Reconciler(cluster.api, cluster.prefix)
    return cluster, rec, Delivery(cluster, rec.on_event)
