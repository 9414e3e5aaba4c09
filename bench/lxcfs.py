"""What lxcfs views cost a container: create latency and memory, with and without, in one run.

    python bench/lxcfs.py [--rounds N] [--containers M]

A private lxcfs (Debian's, --enable-cfs) is mounted for the run and lxcri pointed at it.
Per round, in turns: `lxcri create` + `delete --force` of a busybox `sleep` container with
the annotation lxcri.linuxcontainers.org/lxcfs=true, the same without it, and runc's create
of the same bundle as the reference. Then M containers with the views are started and each
reads its /proc files once: the growth of lxcfs's RSS per container is what the node pays.
Prints medians in ms, ratios, and KiB per container.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from lifecycle import LXCRI, bundle, reap  # noqa: E402

ANNOTATION = "lxcri.linuxcontainers.org/lxcfs"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(ln.split()[4] == str(path) and " - fuse.lxcfs " in ln for ln in f)


def _with_annotation(b: Path, on: bool) -> Path:
    out = b.parent / (b.name + ("-lxcfs" if on else "-plain"))
    shutil.copytree(b, out, symlinks=True)
    cfg = json.loads((out / "config.json").read_text())
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "cpu": {"quota": 100000, "period": 100000}}
    if on:
        cfg.setdefault("annotations", {})[ANNOTATION] = "true"
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def _create_ms(rt: list[str], b: Path, cid: str, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([*rt, "create", "--bundle", str(b), cid], check=True, env=env,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    ms = (time.perf_counter() - t) * 1000
    subprocess.run([*rt, "delete", "--force", cid], check=True, env=env, stdout=subprocess.DEVNULL)
    reap()
    return ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--containers", type=int, default=20)
    a = ap.parse_args()
    exe = shutil.which("lxcfs")
    if exe is None:
        print("lxcfs is not installed (apt-get install lxcfs)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lxcri-bench-lxcfs-"))
    mnt = work / "lxcfs"
    mnt.mkdir()
    daemon = subprocess.Popen([exe, "-f", "--enable-cfs", "-p", str(work / "lxcfs.pid"), str(mnt)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root, runc_root = work / "root", work / "runc-root"
    env = {**os.environ, "LXCRI_LXCFS_PATH": str(mnt)}
    started: list[str] = []
    try:
        end = time.time() + 10
        while not _mounted(mnt):
            if daemon.poll() is not None or time.time() > end:
                raise RuntimeError("lxcfs did not mount")
            time.sleep(0.05)
        base = bundle(work, ["sleep", "600"])
        on, off = _with_annotation(base, True), _with_annotation(base, False)
        lx = [LXCRI, "--root", str(root)]
        times: dict[str, list[float]] = {"lxcri+lxcfs": [], "lxcri": [], "runc": []}
        for i in range(a.rounds):
            times["lxcri+lxcfs"].append(_create_ms(lx, on, f"bl-on-{i}", env))
            times["lxcri"].append(_create_ms(lx, off, f"bl-off-{i}", env))
            times["runc"].append(_create_ms(["runc", "--root", str(runc_root)], off, f"bl-runc-{i}", env))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"create, median of {a.rounds} (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
        on_ms, off_ms, runc_ms = med["lxcri+lxcfs"], med["lxcri"], med["runc"]
        print(f"  lxcri+lxcfs / lxcri = {on_ms / off_ms:.2f}, lxcri+lxcfs / runc = {on_ms / runc_ms:.2f}, "
              f"lxcri / runc = {off_ms / runc_ms:.2f}")
        rss0 = _rss_kib(daemon.pid)
        for i in range(a.containers):
            cid = f"bl-run-{i}"
            subprocess.run([*lx, "create", "--bundle", str(on), cid], check=True, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            started.append(cid)
            subprocess.run([*lx, "start", cid], check=True, env=env)
            subprocess.run([*lx, "exec", cid, "sh", "-c",
                            "cat /proc/meminfo /proc/cpuinfo /proc/stat /proc/uptime /proc/loadavg >/dev/null"],
                           check=True, env=env)
        rss1 = _rss_kib(daemon.pid)
        print(f"lxcfs RSS: {rss0} KiB idle, {rss1} KiB with {a.containers} containers reading their views: "
              f"{(rss1 - rss0) / a.containers:.0f} KiB per container")
    finally:
        for cid in started:
            subprocess.run([LXCRI, "--root", str(root), "delete", "--force", cid], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        reap()
        daemon.terminate()
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
        subprocess.run(["umount", "-l", str(mnt)], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
