"""The real callers of lxcri, set up privately: podman (with conmon) on its own storage, and a
containerd 1.6 instance with its own root, state and socket. No pytest here: bench/callers.py
uses the same set-up.

Nothing here kills by name or pattern: the only process ever signalled is the containerd this
module started, by its pid.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LXCRI = Path(os.environ.get("LXCRI_BIN", REPO / ".venv" / "bin" / "lxcri"))
sys.path.insert(0, str(REPO / "scripts"))
from busybox import make_oci_archive, make_rootfs  # noqa: E402

# podman passes no --root to the runtime (and its cleanup process drops --runtime-flag), so lxcri
# keeps podman's containers in its default root
LXCRI_DEFAULT_ROOT = Path("/run/lxcri")
IMAGE = "localhost/lxcri-e2e-busybox:latest"
ULIMITS = ["nofile=20000:20000", "nproc=20000:20000"]  # no CAP_SYS_RESOURCE on this machine


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def busybox_material(work: Path, image: str) -> tuple[Path, Path]:
    """A busybox rootfs as a plain tarball (for `podman import`) and as an OCI archive (for `ctr`)."""
    rootfs = make_rootfs(work / "rootfs")
    tarball = work / "busybox.tar"
    with tarfile.open(tarball, "w") as t:
        t.add(str(rootfs), arcname=".")
    return tarball, make_oci_archive(rootfs, work / "busybox-oci.tar", image)


def run(cmd: list[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("capture_output", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(cmd, text=True, timeout=timeout, check=False, **kw)


def remove_tree(*paths: Path) -> None:
    """rm -rf, but never through a mount point that is still there (a leftover rootfs)."""
    mounts = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()]
    for path in paths:
        busy = [m for m in mounts if m == str(path) or m.startswith(f"{path}/")]
        if busy:
            raise RuntimeError(f"not removing {path}: still mounted there: {busy}")
        run(["rm", "-rf", str(path)])


class Podman:
    """podman with private --root/--runroot storage and a containers.conf that names lxcri
    `lxcri` (listed in runtime_supports_json, so conmon passes --log-format=json --log)."""

    def __init__(self, work: Path, lxcri: Path = LXCRI) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.conf = work / "containers.conf"
        self.conf.write_text(f"""[containers]
default_ulimits = {ULIMITS!r}
[engine]
runtime_supports_json = ["lxcri", "runc"]
[engine.runtimes]
lxcri = ["{lxcri}"]
runc = ["/usr/bin/runc"]
""".replace("'", '"'))
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.conf))
        self.base = ["podman", "--root", str(work / "storage"), "--runroot", str(work / "run")]

    def __call__(self, *args: str, runtime: str = "lxcri", timeout: float = 120,
                 **kw: Any) -> subprocess.CompletedProcess[str]:
        return run([*self.base, "--runtime", runtime, *args], timeout=timeout, env=self.env, **kw)

    def cmd(self, *args: str, runtime: str = "lxcri") -> list[str]:
        return [*self.base, "--runtime", runtime, *args]

    def close(self) -> None:
        """Remove every container and image, then the storage (unmounting what podman left)."""
        self("rm", "--all", "--force", "--time", "0")
        self("rmi", "--all", "--force")
        run(["umount", "-R", str(self.work / "storage" / "overlay")])
        remove_tree(self.work / "storage", self.work / "run")


class Containerd:
    """A private containerd with its own root, state and socket, and a `lxcri` runtime handler
    registered for the CRI plugin as the node agent writes it."""

    def __init__(self, work: Path, lxcri: Path = LXCRI) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.lxcri = lxcri
        self.sock = work / "containerd.sock"
        # the runc shim keeps its runtime root at /run/containerd/runc/<namespace>: a unique name
        self.namespace = unique("lxcri-e2e")
        self.shim_root = Path("/run/containerd/runc") / self.namespace
        self.config = work / "config.toml"
        self.config.write_text(f'''version = 2
root = "{work}/root"
state = "{work}/state"
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri.options]
    BinaryName = "{lxcri}"
''')
        self.log = work / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "w") as log:
            # own session: a signal meant for the test run never reaches it, and it never reaches us
            self.proc = subprocess.Popen(["containerd", "--config", str(self.config)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        end = time.time() + 30
        while time.time() < end:
            if self.sock.exists() and self.ctr("version").returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"containerd did not come up: {self.log.read_text()[-2000:]}")

    def ctr_cmd(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", self.namespace, *args]

    def ctr(self, *args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run(self.ctr_cmd(*args), timeout=timeout, **kw)

    def tasks(self) -> dict[str, tuple[int, str]]:
        """`ctr task ls` as {id: (pid, status)}."""
        out = self.ctr("task", "ls").stdout.splitlines()[1:]
        return {f[0]: (int(f[1]), f[2]) for f in (ln.split() for ln in out) if len(f) == 3}

    def cleanup_containers(self) -> None:
        for cid in self.tasks():
            self.ctr("task", "kill", "--signal", "SIGKILL", cid)
        end = time.time() + 20
        while time.time() < end and any(st != "STOPPED" for _, st in self.tasks().values()):
            time.sleep(0.1)
        for cid in self.tasks():
            self.ctr("task", "delete", "--force", cid)
        ids = self.ctr("container", "ls", "-q").stdout.split()
        if ids:
            self.ctr("container", "delete", *ids)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cleanup_containers()
            self.proc.terminate()  # our own containerd, by its pid
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
        run(["umount", "-R", str(self.work / "root")])
        remove_tree(self.work / "root", self.work / "state")
        if self.shim_root.is_dir() and not any(self.shim_root.iterdir()):
            self.shim_root.rmdir()
        # the namespace's parent cgroup that the shim's runtime made (runc leaves it too)
        for top in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):  # one that still holds a container's: the leak checks name it
                (top / self.namespace).rmdir()


def lxcri_leftovers(root: Path, ids: list[str]) -> list[str]:
    """What lxcri could leave of these containers: runtime dirs in root and lxcri-monitor processes."""
    found = [str(root / i) for i in ids if (root / i).exists()]
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (p / "stat").read_text()
        except OSError:
            continue
        if ") Z " in stat or "lxcri-monitor" not in cmd.split(" ", 1)[0]:
            continue
        if str(root) in cmd and any(i in cmd for i in ids):
            found.append(f"process {p.name}: {cmd[:200]}")
    return found
