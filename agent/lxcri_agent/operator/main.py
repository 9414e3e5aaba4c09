"""``lxcri-operator``: kopf wiring around :class:`~.reconcile.Reconciler`.

The only resource handler is a kopf *event* (watching) handler on Nodes. Unlike kopf's
create/update handlers it stores no progress annotations on the object, and unlike timers
and daemons it puts no finalizer on it: the operator writes to a Node only when its labels
must change. One Deployment holds one watch for the whole cluster; kopf peering keeps a
second replica paused until the first one goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from typing import Any

import kopf

from ..kube.api import NodeAPI
from ..settings import AgentSettings
from .reconcile import Reconciler

PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL = "kopf.dev", "v1", "clusterkopfpeerings"
RETRY_SECONDS = 10.0


def build_registry(reconciler: Reconciler, retry_seconds: float = RETRY_SECONDS,
                   login: Callable[..., kopf.ConnectionInfo | None] | None = None) -> kopf.OperatorRegistry:
    """Register the handlers on a registry of their own (not kopf's global one), so that a
    test can check exactly what the operator watches and that nothing puts finalizers.

    A plain registry has none of kopf's implicit login handlers, so login is explicit: the
    ``kubernetes`` client's configuration (in-cluster, else KUBECONFIG) unless ``login`` is given.
    """
    registry = kopf.OperatorRegistry()
    tasks: list[asyncio.Task[None]] = []
    kopf.on.login(registry=registry)(login or kopf.login_via_client)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # our own Events only: kopf's would need more RBAC
        settings.scanning.disabled = True  # no CRD/namespace watches: Nodes are all we need
        settings.watching.server_timeout = 300  # renew the watch regularly, cheaply
        settings.watching.client_timeout = 330
        settings.watching.chunk_size = 500  # list thousands of Nodes in pages, not one huge body
        tasks.append(asyncio.create_task(_retry_forever(reconciler, retry_seconds)))

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @kopf.on.event("v1", "nodes", registry=registry)  # type: ignore[arg-type]
    def node_event(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
        # kopf runs sync handlers in a thread pool: the blocking client calls are fine here.
        reconciler.on_event(event.get("type"), body)

    return registry


async def _retry_forever(reconciler: Reconciler, seconds: float) -> None:
    """Work off failed writes; one task for the operator, not one per Node."""
    while True:
        await asyncio.sleep(seconds)
        if reconciler.pending:
            await asyncio.to_thread(reconciler.retry_pending)


def ensure_peering(name: str) -> None:
    """Create the ClusterKopfPeering object if missing: kopf requires it before it starts
    when a peering name is given, and creating it here keeps it out of the chart (a custom
    object cannot be validated, or applied, before its CRD exists)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    body = {"apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}", "kind": "ClusterKopfPeering",
            "metadata": {"name": name}}
    try:
        client.CustomObjectsApi().create_cluster_custom_object(
            PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL, body)
    except ApiException as exc:
        if exc.status != 409:  # already there is fine
            raise


def peering_priority(fixed: int | None = None) -> int:
    """A distinct priority for this replica, so exactly one replica is active: the highest.
    Random rather than ordered because replicas of a Deployment are interchangeable
    (``fixed``: LXCRI_PEERING_PRIORITY, for tests)."""
    return fixed if fixed else random.SystemRandom().randrange(1, 2**31)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the operator Deployment; configured by the environment the chart sets
    (:class:`~lxcri_agent.settings.AgentSettings`), logging JSON lines as the agent does."""
    del argv  # everything comes from the environment the chart sets
    from .. import log

    s = AgentSettings.from_environment()
    # kopf logs every handler call; Nodes change every few minutes each (kubelet status)
    log.setup(s, quiet=("kopf.objects",))
    from ..kube.client import KubeNodeAPI

    peering = s.peering_name
    port = int(s.health_port or "8080")
    api: NodeAPI = KubeNodeAPI.from_environment()
    if peering:
        ensure_peering(peering)
    kopf.run(
        # kopf pauses *every* replica while two share a priority: give each one its own
        priority=peering_priority(s.peering_priority),
        registry=build_registry(Reconciler(api, s.label_prefix, instance=s.pod_name)),
        clusterwide=True,
        standalone=not peering,
        peering_name=peering or None,
        liveness_endpoint=f"http://0.0.0.0:{port}/healthz",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
