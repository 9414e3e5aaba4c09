"""A container through the installed tree with an empty environment, as CRI-O calls runtimes.

The runc contract: ``lxcri --root R create --bundle B --pid-file P ID``, ``start``, ``state``,
``delete``. Needs the real runtime (skips while the tree holds the stand-in) and root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import containerd, plan
from lxcri_agent.install.settings import Settings

from .conftest import HostFactory, Recorder, Tree
from .oci import bundle

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="containers need root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="bundles come from `runc spec`"),
]


def test_container_lifecycle_with_env_i(make_host: HostFactory, runtime_tree: Tree, tmp_path: Path) -> None:
    if runtime_tree.stub:
        pytest.skip("the runtime is not in this checkout yet: the tree holds a stub")
    root = make_host(crio=True)
    host = HostRoot(root)
    assert plan.install(host, Settings(), runtime_tree.path, Recorder(), containerd.Validator(host)).exit_code == 0
    exe = str(root / "opt/lxcri/bin/lxcri")
    state_root = tmp_path / "state"
    b = bundle(tmp_path / "bundle", ["/bin/sh", "-c", "echo through-the-tree; exit 5"])
    cid = f"agent-e2e-{os.getpid()}"

    def lxcri(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["env", "-i", exe, "--root", str(state_root), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=b,
        )

    out = tmp_path / "stdout"
    try:
        # the container inherits create's stdio (as under conmon): files, not pipes that would stay open
        with out.open("w") as f:
            r = subprocess.run(
                [
                    "env",
                    "-i",
                    exe,
                    "--root",
                    str(state_root),
                    "create",
                    "--bundle",
                    str(b),
                    "--pid-file",
                    str(b / "pid"),
                    cid,
                ],
                stdout=f,
                stderr=f,
                timeout=60,
                cwd=b,
            )
        assert r.returncode == 0, out.read_text()
        st = json.loads(lxcri("state", cid).stdout)
        assert st["status"] == "created" and st["pid"] > 0
        assert int((b / "pid").read_text()) > 0
        assert lxcri("start", cid).returncode == 0
        deadline = time.monotonic() + 30
        while json.loads(lxcri("state", cid).stdout)["status"] != "stopped":
            assert time.monotonic() < deadline, "container did not stop"
            time.sleep(0.1)
        assert "through-the-tree" in out.read_text()
    finally:
        d = lxcri("delete", "--force", cid)
    assert d.returncode == 0, d.stderr
    assert lxcri("state", cid).returncode != 0


def test_hooks_run_through_the_frozen_tree(make_host: HostFactory, runtime_tree: Tree, tmp_path: Path) -> None:
    """The runtime runs its hook points by re-executing itself (`lxcri hook`); frozen, the hooks
    must not inherit the bundle's LD_LIBRARY_PATH."""
    if runtime_tree.stub:
        pytest.skip("the runtime is not in this checkout yet: the tree holds a stub")
    root = make_host(crio=True)
    host = HostRoot(root)
    assert plan.install(host, Settings(), runtime_tree.path, Recorder(), containerd.Validator(host)).exit_code == 0
    exe = str(root / "opt/lxcri/bin/lxcri")
    log = tmp_path / "hooks.log"
    b = bundle(tmp_path / "bundle", ["/bin/true"])
    cfg = json.loads((b / "config.json").read_text())

    def hook(name: str) -> dict[str, object]:
        return {"path": "/bin/sh", "args": ["sh", "-c", f'cat >/dev/null; echo "{name} [$LD_LIBRARY_PATH]" >> {log}']}

    cfg["hooks"] = {h: [hook(h)] for h in ("prestart", "createRuntime", "poststart", "poststop")}
    (b / "config.json").write_text(json.dumps(cfg))
    state_root = tmp_path / "state"
    cid = f"agent-hooks-{os.getpid()}"

    def lxcri(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["env", "-i", exe, "--root", str(state_root), *args], capture_output=True, text=True, timeout=60, cwd=b
        )

    try:
        with (tmp_path / "out").open("w") as f:
            r = subprocess.run(
                [
                    "env",
                    "-i",
                    exe,
                    "--root",
                    str(state_root),
                    "create",
                    "--bundle",
                    str(b),
                    "--pid-file",
                    str(b / "pid"),
                    cid,
                ],
                stdout=f,
                stderr=f,
                timeout=60,
                cwd=b,
            )
        assert r.returncode == 0, (tmp_path / "out").read_text()
        assert lxcri("start", cid).returncode == 0
        deadline = time.monotonic() + 30
        while json.loads(lxcri("state", cid).stdout)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        assert lxcri("delete", "--force", cid).returncode == 0
    ran = log.read_text().splitlines()
    assert ran == ["prestart []", "createRuntime []", "poststart []", "poststop []"], ran
