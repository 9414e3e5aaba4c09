"""A Debian 12 root filesystem with systemd, built offline-from-the-mirror with mmdebstrap.

For the system-container tests (a real, unmodified systemd as PID 1). Built once per
package list into CACHE (about 25 s and 120 MB), as the other tests build busybox rootfs.
The tarball is also what the cluster tests turn into an OCI image.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("LXCRI_TEST_CACHE", "/var/cache/lxcri-test"))
PACKAGES = ["systemd", "systemd-sysv", "dbus", "procps"]
SUITE = "bookworm"


def systemd_tarball() -> Path:
    """The cached tarball, built first if missing. Raises RuntimeError saying why it cannot be."""
    key = hashlib.sha256(" ".join([SUITE, *PACKAGES]).encode()).hexdigest()[:12]
    out = CACHE / f"debian-systemd-{key}.tar"
    if out.exists():
        return out
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed (scripts/setup.sh installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others then find it
        if out.exists():
            return out
        tmp = out.with_suffix(".tmp")
        cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", f"--include={','.join(PACKAGES)}", SUITE, str(tmp)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"mmdebstrap failed: {r.stderr[-2000:]}")
        tmp.rename(out)
    return out


def unpack(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(systemd_tarball()), "-C", str(dest)], check=True)
    return dest


IMAGE = "localhost/lxcri-test/debian-systemd:1"


def systemd_image_archive() -> Path:
    """The rootfs as a docker-archive image whose command is /sbin/init, for a cluster to load
    (podman import, then save; cached beside the tarball). No STOPSIGNAL: as most images,
    it leaves the stop signal to the runtime, which turns SIGTERM into systemd's SIGRTMIN+3."""
    tar = systemd_tarball()
    out = tar.with_suffix(".image-exec-form.tar")  # CMD in exec form: /sbin/init itself is PID 1
    if out.exists():
        return out
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            return out
        store = CACHE / "podman-store"
        pod = ["podman", "--root", str(store / "root"), "--runroot", str(store / "run"), "--storage-driver", "vfs"]
        r = subprocess.run([*pod, "import", "--change", 'CMD ["/sbin/init"]',
                            str(tar), IMAGE], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"podman import failed: {r.stderr[-2000:]}")
        tmp = out.with_suffix(".tmp")
        r = subprocess.run([*pod, "save", "--format", "docker-archive", "-o", str(tmp), IMAGE],
                           capture_output=True, text=True, timeout=600)
        subprocess.run([*pod, "rmi", "-f", IMAGE], capture_output=True)
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"podman save failed: {r.stderr[-2000:]}")
        tmp.rename(out)
    return out
