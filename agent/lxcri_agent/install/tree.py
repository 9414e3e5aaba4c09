"""Copying the runtime tree to the host: ``/opt/lxcri/lib/<id>/`` plus the ``bin/lxcri`` symlink.

The copy goes to a ``.partial`` directory first and is renamed into place, and the symlink is
swapped with a rename, so a crash leaves either the old runtime or the new one working.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from ..errors import AgentError
from ..hostfs import HostRoot, sha256_bytes
from ..manifest import Owned
from ..treebuild import EXE, read_id
from .context import Install
from .settings import Settings


def stage(ctx: Install, src: Path) -> tuple[str, bool]:
    """Copy the tree to ``/opt/lxcri/lib/<id>`` without making it the runtime yet.

    Returns the host path of its executable (to be checked before :func:`activate`) and whether
    anything was copied.
    """
    host, m, s = ctx.host, ctx.manifest, ctx.settings
    tid = read_id(src)
    lib = f"{s.install_dir}/lib/{tid}"
    link = s.runtime_path
    dirs = [str(p) for p in reversed(PurePosixPath(s.install_dir).parents) if str(p) != "/"]
    for d in [*dirs, s.install_dir, f"{s.install_dir}/lib", os.path.dirname(link)]:
        ctx.own_dir(d)
    # nothing outside the prefix: the runtime points liblxc's rootfs mount (lxc.rootfs.mount) into
    # its own runtime dir, so liblxc's compiled-in mount point under /usr is never used
    changed = False
    ctx.want(lib)
    local = host.path(lib)
    if not (local / EXE).is_file() or read_id(local) != tid:
        m.owned[lib] = Owned("tree", tid)
        ctx.save()
        partial = local.with_name(f".{tid}.partial")
        try:
            if partial.exists():
                shutil.rmtree(partial)  # left by a crash: never trusted
            shutil.copytree(src, partial, symlinks=True)
            if local.exists():
                shutil.rmtree(local)
            partial.rename(local)
        except OSError as err:
            raise host.error("copy the runtime tree to", local, err) from err
        changed = True
    m.owned[lib] = Owned("tree", tid)
    return f"{lib}/{EXE}", changed


def activate(ctx: Install, exe: str) -> bool:
    """Point ``bin/lxcri`` at a staged tree in one rename; True if the link changed."""
    host, m = ctx.host, ctx.manifest
    link = ctx.settings.runtime_path
    target = os.path.relpath(exe, os.path.dirname(link))
    changed = False
    ctx.want(link)
    llocal = host.path(link)
    current = os.readlink(llocal) if llocal.is_symlink() else None
    if current != target:
        if llocal.exists() and not llocal.is_symlink() and link not in m.owned:
            raise AgentError(f"{link} exists and was not installed by lxcri-agent: not overwritten")
        m.owned[link] = Owned("symlink", target)
        ctx.save()
        tmp = llocal.with_name(f".{llocal.name}.lxcri-tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(target, tmp)
            os.replace(tmp, llocal)
        except OSError as err:
            raise host.error("link", llocal, err) from err
        changed = True
    m.owned[link] = Owned("symlink", target)
    return changed


def runtime_settings(s: Settings) -> bytes:
    """What the installed runtime must agree on with the agent's pod: where its calls are logged
    (drained for /metrics) and where the chart's lxcfs is mounted."""
    doc = {"call_log": s.call_log, "lxcfs_path": s.lxcfs_path}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def write_settings(ctx: Install) -> bool:
    """``<prefix>/etc/lxcri.json``, read by the installed runtime before /etc/lxcri/lxcri.yaml;
    True if it changed. A file there that the agent did not write is not overwritten."""
    host, m = ctx.host, ctx.manifest
    path = ctx.settings.runtime_settings
    ctx.own_dir(os.path.dirname(path))
    data = runtime_settings(ctx.settings)
    ctx.want(path)
    current = host.read(path)
    if current == data:
        m.owned[path] = Owned("file", sha256_bytes(data))
        return False
    if current is not None and path not in m.owned:
        raise AgentError(f"{path} exists and was not written by lxcri-agent: not overwritten")
    m.owned[path] = Owned("file", sha256_bytes(data))
    ctx.save()
    host.write_atomic(path, data, 0o644)
    return True


def verify(host: HostRoot, runtime: str) -> str:
    """Run the runtime as CRI-O would (empty environment): it must start and answer."""
    exe = host.real(runtime)
    out = []
    for args in (["--version"], ["features"]):
        try:
            r = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, env={})
        except OSError as err:
            raise AgentError(f"the runtime {runtime} cannot be executed: {err}") from err
        if r.returncode != 0:
            raise AgentError(
                f"the runtime {runtime} fails `{' '.join(args)}` ({r.returncode}): {r.stderr.strip()[-300:]}"
            )
        out.append(r.stdout)
    return out[0].strip().splitlines()[0] if out[0].strip() else ""


def users(host: HostRoot, s: Settings, tree_dir: str, limit: int = 5) -> list[str]:
    """Container state that still names ``tree_dir`` (at most ``limit``).

    Frozen, the runtime records its own resolved path in each container's liblxc config (the hook
    command) and runs its helpers from there: a container created before an upgrade still calls
    into the old tree when it stops. So an old tree stays until no container state under the
    runtime root mentions it; a later install retires it.
    """
    root = host.real(s.runtime_root)
    needle = tree_dir.encode()
    found: list[str] = []
    if not root.is_dir():
        return found
    for p in root.rglob("*"):
        try:
            if not p.is_file() or p.is_symlink() or p.stat().st_size > 1 << 20:
                continue
            if needle in p.read_bytes():
                found.append(host.host_name(p))
        except OSError:
            continue
        if len(found) >= limit:
            break
    return found


def remove(host: HostRoot, path: str, owned: Owned) -> None:
    """Remove one owned item; a directory only when empty (the admin may have put files there)."""
    local = host.path(path)
    try:
        if owned.kind == "tree":
            if local.exists():
                shutil.rmtree(local)
        elif owned.kind == "dir":
            with contextlib.suppress(FileNotFoundError):
                if not any(local.iterdir()):
                    local.rmdir()
        else:
            host.remove(path)
    except OSError as err:
        raise host.error("remove", local, err) from err
