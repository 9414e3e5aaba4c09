"""Probe lxcri on this node: is the tree there, what does ``lxcri features`` say, does a
container actually run through it?

The runtime is driven through its runc-compatible command line, exactly as CRI-O and
containerd drive it, so a "ready" report means the path the kubelet will use works. The
command runner is injectable so that the logic is tested without the runtime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..lxcfs import lxcfs_answers
from ..settings import AgentSettings
from .model import Report


@dataclasses.dataclass(frozen=True)
class Result:
    """What one runtime command did."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], float], Result]


def run_command(argv: Sequence[str], timeout: float) -> Result:
    """Run a command with a clean environment, as CRI-O does (it scrubs the environment).

    Output goes to temporary files, not pipes: the container ``create`` starts inherits the
    runtime's stdout and stderr and keeps them open, so reading a pipe to its end would wait
    for the container to exit. Standard input is /dev/null for the same reason.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=timeout, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, check=False)
        except subprocess.TimeoutExpired:
            return Result(124, "", f"timed out after {timeout:g}s")
        except OSError as exc:
            return Result(127, "", str(exc))
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
        return Result(done.returncode, *texts)


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Where the runtime is and how to try it.

    ``runtime`` is the command that runs lxcri as the node's CRI runtime would, e.g.
    ``("/host/opt/lxcri/bin/lxcri",)``; ``smoke_binary`` is a static executable copied into
    a throw-away rootfs at ``smoke_args[0]`` and run as the smoke container (``None`` skips
    the smoke test). The container must write ``SMOKE_OK`` to ``/out/result``, a directory
    bind-mounted from the bundle: proof that the process really ran, since ``state`` does
    not tell a clean exit from a failed exec.
    """

    runtime: tuple[str, ...] = ("/opt/lxcri/bin/lxcri",)
    installed: str | None = None  # the file whose presence means "installed"; default runtime[-1]
    root: str = "/run/lxcri-probe"
    cgroup_fs: str = "/sys/fs/cgroup"
    # the host's mounts (the DaemonSet shares the host PID namespace): a container's own
    # /sys/fs/cgroup may not show the host's layout, e.g. hide the cgroup2 mount of a hybrid host
    mountinfo: str = "/proc/1/mountinfo"
    userns_sysctl: str = "/proc/sys/user/max_user_namespaces"
    smoke_binary: str | None = "/bin/busybox"
    smoke_args: tuple[str, ...] = ("/bin/busybox", "sh", "-c", "echo lxcri-probe-ok > /out/result")
    timeout: float = 30.0
    workdir: str | None = None
    lxcfs: str | None = None  # where the node's lxcfs is seen from here (None: not asked)
    lxcfs_host_path: str | None = None  # the same on the node (looked for through lxcfs's own root)


    @classmethod
    def from_settings(cls, s: AgentSettings) -> ProbeConfig:
        """The configuration the agent's settings describe (the DaemonSet's environment: see the chart).

        The node's paths are seen under the host root (``/host``): the runtime tree at
        ``<host root><install_dir>/bin/lxcri``, its state under the runtime root. Smoke off
        (``LXCRI_SMOKE_TEST=false``) skips the smoke container; ``LXCRI_SMOKE_BINARY`` names
        the static executable it runs (``/bin/busybox`` in the image).
        """
        host = str(s.host_root)
        lxcfs = s.lxcfs_path
        return cls(
            runtime=(os.path.join(host, s.install_dir.lstrip("/"), "bin", "lxcri"),),
            root=os.path.join(host, s.runtime_root.lstrip("/"), "probe"),
            smoke_binary=None if s.smoke == "off" else s.probe_smoke_binary,
            lxcfs=os.path.join(host, lxcfs.lstrip("/")) if lxcfs else None,
            lxcfs_host_path=lxcfs or None,
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ProbeConfig:
        """:meth:`from_settings` of the settings ``env`` (default: this process's environment) describes."""
        return cls.from_settings(AgentSettings.from_environment(env))


def cgroup_layout_from_mountinfo(text: str) -> str | None:
    """The host's cgroup layout from its mount table (``/proc/1/mountinfo``)."""
    v1 = False
    v2_at: set[str] = set()
    for line in text.splitlines():
        fields, sep, fs = line.partition(" - ")
        parts = fields.split()
        if not sep or len(parts) < 5:
            continue
        fstype = fs.split(" ", 1)[0]
        if fstype == "cgroup2":
            v2_at.add(parts[4])
        elif fstype == "cgroup":
            v1 = True
    if "/sys/fs/cgroup" in v2_at:
        return "v2"
    if v1:
        return "hybrid" if v2_at else "v1"
    return None


def cgroup_layout(cgroup_fs: str) -> str | None:
    """v2 (unified), hybrid (v1 controllers plus cgroup2 at ``unified``) or v1, from what this
    process sees at ``cgroup_fs``: the fallback when the host's mount table is not readable."""
    root = Path(cgroup_fs)
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified" / "cgroup.controllers").exists():
        return "hybrid"
    if any((root / c).is_dir() for c in ("memory", "cpu", "pids", "cpu,cpuacct")):
        return "v1"
    return None


def _get(doc: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)  # type: ignore[assignment]
    return doc


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_VERSION = re.compile(r"\d+\.\d+(\.\d+)?([-+~.][0-9A-Za-z.+~-]*)?")


def _version_in(text: str) -> str | None:
    match = _VERSION.search(text)
    return match.group(0) if match else None


def liblxc_version(features: Mapping[str, Any]) -> str | None:
    """The liblxc version from the features annotations (an ``*lxc.version`` key)."""
    notes = features.get("annotations") or {}
    if not isinstance(notes, Mapping):
        return None
    for key in sorted(notes):
        if key.endswith(("lxc.version", "liblxc.version")) and "lxcri" not in key:
            return str(notes[key])
    return None


def read_features(doc: Mapping[str, Any], report: dict[str, Any]) -> None:
    """Fill report fields from the OCI features document ``lxcri features`` prints."""
    linux = doc.get("linux") or {}
    namespaces = _get(linux, "namespaces")
    if isinstance(namespaces, list):
        report["userns"] = "user" in namespaces
    report["seccomp"] = _flag(_get(linux, "seccomp", "enabled"))
    report["apparmor"] = _flag(_get(linux, "apparmor", "enabled"))
    report["selinux"] = _flag(_get(linux, "selinux", "enabled"))
    report["liblxc"] = liblxc_version(doc)
    report["idmap_mounts"] = _flag(_get(linux, "mountExtensions", "idmap", "enabled"))
    notes = doc.get("annotations") or {}
    if isinstance(notes, Mapping) and isinstance(namespaces, list):
        report["system_containers"] = (notes.get("org.linuxcontainers.lxcri.system-containers") == "true"
                                       and "cgroup" in namespaces)


SMOKE_OK = "lxcri-probe-ok"


def smoke_bundle(bundle: Path, binary: str, args: Sequence[str]) -> None:
    """A minimal OCI bundle: a read-only rootfs holding one static binary, run as ``args``,
    with the bundle's ``out`` directory bind-mounted writable at ``/out``."""
    rootfs = bundle / "rootfs"
    target = rootfs / args[0].lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, target)
    for d in ("proc", "dev", "sys", "tmp", "out"):
        (rootfs / d).mkdir(exist_ok=True)
    (bundle / "out").mkdir()
    config = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": list(args),
                    "env": ["PATH=/"], "cwd": "/", "noNewPrivileges": True,
                    "capabilities": {"bounding": [], "effective": [], "permitted": []}},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "lxcri-probe",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "mode=755", "size=64k"]},
                   {"destination": "/out", "type": "bind", "source": str(bundle / "out"),
                    "options": ["rbind", "rw", "nosuid", "nodev"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
                  "resources": {"pids": {"limit": 16}}},
    }
    (bundle / "config.json").write_text(json.dumps(config))


def smoke_test(cfg: ProbeConfig, run: Runner, container_id: str) -> str:
    """Run one container to completion through the runtime; returns "" or what failed."""
    assert cfg.smoke_binary is not None
    rt = [*cfg.runtime, "--root", cfg.root]
    with tempfile.TemporaryDirectory(prefix="lxcri-probe-", dir=cfg.workdir) as tmp:
        bundle = Path(tmp)
        try:
            smoke_bundle(bundle, cfg.smoke_binary, cfg.smoke_args)
        except OSError as exc:
            return f"cannot build smoke bundle: {exc}"
        try:
            for step in (["create", "--bundle", str(bundle), container_id], ["start", container_id]):
                res = run([*rt, *step], cfg.timeout)
                if res.returncode != 0:
                    return f"smoke {step[0]} failed: {_last_line(res.stderr)}"
            deadline = time.monotonic() + cfg.timeout
            while True:
                res = run([*rt, "state", container_id], cfg.timeout)
                status = json.loads(res.stdout).get("status") if res.returncode == 0 else None
                if status == "stopped":
                    result = bundle / "out" / "result"
                    said = result.read_text().strip() if result.exists() else ""
                    return "" if said == SMOKE_OK else "smoke container stopped without running its process"
                if res.returncode != 0:
                    return f"smoke state failed: {_last_line(res.stderr)}"
                if time.monotonic() > deadline:
                    return f"smoke container still {status} after {cfg.timeout:g}s"
                time.sleep(0.1)
        except ValueError as exc:
            return f"smoke state printed no JSON: {exc}"
        finally:
            run([*rt, "delete", "--force", container_id], cfg.timeout)


def _note_smoke(seconds: float, ok: bool) -> None:
    """The last smoke container's duration and result, for /metrics (the install's or this one's)."""
    try:
        from ..metrics import note_smoke
    except ImportError:  # prometheus_client missing: the report does not need it
        return
    note_smoke(seconds, ok)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error message"


def probe(cfg: ProbeConfig, run: Runner = run_command) -> Report:
    """Probe the node. Never raises: whatever fails becomes ``ready=False`` with a reason."""
    layout = None
    with contextlib.suppress(OSError):
        layout = cgroup_layout_from_mountinfo(Path(cfg.mountinfo).read_text())
    found: dict[str, Any] = {"cgroup": layout or cgroup_layout(cfg.cgroup_fs)}
    binary = cfg.installed or cfg.runtime[-1]
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return Report(ready=False, reason=f"runtime not installed at {binary}", **found)

    res = run([*cfg.runtime, "--version"], cfg.timeout)
    version_text = res.stdout if res.returncode == 0 else ""
    lines = version_text.splitlines()
    found["lxcri"] = _version_in(lines[0]) if lines else None
    res = run([*cfg.runtime, "features"], cfg.timeout)
    if res.returncode != 0:
        return Report(ready=False, reason=f"lxcri features failed: {_last_line(res.stderr)}", **found)
    try:
        features = json.loads(res.stdout)
        if not isinstance(features, dict) or "ociVersionMax" not in features:
            raise ValueError("no ociVersionMax")
    except ValueError as exc:
        return Report(ready=False, reason=f"lxcri features: not an OCI features document ({exc})", **found)
    read_features(features, found)
    if not found.get("liblxc"):  # else from a "liblxc: 5.0.2"-style line of --version
        for line in lines[1:]:
            if "lxc" in line.lower() and "lxcri" not in line.lower():
                found["liblxc"] = _version_in(line)
                break
    if found.get("userns") and os.path.exists(cfg.userns_sysctl):
        with contextlib.suppress(OSError, ValueError):
            found["userns"] = int(Path(cfg.userns_sysctl).read_text().strip() or 0) > 0

    if cfg.lxcfs is not None:
        found["lxcfs"] = lxcfs_answers(Path(cfg.lxcfs), cfg.lxcfs_host_path)
    if cfg.smoke_binary is not None:
        started = time.monotonic()
        failure = smoke_test(cfg, run, f"lxcri-probe-{os.getpid()}-{time.monotonic_ns()}")
        _note_smoke(time.monotonic() - started, not failure)
        if failure:
            return Report(ready=False, reason=failure, **found)
    return Report(ready=True, **found)
