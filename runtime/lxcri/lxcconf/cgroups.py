"""linux.cgroupsPath and linux.resources -> lxc.cgroup.dir.* and lxc.cgroup[2].* items.

On cgroup v1 and hybrid hosts limits are written as lxc.cgroup.<v1 key>, on pure
v2 hosts as lxc.cgroup2.<v2 key>; the values are translated accordingly.
"""

from __future__ import annotations

import posixpath

from lxcri.cgroups.fs import monitor_cgroup
from lxcri.errors import TranslateError
from lxcri.ids import check_id
from lxcri.lxcconf import Context, Items
from lxcri.oci import spec as oci_spec
from lxcri.oci.spec import check_text

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

# runc's default device allow list: what every container may use whatever the config says
DEFAULT_DEVICES = [
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",  # tty console ptmx
    "c 136:* rwm",  # pts
    "c 10:200 rwm",  # tun
]


def systemd_path(spec: str) -> str:
    """Expand the systemd form `slice:prefix:name` into the cgroup path systemd would use.

    `kubepods-burstable-pod1.slice:crio:abc` -> /kubepods.slice/kubepods-burstable.slice/
    kubepods-burstable-pod1.slice/crio-abc.scope. lxcri places the container at that path
    with cgroupfs, so a host without systemd still gets the hierarchy kubelet expects.
    """
    parts = spec.split(":")
    if len(parts) != 3:
        raise TranslateError(f"cgroupsPath {spec!r}: the systemd form is slice:prefix:name")
    slice_, prefix, name = parts
    slice_ = slice_ or "system.slice"
    if not slice_.endswith(".slice") or "/" in slice_:
        raise TranslateError(f"cgroupsPath {spec!r}: {slice_!r} is not a slice name")
    path = ""
    stem = slice_[: -len(".slice")]
    if stem != "-":
        acc = []
        for piece in stem.split("-"):
            if not piece:
                raise TranslateError(f"cgroupsPath {spec!r}: invalid slice name {slice_!r}")
            acc.append(piece)
            path += "/" + "-".join(acc) + ".slice"
    unit = name if name.endswith((".scope", ".slice")) else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
    if "/" in unit:
        raise TranslateError(f"cgroupsPath {spec!r}: invalid unit name")
    return path + "/" + unit


def cgroup_path(config: dict[str, Any], container_id: str, systemd: bool) -> str:
    """The absolute cgroup path of the container, the same in every hierarchy."""
    linux = oci_spec.linux(config)
    raw = linux.get("cgroupsPath")
    if raw is None or raw == "":
        check_id(container_id)
        return f"/lxcri/{container_id}" if not systemd else systemd_path(f"system.slice:lxcri:{container_id}")
    raw = check_text(raw, "linux.cgroupsPath")  # a line of liblxc's config: no \r, \n, NUL or other control
    if systemd or (":" in raw and not raw.startswith("/")):
        return systemd_path(raw)
    norm = posixpath.normpath("/" + raw.lstrip("/"))
    if ".." in norm.split("/") or norm == "/":
        raise TranslateError(f"config.json: linux.cgroupsPath {raw!r} is not a cgroup below the root")
    return norm


def resources(config: dict[str, Any], ctx: Context) -> Items:
    """linux.resources limits as liblxc items: lxc.cgroup.<v1 file> or lxc.cgroup2.<v2 file>."""
    from lxcri.cgroups.resources import writes
    from lxcri.errors import CgroupError

    res = oci_spec.linux(config).get("resources") or {}
    try:
        items = [(f"lxc.cgroup.{f}" if v == 1 else f"lxc.cgroup2.{f}", val)
                 for _, v, f, val in writes(res, ctx.controllers)]
    except CgroupError as e:
        raise TranslateError(f"config.json: {e}") from e
    # a v1 cpuset cgroup is empty when made below a parent with clone_children=0, and no task
    # can enter it: its parent's cpus and mems where the config gives none (liblxc writes
    # limits before the init enters), first, so that the config's own come after
    given = {key for key, _ in items}
    return [(f"lxc.cgroup.{f}", val) for f, val in ctx.cpuset.items() if f"lxc.cgroup.{f}" not in given] + items


def placement(ctx: Context) -> Items:
    """Where liblxc puts the container and its monitor: the absolute cgroup path from the root.

    liblxc takes lxc.cgroup.dir.* relative to a base cgroup: the monitor's own with
    lxc.cgroup.relative = 1, else (as root) pid 1's, which is seldom the root in a container
    or on a kind node. lxcri-monitor moves itself into the root cgroup of every hierarchy
    before liblxc starts (libexec/src/monitor.c), so with relative = 1 the base is the root,
    whatever cgroup the caller sits in.
    """
    rel = ctx.cgroup_path.lstrip("/")
    return [
        ("lxc.cgroup.relative", "1"),
        ("lxc.cgroup.dir.container", rel),
        # the monitor starts apart; lxcri create moves it beside the container afterwards
        ("lxc.cgroup.dir.monitor", monitor_cgroup(ctx.container_id).lstrip("/")),
        ("lxc.cgroup.dir.monitor.pivot", "lxcri.monitor"),
    ]


def _device_rules(resources: dict[str, Any]) -> list[str]:
    rules: list[tuple[bool, str]] = []
    for i, d in enumerate(resources.get("devices") or []):
        if not isinstance(d, dict) or not isinstance(d.get("allow"), bool):
            raise TranslateError(f"config.json: linux.resources.devices[{i}] needs allow: true|false")
        kind = d.get("type", "a") or "a"
        if kind not in ("a", "b", "c"):
            raise TranslateError(f"config.json: linux.resources.devices[{i}].type must be a, b or c")
        major = d.get("major")
        minor = d.get("minor")
        access = d.get("access", "rwm") or "rwm"
        if not isinstance(access, str) or not access or set(access) - set("rwm"):
            raise TranslateError(f"config.json: linux.resources.devices[{i}].access must be made of r, w, m")
        for v, name in ((major, "major"), (minor, "minor")):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise TranslateError(f"config.json: linux.resources.devices[{i}].{name} must be a number")
        if kind == "a" and major is None and minor is None:
            rules.append((d["allow"], "a"))
        else:
            maj = "*" if major is None else str(major)
            mnr = "*" if minor is None else str(minor)
            rules.append((d["allow"], f"{kind} {maj}:{mnr} {access}"))
    return [("allow " if allow else "deny ") + r for allow, r in rules]


def devices(config: dict[str, Any], ctx: Context) -> Items:
    """The device cgroup: the config's rules, then runc's defaults (which it always grants)."""
    linux = oci_spec.linux(config)
    resources = linux.get("resources") or {}
    if not isinstance(resources, dict):
        raise TranslateError("config.json: linux.resources must be an object")
    prefix = "lxc.cgroup2.devices." if ctx.cgroup_version == 2 else "lxc.cgroup.devices."
    items: Items = []
    rules = _device_rules(resources)
    # always start from deny-all so the container never inherits the host's devices
    items.append((prefix + "deny", "a"))
    for r in rules:
        verb, rule = r.split(" ", 1)
        if rule == "a" and verb == "deny":
            continue
        items.append((prefix + verb, rule))
    for rule in DEFAULT_DEVICES:
        items.append((prefix + "allow", rule))
    return items
