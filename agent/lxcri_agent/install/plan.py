"""install / uninstall / status: the order of the steps and the manifest kept in step with them.

install: tree -> check that the installed runtime works (version, features, a smoke container)
-> CRI-O -> containerd -> remove what an older version owned and this one does not -> reload
what changed. A runtime that does not work is never registered. uninstall: revert the CRI
config -> remove the tree -> reload last, so the CRI runtime never restarts with a config that
names a runtime that is half gone. The manifest is saved before each change, so a re-run after
a crash finishes the job.
"""

from __future__ import annotations

import contextlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import log, manifest
from ..errors import AgentError
from ..hostfs import HostRoot, sha256_bytes
from ..manifest import Edit, Manifest
from ..version import agent_version
from . import containerd, crio, tree
from .context import Install
from .reload import Reloader
from .settings import Settings
from .validator import Validator


@dataclass
class Outcome:
    changed: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # owed reloads that could not be done
    errors: list[str] = field(default_factory=list)
    version: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 3 if self.pending else 0


def _action(s: Settings, service: str) -> str:
    return s.crio_apply if service == "crio" else "restart"


def _reload_owed(host: HostRoot, m: Manifest, s: Settings, reloader: Reloader, out: Outcome) -> None:
    for service in list(m.pending):
        try:
            reloader.apply(service, _action(s, service))
        except AgentError as err:
            log.get("reload").error(
                "reload failed; it stays owed and is retried on the next run", service=service, error=str(err)
            )
            out.pending.append(f"{service}: {err}")
            continue
        m.pending.remove(service)
        out.reloaded.append(service)
        manifest.save(host, m)
        from .. import metrics

        metrics.note_cri_restart(service, _action(s, service))


def install(
    host: HostRoot,
    s: Settings,
    tree_src: Path,
    reloader: Reloader,
    validator: Validator,
    cri: str = "auto",
    smoke_binary: Path | None = None,
) -> Outcome:
    host.check()
    out = Outcome()
    lg = log.get("install")
    with host.lock():
        m = manifest.load(host)
        m.agent_version = agent_version()
        ctx = Install(host, m, s, validator)
        use_crio = cri in ("crio", "both") or (cri == "auto" and crio.present(host, s))
        use_ctd = cri in ("containerd", "both") or (cri == "auto" and containerd.present(host, s))
        if not (use_crio or use_ctd):
            raise AgentError(
                f"neither CRI-O ({s.crio_dir}) nor containerd ({posixpath.dirname(s.containerd_config)})"
                f" is configured under the host root {host.root}"
            )
        # refuse before changing anything when a config we would touch or reload is already broken
        if use_crio:
            crio.preflight(host, s)
        if use_ctd:
            containerd.preflight(host, s)
        # a new tree is checked where it was copied, and becomes the runtime only if it works:
        # an upgrade to a broken build leaves the old runtime in place
        staged, copied = tree.stage(ctx, tree_src)
        ctx.save()
        out.version = tree.verify(host, staged)
        if smoke_binary is not None:
            _smoke(host, staged, smoke_binary)
        if tree.write_settings(ctx):
            out.changed.append("settings")
        if tree.activate(ctx, staged) or copied:
            out.changed.append("tree")
        if use_crio and crio.register(ctx):
            m.owe("crio")
            out.changed.append("crio")
        if use_ctd and containerd.register(ctx):
            m.owe("containerd")
            out.changed.append("containerd")
        ctx.save()
        for service in _remove_stale(ctx, upgrade=True):
            m.owe(service)
            out.changed.append(f"stale:{service}")
        ctx.save()
        _reload_owed(host, m, s, reloader, out)
        lg.info("installed", changed=out.changed, reloaded=out.reloaded, pending=out.pending, runtime=out.version)
    return out


def _smoke(host: HostRoot, staged: str, binary: Path) -> None:
    """The smoke container, timed for /metrics (duration and result of the last one)."""
    import time

    from .. import metrics
    from . import smoke

    started = time.monotonic()
    try:
        smoke.run(host, staged, binary)
    except AgentError:
        metrics.note_smoke(time.monotonic() - started, False)
        raise
    metrics.note_smoke(time.monotonic() - started, True)


def _remove_stale(ctx: Install, upgrade: bool) -> list[str]:
    """What an older version (or an earlier config) owned that this run does not want.

    On an ``upgrade`` (not an uninstall) an old runtime tree that containers still use is kept,
    and retired by a later run once they are gone.
    """
    host, m, wanted = ctx.host, ctx.manifest, ctx.wanted
    services: list[str] = []
    for path in sorted(set(m.edits) - wanted):
        if _restore(host, m, path, m.edits[path]):
            services.append(m.edits[path].service)
        del m.edits[path]
        manifest.save(host, m)
    # config files first, then the runtime, then directories deepest first
    order = {"file": 0, "symlink": 1, "tree": 2, "dir": 3}
    for path in sorted(set(m.owned) - wanted, key=lambda p: (order.get(m.owned[p].kind, 0), -len(p))):
        owned = m.owned[path]
        if owned.kind == "tree":
            busy = tree.users(host, ctx.settings, path)
            if busy and upgrade:
                log.get("install").info(
                    "keeping the old runtime tree: containers still use it", tree=path, used_by=busy
                )
                continue
            if busy:
                log.get("uninstall").warning(
                    "removing a runtime tree that containers still use; their poststop hooks will fail",
                    tree=path,
                    used_by=busy,
                )
        existed = host.path(path).exists() or host.path(path).is_symlink()
        tree.remove(host, path, owned)
        if existed and owned.service:
            services.append(owned.service)
        del m.owned[path]
        manifest.save(host, m)
    return [x for x in dict.fromkeys(services) if x]


def _restore(host: HostRoot, m: Manifest, path: str, ed: Edit) -> bool:
    """Put back the admin's file; True if its content changed. Never clobbers a later admin change."""
    cur = host.read(path)
    changed = False
    if cur is None:
        log.get("uninstall").warning("edited file is gone; nothing to restore", path=path)
    elif sha256_bytes(cur) == ed.result_sha256:
        original = host.read(ed.backup)
        if original is None or sha256_bytes(original) != ed.original_sha256:
            raise AgentError(f"backup {ed.backup} of {path} is missing or damaged: {path} left as is")
        host.write_atomic(path, original)
        changed = True
    elif sha256_bytes(cur) != ed.original_sha256:
        # the admin changed the file after our edit: take out only our entry, keep their change
        s = Settings(containerd_config=path)
        new = containerd.remove_text(cur.decode(), s)
        if new != cur.decode():
            host.write_atomic(path, new.encode())
            changed = True
        log.get("uninstall").warning("file changed since lxcri-agent edited it; removed only our entry", path=path)
    host.remove(ed.backup)
    return changed


def uninstall(host: HostRoot, s: Settings, reloader: Reloader) -> Outcome:
    host.check()
    out = Outcome()
    with host.lock():
        m = manifest.load(host)
        if not m.owned and not m.edits and not m.pending:
            log.get("uninstall").info("nothing installed")
            _cleanup_state(host)
            return out
        # nothing is wanted any more: CRI config first, then the tree, the reload last
        for service in _remove_stale(Install(host, m, s), upgrade=False):
            m.owe(service)
        manifest.save(host, m)
        _reload_owed(host, m, s, reloader, out)
        if not m.pending:
            manifest.remove(host)
            _cleanup_state(host)
            _remove_lxc_locks(host, s)
            _remove_call_log(host, s)
        log.get("uninstall").info("uninstalled", reloaded=out.reloaded, pending=out.pending)
    return out


def _remove_lxc_locks(host: HostRoot, s: Settings) -> None:
    """liblxc's lock files of lxcri's containers (``/run/lxc/lock/run/lxcri/...``), then the
    directories above them up to ``/run/lxc/lock`` when empty. liblxc creates them on every
    container and removes none; only the runtime root's subtree is lxcri's."""
    import shutil

    base = PurePosixPath(s.lxc_lock_dir)
    ours = str(base / PurePosixPath(s.runtime_root).relative_to("/"))
    local = host.path(ours)
    if local.is_dir() and not local.is_symlink():
        shutil.rmtree(local, ignore_errors=True)
    for d in [ours, *[str(p) for p in PurePosixPath(ours).parents if base in (p, *p.parents)]]:
        with contextlib.suppress(OSError):
            host.path(d).rmdir()


def _remove_call_log(host: HostRoot, s: Settings) -> None:
    """The call log `run` created for /metrics (and its rotated copy): the runtime never creates
    it, so it is not in the manifest, but nothing of the agent may stay behind."""
    for path in (s.call_log, s.call_log + ".old"):
        with contextlib.suppress(OSError, AgentError):
            host.remove(path)


def _cleanup_state(host: HostRoot) -> None:
    """Remove the agent's state dir if only the lock and empty backup dirs remain."""
    import shutil

    state = host.path(host.state_dir)
    if not state.is_dir():
        return
    keep = ("lock", "created-parents")
    leftovers = [p for p in state.rglob("*") if p.is_file() and p.name not in keep]
    if leftovers:
        return
    parents = (host.read(f"{host.state_dir}/created-parents") or b"").decode().split()
    shutil.rmtree(state, ignore_errors=True)
    for parent in sorted(parents, key=len, reverse=True):
        with contextlib.suppress(OSError):
            host.path(parent).rmdir()


def status(host: HostRoot, s: Settings) -> dict[str, Any]:
    """What the manifest says and whether the host still matches it."""
    host.check()
    m = manifest.load(host)
    items: dict[str, str] = {}
    for path, owned in sorted(m.owned.items()):
        local = host.path(path)
        if owned.kind == "file":
            data = host.read(path)
            items[path] = "missing" if data is None else "ok" if sha256_bytes(data) == owned.sha256 else "modified"
        else:
            items[path] = "ok" if (local.exists() or local.is_symlink()) else "missing"
    for path, ed in sorted(m.edits.items()):
        data = host.read(path)
        items[path] = (
            "missing"
            if data is None
            else "edited"
            if sha256_bytes(data) == ed.result_sha256
            else "not-applied"
            if sha256_bytes(data) == ed.original_sha256
            else "changed-by-admin"
        )
    installed = bool(m.owned or m.edits)
    healthy = installed and all(v in ("ok", "edited") for v in items.values()) and not m.pending
    return {
        "installed": installed,
        "healthy": healthy,
        "agent_version": m.agent_version,
        "runtime_path": s.runtime_path,
        "items": items,
        "pending": list(m.pending),
    }
