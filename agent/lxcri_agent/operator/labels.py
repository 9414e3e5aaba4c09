"""Pure functions: a Node's labels and annotations in, the merge patch that fixes them out.

No I/O here, so that the whole policy — which labels a report yields, which labels may be
removed, when readiness changed — is tested with plain dicts, and so that reconciling an
already-converged Node is provably free (``plan`` returns ``None``: no request at all).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ..report.model import Report, ReportError, owned_annotation, owned_labels, report_annotation

READY = "ready"
NOT_READY = "not-ready"
_VALUE_OK = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def label_value(text: str) -> str | None:
    """Make ``text`` a valid label value (≤63 chars of [-A-Za-z0-9_.], alphanumeric ends).

    Versions such as ``5.0.2`` pass unchanged; ``6.0.0~git+abc`` becomes ``6.0.0-git-abc``.
    Returns ``None`` when nothing usable is left, so that the label is omitted, not wrong.
    """
    value = re.sub(r"[^-A-Za-z0-9_.]", "-", text.strip())[:63].strip("-_.")
    return value if _VALUE_OK.match(value) else None


def desired_labels(report: Report | None, prefix: str, invalid: bool = False) -> dict[str, str]:
    """The labels a node should carry for its report.

    No report (the agent is not there, or withdrew it on uninstall) means no labels at all,
    so the RuntimeClass stops selecting the node. A report the operator cannot read means
    "not ready": scheduling pods there would be a guess.
    """
    if invalid:
        return {f"{prefix}/runtime": NOT_READY}
    if report is None:
        return {}
    labels = {f"{prefix}/runtime": READY if report.ready else NOT_READY}
    userns_pods = None if report.userns is None or report.idmap_mounts is None else (
        report.userns and report.idmap_mounts)
    flags = {"seccomp": report.seccomp, "userns": report.userns,
             "apparmor": report.apparmor, "selinux": report.selinux,
             "system-containers": report.system_containers, "userns-pods": userns_pods, "lxcfs": report.lxcfs}
    for name, flag in flags.items():
        if flag is not None:
            labels[f"{prefix}/{name}"] = "true" if flag else "false"
    texts = {"cgroup": report.cgroup, "liblxc": report.liblxc, "version": report.lxcri}
    for name, text in texts.items():
        value = label_value(text) if text else None
        if value:
            labels[f"{prefix}/{name}"] = value
    return labels


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to write to one Node, and the readiness transition it makes (for the Event)."""

    patch: dict[str, Any]
    was: str | None
    now: str | None
    reason: str = ""

    @property
    def readiness_changed(self) -> bool:
        return self.was != self.now


def plan(node: Mapping[str, Any], prefix: str) -> Plan | None:
    """Compute the merge patch that brings ``node``'s labels in line with its report.

    Only labels in the desired set are added or changed, and only labels listed in the
    owned-labels annotation are removed: labels set by anyone else are never touched. The
    owned-labels annotation is rewritten in the same patch, so a crash between two writes
    cannot leave a label the operator no longer knows it owns. ``metadata.resourceVersion``
    goes into the patch as a precondition: pruning decided on a stale read fails with 409
    instead of removing something it should not.
    """
    meta = node.get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    text = annotations.get(report_annotation(prefix))
    report: Report | None = None
    reason = ""
    invalid = False
    if text is not None:
        try:
            report = Report.from_json(text)
            reason = report.reason
        except ReportError as exc:
            invalid, reason = True, f"unreadable report: {exc}"
    want = desired_labels(report, prefix, invalid)
    owned = owned_labels(annotations, prefix)

    label_patch: dict[str, str | None] = {k: v for k, v in want.items() if labels.get(k) != v}
    label_patch.update({k: None for k in sorted(owned - want.keys()) if k in labels})
    owned_value = ",".join(sorted(want)) or None
    annotation_patch: dict[str, str | None] = {}
    if owned_value != annotations.get(owned_annotation(prefix)):
        annotation_patch[owned_annotation(prefix)] = owned_value
    if not label_patch and not annotation_patch:
        return None

    metadata: dict[str, Any] = {}
    if meta.get("resourceVersion"):
        metadata["resourceVersion"] = meta["resourceVersion"]
    if label_patch:
        metadata["labels"] = label_patch
    if annotation_patch:
        metadata["annotations"] = annotation_patch
    ready_key = f"{prefix}/runtime"
    return Plan(patch={"metadata": metadata}, was=labels.get(ready_key), now=want.get(ready_key),
                reason=reason)
