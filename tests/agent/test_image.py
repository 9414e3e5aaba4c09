"""The agent image, when one is given (LXCRI_TEST_IMAGE): its agent installs its tree into a host root
and the tree runs there with an empty environment; uninstall restores every byte.

Building the image needs a base image and the registries, so the build is not part of the
suite; build it, then point this test at it, e.g. (on this machine, where crun refuses the
hybrid cgroup layout and there is no CAP_SYS_RESOURCE):

    podman --runtime /usr/sbin/runc build --ulimit nofile=20000:20000 -t lxcri-agent:test .
    LXCRI_TEST_IMAGE=lxcri-agent:test \\
    LXCRI_TEST_PODMAN="podman --runtime /usr/sbin/runc" pytest tests/agent/test_image.py
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import GOLDEN, HostFactory, snapshot

IMAGE = os.environ.get("LXCRI_TEST_IMAGE")
PODMAN = shlex.split(os.environ.get("LXCRI_TEST_PODMAN", "podman"))
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not IMAGE, reason="set LXCRI_TEST_IMAGE to an agent image to test it"),
    pytest.mark.skipif(shutil.which(PODMAN[0]) is None, reason="needs podman"),
]


def agent(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # as the DaemonSet runs it: privileged, host PID and cgroups, the node under /host
    cmd = [
        *PODMAN,
        "run",
        "--rm",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=20000:20000",
        "--privileged",
        "--cgroupns=host",
        "--pid=host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "-v",
        f"{root}:/host",
        IMAGE or "",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_image_installs_a_self_contained_runtime(make_host: HostFactory) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-kubeadm-default.toml").read_text(), crio=True)
    before = snapshot(root)
    cmds = ["--restart-cmd", "containerd=true", "--restart-cmd", "crio=true"]
    r = agent(root, "install", "--smoke", "on", *cmds)
    assert r.returncode == 0, r.stderr
    v = subprocess.run(["env", "-i", str(root / "opt/lxcri/bin/lxcri"), "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and "lxcri" in v.stdout, v.stderr
    r = agent(root, "uninstall", *cmds)
    assert r.returncode == 0, r.stderr
    assert snapshot(root) == before
