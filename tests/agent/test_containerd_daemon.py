"""A real private containerd 1.6 (own root, state and socket) on the config the agent edited.

It must start with the edited file (a config that wedges containerd would wedge the node), its
`config dump` must show the lxcri runtime, and — once the runtime is in this checkout — a
container must run through the installed tree, the binary the registration names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import containerd, plan
from lxcri_agent.install.settings import Settings

from .conftest import HostFactory, Recorder, Tree, containerd_bin
from .oci import busybox_rootfs, image_archive

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        containerd_bin() is None or shutil.which("ctr") is None,
        reason="needs containerd and ctr (Debian package containerd)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd needs root"),
]

ADMIN_CONFIG = """\
# node config, managed by the platform team: comments stay
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"  # runc stays the default
  snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"""


class Containerd:
    def __init__(self, config: Path, base: Path) -> None:
        self.sock = base / "containerd.sock"
        self.base = base
        self.log = (base / "containerd.log").open("w")
        self.proc = subprocess.Popen(
            [
                containerd_bin() or "",
                "--config",
                str(config),
                "--root",
                str(base / "root"),
                "--state",
                str(base / "state"),
                "--address",
                str(self.sock),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while self.ctr("version").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("containerd did not come up: " + (base / "containerd.log").read_text()[-2000:])
            time.sleep(0.2)

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.sock), "--namespace", "lxcri-test", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def installed(make_host: HostFactory, runtime_tree: Tree) -> Path:
    root = make_host(containerd=ADMIN_CONFIG)
    host = HostRoot(root)
    out = plan.install(host, Settings(), runtime_tree.path, Recorder(), containerd.Validator(host, containerd_bin()))
    assert out.exit_code == 0
    return root


@pytest.fixture
def daemon(installed: Path, tmp_path: Path) -> Iterator[Containerd]:
    base = Path(os.environ.get("LXCRI_TEST_CTD_DIR", "/tmp")) / f"lxcri-ctd-{os.getpid()}-{tmp_path.name[-8:]}"
    base.mkdir(parents=True)
    d = Containerd(installed / "etc/containerd/config.toml", base)
    try:
        yield d
    finally:
        d.stop()
        subprocess.run(["umount", "-R", str(base / "state")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        for top in Path("/sys/fs/cgroup").iterdir():  # the namespace's parent cgroup (runc leaves it too)
            with contextlib.suppress(OSError):
                (top / "lxcri-test").rmdir()


def test_config_dump_shows_lxcri(installed: Path) -> None:
    r = subprocess.run(
        [containerd_bin() or "", "--config", str(installed / "etc/containerd/config.toml"), "config", "dump"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    cri = tomllib.loads(r.stdout)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert cri["runtimes"]["lxcri"]["runtime_type"] == "io.containerd.runc.v2"
    assert cri["runtimes"]["lxcri"]["options"]["BinaryName"] == "/opt/lxcri/bin/lxcri"
    assert cri["default_runtime_name"] == "runc" and cri["snapshotter"] == "native"
    assert "runc" in cri["runtimes"]


def test_containerd_starts_on_the_edited_config(daemon: Containerd) -> None:
    plugins = daemon.ctr("plugins", "ls")
    assert plugins.returncode == 0
    cri = [line for line in plugins.stdout.splitlines() if "io.containerd.grpc.v1" in line and " cri " in line]
    assert cri and cri[0].split()[-1] == "ok", plugins.stdout


def test_container_runs_through_the_installed_tree(
    daemon: Containerd, installed: Path, runtime_tree: Tree, tmp_path: Path
) -> None:
    if runtime_tree.stub:
        pytest.skip("the runtime is not in this checkout yet: the tree holds a stub")
    archive = image_archive(
        tmp_path / "busybox.tar", busybox_rootfs(tmp_path / "rootfs"), "docker.io/library/lxcri-busybox:test"
    )
    r = daemon.ctr("images", "import", "--snapshotter", "native", str(archive))
    assert r.returncode == 0, r.stderr
    binary = str(installed / "opt/lxcri/bin/lxcri")
    r = daemon.ctr(
        "run",
        "--rm",
        "--snapshotter",
        "native",
        "--runc-binary",
        binary,
        "docker.io/library/lxcri-busybox:test",
        "lxcri-e2e",
        "/bin/sh",
        "-c",
        "echo through-lxcri; exit 7",
    )
    assert "through-lxcri" in r.stdout, r.stderr
    assert r.returncode == 7, r.stderr
