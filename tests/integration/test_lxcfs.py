"""lxcfs views in a container: its /proc/meminfo, cpuinfo, uptime and cpu/online tell its limits.

A real lxcfs (Debian's) is mounted at a private path for the module; lxcri is pointed at it
with LXCRI_LXCFS_PATH, the container asks with the annotation (or the node setting says so).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_testlib import leftovers, reap

ANNOTATION = "lxcri.linuxcontainers.org/lxcfs"
MIB = 1024 * 1024


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(ln.split()[4] == str(path) and " - fuse.lxcfs " in ln for ln in f)


def _start_lxcfs(path: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("lxcfs")
    if exe is None:
        pytest.fail("lxcfs is not installed (scripts/setup.sh installs Debian's lxcfs)")
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([exe, "-f", "--enable-cfs", "--enable-loadavg", "-p", f"{path}.pid", str(path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 10
    while not _mounted(path):
        if p.poll() is not None or time.time() > end:
            pytest.fail(f"lxcfs did not mount at {path}")
        time.sleep(0.05)
    return p


def _stop_lxcfs(p: subprocess.Popen[bytes], path: Path) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if _mounted(path):
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def lxcfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    path = tmp_path / "lxcfs"
    p = _start_lxcfs(path)
    monkeypatch.setenv("LXCRI_LXCFS_PATH", str(path))
    try:
        yield path, p
    finally:
        _stop_lxcfs(p, path)


SCRIPT = ("grep ^MemTotal: /proc/meminfo; echo cpus=$(grep -c ^processor /proc/cpuinfo); "
          "echo online=$(cat /sys/devices/system/cpu/online); echo uptime=$(cut -d. -f1 /proc/uptime); "
          "echo stat=$(grep -c '^cpu[0-9]' /proc/stat)")


def _limited(make_bundle, annotate: str | None):
    b = make_bundle(["sh", "-c", SCRIPT])
    b.config["linux"]["resources"] = {"memory": {"limit": 64 * MIB}, "cpu": {"quota": 100000, "period": 100000}}
    if annotate is not None:
        b.config.setdefault("annotations", {})[ANNOTATION] = annotate
    return b.save()


def _run(lxcri, b, tmp_path) -> dict[str, str]:
    cid = lxcri.new_id("lxcfs")
    pidf = tmp_path / f"{cid}.pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0, (b.path / "out.err").read_text()
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []
    out = (b.path / "out").read_text()
    got = {}
    for ln in out.splitlines():
        k, _, v = ln.partition("=") if "=" in ln else ln.partition(":")
        got[k.strip()] = v.strip()
    return got


def _host_memtotal() -> str:
    with open("/proc/meminfo") as f:
        return f.readline().split(":", 1)[1].strip()


def test_annotated_container_sees_its_limits(lxcri, make_bundle, tmp_path, lxcfs):
    got = _run(lxcri, _limited(make_bundle, "true"), tmp_path)
    assert got["MemTotal"] == "65536 kB"
    assert got["cpus"] == "1" and got["online"] == "0" and got["stat"] == "1", got
    assert int(got["uptime"]) < 30  # the container's, not the node's


def test_without_the_annotation_the_node_shows(lxcri, make_bundle, tmp_path, lxcfs):
    got = _run(lxcri, _limited(make_bundle, None), tmp_path)
    assert got["MemTotal"] == _host_memtotal()
    assert got["cpus"] == str(os.cpu_count())


def test_node_setting_on_and_annotation_off(lxcri, make_bundle, tmp_path, lxcfs, monkeypatch):
    monkeypatch.setenv("LXCRI_LXCFS", "true")
    assert _run(lxcri, _limited(make_bundle, None), tmp_path)["MemTotal"] == "65536 kB"
    assert _run(lxcri, _limited(make_bundle, "false"), tmp_path)["MemTotal"] == _host_memtotal()


def test_asked_for_but_not_mounted(lxcri, make_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("LXCRI_LXCFS_PATH", str(tmp_path / "nothing-here"))
    b = _limited(make_bundle, "true")
    cid = lxcri.new_id("lxcfs")
    r = lxcri.create(b, cid)
    assert r.returncode != 0
    assert "no lxcfs is mounted at" in r.stderr and str(tmp_path / "nothing-here") in r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_bad_annotation_value_names_the_field(lxcri, make_bundle, tmp_path, lxcfs):
    b = _limited(make_bundle, "maybe")
    cid = lxcri.new_id("lxcfs")
    r = lxcri.create(b, cid)
    assert r.returncode != 0 and ANNOTATION in r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_reads_fail_once_lxcfs_is_gone(lxcri, make_bundle, tmp_path):
    path = tmp_path / "lxcfs-dies"
    p = _start_lxcfs(path)
    try:
        os.environ["LXCRI_LXCFS_PATH"] = str(path)
        b = make_bundle(["sleep", "60"])
        b.config.setdefault("annotations", {})[ANNOTATION] = "true"
        b.config["linux"]["resources"] = {"memory": {"limit": 64 * MIB}}
        b.save()
        cid = lxcri.new_id("lxcfs")
        pidf = tmp_path / f"{cid}.pid"
        assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
        lxcri("start", cid, check=True)
        before = lxcri("exec", cid, "head", "-1", "/proc/meminfo", check=True).stdout
        assert "65536 kB" in before
        p.send_signal(signal.SIGKILL)
        p.wait()
        after = lxcri("exec", cid, "head", "-1", "/proc/meminfo")
        assert after.returncode != 0, after.stdout  # an error, never the node's numbers
        assert _host_memtotal() not in after.stdout
        lxcri("kill", cid, "KILL")
        reap(int(pidf.read_text()))
        lxcri("delete", "--force", cid, check=True)
        assert leftovers(cid, lxcri.root) == []
    finally:
        os.environ.pop("LXCRI_LXCFS_PATH", None)
        _stop_lxcfs(p, path)
