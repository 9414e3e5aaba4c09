"""Pods with `runtimeClassName: lxcri` on a real Kubernetes, through containerd and through CRI-O
(the `kube` fixture: ../shared/kube, or the cluster $KUBECONFIG names). What is checked is what
a user sees: `kubectl logs`, the container's exit code in the pod status, `kubectl exec` with
and without a tty, limits and credentials from inside, volumes, probes, SIGTERM on deletion;
and on the node, that a deleted pod leaves nothing of lxcri behind.

All pods are created in one batch (pod_specs.py) and waited for together; the tests then look
at them one question at a time. The last test deletes them all.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kube_cluster import Cluster, Pod
from pod_specs import (
    ADDED_CAPS_MASK,
    CONFIG_VALUE,
    CPU_QUOTA,
    EXIT_CODE,
    GREETING_FROM_HOST,
    MEMORY_LIMIT,
    batch,
)

# memory limit, then "quota period", on cgroup v2 or v1 (cpu alone or co-mounted with cpuacct)
LIMITS = """
cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
cat /sys/fs/cgroup/cpu.max 2>/dev/null || for f in cfs_quota_us cfs_period_us; do
    cat /sys/fs/cgroup/cpu/cpu.$f 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpu.$f
done | tr '\\n' ' ' | sed 's/ $//'
"""
HEX_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Batch:
    kube: Cluster
    ns: str
    host_dir: Path
    pods: dict[str, Pod]
    ids: set[str] = field(default_factory=set)  # lxcri's containers for these pods (local cluster only)

    def k(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.kube.kubectl("-n", self.ns, *args, timeout=timeout)

    def ok(self, *args: str, timeout: float = 120) -> str:
        return self.kube.ok("-n", self.ns, *args, timeout=timeout)

    def sh(self, pod: str, script: str) -> str:
        return self.ok("exec", pod, "--", "sh", "-c", script)


def lxcri_ids(kube: Cluster) -> set[str]:
    """Container ids in lxcri's runtime root (containerd's shim adds a namespace level)."""
    assert kube.node is not None
    root = kube.node.runtime_root
    if not root.is_dir():
        return set()
    found = set()
    for p in [*root.iterdir(), *(q for d in root.iterdir() if d.is_dir() and not HEX_ID.match(d.name)
                                 for q in d.iterdir())]:
        if HEX_ID.match(p.name):
            found.add(p.name)
    return found


@pytest.fixture(scope="session")
def pods(kube: Cluster) -> Iterator[Batch]:
    ns = f"lxcri-pods-{uuid.uuid4().hex[:6]}"
    host_dir = Path(f"/tmp/{ns}")
    if kube.node is not None:  # the node is this machine: the test can put a file into the hostPath
        host_dir.mkdir(mode=0o755)
        (host_dir / "hello").write_text(GREETING_FROM_HOST + "\n")
    before = lxcri_ids(kube) if kube.node else set()
    kube.ok("create", "namespace", ns)
    try:
        objects, waits = batch(str(host_dir))
        for o in objects:
            o["metadata"]["namespace"] = ns
        deadline = time.monotonic() + 60
        while kube.kubectl("-n", ns, "get", "serviceaccount", "default").returncode != 0:
            assert time.monotonic() < deadline, f"no service account in namespace {ns}"
            time.sleep(0.5)
        t0 = time.monotonic()
        kube.apply(objects)
        got = kube.wait(ns, waits, timeout=240)
        print(f"{kube.cri}: {len(waits)} pods in their states after {time.monotonic() - t0:.1f} s")
        b = Batch(kube, ns, host_dir, got)
        if kube.node is not None:
            b.ids = lxcri_ids(kube) - before
        yield b
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=120s", timeout=180)
        shutil.rmtree(host_dir, ignore_errors=True)


def state(p: Pod, container: str | None = None) -> dict[str, dict[str, object]]:
    statuses = p["status"]["containerStatuses"]
    s = next(s for s in statuses if container is None or s["name"] == container)
    return s  # type: ignore[no-any-return]


def report(b: Batch, name: str) -> dict[str, str]:
    out = b.ok("logs", name)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_logs_and_exit_code(pods: Batch) -> None:
    term = state(pods.pods["exit-code"])["state"]["terminated"]
    assert term["exitCode"] == EXIT_CODE and term["reason"] == "Error", term
    assert pods.pods["exit-code"]["status"]["phase"] == "Failed"
    # two pipes: the order between them is the reader's
    assert sorted(pods.ok("logs", "exit-code").splitlines()) == ["to-stderr", "to-stdout"]


def test_reports_match_runc(pods: Batch) -> None:
    """Credentials, capability sets, seccomp mode and root fs mode: what runc gives, lxcri gives."""
    for kind in ("nonroot", "caps"):
        lx, rc = report(pods, f"report-{kind}-lxcri"), report(pods, f"report-{kind}-runc")
        assert lx == rc, f"{kind}: lxcri {lx} != runc {rc}"
        for name in (f"report-{kind}-lxcri", f"report-{kind}-runc"):
            assert state(pods.pods[name])["state"]["terminated"]["exitCode"] == 0


def test_security_context_non_root(pods: Batch) -> None:
    r = report(pods, "report-nonroot-lxcri")
    assert r["id"] == "1000:3000:3000", r
    assert int(r["CapEff"], 16) == 0 and int(r["CapPrm"], 16) == 0, r
    assert r["NoNewPrivs"] == "1", r  # allowPrivilegeEscalation: false
    assert r["rootfs"] == "ro" and r["emptydir"] == "rw", r  # readOnlyRootFilesystem, but volumes writable


def test_capabilities_add_drop(pods: Batch) -> None:
    r = report(pods, "report-caps-lxcri")
    assert r["id"].startswith("0:0"), r
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(r[key], 16) == ADDED_CAPS_MASK, f"{key}={r[key]}, want {ADDED_CAPS_MASK:#x}: {r}"
    assert int(r["CapAmb"], 16) == 0, r


def test_runtime_default_seccomp(pods: Batch) -> None:
    """RuntimeDefault: a filter is on (Seccomp: 2) and unshare(CLONE_NEWUSER) is refused; the same
    call works in the Unconfined pod, so it is the profile that refuses it."""
    for kind in ("nonroot", "caps"):
        r = report(pods, f"report-{kind}-lxcri")
        assert r["Seccomp"] == "2" and r["unshare"] == "denied", r
    unconfined = report(pods, "unconfined")
    assert unconfined["Seccomp"] == "0" and unconfined["unshare"] == "allowed", unconfined


def test_resource_limits_inside(pods: Batch) -> None:
    out = pods.sh("limits", LIMITS)
    memory, cpu = out.splitlines()
    assert int(memory) == MEMORY_LIMIT, out
    assert cpu == CPU_QUOTA, out


def test_exec(pods: Batch) -> None:
    r = pods.k("exec", "limits", "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert r.stdout == "out\n" and "err\n" in r.stderr, (r.stdout, r.stderr)
    assert pods.sh("limits", "echo $((6 * 7))") == "42\n"


def in_pty(cmd: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run cmd with a pseudo-terminal as its stdio (kubectl only asks for a tty then)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: every slave end is closed
                    break
                if not data:
                    break
                out += data
            elif p.poll() is not None:
                break
        else:
            p.kill()
        return p.wait(timeout=10), out.decode(errors="replace")
    finally:
        os.close(master)


def test_exec_tty(pods: Batch) -> None:
    """`kubectl exec -it`: stdio is a terminal, the controlling one (/dev/tty opens), and the exit
    code comes back."""
    rc, out = in_pty([*pods.kube.kubectl_cmd, "-n", pods.ns, "exec", "-it", "limits", "--", "sh", "-c",
                      "tty; echo via-dev-tty > /dev/tty && echo ctty-ok; exit 3"])
    assert rc == 3, out
    assert re.search(r"/dev/pts/\d+", out), out
    assert "via-dev-tty" in out and "ctty-ok" in out, out


def test_volumes(pods: Batch) -> None:
    a = pods.ok("logs", "volumes", "-c", "a").splitlines()
    assert a[0] == CONFIG_VALUE, a
    assert a[2] == "cfg=ro", a  # configMap volumes are read-only
    assert pods.ok("logs", "volumes", "-c", "b").splitlines() == ["from-a"]  # one emptyDir, two containers
    if pods.kube.node is not None:
        assert a[1] == GREETING_FROM_HOST, a
        assert (pods.host_dir / "from-pod").read_text() == "from-pod\n"
    assert pods.sh("volumes", "cat /host/from-pod") == "from-pod\n"


def test_probes(pods: Batch) -> None:
    """Exec probes decide: `readiness` became Ready once its file existed, `never-ready` whose probe
    always fails is Running but not Ready, and `liveness` was restarted when its file went away."""
    now = pods.kube.pods(pods.ns)
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in now["readiness"]["status"]["conditions"])
    never = now["never-ready"]
    assert never["status"]["phase"] == "Running"
    assert not any(c["type"] == "Ready" and c["status"] == "True" for c in never["status"]["conditions"]), never
    live = state(now["liveness"])
    assert live["restartCount"] >= 1, live
    last = live["lastState"].get("terminated", {})
    assert last.get("exitCode") in (137, 143, 0), live  # killed (or stopped by SIGTERM) by the kubelet


def test_graceful_termination(pods: Batch) -> None:
    """Deleting the pod sends SIGTERM: the handler runs to its end and the pod goes well within
    its 30 s grace period (a runtime that skipped SIGTERM would take the whole 30 s: sh as pid 1
    ignores an untrapped SIGTERM)."""
    assert "waiting" in pods.ok("logs", "graceful")
    t0 = time.monotonic()
    pods.ok("delete", "pod", "graceful", "--wait=true", "--timeout=60s", timeout=90)
    took = time.monotonic() - t0
    assert took < 15, f"deletion took {took:.1f} s"
    if pods.kube.node is not None:
        assert (pods.host_dir / "term").read_text().split() == ["handler-started", "handler-finished"]


def _leftovers(b: Batch, uids: list[str]) -> list[str]:
    assert b.kube.node is not None
    node, ids = b.kube.node, b.ids
    names = [*ids, *uids]
    found = [f"runtime dir {i}" for i in lxcri_ids(b.kube) & ids]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroups = (proc / "cgroup").read_text()
        except OSError:
            continue
        if any(n in cmdline or n in cgroups for n in names):
            found.append(f"process {proc.name}: {cmdline[:200]}")
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / node.cgroup_root.lstrip("/")
        for dirpath, dirnames, _ in os.walk(top):
            found += [f"cgroup {dirpath}/{d}" for d in dirnames if any(n in d for n in names)]
    for where, text in (("cluster", node.mountinfo()), ("host", Path("/proc/self/mountinfo").read_text())):
        found += [f"{where} mount {ln.split()[4]}" for ln in text.splitlines() if any(n in ln for n in names)]
    return found


def test_no_leftovers_after_deletion(pods: Batch) -> None:
    """After the pods are deleted, nothing of theirs is left: no process, cgroup, mount or lxcri
    runtime dir that names one of their containers (sandboxes included) or the pod."""
    uids = [p["metadata"]["uid"] for p in pods.pods.values()]
    t0 = time.monotonic()
    pods.ok("delete", "pods", "--all", "--wait=true", "--timeout=120s", timeout=180)
    print(f"{pods.kube.cri}: pods deleted after {time.monotonic() - t0:.1f} s")
    assert pods.kube.pods(pods.ns) == {}
    if pods.kube.node is None:
        pytest.skip("KUBECONFIG cluster: its node's processes, cgroups and mounts are not visible from here")
    assert pods.ids, "no lxcri container was seen for the batch (wrong runtime root?)"
    # CRI-O deletes (`lxcri delete`) the exited containers of a deleted pod when the kubelet removes
    # them, at its next container GC (once a minute): their runtime dirs stay until then, as runc's do
    deadline, left, first = time.monotonic() + 150, ["not looked yet"], None
    while left and time.monotonic() < deadline:
        left = _leftovers(pods, uids)
        first = left if first is None else first
        if left:
            time.sleep(1)
    if first:
        print(f"{pods.kube.cri}: right after the deletion, still there (went later): {first[:10]}")
    assert not left, "\n".join(left[:40])
    print(f"{pods.kube.cri}: nothing left {time.monotonic() - t0:.1f} s after the deletion began")
