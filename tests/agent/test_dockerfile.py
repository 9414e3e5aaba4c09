"""The image recipe stays in step with the code (no registry here to build it, so this checks the
recipe's contract statically; the same build-tree command is exercised by the tree tests)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from lxcri_agent import treebuild

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]


def test_tree_is_built_where_the_agent_looks_for_it() -> None:
    assert f"build-tree {treebuild.IMAGE_TREE}" in DOCKERFILE
    assert f"COPY --from=build {treebuild.IMAGE_TREE} {treebuild.IMAGE_TREE}" in DOCKERFILE


def test_tree_is_checked_without_python_or_liblxc() -> None:
    check = next(s for s in stages() if " AS tree-check" in s.splitlines()[0])
    assert "apt-get" not in check, "the check stage must stay bare"
    assert f"env -i {treebuild.IMAGE_TREE}/lxcri --version" in check
    final = stages()[-1]
    installs = [line for line in final.splitlines() if "apt-get install" in line]
    packages = [w for line in installs for w in line.split()]
    assert installs and not any("liblxc" in w or w in ("lxc", "python3-lxc") for w in packages), \
        "the image must not lean on the distro's liblxc"
    assert "COPY --from=tree-check" in final


def test_extras_and_entry_point_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "tree" in project["optional-dependencies"]
    assert project["scripts"]["lxcri-agent"] == "lxcri_agent.cli:main"
    final = stages()[-1]
    assert 'ENTRYPOINT ["lxcri-agent"]' in final and "LXCRI_HOST_ROOT=/host" in final
