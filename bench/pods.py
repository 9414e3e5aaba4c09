"""Pod start and deletion latency through the kubelet: runc and lxcri side by side, in one run,
on a real single-node cluster per CRI (containerd, CRI-O) from ../shared/kube.

    flock -o /tmp/lxcri-heavy.lock .venv/bin/python bench/pods.py [--pods 30] [--rounds 1] [--cri containerd crio]

(as root; LXCRI_SHARED=DIR when ../shared is not beside the checkout; the clusters come and go
as for the pod tests: tests/e2e/kube_cluster.py). One sample is one pod:

- start: from just before `kubectl apply` of all N pods (one List) to the watch event that shows
  the pod Running; N pods of one handler at once, as a node gets them from a Deployment.
- delete: from just before `kubectl delete pods --all` to the pod's DELETED watch event (the
  kubelet has stopped and removed its containers and sandbox and confirmed it).

The container is the cluster's pause image (it exits at once on SIGTERM, so deletion measures
the runtime, not a grace period). Each handler first starts and deletes 2 pods that are not
counted; with --rounds > 1 the handlers take turns in alternating order. Prints p50 and p99 per
handler and the ratios lxcri/runc.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from kube_cluster import CRIS, Cluster, Unavailable, cluster_for  # noqa: E402

PAUSE = "localhost/k8s-local/pause:1.0"
HANDLERS = ("runc", "lxcri")


class Watch:
    """`kubectl get pods -w --output-watch-events -o json` in the background: for each pod, when
    (monotonic) it was first seen Running and when its DELETED event came."""

    def __init__(self, kube: Cluster, ns: str) -> None:
        self.running: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.proc = subprocess.Popen([*kube.kubectl_cmd, "-n", ns, "get", "pods", "-w", "--output-watch-events",
                                      "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        dec, buf = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buf += line
            while buf.strip():
                try:
                    event, end = dec.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break  # not complete yet
                buf = buf.lstrip()[end:]
                self._event(event, time.monotonic())

    def _event(self, event: dict[str, Any], now: float) -> None:
        pod = event.get("object", {})
        name = pod.get("metadata", {}).get("name", "")
        if event.get("type") == "DELETED":
            self.deleted.setdefault(name, now)
        elif pod.get("status", {}).get("phase") == "Running":
            self.running.setdefault(name, now)

    def wait(self, seen: dict[str, float], names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in seen for n in names):
            if time.monotonic() > deadline:
                missing = [n for n in names if n not in seen]
                raise RuntimeError(f"{len(missing)} pods not there after {timeout:.0f} s: {missing[:5]}")
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def pod(name: str, handler: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"runtimeClassName": handler, "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 30, "enableServiceLinks": False,
                     "containers": [{"name": "c", "image": PAUSE, "imagePullPolicy": "Never"}]}}


def batch(kube: Cluster, ns: str, watch: Watch, handler: str, n: int, tag: str) -> tuple[list[float], list[float]]:
    """Start n pods of one handler at once, wait for all Running, delete all at once, wait for all
    gone: (start latencies, delete latencies) in seconds."""
    names = [f"{handler}-{tag}-{i}" for i in range(n)]
    t0 = time.monotonic()
    kube.ok("-n", ns, "apply", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod(x, handler) for x in names]}))
    watch.wait(watch.running, names, timeout=300)
    start = [watch.running[x] - t0 for x in names]
    t1 = time.monotonic()
    kube.ok("-n", ns, "delete", "pods", *names, "--wait=false")
    watch.wait(watch.deleted, names, timeout=300)
    return start, [watch.deleted[x] - t1 for x in names]


def pct(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def measure(kube: Cluster, n: int, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    ns = f"bench-pods-{uuid.uuid4().hex[:6]}"
    kube.ok("create", "namespace", ns)
    deadline = time.monotonic() + 60
    while kube.kubectl("-n", ns, "get", "serviceaccount", "default").returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no service account in {ns}")
        time.sleep(0.5)
    watch = Watch(kube, ns)
    out: dict[str, tuple[list[float], list[float]]] = {h: ([], []) for h in HANDLERS}
    try:
        for h in HANDLERS:
            batch(kube, ns, watch, h, 2, "warmup")
        for r in range(rounds):
            for h in HANDLERS if r % 2 == 0 else reversed(HANDLERS):
                start, delete = batch(kube, ns, watch, h, n, f"r{r}")
                out[h][0].extend(start)
                out[h][1].extend(delete)
                print(f"  {kube.cri} {h} round {r}: all {n} Running after {max(start):.2f} s, "
                      f"all deleted after {max(delete):.2f} s", file=sys.stderr)
    finally:
        watch.close()
        kube.kubectl("delete", "namespace", ns, "--wait=false")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=30, help="pods per handler and round (default 30)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds; handlers alternate who goes first")
    ap.add_argument("--cri", nargs="+", choices=CRIS, default=list(CRIS))
    a = ap.parse_args()
    results: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for cri in a.cri:
        try:
            with cluster_for(cri) as kube:
                results[cri] = measure(kube, a.pods, a.rounds)
        except Unavailable as e:
            print(f"{cri}: skipped: {e}", file=sys.stderr)
    print(f"\npod start (create -> Running) and deletion (delete -> gone), {a.pods} pods at once x {a.rounds} "
          "round(s), seconds")
    print(f"{'CRI':<11}{'handler':<8}{'start p50':>10}{'start p99':>10}{'delete p50':>11}{'delete p99':>11}")
    for cri, res in results.items():
        for h in HANDLERS:
            s, d = res[h]
            print(f"{cri:<11}{h:<8}{pct(s, 50):>10.2f}{pct(s, 99):>10.2f}{pct(d, 50):>11.2f}{pct(d, 99):>11.2f}")
        (rs, rd), (ls, ld) = res["runc"], res["lxcri"]
        print(f"{cri:<11}{'ratio':<8}{pct(ls, 50) / pct(rs, 50):>9.2f}x{pct(ls, 99) / pct(rs, 99):>9.2f}x"
              f"{pct(ld, 50) / pct(rd, 50):>10.2f}x{pct(ld, 99) / pct(rd, 99):>10.2f}x   (lxcri / runc)")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
