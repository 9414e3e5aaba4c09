"""Shared test helpers and fixtures: a busybox rootfs built from Debian's busybox-static, bundles, and the lxcri CLI.

Integration tests run real containers through liblxc and need root; the test
process makes itself a child subreaper, as conmon and containerd's shim are, so
it can reap the pid-file process and see the container's exit status.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
LXCRI = Path(os.environ.get("LXCRI_BIN", REPO / ".venv" / "bin" / "lxcri"))
BUSYBOX = Path("/bin/busybox")


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() == 0:
        # PR_SET_CHILD_SUBREAPER: orphaned pid-file processes come back to us, as to conmon
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (they run real containers)")
    if not BUSYBOX.exists():
        pytest.fail("busybox-static is not installed (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("rootfs") / "rootfs"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s"], check=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


def default_config(args: list[str]) -> dict[str, Any]:
    """runc's default spec (a peer's, so the tests do not trust lxcri's own `spec`)."""
    d = Path(f"/tmp/lxcri-spec-{uuid.uuid4().hex[:8]}")
    d.mkdir()
    try:
        subprocess.run(["runc", "spec"], cwd=d, check=True)
        cfg: dict[str, Any] = json.loads((d / "config.json").read_text())
    finally:
        shutil.rmtree(d)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"]["readonly"] = False
    return cfg


class Bundle:
    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config

    def save(self) -> Bundle:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self


@pytest.fixture
def make_bundle(rootfs_template: Path, tmp_path: Path) -> Iterator[Any]:
    made: list[Path] = []

    def make(args: list[str], **changes: Any) -> Bundle:
        path = tmp_path / f"bundle-{len(made)}"
        path.mkdir()
        subprocess.run(["cp", "-a", str(rootfs_template), str(path / "rootfs")], check=True)
        cfg = default_config(args)
        for k, v in changes.items():
            cfg[k] = v
        made.append(path)
        return Bundle(path, cfg).save()

    yield make


class Runtime:
    """The lxcri CLI with a private --root; remembers what it created to clean up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: list[str] = []

    def new_id(self, stem: str = "t") -> str:
        cid = f"{stem}-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        return cid

    def __call__(self, *args: str, check: bool = False, timeout: float = 60,
                 **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        r = subprocess.run([str(LXCRI), "--root", str(self.root), *args], text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"lxcri {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def create(self, bundle: Bundle, cid: str, out: Path | None = None, pid_file: Path | None = None,
               extra: tuple[str, ...] = (), **kw: Any) -> subprocess.CompletedProcess[str]:
        """create with the container's stdio on files (as conmon does), not on pipes."""
        out = out or bundle.path / "out"
        args = ["create", "--bundle", str(bundle.path), *extra]
        if pid_file:
            args += ["--pid-file", str(pid_file)]
        with open(out, "ab") as o, open(str(out) + ".err", "ab") as e:
            r = subprocess.run([str(LXCRI), "--root", str(self.root), *args, cid], stdin=subprocess.DEVNULL,
                               stdout=o, stderr=e, timeout=60, **kw)
        return subprocess.CompletedProcess(r.args, r.returncode, out.read_text(), Path(str(out) + ".err").read_text())

    def state(self, cid: str) -> dict[str, Any]:
        r = self("state", cid, check=True)
        st: dict[str, Any] = json.loads(r.stdout)
        return st

    def wait_status(self, cid: str, want: str, timeout: float = 20) -> dict[str, Any]:
        end = time.time() + timeout
        while True:
            st = self.state(cid)
            if st["status"] == want or time.time() > end:
                return st
            reap_any()
            time.sleep(0.02)


def reap_any() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def reap(pid: int, timeout: float = 30) -> int:
    """Reap the pid-file process as a subreaper would; return its wait status."""
    end = time.time() + timeout
    while time.time() < end:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return status
        time.sleep(0.01)
    raise AssertionError(f"pid-file process {pid} did not exit")


@pytest.fixture
def lxcri(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "root")
    yield rt
    for cid in rt.ids:
        rt("delete", "--force", cid)
    reap_any()


def leftovers(cid: str, root: Path) -> list[str]:
    """Everything lxcri could leave behind for a container: runtime dir, mounts, cgroups, processes."""
    found = []
    if (root / cid).exists():
        found.append(str(root / cid))
    found += [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if cid in ln]
    for top in Path("/sys/fs/cgroup").iterdir():
        for dirpath, dirnames, _ in os.walk(top):
            found += [os.path.join(dirpath, d) for d in dirnames if cid in d]
            if dirpath.count("/") > 9:
                dirnames[:] = []
    me = os.getpid()
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != me:
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if cid in cmd and ") Z " not in stat:
                found.append(f"process {p.name}: {cmd[:100]}")
    return found


sys.path.insert(0, str(REPO / "runtime"))
