"""`run`, the DaemonSet's main: install, probes, SIGTERM, and uninstall unless it is a rolling update."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lxcri_agent.health import Health
from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import containerd
from lxcri_agent.install.settings import Settings
from lxcri_agent.run import RunOptions, run

from .conftest import GOLDEN, HostFactory, Recorder, Tree, snapshot
from .fake_cluster import FakeCluster, daemonset, node


def probe(health: Health, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://{health.address}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(cond, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


class Agent:
    """`run` in a thread, with a stop event standing for SIGTERM."""

    def __init__(
        self,
        root: Path,
        tree: Tree,
        cluster: FakeCluster | None,
        rec: Recorder,
        daemonset_name: str | None = "lxcri-agent",
    ) -> None:
        self.stop = threading.Event()
        self.events: list[tuple[str, list[tuple[str, str]]]] = []
        self.health = Health()
        self.rc: int | None = None
        opts = RunOptions(
            listen="127.0.0.1:0",
            node_name="node-1",
            namespace="kube-system",
            daemonset=daemonset_name,
            tree=tree.path,
            retry=0.2,
        )
        host = HostRoot(root)

        def target() -> None:
            self.rc = run(
                host,
                Settings(),
                opts,
                rec,
                containerd.Validator(host, None),
                stop=self.stop,
                cluster=cluster,
                health=self.health,
                withdraw=lambda: self.events.append(("withdraw", list(rec.calls))),
            )

        self.thread = threading.Thread(target=target)
        self.thread.start()
        wait_for(lambda: bool(self.health.address))

    def sigterm(self) -> int | None:
        self.stop.set()
        self.thread.join(60)
        return self.rc


def cluster_with(selecting: bool) -> FakeCluster:
    c = FakeCluster()
    c.nodes["node-1"] = node("node-1", {"lxcri": "yes"})
    c.daemonsets[("kube-system", "lxcri-agent")] = daemonset("lxcri-agent", {"lxcri": "yes" if selecting else "x"})
    return c


def test_probes_and_uninstall_when_leaving(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text(), crio=True)
    before = snapshot(root)
    cluster = cluster_with(selecting=False)
    agent = Agent(root, runtime_tree, cluster, recorder)
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    assert probe(agent.health, "/healthz")[0] == 200
    assert probe(agent.health, "/nope")[0] == 404
    restarts_before_leaving = list(recorder.calls)
    assert agent.sigterm() == 0
    assert cluster.reads >= 1
    assert snapshot(root) == before
    # the report and labels go first, while the runtime is still in place
    assert agent.events == [("withdraw", restarts_before_leaving)]


def test_rolling_update_leaves_lxcri_installed(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(crio=True)
    agent = Agent(root, runtime_tree, cluster_with(selecting=True), recorder)
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    installed = snapshot(root)
    assert agent.sigterm() == 0
    assert snapshot(root) == installed
    assert agent.events == [], "a rolling update keeps the report"
    assert recorder.calls == [("crio", "restart")]  # no second restart for the rolling update


def test_api_unreachable_keeps_lxcri(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(crio=True)
    cluster = cluster_with(selecting=False)
    cluster.broken = True
    agent = Agent(root, runtime_tree, cluster, recorder)
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    agent.sigterm()
    assert (root / "etc/crio/crio.conf.d/50-lxcri.conf").exists()


@pytest.mark.parametrize("status", [401, 403])
def test_revoked_credentials_mean_the_release_is_gone(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, status: int
) -> None:
    """Deleting the release takes the agent's ServiceAccount or RBAC: a 401 or 403 is that answer,
    not an unreachable API, and the agent uninstalls (issue 11 F)."""
    root = make_host(crio=True)
    before = snapshot(root)
    cluster = cluster_with(selecting=True)
    agent = Agent(root, runtime_tree, cluster, recorder)
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    cluster.refuses = status
    assert agent.sigterm() == 0
    assert snapshot(root) == before
    assert recorder.calls == [("crio", "restart"), ("crio", "restart")]


def test_not_ready_while_restart_is_owed(make_host: HostFactory, runtime_tree: Tree) -> None:
    root = make_host(crio=True)
    rec = Recorder(fail=True)
    agent = Agent(root, runtime_tree, cluster_with(selecting=True), rec)
    wait_for(lambda: "owed" in str(probe(agent.health, "/readyz")[1]["detail"]))
    assert probe(agent.health, "/readyz")[0] == 503
    assert probe(agent.health, "/healthz")[0] == 200
    rec.fail = False  # systemd is back: the retry loop finishes the job
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    agent.sigterm()


def test_install_error_is_reported_unready(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(containerd="version = 2\n[broken\n")
    agent = Agent(root, runtime_tree, cluster_with(selecting=True), recorder)
    wait_for(lambda: "not valid TOML" in str(probe(agent.health, "/readyz")[1]["detail"]))
    agent.sigterm()


@pytest.mark.skipif(os.geteuid() != 0, reason="writes a host root under /tmp as root")
def test_cli_run_handles_sigterm(make_host: HostFactory, runtime_tree: Tree, tmp_path: Path) -> None:
    """The real process: SIGTERM ends it, and without a DaemonSet name it uninstalls."""
    root = make_host(crio=True)
    before = snapshot(root)
    exe = Path(sys.executable).parent / "lxcri-agent"
    env = {**os.environ, "LXCRI_AGENT_TREE": str(runtime_tree.path), "LXCRI_AGENT_SMOKE": "off"}
    p = subprocess.Popen(
        [
            str(exe),
            "--log-format",
            "json",
            "run",
            "--host-root",
            str(root),
            "--listen",
            "127.0.0.1:0",
            "--restart-cmd",
            "crio=true",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: (root / "etc/crio/crio.conf.d/50-lxcri.conf").exists())
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "uninstalled" for e in lines), err
    assert snapshot(root) == before


def test_unexpected_error_keeps_the_loop_alive(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lxcri_agent.install import plan

    real = plan.install
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> plan.Outcome:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(plan, "install", flaky)
    root = make_host(crio=True)
    agent = Agent(root, runtime_tree, cluster_with(selecting=True), recorder)
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    assert calls["n"] >= 2
    agent.sigterm()


def test_metrics_served_and_the_runtime_told_where_to_log(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    """/metrics beside the probes; the installed runtime's settings name the call log the agent
    created in the runtime root (which the chart mounts), and uninstall leaves neither behind."""
    from prometheus_client.parser import text_string_to_metric_families

    root = make_host(crio=True)
    (root / "run" / "lxcri").mkdir(parents=True)  # the chart's hostPath for the runtime root
    before = snapshot(root)
    agent = Agent(root, runtime_tree, cluster_with(selecting=False), recorder)
    wait_for(lambda: probe(agent.health, "/readyz")[0] == 200)
    settings = json.loads((root / "opt/lxcri/etc/lxcri.json").read_text())
    assert settings == {"call_log": "/run/lxcri/calls.log", "lxcfs_path": "/var/lib/lxcfs"}
    wait_for(lambda: (root / "run/lxcri/calls.log").exists())
    (root / "run/lxcri/calls.log").write_text("create 0 120000\nstart 0 5000\nstate 1 900\n")
    with urllib.request.urlopen(f"http://{agent.health.address}/metrics", timeout=10) as r:
        text = r.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("lxcri_agent_installed", ())] == 1
    assert samples[("lxcri_agent_cri_restarts_total", (("action", "restart"), ("service", "crio")))] >= 1
    assert samples[("lxcri_runtime_call_duration_seconds_count", (("command", "create"), ("result", "ok")))] >= 1
    assert samples[("lxcri_runtime_call_duration_seconds_count", (("command", "state"), ("result", "error")))] >= 1
    assert ("lxcri_lxcfs_up", ()) in samples
    assert agent.sigterm() == 0
    assert snapshot(root) == before
