"""containerd registration on the host: our entry in the admin's config, or a drop-in, or a file
of our own when there is none — validated, backed up, recorded in the manifest.

containerd 1.x merges ``imports`` per plugin, so a drop-in that adds one runtime silently
replaces the admin's whole CRI plugin section (measured with 1.6: the runc runtime and the
snapshotter setting vanish from ``config dump``). A drop-in is therefore used only when the
admin's config already imports a directory *and* the host's own containerd proves, by
``config dump`` before and after, that the drop-in adds our runtime and changes nothing else.
Otherwise the admin's file is edited in place (:mod:`.containerd_toml`) after a byte-identical
backup. Where a containerd binary is available its ``config dump`` must accept every candidate.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..hostfs import HostRoot, sha256_bytes
from ..manifest import Edit, Manifest, Owned
from .containerd_toml import (
    HEADER,
    _get,
    _without,
    config_version,
    dropin_text,
    edit_text,
    import_dir,
    parse,
    remove_text,
    runtime_keys,
)
from .settings import Settings

__all__ = ["Validator", "config_version", "parse", "present", "register", "remove_text"]


# -- validation with a containerd binary ---------------------------------------------------------


@dataclass
class Validator:
    """Runs ``containerd --config X config dump``, preferring the node's own containerd:

    * chrooted into the host root, when that works (the host's loader and libc are there):
      imports then resolve to host paths, so only this mode may judge a drop-in;
    * else the host's binary run directly (a DaemonSet that mounts only the binary): the right
      version, reading the candidate file by its path under the host root;
    * else ``binary`` from the agent's own PATH.
    """

    host: HostRoot
    binary: str | None = None  # an explicit containerd on the agent's PATH, used without chroot
    _mode: tuple[str, str] | None = field(default=None, init=False, repr=False)  # (how, binary), found once

    def _host_binary(self) -> str | None:
        for cand in ("/usr/bin/containerd", "/usr/local/bin/containerd"):
            if self.host.real(cand).is_file() and os.access(self.host.real(cand), os.X_OK):
                return cand
        return None

    def _choose(self) -> tuple[str, str]:
        if self._mode is None:
            hb = self._host_binary()
            mode = ("own", self.binary) if self.binary else ("none", "")
            if hb is not None:
                if self._runs(["chroot", str(self.host.root), hb, "--version"]):
                    mode = ("chroot", hb)
                elif self._runs([str(self.host.real(hb)), "--version"]):
                    mode = ("direct", str(self.host.real(hb)))
            self._mode = mode
        return self._mode

    @staticmethod
    def _runs(cmd: list[str]) -> bool:
        try:
            return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
        except OSError:
            return False

    def available(self) -> bool:
        return self._choose()[0] != "none"

    def chrooted(self) -> bool:
        return self._choose()[0] == "chroot"

    def hosts_own(self) -> bool:
        """The node's own containerd (its version reads the config as the daemon will)."""
        return self._choose()[0] in ("chroot", "direct")

    def dump(self, host_config: str) -> dict[str, Any]:
        """The effective config containerd would run with; AgentError in containerd's words if not."""
        mode, binary = self._choose()
        if mode == "chroot":
            cmd = ["chroot", str(self.host.root), binary, "--config", host_config, "config", "dump"]
        elif mode in ("direct", "own"):
            cmd = [binary, "--config", str(self.host.real(host_config)), "config", "dump"]
        else:
            raise AgentError("no containerd binary to validate with")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise AgentError(f"containerd rejects {host_config}: {msg}")
        doc = tomllib.loads(r.stdout)
        doc.pop("imports", None)  # lists the files read, differs by construction
        return doc

    def dump_text(self, s: Settings, text: str) -> dict[str, Any]:
        """Dump a candidate config written next to the real one (same dir, so relative imports agree)."""
        real = self.host.real(s.containerd_config)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".lxcri-check.toml", dir=real.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except OSError as err:
            raise self.host.error("write a candidate next to", real, err) from err
        try:
            return self.dump(self.host.host_name(Path(tmp)))
        finally:
            os.unlink(tmp)


# -- applying to the host ------------------------------------------------------------------------


def present(host: HostRoot, s: Settings) -> bool:
    return host.real(posixpath.dirname(s.containerd_config)).is_dir()


def register(
    host: HostRoot, m: Manifest, s: Settings, validator: Validator, wanted: set[str], save: Callable[[], None]
) -> bool:
    """Register the runtime; True when containerd's effective config changed (it must restart)."""
    cfg = s.containerd_config
    data = host.read(cfg)
    if data is None or (cfg in m.owned and sha256_bytes(data) == m.owned[cfg].sha256):
        return _own_config(host, m, s, validator, wanted, save)
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise AgentError(f"{cfg} is not UTF-8 text ({err}): left untouched") from err
    doc = parse(text, cfg)
    if cfg in m.owned:
        _take_over(host, m, s, save, data, text)
    version = config_version(doc)
    directory = import_dir(doc, cfg, s.containerd_dropin_name)
    if directory is not None and validator.chrooted() and cfg not in m.edits:
        changed = _try_dropin(
            host, m, s, validator, wanted, save, doc, version, f"{directory}/{s.containerd_dropin_name}"
        )
        if changed is not None:
            return changed
    return _edit(host, m, s, validator, wanted, save, data, text)


def _take_over(host: HostRoot, m: Manifest, s: Settings, save: Callable[[], None], data: bytes, text: str) -> None:
    """The admin edited the config file we created: it is theirs now. From here on it is an edit
    like any other, whose "original" is their content without our entry."""
    from ..manifest import backup_path

    cfg = s.containerd_config
    base = remove_text(text, s).removeprefix(HEADER).encode()
    backup = backup_path(host, cfg)
    host.makedirs(posixpath.dirname(backup), 0o700)
    host.write_atomic(backup, base, 0o600)
    m.edits[cfg] = Edit(backup, sha256_bytes(base), sha256_bytes(data), service="containerd")
    del m.owned[cfg]
    save()


def _own_config(
    host: HostRoot, m: Manifest, s: Settings, validator: Validator, wanted: set[str], save: Callable[[], None]
) -> bool:
    """No config on the host: containerd runs on defaults, so a whole file of ours (version 2,
    which containerd 1.6 to 2.x all read) only adds the runtime."""
    cfg = s.containerd_config
    data = dropin_text(2, s, {}).encode()
    wanted.add(cfg)
    m.owned[cfg] = Owned("file", sha256_bytes(data), service="containerd")
    if host.read(cfg) == data:
        return False
    parent = posixpath.dirname(cfg)
    if not host.real(parent).is_dir():
        m.owned[parent] = Owned("dir")
        save()
        host.makedirs(parent)
    if parent in m.owned:
        wanted.add(parent)
    if validator.available():
        validator.dump_text(s, data.decode())
    save()
    host.write_atomic(cfg, data, 0o644)
    return True


def _try_dropin(
    host: HostRoot,
    m: Manifest,
    s: Settings,
    validator: Validator,
    wanted: set[str],
    save: Callable[[], None],
    doc: dict[str, Any],
    version: int,
    name: str,
) -> bool | None:
    """Use the admin's ``imports``; None when containerd shows the drop-in would change more than ours."""
    from .. import log

    data = dropin_text(version, s, doc).encode()
    keys = runtime_keys(version, s.handler)
    cur = host.read(name)
    if cur is not None and name not in m.owned and cur != data:
        raise AgentError(f"{name} exists and was not written by lxcri-agent: not overwritten")
    if cur == data and name in m.owned:
        wanted.add(name)
        return False
    if cur is not None:
        host.remove(name)
    before = validator.dump(s.containerd_config)
    m.owned[name] = Owned("file", sha256_bytes(data), service="containerd")
    save()
    host.write_atomic(name, data, 0o644)
    try:
        after = validator.dump(s.containerd_config)
    except AgentError:
        after = {}
    entry = _get(after, keys) or {}
    if (
        _without(after, keys) == _without(before, keys)
        and entry.get("runtime_type") == "io.containerd.runc.v2"
        and (entry.get("options") or {}).get("BinaryName") == s.runtime_path
    ):
        wanted.add(name)
        return True
    log.get("containerd").warning("imports would drop other settings of the CRI plugin; editing in place", dropin=name)
    host.remove(name)
    del m.owned[name]
    save()
    return None


def _edit(
    host: HostRoot,
    m: Manifest,
    s: Settings,
    validator: Validator,
    wanted: set[str],
    save: Callable[[], None],
    data: bytes,
    text: str,
) -> bool:
    """Edit the admin's file in place after a byte-identical backup recorded in the manifest."""
    from ..manifest import backup_path

    cfg = s.containerd_config
    ed = m.edits.get(cfg)
    if ed is not None and sha256_bytes(data) == ed.result_sha256:
        wanted.add(cfg)
        return False
    new = edit_text(text, s)
    if new == text:
        # the entry is already right: the admin's own (not ours to record) or our crashed run's
        if ed is not None:
            wanted.add(cfg)
        return False
    if validator.available():
        dumped = validator.dump_text(s, new)
        version = config_version(parse(text, cfg))
        # the dump shows v1 configs under v2 plugin ids; a containerd 1.x that is not the host's
        # own binary ignores v3 plugin ids, so then it can only prove that the file parses
        entry = _get(dumped, runtime_keys(version, s.handler)) or _get(dumped, runtime_keys(2, s.handler)) or {}
        must_see = validator.hosts_own() or version < 3
        if must_see and (entry.get("options") or {}).get("BinaryName") != s.runtime_path:
            raise AgentError(f"containerd does not see the {s.handler} runtime in the edited {cfg}: not applied")
    newdata = new.encode()
    backup = backup_path(host, cfg)
    host.makedirs(posixpath.dirname(backup), 0o700)
    # a file the admin changed since our last edit: the new backup is their version, not our old one
    host.write_atomic(backup, data, 0o600)
    m.edits[cfg] = Edit(backup, sha256_bytes(data), sha256_bytes(newdata), service="containerd")
    wanted.add(cfg)
    save()
    host.write_atomic(cfg, newdata)
    return True
