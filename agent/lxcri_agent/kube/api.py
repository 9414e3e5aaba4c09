"""The interface: get/list/watch/patch Nodes and create Events, as raw JSON-like dicts.

Raw dicts rather than typed models because the operator receives raw bodies from kopf's
watch anyway, and because a merge patch is naturally a dict. Errors carry the HTTP status
so callers can tell a conflict (retry with fresh data) from a gone object (nothing to do)
from anything else (try again later).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

JSON = dict[str, Any]


class ApiError(Exception):
    """An API request failed; ``status`` is the HTTP status (0 when no response arrived)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(f"{status}: {message}" if message else str(status))
        self.status = status


class Conflict(ApiError):
    """409: the object changed since it was read (a ``resourceVersion`` precondition failed)."""

    def __init__(self, message: str = "conflict") -> None:
        super().__init__(409, message)


class NotFound(ApiError):
    """404: the object does not exist (e.g. a Node deleted while we worked on it)."""

    def __init__(self, message: str = "not found") -> None:
        super().__init__(404, message)


class Expired(ApiError):
    """410: a watch asked for a ``resourceVersion`` the server no longer keeps: relist."""

    def __init__(self, message: str = "resource version too old") -> None:
        super().__init__(410, message)


class WatchEvent(NamedTuple):
    """One watch notification: ``type`` is ADDED, MODIFIED or DELETED."""

    type: str
    node: JSON


class NodeAPI(Protocol):
    """What lxcri asks of the API server, and nothing more.

    ``patch_node`` takes a JSON merge patch (RFC 7386: ``None`` deletes a key). When the
    patch carries ``metadata.resourceVersion`` the server applies it only to that version
    and raises :class:`Conflict` otherwise: that is how the operator avoids pruning labels
    on the strength of a stale read.
    """

    def get_node(self, name: str) -> JSON: ...

    def list_nodes(self) -> tuple[list[JSON], str]: ...

    def watch_nodes(self, resource_version: str, timeout_seconds: int = 60) -> Iterator[WatchEvent]: ...

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> JSON: ...

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None: ...
