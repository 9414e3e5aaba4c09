"""The operator at scale through kopf itself: 5,000 Nodes served over HTTP on 127.0.0.1.

    python bench/operator_kopf_scale.py [--nodes 5000]

Where bench/operator_scale.py measures the labelling logic in-process, this runs the real
stack — kopf's list+watch and handler dispatch, KubeNodeAPI over the kubernetes client,
HTTP to the fake API server — and measures wall-clock time:
  1. initial convergence: kopf lists N reporting nodes and labels them all,
  2. steady state: a few seconds with nothing changing must bring no writes,
  3. one node's report changes: time until its label flips, and the requests that cost.
Server and operator share this machine's cores, so the times are an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the fake API (tests/fakekube)

import kopf
from kubernetes import client

from fakekube.nodes import FakeNodeAPI
from fakekube.server import FakeApiServer
from lxcri_agent.kube.client import KubeNodeAPI
from lxcri_agent.operator.main import build_registry
from lxcri_agent.operator.reconcile import Reconciler
from lxcri_agent.report.model import Report, report_annotation

PREFIX = "lxcri.linuxcontainers.org"
READY_LABEL = f"{PREFIX}/runtime"
HEALTHY = Report(ready=True, cgroup="v2", seccomp=True, userns=True, liblxc="6.0.4", lxcri="0.1.0")
BROKEN = Report(ready=False, reason="smoke create failed", cgroup="v2")


def wait_for(check: Callable[[], bool], seconds: float) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > seconds:
            raise SystemExit(f"not converged within {seconds:g}s")
        time.sleep(0.01)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--steady-seconds", type=float, default=5.0)
    ns = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    fake = FakeNodeAPI(history=ns.nodes * 4)
    report = HEALTHY.to_json()
    for i in range(ns.nodes):
        fake.add_node(f"node-{i:05d}", labels={"kubernetes.io/hostname": f"node-{i:05d}"},
                      annotations={report_annotation(PREFIX): report})
    results: dict[str, Any] = {"nodes": ns.nodes}
    labelled = {"n": 0}

    with FakeApiServer(fake) as server:
        api = KubeNodeAPI(client.CoreV1Api(client.ApiClient(client.Configuration(host=server.url))))
        rec = Reconciler(api, PREFIX)

        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=server.url, insecure=True)

        registry = build_registry(rec, login=login)
        stop, ready = threading.Event(), threading.Event()
        t0 = time.perf_counter()
        thread = threading.Thread(target=lambda: asyncio.run(kopf.operator(
            registry=registry, standalone=True, clusterwide=True, stop_flag=stop, ready_flag=ready)),
            daemon=True)
        thread.start()

        def all_labelled() -> bool:
            labelled["n"] = fake.requests["patch"]
            return bool(labelled["n"] >= ns.nodes)

        wait_for(all_labelled, 600)
        results["initial_convergence"] = {"seconds": round(time.perf_counter() - t0, 2),
                                          "requests": dict(fake.requests)}

        time.sleep(1.0)  # let the echoes of its own patches pass through
        before = dict(fake.requests)
        time.sleep(ns.steady_seconds)
        results["steady_state"] = {"seconds": ns.steady_seconds,
                                   "writes": fake.writes - before.get("patch", 0) - before.get("event", 0)}

        target = f"node-{ns.nodes // 2:05d}"
        for label, new in (("readiness_lost", BROKEN), ("readiness_back", HEALTHY)):
            before = dict(fake.requests)
            fake.patch_node(target, {"metadata": {"annotations": {report_annotation(PREFIX): new.to_json()}}})
            want = "ready" if new.ready else "not-ready"

            def flipped(w: str = want) -> bool:
                return bool(fake.node(target)["metadata"]["labels"].get(READY_LABEL) == w)

            took = wait_for(flipped, 60)
            time.sleep(0.5)
            delta = {k: v - before.get(k, 0) for k, v in fake.requests.items() if v != before.get(k, 0)}
            delta["patch"] -= 1  # the agent's own report write
            results[f"one_node_{label}"] = {"seconds": round(took, 3), "operator_requests": delta}
        stop.set()
        thread.join(30)

    print(json.dumps(results, indent=2))
    ok = results["steady_state"]["writes"] == 0 and all(
        sum(results[f"one_node_{k}"]["operator_requests"].values()) <= 2
        for k in ("readiness_lost", "readiness_back"))
    print("through kopf: O(1) per change, no writes in steady state:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
