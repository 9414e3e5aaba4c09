"""The record of what the agent owns on a host: the basis of uninstall, upgrade and crash recovery.

It is written *before* each change (the intent) and again after it, so that whatever point a
crash interrupts, a re-run knows every file that may exist because of us. Uninstall removes
exactly what is listed here and nothing else; an upgrade removes what an older version listed
and the new one no longer wants.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import AgentError
from .hostfs import HostRoot

FORMAT = 1


def manifest_path(host: HostRoot) -> str:
    return f"{host.state_dir}/manifest.json"


def backup_path(host: HostRoot, original: str) -> str:
    """Where the byte-identical copy of an edited host file is kept."""
    return f"{host.state_dir}/backup{original}"


@dataclass
class Owned:
    """A file, symlink or directory tree the agent created; removed on uninstall."""

    kind: str  # "file" | "symlink" | "tree" | "dir"
    sha256: str = ""  # content (file), target (symlink) or tree id
    service: str = ""  # the CRI runtime that must reload when this goes away ("crio", "containerd")


@dataclass
class Edit:
    """A file the admin owns that the agent changed in place; restored from the backup on uninstall."""

    backup: str  # host path of the byte-identical copy of the original
    original_sha256: str
    result_sha256: str
    service: str = ""


@dataclass
class Manifest:
    agent_version: str = ""
    owned: dict[str, Owned] = field(default_factory=dict)
    edits: dict[str, Edit] = field(default_factory=dict)
    # services whose reload/restart is still owed (survives a crash between write and reload)
    pending: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {"format": FORMAT, **asdict(self)}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {doc.get('format')!r}")
        return cls(
            agent_version=str(doc.get("agent_version", "")),
            owned={k: Owned(**v) for k, v in doc.get("owned", {}).items()},
            edits={k: Edit(**v) for k, v in doc.get("edits", {}).items()},
            pending=list(doc.get("pending", [])),
        )

    def owe(self, service: str) -> None:
        if service not in self.pending:
            self.pending.append(service)


def load(host: HostRoot) -> Manifest:
    data = host.read(manifest_path(host))
    if data is None:
        return Manifest()
    try:
        return Manifest.from_json(data)
    except (ValueError, TypeError, KeyError) as err:
        raise AgentError(
            f"manifest {manifest_path(host)} (host root {host.root}) is unreadable: {err}; "
            "it lists what the agent owns, so it is not guessed: fix or remove it by hand"
        ) from err


def save(host: HostRoot, manifest: Manifest) -> None:
    host.makedirs(host.state_dir, 0o700)
    host.write_atomic(manifest_path(host), manifest.to_json(), 0o600)


def remove(host: HostRoot) -> None:
    host.remove(manifest_path(host))
