"""Test material made on the spot: a busybox root file system, an OCI bundle, an OCI image archive."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")  # Debian busybox-static


def busybox_rootfs(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    subprocess.run(["chroot", str(path), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (path / d).mkdir(exist_ok=True)
    return path


def bundle(path: Path, args: list[str]) -> Path:
    """An OCI bundle like the one `runc spec` makes, without a terminal, running ``args``."""
    busybox_rootfs(path / "rootfs")
    subprocess.run(["runc", "spec"], cwd=path, check=True)
    cfg: dict[str, Any] = json.loads((path / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"]["readonly"] = False
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    return path


def _blob(blobs: dict[str, bytes], data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": digest, "size": len(data)}


def image_archive(path: Path, rootfs: Path, name: str) -> Path:
    """An OCI image layout tarball with one uncompressed layer, importable by `ctr images import`."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as t:
        t.add(rootfs, arcname=".")
    layer = layer_buf.getvalue()
    blobs: dict[str, bytes] = {}
    layer_d = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(blobs, layer)}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_d["digest"]]},
    }
    config_d = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        **_blob(blobs, json.dumps(config).encode()),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_d,
        "layers": [layer_d],
    }
    manifest_d = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **_blob(blobs, json.dumps(manifest).encode()),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"},
    }
    index = {"schemaVersion": 2, "manifests": [manifest_d]}
    with tarfile.open(path, "w") as t:

        def add(arcname: str, data: bytes) -> None:
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            add(f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
    return path
