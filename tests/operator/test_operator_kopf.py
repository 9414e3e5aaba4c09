"""What the operator asks kopf to do: one watch of Nodes, and nothing that adds finalizers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf

from fakekube.nodes import FakeNodeAPI
from fakekube.server import FakeApiServer
from lxcri_agent.operator.main import build_registry
from lxcri_agent.operator.reconcile import Reconciler
from lxcri_agent.report.model import Report, report_annotation


def test_one_event_handler_on_nodes_and_no_finalizer_causing_handlers() -> None:
    registry = build_registry(Reconciler(FakeNodeAPI(), "p"))
    watching = list(registry._watching.get_all_handlers())
    assert len(watching) == 1
    sel = watching[0].selector
    assert (sel.group, sel.version, sel.any_name) == ("", "v1", "nodes")
    # timers and daemons (spawning) and on.create/update/delete (changing) put finalizers or
    # progress annotations on every Node: the operator must have none of them
    assert not list(registry._spawning.get_all_handlers())
    assert not list(registry._changing.get_all_handlers())
    assert not list(registry._webhooks.get_all_handlers())


def test_the_registered_handler_labels_the_node() -> None:
    api = FakeNodeAPI()
    api.add_node("n", annotations={report_annotation("p"): Report(ready=True).to_json()})
    registry = build_registry(Reconciler(api, "p"))
    handler = next(iter(registry._watching.get_all_handlers()))
    body = kopf.Body(api.node("n"))
    handler.fn(event={"type": "ADDED", "object": api.node("n")}, body=body)
    assert api.node("n")["metadata"]["labels"] == {"p/runtime": "ready"}


def test_startup_configures_kopf_for_nodes_only() -> None:
    import asyncio

    registry = build_registry(Reconciler(FakeNodeAPI(), "p"), retry_seconds=3600)
    settings = kopf.OperatorSettings()
    startup = [h for h in registry._activities.get_all_handlers() if h.activity.value == "startup"]
    cleanup = [h for h in registry._activities.get_all_handlers() if h.activity.value == "cleanup"]

    async def go() -> None:
        await startup[0].fn(settings=settings)
        await cleanup[0].fn()

    asyncio.run(go())
    assert settings.posting.enabled is False
    assert settings.scanning.disabled is True


# --- the operator under kopf, end to end -------------------------------------------------


def wait_for(check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@contextlib.contextmanager
def running_operator(cluster: Any) -> Iterator[None]:
    """kopf.operator with our registry, in a thread: against the fake served over HTTP, or
    against the real cluster (kopf's own login through the kubernetes client)."""
    with contextlib.ExitStack() as stack:
        login = None
        if cluster.fake is not None:
            server = stack.enter_context(FakeApiServer(cluster.fake))

            def login(**_: Any) -> kopf.ConnectionInfo:
                return kopf.ConnectionInfo(server=server.url, insecure=True)

        registry = build_registry(Reconciler(cluster.api, cluster.prefix), login=login)
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(target=lambda: asyncio.run(kopf.operator(
            registry=registry, standalone=True, clusterwide=True, stop_flag=stop, ready_flag=ready)),
            daemon=True)
        thread.start()
        try:
            assert ready.wait(20), "kopf did not start"
            yield
        finally:
            stop.set()
            thread.join(20)


def test_kopf_labels_nodes_and_leaves_no_trace_of_its_own(cluster: Any) -> None:
    p = cluster.prefix
    n = cluster.add_node("k", labels={"keep": "me"})
    with running_operator(cluster):
        cluster.set_annotation(n, report_annotation(p), Report(ready=True, seccomp=True).to_json())
        wait_for(lambda: cluster.labels(n).get(f"{p}/runtime") == "ready")
        patches = cluster.api.requests["patch"]
        cluster.set_annotation(n, report_annotation(p), Report(ready=False, reason="smoke").to_json())
        wait_for(lambda: cluster.labels(n).get(f"{p}/runtime") == "not-ready")
        wait_for(lambda: f"{p}/seccomp" not in cluster.labels(n))
        time.sleep(0.5)  # let the operator's own patch echo back: it must cause nothing more
        assert cluster.api.requests["patch"] - patches == 1
    meta = cluster.node(n)["metadata"]
    assert not meta.get("finalizers"), "kopf put a finalizer on a Node"
    assert not [k for k in meta.get("annotations", {}) if "kopf" in k], "kopf stored state on a Node"
    assert cluster.labels(n)["keep"] == "me"
    assert [e["reason"] for e in cluster.api.events] == ["LxcriReady", "LxcriNotReady"]
