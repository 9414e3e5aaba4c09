"""The installed `lxcri-agent` entry point: exit codes, one-line errors, JSON logs off a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import GOLDEN, HostFactory, Tree, snapshot

EXE = str(Path(sys.executable).parent / "lxcri-agent")


def agent(*args: str, tree: Tree | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {})}
    if tree is not None:
        env["LXCRI_AGENT_TREE"] = str(tree.path)
        env["LXCRI_AGENT_SMOKE"] = "off" if tree.stub else "auto"  # the stand-in cannot run containers
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=300)


def test_install_status_uninstall(make_host: HostFactory, runtime_tree: Tree) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v3-containerd2.toml").read_text(), crio=True)
    before = snapshot(root)
    cmds = ["--restart-cmd", "containerd=true", "--restart-cmd", "crio-restart=true"]
    r = agent("install", "--host-root", str(root), *cmds, tree=runtime_tree)
    assert r.returncode == 0, r.stderr
    logs = [json.loads(line) for line in r.stderr.splitlines()]  # not a tty: JSON lines
    assert logs[-1]["event"] == "installed" and logs[-1]["level"] == "info" and "timestamp" in logs[-1]
    st = agent("status", "--host-root", str(root))
    assert st.returncode == 0 and json.loads(st.stdout)["healthy"] is True
    r = agent("uninstall", "--host-root", str(root), *cmds)
    assert r.returncode == 0, r.stderr
    assert snapshot(root) == before
    assert agent("status", "--host-root", str(root)).returncode == 1


def test_restart_owed_without_systemd_exits_3(make_host: HostFactory, runtime_tree: Tree, tmp_path: Path) -> None:
    """A running CRI-O and no way to restart it: installed, but the handler is not usable yet."""
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "comm").write_text("crio\n")
    root = make_host(crio=True)
    r = agent("install", "--host-root", str(root), tree=runtime_tree, env={"LXCRI_PROC": str(proc)})
    assert r.returncode == 3
    assert "crio must restart" in r.stderr and "no systemd" in r.stderr


def test_no_restart_owed_when_the_cri_is_not_running(
    make_host: HostFactory, runtime_tree: Tree, tmp_path: Path
) -> None:
    """Without systemd, on a node whose CRI runtime is not running (being provisioned): it reads
    the config when it starts, so install is complete (exit 0, not 3)."""
    (tmp_path / "proc").mkdir()
    root = make_host(crio=True)
    r = agent("install", "--host-root", str(root), tree=runtime_tree, env={"LXCRI_PROC": str(tmp_path / "proc")})
    assert r.returncode == 0, r.stderr


def test_errors_are_one_clear_line(tmp_path: Path, runtime_tree: Tree) -> None:
    r = agent("install", "--host-root", str(tmp_path / "missing"), tree=runtime_tree)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith("lxcri-agent: host root ")
    assert "Traceback" not in r.stderr


def test_bad_restart_cmd(tmp_path: Path) -> None:
    r = agent("uninstall", "--host-root", str(tmp_path), "--restart-cmd", "nonsense")
    assert r.returncode != 0 and "SERVICE=COMMAND" in r.stderr


def test_failing_restart_command_is_reported(make_host: HostFactory, runtime_tree: Tree) -> None:
    root = make_host(crio=True)
    r = agent("install", "--host-root", str(root), "--restart-cmd", "crio=false", tree=runtime_tree)
    assert r.returncode == 3 and "'false' failed" in r.stderr


def test_settings_from_the_charts_environment(make_host: HostFactory, runtime_tree: Tree) -> None:
    """The DaemonSet passes its settings as LXCRI_* variables (charts/lxcri agent-daemonset)."""
    root = make_host(crio=True)
    (root / "etc/crio").rename(root / "etc/crio-custom")
    env = {
        **os.environ,
        "LXCRI_HOST_ROOT": str(root),
        "LXCRI_PREFIX": "/opt/lxcri-custom",
        "LXCRI_STATE_DIR": "/var/lib/lxcri-custom",
        "LXCRI_CRIO_CONFIG_DIR": "/etc/crio-custom",
        "LXCRI_RUNTIME_ROOT": "/run/lxcri-custom",
        "LXCRI_TREE": str(runtime_tree.path),
        "LXCRI_SMOKE_TEST": "false",
        "LXCRI_RESTART_CMDS": "crio=true",
        "LXCRI_LOG_LEVEL": "warning",
    }
    r = subprocess.run([EXE, "install"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "log level warning: the info lines are not printed"
    dropin = (root / "etc/crio-custom/crio.conf.d/50-lxcri.conf").read_text()
    assert 'runtime_path = "/opt/lxcri-custom/bin/lxcri"' in dropin
    assert 'runtime_root = "/run/lxcri-custom"' in dropin
    assert (root / "opt/lxcri-custom/bin/lxcri").is_symlink()
    assert (root / "var/lib/lxcri-custom/manifest.json").is_file()
    r = subprocess.run([EXE, "uninstall"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not (root / "opt/lxcri-custom").exists() and not (root / "var/lib/lxcri-custom").exists()


def test_sigkill_during_restart_is_finished_by_the_next_run(make_host: HostFactory, runtime_tree: Tree) -> None:
    """The process dies after writing the config but before containerd restarted: the restart is
    owed in the manifest, and the next run (with nothing else to change) still does it."""
    import signal
    import time

    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text())
    marker = root / "restarted"
    env = {**os.environ, "LXCRI_TREE": str(runtime_tree.path), "LXCRI_SMOKE_TEST": "false"}
    p = subprocess.Popen(
        [EXE, "install", "--host-root", str(root), "--restart-cmd", "containerd=sleep 60"],
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    manifest = root / "var/lib/lxcri-agent/manifest.json"
    deadline = time.monotonic() + 60
    while not (manifest.exists() and "containerd" in json.loads(manifest.read_text())["pending"]):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)  # the agent and its restart command
    p.wait()
    assert "lxcri" in (root / "etc/containerd/config.toml").read_text()
    r = subprocess.run(
        [EXE, "install", "--host-root", str(root), "--restart-cmd", f"containerd=touch {marker}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert marker.exists(), "the owed restart was not done"
    assert json.loads(manifest.read_text())["pending"] == []
