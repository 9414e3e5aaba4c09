"""The fake Node API served over HTTP, so that unmodified clients can talk to it: kopf (the
operator's real watch and handler dispatch) and the official ``kubernetes`` client behind
KubeNodeAPI. It serves only what those two ask for: discovery, Node get/list/watch/patch,
Event create, and ClusterKopfPeering objects for kopf peering, with Kubernetes-shaped
Status errors.
Listens on 127.0.0.1 only, on a free port, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fakekube.nodes import FakeNodeAPI, merge_patch
from lxcri_agent.kube.api import ApiError, Expired

RESOURCES = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
    "resources": [
        {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
         "verbs": ["get", "list", "watch", "patch", "update", "create", "delete"]},
        {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
         "verbs": ["create", "get", "list"]},
        # discovered by kopf at start (never listed: the operator is cluster-wide)
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["get", "list", "watch"]},
    ],
}


STATIC: dict[str, Any] = {
    "/version": {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"},
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    # kopf's startup waits until discovery shows CRDs, as every real cluster does
    "/apis": {"kind": "APIGroupList", "groups": [
        {"name": "apiextensions.k8s.io",
         "versions": [{"groupVersion": "apiextensions.k8s.io/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apiextensions.k8s.io/v1", "version": "v1"}},
        {"name": "kopf.dev", "versions": [{"groupVersion": "kopf.dev/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "kopf.dev/v1", "version": "v1"}}]},
    "/apis/kopf.dev/v1": {
        "kind": "APIResourceList", "groupVersion": "kopf.dev/v1",
        "resources": [{"name": "clusterkopfpeerings", "singularName": "clusterkopfpeering",
                       "namespaced": False, "kind": "ClusterKopfPeering",
                       "verbs": ["create", "get", "list", "watch", "patch"]}]},
    "/apis/apiextensions.k8s.io/v1": {
        "kind": "APIResourceList", "groupVersion": "apiextensions.k8s.io/v1",
        "resources": [{"name": "customresourcedefinitions", "singularName": "customresourcedefinition",
                       "namespaced": False, "kind": "CustomResourceDefinition",
                       "verbs": ["get", "list", "watch"]}]},
    "/api/v1": RESOURCES,
}


def _constant(body: Any) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(body)

    return handler


def status(err: ApiError) -> web.Response:
    reasons = {404: "NotFound", 409: "Conflict", 410: "Expired"}
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": str(err),
            "reason": reasons.get(err.status, "InternalError"), "code": err.status}
    return web.json_response(body, status=err.status or 500)


class Peerings:
    """ClusterKopfPeering objects (what the chart's CRD defines), for kopf peering: create,
    get, list, watch and merge-patch, nothing else."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.rv = 0

    def store(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[obj["metadata"]["name"]] = obj
        self.history.append((self.rv, kind, copy.deepcopy(obj)))
        return obj


class FakeApiServer:
    def __init__(self, fake: FakeNodeAPI) -> None:
        self.fake = fake
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._closing = False
        self.peerings = Peerings()

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._closing = True
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        for path, body in STATIC.items():
            app.router.add_get(path, _constant(body))
        app.router.add_get("/api/v1/nodes", self.nodes)
        app.router.add_get("/api/v1/nodes/{name}", self.get_node)
        app.router.add_post("/api/v1/nodes", self.create_node)  # kubelet's job; tests use it
        app.router.add_delete("/api/v1/nodes/{name}", self.delete_node)
        app.router.add_patch("/api/v1/nodes/{name}", self.patch_node)
        app.router.add_post("/api/v1/namespaces/{ns}/events", self.create_event)
        peerings = "/apis/kopf.dev/v1/clusterkopfpeerings"
        app.router.add_get(peerings, self.list_peerings)
        app.router.add_post(peerings, self.create_peering)
        app.router.add_get(peerings + "/{name}", self.get_peering)
        app.router.add_patch(peerings + "/{name}", self.patch_peering)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def create_peering(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["metadata"]["name"] in self.peerings.objects:
            return status(ApiError(409, "already exists"))
        return web.json_response(self.peerings.store("ADDED", body), status=201)

    async def get_peering(self, request: web.Request) -> web.Response:
        obj = self.peerings.objects.get(request.match_info["name"])
        return web.json_response(obj) if obj else status(ApiError(404, "not found"))

    async def patch_peering(self, request: web.Request) -> web.Response:
        obj = self.peerings.objects.get(request.match_info["name"])
        if obj is None:
            return status(ApiError(404, "not found"))
        return web.json_response(self.peerings.store("MODIFIED", merge_patch(obj, await request.json())))

    async def list_peerings(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "1"):
            return web.json_response({"kind": "ClusterKopfPeeringList", "apiVersion": "kopf.dev/v1",
                                      "metadata": {"resourceVersion": str(self.peerings.rv)},
                                      "items": list(self.peerings.objects.values())})
        rv = int(request.query.get("resourceVersion") or self.peerings.rv)
        deadline = time.monotonic() + float(request.query.get("timeoutSeconds", "30"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            while time.monotonic() < deadline and not self._closing:
                for at, kind, obj in [h for h in self.peerings.history if h[0] > rv]:
                    rv = at
                    await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                await asyncio.sleep(0.02)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def create_node(self, request: web.Request) -> web.Response:
        body = await request.json()
        meta = body.get("metadata") or {}
        try:
            self.fake.get_node(meta["name"])
            return status(ApiError(409, "already exists"))
        except ApiError as err:
            if err.status != 404:
                return status(err)
        node = self.fake.add_node(meta["name"], meta.get("labels"), meta.get("annotations"))
        return web.json_response(node, status=201)

    async def delete_node(self, request: web.Request) -> web.Response:
        try:
            self.fake.delete_node(request.match_info["name"])
        except KeyError:
            return status(ApiError(404, "not found"))
        return web.json_response({"kind": "Status", "status": "Success"})

    async def get_node(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.fake.get_node(request.match_info["name"]))
        except ApiError as err:
            return status(err)

    async def patch_node(self, request: web.Request) -> web.Response:
        if "merge-patch" not in request.content_type:  # lxcri and kopf both send merge patches
            return status(ApiError(415, f"unsupported patch type {request.content_type}"))
        try:
            patch: dict[str, Any] = await request.json()
            return web.json_response(self.fake.patch_node(request.match_info["name"], patch))
        except ApiError as err:
            return status(err)

    async def create_event(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.fake.create_event(request.match_info["ns"], body)
            return web.json_response(body, status=201)
        except ApiError as err:
            return status(err)

    async def nodes(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "1"):
            try:
                items, rv = self.fake.list_nodes()
            except ApiError as err:
                return status(err)
            # pages as the API server makes them (limit / continue); the continue token here
            # is just the offset, and every page reports the first page's resourceVersion
            items.sort(key=lambda n: n["metadata"]["name"])
            start = int(request.query.get("continue") or 0)
            limit = int(request.query.get("limit") or 0) or len(items)
            rv = request.query.get("resourceVersion") or rv
            page, more = items[start:start + limit], start + limit < len(items)
            meta = {"resourceVersion": rv, "continue": str(start + limit) if more else ""}
            return web.json_response({"kind": "NodeList", "apiVersion": "v1", "metadata": meta,
                                      "items": page})
        return await self.watch(request)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        """Stream events as JSON lines until timeoutSeconds, as the API server does."""
        rv = request.query.get("resourceVersion") or self.fake.list_nodes()[1]
        deadline = time.monotonic() + float(request.query.get("timeoutSeconds", "30"))
        try:
            self.fake.request("watch")  # counted, and faults apply, like the in-process fake
        except ApiError as err:
            return status(err)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            while time.monotonic() < deadline and not self._closing:
                try:
                    events = self.fake.history_since(rv)
                except Expired:
                    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                       "message": "too old resource version"}}
                    await resp.write(json.dumps(gone).encode() + b"\n")
                    break
                for ev in events:
                    rv = ev.node["metadata"]["resourceVersion"]
                    await resp.write(json.dumps({"type": ev.type, "object": ev.node}).encode() + b"\n")
                await asyncio.sleep(0.02)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
