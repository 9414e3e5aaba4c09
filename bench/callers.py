"""Lifecycle time through the real callers: lxcri vs runc, same machine, same run.

    .venv/bin/python bench/callers.py [--runs N]        # as root; prints the table below

One sample is the wall time of a whole short container, as a user starts it:

    ctr run --rm --runc-binary RUNTIME IMAGE ID true      (private containerd, runc shim)
    podman --runtime NAME run --rm IMAGE true             (private podman storage, conmon)

The runtimes take turns sample by sample so that machine noise hits both alike; one warm-up
round is not counted. Prints the median and min of N samples in ms and the ratio lxcri/runc.
The set-up (busybox image, podman storage, containerd) is the e2e tests' (tests/e2e/callers.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from callers import IMAGE, LXCRI, Containerd, Podman, busybox_material, remove_tree, unique  # noqa: E402

RUNC = shutil.which("runc") or "/usr/bin/runc"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120,
                       check=False)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return dt * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=10, help="samples per caller and runtime (default 10)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/callers.py: run as root (real containers)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="lxcri-bench-callers-"))
    podman = Podman(work / "podman")
    containerd = Containerd(work / "containerd")
    try:
        tarball, archive = busybox_material(work / "image", IMAGE)
        r = podman("import", str(tarball), IMAGE)
        if r.returncode:
            raise RuntimeError(f"podman import: {r.stderr}")
        containerd.start()
        r = containerd.ctr("image", "import", str(archive))
        if r.returncode:
            raise RuntimeError(f"ctr image import: {r.stderr}")

        cases = {
            ("ctr run --rm", "lxcri"): lambda: timed(containerd.ctr_cmd(
                "run", "--rm", "--runc-binary", str(LXCRI), IMAGE, unique("bench"), "true")),
            ("ctr run --rm", "runc"): lambda: timed(containerd.ctr_cmd(
                "run", "--rm", "--runc-binary", RUNC, IMAGE, unique("bench"), "true")),
            ("podman run --rm", "lxcri"): lambda: timed(podman.cmd("run", "--rm", IMAGE, "true", runtime="lxcri"),
                                                        podman.env),
            ("podman run --rm", "runc"): lambda: timed(podman.cmd("run", "--rm", IMAGE, "true", runtime="runc"),
                                                       podman.env),
        }
        samples: dict[tuple[str, str], list[float]] = {k: [] for k in cases}
        for i in range(args.runs + 1):
            for key, case in cases.items():
                dt = case()
                if i:  # round 0 warms caches up
                    samples[key].append(dt)
        print(f"lifecycle of a `true` container, {args.runs} runs each, ms (median / min)")
        print(f"{'caller':<18}{'lxcri':>18}{'runc':>18}{'lxcri/runc':>12}")
        for caller in ("ctr run --rm", "podman run --rm"):
            lx, rc = samples[(caller, "lxcri")], samples[(caller, "runc")]
            ratio = statistics.median(lx) / statistics.median(rc)
            print(f"{caller:<18}{statistics.median(lx):>10.1f} / {min(lx):>5.1f}"
                  f"{statistics.median(rc):>10.1f} / {min(rc):>5.1f}{ratio:>12.2f}")
        return 0
    finally:
        containerd.stop()
        podman.close()
        remove_tree(work)


if __name__ == "__main__":
    sys.exit(main())
