"""Scale benchmark for the node-labels operator, against the in-process fake API.

    python bench/operator_scale.py [--nodes 5000]

It measures what the operator costs the API server at cluster scale:
  1. initial convergence: every node has a fresh report (one patch each, unavoidable),
  2. a watch restart: kopf relists and replays every node — must cost no writes,
  3. steady state: agents re-probe and find nothing new — must cost no writes at all
     (each agent re-reads its Node once every 12 rounds, i.e. 1 GET per node per hour),
  4. one node changes (readiness lost, then a feature lost): O(1) requests, and how long
     the operator's side takes (handler latency; the real latency adds one watch hop).
The fake counts requests by verb; numbers are printed as a table and as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the fake API (tests/fakekube)

from fakekube.nodes import FakeNodeAPI
from lxcri_agent.kube.api import JSON, WatchEvent
from lxcri_agent.operator.reconcile import Reconciler
from lxcri_agent.report.model import Report
from lxcri_agent.report.publish import Publisher

PREFIX = "lxcri.linuxcontainers.org"
HEALTHY = Report(ready=True, cgroup="v2", seccomp=True, userns=True, apparmor=True, selinux=False,
                 liblxc="6.0.4", lxcri="0.1.0")


class Counted:
    """Counts one client's requests by verb, so the agents' and the operator's costs show apart."""

    def __init__(self, api: FakeNodeAPI) -> None:
        self.api = api
        self.requests: Counter[str] = Counter()

    def get_node(self, name: str) -> JSON:
        self.requests["get"] += 1
        return self.api.get_node(name)

    def list_nodes(self) -> tuple[list[JSON], str]:
        self.requests["list"] += 1
        return self.api.list_nodes()

    def watch_nodes(self, resource_version: str, timeout_seconds: int = 60) -> Iterator[WatchEvent]:
        return self.api.watch_nodes(resource_version, timeout_seconds)  # one long-lived stream

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> JSON:
        self.requests["patch"] += 1
        return self.api.patch_node(name, patch)

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self.requests["event"] += 1
        self.api.create_event(namespace, event)


def deliver(api: Counted, rec: Reconciler, rv: str) -> str:
    """Deliver the watch events since ``rv`` to the operator, as kopf would."""
    for ev in api.watch_nodes(rv):
        rv = ev.node["metadata"]["resourceVersion"]
        rec.on_event(ev.type, ev.node)
    return rv


def snapshot(op: Counted, agents: Counted) -> dict[str, int]:
    counts = {f"operator.{k}": v for k, v in op.requests.items()}
    counts.update({f"agent.{k}": v for k, v in agents.requests.items()})
    return counts


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(after) | set(before))
            if after.get(k, 0) != before.get(k, 0)}


def writes(d: dict[str, int]) -> int:
    return sum(v for k, v in d.items() if k.endswith((".patch", ".event")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ns = ap.parse_args()

    api = FakeNodeAPI(history=ns.nodes * 4)
    names = [f"node-{i:05d}" for i in range(ns.nodes)]
    for name in names:
        api.add_node(name, labels={"kubernetes.io/hostname": name, "node-role.kubernetes.io/worker": ""})
    op, agents = Counted(api), Counted(api)
    rec = Reconciler(op, PREFIX)
    publishers = {name: Publisher(agents, name, PREFIX) for name in names}
    results: dict[str, Any] = {"nodes": ns.nodes}

    # agents start: each publishes its report once
    items, rv = op.list_nodes()
    for item in items:
        rec.on_event(None, item)  # initial listing: nodes without reports cost nothing
    t0 = time.perf_counter()
    before = snapshot(op, agents)
    for name in names:
        publishers[name].publish(HEALTHY)
    rv = deliver(op, rec, rv)
    rv = deliver(op, rec, rv)  # the operator's own patches come back as events
    results["initial"] = {"requests": delta(before, snapshot(op, agents)),
                          "seconds": time.perf_counter() - t0}

    # a watch restart (410 Gone): relist and replay every node
    before = snapshot(op, agents)
    t0 = time.perf_counter()
    items, rv = op.list_nodes()
    for item in items:
        rec.on_event(None, item)
    results["relist_replay"] = {"requests": delta(before, snapshot(op, agents)),
                                "seconds": time.perf_counter() - t0}

    # steady state: every agent re-probes, finds the same, and the operator sees nothing new
    before = snapshot(op, agents)
    for _ in range(3):
        for name in names:
            publishers[name].publish(HEALTHY)
        rv = deliver(op, rec, rv)
    results["steady_state_3_rounds"] = {"requests": delta(before, snapshot(op, agents))}

    # one node changes: readiness lost, then a feature changes, then readiness back
    changes = {
        "readiness_lost": Report(ready=False, reason="smoke create failed", cgroup="v2", seccomp=True,
                                 userns=True, apparmor=True, selinux=False, liblxc="6.0.4", lxcri="0.1.0"),
        "feature_changed": Report(ready=False, reason="smoke create failed", cgroup="v2", seccomp=True),
        "readiness_back": HEALTHY,
    }
    target = names[ns.nodes // 2]
    for label, report in changes.items():
        before = snapshot(op, agents)
        t0 = time.perf_counter()
        publishers[target].publish(report)  # the agent's one write
        rv = deliver(op, rec, rv)  # operator: one patch (+ one event on readiness change)
        converged = time.perf_counter() - t0
        rv = deliver(op, rec, rv)  # its own patch echoes back: no further write
        assert api.node(target)["metadata"]["labels"][f"{PREFIX}/runtime"] == ("ready" if report.ready
                                                                                else "not-ready")
        results[f"one_node_{label}"] = {"requests": delta(before, snapshot(op, agents)), "seconds": converged}

    print(f"{ns.nodes} nodes; watch streams are long-lived and not counted as requests")
    print(f"{'phase':<28}{'requests (by client.verb)':<64}{'seconds':>10}")
    for phase, r in results.items():
        if isinstance(r, dict):
            print(f"{phase:<28}{json.dumps(r['requests']):<64}{r.get('seconds', 0):>10.4f}")
    print(json.dumps(results, indent=None, default=float))
    ok = (writes(results["relist_replay"]["requests"]) == 0
          and writes(results["steady_state_3_rounds"]["requests"]) == 0
          and all(sum(results[f"one_node_{k}"]["requests"].values()) <= 3 for k in changes))
    print("O(1) per change, no writes in steady state:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
