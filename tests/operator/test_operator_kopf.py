"""What the operator asks kopf to do: one watch of Nodes, and nothing that adds finalizers."""

from __future__ import annotations

import kopf

from lxcri_agent.kube.fake import FakeNodeAPI
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
