"""The report a node publishes about itself, and where it is published.

The report is a small JSON document in one annotation on the node's own Node object. It
carries no timestamp on purpose: an unchanged node then publishes nothing, so neither the
agent nor the operator writes anything in steady state, however many nodes there are.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ..settings import DEFAULT_LABEL_PREFIX

DEFAULT_PREFIX = DEFAULT_LABEL_PREFIX  # of the label and annotation keys
SCHEMA = 1


def report_annotation(prefix: str = DEFAULT_PREFIX) -> str:
    """The annotation holding the node's report (written by the agent only)."""
    return f"{prefix}/report"


def owned_annotation(prefix: str = DEFAULT_PREFIX) -> str:
    """The annotation listing the labels the operator set (written by the operator only)."""
    return f"{prefix}/owned-labels"


def owned_labels(annotations: Mapping[str, str], prefix: str) -> set[str]:
    """The label keys the operator recorded as its own on this Node."""
    raw = annotations.get(owned_annotation(prefix), "")
    return {key for key in raw.split(",") if key}


class ReportError(ValueError):
    """A report annotation that is not a report this version understands."""


@dataclasses.dataclass(frozen=True)
class Report:
    """What the node found out about lxcri on itself.

    ``None`` means "could not tell" (e.g. ``lxcri features`` failed), which is different
    from ``False`` ("the runtime says it lacks this"); the operator labels only what is known.
    """

    ready: bool
    reason: str = ""
    cgroup: str | None = None  # v1, v2, hybrid
    seccomp: bool | None = None
    userns: bool | None = None
    apparmor: bool | None = None
    selinux: bool | None = None
    liblxc: str | None = None
    lxcri: str | None = None
    system_containers: bool | None = None  # systemd as a pod's PID 1 (the system-container annotation)
    idmap_mounts: bool | None = None  # idmapped volume mounts, which user-namespaced pods need
    lxcfs: bool | None = None  # an lxcfs answers at the runtime's lxcfs path

    def to_json(self) -> str:
        """Compact, key-sorted JSON, so that equal reports are byte-equal and compare cheaply."""
        body: dict[str, Any] = {"v": SCHEMA}
        body.update({k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != ""})
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Report:
        """Parse a published report, rejecting anything malformed rather than guessing."""
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ReportError(f"not JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("v") != SCHEMA:
            raise ReportError(f"not a version {SCHEMA} report")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in body.items():
            if key == "v" or key not in fields:
                continue  # a newer agent may add fields: ignore what we do not know
            kwargs[key] = value
        if not isinstance(kwargs.get("ready"), bool):
            raise ReportError("'ready' must be true or false")
        for key in ("seccomp", "userns", "apparmor", "selinux", "system_containers", "idmap_mounts", "lxcfs"):
            if key in kwargs and not isinstance(kwargs[key], bool):
                raise ReportError(f"{key!r} must be true or false")
        for key in ("reason", "cgroup", "liblxc", "lxcri"):
            if key in kwargs and not isinstance(kwargs[key], str):
                raise ReportError(f"{key!r} must be a string")
        return cls(**kwargs)
