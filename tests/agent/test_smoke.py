"""The smoke container gate: a runtime that cannot run a container is never registered."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lxcri_agent.errors import AgentError
from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import containerd, plan, smoke
from lxcri_agent.install.settings import Settings

from .conftest import GOLDEN, HostFactory, Recorder, Tree, snapshot

BUSYBOX = smoke.find_static_binary()
pytestmark = [
    pytest.mark.skipif(BUSYBOX is None, reason="needs a static busybox (Debian busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="containers need root"),
]


def _install(root: Path, tree: Tree, rec: Recorder) -> plan.Outcome:
    host = HostRoot(root)
    return plan.install(host, Settings(), tree.path, rec, containerd.Validator(host), smoke_binary=BUSYBOX)


def test_smoke_container_passes_before_registration(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    if runtime_tree.stub:
        pytest.skip("the runtime is not in this checkout yet: the tree holds a stub")
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text(), crio=True)
    assert _install(root, runtime_tree, recorder).exit_code == 0
    assert (root / "etc/crio/crio.conf.d/50-lxcri.conf").exists()


def test_failed_smoke_registers_nothing(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, tmp_path: Path
) -> None:
    """A runtime that starts but cannot run containers (the stand-in, or a broken real tree)."""
    tree = runtime_tree
    if not runtime_tree.stub:
        broken = tmp_path / "broken-tree"
        import shutil

        shutil.copytree(runtime_tree.path, broken, symlinks=True)
        for helper in (broken / "_internal/lxcri/libexec/bin").glob("*"):
            helper.write_bytes(b"#!/bin/false\n")
        tree = Tree(broken, stub=False)
    text = (GOLDEN / "containerd/v2-admin-comments.toml").read_text()
    root = make_host(containerd=text, crio=True)
    before = {k: v for k, v in snapshot(root).items() if k.startswith("etc/")}
    with pytest.raises(AgentError, match="smoke container"):
        _install(root, tree, recorder)
    assert {k: v for k, v in snapshot(root).items() if k.startswith("etc/")} == before
    assert recorder.calls == []
    plan.uninstall(HostRoot(root), Settings(), recorder)  # takes the tree away again
    assert not (root / "opt").exists()


def test_static_binary_is_found_without_ldd(tmp_path: Path) -> None:
    """The minimal image has no ldd: a static busybox is recognised from its ELF headers."""
    from lxcri_agent.install.smoke import is_static_elf

    assert is_static_elf(Path("/bin/busybox"))  # busybox-static (scripts/setup.sh)
    assert not is_static_elf(Path(sys.executable).resolve())  # dynamically linked
    (tmp_path / "text").write_text("#!/bin/sh\n")
    assert not is_static_elf(tmp_path / "text")
