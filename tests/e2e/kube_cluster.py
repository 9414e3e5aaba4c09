"""A real Kubernetes cluster with lxcri registered as runtime handler `lxcri`, for the pod tests
and bench/pods.py. No pytest here, so the benchmark can use it too.

Two sources, tried in this order:

- ../shared/kube beside the repository (or $LXCRI_SHARED/kube): its `cluster` script brings up a
  private single-node cluster per CRI (containerd or CRI-O), we add lxcri to that CRI's config
  (containerd: a runtimes.lxcri entry with the runc v2 shim; CRI-O: a crio.conf.d drop-in with
  conmon), restart the CRI, create the RuntimeClasses `lxcri` and `runc`, and `down` the cluster at
  the end. Here the tests also see the node's host side (cgroups, mounts, the runtime root).
- otherwise $KUBECONFIG: a cluster someone else set up, with lxcri installed as handler `lxcri`.
  Only the API side is visible; the CRI is whatever the node runs.

Neither: `Unavailable` with the reason, which the caller turns into a skip that says it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LXCRI = Path(os.environ.get("LXCRI_BIN", REPO / ".venv" / "bin" / "lxcri"))
CRIS = ("containerd", "crio")
HANDLER = "lxcri"
# the pod annotations lxcri acts on, which the CRI passes only when the handler lists them (as the agent writes)
POD_ANNOTATIONS = ("lxcri.linuxcontainers.org/lxcfs", "lxcri.linuxcontainers.org/system-container")
BUSYBOX = "localhost/k8s-local/busybox:1.35.0"
# the block we own in a CRI config, so that a re-run replaces it instead of adding a second one
BEGIN = "# >>> lxcri handler (tests/e2e/kube_cluster.py) >>>"
END = "# <<< lxcri handler <<<"
RUNTIME_CLASSES = [{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": h}, "handler": h}
                   for h in (HANDLER, "runc")]

Pod = dict[str, Any]


class Unavailable(Exception):
    """No cluster for this CRI: the message says why (the caller skips with it)."""


def shared_kube() -> Path | None:
    """../shared/kube beside the repository (as in CI), else $LXCRI_SHARED/kube (a worktree)."""
    roots = [REPO.parent / "shared"]
    if os.environ.get("LXCRI_SHARED"):
        roots.append(Path(os.environ["LXCRI_SHARED"]))
    for root in roots:
        if (root / "kube" / "cluster").is_file():
            return root / "kube"
    return None


def cluster_name(cri: str) -> str:
    """One cluster per CRI and checkout: two clones on one machine never share a cluster.
    $LXCRI_KUBE_NAME replaces the hashed middle part."""
    tag = os.environ.get("LXCRI_KUBE_NAME") or hashlib.sha256(str(REPO).encode()).hexdigest()[:6]
    return f"lxcri-{tag}-{cri}"


def run(cmd: list[str], timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Node:
    """The host side of a cluster we started: what the leftover checks look at."""

    state: Path
    holder_pid: int
    cgroup_root: str      # e.g. /NAME: the kubelet's cgroupRoot, in every hierarchy
    runtime_root: Path    # lxcri's --root for this CRI's handler
    facts: dict[str, str] = field(default_factory=dict)  # what `cluster up` printed (CRI_SOCKET, EXEC ...)

    def exec(self, *cmd: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A command in the cluster's mount and network namespaces (its EXEC fact)."""
        return run([*self.facts["EXEC"].split(), *cmd], timeout=timeout)

    def load_image(self, archive: Path, name: str) -> None:
        """A docker-archive into the CRI's image store (the kube README's recipe)."""
        if self.facts["CRI"] == "containerd":
            r = self.exec("ctr", "-a", self.facts["CRI_SOCKET"].removeprefix("unix://"), "-n", "k8s.io",
                          "images", "import", str(archive))
        else:
            st = self.facts["STATE_DIR"]
            store = f"containers-storage:[overlay@{st}/crio/storage+{st}/run/crio/storage]{name}"
            r = self.exec("env", f"CONTAINERS_STORAGE_CONF={st}/etc/crio/storage.conf", "skopeo", "copy",
                          f"docker-archive:{archive}", store)
        if r.returncode != 0:
            raise AssertionError(f"loading {name}: {r.stderr[-2000:]}")

    def mountinfo(self) -> str:
        """The cluster's mount namespace (pod rootfs and volume mounts live only there)."""
        return Path(f"/proc/{self.holder_pid}/mountinfo").read_text()


@dataclass
class Cluster:
    cri: str
    kubectl_cmd: list[str]
    node: Node | None = None

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run([*self.kubectl_cmd, *args], timeout=timeout, input=input)

    def ok(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        r = self.kubectl(*args, input=input, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
        return r.stdout

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.ok("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def pods(self, namespace: str) -> dict[str, Pod]:
        items = json.loads(self.ok("get", "pods", "-n", namespace, "-o", "json"))["items"]
        return {p["metadata"]["name"]: p for p in items}

    def wait(self, namespace: str, done: dict[str, Callable[[Pod], bool]], timeout: float = 120) -> dict[str, Pod]:
        """Poll all pods of the namespace together until done[name](pod) holds for every name."""
        deadline = time.monotonic() + timeout
        while True:
            pods = self.pods(namespace)
            pending = [n for n, f in done.items() if n not in pods or not f(pods[n])]
            if not pending:
                return pods
            if time.monotonic() > deadline:
                details = {n: pods.get(n, {}).get("status") for n in pending}
                events = self.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp").stdout
                raise AssertionError(f"pods not done after {timeout:.0f} s: {json.dumps(details, indent=1)[:6000]}\n"
                                     f"events:\n{events[-4000:]}")
            time.sleep(0.5)


# ------------------------------------------------------------------ pod states
def phase(*phases: str) -> Callable[[Pod], bool]:
    return lambda p: p.get("status", {}).get("phase") in phases


def ready(p: Pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))


def terminated(p: Pod) -> bool:
    statuses = p.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all("terminated" in s.get("state", {}) for s in statuses)


def restarted(p: Pod) -> bool:
    return any(s.get("restartCount", 0) >= 1 for s in p.get("status", {}).get("containerStatuses") or [])


# ------------------------------------------------------------------ CRI registration
def _replace_block(text: str, block: str) -> str:
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head.rstrip("\n") + "\n" + rest.split(END, 1)[1].lstrip("\n")
    return text.rstrip("\n") + f"\n\n{BEGIN}\n{block.strip()}\n{END}\n"


def containerd_block(lxcri: Path, root: Path) -> str:
    t = 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.' + HANDLER
    return f"""[{t}]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = {json.dumps(list(POD_ANNOTATIONS))}
  [{t}.options]
    BinaryName = {json.dumps(str(lxcri))}
    Root = {json.dumps(str(root))}
    SystemdCgroup = false"""


def crio_dropin(lxcri: Path, root: Path) -> str:
    return f"""[crio.runtime.runtimes.{HANDLER}]
runtime_path = {json.dumps(str(lxcri))}
runtime_type = "oci"
runtime_root = {json.dumps(str(root))}
monitor_path = "/usr/bin/conmon"
monitor_cgroup = "pod"
monitor_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]"""


def register(cri: str, config: Path, lxcri: Path, root: Path) -> bool:
    """Put the lxcri handler into the CRI's config; True when a file changed (restart needed)."""
    if cri == "containerd":
        path, new = config, _replace_block(config.read_text(), containerd_block(lxcri, root))
    else:
        path = config / "crio.conf.d" / "50-lxcri.conf"
        new = f"{BEGIN}\n{crio_dropin(lxcri, root)}\n{END}\n"
    if path.exists() and path.read_text() == new:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    tmp.replace(path)
    return True


# ------------------------------------------------------------------ sources
def facts(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@contextlib.contextmanager
def shared_cluster(kube: Path, cri: str, keep: bool = False) -> Iterator[Cluster]:
    """Up (idempotent), lxcri registered, RuntimeClasses created; down afterwards unless keep."""
    if not LXCRI.exists():
        raise Unavailable(f"{LXCRI} is missing (bash scripts/setup.sh)")
    script, name = kube / "cluster", cluster_name(cri)
    r = run([str(script), "up", "--name", name, "--cri", cri], timeout=600)
    try:
        if r.returncode != 0:
            raise AssertionError(f"cluster up --name {name} --cri {cri} failed:\n{r.stderr[-3000:]}")
        f = facts(r.stdout)
        state = Path(f["STATE_DIR"])
        root = state / "run" / f"lxcri-{cri}"
        if register(cri, Path(f["CRI_CONFIG"]), LXCRI, root):
            rr = run([str(script), "--name", name, "restart-cri"], timeout=120)
            assert rr.returncode == 0, f"restart-cri: {rr.stderr[-2000:]}"
        deadline = time.monotonic() + 60
        handlers = lambda: facts(run([str(script), "--name", name, "env"]).stdout).get("RUNTIME_HANDLERS", "")  # noqa: E731
        while HANDLER not in handlers().split():
            assert time.monotonic() < deadline, f"{cri} does not list handler {HANDLER} after restart-cri"
            time.sleep(1)
        kubectl = [*f["EXEC"].split(), str(state / "bin" / "kubectl"), "--kubeconfig", f["KUBECONFIG"]]
        node = Node(state=state, holder_pid=int(f["HOLDER_PID"]), cgroup_root=f["CGROUP_ROOT"], runtime_root=root,
                    facts=f)
        cluster = Cluster(cri=cri, kubectl_cmd=kubectl, node=node)
        cluster.apply(RUNTIME_CLASSES)
        # the service account the pods use comes from a controller: wait for it once here
        deadline = time.monotonic() + 60
        while cluster.kubectl("get", "serviceaccount", "default").returncode != 0:
            assert time.monotonic() < deadline, "no default service account after 60 s"
            time.sleep(1)
        yield cluster
    finally:
        if not keep:
            d = run([str(script), "--name", name, "down"], timeout=300)
            if d.returncode != 0:
                raise AssertionError(f"cluster down --name {name}: {d.stderr[-2000:]}")


def kubeconfig_cluster(cri: str) -> Cluster:
    """The cluster $KUBECONFIG names, when its node runs this CRI."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise Unavailable("KUBECONFIG is set but kubectl is not on PATH")
    cluster = Cluster(cri=cri, kubectl_cmd=[kubectl])
    info = json.loads(cluster.ok("get", "nodes", "-o", "json"))["items"][0]["status"]["nodeInfo"]
    runtime = info["containerRuntimeVersion"].split(":", 1)[0]  # containerd://1.7 or cri-o://1.30
    if runtime.replace("-", "") != cri:
        raise Unavailable(f"the KUBECONFIG cluster's node runs {runtime}, not {cri}")
    return cluster


@contextlib.contextmanager
def cluster_for(cri: str) -> Iterator[Cluster]:
    """The cluster for one CRI, from ../shared/kube or $KUBECONFIG; Unavailable says why not.
    LXCRI_KEEP_CLUSTER=1 leaves a shared/kube cluster up (for repeated runs while developing)."""
    kube = shared_kube()
    if kube is not None:
        with shared_cluster(kube, cri, keep=os.environ.get("LXCRI_KEEP_CLUSTER") == "1") as c:
            yield c
        return
    if os.environ.get("KUBECONFIG"):
        yield kubeconfig_cluster(cri)
        return
    raise Unavailable(f"no cluster: ../shared/kube is not beside {REPO} (nor under $LXCRI_SHARED) "
                      "and KUBECONFIG is not set")
