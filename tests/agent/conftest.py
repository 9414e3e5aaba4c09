"""Fixtures for the agent tests: temporary host roots, one runtime tree per source, fakes.

The runtime tree is built with PyInstaller once per source and kept in pytest's cache between
runs (a build costs seconds of both cores). When the `lxcri` runtime package is importable the
tree is the real runtime; until then a stub that loads liblxc's `_lxc` stands in, so that the
bundling is still exercised, and the tests that need a real container skip.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"

STUB_MAIN = '''\
"""Stand-in for the runtime's CLI while the runtime is not in this checkout."""
import json
import sys


def main() -> int:
    import _lxc  # what the real runtime loads: pulls liblxc into the bundle

    if "--version" in sys.argv:
        print("lxcri version 0.0-stub (liblxc " + _lxc.get_version() + ")")
        return 0
    if "features" in sys.argv:
        print(json.dumps({"ociVersionMin": "1.0.0", "ociVersionMax": "1.2.0"}))
        return 0
    print("lxcri stub: not the runtime", file=sys.stderr)
    return 1
'''


def real_runtime() -> bool:
    if importlib.util.find_spec("lxcri") is None:
        return False
    return importlib.util.find_spec("lxcri.cli.main") is not None


@dataclass
class Tree:
    path: Path
    stub: bool


@pytest.fixture(scope="session")
def runtime_tree(request: pytest.FixtureRequest) -> Tree:
    from lxcri_agent import treebuild

    given = os.environ.get("LXCRI_TEST_TREE")  # e.g. the image's tree, or one built from another checkout
    if given:
        return Tree(Path(given), stub=False)
    pytest_cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = Path(pytest_cache.mkdir("lxcri-agent-tree")) if pytest_cache else treebuild.cache_dir() / "test-trees"
    recipe = hashlib.sha256(Path(treebuild.__file__).read_bytes() + sys.version.encode()).hexdigest()[:8]
    paths: tuple[Path, ...] = ()
    if real_runtime():
        key, stub = treebuild._source_key(), False
    else:
        key = hashlib.sha256(STUB_MAIN.encode()).hexdigest()[:12]
        src = cache / f"stub-src-{key}"
        (src / "lxcri" / "cli").mkdir(parents=True, exist_ok=True)
        (src / "lxcri" / "__init__.py").write_text("")
        (src / "lxcri" / "cli" / "__init__.py").write_text("")
        (src / "lxcri" / "cli" / "main.py").write_text(STUB_MAIN)
        paths, stub = (src,), True
    out = cache / f"tree-{key}-{recipe}"
    if not (out / treebuild.ID_FILE).is_file():
        treebuild.build(out, work=cache / "work", paths=paths)
    return Tree(out, stub)


@dataclass
class Recorder:
    """A reloader that remembers what it was asked; ``fail`` makes it refuse like a dead systemd."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False

    def apply(self, service: str, action: str) -> None:
        from lxcri_agent.errors import AgentError

        if self.fail:
            raise AgentError(f"cannot {action} {service}: test says no")
        self.calls.append((service, action))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


HostFactory = Callable[..., Path]


@pytest.fixture
def make_host(tmp_path: Path) -> HostFactory:
    """A host root with the given containerd config text (None: no /etc/containerd) and CRI-O dir."""

    def make(
        containerd: str | None = None,
        crio: bool = False,
        crio_files: dict[str, str] | None = None,
        name: str = "host",
    ) -> Path:
        root = tmp_path / name
        (root / "var/lib").mkdir(parents=True)  # every host has it; the agent keeps its state there
        if containerd is not None:
            (root / "etc/containerd").mkdir(parents=True)
            (root / "etc/containerd/config.toml").write_text(containerd)
        if crio or crio_files:
            (root / "etc/crio/crio.conf.d").mkdir(parents=True)
            (root / "etc/crio/crio.conf").write_text('[crio]\n# log_dir = "/var/log/crio/pods"\n')
            for fname, text in (crio_files or {}).items():
                (root / "etc/crio/crio.conf.d" / fname).write_text(text)
        return root

    return make


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes) and symlink (target) under a root, for byte-identical comparisons."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel + "/"] = b""
    return out


def containerd_bin() -> str | None:
    return shutil.which("containerd")
