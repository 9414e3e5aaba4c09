"""What running helpers from a sealed copy costs: create and exec latency, lxcri beside runc.

    python bench/exec.py [--rounds N] [--libexec DIR]

lxcri's exec helper and monitor copy themselves into a sealed memfd and re-execute from it
before they enter a container's pid namespace (libexec/src/sealed.h); runc does the same for
`runc init`. Per round, in turns: `create` of a busybox `sleep` container (then `delete
--force`), and on a running container `exec --detach true` and a foreground `exec true`.
Prints medians in ms and ratios to runc. With --libexec DIR a third column runs lxcri with the
helpers in DIR (e.g. a build without the sealed copy), to read the copy's own cost.
"""

from __future__ import annotations

import argparse
import ctypes
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


def _t(cmd: list[str], **kw: object) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--libexec", default="", help="also run lxcri with the helpers in this directory")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 1
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # a subreaper, like conmon and the shim
    work = Path(tempfile.mkdtemp(prefix="lxcri-bench-exec-"))
    runtimes = {"lxcri": [LXCRI, "--root", str(work / "root-lxcri")],
                "runc": ["runc", "--root", str(work / "root-runc")]}
    if a.libexec:
        runtimes["lxcri-other"] = [LXCRI, "--root", str(work / "root-other"), "--libexec", a.libexec]
    try:
        b = bundle(work, ["sleep", "1000"])
        for name, rt in runtimes.items():
            subprocess.run([*rt, "create", "--bundle", str(b), f"bench-exec-{name}"], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([*rt, "start", f"bench-exec-{name}"], check=True)
        res: dict[str, dict[str, list[float]]] = {n: {"create": [], "exec -d": [], "exec": []} for n in runtimes}
        for i in range(a.rounds):
            for name, rt in runtimes.items():
                cid = f"bench-exec-{name}"
                tmp = f"bench-exec-c-{name}-{i}"
                res[name]["create"].append(_t([*rt, "create", "--bundle", str(b), tmp], stderr=subprocess.DEVNULL))
                subprocess.run([*rt, "delete", "--force", tmp], check=True)
                res[name]["exec -d"].append(_t([*rt, "exec", "--detach", cid, "true"]))
                res[name]["exec"].append(_t([*rt, "exec", cid, "true"]))
                reap()
        phases = ["create", "exec -d", "exec"]
        med = {n: {p: statistics.median(r[p]) * 1000 for p in phases} for n, r in res.items()}
        print(f"median of {a.rounds} rounds (ms):")
        print(f"{'':14}" + "".join(f"{p:>12}" for p in phases))
        for n in runtimes:
            print(f"{n:14}" + "".join(f"{med[n][p]:12.1f}" for p in phases))
        for n in runtimes:
            if n != "runc":
                print(f"ratio {n}/runc: " + "  ".join(f"{p} {med[n][p] / med['runc'][p]:.2f}" for p in phases))
        return 0
    finally:
        for rt in runtimes.values():
            root = Path(rt[2])
            if root.exists():
                for cid in os.listdir(root):
                    subprocess.run([*rt, "delete", "--force", cid], capture_output=True)
        reap()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
