"""NodeAPI over the official ``kubernetes`` client, for the agent pod and the operator.

Responses are read as raw JSON (``_preload_content=False``) rather than the client's
models: the callers want plain dicts, and skipping model deserialisation is much cheaper
when the operator relists thousands of Nodes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .api import JSON, ApiError, Conflict, Expired, NotFound, WatchEvent

MERGE_PATCH = "application/merge-patch+json"


def _translate(exc: Exception) -> ApiError:
    """Map the client's exceptions onto ours, keeping the status for the caller's decision."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = str(exc.reason or "")
        if status == 409:
            return Conflict(reason)
        if status == 404:
            return NotFound(reason)
        if status == 410:
            return Expired(reason)
        return ApiError(status, reason)
    return ApiError(0, f"{type(exc).__name__}: {exc}")


def load_config() -> None:
    """The client's configuration, once for every API user of the agent: in a pod the
    ServiceAccount token (the client finds it from KUBERNETES_SERVICE_HOST); elsewhere
    KUBECONFIG / ~/.kube/config."""
    from kubernetes import config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call,unused-ignore]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call,unused-ignore]


class KubeNodeAPI:
    """The real thing: one CoreV1Api client, configured in-cluster or from KUBECONFIG."""

    def __init__(self, core: Any) -> None:
        self._core = core

    @classmethod
    def from_environment(cls) -> KubeNodeAPI:
        """In a pod use the ServiceAccount token; elsewhere KUBECONFIG / ~/.kube/config."""
        from kubernetes import client

        load_config()
        return cls(client.CoreV1Api())

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError:
            raise
        except Exception as exc:  # the client raises ApiException, urllib3 and socket errors
            raise _translate(exc) from exc

    def _raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
        resp = self._call(fn, *args, _preload_content=False, **kwargs)
        data: JSON = json.loads(resp.data)
        return data

    def get_node(self, name: str) -> JSON:
        return self._raw(self._core.read_node, name)

    def list_nodes(self) -> tuple[list[JSON], str]:
        data = self._raw(self._core.list_node)
        return list(data.get("items") or []), str(data["metadata"]["resourceVersion"])

    def watch_nodes(self, resource_version: str, timeout_seconds: int = 60) -> Iterator[WatchEvent]:
        resp = self._call(self._core.list_node, watch=True, resource_version=resource_version,
                          timeout_seconds=timeout_seconds, allow_watch_bookmarks=False,
                          _preload_content=False)
        try:
            buf = b""
            for chunk in resp.stream(65536, decode_content=True):
                buf += chunk
                *lines, buf = buf.split(b"\n")  # the server sends one JSON object a line
                for line in lines:
                    if line.strip():
                        yield self._watch_event(json.loads(line))
            if buf.strip():
                yield self._watch_event(json.loads(buf))
        finally:
            resp.release_conn()

    @staticmethod
    def _watch_event(ev: JSON) -> WatchEvent:
        if ev.get("type") == "ERROR":  # e.g. 410 Gone arrives in-band, not as an HTTP status
            status = int(ev.get("object", {}).get("code") or 0)
            raise Expired() if status == 410 else ApiError(status, str(ev.get("object")))
        return WatchEvent(str(ev["type"]), ev["object"])

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> JSON:
        return self._raw(self._core.patch_node, name, dict(patch), _content_type=MERGE_PATCH)

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self._call(self._core.create_namespaced_event, namespace, dict(event))
