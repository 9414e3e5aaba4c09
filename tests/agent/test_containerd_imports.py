"""containerd ``imports``: used only when the host's own containerd proves it adds our runtime and
nothing else. containerd 1.6 replaces a whole plugin section from an imported file, so on 1.6 the
agent must fall back to the in-place edit; a containerd that merges deeply gets the drop-in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lxcri_agent.errors import AgentError
from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import containerd, containerd_toml, plan
from lxcri_agent.install.settings import Settings

from .conftest import HostFactory, Recorder, Tree, containerd_bin, snapshot

MAIN = """\
version = 2
imports = ["/etc/containerd/conf.d/*.toml"]

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "native"  # set by the admin: must survive
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"""


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class DeepMergingContainerd(containerd.Validator):
    """Stands for a containerd (2.x) that merges imported plugin sections key by key."""

    def chrooted(self) -> bool:
        return True

    def available(self) -> bool:
        return True

    def dump(self, host_config: str) -> dict[str, Any]:
        doc = tomllib.loads(self.host.path(host_config).read_text())
        for pattern in doc.pop("imports", []):
            for p in sorted(self.host.path(os.path.dirname(pattern)).glob(os.path.basename(pattern))):
                doc = _merge(doc, tomllib.loads(p.read_text()))
        return doc


def test_dropin_when_containerd_merges_deeply(make_host: HostFactory, runtime_tree: Tree) -> None:
    root = make_host(containerd=MAIN)
    (root / "etc/containerd/conf.d").mkdir()
    before = snapshot(root)
    host = HostRoot(root)
    rec = Recorder()
    plan.install(host, Settings(), runtime_tree.path, rec, DeepMergingContainerd(host))
    assert (root / "etc/containerd/config.toml").read_text() == MAIN, "the admin's file stays untouched"
    dropin = tomllib.loads((root / "etc/containerd/conf.d/50-lxcri.toml").read_text())
    assert containerd_toml._get(dropin, containerd_toml.runtime_keys(2, "lxcri"))["options"]["BinaryName"]
    assert rec.calls == [("containerd", "restart")]
    plan.uninstall(host, Settings(), rec)
    assert snapshot(root) == before


def _host_with_containerd(root: Path) -> None:
    """The real containerd 1.6 inside the host root, so the agent validates with the host's binary."""
    for src in ("/usr/bin/containerd", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"):
        dst = root / src.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


@pytest.mark.skipif(containerd_bin() is None or os.geteuid() != 0, reason="needs containerd and root (chroot)")
def test_containerd_16_imports_fall_back_to_edit(make_host: HostFactory, runtime_tree: Tree) -> None:
    root = make_host(containerd=MAIN)
    (root / "etc/containerd/conf.d").mkdir()
    _host_with_containerd(root)
    host = HostRoot(root)
    v = containerd.Validator(host)
    assert v.chrooted()
    rec = Recorder()
    plan.install(host, Settings(), runtime_tree.path, rec, v)
    assert list((root / "etc/containerd/conf.d").iterdir()) == [], "the drop-in was tried and withdrawn"
    text = (root / "etc/containerd/config.toml").read_text()
    assert 'snapshotter = "native"  # set by the admin: must survive' in text
    dumped = subprocess.run(
        [
            "chroot",
            str(root),
            "/usr/bin/containerd",
            "--config",
            "/etc/containerd/config.toml",
            "config",
            "dump",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cri = tomllib.loads(dumped)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert cri["snapshotter"] == "native" and "runc" in cri["runtimes"] and "lxcri" in cri["runtimes"]
    plan.uninstall(host, Settings(), rec)
    assert (root / "etc/containerd/config.toml").read_text() == MAIN


@pytest.mark.skipif(containerd_bin() is None, reason="needs containerd")
def test_host_binary_without_its_libraries_runs_directly(make_host: HostFactory, runtime_tree: Tree) -> None:
    """A DaemonSet may mount only the node's containerd binary: it is run as is, not chrooted."""
    root = make_host(containerd=MAIN.replace('imports = ["/etc/containerd/conf.d/*.toml"]\n', ""))
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy2(containerd_bin() or "", root / "usr/bin/containerd")
    v = containerd.Validator(HostRoot(root))
    assert v.available() and v.hosts_own() and not v.chrooted()
    plan.install(HostRoot(root), Settings(), runtime_tree.path, Recorder(), v)
    assert "lxcri" in (root / "etc/containerd/config.toml").read_text()
    with pytest.raises(AgentError, match="containerd rejects"):
        (root / "etc/containerd/bad.toml").write_text("version = 2\n[plugins\n")
        v.dump("/etc/containerd/bad.toml")
