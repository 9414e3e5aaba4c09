"""The `lxcri-operator` entry point as the Deployment runs it: a process configured only by
environment variables, logging in through the kubernetes client's kubeconfig handling, logging
JSON lines (kopf's own included), and stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from fakekube.server import FakeApiServer
from lxcri_agent.report.model import Report, report_annotation

AGENT = Path(__file__).resolve().parents[2] / "agent"


def free_port() -> str:
    """A free port for the process's liveness endpoint (kopf reads port 0 as 80)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def kubeconfig(url: str, path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))
    return path


def test_operator_process_labels_and_stops_on_sigterm(cluster: Any, tmp_path: Path) -> None:
    n = cluster.add_node("m")
    env = {**os.environ, "LXCRI_LABEL_PREFIX": cluster.prefix, "LXCRI_PEERING_NAME": "",
           "LXCRI_HEALTH_PORT": free_port(), "LXCRI_LOG_LEVEL": "info",
           "PYTHONPATH": os.pathsep.join([str(AGENT), os.environ.get("PYTHONPATH", "")])}
    server = FakeApiServer(cluster.fake) if cluster.fake is not None else None
    if server is not None:
        server.__enter__()
        env["KUBECONFIG"] = str(kubeconfig(server.url, tmp_path / "kubeconfig"))
    proc = subprocess.Popen([sys.executable, "-m", "lxcri_agent.operator.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        cluster.set_annotation(n, report_annotation(cluster.prefix), Report(ready=True).to_json())
        deadline = time.monotonic() + 30
        while cluster.labels(n).get(f"{cluster.prefix}/runtime") != "ready":
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the operator process did not label the node"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        # one format for the whole process: its own lines and kopf's, JSON (not a terminal)
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert lines and all({"event", "level", "timestamp"} <= set(x) for x in lines), out
        assert any(str(x.get("logger", "")).startswith("kopf") for x in lines), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server is not None:
            server.__exit__(None, None, None)
