"""One install run's context: the host, the manifest, the settings, the validator, what is wanted.

Every step of :mod:`.plan` gets this one object instead of the same six values in a row. The
manifest rule lives here too: anything the agent is about to create is recorded (and the
manifest saved) *before* it exists, so a crash at any point leaves nothing unlisted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import manifest
from ..errors import AgentError
from ..hostfs import HostRoot
from ..manifest import Manifest, Owned
from .settings import Settings
from .validator import Validator


@dataclass
class Install:
    host: HostRoot
    manifest: Manifest
    settings: Settings
    validator: Validator | None = None  # containerd's `config dump`; uninstall needs none
    # host paths this run installs or keeps: what the manifest lists beyond them is stale
    wanted: set[str] = field(default_factory=set)

    def save(self) -> None:
        """Write the manifest now (the intent goes down before the change)."""
        manifest.save(self.host, self.manifest)

    def want(self, path: str) -> None:
        self.wanted.add(path)

    def own_dir(self, path: str) -> None:
        """Make sure a directory the install needs exists. One the agent creates is recorded as
        its own first (removed on uninstall when empty); one that was there stays the admin's."""
        m = self.manifest
        if path not in m.owned and not self.host.real(path).is_dir():
            m.owned[path] = Owned("dir")
            self.save()
            self.host.makedirs(path)
        elif path in m.owned and not self.host.real(path).is_dir():
            self.host.makedirs(path)  # ours, but removed behind our back
        if path in m.owned:
            self.want(path)

    def containerd(self) -> Validator:
        """The validator of containerd configs; only an install has one."""
        if self.validator is None:
            raise AgentError("internal error: a containerd step without a validator")
        return self.validator
