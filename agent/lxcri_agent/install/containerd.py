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

import posixpath
from typing import Any

from ..errors import AgentError
from ..hostfs import HostRoot, sha256_bytes
from ..manifest import Edit, Owned
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
from .context import Install
from .settings import Settings
from .validator import Validator

__all__ = ["Validator", "config_version", "parse", "preflight", "present", "register", "remove_text"]


# -- applying to the host ------------------------------------------------------------------------


def present(host: HostRoot, s: Settings) -> bool:
    return host.real(posixpath.dirname(s.containerd_config)).is_dir()


def preflight(host: HostRoot, s: Settings) -> None:
    """Refuse before anything changes when the config we would edit is not text or not TOML,
    or of a version we do not know."""
    data = host.read(s.containerd_config)
    if data is None:
        return
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise AgentError(f"{s.containerd_config} is not UTF-8 text: nothing changed") from err
    config_version(parse(text, s.containerd_config))


def register(ctx: Install) -> bool:
    """Register the runtime (after :func:`preflight`); True when containerd's effective config
    changed (it must restart)."""
    host, m, s, validator = ctx.host, ctx.manifest, ctx.settings, ctx.containerd()
    cfg = s.containerd_config
    data = host.read(cfg)
    if data is None or (cfg in m.owned and sha256_bytes(data) == m.owned[cfg].sha256):
        return _own_config(ctx)
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise AgentError(f"{cfg} is not UTF-8 text ({err}): left untouched") from err
    doc = parse(text, cfg)
    if cfg in m.owned:
        _take_over(ctx, data, text)
    version = config_version(doc)
    directory = import_dir(doc, cfg, s.containerd_dropin_name)
    if directory is not None and validator.chrooted() and cfg not in m.edits:
        changed = _try_dropin(ctx, doc, version, f"{directory}/{s.containerd_dropin_name}")
        if changed is not None:
            return changed
    return _edit(ctx, data, text)


def _take_over(ctx: Install, data: bytes, text: str) -> None:
    """The admin edited the config file we created: it is theirs now. From here on it is an edit
    like any other, whose "original" is their content without our entry."""
    from ..manifest import backup_path

    host, m, s = ctx.host, ctx.manifest, ctx.settings
    cfg = s.containerd_config
    base = remove_text(text, s).removeprefix(HEADER).encode()
    backup = backup_path(host, cfg)
    host.makedirs(posixpath.dirname(backup), 0o700)
    host.write_atomic(backup, base, 0o600)
    m.edits[cfg] = Edit(backup, sha256_bytes(base), sha256_bytes(data), service="containerd")
    del m.owned[cfg]
    ctx.save()


def _own_config(ctx: Install) -> bool:
    """No config on the host: containerd runs on defaults, so a whole file of ours (version 2,
    which containerd 1.6 to 2.x all read) only adds the runtime."""
    host, m, s, validator = ctx.host, ctx.manifest, ctx.settings, ctx.containerd()
    cfg = s.containerd_config
    data = dropin_text(2, s, {}).encode()
    ctx.want(cfg)
    m.owned[cfg] = Owned("file", sha256_bytes(data), service="containerd")
    if host.read(cfg) == data:
        return False
    ctx.own_dir(posixpath.dirname(cfg))
    if validator.available():
        validator.dump_text(s, data.decode())
    ctx.save()
    host.write_atomic(cfg, data, 0o644)
    return True


def _try_dropin(ctx: Install, doc: dict[str, Any], version: int, name: str) -> bool | None:
    """Use the admin's ``imports``; None when containerd shows the drop-in would change more than ours."""
    from .. import log

    host, m, s, validator = ctx.host, ctx.manifest, ctx.settings, ctx.containerd()

    data = dropin_text(version, s, doc).encode()
    keys = runtime_keys(version, s.handler)
    cur = host.read(name)
    if cur is not None and name not in m.owned and cur != data:
        raise AgentError(f"{name} exists and was not written by lxcri-agent: not overwritten")
    if cur == data and name in m.owned:
        ctx.want(name)
        return False
    if cur is not None:
        host.remove(name)
    before = validator.dump(s.containerd_config)
    m.owned[name] = Owned("file", sha256_bytes(data), service="containerd")
    ctx.save()
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
        ctx.want(name)
        return True
    log.get("containerd").warning("imports would drop other settings of the CRI plugin; editing in place", dropin=name)
    host.remove(name)
    del m.owned[name]
    ctx.save()
    return None


def _edit(ctx: Install, data: bytes, text: str) -> bool:
    """Edit the admin's file in place after a byte-identical backup recorded in the manifest."""
    from ..manifest import backup_path

    host, m, s, validator = ctx.host, ctx.manifest, ctx.settings, ctx.containerd()

    cfg = s.containerd_config
    ed = m.edits.get(cfg)
    if ed is not None and sha256_bytes(data) == ed.result_sha256:
        ctx.want(cfg)
        return False
    new = edit_text(text, s)
    if new == text:
        # the entry is already right: the admin's own (not ours to record) or our crashed run's
        if ed is not None:
            ctx.want(cfg)
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
    ctx.want(cfg)
    ctx.save()
    host.write_atomic(cfg, newdata)
    return True
