"""SIGKILL the `create` caller at random points, then `delete --force`: count leaks and hangs.

    python bench/kill_create.py [--cycles 200] [--seed 12] [--mode warm|direct|both]

conmon and the containerd shim can die (or be OOM-killed) while `lxcri create` runs. Each
cycle starts `lxcri create` (through the C client and the warm server, or directly with
LXCRI_WARM_SERVER=0), SIGKILLs it after a random 0-100 ms (a fixed seed: the same points
every run), then runs `delete --force` with a deadline, and checks what stays:

- processes: any in a cgroup whose path names the container, or whose argv names it,
  or a child of this process (a subreaper, as conmon is: the orphaned init comes here);
- cgroup directories naming the container, in every mounted hierarchy;
- mounts naming the container in /proc/self/mountinfo;
- the runtime dir ROOT/ID.

A `delete --force` that does not return within its deadline is a hang. The tests
(tests/integration/test_faults.py) run a few dozen cycles; this prints the figures for
any number. Exit status 1 if anything leaked or hung.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LXCRI = os.environ.get("LXCRI_BIN", str(REPO / ".venv" / "bin" / "lxcri"))
MAX_DELAY = 0.1  # seconds: kills land from before the exec to after create has finished
DELETE_DEADLINE = 60.0  # seconds: `delete --force` taking longer counts as a hang


def subreaper() -> None:
    """Orphans come back to us, as to conmon and the shim (PR_SET_CHILD_SUBREAPER)."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def run_reaping(cmd: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str] | None:
    """Run cmd while reaping our other children, as a subreaper must (a pid namespace's init ends
    only once the namespace's orphans, re-parented to us, are reaped). None if it timed out."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]
    end = time.monotonic() + timeout
    while p.poll() is None:
        if time.monotonic() > end:
            p.kill()
            p.wait()
            return None
        while True:  # every finished child but p, which poll() reaps
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if info is None or info.si_pid == p.pid:
                break
            os.waitpid(info.si_pid, 0)
        time.sleep(0.005)
    out, err = p.communicate()
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def make_bundle(work: Path) -> Path:
    sys.path.insert(0, str(REPO / "scripts"))
    from busybox import make_rootfs

    b = work / "bundle"
    b.mkdir()
    make_rootfs(b / "rootfs")
    subprocess.run(["runc", "spec"], cwd=b, check=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "1000"]
    cfg["root"]["readonly"] = False
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def cgroup_mounts() -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        if post.split()[0] in ("cgroup", "cgroup2"):
            out.append(pre.split()[4])
    return out


def leaks(cid: str, root: Path) -> list[str]:
    """What is left of container cid: processes, cgroup dirs, mounts, its runtime dir."""
    found = []
    if (root / cid).exists():
        found.append(f"run dir {root / cid}")
    found += [f"mount {ln.split()[4]}" for ln in Path("/proc/self/mountinfo").read_text().splitlines() if cid in ln]
    for top in cgroup_mounts():
        for dirpath, dirnames, _ in os.walk(top):
            found += [f"cgroup {os.path.join(dirpath, d)}" for d in dirnames if cid in d]
            if dirpath.count("/") > 10:
                dirnames[:] = []
    me = os.getpid()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == me:
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cg = (p / "cgroup").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state in ("Z", "X"):
            continue
        if cid in cmd or cid in cg or (int(ppid) == me and "lxcri-init" in cmd):
            found.append(f"process {p.name} ({cmd[:80].strip()})")
    return found


def killed_at(run_dir: Path) -> str:
    """How far the killed create had got, from what it left."""
    try:
        rec = json.loads((run_dir / "state.json").read_text())
    except FileNotFoundError:
        return "run dir only" if run_dir.exists() else "nothing made"
    except ValueError:
        return "state being written"
    if rec.get("ready"):
        return "finished"
    if rec.get("init_pid"):
        return "init reported"
    return "monitor started" if rec.get("monitor_pid") else "state recorded"


def cycle(cid: str, bundle: Path, root: Path, delay: float, warm: bool) -> tuple[list[str], bool, float, str]:
    """One create killed after `delay` seconds, then delete --force: (leaks, hung, delete seconds, phase)."""
    env = {**os.environ, "LXCRI_WARM_SERVER": "1" if warm else "0"}
    pid_file = root.parent / f"{cid}.pid"
    p = subprocess.Popen([LXCRI, "--root", str(root), "create", "--bundle", str(bundle), "--pid-file", str(pid_file),
                          cid], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    phase = killed_at(root / cid)
    t = time.monotonic()
    r = run_reaping([LXCRI, "--root", str(root), "delete", "--force", cid], DELETE_DEADLINE, env=env)
    hung = r is None
    took = time.monotonic() - t
    reap()
    pid_file.unlink(missing_ok=True)
    found = leaks(cid, root)
    if r is not None and r.returncode != 0:
        found.append(f"delete --force failed: {r.stderr.strip()}")
    if found:
        time.sleep(0.5)  # a process being reaped by us, or a cgroup the kernel is still releasing
        reap()
        found = leaks(cid, root)
    return found, hung, took, phase


def create_time(bundle: Path, root: Path, warm: bool, tag: str) -> float:
    """The median time of three whole creates (each deleted)."""
    env = {**os.environ, "LXCRI_WARM_SERVER": "1" if warm else "0"}
    times = []
    for i in range(3):
        cid = f"{tag}-kc-calibrate-{i}"
        t = time.monotonic()
        subprocess.run([LXCRI, "--root", str(root), "create", "--bundle", str(bundle), cid], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - t)
        run_reaping([LXCRI, "--root", str(root), "delete", "--force", cid], DELETE_DEADLINE, env=env)
    reap()
    return sorted(times)[1]


def run_cycles(n: int, seed: int, warm: bool, work: Path, bundle: Path | None = None,
               tag: str = "faults") -> dict[str, object]:
    """n killed creates; a report: cycles, leaked cycles with what leaked, hangs, the slowest delete."""
    rng = random.Random(seed)
    bundle = bundle or make_bundle(work)
    root = work / "root"
    # kills spread over the whole of a create as it runs here (at most MAX_DELAY): the windows
    # that matter are between its steps, and a fast create would otherwise mostly be done
    span = min(MAX_DELAY, 1.1 * create_time(bundle, root, warm, tag))
    leaked: dict[str, list[str]] = {}
    hangs: list[str] = []
    slowest = 0.0
    phases: dict[str, int] = {}
    for i in range(n):
        cid = f"{tag}-kc-{'w' if warm else 'd'}{seed}-{i:04d}"
        found, hung, took, phase = cycle(cid, bundle, root, rng.uniform(0.0, span), warm)
        phases[phase] = phases.get(phase, 0) + 1
        slowest = max(slowest, took)
        if found:
            leaked[cid] = found
        if hung:
            hangs.append(cid)
    return {"mode": "warm" if warm else "direct", "cycles": n, "seed": seed, "kill_within_s": round(span, 3),
            "leaked": leaked, "hangs": hangs,
            "slowest_delete_s": round(slowest, 3), "killed_at": phases}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--mode", choices=("warm", "direct", "both"), default="both")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (it runs real containers)", file=sys.stderr)
        return 2
    subreaper()
    work = Path(tempfile.mkdtemp(prefix="lxcri-faults-killcreate-"))
    bad = False
    try:
        bundle = make_bundle(work)
        for warm in ((True, False) if a.mode == "both" else (a.mode == "warm",)):
            r = run_cycles(a.cycles, a.seed, warm, work, bundle)
            leaked = r["leaked"]
            assert isinstance(leaked, dict)
            print(f"{r['mode']}: {r['cycles']} creates killed within {r['kill_within_s']}s (seed {r['seed']}): "
                  f"{len(leaked)} leaked, "
                  f"{len(r['hangs'])} hung (delete --force > {DELETE_DEADLINE:.0f}s), "
                  f"slowest delete --force {r['slowest_delete_s']}s; killed at: {r['killed_at']}")
            for cid, what in leaked.items():
                print(f"  {cid}: {'; '.join(what[:5])}{' ...' if len(what) > 5 else ''}")
            bad = bad or bool(leaked) or bool(r["hangs"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
