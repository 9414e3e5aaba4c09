"""System containers: an image whose entrypoint is /sbin/init (systemd) boots as the pod's PID 1.

What systemd needs from its container, and what a Kubernetes pod's config.json lacks:
- its own cgroup subtree, writable: a cgroup namespace, so that the hierarchies mounted at
  /sys/fs/cgroup show the container's cgroup as their root (on v1 and hybrid hosts the named
  `name=systemd` hierarchy and cgroup2 at unified too), mounted read-write (CRI-O and
  containerd ask for read-only);
  Mounts the config puts below /sys/fs/cgroup (CRI-O's systemd mode binds the host's whole
  name=systemd hierarchy there) are dropped: they would hand the host's tree to the pod;
- /run and /run/lock as tmpfs (it refuses to boot on a persistent /run); made before any
  mount the config puts below /run (a service account token), so that none is hidden;
- `container=lxc` in its environment, which tells systemd (and systemd-detect-virt) where it is;
- SIGRTMIN+3 to shut down: `lxcri kill` turns the SIGTERM that CRI-O and containerd send to
  stop a container into it (see container/kill.py), so that `kubectl delete` runs systemd's
  own shutdown within the grace period.

Opt-in per container with the annotation ANNOTATION (CRI-O passes a pod's annotations as they
are, containerd those in the runtime's pod_annotations, which the node agent writes).
lxcri's init helper execs the image's /sbin/init as PID 1 and is gone, so nothing of the
runtime stays between systemd and its services.
"""

from __future__ import annotations

import posixpath

from lxcri.errors import TranslateError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

ANNOTATION = "lxcri.linuxcontainers.org/system-container"
SHUTDOWN_SIGNAL = 37  # SIGRTMIN+3 on Linux: systemd's "halt" request

_RUN_TMPFS = (
    {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "nodev", "mode=755", "size=65536k"]},
    {"destination": "/run/lock", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=5120k"]},
)


def wanted(annotations: object) -> bool:
    if not isinstance(annotations, dict):
        return False
    raw = annotations.get(ANNOTATION)
    if raw is None:
        return False
    value = str(raw).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise TranslateError(f"config.json: annotations[{ANNOTATION!r}] must be \"true\" or \"false\", not {raw!r}")


def recorded(annotations: dict[str, str]) -> bool:
    """For later commands: the annotation of a container that create accepted."""
    return str(annotations.get(ANNOTATION, "")).strip().lower() in ("true", "1", "yes", "on")


def _norm(dest: object) -> str | None:
    """A destination as an absolute, normalised path (None for a non-string: refused later)."""
    return posixpath.normpath("/" + dest.lstrip("/")) if isinstance(dest, str) else None


def _below(dest: object, top: str) -> bool:
    d = _norm(dest)
    return d is not None and (d == top or d.startswith(top + "/"))


def apply(config: dict[str, object]) -> None:
    """Rewrite config in place for a system container (see the module docstring)."""
    linux = config.setdefault("linux", {})
    if not isinstance(linux, dict):
        raise TranslateError("config.json: linux must be an object")
    nss = linux.setdefault("namespaces", [])
    if not isinstance(nss, list):
        raise TranslateError("config.json: linux.namespaces must be a list")
    if not any(isinstance(n, dict) and n.get("type") == "cgroup" for n in nss):
        nss.append({"type": "cgroup"})
    mounts = config.setdefault("mounts", [])
    if not isinstance(mounts, list):
        raise TranslateError("config.json: mounts must be a list")
    out: list[Any] = []
    has_cgroup = False
    run_done = False
    for m in mounts:
        if not isinstance(m, dict):
            out.append(m)
            continue
        dest = m.get("destination")
        if _below(dest, "/sys/fs/cgroup") and m.get("type") not in ("cgroup", "cgroup2"):
            # CRI-O's systemd mode binds the host's whole name=systemd hierarchy here (runc has no
            # cgroup namespace); the namespaced cgroup mount below gives systemd its own instead
            continue
        if m.get("type") in ("cgroup", "cgroup2"):
            has_cgroup = True
            m = {**m, "options": [o for o in (m.get("options") or []) if o != "ro"]}
        if _below(dest, "/run") and not run_done:
            out += [dict(t) for t in _RUN_TMPFS]  # before the first mount below /run, never over it
            run_done = True
        if _norm(dest) in ("/run", "/run/lock"):
            continue  # the config's own /run (wherever it comes) gives way to systemd's, never hides a mount
        out.append(m)
    if not run_done:
        out += [dict(t) for t in _RUN_TMPFS]
    if not has_cgroup:
        out.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                    "options": ["nosuid", "noexec", "nodev", "relatime"]})
    config["mounts"] = out
    process = config.get("process")
    if isinstance(process, dict):
        env = process.setdefault("env", [])
        if isinstance(env, list) and not any(isinstance(e, str) and e.startswith("container=") for e in env):
            env.append("container=lxc")
