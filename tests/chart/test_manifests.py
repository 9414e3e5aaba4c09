"""manifests/ is the chart rendered with default values, kept in sync by this test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_manifests", ROOT / "hack" / "render_manifests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_manifests", module)
    spec.loader.exec_module(module)
    return module


def test_manifests_match_the_chart() -> None:
    renderer = load_renderer()
    expected = renderer.render()
    actual = (ROOT / "manifests" / "lxcri.yaml").read_text()
    assert actual == expected, "manifests/ drifted from charts/lxcri: run python hack/render_manifests.py"


def test_manifests_are_the_only_files_there() -> None:
    # kubectl apply -f manifests/ applies everything in the directory
    assert sorted(p.name for p in (ROOT / "manifests").iterdir()) == ["lxcri.yaml"]


def test_manifests_apply_in_dependency_order() -> None:
    renderer = load_renderer()
    kinds = [o["kind"] for o in renderer.rendered_objects()]
    assert kinds.index("ServiceAccount") < kinds.index("DaemonSet")
    assert kinds.index("ClusterRoleBinding") < kinds.index("Deployment")
    assert kinds[0] == "CustomResourceDefinition" and kinds[-1] == "RuntimeClass"
