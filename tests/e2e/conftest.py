"""Session fixtures for the end-to-end tests: one busybox image, one podman storage, one private
containerd, shared by all tests (each test uses unique container names); and one Kubernetes
cluster per CRI (tests/e2e/kube_cluster.py), up once for the whole session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from callers import IMAGE, LXCRI, Containerd, Podman, busybox_material
from kube_cluster import CRIS, Cluster, Unavailable, cluster_for


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("e2e tests need root (they run real containers)")
    for tool in ("podman", "conmon", "containerd", "ctr", "runc"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (bash scripts/setup.sh)")
    if not LXCRI.exists():
        pytest.fail(f"{LXCRI} missing (bash scripts/setup.sh)")
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def images(e2e_work: Path) -> tuple[Path, Path]:
    """(rootfs tarball, OCI archive) of busybox."""
    return busybox_material(e2e_work / "image", IMAGE)


@pytest.fixture(scope="session")
def podman(e2e_work: Path, images: tuple[Path, Path]) -> Iterator[Podman]:
    p = Podman(e2e_work / "podman")
    r = p("import", str(images[0]), IMAGE)
    assert r.returncode == 0, r.stderr
    yield p
    p.close()


@pytest.fixture(scope="session")
def containerd(e2e_work: Path, images: tuple[Path, Path]) -> Iterator[Containerd]:
    c = Containerd(e2e_work / "containerd")
    c.start()
    try:
        r = c.ctr("image", "import", str(images[1]))
        assert r.returncode == 0, r.stderr
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session", params=CRIS)
def kube(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster of one CRI with handler `lxcri`; pytest orders the tests so that each CRI's
    cluster is up once, and takes it down before the next one comes up."""
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root")
    try:
        with cluster_for(request.param) as cluster:
            yield cluster
    except Unavailable as e:
        pytest.skip(str(e))
