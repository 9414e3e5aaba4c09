"""The operator's path on a real cluster (issue 11), once per CRI: build the image, install the
chart as a user would, run a pod of the RuntimeClass, upgrade, uninstall by deleting the release.

The cluster is ../shared/kube's single-node Kubernetes v1.36 (`cluster up --cri containerd|crio`).
The chart is rendered with its own values by the Helm engine (as `helm install --set` would) and
applied with kubectl; uninstall is `kubectl delete` of the same objects (what `helm uninstall`
and `kubectl delete -f manifests/` do). The node's paths (prefix, state dir) are put under the
cluster's state dir through the chart's values, so the host's /opt is never touched; /run is the
cluster's private tmpfs.

Also: a real scrape of the agent's /metrics, and a pod with lxcri's lxcfs annotation served by the
chart's lxcfs (its memory and CPU limits in its /proc). The uninstall is `helm uninstall`'s: the
chart's pre-delete hook, then the release's objects.

Run:  flock -o /tmp/lxcri-heavy.lock .venv/bin/pytest -q tests/e2e/test_agent_cluster.py
(about 4 minutes per CRI on 2 cores, most of it the image build, the cluster start and the
agent's first install; the figures are printed with -s).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NS = "lxcri-system"
PREFIX_KEY = "lxcri.linuxcontainers.org"
TAG1, TAG2 = "localhost/lxcri-agent:e2e-1", "localhost/lxcri-agent:e2e-2"
BUSYBOX = "localhost/k8s-local/busybox:1.35.0"


def shared_kube() -> Path | None:
    for p in (REPO.parent / "shared", Path(os.environ.get("LXCRI_SHARED", "/work/shared"))):
        if (p / "kube" / "cluster").exists():
            return p / "kube"
    return None


def sh(*cmd: str, input: str | None = None, check: bool = True, timeout: float = 600) -> str:
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def renderer() -> Any:
    spec = importlib.util.spec_from_file_location("render_manifests", REPO / "hack" / "render_manifests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_manifests", module)
    spec.loader.exec_module(module)
    return module


@dataclass
class Cluster:
    name: str
    cri: str
    script: Path
    facts: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return Path(self.facts["STATE_DIR"])

    @property
    def cmd(self) -> tuple[str, ...]:
        return (str(self.script), "--name", self.name, "--state", str(self.state))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> str:
        return sh(*self.cmd, "kubectl", *args, input=input, check=check, timeout=timeout)

    def exec(self, *args: str, check: bool = True) -> str:
        """A command in the cluster's mount and network namespaces (where /run is the node's)."""
        return sh(*self.cmd, "exec", *args, check=check)

    def cri_config(self) -> dict[str, bytes]:
        base = Path(self.facts["CRI_CONFIG"])
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        return {str(p): p.read_bytes() for p in files}

    def node(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.kubectl("get", "node", self.facts["NODE_NAME"], "-o", "json"))
        return doc

    @property
    def lxcfs_path(self) -> str:
        return f"{self.state}/lxcfs"

    def lxcfs_mounted(self) -> bool:
        """A fuse.lxcfs mount in the cluster's mount namespace (the node's, for its pods)."""
        return bool(self.exec("sh", "-c", f"grep ' {self.lxcfs_path} .* fuse.lxcfs ' /proc/self/mountinfo",
                              check=False).strip())

    def owned_marks(self) -> dict[str, str]:
        meta = self.node()["metadata"]
        return {k: v for k, v in {**meta.get("labels", {}), **meta.get("annotations", {})}.items()
                if k.startswith(PREFIX_KEY)}


@pytest.fixture(scope="module")
def agent_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The image from scripts/build-image.sh, and a second tag whose runtime tree differs (a new
    file and so a new content id): the upgrade. Both saved as archives for loading into a CRI."""
    if shared_kube() is None:
        why = ("KUBECONFIG is set, but these checks read the node's files (CRI config, tree, /run/lxc) and "
               "load the image into its CRI: they need ../shared/kube's cluster") if os.environ.get("KUBECONFIG") \
            else "no ../shared/kube beside the repository (or LXCRI_SHARED) and no KUBECONFIG"
        pytest.skip(why)
    out = tmp_path_factory.mktemp("images")
    sh("bash", str(REPO / "scripts" / "build-image.sh"), TAG1, timeout=1200)
    size = int(sh("podman", "image", "inspect", TAG1, "--format", "{{.Size}}").strip())
    print(f"\nagent image {TAG1}: {size / 1e6:.1f} MB")
    assert size <= 150 * 1024 * 1024, f"the agent image is {size / 1e6:.0f} MB (limit 150 MiB)"
    ctr = sh("podman", "create", TAG1, "--version").strip()
    try:
        mark = out / "UPGRADE"
        mark.write_text(f"{time.time()}\n")
        sh("podman", "cp", str(mark), f"{ctr}:/usr/lib/lxcri-agent/tree/UPGRADE")
        sh("podman", "commit", "-q", ctr, TAG2 + "-tmp")
    finally:
        sh("podman", "rm", "-f", ctr, check=False)
    # the tree's id file caches its content hash: recompute it for the changed tree
    # crun refuses hybrid cgroup hosts; no CAP_SYS_RESOURCE on these VMs: rlimits within the hard limit
    runc = ["--runtime", "/usr/sbin/runc"] if Path("/usr/sbin/runc").exists() else []
    runc += ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000", "--network", "none"]
    ctr = sh("podman", "create", *runc, "--entrypoint", "/usr/bin/python3.11", TAG2 + "-tmp", "-I", "-c",
             "from pathlib import Path; from lxcri_agent import treebuild as tb;"
             " p = Path('/usr/lib/lxcri-agent/tree'); (p / tb.ID_FILE).write_text(tb.tree_id(p) + '\\n')").strip()
    try:
        sh("podman", "start", "-a", ctr)
        sh("podman", "commit", "-q", "--change", 'ENTRYPOINT ["lxcri-agent"]', "--change", 'CMD ["run"]', ctr, TAG2)
    finally:
        sh("podman", "rm", "-f", ctr, check=False)
        sh("podman", "rmi", TAG2 + "-tmp", check=False)
    archives = {}
    for tag in (TAG1, TAG2):
        archives[tag] = out / (tag.rsplit(":", 1)[1] + ".tar")
        sh("podman", "save", "-q", "-o", str(archives[tag]), tag)
    return archives


@pytest.fixture(scope="module", params=["containerd", "crio"])
def cluster(request: pytest.FixtureRequest, agent_images: dict[str, Path]) -> Iterator[Cluster]:
    kube = shared_kube()
    assert kube is not None
    cri: str = request.param
    # one cluster per checkout and CRI: two worktrees on one machine never share (or purge) one
    name = f"kta-{hashlib.sha256(str(REPO).encode()).hexdigest()[:6]}-{cri}"
    script = kube / "cluster"
    state = Path(f"/var/tmp/{name}")
    sh(str(script), "--name", name, "--state", str(state), "down", "--purge", check=False)
    t = time.monotonic()
    out = sh(str(script), "up", "--name", name, "--cri", cri, "--state", str(state), timeout=600)
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    c = Cluster(name, cri, script, facts)
    c.timings["cluster up"] = time.monotonic() - t
    try:
        for archive in agent_images.values():
            if cri == "containerd":
                c.exec("ctr", "-a", facts["CRI_SOCKET"].removeprefix("unix://"), "-n", "k8s.io", "images", "import",
                       str(archive))
            else:
                c.exec("podman", "--root", f"{state}/crio/storage", "--runroot", f"{state}/run/crio/storage",
                       "load", "-q", "-i", str(archive))
        # the chart's lxcfs propagates its mount to the node (Bidirectional), which needs the node's
        # path on a shared mount: systemd makes / shared, this cluster's mount namespace is private
        c.exec("sh", "-c", f"mkdir -p {c.lxcfs_path} && mount --bind {c.lxcfs_path} {c.lxcfs_path} && "
               f"mount --make-shared {c.lxcfs_path}")
        yield c
    finally:
        c.exec("umount", "-l", c.lxcfs_path, check=False)
        print(f"\n[{cri}] timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in c.timings.items()))
        sh(*c.cmd, "down", "--purge", check=False)


def values(c: Cluster, tag: str) -> dict[str, Any]:
    """What a user types as `helm install lxcri charts/lxcri --set ...` for this node."""
    repo, t = tag.rsplit(":", 1)
    state = c.state
    return {
        "image": {"repository": repo, "tag": t, "pullPolicy": "Never"},
        "cri": c.cri,
        "install": {
            "prefix": f"{state}/lxcri",
            "stateDir": f"{state}/lxcri-agent",
            "crioConfigDir": f"{state}/etc/crio",
            "containerdConfigDir": f"{state}/etc/containerd",
        },
        "agent": {"criRestartCommand": c.facts["CRI_RESTART"], "reportInterval": 30},
        "lxcfs": {"path": c.lxcfs_path},
        "tests": {"image": BUSYBOX},
    }


def rendered(c: Cluster, tag: str) -> str:
    docs = renderer().rendered_objects(values(c, tag))
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


POD = """
apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: default}
spec:
  runtimeClassName: lxcri
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
    - name: c
      image: BUSYBOX
      imagePullPolicy: Never
      command: ["/bin/sh", "-c", "echo started-by-lxcri; exec sleep 3600"]
"""


def wait_for(what: str, check: Any, timeout: float, every: float = 1.0, c: Cluster | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    if c is not None:
        diagnose(c)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def diagnose(c: Cluster) -> None:
    """What a user would look at: pods, the agent's and operator's last words, events."""
    for args in (("get", "pods", "-A", "-o", "wide"),
                 ("-n", NS, "logs", "-l", "app.kubernetes.io/component=agent", "--tail=15"),
                 ("-n", NS, "logs", "-l", "app.kubernetes.io/component=operator", "--tail=10"),
                 ("get", "events", "-A", "--sort-by=.lastTimestamp")):
        print(f"\n$ kubectl {' '.join(args)}\n" + c.kubectl(*args, check=False)[-3000:])


def pod_phase(c: Cluster, name: str) -> str:
    return c.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False).strip()


@dataclass
class Run:
    snapshot: dict[str, bytes]
    restarts_before: int = 0


RUNS: dict[str, Run] = {}


def restart_count(c: Cluster) -> int:
    log = c.state / "logs" / "restart-cri.log"
    return log.read_text().count("restarted") if log.exists() else 0


def test_install_ready_and_a_pod_of_the_runtimeclass(cluster: Cluster) -> None:
    c = cluster
    RUNS[c.cri] = Run(snapshot=c.cri_config())
    c.kubectl("create", "namespace", NS)
    t0 = time.monotonic()
    c.kubectl("apply", "-f", "-", input=rendered(c, TAG1))
    # what a user does next: start a pod of the RuntimeClass; it waits for a ready node
    c.kubectl("apply", "-f", "-", input=POD.replace("NAME", "lx1").replace("BUSYBOX", BUSYBOX))
    wait_for("lxcri pod Running", lambda: pod_phase(c, "lx1") == "Running", 300, c=c)
    c.timings["apply to Running lxcri pod"] = time.monotonic() - t0
    for component in ("agent", "operator"):
        c.kubectl("wait", "-n", NS, "--for=condition=Ready", "pod", "-l",
                  f"app.kubernetes.io/component={component}", "--timeout=120s")

    # the CRI's config names the handler and the installed tree
    prefix = values(c, TAG1)["install"]["prefix"]
    text = b"".join(c.cri_config().values()).decode()
    assert f"{prefix}/bin/lxcri" in text and "lxcri" in text
    assert c.cri_config() != RUNS[c.cri].snapshot

    # the node: ready label, features, the agent's report; an Event from the operator
    marks = c.owned_marks()
    assert marks.get(f"{PREFIX_KEY}/runtime") == "ready", marks
    assert f"{PREFIX_KEY}/report" in marks
    events = json.loads(c.kubectl("get", "events", "-A", "--field-selector", "involvedObject.kind=Node", "-o", "json"))
    assert any(e.get("reason") == "LxcriReady" for e in events["items"]), events

    # which binary ran the pod: its container is in the runtime root of lxcri, and its liblxc
    # monitor is an executable of the tree the agent installed
    assert "started-by-lxcri" in c.kubectl("logs", "lx1")
    cid = json.loads(c.kubectl("get", "pod", "lx1", "-o", "json"))["status"]["containerStatuses"][0]["containerID"]
    cid = cid.split("://", 1)[1]
    # CRI-O: /run/lxcri/<id>; containerd's shim adds its namespace: /run/lxcri/k8s.io/<id>
    assert c.exec("find", "/run/lxcri", "-maxdepth", "2", "-name", cid).strip(), "not lxcri's container"
    exes = c.exec("sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done", check=False)
    from_tree = {e for e in exes.split() if e.startswith(f"{prefix}/lib/")}
    assert from_tree, f"no process runs from {prefix}/lib: {sorted(set(exes.split()))}"
    print(f"\n[{c.cri}] lxcri pod's runtime processes: {sorted(from_tree)}")


LXCFS_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: lxcfs1
  namespace: default
  annotations: {lxcri.linuxcontainers.org/lxcfs: "true"}
spec:
  runtimeClassName: lxcri
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
    - name: c
      image: BUSYBOX
      imagePullPolicy: Never
      resources:
        limits: {memory: 64Mi, cpu: "1"}
      command: ["/bin/sh", "-c"]
      args: ["grep MemTotal /proc/meminfo; echo cpus=$(grep -c ^processor /proc/cpuinfo); exec sleep 3600"]
"""


def scrape(c: Cluster) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics of the agent pod, fetched from the node as Prometheus would (pod IP, health port)."""
    from prometheus_client.parser import text_string_to_metric_families

    ip = c.kubectl("get", "pod", "-n", NS, "-l", "app.kubernetes.io/component=agent", "-o",
                   "jsonpath={.items[0].status.podIP}").strip()
    ds = json.loads(c.kubectl("get", "daemonset", "-n", NS, "lxcri-agent", "-o", "json"))
    notes = ds["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/path"] == "/metrics"
    url = f"http://{ip}:{notes['prometheus.io/port']}/metrics"
    text = c.exec("python3", "-c", f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=20)"
                  ".read().decode())")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_scraped_from_the_agent(cluster: Cluster) -> None:
    c = cluster
    got = scrape(c)
    names = sorted({k[0] for k in got})
    print(f"\n[{c.cri}] metric names: {names}")
    assert got[("lxcri_agent_installed", ())] == 1
    assert got[("lxcri_agent_smoke_duration_seconds", ())] > 0
    assert got[("lxcri_agent_smoke_success", ())] == 1
    assert [k for k in got if k[0] == "lxcri_agent_tree_info" and got[k] == 1], "no installed tree version"
    assert got[("lxcri_agent_cri_restarts_total", (("action", "restart"), ("service", c.cri)))] >= 1
    # CRI-O's conmon asks `state` after every start; containerd's shim keeps its own account of a
    # running container and asks only on exits
    for command in ("create", "start", "state") if c.cri == "crio" else ("create", "start"):
        key = ("lxcri_runtime_call_duration_seconds_count", (("command", command), ("result", "ok")))
        assert got.get(key, 0) > 0, f"no {command} counted: {sorted(k for k in got if 'call' in k[0])}"
    assert got[("lxcri_containers", (("status", "running"),))] >= 1  # lx1 and its sandbox
    assert ("lxcri_warm_server_up", ()) in got and ("lxcri_warm_server_memory_bytes", ()) in got
    assert got[("lxcri_lxcfs_up", ())] == 1


def test_lxcfs_pod_through_the_charts_lxcfs(cluster: Cluster) -> None:
    c = cluster
    assert c.lxcfs_mounted(), "the chart's lxcfs did not reach the node"
    wait_for("lxcfs label", lambda: c.owned_marks().get(f"{PREFIX_KEY}/lxcfs") == "true", 120, every=3, c=c)
    c.kubectl("apply", "-f", "-", input=LXCFS_POD.replace("BUSYBOX", BUSYBOX))
    wait_for("lxcfs pod Running", lambda: pod_phase(c, "lxcfs1") == "Running", 120, c=c)
    out = wait_for("lxcfs pod output", lambda: "cpus=" in (o := c.kubectl("logs", "lxcfs1")) and o, 30, c=c)
    assert "65536 kB" in out.split("cpus=")[0], out
    assert "cpus=1" in out, out
    c.kubectl("delete", "pod", "lxcfs1", "--wait=true", "--timeout=60s")


def test_upgrade_replaces_the_tree_without_disruption(cluster: Cluster) -> None:
    c = cluster
    prefix = values(c, TAG1)["install"]["prefix"]
    link = Path(prefix) / "bin" / "lxcri"
    before = os.readlink(link)
    pod_before = json.loads(c.kubectl("get", "pod", "lx1", "-o", "json"))
    restarts = restart_count(c)
    t = time.monotonic()
    c.kubectl("apply", "-f", "-", input=rendered(c, TAG2))
    c.kubectl("rollout", "status", "-n", NS, "daemonset/lxcri-agent", "--timeout=240s")
    wait_for("tree switched", lambda: os.readlink(link) != before, 120, c=c)
    c.timings["upgrade"] = time.monotonic() - t
    new_tree = (link.parent / os.readlink(link)).resolve().parent
    assert (new_tree / "UPGRADE").exists(), f"{link} -> {new_tree}: not the new image's tree"
    pod_after = json.loads(c.kubectl("get", "pod", "lx1", "-o", "json"))
    assert pod_after["metadata"]["uid"] == pod_before["metadata"]["uid"]
    assert pod_after["status"]["phase"] == "Running"
    assert pod_after["status"]["containerStatuses"][0]["restartCount"] == 0
    assert pod_after["status"]["containerStatuses"][0]["state"] == pod_before["status"]["containerStatuses"][0]["state"]
    assert restart_count(c) == restarts, "the rolling update restarted the CRI runtime"
    # a new pod starts through the new tree
    c.kubectl("apply", "-f", "-", input=POD.replace("NAME", "lx2").replace("BUSYBOX", BUSYBOX))
    wait_for("second lxcri pod Running", lambda: pod_phase(c, "lx2") == "Running", 120, c=c)


def test_uninstall_by_deleting_the_release(cluster: Cluster) -> None:
    c = cluster
    c.kubectl("delete", "pod", "lx1", "lx2", "--wait=true", "--timeout=120s")
    t = time.monotonic()
    manifest = rendered(c, TAG2)
    # `helm uninstall`: the pre-delete hook's objects in weight order, wait for its Job (it deletes
    # the agents in the foreground; each uninstalls from its node while the release's RBAC still
    # exists), then every object of the release, then the hook's objects (hook-succeeded)
    docs = renderer().hook_objects("pre-delete", values(c, TAG2))
    hooks = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
    c.kubectl("apply", "-f", "-", input=hooks)
    c.kubectl("wait", "-n", NS, "--for=condition=Complete", "job/lxcri-uninstall", "--timeout=400s")
    print(f"\n[{c.cri}] uninstall hook: " + c.kubectl("logs", "-n", NS, "job/lxcri-uninstall", check=False)[-1500:])
    c.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=240s", input=manifest)
    c.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=120s", input=hooks)
    wait_for("the release's pods gone", lambda: not c.kubectl(
        "get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=lxcri", "-o", "name").strip(), 240, every=2, c=c)
    c.timings["uninstall"] = time.monotonic() - t
    left = c.kubectl("get", "-f", "-", "--ignore-not-found", "-o", "name", input=manifest, check=False).strip()
    assert not left, f"objects of the release still there (finalizers?): {left}"
    assert c.owned_marks() == {}, "labels or annotations left on the node"
    assert c.cri_config() == RUNS[c.cri].snapshot, "the CRI config differs from before the install"
    v = values(c, TAG2)["install"]
    for d in (v["prefix"], v["stateDir"]):
        # kubelet made these hostPath dirs (DirectoryOrCreate) and nothing in a pod can remove its
        # own mount point: they must be empty
        assert not Path(d).exists() or not any(Path(d).iterdir()), f"{d}: {sorted(os.listdir(d))}"
    assert c.exec("find", "/run/lxc", "-mindepth", "1", check=False).strip() == "", "leftovers under /run/lxc"
    assert not c.lxcfs_mounted(), "lxcfs still mounted on the node"
    assert restart_count(c) >= 2  # once to add the handler, once to take it away
