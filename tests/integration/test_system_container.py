"""System containers: an unmodified Debian with systemd boots as PID 1, runs its services,
answers systemctl through exec, and shuts down with systemd's own shutdown on a plain stop."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lxcri_testlib import default_config, leftovers, reap
from system_image import unpack

ANNOTATION = "lxcri.linuxcontainers.org/system-container"
# what containerd and CRI-O give a pod by default: no CAP_SYS_ADMIN
POD_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
            "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
            "CAP_AUDIT_WRITE"]
UNIT = """[Unit]
Description=a service of the image
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo started > /out/started'
ExecStop=/bin/sh -c 'echo stopped > /out/stopped'
[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def systemd_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        root = unpack(tmp_path_factory.mktemp("debian") / "rootfs")
    except RuntimeError as e:
        pytest.fail(f"cannot build the systemd image: {e}")
    (root / "etc/systemd/system/lxcri-test.service").write_text(UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "lxcri-test.service").symlink_to("/etc/systemd/system/lxcri-test.service")
    (root / "out").mkdir()
    return root


def system_bundle(tmp_path: Path, rootfs: Path, annotate: bool = True) -> Path:
    import json

    b = tmp_path / "bundle"
    b.mkdir()
    subprocess.run(["cp", "-a", str(rootfs), str(b / "rootfs")], check=True)
    cfg = default_config(["/sbin/init"])
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k] = POD_CAPS
    (tmp_path / "out").mkdir()
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path / "out"),
                          "options": ["rbind", "rw"]})
    if annotate:
        cfg["annotations"] = {ANNOTATION: "true"}
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def wait_running(lxcri, cid: str, timeout: float = 60) -> str:
    end = time.time() + timeout
    state = ""
    while time.time() < end:
        state = lxcri("exec", cid, "systemctl", "is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.5)
    return state


def test_systemd_boots_serves_and_shuts_down(lxcri, systemd_rootfs, tmp_path):
    b = system_bundle(tmp_path, systemd_rootfs)
    cid = lxcri.new_id("systemd")
    pidf = tmp_path / "pid"
    with open(tmp_path / "console", "wb") as out:
        r = lxcri("create", "--bundle", str(b), "--pid-file", str(pidf), cid, stdin=subprocess.DEVNULL,
                  stdout=out, stderr=out, capture_output=False)
    assert r.returncode == 0, (tmp_path / "console").read_text()
    lxcri("start", cid, check=True)
    state = wait_running(lxcri, cid)
    failed = lxcri("exec", cid, "systemctl", "--failed", "--plain", "--no-legend", "--no-pager").stdout
    assert state == "running", f"{state}: failed units: {failed}"
    assert (tmp_path / "out/started").read_text().strip() == "started"
    st = lxcri("exec", cid, "systemctl", "status", "--no-pager", "lxcri-test.service")
    assert st.returncode == 0 and "active (exited)" in st.stdout, st.stdout
    comm = lxcri("exec", cid, "cat", "/proc/1/comm", check=True).stdout.strip()
    assert comm == "systemd"  # the runtime's init helper is gone: systemd is PID 1

    t = time.monotonic()
    lxcri("kill", cid, "TERM", check=True)  # what CRI-O and containerd send on stop
    status = reap(int(pidf.read_text()), timeout=30)
    took = time.monotonic() - t
    assert (tmp_path / "out/stopped").read_text().strip() == "stopped"  # systemd's shutdown stopped it
    assert os.WIFEXITED(status) or os.WIFSIGNALED(status)
    assert took < 20, f"systemd took {took:.1f}s to shut down"
    assert lxcri.state(cid)["status"] == "stopped"
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []


def test_without_the_annotation_term_is_term(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "trap 'echo got-term; exit 3' TERM; while :; do sleep 0.1; done"])
    cid = lxcri.new_id("plain")
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
    lxcri("start", cid, check=True)
    time.sleep(0.3)
    lxcri("kill", cid, "TERM", check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 3
    assert "got-term" in (b.path / "out").read_text()
    lxcri("delete", cid, check=True)
