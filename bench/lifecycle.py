"""Lifecycle latency and per-container memory: lxcri side by side with runc and crun, same run.

    python bench/lifecycle.py [--cycles N] [--containers K]

One cycle is what a CRI runtime does for a short container: create (stdio to
/dev/null), start, poll `state` until stopped (reaping as a subreaper would),
delete, of a busybox `/bin/true`. The runtimes take turns cycle by cycle so
machine noise hits all of them alike. Prints medians in ms and ratios to runc.

crun 1.8 refuses this host's hybrid cgroup layout unless /sys/fs/cgroup/unified
is hidden, so each crun call runs in a private mount namespace without it
(`unshare -m`); the cost of that wrapper alone is measured and printed too.

Memory: K long-running containers per runtime; the processes lxcri keeps for
them (none since the monitor steps aside after create; PSS from
/proc/PID/smaps_rollup for any that did), and the one warm server per node that
serves lxcri's short commands (see runtime/lxcri/warm/).

`lxcri` is the command as installed (the C client and its warm server);
`lxcri-direct` is the same command with LXCRI_WARM_SERVER=0, every call a fresh
Python process.
"""

from __future__ import annotations

import argparse
import ctypes
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
sys.path.insert(0, str(REPO / "scripts"))
from busybox import make_rootfs  # noqa: E402

LXCRI = str(REPO / ".venv" / "bin" / "lxcri")
CRUN_NS = ["unshare", "-m", "--propagation", "private", "sh", "-c",
           'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"', "crun"]


def bundle(work: Path, args: list[str]) -> Path:
    b = work / f"bundle-{args[0]}"
    b.mkdir()
    make_rootfs(b / "rootfs")
    subprocess.run(["runc", "spec"], cwd=b, check=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"]["readonly"] = False
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


DIRECT_ENV = {**os.environ, "LXCRI_WARM_SERVER": "0"}


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if cmd[0] == "lxcri-direct":  # the same binary, told to start Python on every call
        cmd = [LXCRI, *cmd[1:]]
        kw["env"] = DIRECT_ENV
    return subprocess.run(cmd, text=True, check=True, **kw)  # type: ignore[call-overload,no-any-return]


def cycle(rt: list[str], b: Path, cid: str) -> dict[str, float]:
    t0 = time.perf_counter()
    run([*rt, "create", "--bundle", str(b), cid], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    t1 = time.perf_counter()
    run([*rt, "start", cid], stdout=subprocess.DEVNULL)
    t2 = time.perf_counter()
    while json.loads(run([*rt, "state", cid], capture_output=True).stdout)["status"] != "stopped":
        reap()
        time.sleep(0.002)
    t3 = time.perf_counter()
    run([*rt, "delete", cid])
    t4 = time.perf_counter()
    reap()
    return {"create": t1 - t0, "start": t2 - t1, "until stopped": t3 - t2, "delete": t4 - t3, "total": t4 - t0}


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t


def runtime_processes(ids: list[str], root: Path) -> list[int]:
    """Processes that lxcri keeps for running containers: any process naming one of them that is
    not in that container's own cgroup (the container's processes are not the runtime's)."""
    inside: set[int] = set()
    for cid in ids:
        dirs = json.loads((root / cid / "state.json").read_text())["cgroup_dirs"]
        pids_dir = next(d for k, d in dirs.items() if "pids" in k.split(","))
        inside.update(int(x) for x in Path(pids_dir, "cgroup.procs").read_text().split())
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) in inside or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(cid in cmd for cid in ids):
            found.append(int(p.name))
    return found


def pss_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def warm_servers() -> list[tuple[int, int]]:
    """(RSS, PSS) in KiB of the warm server serving this checkout's lxcri."""
    entry = os.path.realpath(REPO / ".venv" / "bin" / "lxcri-py")
    out = []
    for p in Path("/proc").iterdir():
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--warm-server" in cmd and os.fsencode(entry) in cmd:
            out.append(pss_kib(int(p.name)))
    return out


def state_latency(rt: list[str], cid: str, n: int = 30) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        run([*rt, "state", cid], capture_output=True)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=15)
    ap.add_argument("--containers", type=int, default=5)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 1
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # a subreaper, like conmon and the shim
    work = Path(tempfile.mkdtemp(prefix="lxcri-bench-"))
    roots = {name: work / f"root-{name}" for name in ("lxcri", "lxcri-direct", "runc", "crun")}
    runtimes = {
        "lxcri": [LXCRI, "--root", str(roots["lxcri"])],
        "lxcri-direct": ["lxcri-direct", "--root", str(roots["lxcri-direct"])],
        "runc": ["runc", "--root", str(roots["runc"])],
        "crun": [*CRUN_NS, "--root", str(roots["crun"])],
    }
    try:
        b_true = bundle(work, ["true"])
        b_sleep = bundle(work, ["sleep", "1000"])
        results: dict[str, list[dict[str, float]]] = {k: [] for k in runtimes}
        for i in range(a.cycles):
            for name, rt in runtimes.items():
                results[name].append(cycle(rt, b_true, f"bench-{name}-{i}"))
        wrapper = statistics.median(timed([*CRUN_NS[:-1], "true"]) for _ in range(20))
        print(f"lifecycle of a busybox /bin/true container, median of {a.cycles} cycles (ms):")
        phases = ["create", "start", "until stopped", "delete", "total"]
        print(f"{'':14}" + "".join(f"{p:>15}" for p in phases))
        med = {n: {p: statistics.median(r[p] for r in rs) * 1000 for p in phases} for n, rs in results.items()}
        for n in runtimes:
            print(f"{n:14}" + "".join(f"{med[n][p]:15.1f}" for p in phases))
        for n in ("lxcri", "lxcri-direct", "crun"):
            print(f"ratio {n}/runc: " + "  ".join(f"{p} {med[n][p] / med['runc'][p]:.2f}" for p in phases))
        print(f"(crun's numbers include its unshare wrapper, {wrapper * 1000:.1f} ms per call)")

        # state latency on a running container, and memory per container
        mem: dict[str, list[tuple[int, int]]] = {}
        lat = {}
        for name, rt in runtimes.items():
            ids = [f"mem-{name}-{k}" for k in range(a.containers)]
            for cid in ids:
                run([*rt, "create", "--bundle", str(b_sleep), cid], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                run([*rt, "start", cid])
            time.sleep(0.5)
            lat[name] = state_latency(rt, ids[0])
            if name.startswith("lxcri"):
                mem[name] = [pss_kib(p) for p in runtime_processes(ids, roots[name])]
            for cid in ids:
                run([*rt, "delete", "--force", cid])
            reap()
        print("state of a running container, median of 30 (ms): " +
              "  ".join(f"{n} {v * 1000:.1f}" for n, v in lat.items()) +
              f"  ratio lxcri/runc {lat['lxcri'] / lat['runc']:.2f}")
        procs = mem["lxcri"] + mem["lxcri-direct"]
        pss = sum(m[1] for m in procs) / 1024 / a.containers / 2
        print(f"processes lxcri keeps per running container: {len(procs) / a.containers / 2:.1f} "
              f"(PSS {pss:.2f} MiB per container, {a.containers} containers; runc and crun keep none)")
        servers = warm_servers()
        print(f"warm servers (one per node and installation, whatever the number of containers): {len(servers)}, "
              + ", ".join(f"RSS {r / 1024:.1f} MiB PSS {p / 1024:.1f} MiB" for r, p in servers))
        return 0
    finally:
        for name, root in roots.items():
            if root.exists():
                for cid in os.listdir(root):
                    subprocess.run([*runtimes[name], "delete", "--force", cid], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
