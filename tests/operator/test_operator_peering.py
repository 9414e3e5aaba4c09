"""Two operator replicas with kopf peering: only the higher-priority one labels, and the
other takes over when it goes away. Runs the real entry point in two processes against the
fake API server (which serves ClusterKopfPeering objects like the chart's CRD does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_operator_main import AGENT, free_port, kubeconfig

from fakekube.server import FakeApiServer
from lxcri_agent.report.model import Report, report_annotation


def wait_for(check: Callable[[], bool], what: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="fake-only: needs the fake's peering store "
                    "(on a real cluster the chart's CRD and two replicas show the same)")
def test_only_the_highest_priority_replica_works_and_the_other_takes_over(cluster: Any,
                                                                          tmp_path: Path) -> None:
    n = cluster.add_node("p")
    key = report_annotation(cluster.prefix)
    label = f"{cluster.prefix}/runtime"
    procs: dict[str, subprocess.Popen[str]] = {}
    with FakeApiServer(cluster.fake) as server:
        base = {**os.environ, "KUBECONFIG": str(kubeconfig(server.url, tmp_path / "kubeconfig")),
                "LXCRI_LABEL_PREFIX": cluster.prefix, "LXCRI_PEERING_NAME": "lxcri",
                "PYTHONPATH": os.pathsep.join([str(AGENT), os.environ.get("PYTHONPATH", "")])}

        def start(name: str, priority: int) -> None:
            env = {**base, "POD_NAME": name, "LXCRI_PEERING_PRIORITY": str(priority),
                   "LXCRI_HEALTH_PORT": free_port()}
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - the process writes it
            procs[name] = subprocess.Popen([sys.executable, "-m", "lxcri_agent.operator.main"], env=env,
                                           stdout=log, stderr=subprocess.STDOUT, text=True)

        def peers() -> int:
            return len((server.peerings.objects.get("lxcri") or {}).get("status") or {})

        def last_event_by() -> str:
            return str(cluster.fake.events[-1]["reportingInstance"]) if cluster.fake.events else ""

        try:
            start("op-low", 1)
            cluster.set_annotation(n, key, Report(ready=True).to_json())
            wait_for(lambda: cluster.labels(n).get(label) == "ready", "op-low to label")
            # the Event is a request of its own after the label patch: wait for it, do not race it
            wait_for(lambda: last_event_by() == "op-low", "op-low's readiness Event")

            start("op-high", 2)
            wait_for(lambda: peers() == 2, "both replicas in the peering object")
            wait_for(lambda: "Pausing operations" in (tmp_path / "op-low.log").read_text(),
                     "op-low to pause in favour of op-high")
            patches = cluster.fake.requests["patch"]
            cluster.set_annotation(n, key, Report(ready=False, reason="x").to_json())
            wait_for(lambda: cluster.labels(n).get(label) == "not-ready", "op-high to label")
            time.sleep(1)
            # the test's own report write, and one operator patch: not one per replica
            assert cluster.fake.requests["patch"] - patches == 2, "both replicas worked"
            wait_for(lambda: last_event_by() == "op-high", "op-high's readiness Event")

            procs["op-high"].send_signal(signal.SIGTERM)
            procs["op-high"].communicate(timeout=30)
            wait_for(lambda: peers() == 1, "op-high to leave the peering object")
            cluster.set_annotation(n, key, Report(ready=True).to_json())
            wait_for(lambda: cluster.labels(n).get(label) == "ready", "op-low to resume")
            wait_for(lambda: last_event_by() == "op-low", "op-low's readiness Event after taking over")
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.communicate(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
