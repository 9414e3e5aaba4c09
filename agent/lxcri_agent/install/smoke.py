"""A smoke container through the installed runtime: the proof that registering it is safe.

`--version` and `features` show the tree starts; only a container shows that it can create
namespaces, mount a rootfs and run a process on this host. The rootfs is one static binary
(busybox-static in the image) in a throw-away bundle; the container writes a word to a bind
mount and exits, and the runtime is driven exactly as conmon and CRI-O drive it: the runc
command line, an empty environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..hostfs import HostRoot

STATIC_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
WORD = "lxcri-smoke-ok"


def is_static_elf(p: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): runs in an empty rootfs.
    Read from the headers, not with ldd, which a minimal image does not have."""
    import struct

    try:
        with p.open("rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:  # 64-bit little-endian only
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error, IndexError):
        return False
    return not any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))


def find_static_binary() -> Path | None:
    """A statically linked busybox on the agent's side, or None (then there is no smoke test)."""
    for cand in STATIC_CANDIDATES:
        p = Path(cand)
        if p.is_file() and is_static_elf(p):
            return p
    return None


def _spec(out_dir: str) -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/busybox", "sh", "-c", f"echo {WORD} > /out/result"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "lxcri-smoke",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind", "rw"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]},
    }


def run(host: HostRoot, runtime: str, binary: Path, timeout: float = 60.0) -> None:
    """Create, start, wait for, delete one container with ``runtime`` (a host path); AgentError
    saying which step failed."""
    from .. import podenv

    podenv.prepare()
    exe = str(host.real(runtime))
    cid = f"lxcri-agent-smoke-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="lxcri-smoke-") as tmp:
        d = Path(tmp)
        bundle, state, out = d / "bundle", d / "state", d / "out"
        (bundle / "rootfs" / "bin").mkdir(parents=True)
        for sub in ("proc", "dev", "out"):
            (bundle / "rootfs" / sub).mkdir()
        out.mkdir()
        shutil.copy2(binary, bundle / "rootfs" / "bin" / "busybox")
        (bundle / "config.json").write_text(json.dumps(_spec(str(out))))

        def call(*args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
            cmd = [exe, "--root", str(state), *args]
            if log is None:
                return subprocess.run(cmd, capture_output=True, text=True, env={}, cwd=bundle, timeout=timeout)
            # create: the container inherits its stdio, so files, not pipes that would stay open
            with log.open("w") as f:
                r = subprocess.run(cmd, stdout=f, stderr=f, env={}, cwd=bundle, timeout=timeout)
            return subprocess.CompletedProcess(cmd, r.returncode, "", log.read_text())

        try:
            r = call("create", "--bundle", str(bundle), "--pid-file", str(d / "pid"), cid, log=d / "create.log")
            if r.returncode != 0:
                raise AgentError(f"smoke container: create failed: {_last(r.stderr)}")
            r = call("start", cid)
            if r.returncode != 0:
                raise AgentError(f"smoke container: start failed: {_last(r.stderr)}")
            deadline = time.monotonic() + timeout
            while True:
                r = call("state", cid)
                status = json.loads(r.stdout).get("status") if r.returncode == 0 else None
                if status == "stopped":
                    break
                if time.monotonic() > deadline:
                    raise AgentError(f"smoke container still {status} after {timeout:.0f}s")
                time.sleep(0.05)
            said = (out / "result").read_text().strip() if (out / "result").exists() else ""
            if said != WORD:
                raise AgentError("smoke container stopped without running its process")
        finally:
            call("delete", "--force", cid)


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
