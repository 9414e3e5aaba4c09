"""The node's self-probe (with a scripted runtime) and its publishing on the Node."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lxcri_agent.kube.api import ApiError
from lxcri_agent.operator.reconcile import Reconciler
from lxcri_agent.report.model import Report, owned_annotation, report_annotation
from lxcri_agent.report.probe import ProbeConfig, Result, cgroup_layout, probe
from lxcri_agent.report.publish import Publisher, withdraw
from lxcri_agent.report.reporter import run_reporter

FEATURES = {
    "ociVersionMin": "1.0.0", "ociVersionMax": "1.2.0",
    "linux": {"namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
              "seccomp": {"enabled": True}, "apparmor": {"enabled": False}, "selinux": {"enabled": False},
              "mountExtensions": {"idmap": {"enabled": True}}},
    "annotations": {"org.linuxcontainers.lxc.version": "5.0.2", "org.linuxcontainers.lxcri.version": "0.1.0",
                    "org.linuxcontainers.lxcri.system-containers": "true"},
}


class FakeRuntime:
    """Plays lxcri's command line: records calls, answers from a script."""

    VERBS = ("--version", "features", "create", "start", "state", "delete")

    def __init__(self, features: Any = FEATURES, fail: str = "",
                 states: Sequence[str] = ("running", "stopped"), runs: bool = True) -> None:
        self.runs = runs
        self.features = features
        self.fail = fail
        self.states = list(states)
        self.calls: list[list[str]] = []
        self.bundle: Path | None = None

    def __call__(self, argv: Sequence[str], timeout: float) -> Result:
        argv = list(argv)
        self.calls.append(argv)
        words = [a for a in argv[1:] if not a.startswith("--root")]
        cmd = next((w for w in words if w in self.VERBS), "")
        if cmd == self.fail:
            return Result(1, "", f"lxcri: {cmd}: something went wrong\n")
        if cmd == "--version":
            return Result(0, "lxcri version 0.1.0\nspec: 1.2.0\n", "")
        if cmd == "features":
            text = self.features if isinstance(self.features, str) else json.dumps(self.features)
            return Result(0, text, "")
        if cmd == "create":
            self.bundle = Path(argv[argv.index("--bundle") + 1])
            config = json.loads((self.bundle / "config.json").read_text())
            assert config["process"]["args"][0] == "/bin/busybox"
            assert (self.bundle / "rootfs" / "bin" / "busybox").is_file()
            assert {"destination": "/out", "type": "bind", "source": str(self.bundle / "out"),
                    "options": ["rbind", "rw", "nosuid", "nodev"]} in config["mounts"]
        if cmd == "start" and self.runs and self.bundle is not None:
            (self.bundle / "out" / "result").write_text("lxcri-probe-ok\n")  # what the process does
        if cmd == "state":
            status = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return Result(0, json.dumps({"ociVersion": "1.2.0", "id": argv[-1], "status": status}), "")
        return Result(0, "", "")


@pytest.fixture
def tree(tmp_path: Path) -> ProbeConfig:
    lxcri = tmp_path / "opt/lxcri/bin/lxcri"
    lxcri.parent.mkdir(parents=True)
    lxcri.write_text("#!/bin/sh\n")
    lxcri.chmod(lxcri.stat().st_mode | stat.S_IXUSR)
    smoke = tmp_path / "busybox"
    smoke.write_bytes(b"\x7fELF")
    cg = tmp_path / "cgroup"
    (cg / "unified").mkdir(parents=True)
    (cg / "unified" / "cgroup.controllers").write_text("")
    (cg / "memory").mkdir()
    sysctl = tmp_path / "max_user_namespaces"
    sysctl.write_text("1000\n")
    return ProbeConfig(runtime=(str(lxcri),), root=str(tmp_path / "run"), cgroup_fs=str(cg),
                       mountinfo=str(tmp_path / "no-mountinfo"),
                       userns_sysctl=str(sysctl), smoke_binary=str(smoke), timeout=2, workdir=str(tmp_path))


def test_healthy_node(tree: ProbeConfig) -> None:
    rt = FakeRuntime()
    report = probe(tree, rt)
    assert report == Report(ready=True, cgroup="hybrid", seccomp=True, userns=True, apparmor=False,
                            selinux=False, liblxc="5.0.2", lxcri="0.1.0", system_containers=True, idmap_mounts=True)
    verbs = [c[3] for c in rt.calls if "--root" in c]
    assert verbs[:2] == ["create", "start"] and verbs[-1] == "delete"
    assert rt.bundle is not None and not rt.bundle.exists()  # the smoke bundle is cleaned up


def test_liblxc_version_from_the_version_output(tree: ProbeConfig) -> None:
    features = {**FEATURES, "annotations": {}}

    class Versioned(FakeRuntime):
        def __call__(self, argv: Sequence[str], timeout: float) -> Result:
            if argv[-1] == "--version":
                return Result(0, "lxcri version 0.2.0\nliblxc: 6.0.1\nspec: 1.2.0\n", "")
            return super().__call__(argv, timeout)

    report = probe(tree, Versioned(features=features))
    assert (report.lxcri, report.liblxc) == ("0.2.0", "6.0.1")


def test_missing_tree(tree: ProbeConfig, tmp_path: Path) -> None:
    os.unlink(tree.runtime[0])
    report = probe(tree, FakeRuntime())
    assert not report.ready and "not installed" in report.reason and report.cgroup == "hybrid"


@pytest.mark.parametrize("fail", ["features", "create", "start", "state"])
def test_each_failing_step_is_named(tree: ProbeConfig, fail: str) -> None:
    rt = FakeRuntime(fail=fail)
    report = probe(tree, rt)
    assert not report.ready and fail in report.reason and "something went wrong" in report.reason
    if fail != "features":
        assert rt.calls[-1][-3:-1] == ["delete", "--force"]  # never leaves the smoke container behind


def test_features_that_are_not_oci_features(tree: ProbeConfig) -> None:
    assert "not an OCI features document" in probe(tree, FakeRuntime(features="{}")).reason
    assert "not an OCI features document" in probe(tree, FakeRuntime(features="garbage")).reason


def test_smoke_container_that_never_stops(tree: ProbeConfig) -> None:
    report = probe(ProbeConfig(**{**tree.__dict__, "timeout": 0.3}), FakeRuntime(states=["running"]))
    assert not report.ready and "still running" in report.reason


def test_smoke_container_that_did_not_run_its_process(tree: ProbeConfig) -> None:
    report = probe(tree, FakeRuntime(runs=False))
    assert not report.ready and "without running its process" in report.reason


def test_userns_disabled_by_sysctl(tree: ProbeConfig) -> None:
    Path(tree.userns_sysctl).write_text("0\n")
    assert probe(tree, FakeRuntime()).userns is False


def test_cgroup_layouts(tmp_path: Path) -> None:
    assert cgroup_layout(str(tmp_path / "absent")) is None
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("")
    assert cgroup_layout(str(tmp_path / "v2")) == "v2"
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    assert cgroup_layout(str(tmp_path / "v1")) == "v1"


def test_publisher_writes_only_changes(cluster: Any) -> None:
    n = cluster.add_node("r")
    pub = Publisher(cluster.api, n, cluster.prefix)
    assert pub.publish(Report(ready=True)) is True
    assert pub.publish(Report(ready=True)) is False
    assert cluster.api.requests["patch"] == 1 and cluster.api.requests["get"] == 1
    assert Report.from_json(cluster.annotations(n)[report_annotation(cluster.prefix)]) == Report(ready=True)
    # a restarted agent finds its report in place and writes nothing
    again = Publisher(cluster.api, n, cluster.prefix)
    assert again.publish(Report(ready=True)) is False
    assert pub.publish(Report(ready=False, reason="x")) is True


def test_publisher_restores_a_report_removed_by_hand(cluster: Any) -> None:
    n = cluster.add_node("u")
    pub = Publisher(cluster.api, n, cluster.prefix, reread_every=3)
    assert pub.publish(Report(ready=True)) is True
    cluster.set_annotation(n, report_annotation(cluster.prefix), None)
    assert pub.publish(Report(ready=True)) is False  # trusts memory in between
    assert pub.publish(Report(ready=True)) is False
    assert pub.publish(Report(ready=True)) is True  # re-read: gone, so written again
    assert cluster.api.requests["get"] == 2


def test_withdraw_removes_report_and_operator_labels_only(cluster: Any) -> None:
    n = cluster.add_node("s", labels={"keep": "1"},
                         annotations={report_annotation(cluster.prefix): Report(ready=True).to_json()})
    Reconciler(cluster.api, cluster.prefix).reconcile(cluster.node(n))
    assert cluster.labels(n)[f"{cluster.prefix}/runtime"] == "ready"
    withdraw(cluster.api, n, cluster.prefix)
    assert cluster.labels(n)["keep"] == "1"
    assert not [k for k in cluster.labels(n) if k.startswith(cluster.prefix)]
    notes = cluster.annotations(n)
    assert report_annotation(cluster.prefix) not in notes and owned_annotation(cluster.prefix) not in notes
    withdraw(cluster.api, "lxcri-test-no-such-node", cluster.prefix)  # gone already: fine


def test_run_reporter_publishes_then_stops(cluster: Any, tree: ProbeConfig) -> None:
    n = cluster.add_node("t")
    stop = threading.Event()
    cluster.api.fail("get", ApiError(500, "apiserver down"))  # first round fails: retried soon

    rounds = []
    fake = FakeRuntime(states=["stopped"])

    def runtime(argv: Sequence[str], timeout: float) -> Result:
        if argv[-1] == "--version":
            rounds.append(1)
            if len(rounds) >= 2:
                stop.set()  # ends the loop after this round's publish
        return fake(argv, timeout)

    thread = threading.Thread(target=run_reporter, args=(n,), daemon=True,
                              kwargs={"config": tree, "api": cluster.api, "prefix": cluster.prefix,
                                      "interval": 0.01, "stop": stop, "run": runtime})
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert Report.from_json(cluster.annotations(n)[report_annotation(cluster.prefix)]).ready


def test_run_reporter_survives_a_crashing_probe(cluster: Any, tree: ProbeConfig) -> None:
    n = cluster.add_node("v")
    stop = threading.Event()

    def runtime(argv: Sequence[str], timeout: float) -> Result:
        stop.set()
        raise RuntimeError("bug")

    run_reporter(n, config=tree, api=cluster.api, prefix=cluster.prefix, interval=0.01, stop=stop,
                 run=runtime)
    report = Report.from_json(cluster.annotations(n)[report_annotation(cluster.prefix)])
    assert not report.ready and "RuntimeError: bug" in report.reason


def test_run_reporter_needs_a_node_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(ValueError, match="NODE_NAME"):
        run_reporter(api=object())  # type: ignore[arg-type]


def test_probe_config_from_the_daemonset_environment() -> None:
    cfg = ProbeConfig.from_environment({"LXCRI_HOST_ROOT": "/host", "LXCRI_PREFIX": "/usr/local/lxcri",
                                        "LXCRI_RUNTIME_ROOT": "/run/lxcri"})
    assert cfg.runtime == ("/host/usr/local/lxcri/bin/lxcri",)
    assert cfg.root == "/host/run/lxcri/probe"
    assert cfg.smoke_binary == "/bin/busybox"
    assert ProbeConfig.from_environment({"LXCRI_SMOKE_TEST": "false"}).smoke_binary is None


def test_chart_sets_every_variable_the_reporter_reads() -> None:
    import re

    chart = (Path(__file__).resolve().parents[2] / "charts/lxcri/templates/agent-daemonset.yaml").read_text()
    names = set(re.findall(r"name: (\w+)", chart))
    for var in ("NODE_NAME", "LXCRI_HOST_ROOT", "LXCRI_PREFIX", "LXCRI_RUNTIME_ROOT", "LXCRI_SMOKE_TEST",
                "LXCRI_LABEL_PREFIX", "LXCRI_REPORT_INTERVAL"):
        assert var in names, var


MOUNTS_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
MOUNTS_HYBRID = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
MOUNTS_V1 = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""


def test_cgroup_layout_from_the_host_mount_table(tmp_path: Path, tree: ProbeConfig) -> None:
    from lxcri_agent.report.probe import cgroup_layout_from_mountinfo

    assert cgroup_layout_from_mountinfo(MOUNTS_V2) == "v2"
    assert cgroup_layout_from_mountinfo(MOUNTS_HYBRID) == "hybrid"
    assert cgroup_layout_from_mountinfo(MOUNTS_V1) == "v1"
    assert cgroup_layout_from_mountinfo("garbage\n") is None
    # the host's table wins over what the pod's /sys/fs/cgroup shows
    (tmp_path / "mountinfo").write_text(MOUNTS_V2)
    cfg = ProbeConfig(**{**tree.__dict__, "mountinfo": str(tmp_path / "mountinfo")})
    assert probe(cfg, FakeRuntime()).cgroup == "v2"
