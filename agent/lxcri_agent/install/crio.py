"""CRI-O registration: one drop-in of our own in ``/etc/crio/crio.conf.d``.

CRI-O reads every ``*.conf`` there in lexical order after ``crio.conf``, so the admin's files
are never touched. A drop-in of that name that we did not write is the admin's: it is not
overwritten. The new content is parsed before it is written, and the existing drop-ins are
parsed too, since one broken file stops CRI-O whatever we do.
"""

from __future__ import annotations

import tomllib

from ..errors import AgentError
from ..hostfs import HostRoot, sha256_bytes
from ..manifest import Owned
from .context import Install
from .settings import Settings


def present(host: HostRoot, s: Settings) -> bool:
    return host.real(s.crio_dir).is_dir()


def dropin_text(s: Settings) -> str:
    return (
        "# lxcri-agent: the lxcri runtime handler; removed by `lxcri-agent uninstall`.\n"
        "# Changes here are overwritten: put settings of your own in a drop-in of your own.\n"
        f"[crio.runtime.runtimes.{s.handler}]\n"
        f'runtime_path = "{s.runtime_path}"\n'
        'runtime_type = "oci"\n'
        f'runtime_root = "{s.runtime_root}"\n'
        # conmon in the pod's cgroup works with both cgroup managers (system.slice needs systemd)
        'monitor_cgroup = "pod"\n'
        'monitor_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]\n'
    )


def _config_files(host: HostRoot, s: Settings) -> list[str]:
    """crio.conf, then the drop-ins in the order CRI-O reads them (later ones win), ours excluded."""
    files = [f"{s.crio_dir}/crio.conf"]
    d = host.real(f"{s.crio_dir}/crio.conf.d")
    if d.is_dir():
        files += [f"{s.crio_dir}/crio.conf.d/{p.name}" for p in sorted(d.iterdir()) if p.name.endswith(".conf")]
    return [f for f in files if f != s.crio_dropin]


def check_existing(host: HostRoot, s: Settings) -> list[str]:
    """Names of CRI-O config files that do not parse (CRI-O will not start with them)."""
    bad = []
    for name in _config_files(host, s):
        data = host.read(name)
        if data is None:
            continue
        try:
            tomllib.loads(data.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            bad.append(f"{name}: {err}")
    return bad


def overriding(host: HostRoot, s: Settings) -> list[str]:
    """Other files that define our handler and that CRI-O reads after our drop-in (they would win)."""
    out = []
    for name in _config_files(host, s):
        if name == f"{s.crio_dir}/crio.conf" or name < s.crio_dropin:
            continue
        data = host.read(name)
        try:
            doc = tomllib.loads((data or b"").decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if s.handler in doc.get("crio", {}).get("runtime", {}).get("runtimes", {}):
            out.append(name)
    return out


def validate(text: str, s: Settings) -> None:
    doc = tomllib.loads(text)
    entry = doc["crio"]["runtime"]["runtimes"][s.handler]
    if entry["runtime_path"] != s.runtime_path:
        raise AgentError("internal error: CRI-O drop-in does not name the runtime")


def check_not_shadowed(host: HostRoot, s: Settings) -> None:
    """Refuse when another file read after ours defines the handler: our drop-in would be dead."""
    shadow = overriding(host, s)
    if shadow:
        raise AgentError(
            f"{', '.join(shadow)} also define{'s' if len(shadow) == 1 else ''} the {s.handler} runtime and "
            f"{'is' if len(shadow) == 1 else 'are'} read after {s.crio_dropin}: CRI-O would not use lxcri's "
            "settings (remove that definition, or use --handler for another name)"
        )


def preflight(host: HostRoot, s: Settings) -> None:
    """Refuse before anything changes when CRI-O's config is already broken (CRI-O would not
    come back after a reload) or another file would shadow our drop-in."""
    bad = check_existing(host, s)
    if bad:
        raise AgentError(
            "CRI-O's config does not parse, so CRI-O would not come back after a reload: "
            + "; ".join(bad)
            + " (nothing changed)"
        )
    check_not_shadowed(host, s)


def register(ctx: Install) -> bool:
    """Write the drop-in (after :func:`preflight`); True when CRI-O must pick up a change."""
    host, m, s = ctx.host, ctx.manifest, ctx.settings
    text = dropin_text(s)
    validate(text, s)
    name = s.crio_dropin
    ctx.want(name)
    data = text.encode()
    cur = host.read(name)
    if cur is not None and name not in m.owned and cur != data:
        raise AgentError(f"{name} exists and was not written by lxcri-agent: not overwritten")
    ctx.own_dir(f"{s.crio_dir}/crio.conf.d")
    m.owned[name] = Owned("file", sha256_bytes(data), service="crio")
    if cur == data:
        return False
    ctx.save()
    host.write_atomic(name, data, 0o644)
    return True
