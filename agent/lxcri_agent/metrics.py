"""``/metrics`` for Prometheus: what an operator needs to watch lxcri on a node.

Two kinds of figures. Events the agent itself sees (an install, a smoke container, a CRI
restart) are recorded as they happen on module-level instruments. Facts about the node (the
installed tree, lxcri's containers by status, the warm server, lxcfs) are read at scrape time
by a collector, so a scrape never shows something stale. Runtime calls are counted from the
call log that each `lxcri` call appends one line to (lxcri/calllog.py): the agent creates
that file at the runtime's call_log path and drains it on every scrape, so the runtime's hot
path pays one short append and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CALL_LOG = "/run/lxcri/calls.log"  # the runtime's default call_log setting
ROTATE_BYTES = 1 << 20  # past this the agent starts a new call log

REGISTRY = CollectorRegistry(auto_describe=True)

INSTALLED = Gauge("lxcri_agent_installed", "1 when the runtime is installed and registered with the CRI, "
                  "nothing owed", registry=REGISTRY)
SMOKE_SECONDS = Gauge("lxcri_agent_smoke_duration_seconds", "Duration of the last smoke container (create to delete)",
                      registry=REGISTRY)
SMOKE_OK = Gauge("lxcri_agent_smoke_success", "1 when the last smoke container ran its process", registry=REGISTRY)
CRI_RESTARTS = Counter("lxcri_agent_cri_restarts", "CRI runtime restarts or reloads the agent did",
                       ["service", "action"], registry=REGISTRY)
CALLS = Histogram("lxcri_runtime_call_duration_seconds", "lxcri calls on this node by command and result "
                  "(from the runtime's call log)", ["command", "result"], registry=REGISTRY,
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

# commands worth a label of their own; anything else (a garbled line) is not counted
COMMANDS = frozenset({"create", "start", "state", "kill", "delete", "exec", "pause", "resume", "ps", "list",
                      "run", "update", "events", "features", "spec", "checkpoint", "restore", "hook"})


def note_smoke(seconds: float, ok: bool) -> None:
    SMOKE_SECONDS.set(seconds)
    SMOKE_OK.set(1 if ok else 0)


def note_cri_restart(service: str, action: str) -> None:
    CRI_RESTARTS.labels(service=service, action=action).inc()


def note_installed(ok: bool) -> None:
    INSTALLED.set(1 if ok else 0)


class CallLog:
    """Drains the runtime's call log into CALLS; keeps its offset between scrapes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lock = threading.Lock()

    def ensure(self) -> None:
        """Create the (empty) log, root-only, so that lxcri starts appending to it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)

    def drain(self) -> int:
        """Count every complete line written since the last call; returns how many."""
        with self.lock:
            try:
                with open(self.path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < self.offset:
                        self.offset = 0  # replaced under us
                    f.seek(self.offset)
                    data = f.read()
            except FileNotFoundError:
                self.offset = 0
                return 0
            end = data.rfind(b"\n") + 1  # a line being written is left for the next scrape
            self.offset += end
            n = 0
            for line in data[:end].splitlines():
                parts = line.split()
                if len(parts) != 3 or not parts[1].lstrip(b"-").isdigit() or not parts[2].isdigit():
                    continue
                command = parts[0].decode(errors="replace")
                if command not in COMMANDS:
                    continue
                result = "ok" if parts[1] == b"0" else "error"
                CALLS.labels(command=command, result=result).observe(int(parts[2]) / 1e6)
                n += 1
            if self.offset >= ROTATE_BYTES:
                self._rotate()
            return n

    def _rotate(self) -> None:
        """Start a new log: lines appended between our read and the rename are read from the
        old file before it goes (a call that opened the old file just before is the only loss)."""
        old = self.path.with_name(self.path.name + ".old")
        try:
            os.replace(self.path, old)
            self.ensure()
            with open(old, "rb") as f:
                f.seek(self.offset)
                rest = f.read()
            os.unlink(old)
        except OSError:
            return
        self.offset = 0
        for line in rest.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].decode(errors="replace") in COMMANDS and parts[2].isdigit():
                CALLS.labels(command=parts[0].decode(), result="ok" if parts[1] == b"0" else "error").observe(
                    int(parts[2]) / 1e6)


def _proc_rss_bytes(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def warm_servers(proc: str = "/proc") -> list[int]:
    """RSS of each lxcri warm server process visible here (the agent runs with hostPID)."""
    out = []
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--warm-server" in argv and any(b"lxcri" in a for a in argv[:3]):
            out.append(_proc_rss_bytes(pid))
    return out


def lxcfs_up(mountpoint: Path, host_path: str | None = None) -> bool:
    """lxcfs is mounted there and answers: the node report's own check."""
    from .lxcfs import lxcfs_answers

    return lxcfs_answers(mountpoint, host_path)


class NodeCollector(Collector):
    """Facts read at scrape time."""

    def __init__(self, list_containers: Callable[[], Iterable[dict[str, object]]],
                 version: Callable[[], str | None], lxcfs_path: Path | None,
                 lxcfs_host_path: str | None = None) -> None:
        self.list_containers = list_containers
        self.version = version
        self.lxcfs_path = lxcfs_path
        self.lxcfs_host_path = lxcfs_host_path

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("lxcri_agent_tree_info", "The runtime tree installed on this node", labels=["version"])
        v = self.version()
        if v:
            info.add_metric([v], 1)
        yield info
        by_status: dict[str, int] = {s: 0 for s in ("creating", "created", "running", "paused", "stopped")}
        listed = GaugeMetricFamily("lxcri_containers", "lxcri containers on this node by status", labels=["status"])
        try:
            for c in self.list_containers():
                st = str(c.get("status", "unknown"))
                by_status[st] = by_status.get(st, 0) + 1
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        for st, n in sorted(by_status.items()):
            listed.add_metric([st], n)
        yield listed
        servers = warm_servers()
        yield GaugeMetricFamily("lxcri_warm_server_up", "1 when an lxcri warm server runs on the node",
                                value=1 if servers else 0)
        yield GaugeMetricFamily("lxcri_warm_server_memory_bytes", "Resident memory of the lxcri warm servers",
                                value=sum(servers))
        if self.lxcfs_path is not None:
            yield GaugeMetricFamily("lxcri_lxcfs_up", "1 when lxcfs is mounted at the runtime's lxcfs_path and "
                                    "answers", value=1 if lxcfs_up(self.lxcfs_path, self.lxcfs_host_path) else 0)


def runtime_lister(exe: Path, roots: list[str]) -> Callable[[], list[dict[str, object]]]:
    """`lxcri --root R list --format json` over every runtime root that exists."""

    def listed() -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        if not exe.exists():
            return out
        for root in roots:
            if not os.path.isdir(root):
                continue
            r = subprocess.run([str(exe), "--root", root, "list", "--format", "json"], capture_output=True,
                               text=True, timeout=10, env={"LXCRI_CALL_LOG": "", "LXCRI_WARM_SERVER": "0"})
            if r.returncode == 0 and r.stdout.strip():
                out += [c for c in json.loads(r.stdout) if isinstance(c, dict)]
        return out

    return listed


class Metrics:
    """What the health server's /metrics serves."""

    def __init__(self, calls: CallLog | None, node: NodeCollector | None) -> None:
        self.calls = calls
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Forward(REGISTRY))
        if node is not None:
            self.registry.register(node)

    def render(self) -> bytes:
        if self.calls is not None:
            self.calls.drain()
        return generate_latest(self.registry)


class _Forward(Collector):
    def __init__(self, reg: CollectorRegistry) -> None:
        self.reg = reg

    def collect(self) -> Iterator[Metric]:
        yield from self.reg.collect()
